//! The same binary outside Lambda: the `autostop` CLI for operators. It calls the handler's
//! typed commands and prints their reports ([`mod@print`]); it never reads a report back from JSON,
//! and decides nothing the handler would not.
//!
//! Uses the config the Lambda uses and the normal AWS credential chain (`AWS_ENDPOINT_URL`
//! honoured, so it works against moto). Exit codes ([`args`]): 0 success; 1 AWS could not be
//! asked, or the operation failed or found problems; 2 bad usage or an invalid config. What
//! went wrong is one line per cause on stderr, with the AWS code and what to do; the log (AWS's
//! own messages) only with `-v`.

mod args;
pub mod print;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use args::{Cli, Cmd, UntilArgs, FAILED, OK, USAGE};

use crate::app::App;
use crate::cloud::aws::AwsCloud;
use crate::cloud::Cloud;
use crate::config::path::{Found, Search};
use crate::config::schedule::Mode;
use crate::config::{parse_duration, Config, Deployment};
use crate::ops::overrides::Until;
use crate::ops::stop::StopResult;
use crate::ops::{problem, OpError, Problem};
use crate::wake::{Phase, STATUS_TTL};

/// Why no config could be had: a config fault (exit 2) or AWS that could not be asked (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub code: i32,
    pub message: String,
}

/// Loads the config as the Lambda and the CLI both do: the file ([`Search`]: `path`, else the
/// environment's, the current directory's, the binary's), with keys it leaves out filled from
/// the deployment's environment. `AUTOSTOP_LOAD_BALANCER_ARN` is resolved into its listeners
/// with one DescribeListeners now when `resolve` (a CLI command that calls AWS anyway); the
/// Lambda leaves that to its app, before the first wake, so that a cold start that only answers
/// unknown hosts and refusals makes no AWS call.
pub async fn load_config(
    path: Option<PathBuf>,
    cloud: &AwsCloud,
    resolve: bool,
    validating: bool,
) -> Result<(Config, Found), LoadError> {
    let usage = |message: String| LoadError { code: USAGE, message };
    let found = Search::of_process(path).find(|p| p.is_file()).map_err(usage)?;
    let mut deployment = Deployment { listeners_later: validating, ..Deployment::from_env() };
    if let (true, Some(lb), true) = (deployment.listener_arns.is_empty(), deployment.load_balancer.clone(), resolve) {
        deployment.listener_arns = cloud.listeners_of(&lb).await.map_err(|e| LoadError {
            code: FAILED,
            message: format!("the listeners of AUTOSTOP_LOAD_BALANCER_ARN: {}", Problem::of(&e).line()),
        })?;
        tracing::info!(load_balancer = %lb, listeners = ?deployment.listener_arns, "listeners resolved");
    }
    let config = Config::load(&found.path, &deployment).map_err(|e| usage(format!("{}: {e}", found.path.display())))?;
    Ok((config, found))
}

pub async fn run(cli: Cli) -> i32 {
    let cloud = AwsCloud::from_env();
    // Offline validation asks AWS nothing, not even for the listeners.
    let resolve = !matches!(cli.command, Cmd::Validate { aws: false });
    let validating = matches!(cli.command, Cmd::Validate { .. });
    let config = match load_config(cli.config.clone(), &cloud, resolve, validating).await {
        Ok((config, found)) => {
            eprintln!("autostop: config {} ({})", found.path.display(), found.why);
            config
        }
        Err(e) => {
            eprintln!("autostop: {}", e.message);
            return e.code;
        }
    };
    if let Cmd::Validate { aws } = cli.command {
        return validate(&cloud, &config, aws).await;
    }
    let app = Arc::new(App::new(config, cloud));
    // Rules behind sign-in: which listeners are HTTP, as the Lambda learns it.
    app.refresh_listeners(false).await;
    match cli.command {
        Cmd::Status { json } => status(&app, json).await,
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

/// The report on stdout; what it could not learn on stderr, one line per cause, and exit 1.
async fn status(app: &App<AwsCloud>, json: bool) -> i32 {
    let report = app.status().await;
    match json {
        true => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
        false => print!("{}", print::status_table(&report)),
    }
    if report.problems.is_empty() {
        return OK;
    }
    eprintln!("autostop: the status is incomplete, AWS could not be asked for all of it:");
    complain(&report.problems)
}

/// One line per cause on stderr; exit 1.
fn complain(problems: &[Problem]) -> i32 {
    for line in problem::lines(problems) {
        eprintln!("autostop: {line}");
    }
    FAILED
}

/// The exit code for a command's error, with the error on stderr.
fn failed(e: &OpError) -> i32 {
    eprintln!("autostop: {e}");
    match e {
        OpError::Usage(_) => USAGE,
        OpError::Failed(_) | OpError::Cloud { .. } => FAILED,
    }
}

/// `validate`, and with `--aws` whether what the config names exists and is wired.
async fn validate(cloud: &AwsCloud, config: &Config, aws: bool) -> i32 {
    if !aws {
        let hosts: usize = config.rules.iter().map(|r| r.hosts.len()).sum();
        let listeners = match (config.listener_arns.len(), Deployment::from_env().load_balancer) {
            (0, Some(_)) => "listeners looked up from AUTOSTOP_LOAD_BALANCER_ARN at start".to_string(),
            (0, None) => "no listeners yet (the stack gives the function its own)".to_string(),
            (n, _) => format!("{n} listeners"),
        };
        println!("config ok: {} rules, {hosts} hosts, {listeners}", config.rules.len());
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
            eprintln!("autostop: could not check AWS: {}", Problem::of(&e).line());
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
    let identity = app.cloud().caller_identity().await;
    let by = identity.as_ref().map(String::as_str).unwrap_or("operator");
    match app.set_override(rule, mode, until, by).await {
        Ok(report) => {
            println!("{}", print::override_set(&report));
            if let Err(e) = &identity {
                eprintln!("autostop: recorded as set by `operator`: {}", Problem::of(e).line());
            }
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
        // AWS out of reach is the CLI's own problem: retrying each second would not fix it.
        if let Some(e) = s.retrying.as_ref().filter(|e| e.code == "NetworkError") {
            eprintln!("{name}: not woken: {}", Problem::of_step(e).line());
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
                let why = s.error.as_ref().map(|e| Problem::of_step(e).line()).unwrap_or(s.message);
                eprintln!("{name}: could not wake: {why}");
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
