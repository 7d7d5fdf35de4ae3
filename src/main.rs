//! The Lambda entry point: config and AWS clients once, then the runtime loop.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autostop::app::App;
use autostop::cloud::aws::AwsCloud;
use autostop::config::{self, Config, Deployment};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    autostop::telemetry::init();
    let cloud = AwsCloud::from_env().await;
    let mut deployment = Deployment::from_env();
    if deployment.listener_arns.is_empty() {
        if let Some(lb) = std::env::var("AUTOSTOP_LOAD_BALANCER_ARN").ok().filter(|v| !v.is_empty()) {
            deployment.listener_arns = cloud.listeners_of(&lb).await?;
            tracing::info!(load_balancer = %lb, listeners = ?deployment.listener_arns, "listeners resolved");
        }
    }
    let path = config::default_path();
    // A bad config stops the process before it serves anything: never half a config.
    let config = Config::load(&path, &deployment).map_err(|e| {
        tracing::error!(path = %path.display(), error = %e, "config rejected");
        e
    })?;
    let app = Arc::new(App::new(config, cloud));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            let left = time_left(event.context.deadline);
            app.handle(event.payload, left).await.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}

/// What remains of the invocation, from its deadline in epoch milliseconds.
fn time_left(deadline_ms: u64) -> Option<Duration> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Some(Duration::from_millis(deadline_ms).saturating_sub(now))
}
