//! The standing rules the config wants on one listener (pure): its chunks, at the priorities
//! they get where rules that are not ours hold some.

use std::collections::HashSet;

use crate::cloud::CloudError;
use crate::config::standing::{self as priority, Chunk};
use crate::config::Config;

/// A standing rule as the config wants it on one listener: a chunk of the config's plan and
/// the priority it gets there (borrowed: a diff runs on every stop of every rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired<'a> {
    pub chunk: &'a Chunk,
    pub priority: u32,
}

/// Why a listener's standing rules cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl From<PlanError> for CloudError {
    fn from(e: PlanError) -> CloudError {
        CloudError::new("autostop", "RulePlanConflict", e.0)
    }
}

/// The standing rules of the config on a listener where `taken` priorities belong to rules that
/// are not ours.
pub fn desired<'a>(config: &'a Config, taken: &HashSet<u32>) -> Result<Vec<Desired<'a>>, PlanError> {
    let priorities = if taken.is_empty() {
        config.standing_priorities.clone()
    } else {
        let p = priority::assign(&config.standing, taken)
            .ok_or_else(|| PlanError("no free ALB rule priority left on the listener".into()))?;
        // The config's own order was checked at load; skipping taken priorities keeps it unless a
        // derived priority jumps past a pinned one.
        if !same_order(&config.standing_priorities, &p) {
            priority::check_order(&config.standing, &p)
                .map_err(|c| PlanError(format!("rules not ours shift ours: {c}")))?;
        }
        p
    };
    if let Some((c, p)) = config.standing.iter().zip(&priorities).find(|(c, p)| c.pinned.is_some() && taken.contains(p))
    {
        return Err(PlanError(format!(
            "priority {p} configured for rule `{}` is held by a listener rule autostop does not own",
            c.owner
        )));
    }
    Ok(config.standing.iter().zip(priorities).map(|(chunk, priority)| Desired { chunk, priority }).collect())
}

/// Whether two priority assignments order the chunks the same way.
fn same_order(a: &[u32], b: &[u32]) -> bool {
    let rank = |v: &[u32]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by_key(|&i| v[i]);
        idx
    };
    rank(a) == rank(b)
}
