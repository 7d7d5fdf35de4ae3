//! A failed AWS call, typed: the operation, the AWS error code, its classification (retry,
//! error page, ...), AWS's message for the log only, and the request id.

use std::fmt;

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
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "SignatureDoesNotMatch"
            | "NoCredentials"
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
            | "TargetGroupAssociationLimit"
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
            | "Timeout"
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

#[cfg(test)]
mod tests {
    use super::*;

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
