//! The cloud port: what autostop needs from AWS, in domain words.
//!
//! [`Cloud`] is implemented by the real adapters in [`aws`] (one file per service) and by the
//! in-memory `fake` used by flow tests and benchmarks. The domain only sees the types here
//! ([`resources`], [`listener`], [`metrics`], [`item`], [`error`]) and the ALB facts in [`alb`];
//! no `aws_sdk_*` type crosses this line, and nothing here imports the domain. Every failure is
//! a [`CloudError`] carrying the AWS error code and its classification, never a flattened
//! string.

pub mod alb;
pub mod aws;
pub mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod item;
pub mod listener;
pub mod metrics;
pub mod resources;

use std::future::Future;

pub use error::{CloudError, CloudResult, ErrorKind};
pub use item::{Phase, RuleState, WARMUPS_KEPT};
pub use listener::{
    Authenticate, Cognito, ListenerFacts, ListenerRule, NewRule, Oidc, OnUnauthenticated, RuleChange, Secret,
    SecretUse, Session, Weighted, RULE_TAG,
};
pub use metrics::{MetricQuery, MetricSeries, METRIC_QUERIES_PER_CALL};
pub use resources::{
    AutoScalingGroup, Database, DatabaseState, HealthCheck, Instance, InstanceState, Service, TargetHealth,
    ASG_DESIRED_TAG, ASG_MIN_TAG, DESIRED_COUNT_TAG,
};

/// How long one attempt of an AWS call may take before it is abandoned (and retried).
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long one port call may take in all, retries and backoff included: past it the call fails
/// with `Timeout` ([`ErrorKind::Transient`]: retried by the next step). A hung endpoint can then
/// never hold a request into the Lambda's timeout, and the idle check's calls stay inside its
/// deadline.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

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
    /// The target group's health-check settings (DescribeTargetGroups).
    fn health_check(&self, target_group_arn: &str) -> impl Future<Output = CloudResult<HealthCheck>> + Send;
    /// The load balancers (ARNs) each target group serves, by target group ARN: none while no
    /// listener rule or default action references it, else exactly one ("you can use each target
    /// group with only one load balancer", ELBv2 API reference, TargetGroup `LoadBalancerArns`).
    /// Groups AWS does not know are left out.
    fn load_balancers_of_groups(
        &self,
        target_group_arns: &[String],
    ) -> impl Future<Output = CloudResult<std::collections::HashMap<String, Vec<String>>>> + Send;
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
    /// group on a listener set up for autostop; `None` when the default action is no forward),
    /// and whether the listener is HTTPS (DescribeListeners).
    fn listener_facts(&self, listener_arn: &str) -> impl Future<Output = CloudResult<ListenerFacts>> + Send;
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
    /// Puts one event onto an EventBridge bus (name or ARN), source `autostop` (PutEvents). An
    /// entry EventBridge did not take (`FailedEntryCount`) is an error with its code.
    fn put_event(&self, bus: &str, detail_type: &str, detail: &str) -> impl Future<Output = CloudResult<()>> + Send;
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
