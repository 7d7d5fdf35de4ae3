//! The HTTP table of SPEC: which answer for which request.
//!
//! [`Front::screen`] answers everything that needs no AWS call (the load balancer's health
//! checks, a missing or unknown host, requests the rule's gate refuses) and says which rule a
//! request would wake. [`Front::wake`] answers the rest: the click mode's page and button
//! ([`click`]), the status endpoint, the progress page for a browser ([`pages`]), and a held
//! API request ([`hold`]). The handler calls one, then the other, looking the listeners up in
//! between. It knows no SDK type, writes no state and calls AWS only through the waker.

pub mod answers;
pub mod click;
pub mod fleet;
pub mod fleet_page;
pub mod hold;
pub mod pages;
pub mod refuse;
pub mod signin;

use std::time::Duration;

use crate::cloud::Cloud;
use crate::config::gate::Reason;
use crate::config::{normalize_host, Config, Rule};
use crate::http::{prefers_json, Reply, Request};
use crate::wake::{Cause, Phase, Waker};

use answers::{browser_reply, no_host, not_found, to_json};
use refuse::Refusals;
use signin::Keys;

pub use answers::no_listeners;

/// A rule behind OIDC sign-in whose client secret is not in this environment cannot have its
/// standing rules created (CreateRule needs it): said once, at start.
fn warn_missing_secrets(config: &Config) {
    for rule in &config.rules {
        if let Some(crate::cloud::Authenticate::Oidc(o)) = rule.access.sso() {
            if o.client_secret.0.is_none() {
                tracing::warn!(rule = %rule.name, client_id = %o.client_id, "auth.oidc.client_secret_env is not set: this rule's standing rules cannot be created (ClientSecretMissing)");
            }
        }
    }
}

/// Path of the status endpoint on every rule's host.
pub const STATUS_PATH: &str = "/__autostop/status";

/// What a request needs before anything wakes: an answer already, or the rule it would wake.
pub enum Screened<'c> {
    Answered(Reply),
    Wake {
        rule: &'c Rule,
        host: String,
    },
    /// The fleet page's host (`dashboard`).
    Fleet {
        host: String,
    },
}

/// The request side of the handler: what every answer shares, built once per config.
pub struct Front {
    refusals: Refusals,
    /// The shared secret API clients wake click-mode rules with (`wake_token.env`, read once).
    wake_secret: Option<String>,
    /// Verifies sign-ins for rules behind SSO.
    keys: Keys,
}

impl Front {
    pub fn new(config: &Config) -> Front {
        let wake_secret = config.wake_token.as_ref().and_then(|t| std::env::var(&t.env).ok()).filter(|s| !s.is_empty());
        if let (Some(t), None) = (&config.wake_token, &wake_secret) {
            tracing::warn!(env = %t.env, "wake_token.env is not set: API clients cannot wake click-mode rules");
        }
        warn_missing_secrets(config);
        Front { refusals: Refusals::new(config), wake_secret, keys: Keys::default() }
    }

    /// Sign-ins verified with `verifier` rather than the real key server (tests, the demo).
    pub fn with_verifier(mut self, verifier: crate::identity::Verifier) -> Front {
        self.keys = Keys::given(verifier);
        self
    }

    /// Behind SSO, the verified user (`Ok(Some)`), or the answer to a request without a valid
    /// sign-in: a redirect to HTTPS, or 401 (counted as refused). With
    /// `on_unauthenticated = "allow"`, an anonymous request holding the wake token goes on
    /// (`Ok(None)`). No AWS call; at most the load balancer's key is fetched, once per key.
    /// `signers` (our load balancers) are asked for only behind sign-in.
    pub async fn admit<C: Cloud>(
        &self,
        cloud: &C,
        req: &Request,
        rule: &Rule,
        host: &str,
        signers: impl FnOnce() -> Vec<String>,
    ) -> Result<Option<String>, Reply> {
        if rule.access.sso().is_none() {
            return Ok(None);
        }
        let why = match self.keys.user(req, host, &signers(), cloud.now()).await {
            Ok(user) => return Ok(Some(user)),
            Err((Some(reply), _)) => return Err(reply),
            Err((None, why)) => why,
        };
        tracing::debug!(rule = %rule.name, reason = why.as_str(), "no valid sign-in");
        if refuse::allows_anonymous(rule) && click::has_secret(req.wake_token.as_deref(), self.wake_secret.as_deref()) {
            return Ok(None);
        }
        Err(self.refusals.refuse(cloud, req, host, rule, Reason::Unauthenticated))
    }

    /// The `wake_token` secret, given rather than read from the environment (tests).
    pub fn with_wake_secret(mut self, secret: &str) -> Front {
        self.wake_secret = Some(secret.to_string()).filter(|s| !s.is_empty());
        self
    }

    /// The answers that need no AWS call, or the rule the request is for.
    pub fn screen<'c, C: Cloud>(&self, cloud: &C, config: &'c Config, req: &Request) -> Screened<'c> {
        if req.is_health_check() {
            return Screened::Answered(Reply::text(200, "ok", "health"));
        }
        let Some(host) = req.host.as_deref().and_then(normalize_host) else {
            return Screened::Answered(no_host(req));
        };
        if config.dashboard.as_ref().is_some_and(|d| d.host == host) {
            return Screened::Fleet { host };
        }
        let Some(rule) = config.rule_for_host(&host) else {
            // Debug, like refusals: under a scan these are most requests, and a log line each
            // would cost more than the answer (and CloudWatch Logs ingestion besides).
            tracing::debug!(host = %host, "no rule for host");
            return Screened::Answered(not_found(req, &host));
        };
        match rule.gate.refuse(req) {
            Some(reason) => Screened::Answered(self.refusals.refuse(cloud, req, &host, rule, reason)),
            None => Screened::Wake { rule, host },
        }
    }

    /// The fleet page's viewer, signed in (it has no anonymous use), or the answer: a redirect
    /// to HTTPS, or 401. No AWS call.
    pub async fn fleet_viewer<C: Cloud>(
        &self,
        cloud: &C,
        req: &Request,
        host: &str,
        signers: &[String],
    ) -> Result<String, Reply> {
        match self.keys.user(req, host, signers, cloud.now()).await {
            Ok(user) => Ok(user),
            Err((Some(reply), _)) => Err(reply),
            Err((None, why)) => {
                tracing::info!(host = %host, reason = why.as_str(), "fleet page: no valid sign-in");
                Err(fleet::unauthenticated(req))
            }
        }
    }

    /// The answers that wake (or, in click mode, may): status, progress page, held request.
    pub async fn wake<C: Cloud>(
        &self,
        waker: &Waker<C>,
        req: &Request,
        rule: &Rule,
        host: &str,
        time_left: Option<Duration>,
        by: Option<&str>,
    ) -> Reply {
        if rule.gate.click {
            if let Some(reply) = self.click_gate(waker, req, host, rule, by).await {
                return reply;
            }
        }
        let reply = if req.path == STATUS_PATH {
            let status = waker.wake_as(rule, Cause::Browser, by).await;
            Reply::json(200, to_json(&status).to_string(), "status")
        } else if req.is_browser() {
            let status = waker.wake_as(rule, Cause::Browser, by).await;
            browser_reply(host, &status, waker.cloud().now())
        } else {
            hold::hold(waker, req, rule, time_left, by).await
        };
        tracing::info!(host = %host, rule = %rule.name, method = %req.method, status = reply.status, user = by, "answered");
        reply
    }

    /// A click-mode rule ([`click`]): `None` when the request goes on as in request mode (it
    /// holds the wake secret, or the rule is not asleep); else the answer. Only the button's
    /// POST wakes a sleeping rule; a GET from a browser gets the button.
    async fn click_gate<C: Cloud>(
        &self,
        waker: &Waker<C>,
        req: &Request,
        host: &str,
        rule: &Rule,
        by: Option<&str>,
    ) -> Option<Reply> {
        if click::has_secret(req.wake_token.as_deref(), self.wake_secret.as_deref()) {
            return None;
        }
        if click::is_click(req, host) {
            tracing::info!(host = %host, rule = %rule.name, "woken by its page's button");
            let status = waker.wake_as(rule, Cause::Click, by).await;
            if status.phase == Phase::Error || status.held_asleep.is_some() {
                return Some(browser_reply(host, &status, waker.cloud().now()));
            }
            // Post/Redirect/Get: the progress page is then a GET the browser may reload.
            return Some(Reply::see_other(req.same_url()));
        }
        let status = waker.look(rule).await;
        if status.phase != Phase::Stopped {
            return None;
        }
        if req.path == STATUS_PATH {
            return Some(Reply::json(200, to_json(&status).to_string(), "status"));
        }
        if req.is_browser() && !prefers_json(&req.accept) {
            if let Some(token) = click::new_token() {
                let page = pages::click(host, &req.same_url(), &token);
                return Some(Reply::html(200, page, "click").with("set-cookie", click::set_cookie(&token, req.https)));
            }
        }
        Some(self.refusals.refuse(waker.cloud(), req, host, rule, Reason::ClickRequired))
    }
}
