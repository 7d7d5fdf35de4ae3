//! The real AWS adapters behind [`crate::cloud::Cloud`]: one file per service.
//!
//! Each adapter turns SDK outputs into domain types in small pure functions and every SDK error
//! into a [`CloudError`] carrying the AWS error code (see [`cloud_error`]).

mod ec2;
mod ecs;
mod elbv2;

use std::fmt::Debug;

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::cloud::{
    Cloud, CloudError, CloudResult, Instance, ListenerRule, NewForwardRule, Service, TargetHealth,
};

/// SDK clients for every service autostop calls, built once per process.
#[derive(Clone, Debug)]
pub struct AwsCloud {
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

impl AwsCloud {
    /// Clients from one shared SDK config (region, credentials, `AWS_ENDPOINT_URL`, retries).
    pub fn new(sdk: &aws_config::SdkConfig) -> AwsCloud {
        AwsCloud {
            ec2: aws_sdk_ec2::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
        }
    }

    /// Loads the SDK config from the environment (the normal credential chain).
    pub async fn from_env() -> AwsCloud {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        AwsCloud::new(&sdk)
    }
}

/// Any SDK error -> [`CloudError`]: the service's error code when there is one, else a transient
/// failure (network, timeout, unparseable response) described with its full source chain.
pub(crate) fn cloud_error<E, R>(op: &'static str, err: SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    match err.code() {
        Some(code) => {
            let message = err.message().unwrap_or_default().to_string();
            CloudError::new(op, code, message)
        }
        None => CloudError::transient(op, DisplayErrorContext(&err).to_string()),
    }
}

impl Cloud for AwsCloud {
    async fn instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        ec2::instances(&self.ec2, ids).await
    }
    async fn start_instances(&self, ids: &[String]) -> CloudResult<()> {
        ec2::start_instances(&self.ec2, ids).await
    }
    async fn stop_instances(&self, ids: &[String]) -> CloudResult<()> {
        ec2::stop_instances(&self.ec2, ids).await
    }
    async fn service(&self, cluster: &str, service: &str) -> CloudResult<Service> {
        ecs::service(&self.ecs, cluster, service).await
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
    async fn create_forward_rule(&self, rule: &NewForwardRule) -> CloudResult<String> {
        elbv2::create_forward_rule(&self.elb, rule).await
    }
    async fn delete_rule(&self, rule_arn: &str) -> CloudResult<()> {
        elbv2::delete_rule(&self.elb, rule_arn).await
    }
}
