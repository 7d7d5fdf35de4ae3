//! The entry point: in Lambda, the runtime loop (config and AWS clients once); elsewhere, the CLI.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autostop::app::App;
use autostop::cli::{self, Cli, Cmd};
use autostop::cloud::aws::AwsCloud;
use clap::Parser;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let cli = Cli::parse();
        // The CLI speaks through its output; its log shows only what went wrong.
        autostop::telemetry::init(if matches!(cli.command, Cmd::Events) { "info" } else { "warn" });
        if matches!(cli.command, Cmd::Events) {
            let app = Arc::new(lambda_app(cli.config.clone()).await?);
            return events(app).await;
        }
        std::process::exit(cli::run(cli).await);
    }
    autostop::telemetry::init("info");
    let app = Arc::new(lambda_app(None).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            let left = time_left(event.context.deadline);
            app.handle(event.payload, left).await.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}

/// Config and clients as the Lambda loads them. A bad config stops the process before it serves
/// anything: never half a config.
async fn lambda_app(path: Option<std::path::PathBuf>) -> Result<App<AwsCloud>, lambda_runtime::Error> {
    let cloud = AwsCloud::from_env().await;
    let config = cli::load_config(path, &cloud).await.map_err(|e| {
        tracing::error!(error = %e, "config rejected");
        e
    })?;
    Ok(App::new(config, cloud))
}

/// `autostop events`: one warm "Lambda instance" outside Lambda, for the local demo. Reads
/// `{"id": N, "event": {...}}` lines on stdin, handles them concurrently, and writes
/// `{"id": N, "response": {...}}` or `{"id": N, "error": "..."}` lines on stdout.
async fn events(app: Arc<App<AwsCloud>>) -> Result<(), lambda_runtime::Error> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let out = Arc::new(tokio::sync::Mutex::new(tokio::io::stdout()));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let (app, out) = (Arc::clone(&app), Arc::clone(&out));
        tokio::spawn(async move {
            let reply = match serde_json::from_str::<Value>(&line) {
                Ok(msg) => {
                    let id = msg.get("id").cloned().unwrap_or(Value::Null);
                    let event = msg.get("event").cloned().unwrap_or(Value::Null);
                    match app.handle(event, Some(Duration::from_secs(60))).await {
                        Ok(response) => serde_json::json!({ "id": id, "response": response }),
                        Err(e) => serde_json::json!({ "id": id, "error": e.to_string() }),
                    }
                }
                Err(e) => serde_json::json!({ "id": null, "error": format!("not a JSON line: {e}") }),
            };
            let mut out = out.lock().await;
            let _ = out.write_all(format!("{reply}\n").as_bytes()).await;
            let _ = out.flush().await;
        });
    }
    Ok(())
}

/// What remains of the invocation, from its deadline in epoch milliseconds.
fn time_left(deadline_ms: u64) -> Option<Duration> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Some(Duration::from_millis(deadline_ms).saturating_sub(now))
}
