//! The CLI's arguments: every flag and argument with its help, and the exit codes in `--help`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;

const EXIT_CODES: &str = "\
Exit codes:
  0  done, and everything reported was read from AWS
  1  AWS could not be asked or refused (one line per cause on stderr: the AWS code and what to do),
     or the command found problems
  2  bad usage, or no valid config

The config is the first of: --config, $AUTOSTOP_CONFIG, ./autostop.toml, autostop.toml beside
the binary. AWS credentials and region come from the usual chain (AWS_PROFILE, AWS_REGION, ...);
AWS_ENDPOINT_URL is honoured.";

#[derive(Parser, Debug)]
#[command(
    name = "autostop",
    version,
    about = "Wake sleeping AWS dev environments on request; put them to sleep when idle",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Config file [default: $AUTOSTOP_CONFIG, else ./autostop.toml, else autostop.toml beside the binary]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Show the log on stderr: -v warnings (with AWS's messages), -vv info, -vvv debug
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Every rule: phase, resources, listener rules, last activity, idle time, wakes/stops, savings
    Status {
        /// Print the report as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Wake a rule and follow it until ready
    Wake {
        /// The rule's `name` in the config
        rule: String,
        /// Start it and return at once
        #[arg(long)]
        no_wait: bool,
        /// Give up after this long: 90s, 10m
        #[arg(long, default_value = "10m", value_name = "DURATION")]
        timeout: String,
    },
    /// Stop a rule now, in order (listener rules first, then the resources)
    Stop {
        /// The rule's `name` in the config
        rule: String,
    },
    /// Run the idle check now
    IdleCheck {
        /// Decide and report, change nothing
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON instead of one line per rule
        #[arg(long)]
        json: bool,
    },
    /// Create or repair the standing listener rules of every configured host set now
    Sync,
    /// Keep a rule awake (starting it now) until a time, whatever its schedule or idleness
    KeepAwake {
        /// The rule's `name` in the config
        rule: String,
        #[command(flatten)]
        until: UntilArgs,
    },
    /// Put a rule to sleep (stopping it now) until a time; requests wake nothing until then
    Sleep {
        /// The rule's `name` in the config
        rule: String,
        #[command(flatten)]
        until: UntilArgs,
    },
    /// Clear a rule's override: its schedule and the idle check decide again
    Resume {
        /// The rule's `name` in the config
        rule: String,
    },
    /// Check the config (no AWS call); with --aws also that what it names exists and is wired
    Validate {
        /// Also check in AWS: listeners, target groups, resources, tags, the state table, quotas
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
    #[arg(long = "for", value_name = "DURATION")]
    pub for_: Option<String>,
    /// Until this local time in the rule's schedule's zone (UTC without one): 18:30, "mon 08:00", "2026-12-01 08:00"
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for.
    #[test]
    fn every_argument_has_help_and_the_help_names_the_exit_codes() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments().filter(|a| !["help", "version"].contains(&a.get_id().as_str())) {
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "autostop", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:") && help.contains("2  bad usage"), "{help}");
    }
}
