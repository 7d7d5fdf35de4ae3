//! `autostop status`: every rule's live status (nothing is woken), listener rules, activity and
//! idle time (a dry-run idle decision), history, savings and refusals. A typed report: the
//! direct invoke serialises it, the CLI prints it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::cloud::{Cloud, CloudError, MetricQuery};
use crate::config::gate::Reason;
use crate::config::schedule::{Mode, Schedule};
use crate::config::{Config, Rule};
use crate::sleep::{self, RuleReport};
use crate::state::{intent, savings, Phase, RuleState};
use crate::telemetry::emf;
use crate::wake::{ResourceState, Status, Waker};

use super::Problem;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub now: i64,
    pub rules: Vec<RuleStatus>,
    /// The AWS calls that failed: what the report could not learn. Empty when it is whole.
    pub problems: Vec<Problem>,
}

/// One rule in the status report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStatus {
    pub rule: String,
    pub hosts: Vec<String>,
    pub phase: Phase,
    /// Whether its resources were observed now; when not, `phase` is only the last one seen.
    pub observed: bool,
    pub message: String,
    pub resources: Vec<ResourceState>,
    /// Its standing rules over all listeners; `None` when AWS could not be observed.
    pub listener_rules: Option<usize>,
    pub last_activity: Option<i64>,
    pub idle_for_seconds: Option<i64>,
    pub idle_seconds: u64,
    pub last_error: Option<String>,
    pub wakes: u64,
    pub stops: u64,
    /// The UTC month the savings count in (`2026-11`).
    pub month: String,
    pub hours_asleep_this_month: f64,
    pub hourly_cost: Option<f64>,
    pub saved_this_month: Option<f64>,
    /// Requests answered without a wake in the last hour, by reason.
    pub refused_last_hour: Option<BTreeMap<String, u64>>,
    /// What its override or schedule says now, when either says anything.
    pub intent: Option<String>,
    pub schedule: Option<ScheduleNow>,
    #[serde(rename = "override")]
    pub override_now: Option<OverrideNow>,
    /// The last wake: who asked (behind SSO, the verified user), why, and when.
    pub last_wake: Option<LastWake>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastWake {
    pub at: i64,
    pub cause: Option<String>,
    pub woken_by: Option<String>,
}

/// A schedule in the status: its window now and the next change, in its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleNow {
    pub name: String,
    pub timezone: String,
    pub mode: Option<&'static str>,
    pub next_change: Option<i64>,
    pub next_change_local: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideNow {
    pub mode: &'static str,
    pub until: i64,
    pub by: String,
    pub until_local: String,
}

/// The report, with every AWS call that failed in `problems`: what is missing from it says
/// why, and the parts that could be read are still there.
pub async fn report<C: Cloud>(waker: &Waker<C>) -> StatusReport {
    let (cloud, config) = (waker.cloud(), waker.config());
    let now = cloud.now();
    let mut problems = Vec::new();
    let mut read = |what: &str, e: CloudError| {
        tracing::warn!(error = %e, "status without {what}");
        problems.push(Problem::of(&e));
    };
    let decisions = sleep::idle_check(waker, true, None).await.map(|r| r.rules).unwrap_or_else(|e| {
        read("activity", e);
        Vec::new()
    });
    let states = waker.store().load_all().await.unwrap_or_else(|e| {
        read("history", e);
        Vec::new()
    });
    let mut refused = refused_last_hour(cloud, config, now).await.unwrap_or_else(|e| {
        read("refusals", e);
        HashMap::new()
    });
    let mut rules = Vec::with_capacity(config.rules.len());
    for rule in &config.rules {
        let status = waker.observe(rule).await;
        problems.extend(status.retrying.iter().chain(&status.error).map(Problem::of_step));
        let decision = decisions.iter().find(|d| d.rule == rule.name);
        let state = states.iter().find(|s| s.rule == rule.name);
        rules.push(rule_status(rule, status, decision, state, refused.remove(&rule.name), now));
    }
    StatusReport { now, rules, problems }
}

fn rule_status(
    rule: &Rule,
    status: Status,
    decision: Option<&RuleReport>,
    state: Option<&RuleState>,
    refused: Option<BTreeMap<String, u64>>,
    now: i64,
) -> RuleStatus {
    let asleep = state.map(|s| savings::asleep_this_month(s, now)).unwrap_or(0);
    let hours = asleep as f64 / 3600.0;
    RuleStatus {
        rule: rule.name.clone(),
        hosts: rule.hosts.clone(),
        phase: status.phase,
        observed: status.retrying.is_none(),
        message: status.message,
        resources: status.resources,
        listener_rules: decision.map(|d| d.listener_rules),
        last_activity: decision.and_then(|d| d.last_activity),
        idle_for_seconds: decision.and_then(|d| d.idle_for_seconds),
        idle_seconds: rule.idle.as_secs(),
        last_error: state.and_then(|s| s.last_error.clone()),
        wakes: state.map(|s| s.wakes).unwrap_or(0),
        stops: state.map(|s| s.stops).unwrap_or(0),
        month: savings::month_label(now),
        hours_asleep_this_month: (hours * 100.0).round() / 100.0,
        hourly_cost: rule.hourly_cost,
        saved_this_month: rule.hourly_cost.map(|c| savings::saved(c, asleep)),
        refused_last_hour: refused,
        intent: intent::intent(rule, state, now).why().map(str::to_string),
        schedule: rule.schedule.as_deref().map(|s| schedule_now(s, now)),
        override_now: intent::Override::active(state, now).map(|o| OverrideNow {
            mode: o.mode.as_str(),
            until: o.until,
            until_local: intent::local(rule.schedule.as_deref(), o.until),
            by: o.by,
        }),
        last_wake: state.and_then(|s| {
            let at = s.wake_started_at.or(s.last_wake_at)?;
            Some(LastWake { at, cause: s.wake_cause.clone(), woken_by: s.woken_by.clone() })
        }),
    }
}

fn schedule_now(s: &Schedule, now: i64) -> ScheduleNow {
    let at = s.at(now);
    ScheduleNow {
        name: s.name.clone(),
        timezone: s.timezone.clone(),
        mode: at.mode.map(Mode::as_str),
        next_change: at.next_change,
        next_change_local: at.next_change.map(|t| s.local(t)),
    }
}

/// Requests answered without a wake in the last hour, per rule, by reason (the `Refused`
/// metric as CloudWatch has it, so from every Lambda environment).
async fn refused_last_hour<C: Cloud>(
    cloud: &C,
    config: &Config,
    now: i64,
) -> Result<HashMap<String, BTreeMap<String, u64>>, CloudError> {
    let mut queries = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        for (j, reason) in Reason::ALL.iter().enumerate() {
            queries.push(MetricQuery {
                id: format!("r{i}_{j}"),
                namespace: emf::NAMESPACE,
                metric: "Refused",
                dimensions: vec![("Rule", rule.name.clone()), ("Reason", reason.as_str().to_string())],
                stat: "Sum",
            });
        }
    }
    let series = cloud.metric_data(&queries, now - 3600, now + 60).await?;
    let mut out: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
    for (q, s) in queries.iter().zip(series) {
        let total: f64 = s.points.iter().map(|(_, v)| v).sum();
        if total > 0.0 {
            let by_reason = out.entry(q.dimensions[0].1.clone()).or_default();
            by_reason.insert(q.dimensions[1].1.clone(), total as u64);
        }
    }
    Ok(out)
}
