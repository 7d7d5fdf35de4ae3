//! Validation: a [`RawConfig`] into a [`Config`], top level first, then each rule, then what
//! spans rules (dependencies, the standing ALB rules). Every error names the key.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::auth::{self, Access};
use super::error::{err, ConfigError};
use super::gate::WakeToken;
use super::gate::{Cidr, Gate};
use super::hosts::HostIndex;
use super::raw::{RawConfig, RawNeverWake, RawRule, RawSchedule};
use super::rule::Rule;
use super::schedule::{self, Schedule, Window};
use super::sections::{check_asg, check_busy_when, check_ec2, check_ecs, check_rds};
use super::standing;
use super::values::{check_elb_arn, parse_duration, validate_host_pattern};
use super::Config;
use crate::cloud::alb::{load_balancer_of_listener, MAX_PRIORITY};

impl RawConfig {
    /// `listeners_later`: the deployment names a load balancer whose listeners are looked up
    /// when first needed, so none need be listed.
    pub(super) fn validate(self, listeners_later: bool) -> Result<Config, ConfigError> {
        check_listeners(&self.listener_arns, listeners_later)?;
        let state_table = self.state_table.clone().unwrap_or_else(|| "autostop-state".into());
        if state_table.trim().is_empty() {
            return Err(err("state_table", "must not be empty"));
        }
        let t = self.timings()?;
        let top = self.top_gate()?;
        let wake_token = check_wake_token(self.wake_token)?;
        let schedules = parse_schedules(self.schedules)?;
        let (rules, hosts) = validate_rules(self.rules, t.idle, &top, &schedules)?;
        check_dependencies(&rules)?;
        check_load_balancers(&rules, &self.listener_arns)?;
        let (standing, standing_priorities) = standing::plan(&rules)?;
        Ok(Config {
            listener_arns: self.listener_arns,
            state_table,
            idle: t.idle,
            hold: t.hold,
            settle: t.settle,
            metrics_lag: t.metrics_lag,
            rules,
            standing,
            standing_priorities,
            wake_token,
            http_listeners: Vec::new(),
            events_bus: self.events.as_ref().map(|e| check_bus(&e.bus)).transpose()?,
            dashboard: self.dashboard.as_ref().map(|d| check_dashboard(&d.host, &top.access, &hosts)).transpose()?,
            hosts,
        })
    }

    fn timings(&self) -> Result<Timings, ConfigError> {
        let idle = parse_duration(&self.idle).map_err(|r| err("idle", r))?;
        let hold = parse_duration(&self.hold).map_err(|r| err("hold", r))?;
        let settle = parse_duration(&self.settle).map_err(|r| err("settle", r))?;
        // "0s" is allowed here: a CloudWatch stand-in without lag (the demo).
        let metrics_lag = match self.metrics_lag.trim() {
            "0" | "0s" => Duration::ZERO,
            other => parse_duration(other).map_err(|r| err("metrics_lag", r))?,
        };
        if hold > Duration::from_secs(900) {
            return Err(err("hold", "must be at most 15m (the Lambda time limit)"));
        }
        Ok(Timings { idle, hold, settle, metrics_lag })
    }

    fn top_gate(&self) -> Result<TopGate, ConfigError> {
        let never_wake = self.never_wake.clone().unwrap_or_default();
        check_never_wake("never_wake", &never_wake)?;
        Ok(TopGate {
            wake_from: parse_networks("wake_from", self.wake_from.as_deref())?,
            trusted_proxies: parse_networks("trusted_proxies", self.trusted_proxies.as_deref())?.unwrap_or_default(),
            never_wake,
            click: parse_wake("wake", self.wake.as_deref())?.unwrap_or(false),
            access: auth::access("auth", self.auth.clone(), &Access::Unmanaged)?,
        })
    }
}

/// `dashboard.host`: one exact host no rule claims, behind the top level's `auth` (its buttons
/// wake and stop environments, and it records who pressed them).
fn check_dashboard(host: &str, access: &Access, hosts: &HostIndex) -> Result<super::Dashboard, ConfigError> {
    let host = validate_host_pattern(host).map_err(|r| err("dashboard.host", format!("`{host}`: {r}")))?;
    if host.starts_with("*.") {
        return Err(err("dashboard.host", "must be one host, not a wildcard"));
    }
    if hosts.exact(&host).is_some() {
        return Err(err("dashboard.host", format!("`{host}` is a rule's host")));
    }
    let Some(auth) = access.sso() else {
        return Err(err(
            "dashboard",
            "the fleet page needs sign-in: set the top-level `auth` (its buttons wake and stop environments)",
        ));
    };
    Ok(super::Dashboard { host, auth: auth.clone() })
}

/// `events.bus`: a bus name (1-256 of letters, digits, `.`, `-`, `_`, `/`) or a bus ARN
/// (EventBridge API reference, PutEventsRequestEntry `EventBusName`).
fn check_bus(bus: &str) -> Result<String, ConfigError> {
    let name_ok =
        |n: &str| (1..=256).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || ".-_/".contains(c));
    let ok = match bus.strip_prefix("arn:") {
        Some(_) => {
            bus.split(':').nth(2) == Some("events") && bus.rsplit_once(":event-bus/").is_some_and(|(_, n)| name_ok(n))
        }
        None => name_ok(bus),
    };
    if !ok {
        return Err(err("events.bus", format!("`{bus}` is not an event bus name or ARN")));
    }
    Ok(bus.to_string())
}

/// The top level's durations.
struct Timings {
    idle: Duration,
    hold: Duration,
    settle: Duration,
    metrics_lag: Duration,
}

/// At least one listener (unless they are looked up later), each a listener ARN, none twice.
fn check_listeners(arns: &[String], listeners_later: bool) -> Result<(), ConfigError> {
    if arns.is_empty() && !listeners_later {
        return Err(err(
            "listener_arns",
            "must name at least one listener (in the file, or from the deployment: AUTOSTOP_LISTENER_ARNS or \
             AUTOSTOP_LOAD_BALANCER_ARN)",
        ));
    }
    let mut seen = HashSet::new();
    for (i, arn) in arns.iter().enumerate() {
        let key = format!("listener_arns[{i}]");
        check_elb_arn(&key, arn, "listener/app/", 3)?;
        if !seen.insert(arn.as_str()) {
            return Err(err(key, format!("listener {arn} is listed twice")));
        }
    }
    Ok(())
}

/// Every rule, each validated, names unique and hosts claimed once, with its schedule.
fn validate_rules(
    raw: Vec<RawRule>,
    idle: Duration,
    top: &TopGate,
    schedules: &[Arc<Schedule>],
) -> Result<(Vec<Rule>, HostIndex), ConfigError> {
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.len());
    let mut hosts = HostIndex::default();
    let mut names = HashSet::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let schedule = raw.schedule.clone();
        let mut rule = raw.validate(i, idle, top)?;
        rule.schedule = schedule.map(|name| named_schedule(schedules, &name, i, &rule.name)).transpose()?;
        if !names.insert(rule.name.clone()) {
            return Err(err(format!("rules[{i}].name"), format!("duplicate rule name `{}`", rule.name)));
        }
        for host in &rule.hosts {
            if let Err(other) = hosts.insert(host, i) {
                return Err(err(
                    format!("rules[{i}] ({}).hosts", rule.name),
                    format!("host `{host}` is already claimed by rule `{}`", rules[other].name),
                ));
            }
        }
        rules.push(rule);
    }
    Ok((rules, hosts))
}

/// The `[[schedules]]` entry a rule names.
fn named_schedule(schedules: &[Arc<Schedule>], name: &str, i: usize, rule: &str) -> Result<Arc<Schedule>, ConfigError> {
    schedules.iter().find(|s| s.name == name).cloned().ok_or_else(|| {
        let known: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
        err(
            format!("rules[{i}] ({rule}).schedule"),
            format!("no schedule named `{name}`; [[schedules]] has: {}", known.join(", ")),
        )
    })
}

/// The `[[schedules]]`, each window checked, names unique.
fn parse_schedules(raw: Vec<RawSchedule>) -> Result<Vec<Arc<Schedule>>, ConfigError> {
    let mut out: Vec<Arc<Schedule>> = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("schedules[{i}] ({}).{k}", s.name);
        if s.name.trim().is_empty() {
            return Err(err(format!("schedules[{i}].name"), "must not be empty"));
        }
        if out.iter().any(|o| o.name == s.name) {
            return Err(err(format!("schedules[{i}].name"), format!("duplicate schedule name `{}`", s.name)));
        }
        if s.awake.is_empty() && s.asleep.is_empty() {
            return Err(err(key("awake"), "a schedule needs `awake` or `asleep` windows"));
        }
        let windows = |list: &[String], k: &str| -> Result<Vec<Window>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(j, w)| Window::parse(w).map_err(|r| err(key(&format!("{k}[{j}]")), r)))
                .collect()
        };
        let (awake, asleep) = (windows(&s.awake, "awake")?, windows(&s.asleep, "asleep")?);
        let prewarm = match &s.prewarm {
            Some(p) => parse_duration(p).map_err(|r| err(key("prewarm"), r))?,
            None => schedule::DEFAULT_PREWARM,
        };
        let schedule = Schedule::new(&s.name, &s.timezone, awake, asleep).map_err(|r| err(key("timezone"), r))?;
        out.push(Arc::new(schedule.with_prewarm(prewarm)));
    }
    Ok(out)
}

impl RawRule {
    fn validate(self, i: usize, default_idle: Duration, top: &TopGate) -> Result<Rule, ConfigError> {
        check_name(&self.name, i)?;
        let name = self.name.clone();
        let key = |k: &str| format!("rules[{i}] ({name}).{k}");
        let gate = self.gate(&key, top)?;
        let hosts = self.hosts(&key)?;
        let delay = match &self.delay {
            Some(d) if self.depends_on.is_empty() => {
                return Err(err(key("delay"), format!("`{d}`: a delay follows dependencies; `depends_on` is empty")))
            }
            Some(d) => parse_duration(d).map_err(|r| err(key("delay"), r))?,
            None => Duration::ZERO,
        };
        let idle = match &self.idle {
            Some(s) => parse_duration(s).map_err(|r| err(key("idle"), r))?,
            None => default_idle,
        };
        let priority = match self.priority {
            Some(p) if (1..=MAX_PRIORITY as i64).contains(&p) => Some(p as u32),
            Some(p) => return Err(err(key("priority"), format!("{p} is outside 1..={MAX_PRIORITY}"))),
            None => None,
        };
        let hourly_cost = match self.hourly_cost {
            Some(c) if c.is_finite() && c > 0.0 => Some(c),
            Some(c) => return Err(err(key("hourly_cost"), format!("{c} must be a positive number"))),
            None => None,
        };
        if self.auth.is_some() && self.hosts.is_empty() {
            return Err(err(key("auth"), "only a rule with `hosts` has standing rules to put behind sign-in"));
        }
        let base = Rule {
            name: self.name.clone(),
            gate,
            hosts,
            target_group_arn: self.target_group_arn.clone(),
            load_balancer: self.load_balancer(&key)?,
            idle,
            priority,
            hourly_cost,
            delay,
            access: auth::access(&key("auth"), self.auth.clone(), &top.access)?,
            ..Rule::empty()
        };
        self.with_resources(base, &key)
    }

    /// `load_balancer`: an ALB's ARN, on a rule with hosts.
    fn load_balancer(&self, key: &dyn Fn(&str) -> String) -> Result<Option<String>, ConfigError> {
        let Some(lb) = &self.load_balancer else { return Ok(None) };
        check_elb_arn(&key("load_balancer"), lb, "loadbalancer/app/", 2)?;
        if self.hosts.is_empty() {
            return Err(err(key("load_balancer"), "only a rule with `hosts` has standing rules to place"));
        }
        Ok(Some(lb.clone()))
    }

    /// The host patterns, each as ALB and our matcher accept it, none twice; and with them a
    /// target group, or neither.
    fn hosts(&self, key: &dyn Fn(&str) -> String) -> Result<Vec<String>, ConfigError> {
        if self.hosts.is_empty() != self.target_group_arn.is_none() {
            return Err(err(
                key(if self.hosts.is_empty() { "hosts" } else { "target_group_arn" }),
                "give both `hosts` and `target_group_arn`, or neither (a rule that only serves as a dependency, \
                 such as a database, is ready when its resources are)",
            ));
        }
        if let Some(tg) = &self.target_group_arn {
            check_elb_arn(&key("target_group_arn"), tg, "targetgroup/", 2)?;
        }
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for h in &self.hosts {
            let host = validate_host_pattern(h).map_err(|r| err(key("hosts"), format!("`{h}`: {r}")))?;
            if hosts.contains(&host) {
                return Err(err(key("hosts"), format!("`{h}` is listed twice")));
            }
            hosts.push(host);
        }
        Ok(hosts)
    }

    /// The rule's resources (at least one kind), busy signal and dependencies.
    fn with_resources(self, mut rule: Rule, key: &dyn Fn(&str) -> String) -> Result<Rule, ConfigError> {
        rule.ec2 = self.ec2.map(|raw| check_ec2(key, raw)).transpose()?;
        rule.ecs = self.ecs.map(|raw| check_ecs(key, raw)).transpose()?;
        rule.asg = self.asg.map(|raw| check_asg(key, raw)).transpose()?;
        rule.rds = self.rds.map(|raw| check_rds(key, raw)).transpose()?;
        if rule.ec2.is_none() && rule.ecs.is_none() && rule.asg.is_none() && rule.rds.is_none() {
            // The rule lacks all four kinds: the key is the rule's own, not one of them.
            let rule_key = key("").trim_end_matches('.').to_string();
            return Err(err(rule_key, "a rule needs `ec2`, `ecs`, `asg` or `rds`: it has no resources to wake"));
        }
        rule.busy_when = self.busy_when.map(|raw| check_busy_when(key, raw, rule.ec2.is_some())).transpose()?;
        rule.depends_on = self.depends_on;
        Ok(rule)
    }
}

/// A rule's name: 1-64 characters of `[a-z0-9-]`.
fn check_name(name: &str, i: usize) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match ok {
        true => Ok(()),
        false => Err(err(format!("rules[{i}].name"), format!("`{name}` must be 1-64 characters of [a-z0-9-]"))),
    }
}

/// Every `depends_on` names another rule, once, and no rule depends on itself through others.
fn check_dependencies(rules: &[Rule]) -> Result<(), ConfigError> {
    let key = |i: usize| format!("rules[{i}] ({}).depends_on", rules[i].name);
    let index = |name: &str| rules.iter().position(|r| r.name == name);
    for (i, rule) in rules.iter().enumerate() {
        for (j, dep) in rule.depends_on.iter().enumerate() {
            if index(dep).is_none() {
                let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
                return Err(err(key(i), format!("no rule named `{dep}`; configured rules: {}", names.join(", "))));
            }
            if rule.depends_on[..j].contains(dep) {
                return Err(err(key(i), format!("`{dep}` is listed twice")));
            }
        }
    }
    // Depth-first from each rule; a rule met again on the current path closes a cycle.
    fn visit(rules: &[Rule], at: usize, path: &mut Vec<usize>) -> Option<Vec<usize>> {
        if let Some(start) = path.iter().position(|p| *p == at) {
            let mut cycle = path[start..].to_vec();
            cycle.push(at);
            return Some(cycle);
        }
        path.push(at);
        for dep in &rules[at].depends_on {
            let next = rules.iter().position(|r| &r.name == dep).expect("checked above");
            if let Some(cycle) = visit(rules, next, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    for i in 0..rules.len() {
        if let Some(cycle) = visit(rules, i, &mut Vec::new()) {
            let names: Vec<&str> = cycle.iter().map(|c| rules[*c].name.as_str()).collect();
            return Err(err(key(cycle[0]), format!("dependency cycle: {}", names.join(" -> "))));
        }
    }
    Ok(())
}

/// `wake_from` networks, each checked; `None` when the key is absent (any network may wake).
fn parse_networks(key: &str, raw: Option<&[String]>) -> Result<Option<Vec<Cidr>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Err(err(key, "lists no network: leave the key out to let any network wake, or list some"));
    }
    raw.iter().map(|n| Cidr::parse(n).map_err(|r| err(key, r))).collect::<Result<Vec<_>, _>>().map(Some)
}

impl RawRule {
    /// The rule's [`Gate`]: its own `wake_from` and `wake` replace the top level's; its
    /// `never_wake` lists add to the top level's, and its `defaults` wins when set.
    fn gate(&self, key: &dyn Fn(&str) -> String, top: &TopGate) -> Result<Gate, ConfigError> {
        let own = parse_networks(&key("wake_from"), self.wake_from.as_deref())?;
        let mine = self.never_wake.clone().unwrap_or_default();
        check_never_wake(&key("never_wake"), &mine)?;
        let defaults = mine.defaults.or(top.never_wake.defaults).unwrap_or(true);
        let agents: Vec<String> = top.never_wake.user_agents.iter().chain(&mine.user_agents).cloned().collect();
        let paths: Vec<String> = top.never_wake.paths.iter().chain(&mine.paths).cloned().collect();
        let mut gate = Gate::new(own.or_else(|| top.wake_from.clone()), defaults, &agents, &paths);
        gate.trusted_proxies = top.trusted_proxies.clone();
        gate.click = parse_wake(&key("wake"), self.wake.as_deref())?.unwrap_or(top.click);
        Ok(gate)
    }
}

/// The top level's `wake_from`, `never_wake` and `wake`, checked: what each rule starts from.
struct TopGate {
    wake_from: Option<Vec<Cidr>>,
    trusted_proxies: Vec<Cidr>,
    never_wake: RawNeverWake,
    click: bool,
    access: Access,
}

/// `wake = "request" | "click"`: `Some(true)` for click.
fn parse_wake(key: &str, raw: Option<&str>) -> Result<Option<bool>, ConfigError> {
    match raw {
        None => Ok(None),
        Some("request") => Ok(Some(false)),
        Some("click") => Ok(Some(true)),
        Some(other) => {
            Err(err(key, format!("`{other}` is not a wake mode: use \"request\" (the default) or \"click\"")))
        }
    }
}

fn check_wake_token(t: Option<WakeToken>) -> Result<Option<WakeToken>, ConfigError> {
    let Some(mut t) = t else { return Ok(None) };
    t.header = t.header.trim().to_ascii_lowercase();
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if t.header.is_empty() || !t.header.bytes().all(token_char) {
        return Err(err("wake_token.header", format!("`{}` is not an HTTP header name", t.header)));
    }
    if matches!(t.header.as_str(), "host" | "cookie" | "authorization" | "x-forwarded-for" | "user-agent") {
        return Err(err(
            "wake_token.header",
            format!("`{}` carries something else; use e.g. x-autostop-wake", t.header),
        ));
    }
    if t.env.trim().is_empty() || t.env.contains('=') {
        return Err(err("wake_token.env", "must name the environment variable that holds the secret"));
    }
    Ok(Some(t))
}

fn check_never_wake(key: &str, n: &RawNeverWake) -> Result<(), ConfigError> {
    if let Some(p) = n.paths.iter().find(|p| !p.starts_with('/')) {
        return Err(err(
            format!("{key}.paths"),
            format!("`{p}` must start with `/` (a `*` at the end matches any rest)"),
        ));
    }
    if n.user_agents.iter().any(|u| u.trim().is_empty()) {
        return Err(err(format!("{key}.user_agents"), "an empty entry would match every client"));
    }
    Ok(())
}

/// A rule's `load_balancer` must be the load balancer of a configured listener (when they are
/// listed: discovered listeners are all of one load balancer, checked when they are found).
fn check_load_balancers(rules: &[Rule], listeners: &[String]) -> Result<(), ConfigError> {
    if listeners.is_empty() {
        return Ok(());
    }
    let lbs: Vec<String> = listeners.iter().map(|l| load_balancer_of_listener(l)).collect();
    for (i, rule) in rules.iter().enumerate() {
        match &rule.load_balancer {
            Some(lb) if !lbs.contains(lb) => {
                return Err(err(
                    format!("rules[{i}] ({}).load_balancer", rule.name),
                    format!("`{lb}` has none of the listeners in `listener_arns`: add one of its listeners, or name the load balancer of one"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
