//! The cloud port: what autostop needs from AWS, in domain words.
//!
//! [`Cloud`] is implemented by the real adapters in [`aws`] and by the in-memory [`fake`] used by
//! flow tests and benchmarks. Domain code (wake, idle, http) only sees the types here; no
//! `aws_sdk_*` type crosses this line. Every failure is a [`CloudError`] carrying the AWS error code
//! and its classification, never a flattened string.

pub mod alb;
pub mod aws;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod item;

pub use item::{Phase, RuleState, WARMUPS_KEPT};

use std::fmt;
use std::future::Future;

/// EC2 instance state, normalised. `Missing` = not returned by DescribeInstances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Missing,
}

impl InstanceState {
    /// Maps EC2's `InstanceStateName` text. Unknown names are treated as `Pending`: something is in
    /// flight and the next observation will tell.
    pub fn from_ec2_name(name: &str) -> InstanceState {
        match name {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => InstanceState::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    /// EC2's `StateReason.Code` (e.g. `Client.InternalError` when an encrypted volume could not be
    /// attached for lack of `kms:CreateGrant`).
    pub state_reason: Option<String>,
    /// EC2's `LaunchTime`: when the instance was last started (epoch seconds).
    pub launched_at: Option<i64>,
    /// Detailed monitoring: EC2 metrics every minute. Without it (basic monitoring) they come
    /// every 5 minutes (EC2 user guide, "Instance metrics": monitoring frequency).
    pub detailed_monitoring: bool,
    /// Enabled for hibernation at launch (`HibernationOptions.Configured`); only such an
    /// instance can hibernate (EC2 user guide, "Hibernate your Amazon EC2 instance").
    pub hibernation_configured: bool,
}

impl Instance {
    /// An instance DescribeInstances did not return.
    pub fn missing(id: &str) -> Instance {
        Instance {
            id: id.to_string(),
            state: InstanceState::Missing,
            state_reason: None,
            launched_at: None,
            detailed_monitoring: false,
            hibernation_configured: false,
        }
    }

    /// Seconds one EC2 metric datapoint covers for this instance.
    pub fn metric_period(&self) -> i64 {
        if self.detailed_monitoring {
            60
        } else {
            300
        }
    }
}

/// An Auto Scaling group as the wake and stop paths see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoScalingGroup {
    pub name: String,
    /// `false` when DescribeAutoScalingGroups does not return it.
    pub exists: bool,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// Instances `InService`.
    pub in_service: u32,
    /// Min size and desired capacity remembered in the [`ASG_MIN_TAG`] and [`ASG_DESIRED_TAG`]
    /// tags when autostop scaled it to 0.
    pub remembered_min: Option<u32>,
    pub remembered_desired: Option<u32>,
}

impl AutoScalingGroup {
    pub fn missing(name: &str) -> AutoScalingGroup {
        AutoScalingGroup { name: name.to_string(), ..Default::default() }
    }
}

/// An RDS DB instance or Aurora DB cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub id: String,
    pub cluster: bool,
    /// RDS's status (`available`, `stopped`, `starting`, `stopping`, ...); `missing` when
    /// Describe does not return it.
    pub status: String,
    /// Why it cannot be stopped on its own, when it cannot: a read replica, or an instance of
    /// an Aurora cluster (the cluster is stopped instead).
    pub cannot_stop: Option<String>,
}

impl Database {
    pub fn missing(id: &str, cluster: bool) -> Database {
        Database { id: id.to_string(), cluster, status: "missing".into(), cannot_stop: None }
    }

    /// Runs, or is on its way to running: anything but stopped, stopping or missing.
    pub fn running(&self) -> bool {
        !matches!(self.status.as_str(), "stopped" | "stopping" | "missing")
    }

    pub fn kind(&self) -> &'static str {
        if self.cluster {
            "rds-cluster"
        } else {
            "rds"
        }
    }
}

/// Tags an Auto Scaling group keeps its min size and desired capacity in while scaled to 0.
pub const ASG_MIN_TAG: &str = "autostop:min-size";
pub const ASG_DESIRED_TAG: &str = "autostop:desired-capacity";

/// An ECS service as the wake and stop paths see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Cluster and service name as configured.
    pub cluster: String,
    pub name: String,
    /// Needed to tag it; empty when missing.
    pub arn: String,
    pub desired: u32,
    pub running: u32,
    /// `ACTIVE`, `DRAINING`, `INACTIVE`, or `MISSING` when ECS reports it as a failure.
    pub status: String,
    /// The count remembered in the `autostop:desired-count` tag when it was scaled to 0.
    pub remembered_count: Option<u32>,
    /// When its newest deployment last changed (a scale-up counts), epoch seconds.
    pub changed_at: Option<i64>,
}

impl Service {
    /// What DescribeServices reports for a service it does not know.
    pub fn missing(cluster: &str, name: &str) -> Service {
        Service {
            cluster: cluster.to_string(),
            name: name.to_string(),
            arn: String::new(),
            desired: 0,
            running: 0,
            status: "MISSING".into(),
            remembered_count: None,
            changed_at: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }
}

/// Registered targets of a target group, counted by what ALB's health checks say of them.
///
/// `total` counts the targets the load balancer considers (not `unused`, not `draining`); the
/// status JSON shows `healthy` and `total` only, the rest explains a wait in words.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetHealth {
    pub healthy: u32,
    pub total: u32,
    /// `initial`: registered, still in the first health checks (`Elb.InitialHealthChecking`).
    #[serde(skip)]
    pub initial: u32,
    /// `unhealthy`, with the reason code of the first one (`Target.Timeout`, ...).
    #[serde(skip)]
    pub unhealthy: u32,
    #[serde(skip)]
    pub unhealthy_reason: Option<String>,
    /// `unused` with `Target.NotInUse`: no listener rule or default action references the group,
    /// so the ALB does not health-check it at all.
    #[serde(skip)]
    pub not_in_use: u32,
}

impl TargetHealth {
    pub fn counts(healthy: u32, total: u32) -> TargetHealth {
        TargetHealth { healthy, total, ..TargetHealth::default() }
    }
}

/// One member of a forward action: a target group and its weight (0-999; traffic goes only to
/// members with a weight above 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Weighted {
    pub target_group: String,
    pub weight: u32,
}

impl Weighted {
    pub fn new(target_group: &str, weight: u32) -> Weighted {
        Weighted { target_group: target_group.to_string(), weight }
    }
}

/// A non-default rule of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRule {
    pub arn: String,
    pub priority: u32,
    /// Values of its host-header condition(s).
    pub hosts: Vec<String>,
    /// Its forward action's target groups with their weights (empty for other actions).
    pub forward: Vec<Weighted>,
    /// Value of its `autostop:rule` tag: `Some` only for rules autostop created.
    pub owner: Option<String>,
}

impl ListenerRule {
    /// The target groups this rule sends traffic to (weight above 0).
    pub fn routes_to(&self) -> Vec<&str> {
        self.forward.iter().filter(|w| w.weight > 0).map(|w| w.target_group.as_str()).collect()
    }

    /// Every target group the rule references, whatever its weight (what keeps a group
    /// attached to the load balancer, and so health-checked).
    pub fn references(&self, target_group: &str) -> bool {
        self.forward.iter().any(|w| w.target_group == target_group)
    }
}

/// A host-header forward rule to create, tagged as ours in the same call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub listener_arn: String,
    pub priority: u32,
    pub hosts: Vec<String>,
    pub forward: Vec<Weighted>,
    /// Written as the `autostop:rule` tag.
    pub owner: String,
}

/// What a ModifyRule changes: the host condition, the forward action, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleChange {
    pub hosts: Option<Vec<String>>,
    pub forward: Option<Vec<Weighted>>,
}

/// The tag that marks ALB rules as ours; only rules carrying it are ever deleted.
pub const RULE_TAG: &str = "autostop:rule";
/// The tag on an ECS service remembering its desired count while scaled to 0.
pub const DESIRED_COUNT_TAG: &str = "autostop:desired-count";

/// What kind of failure an AWS error code is; decides retry vs. error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Rate limited: retry shortly, never an error page of its own.
    Throttled,
    /// Network, timeout or 5xx: retry shortly.
    Transient,
    /// No capacity for the instance type / AZ right now (`InsufficientInstanceCapacity`).
    Capacity,
    /// A configured resource does not exist.
    NotFound,
    /// The resource is in a state that does not allow the call.
    InvalidState,
    /// ALB priority already used by another rule.
    PriorityInUse,
    /// A conditional write lost: someone else changed the item first.
    Conflict,
    /// Missing IAM permission.
    AccessDenied,
    /// An account or service limit (too many rules, ...).
    Limit,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Classifies an AWS error code.
    pub fn from_code(code: &str) -> ErrorKind {
        match code {
            "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
            | "ProvisionedThroughputExceededException" => ErrorKind::Throttled,
            "InsufficientInstanceCapacity"
            | "InsufficientCapacity"
            | "InsufficientHostCapacity"
            | "InsufficientReservedInstanceCapacity"
            | "InsufficientCapacityOnHost"
            | "Unsupported" => ErrorKind::Capacity,
            "PriorityInUse" => ErrorKind::PriorityInUse,
            "ConditionalCheckFailedException" | "TransactionConflictException" => ErrorKind::Conflict,
            "IncorrectInstanceState"
            | "IncorrectState"
            | "IncorrectSpotRequestState"
            | "ServiceNotActiveException"
            | "InvalidInstanceState"
            | "InvalidDBInstanceState"
            | "InvalidDBInstanceStateFault"
            | "InvalidDBClusterStateFault"
            | "ResourceContention"
            | "ScalingActivityInProgress" => ErrorKind::InvalidState,
            "UnauthorizedOperation"
            | "AccessDenied"
            | "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "AuthFailure" => ErrorKind::AccessDenied,
            "ServiceNotFoundException"
            | "ClusterNotFoundException"
            | "TargetGroupNotFound"
            | "ListenerNotFound"
            | "RuleNotFound"
            | "LoadBalancerNotFound"
            | "DBInstanceNotFound"
            | "DBInstanceNotFoundFault"
            | "DBClusterNotFoundFault"
            | "ResourceNotFoundException" => ErrorKind::NotFound,
            "TooManyRules"
            | "TooManyTargets"
            | "TooManyTags"
            | "TooManyConditionValues"
            | "TooManyActions"
            | "InstanceLimitExceeded"
            | "VcpuLimitExceeded" => ErrorKind::Limit,
            "InternalError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "ServerException"
            | "Unavailable" => ErrorKind::Transient,
            c if c.ends_with(".NotFound") || c.ends_with("NotFoundException") || c.ends_with("NotFound") => {
                ErrorKind::NotFound
            }
            _ => ErrorKind::Other,
        }
    }

    /// Worth retrying within the same request (as opposed to showing an error now).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::Capacity => "capacity",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidState => "invalid_state",
            ErrorKind::PriorityInUse => "priority_in_use",
            ErrorKind::Conflict => "conflict",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Limit => "limit",
            ErrorKind::Other => "other",
        }
    }
}

/// A failed cloud call: which operation, the AWS code, its kind, AWS's message and the request
/// id. The message may carry role ARNs, account ids and encoded authorization messages: it goes
/// to the log, never to a page or a response ([`CloudError::public`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudError {
    pub op: &'static str,
    pub code: String,
    pub kind: ErrorKind,
    pub message: String,
    pub request_id: Option<String>,
}

impl CloudError {
    pub fn new(op: &'static str, code: impl Into<String>, message: impl Into<String>) -> CloudError {
        let code = code.into();
        CloudError { op, kind: ErrorKind::from_code(&code), code, message: message.into(), request_id: None }
    }

    /// A failure with no AWS code (connection refused, timeout, unparseable response).
    pub fn transient(op: &'static str, message: impl Into<String>) -> CloudError {
        CloudError {
            op,
            code: "NetworkError".into(),
            kind: ErrorKind::Transient,
            message: message.into(),
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, id: Option<&str>) -> CloudError {
        self.request_id = id.map(str::to_string);
        self
    }

    /// What anyone may read: the operation, the code and its kind; no AWS message text.
    pub fn public(&self) -> String {
        format!("{} failed with {} ({})", self.op, self.code, self.kind.as_str())
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {} ({})", self.op, self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for CloudError {}

pub type CloudResult<T> = Result<T, CloudError>;

/// One metric to read, one-minute periods. `id` must start with a lower-case letter.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub id: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    /// In the order they were published (CloudWatch matches them exactly).
    pub dimensions: Vec<(&'static str, String)>,
    /// `Sum`, `Average` or `Maximum`.
    pub stat: &'static str,
}

/// Datapoints of one query: (start of the minute in epoch seconds, value).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricSeries {
    pub id: String,
    pub points: Vec<(i64, f64)>,
}

/// GetMetricData takes at most 500 queries per call.
pub const METRIC_QUERIES_PER_CALL: usize = 500;

/// The port. Every method is one logical AWS operation (an adapter may page or batch inside it);
/// every mutating method is safe to repeat.
pub trait Cloud: Send + Sync + 'static {
    /// Wall-clock time, epoch seconds (the fake derives it from the tokio clock).
    fn now(&self) -> i64;
    /// Wall-clock time, epoch milliseconds.
    fn now_ms(&self) -> i64 {
        self.now() * 1000
    }
    /// Publishes one CloudWatch Embedded Metric Format line (see `crate::telemetry::emf`). In Lambda
    /// a log line is how EMF reaches CloudWatch: stderr goes to the function's log group.
    /// One write per line (`eprintln!` makes two on unbuffered stderr), so a line is never split
    /// or interleaved with a log line from another thread.
    fn emit_metrics(&self, mut line: String) {
        use std::io::Write;
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// States of the given instances, in the given order; ids AWS does not know are `Missing`.
    fn instances(&self, ids: &[String]) -> impl Future<Output = CloudResult<Vec<Instance>>> + Send;
    fn start_instances(&self, ids: &[String]) -> impl Future<Output = CloudResult<()>> + Send;
    /// Stops the instances; with `hibernate`, hibernates them (StopInstances `Hibernate=true`,
    /// which needs instances enabled for hibernation at launch).
    fn stop_instances(&self, ids: &[String], hibernate: bool) -> impl Future<Output = CloudResult<()>> + Send;
    /// Services of one cluster, in the given order, `status == "MISSING"` for unknown ones.
    fn services(&self, cluster: &str, names: &[String]) -> impl Future<Output = CloudResult<Vec<Service>>> + Send;
    /// One service (see [`Cloud::services`]).
    fn service(&self, cluster: &str, name: &str) -> impl Future<Output = CloudResult<Service>> + Send {
        async move {
            let mut v = self.services(cluster, &[name.to_string()]).await?;
            Ok(v.pop().unwrap_or_else(|| Service::missing(cluster, name)))
        }
    }
    fn tag_service(&self, service_arn: &str, key: &str, value: &str) -> impl Future<Output = CloudResult<()>> + Send;
    fn scale_service(&self, cluster: &str, service: &str, desired: u32)
        -> impl Future<Output = CloudResult<()>> + Send;
    fn target_health(&self, target_group_arn: &str) -> impl Future<Output = CloudResult<TargetHealth>> + Send;
    /// Auto Scaling groups by name, in the given order; ones AWS does not know have `exists`
    /// false.
    fn auto_scaling_groups(&self, names: &[String]) -> impl Future<Output = CloudResult<Vec<AutoScalingGroup>>> + Send;
    /// Sets a group's min size and desired capacity (UpdateAutoScalingGroup).
    fn update_auto_scaling_group(
        &self,
        name: &str,
        min: u32,
        desired: u32,
    ) -> impl Future<Output = CloudResult<()>> + Send;
    /// RDS DB instances, then Aurora DB clusters, in the given order; unknown ones `missing`.
    fn databases(
        &self,
        instances: &[String],
        clusters: &[String],
    ) -> impl Future<Output = CloudResult<Vec<Database>>> + Send;
    /// StartDBInstance / StartDBCluster.
    fn start_database(&self, id: &str, cluster: bool) -> impl Future<Output = CloudResult<()>> + Send;
    /// StopDBInstance / StopDBCluster.
    fn stop_database(&self, id: &str, cluster: bool) -> impl Future<Output = CloudResult<()>> + Send;
    /// Creates or updates tags on a group (CreateOrUpdateTags).
    fn tag_auto_scaling_group(
        &self,
        name: &str,
        tags: &[(&str, String)],
    ) -> impl Future<Output = CloudResult<()>> + Send;
    /// All non-default rules of a listener with their `autostop:rule` owner tag. A rule deleted
    /// between the listing and the tag lookup (`RuleNotFound` from DescribeTags) makes the
    /// adapter list again, so the answer is one consistent view.
    fn listener_rules(&self, listener_arn: &str) -> impl Future<Output = CloudResult<Vec<ListenerRule>>> + Send;
    /// ARNs of every listener of a load balancer (DescribeListeners, paged).
    fn listeners_of(&self, load_balancer_arn: &str) -> impl Future<Output = CloudResult<Vec<String>>> + Send;
    /// The target group the listener's default action forwards to (autostop's Lambda target
    /// group on a listener set up for autostop); `None` when the default action is no forward.
    fn default_target_group(&self, listener_arn: &str) -> impl Future<Output = CloudResult<Option<String>>> + Send;
    /// Creates the rule with its tag in one call; returns its ARN.
    fn create_rule(&self, rule: &NewRule) -> impl Future<Output = CloudResult<String>> + Send;
    /// Changes a rule's host condition and/or forward action in place (ModifyRule): atomic, and
    /// idempotent.
    fn modify_rule(&self, rule_arn: &str, change: &RuleChange) -> impl Future<Output = CloudResult<()>> + Send;
    /// Sets the priorities of the given rules in one call (SetRulePriorities).
    fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> impl Future<Output = CloudResult<()>> + Send;
    fn delete_rule(&self, rule_arn: &str) -> impl Future<Output = CloudResult<()>> + Send;
    /// One-minute datapoints of every query in `[start, end)`, batched by
    /// [`METRIC_QUERIES_PER_CALL`]; one series per query, in query order.
    fn metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> impl Future<Output = CloudResult<Vec<MetricSeries>>> + Send;
    /// Every item of the state table.
    fn load_states(&self, table: &str) -> impl Future<Output = CloudResult<Vec<RuleState>>> + Send;
    /// One rule's item (strongly consistent read).
    fn load_state(&self, table: &str, rule: &str) -> impl Future<Output = CloudResult<Option<RuleState>>> + Send;
    /// Writes `state` if the stored version is `expected` (`None`: only if there is no item).
    /// A lost race is `ErrorKind::Conflict`.
    fn save_state(
        &self,
        table: &str,
        state: &RuleState,
        expected: Option<u64>,
    ) -> impl Future<Output = CloudResult<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_state_names_map() {
        for (name, state) in [
            ("pending", InstanceState::Pending),
            ("running", InstanceState::Running),
            ("stopping", InstanceState::Stopping),
            ("stopped", InstanceState::Stopped),
            ("shutting-down", InstanceState::ShuttingDown),
            ("terminated", InstanceState::Terminated),
        ] {
            assert_eq!(InstanceState::from_ec2_name(name), state);
            assert_eq!(state.as_str(), name);
        }
        assert_eq!(InstanceState::from_ec2_name("rebooting"), InstanceState::Pending);
    }

    #[test]
    fn error_codes_classify() {
        for (code, kind) in [
            ("Throttling", ErrorKind::Throttled),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            ("ThrottlingException", ErrorKind::Throttled),
            ("InsufficientInstanceCapacity", ErrorKind::Capacity),
            ("InvalidInstanceID.NotFound", ErrorKind::NotFound),
            ("ServiceNotFoundException", ErrorKind::NotFound),
            ("TargetGroupNotFound", ErrorKind::NotFound),
            ("IncorrectInstanceState", ErrorKind::InvalidState),
            ("PriorityInUse", ErrorKind::PriorityInUse),
            ("ConditionalCheckFailedException", ErrorKind::Conflict),
            ("UnauthorizedOperation", ErrorKind::AccessDenied),
            ("AccessDenied", ErrorKind::AccessDenied),
            ("TooManyRules", ErrorKind::Limit),
            ("InternalError", ErrorKind::Transient),
            ("SomethingNew", ErrorKind::Other),
        ] {
            assert_eq!(ErrorKind::from_code(code), kind, "{code}");
        }
        assert!(ErrorKind::Throttled.is_retryable());
        assert!(!ErrorKind::Capacity.is_retryable());
    }
}
