//! Wake on a click (`wake = "click"`): a sleeping rule wakes only from its page's button (a
//! same-origin POST carrying the page's token) or from an API client holding the wake secret.
//! Fetching the page, as link unfurlers and prefetchers do, wakes nothing.

mod common;

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op};
use common::*;
use serde_json::{json, Value};

const HOST: &str = "api.dev.example.com";
const SECRET: &str = "correct-horse-battery-staple";

fn app(top: &str, rule: &str) -> App<FakeCloud> {
    let text = format!(
        "listener_arns = [\"{L1}\"]\n{top}\n[[rules]]\nname = \"api\"\nhosts = [\"{HOST}\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n{rule}\n"
    );
    App::new(config(&text), ec2_world(20, 10, &[L1])).with_wake_secret(SECRET)
}

fn click_app() -> App<FakeCloud> {
    app("wake_token = { header = \"x-autostop-wake\", env = \"AUTOSTOP_WAKE_TOKEN\" }", "wake = \"click\"")
}

async fn page(app: &App<FakeCloud>) -> Resp {
    send(app, alb_event("GET", HOST, "/dashboard", &[("accept", CHROME_ACCEPT)])).await
}

/// The token in the page's form and the one in its cookie.
fn tokens(r: &Resp) -> (String, String) {
    let field = r.body.split("name=\"autostop_wake\" value=\"").nth(1).expect("a token field");
    let field = field[..field.find('"').unwrap()].to_string();
    let cookie = r.header("set-cookie").expect("a cookie");
    let cookie = cookie.strip_prefix("autostop_wake=").unwrap().split(';').next().unwrap().to_string();
    (field, cookie)
}

fn post(cookie: &str, field: &str, origin: &str) -> Value {
    let mut ev = alb_event(
        "POST",
        HOST,
        "/dashboard",
        &[
            ("accept", CHROME_ACCEPT),
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &format!("autostop_wake={cookie}")),
            ("origin", origin),
        ],
    );
    // As a real ALB sends it: a body of any type other than text/*, application/json,
    // application/javascript or application/xml arrives base64-encoded with isBase64Encoded
    // (ALB guide, "Lambda functions as targets": receive events from the load balancer).
    use base64::Engine;
    ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(format!("autostop_wake={field}")));
    ev["isBase64Encoded"] = json!(true);
    ev
}

#[tokio::test(start_paused = true)]
async fn fetching_the_page_wakes_nothing_and_its_button_wakes() {
    let app = click_app();
    let first = page(&app).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-autostop").as_deref(), Some("click"));
    assert!(first.body.contains("Wake api.dev.example.com") && first.body.contains("action=\"/dashboard\""));
    let cookie = first.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    // An unfurler or prefetcher fetches it again: still nothing started.
    let again = page(&app).await;
    assert_ne!(tokens(&again), tokens(&first), "each page has its own token");
    assert_eq!(app.cloud().calls(Op::StartInstances), 0);

    let (field, cookie) = tokens(&first);
    let clicked = send(&app, post(&cookie, &field, "https://api.dev.example.com")).await;
    assert_eq!((clicked.status, clicked.header("location").as_deref()), (303, Some("/dashboard")), "{}", clicked.body);
    assert_eq!(app.cloud().calls(Op::StartInstances), 1);
    // Waking now: a plain visit shows the progress, as in request mode.
    assert_eq!(page(&app).await.header("x-autostop").as_deref(), Some("progress"));
    // The progress page's polls finish the wake; the Wakes metric names the click as its cause.
    let mut phase = String::new();
    for _ in 0..60 {
        tokio::time::advance(Duration::from_secs(1)).await;
        phase = status(&app, HOST).await["phase"].as_str().unwrap().to_string();
        if phase == "ready" {
            break;
        }
    }
    assert_eq!(phase, "ready");
    let wakes = emf_lines(app.cloud(), "Wakes");
    assert_eq!(wakes.len(), 1, "{wakes:?}");
    assert_eq!(wakes[0]["Cause"], "click");
}

#[tokio::test(start_paused = true)]
async fn other_sites_cannot_press_the_button() {
    let app = click_app();
    let (field, cookie) = tokens(&page(&app).await);
    for ev in [
        post(&cookie, &field, "https://evil.example"),
        post("", &field, ""),
        post(&cookie, "0123456789abcdef0123456789abcdef", ""),
    ] {
        let r = send(&app, ev).await;
        assert_eq!(r.status, 503, "{}", r.body);
    }
    assert_eq!(app.cloud().calls(Op::StartInstances), 0);
    let refused = emf_lines(app.cloud(), "Refused");
    assert_eq!(refused.len(), 3);
    assert!(refused.iter().all(|v| v["Reason"] == "click_required" && v["Rule"] == "api"), "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn api_clients_wake_with_the_secret_only() {
    let app = click_app();
    let api = |token: &'static str| {
        alb_event("GET", HOST, "/v1/items", &[("accept", "application/json"), ("x-autostop-wake", token)])
    };
    let wrong = send(&app, api("correct-horse-battery-stapl")).await;
    assert_eq!((wrong.status, wrong.json()["reason"].as_str()), (503, Some("click_required")), "{}", wrong.body);
    assert!(wrong.json()["what_to_do"].as_str().unwrap().contains("x-autostop-wake"), "{}", wrong.body);
    assert_eq!(app.cloud().calls(Op::StartInstances), 0);
    let status = send(&app, alb_event("GET", HOST, "/__autostop/status", &[("accept", "application/json")])).await;
    assert_eq!(status.json()["phase"], "stopped", "the status endpoint reports, it does not wake");
    assert_eq!(app.cloud().calls(Op::StartInstances), 0);

    let right = send(&app, api(SECRET)).await;
    assert_eq!(right.status, 503, "held until the hold ran out: {}", right.body);
    assert_eq!(app.cloud().calls(Op::StartInstances), 1);
}

#[tokio::test(start_paused = true)]
async fn request_mode_stays_the_default_and_a_rule_may_differ() {
    let app = app("wake = \"click\"", "wake = \"request\"");
    assert_eq!(page(&app).await.header("x-autostop").as_deref(), Some("progress"));
    assert_eq!(app.cloud().calls(Op::StartInstances), 1);
}

/// A sleeping click-mode page, its polls and API requests, from 50 clients through 5 Lambda
/// environments for a minute: they answer from one fleet-wide observation (a look, which wakes
/// nothing), so the EC2 calls stay at about one a second however many requests arrive, and a
/// click still wakes at once.
#[tokio::test(start_paused = true)]
async fn the_click_page_and_its_polls_cost_one_observation_a_second_fleet_wide() {
    use std::sync::Arc;
    let text = format!(
        "listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"api\"\nhosts = [\"{HOST}\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\nwake = \"click\"\n"
    );
    let cloud = Arc::new(ec2_world(20, 10, &[L1]));
    let apps: Vec<App<FakeCloud>> = (0..5).map(|_| App::with_cloud(config(&text), Arc::clone(&cloud))).collect();
    let mut requests = 0;
    for tick in 0..600 {
        for client in 0..5 {
            let app = &apps[(tick + client) % apps.len()];
            let r = match client % 3 {
                0 => page(app).await,
                1 => send(app, alb_event("GET", HOST, "/__autostop/status", &[("accept", "application/json")])).await,
                _ => api(app, "POST", HOST, "/v1/items").await,
            };
            assert_ne!(r.status, 500);
            requests += 1;
        }
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    let describes = cloud.calls(Op::DescribeInstances);
    assert!(describes <= 62, "{describes} DescribeInstances for {requests} requests in 60 s");
    assert_eq!(cloud.calls(Op::StartInstances), 0, "looking wakes nothing");
    let page = page(&apps[0]).await;
    let (field, cookie) = tokens(&page);
    assert_eq!(send(&apps[1], post(&cookie, &field, &format!("https://{HOST}"))).await.status, 303);
    assert_eq!(cloud.calls(Op::StartInstances), 1, "a click right after a look still wakes");
}

/// The operator's status tells a click-mode rule's sleep as it is: a request alone wakes nothing.
#[tokio::test(start_paused = true)]
async fn the_status_of_a_sleeping_click_mode_rule_says_the_button_wakes_it() {
    let status = |app: App<FakeCloud>| async move { app.status().await.rules[0].message.clone() };
    let click = status(click_app()).await;
    assert!(click.contains("wake button") && !click.contains("next request"), "{click}");
    let request = status(app("", "")).await;
    assert_eq!(request, "asleep: the next request wakes it");
}
