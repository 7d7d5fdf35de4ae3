//! The same binary outside Lambda: the `autostop` CLI for operators.
//!
//! Uses the config the Lambda uses and the normal AWS credential chain (`AWS_ENDPOINT_URL`
//! honoured, so it works against moto). Exit codes: 0 success; 1 the operation failed or found
//! problems; 2 bad usage or an invalid config.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::app::App;
use crate::cloud::aws::AwsCloud;
use crate::cloud::Cloud;
use crate::config::schedule::Mode;
use crate::config::{self, parse_duration, Config, Deployment};
use crate::event::Until;
use crate::sleep::{self as idle, StopOutcome};
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
    if let Cmd::Validate { aws: false } = cli.command {
        let hosts: usize = config.rules.iter().map(|r| r.hosts.len()).sum();
        println!("config ok: {} rules, {hosts} hosts, {} listeners", config.rules.len(), config.listener_arns.len());
        return OK;
    }
    if let Cmd::Validate { aws: true } = cli.command {
        return match crate::validate::check_aws(&cloud, &config).await {
            Ok(found) => {
                for line in &found.budget {
                    println!("budget: {line}");
                }
                for p in &found.problems {
                    println!("problem: {p}");
                }
                if found.problems.is_empty() {
                    println!("config ok, and everything it names exists in AWS, is wired for autostop and fits");
                    OK
                } else {
                    println!("{} problem(s)", found.problems.len());
                    FAILED
                }
            }
            Err(e) => {
                eprintln!("autostop: could not check AWS: {e}");
                FAILED
            }
        };
    }
    let app = Arc::new(App::new(config, cloud));
    match cli.command {
        Cmd::Status { json } => {
            let report = app.status_report().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", status_table(&report));
            }
            OK
        }
        Cmd::Wake { rule, no_wait, timeout } => wake(&app, &rule, no_wait, &timeout).await,
        Cmd::Stop { rule } => {
            let Some(rule) = app.config().rule(&rule).cloned() else {
                eprintln!("autostop: no rule named `{rule}`; configured: {}", app.config().rule_names().join(", "));
                return USAGE;
            };
            match idle::stop_now(app.cloud(), &app.config(), &rule).await {
                Ok(StopOutcome::Stopped) => {
                    println!("{}: stopped (listener rules removed, resources stopping)", rule.name);
                    OK
                }
                Ok(StopOutcome::BackedOff(why)) | Ok(StopOutcome::Partial(why)) => {
                    eprintln!("{}: not fully stopped: {why}", rule.name);
                    FAILED
                }
                Err(e) => {
                    eprintln!("{}: stop failed: {e}", rule.name);
                    FAILED
                }
            }
        }
        Cmd::IdleCheck { dry_run, json } => {
            match app.handle(json!({"autostop": "idle-check", "dry_run": dry_run}), None).await {
                Ok(report) if json => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
                Ok(report) => {
                    for r in report["rules"].as_array().into_iter().flatten() {
                        println!(
                            "{:<20} {:<20} {:<10} {}",
                            r["rule"].as_str().unwrap_or(""),
                            r["action"].as_str().unwrap_or(""),
                            r["outcome"].as_str().unwrap_or(""),
                            r["reason"].as_str().unwrap_or("")
                        );
                    }
                }
                Err(e) => {
                    eprintln!("autostop: {e}");
                    return FAILED;
                }
            }
            OK
        }
        Cmd::Sync => match app.sync().await {
            Ok(report) => {
                for l in report["listeners"].as_array().into_iter().flatten() {
                    println!(
                        "{}: {} created, {} modified, {} moved, {} deleted",
                        l["listener"].as_str().unwrap_or(""),
                        l["created"],
                        l["modified"],
                        l["moved"],
                        l["deleted"]
                    );
                }
                OK
            }
            Err(e) => {
                eprintln!("autostop: {e}");
                FAILED
            }
        },
        Cmd::KeepAwake { rule, until } => set_override(&app, &rule, Some(Mode::Awake), Some(until)).await,
        Cmd::Sleep { rule, until } => set_override(&app, &rule, Some(Mode::Asleep), Some(until)).await,
        Cmd::Resume { rule } => set_override(&app, &rule, None, None).await,
        Cmd::Validate { .. } | Cmd::Events => unreachable!("handled above / in main"),
    }
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
        Ok(r) => {
            match r["override"]["until_local"].as_str() {
                Some(at) => println!(
                    "{rule}: {} until {at} ({})",
                    r["override"]["mode"].as_str().unwrap_or(""),
                    r["result"].as_str().unwrap_or("")
                ),
                None => println!("{rule}: override cleared; its schedule and the idle check decide again"),
            }
            OK
        }
        Err(e) => {
            eprintln!("autostop: {e}");
            if e.0.starts_with("no rule named") || e.0.contains("\"until\"") || e.0.contains("30 days") {
                USAGE
            } else {
                FAILED
            }
        }
    }
}

/// Steps the wake once a second, printing each phase change, until ready, an error or `timeout`.
async fn wake(app: &App<AwsCloud>, name: &str, no_wait: bool, timeout: &str) -> i32 {
    let Some(rule) = app.config().rule(name).cloned() else {
        eprintln!("autostop: no rule named `{name}`; configured: {}", app.config().rule_names().join(", "));
        return USAGE;
    };
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
        let s = app.waker().wake(&rule, crate::wake::Cause::Operator).await;
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

fn ago(now: i64, t: Option<i64>) -> String {
    match t {
        Some(t) => human((now - t).max(0)) + " ago",
        None => "-".into(),
    }
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The `status` table.
pub fn status_table(report: &Value) -> String {
    let now = report["now"].as_i64().unwrap_or(0);
    let header = [
        "RULE",
        "PHASE",
        "RESOURCES",
        "LB RULES",
        "LAST ACTIVITY",
        "IDLE FOR / IDLE",
        "WAKES/STOPS",
        "ASLEEP (MONTH)",
        "SAVED",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in report["rules"].as_array().into_iter().flatten() {
        let resources: Vec<String> = r["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| format!("{} {}", x["id"].as_str().unwrap_or(""), x["state"].as_str().unwrap_or("")))
            .collect();
        rows.push(vec![
            r["rule"].as_str().unwrap_or("").to_string(),
            r["phase"].as_str().unwrap_or("").to_string(),
            resources.join(", "),
            r["listener_rules"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            ago(now, r["last_activity"].as_i64()),
            format!(
                "{} / {}",
                r["idle_for_seconds"].as_i64().map(human).unwrap_or_else(|| "-".into()),
                human(r["idle_seconds"].as_i64().unwrap_or(0))
            ),
            format!("{}/{}", r["wakes"], r["stops"]),
            format!("{:.1}h", r["hours_asleep_this_month"].as_f64().unwrap_or(0.0)),
            r["saved_this_month"].as_f64().map(|s| format!("{s:.2}")).unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&notes(report));
    out
}

/// Below the table, per rule: its hosts, who was kept out in the last hour, its last error.
fn notes(report: &Value) -> String {
    let mut out = String::new();
    for r in report["rules"].as_array().into_iter().flatten() {
        let hosts: Vec<&str> = r["hosts"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let hosts =
            if hosts.is_empty() { "no hosts (a dependency of other rules)".to_string() } else { hosts.join(", ") };
        out.push_str(&format!("{}: {hosts}\n", r["rule"].as_str().unwrap_or("")));
    }
    // Who was kept out: requests answered without a wake (bots, probes, other networks).
    for r in report["rules"].as_array().into_iter().flatten() {
        let Some(by) = r["refused_last_hour"].as_object().filter(|m| !m.is_empty()) else { continue };
        let parts: Vec<String> = by.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
        out.push_str(&format!(
            "{}: refused in the last hour: {}\n",
            r["rule"].as_str().unwrap_or(""),
            parts.join(", ")
        ));
    }
    // Overrides and schedules: why a rule is kept awake or asleep, and until when.
    for r in report["rules"].as_array().into_iter().flatten() {
        let name = r["rule"].as_str().unwrap_or("");
        if let Some(intent) = r["intent"].as_str() {
            out.push_str(&format!("{name}: {intent}\n"));
        } else if let (Some(s), Some(next)) =
            (r["schedule"]["name"].as_str(), r["schedule"]["next_change_local"].as_str())
        {
            out.push_str(&format!("{name}: on demand; schedule `{s}` changes {next}\n"));
        }
    }
    // A failed stop or start says why, and what to do, below the table.
    for r in report["rules"].as_array().into_iter().flatten() {
        if let Some(e) = r["last_error"].as_str() {
            out.push_str(&format!("{}: last error: {e}\n", r["rule"].as_str().unwrap_or("")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_table_shows_a_failed_stop_and_what_to_do() {
        let report = json!({"now": 100, "rules": [
            {"rule": "api", "phase": "ready", "resources": [], "hosts": ["api.x.com"], "idle_seconds": 300,
             "wakes": 1, "stops": 0, "last_error": "could not stop: i-1: UnauthorizedOperation (StopInstances). Then run `autostop stop api`",
             "refused_last_hour": {"bot": 12, "path": 3}, "intent": "kept awake by alice until Sat 14:00 CET"},
            {"rule": "web", "phase": "stopped", "resources": [], "hosts": ["web.x.com"], "idle_seconds": 300,
             "wakes": 0, "stops": 1, "last_error": null,
             "schedule": {"name": "office-hours", "next_change_local": "Mon 08:00 CET"}},
            {"rule": "db", "phase": "stopped", "resources": [], "hosts": [], "idle_seconds": 300,
             "wakes": 0, "stops": 0, "last_error": null}
        ]});
        let table = status_table(&report);
        assert!(table.contains("api: last error: could not stop: i-1: UnauthorizedOperation"), "{table}");
        assert!(!table.contains("web: last error"), "{table}");
        assert!(table.contains("api: refused in the last hour: bot 12, path 3"), "{table}");
        assert!(!table.contains("web: refused"), "{table}");
        assert!(table.contains("api: kept awake by alice until Sat 14:00 CET"), "{table}");
        assert!(table.contains("web: on demand; schedule `office-hours` changes Mon 08:00 CET"), "{table}");
        assert!(table.contains("db: no hosts (a dependency of other rules)"), "{table}");
    }
}
