//! What a wake looks like from outside: the status JSON of SPEC ([`Status`], one constructor),
//! its resource lines, a step's error with what to do, and the ETA. Pure.

use serde::{Deserialize, Serialize};

use crate::cloud::{CloudError, ErrorKind, TargetHealth};
use crate::state::Phase;

/// One resource line of the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// `ec2` or `ecs`.
    pub kind: String,
    pub id: String,
    pub state: String,
}

/// A step that failed in a way the user must hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// The AWS operation (or `autostop` for conditions we detect ourselves).
    pub operation: String,
    /// The AWS error code, e.g. `InsufficientInstanceCapacity`.
    pub code: String,
    pub kind: String,
    pub detail: String,
    /// What to do about it.
    pub action: String,
}

/// The status JSON of SPEC (plus `error` when the phase is `error`). Made by [`Status::new`]
/// only; the optional parts are set on what it returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub rule: String,
    pub phase: Phase,
    pub message: String,
    pub resources: Vec<ResourceState>,
    pub targets: TargetHealth,
    pub elapsed_seconds: Option<u64>,
    pub eta_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// A failed call being retried (throttling, a network fault, a state race): the phase is
    /// the last one seen, not one observed now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<StepError>,
    /// When the rule's standing rules were switched to the app (epoch seconds), once they are:
    /// a request that still reaches autostop after that raced the load balancer's update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_at: Option<i64>,
    /// Set when nothing was started because the rule is held asleep (an `asleep` window of its
    /// schedule, or an operator's `sleep`): why, and until when (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_asleep: Option<HeldAsleep>,
    /// What the rule's override or schedule says, when either says anything ("kept awake by
    /// ... until ...", "awake on schedule ..."): the progress page and the status show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The rule's dependencies, in order, while its wake readies them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<DependencyState>,
    /// Who woke it (behind SSO, verified): while it wakes and while it is awake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub woken_by: Option<String>,
}

impl Status {
    /// The status of `rule` in `phase`, saying `message`; nothing else known yet.
    pub fn new(rule: &str, phase: Phase, message: impl Into<String>) -> Status {
        Status {
            rule: rule.to_string(),
            phase,
            message: message.into(),
            resources: Vec::new(),
            targets: TargetHealth::default(),
            elapsed_seconds: None,
            eta_seconds: None,
            error: None,
            retrying: None,
            routed_at: None,
            held_asleep: None,
            intent: None,
            dependencies: Vec::new(),
            woken_by: None,
        }
    }

    pub fn with_resources(mut self, resources: Vec<ResourceState>) -> Status {
        self.resources = resources;
        self
    }
}

/// One dependency of a waking rule, as its progress page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyState {
    pub rule: String,
    pub phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAsleep {
    pub why: String,
    pub until: Option<i64>,
}

/// Advice for an AWS error, by kind and code.
pub fn advice(e: &CloudError) -> String {
    match e.code.as_str() {
        "LoadBalancerNotChosen" => {
            return "the listeners are on several load balancers and this rule's target group serves none yet: set the \
                    rule's `load_balancer` to the one its hosts' DNS points at, and redeploy."
                .into()
        }
        "ClientSecretMissing" => {
            return "the rule is behind OIDC sign-in and its standing rule needs the client secret: set the \
                    environment variable `auth.oidc.client_secret_env` names on the function, and redeploy."
                .into()
        }
        "InvalidConfigurationRequest" => {
            return "the load balancer refused the rule's actions; an authenticate action needs an HTTPS listener: \
                    add one and make the HTTP listener redirect to it (`autostop validate --aws` says which)."
                .into()
        }
        "TargetGroupAssociationLimit" => {
            return "this rule's target group already serves a load balancer whose listeners are not in \
                    `listener_arns` (a target group serves one load balancer): add that load balancer's listeners, \
                    or give the rule a target group of its own, and redeploy."
                .into()
        }
        _ => {}
    }
    match e.kind {
        ErrorKind::Capacity => format!(
            "AWS has no capacity for this instance type in its Availability Zone right now ({}). \
             autostop retries on the next request; if it persists, change the instance type or subnet.",
            e.code
        ),
        ErrorKind::AccessDenied => format!(
            "the autostop role may not call {}: add the permission (see the IAM section of the README), then retry.",
            e.op
        ),
        ErrorKind::NotFound => "a resource named in the config does not exist: fix the config and redeploy.".into(),
        ErrorKind::Limit => "an AWS limit was reached: raise it or remove unused rules/resources, then retry.".into(),
        ErrorKind::InvalidState => "the resource was changing state; autostop retries on the next request.".into(),
        _ => "autostop retries on the next request; if it keeps failing, check the Lambda's log for this code.".into(),
    }
}

/// What a user may see of a failed call: code, kind and what to do. AWS's message stays in the
/// log (with the request id to quote): it can name role ARNs, account ids and carry encoded
/// authorization messages.
pub(super) fn step_error(e: &CloudError) -> StepError {
    StepError {
        operation: e.op.to_string(),
        code: e.code.clone(),
        kind: e.kind.as_str().into(),
        detail: e.public(),
        action: advice(e),
    }
}

/// Why no target is healthy yet, in words a user can act on.
pub fn waiting_message(h: &TargetHealth) -> String {
    if h.not_in_use > 0 {
        return "running; attaching the target group to the load balancer so it health-checks the targets".into();
    }
    if h.total == 0 {
        return "running; no target registered in the target group yet".into();
    }
    if h.unhealthy > 0 && h.initial == 0 {
        let reason = h.unhealthy_reason.as_deref().unwrap_or("Target.FailedHealthChecks");
        return format!(
            "running, but {} of {} target(s) fail the load balancer's health checks ({reason}): check the target \
             group's health check path and port, and the app's logs",
            h.unhealthy, h.total
        );
    }
    format!("running; {} target(s) registered, in the load balancer's first health checks", h.total)
}

/// The typical warm-up: the median of the recorded ones (seconds from wake to ready).
pub fn typical_warmup(warmups: &[u64]) -> Option<u64> {
    if warmups.is_empty() {
        return None;
    }
    let mut sorted = warmups.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]).div_ceil(2) })
}

/// Seconds left until ready if this wake takes the typical time; `None` before the first wake.
pub fn eta(warmups: &[u64], elapsed: Option<u64>) -> Option<u64> {
    typical_warmup(warmups).map(|t| t.saturating_sub(elapsed.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_the_median_warmup_minus_elapsed() {
        assert_eq!(typical_warmup(&[]), None);
        assert_eq!(typical_warmup(&[40, 300, 50]), Some(50), "a slow outlier does not drag it");
        assert_eq!(typical_warmup(&[40, 50, 60, 70]), Some(55));
        assert_eq!(eta(&[40, 300, 50], Some(20)), Some(30));
        assert_eq!(eta(&[40, 300, 50], Some(80)), Some(0), "late: any moment now");
        assert_eq!(eta(&[], Some(20)), None, "first start: no estimate");
    }

    #[test]
    fn a_user_sees_the_code_and_what_to_do_never_the_message() {
        let e = CloudError::new(
            "StartInstances",
            "UnauthorizedOperation",
            "arn:aws:iam::123456789012:role/x is not allowed",
        );
        let s = step_error(&e);
        assert_eq!((s.code.as_str(), s.kind.as_str()), ("UnauthorizedOperation", "access_denied"));
        assert!(s.action.contains("may not call StartInstances"), "{}", s.action);
        assert!(!s.detail.contains("123456789012"), "{}", s.detail);
    }
}
