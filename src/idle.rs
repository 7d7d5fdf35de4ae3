//! The idle check: read activity, decide (pure), and put idle rules to sleep in order.
//!
//! Activity per rule is the newest minute in which its target group served requests
//! (`AWS/ApplicationELB` `RequestCount`, per target group and load balancer) or its `busy_when`
//! signal crossed the threshold, all read in batched `GetMetricData` calls. A rule is idle when
//! `now - max(last activity, last wake, ready, resources started) >= idle`. Timestamps, not "any
//! request in the last N minutes": CloudWatch lags 1-3 minutes, so the window reaches back
//! [`LAG_MARGIN`] beyond the longest idle time.
//!
//! Every run also repairs drift through the one reconciler ([`crate::routing`]): missing standing
//! rules are created, wrong hosts, priorities or actions corrected, a standing rule that forwards
//! to the app of a stopped rule is switched back, and our rules for rules that left the config
//! are removed.
//!
//! The stop ([`stop_rule`]) is ordered so no request is ever routed to a target that is going
//! away: claim `stopping` (a conditional write; a wake that moved the version wins) -> switch the
//! rule's standing rules back to the Lambda -> tag and scale ECS to 0 / StopInstances -> record
//! `stopped`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::cloud::alb::{load_balancer_dimension, target_group_dimension};
use crate::cloud::{
    AutoScalingGroup, Cloud, CloudError, Database, ErrorKind, Instance, ListenerRule, MetricQuery, MetricSeries,
    RuleState, Service, ASG_DESIRED_TAG, ASG_MIN_TAG, DESIRED_COUNT_TAG,
};
use crate::config::Config;
use crate::routing::{self as routes, ListenerView, Route, Want};
use crate::telemetry::emf;

use crate::config::{BusySignal, Rule};
use crate::state::intent::{intent, Intent};
use crate::state::{transition, Phase, Store, Written};
use crate::wake::{self, Cause, Observed, Waker, STATUS_TTL};

/// How far beyond the longest idle time activity is read, for CloudWatch's lag.
pub const LAG_MARGIN: Duration = Duration::from_secs(10 * 60);
// CloudWatch publishes ALB metrics 1-3 minutes late, and a minute without requests has no
// datapoint at all, so "no data yet" looks like "no traffic". Idle time is therefore counted up
// to `metrics_lag` ago (config, default 3m), the newest moment CloudWatch can vouch for: a rule
// stops up to that much after its idle time, and never under users whose requests CloudWatch has
// not shown yet.

/// Which query ids belong to a rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleQueries {
    pub requests: Vec<String>,
    /// Busy-signal query ids, with the instance each EC2 query is about.
    pub busy: Vec<(String, Option<String>)>,
}

/// Every metric query of every rule, and which ids are whose. One `RequestCount` query per load
/// balancer the listeners belong to, plus the busy signal: one query per instance for EC2
/// metrics, one per service for ECS CPU.
pub fn build_queries(config: &Config) -> (Vec<MetricQuery>, Vec<RuleQueries>) {
    let mut lbs: Vec<String> = config.listener_arns.iter().map(|l| load_balancer_dimension(l)).collect();
    lbs.dedup();
    let mut queries = Vec::new();
    let mut per_rule = Vec::with_capacity(config.rules.len());
    for (i, rule) in config.rules.iter().enumerate() {
        let mut rq = RuleQueries::default();
        // A rule without a target group (a dependency) has no requests of its own.
        let tg = rule.target_group_arn.as_deref().map(target_group_dimension);
        for (j, (tg, lb)) in tg.iter().flat_map(|tg| lbs.iter().map(move |lb| (tg, lb))).enumerate() {
            let id = format!("r{i}_l{j}");
            queries.push(MetricQuery {
                id: id.clone(),
                namespace: "AWS/ApplicationELB",
                metric: "RequestCount",
                dimensions: vec![("TargetGroup", tg.clone()), ("LoadBalancer", lb.clone())],
                stat: "Sum",
            });
            rq.requests.push(id);
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

/// What the idle check does with a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Awake and in use (or woken recently).
    Keep,
    /// Awake and idle: stop it.
    Stop,
    /// Asleep, but a standing rule still forwards to the app: switch it back to the Lambda.
    SwitchBack,
    /// Asleep, and the state says otherwise (a stop that did not finish recording, resources
    /// stopped by hand): record `stopped`.
    FinishStop,
    /// Asleep, nothing to do.
    Asleep,
    /// Awake, but the last stop failed in a way retrying cannot fix (see `last_error`).
    StopFailed,
    /// Its schedule or an override wants it running: start it (or finish its wake).
    Start,
}

impl Action {
    pub fn mutates(self) -> bool {
        !matches!(self, Action::Keep | Action::Asleep | Action::StopFailed)
    }
}

/// Everything the decision needs about one rule.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: i64,
    pub idle: Duration,
    /// How far back activity was read.
    pub window: Duration,
    /// How late CloudWatch shows activity (`metrics_lag`).
    pub lag: Duration,
    pub last_activity: Option<i64>,
    pub state: Option<&'a RuleState>,
    /// Any instance running or pending, or the service's desired count above 0.
    pub awake: bool,
    /// When the running resources were last started (EC2 LaunchTime, ECS deployment time).
    pub started_at: Option<i64>,
    /// Standing rules of this rule that forward to the app, over all listeners.
    pub app_routes: usize,
    /// [`fingerprint`] of the rule and its resources now.
    pub fingerprint: String,
    /// What its override or schedule wants ([`crate::intent`]).
    pub intent: Intent,
    /// An awake rule that depends on this one (directly or through others): while there is
    /// one, this rule runs, whatever its idleness, schedule or override says.
    pub needed_by: Option<String>,
}

/// The decision, its reason, and for how long the rule has been idle (seconds), if known.
pub fn decide(f: &Facts) -> (Action, String, Option<i64>) {
    if let Some(dependent) = &f.needed_by {
        let why = format!("`{dependent}` depends on it and is awake");
        return match f.awake {
            true => (Action::Keep, why, None),
            false if f.app_routes > 0 => {
                let (action, why) = decide_stopped(f);
                (action, why, None)
            }
            false => (Action::Start, why, None),
        };
    }
    if !f.awake {
        let (action, why) = decide_stopped(f);
        return (action, why, None);
    }
    if let Some(s) = f.state.filter(|s| s.stop_error_fingerprint.as_deref() == Some(f.fingerprint.as_str())) {
        let why = s.last_error.as_deref().unwrap_or("the last stop failed");
        return (
            Action::StopFailed,
            format!("not stopping again until the config or the resources change: {why}"),
            None,
        );
    }
    match &f.intent {
        Intent::Asleep { why, .. } => (Action::Stop, why.clone(), None),
        Intent::Awake { why } | Intent::Prewarm { why, .. } => {
            // A wake the idle check began (or a request left) is followed until it is ready.
            let unfinished =
                f.state.is_some_and(|s| matches!(s.phase, Phase::Starting | Phase::WaitingForHealth | Phase::Routing));
            match unfinished {
                true => (Action::Start, format!("{why}; finishing the wake"), None),
                false => (Action::Keep, why.clone(), None),
            }
        }
        Intent::OnDemand => decide_idle(f),
    }
}

/// A rule whose resources are all stopped.
fn decide_stopped(f: &Facts) -> (Action, String) {
    if f.app_routes > 0 {
        return (
            Action::SwitchBack,
            format!("resources are stopped but {} standing rule(s) still forward to the app", f.app_routes),
        );
    }
    if let Intent::Awake { why } | Intent::Prewarm { why, .. } = &f.intent {
        return (Action::Start, why.clone());
    }
    // Anything but `stopped` on a rule whose resources are all stopped is a record left
    // behind (a stop that did not record, a wake that never finished, a stop by hand).
    if f.state.is_some_and(|s| matches!(s.phase, Phase::Stopping | Phase::Ready | Phase::Error | Phase::Starting)) {
        return (Action::FinishStop, "resources are stopped; recording the stop".into());
    }
    (Action::Asleep, "resources are stopped".into())
}

/// An awake rule on demand: stopped once idle for its idle time.
fn decide_idle(f: &Facts) -> (Action, String, Option<i64>) {
    let state = f.state;
    let reference = [f.last_activity, state.and_then(|s| s.last_wake_at), state.and_then(|s| s.ready_at), f.started_at]
        .into_iter()
        .flatten()
        .max();
    let idle = f.idle.as_secs() as i64;
    let (idle_for, why) = match reference {
        Some(r) => {
            let lag = f.lag.as_secs() as i64;
            let idle_for = (f.now - lag - r).max(0);
            let ago = (f.now - r).max(0);
            (idle_for, format!("last activity, wake or start {ago}s ago; idle for {idle_for}s, not counting the last {lag}s CloudWatch may not show yet"))
        }
        // Nothing in the whole window, and no record of a wake or start.
        None => (
            f.window.as_secs() as i64,
            format!("no activity in the last {}s and no record of a wake", f.window.as_secs()),
        ),
    };
    // Running, yet recorded as stopped by autostop: something else started it. RDS does so to a
    // database stopped for 7 days (RDS user guide, "Stopping an Amazon RDS DB instance
    // temporarily"); the idle check stops it again once idle, and says why.
    let why = match state.filter(|s| s.phase == Phase::Stopped) {
        Some(_) => format!("running although recorded stopped (started outside autostop; RDS starts a database again after 7 stopped days); {why}"),
        None => why,
    };
    if idle_for >= idle {
        (Action::Stop, format!("idle: {why} (idle time {idle}s)"), Some(idle_for))
    } else {
        (Action::Keep, format!("in use: {why} (idle time {idle}s)"), Some(idle_for))
    }
}

/// One line of the idle check's report (and of its log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReport {
    pub rule: String,
    pub action: Action,
    pub reason: String,
    pub last_activity: Option<i64>,
    pub idle_for_seconds: Option<i64>,
    pub idle_seconds: u64,
    /// Standing rules of this rule over all listeners when the check began.
    pub listener_rules: usize,
    /// What happened: `done`, `dry_run`, `backed_off`, `partial`, `failed`, `nothing`.
    pub outcome: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleReport {
    pub dry_run: bool,
    pub now: i64,
    pub rules: Vec<RuleReport>,
    /// Drift repair of the standing rules, per listener (planned only, in a dry run).
    pub standing_rules: Vec<routes::Report>,
    /// Why the standing rules could not be repaired, if they could not.
    pub standing_rules_error: Option<String>,
}

/// How an ordered stop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    /// Someone else moved the state first (a wake, another checker): nothing was touched.
    BackedOff(String),
    /// Some resources did not stop; the state says which and the next run finishes the job.
    Partial(String),
}

/// Runs the idle check over every rule. `Err` only when AWS could not be observed; then nothing
/// was changed.
/// How many rules the idle check acts on at once.
pub const STOP_PARALLELISM: usize = 8;
/// Time kept back from the invocation's deadline: no stop begins in it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// `time_left`: what remains of the invocation (None: no limit, as in the CLI). The waker
/// starts the rules whose schedule or override wants them running ([`crate::intent`]).
pub async fn idle_check<C: Cloud>(
    waker: &Waker<C>,
    dry_run: bool,
    time_left: Option<Duration>,
) -> Result<IdleReport, CloudError> {
    let (cloud, config) = (waker.cloud(), waker.config());
    let now = cloud.now();
    let mut seen = observe(cloud, config, now).await?;
    let decisions: Vec<Decision> = {
        let index = seen.index();
        let own = seen.own(config, &index, now);
        (0..config.rules.len()).map(|i| seen.decide(config, &index, &own, i, now)).collect()
    };

    // Drift repair first: standing rules created or corrected; those of sleeping rules forward
    // to the Lambda, those of rules recorded ready whose resources run to the app (a listener
    // added since the wake included). Rules about to be stopped are switched by their stop.
    let asleep: HashSet<&str> = decisions.iter().filter(|d| !d.awake).map(|d| d.report.rule.as_str()).collect();
    let ready: HashSet<&str> = decisions
        .iter()
        .filter(|d| {
            d.awake && d.report.action != Action::Stop && d.state.as_ref().is_some_and(|s| s.phase == Phase::Ready)
        })
        .map(|d| d.report.rule.as_str())
        .collect();
    let want = |name: &str| match (asleep.contains(name), ready.contains(name)) {
        (true, _) => Want::Route(Route::Lambda),
        (false, true) => Want::Route(Route::App),
        _ => Want::Keep,
    };
    let (standing_rules, standing_rules_error) = match routes::reconcile(cloud, config, &mut seen.views, &want, dry_run)
        .await
    {
        Ok(r) => (r, None),
        Err(e) => {
            tracing::warn!(code = %e.code, message = %e.message, "standing rules not repaired; the next run retries");
            (Vec::new(), Some(e.to_string()))
        }
    };

    // Act on every decision, STOP_PARALLELISM at a time: 1,000 rules going idle together fit
    // in the Lambda's time without flooding StopInstances; a stop not begun before the deadline
    // is left for the next run.
    let deadline = time_left.map(|t| Instant::now() + t.saturating_sub(DEADLINE_MARGIN));
    let run =
        Run { waker, views: &seen.views, standing_rules_error: standing_rules_error.as_deref(), dry_run, deadline };
    let run = &run;
    let mut acted: Vec<(usize, RuleReport, bool)> = stream::iter(decisions.into_iter().enumerate())
        .map(|(i, d)| async move {
            let (report, stopped) = act(run, &config.rules[i], d).await;
            (i, report, stopped)
        })
        .buffer_unordered(STOP_PARALLELISM)
        .collect()
        .await;
    acted.sort_by_key(|(i, _, _)| *i);
    let stopped: Vec<&Rule> = acted.iter().filter(|(_, _, s)| *s).map(|(i, _, _)| &config.rules[*i]).collect();
    let reports: Vec<RuleReport> = acted.into_iter().map(|(_, r, _)| r).collect();
    if let Err(e) = sweep_routes(cloud, config, &stopped).await {
        tracing::warn!(code = %e.code, "post-stop sweep failed; the next run repeats it");
    }
    Ok(IdleReport { dry_run, now, rules: reports, standing_rules, standing_rules_error })
}

/// What every rule's action in one idle check shares.
struct Run<'a, C> {
    waker: &'a Waker<C>,
    views: &'a [ListenerView],
    standing_rules_error: Option<&'a str>,
    dry_run: bool,
    deadline: Option<Instant>,
}

/// Acts on one rule's decision; returns its report and whether a stop was begun (the sweep
/// looks at those).
async fn act<C: Cloud>(run: &Run<'_, C>, rule: &Rule, d: Decision) -> (RuleReport, bool) {
    let (cloud, config) = (run.waker.cloud(), run.waker.config());
    let Run { views, standing_rules_error, dry_run, deadline, .. } = *run;
    let mut report = d.report;
    let mut stopped = false;
    if report.action.mutates() && dry_run {
        report.outcome = "dry_run".into();
    } else if report.action == Action::Stop && deadline.is_some_and(|t| Instant::now() >= t) {
        report.outcome = "deferred".into();
        report.error = Some("the invocation's time ran out before this stop began; the next run continues".into());
    } else if report.action.mutates() {
        let result = match report.action {
            Action::Stop => {
                // Its own copy of the listeners, narrowed to what this rule's switch reads.
                let mut mine: Vec<ListenerView> = views.iter().map(|v| v.narrowed(config, rule)).collect();
                let outcome =
                    stop_rule(cloud, config, rule, d.state.as_ref(), &d.plan, &mut mine, &report.reason, "idle").await;
                stopped = matches!(outcome, Ok(StopOutcome::Stopped | StopOutcome::Partial(_)));
                outcome
            }
            // The reconcile before switched the rule back; record what AWS shows.
            Action::SwitchBack | Action::FinishStop => match standing_rules_error {
                Some(e) => Err(CloudError::new("ModifyRule", "StandingRulesNotRepaired", e)),
                None => record_stopped(cloud, config, rule, d.state).await.map(|_| StopOutcome::Stopped),
            },
            Action::Start => {
                let (outcome, error) = start(run.waker, rule, deadline).await;
                report.outcome = outcome.into();
                report.error = error;
                return log_decision(report, false, dry_run);
            }
            Action::Keep | Action::Asleep | Action::StopFailed => unreachable!("does not mutate"),
        };
        settle_report(&mut report, result);
    }
    log_decision(report, stopped, dry_run)
}

/// How long a start by the idle check is followed without an invocation deadline (the CLI):
/// about what a Lambda invocation of the default timeout leaves.
pub const START_FOLLOW: Duration = Duration::from_secs(50);

/// Starts a rule its schedule or override wants running, and follows the wake until it is
/// ready, fails, or the invocation's time runs out (the next run, or the first request,
/// finishes it). Returns the outcome (`ready`, `starting`, `failed`) and the error.
async fn start<C: Cloud>(waker: &Waker<C>, rule: &Rule, deadline: Option<Instant>) -> (&'static str, Option<String>) {
    let until = deadline.unwrap_or_else(|| Instant::now() + START_FOLLOW);
    loop {
        let status = waker.wake(rule, Cause::Schedule).await;
        match status.phase {
            Phase::Ready => return ("ready", None),
            Phase::Error => {
                let e = status.error.map(|e| format!("{} ({}): {}", e.code, e.operation, e.action));
                return ("failed", e.or(Some(status.message)));
            }
            _ if status.held_asleep.is_some() => return ("failed", Some(status.message)),
            _ if Instant::now() >= until => return ("starting", None),
            _ => tokio::time::sleep_until((Instant::now() + STATUS_TTL).min(until)).await,
        }
    }
}

fn log_decision(report: RuleReport, stopped: bool, dry_run: bool) -> (RuleReport, bool) {
    tracing::info!(
        rule = %report.rule, action = ?report.action, reason = %report.reason,
        last_activity = report.last_activity, idle_for_seconds = report.idle_for_seconds,
        idle_seconds = report.idle_seconds, outcome = %report.outcome, error = report.error.as_deref(),
        dry_run, "idle decision"
    );
    (report, stopped)
}

fn settle_report(report: &mut RuleReport, result: Result<StopOutcome, CloudError>) {
    let (outcome, error) = match result {
        Ok(StopOutcome::Stopped) => ("done", None),
        Ok(StopOutcome::BackedOff(why)) => ("backed_off", Some(why)),
        Ok(StopOutcome::Partial(why)) => ("partial", Some(why)),
        Err(e) => ("failed", Some(e.to_string())),
    };
    report.outcome = outcome.into();
    report.error = error;
}

/// Everything one idle check reads, in batches: the state items, instances, services, the
/// listeners and their rules, and the metrics.
struct Seen {
    states: HashMap<String, RuleState>,
    instances: HashMap<String, Instance>,
    services: HashMap<(String, String), Service>,
    asgs: HashMap<String, AutoScalingGroup>,
    /// RDS databases by (identifier, is a cluster).
    databases: HashMap<(String, bool), Database>,
    views: Vec<ListenerView>,
    series: Vec<MetricSeries>,
    per_rule: Vec<RuleQueries>,
    window: Duration,
}

async fn observe<C: Cloud>(cloud: &C, config: &Config, now: i64) -> Result<Seen, CloudError> {
    let states: HashMap<String, RuleState> = match cloud.load_states(&config.state_table).await {
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
    let (queries, per_rule) = build_queries(config);
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
struct Decision {
    report: RuleReport,
    awake: bool,
    state: Option<RuleState>,
    plan: Observed,
}

/// Lookups built once per idle check: metric series by id, standing rules by owner.
struct Index<'a> {
    series: HashMap<&'a str, &'a MetricSeries>,
    standing: HashMap<&'a str, Vec<&'a ListenerRule>>,
}

impl Seen {
    fn index(&self) -> Index<'_> {
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
    fn own(&self, config: &Config, index: &Index, now: i64) -> Vec<(bool, Option<i64>)> {
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

    fn decide(&self, config: &Config, index: &Index, own: &[(bool, Option<i64>)], i: usize, now: i64) -> Decision {
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

/// Reads the state; a missing table is `None` (waking and stopping go on without history).
async fn read_state<C: Cloud>(cloud: &C, config: &Config, rule: &str) -> Result<Option<RuleState>, CloudError> {
    match Store::new(cloud, &config.state_table).load(rule).await {
        Ok(s) => Ok(s),
        Err(e) if e.kind == ErrorKind::NotFound => {
            tracing::warn!(table = %config.state_table, "state table missing; stopping without coordination");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Claims or records a stop on exactly the item it was decided on (a wake that moved it since
/// wins: `Conflict`). A missing table is no error: stopping goes on without coordination.
async fn claim<C: Cloud>(
    cloud: &C,
    config: &Config,
    decided: Option<&RuleState>,
    next: RuleState,
) -> Result<Option<RuleState>, CloudError> {
    match Store::new(cloud, &config.state_table).claim(decided, next.clone()).await {
        Ok(Written::Saved(item)) => Ok(Some(item)),
        Ok(Written::Declined(_)) => Err(moved()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Some(next)),
        Err(e) => Err(e),
    }
}

/// Writes a transition of a stop the checker has claimed, re-applied after a lost race while the
/// item is still the claim (an override set meanwhile, say). A missing table is no error.
async fn record_claimed<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &str,
    claimed: Option<&RuleState>,
    change: impl Fn(Option<&RuleState>) -> RuleState,
) -> Result<(), CloudError> {
    let still_claimed = |now: Option<&RuleState>| now.is_some_and(|n| n.phase == Phase::Stopping).then(|| change(now));
    match Store::new(cloud, &config.state_table).update(rule, Some(claimed.cloned()), still_claimed).await {
        Ok(Written::Saved(_)) => Ok(()),
        Ok(Written::Declined(_)) => Err(moved()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn moved() -> CloudError {
    CloudError::new("PutItem", "ConditionalCheckFailedException", "the state changed since the stop was decided")
}

async fn record_stopped<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &Rule,
    prev: Option<RuleState>,
) -> Result<(), CloudError> {
    let next = transition::stopped(prev.as_ref(), &rule.name, cloud.now(), false);
    claim(cloud, config, prev.as_ref(), next).await.map(|_| ())
}

/// The ordered stop (see the module docs). `current` is the state the decision was made on: the
/// claim is a write conditional on its version, so a wake recorded since then wins and this
/// backs off, and of two checkers only one claims. `views` are the listeners as last listed. The
/// caller sweeps the listeners afterwards ([`sweep_routes`]) in case a wake that read the state
/// just before the claim switched the rule to the app again.
///
/// A stop that fails never locks the rule: a fault retrying can fix (throttling, network) leaves
/// it `stopping` for the next run, which keeps the first `stopping_since`, so the stop timeout
/// still frees wakes; any other fault records phase `error` with what to do, and the idle check
/// leaves the rule alone until its config or its resources change ([`fingerprint`]).
#[allow(clippy::too_many_arguments)]
pub async fn stop_rule<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &Rule,
    current: Option<&RuleState>,
    plan: &Observed,
    views: &mut [ListenerView],
    reason: &str,
    cause: &'static str,
) -> Result<StopOutcome, CloudError> {
    // 1. Claim the stop, on the item the decision was made on.
    let now = cloud.now();
    let claimed = match claim(cloud, config, current, transition::claim_stop(current, &rule.name, now)).await {
        Err(e) if e.kind == ErrorKind::Conflict => {
            return Ok(StopOutcome::BackedOff(
                "the state changed since the decision (a wake or another checker)".into(),
            ))
        }
        other => other?,
    };
    tracing::info!(rule = %rule.name, reason, "stopping");

    // 2. Take traffic away first, so no request is routed to a target that is going away. If
    //    that fails, nothing is stopped: the failure is recorded like a resource's.
    let mut failures = Vec::new();
    for view in views.iter_mut() {
        if let Err(e) = routes::switch_on(cloud, config, view, rule, Route::Lambda).await {
            failures.push((format!("listener {}", view.listener), e));
        }
    }

    // 3. Stop the resources; each on its own so one failure does not hold the others.
    if failures.is_empty() {
        failures = stop_resources(cloud, rule, plan).await;
    }

    // 4. Record the outcome.
    if failures.is_empty() {
        record_stop(cloud, config, rule, current, claimed.as_ref(), cause).await?;
        return Ok(StopOutcome::Stopped);
    }
    let why = failures.iter().map(|(what, e)| format!("{what}: {} ({})", e.code, e.op)).collect::<Vec<_>>().join(", ");
    let (message, fingerprint) = if failures.iter().all(|(_, e)| e.kind.is_retryable()) {
        (format!("could not stop: {why}; retrying on the next run"), None)
    } else {
        let (_, first) = failures.iter().find(|(_, e)| !e.kind.is_retryable()).expect("one is not retryable");
        let message = format!(
            "could not stop: {why}. {} Then run `autostop stop {}`; until then the idle check leaves it alone",
            crate::wake::advice(first),
            rule.name
        );
        tracing::warn!(rule = %rule.name, error = %message, "stop failed; the rule is in phase error");
        (message, Some(plan.fingerprint(rule)))
    };
    let failed = |p: Option<&RuleState>| transition::stop_failed(p, &rule.name, now, &message, fingerprint.as_deref());
    record_claimed(cloud, config, &rule.name, claimed.as_ref(), failed).await?;
    Ok(StopOutcome::Partial(message))
}

/// Tags and scales the service to 0, stops each running instance; returns what failed.
async fn stop_resources<C: Cloud>(cloud: &C, rule: &Rule, plan: &Observed) -> Vec<(String, CloudError)> {
    let mut failures = Vec::new();
    if let (Some(ecs), Some(svc)) = (&rule.ecs, &plan.service) {
        if svc.is_active() && svc.desired > 0 {
            let what = format!("{}/{}", ecs.cluster, ecs.service);
            // Remember the count before it is gone, so the wake restores it; without the tag,
            // scaling to 0 would lose it: skip the scale.
            let scaled = match cloud.tag_service(&svc.arn, DESIRED_COUNT_TAG, &svc.desired.to_string()).await {
                Ok(()) => cloud.scale_service(&ecs.cluster, &ecs.service, 0).await,
                Err(e) => Err(e),
            };
            match scaled {
                Ok(()) => {
                    tracing::info!(rule = %rule.name, service = %what, remembered = svc.desired, "service scaled to 0")
                }
                Err(e) => failures.push((what, e)),
            }
        }
    }
    if let Some(g) = plan.asg.as_ref().filter(|g| g.exists && g.desired > 0) {
        if let Err(e) = scale_group_to_zero(cloud, rule, g).await {
            failures.push((format!("Auto Scaling group {}", g.name), e));
        }
    }
    for d in plan.databases.iter().filter(|d| d.status == "available") {
        if let Some(why) = &d.cannot_stop {
            tracing::warn!(rule = %rule.name, database = %d.id, why = %why, "database left running");
            continue;
        }
        match cloud.stop_database(&d.id, d.cluster).await {
            Ok(()) => tracing::info!(rule = %rule.name, database = %d.id, cluster = d.cluster, "database stopping"),
            Err(e) => failures.push((d.id.clone(), e)),
        }
    }
    let asked = rule.ec2.as_ref().is_some_and(|e| e.hibernate);
    for instance in plan.running_instances() {
        let id = &instance.id;
        // Hibernation can only be enabled at launch (EC2 user guide): never ask it of another.
        let hibernate = asked && instance.hibernation_configured;
        if asked && !hibernate {
            tracing::warn!(rule = %rule.name, instance = %id, "not enabled for hibernation at launch: stopping it instead (hibernation can only be enabled when an instance is launched)");
        }
        match cloud.stop_instances(std::slice::from_ref(id), hibernate).await {
            Ok(()) => tracing::info!(rule = %rule.name, instance = %id, hibernate, "instance stopping"),
            Err(e) => {
                tracing::warn!(rule = %rule.name, instance = %id, code = %e.code, message = %e.message, "StopInstances failed");
                failures.push((id.clone(), e));
            }
        }
    }
    failures
}

/// Remembers the group's min size and desired capacity in its tags, then sets both to 0: the
/// group terminates its instances (stopping them one by one would only make it replace them).
/// Without the tags the sizes would be lost, so a failed tag skips the scale.
async fn scale_group_to_zero<C: Cloud>(cloud: &C, rule: &Rule, g: &AutoScalingGroup) -> Result<(), CloudError> {
    let tags = [(ASG_MIN_TAG, g.min.to_string()), (ASG_DESIRED_TAG, g.desired.to_string())];
    cloud.tag_auto_scaling_group(&g.name, &tags).await?;
    cloud.update_auto_scaling_group(&g.name, 0, 0).await?;
    tracing::info!(rule = %rule.name, group = %g.name, remembered_min = g.min, remembered_desired = g.desired, "Auto Scaling group scaled to 0");
    Ok(())
}

/// Records a finished stop and publishes `Stops`.
async fn record_stop<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &Rule,
    current: Option<&RuleState>,
    claimed: Option<&RuleState>,
    cause: &'static str,
) -> Result<(), CloudError> {
    let now = cloud.now();
    let done = |p: Option<&RuleState>| transition::stopped(p, &rule.name, now, true);
    record_claimed(cloud, config, &rule.name, claimed, done).await?;
    let awake_since = current.and_then(|s| s.ready_at.or(s.wake_started_at).or(s.last_wake_at));
    let mut values = vec![emf::count("Stops")];
    if let Some(since) = awake_since {
        values.push(emf::seconds("SecondsAwake", (now - since).max(0) as u64));
    }
    cloud.emit_metrics(emf::line(now * 1000, &[("Rule", rule.name.as_str()), ("Reason", cause)], &values));
    Ok(())
}

/// After stops: one listing per listener, switching back any standing rule of the stopped rules
/// that a racing wake switched to the app.
pub async fn sweep_routes<C: Cloud>(cloud: &C, config: &Config, stopped: &[&Rule]) -> Result<usize, CloudError> {
    if stopped.is_empty() {
        return Ok(0);
    }
    let mut switched = 0;
    for mut view in routes::views(cloud, config).await? {
        for rule in stopped {
            let n = routes::switch_on(cloud, config, &mut view, rule, Route::Lambda).await?;
            if n > 0 {
                tracing::warn!(rule = %rule.name, listener = %view.listener, "standing rule forwarded to the app again during the stop; switched back");
            }
            switched += n;
        }
    }
    Ok(switched)
}

/// The operator's `stop`: observe, stop now regardless of activity, sweep.
pub async fn stop_now<C: Cloud>(cloud: &C, config: &Config, rule: &Rule) -> Result<StopOutcome, CloudError> {
    // Dependents first: a dependency is never stopped under a rule that needs it.
    for j in config.dependents(&rule.name) {
        let dependent = &config.rules[j];
        if wake::observe(cloud, dependent).await?.awake() {
            return Ok(StopOutcome::BackedOff(format!(
                "`{}` depends on it and is awake; stop `{}` first",
                dependent.name, dependent.name
            )));
        }
    }
    let current = read_state(cloud, config, &rule.name).await?;
    let plan = wake::observe(cloud, rule).await?;
    let mut views = routes::views(cloud, config).await?;
    let outcome =
        stop_rule(cloud, config, rule, current.as_ref(), &plan, &mut views, "operator stop", "operator").await?;
    if !matches!(outcome, StopOutcome::BackedOff(_)) {
        sweep_routes(cloud, config, &[rule]).await?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(awake: bool) -> Facts<'static> {
        Facts {
            now: 10_000,
            idle: Duration::from_secs(300),
            window: Duration::from_secs(900),
            lag: Duration::from_secs(180),
            last_activity: None,
            state: None,
            awake,
            started_at: None,
            app_routes: 0,
            fingerprint: "f".into(),
            intent: Intent::OnDemand,
            needed_by: None,
        }
    }

    /// A dependency runs while a rule that depends on it is awake: kept however idle or
    /// scheduled asleep, started if found stopped.
    #[test]
    fn a_dependency_runs_while_a_dependent_is_awake() {
        let asleep = Intent::Asleep { why: "asleep on schedule `office`".into(), until: None };
        let needed = Facts { needed_by: Some("api".into()), intent: asleep, ..facts(true) };
        let (action, why, _) = decide(&needed);
        assert_eq!((action, why.as_str()), (Action::Keep, "`api` depends on it and is awake"));
        assert_eq!(decide(&Facts { awake: false, ..needed.clone() }).0, Action::Start);
        assert_eq!(decide(&facts(true)).0, Action::Stop, "without an awake dependent: idle");
    }

    /// The intent comes before idleness: a held-asleep rule stops however busy, a rule that
    /// should run starts, and is kept however idle; a wake it began is followed to the end.
    #[test]
    fn schedules_and_overrides_decide_before_idleness() {
        let asleep = Intent::Asleep { why: "asleep on schedule `office`".into(), until: None };
        let awake = Intent::Awake { why: "awake on schedule `office`".into() };
        let busy = Facts { last_activity: Some(9_990), intent: asleep.clone(), ..facts(true) };
        assert_eq!(decide(&busy).0, Action::Stop);
        assert_eq!(decide(&busy).1, "asleep on schedule `office`");
        assert_eq!(decide(&Facts { intent: asleep, ..facts(false) }).0, Action::Asleep);
        assert_eq!(decide(&Facts { intent: awake.clone(), ..facts(false) }).0, Action::Start);
        assert_eq!(decide(&Facts { intent: awake.clone(), ..facts(true) }).0, Action::Keep, "idle, but kept");
        let mut starting = RuleState::new("api");
        starting.phase = Phase::WaitingForHealth;
        let f = Facts { intent: awake.clone(), state: Some(&starting), ..facts(true) };
        assert_eq!(decide(&f).0, Action::Start);
        // Routed to the app while stopped: switched back first, started on the next run.
        assert_eq!(decide(&Facts { intent: awake, app_routes: 1, ..facts(false) }).0, Action::SwitchBack);
    }

    #[test]
    fn idle_is_measured_from_the_newest_of_activity_wake_ready_and_start() {
        let mut f = facts(true);
        f.last_activity = Some(9_600);
        assert_eq!(decide(&f).0, Action::Keep, "400 s ago, but CloudWatch may not show the last 180 s yet");
        f.last_activity = Some(9_520);
        let (action, reason, idle_for) = decide(&f);
        assert_eq!((action, idle_for), (Action::Stop, Some(300)), "{reason}");

        let state = RuleState { last_wake_at: Some(9_900), ..RuleState::new("api") };
        f.state = Some(Box::leak(Box::new(state)));
        assert_eq!(decide(&f).0, Action::Keep, "woken 100 s ago");
        f.state = None;
        f.started_at = Some(9_950);
        assert_eq!(decide(&f).0, Action::Keep, "started by hand 50 s ago");
    }

    #[test]
    fn activity_in_the_current_minute_is_dated_no_later_than_now() {
        let rule = Rule {
            name: "api".into(),
            hosts: vec!["api.x.com".into()],
            target_group_arn: Some("tg".into()),
            idle: Duration::from_secs(300),
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
        };
        let rq = RuleQueries { requests: vec!["r".into()], busy: vec![] };
        let series = MetricSeries { id: "r".into(), points: vec![(9_960, 3.0)] };
        let by_id: HashMap<&str, &MetricSeries> = [("r", &series)].into();
        assert_eq!(last_activity(&rule, &rq, &by_id, &|_| 60, 10_000), Some(10_000), "not 10,020");
        assert_eq!(last_activity(&rule, &rq, &by_id, &|_| 60, 20_000), Some(10_020));
    }

    #[test]
    fn nothing_known_means_idle_for_the_whole_window() {
        let (action, reason, idle_for) = decide(&facts(true));
        assert_eq!((action, idle_for), (Action::Stop, Some(900)));
        assert!(reason.contains("no activity"));
    }

    #[test]
    fn asleep_rules_get_drift_repair_only() {
        let mut f = facts(false);
        assert_eq!(decide(&f).0, Action::Asleep);
        f.app_routes = 2;
        assert_eq!(decide(&f).0, Action::SwitchBack);
        f.app_routes = 0;
        let stopping = RuleState { phase: Phase::Stopping, ..RuleState::new("api") };
        f.state = Some(Box::leak(Box::new(stopping)));
        assert_eq!(decide(&f).0, Action::FinishStop);
    }
}
