//! The fleet page on the strict fake: its own standing rule (sign-in first, always to the
//! Lambda), a view that costs one Scan and nothing else, buttons that act as the viewer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op, LAMBDA_TG};
use autostop::cloud::{Authenticate, Cloud, Secret, Weighted};
use autostop::config::{Access, Config, DASHBOARD_OWNER};
use autostop::identity::testing::{StaticKeys, TestKey};
use common::*;
use serde_json::{json, Value};

const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";
const FLEET: &str = "autostop.dev.example.com";

fn text() -> String {
    format!(
        r#"
listener_arns = ["{L1}", "{L2}"]
dashboard = {{ host = "{FLEET}" }}
events = {{ bus = "default" }}
auth = {{ oidc = {{ issuer = "https://idp.example.com", authorization_endpoint = "https://idp.example.com/auth",
         token_endpoint = "https://idp.example.com/token", user_info_endpoint = "https://idp.example.com/me",
         client_id = "autostop-dev", client_secret_env = "UNSET_IN_TESTS" }} }}
[[rules]]
name = "api"
hosts = ["api.dev.example.com"]
target_group_arn = "{TG_API}"
ec2 = {{ instance_ids = ["{I1}"] }}
hourly_cost = 0.5
[[rules]]
name = "wild"
hosts = ["*.dev.example.com"]
target_group_arn = "{TG_WEB}"
ecs = {{ cluster = "dev", service = "web" }}
"#
    )
}

fn with_secret(mut config: Config) -> Config {
    for rule in &mut config.rules {
        if let Access::Sso(Authenticate::Oidc(o)) = &mut rule.access {
            o.client_secret = Secret(Some("s3cret".into()));
        }
    }
    if let Some(Authenticate::Oidc(o)) = config.dashboard.as_mut().map(|d| &mut d.auth) {
        o.client_secret = Secret(Some("s3cret".into()));
    }
    config
}

struct Fixture {
    w: Arc<FakeCloud>,
    app: App<FakeCloud>,
    token: String,
}

fn fixture() -> Fixture {
    let w = ec2_world(20, 10, &[L1, L2]);
    w.add_service("dev", "web", 0, Duration::from_secs(20));
    w.add_target_group(TG_WEB, Duration::from_secs(10));
    w.attach_service(TG_WEB, "dev", "web");
    w.set_listener_http(L2);
    let w = Arc::new(w);
    let key = TestKey::new();
    let (verifier, _) = StaticKeys::new(&[("kid-1", &key)]).verifier();
    let app = App::with_cloud(with_secret(config(&text())), Arc::clone(&w)).with_verifier(verifier);
    let header = json!({"alg": "ES256", "kid": "kid-1", "signer": LB, "exp": w.now() + 7200});
    let token = key.token(header, json!({"sub": "u-1", "email": "ana@example.com"}), true);
    Fixture { w, app, token }
}

/// A request to the fleet page as the ALB forwards it over HTTPS.
fn to_fleet(method: &str, path: &str, extra: &[(&str, &str)]) -> Value {
    let mut headers = vec![("accept", CHROME_ACCEPT), ("user-agent", "Mozilla/5.0"), ("x-forwarded-proto", "https")];
    headers.extend_from_slice(extra);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut ev = alb_event(method, FLEET, path, &headers);
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        ev["queryStringParameters"][k] = json!(v);
    }
    if let Some((_, body)) = extra.iter().find(|(k, _)| *k == "body") {
        ev["body"] = json!(body);
    }
    ev
}

#[tokio::test(start_paused = true)]
async fn the_fleet_page_has_its_own_rule_behind_sign_in_on_the_https_listener() {
    let f = fixture();
    f.app.handle(json!({"autostop": "sync"}), None).await.unwrap();
    let ours: Vec<_> = f.w.rules(L1).into_iter().filter(|r| r.owner.as_deref() == Some(DASHBOARD_OWNER)).collect();
    assert_eq!(ours.len(), 1, "{:?}", f.w.rules(L1));
    assert_eq!(ours[0].hosts, vec![FLEET.to_string()]);
    assert_eq!(ours[0].forward, vec![Weighted::new(LAMBDA_TG, 1)], "always the Lambda");
    assert_eq!(ours[0].auth.as_ref().map(Authenticate::kind), Some("authenticate-oidc"));
    assert_eq!(f.w.routes_to(L1, FLEET), LAMBDA_TG, "before the wildcard of `wild`, which would match it");
    assert!(f.w.rules(L2).iter().all(|r| r.owner.as_deref() != Some(DASHBOARD_OWNER)), "none on the HTTP listener");
    let again = f.app.handle(json!({"autostop": "sync"}), None).await.unwrap();
    let changes: u64 =
        ["created", "modified", "deleted"].iter().map(|k| again["listeners"][0][k].as_u64().unwrap()).sum();
    assert_eq!(changes, 0, "kept, not taken for an orphan: {again}");
}

#[tokio::test(start_paused = true)]
async fn a_view_costs_one_scan_and_shows_every_rule_and_the_chart() {
    let f = fixture();
    let before = f.w.call_counts();
    let r = send(&f.app, to_fleet("GET", "/", &[("x-amzn-oidc-data", &f.token)])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = f.w.call_counts();
    let new: Vec<(Op, usize)> = after
        .iter()
        .map(|(op, n)| (*op, n - before.iter().find(|(o, _)| o == op).map_or(0, |(_, b)| *b)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(new, vec![(Op::Scan, 1)], "one Scan, no EC2, ECS or ELBv2 call");
    for needle in
        ["data-rule=\"api\"", "data-rule=\"wild\"", "<svg class=\"chart\"", "ana@example.com", "keep-awake-api"]
    {
        assert!(r.body.contains(needle), "{needle} missing");
    }
    assert!(r.header("set-cookie").is_some_and(|c| c.contains("SameSite=Strict")), "the buttons' token");

    let calls = f.w.total_calls();
    let icon = send(&f.app, to_fleet("GET", "/favicon.ico", &[("x-amzn-oidc-data", &f.token)])).await;
    assert_eq!((icon.status, icon.header("set-cookie")), (404, None), "no page and no new token for a favicon");
    assert_eq!(send(&f.app, to_fleet("GET", "/", &[])).await.status, 401, "no sign-in, no page");
    assert_eq!(f.w.total_calls(), calls, "and no AWS call");
}

#[tokio::test(start_paused = true)]
async fn keep_awake_is_recorded_as_the_viewer_and_answered_with_a_redirect() {
    let f = fixture();
    let page = send(&f.app, to_fleet("GET", "/", &[("x-amzn-oidc-data", &f.token)])).await;
    let cookie = page.header("set-cookie").unwrap();
    let pair = cookie.split(';').next().unwrap().to_string();
    let token = pair.split_once('=').unwrap().1.to_string();
    let body = format!("autostop_wake={token}&rule=api&action=keep-awake");
    let forged = format!("autostop_wake={}&rule=api&action=keep-awake", "0".repeat(32));
    let post = |body: &str| {
        to_fleet(
            "POST",
            "/__autostop/fleet",
            &[
                ("x-amzn-oidc-data", &f.token),
                ("cookie", &pair),
                ("origin", "https://autostop.dev.example.com"),
                ("body", body),
            ],
        )
    };
    let r = send(&f.app, post(&forged)).await;
    assert_eq!(r.status, 403, "another site's POST");
    assert!(f.w.state_item("api").is_none_or(|s| s.override_mode.is_none()));

    let r = send(&f.app, post(&body)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/?did=keep-awake&rule=api&ok=1"));
    let item = f.w.state_item("api").unwrap();
    assert_eq!((item.override_mode.as_deref(), item.override_by.as_deref()), (Some("awake"), Some("ana@example.com")));
    assert_eq!(item.woken_by.as_deref(), Some("ana@example.com"), "the wake it made is hers too");
    let after =
        send(&f.app, to_fleet("GET", "/?did=keep-awake&rule=api&ok=1", &[("x-amzn-oidc-data", &f.token)])).await;
    assert!(after.body.contains("api: kept awake for 2 hours."), "the notice");
    assert!(after.body.contains("kept awake by ana@example.com"), "the row's override names her");

    // Sleep now, on the other rule: stopped, and who asked recorded.
    f.w.add_service("dev", "web", 1, Duration::from_secs(1));
    let r = send(&f.app, post(&format!("autostop_wake={token}&rule=wild&action=sleep"))).await;
    assert_eq!(r.header("location").as_deref(), Some("/?did=sleep&rule=wild&ok=1"), "{}", r.body);
    let item = f.w.state_item("wild").unwrap();
    assert_eq!((item.phase.as_str(), item.stopped_by.as_deref()), ("stopped", Some("ana@example.com")));
    let stopped: Vec<Value> =
        f.w.events()
            .into_iter()
            .filter(|(_, kind, _)| kind == "Environment Stopped")
            .map(|(_, _, d)| serde_json::from_str(&d).unwrap())
            .collect();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["stopped_by"], "ana@example.com", "the event names who asked, from the same write");
}

#[test]
fn a_dashboard_without_sign_in_is_a_config_error() {
    let open = format!(
        "listener_arns = [\"{L1}\"]\ndashboard = {{ host = \"{FLEET}\" }}\n[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
    );
    let e = Config::from_toml(&open).unwrap_err();
    assert_eq!(e.key, "dashboard", "{e}");
    assert!(e.reason.contains("needs sign-in"), "{e}");
    let taken = text().replace(&format!("host = \"{FLEET}\""), "host = \"api.dev.example.com\"");
    assert_eq!(Config::from_toml(&taken).unwrap_err().key, "dashboard.host");
}

/// Every rule public, the fleet page alone behind sign-in: the HTTP listener is still known as
/// such, so the page's rule goes on the HTTPS one only and sync does not fail on the other.
#[tokio::test(start_paused = true)]
async fn with_every_rule_public_the_fleet_page_still_skips_the_http_listener() {
    let w = ec2_world(20, 10, &[L1, L2]);
    w.add_service("dev", "web", 0, Duration::from_secs(20));
    w.add_target_group(TG_WEB, Duration::from_secs(10));
    w.set_listener_http(L2);
    let w = Arc::new(w);
    let text = text().replace("ec2 = {", "auth = \"none\"\nec2 = {").replace("ecs = {", "auth = \"none\"\necs = {");
    let app = App::with_cloud(with_secret(config(&text)), Arc::clone(&w));
    let v = app.handle(json!({"autostop": "sync"}), None).await.unwrap();
    assert!(v.get("listeners").is_some(), "sync ran: {v}");
    let on = |l: &str| w.rules(l).iter().filter(|r| r.owner.as_deref() == Some(DASHBOARD_OWNER)).count();
    assert_eq!((on(L1), on(L2)), (1, 0));
}
