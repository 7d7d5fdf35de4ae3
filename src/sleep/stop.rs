//! The ordered stop, so no request is ever routed to a target that is going away: claim
//! `stopping` (a conditional write; a wake that moved the version wins) -> switch the rule's
//! standing rules back to the Lambda -> tag and scale ECS to 0, scale the group to 0, stop the
//! databases and instances (never terminate) -> record `stopped`.

use crate::cloud::{
    AutoScalingGroup, Cloud, CloudError, DatabaseState, ErrorKind, RuleState, ASG_DESIRED_TAG, ASG_MIN_TAG,
    DESIRED_COUNT_TAG,
};
use crate::config::{Config, Rule};
use crate::routing::{self as routes, ListenerView, Route};
use crate::state::{transition, Phase, Store, Written};
use crate::telemetry::emf;
use crate::wake::{advice, Observed};

/// How an ordered stop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    /// Someone else moved the state first (a wake, another checker): nothing was touched.
    BackedOff(String),
    /// Some resources did not stop; the state says which and the next run finishes the job.
    Partial(String),
}

/// Reads the state; a missing table is `None` (waking and stopping go on without history).
pub(super) async fn read_state<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &str,
) -> Result<Option<RuleState>, CloudError> {
    match Store::of(cloud, config).load(rule).await {
        Ok(s) => Ok(s),
        Err(e) if e.kind == ErrorKind::NotFound => {
            tracing::warn!(table = %config.state_table, "state table missing; stopping without coordination");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Claims or records a stop on exactly the item it was decided on (a wake that moved it since
/// wins: `Conflict`). A missing table is no error: stopping goes on without coordination.
async fn claim<C: Cloud>(
    cloud: &C,
    config: &Config,
    decided: Option<&RuleState>,
    next: RuleState,
) -> Result<Option<RuleState>, CloudError> {
    match Store::of(cloud, config).claim(decided, next.clone()).await {
        Ok(Written::Saved(item)) => Ok(Some(item)),
        Ok(Written::Declined(_)) => Err(moved()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Some(next)),
        Err(e) => Err(e),
    }
}

/// Writes a transition of a stop the checker has claimed, re-applied after a lost race while the
/// item is still the claim (an override set meanwhile, say). A missing table is no error.
async fn record_claimed<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &str,
    claimed: Option<&RuleState>,
    change: impl Fn(Option<&RuleState>) -> RuleState,
) -> Result<(), CloudError> {
    let still_claimed = |now: Option<&RuleState>| now.is_some_and(|n| n.phase == Phase::Stopping).then(|| change(now));
    match Store::of(cloud, config).update(rule, Some(claimed.cloned()), still_claimed).await {
        Ok(Written::Saved(_)) => Ok(()),
        Ok(Written::Declined(_)) => Err(moved()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn moved() -> CloudError {
    CloudError::new("PutItem", "ConditionalCheckFailedException", "the state changed since the stop was decided")
}

pub(super) async fn record_stopped<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &Rule,
    prev: Option<RuleState>,
) -> Result<(), CloudError> {
    let next = transition::stopped(prev.as_ref(), &rule.name, cloud.now(), false, None);
    claim(cloud, config, prev.as_ref(), next).await.map(|_| ())
}

/// What an ordered stop needs.
pub struct StopRequest<'a> {
    pub rule: &'a Rule,
    /// The state item the decision was made on: the claim is conditional on its version.
    pub decided: Option<&'a RuleState>,
    /// The rule's resources as observed for the decision.
    pub observed: &'a Observed,
    /// The listeners as last listed.
    pub views: &'a mut [ListenerView],
    /// Why it stops, for the log.
    pub reason: &'a str,
    /// The `Reason` dimension of the `Stops` metric: `idle`, `operator`.
    pub cause: &'static str,
    /// Who asked for it (the fleet page's viewer), recorded as `stopped_by`.
    pub by: Option<&'a str>,
}

/// The ordered stop (see the module docs). The claim is a write conditional on the decided
/// item's version, so a wake recorded since then wins and this backs off, and of two checkers
/// only one claims. The caller sweeps the listeners afterwards ([`sweep_routes`]) in case a wake
/// that read the state just before the claim switched the rule to the app again.
///
/// A stop that fails never locks the rule: a fault retrying can fix (throttling, network) leaves
/// it `stopping` for the next run, which keeps the first `stopping_since`, so the stop timeout
/// still frees wakes; any other fault records phase `error` with what to do, and the idle check
/// leaves the rule alone until its config or its resources change ([`Observed::fingerprint`]).
pub async fn stop_rule<C: Cloud>(cloud: &C, config: &Config, req: StopRequest<'_>) -> Result<StopOutcome, CloudError> {
    let StopRequest { rule, decided, observed, views, reason, cause, by } = req;
    // 1. Claim the stop, on the item the decision was made on.
    let claimed = match claim(cloud, config, decided, transition::claim_stop(decided, &rule.name, cloud.now())).await {
        Err(e) if e.kind == ErrorKind::Conflict => {
            return Ok(StopOutcome::BackedOff(
                "the state changed since the decision (a wake or another checker)".into(),
            ))
        }
        other => other?,
    };
    tracing::info!(rule = %rule.name, reason, "stopping");

    // 2. Take traffic away first, so no request is routed to a target that is going away. If
    //    that fails, nothing is stopped: the failure is recorded like a resource's.
    let mut failures = Vec::new();
    for view in views.iter_mut() {
        if let Err(e) = routes::switch_on(cloud, config, view, rule, Route::Lambda).await {
            failures.push((format!("listener {}", view.listener), e));
        }
    }

    // 3. Stop the resources; each on its own so one failure does not hold the others.
    if failures.is_empty() {
        failures = stop_resources(cloud, rule, observed).await;
    }

    // 4. Record the outcome.
    if failures.is_empty() {
        record_stop(cloud, config, rule, (decided, claimed.as_ref()), cause, by).await?;
        return Ok(StopOutcome::Stopped);
    }
    record_failure(cloud, config, rule, claimed.as_ref(), observed, &failures).await
}

/// A stop that did not finish: retried on the next run when every failure is retryable, else
/// the rule is in error until its config or resources change.
async fn record_failure<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &Rule,
    claimed: Option<&RuleState>,
    observed: &Observed,
    failures: &[(String, CloudError)],
) -> Result<StopOutcome, CloudError> {
    let why = failures.iter().map(|(what, e)| format!("{what}: {} ({})", e.code, e.op)).collect::<Vec<_>>().join(", ");
    let (message, fingerprint) = match failures.iter().find(|(_, e)| !retry_later(e)) {
        None => (format!("could not stop: {why}; retrying on the next run"), None),
        Some((_, first)) => {
            let message = format!(
                "could not stop: {why}. {} Then run `autostop stop {}`; until then the idle check leaves it alone",
                advice(first),
                rule.name
            );
            tracing::warn!(rule = %rule.name, error = %message, "stop failed; the rule is in phase error");
            (message, Some(observed.fingerprint(rule)))
        }
    };
    let now = cloud.now();
    let failed = |p: Option<&RuleState>| transition::stop_failed(p, &rule.name, now, &message, fingerprint.as_deref());
    record_claimed(cloud, config, &rule.name, claimed, failed).await?;
    Ok(StopOutcome::Partial(message))
}

/// Tags and scales the service to 0, stops each running instance; returns what failed.
async fn stop_resources<C: Cloud>(cloud: &C, rule: &Rule, plan: &Observed) -> Vec<(String, CloudError)> {
    let mut failures = Vec::new();
    if let (Some(ecs), Some(svc)) = (&rule.ecs, &plan.service) {
        if svc.is_active() && svc.desired > 0 {
            let what = format!("{}/{}", ecs.cluster, ecs.service);
            // Remember the count before it is gone, so the wake restores it; without the tag,
            // scaling to 0 would lose it: skip the scale.
            let scaled = match cloud.tag_service(&svc.arn, DESIRED_COUNT_TAG, &svc.desired.to_string()).await {
                Ok(()) => cloud.scale_service(&ecs.cluster, &ecs.service, 0).await,
                Err(e) => Err(e),
            };
            match scaled {
                Ok(()) => {
                    tracing::info!(rule = %rule.name, service = %what, remembered = svc.desired, "service scaled to 0")
                }
                Err(e) => failures.push((what, e)),
            }
        }
    }
    if let Some(g) = plan.asg.as_ref().filter(|g| g.exists && g.desired > 0) {
        if let Err(e) = scale_group_to_zero(cloud, rule, g).await {
            failures.push((format!("Auto Scaling group {}", g.name), e));
        }
    }
    failures.extend(stop_databases(cloud, rule, plan).await);
    let asked = rule.ec2.as_ref().is_some_and(|e| e.hibernate);
    for instance in plan.running_instances() {
        let id = &instance.id;
        // Hibernation can only be enabled at launch (EC2 user guide): never ask it of another.
        let hibernate = asked && instance.hibernation_configured;
        if asked && !hibernate {
            tracing::warn!(rule = %rule.name, instance = %id, "not enabled for hibernation at launch: stopping it instead (hibernation can only be enabled when an instance is launched)");
        }
        match cloud.stop_instances(std::slice::from_ref(id), hibernate).await {
            Ok(()) => tracing::info!(rule = %rule.name, instance = %id, hibernate, "instance stopping"),
            Err(e) => {
                tracing::warn!(rule = %rule.name, instance = %id, code = %e.code, message = %e.message, "StopInstances failed");
                failures.push((id.clone(), e));
            }
        }
    }
    failures
}

/// Stops each database that is `available`, the only status RDS stops (RDS API reference,
/// StopDBInstance / StopDBCluster). One that serves but is busy (a backup, a modification,
/// maintenance) or still starting cannot be stopped yet: a failure the next run retries, so the
/// rule stays `stopping` and no sleep is counted until the stop took.
async fn stop_databases<C: Cloud>(cloud: &C, rule: &Rule, plan: &Observed) -> Vec<(String, CloudError)> {
    let mut failures = Vec::new();
    for d in &plan.databases {
        match d.state() {
            DatabaseState::Available if d.cannot_stop.is_some() => {
                let why = d.cannot_stop.as_deref().unwrap_or_default();
                tracing::warn!(rule = %rule.name, database = %d.id, why = %why, "database left running");
            }
            DatabaseState::Available => match cloud.stop_database(&d.id, d.cluster).await {
                Ok(()) => tracing::info!(rule = %rule.name, database = %d.id, cluster = d.cluster, "database stopping"),
                Err(e) => failures.push((d.id.clone(), e)),
            },
            DatabaseState::Busy | DatabaseState::Starting => {
                let (op, code) = if d.cluster {
                    ("StopDBCluster", "InvalidDBClusterStateFault")
                } else {
                    ("StopDBInstance", "InvalidDBInstanceState")
                };
                let why = format!("{} is {}; RDS stops it once it is available", d.id, d.status);
                tracing::info!(rule = %rule.name, database = %d.id, status = %d.status, "database not stoppable yet; the next run retries");
                failures.push((d.id.clone(), CloudError::new(op, code, why)));
            }
            DatabaseState::Broken => {
                tracing::warn!(rule = %rule.name, database = %d.id, status = %d.status, "database left as it is: RDS reports a status it does not leave by itself");
            }
            DatabaseState::Stopping | DatabaseState::Stopped | DatabaseState::Missing => {}
        }
    }
    failures
}

/// A failure the next run may fix by itself: throttling, a network fault, or a resource that
/// is changing state (a database backing up, an instance still pending).
fn retry_later(e: &CloudError) -> bool {
    e.kind.is_retryable() || e.kind == ErrorKind::InvalidState
}

/// Remembers the group's min size and desired capacity in its tags, then sets both to 0: the
/// group terminates its instances (stopping them one by one would only make it replace them).
/// Without the tags the sizes would be lost, so a failed tag skips the scale.
async fn scale_group_to_zero<C: Cloud>(cloud: &C, rule: &Rule, g: &AutoScalingGroup) -> Result<(), CloudError> {
    let tags = [(ASG_MIN_TAG, g.min.to_string()), (ASG_DESIRED_TAG, g.desired.to_string())];
    cloud.tag_auto_scaling_group(&g.name, &tags).await?;
    cloud.update_auto_scaling_group(&g.name, 0, 0).await?;
    tracing::info!(rule = %rule.name, group = %g.name, remembered_min = g.min, remembered_desired = g.desired, "Auto Scaling group scaled to 0");
    Ok(())
}

/// Records a finished stop and publishes `Stops`.
async fn record_stop<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &Rule,
    (current, claimed): (Option<&RuleState>, Option<&RuleState>),
    cause: &'static str,
    by: Option<&str>,
) -> Result<(), CloudError> {
    let now = cloud.now();
    let done = |p: Option<&RuleState>| transition::stopped(p, &rule.name, now, true, by);
    record_claimed(cloud, config, &rule.name, claimed, done).await?;
    let awake_since = current.and_then(|s| s.ready_at.or(s.wake_started_at).or(s.last_wake_at));
    let mut values = vec![emf::count("Stops")];
    if let Some(since) = awake_since {
        values.push(emf::seconds("SecondsAwake", (now - since).max(0) as u64));
    }
    cloud.emit_metrics(emf::line(now * 1000, &[("Rule", rule.name.as_str()), ("Reason", cause)], &values));
    Ok(())
}

/// After stops: one listing per listener, switching back any standing rule of the stopped rules
/// that a racing wake switched to the app.
pub async fn sweep_routes<C: Cloud>(cloud: &C, config: &Config, stopped: &[&Rule]) -> Result<usize, CloudError> {
    if stopped.is_empty() {
        return Ok(0);
    }
    let mut switched = 0;
    for mut view in routes::views(cloud, config).await? {
        for rule in stopped {
            let n = routes::switch_on(cloud, config, &mut view, rule, Route::Lambda).await?;
            if n > 0 {
                tracing::warn!(rule = %rule.name, listener = %view.listener, "standing rule forwarded to the app again during the stop; switched back");
            }
            switched += n;
        }
    }
    Ok(switched)
}
