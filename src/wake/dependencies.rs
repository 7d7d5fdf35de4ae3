//! A rule's dependencies, readied first and in order, each through its own wake (so its own
//! dependencies, lease and state apply); the rule's `delay` then counts from when this
//! environment saw them all ready.

use tokio::time::Instant;

use crate::cloud::Cloud;
use crate::config::Rule;
use crate::state::Phase;

use super::status::{DependencyState, ResourceState};
use super::step::Step;
use super::{Cause, Memo, Status, Waker};

impl<C: Cloud> Waker<C> {
    /// Readies the rule's dependencies first, in order, each through its own wake (so its own
    /// dependencies, lease and state apply). `None` once every one is ready and the rule's
    /// `delay` has passed since this environment saw them so; until then the rule's status:
    /// starting (or in error, with the dependency's error), each dependency a step.
    pub(super) async fn dependencies_first(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        resources: &[ResourceState],
    ) -> Option<Status> {
        let rule = cx.rule;
        if rule.depends_on.is_empty() {
            return None;
        }
        memo.wake_started.get_or_insert(Instant::now());
        memo.dependencies_began.get_or_insert(Instant::now());
        let cause = memo.cause.unwrap_or(Cause::Operator);
        let by = memo.by.clone();
        let mut states: Vec<DependencyState> =
            rule.depends_on.iter().map(|d| DependencyState { rule: d.clone(), phase: Phase::Stopped }).collect();
        for (i, name) in rule.depends_on.iter().enumerate() {
            let Some(dep) = self.config.rule(name) else { continue };
            let s = self.wake_dependency(dep, cause, by.as_deref()).await;
            states[i].phase = s.phase;
            if s.phase != Phase::Ready {
                memo.dependencies_ready = None;
                let phase = if s.phase == Phase::Error { Phase::Error } else { Phase::Starting };
                let message = format!("readying {name} first: {}", s.message);
                let mut status = cx.status(phase, &message, resources.to_vec(), memo);
                status.error = s.error;
                status.held_asleep = s.held_asleep;
                status.dependencies = states;
                return Some(status);
            }
        }
        let since = *memo.dependencies_ready.get_or_insert(Instant::now());
        let left = rule.delay.saturating_sub(since.elapsed());
        if left.is_zero() {
            return None;
        }
        let message = format!("{} ready; starting in {} s", rule.depends_on.join(", "), left.as_secs().max(1));
        let mut status = cx.status(Phase::Starting, &message, resources.to_vec(), memo);
        status.dependencies = states;
        Some(status)
    }

    /// A dependency's wake, boxed: the wake of a rule may wake its dependencies, whose wake may
    /// wake theirs (the config has no cycles).
    fn wake_dependency<'a>(
        &'a self,
        rule: &'a Rule,
        cause: Cause,
        by: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Status> + Send + 'a>> {
        Box::pin(self.wake_as(rule, cause, by))
    }
}
