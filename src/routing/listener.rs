//! A listener as the reconciler sees it (its default action's target group and its rules), how
//! it is listed, and what of it a change to one rule reads.

use std::collections::HashSet;

use crate::cloud::{Cloud, CloudError, ListenerRule};
use crate::config::standing as priority;
use crate::config::{Config, Rule};

use super::home::Homes;

/// A listener as the reconciler sees it.
#[derive(Debug, Clone)]
pub struct ListenerView {
    pub listener: String,
    /// The target group of the listener's default action: autostop's Lambda.
    pub lambda_tg: String,
    pub rules: Vec<ListenerRule>,
    /// The configured rules whose standing rules belong here (their group serves this
    /// listener's load balancer, see [`super::home`]); `None`: every rule.
    pub homed: Option<HashSet<String>>,
}

impl ListenerView {
    /// This listener with only what a change to `rule` reads: rules not ours (their
    /// priorities) and the standing rules of `rule` and of the rules entangled with it.
    pub fn narrowed(&self, config: &Config, rule: &Rule) -> ListenerView {
        let names = entangled(config, rule);
        let rules =
            self.rules.iter().filter(|r| r.owner.as_deref().is_none_or(|o| names.contains(o))).cloned().collect();
        ListenerView { rules, ..self.clone() }
    }

    /// Whether the standing rules of the rule named `rule` belong on this listener.
    pub fn serves(&self, rule: &str) -> bool {
        self.homed.as_ref().is_none_or(|h| h.contains(rule))
    }
}

/// Lists a listener as the reconciler needs it: its default action's target group and its
/// rules, and which rules are homed on it (a rule behind sign-in has no home on a listener the
/// config knows is HTTP, see [`Homes::serves`]).
pub async fn view<C: Cloud>(cloud: &C, listener: &str, homes: &Homes) -> Result<ListenerView, CloudError> {
    let (facts, rules) = tokio::join!(cloud.listener_facts(listener), cloud.listener_rules(listener));
    let facts = facts?;
    let lambda_tg = facts.default_target_group.ok_or_else(|| {
        CloudError::new(
            "DescribeListeners",
            "DefaultActionNotForward",
            format!("listener {listener} has no forward default action: make autostop's Lambda target group its default action"),
        )
    })?;
    Ok(ListenerView { listener: listener.to_string(), lambda_tg, rules: rules?, homed: Some(homes.on(listener)) })
}

/// Lists every configured listener, with the homes of every rule.
pub async fn views<C: Cloud>(cloud: &C, config: &Config) -> Result<Vec<ListenerView>, CloudError> {
    let homes = Homes::of_all(cloud, config).await?;
    for (rule, why) in homes.homeless() {
        tracing::warn!(rule = %rule, code = %why.code, "no load balancer for the rule's standing rules: {}", why.message);
    }
    let mut out = Vec::with_capacity(config.listener_arns.len());
    for l in &config.listener_arns {
        out.push(view(cloud, l, &homes).await?);
    }
    Ok(out)
}

/// Whether every standing rule of `rule`, and of the rules entangled with it, exists among a
/// listener's rules (in any direction).
pub fn complete(config: &Config, rules: &[ListenerRule], serves: impl Fn(&str) -> bool, rule: &Rule) -> bool {
    let names = entangled(config, rule);
    let mut here = config.standing.iter().filter(|c| names.contains(c.owner.as_str()) && serves(&c.owner));
    here.all(|c| {
        rules.iter().any(|r| r.owner.as_deref() == Some(c.owner.as_str()) && priority::same_hosts(&r.hosts, &c.hosts))
    })
}

/// The Lambda target group as `rule`'s standing rules on a listener name it (the member that is
/// not the app's group), so a switch needs no DescribeListeners.
pub(crate) fn lambda_of(rules: &[ListenerRule], rule: &Rule) -> Option<String> {
    rules
        .iter()
        .filter(|r| r.owner.as_deref() == Some(rule.name.as_str()))
        .flat_map(|r| r.forward.iter())
        .find(|w| w.target_group != rule.app_group())
        .map(|w| w.target_group.clone())
}

/// The rules whose standing rules must exist before `rule`'s may forward to its app: itself and
/// every rule with an overlapping host (else ALB would hand that rule's hosts to this one, or
/// the other way round).
pub fn entangled<'a>(config: &'a Config, rule: &Rule) -> HashSet<&'a str> {
    let mine: Vec<&String> = config.standing.iter().filter(|c| c.owner == rule.name).flat_map(|c| &c.hosts).collect();
    config
        .standing
        .iter()
        .filter(|c| c.owner == rule.name || c.hosts.iter().any(|h| mine.iter().any(|m| priority::overlaps(m, h))))
        .map(|c| c.owner.as_str())
        .collect()
}
