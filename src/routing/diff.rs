//! Matching the actual rules of one listener against the desired ones, and the plan that
//! closes the gap (pure, table-tested): modify the matched, delete ours the config no longer
//! wants, move priorities, create the missing.

use std::collections::{HashMap, HashSet};

use crate::cloud::{Authenticate, ListenerRule, NewRule, RuleChange, Weighted};
use crate::config::standing as priority;
use crate::config::{Access, Config, Rule, DASHBOARD_OWNER};

use super::desired::{desired, Desired, PlanError};
use super::listener::ListenerView;
use super::route::{forward, route_of, Route, Want};

/// A matched rule of ours to change in place (ModifyRule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modify {
    pub rule_arn: String,
    pub change: RuleChange,
    /// The configured rule it belongs to (its `autostop:rule` tag).
    pub owner: String,
}

/// A rule of ours the config no longer wants (DeleteRule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub rule_arn: String,
    pub owner: String,
}

/// A rule of ours to move to another priority (SetRulePriorities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub rule_arn: String,
    pub priority: u32,
}

/// What one listener needs to match the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub modify: Vec<Modify>,
    pub delete: Vec<Delete>,
    pub moves: Vec<Move>,
    pub create: Vec<NewRule>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.modify.is_empty() && self.delete.is_empty() && self.moves.is_empty() && self.create.is_empty()
    }

    pub fn changes(&self) -> usize {
        self.modify.len() + self.delete.len() + self.moves.len() + self.create.len()
    }

    /// Only what concerns `owner`'s own rules; with `creates`, every creation (the entangled
    /// rules' included: a more specific rule must stand before `owner`'s forwards to its app).
    pub fn only_for(self, owner: &str, creates: bool) -> Plan {
        Plan {
            modify: self.modify.into_iter().filter(|m| m.owner == owner).collect(),
            delete: self.delete.into_iter().filter(|d| d.owner == owner).collect(),
            moves: Vec::new(),
            create: if creates { self.create } else { Vec::new() },
        }
    }
}

/// Matches the actual rules of one listener against the desired ones (pure).
pub fn diff(config: &Config, view: &ListenerView, want: &(dyn Fn(&str) -> Want + Sync)) -> Result<Plan, PlanError> {
    diff_only(config, view, want, None)
}

/// [`diff`] for the rules named in `only` (all of them, and orphans, when `None`). Desired and
/// actual rules are grouped by owner first, so a diff costs one pass over each.
pub(super) fn diff_only(
    config: &Config,
    view: &ListenerView,
    want: &(dyn Fn(&str) -> Want + Sync),
    only: Option<&HashSet<&str>>,
) -> Result<Plan, PlanError> {
    let not_planned = |r: &&ListenerRule| r.owner.as_deref().is_none_or(|o| o == DASHBOARD_OWNER);
    let taken: HashSet<u32> = view.rules.iter().filter(not_planned).map(|r| r.priority).collect();
    let desired = desired(config, &taken)?;
    let mut wanted: HashMap<&str, Vec<&Desired>> = HashMap::new();
    for d in desired.iter().filter(|d| view.serves(&d.chunk.owner)) {
        wanted.entry(d.chunk.owner.as_str()).or_default().push(d);
    }
    let mut actual: HashMap<&str, Vec<&ListenerRule>> = HashMap::new();
    for r in &view.rules {
        if let Some(owner) = r.owner.as_deref() {
            actual.entry(owner).or_default().push(r);
        }
    }
    let mut plan = Plan::default();
    for rule in config.rules.iter().filter(|r| only.is_none_or(|o| o.contains(r.name.as_str()))) {
        let mut actual = actual.remove(rule.name.as_str()).unwrap_or_default();
        actual.sort_by_key(|r| r.priority);
        let wanted = wanted.remove(rule.name.as_str()).unwrap_or_default();
        plan_rule(&mut plan, view, rule, want(&rule.name), &wanted, actual);
    }
    if only.is_none() {
        for (owner, rules) in actual.into_iter().filter(|(o, _)| config.rule(o).is_none() && *o != DASHBOARD_OWNER) {
            plan.delete.extend(rules.iter().map(|r| Delete { rule_arn: r.arn.clone(), owner: owner.to_string() }));
        }
    }
    Ok(plan)
}

/// One configured rule's part of the plan.
fn plan_rule<'a>(
    plan: &mut Plan,
    view: &ListenerView,
    rule: &Rule,
    want: Want,
    wanted: &[&'a Desired<'a>],
    mut actual: Vec<&'a ListenerRule>,
) {
    let route = match want {
        Want::Route(r) => r,
        Want::Keep if actual.iter().any(|a| route_of(a, rule.app_group()) == Route::App) => Route::App,
        Want::Keep => Route::Lambda,
    };
    let action = forward(route, &view.lambda_tg, rule.app_group());
    for (d, a) in match_rules(wanted, &mut actual) {
        let Some(a) = a else {
            plan.create.push(NewRule {
                listener_arn: view.listener.clone(),
                priority: d.priority,
                hosts: d.chunk.hosts.clone(),
                forward: action.clone(),
                auth: rule.access.sso().cloned(),
                owner: rule.name.clone(),
            });
            continue;
        };
        let change = RuleChange {
            hosts: (!priority::same_hosts(&a.hosts, &d.chunk.hosts)).then(|| d.chunk.hosts.clone()),
            forward: (!same_forward(&a.forward, &action)).then(|| action.clone()),
            auth: auth_change(&rule.access, a),
        };
        if change != RuleChange::default() {
            plan.modify.push(Modify { rule_arn: a.arn.clone(), change, owner: rule.name.clone() });
        }
        if a.priority != d.priority {
            plan.moves.push(Move { rule_arn: a.arn.clone(), priority: d.priority });
        }
    }
    plan.delete.extend(actual.iter().map(|a| Delete { rule_arn: a.arn.clone(), owner: rule.name.clone() }));
}

/// Pairs each desired chunk with an actual rule: the same host set first, then the rest in
/// priority order. Matched actual rules are removed from `actual`; what is left there is extra.
fn match_rules<'a>(
    wanted: &[&'a Desired<'a>],
    actual: &mut Vec<&'a ListenerRule>,
) -> Vec<(&'a Desired<'a>, Option<&'a ListenerRule>)> {
    let mut pairs: Vec<(&Desired, Option<&ListenerRule>)> = wanted.iter().map(|d| (*d, None)).collect();
    for pair in pairs.iter_mut() {
        if let Some(i) = actual.iter().position(|a| priority::same_hosts(&a.hosts, &pair.0.chunk.hosts)) {
            pair.1 = Some(actual.remove(i));
        }
    }
    for pair in pairs.iter_mut().filter(|p| p.1.is_none()) {
        if !actual.is_empty() {
            pair.1 = Some(actual.remove(0));
        }
    }
    pairs
}

/// What the rule's actions in front of the forward must become, if anything: behind SSO,
/// exactly its authenticate action; `auth = "none"`, nothing; without `auth`, whatever an
/// operator put there.
fn auth_change(access: &Access, actual: &ListenerRule) -> Option<Option<Authenticate>> {
    match access {
        Access::Unmanaged => None,
        Access::Public => (actual.auth.is_some() || !actual.kept.is_empty()).then_some(None),
        Access::Sso(want) => {
            (actual.auth.as_ref() != Some(want) || !actual.kept.is_empty()).then(|| Some(want.clone()))
        }
    }
}

fn same_forward(a: &[Weighted], b: &[Weighted]) -> bool {
    let set = |v: &[Weighted]| v.iter().cloned().collect::<HashSet<Weighted>>();
    a.len() == b.len() && set(a) == set(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Weighted;

    const L: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const LAMBDA: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/0123456789abcdef";
    const API: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";
    const WEB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0467ef3c8400ae65";

    fn config() -> Config {
        Config::from_toml(&format!(
            "listener_arns = [\"{L}\"]\n\
             [[rules]]\nname = \"api\"\nhosts = [\"api.x.com\", \"*.api.x.com\"]\ntarget_group_arn = \"{API}\"\n\
             ec2 = {{ instance_ids = [\"i-0123456789abcdef0\"] }}\n\
             [[rules]]\nname = \"web\"\nhosts = [\"web.x.com\"]\ntarget_group_arn = \"{WEB}\"\n\
             ec2 = {{ instance_ids = [\"i-0fedcba9876543210\"] }}\n"
        ))
        .unwrap()
    }

    /// A rule on the listener: `owner` None for one autostop did not make.
    fn rule(arn: &str, priority: u32, hosts: &[&str], to: Route, owner: Option<&str>) -> ListenerRule {
        let app = match owner {
            Some("api") => API,
            Some("web") => WEB,
            _ => "arn:foreign-tg",
        };
        ListenerRule {
            arn: arn.into(),
            priority,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            forward: if owner.is_some() { forward(to, LAMBDA, app) } else { vec![Weighted::new(app, 1)] },
            owner: owner.map(str::to_string),
            auth: None,
            kept: Vec::new(),
        }
    }

    fn api_ok(to: Route) -> ListenerRule {
        rule("r-api", 10_000, &["api.x.com", "*.api.x.com"], to, Some("api"))
    }

    fn web_ok(to: Route) -> ListenerRule {
        rule("r-web", 10_001, &["web.x.com"], to, Some("web"))
    }

    /// A plan in words: one line per change, in the order apply makes them.
    fn summary(plan: &Plan) -> Vec<String> {
        let to = |f: &[Weighted]| if f[0].target_group == LAMBDA { "lambda" } else { "app" };
        let mut out: Vec<String> = Vec::new();
        for m in &plan.modify {
            let hosts = m.change.hosts.as_ref().map(|h| format!(" hosts {}", h.join(",")));
            let fwd = m.change.forward.as_ref().map(|f| format!(" forward {}", to(f)));
            out.push(format!("modify {}{}{}", m.owner, hosts.unwrap_or_default(), fwd.unwrap_or_default()));
        }
        out.extend(plan.delete.iter().map(|d| format!("delete {} {}", d.owner, d.rule_arn)));
        out.extend(plan.moves.iter().map(|m| format!("move {} {}", m.rule_arn, m.priority)));
        for c in &plan.create {
            out.push(format!("create {} {} {} {}", c.owner, c.priority, c.hosts.join(","), to(&c.forward)));
        }
        out
    }

    #[test]
    fn the_plan_closes_the_gap_between_the_listener_and_the_config() {
        let keep = |_: &str| Want::Keep;
        let api_to_app = |n: &str| if n == "api" { Want::Route(Route::App) } else { Want::Keep };
        let all_to_lambda = |_: &str| Want::Route(Route::Lambda);
        type WantFn = dyn Fn(&str) -> Want + Sync;
        let cases: Vec<(&str, Vec<ListenerRule>, &WantFn, Vec<&str>)> = vec![
            (
                "an empty listener gets every standing rule, to the Lambda",
                vec![],
                &keep,
                vec!["create api 10000 api.x.com,*.api.x.com lambda", "create web 10001 web.x.com lambda"],
            ),
            ("rules in place need nothing", vec![api_ok(Route::Lambda), web_ok(Route::App)], &keep, vec![]),
            (
                "a switch changes the forward action only",
                vec![api_ok(Route::Lambda), web_ok(Route::Lambda)],
                &api_to_app,
                vec!["modify api forward app"],
            ),
            (
                "a missing rule is created the way its siblings forward",
                vec![api_ok(Route::App)],
                &keep,
                vec!["create web 10001 web.x.com lambda"],
            ),
            (
                "changed hosts are modified in place",
                vec![rule("r-api", 10_000, &["api.x.com"], Route::App, Some("api")), web_ok(Route::Lambda)],
                &keep,
                vec!["modify api hosts api.x.com,*.api.x.com"],
            ),
            (
                "a rule at the wrong priority is moved",
                vec![api_ok(Route::Lambda), rule("r-web", 10_005, &["web.x.com"], Route::Lambda, Some("web"))],
                &keep,
                vec!["move r-web 10001"],
            ),
            (
                "ours for a rule that left the config is deleted; a rule not ours is left alone",
                vec![
                    api_ok(Route::Lambda),
                    web_ok(Route::Lambda),
                    rule("r-gone", 10_002, &["old.x.com"], Route::App, Some("gone")),
                    rule("r-foreign", 5, &["intranet.x.com"], Route::App, None),
                ],
                &all_to_lambda,
                vec!["delete gone r-gone"],
            ),
            (
                "a rule not ours on a derived priority shifts ours past it",
                vec![rule("r-foreign", 10_000, &["intranet.x.com"], Route::App, None)],
                &keep,
                vec!["create api 10001 api.x.com,*.api.x.com lambda", "create web 10002 web.x.com lambda"],
            ),
            (
                "a second rule for the same hosts is deleted",
                vec![
                    api_ok(Route::Lambda),
                    web_ok(Route::Lambda),
                    rule("r-web2", 10_007, &["web.x.com"], Route::Lambda, Some("web")),
                ],
                &keep,
                vec!["delete web r-web2"],
            ),
        ];
        let config = config();
        for (name, rules, want, expected) in cases {
            let view = ListenerView { listener: L.into(), lambda_tg: LAMBDA.into(), rules, homed: None };
            let plan = diff(&config, &view, want).unwrap();
            assert_eq!(summary(&plan), expected, "{name}");
        }
    }

    #[test]
    fn only_for_keeps_one_rules_changes_and_every_creation() {
        let view = ListenerView {
            listener: L.into(),
            lambda_tg: LAMBDA.into(),
            rules: vec![web_ok(Route::Lambda)],
            homed: None,
        };
        let plan = diff(&config(), &view, &|_| Want::Route(Route::App)).unwrap();
        assert_eq!(summary(&plan), vec!["modify web forward app", "create api 10000 api.x.com,*.api.x.com app"]);
        assert_eq!(summary(&plan.clone().only_for("api", true)), vec!["create api 10000 api.x.com,*.api.x.com app"]);
        assert!(plan.only_for("api", false).is_empty(), "taking traffic away creates nothing");
    }
}
