//! What an operator reads when AWS could not be asked: the AWS code, the operation, and what to
//! do, in one line per cause. AWS's message text stays in the log (`-v` shows it).

use serde::Serialize;

use crate::cloud::{CloudError, ErrorKind};
use crate::wake::StepError;

/// One failed AWS call, as an operator command reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub operation: String,
    pub code: String,
    pub kind: &'static str,
    /// What to do about it.
    pub action: String,
}

impl Problem {
    pub fn of(e: &CloudError) -> Problem {
        let action = match OURS.contains(&e.code.as_str()) {
            true => e.message.clone(),
            false => action(e.op, &e.code, e.kind).unwrap_or("run again with -v to see AWS's message").into(),
        };
        Problem { operation: e.op.to_string(), code: e.code.clone(), kind: e.kind.as_str(), action }
    }

    /// A wake step's error (or the failure it is retrying), with the operator's action where
    /// there is one, else the step's own advice.
    pub fn of_step(e: &StepError) -> Problem {
        let kind = ErrorKind::from_code(&e.code);
        let action = action(&e.operation, &e.code, kind).map(str::to_string).unwrap_or_else(|| e.action.clone());
        Problem { operation: e.operation.clone(), code: e.code.clone(), kind: kind.as_str(), action }
    }

    /// `cannot reach AWS (NetworkError from GetItem): check ...`.
    pub fn line(&self) -> String {
        line(&self.code, self.kind, std::slice::from_ref(&self.operation), &self.action)
    }
}

/// One line per cause: problems with the same code are one line naming every operation.
pub fn lines(problems: &[Problem]) -> Vec<String> {
    let mut by_code: Vec<(&Problem, Vec<String>)> = Vec::new();
    for p in problems {
        match by_code.iter_mut().find(|(first, _)| first.code == p.code) {
            Some((_, ops)) if !ops.contains(&p.operation) => ops.push(p.operation.clone()),
            Some(_) => {}
            None => by_code.push((p, vec![p.operation.clone()])),
        }
    }
    by_code.iter().map(|(p, ops)| line(&p.code, p.kind, ops, &p.action)).collect()
}

fn line(code: &str, kind: &str, ops: &[String], action: &str) -> String {
    format!("{} ({code} from {}): {action}", summary(code, kind), ops.join(", "))
}

fn summary(code: &str, kind: &str) -> &'static str {
    match (code, kind) {
        ("NetworkError", _) => "cannot reach AWS",
        ("Timeout", _) => "AWS did not answer in time",
        ("NoCredentials", _) => "no AWS credentials",
        ("NoRegion", _) => "no AWS region",
        (c, _) if CREDENTIALS_REFUSED.contains(&c) => "AWS refused the credentials",
        (_, "access_denied") => "not allowed",
        (_, "throttled") => "AWS throttled the call",
        (_, "not_found") => "not found",
        _ => "AWS answered an error",
    }
}

/// Codes autostop gives conditions it finds itself: their message is autostop's own words
/// (what is wrong and what to do), not AWS's.
const OURS: [&str; 5] = [
    "DefaultActionNotForward",
    "RulePlanConflict",
    "StandingRulesNotRepaired",
    "LoadBalancerNotChosen",
    "ClientSecretMissing",
];

/// Codes that say the credentials themselves are wrong, not a missing permission.
const CREDENTIALS_REFUSED: [&str; 6] = [
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

/// What an operator does about a failed call, by code, then kind.
fn action(op: &str, code: &str, kind: ErrorKind) -> Option<&'static str> {
    let by_code = match code {
        "NetworkError" => {
            "check the network and the region (AWS_REGION, AWS_PROFILE), and AWS_ENDPOINT_URL if it is set"
        }
        "Timeout" => "AWS or the network is slow; run the command again",
        "NoCredentials" => "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or `aws sso login`)",
        "NoRegion" => "set AWS_REGION, or a region in the profile",
        "InvalidConfigurationRequest" if matches!(op, "CreateRule" | "ModifyRule") => {
            "authenticate actions need an HTTPS listener: add one (with a certificate) and make the HTTP listener \
             redirect to it; `autostop validate --aws` names the listener"
        }
        c if CREDENTIALS_REFUSED.contains(&c) => {
            "the credentials are wrong or expired: refresh them (`aws sso login`, a new session token)"
        }
        "ResourceNotFoundException" if matches!(op, "GetItem" | "PutItem" | "Scan") => {
            "the state table does not exist: deploy the stack, or set AUTOSTOP_STATE_TABLE or `state_table`"
        }
        _ => "",
    };
    if !by_code.is_empty() {
        return Some(by_code);
    }
    match kind {
        ErrorKind::AccessDenied => {
            Some("the identity you run as lacks this permission: see infra/README.md's IAM table")
        }
        ErrorKind::Throttled | ErrorKind::Transient => Some("run the command again in a moment"),
        ErrorKind::NotFound => Some("a resource the config names does not exist: fix the config, or create it"),
        ErrorKind::Limit => Some("an AWS quota was reached: raise it, or remove unused resources"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_cause_names_every_operation_and_what_to_do() {
        let refused = |op| Problem::of(&CloudError::transient(op, "tcp connect error: Connection refused"));
        let denied = Problem::of(&CloudError::new("GetMetricData", "AccessDenied", "arn:aws:iam::1:role/x"));
        let found = lines(&[refused("DescribeInstances"), refused("GetItem"), denied, refused("GetItem")]);
        assert_eq!(
            found,
            vec![
                "cannot reach AWS (NetworkError from DescribeInstances, GetItem): check the network and the region \
                 (AWS_REGION, AWS_PROFILE), and AWS_ENDPOINT_URL if it is set",
                "not allowed (AccessDenied from GetMetricData): the identity you run as lacks this permission: see \
                 infra/README.md's IAM table",
            ]
        );
        assert!(!found.join("\n").contains("arn:aws:iam"), "AWS's message stays in the log");
    }

    #[test]
    fn a_missing_state_table_and_wrong_credentials_say_what_to_fix() {
        let table =
            Problem::of(&CloudError::new("GetItem", "ResourceNotFoundException", "Requested resource not found"));
        assert!(table.line().contains("the state table does not exist"), "{}", table.line());
        let expired = Problem::of(&CloudError::new("DescribeInstances", "ExpiredToken", "The security token expired"));
        assert!(expired.line().starts_with("AWS refused the credentials (ExpiredToken"), "{}", expired.line());
    }
}
