//! Holding an API client while its rule wakes: 307 to the same URL once ready (method and body
//! kept), else 503 with `Retry-After` when `hold` (or the Lambda's time) runs out or a step
//! fails, or at once when the rule's fleet-wide hold slots are taken.

use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::Cloud;
use crate::config::Rule;
use crate::http::{Reply, Request};
use crate::wake::{Cause, Phase, Status, Waker, PROPAGATION, STATUS_TTL};

use super::answers::{retry_after_held, to_json, RETRY_ERROR_SECS, RETRY_WAKING_SECS};

/// Time kept back from the Lambda deadline when holding a request, so we always answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(3);
/// How long a request that arrives after the switch is held before its 307: a client that the
/// load balancer keeps sending back to autostop while the change propagates follows at most
/// [`PROPAGATION`] / this many redirects (15), well inside the 20 or more HTTP clients allow.
pub const REDIRECT_PACE: Duration = Duration::from_secs(2);
/// The longest `Retry-After` for a client answered at once because the rule's hold slots are
/// taken.
pub const BUSY_RETRY_MAX_SECS: u64 = 10;

/// `by`: the verified user asking (behind SSO).
pub async fn hold<C: Cloud>(
    waker: &Waker<C>,
    req: &Request,
    rule: &Rule,
    time_left: Option<Duration>,
    by: Option<&str>,
) -> Reply {
    let mut budget = waker.config().hold;
    if let Some(left) = time_left {
        budget = budget.min(left.saturating_sub(DEADLINE_MARGIN));
    }
    let deadline = Instant::now() + budget;
    let status = waker.wake_as(rule, Cause::Api, by).await;
    if let Some(reply) = settled(waker, req, &status, false, deadline).await {
        return reply;
    }
    // Only so many clients of one rule hold a Lambda environment at once, fleet-wide: the
    // rest are answered now, so a burst never takes the concurrency other hosts need.
    let Some(slot) = waker.take_hold(rule, budget).await else {
        // Soon, even for a long wake: held clients are answered at the switch, and from then
        // on the load balancer sends a retry to the app.
        let retry = status.eta_seconds.unwrap_or(RETRY_WAKING_SECS).clamp(1, BUSY_RETRY_MAX_SECS);
        let mut status = status;
        status.message = format!("{} (enough clients are held for it already; retry)", status.message);
        return Reply::json(503, to_json(&status).to_string(), "busy").with("retry-after", retry.to_string());
    };
    let reply = wait(waker, req, rule, deadline, by).await;
    waker.release_hold(rule, slot).await;
    reply
}

/// Steps until the rule is ready, fails, or the deadline passes.
async fn wait<C: Cloud>(waker: &Waker<C>, req: &Request, rule: &Rule, deadline: Instant, by: Option<&str>) -> Reply {
    loop {
        tokio::time::sleep_until((Instant::now() + STATUS_TTL).min(deadline)).await;
        let status = waker.wake_as(rule, Cause::Api, by).await;
        if let Some(reply) = settled(waker, req, &status, true, deadline).await {
            return reply;
        }
    }
}

/// The answer when there is one: asleep by schedule, ready, failed, or out of time.
async fn settled<C: Cloud>(
    waker: &Waker<C>,
    req: &Request,
    status: &Status,
    waited: bool,
    deadline: Instant,
) -> Option<Reply> {
    if let Some(held) = &status.held_asleep {
        let retry = retry_after_held(held, waker.cloud().now());
        return Some(Reply::json(503, to_json(status).to_string(), "asleep").with("retry-after", retry.to_string()));
    }
    match status.phase {
        Phase::Ready => Some(redirect(waker, req, status, waited, deadline).await),
        Phase::Error => Some(
            Reply::json(503, to_json(status).to_string(), "error").with("retry-after", RETRY_ERROR_SECS.to_string()),
        ),
        _ if Instant::now() >= deadline => {
            let retry = status.eta_seconds.unwrap_or(RETRY_WAKING_SECS).clamp(1, 60);
            Some(Reply::json(503, to_json(status).to_string(), "waking").with("retry-after", retry.to_string()))
        }
        _ => None,
    }
}

/// The 307 once ready. A request that waited for the wake gets it at once; one that arrived
/// after the switch may be a client the load balancer sent back while the change propagates,
/// so it is paced ([`REDIRECT_PACE`]); past [`PROPAGATION`] it gets a 503 with `Retry-After`
/// while the wake's observer repairs the listener rule.
async fn redirect<C: Cloud>(
    waker: &Waker<C>,
    req: &Request,
    status: &Status,
    waited: bool,
    deadline: Instant,
) -> Reply {
    let since = status.routed_at.map(|t| waker.cloud().now() - t).unwrap_or(0);
    if since >= PROPAGATION.as_secs() as i64 {
        tracing::warn!(rule = %status.rule, seconds_since_ready = since, "a request still reaches autostop long after the switch");
        return Reply::json(503, to_json(status).to_string(), "routing")
            .with("retry-after", RETRY_WAKING_SECS.to_string());
    }
    if !waited {
        tokio::time::sleep_until((Instant::now() + REDIRECT_PACE).min(deadline)).await;
    }
    Reply::redirect(req.same_url())
}
