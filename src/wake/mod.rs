//! The wake path: observe -> plan (pure) -> act, one idempotent step per call.
//!
//! [`Waker::wake`] is what every request for a sleeping rule calls. Concurrent callers in one
//! Lambda environment queue on that rule's async mutex; the first does the step, the rest find
//! its status cached for [`STATUS_TTL`]. Across environments, the state item carries the last
//! observed status and an observer lease (`fleet`): one environment observes, every other
//! answers from the item. Each step:
//!
//! 1. observes the rule's resources ([`observe()`]);
//! 2. decides with [`plan::plan_resources`] (pure): error, wait for a stop, start, booting, or up;
//! 3. acts: readies its dependencies first (`dependencies`), makes sure the rule's standing ALB
//!    rules exist (so the ALB health-checks the app's target group) and starts what is asleep
//!    (`start`); once up, reads target health and, with a healthy target, switches the
//!    standing rules to the app and records the wake as finished (`ready`). The rule is
//!    `ready` once the switch has been in place for `settle`: ALB applies a change within
//!    seconds.
//!
//! Every step is safe to repeat and safe to run in several environments at once: starting a
//! pending instance is a no-op, and switching a rule that already forwards to the app changes
//! nothing. The wake writes the state item only through [`crate::state::Store`], and never over a
//! stop's claim.

mod dependencies;
mod fleet;
mod holds;
pub mod observe;
pub mod plan;
mod ready;
mod start;
pub mod status;
mod step;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::cloud::Cloud;
use crate::config::{Config, Rule};
use crate::state::Store;

pub use crate::state::Phase;
pub use observe::{observe, Observed};
pub use status::{
    advice, eta, typical_warmup, waiting_message, DependencyState, HeldAsleep, ResourceState, Status, StepError,
};

/// How long one observation serves every caller of a rule (the "about a second" of SPEC).
pub const STATUS_TTL: Duration = Duration::from_secs(1);
/// How long a published `ready` status serves every environment: after the switch, requests
/// that still reach autostop are answered from the item without reading the listeners again.
pub const READY_TTL: Duration = Duration::from_secs(10);
/// How long a listener rule change may take to reach every load balancer node. An ALB applies a
/// change within seconds and documents no bound; past this, a request that still reaches
/// autostop for a rule recorded ready means a listener lacks its standing rule.
pub const PROPAGATION: Duration = Duration::from_secs(30);
/// How long an observer lease lasts: a crashed holder frees the rule after this long.
pub const LEASE: Duration = Duration::from_secs(5);
/// How long a request waits for one step before it answers from the last observation. Inside
/// the observer [`LEASE`], so a step never outlives it, and a page or status answer comes within
/// this however slow AWS is; the next request's step goes on (every action is idempotent).
pub const STEP_BUDGET: Duration = Duration::from_secs(2);
const _: () = assert!(STEP_BUDGET.as_millis() < LEASE.as_millis());
/// How long a recorded broken start (seconds) is shown before a request may try the start again.
pub const ERROR_PAUSE: i64 = 60;

/// Who asked for a wake: the `Cause` dimension of the `Wakes` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A browser's visit (request mode) or its progress page's poll.
    Browser,
    /// An API client held until ready.
    Api,
    /// The Wake button of a click-mode rule.
    Click,
    /// `autostop wake` or a direct invoke.
    Operator,
    /// The idle check, starting a rule for its schedule's `awake` window.
    Schedule,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Browser => "browser",
            Cause::Api => "api",
            Cause::Click => "click",
            Cause::Operator => "operator",
            Cause::Schedule => "schedule",
        }
    }
}

/// Whether a step may act or only look (the `status` command must never wake anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Wake,
    Observe,
}

/// Per-rule memory of this Lambda environment.
#[derive(Default)]
struct Memo {
    cached: Option<(Instant, Status)>,
    /// The last look ([`Waker::look`]): never served to a wake, which must act.
    looked: Option<(Instant, Status)>,
    wake_started: Option<Instant>,
    /// Instances this wake started.
    started: HashSet<String>,
    /// When this environment first saw all the rule's ALB rules in place.
    routed_at: Option<Instant>,
    /// When this environment last repaired a standing rule of a rule recorded ready.
    repaired_at: Option<Instant>,
    last_phase: Option<Phase>,
    /// Each phase this wake went through and when it began (for the time-per-phase metrics).
    phase_log: Vec<(Phase, Instant)>,
    /// Who asked last: recorded as the cause when a wake starts.
    cause: Option<Cause>,
    /// The verified user who asked last (behind SSO): recorded as `woken_by` when a wake starts.
    by: Option<String>,
    /// When this environment first saw every dependency ready (the `delay` counts from it).
    dependencies_ready: Option<Instant>,
    /// When this wake began readying the rule's dependencies, until its own start is recorded:
    /// the wake counts from then.
    dependencies_began: Option<Instant>,
    /// The target group's health-check floor, once read (a first wake's ETA).
    health_floor: Option<Option<u64>>,
}

/// The wake engine, shared by every request of this Lambda environment.
pub struct Waker<C> {
    cloud: Arc<C>,
    config: Arc<Config>,
    memos: HashMap<String, Mutex<Memo>>,
    /// This execution environment, as observer leases name it.
    id: String,
    /// Whether this environment has said that the state table cannot be reached.
    degraded: AtomicBool,
}

impl<C: Cloud> Waker<C> {
    pub fn new(cloud: Arc<C>, config: Arc<Config>) -> Waker<C> {
        let memos = config.rules.iter().map(|r| (r.name.clone(), Mutex::new(Memo::default()))).collect();
        Waker { cloud, config, memos, id: environment_id(), degraded: AtomicBool::new(false) }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn config_arc(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    /// The state table, through its one writer.
    pub fn store(&self) -> Store<'_, C> {
        Store::of(self.cloud.as_ref(), &self.config)
    }

    /// Advances the wake by one step (or returns the status another caller got within
    /// [`STATUS_TTL`]).
    pub async fn wake(&self, rule: &Rule, cause: Cause) -> Status {
        self.wake_as(rule, cause, None).await
    }

    /// [`Waker::wake`] asked by `by`, a verified user (the token's email, else its subject):
    /// recorded as the wake's `woken_by` if this step starts it.
    pub async fn wake_as(&self, rule: &Rule, cause: Cause, by: Option<&str>) -> Status {
        let mut memo = self.memo(rule).lock().await;
        memo.cause = Some(cause);
        memo.by = by.map(str::to_string);
        if let Some((at, status)) = &memo.cached {
            if at.elapsed() < STATUS_TTL {
                return status.clone();
            }
        }
        let step = tokio::time::timeout(STEP_BUDGET, self.fleet_step(rule, &mut memo, Mode::Wake)).await;
        let status = step.unwrap_or_else(|_| late(rule, &memo, Phase::Starting));
        memo.cached = Some((Instant::now(), status.clone()));
        status
    }

    /// The rule's status for a page or poll that wakes nothing (a click-mode rule's page):
    /// from this environment's last step or look within [`STATUS_TTL`], else the fleet's
    /// observation (one environment observes for all, as for a wake), so the AWS calls stay
    /// flat however many such requests arrive.
    pub async fn look(&self, rule: &Rule) -> Status {
        let mut memo = self.memo(rule).lock().await;
        let fresh = |c: &Option<(Instant, Status)>| {
            c.as_ref().filter(|(at, _)| at.elapsed() < STATUS_TTL).map(|(_, s)| s.clone())
        };
        if let Some(status) = fresh(&memo.cached).or_else(|| fresh(&memo.looked)) {
            return status;
        }
        let step = tokio::time::timeout(STEP_BUDGET, self.fleet_step(rule, &mut memo, Mode::Observe)).await;
        // Knowing nothing, a look says asleep: a click-mode page then offers its button.
        let status = step.unwrap_or_else(|_| late(rule, &memo, Phase::Stopped));
        memo.looked = Some((Instant::now(), status.clone()));
        status
    }

    /// The rule's status without acting on anything.
    pub async fn observe(&self, rule: &Rule) -> Status {
        let mut memo = self.memo(rule).lock().await;
        self.step(rule, &mut memo, Mode::Observe, None).await
    }

    fn memo(&self, rule: &Rule) -> &Mutex<Memo> {
        self.memos.get(&rule.name).expect("every configured rule has a memo")
    }

    fn note_degraded(&self) -> bool {
        !self.degraded.swap(true, Ordering::Relaxed)
    }
}

/// This execution environment's name in observer leases: unique per process and per waker.
fn environment_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("env-{:x}-{:x}-{}", std::process::id(), nanos as u64, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The answer when a step did not finish within [`STEP_BUDGET`]: this environment's last
/// observation (else `unknown`'s phase), saying AWS is slow. The step was abandoned between
/// calls or in one; what it did stands, and the next request's step goes on from what AWS shows.
fn late(rule: &Rule, memo: &Memo, unknown: Phase) -> Status {
    tracing::warn!(rule = %rule.name, budget_ms = STEP_BUDGET.as_millis() as u64, "AWS too slow for a step; answering from the last observation");
    let last = memo.cached.as_ref().or(memo.looked.as_ref()).map(|(_, s)| s.clone());
    let mut status = last.unwrap_or_else(|| Status::new(&rule.name, unknown, ""));
    status.message = format!(
        "AWS is slow to answer (nothing within {} s); showing the last observation and retrying",
        STEP_BUDGET.as_secs()
    );
    status
}

fn elapsed(memo: &Memo) -> Option<u64> {
    memo.wake_started.map(|t| Instant::now().duration_since(t).as_secs())
}
