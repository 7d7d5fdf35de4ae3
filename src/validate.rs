//! `autostop validate --aws`: does what the config names exist in AWS, wired as autostop needs?
//!
//! Checks that every target group, listener, instance and service exists; that each listener's
//! default action forwards to a Lambda target group (autostop's); and that no foreign ALB rule
//! already claims a configured host (it would win over ours, or shadow the Lambda).

use crate::cloud::aws::AwsCloud;
use crate::cloud::{Cloud, CloudError, InstanceState};
use crate::config::Config;

/// Everything wrong, one line each; empty when all is well.
pub async fn check_aws(cloud: &AwsCloud, config: &Config) -> Result<Vec<String>, CloudError> {
    let mut problems = Vec::new();
    for listener in &config.listener_arns {
        match cloud.listener_default_targets(listener).await? {
            None => problems.push(format!("listener {listener} does not exist")),
            Some(tgs) => {
                let mut lambda = false;
                for tg in &tgs {
                    lambda |= cloud.target_group_type(tg).await?.as_deref() == Some("lambda");
                }
                if !lambda {
                    problems.push(format!(
                        "listener {listener}: its default action does not forward to a Lambda target group; make \
                         autostop's target group its default action (aws elbv2 modify-listener)"
                    ));
                }
            }
        }
        for r in cloud.listener_rules(listener).await? {
            if r.owner.is_some() {
                continue;
            }
            for rule in &config.rules {
                for host in rule.hosts.iter().filter(|h| r.hosts.iter().any(|x| x.eq_ignore_ascii_case(h))) {
                    problems.push(format!(
                        "listener {listener}: a rule not made by autostop (priority {}) already claims host {host} of \
                         rule `{}`",
                        r.priority, rule.name
                    ));
                }
            }
        }
    }
    for rule in &config.rules {
        if cloud.target_group_type(&rule.target_group_arn).await?.is_none() {
            problems.push(format!("rule `{}`: target group {} does not exist", rule.name, rule.target_group_arn));
        }
        if let Some(ec2) = &rule.ec2 {
            for i in cloud.instances(&ec2.instance_ids).await? {
                if matches!(i.state, InstanceState::Missing | InstanceState::Terminated) {
                    problems.push(format!("rule `{}`: instance {} is {}", rule.name, i.id, i.state.as_str()));
                }
            }
        }
        if let Some(ecs) = &rule.ecs {
            let svc = cloud.service(&ecs.cluster, &ecs.service).await?;
            if !svc.is_active() {
                problems.push(format!(
                    "rule `{}`: ECS service {}/{} is {}",
                    rule.name,
                    ecs.cluster,
                    ecs.service,
                    svc.status.to_lowercase()
                ));
            }
        }
    }
    Ok(problems)
}
