//! The standing listener rules: one home for every ALB rule autostop manages.
//!
//! Every configured host set has a standing rule on every configured listener, created once and
//! kept while the config names it (`config::standing` plans them). Its forward action has two
//! members, autostop's Lambda target group (the one the listener's default action forwards to)
//! and the app's target group:
//!
//! - asleep or waking, [`Route::Lambda`]: Lambda weight 1, app weight 0. The weight-0 member keeps
//!   the app's target group attached to the load balancer, so the ALB health-checks its targets
//!   (a group no rule references is never checked: its targets stay `unused` / `Target.NotInUse`,
//!   ELBv2 API reference, TargetHealth), while autostop still answers every request;
//! - awake, [`Route::App`]: app weight 1, Lambda weight 0. One ModifyRule flips the weights:
//!   atomic, idempotent, no priority to probe, nothing to duplicate.
//!
//! Reconciling is the shape of aws-load-balancer-controller's rule synthesizer: build the desired
//! rules purely from the config ([`desired`]), list the actual ones, match them ([`mod@diff`]), then
//! modify the matched, delete the unmatched of ours, move priorities, create the missing
//! ([`apply`], the only code that changes a listener's rules). Only rules tagged
//! `autostop:rule` are ever changed or deleted, and a change to one sets only its hosts or its
//! forward action: the actions an operator put in front of the forward (`authenticate-oidc`,
//! `authenticate-cognito`, `jwt-validation`) stay, in their order. Routing never touches a resource or the state
//! item.

pub mod apply;
pub mod dashboard;
pub mod desired;
pub mod diff;
pub mod home;
pub mod listener;
pub mod route;

pub use apply::{ensure, ensure_on, reconcile, routed_everywhere, switch, switch_on, Kept, Report};
pub use diff::{diff, Delete, Modify, Move, Plan};
pub use home::Homes;
pub use listener::{complete, entangled, view, views, ListenerView};
pub use route::{forward, route_of, Route, Want};
