//! The state table: the item ([`RuleState`], its [`Phase`]), the one store that writes it
//! ([`Store`], one conditional-write retry policy), the transitions it goes through (pure,
//! [`transition`]), and what is derived from it: a rule's intent from its override and schedule
//! ([`intent`]) and its savings ([`savings`]). AWS is the truth about what runs; the item
//! coordinates Lambda environments and keeps history. Nothing here decides what to wake or
//! stop, and nothing but [`Store`] writes the table.

pub mod events;
pub mod fleet;
pub mod history;
pub mod intent;
pub mod savings;
mod store;
pub mod transition;

pub use crate::cloud::{Phase, RuleState, WARMUPS_KEPT};
pub use store::{Store, Written, ATTEMPTS};

/// The longest override: a forgotten one ends within a month.
pub const MAX_OVERRIDE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// How long a stop may hold the item before wakes take it as crashed.
pub const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// An idle stop claimed the rule less than [`STOP_TIMEOUT`] ago and has not finished: it owns
/// the item until it records the stop.
pub fn stop_in_progress(state: Option<&RuleState>, now: i64) -> bool {
    state.is_some_and(|s| {
        s.phase == Phase::Stopping && s.stopping_since.is_some_and(|t| now - t < STOP_TIMEOUT.as_secs() as i64)
    })
}
