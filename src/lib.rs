//! autostop: wakes sleeping AWS dev environments on the first request and puts them back to
//! sleep when idle. One binary, deployed as the default target of an Application Load Balancer.
//!
//! The map of the crate, top down: each folder imports only those below it (`tests/layout.rs`
//! checks it, and that no two files import each other in a circle). `cloud`, `http`,
//! `identity` and `telemetry` import nothing of the domain.
//!
//! ```text
//! main.rs     in Lambda: config, then lambda_runtime::run over app; elsewhere: the CLI
//! cli/        the autostop CLI (clap): its arguments and exit codes (args.rs); each command
//!             calls app's typed method and prints the report (print.rs), its failures one
//!             line per cause; never reads a report back from JSON
//! app/        the handler: reads an event (event.rs), dispatches it (the only dispatch),
//!             looks the load balancer's listeners up (listeners.rs)
//! ops/        operator commands as typed reports: status, stop, sync, overrides, validate --aws;
//!             problem.rs: a failed AWS call as an operator reads it (code, calls, what to do)
//! serve/      the HTTP table: screen (answers without an AWS call: health, unknown host,
//!             refusals), sign-in (signin.rs: behind SSO, a verified user or 401), then
//!             wake (click page and button, status, progress page, hold); the fleet page
//!             (fleet.rs: view and buttons, fleet_page.rs: rows and SVG)
//! sleep/      the idle check: activity (metrics, pure), decide (pure), observe (batched),
//!             check (the run), stop (the ordered stop, StopRequest), operator (stop now)
//! wake/       the wake path: observe and plan (pure), step, start, ready (health, switch),
//!             dependencies, fleet (lease and published status), status (the status JSON)
//! routing/    the standing listener rules: desired (pure), diff (pure, table-tested),
//!             apply (the only code that changes listener rules), route, listener,
//!             dashboard (the fleet page's own standing rule)
//! state/      the state item's one writer (Store, one retry policy), its transitions (pure),
//!             intent (override, schedule) and savings; events (the lifecycle event a
//!             write made), history (30 days awake/asleep), fleet (the @fleet item)
//! config/     TOML -> validated Config (raw, validate, one check per section); the Rule, host
//!             matching, gate, schedule and the standing-rule plan; errors name the key;
//!             path.rs: which autostop.toml is read
//! http/       the ALB protocol: Request from an ALB event, Reply in the ALB's shape
//! cloud/      the port (Cloud) in domain words, ALB facts (alb.rs), the item (item.rs);
//!             aws/ one file per service; fake/ the strict in-memory cloud (compute, alb,
//!             metrics, table, calls by Op, failure injection, its own tests)
//! identity/   who is asking, verified: the ALB's signed user claims (jwt.rs), checked
//!             against the load balancer's public key, fetched and cached by kid (keys.rs)
//! telemetry/  JSON logs, and CloudWatch EMF lines (emf.rs)
//! ```

pub mod app;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod http;
pub mod identity;
pub mod ops;
pub mod routing;
pub mod serve;
pub mod sleep;
pub mod state;
pub mod telemetry;
pub mod wake;
