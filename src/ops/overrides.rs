//! `keep-awake`, `sleep` and `resume`: the override is written to the rule's item, then acted on
//! at once: a rule kept awake is started, one put to sleep is stopped (a resumed rule is left to
//! its schedule and the idle check).

use serde::Serialize;

use crate::cloud::Cloud;
use crate::config::schedule::{self, Mode};
use crate::sleep::{self, StopOutcome};
use crate::state::{intent, transition, RuleState, MAX_OVERRIDE};
use crate::wake::{Cause, Waker};

use super::{listeners_known, named_rule, OpError};

/// How long an override lasts, as given: a duration (`"2h"`), or a local time (`"18:30"`,
/// `"mon 08:00"`, `"2026-12-01 08:00"`) read in the rule's schedule's zone (UTC without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    For(std::time::Duration),
    At(String),
}

/// The override as set, and what acting on it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideReport {
    pub rule: String,
    /// `None` once cleared.
    #[serde(rename = "override")]
    pub shown: Option<OverrideShown>,
    /// The phase a kept-awake rule reached, how the stop went, or `cleared`.
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideShown {
    pub mode: &'static str,
    pub until: i64,
    /// `until` in the rule's schedule's zone (UTC without one).
    pub until_local: String,
    pub by: String,
}

/// Sets (`mode` Some) or clears the override of rule `name`. `by` is who asked: the CLI's caller
/// identity, or `operator` for a direct invoke.
pub async fn set<C: Cloud>(
    waker: &Waker<C>,
    name: &str,
    mode: Option<Mode>,
    until: Option<Until>,
    by: &str,
) -> Result<OverrideReport, OpError> {
    let rule = named_rule(waker.config(), name)?;
    let now = waker.cloud().now();
    let until = resolve(&rule, mode, until, now)?;
    if mode == Some(Mode::Asleep) {
        listeners_known(waker.config())?;
    }
    let set = |prev: Option<&RuleState>| Some(transition::override_set(prev, &rule.name, mode, until, by));
    waker
        .store()
        .update(&rule.name, None, set)
        .await
        .map_err(|e| OpError::cloud("override not saved, nothing changed", &e))?;
    tracing::info!(rule = %rule.name, mode = mode.map(Mode::as_str), until, by, "override set");
    let result = match mode {
        Some(Mode::Awake) => waker.wake_as(&rule, Cause::Operator, Some(by)).await.phase.as_str().to_string(),
        Some(Mode::Asleep) => match sleep::stop_now(waker.cloud(), waker.config(), &rule, Some(by)).await {
            Ok(StopOutcome::Stopped) => "stopped".into(),
            Ok(StopOutcome::BackedOff(why) | StopOutcome::Partial(why)) => why,
            Err(e) => format!("stop failed, the idle check retries: {e}"),
        },
        None => "cleared".into(),
    };
    let shown = mode.zip(until).map(|(m, u)| OverrideShown {
        mode: m.as_str(),
        until: u,
        until_local: intent::local(rule.schedule.as_deref(), u),
        by: by.to_string(),
    });
    Ok(OverrideReport { rule: rule.name, shown, result })
}

/// When the override ends, in epoch seconds; at most [`MAX_OVERRIDE`] from now.
fn resolve(
    rule: &crate::config::Rule,
    mode: Option<Mode>,
    until: Option<Until>,
    now: i64,
) -> Result<Option<i64>, OpError> {
    let tz = rule.schedule.as_ref().map(|s| s.timezone.as_str()).unwrap_or("UTC");
    let until = match (mode, until) {
        (None, _) => None,
        (Some(_), Some(Until::For(d))) => Some(now + d.as_secs() as i64),
        (Some(_), Some(Until::At(text))) => {
            Some(schedule::resolve_until(&text, tz, now).map_err(|e| OpError::Usage(format!("\"until\": {e}")))?)
        }
        (Some(_), None) => return Err(OpError::Usage("an override needs \"for\" or \"until\"".into())),
    };
    if until.is_some_and(|u| u - now > MAX_OVERRIDE.as_secs() as i64) {
        return Err(OpError::Usage("an override lasts at most 30 days (\"for\" / \"until\")".into()));
    }
    Ok(until)
}
