//! `autostop stop RULE`: the ordered stop, now, whatever the activity.

use serde::Serialize;

use crate::cloud::Cloud;
use crate::sleep::{self, StopOutcome};
use crate::wake::Waker;

use super::{listeners_known, named_rule, OpError};

/// How the stop ended: `stopped`, `backed_off` or `partial`, with why when it did not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopReport {
    pub rule: String,
    pub result: &'static str,
    pub detail: Option<String>,
}

impl StopReport {
    pub fn stopped(&self) -> bool {
        self.result == "stopped"
    }
}

pub async fn stop<C: Cloud>(waker: &Waker<C>, name: &str) -> Result<StopReport, OpError> {
    let rule = named_rule(waker.config(), name)?;
    listeners_known(waker.config())?;
    let outcome = sleep::stop_now(waker.cloud(), waker.config(), &rule)
        .await
        .map_err(|e| OpError::Failed(format!("stop of `{}` failed: {e}", rule.name)))?;
    let (result, detail) = match outcome {
        StopOutcome::Stopped => ("stopped", None),
        StopOutcome::BackedOff(why) => ("backed_off", Some(why)),
        StopOutcome::Partial(why) => ("partial", Some(why)),
    };
    Ok(StopReport { rule: rule.name, result, detail })
}
