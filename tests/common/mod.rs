//! Helpers shared by the flow tests (in-memory cloud) and the moto tests.
#![allow(dead_code)]

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::FakeCloud;
use autostop::cloud::{Cloud, InstanceState};
use autostop::config::Config;
use serde_json::{json, Value};

pub const L1: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
pub const L2: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/0a1b2c3d4e5f6a7b";
pub const TG_API: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";
pub const TG_WEB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0467ef3c8400ae65";
pub const I1: &str = "i-0123456789abcdef0";
pub const I2: &str = "i-0fedcba9876543210";

pub const CHROME_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

pub fn config(text: &str) -> Config {
    Config::from_toml(text).unwrap_or_else(|e| panic!("test config rejected: {e}\n{text}"))
}

/// An ALB event as the load balancer sends it (single-value headers).
pub fn alb_event(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("host".into(), json!(host));
    for (k, v) in headers {
        h.insert(k.to_string(), json!(v));
    }
    json!({
        "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/1" } },
        "httpMethod": method,
        "path": path,
        "queryStringParameters": {},
        "headers": h,
        "body": "",
        "isBase64Encoded": false
    })
}

/// The parts of an ALB response the tests look at.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: serde_json::Map<String, Value>,
    pub body: String,
}

impl Resp {
    pub fn from_value(v: Value) -> Resp {
        let headers = v
            .get("headers")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .or_else(|| v.get("multiValueHeaders").and_then(Value::as_object))
            .cloned()
            .unwrap_or_default();
        Resp {
            status: v["statusCode"].as_u64().expect("statusCode") as u16,
            headers,
            body: v.get("body").and_then(Value::as_str).unwrap_or("").to_string(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        match self.headers.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// The `data-phase` of the step the progress page marks current.
    pub fn current_step(&self) -> Option<String> {
        let at = self.body.find("class=\"current\" data-phase=\"")?;
        let rest = &self.body[at + "class=\"current\" data-phase=\"".len()..];
        Some(rest[..rest.find('"')?].to_string())
    }
}

pub async fn send<C: Cloud>(app: &App<C>, event: Value) -> Resp {
    Resp::from_value(app.handle(event, None).await.expect("ALB events are always answered"))
}

pub async fn browser<C: Cloud>(app: &App<C>, host: &str) -> Resp {
    send(app, alb_event("GET", host, "/", &[("accept", CHROME_ACCEPT), ("user-agent", "Mozilla/5.0")])).await
}

pub async fn api<C: Cloud>(app: &App<C>, method: &str, host: &str, path: &str) -> Resp {
    send(app, alb_event(method, host, path, &[("accept", "application/json"), ("user-agent", "curl/8.5")])).await
}

/// An API client as HTTP clients with retries behave: a 503 with `Retry-After` (the rule's
/// hold slots are taken, or the hold ran out) is asked again after that many seconds.
pub async fn api_retrying<C: Cloud>(app: &App<C>, method: &str, host: &str, path: &str) -> Resp {
    loop {
        let r = api(app, method, host, path).await;
        match (r.status, r.header("retry-after").and_then(|a| a.parse().ok())) {
            (503, Some(after)) => tokio::time::sleep(Duration::from_secs(after)).await,
            _ => return r,
        }
    }
}

pub async fn status<C: Cloud>(app: &App<C>, host: &str) -> Value {
    let r = send(app, alb_event("GET", host, "/__autostop/status", &[("accept", "application/json")])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-autostop").as_deref(), Some("status"));
    r.json()
}

/// One stopped instance `I1` in `TG_API`: `pending` for `boot` seconds, healthy `health`
/// seconds after it runs; the listeners given.
pub fn ec2_world(boot: u64, health: u64, listeners: &[&str]) -> FakeCloud {
    let cloud = FakeCloud::new();
    cloud.add_instance(I1, InstanceState::Stopped, Duration::from_secs(boot));
    cloud.add_target_group(TG_API, Duration::from_secs(health));
    cloud.register_instance(TG_API, I1);
    for l in listeners {
        cloud.add_listener(l);
    }
    cloud
}

/// The EMF lines the fake published that carry metric `name`, parsed.
pub fn emf_lines(cloud: &FakeCloud, name: &str) -> Vec<Value> {
    cloud
        .metric_lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("EMF is one JSON object per line"))
        .filter(|v| v.get(name).is_some())
        .collect()
}
