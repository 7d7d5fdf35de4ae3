//! One wake, however many Lambda environments: separate `App`s share nothing but the cloud and
//! its state table, as Lambda execution environments do.

mod common;

use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op};
use autostop::cloud::{Cloud, InstanceState, RuleState};
use autostop::serve::hold::REDIRECT_PACE;
use autostop::state::transition::HOLD_SLOTS;
use autostop::state::Phase;
use autostop::wake::PROPAGATION;
use common::*;
use tokio::time::advance;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn text() -> String {
    format!(
        "listener_arns = [\"{L1}\", \"{L2}\"]\nhold = \"2m\"\n[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
    )
}

/// A stopped instance that boots in 30 s and is healthy 10 s later; `n` environments.
fn fleet(n: usize) -> (Arc<FakeCloud>, Vec<Arc<App<FakeCloud>>>) {
    let cloud = Arc::new(ec2_world(30, 10, &[L1, L2]));
    let apps = (0..n).map(|_| Arc::new(App::with_cloud(config(&text()), Arc::clone(&cloud)))).collect();
    (cloud, apps)
}

const AWS: [Op; 6] = [
    Op::DescribeInstances,
    Op::StartInstances,
    Op::DescribeTargetHealth,
    Op::DescribeRules,
    Op::CreateRule,
    Op::ModifyRule,
];

fn aws_calls(cloud: &FakeCloud) -> usize {
    AWS.iter().map(|op| cloud.calls(*op)).sum()
}

#[tokio::test(start_paused = true)]
async fn two_environments_racing_the_first_request_start_once() {
    let (cloud, apps) = fleet(2);
    let (a, b) = tokio::join!(status(&apps[0], "api.dev.example.com"), status(&apps[1], "api.dev.example.com"));
    assert_eq!(cloud.calls(Op::StartInstances), 1, "one start: {a} / {b}");
    assert_eq!(cloud.instance_state(I1), InstanceState::Pending);
    let phases = [a["phase"].as_str().unwrap(), b["phase"].as_str().unwrap()];
    assert!(phases.iter().all(|p| *p == "starting"), "{phases:?}");
}

#[tokio::test(start_paused = true)]
async fn an_observer_that_crashes_mid_lease_is_replaced_once_its_lease_runs_out() {
    let (cloud, apps) = fleet(1);
    // An environment took the lease a moment ago and died before it published anything.
    let now = cloud.now_ms();
    cloud.seed_state(RuleState {
        lease_holder: Some("env-crashed".into()),
        lease_until_ms: Some(now + 5_000),
        version: 7,
        ..RuleState::new("api")
    });
    cloud.reset_calls();
    let s = status(&apps[0], "api.dev.example.com").await;
    assert_eq!(s["phase"], "starting", "{s}");
    assert_eq!(aws_calls(&cloud), 0, "the lease holder observes, not this environment");
    advance(SECS(2)).await;
    status(&apps[0], "api.dev.example.com").await;
    assert_eq!(aws_calls(&cloud), 0, "still its lease");
    advance(SECS(4)).await; // the lease ran out: this environment takes over
    let s = status(&apps[0], "api.dev.example.com").await;
    assert_eq!(cloud.calls(Op::StartInstances), 1, "{s}");
    let item = cloud.state_item("api").unwrap();
    assert_eq!(item.phase, Phase::Starting);
    assert_ne!(item.lease_holder.as_deref(), Some("env-crashed"));
}

/// An API client as HTTP clients with retries behave: on a 503 it waits `Retry-After` and asks
/// again. Returns the final answer and how many 503s it got.
async fn client_with_retries(app: &App<FakeCloud>, host: &str) -> (Resp, usize) {
    let mut busy = 0;
    loop {
        let r = api(app, "POST", host, "/v1/items").await;
        match (r.status, r.header("retry-after")) {
            (503, Some(after)) => {
                busy += 1;
                tokio::time::sleep(SECS(after.parse().unwrap())).await;
            }
            _ => return (r, busy),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn held_requests_in_five_environments_all_get_their_307_with_one_switch_per_listener() {
    let (cloud, apps) = fleet(5);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, app) in apps.iter().enumerate() {
        for k in 0..4 {
            let app = Arc::clone(app);
            tasks.spawn(async move {
                tokio::time::sleep(Duration::from_millis(250 * (i * 4 + k) as u64)).await;
                client_with_retries(&app, "api.dev.example.com").await
            });
        }
    }
    let mut answered_at_once = 0;
    while let Some(r) = tasks.join_next().await {
        let (r, busy) = r.unwrap();
        assert_eq!(r.status, 307, "{}", r.body);
        answered_at_once += busy;
    }
    assert!(answered_at_once > 0, "20 clients, {HOLD_SLOTS} hold slots: the rest are answered at once");
    assert_eq!(cloud.calls(Op::StartInstances), 1);
    assert_eq!(cloud.calls(Op::ModifyRule), 2, "one switch per listener");
    assert_eq!(cloud.calls(Op::CreateRule), 2, "one standing rule per listener");
    for l in [L1, L2] {
        assert_eq!(cloud.routes_to(l, "api.dev.example.com"), TG_API);
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_environment_answers_from_the_item_after_the_first_woke_the_rule() {
    let (cloud, apps) = fleet(2);
    let first = status(&apps[0], "api.dev.example.com").await;
    assert_eq!(first["phase"], "starting");
    cloud.reset_calls();
    // Within the second, the page's next poll lands on another environment.
    advance(Duration::from_millis(400)).await;
    let second = status(&apps[1], "api.dev.example.com").await;
    assert_eq!(second["phase"], "starting");
    assert_eq!(second["resources"], first["resources"], "the status the first published");
    assert_eq!(aws_calls(&cloud), 0, "no AWS call, one GetItem");
    assert_eq!(cloud.calls(Op::GetItem), 1);
}

#[tokio::test(start_paused = true)]
async fn ten_browsers_polling_through_ten_environments_cost_about_one_observation_a_second() {
    let (cloud, apps) = fleet(10);
    for _ in 0..60usize {
        if cloud.routes_to(L1, "api.dev.example.com") == TG_API {
            break;
        }
        let mut polls = tokio::task::JoinSet::new();
        for app in &apps {
            let app = Arc::clone(app);
            polls.spawn(async move { status(&app, "api.dev.example.com").await });
        }
        while polls.join_next().await.is_some() {}
        advance(SECS(1)).await;
    }
    assert_eq!(cloud.routes_to(L1, "api.dev.example.com"), TG_API);
    assert_eq!(cloud.calls(Op::StartInstances), 1);
    let observations = cloud.calls(Op::DescribeInstances);
    assert!(observations <= 45, "about one a second over a 40 s wake, not one per environment: {observations}");
}

#[tokio::test(start_paused = true)]
async fn without_the_state_table_every_environment_still_wakes_the_rule() {
    let (cloud, apps) = fleet(3);
    cloud.drop_state_table();
    for app in &apps {
        assert_eq!(status(app, "api.dev.example.com").await["phase"], "starting");
    }
    let r = api(&apps[1], "GET", "api.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(cloud.routes_to(L1, "api.dev.example.com"), TG_API);
}

#[tokio::test(start_paused = true)]
async fn after_the_switch_the_wake_path_does_not_read_the_listeners_again() {
    let (cloud, apps) = fleet(3);
    assert_eq!(api(&apps[0], "POST", "api.dev.example.com", "/").await.status, 307);
    cloud.reset_calls();
    // Requests that raced the switch keep reaching autostop while it propagates, in any
    // environment: each is paced (REDIRECT_PACE), and none reads the listeners.
    let switched = tokio::time::Instant::now();
    for k in 0.. {
        advance(SECS(1)).await;
        if switched.elapsed() + REDIRECT_PACE >= PROPAGATION - SECS(2) {
            assert!(k >= 8, "{k} requests in the window");
            break;
        }
        let r = api(&apps[k % 3], "GET", "api.dev.example.com", "/again").await;
        assert_eq!(r.status, 307, "{}", r.body);
    }
    for op in [Op::DescribeRules, Op::DescribeTags, Op::ModifyRule, Op::CreateRule, Op::DescribeListeners] {
        assert_eq!(cloud.calls(op), 0, "{op}");
    }
}

/// An API client the load balancer keeps sending back to autostop after the switch (the change
/// has not reached every node yet) is paced: within PROPAGATION it follows at most 15 redirects,
/// fewer than HTTP clients allow. Past it, autostop answers 503 with Retry-After; and where a
/// listener lacks the rule (here, one deleted by hand) the wake's observer repairs it, and the
/// client is paced again while the repair propagates.
#[tokio::test(start_paused = true)]
async fn a_client_sent_back_after_the_switch_is_paced_then_told_to_retry_while_the_rule_is_repaired() {
    let (cloud, apps) = fleet(2);
    assert_eq!(api(&apps[0], "POST", "api.dev.example.com", "/").await.status, 307);
    let switched = tokio::time::Instant::now();
    let (mut redirects, mut told_to_retry) = (0, false);
    for k in 0..100 {
        let r = api(&apps[k % 2], "GET", "api.dev.example.com", "/again").await;
        if r.status != 307 {
            assert_eq!((r.status, r.header("retry-after").as_deref()), (503, Some("5")), "{}", r.body);
            told_to_retry = true;
            break;
        }
        redirects += 1;
    }
    assert!(redirects <= 15, "{redirects} redirects in {:?}", switched.elapsed());
    assert!(told_to_retry && switched.elapsed() >= PROPAGATION - REDIRECT_PACE, "{:?}", switched.elapsed());
    let rule = cloud.rules(L2).into_iter().find(|r| r.owner.as_deref() == Some("api")).unwrap();
    cloud.delete_rule_by_hand(&rule.arn);
    assert_eq!(cloud.routes_to(L2, "api.dev.example.com"), autostop::cloud::fake::LAMBDA_TG);
    advance(SECS(11)).await; // past the published ready status
    let r = api(&apps[1], "GET", "api.dev.example.com", "/late").await;
    assert_eq!(cloud.routes_to(L2, "api.dev.example.com"), TG_API, "repaired by the request path");
    assert_eq!(r.status, 307, "the repaired rule propagates from now: paced, not turned away: {}", r.body);
}

/// Lambda's concurrency limit as the ALB meets it: an invocation beyond `limit` running at once
/// is throttled, and the ALB answers 5xx.
#[derive(Clone)]
struct Concurrency(Arc<tokio::sync::Semaphore>);

impl Concurrency {
    async fn invoke(&self, app: &App<FakeCloud>, event: serde_json::Value) -> Option<serde_json::Value> {
        let _running = self.0.try_acquire().ok()?;
        Some(app.handle(event, None).await.expect("the handler answers"))
    }
}

/// A 20-job CI matrix waking one environment, under a concurrency limit of 20 (the template's
/// former reserved concurrency): only the rule's hold slots keep an environment for long, the
/// other jobs are answered at once and retry, so another host's request and the idle check
/// are never throttled, and every job gets its 307.
#[tokio::test(start_paused = true)]
async fn a_ci_matrix_waking_one_rule_never_throttles_other_hosts_or_the_idle_check() {
    let (cloud, apps) = fleet(22);
    let lambda = Concurrency(Arc::new(tokio::sync::Semaphore::new(20)));
    let mut jobs = tokio::task::JoinSet::new();
    for (k, app) in apps.iter().take(20).enumerate() {
        let (app, lambda, cloud) = (Arc::clone(app), lambda.clone(), Arc::clone(&cloud));
        jobs.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50 * k as u64)).await;
            // Through the ALB: once it routes the host to the app, the job is served there.
            while cloud.routes_to(L1, "api.dev.example.com") != TG_API {
                let event = alb_event("POST", "api.dev.example.com", "/v1/jobs", &[]);
                let Some(r) = lambda.invoke(&app, event).await.map(Resp::from_value) else {
                    tokio::time::sleep(SECS(1)).await; // throttled: the ALB's 5xx, retried
                    continue;
                };
                match (r.status, r.header("retry-after")) {
                    (503, Some(after)) => tokio::time::sleep(SECS(after.parse().unwrap())).await,
                    (307, _) => {}
                    (status, _) => return Err(format!("{status}: {}", r.body)),
                }
            }
            Ok(())
        });
    }
    for second in 2..60 {
        tokio::time::sleep_until(tokio::time::Instant::now() + SECS(1)).await;
        let page = alb_event("GET", "other.dev.example.com", "/", &[("accept", CHROME_ACCEPT)]);
        assert!(lambda.invoke(&apps[20], page).await.is_some(), "another host throttled at {second} s");
        if second % 20 == 0 {
            let check = serde_json::json!({"autostop": "idle-check", "dry_run": true});
            assert!(lambda.invoke(&apps[21], check).await.is_some(), "the idle check throttled at {second} s");
        }
    }
    while let Some(served) = jobs.join_next().await {
        served.unwrap().expect("every job reaches the app");
    }
    assert_eq!(cloud.calls(Op::StartInstances), 1);
}
