//! The fleet page's standing rule (`dashboard = { host }`): on every HTTPS listener, one rule
//! for its host that authenticates first and always forwards to the Lambda. It is not a
//! configured rule: nothing wakes or stops it, and it sits just before the derived priorities,
//! so it precedes every wildcard of ours that would match its host.

use crate::cloud::{Cloud, CloudError, ListenerRule, NewRule, RuleChange, Weighted};
use crate::config::standing::DERIVED_BASE;
use crate::config::{Config, DASHBOARD_OWNER};

use super::listener::ListenerView;

/// What one listener's pass changed: (created, modified, deleted).
pub type Changes = (usize, usize, usize);

/// Creates, repairs or removes the fleet page's rule on one listed listener.
pub async fn ensure_on<C: Cloud>(cloud: &C, config: &Config, view: &mut ListenerView) -> Result<Changes, CloudError> {
    let ours: Vec<ListenerRule> =
        view.rules.iter().filter(|r| r.owner.as_deref() == Some(DASHBOARD_OWNER)).cloned().collect();
    let here = config.dashboard.as_ref().filter(|_| !config.http_listeners.contains(&view.listener));
    let Some(dashboard) = here else { return delete_all(cloud, view, &ours).await.map(|n| (0, 0, n)) };
    let forward = vec![Weighted::new(&view.lambda_tg, 1)];
    let hosts = vec![dashboard.host.clone()];
    let Some((first, extra)) = ours.split_first() else {
        let new = NewRule {
            listener_arn: view.listener.clone(),
            priority: free_priority(view).ok_or_else(|| no_room(&view.listener))?,
            hosts,
            forward,
            auth: Some(dashboard.auth.clone()),
            owner: DASHBOARD_OWNER.to_string(),
        };
        let arn = cloud.create_rule(&new).await?;
        tracing::info!(listener = %view.listener, host = %dashboard.host, rule_arn = %arn, "fleet page rule created");
        return Ok((1, 0, 0));
    };
    let change = RuleChange {
        hosts: (first.hosts != hosts).then_some(hosts),
        forward: (first.forward != forward).then_some(forward),
        auth: (first.auth.as_ref() != Some(&dashboard.auth) || !first.kept.is_empty())
            .then(|| Some(dashboard.auth.clone())),
    };
    let modified = change != RuleChange::default();
    if modified {
        cloud.modify_rule(&first.arn, &change).await?;
        tracing::info!(listener = %view.listener, rule_arn = %first.arn, "fleet page rule repaired");
    }
    let deleted = delete_all(cloud, view, extra).await?;
    Ok((0, modified as usize, deleted))
}

async fn delete_all<C: Cloud>(cloud: &C, view: &mut ListenerView, rules: &[ListenerRule]) -> Result<usize, CloudError> {
    for r in rules {
        match cloud.delete_rule(&r.arn).await {
            Ok(()) => {}
            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        view.rules.retain(|x| x.arn != r.arn);
        tracing::info!(listener = %view.listener, rule_arn = %r.arn, "fleet page rule removed");
    }
    Ok(rules.len())
}

/// The highest priority below the derived ones that no rule of the listener holds.
fn free_priority(view: &ListenerView) -> Option<u32> {
    (1..DERIVED_BASE).rev().find(|p| view.rules.iter().all(|r| r.priority != *p))
}

fn no_room(listener: &str) -> CloudError {
    CloudError::new("CreateRule", "PriorityInUse", format!("no free priority below {DERIVED_BASE} on {listener}"))
}
