//! The same binary outside Lambda: the `autostop` CLI for operators. It calls the handler's
//! typed commands and prints their reports ([`mod@print`]); it never reads a report back from JSON,
//! and decides nothing the handler would not.
//!
//! Uses the config the Lambda uses and the normal AWS credential chain (`AWS_ENDPOINT_URL`
//! honoured, so it works against moto). Exit codes: 0 success; 1 the operation failed or found
//! problems; 2 bad usage or an invalid config.

pub mod print;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::cloud::aws::AwsCloud;
use crate::cloud::Cloud;
use crate::config::schedule::Mode;
use crate::config::{self, parse_duration, Config, Deployment};
use crate::ops::overrides::Until;
use crate::ops::stop::StopResult;
use crate::ops::OpError;
use crate::wake::{Phase, STATUS_TTL};

#[derive(Parser, Debug)]
#[command(
    name = "autostop",
    version,
    about = "Wake sleeping AWS dev environments on request; put them to sleep when idle"
)]
pub struct Cli {
    /// Config file [default: $AUTOSTOP_CONFIG, else autostop.toml beside the binary]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Every rule: phase, resources, listener rules, last activity, idle time, wakes/stops, savings
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Wake a rule and follow it until ready
    Wake {
        rule: String,
        /// Start it and return at once
        #[arg(long)]
        no_wait: bool,
        /// Give up after this long
        #[arg(long, default_value = "10m")]
        timeout: String,
    },
    /// Stop a rule now, in order (listener rules first, then the resources)
    Stop { rule: String },
    /// Run the idle check now
    IdleCheck {
        /// Decide and report, change nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Create or repair the standing listener rules of every configured host set now
    Sync,
    /// Keep a rule awake (starting it now) until a time, whatever its schedule or idleness
    KeepAwake {
        rule: String,
        #[command(flatten)]
        until: UntilArgs,
    },
    /// Put a rule to sleep (stopping it now) until a time; requests wake nothing until then
    Sleep {
        rule: String,
        #[command(flatten)]
        until: UntilArgs,
    },
    /// Clear a rule's override: its schedule and the idle check decide again
    Resume { rule: String },
    /// Check the config; with --aws also that what it names exists and is wired for autostop
    Validate {
        #[arg(long)]
        aws: bool,
    },
    /// ALB events as JSON lines on stdin, responses on stdout (used by `make demo`)
    #[command(hide = true)]
    Events,
}

/// How long an override lasts: exactly one of the two.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct UntilArgs {
    /// For this long: 30m, 2h, 3d
    #[arg(long = "for")]
    pub for_: Option<String>,
    /// Until this local time in the rule's schedule's zone (UTC without one): 18:30, "mon 08:00", "2026-12-01 08:00"
    #[arg(long)]
    pub until: Option<String>,
}

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;

/// Loads the config as the Lambda and the CLI both do: the file (`path`, else the default), with
/// keys it leaves out filled from the deployment's environment. `AUTOSTOP_LOAD_BALANCER_ARN` is
/// resolved into its listeners with one DescribeListeners now when `resolve` (the CLI); the
/// Lambda leaves that to its app, before the first wake, so that a cold start that only answers
/// unknown hosts and refusals makes no AWS call.
pub async fn load_config(path: Option<PathBuf>, cloud: &AwsCloud, resolve: bool) -> Result<Config, String> {
    let mut deployment = Deployment::from_env();
    if let (true, Some(lb), true) = (deployment.listener_arns.is_empty(), deployment.load_balancer.clone(), resolve) {
        deployment.listener_arns = cloud.listeners_of(&lb).await.map_err(|e| e.to_string())?;
        tracing::info!(load_balancer = %lb, listeners = ?deployment.listener_arns, "listeners resolved");
    }
    let path = path.unwrap_or_else(config::default_path);
    Config::load(&path, &deployment).map_err(|e| format!("{}: {e}", path.display()))
}

pub async fn run(cli: Cli) -> i32 {
    let cloud = AwsCloud::from_env();
    let config = match load_config(cli.config.clone(), &cloud, true).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("autostop: {e}");
            return USAGE;
        }
    };
    if let Cmd::Validate { aws } = cli.command {
        return validate(&cloud, &config, aws).await;
    }
    let app = Arc::new(App::new(config, cloud));
    match cli.command {
        Cmd::Status { json } => {
            let report = app.status().await;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
                false => print!("{}", print::status_table(&report)),
            }
            OK
        }
        Cmd::Wake { rule, no_wait, timeout } => wake(&app, &rule, no_wait, &timeout).await,
        Cmd::Stop { rule } => stop(&app, &rule).await,
        Cmd::IdleCheck { dry_run, json } => idle_check(&app, dry_run, json).await,
        Cmd::Sync => match app.sync().await {
            Ok(report) => {
                print!("{}", print::sync(&report));
                OK
            }
            Err(e) => failed(&e),
        },
        Cmd::KeepAwake { rule, until } => set_override(&app, &rule, Some(Mode::Awake), Some(until)).await,
        Cmd::Sleep { rule, until } => set_override(&app, &rule, Some(Mode::Asleep), Some(until)).await,
        Cmd::Resume { rule } => set_override(&app, &rule, None, None).await,
        Cmd::Validate { .. } | Cmd::Events => unreachable!("handled above / in main"),
    }
}

/// The exit code for a command's error, with the error on stderr.
fn failed(e: &OpError) -> i32 {
    eprintln!("autostop: {e}");
    match e {
        OpError::Usage(_) => USAGE,
        OpError::Failed(_) => FAILED,
    }
}

/// `validate`, and with `--aws` whether what the config names exists and is wired.
async fn validate(cloud: &AwsCloud, config: &Config, aws: bool) -> i32 {
    if !aws {
        let hosts: usize = config.rules.iter().map(|r| r.hosts.len()).sum();
        println!("config ok: {} rules, {hosts} hosts, {} listeners", config.rules.len(), config.listener_arns.len());
        return OK;
    }
    match crate::ops::validate::check_aws(cloud, config).await {
        Ok(found) => {
            print!("{}", print::findings(&found));
            if found.problems.is_empty() {
                OK
            } else {
                FAILED
            }
        }
        Err(e) => {
            eprintln!("autostop: could not check AWS: {e}");
            FAILED
        }
    }
}

async fn stop(app: &App<AwsCloud>, rule: &str) -> i32 {
    match app.stop(rule).await {
        Ok(report) if report.result == StopResult::Stopped => {
            println!("{}: stopped (listener rules switched back to autostop, resources stopping)", report.rule);
            OK
        }
        Ok(report) => {
            eprintln!("{}: not fully stopped: {}", report.rule, report.detail.unwrap_or_default());
            FAILED
        }
        Err(e) => failed(&e),
    }
}

async fn idle_check(app: &App<AwsCloud>, dry_run: bool, json: bool) -> i32 {
    match app.idle_check(dry_run, None).await {
        Ok(report) if json => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
        Ok(report) => print!("{}", print::idle_report(&report)),
        Err(e) => return failed(&e),
    }
    OK
}

/// `keep-awake`, `sleep`, `resume`, set by the caller's identity from STS.
async fn set_override(app: &App<AwsCloud>, rule: &str, mode: Option<Mode>, until: Option<UntilArgs>) -> i32 {
    let until = match until {
        None => None,
        Some(UntilArgs { for_: Some(d), .. }) => match parse_duration(&d) {
            Ok(d) => Some(Until::For(d)),
            Err(e) => {
                eprintln!("autostop: --for: {e}");
                return USAGE;
            }
        },
        Some(UntilArgs { until: Some(t), .. }) => Some(Until::At(t)),
        Some(_) => None,
    };
    let by = match app.cloud().caller_identity().await {
        Ok(arn) => arn,
        Err(e) => {
            eprintln!("autostop: caller identity unknown ({}); recording the override as set by `operator`", e.code);
            "operator".to_string()
        }
    };
    match app.set_override(rule, mode, until, &by).await {
        Ok(report) => {
            println!("{}", print::override_set(&report));
            OK
        }
        Err(e) => failed(&e),
    }
}

/// Steps the wake once a second, printing each phase change, until ready, an error or `timeout`.
async fn wake(app: &App<AwsCloud>, name: &str, no_wait: bool, timeout: &str) -> i32 {
    let timeout = match parse_duration(timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("autostop: --timeout: {e}");
            return USAGE;
        }
    };
    let start = tokio::time::Instant::now();
    let mut last: Option<Phase> = None;
    loop {
        let s = match app.wake(name).await {
            Ok(s) => s,
            Err(e) => return failed(&e),
        };
        if let Some(held) = &s.held_asleep {
            eprintln!(
                "{name}: not woken: {}; `autostop keep-awake {name}` overrides, `resume` clears an override",
                held.why
            );
            return FAILED;
        }
        if last != Some(s.phase) {
            eprintln!("[{:>4}s] {}: {}", start.elapsed().as_secs(), s.phase.as_str(), s.message);
            last = Some(s.phase);
        }
        match s.phase {
            Phase::Ready => {
                println!("{name}: ready after {}s", start.elapsed().as_secs());
                return OK;
            }
            Phase::Error => {
                let action = s.error.map(|e| format!("{} ({}): {}", e.code, e.operation, e.action)).unwrap_or_default();
                eprintln!("{name}: could not wake: {action}");
                return FAILED;
            }
            _ if no_wait => {
                println!("{name}: {} (not waiting)", s.phase.as_str());
                return OK;
            }
            _ if start.elapsed() >= timeout => {
                eprintln!("{name}: not ready after {}s (phase {})", start.elapsed().as_secs(), s.phase.as_str());
                return FAILED;
            }
            _ => tokio::time::sleep(STATUS_TTL.max(Duration::from_millis(500))).await,
        }
    }
}
