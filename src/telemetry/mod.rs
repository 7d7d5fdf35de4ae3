//! What autostop tells CloudWatch: structured logs, one JSON object per line via `tracing`
//! (CloudWatch Logs parses them), and metrics as Embedded Metric Format lines ([`emf`]). Imports
//! nothing of the domain.

pub mod emf;

use tracing_subscriber::EnvFilter;

/// JSON logs at `level` unless `RUST_LOG` says otherwise.
///
/// `lambda_runtime`'s own spans and events only from `warn` up, unless `RUST_LOG` names it:
/// its per-invocation span carries the request id into every line, but costs about 10 µs per
/// invocation, most of an unknown host's answer. Lambda's `START`/`END RequestId` lines already
/// bracket each invocation's lines (one invocation at a time per environment). So the
/// template's `RUST_LOG=info` means our `info`, not the runtime's; `RUST_LOG=info,lambda_runtime=info`
/// brings the span back.
pub fn init(level: &str) {
    let filter = EnvFilter::new(directives(std::env::var("RUST_LOG").ok().as_deref(), level));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        // stderr: Lambda ships both streams to CloudWatch, and `autostop events` keeps stdout
        // for its responses.
        .with_writer(std::io::stderr)
        .try_init();
}

/// The CLI's log, on stderr for a person: nothing unless `-v` was given (`verbose` > 0), then
/// warnings, info or debug as plain text (`RUST_LOG` still wins when set). The terminal gets
/// the command's own lines; the SDK's and AWS's messages only when asked for.
pub fn init_cli(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "warn",
        2 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::new(directives(std::env::var("RUST_LOG").ok().as_deref(), level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The filter's directives: `RUST_LOG` (else `level`), with the runtime's crates at `warn`
/// unless it names them.
fn directives(rust_log: Option<&str>, level: &str) -> String {
    let base = rust_log.map(str::trim).filter(|v| !v.is_empty()).unwrap_or(level);
    if base.contains("lambda_runtime") {
        return base.to_string();
    }
    format!("{base},lambda_runtime=warn,lambda_runtime_api_client=warn")
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn the_runtimes_span_stays_off_unless_rust_log_names_it() {
        assert_eq!(directives(None, "info"), "info,lambda_runtime=warn,lambda_runtime_api_client=warn");
        assert_eq!(directives(Some("info"), "warn"), "info,lambda_runtime=warn,lambda_runtime_api_client=warn");
        assert_eq!(directives(Some("debug,lambda_runtime=info"), "info"), "debug,lambda_runtime=info");
    }
}
