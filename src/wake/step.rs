//! One step of one rule in this environment: observe the resources and the item together,
//! plan, and hand the plan to the part that acts on it. Failures become a status: retried
//! quietly when retrying can fix them, else the `error` phase with the code and what to do.

use std::collections::HashSet;

use tokio::time::Instant;

use crate::cloud::{Cloud, CloudError, ErrorKind};
use crate::config::Rule;
use crate::state::{self, transition, Phase, RuleState, Written};
use crate::telemetry::emf;

use super::observe::resource_states;
use super::plan::{plan_resources, ResourcePlan};
use super::status::{eta, step_error, ResourceState, StepError};
use super::{elapsed, Memo, Mode, Status, Waker, ERROR_PAUSE};

/// A failed AWS call, with the resource lines observed before it.
pub(super) type StepFailure = (CloudError, Vec<ResourceState>);

/// What a step knows before it acts: the rule, its state item, the wall clock, the ETA history.
pub(super) struct Step<'a> {
    pub rule: &'a Rule,
    pub state: Option<RuleState>,
    pub wall: i64,
    pub warmups: Vec<u64>,
    /// While a wake is recorded, every Lambda environment counts from its recorded start.
    pub recorded_start: Option<i64>,
    /// The target group's health-check floor (seconds), for the ETA of a first wake.
    pub floor: Option<u64>,
}

impl<'a> Step<'a> {
    fn new(rule: &'a Rule, state: Option<RuleState>, wall: i64) -> Step<'a> {
        let warmups = state.as_ref().map(|s| s.warmups.clone()).unwrap_or_default();
        let recorded_start = state.as_ref().filter(|s| s.phase == Phase::Starting).and_then(|s| s.wake_started_at);
        Step { rule, state, wall, warmups, recorded_start, floor: None }
    }

    /// The item, when its phase is `phase`.
    pub fn recorded(&self, phase: Phase) -> Option<&RuleState> {
        self.state.as_ref().filter(|s| s.phase == phase)
    }

    /// Instances the wake in progress started, as any environment knows them: the state item's
    /// (while `starting`, or within [`ERROR_PAUSE`] of a recorded error), and this process's own.
    fn started(&self, own: &HashSet<String>) -> HashSet<String> {
        let recorded = self.state.as_ref().filter(|s| {
            s.phase == Phase::Starting
                || (s.phase == Phase::Error && s.error_at.is_some_and(|t| self.wall - t < ERROR_PAUSE))
        });
        recorded.iter().flat_map(|s| s.started_instances.iter().cloned()).chain(own.iter().cloned()).collect()
    }

    /// When the wake was recorded as finished (the standing rules switched to the app).
    pub fn ready_at(&self) -> Option<i64> {
        self.recorded(Phase::Ready).and_then(|s| s.ready_at)
    }

    pub fn status(&self, phase: Phase, message: &str, resources: Vec<ResourceState>, memo: &Memo) -> Status {
        let elapsed = self.recorded_start.map(|t| (self.wall - t).max(0) as u64).or_else(|| elapsed(memo));
        let mut status = Status::new(&self.rule.name, phase, message).with_resources(resources);
        status.elapsed_seconds = elapsed;
        if matches!(phase, Phase::Starting | Phase::WaitingForHealth | Phase::Routing) {
            status.eta_seconds = self.eta(elapsed);
        }
        status.woken_by = self.woken_by(phase, memo);
        status
    }

    /// Who woke the rule, while it wakes or is awake: as the item records it, else (before the
    /// start is recorded) who asks now.
    fn woken_by(&self, phase: Phase, memo: &Memo) -> Option<String> {
        let awake = |p: Phase| matches!(p, Phase::Starting | Phase::WaitingForHealth | Phase::Routing | Phase::Ready);
        if !awake(phase) {
            return None;
        }
        let recorded = self.state.as_ref().filter(|s| awake(s.phase)).map(|s| s.woken_by.clone());
        recorded.unwrap_or_else(|| memo.by.clone())
    }

    /// Seconds left if this wake takes the typical time. A first wake has no history: until the
    /// health checks' floor has passed, what they alone take at least; after it, no estimate.
    pub fn eta(&self, elapsed: Option<u64>) -> Option<u64> {
        let floor_left = || self.floor?.checked_sub(elapsed.unwrap_or(0)).filter(|left| *left > 0);
        eta(&self.warmups, elapsed).or_else(floor_left)
    }
}

impl<C: Cloud> Waker<C> {
    /// `known`: the state item when the caller has just read or written it.
    pub(super) async fn step(
        &self,
        rule: &Rule,
        memo: &mut Memo,
        mode: Mode,
        known: Option<Option<RuleState>>,
    ) -> Status {
        let status = match self.try_step(rule, memo, mode, known).await {
            Ok(status) => status,
            Err((e, resources)) => self.failed(rule, memo, e, resources),
        };
        if mode == Mode::Wake {
            self.note_phase(rule, memo, &status);
        }
        status
    }

    /// A phase change: logged, timed for the per-phase metrics, and an error counted by code.
    fn note_phase(&self, rule: &Rule, memo: &mut Memo, status: &Status) {
        if status.phase != memo.last_phase.unwrap_or(Phase::Stopped) {
            memo.phase_log.push((status.phase, Instant::now()));
            if let Some(err) = &status.error {
                let dims =
                    [("Rule", rule.name.as_str()), ("Code", err.code.as_str()), ("Operation", err.operation.as_str())];
                self.cloud.emit_metrics(emf::line(self.cloud.now() * 1000, &dims, &[emf::count("Errors")]));
            }
            tracing::info!(
                rule = %rule.name, phase = status.phase.as_str(), elapsed_seconds = status.elapsed_seconds,
                woken_by = status.woken_by.as_deref(), message = %status.message, "phase"
            );
        }
        memo.last_phase = Some(status.phase);
    }

    /// An AWS call failed. Throttling, network faults and state races are retried quietly (the
    /// phase stays); anything else becomes the `error` phase with the code and what to do.
    fn failed(&self, rule: &Rule, memo: &mut Memo, e: CloudError, resources: Vec<ResourceState>) -> Status {
        let quiet = e.kind.is_retryable() || e.kind == ErrorKind::InvalidState;
        tracing::warn!(rule = %rule.name, op = e.op, code = %e.code, kind = e.kind.as_str(), retry = quiet, message = %e.message, request_id = e.request_id.as_deref(), "aws call failed");
        let elapsed = elapsed(memo);
        if quiet {
            let phase = match memo.last_phase {
                Some(Phase::Error) | Some(Phase::Ready) | None => Phase::Starting,
                Some(p) => p,
            };
            let mut status = Status::new(&rule.name, phase, format!("AWS answered {} to {}; retrying", e.code, e.op))
                .with_resources(resources);
            status.elapsed_seconds = elapsed;
            status.retrying = Some(step_error(&e));
            return status;
        }
        // Forget what this wake started so the next request retries from what AWS shows.
        memo.started.clear();
        let err = step_error(&e);
        let message = format!("{} failed with {}: {}", e.op, e.code, err.action);
        let mut status = Status::new(&rule.name, Phase::Error, message).with_resources(resources);
        status.elapsed_seconds = elapsed;
        status.error = Some(err);
        status
    }

    /// The health-check floor of the rule's target group (HealthyThresholdCount x interval), read
    /// once per environment and rule; `None` without a target group or when it cannot be read.
    async fn health_floor(&self, rule: &Rule, memo: &mut Memo) -> Option<u64> {
        if let Some(known) = memo.health_floor {
            return known;
        }
        let tg = rule.target_group_arn.as_deref()?;
        let floor = self.cloud.health_check(tg).await.ok().map(|h| h.floor_secs());
        memo.health_floor = Some(floor);
        floor
    }

    /// The rule's state item; `None` when there is none or the table cannot be read (waking never
    /// depends on the table: AWS itself is the truth about what runs).
    pub(super) async fn read_state(&self, rule: &Rule) -> Option<RuleState> {
        match self.store().load(&rule.name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(rule = %rule.name, code = %e.code, table = %self.config.state_table, "state unreadable; waking without it");
                None
            }
        }
    }

    /// Writes a transition of the rule's item (`known`: as the step read it; `None`: read it),
    /// never over a stop's claim: that is the checker's, and overwriting it would make its final
    /// write fail. Failures are logged, never fatal to the wake.
    pub(super) async fn record(
        &self,
        rule: &Rule,
        known: Option<Option<RuleState>>,
        change: impl Fn(Option<&RuleState>) -> RuleState,
    ) {
        let now = self.cloud.now();
        let unless_stopping = |prev: Option<&RuleState>| (!state::stop_in_progress(prev, now)).then(|| change(prev));
        match self.store().update(&rule.name, known, unless_stopping).await {
            Ok(Written::Saved(_)) => {}
            Ok(Written::Declined(_)) => {
                tracing::info!(rule = %rule.name, "a stop owns the state item; not recording over it")
            }
            Err(e) => tracing::warn!(rule = %rule.name, code = %e.code, "state not recorded"),
        }
    }

    async fn try_step(
        &self,
        rule: &Rule,
        memo: &mut Memo,
        mode: Mode,
        known: Option<Option<RuleState>>,
    ) -> Result<Status, StepFailure> {
        let read = async {
            match known {
                Some(state) => state,
                None => self.read_state(rule).await,
            }
        };
        let (obs, state) = tokio::join!(Box::pin(super::observe(self.cloud.as_ref(), rule)), Box::pin(read));
        let obs = obs.map_err(|e| (e, Vec::new()))?;
        let mut cx = Step::new(rule, state, self.cloud.now());
        if mode == Mode::Wake && cx.warmups.is_empty() {
            cx.floor = self.health_floor(rule, memo).await;
        }
        let resources = resource_states(rule, &obs);
        if state::stop_in_progress(cx.state.as_ref(), cx.wall) {
            // The idle checker has taken traffic away and is stopping the resources: routing to
            // the app now would send requests to targets that are going away. Wait, then wake.
            memo.routed_at = None;
            memo.wake_started.get_or_insert(Instant::now());
            let message = "an idle stop is in progress; waking as soon as it finishes";
            return Ok(cx.status(Phase::Stopping, message, resources, memo));
        }
        let plan = plan_resources(rule, &obs, &cx.started(&memo.started));
        if plan != ResourcePlan::Up {
            memo.routed_at = None;
        }
        self.act(&cx, memo, mode, &obs, resources, plan).await
    }

    /// Acts on the plan (or, observing, only says what it is).
    async fn act(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        mode: Mode,
        obs: &super::Observed,
        resources: Vec<ResourceState>,
        plan: ResourcePlan,
    ) -> Result<Status, StepFailure> {
        match plan {
            ResourcePlan::Broken(err) => Ok(self.broken(cx, memo, mode, resources, err).await),
            ResourcePlan::Start(_) if mode == Mode::Observe => {
                let message = match cx.rule.gate.click {
                    true => "asleep: its page's wake button (or the wake token) wakes it",
                    false => "asleep: the next request wakes it",
                };
                Ok(cx.status(Phase::Stopped, message, resources, memo))
            }
            ResourcePlan::Start(launch) => {
                if let Some(waiting) = self.dependencies_first(cx, memo, &resources).await {
                    return Ok(waiting);
                }
                Box::pin(self.start(cx, memo, obs, resources, &launch)).await
            }
            ResourcePlan::WaitForStop => {
                memo.wake_started.get_or_insert(Instant::now());
                let message = "waiting for the previous stop to finish, then starting";
                Ok(cx.status(Phase::Stopping, message, resources, memo))
            }
            ResourcePlan::Booting => {
                memo.wake_started.get_or_insert(Instant::now());
                Ok(cx.status(Phase::Starting, "booting", resources, memo))
            }
            ResourcePlan::Up => Box::pin(self.up(cx, memo, mode, resources)).await,
        }
    }

    /// A wake that cannot go on (a terminated instance, a start that fell back to `stopped`):
    /// recorded once, so every environment shows the same error without starting anything
    /// until [`ERROR_PAUSE`] has passed.
    async fn broken(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        mode: Mode,
        resources: Vec<ResourceState>,
        err: StepError,
    ) -> Status {
        memo.started.clear();
        let message = format!("{} ({}): {}", err.code, err.operation, err.action);
        let recorded = cx.recorded(Phase::Error).is_some_and(|s| s.last_error.as_deref() == Some(&message));
        if mode == Mode::Wake && !recorded {
            let (rule, wall) = (&cx.rule.name, cx.wall);
            self.record(cx.rule, Some(cx.state.clone()), |prev| transition::broken(prev, rule, wall, &message)).await;
        }
        let mut s = cx.status(Phase::Error, &format!("{}: {}", err.detail, err.action), resources, memo);
        s.error = Some(err);
        s
    }
}
