//! Every change the state item goes through, as pure functions: each takes the item as it is
//! (`None`: there is none yet) and returns the next one. [`super::Store::update`] writes them,
//! conditional on the version they were made from; the version is the store's to set.

use super::{history, savings};
use super::{Phase, RuleState, WARMUPS_KEPT};
use crate::config::schedule::Mode;

/// The item to change: the current one, or a new one for `rule`.
fn base(prev: Option<&RuleState>, rule: &str) -> RuleState {
    prev.cloned().unwrap_or_else(|| RuleState::new(rule))
}

/// Clears the last error, unless a failed stop recorded it: that one says why the idle check
/// leaves the rule alone, and stays until a stop succeeds.
fn clear_error(s: &mut RuleState) {
    if s.stop_error_fingerprint.is_none() {
        s.last_error = None;
        s.error_at = None;
    }
}

/// A stop makes the status last published by a wake stale at once: without this, a request
/// within the ready status's lifetime would be told "ready" from the item.
fn forget_observed(s: &mut RuleState) {
    s.observed = None;
    s.observed_at_ms = None;
    s.observed_by_look = false;
}

/// What a wake that starts resources records.
#[derive(Debug, Clone, Copy)]
pub struct Starting<'a> {
    pub now: i64,
    /// When this wake began: `now`, or earlier when it readied the rule's dependencies first.
    pub began: i64,
    /// Instances this step started: a started instance found `stopped` again is the
    /// encrypted-volume case, whichever environment looks.
    pub instances: &'a [String],
    /// Nothing of the rule was awake: the wake counts from now, not from an earlier wake that
    /// never recorded its end.
    pub fresh: bool,
    pub cause: Option<&'a str>,
    /// The verified user who asked (behind SSO).
    pub by: Option<&'a str>,
    pub hourly_cost: Option<f64>,
}

/// A wake starts (or goes on starting) resources; the sleep it ends is counted for savings.
pub fn starting(prev: Option<&RuleState>, rule: &str, w: Starting) -> RuleState {
    let mut s = base(prev, rule);
    // Only a stop that took counts as a sleep: one still `stopping` (retrying, or crashed) has
    // no `stopped_at` of its own, and the one recorded is an earlier sleep's.
    if s.phase == Phase::Stopped {
        savings::close_sleep(&mut s, w.now, w.hourly_cost);
        if let Some(since) = s.stopped_at {
            history::add_span(&mut s, since, w.now, false);
        }
    }
    if s.phase != Phase::Starting || w.fresh {
        s.wake_started_at = Some(w.began.min(w.now));
        s.started_instances.clear();
        s.wake_cause = w.cause.map(str::to_string);
        s.woken_by = w.by.map(str::to_string);
        s.stopped_by = None;
    }
    for id in w.instances {
        if !s.started_instances.contains(id) {
            s.started_instances.push(id.clone());
        }
    }
    s.phase = Phase::Starting;
    s.last_wake_at = Some(w.now);
    clear_error(&mut s);
    s
}

/// The wake finished (its standing rules forward to the app): its warm-up is kept for the ETA
/// and pre-warming, and counted, when it was recorded starting.
pub fn ready(prev: Option<&RuleState>, rule: &str, now: i64) -> RuleState {
    let mut s = base(prev, rule);
    if let (Some(started), Phase::Starting) = (s.wake_started_at, s.phase) {
        s.warmups.push((now - started).max(0) as u64);
        let extra = s.warmups.len().saturating_sub(WARMUPS_KEPT);
        s.warmups.drain(..extra);
        s.wakes += 1;
    }
    s.phase = Phase::Ready;
    s.ready_at = Some(now);
    s.started_instances.clear();
    clear_error(&mut s);
    s
}

/// A wake that cannot go on (a terminated instance, a start that fell back to `stopped`).
pub fn broken(prev: Option<&RuleState>, rule: &str, now: i64, message: &str) -> RuleState {
    let mut s = base(prev, rule);
    s.phase = Phase::Error;
    s.last_error = Some(message.to_string());
    s.error_at = Some(now);
    s
}

/// Who observes a rule for the fleet, and how: `look` for a look that wakes nothing (a
/// click-mode page), else a wake step.
#[derive(Debug, Clone, Copy)]
pub struct Observer<'a> {
    pub holder: &'a str,
    pub look: bool,
}

/// This environment takes the observer lease until `until_ms`.
pub fn claim_lease(prev: Option<&RuleState>, rule: &str, by: Observer, until_ms: i64) -> RuleState {
    let mut s = base(prev, rule);
    s.lease_holder = Some(by.holder.to_string());
    s.lease_until_ms = Some(until_ms);
    s.lease_for_look = by.look;
    s
}

/// The status an environment observed, for every other one; its lease, if it held it, ends.
pub fn published(prev: Option<&RuleState>, rule: &str, status_json: &str, now_ms: i64, by: Observer) -> RuleState {
    let holder = by.holder;
    let mut s = base(prev, rule);
    s.observed = Some(status_json.to_string());
    s.observed_at_ms = Some(now_ms);
    s.observed_by_look = by.look;
    if s.lease_holder.as_deref() == Some(holder) {
        s.lease_until_ms = Some(now_ms);
    }
    s
}

/// API clients held for one rule at once, fleet-wide. Each holds a Lambda environment for up
/// to `hold`; beyond this many, a client is answered 503 with `Retry-After` at once, so a burst
/// (a CI matrix) cannot take the concurrency every other host and the idle check need.
pub const HOLD_SLOTS: usize = 4;

/// When a hold slot (`slot@until_ms`) ends.
fn hold_until(entry: &str) -> i64 {
    entry.rsplit_once('@').and_then(|(_, t)| t.parse().ok()).unwrap_or(0)
}

/// A held client takes a slot until `until_ms`; declines when [`HOLD_SLOTS`] are taken. Slots
/// past their time are dropped on the way.
pub fn take_hold(prev: Option<&RuleState>, rule: &str, slot: &str, until_ms: i64, now_ms: i64) -> Option<RuleState> {
    let mut s = base(prev, rule);
    s.holds.retain(|h| hold_until(h) > now_ms);
    if s.holds.len() >= HOLD_SLOTS {
        return None;
    }
    s.holds.push(format!("{slot}@{until_ms}"));
    Some(s)
}

/// A held client is answered: its slot is free (nothing to write when it is gone already).
pub fn release_hold(prev: Option<&RuleState>, rule: &str, slot: &str, now_ms: i64) -> Option<RuleState> {
    let mine = |h: &String| h.rsplit_once('@').is_some_and(|(s, _)| s == slot);
    if !prev?.holds.iter().any(mine) {
        return None;
    }
    let mut s = base(prev, rule);
    s.holds.retain(|h| !mine(h) && hold_until(h) > now_ms);
    Some(s)
}

/// An idle stop claims the rule: `stopping`, since the first claim of this stop.
pub fn claim_stop(prev: Option<&RuleState>, rule: &str, now: i64) -> RuleState {
    let mut s = base(prev, rule);
    if s.phase != Phase::Stopping || s.stopping_since.is_none() {
        s.stopping_since = Some(now);
    }
    s.phase = Phase::Stopping;
    forget_observed(&mut s);
    s
}

/// The resources are stopped. `counted`: this stop stopped them (`Stops` counts it); else it
/// only records what AWS shows (stopped by hand, or a stop that did not record).
/// `by`: who asked for it (the fleet page's viewer); an idle stop records nobody.
pub fn stopped(prev: Option<&RuleState>, rule: &str, now: i64, counted: bool, by: Option<&str>) -> RuleState {
    let mut s = base(prev, rule);
    if let (true, Some(since)) = (s.phase != Phase::Stopped, s.wake_started_at) {
        history::add_span(&mut s, since, now, true);
    }
    s.phase = Phase::Stopped;
    s.stopped_at = Some(now);
    s.stopped_by = by.map(str::to_string);
    if counted {
        s.stops += 1;
    }
    s.last_error = None;
    s.error_at = None;
    s.stop_error_fingerprint = None;
    s.started_instances.clear();
    forget_observed(&mut s);
    s
}

/// A stop that did not finish. `fingerprint`: it failed in a way retrying cannot fix, so the
/// rule is in error until its config or resources change; `None`: the next run retries it
/// (the rule stays `stopping`).
pub fn stop_failed(
    prev: Option<&RuleState>,
    rule: &str,
    now: i64,
    message: &str,
    fingerprint: Option<&str>,
) -> RuleState {
    let mut s = base(prev, rule);
    s.error_at = Some(now);
    s.last_error = Some(message.to_string());
    if let Some(f) = fingerprint {
        s.phase = Phase::Error;
        s.stop_error_fingerprint = Some(f.to_string());
    }
    s
}

/// An operator's override (`mode` None clears it).
pub fn override_set(
    prev: Option<&RuleState>,
    rule: &str,
    mode: Option<Mode>,
    until: Option<i64>,
    by: &str,
) -> RuleState {
    let mut s = base(prev, rule);
    s.override_mode = mode.map(|m| m.as_str().to_string());
    s.override_until = mode.and(until);
    s.override_by = mode.map(|_| by.to_string());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_slots_are_limited_fleet_wide_and_freed_by_their_holder_or_their_time() {
        let mut item: Option<RuleState> = None;
        for k in 0..HOLD_SLOTS {
            item = take_hold(item.as_ref(), "api", &format!("env-{k}"), 30_000, 1_000);
        }
        assert_eq!(item.as_ref().unwrap().holds.len(), HOLD_SLOTS);
        assert!(take_hold(item.as_ref(), "api", "env-x", 30_000, 1_000).is_none(), "budget spent");
        let freed = release_hold(item.as_ref(), "api", "env-0", 2_000).unwrap();
        assert!(take_hold(Some(&freed), "api", "env-x", 30_000, 2_000).is_some(), "a released slot is free");
        assert!(take_hold(item.as_ref(), "api", "env-x", 60_000, 30_000).is_some(), "slots past their time are free");
        assert!(release_hold(Some(&freed), "api", "env-0", 2_000).is_none(), "released twice writes nothing");
    }

    const T: i64 = 1_795_514_400;

    fn wake(prev: Option<&RuleState>, instances: &[String], fresh: bool) -> RuleState {
        let w = Starting {
            now: T,
            began: T,
            instances,
            fresh,
            cause: Some("browser"),
            by: Some("ana@example.com"),
            hourly_cost: Some(1.0),
        };
        starting(prev, "api", w)
    }

    #[test]
    fn a_wake_from_sleep_counts_the_sleep_and_records_its_start_and_cause() {
        let asleep = RuleState { stopped_at: Some(T - 7200), ..RuleState::new("api") };
        let s = wake(Some(&asleep), &["i-1".into()], true);
        assert_eq!((s.phase, s.wake_started_at, s.last_wake_at), (Phase::Starting, Some(T), Some(T)));
        assert_eq!(
            (s.wake_cause.as_deref(), s.started_instances.as_slice()),
            (Some("browser"), ["i-1".to_string()].as_slice())
        );
        assert_eq!((s.asleep_seconds, s.saved_this_month), (7200, Some(2.0)), "two hours asleep at 1.00");
    }

    #[test]
    fn a_wake_going_on_keeps_its_start_and_adds_what_it_started() {
        let first = wake(None, &["i-1".into()], true);
        let later = RuleState { wake_started_at: Some(T - 30), ..first };
        let s = starting(
            Some(&later),
            "api",
            Starting {
                now: T + 5,
                began: T + 5,
                instances: &["i-2".into()],
                fresh: false,
                cause: None,
                by: Some("eve@example.com"),
                hourly_cost: None,
            },
        );
        assert_eq!(s.wake_started_at, Some(T - 30));
        assert_eq!(s.started_instances, vec!["i-1".to_string(), "i-2".to_string()]);
        assert_eq!(s.wake_cause.as_deref(), Some("browser"), "the cause of the wake that began it");
        assert_eq!(s.woken_by.as_deref(), Some("ana@example.com"), "and who began it");
    }

    #[test]
    fn ready_keeps_the_warmup_of_a_recorded_wake_and_no_more_than_are_kept() {
        let mut s = wake(None, &[], true);
        s.warmups = (0..WARMUPS_KEPT as u64).collect();
        let r = ready(Some(&s), "api", T + 42);
        assert_eq!((r.phase, r.ready_at, r.wakes), (Phase::Ready, Some(T + 42), 1));
        assert_eq!((r.warmups.len(), r.warmups.last()), (WARMUPS_KEPT, Some(&42)));
        let again = ready(Some(&r), "api", T + 50);
        assert_eq!((again.wakes, again.warmups.len()), (1, WARMUPS_KEPT), "only a starting wake counts");
    }

    #[test]
    fn a_failed_stops_error_outlives_a_wake_other_errors_do_not() {
        let broke = broken(None, "api", T, "InstanceMissing (DescribeInstances): replace it");
        assert_eq!((broke.phase, broke.error_at), (Phase::Error, Some(T)));
        assert_eq!(ready(Some(&broke), "api", T + 1).last_error, None);
        let failed = stop_failed(None, "api", T, "could not stop", Some("f00d"));
        assert_eq!((failed.phase, failed.stop_error_fingerprint.as_deref()), (Phase::Error, Some("f00d")));
        assert_eq!(ready(Some(&failed), "api", T + 1).last_error.as_deref(), Some("could not stop"));
        let retrying = stop_failed(Some(&claim_stop(None, "api", T)), "api", T, "throttled", None);
        assert_eq!(retrying.phase, Phase::Stopping, "a retryable failure stays stopping");
    }

    #[test]
    fn the_lease_is_claimed_and_freed_by_its_holders_publish_only() {
        let (a, b) = (Observer { holder: "env-a", look: false }, Observer { holder: "env-b", look: true });
        let leased = claim_lease(None, "api", a, T * 1000 + 5000);
        let by_other = published(Some(&leased), "api", "{}", T * 1000 + 100, b);
        assert_eq!(by_other.lease_until_ms, Some(T * 1000 + 5000));
        assert!(by_other.observed_by_look && !leased.lease_for_look, "a look says so; a wake's lease is not a look's");
        let by_holder = published(Some(&leased), "api", "{\"phase\":\"starting\"}", T * 1000 + 100, a);
        assert_eq!((by_holder.lease_until_ms, by_holder.observed_at_ms), (Some(T * 1000 + 100), Some(T * 1000 + 100)));
        assert_eq!(by_holder.observed.as_deref(), Some("{\"phase\":\"starting\"}"));
    }

    #[test]
    fn a_stop_keeps_its_first_claim_time_forgets_the_observation_and_counts_once() {
        let a = Observer { holder: "env-a", look: true };
        let seen = published(Some(&ready(None, "api", T)), "api", "{\"phase\":\"ready\"}", T * 1000, a);
        let claim = claim_stop(Some(&seen), "api", T + 10);
        assert_eq!(
            (claim.phase, claim.stopping_since, claim.observed.as_deref()),
            (Phase::Stopping, Some(T + 10), None)
        );
        assert_eq!(claim_stop(Some(&claim), "api", T + 99).stopping_since, Some(T + 10), "a retried stop");
        let done = stopped(Some(&claim), "api", T + 20, true, Some("ana"));
        assert_eq!((done.phase, done.stopped_at, done.stops), (Phase::Stopped, Some(T + 20), 1));
        assert_eq!(stopped(Some(&done), "api", T + 30, false, None).stops, 1, "recording what AWS shows is no stop");
        assert_eq!(done.stopped_by.as_deref(), Some("ana"), "who asked for the stop");
    }

    #[test]
    fn an_override_is_set_with_who_and_cleared_whole() {
        let set = override_set(None, "api", Some(Mode::Awake), Some(T + 3600), "alice");
        assert_eq!(
            (set.override_mode.as_deref(), set.override_until, set.override_by.as_deref()),
            (Some("awake"), Some(T + 3600), Some("alice"))
        );
        let cleared = override_set(Some(&set), "api", None, Some(T), "bob");
        assert_eq!((cleared.override_mode, cleared.override_until, cleared.override_by), (None, None, None));
    }
}
