//! Operator overrides in the state item: written with its version checked, so a wake or a stop
//! recording at the same moment is never lost (nor is the override).

use std::time::Duration;

use crate::cloud::{Cloud, CloudError, ErrorKind, RuleState};
use crate::config::schedule::Mode;

/// The longest override: a forgotten one ends within a month.
pub const MAX_OVERRIDE: Duration = Duration::from_secs(30 * 86_400);

/// Writes the override (`mode` None clears it), retrying a lost race a few times.
pub async fn save<C: Cloud>(
    cloud: &C,
    table: &str,
    rule: &str,
    mode: Option<Mode>,
    until: Option<i64>,
    by: &str,
) -> Result<(), CloudError> {
    let mut attempt = 0;
    loop {
        let item = cloud.load_state(table, rule).await?;
        let mut next = item.clone().unwrap_or_else(|| RuleState::new(rule));
        next.override_mode = mode.map(|m| m.as_str().to_string());
        next.override_until = mode.and(until);
        next.override_by = mode.map(|_| by.to_string());
        next.version = item.as_ref().map(|i| i.version).unwrap_or(0) + 1;
        match cloud.save_state(table, &next, item.as_ref().map(|i| i.version)).await {
            Err(e) if e.kind == ErrorKind::Conflict && attempt < 4 => attempt += 1,
            other => return other,
        }
    }
}
