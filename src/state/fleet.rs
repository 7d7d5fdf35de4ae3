//! The fleet's activity as the idle check last saw it, kept in one item of the state table
//! (`@fleet`, a name no rule can have), so the fleet page reads everything from one Scan and
//! calls no CloudWatch: each rule's last activity and idle time, and when it was seen.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::RuleState;

/// The item's key.
pub const FLEET_ITEM: &str = "@fleet";

/// One rule's activity, as the idle check decided on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub last_activity: Option<i64>,
    pub idle_seconds: u64,
}

/// The `@fleet` item with `activity` seen at `now_ms` (its JSON in `observed`).
pub fn summary(prev: Option<&RuleState>, activity: &HashMap<String, Activity>, now_ms: i64) -> RuleState {
    let mut s = prev.cloned().unwrap_or_else(|| RuleState::new(FLEET_ITEM));
    s.observed = serde_json::to_string(activity).ok();
    s.observed_at_ms = Some(now_ms);
    s
}

/// The activity the item holds, and when it was seen (epoch ms).
pub fn read(items: &[RuleState]) -> (HashMap<String, Activity>, Option<i64>) {
    let Some(item) = items.iter().find(|s| s.rule == FLEET_ITEM) else { return (HashMap::new(), None) };
    let activity = item.observed.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
    (activity, item.observed_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_back() {
        let a = HashMap::from([("api".to_string(), Activity { last_activity: Some(100), idle_seconds: 1800 })]);
        let item = summary(None, &a, 5_000);
        assert_eq!(read(&[RuleState::new("web"), item]), (a, Some(5_000)));
    }
}
