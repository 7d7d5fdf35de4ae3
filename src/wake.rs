//! The wake path: observe -> decide (pure) -> act, one idempotent step per call.
//!
//! [`Waker::wake`] is what every request for a sleeping rule calls. Concurrent callers for one rule
//! queue on that rule's async mutex; the first does the step, the rest find its status cached for
//! [`STATUS_TTL`], so N simultaneous requests cost the AWS calls of one. Each step:
//!
//! 1. observes the rule's instances and service;
//! 2. decides with [`plan_resources`] (pure): error, wait for a stop, start, booting, or up;
//! 3. acts: makes sure the rule's standing ALB rules exist (so the ALB health-checks the app's
//!    target group), StartInstances / UpdateService; once up, reads target health and, with at
//!    least one healthy target, switches the standing rules to the app with one ModifyRule per
//!    listener ([`crate::routes`]) and records the wake as finished. The rule is `ready` once the
//!    switch has been in place for `settle`, because ALB applies a change within seconds.
//!
//! Every step is safe to repeat and safe to run in several Lambda instances at once: starting a
//! pending instance is a no-op, and switching a rule that already forwards to the app changes
//! nothing.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::cloud::{
    AutoScalingGroup, Cloud, CloudError, Database, ErrorKind, Instance, InstanceState, Service, TargetHealth,
};
use crate::cloud::{RuleState, WARMUPS_KEPT};
use crate::config::Config;
use crate::intent::{intent, Intent};
use crate::telemetry::emf;

use crate::config::Rule;
use crate::routes::{self, Route};

/// How long one observation serves every caller of a rule (the "about a second" of SPEC).
pub const STATUS_TTL: Duration = Duration::from_secs(1);
/// How long a published `ready` status serves every environment: after the switch, requests
/// that still reach autostop are answered from the item without reading the listeners again.
pub const READY_TTL: Duration = Duration::from_secs(10);
/// How long an observer lease lasts: a crashed holder frees the rule after this long.
pub const LEASE: Duration = Duration::from_secs(5);
/// A stop recorded longer ago than this is taken as crashed: wakes stop waiting for it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a recorded broken start (seconds) is shown before a request may try the start again.
pub const ERROR_PAUSE: i64 = 60;

/// Where a rule is, as the status JSON and the progress page show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Stopped,
    Starting,
    WaitingForHealth,
    Routing,
    Ready,
    Stopping,
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Starting => "starting",
            Phase::WaitingForHealth => "waiting_for_health",
            Phase::Routing => "routing",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
            Phase::Error => "error",
        }
    }
}

/// One resource line of the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// `ec2` or `ecs`.
    pub kind: String,
    pub id: String,
    pub state: String,
}

/// A step that failed in a way the user must hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// The AWS operation (or `autostop` for conditions we detect ourselves).
    pub operation: String,
    /// The AWS error code, e.g. `InsufficientInstanceCapacity`.
    pub code: String,
    pub kind: String,
    pub detail: String,
    /// What to do about it.
    pub action: String,
}

/// The status JSON of SPEC (plus `error` when the phase is `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub rule: String,
    pub phase: Phase,
    pub message: String,
    pub resources: Vec<ResourceState>,
    pub targets: TargetHealth,
    pub elapsed_seconds: Option<u64>,
    pub eta_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// Set when nothing was started because the rule is held asleep (an `asleep` window of its
    /// schedule, or an operator's `sleep`): why, and until when (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_asleep: Option<HeldAsleep>,
    /// What the rule's override or schedule says, when either says anything ("kept awake by
    /// ... until ...", "awake on schedule ..."): the progress page and the status show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The rule's dependencies, in order, while its wake readies them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<DependencyState>,
}

/// One dependency of a waking rule, as its progress page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyState {
    pub rule: String,
    pub phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAsleep {
    pub why: String,
    pub until: Option<i64>,
}

/// What the resources need, decided from one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourcePlan {
    /// Cannot be woken: terminated or missing instance, missing service, failed boot.
    Broken(StepError),
    /// Start what is asleep.
    Start(Launch),
    /// Some instance is still `stopping`; it can be started once `stopped`.
    WaitForStop,
    /// Started, not yet running.
    Booting,
    /// Everything runs: target health decides from here.
    Up,
}

/// What a start does: start these stopped instances, scale the service to this count, and/or
/// set the Auto Scaling group's (min size, desired capacity).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Launch {
    pub instances: Vec<String>,
    pub scale_to: Option<u32>,
    pub asg_to: Option<(u32, u32)>,
    /// Stopped databases to start: (identifier, is a cluster).
    pub databases: Vec<(String, bool)>,
}

/// What one observation of a rule's resources found.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub instances: Vec<Instance>,
    pub service: Option<Service>,
    pub asg: Option<AutoScalingGroup>,
    pub databases: Vec<Database>,
}

/// Observes a rule's resources: instances, service, group and databases at once. The wake and
/// the operator's stop both look through this.
pub async fn observe<C: Cloud>(cloud: &C, rule: &Rule) -> Result<Observed, CloudError> {
    let ec2 = async {
        match &rule.ec2 {
            Some(ec2) => cloud.instances(&ec2.instance_ids).await,
            None => Ok(Vec::new()),
        }
    };
    let ecs = async {
        match &rule.ecs {
            Some(ecs) => cloud.service(&ecs.cluster, &ecs.service).await.map(Some),
            None => Ok(None),
        }
    };
    let asg = async {
        match &rule.asg {
            Some(spec) => cloud.auto_scaling_groups(std::slice::from_ref(&spec.name)).await.map(|mut g| g.pop()),
            None => Ok(None),
        }
    };
    let rds = async {
        match &rule.rds {
            Some(spec) => cloud.databases(&spec.instances, &spec.clusters).await,
            None => Ok(Vec::new()),
        }
    };
    // Boxed: joined unboxed, four SDK futures side by side overflow a debug build's stack.
    let (instances, service, asg, databases) = tokio::join!(Box::pin(ec2), Box::pin(ecs), Box::pin(asg), Box::pin(rds));
    Ok(Observed { instances: instances?, service: service?, asg: asg?, databases: databases? })
}

impl Observed {
    /// Any of the resources runs or is on its way to running.
    pub fn awake(&self) -> bool {
        !self.running_instances().is_empty()
            || self.service.as_ref().is_some_and(|s| s.is_active() && s.desired > 0)
            || self.asg.as_ref().is_some_and(|g| g.desired > 0)
            || self.databases.iter().any(Database::running)
    }

    /// The instances that run or are starting.
    pub fn running_instances(&self) -> Vec<&Instance> {
        self.instances.iter().filter(|i| matches!(i.state, InstanceState::Running | InstanceState::Pending)).collect()
    }

    /// When the running resources were last started (EC2 LaunchTime, ECS deployment time).
    pub fn started_at(&self) -> Option<i64> {
        let service = self.service.as_ref().filter(|s| s.desired > 0).and_then(|s| s.changed_at);
        self.running_instances().iter().filter_map(|i| i.launched_at).chain(service).max()
    }

    /// What a rule and its resources look like, in a short stable string: a stop that failed
    /// for good is not tried again until this changes (a config change, an instance restarted
    /// or replaced, a service, group or database changed).
    pub fn fingerprint(&self, rule: &Rule) -> String {
        let mut text = format!("{rule:?}");
        for i in &self.instances {
            text.push_str(&format!("|{}:{}:{:?}", i.id, i.state.as_str(), i.launched_at));
        }
        if let Some(s) = &self.service {
            text.push_str(&format!("|{}:{}:{}", s.status, s.desired, s.changed_at.unwrap_or(0)));
        }
        if let Some(g) = &self.asg {
            text.push_str(&format!("|{}:{}:{}", g.exists, g.min, g.desired));
        }
        for d in &self.databases {
            text.push_str(&format!("|{}:{}", d.id, d.status));
        }
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        format!("{hash:016x}")
    }
}

/// Decides what the resources need. `started` = instances this wake already started (to tell
/// "started, then stopped again" from "still asleep").
/// An instance the wake cannot go on with: gone, or started and stopped again by itself.
fn broken_instance(rule: &Rule, obs: &Observed, started: &HashSet<String>) -> Option<StepError> {
    for i in &obs.instances {
        match i.state {
            InstanceState::Terminated | InstanceState::ShuttingDown | InstanceState::Missing => {
                let what = if i.state == InstanceState::Missing { "does not exist" } else { "is terminated" };
                return Some(StepError {
                    operation: "DescribeInstances".into(),
                    code: if i.state == InstanceState::Missing { "InstanceMissing" } else { "InstanceTerminated" }.into(),
                    kind: ErrorKind::NotFound.as_str().into(),
                    detail: format!("instance {} {what}", i.id),
                    action: format!(
                        "autostop never recreates instances: replace {} in rule `{}` (ec2.instance_ids) and redeploy the config",
                        i.id, rule.name
                    ),
                });
            }
            InstanceState::Stopped
                if started.contains(&i.id) && i.state_reason.as_deref() == Some("Client.InternalError") =>
            {
                return Some(StepError {
                    operation: "StartInstances".into(),
                    code: "Client.InternalError".into(),
                    kind: ErrorKind::Other.as_str().into(),
                    detail: format!("instance {} was started and stopped again by itself", i.id),
                    action: "usually an encrypted EBS volume whose KMS key the caller may not use: give the autostop \
                             role kms:CreateGrant on that key, then reload this page"
                        .into(),
                });
            }
            _ => {}
        }
    }
    None
}

pub fn plan_resources(rule: &Rule, obs: &Observed, started: &HashSet<String>) -> ResourcePlan {
    if let Some(e) = broken_instance(rule, obs, started) {
        return ResourcePlan::Broken(e);
    }
    let mut scale_to = None;
    if let (Some(spec), Some(svc)) = (&rule.ecs, &obs.service) {
        if !svc.is_active() {
            return ResourcePlan::Broken(StepError {
                operation: "DescribeServices".into(),
                code: "ServiceNotFoundException".into(),
                kind: ErrorKind::NotFound.as_str().into(),
                detail: format!("ECS service {}/{} is {}", spec.cluster, spec.service, svc.status.to_lowercase()),
                action: format!("create the service or fix rule `{}` (ecs.cluster, ecs.service)", rule.name),
            });
        }
        if svc.desired == 0 {
            scale_to = Some(spec.desired_count.or(svc.remembered_count).unwrap_or(1));
        }
    }
    let asg_to = match asg_plan(rule, obs) {
        Ok(to) => to,
        Err(e) => return ResourcePlan::Broken(e),
    };
    if let Some(d) = obs.databases.iter().find(|d| d.status == "missing") {
        return ResourcePlan::Broken(StepError {
            operation: if d.cluster { "DescribeDBClusters" } else { "DescribeDBInstances" }.into(),
            code: if d.cluster { "DBClusterNotFoundFault" } else { "DBInstanceNotFound" }.into(),
            kind: ErrorKind::NotFound.as_str().into(),
            detail: format!("RDS {} {} does not exist", if d.cluster { "cluster" } else { "instance" }, d.id),
            action: format!("fix rule `{}` (rds.instances, rds.clusters) and redeploy the config", rule.name),
        });
    }
    let to_start: Vec<String> =
        obs.instances.iter().filter(|i| i.state == InstanceState::Stopped).map(|i| i.id.clone()).collect();
    let databases: Vec<(String, bool)> =
        obs.databases.iter().filter(|d| d.status == "stopped").map(|d| (d.id.clone(), d.cluster)).collect();
    if !to_start.is_empty() || scale_to.is_some() || asg_to.is_some() || !databases.is_empty() {
        return ResourcePlan::Start(Launch { instances: to_start, scale_to, asg_to, databases });
    }
    if obs.instances.iter().any(|i| i.state == InstanceState::Stopping)
        || obs.databases.iter().any(|d| d.status == "stopping")
    {
        return ResourcePlan::WaitForStop;
    }
    // A database is up once `available`; every other status is on its way there.
    if obs.instances.iter().any(|i| i.state == InstanceState::Pending)
        || obs.databases.iter().any(|d| d.status != "available")
    {
        return ResourcePlan::Booting;
    }
    ResourcePlan::Up
}

/// An Auto Scaling group at 0 is restored: min size as remembered (else 0), desired capacity as
/// configured, else as remembered, else 1, within the group's max size.
fn asg_plan(rule: &Rule, obs: &Observed) -> Result<Option<(u32, u32)>, StepError> {
    let (Some(spec), Some(g)) = (&rule.asg, &obs.asg) else { return Ok(None) };
    if !g.exists {
        return Err(StepError {
            operation: "DescribeAutoScalingGroups".into(),
            code: "AutoScalingGroupNotFound".into(),
            kind: ErrorKind::NotFound.as_str().into(),
            detail: format!("Auto Scaling group {} does not exist", spec.name),
            action: format!("create the group or fix rule `{}` (asg.name)", rule.name),
        });
    }
    if g.desired > 0 {
        return Ok(None);
    }
    let desired = spec.desired.or(g.remembered_desired).unwrap_or(1);
    if desired > g.max {
        return Err(StepError {
            operation: "UpdateAutoScalingGroup".into(),
            code: "ValidationError".into(),
            kind: ErrorKind::Other.as_str().into(),
            detail: format!("Auto Scaling group {} has max size {}, below the {desired} to restore", spec.name, g.max),
            action: format!("raise the group's max size, or lower asg.desired of rule `{}`", rule.name),
        });
    }
    Ok(Some((g.remembered_min.unwrap_or(0).min(desired), desired)))
}

/// Advice for an AWS error, by kind and code.
pub fn advice(e: &CloudError) -> String {
    match e.kind {
        ErrorKind::Capacity => format!(
            "AWS has no capacity for this instance type in its Availability Zone right now ({}). \
             autostop retries on the next request; if it persists, change the instance type or subnet.",
            e.code
        ),
        ErrorKind::AccessDenied => format!(
            "the autostop role may not call {}: add the permission (see the IAM section of the README), then retry.",
            e.op
        ),
        ErrorKind::NotFound => "a resource named in the config does not exist: fix the config and redeploy.".into(),
        ErrorKind::Limit => "an AWS limit was reached: raise it or remove unused rules/resources, then retry.".into(),
        ErrorKind::InvalidState => "the resource was changing state; autostop retries on the next request.".into(),
        _ => "autostop retries on the next request; if it keeps failing, check the Lambda's log for this code.".into(),
    }
}

/// What a user may see of a failed call: code, kind and what to do. AWS's message stays in the
/// log (with the request id to quote): it can name role ARNs, account ids and carry encoded
/// authorization messages.
fn step_error(e: &CloudError) -> StepError {
    StepError {
        operation: e.op.to_string(),
        code: e.code.clone(),
        kind: e.kind.as_str().into(),
        detail: e.public(),
        action: advice(e),
    }
}

/// Per-rule memory of this Lambda instance.
#[derive(Default)]
struct Memo {
    cached: Option<(Instant, Status)>,
    wake_started: Option<Instant>,
    /// Instances this wake started.
    started: HashSet<String>,
    /// When this instance first saw all the rule's ALB rules in place.
    routed_at: Option<Instant>,
    last_phase: Option<Phase>,
    /// Each phase this wake went through and when it began (for the time-per-phase metrics).
    phase_log: Vec<(Phase, Instant)>,
    /// Who asked last: recorded as the cause when a wake starts.
    cause: Option<Cause>,
    /// When this environment first saw every dependency ready (the `delay` counts from it).
    dependencies_ready: Option<Instant>,
}

/// The wake engine, shared by every request of this Lambda instance.
pub struct Waker<C> {
    cloud: Arc<C>,
    config: Arc<Config>,
    memos: HashMap<String, Mutex<Memo>>,
    /// This execution environment, as observer leases name it.
    id: String,
    /// Whether this environment has said that the state table cannot be reached.
    degraded: AtomicBool,
}

/// Who asked for a wake: the `Cause` dimension of the `Wakes` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A browser's visit (request mode) or its progress page's poll.
    Browser,
    /// An API client held until ready.
    Api,
    /// The Wake button of a click-mode rule.
    Click,
    /// `autostop wake` or a direct invoke.
    Operator,
    /// The idle check, starting a rule for its schedule's `awake` window ([`crate::intent`]).
    Schedule,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Browser => "browser",
            Cause::Api => "api",
            Cause::Click => "click",
            Cause::Operator => "operator",
            Cause::Schedule => "schedule",
        }
    }
}

/// Whether a step may act or only look (the `status` command must never wake anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Wake,
    Observe,
}

impl<C: Cloud> Waker<C> {
    pub fn new(cloud: Arc<C>, config: Arc<Config>) -> Waker<C> {
        let memos = config.rules.iter().map(|r| (r.name.clone(), Mutex::new(Memo::default()))).collect();
        Waker { cloud, config, memos, id: environment_id(), degraded: AtomicBool::new(false) }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn config_arc(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    /// Advances the wake by one step (or returns the status another caller got within
    /// [`STATUS_TTL`]).
    pub async fn wake(&self, rule: &Rule, cause: Cause) -> Status {
        let mut memo = self.memo(rule).lock().await;
        memo.cause = Some(cause);
        if let Some((at, status)) = &memo.cached {
            if at.elapsed() < STATUS_TTL {
                return status.clone();
            }
        }
        let status = self.fleet_step(rule, &mut memo).await;
        memo.cached = Some((Instant::now(), status.clone()));
        status
    }

    /// The rule's status without acting on anything.
    pub async fn observe(&self, rule: &Rule) -> Status {
        let mut memo = self.memo(rule).lock().await;
        self.step(rule, &mut memo, Mode::Observe, None).await
    }

    fn memo(&self, rule: &Rule) -> &Mutex<Memo> {
        self.memos.get(&rule.name).expect("every configured rule has a memo")
    }

    /// One step for the whole fleet of Lambda environments. The state item carries the last
    /// observed status and an observer lease: an environment answers from the item when the
    /// status is fresh ([`STATUS_TTL`]; [`READY_TTL`] once ready) or another environment holds
    /// the lease; otherwise it takes the lease with a conditional write (of two, one wins),
    /// steps (the only AWS calls for this rule, fleet-wide), and publishes the status, which
    /// frees the lease. A crashed holder's lease runs out after [`LEASE`]. Without the table
    /// every environment steps on its own, as before: more calls, but the wake completes.
    async fn fleet_step(&self, rule: &Rule, memo: &mut Memo) -> Status {
        let table = &self.config.state_table;
        let item = match self.cloud.load_state(table, &rule.name).await {
            Ok(item) => item,
            Err(e) => return self.degraded_step(rule, memo, e).await,
        };
        let intent = intent(rule, item.as_ref(), self.cloud.now());
        if let Some(held) = held_asleep(rule, &intent) {
            return held;
        }
        if self.stop_in_progress(item.as_ref()) {
            // The checker owns the item until its stop is recorded: a lease or a publish would
            // move the version under its final write. The step only reads while it waits.
            return self.step(rule, memo, Mode::Wake, None).await;
        }
        let now = self.cloud.now_ms();
        if let Some(status) = item.as_ref().and_then(|i| self.shared(i, now)) {
            return status;
        }
        let mut claim = item.clone().unwrap_or_else(|| RuleState::new(&rule.name));
        claim.lease_holder = Some(self.id.clone());
        claim.lease_until_ms = Some(now + LEASE.as_millis() as i64);
        claim.version = item.as_ref().map(|i| i.version).unwrap_or(0) + 1;
        match self.cloud.save_state(table, &claim, item.as_ref().map(|i| i.version)).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::Conflict => {
                // Another environment took it a moment ago: answer from what it publishes.
                let again = self.cloud.load_state(table, &rule.name).await.ok().flatten();
                return again.as_ref().and_then(observation).unwrap_or_else(|| observing_elsewhere(&rule.name));
            }
            Err(e) => return self.degraded_step(rule, memo, e).await,
        }
        // The item as just written: the step need not read it again.
        let mut status = self.step(rule, memo, Mode::Wake, Some(Some(claim))).await;
        status.intent = intent.why().map(str::to_string);
        self.publish(rule, &status).await;
        status
    }

    /// The status from the item when this environment need not observe: fresh, or being
    /// observed by another environment right now.
    fn shared(&self, item: &RuleState, now_ms: i64) -> Option<Status> {
        let observed = observation(item);
        let ttl = match observed.as_ref().map(|s| s.phase) {
            Some(Phase::Ready) => READY_TTL,
            _ => STATUS_TTL,
        };
        let fresh = item.observed_at_ms.is_some_and(|t| now_ms - t < ttl.as_millis() as i64);
        let leased_elsewhere = item.lease_holder.as_deref().is_some_and(|h| h != self.id)
            && item.lease_until_ms.is_some_and(|t| t > now_ms);
        match (fresh, leased_elsewhere) {
            (true, _) => observed,
            (false, true) => Some(observed.unwrap_or_else(|| observing_elsewhere(&item.rule))),
            (false, false) => None,
        }
    }

    /// Writes the status into the item for every other environment and frees the lease.
    async fn publish(&self, rule: &Rule, status: &Status) {
        let Ok(json) = serde_json::to_string(status) else { return };
        let (now, me) = (self.cloud.now_ms(), self.id.clone());
        let latest = self.read_state(rule).await;
        self.record(rule, latest, |s| {
            s.observed = Some(json.clone());
            s.observed_at_ms = Some(now);
            if s.lease_holder.as_deref() == Some(me.as_str()) {
                s.lease_until_ms = Some(now);
            }
        })
        .await;
    }

    /// The state table cannot be reached: step on our own, and say so once per environment.
    /// The schedule still holds the rule asleep (overrides are in the table, out of reach).
    async fn degraded_step(&self, rule: &Rule, memo: &mut Memo, e: CloudError) -> Status {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(table = %self.config.state_table, code = %e.code, "state table unreachable: this environment observes and starts on its own (more AWS calls; waking still works)");
        }
        if let Some(held) = held_asleep(rule, &intent(rule, None, self.cloud.now())) {
            return held;
        }
        self.step(rule, memo, Mode::Wake, None).await
    }

    /// `known`: the state item when the caller has just read or written it.
    async fn step(&self, rule: &Rule, memo: &mut Memo, mode: Mode, known: Option<Option<RuleState>>) -> Status {
        let status = match self.try_step(rule, memo, mode, known).await {
            Ok(status) => status,
            Err((e, resources)) => self.failed(rule, memo, e, resources),
        };
        if mode == Mode::Wake {
            if status.phase != memo.last_phase.unwrap_or(Phase::Stopped) {
                memo.phase_log.push((status.phase, Instant::now()));
                if let Some(err) = &status.error {
                    let (code, op) = (err.code.as_str(), err.operation.as_str());
                    let dims = [("Rule", rule.name.as_str()), ("Code", code), ("Operation", op)];
                    self.cloud.emit_metrics(emf::line(self.cloud.now() * 1000, &dims, &[emf::count("Errors")]));
                }
                tracing::info!(
                    rule = %rule.name, phase = status.phase.as_str(), elapsed_seconds = status.elapsed_seconds,
                    message = %status.message, "phase"
                );
            }
            memo.last_phase = Some(status.phase);
        }
        status
    }

    /// A wake was recorded as finished (its standing rules switched to the app): `Wakes`,
    /// `TimeToReady` and the time spent in each phase this environment saw. Emitted by the
    /// environment that made the switch, at the switch: a wake woken only by browsers never
    /// reaches autostop again once the app answers. `TimeToReady` counts from this
    /// environment's first attempt (failures included) when it saw the whole wake, else from
    /// the recorded start.
    fn emit_ready(&self, rule: &Rule, memo: &mut Memo, recorded_start: Option<i64>, wall: i64, cause: &str) {
        let mut log = std::mem::take(&mut memo.phase_log);
        let saw_start = log.iter().any(|(p, _)| *p == Phase::Starting);
        let to_ready = match (memo.wake_started, recorded_start) {
            (Some(first), _) if saw_start => first.elapsed().as_secs(),
            (_, Some(t)) => (wall - t).max(0) as u64,
            _ => return, // found running without waking anything: not a wake
        };
        log.push((Phase::Routing, Instant::now()));
        let mut per_phase: Vec<(&'static str, u64)> = Vec::new();
        for pair in log.windows(2) {
            let name = match pair[0].0 {
                Phase::Starting | Phase::Stopping => "TimeStarting",
                Phase::WaitingForHealth => "TimeWaitingForHealth",
                _ => continue,
            };
            let secs = pair[1].1.duration_since(pair[0].1).as_secs();
            match per_phase.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 += secs,
                None => per_phase.push((name, secs)),
            }
        }
        let mut values = vec![emf::count("Wakes"), emf::seconds("TimeToReady", to_ready)];
        values.extend(per_phase.iter().map(|(n, s)| emf::seconds(n, *s)));
        let dims = [("Rule", rule.name.as_str()), ("Cause", cause)];
        let line = emf::line_sets(self.cloud.now() * 1000, &dims, &[&["Rule"], &["Rule", "Cause"]], &values);
        self.cloud.emit_metrics(line);
    }

    /// An AWS call failed. Throttling, network faults and state races are retried quietly (the
    /// phase stays); anything else becomes the `error` phase with the code and what to do.
    fn failed(&self, rule: &Rule, memo: &mut Memo, e: CloudError, resources: Vec<ResourceState>) -> Status {
        let quiet = e.kind.is_retryable() || e.kind == ErrorKind::InvalidState;
        tracing::warn!(rule = %rule.name, op = e.op, code = %e.code, kind = e.kind.as_str(), retry = quiet, message = %e.message, request_id = e.request_id.as_deref(), "aws call failed");
        let elapsed = elapsed(memo);
        if quiet {
            let phase = match memo.last_phase {
                Some(Phase::Error) | Some(Phase::Ready) | None => Phase::Starting,
                Some(p) => p,
            };
            return Status {
                rule: rule.name.clone(),
                phase,
                message: format!("AWS answered {} to {}; retrying", e.code, e.op),
                resources,
                targets: TargetHealth::default(),
                elapsed_seconds: elapsed,
                eta_seconds: None,
                error: None,
                held_asleep: None,
                intent: None,
                dependencies: Vec::new(),
            };
        }
        // Forget what this wake started so the next request retries from what AWS shows.
        memo.started.clear();
        let err = step_error(&e);
        Status {
            rule: rule.name.clone(),
            phase: Phase::Error,
            message: format!("{} failed with {}: {}", e.op, e.code, err.action),
            resources,
            targets: TargetHealth::default(),
            elapsed_seconds: elapsed,
            eta_seconds: None,
            error: Some(err),
            held_asleep: None,
            intent: None,
            dependencies: Vec::new(),
        }
    }

    async fn observe_resources(&self, rule: &Rule) -> Result<Observed, CloudError> {
        observe(self.cloud.as_ref(), rule).await
    }

    /// The rule's state item; `None` when there is none or the table cannot be read (waking never
    /// depends on the table: AWS itself is the truth about what runs).
    async fn read_state(&self, rule: &Rule) -> Option<RuleState> {
        match self.cloud.load_state(&self.config.state_table, &rule.name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(rule = %rule.name, code = %e.code, table = %self.config.state_table, "state unreadable; waking without it");
                None
            }
        }
    }

    /// Applies `change` to the rule's state with a conditional write; on a lost race it re-reads
    /// and tries once more, unless what won the race is a stop claim: that is the checker's, and
    /// overwriting it would make its final write fail. Failures are logged, never fatal to the
    /// wake.
    async fn record(&self, rule: &Rule, mut prev: Option<RuleState>, change: impl Fn(&mut RuleState)) {
        for _ in 0..2 {
            if self.stop_in_progress(prev.as_ref()) {
                tracing::info!(rule = %rule.name, "a stop owns the state item; not recording over it");
                return;
            }
            let mut next = prev.clone().unwrap_or_else(|| RuleState::new(&rule.name));
            change(&mut next);
            next.version = prev.as_ref().map(|p| p.version).unwrap_or(0) + 1;
            match self.cloud.save_state(&self.config.state_table, &next, prev.as_ref().map(|p| p.version)).await {
                Ok(()) => return,
                Err(e) if e.kind == ErrorKind::Conflict => prev = self.read_state(rule).await,
                Err(e) => {
                    tracing::warn!(rule = %rule.name, code = %e.code, "state not recorded");
                    return;
                }
            }
        }
    }

    /// An idle stop claimed the rule recently and has not finished.
    fn stop_in_progress(&self, state: Option<&RuleState>) -> bool {
        state.is_some_and(|s| {
            s.phase == "stopping"
                && s.stopping_since.is_some_and(|t| self.cloud.now() - t < STOP_TIMEOUT.as_secs() as i64)
        })
    }

    async fn try_step(
        &self,
        rule: &Rule,
        memo: &mut Memo,
        mode: Mode,
        known: Option<Option<RuleState>>,
    ) -> Result<Status, (CloudError, Vec<ResourceState>)> {
        let read = async {
            match known {
                Some(state) => state,
                None => self.read_state(rule).await,
            }
        };
        let (obs, state) = tokio::join!(Box::pin(self.observe_resources(rule)), Box::pin(read));
        let obs = obs.map_err(|e| (e, Vec::new()))?;
        let cx = Step::new(rule, state, self.cloud.now());
        let resources = resource_states(rule, &obs);
        if self.stop_in_progress(cx.state.as_ref()) {
            // The idle checker has taken traffic away and is stopping the resources: routing to
            // the app now would send requests to targets that are going away. Wait, then wake.
            memo.routed_at = None;
            memo.wake_started.get_or_insert(Instant::now());
            let message = "an idle stop is in progress; waking as soon as it finishes";
            return Ok(cx.status(Phase::Stopping, message, resources, memo));
        }
        let plan = plan_resources(rule, &obs, &cx.started(&memo.started));
        if plan != ResourcePlan::Up {
            memo.routed_at = None;
        }
        match plan {
            ResourcePlan::Broken(err) => {
                memo.started.clear();
                if mode == Mode::Wake {
                    self.record_broken(&cx, &err).await;
                }
                let mut s = cx.status(Phase::Error, &format!("{}: {}", err.detail, err.action), resources, memo);
                s.error = Some(err);
                Ok(s)
            }
            ResourcePlan::Start(_) if mode == Mode::Observe => {
                Ok(cx.status(Phase::Stopped, "asleep: the next request wakes it", resources, memo))
            }
            ResourcePlan::Start(launch) => {
                if let Some(waiting) = self.dependencies_first(&cx, memo, &resources).await {
                    return Ok(waiting);
                }
                Box::pin(self.start(&cx, memo, &obs, resources, &launch)).await
            }
            ResourcePlan::WaitForStop => {
                memo.wake_started.get_or_insert(Instant::now());
                let message = "waiting for the previous stop to finish, then starting";
                Ok(cx.status(Phase::Stopping, message, resources, memo))
            }
            ResourcePlan::Booting => {
                memo.wake_started.get_or_insert(Instant::now());
                Ok(cx.status(Phase::Starting, "booting", resources, memo))
            }
            ResourcePlan::Up => Box::pin(self.up(&cx, memo, mode, resources)).await,
        }
    }

    /// Readies the rule's dependencies first, in order, each through its own wake (so its own
    /// dependencies, lease and state apply). `None` once every one is ready and the rule's
    /// `delay` has passed since this environment saw them so; until then the rule's status:
    /// starting (or in error, with the dependency's error), each dependency a step.
    async fn dependencies_first(&self, cx: &Step<'_>, memo: &mut Memo, resources: &[ResourceState]) -> Option<Status> {
        let rule = cx.rule;
        if rule.depends_on.is_empty() {
            return None;
        }
        memo.wake_started.get_or_insert(Instant::now());
        let cause = memo.cause.unwrap_or(Cause::Operator);
        let mut states: Vec<DependencyState> =
            rule.depends_on.iter().map(|d| DependencyState { rule: d.clone(), phase: Phase::Stopped }).collect();
        for (i, name) in rule.depends_on.iter().enumerate() {
            let Some(dep) = self.config.rule(name) else { continue };
            let s = self.wake_dependency(dep, cause).await;
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
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Status> + Send + 'a>> {
        Box::pin(self.wake(rule, cause))
    }

    /// Starts what is asleep, and makes sure the rule's standing ALB rules exist first: a target
    /// group no rule references is never health-checked, so the wake could never finish.
    async fn start(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        obs: &Observed,
        mut resources: Vec<ResourceState>,
        launch: &Launch,
    ) -> Result<Status, (CloudError, Vec<ResourceState>)> {
        let rule = cx.rule;
        let Launch { instances, scale_to, asg_to, databases } = launch;
        let (instances, scale_to, asg_to) = (instances.as_slice(), *scale_to, *asg_to);
        if matches!(memo.last_phase, None | Some(Phase::Ready) | Some(Phase::Stopped)) || memo.wake_started.is_none() {
            self.begin_wake(cx, memo);
        }
        self.ensure_standing(rule).await.map_err(|e| (e, resources.clone()))?;
        let mut did = Vec::new();
        if !instances.is_empty() {
            tracing::info!(rule = %rule.name, instances = ?instances, "starting instances");
            self.cloud.start_instances(instances).await.map_err(|e| (e, resources.clone()))?;
            memo.started.extend(instances.iter().cloned());
            for r in resources.iter_mut().filter(|r| instances.contains(&r.id)) {
                r.state = "pending".into();
            }
            did.push(format!("starting {}", instances.join(", ")));
        }
        if let (Some(n), Some(ecs)) = (scale_to, &rule.ecs) {
            tracing::info!(rule = %rule.name, cluster = %ecs.cluster, service = %ecs.service, desired = n, "scaling service up");
            self.cloud.scale_service(&ecs.cluster, &ecs.service, n).await.map_err(|e| (e, resources.clone()))?;
            for r in resources.iter_mut().filter(|r| r.kind == "ecs") {
                r.state = format!("starting (0/{n})");
            }
            did.push(format!("scaling {}/{} to {n}", ecs.cluster, ecs.service));
        }
        if let (Some((min, desired)), Some(spec)) = (asg_to, &rule.asg) {
            tracing::info!(rule = %rule.name, group = %spec.name, min, desired, "restoring Auto Scaling group");
            let update = self.cloud.update_auto_scaling_group(&spec.name, min, desired).await;
            update.map_err(|e| (e, resources.clone()))?;
            for r in resources.iter_mut().filter(|r| r.kind == "asg") {
                r.state = format!("starting (0/{desired})");
            }
            did.push(format!("scaling group {} to {desired}", spec.name));
        }
        for (id, cluster) in databases {
            tracing::info!(rule = %rule.name, database = %id, cluster, "starting database");
            self.cloud.start_database(id, *cluster).await.map_err(|e| (e, resources.clone()))?;
            for r in resources.iter_mut().filter(|r| &r.id == id) {
                r.state = "starting".into();
            }
            did.push(format!("starting database {id}"));
        }
        // A new wake when nothing of the rule was awake: it counts from now, not from an
        // earlier wake that never recorded its end.
        let fresh = !obs.instances.iter().any(|i| !matches!(i.state, InstanceState::Stopped))
            && obs.service.as_ref().is_none_or(|s| s.desired == 0)
            && obs.asg.as_ref().is_none_or(|g| g.desired == 0)
            && obs.databases.iter().all(|d| d.status == "stopped");
        self.record_starting(cx, instances, fresh, memo.cause).await;
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

    /// Records the wake and which instances it started, so that every Lambda environment can
    /// tell "started, then stopped again" from "asleep".
    async fn record_starting(&self, cx: &Step<'_>, instances: &[String], fresh: bool, cause: Option<Cause>) {
        let (wall, cost) = (cx.wall, cx.rule.hourly_cost);
        self.record(cx.rule, cx.state.clone(), |s| {
            if matches!(s.phase.as_str(), "stopped" | "stopping") {
                crate::savings::close_sleep(s, wall, cost);
            }
            if s.phase != "starting" || fresh {
                s.wake_started_at = Some(wall);
                s.started_instances.clear();
                s.wake_cause = cause.map(|c| c.as_str().to_string());
            }
            for id in instances {
                if !s.started_instances.contains(id) {
                    s.started_instances.push(id.clone());
                }
            }
            s.phase = "starting".into();
            s.last_wake_at = Some(wall);
            if s.stop_error_fingerprint.is_none() {
                s.last_error = None;
                s.error_at = None;
            }
        })
        .await;
    }

    /// Records a wake that cannot go on (a terminated instance, a start that fell back to
    /// `stopped`), once: every environment then shows the same error without starting anything
    /// until [`ERROR_PAUSE`] has passed.
    async fn record_broken(&self, cx: &Step<'_>, err: &StepError) {
        let message = format!("{} ({}): {}", err.code, err.operation, err.action);
        if cx.state.as_ref().is_some_and(|s| s.phase == "error" && s.last_error.as_deref() == Some(&message)) {
            return;
        }
        let wall = cx.wall;
        self.record(cx.rule, cx.state.clone(), |s| {
            s.phase = "error".into();
            s.last_error = Some(message.clone());
            s.error_at = Some(wall);
        })
        .await;
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
    async fn ensure_standing(&self, rule: &Rule) -> Result<(), CloudError> {
        for listener in &self.config.listener_arns {
            let rules = self.cloud.listener_rules(listener).await?;
            if routes::complete(&self.config, &rules, rule) {
                continue;
            }
            tracing::info!(rule = %rule.name, listener = %listener, "standing rule missing: creating it");
            let mut view = routes::view(self.cloud.as_ref(), listener).await?;
            routes::ensure_on(self.cloud.as_ref(), &self.config, &mut view, rule).await?;
        }
        Ok(())
    }

    /// Everything runs: health decides. With a healthy target the standing rules are switched to
    /// the app (one ModifyRule per listener) and the wake is recorded as finished; it is `ready`
    /// once the switch has been in place for `settle` (ALB applies a change within seconds).
    async fn up(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        mode: Mode,
        resources: Vec<ResourceState>,
    ) -> Result<Status, (CloudError, Vec<ResourceState>)> {
        let rule = cx.rule;
        let fail = |e: CloudError| (e, resources.clone());
        let Some(target_group) = rule.target_group_arn.as_deref() else {
            return Ok(self.up_without_traffic(cx, memo, mode, resources).await);
        };
        let health = self.cloud.target_health(target_group).await.map_err(fail)?;
        if health.healthy == 0 {
            memo.routed_at = None;
            if mode == Mode::Wake {
                memo.wake_started.get_or_insert(Instant::now());
                if health.not_in_use > 0 {
                    // No rule references the app's group (deleted by hand, or a first wake that
                    // found no standing rule): without one the ALB never health-checks it.
                    self.ensure_standing(rule).await.map_err(fail)?;
                }
            }
            let mut s = cx.status(Phase::WaitingForHealth, &waiting_message(&health), resources, memo);
            s.targets = health;
            return Ok(s);
        }
        let routed = match mode {
            Mode::Wake => self.route_to_app(cx).await.map(|finished| {
                if finished {
                    let recorded = cx.state.as_ref().filter(|s| s.phase == "starting");
                    let started = recorded.and_then(|s| s.wake_started_at);
                    let cause = recorded.and_then(|s| s.wake_cause.clone());
                    let cause = cause.or_else(|| memo.cause.map(|c| c.as_str().to_string()));
                    self.emit_ready(rule, memo, started, cx.wall, cause.as_deref().unwrap_or("unknown"));
                }
                true
            }),
            Mode::Observe => routes::routed_everywhere(self.cloud.as_ref(), &self.config, rule).await,
        }
        .map_err(fail)?;
        let (phase, message) = if !routed {
            (Phase::Routing, "healthy; the next request switches the listener rule to the app".to_string())
        } else {
            let first = *memo.routed_at.get_or_insert(Instant::now());
            let since = cx.ready_at().unwrap_or(cx.wall - Instant::now().duration_since(first).as_secs() as i64);
            let settle = self.config.settle.as_secs() as i64;
            if cx.wall - since >= settle || mode == Mode::Observe {
                memo.started.clear();
                (Phase::Ready, "ready: the load balancer forwards this host to the app".to_string())
            } else {
                (Phase::Routing, format!("listener rule switched to the app; letting it settle for {settle}s"))
            }
        };
        let mut s = cx.status(phase, &message, resources, memo);
        s.targets = health;
        Ok(s)
    }

    /// Switches the standing rules to the app, unless an idle stop claimed the rule since this
    /// step observed it, then records the wake as finished (whoever asks afterwards). A wake
    /// already recorded as finished changes and reads nothing: in particular it never switches
    /// back to the app under an idle stop, which starts from `ready`. (A claim after the read
    /// here is caught by the checker's sweep.)
    /// Returns whether this call recorded the wake as finished.
    async fn route_to_app(&self, cx: &Step<'_>) -> Result<bool, CloudError> {
        let rule = cx.rule;
        if cx.state.as_ref().is_some_and(|s| s.phase == "ready") {
            // Switched and recorded by whoever finished the wake: the listeners are not read
            // again. Drift after that (a rule changed by hand, a new listener) is the idle
            // check's to repair.
            return Ok(false);
        }
        if self.stop_in_progress(self.read_state(rule).await.as_ref()) {
            return Err(CloudError::new("ModifyRule", "IncorrectState", "an idle stop began; not routing"));
        }
        let changed = routes::switch(self.cloud.as_ref(), &self.config, rule, Route::App).await?;
        if changed > 0 {
            tracing::info!(rule = %rule.name, changed, "standing rules switched to the app");
        }
        self.record_ready(cx).await;
        Ok(true)
    }

    /// A rule that serves no traffic of its own (a dependency, such as a database) is ready
    /// once its resources run: there is no target group to pass and no listener to switch.
    async fn up_without_traffic(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        mode: Mode,
        resources: Vec<ResourceState>,
    ) -> Status {
        let recorded = cx.state.as_ref().is_some_and(|s| s.phase == "ready");
        if mode == Mode::Wake && !recorded {
            let started = cx.state.as_ref().filter(|s| s.phase == "starting");
            let (start, cause) = (started.and_then(|s| s.wake_started_at), started.and_then(|s| s.wake_cause.clone()));
            let cause = cause.or_else(|| memo.cause.map(|c| c.as_str().to_string()));
            self.record_ready(cx).await;
            self.emit_ready(cx.rule, memo, start, cx.wall, cause.as_deref().unwrap_or("unknown"));
        }
        memo.started.clear();
        cx.status(Phase::Ready, "ready: its resources run (it serves no traffic of its own)", resources, memo)
    }

    /// Records the wake as finished: `ready`, its warm-up kept for the ETA and pre-warming.
    async fn record_ready(&self, cx: &Step<'_>) {
        let wall = cx.wall;
        self.record(cx.rule, cx.state.clone(), |s| {
            if let (Some(started), "starting") = (s.wake_started_at, s.phase.as_str()) {
                s.warmups.push((wall - started).max(0) as u64);
                let extra = s.warmups.len().saturating_sub(WARMUPS_KEPT);
                s.warmups.drain(..extra);
                s.wakes += 1;
            }
            s.phase = "ready".into();
            s.ready_at = Some(wall);
            s.started_instances.clear();
            if s.stop_error_fingerprint.is_none() {
                // A failed stop's error stays: it says why the idle check leaves the rule alone.
                s.last_error = None;
                s.error_at = None;
            }
        })
        .await;
    }
}

/// What a step knows before it acts: the rule, its state item, the wall clock, the ETA history.
struct Step<'a> {
    rule: &'a Rule,
    state: Option<RuleState>,
    wall: i64,
    warmups: Vec<u64>,
    /// While a wake is recorded, every Lambda environment counts from its recorded start.
    recorded_start: Option<i64>,
}

impl<'a> Step<'a> {
    fn new(rule: &'a Rule, state: Option<RuleState>, wall: i64) -> Step<'a> {
        let warmups = state.as_ref().map(|s| s.warmups.clone()).unwrap_or_default();
        let recorded_start = state.as_ref().filter(|s| s.phase == "starting").and_then(|s| s.wake_started_at);
        Step { rule, state, wall, warmups, recorded_start }
    }

    /// Instances the wake in progress started, as any environment knows them: the state item's
    /// (while `starting`, or within [`ERROR_PAUSE`] of a recorded error), and this process's own.
    fn started(&self, own: &HashSet<String>) -> HashSet<String> {
        let recorded = self.state.as_ref().filter(|s| {
            s.phase == "starting" || (s.phase == "error" && s.error_at.is_some_and(|t| self.wall - t < ERROR_PAUSE))
        });
        recorded.iter().flat_map(|s| s.started_instances.iter().cloned()).chain(own.iter().cloned()).collect()
    }

    /// When the wake was recorded as finished (the standing rules switched to the app).
    fn ready_at(&self) -> Option<i64> {
        self.state.as_ref().filter(|s| s.phase == "ready").and_then(|s| s.ready_at)
    }

    fn status(&self, phase: Phase, message: &str, resources: Vec<ResourceState>, memo: &Memo) -> Status {
        let elapsed = self.recorded_start.map(|t| (self.wall - t).max(0) as u64).or_else(|| elapsed(memo));
        Status {
            rule: self.rule.name.clone(),
            phase,
            message: message.to_string(),
            resources,
            targets: TargetHealth::default(),
            elapsed_seconds: elapsed,
            eta_seconds: match phase {
                Phase::Starting | Phase::WaitingForHealth | Phase::Routing => eta(&self.warmups, elapsed),
                _ => None,
            },
            error: None,
            held_asleep: None,
            intent: None,
            dependencies: Vec::new(),
        }
    }
}

/// Why no target is healthy yet, in words a user can act on.
pub fn waiting_message(h: &TargetHealth) -> String {
    if h.not_in_use > 0 {
        return "running; attaching the target group to the load balancer so it health-checks the targets".into();
    }
    if h.total == 0 {
        return "running; no target registered in the target group yet".into();
    }
    if h.unhealthy > 0 && h.initial == 0 {
        let reason = h.unhealthy_reason.as_deref().unwrap_or("Target.FailedHealthChecks");
        return format!(
            "running, but {} of {} target(s) fail the load balancer's health checks ({reason}): check the target \
             group's health check path and port, and the app's logs",
            h.unhealthy, h.total
        );
    }
    format!("running; {} target(s) registered, in the load balancer's first health checks", h.total)
}

/// The status another environment published in the item.
fn observation(item: &RuleState) -> Option<Status> {
    item.observed.as_deref().and_then(|json| serde_json::from_str(json).ok())
}

/// What an environment answers while another one observes and nothing has been published yet.
/// The answer when the rule's override or schedule holds it asleep: nothing is started, no
/// AWS call is made, and the status says why and until when.
fn held_asleep(rule: &Rule, intent: &Intent) -> Option<Status> {
    let Intent::Asleep { why, until } = intent else { return None };
    tracing::debug!(rule = %rule.name, why = %why, "held asleep: not waking");
    Some(Status {
        rule: rule.name.clone(),
        phase: Phase::Stopped,
        message: format!("Asleep: {why}."),
        resources: Vec::new(),
        targets: TargetHealth::default(),
        elapsed_seconds: None,
        eta_seconds: None,
        error: None,
        held_asleep: Some(HeldAsleep { why: why.clone(), until: *until }),
        intent: Some(why.clone()),
        dependencies: Vec::new(),
    })
}

fn observing_elsewhere(rule: &str) -> Status {
    Status {
        rule: rule.to_string(),
        phase: Phase::Starting,
        message: "waking; another Lambda instance is observing it".into(),
        resources: Vec::new(),
        targets: TargetHealth::default(),
        elapsed_seconds: None,
        eta_seconds: None,
        error: None,
        held_asleep: None,
        intent: None,
        dependencies: Vec::new(),
    }
}

/// This execution environment's name in observer leases: unique per process and per waker.
fn environment_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("env-{:x}-{:x}-{}", std::process::id(), nanos as u64, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The typical warm-up: the median of the recorded ones (seconds from wake to ready).
pub fn typical_warmup(warmups: &[u64]) -> Option<u64> {
    if warmups.is_empty() {
        return None;
    }
    let mut sorted = warmups.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]).div_ceil(2) })
}

/// Seconds left until ready if this wake takes the typical time; `None` before the first wake.
pub fn eta(warmups: &[u64], elapsed: Option<u64>) -> Option<u64> {
    typical_warmup(warmups).map(|t| t.saturating_sub(elapsed.unwrap_or(0)))
}

fn elapsed(memo: &Memo) -> Option<u64> {
    memo.wake_started.map(|t| Instant::now().duration_since(t).as_secs())
}

/// The per-resource lines of the status.
fn resource_states(rule: &Rule, obs: &Observed) -> Vec<ResourceState> {
    let mut v: Vec<ResourceState> = obs
        .instances
        .iter()
        .map(|i| ResourceState { kind: "ec2".into(), id: i.id.clone(), state: i.state.as_str().to_string() })
        .collect();
    if let (Some(spec), Some(svc)) = (&rule.ecs, &obs.service) {
        let state = if !svc.is_active() {
            svc.status.to_lowercase()
        } else if svc.desired == 0 {
            "stopped".to_string()
        } else if svc.running >= svc.desired {
            format!("running ({}/{})", svc.running, svc.desired)
        } else {
            format!("starting ({}/{})", svc.running, svc.desired)
        };
        v.push(ResourceState { kind: "ecs".into(), id: format!("{}/{}", spec.cluster, spec.service), state });
    }
    for d in &obs.databases {
        v.push(ResourceState { kind: d.kind().into(), id: d.id.clone(), state: d.status.clone() });
    }
    if let Some(g) = &obs.asg {
        let state = match (g.exists, g.desired) {
            (false, _) => "missing".to_string(),
            (true, 0) => "stopped".to_string(),
            (true, n) if g.in_service >= n => format!("in service ({}/{n})", g.in_service),
            (true, n) => format!("starting ({}/{n})", g.in_service),
        };
        v.push(ResourceState { kind: "asg".into(), id: g.name.clone(), state });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ec2Resources, EcsService};

    fn rule() -> Rule {
        Rule {
            name: "api".into(),
            hosts: vec!["api.x".into()],
            target_group_arn: Some("tg".into()),
            idle: Duration::from_secs(60),
            priority: None,
            ec2: Some(Ec2Resources { instance_ids: vec!["i-1".into(), "i-2".into()], hibernate: false }),
            ecs: Some(EcsService { cluster: "dev".into(), service: "web".into(), desired_count: None }),
            asg: None,
            rds: None,
            busy_when: None,
            hourly_cost: None,
            gate: Default::default(),
            schedule: None,
            depends_on: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    fn inst(id: &str, state: InstanceState) -> Instance {
        Instance { state, ..Instance::missing(id) }
    }

    fn svc(desired: u32, remembered: Option<u32>) -> Option<Service> {
        Some(Service { desired, running: desired, remembered_count: remembered, ..Service::missing("dev", "web") })
            .map(|s| Service { status: "ACTIVE".into(), ..s })
    }

    fn plan(instances: &[(&str, InstanceState)], service: Option<Service>) -> ResourcePlan {
        let obs = Observed {
            instances: instances.iter().map(|(i, s)| inst(i, *s)).collect(),
            service,
            asg: None,
            databases: vec![],
        };
        plan_resources(&rule(), &obs, &HashSet::new())
    }

    use InstanceState::*;

    #[test]
    fn stopped_instances_start_and_service_scales_to_remembered_count() {
        assert_eq!(
            plan(&[("i-1", Stopped), ("i-2", Running)], svc(0, Some(3))),
            ResourcePlan::Start(Launch { instances: vec!["i-1".into()], scale_to: Some(3), ..Launch::default() })
        );
        assert_eq!(
            plan(&[("i-1", Running), ("i-2", Running)], svc(0, None)),
            ResourcePlan::Start(Launch { instances: vec![], scale_to: Some(1), asg_to: None, databases: vec![] }),
            "no remembered count -> 1"
        );
        let mut r = rule();
        r.ecs.as_mut().unwrap().desired_count = Some(2);
        let obs = Observed {
            instances: vec![inst("i-1", Running), inst("i-2", Running)],
            service: svc(0, Some(5)),
            asg: None,
            databases: vec![],
        };
        assert_eq!(
            plan_resources(&r, &obs, &HashSet::new()),
            ResourcePlan::Start(Launch { instances: vec![], scale_to: Some(2), asg_to: None, databases: vec![] }),
            "configured count wins"
        );
    }

    #[test]
    fn stopping_waits_pending_boots_running_is_up() {
        assert_eq!(plan(&[("i-1", Stopping), ("i-2", Running)], svc(1, None)), ResourcePlan::WaitForStop);
        assert_eq!(plan(&[("i-1", Pending), ("i-2", Running)], svc(1, None)), ResourcePlan::Booting);
        assert_eq!(plan(&[("i-1", Running), ("i-2", Running)], svc(1, None)), ResourcePlan::Up);
        assert_eq!(
            plan(&[("i-1", Stopping), ("i-2", Stopped)], svc(1, None)),
            ResourcePlan::Start(Launch {
                instances: vec!["i-2".into()],
                scale_to: None,
                asg_to: None,
                databases: vec![]
            }),
            "the stopped one starts while the other finishes stopping"
        );
    }

    #[test]
    fn terminated_missing_and_inactive_are_broken() {
        for state in [Terminated, ShuttingDown, Missing] {
            match plan(&[("i-1", Running), ("i-2", state)], svc(1, None)) {
                ResourcePlan::Broken(e) => assert!(e.detail.contains("i-2"), "{e:?}"),
                other => panic!("{state:?}: {other:?}"),
            }
        }
        let gone = Some(Service::missing("dev", "web"));
        assert!(matches!(plan(&[("i-1", Running), ("i-2", Running)], gone), ResourcePlan::Broken(_)));
    }

    #[test]
    fn eta_is_the_median_warmup_minus_elapsed() {
        assert_eq!(typical_warmup(&[]), None);
        assert_eq!(typical_warmup(&[40, 300, 50]), Some(50), "a slow outlier does not drag it");
        assert_eq!(typical_warmup(&[40, 50, 60, 70]), Some(55));
        assert_eq!(eta(&[40, 300, 50], Some(20)), Some(30));
        assert_eq!(eta(&[40, 300, 50], Some(80)), Some(0), "late: any moment now");
        assert_eq!(eta(&[], Some(20)), None, "first start: no estimate");
    }

    #[test]
    fn started_then_stopped_again_names_kms() {
        let obs = Observed {
            instances: vec![
                Instance {
                    state: Stopped,
                    state_reason: Some("Client.InternalError".into()),
                    ..Instance::missing("i-1")
                },
                inst("i-2", Running),
            ],
            service: svc(1, None),
            asg: None,
            databases: vec![],
        };
        let started: HashSet<String> = ["i-1".to_string()].into();
        match plan_resources(&rule(), &obs, &started) {
            ResourcePlan::Broken(e) => assert!(e.action.contains("kms:CreateGrant")),
            other => panic!("{other:?}"),
        }
        // Not started by this wake: just asleep.
        assert!(matches!(plan_resources(&rule(), &obs, &HashSet::new()), ResourcePlan::Start(_)));
    }
}
