//! Lifecycle events (`events = { bus }`): which transition a write of the state item made, and
//! the event it is. Pure. The store puts the event after its conditional write succeeded, so
//! exactly the environment that made a transition announces it, once, however many observe
//! the rule.

use serde_json::{json, Value};

use crate::cloud::{Phase, RuleState};

/// The transitions announced, by their `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    WakeStarted,
    EnvironmentReady,
    EnvironmentStopped,
    WakeFailed,
    StopFailed,
    OverrideSet,
}

impl Lifecycle {
    pub fn detail_type(self) -> &'static str {
        match self {
            Lifecycle::WakeStarted => "Wake Started",
            Lifecycle::EnvironmentReady => "Environment Ready",
            Lifecycle::EnvironmentStopped => "Environment Stopped",
            Lifecycle::WakeFailed => "Wake Failed",
            Lifecycle::StopFailed => "Stop Failed",
            Lifecycle::OverrideSet => "Override Set",
        }
    }
}

/// The transition from `prev` to `next`, if the write made one worth announcing. Leases,
/// published observations and hold slots change no phase and announce nothing.
pub fn lifecycle(prev: Option<&RuleState>, next: &RuleState) -> Option<Lifecycle> {
    let was = prev.map(|p| p.phase).unwrap_or(Phase::Stopped);
    let override_of = |s: &RuleState| (s.override_mode.clone(), s.override_until, s.override_by.clone());
    if prev.map(override_of).unwrap_or_default() != override_of(next) {
        return Some(Lifecycle::OverrideSet);
    }
    let new_error = next.last_error.is_some() && prev.and_then(|p| p.last_error.as_ref()) != next.last_error.as_ref();
    match next.phase {
        Phase::Starting if was != Phase::Starting || prev.and_then(|p| p.wake_started_at) != next.wake_started_at => {
            Some(Lifecycle::WakeStarted)
        }
        Phase::Ready if was != Phase::Ready => Some(Lifecycle::EnvironmentReady),
        Phase::Stopped if was != Phase::Stopped => Some(Lifecycle::EnvironmentStopped),
        _ if new_error && (was == Phase::Stopping || next.stop_error_fingerprint.is_some()) => {
            Some(Lifecycle::StopFailed)
        }
        Phase::Error if new_error => Some(Lifecycle::WakeFailed),
        _ => None,
    }
}

/// The event's `detail`: the rule, its hosts, cause and who woke it, the durations the
/// transition ends, and the AWS error code where there is one. `now`: epoch seconds.
pub fn detail(kind: Lifecycle, rule: &str, hosts: &[String], next: &RuleState, now: i64) -> Value {
    let span = |from: Option<i64>, to: Option<i64>| Some((to? - from?).max(0));
    let mut d = json!({
        "rule": rule,
        "hosts": hosts,
        "phase": next.phase.as_str(),
        "cause": next.wake_cause,
        "woken_by": next.woken_by,
        "at": now,
    });
    match kind {
        Lifecycle::WakeStarted => d["asleep_seconds"] = json!(span(next.stopped_at, next.wake_started_at)),
        Lifecycle::EnvironmentReady => d["wake_seconds"] = json!(span(next.wake_started_at, next.ready_at)),
        Lifecycle::EnvironmentStopped => {
            d["awake_seconds"] = json!(span(next.ready_at, next.stopped_at));
            d["stopped_by"] = json!(next.stopped_by);
        }
        Lifecycle::WakeFailed | Lifecycle::StopFailed => {
            d["error"] = json!(next.last_error);
            d["error_code"] = json!(next.last_error.as_deref().and_then(error_code));
        }
        Lifecycle::OverrideSet => {
            d["override"] = json!({"mode": next.override_mode, "until": next.override_until, "by": next.override_by});
        }
    }
    d
}

/// The AWS code in a recorded error: the first word written as `Code (Operation)`, as the wake
/// and the stop record them (`InvalidInstanceID.NotFound (StartInstances): ...`).
pub fn error_code(message: &str) -> Option<String> {
    let words: Vec<&str> = message.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let code = w[0].trim_end_matches(':');
        let looks = code.starts_with(|c: char| c.is_ascii_uppercase())
            && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
            && w[1].starts_with('(');
        looks.then(|| code.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(phase: Phase) -> RuleState {
        RuleState { phase, ..RuleState::new("api") }
    }

    #[test]
    fn each_transition_is_named_once_and_bookkeeping_writes_none() {
        let starting = RuleState { wake_started_at: Some(100), ..item(Phase::Starting) };
        assert_eq!(lifecycle(Some(&item(Phase::Stopped)), &starting), Some(Lifecycle::WakeStarted));
        assert_eq!(lifecycle(None, &starting), Some(Lifecycle::WakeStarted), "a first wake");
        let leased = RuleState { lease_holder: Some("env-2".into()), ..starting.clone() };
        assert_eq!(lifecycle(Some(&starting), &leased), None, "a lease is no transition");
        assert_eq!(lifecycle(Some(&starting), &item(Phase::Ready)), Some(Lifecycle::EnvironmentReady));
        assert_eq!(lifecycle(Some(&item(Phase::Ready)), &item(Phase::Ready)), None);
        assert_eq!(lifecycle(Some(&item(Phase::Stopping)), &item(Phase::Stopped)), Some(Lifecycle::EnvironmentStopped));
        let failed = RuleState { last_error: Some("x".into()), ..item(Phase::Stopping) };
        assert_eq!(lifecycle(Some(&item(Phase::Stopping)), &failed), Some(Lifecycle::StopFailed));
        assert_eq!(lifecycle(Some(&failed), &failed), None, "the same error again");
        let broken = RuleState { last_error: Some("y".into()), ..item(Phase::Error) };
        assert_eq!(lifecycle(Some(&starting), &broken), Some(Lifecycle::WakeFailed));
        let kept =
            RuleState { override_mode: Some("awake".into()), override_by: Some("ana".into()), ..item(Phase::Ready) };
        assert_eq!(lifecycle(Some(&item(Phase::Ready)), &kept), Some(Lifecycle::OverrideSet));
    }

    #[test]
    fn the_detail_carries_durations_and_the_code() {
        let ready = RuleState { wake_started_at: Some(100), ready_at: Some(160), ..item(Phase::Ready) };
        let d = detail(Lifecycle::EnvironmentReady, "api", &["api.x.com".into()], &ready, 160);
        assert_eq!((d["wake_seconds"].as_i64(), d["hosts"][0].as_str()), (Some(60), Some("api.x.com")));
        assert_eq!(
            error_code("InvalidInstanceID.NotFound (StartInstances): fix it").as_deref(),
            Some("InvalidInstanceID.NotFound")
        );
        assert_eq!(
            error_code("could not stop: i-1: UnauthorizedOperation (StopInstances). Then run").as_deref(),
            Some("UnauthorizedOperation")
        );
        assert_eq!(error_code("no code here"), None);
    }
}
