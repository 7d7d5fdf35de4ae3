//! The handler: one entry point for every event, generic over the cloud so tests pass the fake.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::click;
use crate::cloud::{Cloud, MetricQuery};
use crate::config::gate::Reason;
use crate::config::Config;
use crate::event::{classify_for, Command, Event, EventError, Until};
use crate::http::{prefers_json, AlbReply, Reply, Request};

/// Path of the status endpoint on every rule's host.
pub const STATUS_PATH: &str = "/__autostop/status";
use crate::config::schedule::{self, Mode};
use crate::config::{normalize_host, Rule};
use crate::pages;
use crate::routing::{self as routes, Route, Want};
use crate::sleep::{self as idle, StopOutcome};
use crate::state::intent;
use crate::state::savings;
use crate::state::{transition, Phase, RuleState, MAX_OVERRIDE};
use crate::telemetry::emf;

use crate::wake::{Cause, Status, Waker, STATUS_TTL};

/// Time kept back from the Lambda deadline when holding a request, so we always answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);
/// `Retry-After` while waking, and after an error.
const RETRY_WAKING_SECS: u64 = 5;
const RETRY_ERROR_SECS: u64 = 15;

/// How often the request path looks the load balancer's listeners up again (the idle check
/// does on every run).
pub const LISTENER_REFRESH: Duration = Duration::from_secs(300);

/// What an invocation answers: the ALB's response to a request, or a command's JSON report.
/// Serialised as it is (the ALB reply straight from its fields).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Alb(AlbReply),
    Json(Value),
}

impl serde::Serialize for Answer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Alb(reply) => reply.serialize(serializer),
            Answer::Json(value) => value.serialize(serializer),
        }
    }
}

pub struct App<C> {
    cloud: Arc<C>,
    /// The wake engine over the current config; replaced when the listeners change.
    waker: RwLock<Arc<Waker<C>>>,
    /// The load balancer whose listeners the config serves, when the deployment named it
    /// (`AUTOSTOP_LOAD_BALANCER_ARN`), and when they were last looked up (never yet: `None`).
    discovery: Option<(String, tokio::sync::Mutex<Option<Instant>>)>,
    /// The shared secret API clients wake click-mode rules with (`wake_token.env`, read once).
    wake_secret: Option<String>,
    /// The `Refused` metric line of each rule and [`Reason`] (as in [`Reason::ALL`]), built once.
    refusals: HashMap<String, [emf::Template; 5]>,
}

impl<C: Cloud> App<C> {
    pub fn new(config: Config, cloud: C) -> App<C> {
        App::with_cloud(config, Arc::new(cloud))
    }

    /// An app over a cloud other apps share: several Lambda instances, one AWS.
    pub fn with_cloud(config: Config, cloud: Arc<C>) -> App<C> {
        let wake_secret = config.wake_token.as_ref().and_then(|t| std::env::var(&t.env).ok()).filter(|s| !s.is_empty());
        if let (Some(t), None) = (&config.wake_token, &wake_secret) {
            tracing::warn!(env = %t.env, "wake_token.env is not set: API clients cannot wake click-mode rules");
        }
        let refusals = config.rules.iter().map(|r| (r.name.clone(), refusal_lines(&r.name))).collect();
        let waker = Waker::new(Arc::clone(&cloud), Arc::new(config));
        App { cloud, waker: RwLock::new(Arc::new(waker)), discovery: None, wake_secret, refusals }
    }

    /// The `wake_token` secret, given rather than read from the environment (tests).
    pub fn with_wake_secret(mut self, secret: &str) -> App<C> {
        self.wake_secret = Some(secret.to_string()).filter(|s| !s.is_empty());
        self
    }

    /// The config's listeners are those of `load_balancer`: looked up before the first wake (a
    /// request answered without one needs none), again on every idle check, and at most every
    /// [`LISTENER_REFRESH`] on the request path, so a listener added later (HTTPS once a
    /// certificate is set) is served too. A config given with listeners counts as looked up now.
    pub fn discovering_listeners_of(mut self, load_balancer: &str) -> App<C> {
        let known = (!self.config().listener_arns.is_empty()).then(Instant::now);
        self.discovery = Some((load_balancer.to_string(), tokio::sync::Mutex::new(known)));
        self
    }

    pub fn config(&self) -> Arc<Config> {
        self.waker().config_arc()
    }

    pub fn waker(&self) -> Arc<Waker<C>> {
        Arc::clone(&self.waker.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    /// Looks the load balancer's listeners up again when due (or `now`), and serves the new set
    /// if it changed. A failed lookup keeps the listeners there are.
    async fn refresh_listeners(&self, now: bool) {
        let Some((lb, last)) = &self.discovery else { return };
        let mut last = last.lock().await;
        // Without any listener known (the first lookup failed), every wake tries again.
        let known = !self.config().listener_arns.is_empty();
        if !now && known && last.is_some_and(|t| t.elapsed() < LISTENER_REFRESH) {
            return;
        }
        *last = Some(Instant::now());
        let found = match self.cloud.listeners_of(lb).await {
            Ok(found) if !found.is_empty() => found,
            Ok(_) => return tracing::warn!(load_balancer = %lb, "no listeners found; keeping the ones known"),
            Err(e) => {
                return tracing::warn!(load_balancer = %lb, code = %e.code, "listeners not looked up; keeping the ones known")
            }
        };
        let config = self.config();
        let (mut a, mut b) = (found.clone(), config.listener_arns.clone());
        a.sort();
        b.sort();
        if a != b {
            tracing::info!(load_balancer = %lb, before = ?config.listener_arns, now = ?found, "listeners changed");
            let mut next = (*config).clone();
            next.listener_arns = found;
            let waker = Waker::new(Arc::clone(&self.cloud), Arc::new(next));
            *self.waker.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(waker);
        }
    }

    /// [`App::answer`] as a JSON value (the CLI and tests read it so).
    pub async fn handle(&self, event: Value, time_left: Option<Duration>) -> Result<Value, EventError> {
        let answer = self.answer(event, time_left).await?;
        serde_json::to_value(answer).map_err(|e| EventError(format!("response not serialisable: {e}")))
    }

    /// Any event. `time_left` is what remains of the Lambda invocation (None outside Lambda).
    /// `Err` only for events autostop cannot handle; AWS faults become responses.
    pub async fn answer(&self, event: Value, time_left: Option<Duration>) -> Result<Answer, EventError> {
        let event = classify_for(event, self.config().wake_token.as_ref().map(|t| t.header.as_str()))?;
        let now = matches!(event, Event::Schedule | Event::Command(Command::IdleCheck { .. } | Command::Sync));
        if !matches!(event, Event::Alb(..)) {
            // A request looks them up only when it is about to wake something (`respond`).
            self.refresh_listeners(now).await;
        }
        match event {
            Event::Alb(req) => {
                // Each branch boxed: an unboxed `handle` future is as large as all its branches'
                // AWS SDK futures together, which in a debug build overflowed a 2 MiB stack.
                Ok(Answer::Alb(Box::pin(self.alb(&req, time_left)).await))
            }
            other => Box::pin(self.command(other, time_left)).await.map(Answer::Json),
        }
    }

    /// The schedule and the operators' commands: a JSON report each.
    async fn command(&self, event: Event, time_left: Option<Duration>) -> Result<Value, EventError> {
        match event {
            Event::Alb(..) => Err(EventError("an ALB request is not a command".into())),
            Event::Command(Command::Status) => Ok(Box::pin(self.status_report()).await),
            Event::Command(Command::Wake { rule }) => {
                let rule = self.named_rule(&rule)?;
                Ok(to_json(&self.waker().wake(&rule, Cause::Operator).await))
            }
            Event::Schedule => Box::pin(self.idle_check(false, time_left)).await,
            Event::Command(Command::Sync) => self.sync().await,
            Event::Command(Command::IdleCheck { dry_run }) => Box::pin(self.idle_check(dry_run, time_left)).await,
            Event::Command(Command::Stop { rule }) => Box::pin(self.stop(&rule)).await,
            Event::Command(Command::Override { rule, mode, until }) => {
                Box::pin(self.set_override(&rule, mode, until, "operator")).await
            }
        }
    }

    /// `keep-awake`, `sleep` and `resume`: the override is written to the rule's item, then
    /// acted on at once: a rule kept awake is started, one put to sleep is stopped (a resumed
    /// rule is left to its schedule and the idle check). `by` is who asked: the CLI's caller
    /// identity, or `operator` for a direct invoke.
    pub async fn set_override(
        &self,
        name: &str,
        mode: Option<Mode>,
        until: Option<Until>,
        by: &str,
    ) -> Result<Value, EventError> {
        let rule = self.named_rule(name)?;
        let now = self.cloud.now();
        let tz = rule.schedule.as_ref().map(|s| s.timezone.as_str()).unwrap_or("UTC");
        let until = match (mode, until) {
            (None, _) => None,
            (Some(_), Some(Until::For(d))) => Some(now + d.as_secs() as i64),
            (Some(_), Some(Until::At(text))) => {
                Some(schedule::resolve_until(&text, tz, now).map_err(|e| EventError(format!("\"until\": {e}")))?)
            }
            (Some(_), None) => return Err(EventError("an override needs \"for\" or \"until\"".into())),
        };
        if mode == Some(Mode::Asleep) {
            self.listeners_known()?;
        }
        if until.is_some_and(|u| u - now > MAX_OVERRIDE.as_secs() as i64) {
            return Err(EventError("an override lasts at most 30 days (\"for\" / \"until\")".into()));
        }
        let set = |prev: Option<&RuleState>| Some(transition::override_set(prev, &rule.name, mode, until, by));
        self.waker()
            .store()
            .update(&rule.name, None, set)
            .await
            .map_err(|e| EventError(format!("override not saved, nothing changed: {e}")))?;
        tracing::info!(rule = %rule.name, mode = mode.map(Mode::as_str), until, by, "override set");
        let result = match mode {
            Some(Mode::Awake) => self.waker().wake(&rule, Cause::Operator).await.phase.as_str().to_string(),
            Some(Mode::Asleep) => match idle::stop_now(self.cloud(), &self.config(), &rule).await {
                Ok(StopOutcome::Stopped) => "stopped".into(),
                Ok(StopOutcome::BackedOff(why) | StopOutcome::Partial(why)) => why,
                Err(e) => format!("stop failed, the idle check retries: {e}"),
            },
            None => "cleared".into(),
        };
        let shown = mode.zip(until).map(|(m, u)| {
            json!({ "mode": m.as_str(), "until": u, "until_local": intent::local(rule.schedule.as_deref(), u), "by": by })
        });
        Ok(json!({ "rule": rule.name, "override": shown, "result": result }))
    }

    async fn stop(&self, rule: &str) -> Result<Value, EventError> {
        let rule = self.named_rule(rule)?;
        self.listeners_known()?;
        let outcome = idle::stop_now(self.cloud(), &self.config(), &rule)
            .await
            .map_err(|e| EventError(format!("stop of `{}` failed: {e}", rule.name)))?;
        let (result, detail) = match outcome {
            StopOutcome::Stopped => ("stopped", None),
            StopOutcome::BackedOff(why) => ("backed_off", Some(why)),
            StopOutcome::Partial(why) => ("partial", Some(why)),
        };
        Ok(json!({ "rule": rule.name, "result": result, "detail": detail }))
    }

    async fn idle_check(&self, dry_run: bool, time_left: Option<Duration>) -> Result<Value, EventError> {
        self.listeners_known()?;
        let report = idle::idle_check(&self.waker(), dry_run, time_left)
            .await
            .map_err(|e| EventError(format!("idle check could not observe AWS, nothing was changed: {e}")))?;
        serde_json::to_value(report).map_err(|e| EventError(format!("report not serialisable: {e}")))
    }

    /// Creates or repairs every standing rule on every listener. Rules recorded as stopped
    /// forward to the Lambda; every other rule keeps the direction it has (a new one: the Lambda).
    pub async fn sync(&self) -> Result<Value, EventError> {
        self.listeners_known()?;
        let cloud = self.cloud();
        let config = &self.config();
        let fail =
            |e: crate::cloud::CloudError| EventError(format!("sync failed, the next sync or idle check retries: {e}"));
        let states = cloud.load_states(&config.state_table).await.unwrap_or_default();
        let stopped: Vec<String> = states.into_iter().filter(|s| s.phase == Phase::Stopped).map(|s| s.rule).collect();
        let want = |name: &str| {
            if stopped.iter().any(|s| s == name) {
                Want::Route(Route::Lambda)
            } else {
                Want::Keep
            }
        };
        let mut views = routes::views(cloud, config).await.map_err(fail)?;
        let reports = routes::reconcile(cloud, config, &mut views, &want, false).await.map_err(fail)?;
        tracing::info!(listeners = reports.len(), standing = config.standing.len(), "sync done");
        Ok(json!({ "standing_rules_per_listener": config.standing.len(), "listeners": reports }))
    }

    /// Every rule: its live status (nothing is woken), listener rules, activity and idle time (a
    /// dry-run idle decision), history and savings from the state table.
    pub async fn status_report(&self) -> Value {
        let cloud = self.cloud();
        let (config, waker) = (self.config(), self.waker());
        let now = cloud.now();
        let decisions = match idle::idle_check(&waker, true, None).await {
            Ok(report) => report.rules,
            Err(e) => {
                tracing::warn!(error = %e, "status without activity: AWS could not be observed");
                Vec::new()
            }
        };
        let states = cloud.load_states(&config.state_table).await.unwrap_or_default();
        let refused = refused_last_hour(cloud, &config, now).await;
        let mut rules = Vec::with_capacity(config.rules.len());
        for rule in &config.rules {
            let status = waker.observe(rule).await;
            let decision = decisions.iter().find(|d| d.rule == rule.name);
            let state = states.iter().find(|s| s.rule == rule.name);
            let asleep = state.map(|s| savings::asleep_this_month(s, now)).unwrap_or(0);
            let hours = asleep as f64 / 3600.0;
            rules.push(json!({
                "rule": rule.name,
                "hosts": rule.hosts,
                "phase": status.phase,
                "message": status.message,
                "resources": status.resources,
                "listener_rules": decision.map(|d| d.listener_rules),
                "last_activity": decision.and_then(|d| d.last_activity),
                "idle_for_seconds": decision.and_then(|d| d.idle_for_seconds),
                "idle_seconds": rule.idle.as_secs(),
                "last_error": state.and_then(|s| s.last_error.clone()),
                "wakes": state.map(|s| s.wakes).unwrap_or(0),
                "stops": state.map(|s| s.stops).unwrap_or(0),
                "month": savings::month_label(now),
                "hours_asleep_this_month": (hours * 100.0).round() / 100.0,
                "hourly_cost": rule.hourly_cost,
                "saved_this_month": rule.hourly_cost.map(|c| savings::saved(c, asleep)),
                "refused_last_hour": refused.get(&rule.name),
                "intent": intent::intent(rule, state, now).why(),
                "schedule": rule.schedule.as_ref().map(|s| schedule_json(s, now)),
                "override": intent::Override::active(state, now).map(|o| json!({
                    "mode": o.mode.as_str(), "until": o.until, "by": o.by,
                    "until_local": intent::local(rule.schedule.as_deref(), o.until),
                })),
            }));
        }
        json!({ "now": now, "rules": rules })
    }

    /// Stopping or routing anything needs the listeners: without them (a lookup that failed) a
    /// stop could not take the traffic away first.
    fn listeners_known(&self) -> Result<(), EventError> {
        if self.config().listener_arns.is_empty() {
            return Err(EventError(
                "the load balancer's listeners could not be looked up (DescribeListeners), so nothing was changed; \
                 the next run retries"
                    .into(),
            ));
        }
        Ok(())
    }

    fn named_rule(&self, name: &str) -> Result<Rule, EventError> {
        let config = self.config();
        config.rule(name).cloned().ok_or_else(|| {
            EventError(format!("no rule named `{name}`; configured rules: {}", config.rule_names().join(", ")))
        })
    }

    pub async fn alb(&self, request: &Request, time_left: Option<Duration>) -> AlbReply {
        let reply = self.respond(request, time_left).await;
        reply.into_alb(request.multi_value)
    }

    /// The HTTP table of SPEC.
    pub async fn respond(&self, req: &Request, time_left: Option<Duration>) -> Reply {
        if req.is_health_check() {
            return Reply::text(200, "ok", "health");
        }
        let Some(host) = req.host.as_deref().and_then(normalize_host) else {
            return self.no_host(req);
        };
        let config = self.config();
        let Some(rule) = config.rule_for_host(&host) else {
            // Debug, like refusals: under a scan these are most requests, and a log line each
            // would cost more than the answer (and CloudWatch Logs ingestion besides).
            tracing::debug!(host = %host, "no rule for host");
            return not_found(req, &host);
        };
        if let Some(reason) = rule.gate.refuse(req) {
            return self.refuse(req, &host, rule, reason);
        }
        self.refresh_listeners(false).await;
        if self.config().listener_arns.is_empty() {
            return no_listeners(req);
        }
        if rule.gate.click {
            if let Some(reply) = self.click_gate(req, &host, rule).await {
                return reply;
            }
        }
        let reply = if req.path == STATUS_PATH {
            let status = self.waker().wake(rule, Cause::Browser).await;
            Reply::json(200, to_json(&status).to_string(), "status")
        } else if req.is_browser() {
            let status = self.waker().wake(rule, Cause::Browser).await;
            browser_reply(&host, &status, self.cloud.now())
        } else {
            self.hold(req, rule, time_left).await
        };
        tracing::info!(host = %host, rule = %rule.name, method = %req.method, status = reply.status, "answered");
        reply
    }

    /// The static answer to a request that wakes nothing, counted in the `Refused` metric.
    fn refuse(&self, req: &Request, host: &str, rule: &Rule, reason: Reason) -> Reply {
        // Counted by the `Refused` metric; the line itself only at debug (see `no rule for host`).
        tracing::debug!(host = %host, rule = %rule.name, reason = reason.as_str(), method = %req.method, path = %req.path, "refused: wakes nothing");
        let now = self.cloud.now_ms();
        let line = match self.refusals.get(&rule.name) {
            Some(lines) => lines[reason as usize].at(now),
            None => refusal_lines(&rule.name)[reason as usize].at(now),
        };
        self.cloud.emit_metrics(line);
        let token_header = self.config().wake_token.as_ref().map(|t| t.header.clone());
        refused(req, host, rule, reason, token_header.as_deref())
    }

    /// A click-mode rule ([`crate::click`]): `None` when the request goes on as in request mode
    /// (it holds the wake secret, or the rule is not asleep); else the answer. Only the button's
    /// POST wakes a sleeping rule; a GET from a browser gets the button.
    async fn click_gate(&self, req: &Request, host: &str, rule: &Rule) -> Option<Reply> {
        if click::has_secret(req.wake_token.as_deref(), self.wake_secret.as_deref()) {
            return None;
        }
        if click::is_click(req, host) {
            tracing::info!(host = %host, rule = %rule.name, "woken by its page's button");
            let status = self.waker().wake(rule, Cause::Click).await;
            if status.phase == Phase::Error || status.held_asleep.is_some() {
                return Some(browser_reply(host, &status, self.cloud.now()));
            }
            // Post/Redirect/Get: the progress page is then a GET the browser may reload.
            return Some(Reply::see_other(req.same_url()));
        }
        let status = self.waker().observe(rule).await;
        if status.phase != Phase::Stopped {
            return None;
        }
        if req.path == STATUS_PATH {
            return Some(Reply::json(200, to_json(&status).to_string(), "status"));
        }
        if req.is_browser() && !prefers_json(&req.accept) {
            if let Some(token) = click::new_token() {
                let page = pages::click(host, &req.same_url(), &token);
                return Some(Reply::html(200, page, "click").with("set-cookie", click::set_cookie(&token, req.https)));
            }
        }
        Some(self.refuse(req, host, rule, Reason::ClickRequired))
    }

    /// Holds a non-browser request while the rule wakes: 307 to the same URL once ready, else
    /// 503 with `Retry-After` when `hold` (or the Lambda's time) runs out or a step fails.
    async fn hold(&self, req: &Request, rule: &Rule, time_left: Option<Duration>) -> Reply {
        let waker = self.waker();
        let mut budget = waker.config().hold;
        if let Some(left) = time_left {
            budget = budget.min(left.saturating_sub(DEADLINE_MARGIN));
        }
        let deadline = Instant::now() + budget;
        loop {
            let status = waker.wake(rule, Cause::Api).await;
            if let Some(held) = &status.held_asleep {
                return Reply::json(503, to_json(&status).to_string(), "asleep")
                    .with("retry-after", retry_after_held(held, self.cloud.now()).to_string());
            }
            match status.phase {
                Phase::Ready => return Reply::redirect(req.same_url()),
                Phase::Error => {
                    return Reply::json(503, to_json(&status).to_string(), "error")
                        .with("retry-after", RETRY_ERROR_SECS.to_string())
                }
                _ if Instant::now() >= deadline => {
                    let retry = status.eta_seconds.unwrap_or(RETRY_WAKING_SECS).clamp(1, 60);
                    return Reply::json(503, to_json(&status).to_string(), "waking")
                        .with("retry-after", retry.to_string());
                }
                _ => tokio::time::sleep_until((Instant::now() + STATUS_TTL).min(deadline)).await,
            }
        }
    }

    fn no_host(&self, req: &Request) -> Reply {
        let why = "The request has no Host header, so autostop cannot tell which environment it is for.";
        if prefers_json(&req.accept) || !req.is_browser() {
            return Reply::json(400, json!({ "error": "missing_host", "message": why }).to_string(), "error");
        }
        Reply::html(400, pages::message("No host in the request", None, vec![why.into()], None, None), "error")
    }
}

/// Requests answered without a wake in the last hour, per rule, by reason (the `Refused`
/// metric as CloudWatch has it, so from every Lambda environment). Empty when it cannot be read.
async fn refused_last_hour<C: Cloud>(cloud: &C, config: &Config, now: i64) -> HashMap<String, Value> {
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
    let series = match cloud.metric_data(&queries, now - 3600, now + 60).await {
        Ok(series) => series,
        Err(e) => {
            tracing::warn!(code = %e.code, "refusals of the last hour not read");
            return HashMap::new();
        }
    };
    let mut out: HashMap<String, Value> = HashMap::new();
    for (q, s) in queries.iter().zip(series) {
        let total: f64 = s.points.iter().map(|(_, v)| v).sum();
        if total > 0.0 {
            let entry = out.entry(q.dimensions[0].1.clone()).or_insert_with(|| json!({}));
            entry[q.dimensions[1].1.as_str()] = json!(total as u64);
        }
    }
    out
}

/// A schedule in the status: its window now and the next change, in its zone.
fn schedule_json(s: &schedule::Schedule, now: i64) -> Value {
    let at = s.at(now);
    json!({
        "name": s.name,
        "timezone": s.timezone,
        "mode": at.mode.map(Mode::as_str),
        "next_change": at.next_change,
        "next_change_local": at.next_change.map(|t| s.local(t)),
    })
}

fn to_json(status: &Status) -> Value {
    serde_json::to_value(status).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// `Retry-After` while held asleep: until the hold ends, between a minute and a day.
fn retry_after_held(held: &crate::wake::HeldAsleep, now: i64) -> i64 {
    held.until.map(|u| u - now).unwrap_or(3600).clamp(60, 86_400)
}

/// `Retry-After` for a refused request: nothing will change for it soon.
const RETRY_REFUSED_SECS: u64 = 3600;

/// The static answer to a request that wakes nothing ([`crate::gate`]): no AWS call.
fn refused(req: &Request, host: &str, rule: &Rule, reason: Reason, token_header: Option<&str>) -> Reply {
    if reason == Reason::Path && req.path == "/robots.txt" {
        return Reply::text(200, "User-agent: *\nDisallow: /\n", "refused");
    }
    let (status, why, what) = match (reason, &rule.gate.wake_from) {
        (Reason::Network, Some(nets)) => {
            let nets: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            (
                403,
                format!(
                    "This environment is asleep, and it can be woken only from these networks: {}.",
                    nets.join(", ")
                ),
                "Connect through one of them (the office network, the VPN), then reload this page.".to_string(),
            )
        }
        (Reason::ClickRequired, _) => (
            503,
            "This environment is asleep and wakes only from the button on its page.".to_string(),
            match token_header {
                Some(h) => {
                    format!("Open the address in a browser and press Wake, or send the wake token in the `{h}` header.")
                }
                None => "Open the address in a browser and press Wake.".to_string(),
            },
        ),
        _ => (
            503,
            "This environment is asleep. Automated clients, probes and this kind of request do not wake it."
                .to_string(),
            "Open the address in a browser to wake it.".to_string(),
        ),
    };
    let reply = if prefers_json(&req.accept) || !req.is_browser() {
        let body = ErrorBody {
            error: "not_woken",
            reason: Some(reason.as_str()),
            host,
            message: &why,
            what_to_do: Some(&what),
        };
        Reply::json(status, body.to_json(), "refused")
    } else {
        Reply::html(status, pages::message("Asleep", Some(host), vec![why, what], None, None), "refused")
    };
    if status == 503 {
        reply.with("retry-after", RETRY_REFUSED_SECS.to_string())
    } else {
        reply
    }
}

/// A rule's `Refused` lines, one per [`Reason`], indexed by `reason as usize`.
fn refusal_lines(rule: &str) -> [emf::Template; 5] {
    Reason::ALL.map(|r| emf::Template::new(&[("Rule", rule), ("Reason", r.as_str())], &[emf::count("Refused")]))
}

/// The load balancer's listeners could not be looked up yet: nothing can be routed, so nothing
/// is woken; the next request tries again.
fn no_listeners(req: &Request) -> Reply {
    let why = "autostop could not look up the load balancer's listeners yet, so it cannot route this host; nothing was started.";
    let what = "Try again in a minute; if it persists, the function's log says why (DescribeListeners).";
    if prefers_json(&req.accept) || !req.is_browser() {
        let body =
            ErrorBody { error: "listeners_unknown", reason: None, host: "", message: why, what_to_do: Some(what) };
        return Reply::json(503, body.to_json(), "error").with("retry-after", RETRY_ERROR_SECS.to_string());
    }
    let page = pages::message("Not ready to wake anything yet", None, vec![why.into(), what.into()], None, Some(30));
    Reply::html(503, page, "error").with("retry-after", RETRY_ERROR_SECS.to_string())
}

/// The JSON answer of a request that wakes nothing, written without a JSON tree in between.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    host: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    what_to_do: Option<&'a str>,
}

impl ErrorBody<'_> {
    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A browser gets a page; any other client a short JSON answer (as for a refusal), the cheapest
/// answer to a scan of unknown hosts.
fn not_found(req: &Request, host: &str) -> Reply {
    if prefers_json(&req.accept) || !req.is_browser() {
        let message = format!("no autostop rule serves {host}");
        let body = ErrorBody { error: "unknown_host", reason: None, host, message: &message, what_to_do: None };
        return Reply::json(404, body.to_json(), "not-found");
    }
    let page = pages::message(
        "No environment here",
        Some(host),
        vec![
            "autostop has no rule for this host, so there is nothing to wake.".into(),
            "Check the address, or ask your platform team to add the host to a rule in autostop.toml.".into(),
        ],
        None,
        None,
    );
    Reply::html(404, page, "not-found")
}

/// Browsers get the progress page (never a redirect: a redirect that lands on us again while
/// the ALB has not applied the new rule would loop), or the error page.
fn browser_reply(host: &str, status: &Status, now: i64) -> Reply {
    if let Some(held) = &status.held_asleep {
        let page = pages::message(
            "Asleep on schedule",
            Some(host),
            vec![
                format!("This environment is {}.", held.why),
                "Nothing was started. Come back then, or ask an operator to run `autostop keep-awake`.".into(),
            ],
            None,
            None,
        );
        return Reply::html(503, page, "asleep").with("retry-after", retry_after_held(held, now).to_string());
    }
    match (&status.phase, &status.error) {
        (Phase::Error, Some(err)) => {
            let page = pages::message(
                "This environment could not be woken",
                Some(host),
                vec![format!("{}.", err.detail), format!("What to do: {}", err.action)],
                Some(&err.code),
                Some(30),
            );
            Reply::html(503, page, "error").with("retry-after", RETRY_ERROR_SECS.to_string())
        }
        _ => Reply::html(200, pages::progress(host, status), "progress"),
    }
}
