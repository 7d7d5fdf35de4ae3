//! Configuration: the TOML file of SPEC, read in two stages.
//!
//! `raw` is the serde shape of the file (unknown keys are rejected by serde, naming the key);
//! [`Config::from_toml`] validates it into [`Config`] (`validate`, one check per section in
//! `sections`), with every error naming the key and the reason. A config either loads whole or
//! not at all: the Lambda never serves with half a config.
//!
//! The validated shapes live here too: a [`Rule`] and its resources ([`rule`]), host matching
//! ([`hosts`]), who may wake it ([`gate`]), its schedule ([`schedule`]) and the standing ALB
//! rules the whole config needs ([`standing`]). Nothing here calls AWS.

pub mod auth;
mod error;
pub mod gate;
pub mod hosts;
pub mod path;
mod raw;
pub mod rule;
pub mod schedule;
mod sections;
pub mod standing;
mod validate;
mod values;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

pub use auth::Access;

pub(crate) use error::err;
pub use error::ConfigError;
pub use gate::WakeToken;
pub use hosts::{normalize_host, HostIndex};
pub use rule::{AsgSpec, BusySignal, Ec2Resources, EcsService, RdsSpec, Rule};
pub use standing::Chunk;
pub use values::parse_duration;

use raw::RawConfig;

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listener_arns: Vec<String>,
    pub state_table: String,
    pub idle: Duration,
    pub hold: Duration,
    pub settle: Duration,
    /// How late CloudWatch shows activity; idle time is counted up to `now - metrics_lag`.
    pub metrics_lag: Duration,
    pub rules: Vec<Rule>,
    /// The standing ALB rules the config needs on every listener, in evaluation order, with the
    /// priorities they get on a listener that holds no rules of others ([`standing`]).
    pub standing: Vec<Chunk>,
    pub standing_priorities: Vec<u32>,
    /// The header an API client wakes a click-mode rule with, and the environment variable
    /// holding the shared secret (`wake_token = { header, env }`).
    pub wake_token: Option<WakeToken>,
    /// The configured listeners AWS says are HTTP: they carry no rule behind sign-in (ALB
    /// authenticates on HTTPS listeners only). Looked up by the app, never read from the file.
    pub http_listeners: Vec<String>,
    /// The EventBridge bus (name or ARN) lifecycle events go to (`events = { bus }`).
    pub events_bus: Option<String>,
    /// The fleet page (`dashboard = { host }`), behind the top level's sign-in.
    pub dashboard: Option<Dashboard>,
    hosts: HostIndex,
}

/// The fleet page: its host, and the sign-in in front of its standing rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub host: String,
    pub auth: crate::cloud::Authenticate,
}

/// The `autostop:rule` tag of the fleet page's standing rule: no rule name can be it.
pub const DASHBOARD_OWNER: &str = "@dashboard";

/// Values the deployment provides through the environment, for keys the file leaves out: the
/// CloudFormation template knows the listeners and table only once it has created them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// `AUTOSTOP_LISTENER_ARNS`, comma-separated (or resolved from `AUTOSTOP_LOAD_BALANCER_ARN`).
    pub listener_arns: Vec<String>,
    /// `AUTOSTOP_STATE_TABLE`.
    pub state_table: Option<String>,
    /// `AUTOSTOP_LOAD_BALANCER_ARN`: without listeners in the file or `AUTOSTOP_LISTENER_ARNS`,
    /// the config may load without listeners; the app looks them up before its first wake.
    pub load_balancer: Option<String>,
    /// The config is checked before a deployment exists (`autostop validate`): the stack will
    /// give the function its listeners, so a file without them is whole.
    pub listeners_later: bool,
}

impl Deployment {
    pub fn from_env() -> Deployment {
        let var = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Deployment {
            listener_arns: var("AUTOSTOP_LISTENER_ARNS")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
            state_table: var("AUTOSTOP_STATE_TABLE"),
            load_balancer: var("AUTOSTOP_LOAD_BALANCER_ARN"),
            listeners_later: false,
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    /// `deployment` fills keys the file leaves out.
    pub fn load(path: &Path, deployment: &Deployment) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err("", format!("cannot read {}: {e}", path.display())))?;
        Config::from_toml_with(&text, deployment)
    }

    /// Parses and validates config text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_with(text, &Deployment::default())
    }

    pub fn from_toml_with(text: &str, deployment: &Deployment) -> Result<Config, ConfigError> {
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message names the unknown/missing key and the line; keep it whole.
            err("", e.to_string().trim_end().to_string())
        })?;
        if raw.listener_arns.is_empty() {
            raw.listener_arns = deployment.listener_arns.clone();
        }
        if raw.state_table.is_none() {
            raw.state_table = deployment.state_table.clone();
        }
        raw.validate(deployment.load_balancer.is_some() || deployment.listeners_later)
    }

    /// The rule serving a normalised host (see [`normalize_host`]).
    pub fn rule_for_host(&self, host: &str) -> Option<&Rule> {
        self.hosts.lookup(host).map(|i| &self.rules[i])
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The indices of every rule that depends on `name`, directly or through others.
    pub fn dependents(&self, name: &str) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        let mut queue = vec![name.to_string()];
        while let Some(n) = queue.pop() {
            for (i, r) in self.rules.iter().enumerate() {
                if r.depends_on.contains(&n) && !found.contains(&i) {
                    found.push(i);
                    queue.push(r.name.clone());
                }
            }
        }
        found
    }

    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }
}
