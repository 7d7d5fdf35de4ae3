//! Any SDK error as a [`CloudError`]: the service's error code, AWS's message (for the log) and
//! the request id.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;

use crate::cloud::CloudError;

/// Any SDK error -> [`CloudError`]: the service's error code when there is one, else a transient
/// failure (network, timeout, unparseable response) described with its full source chain.
pub(crate) fn cloud_error<E>(op: &'static str, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    if let SdkError::TimeoutError(_) = &err {
        let within = crate::cloud::OPERATION_TIMEOUT.as_secs();
        return CloudError::new(
            op,
            "Timeout",
            format!("no answer within {within} s (attempts of at most {} s)", crate::cloud::ATTEMPT_TIMEOUT.as_secs()),
        );
    }
    let e = match err.code() {
        Some(code) => CloudError::new(op, code, err.message().unwrap_or_default()),
        None => unanswered(op, DisplayErrorContext(&err).to_string()),
    };
    e.with_request_id(request_id.as_deref())
}

/// A call that never reached AWS. The SDK gives missing credentials and a missing region no
/// code, only its error chain: named here, because retrying fixes neither and the operator's
/// fix differs from a network fault's.
fn unanswered(op: &'static str, chain: String) -> CloudError {
    // The default chain found nothing (aws-config), or a client was built with no provider.
    let no_credentials = ["no credentials found", "CredentialsNotLoaded", "there was no identity resolver"];
    if no_credentials.iter().any(|text| chain.contains(text)) {
        return CloudError::new(op, "NoCredentials", chain);
    }
    if chain.contains("Missing Region") {
        return CloudError::new(op, "NoRegion", chain);
    }
    CloudError::transient(op, chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};

    /// The real SDK's failures before any request is sent: no credentials, no region.
    async fn describe(region: Option<&str>, credentials: bool) -> CloudError {
        let mut conf = aws_sdk_ec2::Config::builder().behavior_version(BehaviorVersion::latest());
        conf.set_region(region.map(|r| Region::new(r.to_string())));
        if credentials {
            conf = conf.credentials_provider(Credentials::for_tests());
        }
        let client = aws_sdk_ec2::Client::from_conf(conf.build());
        let err = client.describe_instances().send().await.expect_err("nothing answers");
        cloud_error("DescribeInstances", err)
    }

    #[tokio::test]
    async fn missing_credentials_and_region_are_named_not_called_network_errors() {
        let e = describe(Some("us-east-1"), false).await;
        assert_eq!(e.code, "NoCredentials", "{}", e.message);
        assert_eq!(describe(None, true).await.code, "NoRegion");
    }

    /// What aws-config's default chain answers when no provider has credentials (as seen from
    /// `autostop status` with none set).
    #[test]
    fn an_empty_default_chain_is_no_credentials() {
        let chain = "dispatch failure: other: the credential provider was not enabled: no credentials found in chain. \
                     Attempted:\n  Environment: the credential provider was not enabled: environment variable not set";
        assert_eq!(unanswered("DescribeInstances", chain.into()).code, "NoCredentials");
        let refused = "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused";
        assert_eq!(unanswered("DescribeInstances", refused.into()).code, "NetworkError");
    }
}
