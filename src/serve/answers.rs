//! The answers themselves: pages and JSON bodies with their status codes and `Retry-After`,
//! for a wake's status, a held-asleep rule, an error, an unknown host or a missing one. What a
//! client sees of a failure is its code and what to do, never AWS's message text.

use serde_json::{json, Value};

use crate::http::{prefers_json, Reply, Request};
use crate::wake::{HeldAsleep, Phase, Status};

use super::pages;

/// `Retry-After` while waking, and after an error.
pub const RETRY_WAKING_SECS: u64 = 5;
pub const RETRY_ERROR_SECS: u64 = 15;

pub fn to_json(status: &Status) -> Value {
    serde_json::to_value(status).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// `Retry-After` while held asleep: until the hold ends, between a minute and a day.
pub fn retry_after_held(held: &HeldAsleep, now: i64) -> i64 {
    held.until.map(|u| u - now).unwrap_or(3600).clamp(60, 86_400)
}

/// The load balancer's listeners could not be looked up yet: nothing can be routed, so nothing
/// is woken; the next request tries again.
pub fn no_listeners(req: &Request) -> Reply {
    let why = "autostop could not look up the load balancer's listeners yet, so it cannot route this host; nothing was started.";
    let what = "Try again in a minute; if it persists, the function's log says why (DescribeListeners).";
    if prefers_json(&req.accept) || !req.is_browser() {
        let body =
            ErrorBody { error: "listeners_unknown", reason: None, host: "", message: why, what_to_do: Some(what) };
        return Reply::json(503, body.to_json(), "error").with("retry-after", RETRY_ERROR_SECS.to_string());
    }
    let page = pages::message("Not ready to wake anything yet", None, vec![why.into(), what.into()], None, Some(30));
    Reply::html(503, page, "error").with("retry-after", RETRY_ERROR_SECS.to_string())
}

/// The JSON answer of a request that wakes nothing, written without a JSON tree in between.
#[derive(serde::Serialize)]
pub(super) struct ErrorBody<'a> {
    pub error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub host: &'a str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<&'a str>,
}

impl ErrorBody<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A browser gets a page; any other client a short JSON answer (as for a refusal), the cheapest
/// answer to a scan of unknown hosts.
pub fn not_found(req: &Request, host: &str) -> Reply {
    if prefers_json(&req.accept) || !req.is_browser() {
        let message = format!("no autostop rule serves {host}");
        let body = ErrorBody { error: "unknown_host", reason: None, host, message: &message, what_to_do: None };
        return Reply::json(404, body.to_json(), "not-found");
    }
    let page = pages::message(
        "No environment here",
        Some(host),
        vec![
            "autostop has no rule for this host, so there is nothing to wake.".into(),
            "Check the address, or ask your platform team to add the host to a rule in autostop.toml.".into(),
        ],
        None,
        None,
    );
    Reply::html(404, page, "not-found")
}

/// Browsers get the progress page (never a redirect: a redirect that lands on us again while
/// the ALB has not applied the new rule would loop), or the error page.
pub fn browser_reply(host: &str, status: &Status, now: i64) -> Reply {
    if let Some(held) = &status.held_asleep {
        let page = pages::message(
            "Asleep on schedule",
            Some(host),
            vec![
                format!("This environment is {}.", held.why),
                "Nothing was started. Come back then, or ask an operator to run `autostop keep-awake`.".into(),
            ],
            None,
            None,
        );
        return Reply::html(503, page, "asleep").with("retry-after", retry_after_held(held, now).to_string());
    }
    match (&status.phase, &status.error) {
        (Phase::Error, Some(err)) => {
            let page = pages::message(
                "This environment could not be woken",
                Some(host),
                vec![format!("{}.", err.detail), format!("What to do: {}", err.action)],
                Some(&err.code),
                Some(30),
            );
            Reply::html(503, page, "error").with("retry-after", RETRY_ERROR_SECS.to_string())
        }
        _ => Reply::html(200, pages::progress(host, status), "progress"),
    }
}

/// A request without a `Host` header.
pub fn no_host(req: &Request) -> Reply {
    let why = "The request has no Host header, so autostop cannot tell which environment it is for.";
    if prefers_json(&req.accept) || !req.is_browser() {
        return Reply::json(400, json!({ "error": "missing_host", "message": why }).to_string(), "error");
    }
    Reply::html(400, pages::message("No host in the request", None, vec![why.into()], None, None), "error")
}
