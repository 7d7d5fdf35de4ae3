//! Dependencies on the in-memory cloud with a paused clock: a wake readies its dependencies
//! first, in order, waits `delay`, then starts the rule; stops run in reverse order; a
//! dependency is kept while a rule that needs it is awake.

mod common;

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op};
use autostop::cloud::InstanceState;
use autostop::state::Phase;
use common::*;
use serde_json::{json, Value};
use tokio::time::{advance, Instant};

const HOST: &str = "api.dev.example.com";
const DB: &str = "i-0aaaaaaaaaaaaaaaa";

/// `db` (an instance, no hosts: a dependency only) boots in 30 s; `api` depends on it with a
/// 10 s delay and boots in 20 s, healthy 10 s after.
fn app() -> App<FakeCloud> {
    let text = format!(
        r#"
listener_arns = ["{L1}"]
hold = "3m"
idle = "5m"
metrics_lag = "0s"

[[rules]]
name = "db"
ec2 = {{ instance_ids = ["{DB}"] }}

[[rules]]
name = "api"
hosts = ["{HOST}"]
target_group_arn = "{TG_API}"
depends_on = ["db"]
delay = "10s"
ec2 = {{ instance_ids = ["{I1}"] }}
"#
    );
    let cloud = ec2_world(20, 10, &[L1]);
    cloud.add_instance(DB, InstanceState::Stopped, Duration::from_secs(30));
    App::new(config(&text), cloud)
}

async fn check(app: &App<FakeCloud>) -> Value {
    app.handle(json!({"autostop": "idle-check"}), None).await.expect("idle check runs")
}

fn action<'a>(report: &'a Value, rule: &str) -> &'a str {
    report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).unwrap()["action"].as_str().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_wake_readies_the_dependency_first_then_waits_the_delay() {
    let app = app();
    let t0 = Instant::now();
    let page = browser(&app, HOST).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Readying <code>db</code>"), "the dependency is a step: {}", page.body);
    assert!(page.body.contains(r#"class="current" data-phase="dependency" data-rule="db""#), "{}", page.body);
    assert_eq!(app.cloud().instance_state(DB), InstanceState::Pending);
    assert_eq!(app.cloud().instance_state(I1), InstanceState::Stopped, "not before its dependency is ready");

    // Poll as the progress page does until the app answers.
    let (mut db_ready_at, mut api_started_at, mut elapsed) = (None, None, 0);
    while app.cloud().routes_to(L1, HOST) != TG_API {
        advance(Duration::from_secs(1)).await;
        let s = status(&app, HOST).await;
        // The wake's clock runs from the first request, through the dependency to its own start.
        let now = s["elapsed_seconds"].as_u64().unwrap_or(0);
        assert!(now >= elapsed, "elapsed went back from {elapsed} s to {now} s: {s}");
        elapsed = now;
        let db = s["dependencies"].as_array().and_then(|d| d.first()).map(|d| d["phase"].clone());
        if db_ready_at.is_none() && (db == Some(json!("ready")) || s["dependencies"].is_null()) {
            db_ready_at = Some(Instant::now());
        }
        if api_started_at.is_none() && app.cloud().instance_state(I1) != InstanceState::Stopped {
            api_started_at = Some(Instant::now());
        }
        assert!(t0.elapsed() < Duration::from_secs(180), "never ready: {s}");
    }
    let db_ready_at = db_ready_at.expect("the dependency was seen ready");
    let api_started_at = api_started_at.expect("api started");
    assert!(api_started_at.duration_since(db_ready_at) >= Duration::from_secs(10), "the delay after db is ready");
    assert_eq!(app.cloud().calls(Op::StartInstances), 2, "db once, api once");
    assert!(db_ready_at.duration_since(t0) >= Duration::from_secs(30), "db boots in 30 s");
    assert!(t0.elapsed() >= Duration::from_secs(30 + 10 + 20 + 10), "db, delay, api boot, health: {:?}", t0.elapsed());
    assert_eq!(app.cloud().state_item("db").unwrap().phase, Phase::Ready, "ready without a target group");
}

#[tokio::test(start_paused = true)]
async fn stops_run_in_reverse_order_and_a_needed_dependency_stays() {
    let app = app();
    assert_eq!(api(&app, "GET", HOST, "/").await.status, 307);
    assert_eq!(app.cloud().instance_state(DB), InstanceState::Running);

    // While api is awake, db cannot be stopped by hand, and the idle check keeps it.
    let r = app.handle(json!({"autostop": "stop", "rule": "db"}), None).await.unwrap();
    assert_eq!(r["result"], "backed_off", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("`api` depends on it and is awake"), "{r}");
    assert_eq!(app.cloud().instance_state(DB), InstanceState::Running);

    advance(Duration::from_secs(10 * 60)).await;
    let first = check(&app).await;
    assert_eq!(action(&first, "api"), "stop", "{first}");
    assert_eq!(action(&first, "db"), "keep", "api was awake when decided: {first}");
    assert_eq!(app.cloud().calls(Op::StopInstances), 1);
    advance(Duration::from_secs(60)).await;
    let second = check(&app).await;
    assert_eq!(action(&second, "db"), "stop", "{second}");
    assert_eq!(app.cloud().calls(Op::StopInstances), 2);
    assert_eq!(app.cloud().instance_state(I1), InstanceState::Stopped);
}

/// A dependency found stopped under an awake dependent (stopped by hand) is started again.
#[tokio::test(start_paused = true)]
async fn a_dependency_stopped_by_hand_under_its_dependent_is_started() {
    let app = app();
    assert_eq!(api(&app, "GET", HOST, "/").await.status, 307);
    app.cloud().set_instance_state(DB, InstanceState::Stopped);
    let report = check(&app).await;
    assert_eq!(action(&report, "db"), "start", "{report}");
    assert_eq!(app.cloud().instance_state(DB), InstanceState::Running);
}

/// `db` as an RDS instance and an Aurora cluster: the wake starts both and `db` is ready when
/// both are `available`; the idle stop stops both; a database RDS started again after 7 stopped
/// days is stopped again by the next check, which says why.
#[tokio::test(start_paused = true)]
async fn rds_databases_wake_stop_and_are_stopped_again_after_the_7_day_restart() {
    let text = format!(
        r#"
listener_arns = ["{L1}"]
idle = "5m"
metrics_lag = "0s"
[[rules]]
name = "db"
rds = {{ instances = ["dev-db"], clusters = ["dev-aurora"] }}
"#
    );
    let cloud = FakeCloud::new();
    cloud.add_listener(L1);
    cloud.add_database("dev-db", false, "stopped", Duration::from_secs(120));
    cloud.add_database("dev-aurora", true, "stopped", Duration::from_secs(90));
    let app = App::new(config(&text), cloud);

    let s = app.handle(json!({"autostop": "wake", "rule": "db"}), None).await.unwrap();
    assert_eq!(s["phase"], "starting", "{s}");
    assert_eq!(app.cloud().database_status("dev-db", false), "starting");
    assert_eq!(app.cloud().database_status("dev-aurora", true), "starting");
    advance(Duration::from_secs(100)).await;
    let s = app.handle(json!({"autostop": "wake", "rule": "db"}), None).await.unwrap();
    assert_eq!(s["phase"], "starting", "the instance is still starting: {s}");
    advance(Duration::from_secs(30)).await;
    let s = app.handle(json!({"autostop": "wake", "rule": "db"}), None).await.unwrap();
    assert_eq!(s["phase"], "ready", "{s}");
    let kinds: Vec<&str> = s["resources"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["rds", "rds-cluster"]);

    advance(Duration::from_secs(10 * 60)).await;
    let report = check(&app).await;
    assert_eq!(action(&report, "db"), "stop", "{report}");
    advance(Duration::from_secs(200)).await;
    assert_eq!(app.cloud().database_status("dev-db", false), "stopped");
    assert_eq!(app.cloud().database_status("dev-aurora", true), "stopped");

    // Seven days on, RDS starts them again by itself.
    advance(Duration::from_secs(7 * 86_400)).await;
    app.cloud().auto_start_database("dev-db", false);
    let report = check(&app).await;
    assert_eq!(action(&report, "db"), "stop", "{report}");
    let reason = report["rules"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("after 7 stopped days"), "{reason}");
    assert_eq!(app.cloud().database_status("dev-db", false), "stopping");
    assert_eq!(app.cloud().calls(Op::StopDBInstance), 2);
}

/// RDS user guide, "Viewing instance status": a database serves while backing up, so its wake
/// is ready; an idle stop of it cannot be made yet (RDS stops only an `available` one), so the
/// rule stays `stopping`, no sleep is counted, and a later check stops it once it is available;
/// a database that ran out of storage is an error saying what to do.
#[tokio::test(start_paused = true)]
async fn a_busy_database_serves_its_stop_waits_for_available_and_a_full_one_says_what_to_do() {
    let text = format!(
        "listener_arns = [\"{L1}\"]\nidle = \"5m\"\nmetrics_lag = \"0s\"\n\
         [[rules]]\nname = \"db\"\nhourly_cost = 1.0\nrds = {{ instances = [\"dev-db\"] }}\n\
         [[rules]]\nname = \"full\"\nrds = {{ instances = [\"dev-full\"] }}\n"
    );
    let cloud = FakeCloud::new();
    cloud.add_listener(L1);
    cloud.add_database("dev-db", false, "backing-up", Duration::from_secs(60));
    cloud.add_database("dev-full", false, "storage-full", Duration::from_secs(60));
    let app = App::new(config(&text), cloud);

    let s = app.handle(json!({"autostop": "wake", "rule": "db"}), None).await.unwrap();
    assert_eq!(s["phase"], "ready", "backing up, it serves: {s}");
    advance(Duration::from_secs(10 * 60)).await;
    let report = check(&app).await;
    let db = report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == "db").unwrap().clone();
    assert_eq!((db["action"].as_str(), db["outcome"].as_str()), (Some("stop"), Some("partial")), "{db}");
    assert_eq!(app.cloud().calls(Op::StopDBInstance), 0, "RDS stops only an available database");
    let item = app.cloud().state_item("db").unwrap();
    assert_eq!((item.phase, item.stopped_at), (Phase::Stopping, None), "not recorded stopped");
    assert_eq!(app.status().await.rules[0].hours_asleep_this_month, 0.0, "nothing saved yet");

    app.cloud().set_database_status("dev-db", false, "available");
    let report = check(&app).await;
    assert_eq!(action(&report, "db"), "stop", "{report}");
    assert_eq!(app.cloud().calls(Op::StopDBInstance), 1);
    assert_eq!(app.cloud().state_item("db").unwrap().phase, Phase::Stopped);

    let s = app.handle(json!({"autostop": "wake", "rule": "full"}), None).await.unwrap();
    assert_eq!((s["phase"].as_str(), s["error"]["code"].as_str()), (Some("error"), Some("storage-full")), "{s}");
    assert!(s["error"]["action"].as_str().unwrap().contains("allocated storage"), "{s}");
}

/// A read replica cannot be stopped: the stop leaves it running (and says so) and stops the
/// rest; a wake of a rule whose database is missing is an error page naming the fix.
#[tokio::test(start_paused = true)]
async fn a_read_replica_is_left_running_and_a_missing_database_is_an_error() {
    let text = format!(
        "listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"db\"\nrds = {{ instances = [\"dev-db\", \"dev-replica\"] }}\n\
         [[rules]]\nname = \"gone\"\nrds = {{ instances = [\"nope\"] }}\n"
    );
    let cloud = FakeCloud::new();
    cloud.add_listener(L1);
    cloud.add_database("dev-db", false, "available", Duration::from_secs(60));
    cloud.add_database("dev-replica", false, "available", Duration::from_secs(60));
    cloud.make_read_replica("dev-replica", "dev-db");
    let app = App::new(config(&text), cloud);
    let r = app.handle(json!({"autostop": "stop", "rule": "db"}), None).await.unwrap();
    assert_eq!(r["result"], "stopped", "{r}");
    assert_eq!(app.cloud().database_status("dev-db", false), "stopping");
    assert_eq!(app.cloud().database_status("dev-replica", false), "available");
    let s = app.handle(json!({"autostop": "wake", "rule": "gone"}), None).await.unwrap();
    assert_eq!((s["phase"].as_str(), s["error"]["code"].as_str()), (Some("error"), Some("DBInstanceNotFound")), "{s}");
    assert_eq!(app.cloud().calls(Op::StartDBInstance), 0);
}

/// "Awake" means any of a rule's resources: a dependent that is only an Auto Scaling group
/// keeps its database from an operator's stop just as instances would.
#[tokio::test(start_paused = true)]
async fn a_dependent_group_keeps_its_database_from_a_stop() {
    let text = format!(
        "listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"db\"\nrds = {{ instances = [\"dev-db\"] }}\n\
         [[rules]]\nname = \"web\"\nhosts = [\"web.dev.example.com\"]\ntarget_group_arn = \"{TG_WEB}\"\n\
         depends_on = [\"db\"]\nasg = {{ name = \"web\" }}\n"
    );
    let cloud = FakeCloud::new();
    cloud.add_listener(L1);
    cloud.add_target_group(TG_WEB, Duration::from_secs(10));
    cloud.add_asg("web", 1, 4, 2, Duration::from_secs(20));
    cloud.attach_asg(TG_WEB, "web");
    cloud.add_database("dev-db", false, "available", Duration::from_secs(60));
    let app = App::new(config(&text), cloud);
    let r = app.handle(json!({"autostop": "stop", "rule": "db"}), None).await.unwrap();
    assert_eq!(r["result"], "backed_off", "{r}");
    assert_eq!(app.cloud().database_status("dev-db", false), "available");
    assert_eq!(app.cloud().calls(Op::StopDBInstance), 0);
}
