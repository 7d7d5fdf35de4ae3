//! The idle check's run: observe everything in batches, decide each rule, repair drift, act on
//! the decisions a bounded number at a time within the invocation's time, then sweep the
//! listeners once for wakes that raced a stop.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::time::Instant;

use crate::cloud::{Cloud, CloudError};
use crate::config::{Config, Rule};
use crate::routing::{self as routes, ListenerView, Route, Want};
use crate::state::fleet::{self, Activity};
use crate::state::Phase;
use crate::wake::{Cause, Waker, STATUS_TTL};

use super::decide::Action;
use super::observe::{observe, Decision, Seen};
use super::report::{IdleReport, RuleReport};
use super::stop::{record_stopped, stop_rule, sweep_routes, StopOutcome, StopRequest};

/// How many rules the idle check acts on at once.
pub const STOP_PARALLELISM: usize = 8;
/// Time kept back from the invocation's deadline: no stop begins in it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Runs the idle check over every rule. `Err` only when AWS could not be observed; then nothing
/// was changed. `time_left`: what remains of the invocation (None: no limit, as in the CLI).
/// The waker starts the rules whose schedule or override wants them running.
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

    let (standing_rules, standing_rules_error) = repair_drift(cloud, config, &mut seen, &decisions, dry_run).await;

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
    if config.dashboard.is_some() && !dry_run {
        record_activity(waker, &reports).await;
    }
    Ok(IdleReport { dry_run, now, rules: reports, standing_rules, standing_rules_error })
}

/// For the fleet page: every rule's activity as decided now, in the one `@fleet` item (one
/// write per run).
async fn record_activity<C: Cloud>(waker: &Waker<C>, reports: &[RuleReport]) {
    let activity: std::collections::HashMap<String, Activity> = reports
        .iter()
        .map(|r| (r.rule.clone(), Activity { last_activity: r.last_activity, idle_seconds: r.idle_seconds }))
        .collect();
    let now_ms = waker.cloud().now_ms();
    let write = |prev: Option<&crate::state::RuleState>| Some(fleet::summary(prev, &activity, now_ms));
    if let Err(e) = waker.store().update(fleet::FLEET_ITEM, None, write).await {
        tracing::warn!(code = %e.code, "fleet activity not recorded; the fleet page shows the last one");
    }
}

/// Drift repair, before any stop: standing rules created or corrected; those of sleeping rules
/// forward to the Lambda, those of rules recorded ready whose resources run to the app (a
/// listener added since the wake included). Rules about to be stopped are switched by their
/// stop. A failure is reported, not fatal: the next run retries.
async fn repair_drift<C: Cloud>(
    cloud: &C,
    config: &Config,
    seen: &mut Seen,
    decisions: &[Decision],
    dry_run: bool,
) -> (Vec<routes::Report>, Option<String>) {
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
    match routes::reconcile(cloud, config, &mut seen.views, &want, dry_run).await {
        Ok(r) => (r, None),
        Err(e) => {
            tracing::warn!(code = %e.code, message = %e.message, "standing rules not repaired; the next run retries");
            (Vec::new(), Some(e.to_string()))
        }
    }
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
                let request = StopRequest {
                    rule,
                    decided: d.state.as_ref(),
                    observed: &d.plan,
                    views: &mut mine,
                    reason: &report.reason,
                    cause: "idle",
                    by: None,
                };
                let outcome = stop_rule(cloud, config, request).await;
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
