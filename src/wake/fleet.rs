//! One step for the whole fleet of Lambda environments. The state item carries the last
//! observed status and an observer lease: an environment answers from the item when the status
//! is fresh ([`STATUS_TTL`]; [`READY_TTL`] once ready) or another environment holds the lease;
//! otherwise it takes the lease with a conditional write (of two, one wins), steps (the only
//! AWS calls for this rule, fleet-wide), and publishes the status, which frees the lease. A
//! crashed holder's lease runs out after [`LEASE`]. Without the table every environment steps
//! on its own: more calls, but the wake completes.

use crate::cloud::{Cloud, CloudError};
use crate::config::Rule;
use crate::state::intent::{intent, Intent};
use crate::state::{self, transition, Phase, RuleState, Written};

use super::{Memo, Mode, Status, Waker, LEASE, READY_TTL, STATUS_TTL};

impl<C: Cloud> Waker<C> {
    /// `mode`: a wake step, or a look ([`Mode::Observe`]) that wakes nothing. A look answers
    /// from any fresh observation, a wake only from a wake's; a look's lease does not hold a
    /// wake back.
    pub(super) async fn fleet_step(&self, rule: &Rule, memo: &mut Memo, mode: Mode) -> Status {
        let item = match self.store().load(&rule.name).await {
            Ok(item) => item,
            Err(e) => return self.degraded_step(rule, memo, e, mode).await,
        };
        let intent = intent(rule, item.as_ref(), self.cloud.now());
        if let Some(held) = held_asleep(rule, &intent) {
            return held;
        }
        if state::stop_in_progress(item.as_ref(), self.cloud.now()) {
            // The checker owns the item until its stop is recorded: a lease or a publish would
            // move the version under its final write. The step only reads while it waits.
            return self.step(rule, memo, mode, None).await;
        }
        let now = self.cloud.now_ms();
        if let Some(status) = item.as_ref().and_then(|i| self.shared(i, now, mode)) {
            return status;
        }
        let (until, by) = (now + LEASE.as_millis() as i64, self.observer(mode));
        let claim = |prev: Option<&RuleState>| {
            let taken =
                prev.is_some_and(|p| self.shared(p, now, mode).is_some()) || state::stop_in_progress(prev, now / 1000);
            (!taken).then(|| transition::claim_lease(prev, &rule.name, by, until))
        };
        let claimed = match self.store().update(&rule.name, Some(item), claim).await {
            Ok(Written::Saved(claimed)) => claimed,
            // Another environment took it a moment ago: answer from what it publishes.
            Ok(Written::Declined(latest)) => {
                return latest.as_ref().and_then(observation).unwrap_or_else(|| observing_elsewhere(&rule.name))
            }
            Err(e) => return self.degraded_step(rule, memo, e, mode).await,
        };
        // The item as just written: the step need not read it again.
        let mut status = self.step(rule, memo, mode, Some(Some(claimed))).await;
        status.intent = intent.why().map(str::to_string);
        self.publish(rule, &status, by).await;
        status
    }

    fn observer(&self, mode: Mode) -> transition::Observer<'_> {
        transition::Observer { holder: &self.id, look: mode == Mode::Observe }
    }

    /// The status from the item when this environment need not observe: fresh, or being
    /// observed by another environment right now. A wake takes neither a look's observation
    /// (it woke nothing) nor waits for a look's lease.
    fn shared(&self, item: &RuleState, now_ms: i64, mode: Mode) -> Option<Status> {
        let wake = mode == Mode::Wake;
        let observed = observation(item).filter(|_| !(wake && item.observed_by_look));
        let ttl = match observed.as_ref().map(|s| s.phase) {
            Some(Phase::Ready) => READY_TTL,
            _ => STATUS_TTL,
        };
        let fresh = observed.is_some() && item.observed_at_ms.is_some_and(|t| now_ms - t < ttl.as_millis() as i64);
        let leased_elsewhere = item.lease_holder.as_deref().is_some_and(|h| h != self.id)
            && item.lease_until_ms.is_some_and(|t| t > now_ms)
            && !(wake && item.lease_for_look);
        match (fresh, leased_elsewhere) {
            (true, _) => observed,
            (false, true) => Some(observed.unwrap_or_else(|| observing_elsewhere(&item.rule))),
            (false, false) => None,
        }
    }

    /// Writes the status into the item for every other environment and frees the lease.
    async fn publish(&self, rule: &Rule, status: &Status, by: transition::Observer<'_>) {
        let Ok(json) = serde_json::to_string(status) else { return };
        let now = self.cloud.now_ms();
        self.record(rule, None, |prev| transition::published(prev, &rule.name, &json, now, by)).await;
    }

    /// The state table cannot be reached: step on our own, and say so once per environment.
    /// The schedule still holds the rule asleep (overrides are in the table, out of reach).
    async fn degraded_step(&self, rule: &Rule, memo: &mut Memo, e: CloudError, mode: Mode) -> Status {
        if self.note_degraded() {
            tracing::warn!(table = %self.config.state_table, code = %e.code, "state table unreachable: this environment observes and starts on its own (more AWS calls; waking still works)");
        }
        if let Some(held) = held_asleep(rule, &intent(rule, None, self.cloud.now())) {
            return held;
        }
        self.step(rule, memo, mode, None).await
    }
}

/// The status another environment published in the item.
fn observation(item: &RuleState) -> Option<Status> {
    item.observed.as_deref().and_then(|json| serde_json::from_str(json).ok())
}

/// The answer when the rule's override or schedule holds it asleep: nothing is started, no
/// AWS call is made, and the status says why and until when.
fn held_asleep(rule: &Rule, intent: &Intent) -> Option<Status> {
    let Intent::Asleep { why, until } = intent else { return None };
    tracing::debug!(rule = %rule.name, why = %why, "held asleep: not waking");
    let mut status = Status::new(&rule.name, Phase::Stopped, format!("Asleep: {why}."));
    status.held_asleep = Some(super::HeldAsleep { why: why.clone(), until: *until });
    status.intent = Some(why.clone());
    Some(status)
}

/// What an environment answers while another one observes and nothing has been published yet.
fn observing_elsewhere(rule: &str) -> Status {
    Status::new(rule, Phase::Starting, "waking; another Lambda instance is observing it")
}
