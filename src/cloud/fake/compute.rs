//! EC2 instances, ECS services, Auto Scaling groups and RDS databases, with the transitions and
//! state errors AWS documents (see the module docs of [`super`] for the sources).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{FakeAsg, FakeCloud, FakeDb, FakeInstance, FakeService, Op, State, FAKE_EPOCH};
use crate::cloud::{
    AutoScalingGroup, Cloud, CloudError, CloudResult, Database, Instance, InstanceState, Service, ASG_DESIRED_TAG,
    ASG_MIN_TAG, DESIRED_COUNT_TAG,
};

impl FakeCloud {
    pub(super) async fn db_transition(&self, id: &str, cluster: bool, from: &str, to: &str) -> CloudResult<()> {
        let op = match (to, cluster) {
            ("starting", false) => Op::StartDBInstance,
            ("starting", true) => Op::StartDBCluster,
            (_, false) => Op::StopDBInstance,
            (_, true) => Op::StopDBCluster,
        };
        self.enter(op).await?;
        let (now, mut s) = (Instant::now(), self.lock());
        s.settle_databases(now);
        let Some(db) = s.databases.get_mut(&(id.to_string(), cluster)) else {
            let code = if cluster { "DBClusterNotFoundFault" } else { "DBInstanceNotFound" };
            return Err(CloudError::new(op.name(), code, id));
        };
        let state_code = if cluster { "InvalidDBClusterStateFault" } else { "InvalidDBInstanceState" };
        if db.status != from || (to == "stopping" && db.cannot_stop.is_some()) {
            return Err(CloudError::new(op.name(), state_code, format!("{id} is {}", db.status)));
        }
        db.status = to.to_string();
        db.until = Some(now + db.boot);
        Ok(())
    }

    /// Adds an instance; `boot` is how long `pending` lasts, stop how long `stopping` lasts.
    pub fn add_instance(&self, id: &str, state: InstanceState, boot: Duration) {
        let now = Instant::now();
        self.lock().instances.insert(
            id.to_string(),
            FakeInstance {
                state,
                state_reason: None,
                until: None,
                running_since: (state == InstanceState::Running).then_some(now),
                launched_at: (state == InstanceState::Running).then(|| self.now()),
                boot,
                stop: Duration::from_secs(30),
                fails_to_boot: false,
                detailed_monitoring: true,
                hibernation_configured: false,
                hibernated: false,
                no_capacity: false,
            },
        );
    }

    /// Launched with hibernation enabled.
    pub fn enable_hibernation(&self, id: &str) {
        self.lock().instances.get_mut(id).expect("unknown fake instance").hibernation_configured = true;
    }

    /// Whether the instance's last stop was a hibernation.
    pub fn hibernated(&self, id: &str) -> bool {
        self.lock().instances.get(id).is_some_and(|i| i.hibernated)
    }

    /// Puts an instance in `stopping` for `remaining`, then `stopped`.
    pub fn set_stopping(&self, id: &str, remaining: Duration) {
        let mut s = self.lock();
        let i = s.instances.get_mut(id).expect("unknown fake instance");
        i.state = InstanceState::Stopping;
        i.until = Some(Instant::now() + remaining);
        i.running_since = None;
    }

    pub fn set_instance_state(&self, id: &str, state: InstanceState) {
        let mut s = self.lock();
        let i = s.instances.get_mut(id).expect("unknown fake instance");
        i.state = state;
        i.until = None;
        i.running_since = (state == InstanceState::Running).then_some(Instant::now());
    }

    /// The instance has basic monitoring: its EC2 metrics come every 5 minutes (as
    /// [`FakeCloud::put_metric`] is told).
    pub fn basic_monitoring(&self, id: &str) {
        self.lock().instances.get_mut(id).expect("unknown fake instance").detailed_monitoring = false;
    }

    /// The instance's type has no capacity in its zone (`true`) or has it again (`false`).
    pub fn no_capacity_for(&self, id: &str, short: bool) {
        self.lock().instances.get_mut(id).expect("unknown fake instance").no_capacity = short;
    }

    /// Every start of this instance ends back in `stopped` with `Client.InternalError`.
    pub fn fail_to_boot(&self, id: &str) {
        self.lock().instances.get_mut(id).expect("unknown fake instance").fails_to_boot = true;
    }

    pub fn add_service(&self, cluster: &str, service: &str, desired: u32, boot: Duration) {
        self.lock().services.insert(
            (cluster.to_string(), service.to_string()),
            FakeService {
                arn: format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}"),
                desired,
                status: "ACTIVE".into(),
                tags: HashMap::new(),
                scaled_at: Instant::now(),
                boot,
            },
        );
    }

    pub fn tag_service(&self, cluster: &str, service: &str, key: &str, value: &str) {
        let mut s = self.lock();
        let svc = s.services.get_mut(&(cluster.to_string(), service.to_string())).expect("unknown fake service");
        svc.tags.insert(key.to_string(), value.to_string());
    }

    /// An Auto Scaling group: its instances are in service `boot` after the desired capacity
    /// changes.
    pub fn add_asg(&self, name: &str, min: u32, max: u32, desired: u32, boot: Duration) {
        let asg = FakeAsg { min, max, desired, tags: HashMap::new(), changed_at: Instant::now(), boot };
        self.lock().asgs.insert(name.to_string(), asg);
    }

    /// An RDS DB instance (or, `cluster`, an Aurora cluster) in `status`; a start takes `boot`,
    /// a stop as long.
    pub fn add_database(&self, id: &str, cluster: bool, status: &str, boot: Duration) {
        let db = FakeDb { status: status.to_string(), until: None, boot, cannot_stop: None };
        self.lock().databases.insert((id.to_string(), cluster), db);
    }

    /// A read replica: RDS cannot stop it.
    pub fn make_read_replica(&self, id: &str, source: &str) {
        if let Some(db) = self.lock().databases.get_mut(&(id.to_string(), false)) {
            db.cannot_stop = Some(format!("it is a read replica of {source}, and RDS cannot stop a read replica"));
        }
    }

    /// What RDS does to a database stopped for 7 days (RDS user guide, "Stopping an Amazon RDS
    /// DB instance temporarily"): it starts it again.
    pub fn auto_start_database(&self, id: &str, cluster: bool) {
        let mut s = self.lock();
        let db = s.databases.get_mut(&(id.to_string(), cluster)).expect("unknown fake database");
        db.status = "available".into();
        db.until = None;
    }

    /// RDS puts the database in `status` (a backup begins, its storage runs full, ...).
    pub fn set_database_status(&self, id: &str, cluster: bool, status: &str) {
        let mut s = self.lock();
        let db = s.databases.get_mut(&(id.to_string(), cluster)).expect("unknown fake database");
        db.status = status.to_string();
        db.until = None;
    }

    pub fn database_status(&self, id: &str, cluster: bool) -> String {
        let mut s = self.lock();
        s.settle_databases(Instant::now());
        s.databases.get(&(id.to_string(), cluster)).map(|d| d.status.clone()).unwrap_or_else(|| "missing".into())
    }

    /// (min size, desired capacity) of a group.
    pub fn asg_sizes(&self, name: &str) -> (u32, u32) {
        let s = self.lock();
        let g = s.asgs.get(name).expect("unknown fake group");
        (g.min, g.desired)
    }

    pub fn asg_tag(&self, name: &str, key: &str) -> Option<String> {
        self.lock().asgs.get(name).and_then(|g| g.tags.get(key).cloned())
    }

    pub fn instance_state(&self, id: &str) -> InstanceState {
        let mut s = self.lock();
        if s.advance(Instant::now()) {
            s.check_invariants();
        }
        s.instances.get(id).map(|i| i.state).unwrap_or(InstanceState::Missing)
    }

    pub fn service_tag(&self, cluster: &str, service: &str, key: &str) -> Option<String> {
        self.lock().services[&(cluster.to_string(), service.to_string())].tags.get(key).cloned()
    }

    pub fn service_desired(&self, cluster: &str, service: &str) -> u32 {
        self.lock().services[&(cluster.to_string(), service.to_string())].desired
    }

    pub(super) async fn op_instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        // Counted as the real adapter calls: 200 ids per call.
        for _ in ids.chunks(200) {
            self.enter(Op::DescribeInstances).await?;
        }
        let s = self.lock();
        Ok(ids
            .iter()
            .map(|id| match s.instances.get(id) {
                Some(i) => Instance {
                    id: id.clone(),
                    state: i.state,
                    state_reason: i.state_reason.clone(),
                    launched_at: i.launched_at,
                    detailed_monitoring: i.detailed_monitoring,
                    hibernation_configured: i.hibernation_configured,
                },
                None => Instance::missing(id),
            })
            .collect())
    }

    pub(super) async fn op_start_instances(&self, ids: &[String]) -> CloudResult<()> {
        self.enter(Op::StartInstances).await?;
        let now = Instant::now();
        let mut s = self.lock();
        for id in ids {
            match s.instances.get(id).map(|i| i.state) {
                None => return Err(CloudError::new("StartInstances", "InvalidInstanceID.NotFound", id.clone())),
                Some(InstanceState::Stopping | InstanceState::Terminated | InstanceState::ShuttingDown) => {
                    return Err(CloudError::new("StartInstances", "IncorrectInstanceState", id.clone()))
                }
                Some(InstanceState::Stopped) if s.instances[id].no_capacity => {
                    let why = format!("We currently do not have sufficient capacity for {id} in its Availability Zone");
                    return Err(CloudError::new("StartInstances", "InsufficientInstanceCapacity", why));
                }
                _ => {}
            }
        }
        for id in ids {
            let i = s.instances.get_mut(id).expect("checked above");
            if i.state == InstanceState::Stopped {
                i.state = InstanceState::Pending;
                i.state_reason = None;
                i.until = Some(now + i.boot);
            }
        }
        Ok(())
    }

    /// Hibernation can be enabled only at launch (EC2 user guide, "Hibernate your Amazon EC2
    /// instance"); the fake refuses `Hibernate=true` for any other instance, so a test sees
    /// autostop never asks for it.
    pub(super) async fn op_stop_instances(&self, ids: &[String], hibernate: bool) -> CloudResult<()> {
        self.enter(Op::StopInstances).await?;
        let now = Instant::now();
        let mut s = self.lock();
        for id in ids {
            let Some(i) = s.instances.get_mut(id) else {
                return Err(CloudError::new("StopInstances", "InvalidInstanceID.NotFound", id.clone()));
            };
            if hibernate && !i.hibernation_configured {
                return Err(CloudError::new(
                    "StopInstances",
                    "UnsupportedOperation",
                    format!("{id} is not enabled for hibernation"),
                ));
            }
            i.hibernated = hibernate;
            if matches!(i.state, InstanceState::Running | InstanceState::Pending) {
                i.state = InstanceState::Stopping;
                i.until = Some(now + i.stop);
                i.running_since = None;
            }
        }
        s.check_invariants();
        Ok(())
    }

    pub(super) async fn op_services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        for _ in names.chunks(10) {
            self.enter(Op::DescribeServices).await?;
        }
        let now = Instant::now();
        let s = self.lock();
        let born = s.born.unwrap_or(now);
        Ok(names
            .iter()
            .map(|name| match s.services.get(&(cluster.to_string(), name.clone())) {
                Some(svc) => Service {
                    cluster: cluster.to_string(),
                    name: name.clone(),
                    arn: svc.arn.clone(),
                    desired: svc.desired,
                    running: if svc.scaled_at + svc.boot <= now { svc.desired } else { 0 },
                    status: svc.status.clone(),
                    remembered_count: svc.tags.get(DESIRED_COUNT_TAG).and_then(|v| v.parse().ok()),
                    changed_at: Some(FAKE_EPOCH + svc.scaled_at.duration_since(born).as_secs() as i64),
                },
                None => Service::missing(cluster, name),
            })
            .collect())
    }

    pub(super) async fn op_tag_service(&self, service_arn: &str, key: &str, value: &str) -> CloudResult<()> {
        self.enter(Op::TagResource).await?;
        let mut s = self.lock();
        let svc = s
            .services
            .values_mut()
            .find(|svc| svc.arn == service_arn)
            .ok_or_else(|| CloudError::new("TagResource", "InvalidParameterException", service_arn))?;
        svc.tags.insert(key.to_string(), value.to_string());
        Ok(())
    }

    pub(super) async fn op_scale_service(&self, cluster: &str, service: &str, desired: u32) -> CloudResult<()> {
        self.enter(Op::UpdateService).await?;
        let mut s = self.lock();
        let Some(svc) = s.services.get_mut(&(cluster.to_string(), service.to_string())) else {
            return Err(CloudError::new("UpdateService", "ServiceNotFoundException", service.to_string()));
        };
        if svc.desired != desired {
            svc.desired = desired;
            svc.scaled_at = Instant::now();
        }
        s.check_invariants();
        Ok(())
    }

    pub(super) async fn op_databases(&self, instances: &[String], clusters: &[String]) -> CloudResult<Vec<Database>> {
        if !instances.is_empty() {
            self.enter(Op::DescribeDBInstances).await?;
        }
        if !clusters.is_empty() {
            self.enter(Op::DescribeDBClusters).await?;
        }
        let mut s = self.lock();
        s.settle_databases(Instant::now());
        let wanted = instances.iter().map(|i| (i, false)).chain(clusters.iter().map(|c| (c, true)));
        Ok(wanted
            .map(|(id, cluster)| match s.databases.get(&(id.clone(), cluster)) {
                Some(db) => {
                    Database { id: id.clone(), cluster, status: db.status.clone(), cannot_stop: db.cannot_stop.clone() }
                }
                None => Database::missing(id, cluster),
            })
            .collect())
    }

    /// Only a `stopped` database starts; anything else is InvalidDBInstanceState
    /// (InvalidDBClusterStateFault for a cluster): RDS API reference, StartDBInstance.
    pub(super) async fn op_start_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        self.db_transition(id, cluster, "stopped", "starting").await
    }

    /// Only an `available` database stops (RDS API reference, StopDBInstance); a read replica
    /// never does.
    pub(super) async fn op_stop_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        self.db_transition(id, cluster, "available", "stopping").await
    }

    pub(super) async fn op_auto_scaling_groups(&self, names: &[String]) -> CloudResult<Vec<AutoScalingGroup>> {
        for _ in names.chunks(100) {
            self.enter(Op::DescribeAutoScalingGroups).await?;
        }
        let (s, now) = (self.lock(), Instant::now());
        Ok(names
            .iter()
            .map(|n| match s.asgs.get(n) {
                Some(g) => AutoScalingGroup {
                    name: n.clone(),
                    exists: true,
                    min: g.min,
                    max: g.max,
                    desired: g.desired,
                    in_service: if g.changed_at + g.boot <= now { g.desired } else { 0 },
                    remembered_min: g.tags.get(ASG_MIN_TAG).and_then(|v| v.parse().ok()),
                    remembered_desired: g.tags.get(ASG_DESIRED_TAG).and_then(|v| v.parse().ok()).filter(|n| *n > 0),
                },
                None => AutoScalingGroup::missing(n),
            })
            .collect())
    }

    /// Desired capacity must lie within min and max (EC2 Auto Scaling API reference,
    /// UpdateAutoScalingGroup: ValidationError otherwise).
    pub(super) async fn op_update_auto_scaling_group(&self, name: &str, min: u32, desired: u32) -> CloudResult<()> {
        self.enter(Op::UpdateAutoScalingGroup).await?;
        let mut s = self.lock();
        let Some(g) = s.asgs.get_mut(name) else {
            return Err(CloudError::new(
                "UpdateAutoScalingGroup",
                "ValidationError",
                format!("AutoScalingGroup name not found - {name}"),
            ));
        };
        if desired < min || desired > g.max {
            return Err(CloudError::new(
                "UpdateAutoScalingGroup",
                "ValidationError",
                format!(
                    "Desired capacity:{desired} must be between the specified min size:{min} and max size:{}",
                    g.max
                ),
            ));
        }
        if g.desired != desired {
            g.changed_at = Instant::now();
        }
        (g.min, g.desired) = (min, desired);
        Ok(())
    }

    pub(super) async fn op_tag_auto_scaling_group(&self, name: &str, tags: &[(&str, String)]) -> CloudResult<()> {
        self.enter(Op::CreateOrUpdateTags).await?;
        let mut s = self.lock();
        let g = s.asgs.get_mut(name).ok_or_else(|| CloudError::new("CreateOrUpdateTags", "ValidationError", name))?;
        for (k, v) in tags {
            g.tags.insert(k.to_string(), v.clone());
        }
        Ok(())
    }
}

impl State {
    /// Ends the database transitions that are due.
    pub(super) fn settle_databases(&mut self, now: Instant) {
        for db in self.databases.values_mut() {
            if db.until.is_some_and(|t| t <= now) {
                db.until = None;
                db.status = if db.status == "starting" { "available" } else { "stopped" }.into();
            }
        }
    }

    /// Applies the transitions whose time has come; true when one did.
    pub(super) fn advance(&mut self, now: Instant) -> bool {
        let born = self.born.unwrap_or(now);
        let mut changed = false;
        for i in self.instances.values_mut() {
            let Some(until) = i.until else { continue };
            if until > now {
                continue;
            }
            changed = true;
            i.until = None;
            match i.state {
                InstanceState::Pending if i.fails_to_boot => {
                    i.state = InstanceState::Stopped;
                    i.state_reason = Some("Client.InternalError".into());
                }
                InstanceState::Pending => {
                    i.state = InstanceState::Running;
                    i.running_since = Some(until);
                    i.launched_at = Some(self.epoch + until.duration_since(born).as_secs() as i64);
                }
                InstanceState::Stopping => {
                    i.state = InstanceState::Stopped;
                    i.state_reason = Some("Client.UserInitiatedShutdown".into());
                }
                _ => {}
            }
        }
        changed
    }
}
