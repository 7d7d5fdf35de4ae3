//! Requests that wake nothing ([`crate::config::gate`] decided so, before any AWS call): their
//! static answer, and one `Refused` count each by rule and reason (the EMF line built once per
//! rule and reason, so a scan costs little).

use std::collections::HashMap;

use crate::cloud::Cloud;
use crate::config::gate::Reason;
use crate::config::{Config, Rule};
use crate::http::{prefers_json, Reply, Request};
use crate::telemetry::emf;

use super::answers::ErrorBody;
use super::pages;

/// The `Refused` line of each rule and [`Reason`] (indexed as in [`Reason::ALL`]).
pub struct Refusals {
    lines: HashMap<String, [emf::Template; Reason::ALL.len()]>,
    /// The `wake_token` header, named in a click-mode refusal.
    token_header: Option<String>,
}

impl Refusals {
    pub fn new(config: &Config) -> Refusals {
        let lines = config.rules.iter().map(|r| (r.name.clone(), refusal_lines(&r.name))).collect();
        Refusals { lines, token_header: config.wake_token.as_ref().map(|t| t.header.clone()) }
    }

    /// The static answer to a request that wakes nothing, counted in the `Refused` metric.
    pub fn refuse<C: Cloud>(&self, cloud: &C, req: &Request, host: &str, rule: &Rule, reason: Reason) -> Reply {
        // Counted by the `Refused` metric; the line itself only at debug: under a scan these are
        // most requests, and a log line each would cost more than the answer.
        tracing::debug!(host = %host, rule = %rule.name, reason = reason.as_str(), method = %req.method, path = %req.path, "refused: wakes nothing");
        let now = cloud.now_ms();
        let line = match self.lines.get(&rule.name) {
            Some(lines) => lines[reason as usize].at(now),
            None => refusal_lines(&rule.name)[reason as usize].at(now),
        };
        cloud.emit_metrics(line);
        refused(req, host, rule, reason, self.token_header.as_deref())
    }
}

/// `Retry-After` for a refused request: nothing will change for it soon.
const RETRY_REFUSED_SECS: u64 = 3600;

/// The static answer to a request that wakes nothing ([`crate::gate`]): no AWS call.
fn refused(req: &Request, host: &str, rule: &Rule, reason: Reason, token_header: Option<&str>) -> Reply {
    if reason == Reason::Path && req.path == "/robots.txt" {
        return Reply::text(200, "User-agent: *\nDisallow: /\n", "refused");
    }
    let (status, why, what) = match (reason, &rule.gate.wake_from) {
        (Reason::Network, Some(nets)) => {
            let nets: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            (
                403,
                format!(
                    "This environment is asleep, and it can be woken only from these networks: {}.",
                    nets.join(", ")
                ),
                "Connect through one of them (the office network, the VPN), then reload this page.".to_string(),
            )
        }
        (Reason::Unauthenticated, _) => (
            401,
            "This environment is behind sign-in, and this request carries no valid sign-in, so nothing was woken."
                .to_string(),
            match token_header {
                Some(h) if allows_anonymous(rule) => format!(
                    "Open the address over HTTPS in a browser to sign in, or send the wake token in the `{h}` header."
                ),
                _ => "Open the address over HTTPS in a browser to sign in, then reload.".to_string(),
            },
        ),
        (Reason::ClickRequired, _) => (
            503,
            "This environment is asleep and wakes only from the button on its page.".to_string(),
            match token_header {
                Some(h) => {
                    format!("Open the address in a browser and press Wake, or send the wake token in the `{h}` header.")
                }
                None => "Open the address in a browser and press Wake.".to_string(),
            },
        ),
        _ => (
            503,
            "This environment is asleep. Automated clients, probes and this kind of request do not wake it."
                .to_string(),
            "Open the address in a browser to wake it.".to_string(),
        ),
    };
    let reply = if prefers_json(&req.accept) || !req.is_browser() {
        let body = ErrorBody {
            error: "not_woken",
            reason: Some(reason.as_str()),
            host,
            message: &why,
            what_to_do: Some(&what),
        };
        Reply::json(status, body.to_json(), "refused")
    } else {
        let title = if reason == Reason::Unauthenticated { "Sign-in needed" } else { "Asleep" };
        Reply::html(status, pages::message(title, Some(host), vec![why, what], None, None), "refused")
    };
    if status == 503 {
        reply.with("retry-after", RETRY_REFUSED_SECS.to_string())
    } else {
        reply
    }
}

/// The rule lets the ALB forward unauthenticated requests (`on_unauthenticated = "allow"`).
pub(super) fn allows_anonymous(rule: &Rule) -> bool {
    rule.access.sso().is_some_and(|a| a.session().on_unauthenticated == crate::cloud::OnUnauthenticated::Allow)
}

/// A rule's `Refused` lines, one per [`Reason`], indexed by `reason as usize`.
fn refusal_lines(rule: &str) -> [emf::Template; Reason::ALL.len()] {
    Reason::ALL.map(|r| emf::Template::new(&[("Rule", rule), ("Reason", r.as_str())], &[emf::count("Refused")]))
}
