//! A fleet-wide budget of held API clients per rule: each held client takes one of the state
//! item's hold slots ([`HOLD_SLOTS`]) for as long as it may be held, and frees it when answered.
//! A slot past its time is free, so a crashed or timed-out environment frees its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cloud::{Cloud, ErrorKind};
use crate::config::Rule;
use crate::state::transition::{release_hold, take_hold, HOLD_SLOTS};
use crate::state::Written;

use super::Waker;

/// One held client's slot.
#[derive(Debug)]
pub struct Hold {
    slot: String,
    /// Written to the item (without the table nothing is counted).
    recorded: bool,
}

impl<C: Cloud> Waker<C> {
    /// A slot for one client held up to `budget`; `None` when [`HOLD_SLOTS`] clients of this
    /// rule are held already across the fleet (or so many take one at once that the item could
    /// not be written): the client is answered at once. Without the table the client is held,
    /// as before, uncounted.
    pub async fn take_hold(&self, rule: &Rule, budget: Duration) -> Option<Hold> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let slot = format!("{}-{}", self.id, NEXT.fetch_add(1, Ordering::Relaxed));
        let now = self.cloud.now_ms();
        let until = now + budget.as_millis() as i64;
        match self.store().update(&rule.name, None, |prev| take_hold(prev, &rule.name, &slot, until, now)).await {
            Ok(Written::Saved(_)) => Some(Hold { slot, recorded: true }),
            Ok(Written::Declined(_)) => {
                tracing::info!(rule = %rule.name, slots = HOLD_SLOTS, "hold budget spent: answering at once");
                None
            }
            // So many took a slot at once that the writes kept racing: held, uncounted, while
            // the item shows slots free.
            Err(e) if e.kind == ErrorKind::Conflict => match self.store().load(&rule.name).await {
                Ok(Some(item)) if take_hold(Some(&item), &rule.name, &slot, until, now).is_none() => None,
                _ => Some(Hold { slot, recorded: false }),
            },
            Err(e) => {
                tracing::warn!(rule = %rule.name, code = %e.code, "hold slot not recorded; holding uncounted");
                Some(Hold { slot, recorded: false })
            }
        }
    }

    /// Frees the client's slot (best effort: a slot that is not freed ends at its time).
    pub async fn release_hold(&self, rule: &Rule, hold: Hold) {
        if !hold.recorded {
            return;
        }
        let now = self.cloud.now_ms();
        let free = |prev: Option<&_>| release_hold(prev, &rule.name, &hold.slot, now);
        if let Err(e) = self.store().update(&rule.name, None, free).await {
            tracing::debug!(rule = %rule.name, code = %e.code, "hold slot not freed; it ends at its time");
        }
    }
}
