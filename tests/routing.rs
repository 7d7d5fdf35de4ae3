//! Standing listener rules on the strict fake: after every step, where would the ALB send each
//! configured host? Not only which calls were made.

mod common;

use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op, LAMBDA_TG};
use autostop::cloud::{Cloud, InstanceState, RuleChange, Weighted};
use autostop::config::standing::DERIVED_BASE;
use common::*;
use serde_json::json;
use tokio::time::advance;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const TG_SPECIAL: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/special/1a2b3c4d5e6f7a8b";
const I3: &str = "i-0aaaaaaaaaaaaaaa3";

/// `*.dev.example.com` (ECS, TG_WEB) over `api.dev.example.com` (EC2 I1, TG_API), in that
/// config order: the wildcard comes first in the file, and must still come last on the ALB.
fn overlapping() -> String {
    format!(
        r#"
listener_arns = ["{L1}", "{L2}"]
hold = "2m"
[[rules]]
name = "wild"
hosts = ["*.dev.example.com"]
target_group_arn = "{TG_WEB}"
ecs = {{ cluster = "dev", service = "web" }}
[[rules]]
name = "api"
hosts = ["api.dev.example.com"]
target_group_arn = "{TG_API}"
ec2 = {{ instance_ids = ["{I1}"] }}
"#
    )
}

fn world() -> Arc<FakeCloud> {
    let w = FakeCloud::new();
    w.add_instance(I1, InstanceState::Stopped, SECS(20));
    w.add_target_group(TG_API, SECS(10));
    w.register_instance(TG_API, I1);
    w.add_service("dev", "web", 0, SECS(20));
    w.add_target_group(TG_WEB, SECS(10));
    w.attach_service(TG_WEB, "dev", "web");
    w.add_listener(L1);
    w.add_listener(L2);
    Arc::new(w)
}

/// Where each of `hosts` goes, on every listener (they must agree).
fn routes(w: &FakeCloud, hosts: &[&str]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| {
            let to = w.routes_to(L1, h);
            assert_eq!(to, w.routes_to(L2, h), "listeners disagree on {h}");
            to
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_awake_wildcard_never_captures_a_sleeping_exact_host() {
    let w = world();
    let app = App::with_cloud(config(&overlapping()), Arc::clone(&w));
    let hosts = ["api.dev.example.com", "docs.dev.example.com"];

    // Wake the wildcard only.
    assert_eq!(api(&app, "GET", "docs.dev.example.com", "/").await.status, 307);
    assert_eq!(routes(&w, &hosts), vec![LAMBDA_TG, TG_WEB], "api sleeps: its requests reach autostop");
    assert_eq!(w.instance_state(I1), InstanceState::Stopped, "nothing of api was started");

    // Wake api too.
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    assert_eq!(routes(&w, &hosts), vec![TG_API, TG_WEB]);

    // Stop api: its host goes back to autostop, the wildcard's hosts stay with their app.
    let v = app.handle(json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    assert_eq!(v["result"], "stopped", "{v}");
    assert_eq!(routes(&w, &hosts), vec![LAMBDA_TG, TG_WEB]);
    let prio: Vec<(u32, Option<String>)> = w.rules(L1).into_iter().map(|r| (r.priority, r.owner)).collect();
    assert_eq!(prio, vec![(DERIVED_BASE, Some("api".into())), (DERIVED_BASE + 1, Some("wild".into()))]);
    assert!(w.violations().is_empty(), "{:?}", w.violations());
}

#[tokio::test(start_paused = true)]
async fn a_target_group_no_rule_references_is_attached_again_so_the_wake_can_finish() {
    let w = world();
    let app = App::with_cloud(config(&overlapping()), Arc::clone(&w));
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "starting");
    advance(SECS(21)).await;
    // Someone deletes the standing rules by hand while the instance boots: nothing references
    // the app's group any more, and the ALB stops health-checking it (Target.NotInUse).
    for l in [L1, L2] {
        for r in w.rules(l).into_iter().filter(|r| r.owner.as_deref() == Some("api")) {
            w.delete_rule_by_hand(&r.arn);
        }
    }
    let s = status(&app, "api.dev.example.com").await;
    assert_eq!(s["phase"], "waiting_for_health");
    assert!(s["message"].as_str().unwrap().contains("attaching the target group"), "{s}");
    assert_eq!(routes(&w, &["api.dev.example.com"]), vec![LAMBDA_TG], "recreated, still to autostop");

    // The group is checked from its re-attachment: initial for 10 s, then healthy, then routed.
    advance(SECS(5)).await;
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "waiting_for_health");
    advance(SECS(6)).await;
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    assert_eq!(routes(&w, &["api.dev.example.com"]), vec![TG_API]);
}

#[tokio::test(start_paused = true)]
async fn a_wake_with_the_old_design_would_wait_forever_at_not_in_use() {
    // Control for the test above: without any rule referencing the group, a running instance
    // never becomes healthy in the strict fake, as on AWS.
    let w = world();
    w.set_instance_state(I1, InstanceState::Running);
    advance(SECS(600)).await;
    let h = autostop::cloud::Cloud::target_health(w.as_ref(), TG_API).await.unwrap();
    assert_eq!((h.healthy, h.total, h.not_in_use), (0, 0, 1));
}

fn sync_config(rules: &str) -> String {
    format!("listener_arns = [\"{L1}\"]\nhold = \"2m\"\n{rules}")
}

const API: &str = r#"
[[rules]]
name = "api"
hosts = ["api.x.com", "*.api.x.com"]
target_group_arn = "TG_API"
ec2 = { instance_ids = ["I1"] }
"#;
const WEB: &str = r#"
[[rules]]
name = "web"
hosts = ["web.x.com"]
target_group_arn = "TG_WEB"
ecs = { cluster = "dev", service = "web" }
"#;
const SPECIAL: &str = r#"
[[rules]]
name = "special"
hosts = ["special.api.x.com"]
target_group_arn = "TG_SPECIAL"
ec2 = { instance_ids = ["I3"] }
"#;

fn rules_text(parts: &[&str]) -> String {
    parts
        .concat()
        .replace("TG_API", TG_API)
        .replace("TG_WEB", TG_WEB)
        .replace("TG_SPECIAL", TG_SPECIAL)
        .replace("I1", I1)
        .replace("I3", I3)
}

async fn sync(app: &App<FakeCloud>) -> serde_json::Value {
    app.handle(json!({"autostop": "sync"}), None).await.expect("sync runs")
}

fn layout(w: &FakeCloud) -> Vec<(u32, String, Vec<String>)> {
    w.rules(L1).into_iter().map(|r| (r.priority, r.owner.unwrap_or_default(), r.hosts)).collect()
}

#[tokio::test(start_paused = true)]
async fn sync_creates_standing_rules_and_follows_config_changes() {
    let w = world();
    w.add_instance(I3, InstanceState::Stopped, SECS(20));
    w.add_target_group(TG_SPECIAL, SECS(10));
    w.register_instance(TG_SPECIAL, I3);

    // 1. Two rules that overlap nothing: one ALB rule each.
    let app = App::with_cloud(config(&sync_config(&rules_text(&[API, WEB]))), Arc::clone(&w));
    let v = sync(&app).await;
    assert_eq!(v["listeners"][0]["created"], 2, "{v}");
    let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        layout(&w),
        vec![
            (DERIVED_BASE, "api".into(), h(&["api.x.com", "*.api.x.com"])),
            (DERIVED_BASE + 1, "web".into(), h(&["web.x.com"]))
        ]
    );
    assert_eq!(
        sync(&app).await["listeners"][0],
        json!({"listener": L1, "created": 0, "modified": 0, "moved": 0, "deleted": 0, "kept": []}),
        "idempotent"
    );
    // api wakes and is awake from now on.
    assert_eq!(api(&app, "GET", "pr-1.api.x.com", "/").await.status, 307);

    // 2. A new rule claims a host under api's wildcard: api is split so the exact host of
    //    `special` comes before `*.api.x.com`, which would otherwise capture it.
    let app = App::with_cloud(config(&sync_config(&rules_text(&[API, WEB, SPECIAL]))), Arc::clone(&w));
    sync(&app).await;
    assert_eq!(
        layout(&w),
        vec![
            (DERIVED_BASE, "api".into(), h(&["api.x.com"])),
            (DERIVED_BASE + 1, "web".into(), h(&["web.x.com"])),
            (DERIVED_BASE + 2, "special".into(), h(&["special.api.x.com"])),
            (DERIVED_BASE + 3, "api".into(), h(&["*.api.x.com"])),
        ]
    );
    let to = |host: &str| w.routes_to(L1, host);
    assert_eq!(
        (to("pr-1.api.x.com"), to("special.api.x.com")),
        (TG_API.into(), LAMBDA_TG.into()),
        "api stays awake, special sleeps"
    );

    // 3. `web` leaves the config and `special` moves first: web's rule is removed, and the new
    //    order is applied with SetRulePriorities (through free priorities: targets are held).
    w.reset_calls();
    let app = App::with_cloud(config(&sync_config(&rules_text(&[SPECIAL, API]))), Arc::clone(&w));
    let v = sync(&app).await;
    assert_eq!((v["listeners"][0]["deleted"].as_u64(), v["listeners"][0]["moved"].as_u64()), (Some(1), Some(3)), "{v}");
    assert_eq!(w.calls(Op::SetRulePriorities), 2);
    assert_eq!(w.calls(Op::CreateRule), 0, "nothing duplicated");
    assert_eq!(
        layout(&w),
        vec![
            (DERIVED_BASE, "special".into(), h(&["special.api.x.com"])),
            (DERIVED_BASE + 1, "api".into(), h(&["api.x.com"])),
            (DERIVED_BASE + 2, "api".into(), h(&["*.api.x.com"])),
        ]
    );
    assert_eq!(
        (to("pr-1.api.x.com"), to("special.api.x.com"), to("web.x.com")),
        (TG_API.into(), LAMBDA_TG.into(), LAMBDA_TG.into())
    );
}

/// The actions of api's standing rule, and where it sends api.x.com.
fn api_rule(w: &FakeCloud) -> (Vec<String>, String) {
    let rule = w.rules(L1).into_iter().find(|r| r.owner.as_deref() == Some("api")).expect("api's standing rule");
    (rule.kept, w.routes_to(L1, "api.x.com"))
}

/// ModifyRule replaces the whole action list (ELBv2 API reference, ModifyRule): an
/// authenticate-oidc action an operator put in front of a standing rule, to keep the environment
/// behind SSO, must survive every change autostop makes to that rule.
#[tokio::test(start_paused = true)]
async fn an_operators_authenticate_action_survives_wake_stop_drift_repair_and_sync() {
    let w = world();
    let app = App::with_cloud(config(&sync_config(&rules_text(&[API]))), Arc::clone(&w));
    sync(&app).await;
    let arn = w.rules(L1)[0].arn.clone();
    w.put_in_front(&arn, "authenticate-oidc");
    let sso = vec!["authenticate-oidc".to_string()];

    assert_eq!(api(&app, "GET", "api.x.com", "/").await.status, 307);
    assert_eq!(api_rule(&w), (sso.clone(), TG_API.to_string()), "woken");

    w.set_instance_state(I1, InstanceState::Stopped); // stopped by hand: the idle check repairs the drift
    let report = app.handle(json!({"autostop": "idle-check"}), None).await.unwrap();
    assert_eq!(report["rules"][0]["action"], "switch_back", "{report}");
    assert_eq!(api_rule(&w), (sso.clone(), LAMBDA_TG.to_string()), "drift repaired");

    assert_eq!(api(&app, "GET", "api.x.com", "/").await.status, 307);
    app.handle(json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    assert_eq!(api_rule(&w), (sso.clone(), LAMBDA_TG.to_string()), "stopped");

    // Someone points the sleeping rule at the app by hand; sync repairs the forward only.
    let by_hand = RuleChange { hosts: None, forward: Some(vec![Weighted::new(TG_API, 1)]), auth: None };
    w.modify_rule(&arn, &by_hand).await.unwrap();
    let v = sync(&app).await;
    assert_eq!(v["listeners"][0]["modified"], 1, "{v}");
    assert_eq!(api_rule(&w), (sso, LAMBDA_TG.to_string()), "synced");
    assert_eq!(
        v["listeners"][0]["kept"],
        json!([{"rule": "api", "hosts": ["api.x.com", "*.api.x.com"], "actions": ["authenticate-oidc"]}]),
        "sync reports what it keeps"
    );
}

#[tokio::test(start_paused = true)]
async fn rules_of_the_previous_version_are_adopted_not_duplicated() {
    let w = world();
    w.set_instance_state(I1, InstanceState::Running);
    // The previous version inserted a tagged rule forwarding to the app only, at a hashed priority.
    w.add_tagged_rule(L1, 23_456, &["api.dev.example.com"], TG_API, "api");
    w.add_tagged_rule(L2, 23_456, &["api.dev.example.com"], TG_API, "api");
    let app = App::with_cloud(config(&overlapping()), Arc::clone(&w));
    sync(&app).await;
    for l in [L1, L2] {
        let ours: Vec<_> = w.rules(l).into_iter().filter(|r| r.owner.as_deref() == Some("api")).collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(ours[0].priority, DERIVED_BASE);
        assert_eq!(
            ours[0].forward,
            vec![Weighted::new(TG_API, 1), Weighted::new(LAMBDA_TG, 0)],
            "canonical, still to the app"
        );
    }
    assert_eq!(routes(&w, &["api.dev.example.com", "x.dev.example.com"]), vec![TG_API, LAMBDA_TG]);
}

#[tokio::test(start_paused = true)]
async fn too_many_rules_is_an_error_page_with_the_code_and_what_to_do() {
    let w = world();
    w.set_rule_quota(1);
    w.add_foreign_rule(L1, 5, &["intranet.example.com"]);
    let app = App::with_cloud(config(&overlapping()), Arc::clone(&w));
    let page = browser(&app, "api.dev.example.com").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("TooManyRules"), "{}", page.body);
    assert!(page.body.contains("raise it or remove unused rules"), "{}", page.body);
    assert!(page.header("retry-after").is_some());
    assert_eq!(w.calls(Op::StartInstances), 0, "nothing started that the ALB could not health-check");
}

#[tokio::test(start_paused = true)]
async fn a_listener_whose_default_action_is_not_a_forward_is_named() {
    let w = FakeCloud::new();
    w.add_instance(I1, InstanceState::Stopped, SECS(20));
    w.add_target_group(TG_API, SECS(10));
    w.add_listener_with_default(L1, None);
    let text = format!("listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"api\"\nhosts = [\"api.x.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n");
    let app = App::new(config(&text), w);
    let e = app.handle(json!({"autostop": "sync"}), None).await.unwrap_err();
    assert!(e.0.contains("DefaultActionNotForward") && e.0.contains(L1), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_rule_deleted_while_the_listener_is_listed_is_listed_again_and_the_wake_finishes() {
    let w = world();
    let app = App::with_cloud(config(&overlapping()), Arc::clone(&w));
    assert_eq!(status(&app, "api.dev.example.com").await["phase"], "starting");
    advance(SECS(31)).await;
    // A person deletes wild's standing rule between a DescribeRules and its DescribeTags.
    let wild = w.rules(L1).into_iter().find(|r| r.owner.as_deref() == Some("wild")).unwrap();
    w.delete_during_next_listing(&wild.arn);
    let before = w.calls(Op::DescribeRules);
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    assert!(w.calls(Op::DescribeRules) > before + 1, "listed again after RuleNotFound");
    assert_eq!(routes(&w, &["api.dev.example.com"]), vec![TG_API]);
    assert!(w.rules(L1).iter().any(|r| r.owner.as_deref() == Some("wild")), "entangled rule recreated");
}

/// The load balancer of `L1` and `L2`.
const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";

#[tokio::test(start_paused = true)]
async fn a_listener_added_after_the_cold_start_is_served() {
    let w = Arc::new(ec2_world(20, 10, &[L1]));
    let text = format!(
        "listener_arns = [\"{L1}\"]\nhold = \"2m\"\n[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
    );
    let app = App::with_cloud(config(&text), Arc::clone(&w)).discovering_listeners_of(LB);
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);

    // Someone adds the HTTPS listener (a certificate was set) after this environment started.
    w.add_listener(L2);
    assert_eq!(w.routes_to(L2, "api.dev.example.com"), LAMBDA_TG, "nothing there yet");
    // The next idle check looks the listeners up again and lays out the standing rules there,
    // forwarding to the app of a rule recorded ready whose resources run.
    app.handle(json!({"autostop": "idle-check", "dry_run": false}), None).await.unwrap();
    assert_eq!(app.config().listener_arns.len(), 2);
    assert_eq!(w.routes_to(L2, "api.dev.example.com"), TG_API);
    assert_eq!(w.routes_to(L1, "api.dev.example.com"), TG_API);
}

/// With only the load balancer named (the stack that creates the ALB), the listeners are looked
/// up before the first wake, not at the cold start: unknown hosts and refusals make no AWS call
/// at all. A failed lookup wakes nothing and stops nothing.
#[tokio::test(start_paused = true)]
async fn listeners_are_looked_up_before_the_first_wake_not_at_start() {
    let w = Arc::new(ec2_world(20, 10, &[L1]));
    let text = format!(
        "hold = \"2m\"\n[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
    );
    let deployment = autostop::config::Deployment { load_balancer: Some(LB.into()), ..Default::default() };
    let config = autostop::config::Config::from_toml_with(&text, &deployment).expect("no listeners needed yet");
    assert!(config.listener_arns.is_empty());
    let app = App::with_cloud(config, Arc::clone(&w)).discovering_listeners_of(LB);

    assert_eq!(api(&app, "GET", "nope.dev.example.com", "/").await.status, 404);
    let bot = alb_event("GET", "api.dev.example.com", "/", &[("user-agent", "Googlebot/2.1")]);
    assert_eq!(send(&app, bot).await.status, 503);
    assert_eq!(w.total_calls(), 0, "no AWS call for unknown hosts and refusals");

    // The lookup fails: nothing is woken, nothing is stopped.
    w.fail_next(Op::DescribeListeners, "Throttling", 2);
    let r = api(&app, "GET", "api.dev.example.com", "/").await;
    assert_eq!((r.status, r.json()["error"].as_str()), (503, Some("listeners_unknown")), "{}", r.body);
    assert_eq!(w.calls(Op::StartInstances), 0);
    let e = app.handle(json!({"autostop": "stop", "rule": "api"}), None).await.unwrap_err();
    assert!(e.to_string().contains("listeners could not be looked up"), "{e}");

    // The next wake looks them up again at once, and goes on.
    assert_eq!(api(&app, "GET", "api.dev.example.com", "/").await.status, 307);
    assert_eq!(app.config().listener_arns, vec![L1.to_string()]);
    assert_eq!(w.routes_to(L1, "api.dev.example.com"), TG_API);
}

/// A listener of a second load balancer (`staging`), whose default action is its own Lambda
/// target group: a target group serves one load balancer.
const L3: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/staging/7c1b2d3e4f5a6b7c/0a1b2c3d4e5f6a7b";
const DEV: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";
const LAMBDA_TG_STAGING: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop-staging/1";

/// api (its group serves no load balancer yet; `api_extra` added to its config) and web (its
/// group already serves the staging ALB), with listeners of both ALBs in one config.
fn two_albs(api_extra: &str) -> (Arc<FakeCloud>, App<FakeCloud>) {
    let w = world();
    w.add_listener_with_default(L3, Some(LAMBDA_TG_STAGING));
    w.add_tagged_rule(L3, 10_001, &["web.x.com"], TG_WEB, "web");
    let api_rule = API.replace("target_group_arn", &format!("{api_extra}target_group_arn"));
    let text = format!("listener_arns = [\"{L1}\", \"{L3}\"]\nhold = \"2m\"\n{}", rules_text(&[&api_rule, WEB]));
    let app = App::with_cloud(config(&text), Arc::clone(&w));
    (w, app)
}

fn owners(w: &FakeCloud, listener: &str) -> Vec<String> {
    w.rules(listener).into_iter().filter_map(|r| r.owner).collect()
}

/// ALB quotas, "Load balancers per target group: 1": each rule's standing rules go only on the
/// listeners of its group's load balancer, each forwarding to that load balancer's Lambda group.
#[tokio::test(start_paused = true)]
async fn with_two_load_balancers_each_rule_stands_only_on_its_own() {
    let (w, app) = two_albs(&format!("load_balancer = \"{DEV}\"\n"));
    let v = sync(&app).await;
    assert_eq!((owners(&w, L1), owners(&w, L3)), (vec!["api".to_string()], vec!["web".to_string()]), "{v}");
    let adopted = &w.rules(L3)[0].forward;
    assert!(adopted.contains(&Weighted::new(LAMBDA_TG_STAGING, 0)), "adopted with staging's Lambda: {adopted:?}");

    assert_eq!(api(&app, "GET", "api.x.com", "/").await.status, 307);
    assert_eq!(w.routes_to(L1, "api.x.com"), TG_API);
    assert_eq!(api(&app, "GET", "web.x.com", "/").await.status, 307);
    assert_eq!(w.routes_to(L3, "web.x.com"), TG_WEB);
    assert_eq!(owners(&w, L3), vec!["web".to_string()], "api never placed on staging");
    let report = app.handle(json!({"autostop": "idle-check"}), None).await.unwrap();
    assert!(report["standing_rules_error"].is_null(), "{report}");
    assert_eq!((owners(&w, L1), owners(&w, L3)), (vec!["api".to_string()], vec!["web".to_string()]));
}

/// Without `load_balancer`, a group that serves no load balancer yet has no home: its wake is
/// an error page saying what to set, and the other rules wake and sync as usual.
#[tokio::test(start_paused = true)]
async fn a_rule_whose_load_balancer_cannot_be_known_is_an_error_saying_what_to_set() {
    let (w, app) = two_albs("");
    let v = sync(&app).await;
    assert_eq!((owners(&w, L1), owners(&w, L3)), (Vec::<String>::new(), vec!["web".to_string()]), "{v}");
    let r = api(&app, "GET", "api.x.com", "/").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("LoadBalancerNotChosen") && r.body.contains("set the rule's `load_balancer`"),
        "{}",
        r.body
    );
    assert_eq!(w.calls(Op::StartInstances), 0, "nothing started that could never be reached");
    assert_eq!(api(&app, "GET", "web.x.com", "/").await.status, 307);
}
