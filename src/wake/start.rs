//! Starting what is asleep: the rule's standing ALB rules first (a target group no rule
//! references is never health-checked, so the wake could never finish), then StartInstances,
//! UpdateService, UpdateAutoScalingGroup and StartDBInstance/Cluster as the plan says, then the
//! wake recorded in the state item.

use tokio::time::Instant;

use crate::cloud::{Cloud, CloudError, InstanceState};
use crate::config::Rule;
use crate::routing;
use crate::state::{transition, Phase};
use crate::telemetry::emf;

use super::observe::Observed;
use super::plan::Launch;
use super::status::{eta, ResourceState};
use super::step::{Step, StepFailure};
use super::{Memo, Status, Waker};

impl<C: Cloud> Waker<C> {
    pub(super) async fn start(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        obs: &Observed,
        mut resources: Vec<ResourceState>,
        launch: &Launch,
    ) -> Result<Status, StepFailure> {
        if matches!(memo.last_phase, None | Some(Phase::Ready) | Some(Phase::Stopped)) || memo.wake_started.is_none() {
            self.begin_wake(cx, memo);
        }
        self.ensure_standing(cx.rule).await.map_err(|e| (e, resources.clone()))?;
        let did = match self.launch(cx.rule, memo, &mut resources, launch).await {
            Ok(did) => did,
            Err(e) => return Err((e, resources)),
        };
        // A new wake when nothing of the rule was awake: it counts from now, not from an
        // earlier wake that never recorded its end.
        let fresh = !obs.instances.iter().any(|i| !matches!(i.state, InstanceState::Stopped))
            && obs.service.as_ref().is_none_or(|s| s.desired == 0)
            && obs.asg.as_ref().is_none_or(|g| g.desired == 0)
            && obs.databases.iter().all(|d| d.status == "stopped");
        self.record_starting(cx, &launch.instances, fresh, memo).await;
        let waiting = if obs.instances.iter().any(|i| i.state == InstanceState::Stopping) {
            "; waiting for a stopping instance to finish"
        } else {
            ""
        };
        let mut status = cx.status(Phase::Starting, &format!("{}{waiting}", did.join("; ")), resources, memo);
        if fresh {
            status.elapsed_seconds = Some(0);
            status.eta_seconds = eta(&cx.warmups, Some(0));
        }
        Ok(status)
    }

    /// The calls of a start, each resource line updated as it is made; returns what was done.
    async fn launch(
        &self,
        rule: &Rule,
        memo: &mut Memo,
        resources: &mut [ResourceState],
        launch: &Launch,
    ) -> Result<Vec<String>, CloudError> {
        let mut did = Vec::new();
        let mut mark = |pick: &dyn Fn(&ResourceState) -> bool, state: String| {
            resources.iter_mut().filter(|r| pick(r)).for_each(|r| r.state = state.clone());
        };
        if !launch.instances.is_empty() {
            let ids = &launch.instances;
            tracing::info!(rule = %rule.name, instances = ?ids, "starting instances");
            self.cloud.start_instances(ids).await?;
            memo.started.extend(ids.iter().cloned());
            mark(&|r| ids.contains(&r.id), "pending".into());
            did.push(format!("starting {}", ids.join(", ")));
        }
        if let (Some(n), Some(ecs)) = (launch.scale_to, &rule.ecs) {
            tracing::info!(rule = %rule.name, cluster = %ecs.cluster, service = %ecs.service, desired = n, "scaling service up");
            self.cloud.scale_service(&ecs.cluster, &ecs.service, n).await?;
            mark(&|r| r.kind == "ecs", format!("starting (0/{n})"));
            did.push(format!("scaling {}/{} to {n}", ecs.cluster, ecs.service));
        }
        if let (Some((min, desired)), Some(spec)) = (launch.asg_to, &rule.asg) {
            tracing::info!(rule = %rule.name, group = %spec.name, min, desired, "restoring Auto Scaling group");
            self.cloud.update_auto_scaling_group(&spec.name, min, desired).await?;
            mark(&|r| r.kind == "asg", format!("starting (0/{desired})"));
            did.push(format!("scaling group {} to {desired}", spec.name));
        }
        for (id, cluster) in &launch.databases {
            tracing::info!(rule = %rule.name, database = %id, cluster, "starting database");
            self.cloud.start_database(id, *cluster).await?;
            mark(&|r| &r.id == id, "starting".into());
            did.push(format!("starting database {id}"));
        }
        Ok(did)
    }

    /// Records the wake and which instances it started, so that every Lambda environment can
    /// tell "started, then stopped again" from "asleep".
    async fn record_starting(&self, cx: &Step<'_>, instances: &[String], fresh: bool, memo: &Memo) {
        let cause = memo.cause.map(|c| c.as_str());
        let w = transition::Starting { now: cx.wall, instances, fresh, cause, hourly_cost: cx.rule.hourly_cost };
        self.record(cx.rule, Some(cx.state.clone()), |prev| transition::starting(prev, &cx.rule.name, w)).await;
    }

    /// A new wake: its own clock, and `SecondsAsleep` for the sleep it ends.
    fn begin_wake(&self, cx: &Step<'_>, memo: &mut Memo) {
        memo.wake_started = Some(Instant::now());
        memo.started.clear();
        memo.phase_log.clear();
        if let Some(asleep) = cx.state.as_ref().and_then(|s| s.stopped_at).map(|t| (cx.wall - t).max(0) as u64) {
            let dims = [("Rule", cx.rule.name.as_str())];
            let line = emf::line(cx.wall * 1000, &dims, &[emf::seconds("SecondsAsleep", asleep)]);
            self.cloud.emit_metrics(line);
        }
    }

    /// Creates the rule's missing standing rules (forwarding to the Lambda); only lists the
    /// listeners when they are all there.
    pub(super) async fn ensure_standing(&self, rule: &Rule) -> Result<(), CloudError> {
        for listener in &self.config.listener_arns {
            let rules = self.cloud.listener_rules(listener).await?;
            if routing::complete(&self.config, &rules, rule) {
                continue;
            }
            tracing::info!(rule = %rule.name, listener = %listener, "standing rule missing: creating it");
            let mut view = routing::view(self.cloud.as_ref(), listener).await?;
            routing::ensure_on(self.cloud.as_ref(), &self.config, &mut view, rule).await?;
        }
        Ok(())
    }
}
