//! Rules behind SSO on the strict fake: every standing rule authenticates first, in every form
//! (asleep, awake) and through every change (sync, wake, stop, drift repair); a request without
//! a valid sign-in wakes nothing and costs no AWS call; who woke it is recorded.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op, LAMBDA_TG};
use autostop::cloud::{Authenticate, Cloud, InstanceState, RuleChange, Secret};
use autostop::config::{Access, Config};
use autostop::identity::testing::{StaticKeys, TestKey};
use common::*;
use serde_json::json;
use tokio::time::advance;

const SECS: fn(u64) -> Duration = Duration::from_secs;
const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";
const OTHER_LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/prod/73e2d6bc24d8a067";
const API: &str = "api.dev.example.com";
const WEB: &str = "web.dev.example.com";

fn text(extra: &str) -> String {
    format!(
        r#"
listener_arns = ["{L1}", "{L2}"]
wake_token = {{ header = "x-wake-token", env = "UNSET_IN_TESTS" }}
auth = {{ oidc = {{ issuer = "https://idp.example.com", authorization_endpoint = "https://idp.example.com/auth",
         token_endpoint = "https://idp.example.com/token", user_info_endpoint = "https://idp.example.com/me",
         client_id = "autostop-dev", client_secret_env = "UNSET_IN_TESTS" }}{extra} }}
[[rules]]
name = "api"
hosts = ["{API}"]
target_group_arn = "{TG_API}"
ec2 = {{ instance_ids = ["{I1}"] }}
[[rules]]
name = "web"
hosts = ["{WEB}"]
target_group_arn = "{TG_WEB}"
ecs = {{ cluster = "dev", service = "web" }}
auth = "none"
"#
    )
}

/// The config with the client secret the function's environment would hold.
fn with_secret(mut config: Config) -> Config {
    for rule in &mut config.rules {
        if let Access::Sso(Authenticate::Oidc(o)) = &mut rule.access {
            o.client_secret = Secret(Some("s3cret".into()));
        }
    }
    config
}

fn world() -> Arc<FakeCloud> {
    let w = ec2_world(20, 10, &[L1, L2]);
    w.add_service("dev", "web", 0, SECS(20));
    w.add_target_group(TG_WEB, SECS(10));
    w.attach_service(TG_WEB, "dev", "web");
    Arc::new(w)
}

struct Idp {
    key: TestKey,
}

impl Idp {
    /// A token as the load balancer `signer` signs it, valid for `ttl` seconds from `now`.
    fn token(&self, signer: &str, now: i64, ttl: i64) -> String {
        let header = json!({"typ": "JWT", "alg": "ES256", "kid": "kid-1", "signer": signer, "iss": "https://idp.example.com", "client": "autostop-dev", "exp": now + ttl});
        let claims = json!({"sub": "u-1", "email": "ana@example.com", "exp": now + ttl});
        self.key.token(header, claims, true)
    }
}

fn app_over(w: &Arc<FakeCloud>, config: Config) -> (App<FakeCloud>, Idp, Arc<std::sync::atomic::AtomicUsize>) {
    let key = TestKey::new();
    let (verifier, fetches) = StaticKeys::new(&[("kid-1", &key)]).verifier();
    (App::with_cloud(config, Arc::clone(w)).with_verifier(verifier), Idp { key }, fetches)
}

/// A browser's request as the ALB forwards it over HTTPS, with these extra headers.
async fn visit(app: &App<FakeCloud>, host: &str, path: &str, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("accept", CHROME_ACCEPT), ("user-agent", "Mozilla/5.0"), ("x-forwarded-proto", "https")];
    headers.extend_from_slice(extra);
    send(app, alb_event("GET", host, path, &headers)).await
}

/// The authenticate action kinds of each of `owner`'s standing rules, on both listeners.
fn auth_of(w: &FakeCloud, owner: &str) -> Vec<Option<&'static str>> {
    [L1, L2]
        .iter()
        .flat_map(|l| w.rules(l))
        .filter(|r| r.owner.as_deref() == Some(owner))
        .map(|r| r.auth.as_ref().map(Authenticate::kind))
        .collect()
}

async fn sync(app: &App<FakeCloud>) -> serde_json::Value {
    app.handle(json!({"autostop": "sync"}), None).await.expect("sync runs")
}

#[tokio::test(start_paused = true)]
async fn every_standing_rule_of_a_rule_behind_sso_authenticates_first_asleep_awake_and_repaired() {
    let w = world();
    let (app, idp, _) = app_over(&w, with_secret(config(&text(""))));
    sync(&app).await;
    assert_eq!(auth_of(&w, "api"), vec![Some("authenticate-oidc"); 2], "asleep, on both listeners");
    assert_eq!(auth_of(&w, "web"), vec![None, None], "auth = \"none\"");

    // A signed-in visit wakes api; once it is ready the rule forwards to the app, still behind SSO.
    let token = idp.token(LB, w.now(), 3600);
    assert_eq!(visit(&app, API, "/", &[("x-amzn-oidc-data", &token)]).await.status, 200);
    for _ in 0..30 {
        advance(SECS(2)).await;
        let s = visit(&app, API, "/__autostop/status", &[("x-amzn-oidc-data", &token)]).await.json();
        if s["phase"] == "ready" {
            assert_eq!(s["woken_by"], "ana@example.com", "{s}");
            break;
        }
    }
    assert_eq!(w.routes_to(L1, API), TG_API);
    assert_eq!(auth_of(&w, "api"), vec![Some("authenticate-oidc"); 2], "awake");
    let item = w.load_state("autostop-state", "api").await.unwrap().unwrap();
    assert_eq!(item.woken_by.as_deref(), Some("ana@example.com"), "recorded in the state item");

    // Stopped: back to the Lambda, still behind SSO.
    app.handle(json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    assert_eq!(w.routes_to(L1, API), LAMBDA_TG);
    assert_eq!(auth_of(&w, "api"), vec![Some("authenticate-oidc"); 2], "asleep again");

    // Someone takes the authenticate action off by hand; sync puts it back.
    let arn = w.rules(L1).into_iter().find(|r| r.owner.as_deref() == Some("api")).unwrap().arn;
    w.modify_rule(&arn, &RuleChange { auth: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!(auth_of(&w, "api"), vec![None, Some("authenticate-oidc")]);
    let v = sync(&app).await;
    assert_eq!(v["listeners"][0]["modified"], 1, "{v}");
    assert_eq!(auth_of(&w, "api"), vec![Some("authenticate-oidc"); 2], "repaired");
}

#[tokio::test(start_paused = true)]
async fn without_a_valid_sign_in_nothing_wakes_and_no_aws_call_is_made() {
    let w = world();
    let (app, idp, fetches) = app_over(&w, with_secret(config(&text(""))));
    let now = w.now();
    let forger = Idp { key: TestKey::new() };
    let cases = [
        ("no header", None),
        ("expired", Some(idp.token(LB, now, -1))),
        ("another load balancer", Some(idp.token(OTHER_LB, now, 3600))),
        ("forged", Some(forger.token(LB, now, 3600))),
        ("not a token", Some("x.y.z".to_string())),
    ];
    let before = w.total_calls();
    for (case, token) in &cases {
        let extra: Vec<(&str, &str)> = token.iter().map(|t| ("x-amzn-oidc-data", t.as_str())).collect();
        let r = visit(&app, API, "/", &extra).await;
        assert_eq!(r.status, 401, "{case}: {}", r.body);
        assert!(r.body.contains("sign-in"), "{case}: {}", r.body);
        let r =
            send(&app, alb_event("GET", API, "/", &[("accept", "application/json"), ("x-forwarded-proto", "https")]))
                .await;
        assert_eq!((r.status, r.json()["reason"].as_str()), (401, Some("unauthenticated")), "{case}");
    }
    assert_eq!(w.total_calls(), before, "no AWS call for any of them");
    assert_eq!(w.instance_state(I1), InstanceState::Stopped);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the key fetched once, for the forged token's kid");

    // Over plain HTTP (an HTTP listener takes no authenticate action): sent to HTTPS.
    let r = send(&app, alb_event("POST", API, "/x", &[("x-forwarded-proto", "http")])).await;
    assert_eq!((r.status, r.header("location").as_deref()), (308, Some("https://api.dev.example.com/x")));

    // A rule with auth = "none" wakes as before.
    assert_eq!(visit(&app, WEB, "/", &[]).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn allow_lets_anonymous_clients_wake_only_with_the_wake_token() {
    let w = world();
    let config = with_secret(config(&text(", on_unauthenticated = \"allow\"")));
    let (app, _, _) = app_over(&w, config);
    let app = app.with_wake_secret("t0ken");
    let anon = |token: &'static str| {
        alb_event(
            "GET",
            API,
            "/",
            &[("accept", "application/json"), ("x-forwarded-proto", "https"), ("x-wake-token", token)],
        )
    };
    assert_eq!(send(&app, anon("wrong")).await.status, 401);
    assert_eq!(w.instance_state(I1), InstanceState::Stopped);
    let r = send(&app, anon("t0ken")).await;
    assert_ne!(r.status, 401, "{}", r.body);
    assert_ne!(w.instance_state(I1), InstanceState::Stopped, "woken with the token");
    let item = w.load_state("autostop-state", "api").await.unwrap().unwrap();
    assert_eq!(item.woken_by, None, "anonymous");
}

#[tokio::test(start_paused = true)]
async fn an_http_listener_carries_no_rule_behind_sso_and_a_missing_secret_creates_nothing() {
    let w = world();
    w.set_listener_http(L2);
    let (app, _, _) = app_over(&w, with_secret(config(&text(""))));
    sync(&app).await;
    let owners = |l: &str| w.rules(l).into_iter().filter_map(|r| r.owner).collect::<Vec<_>>();
    assert_eq!(owners(L1), vec!["api", "web"]);
    assert_eq!(owners(L2), vec!["web"], "api's hosts reach autostop there, which sends them to HTTPS");

    // A wake learns the protocols once, and then asks no listener again; api counts as routed
    // with no standing rule on the HTTP listener.
    let (app, idp, _) = app_over(&w, with_secret(config(&text(""))));
    let token = idp.token(LB, w.now(), 3600);
    let before = w.calls(Op::DescribeListeners);
    for _ in 0..40 {
        let s = visit(&app, API, "/__autostop/status", &[("x-amzn-oidc-data", &token)]).await.json();
        if s["phase"] == "ready" {
            break;
        }
        advance(SECS(2)).await;
    }
    assert_eq!(w.routes_to(L1, API), TG_API);
    assert_eq!(w.calls(Op::DescribeListeners) - before, 2, "one per listener, once");
    advance(SECS(60)).await;
    let report = app.handle(json!({"autostop": "status"}), None).await.unwrap();
    assert_eq!(report["rules"][0]["phase"], "ready", "{report}");
    assert_eq!(owners(L2), vec!["web"]);

    let w = world();
    let (app, _, _) = app_over(&w, config(&text("")));
    let v = app.handle(json!({"autostop": "sync"}), None).await;
    let text = format!("{v:?}");
    assert!(text.contains("ClientSecretMissing"), "{text}");
    assert_eq!(w.calls(Op::CreateRule), 0, "refused before any call");
    assert_eq!(auth_of(&w, "api"), Vec::<Option<&str>>::new());
}
