//! `autostop validate --aws`: does what the config names exist in AWS, wired as autostop needs,
//! and does it fit the account's ALB quotas?
//!
//! Checks that every target group, listener, instance and service exists; that each listener's
//! default action forwards to a Lambda target group (autostop's); that no rule autostop does not
//! own would be matched before ours for a configured host (ALB takes the first match by
//! priority); and the budget: standing rules and target groups per load balancer against
//! `DescribeAccountLimits` ("rules-per-application-load-balancer",
//! "target-groups-per-application-load-balancer"; ALB guide, quotas).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::cloud::alb::{alb_host_match, load_balancer_dimension};
use crate::cloud::aws::AwsCloud;
use crate::cloud::{Cloud, CloudError, InstanceState, ListenerRule};
use crate::config::Config;
use crate::routing::home::{load_balancers, Homes};

/// ALB's default quotas, used when the account does not report them.
const DEFAULT_RULES_PER_LB: u64 = 100;
const DEFAULT_TARGET_GROUPS_PER_LB: u64 = 100;

/// What `validate --aws` found: problems (exit 1) and the budget lines (always shown).
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<String>,
    pub budget: Vec<String>,
    /// What makes a wake slow, and how to make it faster (never a problem of its own).
    pub advice: Vec<String>,
}

/// Everything wrong, one line each, and the budget.
pub async fn check_aws(cloud: &AwsCloud, config: &Config) -> Result<Findings, CloudError> {
    let mut f = Findings::default();
    let mut listed: Vec<(String, Vec<ListenerRule>)> = Vec::new();
    for listener in &config.listener_arns {
        match cloud.listener_default_targets(listener).await? {
            None => {
                f.problems.push(format!("listener {listener} does not exist"));
                continue;
            }
            Some(tgs) => check_default(cloud, listener, &tgs, &mut f.problems).await?,
        }
        let rules = cloud.listener_rules(listener).await?;
        check_foreign(config, listener, &rules, &mut f.problems);
        listed.push((listener.clone(), rules));
    }
    for rule in &config.rules {
        check_resources(cloud, rule, &mut f.problems).await?;
        if let Some(tg) = rule.target_group_arn.as_deref() {
            match cloud.health_check(tg).await {
                Ok(h) => f.advice.push(health_check_floor(&rule.name, tg, h)),
                Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => {} // a problem already
                Err(e) => return Err(e),
            }
        }
    }
    check_forwarded_for(cloud, config, &mut f.problems).await?;
    check_https(cloud, config, &mut f).await?;
    let groups: Vec<String> = config.rules.iter().filter_map(|r| r.target_group_arn.clone()).collect();
    let served = cloud.load_balancers_of_groups(&groups).await?;
    check_homes(config, &served, &mut f.problems);
    let limits = cloud.account_limits().await?;
    budget(config, &Homes::from_served(config, config.rules.iter(), &served), &listed, &limits, &mut f);
    Ok(f)
}

/// Rules behind sign-in need an HTTPS listener: ALB takes authenticate actions only there (ALB
/// guide, "Authenticate users using an Application Load Balancer"). On an HTTP listener they get
/// no standing rule, and autostop sends their requests to HTTPS.
async fn check_https(cloud: &AwsCloud, config: &Config, f: &mut Findings) -> Result<(), CloudError> {
    let mut sso: Vec<&str> =
        config.rules.iter().filter(|r| r.access.sso().is_some()).map(|r| r.name.as_str()).collect();
    if config.dashboard.is_some() {
        sso.push("(the fleet page)");
    }
    if sso.is_empty() {
        return Ok(());
    }
    let mut http = Vec::new();
    for listener in &config.listener_arns {
        if !cloud.listener_facts(listener).await?.https {
            http.push(listener.as_str());
        }
    }
    let redirect = |l: &str| {
        format!(
            "aws elbv2 modify-listener --listener-arn {l} --default-actions \
             'Type=redirect,RedirectConfig={{Protocol=HTTPS,Port=443,StatusCode=HTTP_301}}'"
        )
    };
    let rules = sso.join(", ");
    if http.len() == config.listener_arns.len() {
        f.problems.push(format!(
            "rules {rules} are behind sign-in (`auth`), and no listener is HTTPS: ALB authenticates only on HTTPS \
             listeners. Add an HTTPS listener (a certificate; the template's CertificateArn), list it, and make \
             the HTTP one redirect to it: {}",
            redirect(http.first().copied().unwrap_or("LISTENER"))
        ));
        return Ok(());
    }
    for l in http {
        f.advice.push(format!(
            "listener {l} is HTTP: rules {rules} (behind sign-in) get no standing rule there, and autostop answers \
             their requests with a redirect to HTTPS; to have the load balancer do it instead: {}",
            redirect(l)
        ));
    }
    Ok(())
}

/// A target group serves one load balancer (ALB quotas): each rule's must serve the load
/// balancer of some listener, its configured `load_balancer` if any; one that serves none yet
/// needs `load_balancer` when the listeners are on several.
fn check_homes(config: &Config, served: &HashMap<String, Vec<String>>, problems: &mut Vec<String>) {
    let lbs = load_balancers(config);
    for rule in config.rules.iter().filter(|r| r.target_group_arn.is_some()) {
        let Some(on) = served.get(rule.app_group()) else { continue }; // missing: a problem already
        let name = &rule.name;
        match (on.first(), &rule.load_balancer) {
            (Some(lb), _) if !lbs.contains(lb) => problems.push(format!(
                "rule {name}: its target group serves load balancer {lb}, which none of the listeners are on (a \
                 target group serves one load balancer): add a listener of {lb} to listener_arns, or give the rule a \
                 target group of its own"
            )),
            (Some(lb), Some(chosen)) if lb != chosen => problems.push(format!(
                "rule {name}: load_balancer is {chosen}, but its target group serves {lb}: its standing rules cannot \
                 go there; set load_balancer to {lb} or remove it"
            )),
            (None, None) if lbs.len() > 1 => problems.push(format!(
                "rule {name}: its target group serves no load balancer yet and the listeners are on {}: set the \
                 rule's load_balancer to the one its hosts' DNS points at",
                lbs.len()
            )),
            _ => {}
        }
    }
}

async fn check_default(
    cloud: &AwsCloud,
    listener: &str,
    tgs: &[String],
    problems: &mut Vec<String>,
) -> Result<(), CloudError> {
    let mut lambda = false;
    for tg in tgs {
        lambda |= cloud.target_group_type(tg).await?.as_deref() == Some("lambda");
    }
    if !lambda {
        problems.push(format!(
            "listener {listener}: its default action does not forward to a Lambda target group; make autostop's \
             target group its default action (aws elbv2 modify-listener)"
        ));
    }
    Ok(())
}

/// A rule not made by autostop that matches a configured host at a priority below ours would
/// take that host's traffic before autostop ever sees it.
fn check_foreign(config: &Config, listener: &str, rules: &[ListenerRule], problems: &mut Vec<String>) {
    for (chunk, ours) in config.standing.iter().zip(&config.standing_priorities) {
        for host in &chunk.hosts {
            let sample = host.replacen('*', "x", 1);
            let claim = rules
                .iter()
                .filter(|r| r.owner.is_none() && r.priority < *ours)
                .find(|r| r.hosts.iter().any(|p| p.eq_ignore_ascii_case(host) || alb_host_match(p, &sample)));
            if let Some(r) = claim {
                problems.push(format!(
                    "listener {listener}: a rule not made by autostop (priority {}) already claims host {host} of \
                     rule `{}`",
                    r.priority, chunk.owner
                ));
            }
        }
    }
}

async fn check_resources(
    cloud: &AwsCloud,
    rule: &crate::config::Rule,
    problems: &mut Vec<String>,
) -> Result<(), CloudError> {
    let name = &rule.name;
    if let Some(tg) = &rule.target_group_arn {
        if cloud.target_group_type(tg).await?.is_none() {
            problems.push(format!("rule `{name}`: target group {tg} does not exist"));
        }
    }
    if let Some(ec2) = &rule.ec2 {
        check_instances(cloud, name, ec2, problems).await?;
    }
    if let Some(spec) = &rule.asg {
        match cloud.auto_scaling_groups(std::slice::from_ref(&spec.name)).await?.pop() {
            Some(g) if g.exists => {
                if let Some(d) = spec.desired.filter(|d| *d > g.max) {
                    problems.push(format!(
                        "rule `{name}`: asg.desired {d} is above the max size {} of Auto Scaling group `{}`",
                        g.max, spec.name
                    ));
                }
            }
            _ => problems.push(format!("rule `{name}`: Auto Scaling group `{}` does not exist", spec.name)),
        }
    }
    if let Some(spec) = &rule.rds {
        for d in cloud.databases(&spec.instances, &spec.clusters).await? {
            let what = if d.cluster { "RDS cluster" } else { "RDS instance" };
            if d.status == "missing" {
                problems.push(format!("rule `{name}`: {what} {} does not exist", d.id));
            } else if let Some(why) = &d.cannot_stop {
                problems.push(format!("rule `{name}`: {what} {} cannot be stopped: {why}", d.id));
            }
        }
    }
    if let Some(ecs) = &rule.ecs {
        let svc = cloud.service(&ecs.cluster, &ecs.service).await?;
        if !svc.is_active() {
            let status = svc.status.to_lowercase();
            problems.push(format!("rule `{name}`: ECS service {}/{} is {status}", ecs.cluster, ecs.service));
        }
    }
    Ok(())
}

/// Missing or terminated instances, instances that cannot hibernate when asked to, and
/// instances of an Auto Scaling group (stopping them one by one only makes the group replace
/// them).
async fn check_instances(
    cloud: &AwsCloud,
    name: &str,
    ec2: &crate::config::Ec2Resources,
    problems: &mut Vec<String>,
) -> Result<(), CloudError> {
    for i in cloud.instances(&ec2.instance_ids).await? {
        if matches!(i.state, InstanceState::Missing | InstanceState::Terminated) {
            problems.push(format!("rule `{name}`: instance {} is {}", i.id, i.state.as_str()));
        } else if ec2.hibernate && !i.hibernation_configured {
            problems.push(format!(
                "rule `{name}`: instance {} is not enabled for hibernation (hibernate = true); hibernation can only \
                 be enabled at launch: launch it with hibernation, or drop `hibernate`",
                i.id
            ));
        }
    }
    for (id, group) in cloud.groups_of_instances(&ec2.instance_ids).await? {
        problems.push(format!(
            "rule `{name}`: instance {id} belongs to Auto Scaling group `{group}`: the group would replace it when \
             stopped; use asg = {{ name = \"{group}\" }} instead of its instance ids"
        ));
    }
    Ok(())
}

/// A wake waits for the target group's health checks: HealthyThresholdCount passing checks,
/// HealthCheckIntervalSeconds apart, after the app answers. The least ALB allows is 2 x 5 s
/// (ALB guide, "Health checks for your target groups").
fn health_check_floor(rule: &str, tg: &str, h: crate::cloud::HealthCheck) -> String {
    let floor = h.floor_secs();
    let (n, i) = (h.healthy_threshold, h.interval_secs);
    let mut line = format!("rule `{rule}`: a wake waits at least {floor} s for health checks ({n} passing x {i} s)");
    if floor > 10 {
        line.push_str(&format!(
            "; 2 x 5 s makes it 10 s: aws elbv2 modify-target-group --target-group-arn {tg} \
             --healthy-threshold-count 2 --health-check-interval-seconds 5 --health-check-timeout-seconds 4"
        ));
    }
    line
}

/// How each load balancer handles `X-Forwarded-For`, where a rule's `wake_from` depends on it.
async fn check_forwarded_for(cloud: &AwsCloud, config: &Config, problems: &mut Vec<String>) -> Result<(), CloudError> {
    if !config.rules.iter().any(|r| r.gate.wake_from.is_some()) {
        return Ok(());
    }
    let mut seen = HashSet::new();
    for listener in &config.listener_arns {
        let Some(lb) = cloud.load_balancer_of(listener).await? else { continue };
        if seen.insert(lb.clone()) {
            let attributes = cloud.load_balancer_attributes(&lb).await?;
            problems.extend(forwarded_for_problem(&lb, &attributes));
        }
    }
    Ok(())
}

/// `wake_from` reads the right-most `X-Forwarded-For` entry, which only the load balancer's
/// `append` mode (the default) writes itself; `preserve` passes on what the client sent, and
/// `remove` sends none (ELBv2 API reference, LoadBalancerAttribute). `ip:port` entries, from
/// `routing.http.xff_client_port.enabled`, are read as their address.
fn forwarded_for_problem(lb: &str, attributes: &std::collections::HashMap<String, String>) -> Option<String> {
    let mode = attributes.get("routing.http.xff_header_processing.mode").map(String::as_str).unwrap_or("append");
    let why = match mode {
        "preserve" => "passes on the X-Forwarded-For header as the client sent it, so anyone can name an address of wake_from",
        "remove" => "removes the X-Forwarded-For header, so autostop sees no client address and refuses every wake of a rule with wake_from",
        _ => return None,
    };
    Some(format!(
        "load balancer {lb}: routing.http.xff_header_processing.mode is `{mode}`: it {why}; set it to `append` \
         (aws elbv2 modify-load-balancer-attributes --load-balancer-arn {lb} --attributes \
         Key=routing.http.xff_header_processing.mode,Value=append), and list proxies in front of it in trusted_proxies"
    ))
}

/// Standing rules (host chunks x listeners) plus the rules of others, and the target groups
/// the rules reference, per load balancer, against the account's quotas.
fn budget(
    config: &Config,
    homes: &Homes,
    listed: &[(String, Vec<ListenerRule>)],
    limits: &std::collections::HashMap<String, u64>,
    f: &mut Findings,
) {
    let max_rules = limits.get("rules-per-application-load-balancer").copied().unwrap_or(DEFAULT_RULES_PER_LB);
    let max_tgs =
        limits.get("target-groups-per-application-load-balancer").copied().unwrap_or(DEFAULT_TARGET_GROUPS_PER_LB);
    let mut per_lb: BTreeMap<String, (usize, usize, HashSet<String>, usize, usize)> = BTreeMap::new();
    for (listener, rules) in listed {
        let e = per_lb.entry(load_balancer_dimension(listener)).or_default();
        let homed = config.standing.iter().filter(|c| homes.serves(listener, &c.owner)).count();
        e.0 += homed;
        e.3 += 1;
        e.4 = homed;
        e.1 += rules.iter().filter(|r| r.owner.is_none()).count();
        e.2.extend(
            rules.iter().filter(|r| r.owner.is_none()).flat_map(|r| r.forward.iter().map(|w| w.target_group.clone())),
        );
        let ours = config.rules.iter().filter(|r| homes.serves(listener, &r.name));
        e.2.extend(ours.filter_map(|r| r.target_group_arn.clone()));
    }
    for (lb, (ours, others, tgs, listeners, chunks)) in per_lb {
        let total = (ours + others) as u64;
        // The Lambda's own group is one more on every load balancer.
        let groups = tgs.len() as u64 + 1;
        f.budget.push(format!(
            "load balancer {lb}: {ours} standing rules ({chunks} host chunks x {listeners} listeners) + {others} rules \
             not ours = {total} of {max_rules} rules; {groups} of {max_tgs} target groups"
        ));
        if total > max_rules {
            f.problems.push(format!(
                "load balancer {lb}: the config needs {total} listener rules but the account allows {max_rules}: \
                 request a higher \"Rules per Application Load Balancer\" quota, use fewer listeners, or group \
                 hosts under wildcards"
            ));
        }
        if groups > max_tgs {
            f.problems.push(format!(
                "load balancer {lb}: {groups} target groups but the account allows {max_tgs} per load balancer"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Weighted;

    const L1: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const L2: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/0a1b2c3d4e5f6a7b";

    fn config_text() -> String {
        let tg =
            |n: &str| format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{n}/73e2d6bc24d8a067");
        format!(
            "listener_arns = [\"{L1}\", \"{L2}\"]\n\
             [[rules]]\nname = \"api\"\nhosts = [\"api.x.com\"]\ntarget_group_arn = \"{}\"\necs = {{ cluster = \"c\", service = \"api\" }}\n\
             [[rules]]\nname = \"web\"\nhosts = [\"web.x.com\"]\ntarget_group_arn = \"{}\"\necs = {{ cluster = \"c\", service = \"web\" }}\n",
            tg("api"),
            tg("web")
        )
    }

    fn config() -> Config {
        Config::from_toml(&config_text()).unwrap()
    }

    fn foreign(priority: u32, host: &str) -> ListenerRule {
        ListenerRule {
            arn: format!("arn:rule/{priority}"),
            priority,
            hosts: vec![host.into()],
            forward: vec![Weighted::new("arn:tg/other", 1)],
            owner: None,
            auth: None,
            kept: Vec::new(),
        }
    }

    #[test]
    fn a_config_that_cannot_fit_the_rule_quota_is_a_problem_saying_what_to_do() {
        let listed = vec![(L1.to_string(), vec![foreign(1, "intranet.x.com")]), (L2.to_string(), vec![])];
        let config = config();
        let homes = Homes::from_served(&config, config.rules.iter(), &HashMap::new());
        let mut f = Findings::default();
        budget(&config, &homes, &listed, &[("rules-per-application-load-balancer".to_string(), 4)].into(), &mut f);
        assert_eq!(
            f.budget,
            vec![
                "load balancer app/dev/50dc6c495c0c9188: 4 standing rules (2 host chunks x 2 listeners) + 1 rules \
                  not ours = 5 of 4 rules; 4 of 100 target groups"
            ]
        );
        assert_eq!(f.problems.len(), 1);
        assert!(f.problems[0].contains("needs 5 listener rules but the account allows 4"), "{:?}", f.problems);

        let mut f = Findings::default();
        budget(&config, &homes, &listed, &Default::default(), &mut f);
        assert!(f.problems.is_empty(), "ALB's default of 100 applies when the account says nothing");
    }

    const L3: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/staging/7c1b2d3e4f5a6b7c/0a1b2c3d4e5f6a7b";
    const STAGING: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/staging/7c1b2d3e4f5a6b7c";

    /// api's group serves staging, web's serves no load balancer: with listeners on dev and
    /// staging, only web is a problem, and each load balancer's budget counts its own rules.
    #[test]
    fn a_group_on_no_listeners_load_balancer_or_on_none_with_several_is_named() {
        let text = config_text().replace(L2, L3);
        let config = Config::from_toml(&text).unwrap();
        let api = config.rules[0].app_group().to_string();
        let web = config.rules[1].app_group().to_string();
        let served = HashMap::from([(api.clone(), vec![STAGING.to_string()]), (web.clone(), vec![])]);
        let mut problems = Vec::new();
        check_homes(&config, &served, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("rule web: its target group serves no load balancer yet"), "{problems:?}");

        let only_dev = Config::from_toml(&config_text().replace(&format!(", \"{L2}\""), "")).unwrap();
        let mut problems = Vec::new();
        check_homes(&only_dev, &served, &mut problems);
        assert!(
            problems[0].contains("serves load balancer") && problems[0].contains("none of the listeners"),
            "{problems:?}"
        );

        let homes = Homes::from_served(&config, config.rules.iter(), &served);
        let listed = vec![(L1.to_string(), vec![]), (L3.to_string(), vec![])];
        let mut f = Findings::default();
        budget(&config, &homes, &listed, &Default::default(), &mut f);
        assert!(f.budget[0].contains("app/dev/50dc6c495c0c9188: 0 standing rules"), "{:?}", f.budget);
        assert!(f.budget[1].contains("app/staging/7c1b2d3e4f5a6b7c: 1 standing rules"), "{:?}", f.budget);
    }

    #[test]
    fn the_health_check_floor_is_said_with_the_fastest_settings() {
        use crate::cloud::HealthCheck;
        let slow = health_check_floor("api", "arn:tg", HealthCheck { healthy_threshold: 5, interval_secs: 30 });
        assert!(
            slow.starts_with("rule `api`: a wake waits at least 150 s for health checks (5 passing x 30 s)"),
            "{slow}"
        );
        assert!(slow.contains("--healthy-threshold-count 2 --health-check-interval-seconds 5"), "{slow}");
        let fast = health_check_floor("api", "arn:tg", HealthCheck { healthy_threshold: 2, interval_secs: 5 });
        assert!(fast.ends_with("(2 passing x 5 s)"), "already the fastest: {fast}");
    }

    #[test]
    fn only_the_append_mode_lets_wake_from_trust_the_right_most_entry() {
        let attrs = |mode: &str| [("routing.http.xff_header_processing.mode".to_string(), mode.to_string())].into();
        assert_eq!(forwarded_for_problem("lb", &attrs("append")), None);
        assert_eq!(forwarded_for_problem("lb", &Default::default()), None, "append is the default");
        let preserve = forwarded_for_problem("lb", &attrs("preserve")).unwrap();
        assert!(preserve.contains("as the client sent it") && preserve.contains("Value=append"), "{preserve}");
        let remove = forwarded_for_problem("lb", &attrs("remove")).unwrap();
        assert!(remove.contains("refuses every wake"), "{remove}");
    }

    #[test]
    fn a_foreign_wildcard_ahead_of_our_rule_claims_our_host() {
        let mut problems = Vec::new();
        check_foreign(&config(), L1, &[foreign(5, "*.x.com")], &mut problems);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("priority 5") && problems[0].contains("api.x.com"));
        let mut problems = Vec::new();
        check_foreign(&config(), L1, &[foreign(45_000, "*.x.com")], &mut problems);
        assert!(problems.is_empty(), "after ours, it takes nothing: {problems:?}");
    }
}
