//! Activity per rule: the newest minute in which its target group served requests
//! (`AWS/ApplicationELB` `RequestCount`, per target group and load balancer) or its `busy_when`
//! signal crossed the threshold, all read in batched `GetMetricData` calls (pure: the queries,
//! and the reading of their series).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::cloud::alb::{load_balancer_dimension, target_group_dimension};
use crate::cloud::{MetricQuery, MetricSeries};
use crate::config::{BusySignal, Config, Rule};
use crate::routing::ListenerView;

/// How far beyond the longest idle time activity is read, for CloudWatch's lag.
pub const LAG_MARGIN: Duration = Duration::from_secs(10 * 60);

/// Which query ids belong to a rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleQueries {
    pub requests: Vec<String>,
    /// Busy-signal query ids, with the instance each EC2 query is about.
    pub busy: Vec<(String, Option<String>)>,
}

/// The `LoadBalancer` dimensions a rule's requests are counted under: the load balancer its
/// standing rules are on (a target group serves one), from the listed listeners.
pub fn homes_of(views: &[ListenerView]) -> HashMap<String, Vec<String>> {
    let mut homes: HashMap<String, Vec<String>> = HashMap::new();
    for v in views {
        let lb = load_balancer_dimension(&v.listener);
        for rule in v.homed.iter().flatten() {
            let lbs = homes.entry(rule.clone()).or_default();
            if !lbs.contains(&lb) {
                lbs.push(lb.clone());
            }
        }
    }
    homes
}

/// Every metric query of every rule, and which ids are whose. One `RequestCount` query per load
/// balancer the rule is homed on (`homes`; every listener's, for a rule with no home), plus the
/// busy signal: one query per instance for EC2 metrics, one per service for ECS CPU.
pub fn build_queries(config: &Config, homes: &HashMap<String, Vec<String>>) -> (Vec<MetricQuery>, Vec<RuleQueries>) {
    let mut all: Vec<String> = config.listener_arns.iter().map(|l| load_balancer_dimension(l)).collect();
    all.dedup();
    let mut queries = Vec::new();
    let mut per_rule = Vec::with_capacity(config.rules.len());
    for (i, rule) in config.rules.iter().enumerate() {
        let mut rq = RuleQueries::default();
        let lbs = homes.get(&rule.name).filter(|l| !l.is_empty()).unwrap_or(&all);
        for query in request_queries(i, rule, lbs) {
            rq.requests.push(query.id.clone());
            queries.push(query);
        }
        let instances = rule.ec2.as_ref().map(|e| e.instance_ids.as_slice()).unwrap_or(&[]);
        match (rule.busy_when, &rule.ecs) {
            (Some(BusySignal::NetworkPacketsIn(_)), _) => {
                for (k, id) in instances.iter().enumerate() {
                    queries.push(ec2_query(format!("r{i}_n{k}"), "NetworkPacketsIn", id, "Sum"));
                    rq.busy.push((format!("r{i}_n{k}"), Some(id.clone())));
                }
            }
            (Some(BusySignal::CpuPercent(_)), Some(ecs)) => {
                queries.push(MetricQuery {
                    id: format!("r{i}_c"),
                    namespace: "AWS/ECS",
                    metric: "CPUUtilization",
                    dimensions: vec![("ClusterName", ecs.cluster.clone()), ("ServiceName", ecs.service.clone())],
                    stat: "Average",
                });
                rq.busy.push((format!("r{i}_c"), None));
            }
            (Some(BusySignal::CpuPercent(_)), None) => {
                for (k, id) in instances.iter().enumerate() {
                    queries.push(ec2_query(format!("r{i}_c{k}"), "CPUUtilization", id, "Average"));
                    rq.busy.push((format!("r{i}_c{k}"), Some(id.clone())));
                }
            }
            (None, _) => {}
        }
        per_rule.push(rq);
    }
    (queries, per_rule)
}

/// `RequestCount` of the rule's target group under each of `lbs` (none for a rule without a
/// target group, a dependency: it has no requests of its own).
fn request_queries(i: usize, rule: &Rule, lbs: &[String]) -> Vec<MetricQuery> {
    let Some(tg) = rule.target_group_arn.as_deref().map(target_group_dimension) else { return Vec::new() };
    let each = lbs.iter().enumerate().map(|(j, lb)| MetricQuery {
        id: format!("r{i}_l{j}"),
        namespace: "AWS/ApplicationELB",
        metric: "RequestCount",
        dimensions: vec![("TargetGroup", tg.clone()), ("LoadBalancer", lb.clone())],
        stat: "Sum",
    });
    each.collect()
}

fn ec2_query(id: String, metric: &'static str, instance: &str, stat: &'static str) -> MetricQuery {
    MetricQuery { id, namespace: "AWS/EC2", metric, dimensions: vec![("InstanceId", instance.to_string())], stat }
}

/// The end of the newest minute with activity: requests > 0, or the busy signal over its
/// threshold. EC2 metrics under basic monitoring come as one datapoint per 5 minutes
/// (`period(instance)` says how many seconds a datapoint covers): a packet count is turned into a
/// per-minute rate before it is compared, and the activity is dated within its period, at the
/// end of each minute it covers. Packets are summed over the rule's instances per minute.
pub fn last_activity(
    rule: &Rule,
    rq: &RuleQueries,
    series: &HashMap<&str, &MetricSeries>,
    period: &dyn Fn(&str) -> i64,
    now: i64,
) -> Option<i64> {
    let points = |ids: &[String]| -> Vec<(i64, f64)> {
        ids.iter().filter_map(|id| series.get(id.as_str())).flat_map(|s| s.points.iter().copied()).collect()
    };
    let requests = points(&rq.requests).iter().filter(|(_, v)| *v > 0.0).map(|(t, _)| t + 60).max();
    // Per minute: the signal, spread over the minutes each datapoint covers.
    let mut per_minute: BTreeMap<i64, f64> = BTreeMap::new();
    for (id, instance) in &rq.busy {
        let secs = instance.as_deref().map(period).unwrap_or(60).max(60);
        let minutes = secs / 60;
        for (t, v) in series.get(id.as_str()).map(|s| s.points.as_slice()).unwrap_or_default() {
            for m in 0..minutes {
                let value = match rule.busy_when {
                    Some(BusySignal::NetworkPacketsIn(_)) => v / minutes as f64,
                    _ => *v,
                };
                let slot = per_minute.entry(t + 60 * m).or_default();
                *slot = match rule.busy_when {
                    Some(BusySignal::NetworkPacketsIn(_)) => *slot + value,
                    _ => slot.max(value),
                };
            }
        }
    }
    let threshold = match rule.busy_when {
        Some(BusySignal::NetworkPacketsIn(n)) => n as f64,
        Some(BusySignal::CpuPercent(p)) => p,
        None => f64::INFINITY,
    };
    let busy = per_minute.into_iter().filter(|(_, v)| *v > threshold).map(|(t, _)| t + 60).max();
    requests.max(busy).map(|t| t.min(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target group serves one load balancer, so a rule's `RequestCount` is read with its own
    /// load balancer's dimension only; a rule with no known home, with every listener's.
    #[test]
    fn requests_are_read_under_the_rules_own_load_balancer() {
        let dev =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
        let stg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/staging/7c1b2d3e4f5a6b7c/0a1b2c3d";
        let tg = |n: &str| format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{n}/1");
        let config = Config::from_toml(&format!(
            "listener_arns = [\"{dev}\", \"{stg}\"]\n\
             [[rules]]\nname = \"api\"\nhosts = [\"api.x.com\"]\ntarget_group_arn = \"{}\"\necs = {{ cluster = \"c\", service = \"api\" }}\n\
             [[rules]]\nname = \"web\"\nhosts = [\"web.x.com\"]\ntarget_group_arn = \"{}\"\necs = {{ cluster = \"c\", service = \"web\" }}\n",
            tg("api"),
            tg("web")
        ))
        .unwrap();
        let homes = HashMap::from([("api".to_string(), vec!["app/staging/7c1b2d3e4f5a6b7c".to_string()])]);
        let (queries, per_rule) = build_queries(&config, &homes);
        let lbs = |ids: &[String]| -> Vec<String> {
            let q = ids.iter().map(|id| queries.iter().find(|q| &q.id == id).unwrap());
            q.map(|q| q.dimensions.iter().find(|d| d.0 == "LoadBalancer").unwrap().1.clone()).collect()
        };
        assert_eq!(lbs(&per_rule[0].requests), vec!["app/staging/7c1b2d3e4f5a6b7c"]);
        assert_eq!(lbs(&per_rule[1].requests), vec!["app/dev/50dc6c495c0c9188", "app/staging/7c1b2d3e4f5a6b7c"]);
    }

    #[test]
    fn activity_in_the_current_minute_is_dated_no_later_than_now() {
        let rule = Rule {
            name: "api".into(),
            hosts: vec!["api.x.com".into()],
            target_group_arn: Some("tg".into()),
            idle: Duration::from_secs(300),
            ..Rule::empty()
        };
        let rq = RuleQueries { requests: vec!["r".into()], busy: vec![] };
        let series = MetricSeries { id: "r".into(), points: vec![(9_960, 3.0)] };
        let by_id: HashMap<&str, &MetricSeries> = [("r", &series)].into();
        assert_eq!(last_activity(&rule, &rq, &by_id, &|_| 60, 10_000), Some(10_000), "not 10,020");
        assert_eq!(last_activity(&rule, &rq, &by_id, &|_| 60, 20_000), Some(10_020));
    }
}
