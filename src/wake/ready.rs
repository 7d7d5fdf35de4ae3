//! Everything runs: target health decides. With a healthy target the standing rules are
//! switched to the app (one ModifyRule per listener) and the wake is recorded as finished, with
//! its metrics; it is `ready` once the switch has been in place for `settle`.

use tokio::time::Instant;

use crate::cloud::{Cloud, CloudError};
use crate::routing::{self, Route};
use crate::state::{self, transition, Phase};
use crate::telemetry::emf;

use super::status::{waiting_message, ResourceState};
use super::step::{Step, StepFailure};
use super::{Memo, Mode, Status, Waker, PROPAGATION};

impl<C: Cloud> Waker<C> {
    pub(super) async fn up(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        mode: Mode,
        resources: Vec<ResourceState>,
    ) -> Result<Status, StepFailure> {
        let rule = cx.rule;
        let fail = |e: CloudError| (e, resources.clone());
        let Some(target_group) = rule.target_group_arn.as_deref() else {
            return Ok(self.up_without_traffic(cx, memo, mode, resources).await);
        };
        let health = self.cloud.target_health(target_group).await.map_err(fail)?;
        if health.healthy == 0 {
            memo.routed_at = None;
            if mode == Mode::Wake {
                memo.wake_started.get_or_insert(Instant::now());
                if health.not_in_use > 0 {
                    // No rule references the app's group (deleted by hand, or a first wake that
                    // found no standing rule): without one the ALB never health-checks it.
                    self.ensure_standing(rule).await.map_err(fail)?;
                }
            }
            let mut s = cx.status(Phase::WaitingForHealth, &waiting_message(&health), resources, memo);
            s.targets = health;
            return Ok(s);
        }
        let routed = match mode {
            Mode::Wake => self.route_to_app(cx, memo).await.map(|_| true),
            Mode::Observe => routing::routed_everywhere(self.cloud.as_ref(), &self.config, rule).await,
        }
        .map_err(fail)?;
        let (phase, message, routed_at) = self.settled(cx, memo, mode, routed);
        let mut s = cx.status(phase, &message, resources, memo);
        s.targets = health;
        s.routed_at = routed_at;
        Ok(s)
    }

    /// Routed to the app: `ready` once the switch has been in place for `settle` (ALB applies a
    /// change within seconds), `routing` until then.
    /// Also says since when it is routed (epoch seconds).
    fn settled(&self, cx: &Step<'_>, memo: &mut Memo, mode: Mode, routed: bool) -> (Phase, String, Option<i64>) {
        if !routed {
            return (Phase::Routing, "healthy; the next request switches the listener rule to the app".into(), None);
        }
        let first = *memo.routed_at.get_or_insert(Instant::now());
        let ago = |t: Instant| cx.wall - Instant::now().duration_since(t).as_secs() as i64;
        let since = cx.ready_at().unwrap_or(ago(first));
        // A repair this environment made restarts the propagation.
        let since = memo.repaired_at.map_or(since, |t| since.max(ago(t)));
        let settle = self.config.settle.as_secs() as i64;
        if cx.wall - since >= settle || mode == Mode::Observe {
            memo.started.clear();
            (Phase::Ready, "ready: the load balancer forwards this host to the app".into(), Some(since))
        } else {
            (Phase::Routing, format!("listener rule switched to the app; letting it settle for {settle}s"), Some(since))
        }
    }

    /// Switches the standing rules to the app, unless an idle stop claimed the rule since this
    /// step observed it, then records the wake as finished (whoever asks afterwards) and
    /// publishes its metrics. A wake already recorded as finished changes and reads nothing: in
    /// particular it never switches back to the app under an idle stop, which starts from
    /// `ready`. (A claim after the read here is caught by the checker's sweep.)
    async fn route_to_app(&self, cx: &Step<'_>, memo: &mut Memo) -> Result<(), CloudError> {
        let rule = cx.rule;
        if let Some(ready_at) = cx.ready_at() {
            // Switched and recorded by whoever finished the wake: within PROPAGATION the
            // listeners are not read again. Past it, a request that still reaches autostop means
            // a listener lacks the rule (added later, a rule deleted by hand): this step, the
            // fleet's one observer, repairs it rather than waiting for the idle check.
            if cx.wall - ready_at < PROPAGATION.as_secs() as i64 {
                return Ok(());
            }
            // An idle stop starts from `ready`: never switch to the app under one.
            if state::stop_in_progress(self.read_state(rule).await.as_ref(), self.cloud.now()) {
                return Err(CloudError::new("ModifyRule", "IncorrectState", "an idle stop began; not routing"));
            }
            let repaired = routing::switch(self.cloud.as_ref(), &self.config, rule, Route::App).await?;
            if repaired > 0 {
                tracing::warn!(rule = %rule.name, repaired, seconds_since_ready = cx.wall - ready_at, "a request reached autostop long after the switch: standing rules repaired");
                // The repaired rules propagate from now: their clients are paced, not turned away.
                memo.repaired_at = Some(Instant::now());
            }
            return Ok(());
        }
        if state::stop_in_progress(self.read_state(rule).await.as_ref(), self.cloud.now()) {
            return Err(CloudError::new("ModifyRule", "IncorrectState", "an idle stop began; not routing"));
        }
        let changed = routing::switch(self.cloud.as_ref(), &self.config, rule, Route::App).await?;
        if changed > 0 {
            tracing::info!(rule = %rule.name, changed, "standing rules switched to the app");
            // Routed from now: not from an earlier wake this environment saw (a stop that
            // switched back and then failed leaves the resources running).
            memo.routed_at = Some(Instant::now());
        }
        self.finish(cx, memo).await;
        Ok(())
    }

    /// A rule that serves no traffic of its own (a dependency, such as a database) is ready
    /// once its resources run: there is no target group to pass and no listener to switch.
    async fn up_without_traffic(
        &self,
        cx: &Step<'_>,
        memo: &mut Memo,
        mode: Mode,
        resources: Vec<ResourceState>,
    ) -> Status {
        if mode == Mode::Wake && cx.recorded(Phase::Ready).is_none() {
            self.finish(cx, memo).await;
        }
        memo.started.clear();
        cx.status(Phase::Ready, "ready: its resources run (it serves no traffic of its own)", resources, memo)
    }

    /// Records the wake as finished (`ready`, its warm-up kept) and publishes its metrics.
    async fn finish(&self, cx: &Step<'_>, memo: &mut Memo) {
        let recorded = cx.recorded(Phase::Starting);
        let start = recorded.and_then(|s| s.wake_started_at);
        let cause = recorded.and_then(|s| s.wake_cause.clone()).or_else(|| memo.cause.map(|c| c.as_str().to_string()));
        let (rule, wall) = (&cx.rule.name, cx.wall);
        self.record(cx.rule, Some(cx.state.clone()), |prev| transition::ready(prev, rule, wall)).await;
        self.emit_ready(cx, memo, start, cause.as_deref().unwrap_or("unknown"));
    }

    /// A wake was recorded as finished (its standing rules switched to the app): `Wakes`,
    /// `TimeToReady` and the time spent in each phase this environment saw. Emitted by the
    /// environment that made the switch, at the switch: a wake woken only by browsers never
    /// reaches autostop again once the app answers. `TimeToReady` counts from this
    /// environment's first attempt (failures included) when it saw the whole wake, else from
    /// the recorded start.
    fn emit_ready(&self, cx: &Step<'_>, memo: &mut Memo, recorded_start: Option<i64>, cause: &str) {
        let mut log = std::mem::take(&mut memo.phase_log);
        let saw_start = log.iter().any(|(p, _)| *p == Phase::Starting);
        let to_ready = match (memo.wake_started, recorded_start) {
            (Some(first), _) if saw_start => first.elapsed().as_secs(),
            (_, Some(t)) => (cx.wall - t).max(0) as u64,
            _ => return, // found running without waking anything: not a wake
        };
        log.push((Phase::Routing, Instant::now()));
        let mut values = vec![emf::count("Wakes"), emf::seconds("TimeToReady", to_ready)];
        values.extend(time_per_phase(&log).iter().map(|(n, s)| emf::seconds(n, *s)));
        let dims = [("Rule", cx.rule.name.as_str()), ("Cause", cause)];
        let line = emf::line_sets(self.cloud.now() * 1000, &dims, &[&["Rule"], &["Rule", "Cause"]], &values);
        self.cloud.emit_metrics(line);
    }
}

/// Seconds spent starting and waiting for health, from the phases a wake went through.
fn time_per_phase(log: &[(Phase, Instant)]) -> Vec<(&'static str, u64)> {
    let mut per_phase: Vec<(&'static str, u64)> = Vec::new();
    for pair in log.windows(2) {
        let name = match pair[0].0 {
            Phase::Starting | Phase::Stopping => "TimeStarting",
            Phase::WaitingForHealth => "TimeWaitingForHealth",
            _ => continue,
        };
        let secs = pair[1].1.duration_since(pair[0].1).as_secs();
        match per_phase.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 += secs,
            None => per_phase.push((name, secs)),
        }
    }
    per_phase
}
