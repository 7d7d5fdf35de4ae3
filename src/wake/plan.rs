//! What a rule's resources need, decided from one observation (pure): an error, a start, a
//! wait for a stop, booting, or up.

use std::collections::HashSet;

use crate::cloud::{DatabaseState, ErrorKind, InstanceState};
use crate::config::Rule;

use super::observe::Observed;
use super::status::StepError;

/// What the resources need, decided from one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourcePlan {
    /// Cannot be woken: terminated or missing instance, missing service, failed boot.
    Broken(StepError),
    /// Start what is asleep.
    Start(Launch),
    /// Some instance is still `stopping`; it can be started once `stopped`.
    WaitForStop,
    /// Started, not yet running.
    Booting,
    /// Everything runs: target health decides from here.
    Up,
}

/// What a start does: start these stopped instances, scale the service to this count, and/or
/// set the Auto Scaling group's (min size, desired capacity).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Launch {
    pub instances: Vec<String>,
    pub scale_to: Option<u32>,
    pub asg_to: Option<(u32, u32)>,
    /// Stopped databases to start: (identifier, is a cluster).
    pub databases: Vec<(String, bool)>,
}

/// An instance the wake cannot go on with: gone, or started and stopped again by itself.
fn broken_instance(rule: &Rule, obs: &Observed, started: &HashSet<String>) -> Option<StepError> {
    for i in &obs.instances {
        match i.state {
            InstanceState::Terminated | InstanceState::ShuttingDown | InstanceState::Missing => {
                let what = if i.state == InstanceState::Missing { "does not exist" } else { "is terminated" };
                return Some(StepError {
                    operation: "DescribeInstances".into(),
                    code: if i.state == InstanceState::Missing { "InstanceMissing" } else { "InstanceTerminated" }.into(),
                    kind: ErrorKind::NotFound.as_str().into(),
                    detail: format!("instance {} {what}", i.id),
                    action: format!(
                        "autostop never recreates instances: replace {} in rule `{}` (ec2.instance_ids) and redeploy the config",
                        i.id, rule.name
                    ),
                });
            }
            InstanceState::Stopped
                if started.contains(&i.id) && i.state_reason.as_deref() == Some("Client.InternalError") =>
            {
                return Some(StepError {
                    operation: "StartInstances".into(),
                    code: "Client.InternalError".into(),
                    kind: ErrorKind::Other.as_str().into(),
                    detail: format!("instance {} was started and stopped again by itself", i.id),
                    action: "usually an encrypted EBS volume whose KMS key the caller may not use: give the autostop \
                             role kms:CreateGrant on that key, then reload this page"
                        .into(),
                });
            }
            _ => {}
        }
    }
    None
}

/// Decides what the resources need. `started` = instances this wake already started (to tell
/// "started, then stopped again" from "still asleep").
pub fn plan_resources(rule: &Rule, obs: &Observed, started: &HashSet<String>) -> ResourcePlan {
    if let Some(e) = broken_instance(rule, obs, started) {
        return ResourcePlan::Broken(e);
    }
    let mut scale_to = None;
    if let (Some(spec), Some(svc)) = (&rule.ecs, &obs.service) {
        if !svc.is_active() {
            return ResourcePlan::Broken(StepError {
                operation: "DescribeServices".into(),
                code: "ServiceNotFoundException".into(),
                kind: ErrorKind::NotFound.as_str().into(),
                detail: format!("ECS service {}/{} is {}", spec.cluster, spec.service, svc.status.to_lowercase()),
                action: format!("create the service or fix rule `{}` (ecs.cluster, ecs.service)", rule.name),
            });
        }
        if svc.desired == 0 {
            scale_to = Some(spec.desired_count.or(svc.remembered_count).unwrap_or(1));
        }
    }
    let asg_to = match asg_plan(rule, obs) {
        Ok(to) => to,
        Err(e) => return ResourcePlan::Broken(e),
    };
    if let Some(e) = broken_database(rule, obs) {
        return ResourcePlan::Broken(e);
    }
    let to_start: Vec<String> =
        obs.instances.iter().filter(|i| i.state == InstanceState::Stopped).map(|i| i.id.clone()).collect();
    let databases: Vec<(String, bool)> = obs
        .databases
        .iter()
        .filter(|d| d.state() == DatabaseState::Stopped)
        .map(|d| (d.id.clone(), d.cluster))
        .collect();
    if !to_start.is_empty() || scale_to.is_some() || asg_to.is_some() || !databases.is_empty() {
        return ResourcePlan::Start(Launch { instances: to_start, scale_to, asg_to, databases });
    }
    if obs.instances.iter().any(|i| i.state == InstanceState::Stopping)
        || obs.databases.iter().any(|d| d.state() == DatabaseState::Stopping)
    {
        return ResourcePlan::WaitForStop;
    }
    // A database is up while it serves: `available`, or busy with a backup, a modification,
    // maintenance and the like.
    if obs.instances.iter().any(|i| i.state == InstanceState::Pending)
        || obs.databases.iter().any(|d| !d.state().serves())
    {
        return ResourcePlan::Booting;
    }
    ResourcePlan::Up
}

/// A database the wake cannot go on with: it does not exist, or RDS reports a status it does
/// not leave by itself.
fn broken_database(rule: &Rule, obs: &Observed) -> Option<StepError> {
    let d = obs.databases.iter().find(|d| matches!(d.state(), DatabaseState::Missing | DatabaseState::Broken))?;
    let (what, op) = if d.cluster { ("cluster", "DescribeDBClusters") } else { ("instance", "DescribeDBInstances") };
    if d.state() == DatabaseState::Missing {
        return Some(StepError {
            operation: op.into(),
            code: if d.cluster { "DBClusterNotFoundFault" } else { "DBInstanceNotFound" }.into(),
            kind: ErrorKind::NotFound.as_str().into(),
            detail: format!("RDS {what} {} does not exist", d.id),
            action: format!("fix rule `{}` (rds.instances, rds.clusters) and redeploy the config", rule.name),
        });
    }
    let action = match d.status.as_str() {
        "storage-full" => "it has run out of storage: raise its allocated storage (aws rds modify-db-instance \
                           --allocated-storage), then reload this page"
            .to_string(),
        s if s.starts_with("inaccessible-encryption-credentials") => "RDS cannot use its KMS key: enable the key \
             again or give RDS access to it, then reload this page (RDS user guide, encryption)"
            .to_string(),
        s if s.starts_with("incompatible-") => format!(
            "its {} does not fit: fix it in RDS (its events say \
             how), then reload this page",
            s.trim_start_matches("incompatible-").replace('-', " ")
        ),
        "deleting" | "delete-precheck" => {
            format!("it is being deleted: restore it, or remove it from rule `{}`", rule.name)
        }
        s => format!("RDS reports it {s} and does not recover it by itself: see its events in the RDS console"),
    };
    Some(StepError {
        operation: op.into(),
        code: d.status.clone(),
        kind: ErrorKind::InvalidState.as_str().into(),
        detail: format!("RDS {what} {} is {}", d.id, d.status),
        action,
    })
}

/// An Auto Scaling group at 0 is restored: min size as remembered (else 0), desired capacity as
/// configured, else as remembered, else 1, within the group's max size.
fn asg_plan(rule: &Rule, obs: &Observed) -> Result<Option<(u32, u32)>, StepError> {
    let (Some(spec), Some(g)) = (&rule.asg, &obs.asg) else { return Ok(None) };
    if !g.exists {
        return Err(StepError {
            operation: "DescribeAutoScalingGroups".into(),
            code: "AutoScalingGroupNotFound".into(),
            kind: ErrorKind::NotFound.as_str().into(),
            detail: format!("Auto Scaling group {} does not exist", spec.name),
            action: format!("create the group or fix rule `{}` (asg.name)", rule.name),
        });
    }
    if g.desired > 0 {
        return Ok(None);
    }
    let desired = spec.desired.or(g.remembered_desired).unwrap_or(1);
    if desired > g.max {
        return Err(StepError {
            operation: "UpdateAutoScalingGroup".into(),
            code: "ValidationError".into(),
            kind: ErrorKind::Other.as_str().into(),
            detail: format!("Auto Scaling group {} has max size {}, below the {desired} to restore", spec.name, g.max),
            action: format!("raise the group's max size, or lower asg.desired of rule `{}`", rule.name),
        });
    }
    Ok(Some((g.remembered_min.unwrap_or(0).min(desired), desired)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Instance, Service};
    use crate::config::{Ec2Resources, EcsService};
    use std::time::Duration;

    fn rule() -> Rule {
        Rule {
            name: "api".into(),
            hosts: vec!["api.x".into()],
            target_group_arn: Some("tg".into()),
            idle: Duration::from_secs(60),
            ec2: Some(Ec2Resources { instance_ids: vec!["i-1".into(), "i-2".into()], hibernate: false }),
            ecs: Some(EcsService { cluster: "dev".into(), service: "web".into(), desired_count: None }),
            ..Rule::empty()
        }
    }

    fn inst(id: &str, state: InstanceState) -> Instance {
        Instance { state, ..Instance::missing(id) }
    }

    fn svc(desired: u32, remembered: Option<u32>) -> Option<Service> {
        Some(Service { desired, running: desired, remembered_count: remembered, ..Service::missing("dev", "web") })
            .map(|s| Service { status: "ACTIVE".into(), ..s })
    }

    fn plan(instances: &[(&str, InstanceState)], service: Option<Service>) -> ResourcePlan {
        let obs = Observed {
            instances: instances.iter().map(|(i, s)| inst(i, *s)).collect(),
            service,
            asg: None,
            databases: vec![],
        };
        plan_resources(&rule(), &obs, &HashSet::new())
    }

    use InstanceState::*;

    #[test]
    fn stopped_instances_start_and_service_scales_to_remembered_count() {
        assert_eq!(
            plan(&[("i-1", Stopped), ("i-2", Running)], svc(0, Some(3))),
            ResourcePlan::Start(Launch { instances: vec!["i-1".into()], scale_to: Some(3), ..Launch::default() })
        );
        assert_eq!(
            plan(&[("i-1", Running), ("i-2", Running)], svc(0, None)),
            ResourcePlan::Start(Launch { instances: vec![], scale_to: Some(1), asg_to: None, databases: vec![] }),
            "no remembered count -> 1"
        );
        let mut r = rule();
        r.ecs.as_mut().unwrap().desired_count = Some(2);
        let obs = Observed {
            instances: vec![inst("i-1", Running), inst("i-2", Running)],
            service: svc(0, Some(5)),
            asg: None,
            databases: vec![],
        };
        assert_eq!(
            plan_resources(&r, &obs, &HashSet::new()),
            ResourcePlan::Start(Launch { instances: vec![], scale_to: Some(2), asg_to: None, databases: vec![] }),
            "configured count wins"
        );
    }

    #[test]
    fn stopping_waits_pending_boots_running_is_up() {
        assert_eq!(plan(&[("i-1", Stopping), ("i-2", Running)], svc(1, None)), ResourcePlan::WaitForStop);
        assert_eq!(plan(&[("i-1", Pending), ("i-2", Running)], svc(1, None)), ResourcePlan::Booting);
        assert_eq!(plan(&[("i-1", Running), ("i-2", Running)], svc(1, None)), ResourcePlan::Up);
        assert_eq!(
            plan(&[("i-1", Stopping), ("i-2", Stopped)], svc(1, None)),
            ResourcePlan::Start(Launch {
                instances: vec!["i-2".into()],
                scale_to: None,
                asg_to: None,
                databases: vec![]
            }),
            "the stopped one starts while the other finishes stopping"
        );
    }

    #[test]
    fn terminated_missing_and_inactive_are_broken() {
        for state in [Terminated, ShuttingDown, Missing] {
            match plan(&[("i-1", Running), ("i-2", state)], svc(1, None)) {
                ResourcePlan::Broken(e) => assert!(e.detail.contains("i-2"), "{e:?}"),
                other => panic!("{state:?}: {other:?}"),
            }
        }
        let gone = Some(Service::missing("dev", "web"));
        assert!(matches!(plan(&[("i-1", Running), ("i-2", Running)], gone), ResourcePlan::Broken(_)));
    }

    #[test]
    fn started_then_stopped_again_names_kms() {
        let obs = Observed {
            instances: vec![
                Instance {
                    state: Stopped,
                    state_reason: Some("Client.InternalError".into()),
                    ..Instance::missing("i-1")
                },
                inst("i-2", Running),
            ],
            service: svc(1, None),
            asg: None,
            databases: vec![],
        };
        let started: HashSet<String> = ["i-1".to_string()].into();
        match plan_resources(&rule(), &obs, &started) {
            ResourcePlan::Broken(e) => assert!(e.action.contains("kms:CreateGrant")),
            other => panic!("{other:?}"),
        }
        // Not started by this wake: just asleep.
        assert!(matches!(plan_resources(&rule(), &obs, &HashSet::new()), ResourcePlan::Start(_)));
    }

    fn with_database(status: &str) -> ResourcePlan {
        let mut r = rule();
        r.ecs = None;
        r.rds = Some(crate::config::RdsSpec { instances: vec!["db".into()], clusters: vec![] });
        let obs = Observed {
            instances: vec![inst("i-1", Running), inst("i-2", Running)],
            service: None,
            asg: None,
            databases: vec![crate::cloud::Database {
                status: status.into(),
                ..crate::cloud::Database::missing("db", false)
            }],
        };
        plan_resources(&r, &obs, &HashSet::new())
    }

    /// RDS user guide, "Viewing instance status": a database serves while backing up, being
    /// modified or maintained; some statuses it does not leave by itself.
    #[test]
    fn a_serving_database_is_up_a_terminal_one_is_an_error_saying_what_to_do() {
        for serving in ["available", "backing-up", "modifying", "configuring-enhanced-monitoring", "maintenance"] {
            assert_eq!(with_database(serving), ResourcePlan::Up, "{serving}");
        }
        for starting in ["starting", "rebooting"] {
            assert_eq!(with_database(starting), ResourcePlan::Booting, "{starting}");
        }
        for (terminal, says) in [
            ("storage-full", "allocated storage"),
            ("inaccessible-encryption-credentials", "KMS key"),
            ("incompatible-parameters", "parameters does not fit"),
            ("failed", "does not recover it by itself"),
        ] {
            match with_database(terminal) {
                ResourcePlan::Broken(e) => {
                    assert_eq!(e.code, terminal);
                    assert!(e.action.contains(says) && e.detail.contains("db is"), "{e:?}");
                }
                other => panic!("{terminal}: {other:?}"),
            }
        }
    }
}
