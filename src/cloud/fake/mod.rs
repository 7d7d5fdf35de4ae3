//! An in-memory cloud for flow tests and benchmarks that behaves as AWS documents, not as moto.
//!
//! It keeps time with `tokio::time::Instant`, so under a paused clock an instance can be `pending`
//! for 40 s and healthy 20 s later while the test runs in milliseconds. Its parts: [`compute`]
//! (EC2, ECS, Auto Scaling, RDS), [`alb`] (listeners, rules, routing, health, quotas),
//! [`metrics`] (CloudWatch and EMF), [`table`] (the DynamoDB state table), [`calls`] (every
//! call logged and counted by [`Op`]) and [`failure`] (failures and races injected on demand);
//! [`port`] plugs them into the [`Cloud`] trait, and [`tests`] proves each behaviour below.
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

mod alb;
mod calls;
mod compute;
mod failure;
mod metrics;
mod op;
mod port;
mod table;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{CloudError, HealthCheck, InstanceState, ListenerRule, RuleState};

pub use op::Op;

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
    /// Its Availability Zone has no capacity for its type: a start asking for it fails.
    no_capacity: bool,
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
    /// The settings DescribeTargetGroups reports.
    health_check: HealthCheck,
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
    /// Listeners whose protocol is HTTP (the rest are HTTPS): no authenticate action on them.
    http_listeners: std::collections::HashSet<String>,
    rule_quota: usize,
    /// Calls of each operation under way now, and the most there ever were at once.
    in_flight: HashMap<Op, usize>,
    max_in_flight: HashMap<Op, usize>,
    /// Rules deleted by "another party" between a DescribeRules and its DescribeTags.
    delete_during_listing: VecDeque<String>,
    calls: Vec<(Op, Instant)>,
    failures: HashMap<Op, VecDeque<CloudError>>,
    race_before_create: VecDeque<(String, ListenerRule)>,
    next_rule_id: u32,
    /// Datapoints by (namespace, metric, dimensions): (minute start, value).
    metrics: HashMap<String, Vec<(i64, f64)>>,
    states: HashMap<String, RuleState>,
    emf: Vec<String>,
    /// Events put onto buses: (bus, detail type, detail JSON), in order.
    events: Vec<(String, String, String)>,
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
    slow: Mutex<HashMap<Op, Duration>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
