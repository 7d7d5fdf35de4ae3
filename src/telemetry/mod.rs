//! What autostop tells CloudWatch: structured logs, one JSON object per line via `tracing`
//! (CloudWatch Logs parses them), and metrics as Embedded Metric Format lines ([`emf`]). Imports
//! nothing of the domain.

pub mod emf;

use tracing_subscriber::EnvFilter;

/// JSON logs at `level` unless `RUST_LOG` says otherwise.
///
/// `lambda_runtime`'s own spans and events only from `warn` up: its per-invocation span carries
/// the request id into every line, but costs about 10 µs per invocation, most of an unknown
/// host's answer. Lambda's `START`/`END RequestId` lines already bracket each invocation's lines
/// (one invocation at a time per environment). `RUST_LOG=info` brings the span back.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},lambda_runtime=warn,lambda_runtime_api_client=warn")));

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
