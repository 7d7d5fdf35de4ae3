//! Fuzzing the event path: whatever arrives, the handler answers (an ALB response, or an error
//! naming what arrived) and never panics. An ALB would turn a panic into a 502 for the user.
//! Runs briefly in `make test`; `PROPTEST_CASES=100000 cargo test --test fuzz` runs longer.

mod common;

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::FakeCloud;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((".{0,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Strings with what breaks naive code: non-ASCII, control characters, `%`, `#`, `//`.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![".{0,16}", "[/\\\\%#?&= \r\n\u{0}a-zü.]{0,16}", Just("//evil.example".to_string())]
}

/// ALB-shaped events: either header mode, arbitrary headers, queries (empty lists too),
/// methods, paths, bodies; a configured host often enough to reach the wake path.
fn alb_event() -> impl Strategy<Value = Value> {
    let host =
        prop_oneof![Just("api.dev.example.com".to_string()), Just("x.api.dev.example.com:443".to_string()), nasty(),];
    let values = || proptest::collection::vec(nasty(), 0..3);
    (
        any::<bool>(),
        prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("OPTIONS"), Just("DELETE"), Just("BREW")],
        nasty(),
        host,
        proptest::collection::vec((nasty(), values()), 0..4),
        proptest::collection::vec(("[a-z-]{1,12}", values()), 0..4),
        prop_oneof![
            Just("text/html".to_string()),
            Just("application/json".to_string()),
            Just("*/*".to_string()),
            nasty()
        ],
        any::<bool>(),
        nasty(),
    )
        .prop_map(|(multi, method, path, host, query, headers, accept, b64, body)| {
            let mut h = Map::new();
            h.insert("host".into(), if multi { json!([host]) } else { json!(host) });
            h.insert("accept".into(), if multi { json!([accept]) } else { json!(accept) });
            for (k, v) in headers {
                h.insert(k, if multi { json!(v) } else { json!(v.first().cloned().unwrap_or_default()) });
            }
            let q: Map<String, Value> = query
                .into_iter()
                .map(|(k, v)| (k, if multi { json!(v) } else { json!(v.first().cloned().unwrap_or_default()) }))
                .collect();
            let (qk, hk) = if multi {
                ("multiValueQueryStringParameters", "multiValueHeaders")
            } else {
                ("queryStringParameters", "headers")
            };
            json!({
                "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/1" } },
                "httpMethod": method, "path": path, qk: q, hk: h, "body": body, "isBase64Encoded": b64
            })
        })
}

fn app() -> App<FakeCloud> {
    let text = format!(
        "listener_arns = [\"{L1}\"]\nhold = \"1s\"\n[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\", \"*.api.dev.example.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
    );
    App::new(config(&text), ec2_world(30, 10, &[L1]))
}

fn run(event: Value) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let app = app();
    let is_alb = event.get("requestContext").and_then(|c| c.get("elb")).is_some();
    match rt.block_on(app.handle(event, Some(Duration::from_secs(30)))) {
        Ok(v) if is_alb => {
            let status = v["statusCode"].as_u64().unwrap_or(0);
            prop_assert!((200..600).contains(&status), "{v}");
            let has = |k: &str| v.get(k).and_then(Value::as_object).is_some_and(|h| h.contains_key("x-autostop"));
            prop_assert!(has("headers") || has("multiValueHeaders"), "{v}");
        }
        Ok(_) => {}
        Err(e) => prop_assert!(!e.0.is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_json_gets_an_answer_or_an_error_naming_it(event in any_json()) {
        run(event)?;
    }

    #[test]
    fn any_alb_shaped_event_gets_an_alb_response(event in alb_event()) {
        run(event)?;
    }
}
