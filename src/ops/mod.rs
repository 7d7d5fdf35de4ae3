//! Operator commands: status, stop, sync, overrides and `validate --aws`. Each returns a typed
//! report; the handler (`app`) serialises it for a direct invoke and the CLI prints it. None of
//! them is reached from an ALB request, and none changes a listener rule or the state item but
//! through `routing` and `state::Store`.

pub mod overrides;
pub mod problem;
pub mod status;
pub mod stop;
pub mod sync;
pub mod validate;

use std::fmt;

use crate::cloud::CloudError;
use crate::config::{Config, Rule};

pub use problem::Problem;

/// Why a command did nothing, or not all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// The command itself is wrong (an unknown rule, a bad time): nothing was tried.
    Usage(String),
    /// It could not be done; the text says what to do.
    Failed(String),
    /// An AWS call failed: what could not be done (and what that leaves), and the call.
    Cloud { what: String, problem: Problem },
}

impl OpError {
    /// `what` could not be done because of `e`.
    pub fn cloud(what: impl Into<String>, e: &CloudError) -> OpError {
        OpError::Cloud { what: what.into(), problem: Problem::of(e) }
    }

    pub fn message(&self) -> String {
        match self {
            OpError::Usage(m) | OpError::Failed(m) => m.clone(),
            OpError::Cloud { what, problem } => format!("{what}: {}", problem.line()),
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for OpError {}

/// The configured rule called `name`.
pub fn named_rule(config: &Config, name: &str) -> Result<Rule, OpError> {
    config.rule(name).cloned().ok_or_else(|| {
        OpError::Usage(format!("no rule named `{name}`; configured rules: {}", config.rule_names().join(", ")))
    })
}

/// Stopping or routing anything needs the listeners: without them (a lookup that failed) a
/// stop could not take the traffic away first.
pub fn listeners_known(config: &Config) -> Result<(), OpError> {
    if config.listener_arns.is_empty() {
        return Err(OpError::Failed(
            "the load balancer's listeners could not be looked up (DescribeListeners), so nothing was changed; \
             the next run retries"
                .into(),
        ));
    }
    Ok(())
}
