//! One observation of a rule's resources (instances, service, group, databases at once), and
//! what it says: awake or not, when started, a fingerprint, the status's resource lines. The
//! wake, the idle check and the operator's stop all look through this.

use crate::cloud::{AutoScalingGroup, Cloud, CloudError, Database, Instance, InstanceState, Service};
use crate::config::Rule;

use super::status::ResourceState;

/// What one observation of a rule's resources found.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub instances: Vec<Instance>,
    pub service: Option<Service>,
    pub asg: Option<AutoScalingGroup>,
    pub databases: Vec<Database>,
}

/// Observes a rule's resources: instances, service, group and databases at once. The wake and
/// the operator's stop both look through this.
pub async fn observe<C: Cloud>(cloud: &C, rule: &Rule) -> Result<Observed, CloudError> {
    let ec2 = async {
        match &rule.ec2 {
            Some(ec2) => cloud.instances(&ec2.instance_ids).await,
            None => Ok(Vec::new()),
        }
    };
    let ecs = async {
        match &rule.ecs {
            Some(ecs) => cloud.service(&ecs.cluster, &ecs.service).await.map(Some),
            None => Ok(None),
        }
    };
    let asg = async {
        match &rule.asg {
            Some(spec) => cloud.auto_scaling_groups(std::slice::from_ref(&spec.name)).await.map(|mut g| g.pop()),
            None => Ok(None),
        }
    };
    let rds = async {
        match &rule.rds {
            Some(spec) => cloud.databases(&spec.instances, &spec.clusters).await,
            None => Ok(Vec::new()),
        }
    };
    // Boxed: joined unboxed, four SDK futures side by side overflow a debug build's stack.
    let (instances, service, asg, databases) = tokio::join!(Box::pin(ec2), Box::pin(ecs), Box::pin(asg), Box::pin(rds));
    Ok(Observed { instances: instances?, service: service?, asg: asg?, databases: databases? })
}

impl Observed {
    /// Any of the resources runs or is on its way to running.
    pub fn awake(&self) -> bool {
        !self.running_instances().is_empty()
            || self.service.as_ref().is_some_and(|s| s.is_active() && s.desired > 0)
            || self.asg.as_ref().is_some_and(|g| g.desired > 0)
            || self.databases.iter().any(Database::running)
    }

    /// The instances that run or are starting.
    pub fn running_instances(&self) -> Vec<&Instance> {
        self.instances.iter().filter(|i| matches!(i.state, InstanceState::Running | InstanceState::Pending)).collect()
    }

    /// When the running resources were last started (EC2 LaunchTime, ECS deployment time).
    pub fn started_at(&self) -> Option<i64> {
        let service = self.service.as_ref().filter(|s| s.desired > 0).and_then(|s| s.changed_at);
        self.running_instances().iter().filter_map(|i| i.launched_at).chain(service).max()
    }

    /// What a rule and its resources look like, in a short stable string: a stop that failed
    /// for good is not tried again until this changes (a config change, an instance restarted
    /// or replaced, a service, group or database changed).
    pub fn fingerprint(&self, rule: &Rule) -> String {
        let mut text = format!("{rule:?}");
        for i in &self.instances {
            text.push_str(&format!("|{}:{}:{:?}", i.id, i.state.as_str(), i.launched_at));
        }
        if let Some(s) = &self.service {
            text.push_str(&format!("|{}:{}:{}", s.status, s.desired, s.changed_at.unwrap_or(0)));
        }
        if let Some(g) = &self.asg {
            text.push_str(&format!("|{}:{}:{}", g.exists, g.min, g.desired));
        }
        for d in &self.databases {
            text.push_str(&format!("|{}:{}", d.id, d.status));
        }
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        format!("{hash:016x}")
    }
}

/// The per-resource lines of the status.
pub fn resource_states(rule: &Rule, obs: &Observed) -> Vec<ResourceState> {
    let mut v: Vec<ResourceState> = obs
        .instances
        .iter()
        .map(|i| ResourceState { kind: "ec2".into(), id: i.id.clone(), state: i.state.as_str().to_string() })
        .collect();
    if let (Some(spec), Some(svc)) = (&rule.ecs, &obs.service) {
        let state = if !svc.is_active() {
            svc.status.to_lowercase()
        } else if svc.desired == 0 {
            "stopped".to_string()
        } else if svc.running >= svc.desired {
            format!("running ({}/{})", svc.running, svc.desired)
        } else {
            format!("starting ({}/{})", svc.running, svc.desired)
        };
        v.push(ResourceState { kind: "ecs".into(), id: format!("{}/{}", spec.cluster, spec.service), state });
    }
    for d in &obs.databases {
        v.push(ResourceState { kind: d.kind().into(), id: d.id.clone(), state: d.status.clone() });
    }
    if let Some(g) = &obs.asg {
        let state = match (g.exists, g.desired) {
            (false, _) => "missing".to_string(),
            (true, 0) => "stopped".to_string(),
            (true, n) if g.in_service >= n => format!("in service ({}/{n})", g.in_service),
            (true, n) => format!("starting ({}/{n})", g.in_service),
        };
        v.push(ResourceState { kind: "asg".into(), id: g.name.clone(), state });
    }
    v
}
