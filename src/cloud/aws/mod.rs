//! The real AWS adapters behind [`crate::cloud::Cloud`]: one file per service.
//!
//! Each adapter turns SDK outputs into domain types in small pure functions and every SDK error
//! into a [`crate::cloud::CloudError`] carrying the AWS error code (see `error::cloud_error`).

mod actions;
mod autoscaling;
mod cloudwatch;
mod ec2;
mod ecs;
mod elbv2;
mod error;
mod events;
mod rds;
mod state;

use error::cloud_error;

use crate::cloud::{
    Cloud, CloudResult, Instance, ListenerFacts, ListenerRule, MetricQuery, MetricSeries, NewRule, RuleChange,
    RuleState, Service, TargetHealth,
};

/// The SDK clients of every service autostop calls, from one shared SDK config.
#[derive(Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sts: aws_sdk_sts::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub rds: aws_sdk_rds::Client,
    pub events: aws_sdk_eventbridge::Client,
}

impl Clients {
    fn new(sdk: &aws_config::SdkConfig) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            rds: aws_sdk_rds::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
        }
    }
}

/// The AWS side of [`Cloud`]. Its clients are built once per process, on the first AWS call:
/// loading the SDK config (credential chain, HTTPS client and its trust roots) costs several
/// milliseconds, which a cold start that only answers a scanner or an unknown host should not pay.
#[derive(Clone, Debug)]
pub struct AwsCloud {
    clients: std::sync::Arc<tokio::sync::OnceCell<Clients>>,
    /// Added to the system clock; 0 except in tests that must see the future.
    clock_skew_secs: i64,
}

impl AwsCloud {
    /// Clients from a given SDK config, built now (tests against moto or a replay).
    pub fn new(sdk: &aws_config::SdkConfig) -> AwsCloud {
        let clients = tokio::sync::OnceCell::new_with(Some(Clients::new(sdk)));
        AwsCloud { clients: std::sync::Arc::new(clients), clock_skew_secs: 0 }
    }

    /// Clients from the environment (the normal credential chain, `AWS_ENDPOINT_URL`), built on
    /// the first AWS call; see [`AwsCloud::clients`].
    pub fn from_env() -> AwsCloud {
        AwsCloud { clients: std::sync::Arc::new(tokio::sync::OnceCell::new()), clock_skew_secs: 0 }
    }

    /// Whether the clients have been built (a first AWS call was made).
    pub fn clients_built(&self) -> bool {
        self.clients.initialized()
    }

    /// A cloud whose clock runs `secs` ahead: lets an integration test run the idle check "later"
    /// against a real endpoint without waiting.
    pub fn with_clock_skew(mut self, secs: i64) -> AwsCloud {
        self.clock_skew_secs = secs;
        self
    }

    /// The clients, loading the SDK config on first use with the SDK's adaptive retry mode:
    /// exponential backoff with jitter plus a client-side rate limiter that slows a Lambda
    /// environment down when AWS throttles it. EC2's request buckets are per account and Region
    /// and shared with every environment and everything else in the account (EC2 API reference,
    /// request throttling): backing off is better than retrying harder.
    pub async fn clients(&self) -> &Clients {
        if let Some(clients) = self.clients.get() {
            return clients;
        }
        // Boxed: the SDK's config loading is a large future, and unboxed it would sit inside
        // every adapter call's future (a debug build's stack overflowed).
        self.clients.get_or_init(|| Box::pin(load_clients())).await
    }

    /// A target group's type, `None` if it does not exist (for `autostop validate --aws`).
    pub async fn target_group_type(&self, arn: &str) -> CloudResult<Option<String>> {
        elbv2::target_group_type(&self.clients().await.elb, arn).await
    }

    /// The target groups a listener's default action forwards to, `None` if it does not exist.
    pub async fn listener_default_targets(&self, arn: &str) -> CloudResult<Option<Vec<String>>> {
        elbv2::listener_default_targets(&self.clients().await.elb, arn).await
    }

    /// Who the credentials belong to (STS GetCallerIdentity): the ARN an override is set by.
    pub async fn caller_identity(&self) -> CloudResult<String> {
        let out = self
            .clients()
            .await
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| cloud_error("GetCallerIdentity", e))?;
        Ok(out.arn().unwrap_or("unknown").to_string())
    }

    /// The Auto Scaling group each of these instances belongs to, for those in one (for
    /// `autostop validate --aws`).
    pub async fn groups_of_instances(&self, ids: &[String]) -> CloudResult<Vec<(String, String)>> {
        autoscaling::groups_of_instances(&self.clients().await.autoscaling, ids).await
    }

    /// The load balancer a listener belongs to, `None` if it does not exist (for `autostop
    /// validate --aws`).
    pub async fn load_balancer_of(&self, listener_arn: &str) -> CloudResult<Option<String>> {
        elbv2::load_balancer_of(&self.clients().await.elb, listener_arn).await
    }

    /// A load balancer's attributes by key (for `autostop validate --aws`).
    pub async fn load_balancer_attributes(&self, arn: &str) -> CloudResult<std::collections::HashMap<String, String>> {
        elbv2::load_balancer_attributes(&self.clients().await.elb, arn).await
    }

    /// The account's ELB limits by name (for `autostop validate --aws`).
    pub async fn account_limits(&self) -> CloudResult<std::collections::HashMap<String, u64>> {
        elbv2::account_limits(&self.clients().await.elb).await
    }
}

/// Retries and timeouts of every client. Standard retry mode: adaptive mode's client-side rate
/// limiter is per process (every Lambda environment has its own, so it coordinates nothing
/// across the fleet) and may wait long before a first attempt. Three attempts with short
/// backoff fit inside [`OPERATION_TIMEOUT`], which bounds the whole call (SDK for Rust developer
/// guide, "Timeouts": operation timeout and operation attempt timeout).
pub fn call_limits() -> (aws_config::retry::RetryConfig, aws_config::timeout::TimeoutConfig) {
    use std::time::Duration;
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_millis(500));
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(crate::cloud::ATTEMPT_TIMEOUT)
        .operation_timeout(crate::cloud::OPERATION_TIMEOUT)
        .build();
    (retry, timeouts)
}

async fn load_clients() -> Clients {
    let (retry, timeouts) = call_limits();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts)
        .load()
        .await;
    tracing::debug!("AWS clients built");
    Clients::new(&sdk)
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
        ec2::instances(&self.clients().await.ec2, ids).await
    }
    async fn start_instances(&self, ids: &[String]) -> CloudResult<()> {
        ec2::start_instances(&self.clients().await.ec2, ids).await
    }
    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> CloudResult<()> {
        ec2::stop_instances(&self.clients().await.ec2, ids, hibernate).await
    }
    async fn services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        ecs::services(&self.clients().await.ecs, cluster, names).await
    }
    async fn tag_service(&self, service_arn: &str, key: &str, value: &str) -> CloudResult<()> {
        ecs::tag_service(&self.clients().await.ecs, service_arn, key, value).await
    }
    async fn scale_service(&self, cluster: &str, service: &str, desired: u32) -> CloudResult<()> {
        ecs::scale_service(&self.clients().await.ecs, cluster, service, desired).await
    }
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth> {
        elbv2::target_health(&self.clients().await.elb, target_group_arn).await
    }
    async fn load_balancers_of_groups(
        &self,
        arns: &[String],
    ) -> CloudResult<std::collections::HashMap<String, Vec<String>>> {
        elbv2::load_balancers_of_groups(&self.clients().await.elb, arns).await
    }

    async fn health_check(&self, target_group_arn: &str) -> CloudResult<crate::cloud::HealthCheck> {
        elbv2::health_check(&self.clients().await.elb, target_group_arn).await
    }
    async fn auto_scaling_groups(&self, names: &[String]) -> CloudResult<Vec<crate::cloud::AutoScalingGroup>> {
        autoscaling::groups(&self.clients().await.autoscaling, names).await
    }
    async fn update_auto_scaling_group(&self, name: &str, min: u32, desired: u32) -> CloudResult<()> {
        autoscaling::update(&self.clients().await.autoscaling, name, min, desired).await
    }
    async fn tag_auto_scaling_group(&self, name: &str, tags: &[(&str, String)]) -> CloudResult<()> {
        autoscaling::tag(&self.clients().await.autoscaling, name, tags).await
    }
    async fn databases(&self, instances: &[String], clusters: &[String]) -> CloudResult<Vec<crate::cloud::Database>> {
        rds::databases(&self.clients().await.rds, instances, clusters).await
    }
    async fn start_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        rds::start(&self.clients().await.rds, id, cluster).await
    }
    async fn stop_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        rds::stop(&self.clients().await.rds, id, cluster).await
    }
    async fn listener_rules(&self, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
        elbv2::listener_rules(&self.clients().await.elb, listener_arn).await
    }
    async fn listeners_of(&self, load_balancer_arn: &str) -> CloudResult<Vec<String>> {
        elbv2::listeners_of(&self.clients().await.elb, load_balancer_arn).await
    }
    async fn listener_facts(&self, listener_arn: &str) -> CloudResult<ListenerFacts> {
        elbv2::listener_facts(&self.clients().await.elb, listener_arn).await
    }
    async fn create_rule(&self, rule: &NewRule) -> CloudResult<String> {
        elbv2::create_rule(&self.clients().await.elb, rule).await
    }
    async fn modify_rule(&self, rule_arn: &str, change: &RuleChange) -> CloudResult<()> {
        elbv2::modify_rule(&self.clients().await.elb, rule_arn, change).await
    }
    async fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> CloudResult<()> {
        elbv2::set_rule_priorities(&self.clients().await.elb, priorities).await
    }
    async fn delete_rule(&self, rule_arn: &str) -> CloudResult<()> {
        elbv2::delete_rule(&self.clients().await.elb, rule_arn).await
    }
    async fn metric_data(&self, queries: &[MetricQuery], start: i64, end: i64) -> CloudResult<Vec<MetricSeries>> {
        cloudwatch::metric_data(&self.clients().await.cloudwatch, queries, start, end).await
    }
    async fn load_states(&self, table: &str) -> CloudResult<Vec<RuleState>> {
        state::load_states(&self.clients().await.dynamodb, table).await
    }
    async fn load_state(&self, table: &str, rule: &str) -> CloudResult<Option<RuleState>> {
        state::load_state(&self.clients().await.dynamodb, table, rule).await
    }
    async fn save_state(&self, table: &str, state: &RuleState, expected: Option<u64>) -> CloudResult<()> {
        state::save_state(&self.clients().await.dynamodb, table, state, expected).await
    }
    async fn put_event(&self, bus: &str, detail_type: &str, detail: &str) -> CloudResult<()> {
        events::put_event(&self.clients().await.events, bus, detail_type, detail).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use serde_json::json;

    /// An endpoint that accepts every request and never answers.
    #[derive(Debug, Clone)]
    struct Hung;

    mod hung {
        use aws_smithy_runtime_api::client::http::{
            HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
        };
        use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
        use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
        use aws_smithy_runtime_api::shared::IntoShared;

        impl HttpConnector for super::Hung {
            fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
                HttpConnectorFuture::new(std::future::pending())
            }
        }

        impl HttpClient for super::Hung {
            fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
                self.clone().into_shared()
            }
        }
    }

    /// With the clients' limits, a hung endpoint is a typed, retryable `Timeout` once the
    /// operation timeout has passed (paused clock), never a call that outlives its deadline.
    #[tokio::test(start_paused = true)]
    async fn a_hung_endpoint_is_a_timeout_error_at_the_operation_timeout() {
        let (retry, timeouts) = call_limits();
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new("AKID", "secret", None, None, "test"))
            .http_client(Hung)
            .retry_config(retry)
            .timeout_config(timeouts)
            .build();
        let client = aws_sdk_ec2::Client::from_conf(conf);
        let started = tokio::time::Instant::now();
        let e = ec2::instances(&client, &["i-0123456789abcdef0".to_string()]).await.unwrap_err();
        assert_eq!((e.code.as_str(), e.kind), ("Timeout", crate::cloud::ErrorKind::Transient), "{e}");
        assert!(e.kind.is_retryable());
        assert_eq!(started.elapsed(), crate::cloud::OPERATION_TIMEOUT, "ends at the operation timeout");
    }

    /// A cold start that only answers unknown hosts and refused requests never loads the SDK
    /// config: the clients are built on the first AWS call.
    #[tokio::test]
    async fn unknown_hosts_and_refusals_build_no_clients() {
        let config = crate::config::Config::from_toml(
            "listener_arns = [\"arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2\"]\n\
             [[rules]]\nname = \"api\"\nhosts = [\"api.x.com\"]\n\
             target_group_arn = \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067\"\n\
             ec2 = { instance_ids = [\"i-0123456789abcdef0\"] }\n",
        )
        .unwrap();
        let cloud = AwsCloud::from_env();
        let app = App::new(config, cloud.clone());
        for (host, ua) in [("nope.x.com", "curl/8"), ("api.x.com", "Googlebot/2.1"), ("api.x.com", "Slackbot 1.0")] {
            let event = json!({
                "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/1"}},
                "httpMethod": "GET", "path": "/", "headers": {"host": host, "user-agent": ua}, "body": "", "isBase64Encoded": false
            });
            let answer = app.handle(event, None).await.unwrap();
            assert!([404, 503].contains(&answer["statusCode"].as_u64().unwrap()), "{answer}");
        }
        assert!(!cloud.clients_built());
    }
}
