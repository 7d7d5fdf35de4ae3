//! Idle-check flows on the in-memory cloud with a paused clock: traffic patterns, CloudWatch lag,
//! the ordered stop, the wake/stop race, concurrent checkers, partial failures, drift, dry run.

mod common;

use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op, LAMBDA_TG};
use autostop::cloud::{Cloud, InstanceState, DESIRED_COUNT_TAG};
use autostop::state::Phase;
use common::*;
use serde_json::{json, Value};
use tokio::time::advance;

const MIN: u64 = 60;
const MUTATING: [Op; 10] = [
    Op::StartInstances,
    Op::StopInstances,
    Op::UpdateService,
    Op::TagResource,
    Op::CreateRule,
    Op::ModifyRule,
    Op::SetRulePriorities,
    Op::DeleteRule,
    Op::UpdateAutoScalingGroup,
    Op::PutItem,
];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ec2_rule_config(idle: &str, busy: &str, instances: &[&str]) -> String {
    let ids: Vec<String> = instances.iter().map(|i| format!("\"{i}\"")).collect();
    format!(
        r#"
listener_arns = ["{L1}"]
hold = "3m"
settle = "2s"
[[rules]]
name = "api"
hosts = ["api.dev.example.com"]
target_group_arn = "{TG_API}"
idle = "{idle}"
ec2 = {{ instance_ids = [{}] }}
{busy}
"#,
        ids.join(", ")
    )
}

/// A stopped instance behind the api target group; boots in 20 s, healthy 10 s later.
fn world(instances: &[&str]) -> FakeCloud {
    let cloud = FakeCloud::new();
    cloud.add_target_group(TG_API, secs(10));
    for id in instances {
        cloud.add_instance(id, InstanceState::Stopped, secs(20));
        cloud.register_instance(TG_API, id);
    }
    cloud.add_listener(L1);
    cloud
}

/// A `web` rule over an ECS service running `desired` tasks (boot 5 s, healthy 10 s later).
fn ecs_app(idle: &str, extra: &str, desired: u32) -> App<FakeCloud> {
    let text = format!(
        "listener_arns = [\"{L1}\"]\nhold = \"3m\"\n[[rules]]\nname = \"web\"\nhosts = [\"web.dev.example.com\"]\n\
         target_group_arn = \"{TG_WEB}\"\nidle = \"{idle}\"\necs = {{ cluster = \"dev\", service = \"web\" }}\n{extra}\n"
    );
    let world = FakeCloud::new();
    world.add_service("dev", "web", desired, secs(5));
    world.add_target_group(TG_WEB, secs(5));
    world.attach_service(TG_WEB, "dev", "web");
    world.add_listener(L1);
    App::new(config(&text), world)
}

/// An app whose api rule has been woken (a held request got its 307).
async fn awake_app(text: &str, instances: &[&str]) -> App<FakeCloud> {
    let app = App::new(config(text), world(instances));
    let r = api(&app, "GET", "api.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    app
}

async fn check(app: &App<FakeCloud>, dry_run: bool) -> Value {
    app.handle(json!({"autostop": "idle-check", "dry_run": dry_run}), None).await.expect("idle check runs")
}

fn action(report: &Value, rule: &str) -> (String, String) {
    let r = report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).expect("rule in report");
    (r["action"].as_str().unwrap().to_string(), r["outcome"].as_str().unwrap().to_string())
}

fn cloud(app: &App<FakeCloud>) -> &FakeCloud {
    app.cloud()
}

#[tokio::test(start_paused = true)]
async fn sparse_traffic_every_four_minutes_is_never_stopped() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    cloud(&app).set_metric_lag(secs(3 * MIN));
    for minute in 1..=60 {
        advance(secs(MIN)).await;
        if minute % 4 == 0 {
            cloud(&app).put_requests(TG_API, L1, 1.0);
        }
        if minute % 2 == 0 {
            let report = check(&app, false).await;
            assert_eq!(action(&report, "api").0, "keep", "minute {minute}: {report}");
        }
    }
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Running);
    assert_eq!(cloud(&app).calls(Op::StopInstances), 0);
}

#[tokio::test(start_paused = true)]
async fn busy_traffic_is_not_stopped_despite_three_minutes_of_cloudwatch_lag() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    cloud(&app).set_metric_lag(secs(3 * MIN));
    for minute in 1..=30 {
        advance(secs(MIN)).await;
        cloud(&app).put_requests(TG_API, L1, 25.0);
        assert_eq!(action(&check(&app, false).await, "api").0, "keep", "minute {minute}");
    }
    // Traffic ends: stopped once the idle time (plus the lag allowance) has passed.
    let mut stopped_after = None;
    for minute in 1..=15 {
        advance(secs(MIN)).await;
        if action(&check(&app, false).await, "api") == ("stop".into(), "done".into()) {
            stopped_after = Some(minute);
            break;
        }
    }
    let m = stopped_after.expect("stopped once idle");
    // Idle 5 m, plus the 3 m lag allowance, read at minute granularity.
    assert!((8..=9).contains(&m), "stopped {m} minutes after the last request");
}

#[tokio::test(start_paused = true)]
async fn a_websocket_user_keeps_the_rule_awake_through_network_packets() {
    let busy = "busy_when = { network_packets_in = 500 }";
    let app = awake_app(&ec2_rule_config("5m", busy, &[I1]), &[I1]).await;
    for minute in 1..=20 {
        advance(secs(MIN)).await;
        // No requests at all; the open socket moves packets.
        let now = cloud(&app).now();
        cloud(&app).put_metric("AWS/EC2", "NetworkPacketsIn", &[("InstanceId", I1)], now - 60, 900.0);
        assert_eq!(action(&check(&app, false).await, "api").0, "keep", "minute {minute}");
    }
    assert_eq!(cloud(&app).calls(Op::StopInstances), 0);
}

#[tokio::test(start_paused = true)]
async fn the_same_rule_without_packets_is_stopped() {
    let busy = "busy_when = { network_packets_in = 500 }";
    let app = awake_app(&ec2_rule_config("5m", busy, &[I1]), &[I1]).await;
    let mut stopped = false;
    for _ in 1..=10 {
        advance(secs(MIN)).await;
        // Background chatter under the threshold is not activity.
        let now = cloud(&app).now();
        cloud(&app).put_metric("AWS/EC2", "NetworkPacketsIn", &[("InstanceId", I1)], now - 60, 40.0);
        stopped |= action(&check(&app, false).await, "api") == ("stop".into(), "done".into());
    }
    assert!(stopped);
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG);
}

#[tokio::test(start_paused = true)]
async fn a_rule_woken_a_minute_ago_without_traffic_is_kept() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    advance(secs(MIN)).await;
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("keep".into(), "nothing".into()), "{report}");
    let state = cloud(&app).state_item("api").expect("the wake recorded state");
    assert_eq!(state.phase, Phase::Ready);
    assert_eq!(state.wakes, 1);
    assert_eq!(state.warmups.len(), 1);
    // Boot 20 s + health 10 s, then at most one poll and the 2 s settle.
    assert!((30..=34).contains(&state.warmups[0]), "{state:?}");
}

#[tokio::test(start_paused = true)]
async fn the_stop_is_ordered_and_recorded() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    let before = cloud(&app).state_item("api").unwrap();
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("stop".into(), "done".into()), "{report}");
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG, "traffic is back on the Lambda");
    assert_eq!(cloud(&app).rules(L1).len(), 1, "the standing rule stays, so the group stays health-checked");
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Stopping);
    assert!(cloud(&app).violations().is_empty(), "{:?}", cloud(&app).violations());
    let after = cloud(&app).state_item("api").unwrap();
    assert_eq!((after.phase, after.stops), (Phase::Stopped, 1));
    assert_eq!(after.version, before.version + 2, "stopping, then stopped");
    assert!(after.stopped_at.is_some());
}

/// A client behind the ALB: served by the app when the ALB routes the host there, else by the
/// Lambda; it follows 307s back to the ALB, as HTTP clients do.
async fn through_the_alb(app: &App<FakeCloud>) -> &'static str {
    for _ in 0..20 {
        if cloud(app).routes_to(L1, "api.dev.example.com") == TG_API {
            return "app";
        }
        let r = api(app, "GET", "api.dev.example.com", "/during-stop").await;
        match (r.status, r.header("retry-after")) {
            (307, _) => {}
            (503, Some(after)) => tokio::time::sleep(secs(after.parse().unwrap())).await,
            _ => return "error",
        }
    }
    "redirect loop"
}

#[tokio::test(start_paused = true)]
async fn a_request_during_the_stop_ends_with_the_rule_running_and_one_listener_rule() {
    let app = Arc::new(awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
                                  // The SDK spends 3 s retrying a throttled StopInstances: traffic is back on the Lambda, the
                                  // instance still runs and is healthy. A wake must not route to it again.
    cloud(&app).slow_down(Op::StopInstances, secs(3));
    let checker = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { check(&app, false).await })
    };
    // Clients arrive while the checker runs (its AWS calls take 10 ms each) and after it.
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..100u64 {
        let app = Arc::clone(&app);
        clients.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50 * i)).await;
            through_the_alb(&app).await
        });
    }
    let report = checker.await.unwrap();
    assert_eq!(action(&report, "api"), ("stop".into(), "done".into()), "{report}");
    while let Some(r) = clients.join_next().await {
        assert_eq!(r.unwrap(), "app");
    }

    assert_eq!(cloud(&app).calls(Op::StopInstances), 1);
    assert_eq!(cloud(&app).calls(Op::StartInstances), 2, "woken again after the stop");

    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Running);
    assert_eq!(cloud(&app).rules(L1).len(), 1);
    assert!(cloud(&app).violations().is_empty(), "{:?}", cloud(&app).violations());
}

#[tokio::test(start_paused = true)]
async fn a_wake_step_that_read_ready_before_the_claim_never_routes_to_a_stopping_target() {
    let app = Arc::new(awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
                                  // A request's step reads the state (`ready`) and then waits 2 s on DescribeTargetHealth; in
                                  // between, the checker claims the stop, switches traffic away and starts a 3 s StopInstances.
    cloud(&app).slow_down(Op::DescribeTargetHealth, secs(2));
    cloud(&app).slow_down(Op::StopInstances, secs(3));
    let step = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { status(&app, "api.dev.example.com").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await; // the step has read the state
    assert_eq!(action(&check(&app, false).await, "api"), ("stop".into(), "done".into()));
    step.await.unwrap();
    assert!(cloud(&app).violations().is_empty(), "{:?}", cloud(&app).violations());
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG);
}

/// DescribeTags takes 1.5 s. The checker lists (t = 0..1.5 s), claims and switches to the Lambda
/// at about 1.55 s; a request reaches autostop at 1.4 s, and its step (listing included) ends
/// inside the step budget. Returns the checker's report.
async fn a_request_in_the_checkers_decision_window(app: &Arc<App<FakeCloud>>) -> Value {
    cloud(app).slow_down(Op::DescribeTags, Duration::from_millis(1500));
    cloud(app).slow_down(Op::StopInstances, secs(3));
    let checker = {
        let app = Arc::clone(app);
        tokio::spawn(async move { check(&app, false).await })
    };
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let _ = status(app, "api.dev.example.com").await;
    checker.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_request_in_the_decision_window_takes_the_observer_lease_and_the_checker_backs_off() {
    let app = Arc::new(awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    let report = a_request_in_the_checkers_decision_window(&app).await;
    // The request moved the item's version before the claim: the rule is in use, the wake wins.
    assert_eq!(action(&report, "api"), ("stop".into(), "backed_off".into()), "{report}");
    assert_eq!(cloud(&app).calls(Op::StopInstances), 0);
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), TG_API);
    assert!(cloud(&app).violations().is_empty(), "{:?}", cloud(&app).violations());
}

#[tokio::test(start_paused = true)]
async fn without_the_table_a_switch_landing_after_the_stop_switched_away_is_swept_back() {
    let app = Arc::new(awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
                                  // Without the table nothing coordinates: the request's step passes its guard at about
                                  // 1.45 s, lists until about 3 s and switches the rule back to the app while StopInstances
                                  // runs. The checker's sweep switches it away again.
    cloud(&app).drop_state_table();
    let report = a_request_in_the_checkers_decision_window(&app).await;
    assert_eq!(action(&report, "api"), ("stop".into(), "done".into()), "{report}");
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG, "the sweep switched it back");
    assert_eq!(cloud(&app).calls(Op::ModifyRule), 3 + 1, "wake, stop, the late switch, the sweep");
}

#[tokio::test(start_paused = true)]
async fn a_browser_during_the_stop_sees_the_stopping_phase_then_the_wake() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    check(&app, false).await;
    // The instance takes 30 s to stop.
    let s = status(&app, "api.dev.example.com").await;
    assert_eq!(s["phase"], "stopping");
    advance(secs(31)).await;
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "starting");
    assert_eq!(cloud(&app).calls(Op::StartInstances), 2, "the first wake and this one");
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_checkers_stop_once() {
    let app = Arc::new(awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    let (a, b) = tokio::join!(check(&app, false), check(&app, false));
    let outcomes = [action(&a, "api").1, action(&b, "api").1];
    assert!(outcomes.contains(&"done".to_string()), "{outcomes:?}");
    assert_eq!(cloud(&app).calls(Op::StopInstances), 1);
    assert_eq!(cloud(&app).state_item("api").unwrap().stops, 1);
}

#[tokio::test(start_paused = true)]
async fn a_wake_after_the_decision_wins_and_the_checker_backs_off() {
    let app = App::new(config(&ec2_rule_config("5m", "", &[I1])), world(&[I1]));
    let r = api(&app, "GET", "api.dev.example.com", "/").await;
    assert_eq!(r.status, 307);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
                                  // The idle decision is made on version v; a wake writes v+1 before the claim.
    let rule = app.config().rule("api").unwrap().clone();
    let seen = cloud(&app).state_item("api");
    let plan = autostop::wake::observe(cloud(&app), &rule).await.unwrap();
    let mut views = autostop::routing::views(cloud(&app), &app.config()).await.unwrap();
    cloud(&app).set_instance_state(I1, InstanceState::Stopped);
    let _ = status(&app, "api.dev.example.com").await; // starts it again: records a wake
    let woken = cloud(&app).state_item("api").unwrap();
    cloud(&app).reset_calls();
    let request = autostop::sleep::StopRequest {
        rule: &rule,
        decided: seen.as_ref(),
        observed: &plan,
        views: &mut views,
        reason: "test",
        cause: "idle",
        by: None,
    };
    let outcome = autostop::sleep::stop_rule(cloud(&app), &app.config(), request).await.unwrap();

    assert!(matches!(outcome, autostop::sleep::StopOutcome::BackedOff(_)), "{outcome:?}");
    // Backing off means touching nothing: the one call was the claim that lost.
    assert_eq!(cloud(&app).call_counts(), vec![(Op::PutItem, 1)]);
    assert_eq!(cloud(&app).state_item("api").unwrap(), woken, "the wake's record stands");
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Pending, "the wake's start goes on");
}

#[tokio::test(start_paused = true)]
async fn a_throttled_stop_is_retried_next_run_without_renewing_its_claim() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1, I2]), &[I1, I2]).await;
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    cloud(&app).fail_next(Op::StopInstances, "RequestLimitExceeded", 3); // I1 and I2, then I1 again
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("stop".into(), "partial".into()), "{report}");
    let first = cloud(&app).state_item("api").unwrap();
    assert_eq!(first.phase, Phase::Stopping, "retryable: the next run finishes the job");
    assert!(first.last_error.as_deref().unwrap().contains("RequestLimitExceeded"), "{first:?}");

    advance(secs(2 * MIN)).await;
    check(&app, false).await;
    let second = cloud(&app).state_item("api").unwrap();
    assert_eq!(second.stopping_since, first.stopping_since, "the claim keeps its first time, so the stop timeout runs");

    advance(secs(2 * MIN)).await;
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("stop".into(), "done".into()), "{report}");
    advance(secs(31)).await;
    assert_eq!(
        (cloud(&app).instance_state(I1), cloud(&app).instance_state(I2)),
        (InstanceState::Stopped, InstanceState::Stopped)
    );
    let state = cloud(&app).state_item("api").unwrap();
    assert_eq!((state.phase, state.last_error.as_deref()), (Phase::Stopped, None));
}

#[tokio::test(start_paused = true)]
async fn a_stop_that_retrying_cannot_fix_puts_the_rule_in_error_and_never_locks_wakes() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
                                  // An instance without the autostop tag: the role may not stop it, however often it tries.
    cloud(&app).fail_next(Op::StopInstances, "UnauthorizedOperation", 100);
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("stop".into(), "partial".into()), "{report}");
    let state = cloud(&app).state_item("api").unwrap();
    assert_eq!(state.phase, Phase::Error);
    let why = state.last_error.clone().unwrap();
    assert!(why.contains("UnauthorizedOperation") && why.contains("autostop stop api"), "{why}");

    // A request is served as usual: nothing waits for a stop that will never finish.
    let r = api(&app, "GET", "api.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), TG_API);

    // The checker does not decide "stop" again while nothing changed...
    for _ in 0..3 {
        advance(secs(10 * MIN)).await;
        let report = check(&app, false).await;
        assert_eq!(action(&report, "api").0, "stop_failed", "{report}");
    }
    assert_eq!(cloud(&app).calls(Op::StopInstances), 1);
    // ...and the status says why and what to do.
    let st = app.handle(json!({"autostop": "status"}), None).await.unwrap();
    assert!(st["rules"][0]["last_error"].as_str().unwrap().contains("UnauthorizedOperation"), "{st}");

    // Someone restarts the instance (a changed resource): it is stopped like any idle rule.
    cloud(&app).set_instance_state(I1, InstanceState::Stopped);
    cloud(&app).start_instances(&[I1.to_string()]).await.unwrap();
    advance(secs(20 * MIN)).await;
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api").0, "stop", "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_service_that_cannot_be_tagged_is_not_scaled_to_zero_and_keeps_its_count() {
    let app = ecs_app("10m", "", 3);
    advance(secs(14 * MIN)).await;
    cloud(&app).fail_next(Op::TagResource, "AccessDeniedException", 1);
    let report = check(&app, false).await;
    assert_eq!(action(&report, "web"), ("stop".into(), "partial".into()), "{report}");
    assert_eq!(cloud(&app).service_desired("dev", "web"), 3, "not scaled: the count would be lost");
    assert_eq!(cloud(&app).state_item("web").unwrap().phase, Phase::Error);
}

#[tokio::test(start_paused = true)]
async fn a_wake_that_loses_its_write_to_a_stop_claim_does_not_overwrite_it() {
    // Two instances: I1 awake and idle, I2 stopped. A request starts I2 (StartInstances takes
    // 1 s) while the checker claims the stop and stops I1 (3 s).
    let app = Arc::new(awake_app(&ec2_rule_config("5m", "", &[I1, I2]), &[I1, I2]).await);
    cloud(&app).set_instance_state(I2, InstanceState::Stopped);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    cloud(&app).slow_down(Op::StartInstances, secs(1));
    cloud(&app).slow_down(Op::StopInstances, secs(3));
    let step = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { status(&app, "api.dev.example.com").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await; // the step has read the state
    let report = check(&app, false).await;
    step.await.unwrap();
    assert_eq!(
        action(&report, "api"),
        ("stop".into(), "done".into()),
        "the checker's last write went through: {report}"
    );
    assert_eq!(cloud(&app).state_item("api").unwrap().stops, 1);
}

#[tokio::test(start_paused = true)]
async fn dry_run_decides_but_calls_nothing_that_changes_anything() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    cloud(&app).reset_calls();
    let report = check(&app, true).await;
    assert_eq!(action(&report, "api"), ("stop".into(), "dry_run".into()));
    for op in MUTATING {
        assert_eq!(cloud(&app).calls(op), 0, "{op}");
    }
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Running);
    assert_eq!(cloud(&app).rules(L1).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn drift_is_repaired_orphans_are_removed_and_foreign_rules_left_alone() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    // Someone stopped the instance by hand: the standing rule forwards to a stopped target.
    cloud(&app).set_instance_state(I1, InstanceState::Stopped);
    cloud(&app).add_foreign_rule(L1, 5, &["intranet.example.com"]);
    cloud(&app).add_tagged_rule(L1, 6, &["old.dev.example.com"], TG_WEB, "removed-rule");
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("switch_back".into(), "done".into()), "{report}");
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG);
    assert_eq!(cloud(&app).state_item("api").unwrap().phase, Phase::Stopped, "the stop by hand is recorded");
    let left: Vec<(u32, Option<String>)> = cloud(&app).rules(L1).into_iter().map(|r| (r.priority, r.owner)).collect();
    assert_eq!(left, vec![(5, None), (10_000, Some("api".into()))], "foreign kept, orphan of ours removed");
    assert_eq!(report["standing_rules"][0]["deleted"], 1, "{report}");
    assert_eq!(cloud(&app).routes_to(L1, "intranet.example.com"), "arn:foreign-tg");
}

#[tokio::test(start_paused = true)]
async fn resources_started_by_hand_are_stopped_after_the_idle_time() {
    let app = App::new(config(&ec2_rule_config("5m", "", &[I1])), world(&[I1]));
    cloud(&app).start_instances(&[I1.to_string()]).await.unwrap();
    advance(secs(21)).await;
    assert_eq!(action(&check(&app, false).await, "api").0, "keep", "launched 21 s ago");
    advance(secs(8 * MIN)).await;
    assert_eq!(action(&check(&app, false).await, "api"), ("stop".into(), "done".into()));
}

#[tokio::test(start_paused = true)]
async fn ecs_stop_remembers_the_count_and_the_wake_restores_it() {
    let app = ecs_app("10m", "", 3);
    advance(secs(14 * MIN)).await;
    let report = check(&app, false).await;
    assert_eq!(action(&report, "web"), ("stop".into(), "done".into()), "{report}");
    assert_eq!(cloud(&app).service_desired("dev", "web"), 0);
    assert_eq!(cloud(&app).service_tag("dev", "web", DESIRED_COUNT_TAG).as_deref(), Some("3"));

    let r = api(&app, "GET", "web.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud(&app).service_desired("dev", "web"), 3);
    assert_eq!(cloud(&app).rules(L1).len(), 1);
    assert!(cloud(&app).violations().is_empty(), "{:?}", cloud(&app).violations());
}

#[tokio::test(start_paused = true)]
async fn without_a_state_table_waking_and_stopping_still_work() {
    let w = world(&[I1]);
    w.drop_state_table();
    let app = App::new(config(&ec2_rule_config("5m", "", &[I1])), w);
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    let report = check(&app, false).await;
    // No record of the wake: LaunchTime says when it started.
    assert_eq!(action(&report, "api"), ("stop".into(), "done".into()), "{report}");
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG);
}

#[tokio::test(start_paused = true)]
async fn the_stop_command_stops_one_rule_now_in_order() {
    let app = awake_app(&ec2_rule_config("30m", "", &[I1]), &[I1]).await;
    let v = app.handle(json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    assert_eq!(v["result"], "stopped");
    assert_eq!(cloud(&app).routes_to(L1, "api.dev.example.com"), LAMBDA_TG);
    assert_eq!(cloud(&app).instance_state(I1), InstanceState::Stopping);
    assert!(cloud(&app).violations().is_empty());
    let e = app.handle(json!({"autostop": "stop", "rule": "nope"}), None).await.unwrap_err();
    assert!(e.0.contains("no rule named `nope`"));
}

#[tokio::test(start_paused = true)]
async fn the_schedule_event_runs_the_idle_check() {
    let app = awake_app(&ec2_rule_config("5m", "", &[I1]), &[I1]).await;
    advance(secs(9 * MIN)).await; // idle 5 m + 3 m lag allowance
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/tests/fixtures/scheduled-event.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap(),
    )
    .unwrap();
    let report = app.handle(event, None).await.unwrap();
    assert_eq!(report["dry_run"], false);
    assert_eq!(action(&report, "api"), ("stop".into(), "done".into()));
}

/// The EMF lines with metric `name`, parsed, with their metric definitions checked.
fn emf(app: &App<FakeCloud>, name: &str) -> Vec<Value> {
    emf_lines(cloud(app), name)
        .into_iter()
        .inspect(|v| {
            let def = &v["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(def["Namespace"], "autostop");
            assert!(v["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000, "milliseconds");
            for m in def["Metrics"].as_array().unwrap() {
                assert!(v.get(m["Name"].as_str().unwrap()).is_some(), "every declared metric has a value");
                assert!(["Count", "Seconds"].contains(&m["Unit"].as_str().unwrap()));
            }
            for d in def["Dimensions"][0].as_array().unwrap() {
                assert!(v[d.as_str().unwrap()].is_string(), "every dimension has a value");
            }
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn wakes_stops_and_errors_are_published_as_emf_metrics() {
    let app = App::new(config(&ec2_rule_config("5m", "", &[I1])), world(&[I1]));
    cloud(&app).fail_next(Op::StartInstances, "InsufficientInstanceCapacity", 1);
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 503);
    let errors = emf(&app, "Errors");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0]["Code"].as_str(), errors[0]["Rule"].as_str()),
        (Some("InsufficientInstanceCapacity"), Some("api"))
    );

    advance(secs(2)).await;
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    let wakes = emf(&app, "Wakes");
    assert_eq!(wakes.len(), 1);
    let w = &wakes[0];
    // Woken by an API client; published by rule, and by rule and cause.
    assert_eq!(w["Cause"], "api", "{w}");
    assert_eq!(w["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Rule"], ["Rule", "Cause"]]), "{w}");
    // Boot 20 s, health 10 s later; emitted at the switch to the app.
    let (starting, waiting) = (w["TimeStarting"].as_f64().unwrap(), w["TimeWaitingForHealth"].as_f64().unwrap());
    assert!((19.0..=22.0).contains(&starting), "{w}");
    assert!((9.0..=12.0).contains(&waiting), "{w}");
    // From the first (failed) attempt: it includes the 2 s spent in `error`.
    assert_eq!(w["TimeToReady"].as_f64().unwrap(), starting + waiting + 2.0, "{w}");

    advance(secs(9 * MIN)).await;
    check(&app, false).await;
    let stops = emf(&app, "Stops");
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["Reason"], "idle");
    assert!(stops[0]["SecondsAwake"].as_f64().unwrap() >= 9.0 * 60.0, "{}", stops[0]);

    // The next wake reports how long the rule slept.
    advance(secs(31 + 10 * MIN)).await;
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "starting");
    let asleep = emf(&app, "SecondsAsleep");
    assert_eq!(asleep.len(), 1);
    assert!(asleep[0]["SecondsAsleep"].as_f64().unwrap() >= 10.0 * 60.0, "{}", asleep[0]);
}

/// A rule with `busy_when = { network_packets_in = 500 }` whose instance has basic monitoring:
/// one `NetworkPacketsIn` datapoint per 5 minutes, `per_5min` packets each.
async fn packets_under_basic_monitoring(per_5min: f64) -> (String, String) {
    let busy = "busy_when = { network_packets_in = 500 }";
    let app = awake_app(&ec2_rule_config("5m", busy, &[I1]), &[I1]).await;
    cloud(&app).basic_monitoring(I1);
    let mut last = (String::new(), String::new());
    for minute in 1..=15 {
        advance(secs(MIN)).await;
        let now = cloud(&app).now();
        if minute % 5 == 0 {
            let period_start = now - now.rem_euclid(300) - 300;
            cloud(&app).put_metric("AWS/EC2", "NetworkPacketsIn", &[("InstanceId", I1)], period_start, per_5min);
        }
        last = action(&check(&app, false).await, "api");
        if last.0 == "stop" {
            break;
        }
    }
    last
}

#[tokio::test(start_paused = true)]
async fn basic_monitoring_packets_are_compared_as_a_per_minute_rate() {
    // 2,000 packets in 5 minutes is 400 a minute: under 500, so idle (not 2,000 > 500).
    assert_eq!(packets_under_basic_monitoring(2_000.0).await, ("stop".into(), "done".into()));
    // 3,000 in 5 minutes is 600 a minute: busy, kept awake all along.
    assert_eq!(packets_under_basic_monitoring(3_000.0).await.0, "keep");
}

#[tokio::test(start_paused = true)]
async fn busy_when_cpu_percent_keeps_an_ecs_service_awake() {
    let app = ecs_app("5m", "busy_when = { cpu_percent = 5 }", 2);
    let cpu = |app: &App<FakeCloud>, pct: f64| {
        let now = cloud(app).now();
        cloud(app).put_metric(
            "AWS/ECS",
            "CPUUtilization",
            &[("ClusterName", "dev"), ("ServiceName", "web")],
            now - 60,
            pct,
        );
    };
    // A notebook crunching numbers: no requests, 40 % CPU.
    for minute in 1..=20 {
        advance(secs(MIN)).await;
        cpu(&app, 40.0);
        assert_eq!(action(&check(&app, false).await, "web").0, "keep", "minute {minute}");
    }
    // Idle at 1 %: stopped once the idle time has passed.
    let mut stopped = false;
    for _ in 1..=15 {
        advance(secs(MIN)).await;
        cpu(&app, 1.0);
        stopped |= action(&check(&app, false).await, "web") == ("stop".into(), "done".into());
    }
    assert!(stopped);
    assert_eq!(cloud(&app).service_desired("dev", "web"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stop_older_than_ten_minutes_no_longer_holds_wakes() {
    let app = App::new(config(&ec2_rule_config("5m", "", &[I1])), world(&[I1]));
    advance(secs(60 * MIN)).await;
    let now = cloud(&app).now();
    let crashed = |minutes_ago: i64| autostop::cloud::RuleState {
        phase: Phase::Stopping,
        stopping_since: Some(now - minutes_ago * 60),
        version: 3,
        ..autostop::cloud::RuleState::new("api")
    };
    // A checker claimed the stop 5 minutes ago and may still be at it: the wake waits.
    cloud(&app).seed_state(crashed(5));
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "stopping");
    assert_eq!(cloud(&app).calls(Op::StartInstances), 0);
    // Claimed 11 minutes ago: taken as crashed, the wake goes on.
    cloud(&app).seed_state(crashed(11));
    advance(secs(2)).await;
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "starting");
    assert_eq!(cloud(&app).calls(Op::StartInstances), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wake_left_unfinished_is_finished_by_the_idle_check_and_the_next_wake_counts_from_its_own_start() {
    let app = App::new(config(&ec2_rule_config("5m", "", &[I1])), world(&[I1]));
    advance(secs(60 * MIN)).await;
    let now = cloud(&app).now();
    let unfinished = autostop::cloud::RuleState {
        phase: Phase::Starting,
        wake_started_at: Some(now - 155),
        version: 4,
        ..autostop::cloud::RuleState::new("api")
    };
    // The next wake of such a rule counts from its own start, not from 155 s ago.
    cloud(&app).seed_state(unfinished.clone());
    let s = status(&app, "api.dev.example.com").await;
    assert_eq!((s["phase"].as_str(), s["elapsed_seconds"].as_u64()), (Some("starting"), Some(0)), "{s}");
    assert_eq!(cloud(&app).state_item("api").unwrap().wake_started_at, Some(now));

    // The idle check finishes an item left `starting` while everything sleeps.
    cloud(&app).set_instance_state(I1, InstanceState::Stopped);
    cloud(&app).seed_state(unfinished);
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("finish_stop".into(), "done".into()), "{report}");
    assert_eq!(cloud(&app).state_item("api").unwrap().phase, Phase::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_wake_by_browsers_only_is_recorded_and_published_when_the_traffic_is_switched() {
    let app = App::new(config(&ec2_rule_config("5m", "", &[I1])), world(&[I1]));
    // The page polls the status once a second until the switch; then the app answers the poll
    // and nothing reaches autostop again.
    let mut phase = String::new();
    for _ in 0..60 {
        phase = status(&app, "api.dev.example.com").await["phase"].as_str().unwrap().to_string();
        if cloud(&app).routes_to(L1, "api.dev.example.com") == TG_API {
            break;
        }
        advance(secs(1)).await;
    }
    assert_eq!(phase, "routing", "the last answer before the app took over");
    let state = cloud(&app).state_item("api").unwrap();
    assert_eq!((state.phase, state.wakes, state.warmups.len()), (Phase::Ready, 1, 1), "{state:?}");
    let wakes = emf(&app, "Wakes");
    assert_eq!(wakes.len(), 1);
    assert_eq!(wakes[0]["TimeToReady"].as_f64().unwrap(), state.warmups[0] as f64);
}

/// `n` rules with an instance each, awake for an hour without traffic, their standing rules laid
/// out, on a fake whose calls take 100 ms.
async fn many_idle_rules(n: usize) -> App<FakeCloud> {
    let cloud = FakeCloud::with_latency(Duration::from_millis(100));
    cloud.add_listener(L1);
    cloud.set_rule_quota(2 * n);
    let mut text = format!("listener_arns = [\"{L1}\"]\nidle = \"10m\"\n");
    for i in 0..n {
        let (id, tg) = (
            format!("i-{i:017x}"),
            format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t{i}/{i:016x}"),
        );
        text.push_str(&format!(
            "[[rules]]\nname = \"env{i}\"\nhosts = [\"env{i}.dev.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
        ));
        cloud.add_instance(&id, InstanceState::Running, secs(0));
        cloud.add_target_group(&tg, secs(0));
        cloud.register_instance(&tg, &id);
    }
    let app = App::new(config(&text), cloud);
    app.handle(json!({"autostop": "sync"}), None).await.unwrap();
    advance(secs(60 * MIN)).await;
    app.cloud().reset_calls();
    app
}

fn outcomes(report: &Value) -> Vec<String> {
    report["rules"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(start_paused = true)]
async fn many_idle_rules_stop_a_few_at_a_time_within_the_invocations_time() {
    let app = many_idle_rules(100).await;
    let start = tokio::time::Instant::now();
    let scheduled =
        json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let report = app.handle(scheduled, Some(secs(60))).await.unwrap();
    assert!(outcomes(&report).iter().all(|o| o == "done"), "{report}");
    assert_eq!(cloud(&app).calls(Op::StopInstances), 100);
    let most = cloud(&app).max_in_flight(Op::StopInstances);
    assert!((2..=8).contains(&most), "{most} StopInstances at once: in parallel, but bounded");
    assert!(start.elapsed() < secs(30), "took {:?}: one by one it would be 30 s", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn stops_that_do_not_fit_in_the_time_are_left_for_the_next_run() {
    let app = many_idle_rules(100).await;
    // 12 s left, 10 s of them kept back: stops begin only in the first 2 seconds.
    let report = check_with(&app, Some(secs(12))).await;
    let (done, deferred) = (
        outcomes(&report).iter().filter(|o| *o == "done").count(),
        outcomes(&report).iter().filter(|o| *o == "deferred").count(),
    );
    assert!(done > 0 && deferred > 0 && done + deferred == 100, "{done} done, {deferred} deferred");
    assert_eq!(cloud(&app).calls(Op::StopInstances), done);
    // The next run continues with the rest; nothing is stopped twice.
    advance(secs(2 * MIN)).await;
    let report = check_with(&app, Some(secs(60))).await;
    assert_eq!(outcomes(&report).iter().filter(|o| *o == "done").count(), deferred, "{report}");
    assert_eq!(cloud(&app).calls(Op::StopInstances), 100);
}

async fn check_with(app: &App<FakeCloud>, time_left: Option<Duration>) -> Value {
    app.handle(json!({"autostop": "idle-check", "dry_run": false}), time_left).await.expect("idle check runs")
}

/// `hibernate = true`: the idle stop hibernates an instance enabled for hibernation at launch,
/// and stops one that is not (AWS cannot hibernate it; the fake refuses `Hibernate=true` for it).
#[tokio::test(start_paused = true)]
async fn hibernate_hibernates_what_can_and_stops_the_rest() {
    let text = ec2_rule_config("5m", "", &[I1, I2]).replace(
        &format!("ec2 = {{ instance_ids = [\"{I1}\", \"{I2}\"] }}"),
        &format!("ec2 = {{ instance_ids = [\"{I1}\", \"{I2}\"], hibernate = true }}"),
    );
    assert!(text.contains("hibernate = true"));
    let app = App::new(config(&text), world(&[I1, I2]));
    app.cloud().enable_hibernation(I1);
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    advance(secs(10 * MIN)).await;
    let report = check(&app, false).await;
    assert_eq!(action(&report, "api"), ("stop".to_string(), "done".to_string()), "{report}");
    assert!(app.cloud().hibernated(I1), "enabled at launch: hibernated");
    assert!(!app.cloud().hibernated(I2), "not enabled: stopped");
    assert_eq!(app.cloud().instance_state(I2), InstanceState::Stopping);
}

/// A `web` rule over the Auto Scaling group `web` of (min, max, desired), whose instances are
/// in service 20 s after a change and healthy 10 s later; `asg` is the rule's resource lines.
fn asg_app(asg: &str, (min, max, desired): (u32, u32, u32)) -> App<FakeCloud> {
    let text = format!(
        "listener_arns = [\"{L1}\"]\nhold = \"3m\"\n[[rules]]\nname = \"web\"\nhosts = [\"web.dev.example.com\"]\n\
         target_group_arn = \"{TG_WEB}\"\n{asg}\n"
    );
    let world = FakeCloud::new();
    world.add_asg("web", min, max, desired, secs(20));
    world.add_target_group(TG_WEB, secs(10));
    world.attach_asg(TG_WEB, "web");
    world.add_listener(L1);
    App::new(config(&text), world)
}

/// An Auto Scaling group: the stop remembers min size and desired capacity in tags and sets
/// both to 0; the wake restores them; readiness is the target group's health.
#[tokio::test(start_paused = true)]
async fn an_auto_scaling_group_is_scaled_to_zero_and_restored() {
    let app = asg_app("asg = { name = \"web\" }\nidle = \"5m\"", (1, 4, 2));
    app.handle(json!({"autostop": "sync"}), None).await.unwrap();
    advance(secs(10 * MIN)).await;

    let report = check(&app, false).await;
    assert_eq!(action(&report, "web"), ("stop".to_string(), "done".to_string()), "{report}");
    assert_eq!(cloud(&app).asg_sizes("web"), (0, 0));
    assert_eq!(cloud(&app).asg_tag("web", "autostop:min-size").as_deref(), Some("1"));
    assert_eq!(cloud(&app).asg_tag("web", "autostop:desired-capacity").as_deref(), Some("2"));

    let r = api(&app, "GET", "web.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud(&app).asg_sizes("web"), (1, 2), "restored from the tags");
    assert_eq!(cloud(&app).routes_to(L1, "web.dev.example.com"), TG_WEB);
    let s = status(&app, "web.dev.example.com").await;
    assert_eq!(s["resources"][0]["state"], "in service (2/2)", "{s}");
}

/// `asg.desired` wins over the remembered capacity; a restore above the group's max is an
/// error page naming the fix, with no UpdateAutoScalingGroup call.
#[tokio::test(start_paused = true)]
async fn an_auto_scaling_group_restore_above_its_max_is_an_error() {
    let app = asg_app("asg = { name = \"web\", desired = 5 }", (0, 4, 0));
    let r = api(&app, "GET", "web.dev.example.com", "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "ValidationError", "{}", r.body);
    assert!(r.json()["error"]["action"].as_str().unwrap().contains("max size"), "{}", r.body);
    assert_eq!(cloud(&app).calls(Op::UpdateAutoScalingGroup), 0);
}
