//! The one writer of the state table. Every write is conditional on the version it was made
//! from, and a lost race is met by one rule: an update ([`Store::update`]) reads the item again
//! and asks its transition again, up to [`ATTEMPTS`] times, and the transition may decline (what
//! won the race makes the change moot, or is not ours to overwrite: a stop's claim, another's
//! lease); a claim ([`Store::claim`]) was decided on one version, so losing the race is its
//! answer and nothing is read or tried again.

use super::events::{detail, lifecycle};
use crate::cloud::{Cloud, CloudResult, ErrorKind, RuleState};
use crate::config::Config;

/// Writes tried per update: the first, and two after lost races.
pub const ATTEMPTS: usize = 3;

/// The state table of one deployment.
pub struct Store<'a, C> {
    cloud: &'a C,
    table: &'a str,
    /// With `events = { bus }`: the config, whose bus each transition is announced on.
    events: Option<&'a Config>,
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// The item as written (its new version included).
    Saved(RuleState),
    /// The transition declined, given the item as it is now (`None`: there is none, or, for a
    /// lost claim, it was not read).
    Declined(Option<RuleState>),
}

impl<'a, C: Cloud> Store<'a, C> {
    pub fn new(cloud: &'a C, table: &'a str) -> Store<'a, C> {
        Store { cloud, table, events: None }
    }

    /// The config's table, announcing transitions on its bus if it names one.
    pub fn of(cloud: &'a C, config: &'a Config) -> Store<'a, C> {
        Store { cloud, table: &config.state_table, events: config.events_bus.is_some().then_some(config) }
    }

    /// After a conditional write succeeded: the transition it made, put on the bus. Exactly
    /// once per transition fleet-wide, since only one writer wins each version; a failed put is
    /// logged, never the write's failure.
    async fn announce(&self, prev: Option<&RuleState>, next: &RuleState) {
        let Some(config) = self.events else { return };
        let (Some(bus), Some(kind)) = (config.events_bus.as_deref(), lifecycle(prev, next)) else { return };
        let hosts = config.rule(&next.rule).map(|r| r.hosts.clone()).unwrap_or_default();
        let body = detail(kind, &next.rule, &hosts, next, self.cloud.now()).to_string();
        match self.cloud.put_event(bus, kind.detail_type(), &body).await {
            Ok(()) => tracing::info!(rule = %next.rule, event = kind.detail_type(), bus, "event put"),
            Err(e) => tracing::warn!(rule = %next.rule, event = kind.detail_type(), code = %e.code, "event not put"),
        }
    }

    /// One rule's item (a strongly consistent read).
    pub async fn load(&self, rule: &str) -> CloudResult<Option<RuleState>> {
        self.cloud.load_state(self.table, rule).await
    }

    /// Every item of the table.
    pub async fn load_all(&self) -> CloudResult<Vec<RuleState>> {
        self.cloud.load_states(self.table).await
    }

    /// Writes `next` over exactly `decided` (`None`: only if there is no item yet): a decision
    /// made on that item, such as an idle stop's claim. `Declined` when the item has moved on.
    pub async fn claim(&self, decided: Option<&RuleState>, mut next: RuleState) -> CloudResult<Written> {
        let expected = decided.map(|d| d.version);
        next.version = expected.unwrap_or(0) + 1;
        match self.cloud.save_state(self.table, &next, expected).await {
            Ok(()) => {
                self.announce(decided, &next).await;
                Ok(Written::Saved(next))
            }
            Err(e) if e.kind == ErrorKind::Conflict => Ok(Written::Declined(None)),
            Err(e) => Err(e),
        }
    }

    /// Applies `change` to the rule's item: to `known` when the caller has just read it (`None`:
    /// read it first), then to the item as it is after each lost race. `change` gets the
    /// current item (`None`: none yet) and returns the next one, or `None` to leave it be.
    pub async fn update(
        &self,
        rule: &str,
        known: Option<Option<RuleState>>,
        change: impl Fn(Option<&RuleState>) -> Option<RuleState>,
    ) -> CloudResult<Written> {
        let mut current = match known {
            Some(item) => item,
            None => self.load(rule).await?,
        };
        for attempt in 1..=ATTEMPTS {
            let Some(mut next) = change(current.as_ref()) else { return Ok(Written::Declined(current)) };
            let expected = current.as_ref().map(|c| c.version);
            next.version = expected.unwrap_or(0) + 1;
            match self.cloud.save_state(self.table, &next, expected).await {
                Ok(()) => {
                    self.announce(current.as_ref(), &next).await;
                    return Ok(Written::Saved(next));
                }
                Err(e) if e.kind == ErrorKind::Conflict && attempt < ATTEMPTS => current = self.load(rule).await?,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::fake::{FakeCloud, Op};
    use crate::cloud::Phase;

    fn ready(prev: Option<&RuleState>) -> Option<RuleState> {
        let mut next = prev.cloned().unwrap_or_else(|| RuleState::new("api"));
        next.phase = Phase::Ready;
        Some(next)
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_race_is_read_again_and_the_change_made_on_what_won() {
        let cloud = FakeCloud::new();
        cloud.seed_state(RuleState { version: 4, wakes: 7, ..RuleState::new("api") });
        let stale = RuleState { version: 3, ..RuleState::new("api") };
        let store = Store::new(&cloud, "t");
        let Written::Saved(item) = store.update("api", Some(Some(stale)), ready).await.unwrap() else { panic!() };
        assert_eq!((item.version, item.phase, item.wakes), (5, Phase::Ready, 7), "made on version 4, kept its wakes");
        assert_eq!(cloud.state_item("api"), Some(item));
    }

    #[tokio::test(start_paused = true)]
    async fn a_declined_change_writes_nothing_and_says_what_is_there() {
        let cloud = FakeCloud::new();
        cloud.seed_state(RuleState { version: 2, ..RuleState::new("api") });
        let store = Store::new(&cloud, "t");
        let out = store.update("api", None, |_| None).await.unwrap();
        assert_eq!(out, Written::Declined(cloud.state_item("api")));
        assert_eq!(cloud.state_item("api").unwrap().version, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn races_lost_every_time_end_after_the_last_attempt_with_the_conflict() {
        let cloud = FakeCloud::new();
        cloud.seed_state(RuleState { version: 1, ..RuleState::new("api") });
        cloud.fail_next(Op::PutItem, "ConditionalCheckFailedException", ATTEMPTS);
        let store = Store::new(&cloud, "t");
        let e = store.update("api", None, ready).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(cloud.calls(Op::PutItem), ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_that_lost_its_race_reads_and_retries_nothing() {
        let cloud = FakeCloud::new();
        cloud.seed_state(RuleState { version: 2, ..RuleState::new("api") });
        let decided = RuleState { version: 1, ..RuleState::new("api") };
        let out = Store::new(&cloud, "t").claim(Some(&decided), ready(Some(&decided)).unwrap()).await.unwrap();
        assert_eq!(out, Written::Declined(None));
        assert_eq!(cloud.call_counts(), vec![(Op::PutItem, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_table_is_an_error_for_the_caller_to_judge() {
        let cloud = FakeCloud::new();
        cloud.drop_state_table();
        let e = Store::new(&cloud, "t").update("api", Some(None), ready).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }
}
