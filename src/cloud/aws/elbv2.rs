//! ELBv2: target health, the listener rules autostop manages, and account limits.

use std::collections::HashMap;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, HostHeaderConditionConfig, ProtocolEnum, Rule, RuleCondition, RulePriorityPair, Tag,
    TargetHealthDescription, TargetHealthStateEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::actions::{auth_of, changed, created, forward_of, in_front};
use super::error::cloud_error;
use crate::cloud::{
    CloudResult, ErrorKind, HealthCheck, ListenerFacts, ListenerRule, NewRule, RuleChange, TargetHealth, RULE_TAG,
};

/// DescribeTags takes at most 20 ARNs.
const TAGS_BATCH: usize = 20;
/// Listings that lost a rule between DescribeRules and DescribeTags are retried this often.
const LISTING_ATTEMPTS: usize = 3;

pub async fn target_health(client: &Client, target_group_arn: &str) -> CloudResult<TargetHealth> {
    let out = client
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| cloud_error("DescribeTargetHealth", e))?;
    Ok(count_health(out.target_health_descriptions()))
}

/// Counts targets by state. `unused` targets (stopped instance, not registered, or a group no rule
/// references) and `draining` ones are not in `total`; `Target.NotInUse` is counted apart, since
/// it means the ALB is not health-checking the group at all.
fn count_health(descriptions: &[TargetHealthDescription]) -> TargetHealth {
    let mut h = TargetHealth::default();
    for d in descriptions {
        let Some(health) = d.target_health() else { continue };
        let reason = health.reason().map(|r| r.as_str().to_string());
        match health.state() {
            Some(TargetHealthStateEnum::Unused) => {
                if reason.as_deref() == Some("Target.NotInUse") {
                    h.not_in_use += 1;
                }
            }
            Some(TargetHealthStateEnum::Draining) => {}
            Some(TargetHealthStateEnum::Healthy) => {
                h.healthy += 1;
                h.total += 1;
            }
            Some(TargetHealthStateEnum::Unhealthy) => {
                h.unhealthy += 1;
                h.total += 1;
                if h.unhealthy_reason.is_none() {
                    h.unhealthy_reason = reason;
                }
            }
            _ => {
                h.initial += 1;
                h.total += 1;
            }
        }
    }
    h
}

/// Every non-default rule of a listener with its owner tag. A rule deleted between the listing
/// and the tag lookup makes DescribeTags fail with `RuleNotFound`: list again.
pub async fn listener_rules(client: &Client, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
    let mut attempt = 1;
    loop {
        let mut rules = describe_rules(client, listener_arn).await?;
        match owner_tags(client, &rules).await {
            Ok(owners) => {
                for rule in &mut rules {
                    rule.owner = owners.get(&rule.arn).cloned();
                }
                return Ok(rules);
            }
            Err(e) if e.kind == ErrorKind::NotFound && attempt < LISTING_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

async fn describe_rules(client: &Client, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
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
            _ => return Ok(rules),
        }
    }
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
    let forward = rule.actions().iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Forward)).map(forward_of);
    let mut front = in_front(rule.actions());
    let auth_at = front.iter().position(|a| auth_of(a).is_some());
    let auth = auth_at.map(|i| front.remove(i)).and_then(auth_of);
    Some(ListenerRule {
        arn: rule.rule_arn()?.to_string(),
        priority,
        hosts,
        forward: forward.unwrap_or_default(),
        owner: None,
        auth,
        kept: front.iter().filter_map(|a| a.r#type()).map(|t| t.as_str().to_string()).collect(),
    })
}

fn host_condition(hosts: &[String]) -> RuleCondition {
    RuleCondition::builder()
        .field("host-header")
        .host_header_config(HostHeaderConditionConfig::builder().set_values(Some(hosts.to_vec())).build())
        .build()
}

/// One call creates the rule and its `autostop:rule` tag, so no untagged rule of ours can exist.
pub async fn create_rule(client: &Client, rule: &NewRule) -> CloudResult<String> {
    let out = client
        .create_rule()
        .listener_arn(&rule.listener_arn)
        .priority(rule.priority as i32)
        .conditions(host_condition(&rule.hosts))
        .set_actions(Some(created(&rule.forward, rule.auth.as_ref())?))
        .tags(Tag::builder().key(RULE_TAG).value(&rule.owner).build())
        .send()
        .await
        .map_err(|e| cloud_error("CreateRule", e))?;
    Ok(out.rules().first().and_then(|r| r.rule_arn()).unwrap_or_default().to_string())
}

/// ModifyRule with only what changes: conditions, actions, or both. New actions are sent as
/// the whole list, built from the rule's actions read just before (see `actions::changed`).
pub async fn modify_rule(client: &Client, rule_arn: &str, change: &RuleChange) -> CloudResult<()> {
    let mut req = client.modify_rule().rule_arn(rule_arn);
    if let Some(hosts) = &change.hosts {
        req = req.conditions(host_condition(hosts));
    }
    if change.forward.is_some() || change.auth.is_some() {
        let current = rule_actions(client, rule_arn).await?;
        let auth = change.auth.as_ref().map(Option::as_ref);
        req = req.set_actions(Some(changed(&current, change.forward.as_deref(), auth)?));
    }
    req.send().await.map_err(|e| cloud_error("ModifyRule", e))?;
    Ok(())
}

/// One rule's actions as the load balancer holds them now (`RuleNotFound` when it is gone).
async fn rule_actions(client: &Client, rule_arn: &str) -> CloudResult<Vec<Action>> {
    let out = client.describe_rules().rule_arns(rule_arn).send().await.map_err(|e| cloud_error("DescribeRules", e))?;
    Ok(out.rules().first().map(|r| r.actions().to_vec()).unwrap_or_default())
}

pub async fn set_rule_priorities(client: &Client, priorities: &[(String, u32)]) -> CloudResult<()> {
    let pairs: Vec<RulePriorityPair> = priorities
        .iter()
        .map(|(arn, p)| RulePriorityPair::builder().rule_arn(arn).priority(*p as i32).build())
        .collect();
    client
        .set_rule_priorities()
        .set_rule_priorities(Some(pairs))
        .send()
        .await
        .map_err(|e| cloud_error("SetRulePriorities", e))?;
    Ok(())
}

/// The account's ELB limits by name (`rules-per-application-load-balancer`, ...), paged.
pub async fn account_limits(client: &Client) -> CloudResult<HashMap<String, u64>> {
    let mut limits = HashMap::new();
    let mut marker: Option<String> = None;
    loop {
        let out = client
            .describe_account_limits()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| cloud_error("DescribeAccountLimits", e))?;
        for l in out.limits() {
            if let (Some(name), Some(max)) = (l.name(), l.max().and_then(|m| m.parse::<f64>().ok())) {
                limits.insert(name.to_string(), max as u64);
            }
        }
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(limits),
        }
    }
}

/// The first target group the listener's default action forwards to.
pub async fn listener_facts(client: &Client, listener_arn: &str) -> CloudResult<ListenerFacts> {
    let out = client
        .describe_listeners()
        .listener_arns(listener_arn)
        .send()
        .await
        .map_err(|e| cloud_error("DescribeListeners", e))?;
    let listener = out.listeners().first();
    let default_target_group = listener.and_then(|l| {
        let forward = l.default_actions().iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))?;
        forward_of(forward).into_iter().find(|w| w.weight > 0).map(|w| w.target_group)
    });
    let https = listener.and_then(|l| l.protocol()) == Some(&ProtocolEnum::Https);
    Ok(ListenerFacts { default_target_group, https })
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

/// A target group's health-check threshold and interval; ALB's defaults where it names none.
pub async fn health_check(client: &Client, target_group_arn: &str) -> CloudResult<HealthCheck> {
    let out = client
        .describe_target_groups()
        .target_group_arns(target_group_arn)
        .send()
        .await
        .map_err(|e| cloud_error("DescribeTargetGroups", e))?;
    let tg = out.target_groups().first();
    Ok(HealthCheck {
        healthy_threshold: tg.and_then(|t| t.healthy_threshold_count()).unwrap_or(5).max(1) as u32,
        interval_secs: tg.and_then(|t| t.health_check_interval_seconds()).unwrap_or(30).max(1) as u32,
    })
}

/// Target groups asked for per DescribeTargetGroups call (its `TargetGroupArns`).
const GROUPS_BATCH: usize = 20;

/// `LoadBalancerArns` of each target group, asked for in batches. A batch naming a group that
/// is gone fails as a whole (`TargetGroupNotFound`), so it is asked again one group at a time.
pub async fn load_balancers_of_groups(client: &Client, arns: &[String]) -> CloudResult<HashMap<String, Vec<String>>> {
    let mut found = HashMap::new();
    for batch in arns.chunks(GROUPS_BATCH) {
        match describe_groups(client, batch).await {
            Ok(groups) => found.extend(groups),
            Err(e) if e.kind == ErrorKind::NotFound && batch.len() > 1 => {
                for arn in batch {
                    match describe_groups(client, std::slice::from_ref(arn)).await {
                        Ok(groups) => found.extend(groups),
                        Err(e) if e.kind == ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

async fn describe_groups(client: &Client, arns: &[String]) -> CloudResult<Vec<(String, Vec<String>)>> {
    let out = client
        .describe_target_groups()
        .set_target_group_arns(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| cloud_error("DescribeTargetGroups", e))?;
    let groups = out
        .target_groups()
        .iter()
        .filter_map(|tg| Some((tg.target_group_arn()?.to_string(), tg.load_balancer_arns().to_vec())));
    Ok(groups.collect())
}

/// The load balancer a listener belongs to, `None` if the listener does not exist.
pub async fn load_balancer_of(client: &Client, listener_arn: &str) -> CloudResult<Option<String>> {
    match client.describe_listeners().listener_arns(listener_arn).send().await {
        Ok(out) => Ok(out.listeners().first().and_then(|l| l.load_balancer_arn()).map(str::to_string)),
        Err(e) => match cloud_error("DescribeListeners", e) {
            e if e.kind == crate::cloud::ErrorKind::NotFound => Ok(None),
            e => Err(e),
        },
    }
}

/// A load balancer's attributes by key (DescribeLoadBalancerAttributes).
pub async fn load_balancer_attributes(
    client: &Client,
    load_balancer_arn: &str,
) -> CloudResult<HashMap<String, String>> {
    let out = client
        .describe_load_balancer_attributes()
        .load_balancer_arn(load_balancer_arn)
        .send()
        .await
        .map_err(|e| cloud_error("DescribeLoadBalancerAttributes", e))?;
    Ok(out.attributes().iter().filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string()))).collect())
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
pub(super) mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::error::ErrorMetadata;
    use aws_sdk_elasticloadbalancingv2::operation::create_rule::{CreateRuleError, CreateRuleOutput};
    use aws_sdk_elasticloadbalancingv2::operation::describe_account_limits::DescribeAccountLimitsOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_rules::{DescribeRulesError, DescribeRulesOutput};
    use aws_sdk_elasticloadbalancingv2::operation::describe_tags::{DescribeTagsError, DescribeTagsOutput};
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
    use aws_sdk_elasticloadbalancingv2::operation::modify_rule::{ModifyRuleError, ModifyRuleOutput};
    use aws_sdk_elasticloadbalancingv2::operation::set_rule_priorities::{
        SetRulePrioritiesError, SetRulePrioritiesOutput,
    };
    use aws_sdk_elasticloadbalancingv2::types::{
        Limit, Listener, TagDescription, TargetHealth as SdkHealth, TargetHealthReasonEnum,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::super::actions::{changed, forward_action};
    use crate::cloud::{ErrorKind, Weighted};

    const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/1/2";
    pub(crate) const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/3";
    pub(crate) const LAMBDA: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/4";

    fn meta(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(format!("{code} from AWS")).build()
    }

    pub(crate) fn asleep() -> Vec<Weighted> {
        vec![Weighted::new(LAMBDA, 1), Weighted::new(TG, 0)]
    }

    pub(crate) fn new_rule() -> NewRule {
        NewRule {
            listener_arn: LISTENER.into(),
            priority: 1200,
            hosts: vec!["api.dev.example.com".into(), "*.api.dev.example.com".into()],
            forward: asleep(),
            auth: None,
            owner: "api".into(),
        }
    }

    /// The (target group, weight) pairs of a request's forward action.
    fn weights(actions: &[Action]) -> Vec<(String, i32)> {
        let fc = actions[0].forward_config().expect("a forward config");
        fc.target_groups().iter().map(|t| (t.target_group_arn().unwrap().to_string(), t.weight().unwrap())).collect()
    }

    #[tokio::test]
    async fn create_rule_has_host_condition_weighted_forward_priority_and_tag() {
        let rule = mock!(Client::create_rule)
            .match_requests(|r| {
                let cond = &r.conditions()[0];
                let tag = &r.tags()[0];
                r.listener_arn() == Some(LISTENER)
                    && r.priority() == Some(1200)
                    && cond.field() == Some("host-header")
                    && cond.host_header_config().unwrap().values() == ["api.dev.example.com", "*.api.dev.example.com"]
                    && r.actions()[0].r#type() == Some(&ActionTypeEnum::Forward)
                    && weights(r.actions()) == vec![(LAMBDA.to_string(), 1), (TG.to_string(), 0)]
                    && tag.key() == Some("autostop:rule")
                    && tag.value() == Some("api")
            })
            .then_output(|| CreateRuleOutput::builder().rules(Rule::builder().rule_arn("arn:rule/1").build()).build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        assert_eq!(create_rule(&client, &new_rule()).await.unwrap(), "arn:rule/1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn create_rule_classifies_priority_in_use_and_too_many_rules() {
        for (code, kind) in [("PriorityInUse", ErrorKind::PriorityInUse), ("TooManyRules", ErrorKind::Limit)] {
            let rule = mock!(Client::create_rule).then_error(move || CreateRuleError::generic(meta(code)));
            let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
            let e = create_rule(&client, &new_rule()).await.unwrap_err();
            assert_eq!((e.op, e.code.as_str(), e.kind), ("CreateRule", code, kind));
        }
    }

    /// DescribeRules for one rule, answering with `actions`.
    pub(crate) fn holds(actions: Vec<Action>) -> aws_smithy_mocks::Rule {
        mock!(Client::describe_rules).match_requests(|r| r.rule_arns() == ["arn:rule/1"]).then_output(move || {
            DescribeRulesOutput::builder()
                .rules(Rule::builder().rule_arn("arn:rule/1").set_actions(Some(actions.clone())).build())
                .build()
        })
    }

    /// The (target group, weight) pairs of the request's forward action, wherever it stands.
    pub(crate) fn forward_weights(actions: &[Action]) -> Vec<(String, i32)> {
        let at = actions.iter().position(|a| a.r#type() == Some(&ActionTypeEnum::Forward)).expect("a forward action");
        weights(&actions[at..])
    }

    #[tokio::test]
    async fn modify_rule_sends_only_what_changes() {
        let read = holds(vec![forward_action(&asleep(), 1)]);
        let switch = mock!(Client::modify_rule)
            .match_requests(|r| {
                r.rule_arn() == Some("arn:rule/1")
                    && r.conditions().is_empty()
                    && r.actions().len() == 1
                    && weights(r.actions()) == vec![(TG.to_string(), 1), (LAMBDA.to_string(), 0)]
            })
            .then_output(|| ModifyRuleOutput::builder().build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&read, &switch]);
        let to_app =
            RuleChange { hosts: None, forward: Some(vec![Weighted::new(TG, 1), Weighted::new(LAMBDA, 0)]), auth: None };
        modify_rule(&client, "arn:rule/1", &to_app).await.unwrap();
        assert_eq!((read.num_calls(), switch.num_calls()), (1, 1));

        let hosts = mock!(Client::modify_rule)
            .match_requests(|r| {
                r.actions().is_empty() && r.conditions()[0].host_header_config().unwrap().values() == ["web.x.com"]
            })
            .then_output(|| ModifyRuleOutput::builder().build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&hosts]);
        let rehost = RuleChange { hosts: Some(vec!["web.x.com".into()]), forward: None, auth: None };
        modify_rule(&client, "arn:rule/1", &rehost).await.unwrap();
        assert_eq!(hosts.num_calls(), 1, "a host change reads no actions and sends none");
    }

    pub(crate) fn oidc() -> Action {
        use aws_sdk_elasticloadbalancingv2::types::AuthenticateOidcActionConfig;
        let config = AuthenticateOidcActionConfig::builder()
            .issuer("https://idp.example.com")
            .authorization_endpoint("https://idp.example.com/auth")
            .token_endpoint("https://idp.example.com/token")
            .user_info_endpoint("https://idp.example.com/userinfo")
            .client_id("autostop-dev")
            .scope("openid email")
            .build();
        Action::builder().r#type(ActionTypeEnum::AuthenticateOidc).authenticate_oidc_config(config).order(1).build()
    }

    /// ModifyRule replaces the whole action list (ELBv2 API reference, ModifyRule): an operator's
    /// authenticate-oidc in front of the forward is sent back, in front, with
    /// UseExistingClientSecret since DescribeRules returns no secret.
    #[tokio::test]
    async fn a_switch_sends_back_the_authenticate_action_in_front_of_the_new_forward() {
        let read = holds(vec![oidc(), forward_action(&asleep(), 2)]);
        let switch = mock!(Client::modify_rule)
            .match_requests(|r| {
                let [auth, fwd] = r.actions() else { return false };
                let cfg = auth.authenticate_oidc_config().expect("the oidc config kept");
                auth.r#type() == Some(&ActionTypeEnum::AuthenticateOidc)
                    && auth.order() == Some(1)
                    && cfg.issuer() == Some("https://idp.example.com")
                    && cfg.client_id() == Some("autostop-dev")
                    && cfg.use_existing_client_secret() == Some(true)
                    && cfg.client_secret().is_none()
                    && fwd.order() == Some(2)
                    && forward_weights(r.actions()) == vec![(TG.to_string(), 1), (LAMBDA.to_string(), 0)]
            })
            .then_output(|| ModifyRuleOutput::builder().build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&read, &switch]);
        let to_app =
            RuleChange { hosts: None, forward: Some(vec![Weighted::new(TG, 1), Weighted::new(LAMBDA, 0)]), auth: None };
        modify_rule(&client, "arn:rule/1", &to_app).await.unwrap();
        assert_eq!(switch.num_calls(), 1);
    }

    #[test]
    fn a_rule_that_lost_its_forward_gets_one_after_its_other_actions() {
        let actions = changed(&[oidc()], Some(&asleep()), None).unwrap();
        let types: Vec<_> = actions.iter().map(|a| (a.r#type().cloned(), a.order())).collect();
        assert_eq!(
            types,
            vec![(Some(ActionTypeEnum::AuthenticateOidc), Some(1)), (Some(ActionTypeEnum::Forward), Some(2))]
        );
    }

    #[tokio::test]
    async fn modify_rule_of_a_deleted_rule_is_not_found() {
        let gone = mock!(Client::describe_rules).then_error(|| DescribeRulesError::generic(meta("RuleNotFound")));
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&gone]);
        let e = modify_rule(&client, "arn:rule/1", &RuleChange { hosts: None, forward: Some(asleep()), auth: None })
            .await
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.kind), ("RuleNotFound", ErrorKind::NotFound));
        let gone = mock!(Client::modify_rule).then_error(|| ModifyRuleError::generic(meta("RuleNotFound")));
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&gone]);
        let rehost = RuleChange { hosts: Some(vec!["web.x.com".into()]), forward: None, auth: None };
        let e = modify_rule(&client, "arn:rule/1", &rehost).await.unwrap_err();
        assert_eq!((e.op, e.code.as_str(), e.kind), ("ModifyRule", "RuleNotFound", ErrorKind::NotFound));
    }

    #[tokio::test]
    async fn set_rule_priorities_sends_every_pair_in_one_call() {
        let set = mock!(Client::set_rule_priorities)
            .match_requests(|r| {
                let pairs: Vec<(&str, i32)> =
                    r.rule_priorities().iter().map(|p| (p.rule_arn().unwrap(), p.priority().unwrap())).collect();
                pairs == vec![("arn:rule/1", 10_001), ("arn:rule/2", 10_000)]
            })
            .then_output(|| SetRulePrioritiesOutput::builder().build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&set]);
        set_rule_priorities(&client, &[("arn:rule/1".into(), 10_001), ("arn:rule/2".into(), 10_000)]).await.unwrap();
        assert_eq!(set.num_calls(), 1);

        let taken =
            mock!(Client::set_rule_priorities).then_error(|| SetRulePrioritiesError::generic(meta("PriorityInUse")));
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&taken]);
        let e = set_rule_priorities(&client, &[("arn:rule/1".into(), 7)]).await.unwrap_err();
        assert_eq!((e.op, e.kind), ("SetRulePriorities", ErrorKind::PriorityInUse));
    }

    #[tokio::test]
    async fn account_limits_are_read_by_name_across_pages() {
        let page1 = mock!(Client::describe_account_limits).match_requests(|r| r.marker().is_none()).then_output(|| {
            DescribeAccountLimitsOutput::builder()
                .limits(Limit::builder().name("rules-per-application-load-balancer").max("100").build())
                .next_marker("m2")
                .build()
        });
        let page2 =
            mock!(Client::describe_account_limits).match_requests(|r| r.marker() == Some("m2")).then_output(|| {
                DescribeAccountLimitsOutput::builder()
                    .limits(Limit::builder().name("target-groups-per-application-load-balancer").max("100").build())
                    .limits(Limit::builder().name("condition-values-per-alb-rule").max("5").build())
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&page1, &page2]);
        let limits = account_limits(&client).await.unwrap();
        assert_eq!(limits.get("rules-per-application-load-balancer"), Some(&100));
        assert_eq!(limits.get("condition-values-per-alb-rule"), Some(&5));
        assert_eq!(limits.len(), 3);
    }

    #[tokio::test]
    async fn listener_facts_are_the_default_forward_action_and_the_protocol() {
        let listeners =
            mock!(Client::describe_listeners).match_requests(|r| r.listener_arns() == [LISTENER]).then_output(|| {
                DescribeListenersOutput::builder()
                    .listeners(
                        Listener::builder()
                            .listener_arn(LISTENER)
                            .protocol(ProtocolEnum::Https)
                            .default_actions(
                                Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(LAMBDA).build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&listeners]);
        let facts = listener_facts(&client, LISTENER).await.unwrap();
        assert_eq!((facts.default_target_group.as_deref(), facts.https), (Some(LAMBDA), true));
    }

    fn sdk_rule(arn: &str, prio: &str, host: &str, action: Action) -> Rule {
        Rule::builder()
            .rule_arn(arn)
            .priority(prio)
            .conditions(
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
                    .build(),
            )
            .actions(action)
            .build()
    }

    fn tagged(arn: &str, owner: Option<&str>) -> TagDescription {
        let tag = match owner {
            Some(o) => Tag::builder().key(RULE_TAG).value(o).build(),
            None => Tag::builder().key("team").value("x").build(),
        };
        TagDescription::builder().resource_arn(arn).tags(tag).build()
    }

    #[tokio::test]
    async fn listener_rules_page_skip_default_read_weights_and_owner_tags() {
        let page1 = mock!(Client::describe_rules)
            .match_requests(|r| r.marker().is_none() && r.listener_arn() == Some(LISTENER))
            .then_output(move || {
                let mut behind_sso = sdk_rule("arn:r/1", "1200", "api.dev.example.com", forward_action(&asleep(), 2));
                behind_sso.actions.get_or_insert_with(Vec::new).insert(0, oidc());
                DescribeRulesOutput::builder().rules(behind_sso).next_marker("m2").build()
            });
        let page2 = mock!(Client::describe_rules).match_requests(|r| r.marker() == Some("m2")).then_output(move || {
            let plain = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(TG).build();
            DescribeRulesOutput::builder()
                .rules(sdk_rule("arn:r/2", "7", "other.example.com", plain))
                .rules(Rule::builder().rule_arn("arn:r/default").priority("default").is_default(true).build())
                .build()
        });
        let tags = mock!(Client::describe_tags)
            .match_requests(|r| r.resource_arns() == ["arn:r/1", "arn:r/2"])
            .then_output(|| {
                DescribeTagsOutput::builder()
                    .tag_descriptions(tagged("arn:r/1", Some("api")))
                    .tag_descriptions(tagged("arn:r/2", None))
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&page1, &page2, &tags]);
        let rules = listener_rules(&client, LISTENER).await.unwrap();
        assert_eq!(rules.len(), 2, "default rule left out");
        assert_eq!((rules[0].priority, rules[0].hosts.clone()), (1200, vec!["api.dev.example.com".to_string()]));
        assert_eq!(rules[0].forward, asleep());
        assert_eq!(rules[0].routes_to(), vec![LAMBDA], "weight 0 takes no traffic");
        assert_eq!(rules[0].owner.as_deref(), Some("api"));
        let Some(crate::cloud::Authenticate::Oidc(auth)) = &rules[0].auth else { panic!("the oidc action read") };
        assert_eq!((auth.issuer.as_str(), auth.client_id.as_str()), ("https://idp.example.com", "autostop-dev"));
        assert_eq!(
            (auth.session.scope.as_str(), auth.session.timeout_secs),
            ("openid email", 604_800),
            "ALB's default"
        );
        assert!(rules[0].kept.is_empty(), "the authenticate action is not among the others");
        assert!(rules[1].kept.is_empty() && rules[1].auth.is_none());
        assert_eq!(rules[1].forward, vec![Weighted::new(TG, 1)], "a plain target group is weight 1");
        assert_eq!(rules[1].owner, None, "foreign rule");
        assert_eq!(tags.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_rule_deleted_between_listing_and_tags_makes_the_listing_start_again() {
        let first = mock!(Client::describe_rules).then_output(|| {
            DescribeRulesOutput::builder()
                .rules(sdk_rule("arn:r/1", "1200", "api.x", forward_action(&asleep(), 1)))
                .rules(sdk_rule("arn:r/gone", "9", "gone.x", forward_action(&asleep(), 1)))
                .build()
        });
        let second = mock!(Client::describe_rules).then_output(|| {
            DescribeRulesOutput::builder()
                .rules(sdk_rule("arn:r/1", "1200", "api.x", forward_action(&asleep(), 1)))
                .build()
        });
        let not_found = mock!(Client::describe_tags).then_error(|| DescribeTagsError::generic(meta("RuleNotFound")));
        let tags = mock!(Client::describe_tags)
            .then_output(|| DescribeTagsOutput::builder().tag_descriptions(tagged("arn:r/1", Some("api"))).build());
        let client =
            mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::Sequential, [&first, &not_found, &second, &tags]);
        let rules = listener_rules(&client, LISTENER).await.unwrap();
        assert_eq!(rules.iter().map(|r| r.arn.as_str()).collect::<Vec<_>>(), vec!["arn:r/1"]);
        assert_eq!((first.num_calls(), second.num_calls(), not_found.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn target_health_counts_states_and_tells_not_in_use_apart() {
        let rule = mock!(Client::describe_target_health)
            .match_requests(|r| r.target_group_arn() == Some(TG))
            .then_output(|| {
                let d = |s: TargetHealthStateEnum, reason: Option<TargetHealthReasonEnum>| {
                    TargetHealthDescription::builder()
                        .target_health(SdkHealth::builder().state(s).set_reason(reason).build())
                        .build()
                };
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(d(TargetHealthStateEnum::Healthy, None))
                    .target_health_descriptions(d(
                        TargetHealthStateEnum::Initial,
                        Some(TargetHealthReasonEnum::InitialHealthChecking),
                    ))
                    .target_health_descriptions(d(
                        TargetHealthStateEnum::Unhealthy,
                        Some(TargetHealthReasonEnum::Timeout),
                    ))
                    .target_health_descriptions(d(
                        TargetHealthStateEnum::Unused,
                        Some(TargetHealthReasonEnum::NotInUse),
                    ))
                    .target_health_descriptions(d(
                        TargetHealthStateEnum::Unused,
                        Some(TargetHealthReasonEnum::InvalidState),
                    ))
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        let h = target_health(&client, TG).await.unwrap();
        assert_eq!((h.healthy, h.total, h.initial, h.unhealthy, h.not_in_use), (1, 3, 1, 1, 1));
        assert_eq!(h.unhealthy_reason.as_deref(), Some("Target.Timeout"));
    }

    #[tokio::test]
    async fn load_balancer_attributes_are_asked_of_the_load_balancer_and_read_by_key() {
        use aws_sdk_elasticloadbalancingv2::operation::describe_load_balancer_attributes::DescribeLoadBalancerAttributesOutput;
        use aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute;
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/1";
        let attrs = mock!(Client::describe_load_balancer_attributes)
            .match_requests(move |r| r.load_balancer_arn() == Some(lb))
            .then_output(|| {
                let attr = |k: &str, v: &str| LoadBalancerAttribute::builder().key(k).value(v).build();
                DescribeLoadBalancerAttributesOutput::builder()
                    .attributes(attr("routing.http.xff_header_processing.mode", "preserve"))
                    .attributes(attr("routing.http.xff_client_port.enabled", "true"))
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&attrs]);
        let found = load_balancer_attributes(&client, lb).await.unwrap();
        assert_eq!(found.get("routing.http.xff_header_processing.mode").map(String::as_str), Some("preserve"));
        assert_eq!(found.get("routing.http.xff_client_port.enabled").map(String::as_str), Some("true"));
    }

    /// DescribeTargetGroups `LoadBalancerArns` per group; a batch naming a deleted group fails
    /// whole (`TargetGroupNotFound`), so the groups are asked one at a time and the gone one left out.
    #[tokio::test]
    async fn load_balancers_of_groups_are_read_and_a_gone_group_is_left_out() {
        use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::{
            DescribeTargetGroupsError, DescribeTargetGroupsOutput,
        };
        use aws_sdk_elasticloadbalancingv2::types::TargetGroup;
        const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc";
        let batch = mock!(Client::describe_target_groups)
            .match_requests(|r| r.target_group_arns().len() == 2)
            .then_error(|| DescribeTargetGroupsError::generic(meta("TargetGroupNotFound")));
        let one =
            mock!(Client::describe_target_groups).match_requests(|r| r.target_group_arns() == [TG]).then_output(|| {
                DescribeTargetGroupsOutput::builder()
                    .target_groups(TargetGroup::builder().target_group_arn(TG).load_balancer_arns(LB).build())
                    .build()
            });
        let gone = mock!(Client::describe_target_groups)
            .match_requests(|r| r.target_group_arns() == ["arn:gone"])
            .then_error(|| DescribeTargetGroupsError::generic(meta("TargetGroupNotFound")));
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&batch, &one, &gone]);
        let found = load_balancers_of_groups(&client, &[TG.to_string(), "arn:gone".to_string()]).await.unwrap();
        assert_eq!(found, HashMap::from([(TG.to_string(), vec![LB.to_string()])]));
        assert_eq!((batch.num_calls(), one.num_calls(), gone.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn the_health_check_is_read_from_the_target_group() {
        use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
        use aws_sdk_elasticloadbalancingv2::types::TargetGroup;
        let groups = mock!(Client::describe_target_groups)
            .match_requests(|r| r.target_group_arns() == [TG.to_string()])
            .then_output(|| {
                let tg = TargetGroup::builder().healthy_threshold_count(3).health_check_interval_seconds(10).build();
                DescribeTargetGroupsOutput::builder().target_groups(tg).build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&groups]);
        let h = health_check(&client, TG).await.unwrap();
        assert_eq!((h.healthy_threshold, h.interval_secs, h.floor_secs()), (3, 10, 30));
    }
}
