//! Lifecycle events on the strict fake: each transition is put once, fleet-wide, by the
//! environment whose conditional write made it, never by every observer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op};
use autostop::cloud::InstanceState;
use common::*;
use serde_json::{json, Value};
use tokio::time::advance;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const API: &str = "api.dev.example.com";

fn text() -> String {
    format!(
        "listener_arns = [\"{L1}\"]\nhold = \"2m\"\nevents = {{ bus = \"dev-events\" }}\n[[rules]]\nname = \"api\"\nhosts = [\"{API}\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
    )
}

/// The events put so far, as (detail type, detail).
fn events(cloud: &FakeCloud) -> Vec<(String, Value)> {
    let all = cloud.events();
    assert!(all.iter().all(|(bus, _, _)| bus == "dev-events"), "{all:?}");
    all.into_iter().map(|(_, kind, detail)| (kind, serde_json::from_str(&detail).unwrap())).collect()
}

fn kinds(cloud: &FakeCloud) -> Vec<String> {
    events(cloud).into_iter().map(|(k, _)| k).collect()
}

#[tokio::test(start_paused = true)]
async fn three_environments_racing_a_wake_put_one_started_and_one_ready() {
    let cloud = Arc::new(ec2_world(30, 10, &[L1]));
    let apps: Vec<_> = (0..3).map(|_| App::with_cloud(config(&text()), Arc::clone(&cloud))).collect();
    for _ in 0..40 {
        let polls = apps.iter().map(|a| status(a, API));
        let seen: Vec<Value> = futures_util::future::join_all(polls).await;
        if seen.iter().all(|s| s["phase"] == "ready") {
            break;
        }
        advance(SECS(2)).await;
    }
    assert_eq!(cloud.routes_to(L1, API), TG_API);
    assert_eq!(kinds(&cloud), vec!["Wake Started", "Environment Ready"]);
    let (_, ready) = &events(&cloud)[1];
    assert_eq!((ready["rule"].as_str(), ready["hosts"][0].as_str()), (Some("api"), Some(API)));
    assert_eq!(ready["cause"], "browser");
    assert!(ready["wake_seconds"].as_i64().is_some_and(|s| (40..=60).contains(&s)), "{ready}");

    // Stopped, an override, and nothing more however often it is looked at.
    apps[0].handle(json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    let until = json!({"autostop": "keep-awake", "rule": "api", "for": "1h"});
    let _ = apps[1].handle(until, None).await.unwrap();
    for app in &apps {
        app.handle(json!({"autostop": "status"}), None).await.unwrap();
    }
    let seen = kinds(&cloud);
    assert_eq!(seen[2..4], ["Environment Stopped".to_string(), "Override Set".to_string()], "{seen:?}");
    assert_eq!(events(&cloud)[2].1["stopped_by"], Value::Null, "an operator's stop names nobody");
    let (_, kept) = &events(&cloud)[3];
    assert_eq!(kept["override"]["mode"], "awake", "{kept}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_stop_is_put_with_its_code_and_a_failed_put_loses_nothing_else() {
    let cloud = Arc::new(ec2_world(5, 5, &[L1]));
    cloud.add_instance(I1, InstanceState::Running, SECS(5));
    let app = App::with_cloud(config(&text()), Arc::clone(&cloud));
    cloud.fail_next(Op::StopInstances, "UnauthorizedOperation", 100);
    app.handle(json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    let failed: Vec<_> = events(&cloud).into_iter().filter(|(k, _)| k == "Stop Failed").collect();
    assert_eq!(failed.len(), 1, "{:?}", kinds(&cloud));
    assert_eq!(failed[0].1["error_code"], "UnauthorizedOperation", "{}", failed[0].1);

    // EventBridge refuses the next put: the override is saved all the same.
    cloud.fail_next(Op::PutEvents, "AccessDeniedException", 1);
    let before = cloud.events().len();
    app.handle(json!({"autostop": "sleep", "rule": "api", "for": "1h"}), None).await.unwrap();
    assert_eq!(cloud.state_item("api").unwrap().override_mode.as_deref(), Some("asleep"));
    assert_eq!(cloud.events().len(), before, "the refused event is not there, and nothing failed for it");
}
