//! Structured logs: one JSON object per line via `tracing` (CloudWatch Logs parses them).

use tracing_subscriber::EnvFilter;

/// JSON logs at `level` unless `RUST_LOG` says otherwise.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));

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
