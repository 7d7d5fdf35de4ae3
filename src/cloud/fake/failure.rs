//! Failure injection: the next calls of an operation fail with any AWS error code, an operation
//! slows down, and other parties race autostop (a rule inserted just before a CreateRule, a
//! rule deleted between DescribeRules and DescribeTags).

use std::time::Duration;

use super::{FakeCloud, Op};
use crate::cloud::{CloudError, Weighted};

impl FakeCloud {
    /// Just before the next CreateRule runs, another Lambda instance (`owner` = a rule name) or
    /// a person (`owner` = None) inserts a rule at `priority`.
    pub fn race_before_next_create(
        &self,
        listener: &str,
        priority: u32,
        hosts: &[&str],
        forward: Vec<Weighted>,
        owner: Option<&str>,
    ) {
        let mut s = self.lock();
        let rule = s.listener_rule(priority, hosts, forward, owner);
        s.race_before_create.push_back((listener.to_string(), rule));
    }

    /// The next listing of any listener sees `rule_arn` in DescribeRules, and then the rule is
    /// deleted (by a person, or another invocation) before DescribeTags asks for its tags.
    pub fn delete_during_next_listing(&self, rule_arn: &str) {
        self.lock().delete_during_listing.push_back(rule_arn.to_string());
    }

    /// The next `times` calls of `op` (e.g. "StartInstances") fail with `code`.
    pub fn fail_next(&self, op: Op, code: &str, times: usize) {
        let mut s = self.lock();
        let queue = s.failures.entry(op).or_default();
        for _ in 0..times {
            queue.push_back(CloudError::new(op.name(), code, format!("injected {code}")));
        }
    }

    /// The next `times` calls of `op` fail with `code` and AWS's `message` text.
    pub fn fail_next_with(&self, op: Op, code: &str, message: &str, times: usize) {
        let mut s = self.lock();
        let queue = s.failures.entry(op).or_default();
        for _ in 0..times {
            queue.push_back(CloudError::new(op.name(), code, message).with_request_id(Some("f0e1d2c3-req")));
        }
    }

    /// Every call of `op` takes `latency` from now on.
    pub fn slow_down(&self, op: Op, latency: Duration) {
        self.slow.lock().unwrap_or_else(|p| p.into_inner()).insert(op, latency);
    }
}
