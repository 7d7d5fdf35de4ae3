//! HTML pages, rendered fully (askama templates in `templates/`) before a byte is sent.
//! Every value that comes from the request (the host) is escaped by askama.

use askama::Template;

use crate::wake::{Phase, ResourceState, Status};

pub struct Step {
    pub phase: &'static str,
    pub label: &'static str,
    /// For a dependency's step: the rule readied first (shown as "Readying `db`").
    pub dependency: Option<String>,
    /// `done`, `current` or `todo`.
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressPage<'a> {
    host: &'a str,
    steps: Vec<Step>,
    message: &'a str,
    resources: &'a [ResourceState],
    elapsed: u64,
    /// "ready in about 30 s", or "first start, no estimate yet" (the same words as the page's JS).
    estimate: String,
    healthy: u32,
    total: u32,
    rendered_ready: bool,
    /// The override or schedule behind this rule's state, when there is one.
    intent: Option<&'a str>,
    /// Who woke it (behind SSO).
    woken_by: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    host: Option<&'a str>,
    paragraphs: Vec<String>,
    code: Option<&'a str>,
    refresh: Option<u64>,
}

#[derive(Template)]
#[template(path = "click.html")]
struct ClickPage<'a> {
    host: &'a str,
    /// Where the form posts: the URL the browser asked for.
    action: &'a str,
    token: &'a str,
}

/// The "Wake `host`" page of a click-mode rule ([`super::click`]).
pub fn click(host: &str, action: &str, token: &str) -> String {
    ClickPage { host, action, token }.render().unwrap_or_else(|e| format!("template error: {e}"))
}

/// The steps of a wake with the current one marked. A rule that is `ready` (its ALB rule is in
/// place, yet this request still reached us) is shown as `routing`: browsers never see "ready"
/// from us, the app itself is the proof.
pub fn steps(phase: Phase) -> Vec<Step> {
    let mut all: Vec<(Phase, &'static str)> = vec![
        (Phase::Starting, "Starting the resources"),
        (Phase::WaitingForHealth, "Passing the load balancer's health checks"),
        (Phase::Routing, "Routing your traffic to the app"),
    ];
    if phase == Phase::Stopping {
        all.insert(0, (Phase::Stopping, "Finishing the previous shutdown"));
    }
    let shown = if phase == Phase::Ready { Phase::Routing } else { phase };
    let current = all.iter().position(|(p, _)| *p == shown);
    all.into_iter()
        .enumerate()
        .map(|(i, (phase, label))| Step {
            phase: phase.as_str(),
            label,
            dependency: None,
            state: match current {
                Some(c) if i < c => "done",
                Some(c) if i == c => "current",
                _ => "todo",
            },
        })
        .collect()
}

/// The steps of a wake, each dependency first ("Readying `db`"): while one is not ready, it is
/// the current step and the rule's own steps are still to do.
fn with_dependencies(status: &Status) -> Vec<Step> {
    let pending = status.dependencies.iter().position(|d| d.phase != Phase::Ready);
    let mut all: Vec<Step> = status
        .dependencies
        .iter()
        .enumerate()
        .map(|(i, d)| Step {
            phase: "dependency",
            label: "",
            dependency: Some(d.rule.clone()),
            state: match pending {
                Some(p) if i < p => "done",
                Some(p) if i == p => "current",
                Some(_) => "todo",
                None => "done",
            },
        })
        .collect();
    let own = steps(status.phase);
    all.extend(own.into_iter().map(|mut s| {
        if pending.is_some() {
            s.state = "todo";
        }
        s
    }));
    all
}

pub fn progress(host: &str, status: &Status) -> String {
    let shown = if status.phase == Phase::Ready {
        "The app is ready; waiting for the load balancer to start forwarding to it."
    } else {
        status.message.as_str()
    };
    ProgressPage {
        host,
        steps: with_dependencies(status),
        message: shown,
        resources: &status.resources,
        elapsed: status.elapsed_seconds.unwrap_or(0),
        estimate: estimate(status.eta_seconds),
        healthy: status.targets.healthy,
        total: status.targets.total,
        rendered_ready: status.phase == Phase::Ready,
        intent: status.intent.as_deref(),
        woken_by: status.woken_by.as_deref(),
    }
    .render()
    .unwrap_or_else(|e| format!("template error: {e}"))
}

/// The ETA in words; keep in step with `estimate()` in templates/progress.html.
pub fn estimate(eta: Option<u64>) -> String {
    match eta {
        None => "first start, no estimate yet".into(),
        Some(0) => "ready any moment now".into(),
        Some(s) => format!("ready in about {s} s"),
    }
}

pub fn message(
    title: &str,
    host: Option<&str>,
    paragraphs: Vec<String>,
    code: Option<&str>,
    refresh: Option<u64>,
) -> String {
    MessagePage { title, host, paragraphs, code, refresh }.render().unwrap_or_else(|e| format!("template error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::TargetHealth;

    fn status(phase: Phase) -> Status {
        let resources = vec![ResourceState { kind: "ec2".into(), id: "i-1".into(), state: "pending".into() }];
        let mut s = Status::new("api", phase, "booting").with_resources(resources);
        s.targets = TargetHealth::counts(0, 1);
        s.elapsed_seconds = Some(12);
        s
    }

    #[test]
    fn steps_mark_done_current_todo() {
        let s = steps(Phase::WaitingForHealth);
        let states: Vec<_> = s.iter().map(|s| (s.phase, s.state)).collect();
        assert_eq!(states, vec![("starting", "done"), ("waiting_for_health", "current"), ("routing", "todo")]);
        assert_eq!(steps(Phase::Ready)[2].state, "current", "ready is shown as routing");
        assert_eq!(steps(Phase::Stopping)[0], ("stopping", "current"));
    }

    impl PartialEq<(&str, &str)> for Step {
        fn eq(&self, other: &(&str, &str)) -> bool {
            (self.phase, self.state) == *other
        }
    }
    impl std::fmt::Debug for Step {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}:{}", self.phase, self.state)
        }
    }

    #[test]
    fn progress_page_escapes_the_host_and_shows_state() {
        let html = progress("<script>alert(1)</script>.dev", &status(Phase::Starting));
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains("&#60;script&#62;alert(1)") || html.contains("&lt;script&gt;alert(1)"), "{html}");
        assert!(html.contains("i-1") && html.contains("pending"));
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>"));
        assert!(html.contains("/__autostop/status"));
        assert!(html.contains("data-rendered-ready=\"false\""));
        assert!(html.contains("<span id=\"elapsed\">12</span>"));
    }

    #[test]
    fn message_page_escapes_and_offers_retry() {
        let html = message(
            "Could not wake",
            Some("a\"b<c"),
            vec!["x & y".into()],
            Some("InsufficientInstanceCapacity"),
            Some(30),
        );
        assert!(!html.contains("a\"b<c"));
        assert!(html.contains("x &#38; y") || html.contains("x &amp; y"), "{html}");
        assert!(html.contains("InsufficientInstanceCapacity"));
        assert!(html.contains("content=\"30\""));
    }
}
