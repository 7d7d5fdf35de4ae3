//! The entry point: in Lambda, the runtime loop (config and AWS clients once); elsewhere, the CLI.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autostop::app::{Answer, App};
use autostop::cli::{self, Cli, Cmd};
use autostop::cloud::aws::AwsCloud;
use autostop::cloud::Cloud;
use clap::Parser;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let cli = Cli::parse();
        if matches!(cli.command, Cmd::Events) {
            // One warm "Lambda instance" for the demo: JSON logs, as in Lambda.
            autostop::telemetry::init("info");
            let app = Arc::new(lambda_app(cli.config.clone()).await?);
            return events(app).await;
        }
        // The CLI speaks through its output; its log only with -v.
        autostop::telemetry::init_cli(cli.verbose);
        std::process::exit(cli::run(cli).await);
    }
    autostop::telemetry::init("info");
    let app = Arc::new(lambda_app(None).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move { invoke(&app, event).await }
    }))
    .await
}

/// One invocation: the event, with what remains of the invocation's time (its deadline).
async fn invoke<C: Cloud>(app: &App<C>, event: LambdaEvent<Value>) -> Result<Answer, lambda_runtime::Error> {
    let left = time_left(event.context.deadline, SystemTime::now());
    app.answer(event.payload, left).await.map_err(lambda_runtime::Error::from)
}

/// Config and clients as the Lambda loads them. A bad config stops the process before it serves
/// anything: never half a config.
async fn lambda_app(path: Option<std::path::PathBuf>) -> Result<App<AwsCloud>, lambda_runtime::Error> {
    let cloud = AwsCloud::from_env();
    let (config, found) = cli::load_config(path, &cloud, false, false).await.map_err(|e| {
        tracing::error!(error = %e.message, "config rejected");
        e.message
    })?;
    tracing::info!(path = %found.path.display(), from = found.why, "config loaded");
    let app = App::new(config, cloud);
    Ok(match std::env::var("AUTOSTOP_LOAD_BALANCER_ARN").ok().filter(|v| !v.is_empty()) {
        Some(lb) => app.discovering_listeners_of(&lb),
        None => app,
    })
}

/// `autostop events`: one warm "Lambda instance" outside Lambda, for the local demo. Reads
/// `{"id": N, "event": {...}, "deadline_ms": D}` lines on stdin (`deadline_ms` as the Lambda
/// runtime gives it, epoch milliseconds; 60 s from now when absent), handles them concurrently
/// through the same [`invoke`] as Lambda, and writes `{"id": N, "response": {...}}` or
/// `{"id": N, "error": "..."}` lines on stdout.
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
                    let deadline =
                        msg.get("deadline_ms").and_then(Value::as_u64).unwrap_or_else(|| epoch_ms() + 60_000);
                    let mut context = lambda_runtime::Context::default();
                    context.deadline = deadline;
                    match invoke(&app, LambdaEvent::new(event, context)).await {
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

/// What remains of the invocation at `now`, from its deadline in epoch milliseconds.
fn time_left(deadline_ms: u64, now: SystemTime) -> Option<Duration> {
    let now = now.duration_since(UNIX_EPOCH).ok()?;
    Some(Duration::from_millis(deadline_ms).saturating_sub(now))
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autostop::cloud::fake::FakeCloud;
    use autostop::cloud::InstanceState;

    #[test]
    fn time_left_is_the_deadline_minus_now_and_never_negative() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs: u64| 1_800_000_000_000 + secs * 1000;
        assert_eq!(time_left(at(10), now), Some(Duration::from_secs(10)));
        assert_eq!(time_left(at(0), now), Some(Duration::ZERO));
        assert_eq!(time_left(1_000, now), Some(Duration::ZERO), "past deadlines leave nothing");
    }

    /// The Lambda entry holds an API request only as long as its deadline allows (minus a
    /// margin), then answers 503: the runtime's deadline reaches the hold.
    #[tokio::test(start_paused = true)]
    async fn an_invocation_is_held_no_longer_than_its_deadline_allows() {
        let l1 =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";
        let cloud = FakeCloud::new();
        cloud.add_instance("i-0123456789abcdef0", InstanceState::Stopped, Duration::from_secs(600));
        cloud.add_target_group(tg, Duration::from_secs(10));
        cloud.add_listener(l1);
        let text = format!(
            "listener_arns = [\"{l1}\"]\nhold = \"2m\"\n[[rules]]\nname = \"api\"\nhosts = [\"api.x.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"i-0123456789abcdef0\"] }}\n"
        );
        let app = App::new(autostop::config::Config::from_toml(&text).unwrap(), cloud);
        let event = serde_json::json!({
            "requestContext": {"elb": {"targetGroupArn": tg}}, "httpMethod": "POST", "path": "/",
            "headers": {"host": "api.x.com", "accept": "application/json"}, "body": "", "isBase64Encoded": false
        });
        let mut context = lambda_runtime::Context::default();
        context.deadline = epoch_ms() + 10_000;
        let start = tokio::time::Instant::now();
        let v = serde_json::to_value(invoke(&app, LambdaEvent::new(event, context)).await.unwrap()).unwrap();
        assert_eq!(v["statusCode"], 503);
        let held = start.elapsed();
        assert!(held >= Duration::from_secs(6) && held < Duration::from_secs(8), "held {held:?}, not hold's 2 m");
    }
}
