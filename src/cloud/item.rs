//! The state table's item, as the port stores and loads it: one per rule, its [`Phase`], the
//! version every write is conditional on, history, the fleet-wide observation and lease, and an
//! operator's override. Data only: the one writer is `state::Store`, the transitions are
//! `state::transition`.

use serde::{Deserialize, Serialize};

/// Where a rule is, as the status JSON and the progress page show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Stopped,
    Starting,
    WaitingForHealth,
    Routing,
    Ready,
    Stopping,
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Starting => "starting",
            Phase::WaitingForHealth => "waiting_for_health",
            Phase::Routing => "routing",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
            Phase::Error => "error",
        }
    }

    /// The phase a stored name stands for; `None` for a name no version of autostop wrote.
    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == name)
    }

    pub const ALL: [Phase; 7] = [
        Phase::Stopped,
        Phase::Starting,
        Phase::WaitingForHealth,
        Phase::Routing,
        Phase::Ready,
        Phase::Stopping,
        Phase::Error,
    ];
}

/// A rule's item in the state table. Times are epoch seconds. AWS is the truth about what runs;
/// this item coordinates (every write is conditional on `version`) and keeps history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleState {
    pub rule: String,
    pub phase: Phase,
    pub version: u64,
    pub wake_started_at: Option<i64>,
    pub ready_at: Option<i64>,
    pub last_wake_at: Option<i64>,
    pub stopping_since: Option<i64>,
    pub stopped_at: Option<i64>,
    /// Seconds from wake to ready, newest last, at most [`WARMUPS_KEPT`].
    pub warmups: Vec<u64>,
    pub wakes: u64,
    pub stops: u64,
    /// Why the last stop (or wake) did not finish, if it did not: code, operation, what to do.
    pub last_error: Option<String>,
    /// When `last_error` was recorded (a wake retries a broken start after a pause).
    pub error_at: Option<i64>,
    /// Set when a stop failed in a way retrying cannot fix: what the rule and its resources
    /// looked like then. The idle check does not decide "stop" again until they change.
    pub stop_error_fingerprint: Option<String>,
    /// Instances the wake in progress started: a started instance found `stopped` again with
    /// `Client.InternalError` is the encrypted-volume case, whichever Lambda environment looks.
    pub started_instances: Vec<String>,
    /// Who asked for the wake in progress (the wake's cause: `browser`, `api`, ...), for the `Wakes` metric of
    /// whichever environment finishes it.
    pub wake_cause: Option<String>,
    /// Who woke it, verified (behind SSO: the token's email, else its subject); kept after the
    /// wake as the last wake's. Never a metric dimension (users are unbounded).
    pub woken_by: Option<String>,
    /// Who put it to sleep from the fleet page ("Sleep now"), until the next wake.
    pub stopped_by: Option<String>,
    /// The last observed status (the status JSON), shared by every Lambda environment, and
    /// when it was observed (epoch milliseconds).
    pub observed: Option<String>,
    pub observed_at_ms: Option<i64>,
    /// The observation was a look (a click-mode page, its poll), which wakes nothing: a wake
    /// does not take its `stopped` for an answer.
    pub observed_by_look: bool,
    /// The observer lease: the environment that may call AWS for this rule until
    /// `lease_until_ms` (the wake's fleet-wide coordination).
    pub lease_holder: Option<String>,
    pub lease_until_ms: Option<i64>,
    /// The lease is held for a look: a wake need not wait for it.
    pub lease_for_look: bool,
    /// The UTC month (`2026-11`) `asleep_seconds` counts in.
    pub asleep_month: Option<String>,
    /// Seconds of completed sleeps in `asleep_month` .
    pub asleep_seconds: u64,
    /// `asleep_seconds` priced at the rule's `hourly_cost`, when it has one.
    pub saved_this_month: Option<f64>,
    /// An operator's override : `awake` or `asleep` until `override_until`
    /// (epoch seconds), set by `override_by` (the caller's identity, or `operator`).
    pub override_mode: Option<String>,
    pub override_until: Option<i64>,
    pub override_by: Option<String>,
    /// The API clients held for this rule right now, fleet-wide: `slot@until_ms` each (a slot
    /// past its time is free, so a crashed holder frees its own).
    pub holds: Vec<String>,
    /// Seconds awake and asleep per UTC day, the last 30 days: `day:awake:asleep` each
    /// (`state::history`).
    pub days: Vec<String>,
}

pub const WARMUPS_KEPT: usize = 20;

impl RuleState {
    pub fn new(rule: &str) -> RuleState {
        RuleState { rule: rule.to_string(), phase: Phase::Stopped, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_back_as_written() {
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str(), "the status JSON says the same word");
        }
        assert_eq!(Phase::parse("asleep"), None);
    }
}
