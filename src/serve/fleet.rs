//! The fleet page (`dashboard = { host }`), behind sign-in: a GET renders every rule from one
//! Scan of the state table (no EC2, ECS, RDS or Auto Scaling call); its buttons POST here with
//! the click mode's double-submit token, act with the viewer's identity, and answer 303 to the
//! page (Post/Redirect/Get).

use std::time::Duration;

use crate::cloud::Cloud;
use crate::config::schedule::Mode;
use crate::http::{prefers_json, Reply, Request};
use crate::ops::overrides::{self, Until};
use crate::state::fleet;
use crate::wake::{Cause, Waker};

use super::click::{self, form_field};
use super::fleet_page::{render, Fleet};
use super::pages;

/// Where the page's buttons post.
pub const ACTION_PATH: &str = "/__autostop/fleet";
/// How long "Keep awake" keeps a rule awake.
pub const KEEP_AWAKE: Duration = Duration::from_secs(2 * 3600);

pub async fn answer<C: Cloud>(waker: &Waker<C>, req: &Request, host: &str, user: &str) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", ACTION_PATH) => act(waker, req, host, user).await,
        ("GET" | "HEAD", "/") => page(waker, req, host, user).await,
        // A browser's /favicon.ico and the like: no page, no Scan, no new token.
        _ => Reply::text(404, "not found", "fleet"),
    }
}

async fn page<C: Cloud>(waker: &Waker<C>, req: &Request, host: &str, user: &str) -> Reply {
    let states = match waker.store().load_all().await {
        Ok(states) => states,
        Err(e) => {
            tracing::warn!(code = %e.code, "fleet page: the state table could not be read");
            let why = format!(
                "The state table could not be read ({}); nothing is shown rather than something stale.",
                e.code
            );
            let page = pages::message("The fleet page is not available", None, vec![why], Some(&e.code), Some(15));
            return Reply::html(503, page, "fleet").with("retry-after", "15");
        }
    };
    let (activity, activity_at_ms) = fleet::read(&states);
    // The browser's token, when it has one: every tab's buttons then carry the same one.
    let held =
        click::cookie(&req.cookie, click::FIELD).filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(token) = held.map(str::to_string).or_else(click::new_token) else {
        return Reply::text(503, "no randomness for the page's token", "fleet");
    };
    let notice = notice(waker, &req.query);
    let view = Fleet {
        config: waker.config(),
        states: &states,
        activity: &activity,
        activity_at_ms,
        now: waker.cloud().now(),
    };
    Reply::html(200, render(&view, host, user, &token, notice.as_deref()), "fleet")
        .with("set-cookie", click::set_cookie(&token, req.https))
}

/// The notice after a button (`?did=keep-awake&rule=api&ok=1`): built from known words only.
fn notice<C: Cloud>(waker: &Waker<C>, query: &str) -> Option<String> {
    let rule = waker.config().rule(&form_field(query, "rule")?)?.name.clone();
    let did = match form_field(query, "did")?.as_str() {
        "wake" => "woken",
        "sleep" => "put to sleep",
        "keep-awake" => "kept awake for 2 hours",
        "resume" => "back on its schedule",
        _ => return None,
    };
    let ok = form_field(query, "ok").as_deref() == Some("1");
    Some(if ok { format!("{rule}: {did}.") } else { format!("{rule}: could not be {did}; the log says why.") })
}

/// A button: the token pair must match (another site cannot press it), then the action runs
/// as the viewer.
async fn act<C: Cloud>(waker: &Waker<C>, req: &Request, host: &str, user: &str) -> Reply {
    if !click::is_click(req, host) {
        let why = "The button's form did not carry this page's token (an old tab, or another site). Reload the page.";
        return Reply::html(403, pages::message("Not done", Some(host), vec![why.into()], None, None), "fleet");
    }
    let (Some(name), Some(action)) = (form_field(&req.body, "rule"), form_field(&req.body, "action")) else {
        return Reply::text(400, "a fleet button names a rule and an action", "fleet");
    };
    let Some(rule) = waker.config().rule(&name).cloned() else {
        return Reply::text(400, "no such rule", "fleet");
    };
    let ok = match action.as_str() {
        "wake" => waker.wake_as(&rule, Cause::Operator, Some(user)).await.error.is_none(),
        "sleep" => sleep_now(waker, &rule.name, user).await,
        "keep-awake" => {
            let until = Some(Until::For(KEEP_AWAKE));
            overrides::set(waker, &rule.name, Some(Mode::Awake), until, user).await.is_ok()
        }
        "resume" => overrides::set(waker, &rule.name, None, None, user).await.is_ok(),
        _ => return Reply::text(400, "unknown action", "fleet"),
    };
    tracing::info!(rule = %rule.name, action = %action, user = %user, ok, "fleet page button");
    Reply::see_other(format!("/?did={action}&rule={}&ok={}", rule.name, ok as u8))
}

/// "Sleep now": the stop an operator's `autostop stop` makes, recording who asked for it in the
/// same write (so its `Environment Stopped` event names them too).
async fn sleep_now<C: Cloud>(waker: &Waker<C>, rule: &str, user: &str) -> bool {
    let stopped = crate::ops::stop::stop_by(waker, rule, Some(user)).await;
    stopped.is_ok_and(|r| r.result == crate::ops::stop::StopResult::Stopped)
}

/// No valid sign-in: the page has no anonymous view.
pub fn unauthenticated(req: &Request) -> Reply {
    let why = "The fleet page is behind sign-in, and this request carries no valid sign-in.";
    let what = "Open it over HTTPS in a browser to sign in.";
    if prefers_json(&req.accept) || !req.is_browser() {
        let body = serde_json::json!({"error": "unauthenticated", "message": why, "what_to_do": what});
        return Reply::json(401, body.to_string(), "fleet");
    }
    Reply::html(401, pages::message("Sign-in needed", None, vec![why.into(), what.into()], None, None), "fleet")
}
