//! The resources a rule wakes and stops, as the port reports them: EC2 instances, ECS
//! services, Auto Scaling groups, RDS databases, and the health of a target group's targets.
//! Normalised from each service's own words in one place each.

/// EC2 instance state, normalised. `Missing` = not returned by DescribeInstances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Missing,
}

impl InstanceState {
    /// Maps EC2's `InstanceStateName` text. Unknown names are treated as `Pending`: something is in
    /// flight and the next observation will tell.
    pub fn from_ec2_name(name: &str) -> InstanceState {
        match name {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => InstanceState::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    /// EC2's `StateReason.Code` (e.g. `Client.InternalError` when an encrypted volume could not be
    /// attached for lack of `kms:CreateGrant`).
    pub state_reason: Option<String>,
    /// EC2's `LaunchTime`: when the instance was last started (epoch seconds).
    pub launched_at: Option<i64>,
    /// Detailed monitoring: EC2 metrics every minute. Without it (basic monitoring) they come
    /// every 5 minutes (EC2 user guide, "Instance metrics": monitoring frequency).
    pub detailed_monitoring: bool,
    /// Enabled for hibernation at launch (`HibernationOptions.Configured`); only such an
    /// instance can hibernate (EC2 user guide, "Hibernate your Amazon EC2 instance").
    pub hibernation_configured: bool,
}

impl Instance {
    /// An instance DescribeInstances did not return.
    pub fn missing(id: &str) -> Instance {
        Instance {
            id: id.to_string(),
            state: InstanceState::Missing,
            state_reason: None,
            launched_at: None,
            detailed_monitoring: false,
            hibernation_configured: false,
        }
    }

    /// Seconds one EC2 metric datapoint covers for this instance.
    pub fn metric_period(&self) -> i64 {
        if self.detailed_monitoring {
            60
        } else {
            300
        }
    }
}

/// An Auto Scaling group as the wake and stop paths see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoScalingGroup {
    pub name: String,
    /// `false` when DescribeAutoScalingGroups does not return it.
    pub exists: bool,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// Instances `InService`.
    pub in_service: u32,
    /// Min size and desired capacity remembered in the [`ASG_MIN_TAG`] and [`ASG_DESIRED_TAG`]
    /// tags when autostop scaled it to 0.
    pub remembered_min: Option<u32>,
    pub remembered_desired: Option<u32>,
}

impl AutoScalingGroup {
    pub fn missing(name: &str) -> AutoScalingGroup {
        AutoScalingGroup { name: name.to_string(), ..Default::default() }
    }
}

/// An RDS DB instance or Aurora DB cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub id: String,
    pub cluster: bool,
    /// RDS's status (`available`, `stopped`, `starting`, `stopping`, ...); `missing` when
    /// Describe does not return it.
    pub status: String,
    /// Why it cannot be stopped on its own, when it cannot: a read replica, or an instance of
    /// an Aurora cluster (the cluster is stopped instead).
    pub cannot_stop: Option<String>,
}

impl Database {
    pub fn missing(id: &str, cluster: bool) -> Database {
        Database { id: id.to_string(), cluster, status: "missing".into(), cannot_stop: None }
    }

    /// Runs, or is on its way to running: anything but stopped, stopping or missing.
    pub fn running(&self) -> bool {
        !matches!(self.status.as_str(), "stopped" | "stopping" | "missing")
    }

    pub fn kind(&self) -> &'static str {
        if self.cluster {
            "rds-cluster"
        } else {
            "rds"
        }
    }

    /// Its status, normalised.
    pub fn state(&self) -> DatabaseState {
        DatabaseState::of(&self.status)
    }
}

/// What an RDS DB instance's or Aurora DB cluster's status means for a wake and a stop (RDS user
/// guide, "Viewing instance status", and Aurora user guide, "Viewing DB cluster status").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseState {
    /// `available`: serving, and the only status StopDBInstance / StopDBCluster accept.
    Available,
    /// Serving while RDS works on it (a backup, a modification, maintenance, an upgrade, ...):
    /// up for a wake; a stop waits until it is `available` again.
    Busy,
    /// On its way to serving (`starting`, `creating`, `rebooting`, a failover, ...).
    Starting,
    Stopping,
    Stopped,
    /// A status RDS does not leave by itself (`failed`, `storage-full`, `incompatible-*`,
    /// `inaccessible-encryption-credentials`, being deleted, ...): someone must act.
    Broken,
    /// Describe did not return it.
    Missing,
}

impl DatabaseState {
    pub fn of(status: &str) -> DatabaseState {
        match status {
            "available" => DatabaseState::Available,
            "stopped" => DatabaseState::Stopped,
            "stopping" => DatabaseState::Stopping,
            "missing" => DatabaseState::Missing,
            "backing-up"
            | "modifying"
            | "maintenance"
            | "upgrading"
            | "storage-optimization"
            | "renaming"
            | "resetting-master-credentials"
            | "storage-config-upgrade"
            | "update-iam-db-auth"
            | "backtracking" => DatabaseState::Busy,
            s if s.starts_with("configuring-") => DatabaseState::Busy,
            "starting" | "creating" | "rebooting" | "failing-over" | "promoting" | "migrating" | "moving-to-vpc"
            | "converting-to-vpc" => DatabaseState::Starting,
            "failed"
            | "storage-full"
            | "restore-error"
            | "insufficient-capacity"
            | "cloning-failed"
            | "migration-failed"
            | "deleting"
            | "delete-precheck" => DatabaseState::Broken,
            s if s.starts_with("incompatible-") || s.starts_with("inaccessible-encryption-credentials") => {
                DatabaseState::Broken
            }
            // A status added after this was written: take it as on its way, and say so in the
            // status; the next observation tells.
            _ => DatabaseState::Starting,
        }
    }

    /// Up for a wake: it serves.
    pub fn serves(self) -> bool {
        matches!(self, DatabaseState::Available | DatabaseState::Busy)
    }
}

/// Tags an Auto Scaling group keeps its min size and desired capacity in while scaled to 0.
pub const ASG_MIN_TAG: &str = "autostop:min-size";
pub const ASG_DESIRED_TAG: &str = "autostop:desired-capacity";

/// An ECS service as the wake and stop paths see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Cluster and service name as configured.
    pub cluster: String,
    pub name: String,
    /// Needed to tag it; empty when missing.
    pub arn: String,
    pub desired: u32,
    pub running: u32,
    /// `ACTIVE`, `DRAINING`, `INACTIVE`, or `MISSING` when ECS reports it as a failure.
    pub status: String,
    /// The count remembered in the `autostop:desired-count` tag when it was scaled to 0.
    pub remembered_count: Option<u32>,
    /// When its newest deployment last changed (a scale-up counts), epoch seconds.
    pub changed_at: Option<i64>,
}

impl Service {
    /// What DescribeServices reports for a service it does not know.
    pub fn missing(cluster: &str, name: &str) -> Service {
        Service {
            cluster: cluster.to_string(),
            name: name.to_string(),
            arn: String::new(),
            desired: 0,
            running: 0,
            status: "MISSING".into(),
            remembered_count: None,
            changed_at: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }
}

/// Registered targets of a target group, counted by what ALB's health checks say of them.
///
/// `total` counts the targets the load balancer considers (not `unused`, not `draining`); the
/// status JSON shows `healthy` and `total` only, the rest explains a wait in words.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetHealth {
    pub healthy: u32,
    pub total: u32,
    /// `initial`: registered, still in the first health checks (`Elb.InitialHealthChecking`).
    #[serde(skip)]
    pub initial: u32,
    /// `unhealthy`, with the reason code of the first one (`Target.Timeout`, ...).
    #[serde(skip)]
    pub unhealthy: u32,
    #[serde(skip)]
    pub unhealthy_reason: Option<String>,
    /// `unused` with `Target.NotInUse`: no listener rule or default action references the group,
    /// so the ALB does not health-check it at all.
    #[serde(skip)]
    pub not_in_use: u32,
}

/// A target group's health check, as far as it decides how long a target takes to turn healthy:
/// HealthyThresholdCount passing checks, HealthCheckIntervalSeconds apart (ALB guide, "Health
/// checks for your target groups": at least 2 x 5 s; the console's default 5 x 30 s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCheck {
    pub healthy_threshold: u32,
    pub interval_secs: u32,
}

impl HealthCheck {
    /// The least time from a target answering to `healthy`.
    pub fn floor_secs(self) -> u64 {
        self.healthy_threshold as u64 * self.interval_secs as u64
    }
}

impl TargetHealth {
    pub fn counts(healthy: u32, total: u32) -> TargetHealth {
        TargetHealth { healthy, total, ..TargetHealth::default() }
    }
}

/// The tag on an ECS service remembering its desired count while scaled to 0.
pub const DESIRED_COUNT_TAG: &str = "autostop:desired-count";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_state_names_map() {
        for (name, state) in [
            ("pending", InstanceState::Pending),
            ("running", InstanceState::Running),
            ("stopping", InstanceState::Stopping),
            ("stopped", InstanceState::Stopped),
            ("shutting-down", InstanceState::ShuttingDown),
            ("terminated", InstanceState::Terminated),
        ] {
            assert_eq!(InstanceState::from_ec2_name(name), state);
            assert_eq!(state.as_str(), name);
        }
        assert_eq!(InstanceState::from_ec2_name("rebooting"), InstanceState::Pending);
    }

    #[test]
    fn rds_statuses_normalise_into_what_a_wake_and_a_stop_need() {
        use DatabaseState::*;
        for (status, state) in [
            ("available", Available),
            ("backing-up", Busy),
            ("modifying", Busy),
            ("configuring-enhanced-monitoring", Busy),
            ("configuring-log-exports", Busy),
            ("storage-optimization", Busy),
            ("maintenance", Busy),
            ("upgrading", Busy),
            ("starting", Starting),
            ("rebooting", Starting),
            ("failing-over", Starting),
            ("stopping", Stopping),
            ("stopped", Stopped),
            ("failed", Broken),
            ("storage-full", Broken),
            ("incompatible-parameters", Broken),
            ("incompatible-network", Broken),
            ("inaccessible-encryption-credentials", Broken),
            ("inaccessible-encryption-credentials-recoverable", Broken),
            ("missing", Missing),
            ("something-new", Starting),
        ] {
            assert_eq!(DatabaseState::of(status), state, "{status}");
        }
        assert!(Busy.serves() && Available.serves() && !Starting.serves() && !Broken.serves());
    }
}
