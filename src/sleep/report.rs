//! What an idle check reports: one line per rule (its action, why, and what came of it), and
//! the drift repair of the standing rules.

use serde::Serialize;

use crate::routing as routes;

use super::decide::Action;

/// One line of the idle check's report (and of its log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReport {
    pub rule: String,
    pub action: Action,
    pub reason: String,
    pub last_activity: Option<i64>,
    pub idle_for_seconds: Option<i64>,
    pub idle_seconds: u64,
    /// Standing rules of this rule over all listeners when the check began.
    pub listener_rules: usize,
    /// What happened: `done`, `dry_run`, `backed_off`, `partial`, `failed`, `nothing`.
    pub outcome: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleReport {
    pub dry_run: bool,
    pub now: i64,
    pub rules: Vec<RuleReport>,
    /// Drift repair of the standing rules, per listener (planned only, in a dry run).
    pub standing_rules: Vec<routes::Report>,
    /// Why the standing rules could not be repaired, if they could not.
    pub standing_rules_error: Option<String>,
}
