//! The HTTP table of SPEC, row by row, through the real event path on the in-memory cloud.

mod common;

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op};
use autostop::cloud::InstanceState;
use common::*;
use serde_json::{json, Value};

fn app() -> App<FakeCloud> {
    let text = format!(
        r#"
listener_arns = ["{L1}"]
[[rules]]
name = "api"
hosts = ["api.dev.example.com", "*.api.dev.example.com"]
target_group_arn = "{TG_API}"
ec2 = {{ instance_ids = ["{I1}"] }}

[[rules]]
name = "web"
hosts = ["web.dev.example.com"]
target_group_arn = "{TG_WEB}"
ec2 = {{ instance_ids = ["{I2}"] }}
"#
    );
    let cloud = FakeCloud::new();
    cloud.add_instance(I1, InstanceState::Stopped, Duration::ZERO);
    cloud.add_instance(I2, InstanceState::Stopped, Duration::ZERO);
    cloud.add_target_group(TG_API, Duration::ZERO);
    cloud.register_instance(TG_API, I1);
    cloud.add_target_group(TG_WEB, Duration::ZERO);
    cloud.register_instance(TG_WEB, I2);
    cloud.add_listener(L1);
    App::new(config(&text), cloud)
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn unknown_host_is_404_html_or_json_with_no_aws_call() {
    let app = app();
    let page = browser(&app, "nope.dev.example.com").await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("nope.dev.example.com") && page.body.contains("<html"));
    let r = api(&app, "GET", "dev.example.com", "/").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["host"], "dev.example.com");
    // A client that asks for nothing in particular (curl, a scanner) gets the short JSON too.
    let r = send(&app, alb_event("GET", "nope.dev.example.com", "/", &[("accept", "*/*")])).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (404, Some("unknown_host")));
    assert_eq!(app.cloud().total_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn unknown_host_is_escaped() {
    let app = app();
    let page = browser(&app, "<img src=x onerror=alert(1)>").await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
}

#[tokio::test(start_paused = true)]
async fn health_checker_gets_200_and_wakes_nothing() {
    let app = app();
    let r = send(&app, fixture("alb-health-check.json")).await;
    assert_eq!(r.status, 200);
    // Even with a rule's host, the health checker never wakes anything.
    let r = send(&app, alb_event("GET", "api.dev.example.com", "/", &[("user-agent", "ELB-HealthChecker/2.0")])).await;
    assert_eq!(r.status, 200);
    assert_eq!(app.cloud().total_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn missing_or_empty_host_is_400_not_a_panic() {
    let app = app();
    let mut event = alb_event("GET", "", "/", &[("accept", CHROME_ACCEPT)]);
    let r = send(&app, event.clone()).await;
    assert_eq!(r.status, 400);
    event["headers"].as_object_mut().unwrap().remove("host");
    let r = send(&app, event).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Host"));
    assert_eq!(app.cloud().total_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn browser_fixture_gets_the_progress_page() {
    let app = app();
    let r = send(&app, fixture("alb-single-value.json")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store, private"));
    assert!(r.body.contains("api.dev.example.com"));
    assert_eq!(app.cloud().calls(Op::StartInstances), 1);
}

#[tokio::test(start_paused = true)]
async fn multi_value_request_gets_multi_value_headers_and_keeps_the_query() {
    let app = app();
    let v = app.handle(fixture("alb-multi-value.json"), None).await.unwrap();
    assert!(v["headers"].as_object().is_none_or(|m| m.is_empty()), "{v}");
    assert_eq!(v["statusCode"], 307);
    assert_eq!(v["multiValueHeaders"]["location"], json!(["/v1/items?tag=a&tag=b"]));
    assert_eq!(v["statusDescription"], "307 Temporary Redirect");
}

#[tokio::test(start_paused = true)]
async fn base64_post_is_held_then_redirected_with_307() {
    let app = app();
    let r = send(&app, fixture("alb-post-base64.json")).await;
    assert_eq!(r.status, 307, "307 keeps the method and body");
    assert_eq!(r.header("location").as_deref(), Some("/v1/items"));
}

#[tokio::test(start_paused = true)]
async fn status_commands_and_bad_events() {
    let app = app();
    let all = app.handle(json!({"autostop": "status"}), None).await.unwrap();
    let phases: Vec<&str> = all["rules"].as_array().unwrap().iter().map(|s| s["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, vec!["stopped", "stopped"]);
    assert_eq!(app.cloud().calls(Op::StartInstances), 0, "status never wakes");

    let woke = app.handle(json!({"autostop": "wake", "rule": "web"}), None).await.unwrap();
    assert_eq!(woke["rule"], "web");
    assert_eq!(app.cloud().instance_state(I2), InstanceState::Running);
    assert_eq!(app.cloud().instance_state(I1), InstanceState::Stopped);

    let e = app.handle(json!({"autostop": "wake", "rule": "nope"}), None).await.unwrap_err();
    assert!(e.0.contains("no rule named `nope`") && e.0.contains("api, web"), "{e}");
    let e = app.handle(json!({"hello": "world"}), None).await.unwrap_err();
    assert!(e.0.contains("[hello]"), "{e}");
}

/// A multi-value ALB event (as the template's Lambda target group sends them).
fn multi_value_event(method: &str, path: &str, query: Value) -> Value {
    json!({
        "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/1" } },
        "httpMethod": method,
        "path": path,
        "multiValueQueryStringParameters": query,
        "multiValueHeaders": { "host": ["api.dev.example.com"], "accept": ["application/json"], "user-agent": ["curl/8.5"] },
        "body": "",
        "isBase64Encoded": false
    })
}

#[tokio::test(start_paused = true)]
async fn the_307_keeps_an_unsorted_repeated_query_as_the_event_lists_it() {
    let app = app();
    // The event text lists `z` before `a`; a signed URL's order and encoding must survive.
    let event: Value = serde_json::from_str(&multi_value_event("GET", "/files/ü x", json!({})).to_string().replace(
        "\"multiValueQueryStringParameters\":{}",
        r#""multiValueQueryStringParameters":{"z":["2","1"],"a":["x%2By"],"X-Amz-Signature":["ab#c"]}"#,
    ))
    .unwrap();
    let r = send(&app, event).await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/files/%C3%BC%20x?z=2&z=1&a=x%2By&X-Amz-Signature=ab%23c"));
}

#[tokio::test(start_paused = true)]
async fn a_query_key_with_an_empty_value_list_is_answered_not_a_panic() {
    let r = send(&app(), multi_value_event("GET", "/", json!({"a": [], "b": ["1"]}))).await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/?b=1"));
}
