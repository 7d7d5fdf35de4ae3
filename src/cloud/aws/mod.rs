//! The real AWS adapters behind [`crate::cloud::Cloud`]: one file per service.
//!
//! Each adapter turns SDK outputs into domain types in small pure functions and every SDK error
//! into a [`CloudError`] carrying the AWS error code (see [`cloud_error`]).

mod cloudwatch;
mod ec2;
mod ecs;
mod elbv2;
mod state;

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;

use crate::cloud::{
    Cloud, CloudError, CloudResult, Instance, ListenerRule, MetricQuery, MetricSeries, NewRule, RuleChange, RuleState,
    Service, TargetHealth,
};

/// SDK clients for every service autostop calls, built once per process.
#[derive(Clone, Debug)]
pub struct AwsCloud {
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Added to the system clock; 0 except in tests that must see the future.
    clock_skew_secs: i64,
}

impl AwsCloud {
    /// Clients from one shared SDK config (region, credentials, `AWS_ENDPOINT_URL`, retries).
    pub fn new(sdk: &aws_config::SdkConfig) -> AwsCloud {
        AwsCloud {
            ec2: aws_sdk_ec2::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            clock_skew_secs: 0,
        }
    }

    /// A cloud whose clock runs `secs` ahead: lets an integration test run the idle check "later"
    /// against a real endpoint without waiting.
    pub fn with_clock_skew(mut self, secs: i64) -> AwsCloud {
        self.clock_skew_secs = secs;
        self
    }

    /// A target group's type, `None` if it does not exist (for `autostop validate --aws`).
    pub async fn target_group_type(&self, arn: &str) -> CloudResult<Option<String>> {
        elbv2::target_group_type(&self.elb, arn).await
    }

    /// The target groups a listener's default action forwards to, `None` if it does not exist.
    pub async fn listener_default_targets(&self, arn: &str) -> CloudResult<Option<Vec<String>>> {
        elbv2::listener_default_targets(&self.elb, arn).await
    }

    /// The account's ELB limits by name (for `autostop validate --aws`).
    pub async fn account_limits(&self) -> CloudResult<std::collections::HashMap<String, u64>> {
        elbv2::account_limits(&self.elb).await
    }

    /// Loads the SDK config from the environment (the normal credential chain), with the SDK's
    /// adaptive retry mode: exponential backoff with jitter plus a client-side rate limiter that
    /// slows a Lambda environment down when AWS throttles it. EC2's request buckets are per
    /// account and Region and shared with every environment and everything else in the account
    /// (EC2 API reference, request throttling): backing off is better than retrying harder.
    pub async fn from_env() -> AwsCloud {
        let retry = aws_config::retry::RetryConfig::adaptive().with_max_attempts(4);
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry).load().await;
        AwsCloud::new(&sdk)
    }
}

/// Any SDK error -> [`CloudError`]: the service's error code when there is one, else a transient
/// failure (network, timeout, unparseable response) described with its full source chain.
pub(crate) fn cloud_error<E>(op: &'static str, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    let e = match err.code() {
        Some(code) => CloudError::new(op, code, err.message().unwrap_or_default()),
        None => CloudError::transient(op, DisplayErrorContext(&err).to_string()),
    };
    e.with_request_id(request_id.as_deref())
}

impl Cloud for AwsCloud {
    fn now(&self) -> i64 {
        self.now_ms() / 1000
    }
    fn now_ms(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        since_epoch.as_millis() as i64 + self.clock_skew_secs * 1000
    }
    async fn instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        ec2::instances(&self.ec2, ids).await
    }
    async fn start_instances(&self, ids: &[String]) -> CloudResult<()> {
        ec2::start_instances(&self.ec2, ids).await
    }
    async fn stop_instances(&self, ids: &[String]) -> CloudResult<()> {
        ec2::stop_instances(&self.ec2, ids).await
    }
    async fn services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        ecs::services(&self.ecs, cluster, names).await
    }
    async fn tag_service(&self, service_arn: &str, key: &str, value: &str) -> CloudResult<()> {
        ecs::tag_service(&self.ecs, service_arn, key, value).await
    }
    async fn scale_service(&self, cluster: &str, service: &str, desired: u32) -> CloudResult<()> {
        ecs::scale_service(&self.ecs, cluster, service, desired).await
    }
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth> {
        elbv2::target_health(&self.elb, target_group_arn).await
    }
    async fn listener_rules(&self, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
        elbv2::listener_rules(&self.elb, listener_arn).await
    }
    async fn listeners_of(&self, load_balancer_arn: &str) -> CloudResult<Vec<String>> {
        elbv2::listeners_of(&self.elb, load_balancer_arn).await
    }
    async fn default_target_group(&self, listener_arn: &str) -> CloudResult<Option<String>> {
        elbv2::default_target_group(&self.elb, listener_arn).await
    }
    async fn create_rule(&self, rule: &NewRule) -> CloudResult<String> {
        elbv2::create_rule(&self.elb, rule).await
    }
    async fn modify_rule(&self, rule_arn: &str, change: &RuleChange) -> CloudResult<()> {
        elbv2::modify_rule(&self.elb, rule_arn, change).await
    }
    async fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> CloudResult<()> {
        elbv2::set_rule_priorities(&self.elb, priorities).await
    }
    async fn delete_rule(&self, rule_arn: &str) -> CloudResult<()> {
        elbv2::delete_rule(&self.elb, rule_arn).await
    }
    async fn metric_data(&self, queries: &[MetricQuery], start: i64, end: i64) -> CloudResult<Vec<MetricSeries>> {
        cloudwatch::metric_data(&self.cloudwatch, queries, start, end).await
    }
    async fn load_states(&self, table: &str) -> CloudResult<Vec<RuleState>> {
        state::load_states(&self.dynamodb, table).await
    }
    async fn load_state(&self, table: &str, rule: &str) -> CloudResult<Option<RuleState>> {
        state::load_state(&self.dynamodb, table, rule).await
    }
    async fn save_state(&self, table: &str, state: &RuleState, expected: Option<u64>) -> CloudResult<()> {
        state::save_state(&self.dynamodb, table, state, expected).await
    }
}
