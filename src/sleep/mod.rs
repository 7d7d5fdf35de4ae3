//! Putting environments to sleep: the idle check and the stops.
//!
//! A rule is idle when `now - max(last activity, last wake, ready, resources started) >= idle`
//! ([`activity`], [`decide`]). Timestamps, not "any request in the last N minutes": CloudWatch
//! publishes ALB metrics 1-3 minutes late, and a minute without requests has no datapoint at
//! all, so "no data yet" looks like "no traffic". Idle time is therefore counted up to
//! `metrics_lag` ago (config, default 3m), and the window reaches back [`LAG_MARGIN`] beyond the
//! longest idle time: a rule stops up to that much after its idle time, and never under users
//! whose requests CloudWatch has not shown yet.
//!
//! Every run ([`check`]) also repairs drift through the one reconciler ([`crate::routing`]):
//! missing standing rules are created, wrong hosts, priorities or actions corrected, a standing
//! rule that forwards to the app of a stopped rule is switched back, and our rules for rules
//! that left the config are removed. The stop itself ([`stop`]) is ordered so no request is
//! ever routed to a target that is going away; the operator's stop ([`operator`]) is the same
//! stop, now. It changes listener rules only through `routing` and the state item only through
//! `state::Store`.

pub mod activity;
pub mod check;
pub mod decide;
mod observe;
pub mod operator;
pub mod report;
pub mod stop;

pub use activity::LAG_MARGIN;
pub use check::{idle_check, DEADLINE_MARGIN, START_FOLLOW, STOP_PARALLELISM};
pub use decide::Action;
pub use operator::stop_now;
pub use report::{IdleReport, RuleReport};
pub use stop::{stop_rule, sweep_routes, StopOutcome, StopRequest};
