//! Flow tests: the whole handler on the in-memory cloud with a paused tokio clock, so minutes of
//! boot time run in milliseconds and every timing is exact.

mod common;

use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op, LAMBDA_TG};
use autostop::cloud::{InstanceState, Weighted, DESIRED_COUNT_TAG};
use autostop::config::standing::DERIVED_BASE;
use autostop::state::Phase;
use autostop::wake::{READY_TTL, STEP_BUDGET};
use common::*;
use tokio::time::advance;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn ec2_config(listeners: &[&str], extra: &str) -> String {
    let listeners: Vec<String> = listeners.iter().map(|l| format!("\"{l}\"")).collect();
    format!(
        r#"
listener_arns = [{}]
hold = "25s"
settle = "2s"
{extra}

[[rules]]
name = "api"
hosts = ["api.dev.example.com", "*.api.dev.example.com"]
target_group_arn = "{TG_API}"
ec2 = {{ instance_ids = ["{I1}"] }}
"#,
        listeners.join(", ")
    )
}

fn ec2_app(boot: u64, health: u64) -> App<FakeCloud> {
    App::new(config(&ec2_config(&[L1], "")), ec2_world(boot, health, &[L1]))
}

fn cloud<C>(app: &App<C>) -> &C
where
    C: autostop::cloud::Cloud,
{
    app.cloud()
}

#[tokio::test(start_paused = true)]
async fn pending_40s_then_healthy_20s_later_walks_every_phase_then_forwards() {
    let app = ec2_app(40, 20);

    let page = browser(&app, "api.dev.example.com").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store, private"));
    assert_eq!(page.current_step().as_deref(), Some("starting"), "{}", page.body);
    assert_eq!(cloud(&app).calls(Op::StartInstances), 1);
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Pending);
    // The standing rule exists from the first request: the Lambda answers, and the app's group,
    // attached at weight 0, is health-checked by the ALB.
    let rules = cloud(&app).rules(L1);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].forward, vec![Weighted::new(LAMBDA_TG, 1), Weighted::new(TG_API, 0)]);
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG);

    advance(SECS(20)).await;
    let s = status(&app, "pr-7.api.dev.example.com").await;
    assert_eq!(s["phase"], "starting");
    assert_eq!(s["resources"][0], serde_json::json!({"kind": "ec2", "id": I1, "state": "pending"}));
    assert_eq!(s["elapsed_seconds"], 20);

    advance(SECS(25)).await; // t = 45: running, health checks not yet passed
    let s = status(&app, "api.dev.example.com").await;
    assert_eq!(s["phase"], "waiting_for_health");
    assert_eq!(s["targets"], serde_json::json!({"healthy": 0, "total": 1}));
    assert_eq!(browser(&app, "api.dev.example.com").await.current_step().as_deref(), Some("waiting_for_health"));
    assert_eq!(cloud(&app).routes_to(L1, "x.api.dev.example.com"), LAMBDA_TG, "not before a healthy target");

    advance(SECS(16)).await; // t = 61: healthy -> the rule is switched on this very step
    let s = status(&app, "api.dev.example.com").await;
    assert_eq!(s["phase"], "routing");
    let rules = cloud(&app).rules(L1);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].owner.as_deref(), Some("api"));
    assert_eq!(rules[0].hosts, vec!["api.dev.example.com", "*.api.dev.example.com"]);
    assert_eq!(rules[0].priority, DERIVED_BASE);
    for host in ["api.dev.example.com", "pr-1.api.dev.example.com"] {
        assert_eq!(cloud(&app).routes_to(L1, host), TG_API, "{host}");
    }

    // A held API request gets its 307 once the rule has settled.
    let r = api(&app, "POST", "api.dev.example.com", "/v1/items").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/v1/items"));
    assert_eq!(cloud(&app).calls(Op::StartInstances), 1);
    assert_eq!(cloud(&app).calls(Op::CreateRule), 1);
    assert_eq!(cloud(&app).calls(Op::ModifyRule), 1, "one switch");
}

#[tokio::test(start_paused = true)]
async fn a_stopping_instance_is_waited_for_then_started() {
    let text = ec2_config(&[L1], "").replace("hold = \"25s\"", "hold = \"2m\"");
    let world = ec2_world(10, 5, &[L1]);
    world.set_stopping(I1, SECS(30));
    let app = App::new(config(&text), world);

    let s = status(&app, "api.dev.example.com").await;
    assert_eq!(s["phase"], "stopping");
    assert_eq!(browser(&app, "api.dev.example.com").await.current_step().as_deref(), Some("stopping"));
    assert_eq!(cloud(&app).calls(Op::StartInstances), 0, "never start a stopping instance");

    let r = api(&app, "GET", "api.dev.example.com", "/health").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud(&app).calls(Op::StartInstances), 1);
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Running);
}

#[tokio::test(start_paused = true)]
async fn a_terminated_instance_gets_an_error_page_naming_it() {
    let world = ec2_world(10, 5, &[L1]);
    world.set_instance_state(I1, InstanceState::Terminated);
    let app = App::new(config(&ec2_config(&[L1], "")), world);

    let page = browser(&app, "api.dev.example.com").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains(I1) && page.body.contains("terminated"), "{}", page.body);
    assert!(page.header("retry-after").is_some());
    let r = api(&app, "GET", "api.dev.example.com", "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "InstanceTerminated");
    assert_eq!(cloud(&app).calls(Op::StartInstances), 0);
}

#[tokio::test(start_paused = true)]
async fn capacity_error_shows_the_code_and_a_later_request_succeeds() {
    let app = ec2_app(10, 5);
    cloud(&app).fail_next(Op::StartInstances, "InsufficientInstanceCapacity", 1);

    let r = api(&app, "POST", "api.dev.example.com", "/v1/jobs").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after").as_deref(), Some("15"));
    let body = r.json();
    assert_eq!(body["phase"], "error");
    assert_eq!(body["error"]["code"], "InsufficientInstanceCapacity");
    assert_eq!(body["error"]["kind"], "capacity");
    let page = browser(&app, "api.dev.example.com").await;
    assert_eq!(page.status, 503, "same cached failure for the browser within the second");
    assert!(page.body.contains("InsufficientInstanceCapacity"));

    advance(SECS(2)).await;
    let r = api(&app, "POST", "api.dev.example.com", "/v1/jobs").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud(&app).calls(Op::StartInstances), 2);
}

/// Two instances behind one target group, one of them short of capacity: the rule is ready on
/// the other's healthy target, the status names the one that failed, and later steps start it.
#[tokio::test(start_paused = true)]
async fn one_instance_short_of_capacity_does_not_hold_the_rule_in_error() {
    let text = ec2_config(&[L1], "").replace(&format!("[\"{I1}\"]"), &format!("[\"{I1}\", \"{I2}\"]"));
    let world = ec2_world(10, 5, &[L1]);
    world.add_instance(I2, InstanceState::Stopped, SECS(10));
    world.register_instance(TG_API, I2);
    world.no_capacity_for(I2, true);
    let app = App::new(config(&text), world);

    let r = api(&app, "POST", "api.dev.example.com", "/v1/jobs").await;
    assert_eq!(r.status, 307, "ready on the healthy one: {}", r.body);
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), TG_API);
    let s = status(&app, "api.dev.example.com").await;
    let i2 = s["resources"].as_array().unwrap().iter().find(|r| r["id"] == I2).cloned().unwrap();
    assert_eq!(i2["state"], "stopped (InsufficientInstanceCapacity)", "{s}");
    assert!(
        s["message"].as_str().unwrap().contains(&format!("{I2} could not start (InsufficientInstanceCapacity)")),
        "{s}"
    );
    let tries = cloud(&app).calls(Op::StartInstances);

    cloud(&app).no_capacity_for(I2, false);
    advance(READY_TTL + SECS(1)).await; // the published `ready` serves every environment until then
    let s = status(&app, "api.dev.example.com").await;
    assert!(cloud(&app).calls(Op::StartInstances) > tries, "a later step tries it again");
    assert_eq!(cloud(&app).instance_state(I2), InstanceState::Pending, "{s}");
    let state = cloud(&app).state_item("api").unwrap();
    assert_eq!((state.phase, state.wakes), (Phase::Ready, 1), "still the one wake");
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_within_the_hold() {
    let app = ec2_app(5, 2);
    cloud(&app).fail_next(Op::StartInstances, "RequestLimitExceeded", 2);
    cloud(&app).fail_next(Op::DescribeTargetHealth, "Throttling", 1);

    let r = api(&app, "GET", "api.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud(&app).calls(Op::StartInstances), 3);
}

/// No call outlives its deadline: with DescribeInstances hung, a browser's page and a status
/// poll come within the step budget from the last observation, a held API client gets its 503
/// within `hold`, and once AWS answers again the wake finishes.
#[tokio::test(start_paused = true)]
async fn a_hung_aws_answers_within_the_step_budget_and_the_wake_goes_on_when_it_recovers() {
    let app = ec2_app(15, 10);
    let host = "api.dev.example.com";
    cloud(&app).slow_down(Op::DescribeInstances, SECS(600));
    let t = tokio::time::Instant::now();
    let r = browser(&app, host).await;
    assert!(t.elapsed() <= STEP_BUDGET, "first page after {:?}", t.elapsed());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("AWS is slow to answer"), "{}", r.body);

    advance(SECS(2)).await;
    let t = tokio::time::Instant::now();
    let s = status(&app, host).await;
    assert!(t.elapsed() <= STEP_BUDGET && s["message"].as_str().unwrap().contains("slow"), "{s}");

    let t = tokio::time::Instant::now();
    let r = api(&app, "GET", host, "/").await;
    assert!(t.elapsed() <= SECS(25) + STEP_BUDGET, "held {:?}", t.elapsed());
    assert_eq!((r.status, r.header("retry-after").is_some()), (503, true), "{}", r.body);

    cloud(&app).slow_down(Op::DescribeInstances, Duration::ZERO);
    let r = api(&app, "GET", host, "/").await; // boot 15 s + health checks 10 s: one more hold
    let r = if r.status == 503 { api(&app, "GET", host, "/").await } else { r };
    assert_eq!(r.status, 307, "{}", r.body);
}

#[tokio::test(start_paused = true)]
async fn a_foreign_rule_on_our_priority_moves_us_to_the_next() {
    let world = ec2_world(0, 0, &[L1]);
    world.add_foreign_rule(L1, DERIVED_BASE, &["other.example.com"]);
    let app = App::new(config(&ec2_config(&[L1], "")), world);

    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    let rules = cloud(&app).rules(L1);
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!((rules[0].owner.as_deref(), rules[0].priority), (None, DERIVED_BASE), "the foreign rule is untouched");
    assert_eq!((rules[1].owner.as_deref(), rules[1].priority), (Some("api"), DERIVED_BASE + 1));
    assert_eq!(cloud(&app).routes_to(L1, "other.example.com"), "arn:foreign-tg");
}

#[tokio::test(start_paused = true)]
async fn a_foreign_rule_inserted_concurrently_is_stepped_past() {
    let world = ec2_world(0, 0, &[L1]);
    world.race_before_next_create(
        L1,
        DERIVED_BASE,
        &["other.example.com"],
        vec![Weighted::new("arn:foreign", 1)],
        None,
    );
    let app = App::new(config(&ec2_config(&[L1], "")), world);

    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    assert_eq!(cloud(&app).calls(Op::CreateRule), 2, "PriorityInUse, then listed again and placed after it");
    let ours: Vec<_> = cloud(&app).rules(L1).into_iter().filter(|r| r.owner.is_some()).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].priority, DERIVED_BASE + 1);
}

#[tokio::test(start_paused = true)]
async fn our_own_rule_inserted_concurrently_is_not_duplicated() {
    let world = ec2_world(0, 0, &[L1]);
    let asleep = vec![Weighted::new(LAMBDA_TG, 1), Weighted::new(TG_API, 0)];
    world.race_before_next_create(
        L1,
        DERIVED_BASE,
        &["*.api.dev.example.com", "api.dev.example.com"],
        asleep,
        Some("api"),
    );
    let app = App::new(config(&ec2_config(&[L1], "")), world);

    let r = api(&app, "GET", "api.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud(&app).calls(Op::CreateRule), 1, "the PriorityInUse by our own rule counts as done");
    let rules = cloud(&app).rules(L1);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].priority, DERIVED_BASE);
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), TG_API);
}

#[tokio::test(start_paused = true)]
async fn ecs_scales_from_zero_to_the_remembered_count_then_routes() {
    let text = format!(
        r#"
listener_arns = ["{L1}"]
[[rules]]
name = "web"
hosts = ["web.dev.example.com"]
target_group_arn = "{TG_WEB}"
ecs = {{ cluster = "dev", service = "web" }}
"#
    );
    let world = FakeCloud::new();
    world.add_service("dev", "web", 0, SECS(30));
    world.tag_service("dev", "web", DESIRED_COUNT_TAG, "3");
    world.add_target_group(TG_WEB, SECS(10));
    world.attach_service(TG_WEB, "dev", "web");
    world.add_listener(L1);
    let app = App::new(config(&text), world);

    let s = status(&app, "web.dev.example.com").await;
    assert_eq!(s["phase"], "starting");
    assert_eq!(s["resources"][0]["state"], "starting (0/3)");
    assert_eq!(cloud(&app).service_desired("dev", "web"), 3);

    advance(SECS(31)).await;
    assert_eq!(status(&app, "web.dev.example.com").await["phase"], "waiting_for_health");
    advance(SECS(10)).await;
    assert_eq!(status(&app, "web.dev.example.com").await["phase"], "routing");
    let r = api(&app, "DELETE", "web.dev.example.com", "/v1/x").await;
    assert_eq!(r.status, 307);
    assert_eq!(cloud(&app).calls(Op::UpdateService), 1);
    assert_eq!(cloud(&app).rules(L1).len(), 1);
    assert_eq!(cloud(&app).routes_to(L1, "web.dev.example.com"), TG_WEB);
}

#[tokio::test(start_paused = true)]
async fn ecs_configured_count_wins_and_defaults_to_one() {
    for (configured, remembered, want) in [(Some(2), Some(5), 2), (None, None, 1)] {
        let count = configured.map(|n| format!(", desired_count = {n}")).unwrap_or_default();
        let text = format!(
            "listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"web\"\nhosts = [\"web.x\"]\ntarget_group_arn = \"{TG_WEB}\"\necs = {{ cluster = \"dev\", service = \"web\"{count} }}\n"
        );
        let world = FakeCloud::new();
        world.add_service("dev", "web", 0, SECS(1));
        if let Some(n) = remembered {
            world.tag_service("dev", "web", DESIRED_COUNT_TAG, &n.to_string());
        }
        world.add_target_group(TG_WEB, SECS(1));
        world.attach_service(TG_WEB, "dev", "web");
        world.add_listener(L1);
        let app = App::new(config(&text), world);
        status(&app, "web.x").await;
        assert_eq!(cloud(&app).service_desired("dev", "web"), want);
    }
}

/// Runs `n` API clients at once against a fresh world, each retrying after a 503's
/// `Retry-After` (beyond the rule's hold slots a client is answered at once) until it gets its
/// 307; returns the app.
async fn concurrent_wake(n: usize) -> Arc<App<FakeCloud>> {
    let app = Arc::new(App::new(config(&ec2_config(&[L1, L2], "")), ec2_world(8, 4, &[L1, L2])));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            let host = if i % 2 == 0 { "api.dev.example.com" } else { "x.api.dev.example.com" };
            loop {
                let r = api(&app, "POST", host, "/v1/items").await;
                match (r.status, r.header("retry-after")) {
                    (503, Some(after)) => tokio::time::sleep(SECS(after.parse().unwrap())).await,
                    _ => return r,
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().status, 307);
    }
    app
}

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_requests_cost_the_calls_of_one() {
    let one = concurrent_wake(1).await;
    let many = concurrent_wake(200).await;
    let (one, many) = (cloud(&one), cloud(&many));
    assert_eq!(many.calls(Op::StartInstances), 1);
    assert_eq!(many.calls(Op::CreateRule), 2, "one per listener");
    assert_eq!(many.rules(L1).len(), 1);
    assert_eq!(many.rules(L2).len(), 1);
    for op in [Op::DescribeInstances, Op::DescribeTargetHealth, Op::DescribeRules] {
        assert!(
            many.calls(op) <= one.calls(op) + 1,
            "{op}: {} calls for 200 requests vs {} for one",
            many.calls(op),
            one.calls(op)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn more_than_three_hosts_become_several_alb_rules() {
    let hosts: Vec<String> = (0..7).map(|i| format!("\"h{i}.dev.example.com\"")).collect();
    let text = format!(
        "listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"many\"\nhosts = [{}]\ntarget_group_arn = \"{TG_API}\"\npriority = 300\nec2 = {{ instance_ids = [\"{I1}\"] }}\n",
        hosts.join(", ")
    );
    let app = App::new(config(&text), ec2_world(0, 0, &[L1]));
    assert_eq!(api(&app, "GET", "h6.dev.example.com", "/").await.status, 307);
    let mut rules = cloud(&app).rules(L1);
    rules.sort_by_key(|r| r.priority);
    let layout: Vec<(u32, usize)> = rules.iter().map(|r| (r.priority, r.hosts.len())).collect();
    assert_eq!(layout, vec![(300, 3), (301, 3), (302, 1)], "a host-header condition takes at most 3 values");
    for i in 0..7 {
        assert_eq!(cloud(&app).routes_to(L1, &format!("h{i}.dev.example.com")), TG_API);
    }
    // Waking again adds nothing.
    advance(SECS(2)).await;
    assert_eq!(api(&app, "GET", "h0.dev.example.com", "/").await.status, 307);
    assert_eq!(cloud(&app).rules(L1).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_raced_the_rule_gets_routing_page_or_307() {
    let app = ec2_app(0, 0);
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    advance(SECS(5)).await;
    // The ALB rule exists, yet this request reached the Lambda.
    let page = browser(&app, "api.dev.example.com").await;
    assert_eq!(page.status, 200, "browsers never get a redirect");
    assert_eq!(page.current_step().as_deref(), Some("routing"));
    assert!(page.body.contains("data-rendered-ready=\"true\""));
    let r = api(&app, "PUT", "api.dev.example.com", "/a/b").await;
    assert_eq!((r.status, r.header("location").as_deref()), (307, Some("/a/b")));
    assert_eq!(cloud(&app).calls(Op::CreateRule), 1);
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_stops_again_after_start_names_kms() {
    let app = ec2_app(5, 0);
    cloud(&app).fail_to_boot(I1);
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "starting");
    advance(SECS(6)).await;
    let page = browser(&app, "api.dev.example.com").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("kms:CreateGrant"), "{}", page.body);
}

#[tokio::test(start_paused = true)]
async fn a_held_request_times_out_into_503_with_retry_after() {
    let app = ec2_app(120, 0);
    let r = api(&app, "POST", "api.dev.example.com", "/slow").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert_eq!(r.json()["phase"], "starting");
    assert_eq!(r.header("x-autostop").as_deref(), Some("waking"));
}

#[tokio::test(start_paused = true)]
async fn hold_is_cut_by_the_lambda_time_left() {
    let app = ec2_app(120, 0);
    let start = tokio::time::Instant::now();
    let v = app
        .handle(alb_event("POST", "api.dev.example.com", "/", &[("accept", "application/json")]), Some(SECS(10)))
        .await
        .unwrap();
    assert_eq!(Resp::from_value(v).status, 503);
    let held = start.elapsed();
    assert!(held >= SECS(7) && held < SECS(8), "held {held:?}: 10 s left minus the 3 s margin");
}

#[tokio::test(start_paused = true)]
async fn the_eta_comes_from_the_median_of_recent_warmups() {
    // No history yet: the target group's health checks (2 x 10 s here) are the least a wake
    // takes, and the estimate until they have passed; then there is none.
    let app = ec2_app(40, 20);
    let page = browser(&app, "api.dev.example.com").await;
    assert!(page.body.contains("ready in about 20 s"), "the health-check floor: {}", page.body);
    advance(SECS(5)).await;
    assert_eq!(status(&app, "api.dev.example.com").await["eta_seconds"], 15);
    advance(SECS(20)).await;
    assert_eq!(status(&app, "api.dev.example.com").await["eta_seconds"], serde_json::Value::Null, "past the floor");
    assert_eq!(cloud(&app).calls(Op::DescribeTargetGroups), 1, "read once");

    let app = ec2_app(40, 20);
    let history = autostop::cloud::RuleState { warmups: vec![40, 300, 70], ..autostop::cloud::RuleState::new("api") };
    cloud(&app).seed_state(history);
    assert_eq!(status(&app, "api.dev.example.com").await["eta_seconds"], 70, "median, not mean");
    advance(SECS(30)).await;
    assert_eq!(status(&app, "api.dev.example.com").await["eta_seconds"], 40);
    assert!(browser(&app, "api.dev.example.com").await.body.contains("ready in about 40 s"));
}

#[tokio::test(start_paused = true)]
async fn another_lambda_instance_reports_the_same_elapsed_time_and_eta() {
    let text = ec2_config(&[L1], "");
    let cloud = Arc::new(ec2_world(40, 20, &[L1]));
    cloud.seed_state(autostop::cloud::RuleState { warmups: vec![60], ..autostop::cloud::RuleState::new("api") });
    let first = App::with_cloud(config(&text), Arc::clone(&cloud));
    assert_eq!(status(&first, "api.dev.example.com").await["phase"], "starting");
    advance(SECS(20)).await;
    // The page's next poll lands on a fresh execution environment.
    let second = App::with_cloud(config(&text), Arc::clone(&cloud));
    let s = status(&second, "api.dev.example.com").await;
    assert_eq!((s["elapsed_seconds"].as_u64(), s["eta_seconds"].as_u64()), (Some(20), Some(40)), "{s}");
}

#[tokio::test(start_paused = true)]
async fn started_then_stopped_again_is_recognised_by_every_lambda_environment() {
    let text = ec2_config(&[L1], "");
    let cloud = Arc::new(ec2_world(5, 0, &[L1]));
    cloud.fail_to_boot(I1);
    let first = App::with_cloud(config(&text), Arc::clone(&cloud));
    assert_eq!(status(&first, "api.dev.example.com").await["phase"], "starting");
    advance(SECS(6)).await;
    // The next requests reach other execution environments, which never saw the start.
    for _ in 0..3 {
        let other = App::with_cloud(config(&text), Arc::clone(&cloud));
        let page = browser(&other, "api.dev.example.com").await;
        assert_eq!(page.status, 503, "{}", page.body);
        assert!(page.body.contains("kms:CreateGrant"), "{}", page.body);
        advance(SECS(2)).await;
    }
    assert_eq!(cloud.calls(Op::StartInstances), 1, "no start loop across environments");
    assert_eq!(cloud.state_item("api").unwrap().phase, Phase::Error);
    // After a pause, a request tries the start again (someone may have fixed the key policy).
    advance(SECS(60)).await;
    let other = App::with_cloud(config(&text), Arc::clone(&cloud));
    assert_eq!(status(&other, "api.dev.example.com").await["phase"], "starting");
    assert_eq!(cloud.calls(Op::StartInstances), 2);
}

#[tokio::test(start_paused = true)]
async fn anonymous_clients_see_the_code_and_what_to_do_never_the_aws_message() {
    let app = ec2_app(10, 5);
    let secret = "User: arn:aws:sts::123456789012:assumed-role/autostop-role/fn is not authorized. Encoded \
                  authorization failure message: AbCdEf0123";
    cloud(&app).fail_next_with(Op::StartInstances, "UnauthorizedOperation", secret, 2);
    let page = browser(&app, "api.dev.example.com").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("UnauthorizedOperation") && page.body.contains("add the permission"), "{}", page.body);
    advance(SECS(2)).await;
    let r = api(&app, "POST", "api.dev.example.com", "/x").await;
    assert_eq!(r.json()["error"]["code"], "UnauthorizedOperation");
    for body in [&page.body, &r.body] {
        for leak in ["123456789012", "assumed-role", "Encoded", "AbCdEf0123"] {
            assert!(!body.contains(leak), "{leak} leaked: {body}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_status_says_why_no_target_is_healthy_and_what_to_check() {
    let app = ec2_app(10, 10);
    cloud(&app).fail_health_checks(TG_API, Some("Target.ResponseCodeMismatch"));
    let message = |s: serde_json::Value| s["message"].as_str().unwrap().to_string();
    assert!(message(status(&app, "api.dev.example.com").await).contains("starting"));
    advance(SECS(11)).await; // running; the group is attached, first checks under way
    let m = message(status(&app, "api.dev.example.com").await);
    assert!(m.contains("1 target(s) registered, in the load balancer's first health checks"), "{m}");
    advance(SECS(70)).await; // a minute of failing checks
    let s = status(&app, "api.dev.example.com").await;
    assert_eq!(s["phase"], "waiting_for_health");
    let m = message(s);
    assert!(m.contains("1 of 1 target(s) fail") && m.contains("Target.ResponseCodeMismatch"), "{m}");
    assert!(m.contains("health check path and port") && m.contains("app's logs"), "{m}");
    cloud(&app).fail_health_checks(TG_API, None);
    advance(SECS(2)).await;
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307, "healthy again: routed");
}

/// A stop makes the published `ready` status stale at once: a request within `READY_TTL` of
/// the last publish must not be told "ready" (and sent round again) but start the rule again.
#[tokio::test(start_paused = true)]
async fn a_request_right_after_a_stop_starts_again_instead_of_reading_a_stale_ready() {
    let app = ec2_app(1, 5);
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "ready");
    app.handle(serde_json::json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    advance(SECS(1)).await;
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Stopping);
    let s = status(&app, "api.dev.example.com").await;
    assert_ne!(s["phase"], "ready", "{s}");
    // Once stopped (30 s in the fake), the next request starts it again.
    advance(SECS(31)).await;
    status(&app, "api.dev.example.com").await;
    assert_eq!(cloud(&app).calls(Op::StartInstances), 2, "the request starts it again");
}
