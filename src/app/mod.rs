//! The handler: one entry point for every event, generic over the cloud so tests pass the fake.
//! It is the only place that reads events ([`event`]) and dispatches them: an ALB request to
//! the HTTP table ([`crate::serve`]), the schedule to the idle check ([`crate::sleep`]), a
//! direct invoke to an operator command ([`crate::ops`]). Each command also has a typed method
//! here, which the CLI calls and prints. It decides nothing itself: which answer is serve's,
//! what to do is the commands', the idle check's and the wake's.

pub mod event;
mod listeners;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::cloud::alb::load_balancer_of_listener;
use crate::cloud::Cloud;
use crate::config::schedule::Mode;
use crate::config::Config;
use crate::http::{AlbReply, Reply, Request};
use crate::ops::overrides::{OverrideReport, Until};
use crate::ops::status::StatusReport;
use crate::ops::stop::StopReport;
use crate::ops::sync::SyncReport;
use crate::ops::{self, OpError};
use crate::serve::{self, Front, Screened};
use crate::sleep::{self, IdleReport};
use crate::wake::{Cause, Status, Waker};

use event::{classify_for, Command, Event, EventError};
pub use listeners::LISTENER_REFRESH;
use listeners::{Discovery, Protocols};

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
    /// The load balancer whose listeners the config serves, when the deployment named it.
    discovery: Option<Discovery>,
    /// Which listeners are HTTP (for rules behind sign-in).
    protocols: Protocols,
    front: Front,
}

impl<C: Cloud> App<C> {
    pub fn new(config: Config, cloud: C) -> App<C> {
        App::with_cloud(config, Arc::new(cloud))
    }

    /// An app over a cloud other apps share: several Lambda instances, one AWS.
    pub fn with_cloud(config: Config, cloud: Arc<C>) -> App<C> {
        let front = Front::new(&config);
        let waker = Waker::new(Arc::clone(&cloud), Arc::new(config));
        App { cloud, waker: RwLock::new(Arc::new(waker)), discovery: None, protocols: Protocols::default(), front }
    }

    /// The `wake_token` secret, given rather than read from the environment (tests).
    pub fn with_wake_secret(mut self, secret: &str) -> App<C> {
        self.front = self.front.with_wake_secret(secret);
        self
    }

    /// Sign-ins verified with `verifier` (its key server) rather than the ELB key server.
    pub fn with_verifier(mut self, verifier: crate::identity::Verifier) -> App<C> {
        self.front = self.front.with_verifier(verifier);
        self
    }

    /// Our load balancers, the only signers of a sign-in we accept: those of the configured
    /// listeners, and the one the deployment names.
    fn signers(&self, config: &Config) -> Vec<String> {
        let mut lbs: Vec<String> = config.listener_arns.iter().map(|l| load_balancer_of_listener(l)).collect();
        lbs.extend(self.discovery.as_ref().map(|d| d.load_balancer().to_string()));
        lbs.sort();
        lbs.dedup();
        lbs
    }

    /// The config's listeners are those of `load_balancer` (see `app::listeners`). A config given
    /// with listeners counts as looked up now.
    pub fn discovering_listeners_of(mut self, load_balancer: &str) -> App<C> {
        self.discovery = Some(Discovery::new(load_balancer, !self.config().listener_arns.is_empty()));
        self
    }

    /// Looks the load balancer's listeners up again when due (or `now`), and serves the new set
    /// if it changed.
    /// Then, with rules behind sign-in, learns which of them are HTTP.
    pub async fn refresh_listeners(&self, now: bool) {
        if let Some(discovery) = &self.discovery {
            let config = self.config();
            if let Some(found) = discovery.changed(self.cloud.as_ref(), &config.listener_arns, now).await {
                let mut next = (*config).clone();
                next.listener_arns = found;
                self.serve_config(next);
            }
        }
        let config = self.config();
        if let Some(http) = self.protocols.learn(self.cloud.as_ref(), &config).await {
            let mut next = (*config).clone();
            next.http_listeners = http;
            self.serve_config(next);
        }
    }

    fn serve_config(&self, next: Config) {
        let waker = Waker::new(Arc::clone(&self.cloud), Arc::new(next));
        *self.waker.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(waker);
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

    /// [`App::answer`] as a JSON value (tests read it so).
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
                // Each branch boxed: an unboxed `answer` future is as large as all its branches'
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
            Event::Command(Command::Status) => json(Box::pin(self.status()).await),
            Event::Command(Command::Wake { rule }) => json(self.wake(&rule).await?),
            Event::Schedule => json(Box::pin(self.idle_check(false, time_left)).await?),
            Event::Command(Command::Sync) => json(self.sync().await?),
            Event::Command(Command::IdleCheck { dry_run }) => {
                json(Box::pin(self.idle_check(dry_run, time_left)).await?)
            }
            Event::Command(Command::Stop { rule }) => json(Box::pin(self.stop(&rule)).await?),
            Event::Command(Command::Override { rule, mode, until }) => {
                json(Box::pin(self.set_override(&rule, mode, until, "operator")).await?)
            }
        }
    }

    /// Every rule's status, activity, history and savings; nothing is woken.
    pub async fn status(&self) -> StatusReport {
        ops::status::report(&self.waker()).await
    }

    /// One wake step for `rule`, as `autostop wake` asks.
    pub async fn wake(&self, rule: &str) -> Result<Status, OpError> {
        let rule = ops::named_rule(&self.config(), rule)?;
        Ok(self.waker().wake(&rule, Cause::Operator).await)
    }

    pub async fn stop(&self, rule: &str) -> Result<StopReport, OpError> {
        ops::stop::stop(&self.waker(), rule).await
    }

    pub async fn sync(&self) -> Result<SyncReport, OpError> {
        ops::sync::sync(&self.waker()).await
    }

    pub async fn idle_check(&self, dry_run: bool, time_left: Option<Duration>) -> Result<IdleReport, OpError> {
        let waker = self.waker();
        ops::listeners_known(waker.config())?;
        sleep::idle_check(&waker, dry_run, time_left)
            .await
            .map_err(|e| OpError::cloud("idle check could not observe AWS, nothing was changed", &e))
    }

    /// `keep-awake` (`mode` awake), `sleep` (asleep) or `resume` (`mode` None), set by `by`.
    pub async fn set_override(
        &self,
        rule: &str,
        mode: Option<Mode>,
        until: Option<Until>,
        by: &str,
    ) -> Result<OverrideReport, OpError> {
        ops::overrides::set(&self.waker(), rule, mode, until, by).await
    }

    pub async fn alb(&self, request: &Request, time_left: Option<Duration>) -> AlbReply {
        let reply = self.respond(request, time_left).await;
        reply.into_alb(request.multi_value)
    }

    /// The HTTP table of SPEC: the answers without an AWS call first, then the listeners looked
    /// up (when the deployment names its load balancer), then the answers that wake.
    pub async fn respond(&self, req: &Request, time_left: Option<Duration>) -> Reply {
        let config = self.config();
        let (rule, host) = match self.front.screen(self.cloud(), &config, req) {
            Screened::Answered(reply) => return reply,
            Screened::Wake { rule, host } => (rule, host),
            Screened::Fleet { host } => return self.fleet(req, &host, &config).await,
        };
        let by = match self.front.admit(self.cloud(), req, rule, &host, || self.signers(&config)).await {
            Ok(by) => by,
            Err(reply) => return reply,
        };
        self.refresh_listeners(false).await;
        let waker = self.waker();
        if waker.config().listener_arns.is_empty() {
            return serve::no_listeners(req);
        }
        self.front.wake(&waker, req, rule, &host, time_left, by.as_deref()).await
    }
}

impl<C: Cloud> App<C> {
    /// The fleet page: its viewer signed in first (no AWS call until then).
    async fn fleet(&self, req: &Request, host: &str, config: &Config) -> Reply {
        let user = match self.front.fleet_viewer(self.cloud(), req, host, &self.signers(config)).await {
            Ok(user) => user,
            Err(reply) => return reply,
        };
        if req.method == "POST" {
            // A button may wake or stop: the listeners must be known. A view reads only the table.
            self.refresh_listeners(false).await;
        }
        serve::fleet::answer(&self.waker(), req, host, &user).await
    }
}

impl From<OpError> for EventError {
    fn from(e: OpError) -> EventError {
        EventError(e.message())
    }
}

fn json(report: impl Serialize) -> Result<Value, EventError> {
    serde_json::to_value(report).map_err(|e| EventError(format!("report not serialisable: {e}")))
}
