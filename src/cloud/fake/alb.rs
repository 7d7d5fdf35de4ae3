//! The load balancer: target groups and their health, listeners and their rules, routing by
//! priority and host, and the quotas (see the module docs of [`super`] for the sources).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{FakeCloud, FakeTargetGroup, Op, State, LAMBDA_TG, MIN_HEALTHY_AFTER};
use crate::cloud::alb::{alb_host_match, load_balancer_dimension, load_balancer_of_listener, MAX_PRIORITY};
use crate::cloud::listener::SECRET_MISSING;
use crate::cloud::{
    Authenticate, CloudError, CloudResult, HealthCheck, InstanceState, ListenerFacts, ListenerRule, NewRule,
    RuleChange, TargetHealth, Weighted,
};

impl FakeCloud {
    /// A target group whose targets turn healthy `health_delay` after they run in a group a
    /// listener references (never sooner than ALB's minimum, [`MIN_HEALTHY_AFTER`]).
    pub fn add_target_group(&self, arn: &str, health_delay: Duration) {
        let mut s = self.lock();
        let health_delay = health_delay.max(MIN_HEALTHY_AFTER);
        let health_check =
            HealthCheck { healthy_threshold: 2, interval_secs: health_delay.as_secs().div_ceil(2) as u32 };
        s.target_groups.insert(arn.to_string(), FakeTargetGroup { health_delay, health_check, ..Default::default() });
        s.refresh_attachments(Instant::now());
    }

    pub fn register_instance(&self, tg: &str, id: &str) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").instances.push(id.to_string());
    }

    /// The group's instances register in this target group (as a group attached to it does).
    pub fn attach_asg(&self, tg: &str, name: &str) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").asg = Some(name.to_string());
    }

    /// The service's tasks register in this target group (as ECS does).
    pub fn attach_service(&self, tg: &str, cluster: &str, service: &str) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").service =
            Some((cluster.to_string(), service.to_string()));
    }

    /// From now on every running target of `tg` fails its health checks with `reason`
    /// (`Target.Timeout`, `Target.ResponseCodeMismatch`, ...); `None` heals them.
    pub fn fail_health_checks(&self, tg: &str, reason: Option<&str>) {
        self.lock().target_groups.get_mut(tg).expect("unknown fake target group").failing = reason.map(str::to_string);
    }

    /// A listener whose default action forwards to [`LAMBDA_TG`].
    pub fn add_listener(&self, arn: &str) {
        self.add_listener_with_default(arn, Some(LAMBDA_TG));
    }

    /// A listener whose default action forwards to `default` (`None`: a fixed response).
    /// Panics, as CreateListener would fail, when `default` already serves another load balancer.
    pub fn add_listener_with_default(&self, arn: &str, default: Option<&str>) {
        let mut s = self.lock();
        if let Some(tg) = default {
            let lb = load_balancer_of_listener(arn);
            assert!(
                s.load_balancers_of(tg).iter().all(|other| other == &lb),
                "TargetGroupAssociationLimit: {tg} already serves another load balancer"
            );
        }
        s.listeners.entry(arn.to_string()).or_default();
        s.defaults.insert(arn.to_string(), default.map(str::to_string));
        s.refresh_attachments(Instant::now());
    }

    /// The listener's protocol is HTTP, not HTTPS: it takes no authenticate action.
    pub fn set_listener_http(&self, arn: &str) {
        self.lock().http_listeners.insert(arn.to_string());
    }

    /// The load balancer's quota of rules (ALB's default is 100, adjustable).
    pub fn set_rule_quota(&self, n: usize) {
        self.lock().rule_quota = n;
    }

    /// A rule autostop did not create (no owner tag) at `priority`, forwarding to a group of
    /// its own.
    pub fn add_foreign_rule(&self, listener: &str, priority: u32, hosts: &[&str]) {
        self.insert_rule(listener, priority, hosts, vec![Weighted::new("arn:foreign-tg", 1)], None);
    }

    /// A rule tagged `autostop:rule=<owner>` forwarding to `target_group` only: what the
    /// previous version of autostop inserted while a rule was awake, or one left behind by a
    /// rule since removed from the config.
    pub fn add_tagged_rule(&self, listener: &str, priority: u32, hosts: &[&str], target_group: &str, owner: &str) {
        self.insert_rule(listener, priority, hosts, vec![Weighted::new(target_group, 1)], Some(owner));
    }

    pub(super) fn insert_rule(
        &self,
        listener: &str,
        priority: u32,
        hosts: &[&str],
        forward: Vec<Weighted>,
        owner: Option<&str>,
    ) {
        let mut s = self.lock();
        let rule = s.listener_rule(priority, hosts, forward, owner);
        s.listeners.get_mut(listener).expect("unknown fake listener").push(rule);
        s.refresh_attachments(Instant::now());
    }

    /// Puts an action of `kind` (`authenticate-oidc`, ...) in front of a rule's forward, as an
    /// operator would to keep an environment behind SSO.
    pub fn put_in_front(&self, rule_arn: &str, kind: &str) {
        let mut s = self.lock();
        let rule = s.find_rule_mut(rule_arn).expect("unknown fake rule");
        rule.kept.insert(0, kind.to_string());
    }

    /// Deletes a rule now, as a person in the console would.
    pub fn delete_rule_by_hand(&self, rule_arn: &str) {
        let mut s = self.lock();
        for rules in s.listeners.values_mut() {
            rules.retain(|r| r.arn != rule_arn);
        }
        s.refresh_attachments(Instant::now());
    }

    /// Times a forward rule of ours pointed at a stopping/stopped target.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    pub fn rules(&self, listener: &str) -> Vec<ListenerRule> {
        let mut v = self.lock().listeners.get(listener).cloned().unwrap_or_default();
        v.sort_by_key(|r| r.priority);
        v
    }

    /// Where the ALB would send a request for `host` on `listener`: the target groups of the first
    /// matching rule by priority that have a weight above 0, else the default action's group.
    pub fn route(&self, listener: &str, host: &str) -> Vec<String> {
        self.lock().route(listener, host)
    }

    /// The one target group `host` reaches on `listener`; panics when traffic would be split.
    pub fn routes_to(&self, listener: &str, host: &str) -> String {
        let to = self.route(listener, host);
        assert_eq!(to.len(), 1, "{host} on {listener} is split between {to:?}");
        to[0].clone()
    }

    /// HealthyThresholdCount x interval as the group was made with (2 x half its delay, unless
    /// a test set them).
    pub(super) async fn op_health_check(&self, target_group_arn: &str) -> CloudResult<HealthCheck> {
        self.enter(Op::DescribeTargetGroups).await?;
        let s = self.lock();
        let tg = s
            .target_groups
            .get(target_group_arn)
            .ok_or_else(|| CloudError::new("DescribeTargetGroups", "TargetGroupNotFound", target_group_arn))?;
        Ok(tg.health_check)
    }

    /// DescribeTargetGroups `LoadBalancerArns`, 20 groups per call as the adapter asks.
    pub(super) async fn op_load_balancers_of_groups(
        &self,
        arns: &[String],
    ) -> CloudResult<HashMap<String, Vec<String>>> {
        for _ in 0..arns.len().div_ceil(20) {
            self.enter(Op::DescribeTargetGroups).await?;
        }
        let s = self.lock();
        let known = arns.iter().filter(|a| s.target_group_known(a));
        Ok(known.map(|a| (a.clone(), s.load_balancers_of(a).into_iter().collect())).collect())
    }

    /// The group's health check: its targets turn healthy `threshold x interval` after they run.
    pub fn set_health_check(&self, tg: &str, healthy_threshold: u32, interval_secs: u32) {
        let mut s = self.lock();
        let g = s.target_groups.get_mut(tg).expect("unknown fake target group");
        g.health_check = HealthCheck { healthy_threshold, interval_secs };
        g.health_delay = Duration::from_secs(healthy_threshold as u64 * interval_secs as u64).max(MIN_HEALTHY_AFTER);
    }

    pub(super) async fn op_target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth> {
        self.enter(Op::DescribeTargetHealth).await?;
        let s = self.lock();
        let tg = s
            .target_groups
            .get(target_group_arn)
            .ok_or_else(|| CloudError::new("DescribeTargetHealth", "TargetGroupNotFound", target_group_arn))?;
        Ok(s.health(tg, Instant::now()))
    }

    pub(super) async fn op_listener_rules(&self, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
        // Counted as the real adapter calls: pages of 50 rules, tags for 20 rules per call. A rule
        // deleted between the two makes DescribeTags fail with RuleNotFound, and the adapter lists
        // again (tested against the SDK in the adapter's tests).
        loop {
            let n = self.lock().listeners.get(listener_arn).map(Vec::len).unwrap_or(0);
            for _ in 0..n.div_ceil(50).max(1) {
                self.enter(Op::DescribeRules).await?;
            }
            let raced = {
                let mut s = self.lock();
                let gone = s.delete_during_listing.pop_front();
                if let Some(arn) = &gone {
                    for rules in s.listeners.values_mut() {
                        rules.retain(|r| &r.arn != arn);
                    }
                    s.refresh_attachments(Instant::now());
                }
                gone.is_some()
            };
            for k in 0..n.div_ceil(20) {
                self.enter(Op::DescribeTags).await?;
                if raced && k == 0 {
                    break;
                }
            }
            if raced {
                continue; // DescribeTags said RuleNotFound: list again
            }
            let s = self.lock();
            return s
                .listeners
                .get(listener_arn)
                .cloned()
                .ok_or_else(|| CloudError::new("DescribeRules", "ListenerNotFound", listener_arn));
        }
    }

    pub(super) async fn op_listeners_of(&self, load_balancer_arn: &str) -> CloudResult<Vec<String>> {
        self.enter(Op::DescribeListeners).await?;
        let lb = load_balancer_arn.split_once(":loadbalancer/").map(|(_, r)| r).unwrap_or(load_balancer_arn);
        let mut found: Vec<String> =
            self.lock().listeners.keys().filter(|l| load_balancer_dimension(l) == lb).cloned().collect();
        found.sort();
        Ok(found)
    }

    pub(super) async fn op_listener_facts(&self, listener_arn: &str) -> CloudResult<ListenerFacts> {
        self.enter(Op::DescribeListeners).await?;
        let s = self.lock();
        let default_target_group = s
            .defaults
            .get(listener_arn)
            .cloned()
            .ok_or_else(|| CloudError::new("DescribeListeners", "ListenerNotFound", listener_arn))?;
        Ok(ListenerFacts { default_target_group, https: !s.http_listeners.contains(listener_arn) })
    }

    pub(super) async fn op_create_rule(&self, rule: &NewRule) -> CloudResult<String> {
        if let Some(a) = &rule.auth {
            a.secret_for(None).map_err(|why| CloudError::new("CreateRule", SECRET_MISSING, why))?;
        }
        self.enter(Op::CreateRule).await?;
        let mut s = self.lock();
        if let Some((listener, raced)) = s.race_before_create.pop_front() {
            s.listeners.get_mut(&listener).expect("unknown fake listener").push(raced);
            s.refresh_attachments(Instant::now());
        }
        if !s.listeners.contains_key(&rule.listener_arn) {
            return Err(CloudError::new("CreateRule", "ListenerNotFound", rule.listener_arn.clone()));
        }
        if !(1..=MAX_PRIORITY).contains(&rule.priority) {
            return Err(CloudError::new("CreateRule", "ValidationError", format!("priority {}", rule.priority)));
        }
        s.validate_rule("CreateRule", &rule.hosts, &rule.forward)?;
        s.check_authenticate("CreateRule", &rule.listener_arn, rule.auth.as_ref())?;
        s.check_association("CreateRule", &rule.listener_arn, &rule.forward)?;
        if s.listeners[&rule.listener_arn].iter().any(|r| r.priority == rule.priority) {
            return Err(CloudError::new(
                "CreateRule",
                "PriorityInUse",
                format!("Priority '{}' is in use", rule.priority),
            ));
        }
        if s.rules_on_load_balancer(&rule.listener_arn) >= s.rule_quota {
            return Err(CloudError::new(
                "CreateRule",
                "TooManyRules",
                "You've reached the limit on the number of rules per load balancer",
            ));
        }
        let arn = s.new_rule_arn();
        s.listeners.get_mut(&rule.listener_arn).expect("checked").push(ListenerRule {
            arn: arn.clone(),
            priority: rule.priority,
            hosts: rule.hosts.clone(),
            forward: rule.forward.clone(),
            owner: Some(rule.owner.clone()),
            auth: rule.auth.as_ref().map(Authenticate::as_read),
            kept: Vec::new(),
        });
        s.refresh_attachments(Instant::now());
        s.check_invariants();
        Ok(arn)
    }

    /// ModifyRule replaces the whole action list (ELBv2 API reference, ModifyRule), so the
    /// adapter reads the rule's actions (one DescribeRules) and sends the whole list back: a new
    /// forward keeps the actions in front of it (`auth`, `kept`); a new authenticate action
    /// replaces them all. An OIDC action reuses the rule's secret only if it has one for the
    /// same client.
    pub(super) async fn op_modify_rule(&self, rule_arn: &str, change: &RuleChange) -> CloudResult<()> {
        if change.forward.is_some() || change.auth.is_some() {
            self.enter(Op::DescribeRules).await?;
            let Some(current) = self.lock().find_rule_mut(rule_arn).map(|r| r.auth.clone()) else {
                return Err(CloudError::new("DescribeRules", "RuleNotFound", rule_arn));
            };
            if let Some(Some(a)) = &change.auth {
                a.secret_for(current.as_ref()).map_err(|why| CloudError::new("ModifyRule", SECRET_MISSING, why))?;
            }
        }
        self.enter(Op::ModifyRule).await?;
        let mut s = self.lock();
        let Some(current) = s.find_rule_mut(rule_arn).map(|r| r.clone()) else {
            return Err(CloudError::new("ModifyRule", "RuleNotFound", rule_arn));
        };
        let hosts = change.hosts.clone().unwrap_or(current.hosts);
        let forward = change.forward.clone().unwrap_or(current.forward);
        s.validate_rule("ModifyRule", &hosts, &forward)?;
        let listener = s.listener_of_rule(rule_arn).expect("found above");
        s.check_association("ModifyRule", &listener, &forward)?;
        let (auth, kept) = match &change.auth {
            None => (current.auth, current.kept),
            Some(auth) => (auth.clone(), Vec::new()),
        };
        s.check_authenticate("ModifyRule", &listener, auth.as_ref())?;
        let r = s.find_rule_mut(rule_arn).expect("found above");
        r.hosts = hosts;
        r.forward = forward;
        r.auth = auth.as_ref().map(Authenticate::as_read);
        r.kept = kept;
        s.refresh_attachments(Instant::now());
        s.check_invariants();
        Ok(())
    }

    pub(super) async fn op_set_rule_priorities(&self, priorities: &[(String, u32)]) -> CloudResult<()> {
        self.enter(Op::SetRulePriorities).await?;
        let mut s = self.lock();
        let mut listener_of: Vec<(String, String)> = Vec::new();
        for (arn, _) in priorities {
            let Some(l) = s.listeners.iter().find(|(_, rules)| rules.iter().any(|r| &r.arn == arn)).map(|(l, _)| l)
            else {
                return Err(CloudError::new("SetRulePriorities", "RuleNotFound", arn.clone()));
            };
            listener_of.push((arn.clone(), l.clone()));
        }
        // "You can reorder the rules as long as there are no priority conflicts in the new order"
        // (ELBv2 API reference, SetRulePriorities): check the order after the change.
        for (_, listener) in &listener_of {
            let mut after: Vec<u32> = s.listeners[listener]
                .iter()
                .map(|r| priorities.iter().find(|(a, _)| a == &r.arn).map(|(_, p)| *p).unwrap_or(r.priority))
                .collect();
            after.sort_unstable();
            if after.windows(2).any(|w| w[0] == w[1]) {
                return Err(CloudError::new("SetRulePriorities", "PriorityInUse", "The specified priority is in use."));
            }
        }
        for (arn, p) in priorities {
            s.find_rule_mut(arn).expect("found above").priority = *p;
        }
        Ok(())
    }

    pub(super) async fn op_delete_rule(&self, rule_arn: &str) -> CloudResult<()> {
        self.enter(Op::DeleteRule).await?;
        let mut s = self.lock();
        if s.find_rule_mut(rule_arn).is_none() {
            // AWS: RuleNotFound (moto succeeds instead).
            return Err(CloudError::new("DeleteRule", "RuleNotFound", rule_arn));
        }
        for rules in s.listeners.values_mut() {
            rules.retain(|r| r.arn != rule_arn);
        }
        s.refresh_attachments(Instant::now());
        Ok(())
    }
}

impl State {
    /// A rule with a new ARN, as a person or another invocation would make it.
    pub(super) fn listener_rule(
        &mut self,
        priority: u32,
        hosts: &[&str],
        forward: Vec<Weighted>,
        owner: Option<&str>,
    ) -> ListenerRule {
        ListenerRule {
            arn: self.new_rule_arn(),
            priority,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            forward,
            owner: owner.map(str::to_string),
            auth: None,
            kept: Vec::new(),
        }
    }

    pub(super) fn new_rule_arn(&mut self) -> String {
        self.next_rule_id += 1;
        format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/dev/1/2/{}", self.next_rule_id)
    }

    /// No listener may send traffic (weight above 0) to a target group whose instances are
    /// stopping or stopped, or whose service is scaled to 0. Run after every change.
    pub(super) fn check_invariants(&mut self) {
        let mut bad: HashMap<&str, String> = HashMap::new();
        for (arn, tg) in &self.target_groups {
            for id in &tg.instances {
                let state = self.instances.get(id).map(|i| i.state);
                if matches!(state, Some(InstanceState::Stopping | InstanceState::Stopped)) {
                    bad.insert(arn, format!("{id} {:?}", state.unwrap()));
                }
            }
            if tg.service.as_ref().and_then(|k| self.services.get(k)).is_some_and(|svc| svc.desired == 0) {
                bad.insert(arn, "service scaled to 0".into());
            }
        }
        let mut found = Vec::new();
        for (listener, rules) in &self.listeners {
            for r in rules {
                for why in r.routes_to().into_iter().filter_map(|t| bad.get(t)) {
                    found.push(format!("{listener}: rule {} -> {why}", r.arn));
                }
            }
        }
        self.violations.extend(found);
    }

    /// A group is health-checked only while a listener rule or default action references it
    /// (ELBv2 API reference, TargetHealth: `Target.NotInUse`). Records since when.
    pub(super) fn refresh_attachments(&mut self, now: Instant) {
        let mut referenced: std::collections::HashSet<&str> =
            self.defaults.values().flatten().map(String::as_str).collect();
        for rules in self.listeners.values() {
            referenced.extend(rules.iter().flat_map(|r| r.forward.iter().map(|w| w.target_group.as_str())));
        }
        for (arn, tg) in self.target_groups.iter_mut() {
            if !referenced.contains(arn.as_str()) {
                tg.attached_since = None;
            } else if tg.attached_since.is_none() {
                tg.attached_since = Some(now);
            }
        }
    }

    pub(super) fn route(&self, listener: &str, host: &str) -> Vec<String> {
        let mut rules: Vec<&ListenerRule> =
            self.listeners.get(listener).map(|r| r.iter().collect()).unwrap_or_default();
        rules.sort_by_key(|r| r.priority);
        match rules.into_iter().find(|r| r.hosts.iter().any(|p| alb_host_match(p, host))) {
            Some(r) => r.routes_to().into_iter().map(str::to_string).collect(),
            None => self.defaults.get(listener).cloned().flatten().into_iter().collect(),
        }
    }

    /// Health as DescribeTargetHealth reports it (see the module docs for the sources).
    pub(super) fn health(&self, tg: &FakeTargetGroup, now: Instant) -> TargetHealth {
        let mut h = TargetHealth::default();
        let mut count = |since: Instant, n: u32| {
            let Some(attached) = tg.attached_since else {
                h.not_in_use += n; // unused / Target.NotInUse: not counted as registered-and-checked
                return;
            };
            h.total += n;
            let checked_from = since.max(attached);
            if checked_from + tg.health_delay > now {
                h.initial += n;
            } else if let Some(reason) = &tg.failing {
                h.unhealthy += n;
                h.unhealthy_reason.get_or_insert_with(|| reason.clone());
            } else {
                h.healthy += n;
            }
        };
        for id in &tg.instances {
            // A stopped or pending instance is unused / Target.InvalidState: not counted.
            if let Some(since) = self.instances.get(id).and_then(|i| i.running_since) {
                count(since, 1);
            }
        }
        if let Some(g) = tg.asg.as_ref().and_then(|n| self.asgs.get(n)) {
            // The group registers an instance once it is in service.
            if g.desired > 0 && g.changed_at + g.boot <= now {
                count(g.changed_at + g.boot, g.desired);
            }
        }
        if let Some(svc) = tg.service.as_ref().and_then(|k| self.services.get(k)) {
            // ECS registers a task's IP once the task runs.
            if svc.desired > 0 && svc.scaled_at + svc.boot <= now {
                count(svc.scaled_at + svc.boot, svc.desired);
            }
        }
        h
    }

    /// The load balancers (ARNs) that reference `tg` from a listener rule or a default action.
    pub(super) fn load_balancers_of(&self, tg: &str) -> std::collections::BTreeSet<String> {
        let by_rule = self.listeners.iter().filter(|(_, rules)| rules.iter().any(|r| r.references(tg))).map(|(l, _)| l);
        let by_default = self.defaults.iter().filter(|(_, d)| d.as_deref() == Some(tg)).map(|(l, _)| l);
        by_rule.chain(by_default).map(|l| load_balancer_of_listener(l)).collect()
    }

    /// A target group serves one load balancer: a rule on another one that names it fails with
    /// `TargetGroupAssociationLimit` (ALB quotas, "Load balancers per target group: 1"; ELBv2
    /// API reference, CreateRule and ModifyRule errors).
    pub(super) fn check_association(&self, op: &'static str, listener: &str, forward: &[Weighted]) -> CloudResult<()> {
        let lb = load_balancer_of_listener(listener);
        for w in forward {
            if self.load_balancers_of(&w.target_group).iter().any(|other| other != &lb) {
                return Err(CloudError::new(
                    op,
                    "TargetGroupAssociationLimit",
                    format!("target group {} is already used by another load balancer", w.target_group),
                ));
            }
        }
        Ok(())
    }

    /// Authenticate actions only on HTTPS listeners ("you can configure an Application Load
    /// Balancer to authenticate users ... on HTTPS listeners", ALB guide, "Authenticate users
    /// using an Application Load Balancer"). AWS answers a rule that breaks it with
    /// `InvalidConfigurationRequest` (ELBv2 API reference, CreateRule errors: "the requested
    /// configuration is not valid").
    pub(super) fn check_authenticate(
        &self,
        op: &'static str,
        listener: &str,
        auth: Option<&crate::cloud::Authenticate>,
    ) -> CloudResult<()> {
        match auth {
            Some(a) if self.http_listeners.contains(listener) => Err(CloudError::new(
                op,
                "InvalidConfigurationRequest",
                format!("{} is supported only on HTTPS listeners", a.kind()),
            )),
            _ => Ok(()),
        }
    }

    /// Rules of all listeners of the load balancer `listener` belongs to.
    pub(super) fn rules_on_load_balancer(&self, listener: &str) -> usize {
        let lb = load_balancer_dimension(listener);
        self.listeners.iter().filter(|(l, _)| load_balancer_dimension(l) == lb).map(|(_, r)| r.len()).sum()
    }

    pub(super) fn listener_of_rule(&self, arn: &str) -> Option<String> {
        self.listeners.iter().find(|(_, rules)| rules.iter().any(|r| r.arn == arn)).map(|(l, _)| l.clone())
    }

    pub(super) fn find_rule_mut(&mut self, arn: &str) -> Option<&mut ListenerRule> {
        self.listeners.values_mut().flat_map(|r| r.iter_mut()).find(|r| r.arn == arn)
    }

    /// ALB's checks on a rule's host values and forward action (module docs: quotas).
    pub(super) fn validate_rule(&self, op: &'static str, hosts: &[String], forward: &[Weighted]) -> CloudResult<()> {
        if hosts.is_empty() || hosts.len() > 3 {
            // One host-header condition per rule, up to three match evaluations per condition
            // (ALB guide, "Condition types for listener rules"). AWS does not document the code
            // of the error; ValidationError is what its query API answers for a constraint.
            return Err(CloudError::new(op, "ValidationError", "a host-header condition takes at most 3 values"));
        }
        if let Some(h) = hosts.iter().find(|h| h.len() > 128) {
            return Err(CloudError::new(op, "ValidationError", format!("host-header value too long: {h}")));
        }
        if forward.is_empty() || forward.len() > 5 {
            return Err(CloudError::new(op, "ValidationError", "a forward action takes 1 to 5 target groups"));
        }
        if let Some(w) = forward.iter().find(|w| w.weight > 999) {
            return Err(CloudError::new(op, "ValidationError", format!("weight {} outside 0-999", w.weight)));
        }
        if let Some(w) = forward
            .iter()
            .find(|w| !w.target_group.starts_with("arn:foreign") && !self.target_group_known(&w.target_group))
        {
            return Err(CloudError::new(op, "TargetGroupNotFound", w.target_group.clone()));
        }
        Ok(())
    }

    pub(super) fn target_group_known(&self, arn: &str) -> bool {
        self.target_groups.contains_key(arn) || self.defaults.values().flatten().any(|d| d == arn)
    }
}
