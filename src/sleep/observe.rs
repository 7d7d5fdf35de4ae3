//! What one idle check reads, in batches (the state items, instances, services, groups,
//! databases, the listeners and their rules, the metrics), and each rule's facts for the
//! decision as that observation shows them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::cloud::{
    AutoScalingGroup, Cloud, CloudError, Database, Instance, ListenerRule, MetricSeries, RuleState, Service,
};
use crate::config::{Config, Rule};
use crate::routing::{self as routes, ListenerView, Route};
use crate::state::intent::intent;
use crate::state::Store;
use crate::wake::Observed;

use super::activity::{build_queries, homes_of, last_activity, RuleQueries, LAG_MARGIN};
use super::decide::{decide, Facts};
use super::report::RuleReport;

/// Everything one idle check reads, in batches: the state items, instances, services, the
/// listeners and their rules, and the metrics.
pub(super) struct Seen {
    pub(super) states: HashMap<String, RuleState>,
    pub(super) instances: HashMap<String, Instance>,
    pub(super) services: HashMap<(String, String), Service>,
    pub(super) asgs: HashMap<String, AutoScalingGroup>,
    /// RDS databases by (identifier, is a cluster).
    pub(super) databases: HashMap<(String, bool), Database>,
    pub(super) views: Vec<ListenerView>,
    pub(super) series: Vec<MetricSeries>,
    pub(super) per_rule: Vec<RuleQueries>,
    pub(super) window: Duration,
}

pub(super) async fn observe<C: Cloud>(cloud: &C, config: &Config, now: i64) -> Result<Seen, CloudError> {
    let states: HashMap<String, RuleState> = match Store::of(cloud, config).load_all().await {
        Ok(v) => v.into_iter().map(|s| (s.rule.clone(), s)).collect(),
        Err(e) => {
            tracing::warn!(code = %e.code, table = %config.state_table, "state table unreadable; deciding from AWS alone");
            HashMap::new()
        }
    };
    let mut ids: Vec<String> =
        config.rules.iter().filter_map(|r| r.ec2.as_ref()).flat_map(|e| e.instance_ids.clone()).collect();
    ids.sort();
    ids.dedup();
    let instances: HashMap<String, Instance> = if ids.is_empty() {
        HashMap::new()
    } else {
        cloud.instances(&ids).await?.into_iter().map(|i| (i.id.clone(), i)).collect()
    };
    let mut by_cluster: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ecs in config.rules.iter().filter_map(|r| r.ecs.as_ref()) {
        by_cluster.entry(&ecs.cluster).or_default().push(ecs.service.clone());
    }
    let mut services: HashMap<(String, String), Service> = HashMap::new();
    for (cluster, names) in by_cluster {
        for s in cloud.services(cluster, &names).await? {
            services.insert((cluster.to_string(), s.name.clone()), s);
        }
    }
    let mut names: Vec<String> = config.rules.iter().filter_map(|r| r.asg.as_ref()).map(|a| a.name.clone()).collect();
    names.sort();
    names.dedup();
    let asgs: HashMap<String, AutoScalingGroup> = if names.is_empty() {
        HashMap::new()
    } else {
        cloud.auto_scaling_groups(&names).await?.into_iter().map(|g| (g.name.clone(), g)).collect()
    };
    let databases = observe_databases(cloud, config).await?;
    let views = routes::views(cloud, config).await?;
    let longest = config.rules.iter().map(|r| r.idle).max().unwrap_or(config.idle);
    let window = longest + LAG_MARGIN;
    let start = now - window.as_secs() as i64;
    let start = start - start.rem_euclid(60);
    let (queries, per_rule) = build_queries(config, &homes_of(&views));
    let series = if queries.is_empty() { Vec::new() } else { cloud.metric_data(&queries, start, now).await? };
    Ok(Seen { states, instances, services, asgs, databases, views, series, per_rule, window })
}

/// Every configured database, in one DescribeDBInstances and one DescribeDBClusters.
async fn observe_databases<C: Cloud>(
    cloud: &C,
    config: &Config,
) -> Result<HashMap<(String, bool), Database>, CloudError> {
    let specs = config.rules.iter().filter_map(|r| r.rds.as_ref());
    let (mut instances, mut clusters): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for spec in specs {
        instances.extend(spec.instances.iter().cloned());
        clusters.extend(spec.clusters.iter().cloned());
    }
    for ids in [&mut instances, &mut clusters] {
        ids.sort();
        ids.dedup();
    }
    if instances.is_empty() && clusters.is_empty() {
        return Ok(HashMap::new());
    }
    let found = cloud.databases(&instances, &clusters).await?;
    Ok(found.into_iter().map(|d| ((d.id.clone(), d.cluster), d)).collect())
}

/// One rule's decision and what acting on it needs.
pub(super) struct Decision {
    pub(super) report: RuleReport,
    pub(super) awake: bool,
    pub(super) state: Option<RuleState>,
    pub(super) plan: Observed,
}

/// Lookups built once per idle check: metric series by id, standing rules by owner.
pub(super) struct Index<'a> {
    pub(super) series: HashMap<&'a str, &'a MetricSeries>,
    standing: HashMap<&'a str, Vec<&'a ListenerRule>>,
}

impl Seen {
    pub(super) fn index(&self) -> Index<'_> {
        let mut standing: HashMap<&str, Vec<&ListenerRule>> = HashMap::new();
        for r in self.views.iter().flat_map(|v| v.rules.iter()) {
            if let Some(owner) = r.owner.as_deref() {
                standing.entry(owner).or_default().push(r);
            }
        }
        Index { series: self.series.iter().map(|s| (s.id.as_str(), s)).collect(), standing }
    }

    /// Whether each rule is awake, and its own last activity, in config order: a dependency's
    /// decision reads its dependents'.
    pub(super) fn own(&self, config: &Config, index: &Index, now: i64) -> Vec<(bool, Option<i64>)> {
        let period = |id: &str| self.instances.get(id).map(Instance::metric_period).unwrap_or(60);
        config
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let activity = last_activity(rule, &self.per_rule[i], &index.series, &period, now);
                (self.observed(rule).awake(), activity)
            })
            .collect()
    }

    /// The rule's resources as this check's batched observation saw them.
    fn observed(&self, rule: &Rule) -> Observed {
        let ids = rule.ec2.iter().flat_map(|e| e.instance_ids.iter());
        let databases = rule.rds.iter().flat_map(|spec| {
            let instances = spec.instances.iter().map(|i| (i.clone(), false));
            instances.chain(spec.clusters.iter().map(|c| (c.clone(), true)))
        });
        Observed {
            instances: ids.filter_map(|id| self.instances.get(id)).cloned().collect(),
            service: rule
                .ecs
                .as_ref()
                .and_then(|e| self.services.get(&(e.cluster.clone(), e.service.clone())))
                .cloned(),
            asg: rule.asg.as_ref().and_then(|a| self.asgs.get(&a.name)).cloned(),
            databases: databases.filter_map(|k| self.databases.get(&k)).cloned().collect(),
        }
    }

    pub(super) fn decide(
        &self,
        config: &Config,
        index: &Index,
        own: &[(bool, Option<i64>)],
        i: usize,
        now: i64,
    ) -> Decision {
        let rule = &config.rules[i];
        let observed = self.observed(rule);
        let dependents = config.dependents(&rule.name);
        let ours: &[&ListenerRule] = index.standing.get(rule.name.as_str()).map(Vec::as_slice).unwrap_or_default();
        let app_routes = ours.iter().filter(|r| routes::route_of(r, rule.app_group()) == Route::App).count();
        let facts = Facts {
            now,
            idle: rule.idle,
            window: self.window,
            lag: config.metrics_lag,
            // A dependency is in use while its dependents are.
            last_activity: dependents.iter().map(|j| own[*j].1).chain([own[i].1]).max().flatten(),
            state: self.states.get(&rule.name),
            awake: own[i].0,
            started_at: observed.started_at(),
            app_routes,
            fingerprint: observed.fingerprint(rule),
            intent: intent(rule, self.states.get(&rule.name), now),
            needed_by: dependents.iter().find(|j| own[**j].0).map(|j| config.rules[*j].name.clone()),
        };
        let (action, reason, idle_for) = decide(&facts);
        let report = RuleReport {
            rule: rule.name.clone(),
            action,
            reason,
            last_activity: facts.last_activity,
            idle_for_seconds: idle_for,
            idle_seconds: rule.idle.as_secs(),
            listener_rules: ours.len(),
            outcome: "nothing".into(),
            error: None,
        };
        Decision { report, awake: facts.awake, state: facts.state.cloned(), plan: observed }
    }
}
