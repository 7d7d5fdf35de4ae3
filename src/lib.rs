//! autostop: wakes sleeping AWS dev environments on the first request and puts them back to
//! sleep when idle. One binary, deployed as the default target of an Application Load Balancer.
//!
//! - the wake path: [`app`] (events in, responses out) -> [`http`] (which response for which
//!   request) -> [`wake`] (observe, decide, act) -> [`cloud`] (the AWS port and its adapters);
//! - pure pieces: [`config`] (TOML -> validated config), [`rules`] (host matching),
//!   [`priority`] (ALB rule priorities and host chunks), [`pages`] (askama templates);
//! - [`event`] tells an ALB request from the schedule and from operator commands.

pub mod app;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod http;
pub mod ops;
pub mod routing;
pub mod serve;
pub mod sleep;
pub mod state;
pub mod telemetry;
pub mod wake;
