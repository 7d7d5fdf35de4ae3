//! Which listeners carry a rule's standing rules. A target group serves one load balancer
//! ("you can use each target group with only one load balancer", ELBv2 API reference,
//! TargetGroup; ALB quotas, "Load balancers per target group: 1"), so a rule's standing rules go
//! only on the listeners of its group's load balancer: on another one, CreateRule and ModifyRule
//! fail with `TargetGroupAssociationLimit`.
//!
//! A rule's home is, in this order: its configured `load_balancer`; the listeners' one load
//! balancer when they are all on one (no call is made); the load balancer its group serves
//! (DescribeTargetGroups `LoadBalancerArns`). A group no load balancer uses yet, with listeners
//! on several, has no home until the config names one.

use std::collections::{HashMap, HashSet};

use crate::cloud::alb::load_balancer_of_listener;
use crate::cloud::{Cloud, CloudError};
use crate::config::{Config, Rule};

/// Where a rule's standing rules go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// The load balancer (ARN) whose configured listeners carry them.
    On(String),
    /// Nowhere yet, with the reason (an error naming what to do).
    Nowhere(CloudError),
}

/// The homes of the rules a change concerns.
#[derive(Debug, Clone, Default)]
pub struct Homes {
    of: HashMap<String, Home>,
    /// Rules behind sign-in, and the HTTP listeners that cannot carry them.
    sso: HashSet<String>,
    http: HashSet<String>,
}

impl Homes {
    /// The homes of `rules` (those with hosts); at most one DescribeTargetGroups per 20 groups,
    /// and none when the listeners are all on one load balancer.
    pub async fn resolve<'a, C: Cloud>(
        cloud: &C,
        config: &Config,
        rules: impl Iterator<Item = &'a Rule>,
    ) -> Result<Homes, CloudError> {
        let lbs = load_balancers(config);
        let rules: Vec<&Rule> = rules.filter(|r| r.target_group_arn.is_some()).collect();
        let ask: Vec<String> = match lbs.len() {
            0 | 1 => Vec::new(),
            _ => rules.iter().filter(|r| r.load_balancer.is_none()).map(|r| r.app_group().to_string()).collect(),
        };
        let served = match ask.is_empty() {
            true => HashMap::new(),
            false => cloud.load_balancers_of_groups(&ask).await?,
        };
        Ok(Homes::from_served(config, rules.into_iter(), &served))
    }

    /// The homes of `rules` given the load balancers each target group serves (pure).
    pub fn from_served<'a>(
        config: &Config,
        rules: impl Iterator<Item = &'a Rule>,
        served: &HashMap<String, Vec<String>>,
    ) -> Homes {
        let lbs = load_balancers(config);
        let with_group: Vec<&Rule> = rules.filter(|r| r.target_group_arn.is_some()).collect();
        Homes {
            of: with_group.iter().map(|r| (r.name.clone(), home(r, &lbs, served.get(r.app_group())))).collect(),
            sso: with_group.iter().filter(|r| r.access.sso().is_some()).map(|r| r.name.clone()).collect(),
            http: config.http_listeners.iter().cloned().collect(),
        }
    }

    /// Every rule of the config.
    pub async fn of_all<C: Cloud>(cloud: &C, config: &Config) -> Result<Homes, CloudError> {
        Homes::resolve(cloud, config, config.rules.iter()).await
    }

    /// Whether `rule`'s standing rules belong on `listener`: a listener of its load balancer,
    /// and HTTPS if the rule is behind sign-in.
    pub fn serves(&self, listener: &str, rule: &str) -> bool {
        let https_if_needed = !self.sso.contains(rule) || !self.http.contains(listener);
        https_if_needed && matches!(self.of.get(rule), Some(Home::On(lb)) if *lb == load_balancer_of_listener(listener))
    }

    /// The rules homed on `listener`'s load balancer.
    pub fn on(&self, listener: &str) -> HashSet<String> {
        self.of.keys().filter(|r| self.serves(listener, r)).cloned().collect()
    }

    /// The configured listeners that carry `rule`'s standing rules, or why there are none.
    pub fn listeners<'a>(&self, config: &'a Config, rule: &Rule) -> Result<Vec<&'a String>, CloudError> {
        if let Some(Home::Nowhere(why)) = self.of.get(&rule.name) {
            return Err(why.clone());
        }
        Ok(config.listener_arns.iter().filter(|l| self.serves(l, &rule.name)).collect())
    }

    /// The rules with no home, with why.
    pub fn homeless(&self) -> impl Iterator<Item = (&str, &CloudError)> {
        self.of.iter().filter_map(|(r, h)| match h {
            Home::Nowhere(e) => Some((r.as_str(), e)),
            Home::On(_) => None,
        })
    }

    /// The load balancer (ARN) `rule` is homed on.
    pub fn load_balancer(&self, rule: &str) -> Option<&str> {
        match self.of.get(rule) {
            Some(Home::On(lb)) => Some(lb),
            _ => None,
        }
    }
}

/// The distinct load balancers of the configured listeners, in config order.
pub fn load_balancers(config: &Config) -> Vec<String> {
    let mut lbs: Vec<String> = Vec::new();
    for lb in config.listener_arns.iter().map(|l| load_balancer_of_listener(l)) {
        if !lbs.contains(&lb) {
            lbs.push(lb);
        }
    }
    lbs
}

/// One rule's home from what is configured and what its group serves (pure).
fn home(rule: &Rule, lbs: &[String], served: Option<&Vec<String>>) -> Home {
    let nowhere = |code: &str, why: String| Home::Nowhere(CloudError::new("DescribeTargetGroups", code, why));
    if let Some(lb) = &rule.load_balancer {
        return Home::On(lb.clone());
    }
    if let [only] = lbs {
        return Home::On(only.clone());
    }
    match served.map(Vec::as_slice) {
        None => nowhere("TargetGroupNotFound", format!("rule `{}`: its target group does not exist", rule.name)),
        Some([]) => nowhere(
            "LoadBalancerNotChosen",
            format!(
                "rule `{}`: its target group serves no load balancer yet and the listeners are on {}: set the rule's \
                 `load_balancer` to the one its hosts' DNS points at",
                rule.name,
                lbs.len()
            ),
        ),
        Some([lb, ..]) if lbs.contains(lb) => Home::On(lb.clone()),
        Some([lb, ..]) => nowhere(
            "TargetGroupAssociationLimit",
            format!(
                "rule `{}`: its target group serves load balancer {lb}, which none of the listeners are on: add a \
                 listener of {lb} to `listener_arns`, or use another target group",
                rule.name
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorKind;

    const LB1: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/1a";
    const LB2: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/staging/2b";

    fn rule(load_balancer: Option<&str>) -> Rule {
        Rule {
            name: "api".into(),
            target_group_arn: Some("arn:tg".into()),
            load_balancer: load_balancer.map(str::to_string),
            ..Rule::empty()
        }
    }

    #[test]
    fn a_rule_is_homed_by_its_config_then_the_one_load_balancer_then_its_group() {
        let both = [LB1.to_string(), LB2.to_string()];
        let on2 = vec![LB2.to_string()];
        assert_eq!(home(&rule(Some(LB2)), &both, None), Home::On(LB2.into()), "configured");
        assert_eq!(home(&rule(None), &both[..1], None), Home::On(LB1.into()), "one load balancer: no call");
        assert_eq!(home(&rule(None), &both, Some(&on2)), Home::On(LB2.into()), "where its group is");
        let codes = |h: Home| match h {
            Home::Nowhere(e) => (e.code, e.kind),
            Home::On(lb) => panic!("homed on {lb}"),
        };
        assert_eq!(codes(home(&rule(None), &both, Some(&vec![]))).0, "LoadBalancerNotChosen");
        let elsewhere = vec!["arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/prod/3c".into()];
        assert_eq!(
            codes(home(&rule(None), &both, Some(&elsewhere))),
            ("TargetGroupAssociationLimit".to_string(), ErrorKind::Limit)
        );
        assert_eq!(codes(home(&rule(None), &both, None)).1, ErrorKind::NotFound);
    }
}
