//! `autostop stop RULE`: the ordered stop, now, whatever the activity.

use serde::Serialize;

use crate::cloud::Cloud;
use crate::sleep::{self, StopOutcome};
use crate::wake::Waker;

use super::{listeners_known, named_rule, OpError};

/// How the stop ended, with why when it did not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopReport {
    pub rule: String,
    pub result: StopResult,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopResult {
    Stopped,
    /// A wake or another checker moved the state first: nothing was touched.
    BackedOff,
    /// Some resources did not stop; the next run finishes the job.
    Partial,
}

pub async fn stop<C: Cloud>(waker: &Waker<C>, name: &str) -> Result<StopReport, OpError> {
    stop_by(waker, name, None).await
}

/// [`stop`] asked by `by` (the fleet page's viewer), recorded as the item's `stopped_by`.
pub async fn stop_by<C: Cloud>(waker: &Waker<C>, name: &str, by: Option<&str>) -> Result<StopReport, OpError> {
    let rule = named_rule(waker.config(), name)?;
    listeners_known(waker.config())?;
    let outcome = sleep::stop_now(waker.cloud(), waker.config(), &rule, by)
        .await
        .map_err(|e| OpError::cloud(format!("stop of `{}` failed", rule.name), &e))?;
    let (result, detail) = match outcome {
        StopOutcome::Stopped => (StopResult::Stopped, None),
        StopOutcome::BackedOff(why) => (StopResult::BackedOff, Some(why)),
        StopOutcome::Partial(why) => (StopResult::Partial, Some(why)),
    };
    Ok(StopReport { rule: rule.name, result, detail })
}
