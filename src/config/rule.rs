//! One autostopping rule as validated: its hosts, target group, resources, idle time, busy
//! signal, gate, schedule and dependencies. Data only.

use std::time::Duration;

/// One autostopping rule, validated (see `config::validate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// Host patterns as written in the config, normalised: `api.dev.example.com` or `*.api.dev.example.com`.
    pub hosts: Vec<String>,
    /// The app's target group; `None` for a rule that only serves as a dependency (no hosts).
    pub target_group_arn: Option<String>,
    /// The load balancer (ARN) whose listeners carry its standing rules, when configured; else
    /// the one its target group serves (see `routing::home`).
    pub load_balancer: Option<String>,
    pub idle: Duration,
    /// Configured ALB priority for the first host chunk, if any (see [`super::standing`]).
    pub priority: Option<u32>,
    pub ec2: Option<Ec2Resources>,
    pub ecs: Option<EcsService>,
    pub asg: Option<AsgSpec>,
    pub rds: Option<RdsSpec>,
    pub busy_when: Option<BusySignal>,
    /// What the rule's resources cost per hour while awake (any currency), for the savings report.
    pub hourly_cost: Option<f64>,
    /// Who may wake it ([`super::gate`]).
    pub gate: super::gate::Gate,
    /// Working hours and forced sleep ([`super::schedule`]).
    pub schedule: Option<std::sync::Arc<super::schedule::Schedule>>,
    /// Rules readied first, in this order, when this one wakes; stopped after it.
    pub depends_on: Vec<String>,
    /// How long after its dependencies are ready this rule's own resources start.
    pub delay: Duration,
    /// Who may reach its hosts: behind SSO, its standing rules authenticate first
    /// ([`super::auth`]).
    pub access: super::auth::Access,
}

impl Rule {
    /// A rule with nothing but defaults, for validation to fill in.
    pub(crate) fn empty() -> Rule {
        Rule {
            name: String::new(),
            hosts: Vec::new(),
            target_group_arn: None,
            load_balancer: None,
            idle: Duration::ZERO,
            priority: None,
            ec2: None,
            ecs: None,
            asg: None,
            rds: None,
            busy_when: None,
            hourly_cost: None,
            gate: Default::default(),
            schedule: None,
            depends_on: Vec::new(),
            delay: Duration::ZERO,
            access: Default::default(),
        }
    }

    /// The app's target group as the standing rules name it. Only a rule with hosts has
    /// standing rules, and a rule with hosts always has a target group; "" otherwise.
    pub fn app_group(&self) -> &str {
        self.target_group_arn.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Resources {
    pub instance_ids: Vec<String>,
    /// Stop with `Hibernate=true`: RAM is kept, so the app resumes where it was.
    pub hibernate: bool,
}

/// RDS DB instances and Aurora DB clusters: started on wake, stopped to sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsSpec {
    pub instances: Vec<String>,
    pub clusters: Vec<String>,
}

/// An Auto Scaling group: scaled to 0 (min size and desired capacity) to sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsgSpec {
    pub name: String,
    /// Capacity to restore on wake; when absent, the one remembered at scale-down, else 1.
    pub desired: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsService {
    pub cluster: String,
    pub service: String,
    /// Count to scale to on wake; when absent, the count remembered at scale-down, else 1.
    pub desired_count: Option<u32>,
}

/// Extra activity signal for long-lived connections (read by the idle check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BusySignal {
    /// EC2 `NetworkPacketsIn` per minute, summed over the rule's instances.
    NetworkPacketsIn(u64),
    /// `CPUUtilization` of the ECS service, or of the EC2 instances.
    CpuPercent(f64),
}
