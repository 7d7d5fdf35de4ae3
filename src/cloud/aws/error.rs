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
        None => CloudError::transient(op, DisplayErrorContext(&err).to_string()),
    };
    e.with_request_id(request_id.as_deref())
}
