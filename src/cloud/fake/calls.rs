//! The call log: every call of the port is counted by its [`Op`], with when it began and how
//! many of its kind were under way at once; and the one path every call takes (latency, the
//! clock's transitions, an injected failure).

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

use super::{FakeCloud, Op};
use crate::cloud::{CloudError, CloudResult, OPERATION_TIMEOUT};

impl FakeCloud {
    /// How many times `op` was called (failed calls included).
    pub fn calls(&self, op: Op) -> usize {
        self.lock().calls.iter().filter(|(c, _)| *c == op).count()
    }

    pub fn total_calls(&self) -> usize {
        self.lock().calls.len()
    }

    /// Calls per operation, sorted by name.
    pub fn call_counts(&self) -> Vec<(Op, usize)> {
        let s = self.lock();
        let mut counts: HashMap<Op, usize> = HashMap::new();
        for (c, _) in &s.calls {
            *counts.entry(*c).or_default() += 1;
        }
        let mut v: Vec<(Op, usize)> = counts.into_iter().collect();
        v.sort_by_key(|(op, _)| op.name());
        v
    }

    /// When `op` was first called (tokio time), if it was.
    pub fn first_call_at(&self, op: Op) -> Option<Instant> {
        self.lock().calls.iter().find(|(c, _)| *c == op).map(|(_, at)| *at)
    }

    /// The most calls of `op` that were under way at once.
    pub fn max_in_flight(&self, op: Op) -> usize {
        self.lock().max_in_flight.get(&op).copied().unwrap_or(0)
    }

    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    /// Logs the call, waits the latency, then returns an injected failure if one is queued.
    pub(super) async fn enter(&self, op: Op) -> CloudResult<()> {
        {
            let mut s = self.lock();
            s.calls.push((op, Instant::now()));
            let now = s.in_flight.entry(op).or_default();
            *now += 1;
            let now = *now;
            let max = s.max_in_flight.entry(op).or_default();
            *max = (*max).max(now);
        }
        let latency = self.slow.lock().unwrap_or_else(|p| p.into_inner()).get(&op).copied().unwrap_or(self.latency);
        let in_flight = InFlight { cloud: self, op };
        if latency > OPERATION_TIMEOUT {
            // The adapter's clients give up at the operation timeout (`call_limits`).
            tokio::time::sleep(OPERATION_TIMEOUT).await;
            drop(in_flight);
            return Err(CloudError::new(op.name(), "Timeout", "no answer within the operation timeout"));
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        drop(in_flight);

        let mut s = self.lock();
        if s.advance(Instant::now()) {
            s.check_invariants();
        }
        match s.failures.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// One call in flight; a call abandoned by its caller (a dropped future) is no longer counted.
struct InFlight<'a> {
    cloud: &'a FakeCloud,
    op: Op,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        *self.cloud.lock().in_flight.entry(self.op).or_default() -= 1;
    }
}
