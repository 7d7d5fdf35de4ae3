//! Configuration: the TOML file of SPEC, read in two stages.
//!
//! `RawConfig` is the serde shape of the file (unknown keys are rejected by serde, naming the key);
//! [`Config::from_toml`] validates it into [`Config`], with every error naming the key and the
//! reason. A config either loads whole or not at all: the Lambda never serves with half a config.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::gate::{Cidr, Gate};
use crate::priority::{self, Chunk, RuleHosts, MAX_PRIORITY};
use crate::rules::{AsgSpec, BusySignal, Ec2Resources, EcsService, HostIndex, RdsSpec, Rule};
use crate::schedule::{self, Schedule, Window};

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
    /// priorities they get on a listener that holds no rules of others ([`crate::priority`]).
    pub standing: Vec<Chunk>,
    pub standing_priorities: Vec<u32>,
    /// The header an API client wakes a click-mode rule with, and the environment variable
    /// holding the shared secret (`wake_token = { header, env }`).
    pub wake_token: Option<WakeToken>,
    hosts: HostIndex,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WakeToken {
    pub header: String,
    pub env: String,
}

/// A config that could not be loaded: the key at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.reason)
        } else {
            write!(f, "config key `{}`: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), reason: reason.into() }
}

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
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listener_arns: Vec<String>,
    state_table: Option<String>,
    #[serde(default = "default_idle")]
    idle: String,
    #[serde(default = "default_hold")]
    hold: String,
    #[serde(default = "default_settle")]
    settle: String,
    #[serde(default = "default_metrics_lag")]
    metrics_lag: String,
    #[serde(default)]
    rules: Vec<RawRule>,
    /// Networks whose clients may wake environments (any when absent).
    wake_from: Option<Vec<String>>,
    never_wake: Option<RawNeverWake>,
    /// `"request"` (the default) or `"click"`.
    wake: Option<String>,
    wake_token: Option<WakeToken>,
    #[serde(default)]
    schedules: Vec<RawSchedule>,
}

/// `[[schedules]]`: windows of local time ([`crate::schedule`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    name: String,
    timezone: String,
    #[serde(default)]
    awake: Vec<String>,
    #[serde(default)]
    asleep: Vec<String>,
    /// How early an `awake` window's resources start before any wake history exists.
    prewarm: Option<String>,
}

/// `never_wake = { user_agents = [...], paths = [...], defaults = true }`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawNeverWake {
    #[serde(default)]
    user_agents: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    defaults: Option<bool>,
}

fn default_idle() -> String {
    "30m".into()
}
fn default_hold() -> String {
    "25s".into()
}
fn default_settle() -> String {
    "2s".into()
}
fn default_metrics_lag() -> String {
    "3m".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    hosts: Vec<String>,
    target_group_arn: Option<String>,
    idle: Option<String>,
    priority: Option<i64>,
    ec2: Option<RawEc2>,
    ecs: Option<RawEcs>,
    asg: Option<RawAsg>,
    rds: Option<RawRds>,
    busy_when: Option<RawBusyWhen>,
    hourly_cost: Option<f64>,
    wake_from: Option<Vec<String>>,
    never_wake: Option<RawNeverWake>,
    wake: Option<String>,
    /// The name of a `[[schedules]]` entry.
    schedule: Option<String>,
    /// Rules readied first, in order, when this one wakes.
    #[serde(default)]
    depends_on: Vec<String>,
    /// Wait after the dependencies are ready, before this rule's own resources start.
    delay: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEc2 {
    instance_ids: Vec<String>,
    #[serde(default)]
    hibernate: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRds {
    #[serde(default)]
    instances: Vec<String>,
    #[serde(default)]
    clusters: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsg {
    name: String,
    desired: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEcs {
    cluster: String,
    service: String,
    desired_count: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBusyWhen {
    network_packets_in: Option<i64>,
    cpu_percent: Option<f64>,
}

/// Where the config lives: `AUTOSTOP_CONFIG`, else `autostop.toml` beside the binary.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("AUTOSTOP_CONFIG") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("autostop.toml")))
        .unwrap_or_else(|| PathBuf::from("autostop.toml"))
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
        raw.validate(deployment.load_balancer.is_some())
    }

    /// The rule serving a normalised host (see [`crate::rules::normalize_host`]).
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

impl RawConfig {
    /// `listeners_later`: the deployment names a load balancer whose listeners are looked up
    /// when first needed, so none need be listed.
    fn validate(self, listeners_later: bool) -> Result<Config, ConfigError> {
        if self.listener_arns.is_empty() && !listeners_later {
            return Err(err(
                "listener_arns",
                "must name at least one listener (in the file, or from the deployment: AUTOSTOP_LISTENER_ARNS or \
                 AUTOSTOP_LOAD_BALANCER_ARN)",
            ));
        }
        let state_table = self.state_table.unwrap_or_else(|| "autostop-state".into());
        let mut seen_listeners = HashSet::new();
        for (i, arn) in self.listener_arns.iter().enumerate() {
            let key = format!("listener_arns[{i}]");
            check_elb_arn(&key, arn, "listener/app/", 3)?;
            if !seen_listeners.insert(arn.as_str()) {
                return Err(err(key, format!("listener {arn} is listed twice")));
            }
        }
        if state_table.trim().is_empty() {
            return Err(err("state_table", "must not be empty"));
        }
        let idle = parse_duration(&self.idle).map_err(|r| err("idle", r))?;
        let hold = parse_duration(&self.hold).map_err(|r| err("hold", r))?;
        let settle = parse_duration(&self.settle).map_err(|r| err("settle", r))?;
        // "0s" is allowed here: a CloudWatch stand-in without lag (the demo).
        let metrics_lag = match self.metrics_lag.trim() {
            "0" | "0s" => Duration::ZERO,
            other => parse_duration(other).map_err(|r| err("metrics_lag", r))?,
        };

        if hold > Duration::from_secs(900) {
            return Err(err("hold", "must be at most 15m (the Lambda time limit)"));
        }

        let never_wake = self.never_wake.clone().unwrap_or_default();
        check_never_wake("never_wake", &never_wake)?;
        let top = TopGate {
            wake_from: parse_networks("wake_from", self.wake_from.as_deref())?,
            never_wake,
            click: parse_wake("wake", self.wake.as_deref())?.unwrap_or(false),
        };
        let wake_token = check_wake_token(self.wake_token)?;
        let schedules = parse_schedules(self.schedules)?;
        let mut rules: Vec<Rule> = Vec::with_capacity(self.rules.len());
        let mut hosts = HostIndex::default();
        let mut names = HashSet::new();
        for (i, raw) in self.rules.into_iter().enumerate() {
            let schedule = raw.schedule.clone();
            let mut rule = raw.validate(i, idle, &top)?;
            rule.schedule = match schedule {
                None => None,
                Some(name) => Some(schedules.iter().find(|s| s.name == name).cloned().ok_or_else(|| {
                    let known: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
                    err(
                        format!("rules[{i}] ({}).schedule", rule.name),
                        format!("no schedule named `{name}`; [[schedules]] has: {}", known.join(", ")),
                    )
                })?),
            };
            if !names.insert(rule.name.clone()) {
                return Err(err(format!("rules[{i}].name"), format!("duplicate rule name `{}`", rule.name)));
            }
            for host in &rule.hosts {
                if let Err(other) = hosts.insert(host, i) {
                    return Err(err(
                        format!("rules[{i}] ({}).hosts", rule.name),
                        format!("host `{host}` is already claimed by rule `{}`", rules[other].name),
                    ));
                }
            }
            rules.push(rule);
        }
        check_dependencies(&rules)?;
        let (standing, standing_priorities) = plan_standing(&rules)?;
        Ok(Config {
            listener_arns: self.listener_arns,
            state_table,
            idle,
            hold,
            settle,
            metrics_lag,
            rules,
            standing,
            standing_priorities,
            wake_token,
            hosts,
        })
    }
}

/// `ec2 = { instance_ids, hibernate }`: at least one id, each well-formed, none twice.
fn check_ec2(key: &dyn Fn(&str) -> String, raw: RawEc2) -> Result<Ec2Resources, ConfigError> {
    if raw.instance_ids.is_empty() {
        return Err(err(key("ec2.instance_ids"), "must list at least one instance"));
    }
    let mut seen = HashSet::new();
    for id in &raw.instance_ids {
        if !is_instance_id(id) {
            return Err(err(
                key("ec2.instance_ids"),
                format!("`{id}` is not an instance id (i- and 8 or 17 hex digits)"),
            ));
        }
        if !seen.insert(id) {
            return Err(err(key("ec2.instance_ids"), format!("`{id}` is listed twice")));
        }
    }
    Ok(Ec2Resources { instance_ids: raw.instance_ids, hibernate: raw.hibernate })
}

/// `ecs = { cluster, service, desired_count? }`.
fn check_ecs(key: &dyn Fn(&str) -> String, raw: RawEcs) -> Result<EcsService, ConfigError> {
    if raw.cluster.trim().is_empty() {
        return Err(err(key("ecs.cluster"), "must not be empty"));
    }
    if raw.service.trim().is_empty() {
        return Err(err(key("ecs.service"), "must not be empty"));
    }
    let desired_count = match raw.desired_count {
        Some(n) if (1..=1000).contains(&n) => Some(n as u32),
        Some(n) => return Err(err(key("ecs.desired_count"), format!("{n} is outside 1..=1000"))),
        None => None,
    };
    Ok(EcsService { cluster: raw.cluster, service: raw.service, desired_count })
}

/// `asg = { name, desired? }`.
fn check_asg(key: &dyn Fn(&str) -> String, raw: RawAsg) -> Result<AsgSpec, ConfigError> {
    if raw.name.trim().is_empty() {
        return Err(err(key("asg.name"), "must not be empty"));
    }
    let desired = match raw.desired {
        Some(n) if (1..=1000).contains(&n) => Some(n as u32),
        Some(n) => return Err(err(key("asg.desired"), format!("{n} is outside 1..=1000"))),
        None => None,
    };
    Ok(AsgSpec { name: raw.name, desired })
}

/// `busy_when`: exactly one signal; packets need instances to measure.
fn check_busy_when(key: &dyn Fn(&str) -> String, raw: RawBusyWhen, has_ec2: bool) -> Result<BusySignal, ConfigError> {
    match raw {
        RawBusyWhen { network_packets_in: Some(n), cpu_percent: None } => {
            if !has_ec2 {
                return Err(err(key("busy_when.network_packets_in"), "needs `ec2` instances to measure"));
            }
            if n < 1 {
                return Err(err(key("busy_when.network_packets_in"), "must be at least 1"));
            }
            Ok(BusySignal::NetworkPacketsIn(n as u64))
        }
        RawBusyWhen { network_packets_in: None, cpu_percent: Some(p) } => {
            if !(p > 0.0 && p <= 100.0) {
                return Err(err(key("busy_when.cpu_percent"), format!("{p} is outside (0, 100]")));
            }
            Ok(BusySignal::CpuPercent(p))
        }
        _ => Err(err(key("busy_when"), "give exactly one of `network_packets_in` or `cpu_percent`")),
    }
}

/// `rds = { instances, clusters }`: at least one, each an RDS identifier (1-63 letters, digits
/// and hyphens, starting with a letter), none twice.
fn check_rds(key: &dyn Fn(&str) -> String, raw: RawRds) -> Result<RdsSpec, ConfigError> {
    if raw.instances.is_empty() && raw.clusters.is_empty() {
        return Err(err(key("rds"), "list `instances` or `clusters`"));
    }
    for (k, ids) in [("rds.instances", &raw.instances), ("rds.clusters", &raw.clusters)] {
        for (j, id) in ids.iter().enumerate() {
            let ok = (1..=63).contains(&id.len())
                && id.starts_with(|c: char| c.is_ascii_alphabetic())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !id.ends_with('-')
                && !id.contains("--");
            if !ok {
                return Err(err(key(k), format!("`{id}` is not an RDS identifier (letters, digits, hyphens)")));
            }
            if ids[..j].contains(id) {
                return Err(err(key(k), format!("`{id}` is listed twice")));
            }
        }
    }
    Ok(RdsSpec { instances: raw.instances, clusters: raw.clusters })
}

/// The `[[schedules]]`, each window checked, names unique.
fn parse_schedules(raw: Vec<RawSchedule>) -> Result<Vec<Arc<Schedule>>, ConfigError> {
    let mut out: Vec<Arc<Schedule>> = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("schedules[{i}] ({}).{k}", s.name);
        if s.name.trim().is_empty() {
            return Err(err(format!("schedules[{i}].name"), "must not be empty"));
        }
        if out.iter().any(|o| o.name == s.name) {
            return Err(err(format!("schedules[{i}].name"), format!("duplicate schedule name `{}`", s.name)));
        }
        if s.awake.is_empty() && s.asleep.is_empty() {
            return Err(err(key("awake"), "a schedule needs `awake` or `asleep` windows"));
        }
        let windows = |list: &[String], k: &str| -> Result<Vec<Window>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(j, w)| Window::parse(w).map_err(|r| err(key(&format!("{k}[{j}]")), r)))
                .collect()
        };
        let (awake, asleep) = (windows(&s.awake, "awake")?, windows(&s.asleep, "asleep")?);
        let prewarm = match &s.prewarm {
            Some(p) => parse_duration(p).map_err(|r| err(key("prewarm"), r))?,
            None => schedule::DEFAULT_PREWARM,
        };
        let schedule = Schedule::new(&s.name, &s.timezone, awake, asleep).map_err(|r| err(key("timezone"), r))?;
        out.push(Arc::new(schedule.with_prewarm(prewarm)));
    }
    Ok(out)
}

impl RawRule {
    fn validate(self, i: usize, default_idle: Duration, top: &TopGate) -> Result<Rule, ConfigError> {
        let key = |k: &str| format!("rules[{i}].{k}");
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(err(key("name"), format!("`{}` must be 1-64 characters of [a-z0-9-]", self.name)));
        }
        let key = |k: &str| format!("rules[{i}] ({}).{k}", self.name);
        let gate = self.gate(&key, top)?;
        if self.hosts.is_empty() != self.target_group_arn.is_none() {
            return Err(err(
                key(if self.hosts.is_empty() { "hosts" } else { "target_group_arn" }),
                "give both `hosts` and `target_group_arn`, or neither (a rule that only serves as a dependency, \
                 such as a database, is ready when its resources are)",
            ));
        }
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for h in &self.hosts {
            let host = validate_host_pattern(h).map_err(|r| err(key("hosts"), format!("`{h}`: {r}")))?;
            if hosts.contains(&host) {
                return Err(err(key("hosts"), format!("`{h}` is listed twice")));
            }
            hosts.push(host);
        }
        if let Some(tg) = &self.target_group_arn {
            check_elb_arn(&key("target_group_arn"), tg, "targetgroup/", 2)?;
        }
        let delay = match &self.delay {
            Some(d) if self.depends_on.is_empty() => {
                return Err(err(key("delay"), format!("`{d}`: a delay follows dependencies; `depends_on` is empty")))
            }
            Some(d) => parse_duration(d).map_err(|r| err(key("delay"), r))?,
            None => Duration::ZERO,
        };
        let idle = match &self.idle {
            Some(s) => parse_duration(s).map_err(|r| err(key("idle"), r))?,
            None => default_idle,
        };
        let priority = match self.priority {
            Some(p) if (1..=MAX_PRIORITY as i64).contains(&p) => Some(p as u32),
            Some(p) => return Err(err(key("priority"), format!("{p} is outside 1..={MAX_PRIORITY}"))),
            None => None,
        };
        let ec2 = self.ec2.map(|raw| check_ec2(&key, raw)).transpose()?;
        let ecs = self.ecs.map(|raw| check_ecs(&key, raw)).transpose()?;
        let asg = self.asg.map(|raw| check_asg(&key, raw)).transpose()?;
        let rds = self.rds.map(|raw| check_rds(&key, raw)).transpose()?;
        if ec2.is_none() && ecs.is_none() && asg.is_none() && rds.is_none() {
            return Err(err(key("ec2"), "a rule needs `ec2`, `ecs`, `asg` or `rds`: it has no resources to wake"));
        }
        let busy_when = self.busy_when.map(|raw| check_busy_when(&key, raw, ec2.is_some())).transpose()?;
        let hourly_cost = match self.hourly_cost {
            Some(c) if c.is_finite() && c > 0.0 => Some(c),
            Some(c) => return Err(err(key("hourly_cost"), format!("{c} must be a positive number"))),
            None => None,
        };
        Ok(Rule {
            name: self.name,
            gate,

            hosts,
            target_group_arn: self.target_group_arn,
            idle,
            priority,
            ec2,
            ecs,
            asg,
            rds,
            busy_when,
            hourly_cost,
            schedule: None,
            depends_on: self.depends_on,
            delay,
        })
    }
}

/// The standing ALB rules and their priorities. Configured priorities must not overlap one
/// another (two rules would fight over one ALB priority forever) and must keep ALB's first match
/// in agreement with autostop's host matching.
/// Every `depends_on` names another rule, once, and no rule depends on itself through others.
fn check_dependencies(rules: &[Rule]) -> Result<(), ConfigError> {
    let key = |i: usize| format!("rules[{i}] ({}).depends_on", rules[i].name);
    let index = |name: &str| rules.iter().position(|r| r.name == name);
    for (i, rule) in rules.iter().enumerate() {
        for (j, dep) in rule.depends_on.iter().enumerate() {
            if index(dep).is_none() {
                let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
                return Err(err(key(i), format!("no rule named `{dep}`; configured rules: {}", names.join(", "))));
            }
            if rule.depends_on[..j].contains(dep) {
                return Err(err(key(i), format!("`{dep}` is listed twice")));
            }
        }
    }
    // Depth-first from each rule; a rule met again on the current path closes a cycle.
    fn visit(rules: &[Rule], at: usize, path: &mut Vec<usize>) -> Option<Vec<usize>> {
        if let Some(start) = path.iter().position(|p| *p == at) {
            let mut cycle = path[start..].to_vec();
            cycle.push(at);
            return Some(cycle);
        }
        path.push(at);
        for dep in &rules[at].depends_on {
            let next = rules.iter().position(|r| &r.name == dep).expect("checked above");
            if let Some(cycle) = visit(rules, next, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    for i in 0..rules.len() {
        if let Some(cycle) = visit(rules, i, &mut Vec::new()) {
            let names: Vec<&str> = cycle.iter().map(|c| rules[*c].name.as_str()).collect();
            return Err(err(key(cycle[0]), format!("dependency cycle: {}", names.join(" -> "))));
        }
    }
    Ok(())
}

fn plan_standing(rules: &[Rule]) -> Result<(Vec<Chunk>, Vec<u32>), ConfigError> {
    let hosts: Vec<RuleHosts> =
        rules.iter().map(|r| RuleHosts { name: &r.name, hosts: &r.hosts, priority: r.priority }).collect();
    let chunks = priority::chunks(&hosts);
    let key = |name: &str| {
        let i = rules.iter().position(|r| r.name == name).unwrap_or(0);
        format!("rules[{i}] ({name}).priority")
    };
    let mut ranges: Vec<(u32, u32, &str)> = Vec::new();
    for rule in rules {
        let Some(p) = rule.priority else { continue };
        let n = chunks.iter().filter(|c| c.owner == rule.name).count() as u32;
        let last = p + n - 1;
        if last > MAX_PRIORITY {
            return Err(err(key(&rule.name), format!("{p} leaves no room for its {n} ALB rules (max {MAX_PRIORITY})")));
        }
        if let Some((_, _, other)) = ranges.iter().find(|(a, b, _)| p <= *b && *a <= last) {
            return Err(err(key(&rule.name), format!("{p} overlaps the priorities of rule `{other}`")));
        }
        ranges.push((p, last, &rule.name));
    }
    let priorities = priority::assign(&chunks, &Default::default())
        .ok_or_else(|| err("rules", "more standing ALB rules than ALB has priorities"))?;
    priority::check_order(&chunks, &priorities).map_err(|c| {
        let pinned = rules.iter().find(|r| r.name == c.first.0 && r.priority.is_some()).map(|r| &r.name);
        err(key(pinned.unwrap_or(&c.second.0)), c.to_string())
    })?;
    Ok((chunks, priorities))
}

/// `wake_from` networks, each checked; `None` when the key is absent (any network may wake).
fn parse_networks(key: &str, raw: Option<&[String]>) -> Result<Option<Vec<Cidr>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Err(err(key, "lists no network: leave the key out to let any network wake, or list some"));
    }
    raw.iter().map(|n| Cidr::parse(n).map_err(|r| err(key, r))).collect::<Result<Vec<_>, _>>().map(Some)
}

impl RawRule {
    /// The rule's [`Gate`]: its own `wake_from` and `wake` replace the top level's; its
    /// `never_wake` lists add to the top level's, and its `defaults` wins when set.
    fn gate(&self, key: &dyn Fn(&str) -> String, top: &TopGate) -> Result<Gate, ConfigError> {
        let own = parse_networks(&key("wake_from"), self.wake_from.as_deref())?;
        let mine = self.never_wake.clone().unwrap_or_default();
        check_never_wake(&key("never_wake"), &mine)?;
        let defaults = mine.defaults.or(top.never_wake.defaults).unwrap_or(true);
        let agents: Vec<String> = top.never_wake.user_agents.iter().chain(&mine.user_agents).cloned().collect();
        let paths: Vec<String> = top.never_wake.paths.iter().chain(&mine.paths).cloned().collect();
        let mut gate = Gate::new(own.or_else(|| top.wake_from.clone()), defaults, &agents, &paths);
        gate.click = parse_wake(&key("wake"), self.wake.as_deref())?.unwrap_or(top.click);
        Ok(gate)
    }
}

/// The top level's `wake_from`, `never_wake` and `wake`, checked: what each rule starts from.
struct TopGate {
    wake_from: Option<Vec<Cidr>>,
    never_wake: RawNeverWake,
    click: bool,
}

/// `wake = "request" | "click"`: `Some(true)` for click.
fn parse_wake(key: &str, raw: Option<&str>) -> Result<Option<bool>, ConfigError> {
    match raw {
        None => Ok(None),
        Some("request") => Ok(Some(false)),
        Some("click") => Ok(Some(true)),
        Some(other) => {
            Err(err(key, format!("`{other}` is not a wake mode: use \"request\" (the default) or \"click\"")))
        }
    }
}

fn check_wake_token(t: Option<WakeToken>) -> Result<Option<WakeToken>, ConfigError> {
    let Some(mut t) = t else { return Ok(None) };
    t.header = t.header.trim().to_ascii_lowercase();
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if t.header.is_empty() || !t.header.bytes().all(token_char) {
        return Err(err("wake_token.header", format!("`{}` is not an HTTP header name", t.header)));
    }
    if matches!(t.header.as_str(), "host" | "cookie" | "authorization" | "x-forwarded-for" | "user-agent") {
        return Err(err(
            "wake_token.header",
            format!("`{}` carries something else; use e.g. x-autostop-wake", t.header),
        ));
    }
    if t.env.trim().is_empty() || t.env.contains('=') {
        return Err(err("wake_token.env", "must name the environment variable that holds the secret"));
    }
    Ok(Some(t))
}

fn check_never_wake(key: &str, n: &RawNeverWake) -> Result<(), ConfigError> {
    if let Some(p) = n.paths.iter().find(|p| !p.starts_with('/')) {
        return Err(err(
            format!("{key}.paths"),
            format!("`{p}` must start with `/` (a `*` at the end matches any rest)"),
        ));
    }
    if n.user_agents.iter().any(|u| u.trim().is_empty()) {
        return Err(err(format!("{key}.user_agents"), "an empty entry would match every client"));
    }
    Ok(())
}

/// Parses "90s", "15m", "2h", "1h30m". Must be positive.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = || format!("`{text}` is not a duration like \"90s\", \"15m\" or \"2h\"");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!("`{text}` needs a unit: s, m or h"));
    }
    if total == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// A host pattern as an ALB host-header condition and our matcher both accept it, checked at
/// start so a bad host fails the config, not the rule creation after instances booted. ALB: at
/// most 128 characters of A-Z, a-z, 0-9, `-`, `.`, `*`, `?`; at least one `.`; only letters after
/// the final `.` (ALB guide, "Condition types for listener rules": host conditions). Ours: `*`
/// only as a whole first label (`*.x`), no `?`.
fn validate_host_pattern(raw: &str) -> Result<String, String> {
    let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.contains(':') {
        return Err("hosts are matched without a port; remove it".into());
    }
    if !host.is_ascii() {
        return Err("must be ASCII: write an internationalised name in its xn-- (punycode) form".into());
    }
    let labels = host.strip_prefix("*.").unwrap_or(&host);
    if labels.is_empty() || host.len() > 128 {
        return Err("must be a host name of at most 128 characters (ALB's limit)".into());
    }
    let shape = "must be a host name like `api.dev.example.com` or `*.api.dev.example.com`: letters, digits and `-` \
                 in each label, `*` only as the whole first label";
    for label in labels.split('.') {
        let ok =
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(shape.into());
        }
    }
    match labels.rsplit_once('.') {
        None if !host.starts_with("*.") => Err("must contain at least one `.` (ALB's rule for host conditions)".into()),
        _ if !labels.rsplit('.').next().unwrap_or("").bytes().all(|b| b.is_ascii_alphabetic()) => {
            Err("must end in a label of letters only, like `.com` or `.localhost` (ALB's rule for host conditions)"
                .into())
        }
        _ => Ok(host),
    }
}

/// `arn:<partition>:elasticloadbalancing:<region>:<12-digit account>:<prefix><n segments>`.
fn check_elb_arn(key: &str, arn: &str, prefix: &str, segments: usize) -> Result<(), ConfigError> {
    let kind = prefix.trim_end_matches('/').replace("/app", "");
    let bad = || {
        err(
            key,
            format!("`{arn}` is not an ELBv2 {kind} ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:{prefix}...)"),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [a, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(bad());
    };
    let ok = *a == "arn"
        && partition.starts_with("aws")
        && *service == "elasticloadbalancing"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit());
    let rest = resource.strip_prefix(prefix).ok_or_else(bad)?;
    let seg: Vec<&str> = rest.split('/').collect();
    if !ok || seg.len() != segments || seg.iter().any(|s| s.is_empty()) {
        return Err(bad());
    }
    Ok(())
}

fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-")
        .is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const LISTENER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";

    fn spec_example() -> String {
        format!(
            r#"
listener_arns = ["{LISTENER}"]
state_table = "autostop-state"
idle = "30m"
hold = "25s"
settle = "2s"

[[rules]]
name = "api"
hosts = ["api.dev.example.com", "*.api.dev.example.com"]
target_group_arn = "{TG}"
idle = "15m"
priority = 1200
ec2 = {{ instance_ids = ["i-0123456789abcdef0"] }}
busy_when = {{ network_packets_in = 500 }}

[[rules]]
name = "web"
hosts = ["web.dev.example.com"]
target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0467ef3c8400ae65"
ecs = {{ cluster = "dev", service = "web", desired_count = 2 }}
"#
        )
    }

    fn load_err(text: &str) -> ConfigError {
        Config::from_toml(text).expect_err("config should be rejected")
    }

    /// The spec's example with one line replaced.
    fn with(from: &str, to: &str) -> String {
        let text = spec_example();
        assert!(text.contains(from), "fixture lacks {from}");
        text.replacen(from, to, 1)
    }

    #[test]
    fn spec_example_loads() {
        let c = Config::from_toml(&spec_example()).unwrap();
        assert_eq!(c.idle, Duration::from_secs(1800));
        assert_eq!(c.hold, Duration::from_secs(25));
        assert_eq!(c.settle, Duration::from_secs(2));
        let api = c.rule("api").unwrap();
        assert_eq!(api.idle, Duration::from_secs(900));
        assert_eq!(api.priority, Some(1200));
        assert_eq!(api.busy_when, Some(BusySignal::NetworkPacketsIn(500)));
        let web = c.rule("web").unwrap();
        assert_eq!(web.idle, Duration::from_secs(1800), "default idle applies");
        assert_eq!(web.ecs.as_ref().unwrap().desired_count, Some(2));
        assert_eq!(c.rule_for_host("x.api.dev.example.com").unwrap().name, "api");
        assert_eq!(c.rule_for_host("web.dev.example.com").unwrap().name, "web");
    }

    #[test]
    fn defaults_apply_when_omitted() {
        let text = format!(
            "listener_arns = [\"{LISTENER}\"]\n[[rules]]\nname = \"a\"\nhosts = [\"a.x\"]\ntarget_group_arn = \"{TG}\"\necs = {{ cluster = \"c\", service = \"s\" }}\n"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.state_table, "autostop-state");
        assert_eq!(
            (c.idle, c.hold, c.settle),
            (Duration::from_secs(1800), Duration::from_secs(25), Duration::from_secs(2))
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_err(&with("idle = \"15m\"", "idel = \"15m\""));
        assert!(e.to_string().contains("idel"), "{e}");
        let e = load_err(&with("state_table", "statetable"));
        assert!(e.to_string().contains("statetable"), "{e}");
    }

    #[test]
    fn duplicate_rule_name() {
        let e = load_err(&with("name = \"web\"", "name = \"api\""));
        assert_eq!(e.key, "rules[1].name");
        assert!(e.reason.contains("duplicate rule name `api`"));
    }

    #[test]
    fn host_claimed_by_two_rules() {
        let e = load_err(&with("hosts = [\"web.dev.example.com\"]", "hosts = [\"API.dev.example.com.\"]"));
        assert_eq!(e.key, "rules[1] (web).hosts");
        assert!(e.reason.contains("already claimed by rule `api`"), "{e}");
    }

    #[test]
    fn duplicate_host_within_a_rule() {
        let e = load_err(&with(
            "hosts = [\"web.dev.example.com\"]",
            "hosts = [\"web.dev.example.com\", \"WEB.dev.example.com\"]",
        ));
        assert!(e.reason.contains("listed twice"), "{e}");
    }

    #[test]
    fn bad_durations() {
        for (bad, why) in
            [("15x", "not a duration"), ("15", "needs a unit"), ("0s", "longer than zero"), ("", "not a duration")]
        {
            let e = load_err(&with("idle = \"15m\"", &format!("idle = \"{bad}\"")));
            assert_eq!(e.key, "rules[0] (api).idle");
            assert!(e.reason.contains(why), "{bad}: {e}");
        }
        let e = load_err(&with("hold = \"25s\"", "hold = \"soon\""));
        assert_eq!(e.key, "hold");
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn bad_arns() {
        let e = load_err(&with(TG, "arn:aws:ec2:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067"));
        assert_eq!(e.key, "rules[0] (api).target_group_arn");
        let e = load_err(&with(TG, "targetgroup/api"));
        assert!(e.reason.contains("not an ELBv2 targetgroup ARN"), "{e}");
        let e = load_err(&with(
            LISTENER,
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188",
        ));
        assert_eq!(e.key, "listener_arns[0]");
        let e = load_err(&with(LISTENER, "arn:aws:elasticloadbalancing:us-east-1:1234:listener/app/dev/5/f"));
        assert_eq!(e.key, "listener_arns[0]", "short account id");
    }

    #[test]
    fn rule_without_resources() {
        let e = load_err(&with("ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }", ""));
        assert_eq!(e.key, "rules[1] (web).ec2");
        assert!(e.reason.contains("no resources"));
    }

    #[test]
    fn bad_names_hosts_ids_and_numbers() {
        assert_eq!(load_err(&with("name = \"web\"", "name = \"Web App\"")).key, "rules[1].name");
        assert!(load_err(&with("\"web.dev.example.com\"", "\"web.dev.example.com:443\"")).reason.contains("port"));
        assert!(load_err(&with("\"web.dev.example.com\"", "\"web.*.example.com\"")).reason.contains("first label"));
        for (bad, why) in [
            ("web_1.dev.example.com", "letters, digits and `-`"),
            ("web?.dev.example.com", "letters, digits and `-`"),
            ("bücher.dev.example.com", "punycode"),
            ("localhost", "at least one `.`"),
            ("web.dev.example.c0m", "letters only"),
        ] {
            let e = load_err(&with("\"web.dev.example.com\"", &format!("\"{bad}\"")));
            assert_eq!(e.key, "rules[1] (web).hosts", "{bad}");
            assert!(e.reason.contains(why), "{bad}: {e}");
        }
        let long = format!("{}.example.com", ["a".repeat(60), "b".repeat(60)].join("."));
        assert!(load_err(&with("\"web.dev.example.com\"", &format!("\"{long}\""))).reason.contains("128"));
        assert!(Config::from_toml(&with("\"web.dev.example.com\"", "\"xn--bcher-kva.dev.example.com\"")).is_ok());
        assert_eq!(load_err(&with("i-0123456789abcdef0", "vm-1")).key, "rules[0] (api).ec2.instance_ids");
        assert_eq!(load_err(&with("priority = 1200", "priority = 0")).key, "rules[0] (api).priority");
        assert_eq!(load_err(&with("desired_count = 2", "desired_count = 0")).key, "rules[1] (web).ecs.desired_count");
        assert_eq!(
            load_err(&with("{ network_packets_in = 500 }", "{ network_packets_in = 500, cpu_percent = 5 }")).key,
            "rules[0] (api).busy_when"
        );
        let e = load_err(&with("listener_arns = [", "x = 1\nlistener_arns = ["));
        assert!(e.to_string().contains("unknown field `x`"), "the unknown key is named: {e}");
    }

    #[test]
    fn metrics_lag_defaults_to_three_minutes_and_may_be_zero() {
        assert_eq!(Config::from_toml(&spec_example()).unwrap().metrics_lag, Duration::from_secs(180));
        let c = Config::from_toml(&with("settle = \"2s\"", "settle = \"2s\"\nmetrics_lag = \"0s\"")).unwrap();
        assert_eq!(c.metrics_lag, Duration::ZERO);
        let e = load_err(&with("settle = \"2s\"", "settle = \"2s\"\nmetrics_lag = \"soon\""));
        assert_eq!(e.key, "metrics_lag");
    }

    #[test]
    fn overlapping_priorities() {
        let e = load_err(&with("desired_count = 2 }", "desired_count = 2 }\npriority = 1200"));
        assert_eq!(e.key, "rules[1] (web).priority");
        assert!(e.reason.contains("overlaps"), "{e}");
    }

    #[test]
    fn a_configured_priority_that_puts_a_wildcard_before_a_host_it_captures_names_both_rules() {
        let text = with("ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }", "ecs = { cluster = \"dev\", service = \"web\" }\n[[rules]]\nname = \"wild\"\nhosts = [\"*.dev.example.com\"]\ntarget_group_arn = \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/wild/0467ef3c8400ae66\"\npriority = 5\necs = { cluster = \"dev\", service = \"wild\" }");
        let e = load_err(&text);
        assert_eq!(e.key, "rules[2] (wild).priority");
        assert!(e.reason.contains("rule `wild` (*.dev.example.com, priority 5)"), "{e}");
        assert!(e.reason.contains("rule `api` (api.dev.example.com, priority 1200)"), "{e}");
        // Above the exact hosts it overlaps, the same priority is fine.
        let c = Config::from_toml(&text.replace("priority = 5", "priority = 20000")).unwrap();
        let order: Vec<&str> = c.standing.iter().map(|c| c.hosts[0].as_str()).collect();
        assert_eq!(
            order,
            vec!["api.dev.example.com", "web.dev.example.com", "*.api.dev.example.com", "*.dev.example.com"]
        );
        assert_eq!(c.standing_priorities, vec![1200, 10_000, 1201, 20_000]);
    }

    #[test]
    fn the_deployment_fills_what_the_file_leaves_out() {
        let file = with(&format!("listener_arns = [\"{LISTENER}\"]\nstate_table = \"autostop-state\""), "");
        let deployed = Deployment {
            listener_arns: vec![LISTENER.into()],
            state_table: Some("stack-state".into()),
            load_balancer: None,
        };
        let c = Config::from_toml_with(&file, &deployed).unwrap();
        assert_eq!(
            (c.listener_arns.as_slice(), c.state_table.as_str()),
            ([LISTENER.to_string()].as_slice(), "stack-state")
        );
        // The file wins where it speaks.
        let c = Config::from_toml_with(&spec_example(), &deployed).unwrap();
        assert_eq!(c.state_table, "autostop-state");
        // Deployment values are validated like the file's.
        let bad = Deployment { listener_arns: vec!["nope".into()], state_table: None, load_balancer: None };
        assert_eq!(Config::from_toml_with(&file, &bad).unwrap_err().key, "listener_arns[0]");
    }

    #[test]
    fn missing_listeners() {
        let e = load_err(&with(&format!("listener_arns = [\"{LISTENER}\"]"), "listener_arns = []"));
        assert_eq!(e.key, "listener_arns");
        let e = load_err(&with(&format!("listener_arns = [\"{LISTENER}\"]"), ""));
        assert!(e.to_string().contains("listener_arns"), "{e}");
    }

    #[test]
    fn schedules_resolve_or_name_the_key_at_fault() {
        let schedules = r#"
[[schedules]]
name = "office-hours"
timezone = "Europe/Berlin"
awake = ["mon-fri 08:00-19:00"]
asleep = ["sat-sun", "mon-fri 22:00-06:00"]
prewarm = "15m"

[[rules]]
name = "api""#;
        let text = with("\n[[rules]]\nname = \"api\"", schedules).replacen(
            "busy_when",
            "schedule = \"office-hours\"\nbusy_when",
            1,
        );
        let c = Config::from_toml(&text).unwrap();
        let s = c.rule("api").unwrap().schedule.as_ref().expect("api has the schedule");
        assert_eq!(
            (s.name.as_str(), s.timezone.as_str(), s.prewarm),
            ("office-hours", "Europe/Berlin", Duration::from_secs(900))
        );
        assert!(c.rule("web").unwrap().schedule.is_none());

        let e = load_err(&text.replace("schedule = \"office-hours\"", "schedule = \"office\""));
        assert_eq!(e.key, "rules[0] (api).schedule");
        assert!(e.reason.contains("no schedule named `office`") && e.reason.contains("office-hours"), "{e}");
        let e = load_err(&text.replace("\"sat-sun\"", "\"sat-sunday\""));
        assert_eq!(e.key, "schedules[0] (office-hours).asleep[0]");
        assert!(e.reason.contains("expected DAYS [HH:MM-HH:MM]"), "{e}");
        let e = load_err(&text.replace("Europe/Berlin", "Berlin"));
        assert_eq!(e.key, "schedules[0] (office-hours).timezone");
        let e = load_err(&text.replace("prewarm = \"15m\"", "prewarm = \"soon\""));
        assert_eq!(e.key, "schedules[0] (office-hours).prewarm");
        let e = load_err(
            &text.replace("awake = [\"mon-fri 08:00-19:00\"]\nasleep = [\"sat-sun\", \"mon-fri 22:00-06:00\"]", ""),
        );
        assert_eq!(e.key, "schedules[0] (office-hours).awake");
    }

    #[test]
    fn dependencies_name_rules_without_cycles() {
        let db = "\n[[rules]]\nname = \"db\"\nec2 = { instance_ids = [\"i-0aaaaaaaaaaaaaaaa\"] }\n";
        let text = with("busy_when", "depends_on = [\"db\"]\ndelay = \"10s\"\nbusy_when") + db;
        let c = Config::from_toml(&text).unwrap();
        let (api, db_rule) = (c.rule("api").unwrap(), c.rule("db").unwrap());
        assert_eq!((api.depends_on.clone(), api.delay), (vec!["db".to_string()], Duration::from_secs(10)));
        assert!(db_rule.hosts.is_empty() && db_rule.target_group_arn.is_none());
        assert_eq!(c.dependents("db"), vec![0]);

        let e = load_err(&text.replace("depends_on = [\"db\"]", "depends_on = [\"dbx\"]"));
        assert_eq!(e.key, "rules[0] (api).depends_on");
        assert!(e.reason.contains("no rule named `dbx`"), "{e}");
        let e = load_err(
            &text
                .replace("depends_on = [\"db\"]\ndelay = \"10s\"", "")
                .replace("name = \"db\"\n", "name = \"db\"\ndelay = \"5s\"\n"),
        );
        assert_eq!(e.key, "rules[2] (db).delay");
        let cyclic = text.replace("name = \"db\"\n", "name = \"db\"\ndepends_on = [\"web\"]\n").replace(
            "ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }",
            "ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }\ndepends_on = [\"api\"]",
        );
        let e = load_err(&cyclic);
        assert!(e.reason.contains("dependency cycle: api -> db -> web -> api"), "{e}");
        let e = load_err(&text.replace("depends_on = [\"db\"]", "depends_on = [\"api\"]"));
        assert!(e.reason.contains("dependency cycle: api -> api"), "{e}");
        let e = load_err(&(text.clone() + "\n[[rules]]\nname = \"half\"\nhosts = [\"half.x.com\"]\nec2 = { instance_ids = [\"i-0bbbbbbbbbbbbbbbb\"] }\n"));
        assert_eq!(e.key, "rules[3] (half).target_group_arn");
        assert!(e.reason.contains("or neither"), "{e}");
    }
}
