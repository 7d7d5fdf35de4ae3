//! The idle check's decision for one rule, from what it observed (pure): keep, stop, switch
//! back, record a stop, start, or leave alone. The intent (override, schedule) comes before
//! idleness, and a dependency runs while a rule that needs it is awake.

use std::time::Duration;

use serde::Serialize;

use crate::state::intent::Intent;
use crate::state::{Phase, RuleState};

/// What the idle check does with a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Awake and in use (or woken recently).
    Keep,
    /// Awake and idle: stop it.
    Stop,
    /// Asleep, but a standing rule still forwards to the app: switch it back to the Lambda.
    SwitchBack,
    /// Asleep, and the state says otherwise (a stop that did not finish recording, resources
    /// stopped by hand): record `stopped`.
    FinishStop,
    /// Asleep, nothing to do.
    Asleep,
    /// Awake, but the last stop failed in a way retrying cannot fix (see `last_error`).
    StopFailed,
    /// Its schedule or an override wants it running: start it (or finish its wake).
    Start,
}

impl Action {
    pub fn mutates(self) -> bool {
        !matches!(self, Action::Keep | Action::Asleep | Action::StopFailed)
    }
}

/// Everything the decision needs about one rule.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: i64,
    pub idle: Duration,
    /// How far back activity was read.
    pub window: Duration,
    /// How late CloudWatch shows activity (`metrics_lag`).
    pub lag: Duration,
    pub last_activity: Option<i64>,
    pub state: Option<&'a RuleState>,
    /// Any instance running or pending, or the service's desired count above 0.
    pub awake: bool,
    /// When the running resources were last started (EC2 LaunchTime, ECS deployment time).
    pub started_at: Option<i64>,
    /// Standing rules of this rule that forward to the app, over all listeners.
    pub app_routes: usize,
    /// `Observed::fingerprint` of the rule and its resources now.
    pub fingerprint: String,
    /// What its override or schedule wants (`state::intent`).
    pub intent: Intent,
    /// An awake rule that depends on this one (directly or through others): while there is
    /// one, this rule runs, whatever its idleness, schedule or override says.
    pub needed_by: Option<String>,
}

/// The decision, its reason, and for how long the rule has been idle (seconds), if known.
pub fn decide(f: &Facts) -> (Action, String, Option<i64>) {
    if let Some(dependent) = &f.needed_by {
        let why = format!("`{dependent}` depends on it and is awake");
        return match f.awake {
            true => (Action::Keep, why, None),
            false if f.app_routes > 0 => {
                let (action, why) = decide_stopped(f);
                (action, why, None)
            }
            false => (Action::Start, why, None),
        };
    }
    if !f.awake {
        let (action, why) = decide_stopped(f);
        return (action, why, None);
    }
    if let Some(s) = f.state.filter(|s| s.stop_error_fingerprint.as_deref() == Some(f.fingerprint.as_str())) {
        let why = s.last_error.as_deref().unwrap_or("the last stop failed");
        return (
            Action::StopFailed,
            format!("not stopping again until the config or the resources change: {why}"),
            None,
        );
    }
    match &f.intent {
        Intent::Asleep { why, .. } => (Action::Stop, why.clone(), None),
        Intent::Awake { why } | Intent::Prewarm { why, .. } => {
            // A wake the idle check began (or a request left) is followed until it is ready.
            let unfinished =
                f.state.is_some_and(|s| matches!(s.phase, Phase::Starting | Phase::WaitingForHealth | Phase::Routing));
            match unfinished {
                true => (Action::Start, format!("{why}; finishing the wake"), None),
                false => (Action::Keep, why.clone(), None),
            }
        }
        Intent::OnDemand => decide_idle(f),
    }
}

/// A rule whose resources are all stopped.
fn decide_stopped(f: &Facts) -> (Action, String) {
    if f.app_routes > 0 {
        return (
            Action::SwitchBack,
            format!("resources are stopped but {} standing rule(s) still forward to the app", f.app_routes),
        );
    }
    if let Intent::Awake { why } | Intent::Prewarm { why, .. } = &f.intent {
        return (Action::Start, why.clone());
    }
    // Anything but `stopped` on a rule whose resources are all stopped is a record left
    // behind (a stop that did not record, a wake that never finished, a stop by hand).
    if f.state.is_some_and(|s| matches!(s.phase, Phase::Stopping | Phase::Ready | Phase::Error | Phase::Starting)) {
        return (Action::FinishStop, "resources are stopped; recording the stop".into());
    }
    (Action::Asleep, "resources are stopped".into())
}

/// An awake rule on demand: stopped once idle for its idle time.
fn decide_idle(f: &Facts) -> (Action, String, Option<i64>) {
    let state = f.state;
    let reference = [f.last_activity, state.and_then(|s| s.last_wake_at), state.and_then(|s| s.ready_at), f.started_at]
        .into_iter()
        .flatten()
        .max();
    let idle = f.idle.as_secs() as i64;
    let (idle_for, why) = match reference {
        Some(r) => {
            let lag = f.lag.as_secs() as i64;
            let idle_for = (f.now - lag - r).max(0);
            let ago = (f.now - r).max(0);
            (idle_for, format!("last activity, wake or start {ago}s ago; idle for {idle_for}s, not counting the last {lag}s CloudWatch may not show yet"))
        }
        // Nothing in the whole window, and no record of a wake or start.
        None => (
            f.window.as_secs() as i64,
            format!("no activity in the last {}s and no record of a wake", f.window.as_secs()),
        ),
    };
    // Running, yet recorded as stopped by autostop: something else started it. RDS does so to a
    // database stopped for 7 days (RDS user guide, "Stopping an Amazon RDS DB instance
    // temporarily"); the idle check stops it again once idle, and says why.
    let why = match state.filter(|s| s.phase == Phase::Stopped) {
        Some(_) => format!("running although recorded stopped (started outside autostop; RDS starts a database again after 7 stopped days); {why}"),
        None => why,
    };
    if idle_for >= idle {
        (Action::Stop, format!("idle: {why} (idle time {idle}s)"), Some(idle_for))
    } else {
        (Action::Keep, format!("in use: {why} (idle time {idle}s)"), Some(idle_for))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(awake: bool) -> Facts<'static> {
        Facts {
            now: 10_000,
            idle: Duration::from_secs(300),
            window: Duration::from_secs(900),
            lag: Duration::from_secs(180),
            last_activity: None,
            state: None,
            awake,
            started_at: None,
            app_routes: 0,
            fingerprint: "f".into(),
            intent: Intent::OnDemand,
            needed_by: None,
        }
    }

    /// A dependency runs while a rule that depends on it is awake: kept however idle or
    /// scheduled asleep, started if found stopped.
    #[test]
    fn a_dependency_runs_while_a_dependent_is_awake() {
        let asleep = Intent::Asleep { why: "asleep on schedule `office`".into(), until: None };
        let needed = Facts { needed_by: Some("api".into()), intent: asleep, ..facts(true) };
        let (action, why, _) = decide(&needed);
        assert_eq!((action, why.as_str()), (Action::Keep, "`api` depends on it and is awake"));
        assert_eq!(decide(&Facts { awake: false, ..needed.clone() }).0, Action::Start);
        assert_eq!(decide(&facts(true)).0, Action::Stop, "without an awake dependent: idle");
    }

    /// The intent comes before idleness: a held-asleep rule stops however busy, a rule that
    /// should run starts, and is kept however idle; a wake it began is followed to the end.
    #[test]
    fn schedules_and_overrides_decide_before_idleness() {
        let asleep = Intent::Asleep { why: "asleep on schedule `office`".into(), until: None };
        let awake = Intent::Awake { why: "awake on schedule `office`".into() };
        let busy = Facts { last_activity: Some(9_990), intent: asleep.clone(), ..facts(true) };
        assert_eq!(decide(&busy).0, Action::Stop);
        assert_eq!(decide(&busy).1, "asleep on schedule `office`");
        assert_eq!(decide(&Facts { intent: asleep, ..facts(false) }).0, Action::Asleep);
        assert_eq!(decide(&Facts { intent: awake.clone(), ..facts(false) }).0, Action::Start);
        assert_eq!(decide(&Facts { intent: awake.clone(), ..facts(true) }).0, Action::Keep, "idle, but kept");
        let mut starting = RuleState::new("api");
        starting.phase = Phase::WaitingForHealth;
        let f = Facts { intent: awake.clone(), state: Some(&starting), ..facts(true) };
        assert_eq!(decide(&f).0, Action::Start);
        // Routed to the app while stopped: switched back first, started on the next run.
        assert_eq!(decide(&Facts { intent: awake, app_routes: 1, ..facts(false) }).0, Action::SwitchBack);
    }

    #[test]
    fn idle_is_measured_from_the_newest_of_activity_wake_ready_and_start() {
        let mut f = facts(true);
        f.last_activity = Some(9_600);
        assert_eq!(decide(&f).0, Action::Keep, "400 s ago, but CloudWatch may not show the last 180 s yet");
        f.last_activity = Some(9_520);
        let (action, reason, idle_for) = decide(&f);
        assert_eq!((action, idle_for), (Action::Stop, Some(300)), "{reason}");

        let state = RuleState { last_wake_at: Some(9_900), ..RuleState::new("api") };
        f.state = Some(Box::leak(Box::new(state)));
        assert_eq!(decide(&f).0, Action::Keep, "woken 100 s ago");
        f.state = None;
        f.started_at = Some(9_950);
        assert_eq!(decide(&f).0, Action::Keep, "started by hand 50 s ago");
    }

    #[test]
    fn nothing_known_means_idle_for_the_whole_window() {
        let (action, reason, idle_for) = decide(&facts(true));
        assert_eq!((action, idle_for), (Action::Stop, Some(900)));
        assert!(reason.contains("no activity"));
    }

    #[test]
    fn asleep_rules_get_drift_repair_only() {
        let mut f = facts(false);
        assert_eq!(decide(&f).0, Action::Asleep);
        f.app_routes = 2;
        assert_eq!(decide(&f).0, Action::SwitchBack);
        f.app_routes = 0;
        let stopping = RuleState { phase: Phase::Stopping, ..RuleState::new("api") };
        f.state = Some(Box::leak(Box::new(stopping)));
        assert_eq!(decide(&f).0, Action::FinishStop);
    }
}
