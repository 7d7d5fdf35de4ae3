//! ELBv2: target health and the listener rules autostop inserts and removes.

use std::collections::HashMap;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, HostHeaderConditionConfig, Rule, RuleCondition, Tag, TargetHealthStateEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::cloud_error;
use crate::cloud::{CloudResult, ListenerRule, NewForwardRule, TargetHealth, RULE_TAG};

/// DescribeTags takes at most 20 ARNs.
const TAGS_BATCH: usize = 20;

pub async fn target_health(client: &Client, target_group_arn: &str) -> CloudResult<TargetHealth> {
    let out = client
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| cloud_error("DescribeTargetHealth", e))?;
    let states: Vec<Option<&TargetHealthStateEnum>> =
        out.target_health_descriptions().iter().map(|d| d.target_health().and_then(|h| h.state())).collect();
    Ok(count_health(&states))
}

/// Healthy targets among the registered ones; `unused` (stopped instance, not registered) and
/// `draining` targets do not count towards the total.
fn count_health(states: &[Option<&TargetHealthStateEnum>]) -> TargetHealth {
    let mut h = TargetHealth::default();
    for state in states {
        match state {
            Some(TargetHealthStateEnum::Unused) | Some(TargetHealthStateEnum::Draining) => {}
            Some(TargetHealthStateEnum::Healthy) => {
                h.healthy += 1;
                h.total += 1;
            }
            _ => h.total += 1,
        }
    }
    h
}

pub async fn listener_rules(client: &Client, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
    let mut rules = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = client
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| cloud_error("DescribeRules", e))?;
        rules.extend(out.rules().iter().filter_map(to_listener_rule));
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let owners = owner_tags(client, &rules).await?;
    for rule in &mut rules {
        rule.owner = owners.get(&rule.arn).cloned();
    }
    Ok(rules)
}

/// `autostop:rule` tag values by rule ARN, asked for in batches of 20.
async fn owner_tags(client: &Client, rules: &[ListenerRule]) -> CloudResult<HashMap<String, String>> {
    let mut owners = HashMap::new();
    let arns: Vec<String> = rules.iter().map(|r| r.arn.clone()).collect();
    for batch in arns.chunks(TAGS_BATCH) {
        let out = client
            .describe_tags()
            .set_resource_arns(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error("DescribeTags", e))?;
        for desc in out.tag_descriptions() {
            let owner = desc.tags().iter().find(|t| t.key() == Some(RULE_TAG)).and_then(|t| t.value());
            if let (Some(arn), Some(owner)) = (desc.resource_arn(), owner) {
                owners.insert(arn.to_string(), owner.to_string());
            }
        }
    }
    Ok(owners)
}

/// Domain view of an SDK rule; the default rule (no numeric priority) is left out.
fn to_listener_rule(rule: &Rule) -> Option<ListenerRule> {
    if rule.is_default() == Some(true) {
        return None;
    }
    let priority = rule.priority()?.parse().ok()?;
    let mut hosts = Vec::new();
    for c in rule.conditions().iter().filter(|c| c.field() == Some("host-header")) {
        match c.host_header_config() {
            Some(cfg) if !cfg.values().is_empty() => hosts.extend(cfg.values().iter().cloned()),
            _ => hosts.extend(c.values().iter().cloned()),
        }
    }
    let mut target_groups = Vec::new();
    for a in rule.actions().iter().filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward)) {
        target_groups.extend(a.target_group_arn().map(str::to_string));
        if let Some(fc) = a.forward_config() {
            for tg in fc.target_groups() {
                if let Some(arn) = tg.target_group_arn() {
                    if !target_groups.iter().any(|t| t == arn) {
                        target_groups.push(arn.to_string());
                    }
                }
            }
        }
    }
    Some(ListenerRule { arn: rule.rule_arn()?.to_string(), priority, hosts, target_groups, owner: None })
}

/// One call creates the rule and its `autostop:rule` tag, so no untagged rule of ours can exist.
pub async fn create_forward_rule(client: &Client, rule: &NewForwardRule) -> CloudResult<String> {
    let out = client
        .create_rule()
        .listener_arn(&rule.listener_arn)
        .priority(rule.priority as i32)
        .conditions(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(HostHeaderConditionConfig::builder().set_values(Some(rule.hosts.clone())).build())
                .build(),
        )
        .actions(
            Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&rule.target_group_arn).order(1).build(),
        )
        .tags(Tag::builder().key(RULE_TAG).value(&rule.owner).build())
        .send()
        .await
        .map_err(|e| cloud_error("CreateRule", e))?;
    Ok(out.rules().first().and_then(|r| r.rule_arn()).unwrap_or_default().to_string())
}

/// A target group's type (`instance`, `ip`, `lambda`), or `None` when it does not exist.
pub async fn target_group_type(client: &Client, arn: &str) -> CloudResult<Option<String>> {
    match client.describe_target_groups().target_group_arns(arn).send().await {
        Ok(out) => Ok(out.target_groups().first().and_then(|t| t.target_type()).map(|t| t.as_str().to_string())),
        Err(e) => {
            let e = cloud_error("DescribeTargetGroups", e);
            if e.kind == crate::cloud::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// The target groups a listener's default action forwards to, or `None` when it does not exist.
pub async fn listener_default_targets(client: &Client, arn: &str) -> CloudResult<Option<Vec<String>>> {
    match client.describe_listeners().listener_arns(arn).send().await {
        Ok(out) => Ok(out.listeners().first().map(|l| {
            let mut tgs = Vec::new();
            for a in l.default_actions().iter().filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward)) {
                tgs.extend(a.target_group_arn().map(str::to_string));
                if let Some(fc) = a.forward_config() {
                    tgs.extend(fc.target_groups().iter().filter_map(|t| t.target_group_arn().map(str::to_string)));
                }
            }
            tgs.dedup();
            tgs
        })),
        Err(e) => {
            let e = cloud_error("DescribeListeners", e);
            if e.kind == crate::cloud::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// ARNs of every listener of a load balancer (paged).
pub async fn listeners_of(client: &Client, load_balancer_arn: &str) -> CloudResult<Vec<String>> {
    let mut arns = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = client
            .describe_listeners()
            .load_balancer_arn(load_balancer_arn)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| cloud_error("DescribeListeners", e))?;
        arns.extend(out.listeners().iter().filter_map(|l| l.listener_arn().map(str::to_string)));
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(arns)
}

pub async fn delete_rule(client: &Client, rule_arn: &str) -> CloudResult<()> {
    client.delete_rule().rule_arn(rule_arn).send().await.map_err(|e| cloud_error("DeleteRule", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::operation::create_rule::{CreateRuleError, CreateRuleOutput};
    use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_tags::DescribeTagsOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
    use aws_sdk_elasticloadbalancingv2::types::{TagDescription, TargetHealth as SdkHealth, TargetHealthDescription};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use crate::cloud::ErrorKind;

    const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/1/2";
    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/3";

    fn new_rule() -> NewForwardRule {
        NewForwardRule {
            listener_arn: LISTENER.into(),
            priority: 1200,
            hosts: vec!["api.dev.example.com".into(), "*.api.dev.example.com".into()],
            target_group_arn: TG.into(),
            owner: "api".into(),
        }
    }

    #[tokio::test]
    async fn create_rule_has_host_condition_forward_action_priority_and_tag() {
        let rule = mock!(Client::create_rule)
            .match_requests(|r| {
                let cond = &r.conditions()[0];
                let action = &r.actions()[0];
                let tag = &r.tags()[0];
                r.listener_arn() == Some(LISTENER)
                    && r.priority() == Some(1200)
                    && cond.field() == Some("host-header")
                    && cond.host_header_config().unwrap().values() == ["api.dev.example.com", "*.api.dev.example.com"]
                    && action.r#type() == Some(&ActionTypeEnum::Forward)
                    && action.target_group_arn() == Some(TG)
                    && tag.key() == Some("autostop:rule")
                    && tag.value() == Some("api")
            })
            .then_output(|| CreateRuleOutput::builder().rules(Rule::builder().rule_arn("arn:rule/1").build()).build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        assert_eq!(create_forward_rule(&client, &new_rule()).await.unwrap(), "arn:rule/1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn create_rule_classifies_priority_in_use() {
        let rule = mock!(Client::create_rule).then_error(|| {
            CreateRuleError::generic(
                aws_sdk_elasticloadbalancingv2::error::ErrorMetadata::builder()
                    .code("PriorityInUse")
                    .message("Priority '1200' is currently in use")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        let e = create_forward_rule(&client, &new_rule()).await.unwrap_err();
        assert_eq!((e.op, e.code.as_str(), e.kind), ("CreateRule", "PriorityInUse", ErrorKind::PriorityInUse));
    }

    #[tokio::test]
    async fn listener_rules_page_skip_default_and_read_owner_tags() {
        let sdk_rule = |arn: &str, prio: &str, host: &str| {
            Rule::builder()
                .rule_arn(arn)
                .priority(prio)
                .conditions(
                    RuleCondition::builder()
                        .field("host-header")
                        .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
                        .build(),
                )
                .actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(TG).build())
                .build()
        };
        let page1 = mock!(Client::describe_rules)
            .match_requests(|r| r.marker().is_none() && r.listener_arn() == Some(LISTENER))
            .then_output(move || {
                DescribeRulesOutput::builder()
                    .rules(sdk_rule("arn:r/1", "1200", "api.dev.example.com"))
                    .next_marker("m2")
                    .build()
            });
        let page2 = mock!(Client::describe_rules).match_requests(|r| r.marker() == Some("m2")).then_output(move || {
            DescribeRulesOutput::builder()
                .rules(sdk_rule("arn:r/2", "7", "other.example.com"))
                .rules(Rule::builder().rule_arn("arn:r/default").priority("default").is_default(true).build())
                .build()
        });
        let tags = mock!(Client::describe_tags)
            .match_requests(|r| r.resource_arns() == ["arn:r/1", "arn:r/2"])
            .then_output(|| {
                DescribeTagsOutput::builder()
                    .tag_descriptions(
                        TagDescription::builder()
                            .resource_arn("arn:r/1")
                            .tags(Tag::builder().key(RULE_TAG).value("api").build())
                            .build(),
                    )
                    .tag_descriptions(
                        TagDescription::builder()
                            .resource_arn("arn:r/2")
                            .tags(Tag::builder().key("team").value("x").build())
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&page1, &page2, &tags]);
        let rules = listener_rules(&client, LISTENER).await.unwrap();
        assert_eq!(rules.len(), 2, "default rule left out");
        assert_eq!(rules[0].priority, 1200);
        assert_eq!(rules[0].hosts, vec!["api.dev.example.com"]);
        assert_eq!(rules[0].target_groups, vec![TG]);
        assert_eq!(rules[0].owner.as_deref(), Some("api"));
        assert_eq!(rules[1].owner, None, "foreign rule");
        assert_eq!(tags.num_calls(), 1);
    }

    #[tokio::test]
    async fn target_health_counts_healthy_and_ignores_unused() {
        let rule = mock!(Client::describe_target_health)
            .match_requests(|r| r.target_group_arn() == Some(TG))
            .then_output(|| {
                let d = |s: TargetHealthStateEnum| {
                    TargetHealthDescription::builder().target_health(SdkHealth::builder().state(s).build()).build()
                };
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(d(TargetHealthStateEnum::Healthy))
                    .target_health_descriptions(d(TargetHealthStateEnum::Initial))
                    .target_health_descriptions(d(TargetHealthStateEnum::Unused))
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        assert_eq!(target_health(&client, TG).await.unwrap(), TargetHealth { healthy: 1, total: 2 });
    }
}
