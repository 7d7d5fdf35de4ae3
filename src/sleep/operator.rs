//! The operator's stop (`autostop stop`, `{"autostop": "stop"}`): now, whatever the activity,
//! in the same order as an idle stop, but never under an awake rule that depends on it.

use crate::cloud::{Cloud, CloudError};
use crate::config::{Config, Rule};
use crate::routing as routes;
use crate::wake;

use super::stop::{read_state, stop_rule, sweep_routes, StopOutcome, StopRequest};

/// The operator's `stop`: observe, stop now regardless of activity, sweep.
/// `by`: who asked (the fleet page's viewer), recorded as `stopped_by`.
pub async fn stop_now<C: Cloud>(
    cloud: &C,
    config: &Config,
    rule: &Rule,
    by: Option<&str>,
) -> Result<StopOutcome, CloudError> {
    // Dependents first: a dependency is never stopped under a rule that needs it.
    for j in config.dependents(&rule.name) {
        let dependent = &config.rules[j];
        if wake::observe(cloud, dependent).await?.awake() {
            return Ok(StopOutcome::BackedOff(format!(
                "`{}` depends on it and is awake; stop `{}` first",
                dependent.name, dependent.name
            )));
        }
    }
    let current = read_state(cloud, config, &rule.name).await?;
    let observed = wake::observe(cloud, rule).await?;
    let mut views = routes::views(cloud, config).await?;
    let request = StopRequest {
        rule,
        decided: current.as_ref(),
        observed: &observed,
        views: &mut views,
        reason: "operator stop",
        cause: "operator",
        by,
    };
    let outcome = stop_rule(cloud, config, request).await?;
    if !matches!(outcome, StopOutcome::BackedOff(_)) {
        sweep_routes(cloud, config, &[rule]).await?;
    }
    Ok(outcome)
}
