//! An in-memory cloud for flow tests and benchmarks that behaves as AWS documents, not as moto.
//!
//! It keeps time with `tokio::time::Instant`, so under a paused clock an instance can be `pending`
//! for 40 s and healthy 20 s later while the test runs in milliseconds. It logs every call (counts
//! per operation), can fail the next calls of an operation with any AWS error code, and can play
//! "another Lambda instance" by inserting a rule just before the next CreateRule.
//!
//! What it enforces, each with its source (moto models none of these; see SPEC):
//! - **Target health** (ELBv2 API reference, TargetHealth): a target of a group that no listener
//!   rule or default action references is `unused` / `Target.NotInUse`; a stopped instance is
//!   `unused` / `Target.InvalidState`; a running target of a referenced group is `initial` /
//!   `Elb.InitialHealthChecking` for HealthyThresholdCount x interval (at least 2 x 5 s, ALB guide,
//!   "Health checks for your target groups") from when both hold, then `healthy`.
//! - **Routing** ([`FakeCloud::route`]; ALB guide, "Listener rules" and "Host conditions"): rules
//!   in priority order, lowest first, the first match wins, else the default action; host values
//!   match case-insensitively, `*` matching any run of characters (dots too) and `?` exactly one;
//!   a forward action sends traffic only to members with a weight above 0 (ELBv2 API reference,
//!   TargetGroupTuple: weights 0-999).
//! - **Quotas** (ALB guide, "Quotas for your Application Load Balancers", and "Condition types
//!   for listener rules"): one host-header condition of at most 3 values per rule, values of at
//!   most 128 characters, 5 target groups per forward action, 100 rules per load balancer (`TooManyRules`;
//!   [`FakeCloud::set_rule_quota`]), priorities 1-50000, one rule per priority (`PriorityInUse`).
//! - **State errors**: StartInstances on a `stopping` instance is `IncorrectInstanceState` (EC2 API
//!   reference, StartInstances); ModifyRule, SetRulePriorities and DescribeTags of a rule deleted
//!   meanwhile are `RuleNotFound` (ELBv2 API reference, errors of each operation).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    AutoScalingGroup, Cloud, CloudError, CloudResult, Database, Instance, InstanceState, ListenerRule, MetricQuery,
    MetricSeries, NewRule, RuleChange, RuleState, Service, TargetHealth, Weighted, ASG_DESIRED_TAG, ASG_MIN_TAG,
    DESIRED_COUNT_TAG,
};

/// The Lambda target group every fake listener's default action forwards to, unless a test
/// names another ([`FakeCloud::add_listener_with_default`]).
pub const LAMBDA_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/0123456789abcdef";
/// ALB's minimum time to a first `healthy`: HealthyThresholdCount 2 x HealthCheckIntervalSeconds 5.
pub const MIN_HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// ALB's default quota of rules per load balancer (adjustable).
pub const DEFAULT_RULE_QUOTA: usize = 100;

/// Wall-clock time of the fake at its creation: 2026-11-24T10:00:00Z.
pub const FAKE_EPOCH: i64 = 1_795_514_400;

#[derive(Debug, Clone)]
struct FakeInstance {
    state: InstanceState,
    state_reason: Option<String>,
    /// When the current transitional state (`pending`/`stopping`) ends.
    until: Option<Instant>,
    running_since: Option<Instant>,
    launched_at: Option<i64>,
    boot: Duration,
    stop: Duration,
    /// Simulates an encrypted volume without `kms:CreateGrant`: boots back to `stopped`.
    fails_to_boot: bool,
    detailed_monitoring: bool,
    hibernation_configured: bool,
    /// The last stop was a hibernation.
    hibernated: bool,
}

#[derive(Debug, Clone)]
struct FakeService {
    arn: String,
    desired: u32,
    status: String,
    tags: HashMap<String, String>,
    scaled_at: Instant,
    boot: Duration,
}

#[derive(Debug, Clone)]
struct FakeAsg {
    min: u32,
    max: u32,
    desired: u32,
    tags: HashMap<String, String>,
    /// When the desired capacity last changed; its instances are in service `boot` later.
    changed_at: Instant,
    boot: Duration,
}

#[derive(Debug, Clone)]
struct FakeDb {
    status: String,
    /// When the current transition (`starting`/`stopping`) ends.
    until: Option<Instant>,
    boot: Duration,
    cannot_stop: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct FakeTargetGroup {
    instances: Vec<String>,
    service: Option<(String, String)>,
    /// An Auto Scaling group whose instances register here (the group's target group).
    asg: Option<String>,
    /// HealthyThresholdCount x interval: how long a target stays `initial`.
    health_delay: Duration,
    /// Since when a listener rule or default action references the group (`None`: not at all).
    attached_since: Option<Instant>,
    /// Every running target fails its health checks with this reason.
    failing: Option<String>,
}

#[derive(Default)]
struct State {
    instances: HashMap<String, FakeInstance>,
    services: HashMap<(String, String), FakeService>,
    asgs: HashMap<String, FakeAsg>,
    /// RDS DB instances and clusters by (id, is_cluster).
    databases: HashMap<(String, bool), FakeDb>,
    target_groups: HashMap<String, FakeTargetGroup>,
    listeners: HashMap<String, Vec<ListenerRule>>,
    /// The target group each listener's default action forwards to.
    defaults: HashMap<String, Option<String>>,
    rule_quota: usize,
    /// Calls of each operation under way now, and the most there ever were at once.
    in_flight: HashMap<&'static str, usize>,
    max_in_flight: HashMap<&'static str, usize>,
    /// Rules deleted by "another party" between a DescribeRules and its DescribeTags.
    delete_during_listing: VecDeque<String>,
    calls: Vec<(String, Instant)>,
    failures: HashMap<String, VecDeque<CloudError>>,
    race_before_create: VecDeque<(String, ListenerRule)>,
    next_rule_id: u32,
    /// Datapoints by (namespace, metric, dimensions): (minute start, value).
    metrics: HashMap<String, Vec<(i64, f64)>>,
    states: HashMap<String, RuleState>,
    emf: Vec<String>,
    state_table_missing: bool,
    born: Option<Instant>,
    /// Wall time at `born`, epoch seconds.
    epoch: i64,
    /// Moments a forward rule of ours pointed at a target that was stopping or stopped.
    violations: Vec<String>,
}

/// The fake. All knobs are methods; see the flow tests for use.
pub struct FakeCloud {
    state: Mutex<State>,
    latency: Duration,
    /// Tokio time at creation; wall time is `epoch` ([`FAKE_EPOCH`] unless
    /// [`FakeCloud::starting_at`]) plus the tokio time since.
    born: Instant,
    epoch: i64,
    /// Datapoints younger than this are not visible yet (CloudWatch's 1-3 minute lag).
    metric_lag: Mutex<Duration>,
    /// Per-operation latency overriding `latency` (e.g. an SDK retrying a throttled call).
    slow: Mutex<HashMap<&'static str, Duration>>,
}

impl Default for FakeCloud {
    fn default() -> Self {
        FakeCloud::new()
    }
}

impl FakeCloud {
    /// A fake where each call takes 10 ms of (tokio) time, so concurrent callers overlap.
    pub fn new() -> FakeCloud {
        FakeCloud::with_latency(Duration::from_millis(10))
    }

    pub fn with_latency(latency: Duration) -> FakeCloud {
        FakeCloud {
            state: Mutex::new(State {
                born: Some(Instant::now()),
                epoch: FAKE_EPOCH,
                rule_quota: DEFAULT_RULE_QUOTA,
                ..State::default()
            }),
            latency,
            born: Instant::now(),
            epoch: FAKE_EPOCH,
            metric_lag: Mutex::new(Duration::ZERO),
            slow: Mutex::new(HashMap::new()),
        }
    }

    /// The same fake with its wall clock starting at `epoch` (seconds): schedules need a
    /// given weekday and hour, or a DST change.
    pub fn starting_at(mut self, epoch: i64) -> FakeCloud {
        self.epoch = epoch;
        self.lock().epoch = epoch;
        self
    }

    async fn db_transition(&self, id: &str, cluster: bool, from: &str, to: &str) -> CloudResult<()> {
        let op = match (to, cluster) {
            ("starting", false) => "StartDBInstance",
            ("starting", true) => "StartDBCluster",
            (_, false) => "StopDBInstance",
            (_, true) => "StopDBCluster",
        };
        self.enter(op).await?;
        let (now, mut s) = (Instant::now(), self.lock());
        s.settle_databases(now);
        let Some(db) = s.databases.get_mut(&(id.to_string(), cluster)) else {
            let code = if cluster { "DBClusterNotFoundFault" } else { "DBInstanceNotFound" };
            return Err(CloudError::new(op, code, id));
        };
        let state_code = if cluster { "InvalidDBClusterStateFault" } else { "InvalidDBInstanceState" };
        if db.status != from || (to == "stopping" && db.cannot_stop.is_some()) {
            return Err(CloudError::new(op, state_code, format!("{id} is {}", db.status)));
        }
        db.status = to.to_string();
        db.until = Some(now + db.boot);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- setup ----

    /// Adds an instance; `boot` is how long `pending` lasts, stop how long `stopping` lasts.
    pub fn add_instance(&self, id: &str, state: InstanceState, boot: Duration) {
        let now = Instant::now();
        self.lock().instances.insert(
            id.to_string(),
            FakeInstance {
                state,
                state_reason: None,
                until: None,
                running_since: (state == InstanceState::Running).then_some(now),
                launched_at: (state == InstanceState::Running).then(|| self.now()),
                boot,
                stop: Duration::from_secs(30),
                fails_to_boot: false,
                detailed_monitoring: true,
                hibernation_configured: false,
                hibernated: false,
            },
        );
    }

    /// Launched with hibernation enabled.
    pub fn enable_hibernation(&self, id: &str) {
        self.lock().instances.get_mut(id).expect("unknown fake instance").hibernation_configured = true;
    }

    /// Whether the instance's last stop was a hibernation.
    pub fn hibernated(&self, id: &str) -> bool {
        self.lock().instances.get(id).is_some_and(|i| i.hibernated)
    }

    /// Puts an instance in `stopping` for `remaining`, then `stopped`.
    pub fn set_stopping(&self, id: &str, remaining: Duration) {
        let mut s = self.lock();
        let i = s.instances.get_mut(id).expect("unknown fake instance");
        i.state = InstanceState::Stopping;
        i.until = Some(Instant::now() + remaining);
        i.running_since = None;
    }

    pub fn set_instance_state(&self, id: &str, state: InstanceState) {
        let mut s = self.lock();
        let i = s.instances.get_mut(id).expect("unknown fake instance");
        i.state = state;
        i.until = None;
        i.running_since = (state == InstanceState::Running).then_some(Instant::now());
    }

    /// The instance has basic monitoring: its EC2 metrics come every 5 minutes (as
    /// [`FakeCloud::put_metric`] is told).
    pub fn basic_monitoring(&self, id: &str) {
        self.lock().instances.get_mut(id).expect("unknown fake instance").detailed_monitoring = false;
    }

    /// Every start of this instance ends back in `stopped` with `Client.InternalError`.
    pub fn fail_to_boot(&self, id: &str) {
        self.lock().instances.get_mut(id).expect("unknown fake instance").fails_to_boot = true;
    }

    pub fn add_service(&self, cluster: &str, service: &str, desired: u32, boot: Duration) {
        self.lock().services.insert(
            (cluster.to_string(), service.to_string()),
            FakeService {
                arn: format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}"),
                desired,
                status: "ACTIVE".into(),
                tags: HashMap::new(),
                scaled_at: Instant::now(),
                boot,
            },
        );
    }

    pub fn tag_service(&self, cluster: &str, service: &str, key: &str, value: &str) {
        let mut s = self.lock();
        let svc = s.services.get_mut(&(cluster.to_string(), service.to_string())).expect("unknown fake service");
        svc.tags.insert(key.to_string(), value.to_string());
    }

    /// A target group whose targets turn healthy `health_delay` after they run in a group a
    /// listener references (never sooner than ALB's minimum, [`MIN_HEALTHY_AFTER`]).
    pub fn add_target_group(&self, arn: &str, health_delay: Duration) {
        let mut s = self.lock();
        let health_delay = health_delay.max(MIN_HEALTHY_AFTER);
        s.target_groups.insert(arn.to_string(), FakeTargetGroup { health_delay, ..Default::default() });
        s.refresh_attachments(Instant::now());
    }

    pub fn register_instance(&self, tg: &str, id: &str) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").instances.push(id.to_string());
    }

    /// An Auto Scaling group: its instances are in service `boot` after the desired capacity
    /// changes.
    pub fn add_asg(&self, name: &str, min: u32, max: u32, desired: u32, boot: Duration) {
        let asg = FakeAsg { min, max, desired, tags: HashMap::new(), changed_at: Instant::now(), boot };
        self.lock().asgs.insert(name.to_string(), asg);
    }

    /// An RDS DB instance (or, `cluster`, an Aurora cluster) in `status`; a start takes `boot`,
    /// a stop as long.
    pub fn add_database(&self, id: &str, cluster: bool, status: &str, boot: Duration) {
        let db = FakeDb { status: status.to_string(), until: None, boot, cannot_stop: None };
        self.lock().databases.insert((id.to_string(), cluster), db);
    }

    /// A read replica: RDS cannot stop it.
    pub fn make_read_replica(&self, id: &str, source: &str) {
        if let Some(db) = self.lock().databases.get_mut(&(id.to_string(), false)) {
            db.cannot_stop = Some(format!("it is a read replica of {source}, and RDS cannot stop a read replica"));
        }
    }

    /// What RDS does to a database stopped for 7 days (RDS user guide, "Stopping an Amazon RDS
    /// DB instance temporarily"): it starts it again.
    pub fn auto_start_database(&self, id: &str, cluster: bool) {
        let mut s = self.lock();
        let db = s.databases.get_mut(&(id.to_string(), cluster)).expect("unknown fake database");
        db.status = "available".into();
        db.until = None;
    }

    pub fn database_status(&self, id: &str, cluster: bool) -> String {
        let mut s = self.lock();
        s.settle_databases(Instant::now());
        s.databases.get(&(id.to_string(), cluster)).map(|d| d.status.clone()).unwrap_or_else(|| "missing".into())
    }

    /// The group's instances register in this target group (as a group attached to it does).
    pub fn attach_asg(&self, tg: &str, name: &str) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").asg = Some(name.to_string());
    }

    /// (min size, desired capacity) of a group.
    pub fn asg_sizes(&self, name: &str) -> (u32, u32) {
        let s = self.lock();
        let g = s.asgs.get(name).expect("unknown fake group");
        (g.min, g.desired)
    }

    pub fn asg_tag(&self, name: &str, key: &str) -> Option<String> {
        self.lock().asgs.get(name).and_then(|g| g.tags.get(key).cloned())
    }

    /// The service's tasks register in this target group (as ECS does).
    pub fn attach_service(&self, tg: &str, cluster: &str, service: &str) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").service =
            Some((cluster.to_string(), service.to_string()));
    }

    /// From now on every running target of `tg` fails its health checks with `reason`
    /// (`Target.Timeout`, `Target.ResponseCodeMismatch`, ...); `None` heals them.
    pub fn fail_health_checks(&self, tg: &str, reason: Option<&str>) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").failing = reason.map(str::to_string);
    }

    /// A listener whose default action forwards to [`LAMBDA_TG`].
    pub fn add_listener(&self, arn: &str) {
        self.add_listener_with_default(arn, Some(LAMBDA_TG));
    }

    /// A listener whose default action forwards to `default` (`None`: a fixed response).
    pub fn add_listener_with_default(&self, arn: &str, default: Option<&str>) {
        let mut s = self.lock();
        s.listeners.entry(arn.to_string()).or_default();
        s.defaults.insert(arn.to_string(), default.map(str::to_string));
        s.refresh_attachments(Instant::now());
    }

    /// The load balancer's quota of rules (ALB's default is 100, adjustable).
    pub fn set_rule_quota(&self, n: usize) {
        self.lock().rule_quota = n;
    }

    /// A rule autostop did not create (no owner tag) at `priority`, forwarding to a group of
    /// its own.
    pub fn add_foreign_rule(&self, listener: &str, priority: u32, hosts: &[&str]) {
        self.insert_rule(listener, priority, hosts, vec![Weighted::new("arn:foreign-tg", 1)], None);
    }

    /// A rule tagged `autostop:rule=<owner>` forwarding to `target_group` only: what the
    /// previous version of autostop inserted while a rule was awake, or one left behind by a
    /// rule since removed from the config.
    pub fn add_tagged_rule(&self, listener: &str, priority: u32, hosts: &[&str], target_group: &str, owner: &str) {
        self.insert_rule(listener, priority, hosts, vec![Weighted::new(target_group, 1)], Some(owner));
    }

    fn insert_rule(&self, listener: &str, priority: u32, hosts: &[&str], forward: Vec<Weighted>, owner: Option<&str>) {
        let mut s = self.lock();
        let arn = s.new_rule_arn();
        s.listeners.get_mut(listener).expect("unknown fake listener").push(ListenerRule {
            arn,
            priority,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            forward,
            owner: owner.map(str::to_string),
        });
        s.refresh_attachments(Instant::now());
    }

    /// Just before the next CreateRule runs, another Lambda instance (`owner` = a rule name) or
    /// a person (`owner` = None) inserts a rule at `priority`.
    pub fn race_before_next_create(
        &self,
        listener: &str,
        priority: u32,
        hosts: &[&str],
        forward: Vec<Weighted>,
        owner: Option<&str>,
    ) {
        let mut s = self.lock();
        let arn = s.new_rule_arn();
        s.race_before_create.push_back((
            listener.to_string(),
            ListenerRule {
                arn,
                priority,
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                forward,
                owner: owner.map(str::to_string),
            },
        ));
    }

    /// The next listing of any listener sees `rule_arn` in DescribeRules, and then the rule is
    /// deleted (by a person, or another invocation) before DescribeTags asks for its tags.
    pub fn delete_during_next_listing(&self, rule_arn: &str) {
        self.lock().delete_during_listing.push_back(rule_arn.to_string());
    }

    /// Deletes a rule now, as a person in the console would.
    pub fn delete_rule_by_hand(&self, rule_arn: &str) {
        let mut s = self.lock();
        for rules in s.listeners.values_mut() {
            rules.retain(|r| r.arn != rule_arn);
        }
        s.refresh_attachments(Instant::now());
    }

    /// The next `times` calls of `op` (e.g. "StartInstances") fail with `code`.
    pub fn fail_next(&self, op: &'static str, code: &str, times: usize) {
        let mut s = self.lock();
        let queue = s.failures.entry(op.to_string()).or_default();
        for _ in 0..times {
            queue.push_back(CloudError::new(op, code, format!("injected {code}")));
        }
    }

    /// The next `times` calls of `op` fail with `code` and AWS's `message` text.
    pub fn fail_next_with(&self, op: &'static str, code: &str, message: &str, times: usize) {
        let mut s = self.lock();
        let queue = s.failures.entry(op.to_string()).or_default();
        for _ in 0..times {
            queue.push_back(CloudError::new(op, code, message).with_request_id(Some("f0e1d2c3-req")));
        }
    }

    /// Every call of `op` takes `latency` from now on.
    pub fn slow_down(&self, op: &'static str, latency: Duration) {
        self.slow.lock().unwrap_or_else(|p| p.into_inner()).insert(op, latency);
    }

    /// Makes CloudWatch datapoints visible only `lag` after their minute.
    pub fn set_metric_lag(&self, lag: Duration) {
        *self.metric_lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }

    /// Records a datapoint at the minute containing wall time `at`.
    pub fn put_metric(&self, namespace: &str, metric: &str, dimensions: &[(&str, &str)], at: i64, value: f64) {
        let key = metric_key(namespace, metric, dimensions.iter().map(|(k, v)| (*k, *v)));
        let mut s = self.lock();
        let points = s.metrics.entry(key).or_default();
        let minute = at - at.rem_euclid(60);
        match points.iter_mut().find(|(t, _)| *t == minute) {
            Some(p) => p.1 += value,
            None => points.push((minute, value)),
        }
    }

    /// ALB requests for a target group behind a load balancer, now.
    pub fn put_requests(&self, target_group_arn: &str, listener_arn: &str, count: f64) {
        let tg = super::alb::target_group_dimension(target_group_arn);
        let lb = super::alb::load_balancer_dimension(listener_arn);
        self.put_metric(
            "AWS/ApplicationELB",
            "RequestCount",
            &[("TargetGroup", &tg), ("LoadBalancer", &lb)],
            self.now(),
            count,
        );
    }

    /// The state table does not exist (deleted, never deployed).
    pub fn drop_state_table(&self) {
        let mut s = self.lock();
        s.state_table_missing = true;
        s.states.clear();
    }

    /// The EMF lines emitted so far.
    pub fn metric_lines(&self) -> Vec<String> {
        self.lock().emf.clone()
    }

    /// Puts an item in the state table as if earlier wakes had written it.
    pub fn seed_state(&self, state: RuleState) {
        self.lock().states.insert(state.rule.clone(), state);
    }

    pub fn state_item(&self, rule: &str) -> Option<RuleState> {
        self.lock().states.get(rule).cloned()
    }

    /// Times a forward rule of ours pointed at a stopping/stopped target.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    // ---- inspection ----

    /// How many times `op` was called (failed calls included).
    pub fn calls(&self, op: &str) -> usize {
        self.lock().calls.iter().filter(|(c, _)| c.as_str() == op).count()
    }

    pub fn total_calls(&self) -> usize {
        self.lock().calls.len()
    }

    /// Calls per operation, sorted by name.
    pub fn call_counts(&self) -> Vec<(String, usize)> {
        let s = self.lock();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (c, _) in &s.calls {
            *counts.entry(c.as_str()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = counts.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort();
        v
    }

    /// When `op` was first called (tokio time), if it was.
    pub fn first_call_at(&self, op: &str) -> Option<Instant> {
        self.lock().calls.iter().find(|(c, _)| c.as_str() == op).map(|(_, at)| *at)
    }

    /// The most calls of `op` that were under way at once.
    pub fn max_in_flight(&self, op: &str) -> usize {
        self.lock().max_in_flight.get(op).copied().unwrap_or(0)
    }

    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    pub fn instance_state(&self, id: &str) -> InstanceState {
        let mut s = self.lock();
        if s.advance(Instant::now()) {
            s.check_invariants();
        }
        s.instances.get(id).map(|i| i.state).unwrap_or(InstanceState::Missing)
    }

    pub fn service_tag(&self, cluster: &str, service: &str, key: &str) -> Option<String> {
        self.lock().services[&(cluster.to_string(), service.to_string())].tags.get(key).cloned()
    }

    pub fn service_desired(&self, cluster: &str, service: &str) -> u32 {
        self.lock().services[&(cluster.to_string(), service.to_string())].desired
    }

    pub fn rules(&self, listener: &str) -> Vec<ListenerRule> {
        let mut v = self.lock().listeners.get(listener).cloned().unwrap_or_default();
        v.sort_by_key(|r| r.priority);
        v
    }

    /// Where the ALB would send a request for `host` on `listener`: the target groups of the first
    /// matching rule by priority that have a weight above 0, else the default action's group.
    pub fn route(&self, listener: &str, host: &str) -> Vec<String> {
        self.lock().route(listener, host)
    }

    /// The one target group `host` reaches on `listener`; panics when traffic would be split.
    pub fn routes_to(&self, listener: &str, host: &str) -> String {
        let to = self.route(listener, host);
        assert_eq!(to.len(), 1, "{host} on {listener} is split between {to:?}");
        to[0].clone()
    }

    // ---- the call path ----

    /// Logs the call, waits the latency, then returns an injected failure if one is queued.
    async fn enter(&self, op: &'static str) -> CloudResult<()> {
        {
            let mut s = self.lock();
            s.calls.push((op.to_string(), Instant::now()));
            let now = s.in_flight.entry(op).or_default();
            *now += 1;
            let now = *now;
            let max = s.max_in_flight.entry(op).or_default();
            *max = (*max).max(now);
        }
        let latency = self.slow.lock().unwrap_or_else(|p| p.into_inner()).get(op).copied().unwrap_or(self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }

        let mut s = self.lock();
        *s.in_flight.entry(op).or_default() -= 1;
        if s.advance(Instant::now()) {
            s.check_invariants();
        }
        match s.failures.get_mut(op).and_then(VecDeque::pop_front) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl State {
    fn new_rule_arn(&mut self) -> String {
        self.next_rule_id += 1;
        format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/dev/1/2/{}", self.next_rule_id)
    }

    /// No listener may send traffic (weight above 0) to a target group whose instances are
    /// stopping or stopped, or whose service is scaled to 0. Run after every change.
    fn check_invariants(&mut self) {
        let mut bad: HashMap<&str, String> = HashMap::new();
        for (arn, tg) in &self.target_groups {
            for id in &tg.instances {
                let state = self.instances.get(id).map(|i| i.state);
                if matches!(state, Some(InstanceState::Stopping | InstanceState::Stopped)) {
                    bad.insert(arn, format!("{id} {:?}", state.unwrap()));
                }
            }
            if tg.service.as_ref().and_then(|k| self.services.get(k)).is_some_and(|svc| svc.desired == 0) {
                bad.insert(arn, "service scaled to 0".into());
            }
        }
        let mut found = Vec::new();
        for (listener, rules) in &self.listeners {
            for r in rules {
                for why in r.routes_to().into_iter().filter_map(|t| bad.get(t)) {
                    found.push(format!("{listener}: rule {} -> {why}", r.arn));
                }
            }
        }
        self.violations.extend(found);
    }

    /// A group is health-checked only while a listener rule or default action references it
    /// (ELBv2 API reference, TargetHealth: `Target.NotInUse`). Records since when.
    fn refresh_attachments(&mut self, now: Instant) {
        let mut referenced: std::collections::HashSet<&str> =
            self.defaults.values().flatten().map(String::as_str).collect();
        for rules in self.listeners.values() {
            referenced.extend(rules.iter().flat_map(|r| r.forward.iter().map(|w| w.target_group.as_str())));
        }
        for (arn, tg) in self.target_groups.iter_mut() {
            if !referenced.contains(arn.as_str()) {
                tg.attached_since = None;
            } else if tg.attached_since.is_none() {
                tg.attached_since = Some(now);
            }
        }
    }

    fn route(&self, listener: &str, host: &str) -> Vec<String> {
        let mut rules: Vec<&ListenerRule> =
            self.listeners.get(listener).map(|r| r.iter().collect()).unwrap_or_default();
        rules.sort_by_key(|r| r.priority);
        match rules.into_iter().find(|r| r.hosts.iter().any(|p| super::alb::alb_host_match(p, host))) {
            Some(r) => r.routes_to().into_iter().map(str::to_string).collect(),
            None => self.defaults.get(listener).cloned().flatten().into_iter().collect(),
        }
    }

    /// Health as DescribeTargetHealth reports it (see the module docs for the sources).
    fn health(&self, tg: &FakeTargetGroup, now: Instant) -> TargetHealth {
        let mut h = TargetHealth::default();
        let mut count = |since: Instant, n: u32| {
            let Some(attached) = tg.attached_since else {
                h.not_in_use += n; // unused / Target.NotInUse: not counted as registered-and-checked
                return;
            };
            h.total += n;
            let checked_from = since.max(attached);
            if checked_from + tg.health_delay > now {
                h.initial += n;
            } else if let Some(reason) = &tg.failing {
                h.unhealthy += n;
                h.unhealthy_reason.get_or_insert_with(|| reason.clone());
            } else {
                h.healthy += n;
            }
        };
        for id in &tg.instances {
            // A stopped or pending instance is unused / Target.InvalidState: not counted.
            if let Some(since) = self.instances.get(id).and_then(|i| i.running_since) {
                count(since, 1);
            }
        }
        if let Some(g) = tg.asg.as_ref().and_then(|n| self.asgs.get(n)) {
            // The group registers an instance once it is in service.
            if g.desired > 0 && g.changed_at + g.boot <= now {
                count(g.changed_at + g.boot, g.desired);
            }
        }
        if let Some(svc) = tg.service.as_ref().and_then(|k| self.services.get(k)) {
            // ECS registers a task's IP once the task runs.
            if svc.desired > 0 && svc.scaled_at + svc.boot <= now {
                count(svc.scaled_at + svc.boot, svc.desired);
            }
        }
        h
    }

    /// Ends the database transitions that are due.
    fn settle_databases(&mut self, now: Instant) {
        for db in self.databases.values_mut() {
            if db.until.is_some_and(|t| t <= now) {
                db.until = None;
                db.status = if db.status == "starting" { "available" } else { "stopped" }.into();
            }
        }
    }

    /// Rules of all listeners of the load balancer `listener` belongs to.
    fn rules_on_load_balancer(&self, listener: &str) -> usize {
        let lb = super::alb::load_balancer_dimension(listener);
        self.listeners.iter().filter(|(l, _)| super::alb::load_balancer_dimension(l) == lb).map(|(_, r)| r.len()).sum()
    }

    fn find_rule_mut(&mut self, arn: &str) -> Option<&mut ListenerRule> {
        self.listeners.values_mut().flat_map(|r| r.iter_mut()).find(|r| r.arn == arn)
    }

    /// ALB's checks on a rule's host values and forward action (module docs: quotas).
    fn validate_rule(&self, op: &'static str, hosts: &[String], forward: &[Weighted]) -> CloudResult<()> {
        if hosts.is_empty() || hosts.len() > 3 {
            // One host-header condition per rule, up to three match evaluations per condition
            // (ALB guide, "Condition types for listener rules"). AWS does not document the code
            // of the error; ValidationError is what its query API answers for a constraint.
            return Err(CloudError::new(op, "ValidationError", "a host-header condition takes at most 3 values"));
        }
        if let Some(h) = hosts.iter().find(|h| h.len() > 128) {
            return Err(CloudError::new(op, "ValidationError", format!("host-header value too long: {h}")));
        }
        if forward.is_empty() || forward.len() > 5 {
            return Err(CloudError::new(op, "ValidationError", "a forward action takes 1 to 5 target groups"));
        }
        if let Some(w) = forward.iter().find(|w| w.weight > 999) {
            return Err(CloudError::new(op, "ValidationError", format!("weight {} outside 0-999", w.weight)));
        }
        if let Some(w) = forward
            .iter()
            .find(|w| !w.target_group.starts_with("arn:foreign") && !self.target_group_known(&w.target_group))
        {
            return Err(CloudError::new(op, "TargetGroupNotFound", w.target_group.clone()));
        }
        Ok(())
    }

    fn target_group_known(&self, arn: &str) -> bool {
        self.target_groups.contains_key(arn) || self.defaults.values().flatten().any(|d| d == arn)
    }

    /// Applies the transitions whose time has come; true when one did.
    fn advance(&mut self, now: Instant) -> bool {
        let born = self.born.unwrap_or(now);
        let mut changed = false;
        for i in self.instances.values_mut() {
            let Some(until) = i.until else { continue };
            if until > now {
                continue;
            }
            changed = true;
            i.until = None;
            match i.state {
                InstanceState::Pending if i.fails_to_boot => {
                    i.state = InstanceState::Stopped;
                    i.state_reason = Some("Client.InternalError".into());
                }
                InstanceState::Pending => {
                    i.state = InstanceState::Running;
                    i.running_since = Some(until);
                    i.launched_at = Some(self.epoch + until.duration_since(born).as_secs() as i64);
                }
                InstanceState::Stopping => {
                    i.state = InstanceState::Stopped;
                    i.state_reason = Some("Client.UserInitiatedShutdown".into());
                }
                _ => {}
            }
        }
        changed
    }
}

fn metric_key<'a>(namespace: &str, metric: &str, dims: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let dims: Vec<String> = dims.map(|(k, v)| format!("{k}={v}")).collect();
    format!("{namespace}|{metric}|{}", dims.join(","))
}

impl Cloud for FakeCloud {
    fn now(&self) -> i64 {
        self.epoch + Instant::now().duration_since(self.born).as_secs() as i64
    }

    fn now_ms(&self) -> i64 {
        self.epoch * 1000 + Instant::now().duration_since(self.born).as_millis() as i64
    }

    /// Kept as a log line, and turned into datapoints as CloudWatch does with an EMF line:
    /// every metric under every dimension set it declares ("Specification: Embedded metric
    /// format", CloudWatch user guide).
    fn emit_metrics(&self, line: String) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            let at = v["_aws"]["Timestamp"].as_i64().unwrap_or(0) / 1000;
            for def in v["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
                let ns = def["Namespace"].as_str().unwrap_or("");
                for set in def["Dimensions"].as_array().into_iter().flatten() {
                    let dims: Vec<(&str, &str)> = set
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|d| d.as_str())
                        .map(|d| (d, v[d].as_str().unwrap_or("")))
                        .collect();
                    for m in def["Metrics"].as_array().into_iter().flatten() {
                        let name = m["Name"].as_str().unwrap_or("");
                        self.put_metric(ns, name, &dims, at, v[name].as_f64().unwrap_or(0.0));
                    }
                }
            }
        }
        self.lock().emf.push(line);
    }

    async fn instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        // Counted as the real adapter calls: 200 ids per call.
        for _ in ids.chunks(200) {
            self.enter("DescribeInstances").await?;
        }
        let s = self.lock();
        Ok(ids
            .iter()
            .map(|id| match s.instances.get(id) {
                Some(i) => Instance {
                    id: id.clone(),
                    state: i.state,
                    state_reason: i.state_reason.clone(),
                    launched_at: i.launched_at,
                    detailed_monitoring: i.detailed_monitoring,
                    hibernation_configured: i.hibernation_configured,
                },
                None => Instance::missing(id),
            })
            .collect())
    }

    async fn start_instances(&self, ids: &[String]) -> CloudResult<()> {
        self.enter("StartInstances").await?;
        let now = Instant::now();
        let mut s = self.lock();
        for id in ids {
            match s.instances.get(id).map(|i| i.state) {
                None => return Err(CloudError::new("StartInstances", "InvalidInstanceID.NotFound", id.clone())),
                Some(InstanceState::Stopping | InstanceState::Terminated | InstanceState::ShuttingDown) => {
                    return Err(CloudError::new("StartInstances", "IncorrectInstanceState", id.clone()))
                }
                _ => {}
            }
        }
        for id in ids {
            let i = s.instances.get_mut(id).expect("checked above");
            if i.state == InstanceState::Stopped {
                i.state = InstanceState::Pending;
                i.state_reason = None;
                i.until = Some(now + i.boot);
            }
        }
        Ok(())
    }

    /// Hibernation can be enabled only at launch (EC2 user guide, "Hibernate your Amazon EC2
    /// instance"); the fake refuses `Hibernate=true` for any other instance, so a test sees
    /// autostop never asks for it.
    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> CloudResult<()> {
        self.enter("StopInstances").await?;
        let now = Instant::now();
        let mut s = self.lock();
        for id in ids {
            let Some(i) = s.instances.get_mut(id) else {
                return Err(CloudError::new("StopInstances", "InvalidInstanceID.NotFound", id.clone()));
            };
            if hibernate && !i.hibernation_configured {
                return Err(CloudError::new(
                    "StopInstances",
                    "UnsupportedOperation",
                    format!("{id} is not enabled for hibernation"),
                ));
            }
            i.hibernated = hibernate;
            if matches!(i.state, InstanceState::Running | InstanceState::Pending) {
                i.state = InstanceState::Stopping;
                i.until = Some(now + i.stop);
                i.running_since = None;
            }
        }
        s.check_invariants();
        Ok(())
    }

    async fn services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        for _ in names.chunks(10) {
            self.enter("DescribeServices").await?;
        }
        let now = Instant::now();
        let s = self.lock();
        let born = s.born.unwrap_or(now);
        Ok(names
            .iter()
            .map(|name| match s.services.get(&(cluster.to_string(), name.clone())) {
                Some(svc) => Service {
                    cluster: cluster.to_string(),
                    name: name.clone(),
                    arn: svc.arn.clone(),
                    desired: svc.desired,
                    running: if svc.scaled_at + svc.boot <= now { svc.desired } else { 0 },
                    status: svc.status.clone(),
                    remembered_count: svc.tags.get(DESIRED_COUNT_TAG).and_then(|v| v.parse().ok()),
                    changed_at: Some(FAKE_EPOCH + svc.scaled_at.duration_since(born).as_secs() as i64),
                },
                None => Service::missing(cluster, name),
            })
            .collect())
    }

    async fn tag_service(&self, service_arn: &str, key: &str, value: &str) -> CloudResult<()> {
        self.enter("TagResource").await?;
        let mut s = self.lock();
        let svc = s
            .services
            .values_mut()
            .find(|svc| svc.arn == service_arn)
            .ok_or_else(|| CloudError::new("TagResource", "InvalidParameterException", service_arn))?;
        svc.tags.insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn scale_service(&self, cluster: &str, service: &str, desired: u32) -> CloudResult<()> {
        self.enter("UpdateService").await?;
        let mut s = self.lock();
        let Some(svc) = s.services.get_mut(&(cluster.to_string(), service.to_string())) else {
            return Err(CloudError::new("UpdateService", "ServiceNotFoundException", service.to_string()));
        };
        if svc.desired != desired {
            svc.desired = desired;
            svc.scaled_at = Instant::now();
        }
        s.check_invariants();
        Ok(())
    }

    async fn databases(&self, instances: &[String], clusters: &[String]) -> CloudResult<Vec<Database>> {
        if !instances.is_empty() {
            self.enter("DescribeDBInstances").await?;
        }
        if !clusters.is_empty() {
            self.enter("DescribeDBClusters").await?;
        }
        let mut s = self.lock();
        s.settle_databases(Instant::now());
        let wanted = instances.iter().map(|i| (i, false)).chain(clusters.iter().map(|c| (c, true)));
        Ok(wanted
            .map(|(id, cluster)| match s.databases.get(&(id.clone(), cluster)) {
                Some(db) => {
                    Database { id: id.clone(), cluster, status: db.status.clone(), cannot_stop: db.cannot_stop.clone() }
                }
                None => Database::missing(id, cluster),
            })
            .collect())
    }

    /// Only a `stopped` database starts; anything else is InvalidDBInstanceState
    /// (InvalidDBClusterStateFault for a cluster): RDS API reference, StartDBInstance.
    async fn start_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        self.db_transition(id, cluster, "stopped", "starting").await
    }

    /// Only an `available` database stops (RDS API reference, StopDBInstance); a read replica
    /// never does.
    async fn stop_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        self.db_transition(id, cluster, "available", "stopping").await
    }

    async fn auto_scaling_groups(&self, names: &[String]) -> CloudResult<Vec<AutoScalingGroup>> {
        for _ in names.chunks(100) {
            self.enter("DescribeAutoScalingGroups").await?;
        }
        let (s, now) = (self.lock(), Instant::now());
        Ok(names
            .iter()
            .map(|n| match s.asgs.get(n) {
                Some(g) => AutoScalingGroup {
                    name: n.clone(),
                    exists: true,
                    min: g.min,
                    max: g.max,
                    desired: g.desired,
                    in_service: if g.changed_at + g.boot <= now { g.desired } else { 0 },
                    remembered_min: g.tags.get(ASG_MIN_TAG).and_then(|v| v.parse().ok()),
                    remembered_desired: g.tags.get(ASG_DESIRED_TAG).and_then(|v| v.parse().ok()).filter(|n| *n > 0),
                },
                None => AutoScalingGroup::missing(n),
            })
            .collect())
    }

    /// Desired capacity must lie within min and max (EC2 Auto Scaling API reference,
    /// UpdateAutoScalingGroup: ValidationError otherwise).
    async fn update_auto_scaling_group(&self, name: &str, min: u32, desired: u32) -> CloudResult<()> {
        self.enter("UpdateAutoScalingGroup").await?;
        let mut s = self.lock();
        let Some(g) = s.asgs.get_mut(name) else {
            return Err(CloudError::new(
                "UpdateAutoScalingGroup",
                "ValidationError",
                format!("AutoScalingGroup name not found - {name}"),
            ));
        };
        if desired < min || desired > g.max {
            return Err(CloudError::new(
                "UpdateAutoScalingGroup",
                "ValidationError",
                format!(
                    "Desired capacity:{desired} must be between the specified min size:{min} and max size:{}",
                    g.max
                ),
            ));
        }
        if g.desired != desired {
            g.changed_at = Instant::now();
        }
        (g.min, g.desired) = (min, desired);
        Ok(())
    }

    async fn tag_auto_scaling_group(&self, name: &str, tags: &[(&str, String)]) -> CloudResult<()> {
        self.enter("CreateOrUpdateTags").await?;
        let mut s = self.lock();
        let g = s.asgs.get_mut(name).ok_or_else(|| CloudError::new("CreateOrUpdateTags", "ValidationError", name))?;
        for (k, v) in tags {
            g.tags.insert(k.to_string(), v.clone());
        }
        Ok(())
    }

    async fn target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth> {
        self.enter("DescribeTargetHealth").await?;
        let s = self.lock();
        let tg = s
            .target_groups
            .get(target_group_arn)
            .ok_or_else(|| CloudError::new("DescribeTargetHealth", "TargetGroupNotFound", target_group_arn))?;
        Ok(s.health(tg, Instant::now()))
    }

    async fn listener_rules(&self, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
        // Counted as the real adapter calls: pages of 50 rules, tags for 20 rules per call. A rule
        // deleted between the two makes DescribeTags fail with RuleNotFound, and the adapter lists
        // again (tested against the SDK in the adapter's tests).
        loop {
            let n = self.lock().listeners.get(listener_arn).map(Vec::len).unwrap_or(0);
            for _ in 0..n.div_ceil(50).max(1) {
                self.enter("DescribeRules").await?;
            }
            let raced = {
                let mut s = self.lock();
                let gone = s.delete_during_listing.pop_front();
                if let Some(arn) = &gone {
                    for rules in s.listeners.values_mut() {
                        rules.retain(|r| &r.arn != arn);
                    }
                    s.refresh_attachments(Instant::now());
                }
                gone.is_some()
            };
            for k in 0..n.div_ceil(20) {
                self.enter("DescribeTags").await?;
                if raced && k == 0 {
                    break;
                }
            }
            if raced {
                continue; // DescribeTags said RuleNotFound: list again
            }
            let s = self.lock();
            return s
                .listeners
                .get(listener_arn)
                .cloned()
                .ok_or_else(|| CloudError::new("DescribeRules", "ListenerNotFound", listener_arn));
        }
    }

    async fn listeners_of(&self, load_balancer_arn: &str) -> CloudResult<Vec<String>> {
        self.enter("DescribeListeners").await?;
        let lb = load_balancer_arn.split_once(":loadbalancer/").map(|(_, r)| r).unwrap_or(load_balancer_arn);
        let mut found: Vec<String> =
            self.lock().listeners.keys().filter(|l| super::alb::load_balancer_dimension(l) == lb).cloned().collect();
        found.sort();
        Ok(found)
    }

    async fn default_target_group(&self, listener_arn: &str) -> CloudResult<Option<String>> {
        self.enter("DescribeListeners").await?;
        let s = self.lock();
        s.defaults
            .get(listener_arn)
            .cloned()
            .ok_or_else(|| CloudError::new("DescribeListeners", "ListenerNotFound", listener_arn))
    }

    async fn create_rule(&self, rule: &NewRule) -> CloudResult<String> {
        self.enter("CreateRule").await?;
        let mut s = self.lock();
        if let Some((listener, raced)) = s.race_before_create.pop_front() {
            s.listeners.get_mut(&listener).expect("unknown fake listener").push(raced);
            s.refresh_attachments(Instant::now());
        }
        if !s.listeners.contains_key(&rule.listener_arn) {
            return Err(CloudError::new("CreateRule", "ListenerNotFound", rule.listener_arn.clone()));
        }
        if !(1..=super::alb::MAX_PRIORITY).contains(&rule.priority) {
            return Err(CloudError::new("CreateRule", "ValidationError", format!("priority {}", rule.priority)));
        }
        s.validate_rule("CreateRule", &rule.hosts, &rule.forward)?;
        if s.listeners[&rule.listener_arn].iter().any(|r| r.priority == rule.priority) {
            return Err(CloudError::new(
                "CreateRule",
                "PriorityInUse",
                format!("Priority '{}' is in use", rule.priority),
            ));
        }
        if s.rules_on_load_balancer(&rule.listener_arn) >= s.rule_quota {
            return Err(CloudError::new(
                "CreateRule",
                "TooManyRules",
                "You've reached the limit on the number of rules per load balancer",
            ));
        }
        let arn = s.new_rule_arn();
        s.listeners.get_mut(&rule.listener_arn).expect("checked").push(ListenerRule {
            arn: arn.clone(),
            priority: rule.priority,
            hosts: rule.hosts.clone(),
            forward: rule.forward.clone(),
            owner: Some(rule.owner.clone()),
        });
        s.refresh_attachments(Instant::now());
        s.check_invariants();
        Ok(arn)
    }

    async fn modify_rule(&self, rule_arn: &str, change: &RuleChange) -> CloudResult<()> {
        self.enter("ModifyRule").await?;
        let mut s = self.lock();
        let Some(current) = s.find_rule_mut(rule_arn).map(|r| r.clone()) else {
            return Err(CloudError::new("ModifyRule", "RuleNotFound", rule_arn));
        };
        let hosts = change.hosts.clone().unwrap_or(current.hosts);
        let forward = change.forward.clone().unwrap_or(current.forward);
        s.validate_rule("ModifyRule", &hosts, &forward)?;
        let r = s.find_rule_mut(rule_arn).expect("found above");
        r.hosts = hosts;
        r.forward = forward;
        s.refresh_attachments(Instant::now());
        s.check_invariants();
        Ok(())
    }

    async fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> CloudResult<()> {
        self.enter("SetRulePriorities").await?;
        let mut s = self.lock();
        let mut listener_of: Vec<(String, String)> = Vec::new();
        for (arn, _) in priorities {
            let Some(l) = s.listeners.iter().find(|(_, rules)| rules.iter().any(|r| &r.arn == arn)).map(|(l, _)| l)
            else {
                return Err(CloudError::new("SetRulePriorities", "RuleNotFound", arn.clone()));
            };
            listener_of.push((arn.clone(), l.clone()));
        }
        // "You can reorder the rules as long as there are no priority conflicts in the new order"
        // (ELBv2 API reference, SetRulePriorities): check the order after the change.
        for (_, listener) in &listener_of {
            let mut after: Vec<u32> = s.listeners[listener]
                .iter()
                .map(|r| priorities.iter().find(|(a, _)| a == &r.arn).map(|(_, p)| *p).unwrap_or(r.priority))
                .collect();
            after.sort_unstable();
            if after.windows(2).any(|w| w[0] == w[1]) {
                return Err(CloudError::new("SetRulePriorities", "PriorityInUse", "The specified priority is in use."));
            }
        }
        for (arn, p) in priorities {
            s.find_rule_mut(arn).expect("found above").priority = *p;
        }
        Ok(())
    }

    async fn delete_rule(&self, rule_arn: &str) -> CloudResult<()> {
        self.enter("DeleteRule").await?;
        let mut s = self.lock();
        if s.find_rule_mut(rule_arn).is_none() {
            // AWS: RuleNotFound (moto succeeds instead).
            return Err(CloudError::new("DeleteRule", "RuleNotFound", rule_arn));
        }
        for rules in s.listeners.values_mut() {
            rules.retain(|r| r.arn != rule_arn);
        }
        s.refresh_attachments(Instant::now());
        Ok(())
    }

    async fn metric_data(&self, queries: &[MetricQuery], start: i64, end: i64) -> CloudResult<Vec<MetricSeries>> {
        for _ in queries.chunks(super::METRIC_QUERIES_PER_CALL) {
            self.enter("GetMetricData").await?;
        }
        let lag = self.metric_lag.lock().unwrap_or_else(|p| p.into_inner()).as_secs() as i64;
        let visible_until = self.now() - lag;
        let s = self.lock();
        Ok(queries
            .iter()
            .map(|q| {
                let key = metric_key(q.namespace, q.metric, q.dimensions.iter().map(|(k, v)| (*k, v.as_str())));
                let mut points: Vec<(i64, f64)> = s
                    .metrics
                    .get(&key)
                    .map(|p| {
                        p.iter().copied().filter(|(t, _)| *t >= start && *t < end && t + 60 <= visible_until).collect()
                    })
                    .unwrap_or_default();
                points.sort_by_key(|p| std::cmp::Reverse(p.0));
                MetricSeries { id: q.id.clone(), points }
            })
            .collect())
    }

    async fn load_states(&self, _table: &str) -> CloudResult<Vec<RuleState>> {
        self.enter("Scan").await?;
        let s = self.lock();
        if s.state_table_missing {
            return Err(CloudError::new("Scan", "ResourceNotFoundException", "Requested resource not found"));
        }
        let mut v: Vec<RuleState> = s.states.values().cloned().collect();
        v.sort_by(|a, b| a.rule.cmp(&b.rule));
        Ok(v)
    }

    async fn load_state(&self, _table: &str, rule: &str) -> CloudResult<Option<RuleState>> {
        self.enter("GetItem").await?;
        let s = self.lock();
        if s.state_table_missing {
            return Err(CloudError::new("GetItem", "ResourceNotFoundException", "Requested resource not found"));
        }
        Ok(s.states.get(rule).cloned())
    }

    async fn save_state(&self, _table: &str, state: &RuleState, expected: Option<u64>) -> CloudResult<()> {
        self.enter("PutItem").await?;
        let mut s = self.lock();
        if s.state_table_missing {
            return Err(CloudError::new("PutItem", "ResourceNotFoundException", "Requested resource not found"));
        }
        let current = s.states.get(&state.rule).map(|st| st.version);
        if current != expected {
            return Err(CloudError::new(
                "PutItem",
                "ConditionalCheckFailedException",
                "The conditional request failed",
            ));
        }
        s.states.insert(state.rule.clone(), state.clone());
        Ok(())
    }
}
