//! Which event arrived: an ALB request, the idle-check schedule, or an operator command.
//! Only the handler reads events.
//!
//! Shapes are tried in turn by their distinguishing keys, so an unknown event gets an error
//! naming what it looked like rather than an opaque "did not match any variant".

use serde_json::Value;

use crate::http::Request;
pub use crate::ops::overrides::Until;

#[derive(Debug)]
pub enum Event {
    /// An ALB request.
    Alb(Box<Request>),
    /// EventBridge `Scheduled Event`: run the idle check.
    Schedule,
    Command(Command),
}

/// Direct invokes (`{"autostop": ...}`), for operators and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status,
    Wake {
        rule: String,
    },
    Stop {
        rule: String,
    },
    IdleCheck {
        dry_run: bool,
    },
    /// Create or repair every standing listener rule now (`make deploy` runs it after an update).
    Sync,
    /// `keep-awake` (`mode` awake), `sleep` (asleep), or `resume` (`mode` None: clear it).
    Override {
        rule: String,
        mode: Option<crate::config::schedule::Mode>,
        until: Option<Until>,
    },
}

/// An event autostop cannot handle; the text says what arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError(pub String);

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EventError {}

pub fn classify(event: Value) -> Result<Event, EventError> {
    classify_for(event, None)
}

/// [`classify`], reading the header `wake_header` (the config's `wake_token.header`) of a request.
pub fn classify_for(event: Value, wake_header: Option<&str>) -> Result<Event, EventError> {
    let Value::Object(map) = &event else {
        return Err(EventError(format!("expected a JSON object event, got {}", describe(&event))));
    };
    if let Some(cmd) = map.get("autostop") {
        return command(cmd, &event).map(Event::Command);
    }
    if map.get("requestContext").and_then(|c| c.get("elb")).is_some() {
        return Request::from_event(&event, wake_header)
            .map(|r| Event::Alb(Box::new(r)))
            .map_err(|e| EventError(format!("ALB target group request could not be read: {e}")));
    }
    if map.get("source").and_then(Value::as_str) == Some("aws.events")
        && map.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
    {
        return Ok(Event::Schedule);
    }
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort();
    keys.truncate(12);
    Err(EventError(format!(
        "unrecognised event with keys [{}]: autostop handles ALB target group requests, EventBridge \
         scheduled events, and {{\"autostop\": \"status\" | \"wake\" | \"stop\" | \"idle-check\" | \"sync\" | \"keep-awake\" | \"sleep\" | \"resume\"}}",
        keys.join(", ")
    )))
}

fn command(cmd: &Value, event: &Value) -> Result<Command, EventError> {
    let rule = || {
        event
            .get("rule")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .ok_or_else(|| EventError(format!("command {cmd} needs \"rule\": the name of a configured rule")))
    };
    match cmd.as_str() {
        Some("status") => Ok(Command::Status),
        Some("sync") => Ok(Command::Sync),
        Some("wake") => Ok(Command::Wake { rule: rule()? }),
        Some("stop") => Ok(Command::Stop { rule: rule()? }),
        Some("keep-awake") => Ok(Command::Override {
            rule: rule()?,
            mode: Some(crate::config::schedule::Mode::Awake),
            until: Some(until(event)?),
        }),
        Some("sleep") => Ok(Command::Override {
            rule: rule()?,
            mode: Some(crate::config::schedule::Mode::Asleep),
            until: Some(until(event)?),
        }),
        Some("resume") => Ok(Command::Override { rule: rule()?, mode: None, until: None }),
        Some("idle-check") => match event.get("dry_run") {
            None => Ok(Command::IdleCheck { dry_run: false }),
            Some(Value::Bool(b)) => Ok(Command::IdleCheck { dry_run: *b }),
            Some(other) => Err(EventError(format!("\"dry_run\" must be true or false, got {other}"))),
        },
        _ => Err(EventError(format!(
            "unknown autostop command {cmd}: expected \"status\", \"wake\", \"stop\", \"idle-check\", \"sync\", \
             \"keep-awake\", \"sleep\" or \"resume\""
        ))),
    }
}

/// `"for": "2h"` or `"until": "18:30"`, exactly one.
fn until(event: &Value) -> Result<Until, EventError> {
    let text = |k: &str| event.get(k).map(|v| v.as_str().map(str::to_string).ok_or(k.to_string()));
    match (text("for"), text("until")) {
        (Some(Ok(d)), None) => {
            crate::config::parse_duration(&d).map(Until::For).map_err(|e| EventError(format!("\"for\": {e}")))
        }
        (None, Some(Ok(t))) => Ok(Until::At(t)),
        (Some(_), Some(_)) => Err(EventError("give \"for\" or \"until\", not both".into())),
        (Some(Err(k)), None) | (None, Some(Err(k))) => Err(EventError(format!("\"{k}\" must be a string"))),
        (None, None) => Err(EventError(
            "an override needs \"for\" (\"2h\") or \"until\" (\"18:30\", \"mon 08:00\", \"2026-12-01 08:00\")".into(),
        )),
    }
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 80 {
        format!("{}...", &text[..text.char_indices().nth(77).map(|(i, _)| i).unwrap_or(text.len())])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn alb_requests_in_both_header_modes() {
        for name in ["alb-single-value.json", "alb-multi-value.json", "alb-post-base64.json"] {
            match classify(fixture(name)) {
                Ok(Event::Alb(..)) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn schedule_and_commands() {
        assert!(matches!(classify(fixture("scheduled-event.json")), Ok(Event::Schedule)));
        assert_eq!(classify(json!({"autostop": "status"})).unwrap_command(), Command::Status);
        assert_eq!(classify(json!({"autostop": "sync"})).unwrap_command(), Command::Sync);
        assert_eq!(
            classify(json!({"autostop": "wake", "rule": "api"})).unwrap_command(),
            Command::Wake { rule: "api".into() }
        );
        assert_eq!(
            classify(json!({"autostop": "stop", "rule": "api"})).unwrap_command(),
            Command::Stop { rule: "api".into() }
        );
        assert_eq!(
            classify(json!({"autostop": "idle-check", "dry_run": true})).unwrap_command(),
            Command::IdleCheck { dry_run: true }
        );
    }

    #[test]
    fn bad_events_say_what_arrived() {
        let e = classify(json!({"foo": 1, "bar": 2})).unwrap_err();
        assert!(e.0.contains("[bar, foo]"), "{e}");
        let e = classify(json!("hello")).unwrap_err();
        assert!(e.0.contains("\"hello\""), "{e}");
        let e = classify(json!({"autostop": "reboot"})).unwrap_err();
        assert!(e.0.contains("\"reboot\""), "{e}");
        let e = classify(json!({"autostop": "wake"})).unwrap_err();
        assert!(e.0.contains("needs \"rule\""), "{e}");
        let e = classify(json!({"autostop": "idle-check", "dry_run": "yes"})).unwrap_err();
        assert!(e.0.contains("dry_run"), "{e}");
        let e = classify(json!({"requestContext": {"elb": {}}, "httpMethod": 5})).unwrap_err();
        assert!(e.0.contains("ALB target group request"), "{e}");
    }

    trait UnwrapCommand {
        fn unwrap_command(self) -> Command;
    }
    impl UnwrapCommand for Result<Event, EventError> {
        fn unwrap_command(self) -> Command {
            match self {
                Ok(Event::Command(c)) => c,
                other => panic!("{other:?}"),
            }
        }
    }
}
