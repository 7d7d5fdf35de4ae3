//! Property: for random configs with overlapping exact and wildcard hosts, driven through random
//! sequences of wakes, stops, idle checks and syncs on the strict fake, after every step each
//! configured host routes to its own app exactly when its rule is ready (its state item says
//! `ready`), and to autostop's Lambda otherwise; and no host ever routes to a target group whose
//! targets are stopping or stopped.

mod common;

use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, LAMBDA_TG};
use autostop::cloud::InstanceState;
use autostop::state::Phase;
use common::*;
use proptest::prelude::*;
use serde_json::json;

/// Host patterns that overlap in every way ALB and autostop must agree on.
const EXACT: [&str; 5] = ["a.x.com", "b.x.com", "c.a.x.com", "d.b.x.com", "e.c.a.x.com"];
const WILD: [&str; 4] = ["*.x.com", "*.a.x.com", "*.b.x.com", "*.c.a.x.com"];

fn tg(k: usize) -> String {
    format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/r{k}/{k:016x}")
}

fn instance(k: usize) -> String {
    format!("i-{k:017x}")
}

#[derive(Debug, Clone)]
enum Op {
    /// A held API request to the rule's first host.
    Wake(usize),
    /// The operator's stop.
    Stop(usize),
    /// Time passes, then the scheduled idle check runs.
    IdleCheck(u64),
    Sync,
}

/// Up to five rules, each with one to three distinct patterns, no pattern in two rules.
fn configs() -> impl Strategy<Value = Vec<Vec<&'static str>>> {
    let pool: Vec<&'static str> = EXACT.iter().chain(WILD.iter()).copied().collect();
    (Just(pool.clone()).prop_shuffle(), proptest::collection::vec(1usize..=3, 1..=5)).prop_map(|(pool, sizes)| {
        let mut rest = pool.into_iter();
        sizes.into_iter().map(|n| rest.by_ref().take(n).collect::<Vec<_>>()).filter(|h| !h.is_empty()).collect()
    })
}

fn ops(rules: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..rules).prop_map(Op::Wake),
        2 => (0..rules).prop_map(Op::Stop),
        2 => (0u64..40).prop_map(Op::IdleCheck),
        1 => Just(Op::Sync),
    ];
    proptest::collection::vec(op, 1..10)
}

fn config_text(rules: &[Vec<&str>]) -> String {
    let mut text = format!("listener_arns = [\"{L1}\"]\nhold = \"5m\"\nidle = \"10m\"\n");
    for (k, hosts) in rules.iter().enumerate() {
        let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
        text.push_str(&format!(
            "[[rules]]\nname = \"r{k}\"\nhosts = [{}]\ntarget_group_arn = \"{}\"\nec2 = {{ instance_ids = [\"{}\"] }}\n",
            hosts.join(", "),
            tg(k),
            instance(k)
        ));
    }
    text
}

/// Hosts to probe: every exact pattern and one host under every wildcard, configured or not.
fn probes() -> Vec<String> {
    let mut v: Vec<String> = EXACT.iter().map(|h| h.to_string()).collect();
    v.extend(WILD.iter().map(|w| w.replace('*', "zz")));
    v.push("zz.zz.c.a.x.com".into());
    v
}

fn check_routing(app: &App<FakeCloud>, step: &str) -> Result<(), TestCaseError> {
    let cloud = app.cloud();
    for host in probes() {
        let to = cloud.routes_to(L1, &host);
        let want = match app.config().rule_for_host(&host) {
            Some(rule) if cloud.state_item(&rule.name).is_some_and(|s| s.phase == Phase::Ready) => {
                rule.app_group().to_string()
            }
            _ => LAMBDA_TG.to_string(),
        };
        prop_assert_eq!(&to, &want, "{} -> {} after {}; rules {:?}", host, to, step, cloud.rules(L1));
    }
    prop_assert!(cloud.violations().is_empty(), "after {}: {:?}", step, cloud.violations());
    Ok(())
}

async fn run(rules: Vec<Vec<&'static str>>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let cloud = Arc::new(FakeCloud::new());
    cloud.add_listener(L1);
    for k in 0..rules.len() {
        cloud.add_instance(&instance(k), InstanceState::Stopped, Duration::from_secs(20));
        cloud.add_target_group(&tg(k), Duration::from_secs(10));
        cloud.register_instance(&tg(k), &instance(k));
    }
    let app = App::with_cloud(config(&config_text(&rules)), Arc::clone(&cloud));
    check_routing(&app, "start")?;
    for op in ops {
        match &op {
            Op::Wake(k) => {
                // As the ALB would: a host already routed to its app never reaches autostop.
                let host = rules[*k][0].replace('*', "w");
                if cloud.routes_to(L1, &host) == LAMBDA_TG {
                    let r = api(&app, "GET", &host, "/").await;
                    prop_assert_eq!(r.status, 307, "{:?}: {}", op, r.body);
                }
            }
            Op::Stop(k) => {
                let v = app.handle(json!({"autostop": "stop", "rule": format!("r{k}")}), None).await;
                prop_assert!(v.is_ok(), "{:?}: {:?}", op, v);
            }
            Op::IdleCheck(minutes) => {
                tokio::time::advance(Duration::from_secs(minutes * 60)).await;
                let v = app.handle(json!({"autostop": "idle-check", "dry_run": false}), None).await;
                prop_assert!(v.is_ok(), "{:?}: {:?}", op, v);
            }
            Op::Sync => {
                let v = app.handle(json!({"autostop": "sync"}), None).await;
                prop_assert!(v.is_ok(), "{:?}: {:?}", op, v);
            }
        }
        check_routing(&app, &format!("{op:?}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_host_routes_to_its_app_exactly_when_its_rule_is_ready((rules, ops) in configs().prop_flat_map(|r| {
        let n = r.len();
        (Just(r), ops(n))
    })) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(run(rules, ops))?;
    }
}
