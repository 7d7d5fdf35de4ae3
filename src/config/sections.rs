//! One check per resource section of a rule (`ec2`, `ecs`, `asg`, `rds`, `busy_when`): each
//! takes the raw section and returns the validated one, or an error naming the key.

use std::collections::HashSet;

use super::error::{err, ConfigError};
use super::raw::{RawAsg, RawBusyWhen, RawEc2, RawEcs, RawRds};
use super::rule::{AsgSpec, BusySignal, Ec2Resources, EcsService, RdsSpec};
use super::values::is_instance_id;

/// `ec2 = { instance_ids, hibernate }`: at least one id, each well-formed, none twice.
pub(super) fn check_ec2(key: &dyn Fn(&str) -> String, raw: RawEc2) -> Result<Ec2Resources, ConfigError> {
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
pub(super) fn check_ecs(key: &dyn Fn(&str) -> String, raw: RawEcs) -> Result<EcsService, ConfigError> {
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
pub(super) fn check_asg(key: &dyn Fn(&str) -> String, raw: RawAsg) -> Result<AsgSpec, ConfigError> {
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
pub(super) fn check_busy_when(
    key: &dyn Fn(&str) -> String,
    raw: RawBusyWhen,
    has_ec2: bool,
) -> Result<BusySignal, ConfigError> {
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
pub(super) fn check_rds(key: &dyn Fn(&str) -> String, raw: RawRds) -> Result<RdsSpec, ConfigError> {
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
