//! Starting what is asleep: the rule's standing ALB rules first (a target group no rule
//! references is never health-checked, so the wake could never finish), then StartInstances,
//! UpdateService, UpdateAutoScalingGroup and StartDBInstance/Cluster as the plan says, then the
//! wake recorded in the state item. An instance its zone has no capacity for does not hold the
//! rest: the others start, health decides, and later steps try it again.

use tokio::time::Instant;

use crate::cloud::{Cloud, CloudError, ErrorKind, InstanceState};
use crate::config::Rule;
use crate::routing;
use crate::state::{transition, Phase};
use crate::telemetry::emf;

use super::observe::Observed;
use super::plan::Launch;
use super::status::ResourceState;
use super::step::{Step, StepFailure};
use super::{Memo, Mode, Status, Waker};

/// What a start did: its words, the instances it started, and those short of capacity.
#[derive(Default)]
struct Launched {
    did: Vec<String>,
    started: Vec<String>,
    short: Vec<(String, CloudError)>,
}

impl<C: Cloud> Waker<C> {
    pub(super) async fn start(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        obs: &Observed,
        mut resources: Vec<ResourceState>,
        launch: &Launch,
    ) -> Result<Status, StepFailure> {
        // A wake already recorded as finished, starting again what was short of capacity: not a
        // new wake, and nothing to record over its end.
        let finished = cx.recorded(Phase::Ready).is_some();
        let new_wake = matches!(memo.last_phase, None | Some(Phase::Ready) | Some(Phase::Stopped));
        if !finished && (new_wake || memo.wake_started.is_none()) {
            self.begin_wake(cx, memo);
        }
        self.ensure_standing(cx.rule).await.map_err(|e| (e, resources.clone()))?;
        let launched = match self.launch(cx.rule, memo, &mut resources, launch).await {
            Ok(launched) => launched,
            Err(e) => return Err((e, resources)),
        };
        // A new wake when nothing of the rule was awake: it counts from now, not from an
        // earlier wake that never recorded its end.
        let fresh = !obs.instances.iter().any(|i| !matches!(i.state, InstanceState::Stopped))
            && obs.service.as_ref().is_none_or(|s| s.desired == 0)
            && obs.asg.as_ref().is_none_or(|g| g.desired == 0)
            && obs.databases.iter().all(|d| d.status == "stopped");
        if !finished {
            self.record_starting(cx, &launched.started, fresh, memo).await;
        }
        if !launched.short.is_empty() {
            return self.short_of_capacity(cx, memo, obs, resources, launched).await;
        }
        let waiting = if obs.instances.iter().any(|i| i.state == InstanceState::Stopping) {
            "; waiting for a stopping instance to finish"
        } else {
            ""
        };
        let mut status = cx.status(Phase::Starting, &format!("{}{waiting}", launched.did.join("; ")), resources, memo);
        if fresh {
            // From this wake's own start (its first request, dependencies included), never an
            // earlier wake's.
            let since = super::elapsed(memo).unwrap_or(0);
            status.elapsed_seconds = Some(since);
            status.eta_seconds = cx.eta(Some(since));
        }
        Ok(status)
    }

    /// Some instances could not start for lack of capacity. With others of the rule running or
    /// starting behind its target group, health decides as for any wake, and the status names
    /// the ones that failed; with nothing else, the wake is in error with the code.
    async fn short_of_capacity(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        obs: &Observed,
        mut resources: Vec<ResourceState>,
        launched: Launched,
    ) -> Result<Status, StepFailure> {
        let others = !launched.started.is_empty() || !obs.running_instances().is_empty();
        if cx.rule.target_group_arn.is_none() || !others {
            let (_, e) = launched.short.into_iter().next().expect("some instance was short");
            return Err((e, resources));
        }
        let mut notes = Vec::new();
        for (id, e) in &launched.short {
            tracing::warn!(rule = %cx.rule.name, instance = %id, code = %e.code, "instance short of capacity: the others go on, the next step tries it again");
            resources.iter_mut().filter(|r| &r.id == id).for_each(|r| r.state = format!("stopped ({})", e.code));
            notes.push(format!("instance {id} could not start ({}); the next request tries it again", e.code));
        }
        let mut status = self.up(cx, memo, Mode::Wake, resources).await?;
        status.message = format!("{}; {}", status.message, notes.join("; "));
        Ok(status)
    }

    /// The calls of a start, each resource line updated as it is made.
    async fn launch(
        &self,
        rule: &Rule,
        memo: &mut Memo,
        resources: &mut [ResourceState],
        launch: &Launch,
    ) -> Result<Launched, CloudError> {
        let mut done = Launched::default();
        let mut mark = |pick: &dyn Fn(&ResourceState) -> bool, state: String| {
            resources.iter_mut().filter(|r| pick(r)).for_each(|r| r.state = state.clone());
        };
        if !launch.instances.is_empty() {
            tracing::info!(rule = %rule.name, instances = ?launch.instances, "starting instances");
            (done.started, done.short) = self.start_instances(&launch.instances).await?;
            memo.started.extend(done.started.iter().cloned());
            mark(&|r| done.started.contains(&r.id), "pending".into());
            if !done.started.is_empty() {
                done.did.push(format!("starting {}", done.started.join(", ")));
            }
        }
        if let (Some(n), Some(ecs)) = (launch.scale_to, &rule.ecs) {
            tracing::info!(rule = %rule.name, cluster = %ecs.cluster, service = %ecs.service, desired = n, "scaling service up");
            self.cloud.scale_service(&ecs.cluster, &ecs.service, n).await?;
            mark(&|r| r.kind == "ecs", format!("starting (0/{n})"));
            done.did.push(format!("scaling {}/{} to {n}", ecs.cluster, ecs.service));
        }
        if let (Some((min, desired)), Some(spec)) = (launch.asg_to, &rule.asg) {
            tracing::info!(rule = %rule.name, group = %spec.name, min, desired, "restoring Auto Scaling group");
            self.cloud.update_auto_scaling_group(&spec.name, min, desired).await?;
            mark(&|r| r.kind == "asg", format!("starting (0/{desired})"));
            done.did.push(format!("scaling group {} to {desired}", spec.name));
        }
        for (id, cluster) in &launch.databases {
            tracing::info!(rule = %rule.name, database = %id, cluster, "starting database");
            self.cloud.start_database(id, *cluster).await?;
            mark(&|r| &r.id == id, "starting".into());
            done.did.push(format!("starting database {id}"));
        }
        Ok(done)
    }

    /// StartInstances for all of them; when a zone lacks capacity for one, which fails the whole
    /// call, each alone, so the others start. Returns the started ones and those short of
    /// capacity; any other failure is the step's.
    async fn start_instances(&self, ids: &[String]) -> Result<(Vec<String>, Vec<(String, CloudError)>), CloudError> {
        match self.cloud.start_instances(ids).await {
            Ok(()) => return Ok((ids.to_vec(), Vec::new())),
            Err(e) if e.kind == ErrorKind::Capacity && ids.len() == 1 => {
                return Ok((Vec::new(), vec![(ids[0].clone(), e)]))
            }
            Err(e) if e.kind == ErrorKind::Capacity => {}
            Err(e) => return Err(e),
        }
        let (mut started, mut short) = (Vec::new(), Vec::new());
        for id in ids {
            match self.cloud.start_instances(std::slice::from_ref(id)).await {
                Ok(()) => started.push(id.clone()),
                Err(e) if e.kind == ErrorKind::Capacity => short.push((id.clone(), e)),
                Err(e) => return Err(e),
            }
        }
        Ok((started, short))
    }

    /// Records the wake and which instances it started, so that every Lambda environment can
    /// tell "started, then stopped again" from "asleep".
    async fn record_starting(&self, cx: &Step<'_>, instances: &[String], fresh: bool, memo: &mut Memo) {
        let cause = memo.cause.map(|c| c.as_str());
        let waited = memo.dependencies_began.map(|t| t.elapsed().as_secs() as i64).unwrap_or(0);
        let began = cx.wall - waited;
        let by = memo.by.as_deref();
        let w =
            transition::Starting { now: cx.wall, began, instances, fresh, cause, by, hourly_cost: cx.rule.hourly_cost };
        self.record(cx.rule, Some(cx.state.clone()), |prev| transition::starting(prev, &cx.rule.name, w)).await;
        memo.dependencies_began = None;
    }

    /// A new wake: its own clock, and `SecondsAsleep` for the sleep it ends.
    fn begin_wake(&self, cx: &Step<'_>, memo: &mut Memo) {
        memo.wake_started = Some(memo.dependencies_began.unwrap_or_else(Instant::now));
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
        routing::ensure(self.cloud.as_ref(), &self.config, rule).await
    }
}
