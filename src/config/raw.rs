//! The serde shape of `autostop.toml`: every key as written, unknown keys rejected by serde
//! (naming the key). [`super::validate`] turns it into a [`super::Config`].

use serde::Deserialize;

use super::auth::RawAuth;
use super::gate::WakeToken;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) listener_arns: Vec<String>,
    pub(super) state_table: Option<String>,
    #[serde(default = "default_idle")]
    pub(super) idle: String,
    #[serde(default = "default_hold")]
    pub(super) hold: String,
    #[serde(default = "default_settle")]
    pub(super) settle: String,
    #[serde(default = "default_metrics_lag")]
    pub(super) metrics_lag: String,
    #[serde(default)]
    pub(super) rules: Vec<RawRule>,
    /// Networks whose clients may wake environments (any when absent).
    pub(super) wake_from: Option<Vec<String>>,
    /// Proxies in front of the load balancer (a CDN, a corporate proxy).
    pub(super) trusted_proxies: Option<Vec<String>>,
    pub(super) never_wake: Option<RawNeverWake>,
    /// `"request"` (the default) or `"click"`.
    pub(super) wake: Option<String>,
    pub(super) wake_token: Option<WakeToken>,
    /// Every rule behind ALB authentication (`super::auth`), unless it says otherwise.
    pub(super) auth: Option<RawAuth>,
    /// Lifecycle events onto an EventBridge bus.
    pub(super) events: Option<RawEvents>,
    /// The fleet page's host.
    pub(super) dashboard: Option<RawDashboard>,
    #[serde(default)]
    pub(super) schedules: Vec<RawSchedule>,
}

/// `dashboard = { host = "autostop.dev.example.com" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDashboard {
    pub(super) host: String,
}

/// `events = { bus = "default" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    pub(super) bus: String,
}

/// `[[schedules]]`: windows of local time ([`super::schedule`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) name: String,
    pub(super) timezone: String,
    #[serde(default)]
    pub(super) awake: Vec<String>,
    #[serde(default)]
    pub(super) asleep: Vec<String>,
    /// How early an `awake` window's resources start before any wake history exists.
    pub(super) prewarm: Option<String>,
}

/// `never_wake = { user_agents = [...], paths = [...], defaults = true }`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNeverWake {
    #[serde(default)]
    pub(super) user_agents: Vec<String>,
    #[serde(default)]
    pub(super) paths: Vec<String>,
    pub(super) defaults: Option<bool>,
}

pub(super) fn default_idle() -> String {
    "30m".into()
}
pub(super) fn default_hold() -> String {
    "25s".into()
}
pub(super) fn default_settle() -> String {
    "2s".into()
}
pub(super) fn default_metrics_lag() -> String {
    "3m".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: String,
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    pub(super) target_group_arn: Option<String>,
    /// The load balancer whose listeners carry the rule's standing rules, for a target group
    /// no load balancer uses yet when the listeners span several.
    pub(super) load_balancer: Option<String>,
    pub(super) idle: Option<String>,
    pub(super) priority: Option<i64>,
    pub(super) ec2: Option<RawEc2>,
    pub(super) ecs: Option<RawEcs>,
    pub(super) asg: Option<RawAsg>,
    pub(super) rds: Option<RawRds>,
    pub(super) busy_when: Option<RawBusyWhen>,
    pub(super) hourly_cost: Option<f64>,
    pub(super) wake_from: Option<Vec<String>>,
    pub(super) never_wake: Option<RawNeverWake>,
    pub(super) wake: Option<String>,
    /// The name of a `[[schedules]]` entry.
    pub(super) schedule: Option<String>,
    /// Rules readied first, in order, when this one wakes.
    #[serde(default)]
    pub(super) depends_on: Vec<String>,
    /// Wait after the dependencies are ready, before this rule's own resources start.
    pub(super) delay: Option<String>,
    /// Its own `auth`, or `"none"`.
    pub(super) auth: Option<RawAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEc2 {
    pub(super) instance_ids: Vec<String>,
    #[serde(default)]
    pub(super) hibernate: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRds {
    #[serde(default)]
    pub(super) instances: Vec<String>,
    #[serde(default)]
    pub(super) clusters: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAsg {
    pub(super) name: String,
    pub(super) desired: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEcs {
    pub(super) cluster: String,
    pub(super) service: String,
    pub(super) desired_count: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBusyWhen {
    pub(super) network_packets_in: Option<i64>,
    pub(super) cpu_percent: Option<f64>,
}
