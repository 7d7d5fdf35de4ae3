//! The standing listener rules: one home for every ALB rule autostop manages.
//!
//! Every configured host set has a standing rule on every configured listener, created once and
//! kept while the config names it ([`crate::config::standing`] plans them). Its forward action has two
//! members, autostop's Lambda target group (the one the listener's default action forwards to)
//! and the app's target group:
//!
//! - asleep or waking, [`Route::Lambda`]: Lambda weight 1, app weight 0. The weight-0 member keeps
//!   the app's target group attached to the load balancer, so the ALB health-checks its targets
//!   (a group no rule references is never checked: its targets stay `unused` / `Target.NotInUse`,
//!   ELBv2 API reference, TargetHealth), while autostop still answers every request;
//! - awake, [`Route::App`]: app weight 1, Lambda weight 0. One ModifyRule flips the weights:
//!   atomic, idempotent, no priority to probe, nothing to duplicate.
//!
//! Reconciling is the shape of aws-load-balancer-controller's rule synthesizer: build the desired
//! rules purely from the config ([`desired`]), list the actual ones, match them ([`diff`]), then
//! modify the matched, delete the unmatched of ours, move priorities, create the missing
//! ([`apply`]). Only rules tagged `autostop:rule` are ever changed or deleted.

use std::collections::{HashMap, HashSet};

use crate::cloud::{Cloud, CloudError, ErrorKind, ListenerRule, NewRule, RuleChange, Weighted};
use crate::config::standing::{self as priority, Chunk, MAX_PRIORITY};
use crate::config::Config;
use crate::config::Rule;

/// Where a standing rule sends its hosts' traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Lambda,
    App,
}

/// What the caller wants of a configured rule's standing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Forward to this; create what is missing this way.
    Route(Route),
    /// Keep the way the existing rules forward; create missing ones like their siblings (or to
    /// the Lambda when there are none).
    Keep,
}

/// The forward action of a standing rule.
pub fn forward(route: Route, lambda_tg: &str, app_tg: &str) -> Vec<Weighted> {
    match route {
        Route::Lambda => vec![Weighted::new(lambda_tg, 1), Weighted::new(app_tg, 0)],
        Route::App => vec![Weighted::new(app_tg, 1), Weighted::new(lambda_tg, 0)],
    }
}

/// Where an existing rule sends traffic for this app: to the app when its group has weight.
pub fn route_of(rule: &ListenerRule, app_tg: &str) -> Route {
    if rule.routes_to().contains(&app_tg) {
        Route::App
    } else {
        Route::Lambda
    }
}

fn same_forward(a: &[Weighted], b: &[Weighted]) -> bool {
    let set = |v: &[Weighted]| v.iter().cloned().collect::<HashSet<Weighted>>();
    a.len() == b.len() && set(a) == set(b)
}

/// A standing rule as the config wants it on one listener: a chunk of the config's plan and
/// the priority it gets there (borrowed: a diff runs on every stop of every rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired<'a> {
    pub chunk: &'a Chunk,
    pub priority: u32,
}

/// Why a listener's standing rules cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl From<PlanError> for CloudError {
    fn from(e: PlanError) -> CloudError {
        CloudError::new("autostop", "RulePlanConflict", e.0)
    }
}

/// The standing rules of the config on a listener where `taken` priorities belong to rules that
/// are not ours.
pub fn desired<'a>(config: &'a Config, taken: &HashSet<u32>) -> Result<Vec<Desired<'a>>, PlanError> {
    let priorities = if taken.is_empty() {
        config.standing_priorities.clone()
    } else {
        let p = priority::assign(&config.standing, taken)
            .ok_or_else(|| PlanError("no free ALB rule priority left on the listener".into()))?;
        // The config's own order was checked at load; skipping taken priorities keeps it unless a
        // derived priority jumps past a pinned one.
        if !same_order(&config.standing_priorities, &p) {
            priority::check_order(&config.standing, &p)
                .map_err(|c| PlanError(format!("rules not ours shift ours: {c}")))?;
        }
        p
    };
    if let Some((c, p)) = config.standing.iter().zip(&priorities).find(|(c, p)| c.pinned.is_some() && taken.contains(p))
    {
        return Err(PlanError(format!(
            "priority {p} configured for rule `{}` is held by a listener rule autostop does not own",
            c.owner
        )));
    }
    Ok(config.standing.iter().zip(priorities).map(|(chunk, priority)| Desired { chunk, priority }).collect())
}

/// Whether two priority assignments order the chunks the same way.
fn same_order(a: &[u32], b: &[u32]) -> bool {
    let rank = |v: &[u32]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by_key(|&i| v[i]);
        idx
    };
    rank(a) == rank(b)
}

/// What one listener needs to match the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub modify: Vec<(String, RuleChange, String)>,
    pub delete: Vec<(String, String)>,
    pub priorities: Vec<(String, u32)>,
    pub create: Vec<NewRule>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.modify.is_empty() && self.delete.is_empty() && self.priorities.is_empty() && self.create.is_empty()
    }

    pub fn changes(&self) -> usize {
        self.modify.len() + self.delete.len() + self.priorities.len() + self.create.len()
    }
}

/// A listener as the reconciler sees it.
#[derive(Debug, Clone)]
pub struct ListenerView {
    pub listener: String,
    /// The target group of the listener's default action: autostop's Lambda.
    pub lambda_tg: String,
    pub rules: Vec<ListenerRule>,
}

impl ListenerView {
    /// This listener with only what a change to `rule` reads: rules not ours (their
    /// priorities) and the standing rules of `rule` and of the rules entangled with it.
    pub fn narrowed(&self, config: &Config, rule: &Rule) -> ListenerView {
        let names = entangled(config, rule);
        let rules =
            self.rules.iter().filter(|r| r.owner.as_deref().is_none_or(|o| names.contains(o))).cloned().collect();
        ListenerView { listener: self.listener.clone(), lambda_tg: self.lambda_tg.clone(), rules }
    }
}

/// Matches the actual rules of one listener against the desired ones (pure).
pub fn diff(config: &Config, view: &ListenerView, want: &(dyn Fn(&str) -> Want + Sync)) -> Result<Plan, PlanError> {
    diff_only(config, view, want, None)
}

/// [`diff`] for the rules named in `only` (all of them, and orphans, when `None`). Desired and
/// actual rules are grouped by owner first, so a diff costs one pass over each.
fn diff_only(
    config: &Config,
    view: &ListenerView,
    want: &(dyn Fn(&str) -> Want + Sync),
    only: Option<&HashSet<&str>>,
) -> Result<Plan, PlanError> {
    let taken: HashSet<u32> = view.rules.iter().filter(|r| r.owner.is_none()).map(|r| r.priority).collect();
    let desired = desired(config, &taken)?;
    let mut wanted: HashMap<&str, Vec<&Desired>> = HashMap::new();
    for d in &desired {
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
        for (owner, rules) in actual.into_iter().filter(|(o, _)| config.rule(o).is_none()) {
            plan.delete.extend(rules.iter().map(|r| (r.arn.clone(), owner.to_string())));
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
                owner: rule.name.clone(),
            });
            continue;
        };
        let change = RuleChange {
            hosts: (!priority::same_hosts(&a.hosts, &d.chunk.hosts)).then(|| d.chunk.hosts.clone()),
            forward: (!same_forward(&a.forward, &action)).then(|| action.clone()),
        };
        if change != RuleChange::default() {
            plan.modify.push((a.arn.clone(), change, rule.name.clone()));
        }
        if a.priority != d.priority {
            plan.priorities.push((a.arn.clone(), d.priority));
        }
    }
    plan.delete.extend(actual.iter().map(|a| (a.arn.clone(), rule.name.clone())));
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

/// Applies a plan to one listener, in an order that never leaves two rules on one priority:
/// modify the matched (hosts, action), delete the extra, move priorities, create the missing.
/// `view.rules` is updated to what the listener holds afterwards.
pub async fn apply<C: Cloud>(cloud: &C, view: &mut ListenerView, plan: &Plan) -> Result<(), CloudError> {
    for (arn, change, owner) in &plan.modify {
        cloud.modify_rule(arn, change).await?;
        tracing::info!(rule = %owner, listener = %view.listener, rule_arn = %arn, hosts = ?change.hosts, forward = ?change.forward.as_ref().map(|f| describe(f)), "standing rule modified");
        if let Some(r) = view.rules.iter_mut().find(|r| &r.arn == arn) {
            if let Some(h) = &change.hosts {
                r.hosts = h.clone();
            }
            if let Some(f) = &change.forward {
                r.forward = f.clone();
            }
        }
    }
    for (arn, owner) in &plan.delete {
        match cloud.delete_rule(arn).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        tracing::info!(rule = %owner, listener = %view.listener, rule_arn = %arn, "listener rule of ours removed: its rule or host chunk is no longer in the config");
        view.rules.retain(|r| &r.arn != arn);
    }
    move_priorities(cloud, view, &plan.priorities).await?;
    for new in &plan.create {
        let arn = create(cloud, view, new).await?;
        tracing::info!(rule = %new.owner, listener = %view.listener, priority = new.priority, hosts = ?new.hosts, forward = %describe(&new.forward), rule_arn = %arn, "standing rule created");
    }
    Ok(())
}

/// SetRulePriorities in one call when no target priority is held; else first to free
/// priorities, then to the targets. AWS accepts a reorder "as long as there are no priority
/// conflicts in the new order" (ELBv2 API reference, SetRulePriorities); moto rejects any target
/// priority held at the time of the call, so the two-step move works on both.
async fn move_priorities<C: Cloud>(
    cloud: &C,
    view: &mut ListenerView,
    moves: &[(String, u32)],
) -> Result<(), CloudError> {
    if moves.is_empty() {
        return Ok(());
    }
    let held: HashSet<u32> = view.rules.iter().map(|r| r.priority).collect();
    let targets: HashSet<u32> = moves.iter().map(|(_, p)| *p).collect();
    if moves.iter().any(|(_, p)| held.contains(p)) {
        let mut free = (1..=MAX_PRIORITY).rev().filter(|p| !held.contains(p) && !targets.contains(p));
        let parked: Vec<(String, u32)> =
            moves.iter().map(|(arn, _)| free.next().map(|p| (arn.clone(), p))).collect::<Option<_>>().ok_or_else(
                || CloudError::new("SetRulePriorities", "TooManyRules", "no free priority to reorder through"),
            )?;
        cloud.set_rule_priorities(&parked).await?;
    }
    cloud.set_rule_priorities(moves).await?;
    for (arn, p) in moves {
        tracing::info!(listener = %view.listener, rule_arn = %arn, priority = p, "standing rule moved to keep ALB's order in line with host matching");
        if let Some(r) = view.rules.iter_mut().find(|r| &r.arn == arn) {
            r.priority = *p;
        }
    }
    Ok(())
}

/// CreateRule; `PriorityInUse` by our own rule for the same hosts (another invocation created it
/// a moment ago) counts as done.
async fn create<C: Cloud>(cloud: &C, view: &mut ListenerView, new: &NewRule) -> Result<String, CloudError> {
    let arn = match cloud.create_rule(new).await {
        Ok(arn) => arn,
        Err(e) if e.kind == ErrorKind::PriorityInUse => {
            let now = cloud.listener_rules(&view.listener).await?;
            let same = now.iter().find(|r| {
                r.priority == new.priority
                    && r.owner.as_deref() == Some(new.owner.as_str())
                    && priority::same_hosts(&r.hosts, &new.hosts)
            });
            match same {
                Some(r) => r.arn.clone(),
                None => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    view.rules.push(ListenerRule {
        arn: arn.clone(),
        priority: new.priority,
        hosts: new.hosts.clone(),
        forward: new.forward.clone(),
        owner: Some(new.owner.clone()),
    });
    Ok(arn)
}

fn describe(forward: &[Weighted]) -> String {
    let parts: Vec<String> = forward.iter().map(|w| format!("{}={}", short_tg(&w.target_group), w.weight)).collect();
    parts.join(" ")
}

fn short_tg(arn: &str) -> &str {
    arn.rsplit_once(":targetgroup/").map(|(_, n)| n).unwrap_or(arn)
}

/// Lists a listener as the reconciler needs it: its default action's target group and its rules.
pub async fn view<C: Cloud>(cloud: &C, listener: &str) -> Result<ListenerView, CloudError> {
    let (lambda_tg, rules) = tokio::join!(cloud.default_target_group(listener), cloud.listener_rules(listener));
    let lambda_tg = lambda_tg?.ok_or_else(|| {
        CloudError::new(
            "DescribeListeners",
            "DefaultActionNotForward",
            format!("listener {listener} has no forward default action: make autostop's Lambda target group its default action"),
        )
    })?;
    Ok(ListenerView { listener: listener.to_string(), lambda_tg, rules: rules? })
}

/// What a reconcile did, per listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub listener: String,
    pub created: usize,
    pub modified: usize,
    pub moved: usize,
    pub deleted: usize,
}

/// Diffs and applies every listener; `dry_run` only plans. Races with other invocations (a rule
/// gone meanwhile, a priority taken) are met by listing again ([`RACE_ATTEMPTS`]).
pub async fn reconcile<C: Cloud>(
    cloud: &C,
    config: &Config,
    views: &mut [ListenerView],
    want: &(dyn Fn(&str) -> Want + Sync),
    dry_run: bool,
) -> Result<Vec<Report>, CloudError> {
    let mut reports = Vec::with_capacity(views.len());
    for view in views.iter_mut() {
        let mut attempt = 0;
        let plan = loop {
            let plan = diff(config, view, want)?;
            if dry_run || plan.is_empty() {
                break plan;
            }
            match apply(cloud, view, &plan).await {
                Ok(()) => break plan,
                Err(e) if raced(&e) && attempt < RACE_ATTEMPTS => {
                    relist(cloud, view, &e).await?;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        reports.push(Report {
            listener: view.listener.clone(),
            created: plan.create.len(),
            modified: plan.modify.len(),
            moved: plan.priorities.len(),
            deleted: plan.delete.len(),
        });
    }
    Ok(reports)
}

/// Lists every configured listener.
pub async fn views<C: Cloud>(cloud: &C, config: &Config) -> Result<Vec<ListenerView>, CloudError> {
    let mut out = Vec::with_capacity(config.listener_arns.len());
    for l in &config.listener_arns {
        out.push(view(cloud, l).await?);
    }
    Ok(out)
}

/// Whether every standing rule of `rule`, and of the rules entangled with it, exists among a
/// listener's rules (in any direction).
pub fn complete(config: &Config, rules: &[ListenerRule], rule: &Rule) -> bool {
    let names = entangled(config, rule);
    config.standing.iter().filter(|c| names.contains(c.owner.as_str())).all(|c| {
        rules.iter().any(|r| r.owner.as_deref() == Some(c.owner.as_str()) && priority::same_hosts(&r.hosts, &c.hosts))
    })
}

/// Whether every standing rule of `rule` exists and forwards to the app, on every listener.
pub async fn routed_everywhere<C: Cloud>(cloud: &C, config: &Config, rule: &Rule) -> Result<bool, CloudError> {
    for listener in &config.listener_arns {
        let rules = cloud.listener_rules(listener).await?;
        let ours = rules.iter().filter(|r| r.owner.as_deref() == Some(rule.name.as_str()));
        if !complete(config, &rules, rule) || ours.clone().any(|r| route_of(r, rule.app_group()) != Route::App) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The Lambda target group as `rule`'s standing rules on a listener name it (the member that is
/// not the app's group), so a switch needs no DescribeListeners.
fn lambda_of(rules: &[ListenerRule], rule: &Rule) -> Option<String> {
    rules
        .iter()
        .filter(|r| r.owner.as_deref() == Some(rule.name.as_str()))
        .flat_map(|r| r.forward.iter())
        .find(|w| w.target_group != rule.app_group())
        .map(|w| w.target_group.clone())
}

/// Makes `rule`'s standing rules forward to `route` on every listener: one ModifyRule per rule
/// that forwards elsewhere; a missing or malformed standing rule is repaired on the way. Rules of
/// other configured rules are left as they are. Returns how many changes were made.
pub async fn switch<C: Cloud>(cloud: &C, config: &Config, rule: &Rule, route: Route) -> Result<usize, CloudError> {
    let mut changed = 0;
    for listener in &config.listener_arns {
        let rules = cloud.listener_rules(listener).await?;
        let mut view = match lambda_of(&rules, rule) {
            Some(lambda_tg) => ListenerView { listener: listener.clone(), lambda_tg, rules },
            None => view(cloud, listener).await?,
        };
        changed += switch_on(cloud, config, &mut view, rule, route).await?;
    }
    Ok(changed)
}

/// [`switch`] on one listed listener.
pub async fn switch_on<C: Cloud>(
    cloud: &C,
    config: &Config,
    view: &mut ListenerView,
    rule: &Rule,
    route: Route,
) -> Result<usize, CloudError> {
    apply_for(cloud, config, view, rule, Want::Route(route)).await
}

/// Creates `rule`'s missing standing rules (the way its existing ones forward, or to the
/// Lambda), and those of every rule whose hosts overlap it, on one listed listener.
pub async fn ensure_on<C: Cloud>(
    cloud: &C,
    config: &Config,
    view: &mut ListenerView,
    rule: &Rule,
) -> Result<usize, CloudError> {
    apply_for(cloud, config, view, rule, Want::Keep).await
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

/// Applies only the part of the listener's plan that concerns `rule` (with `want`) and the rules
/// entangled with it (created if missing, kept as they are): the wake and stop paths must not
/// wait on, or fail for, the drift of unrelated rules (the idle check and sync repair that).
async fn apply_for<C: Cloud>(
    cloud: &C,
    config: &Config,
    view: &mut ListenerView,
    rule: &Rule,
    want: Want,
) -> Result<usize, CloudError> {
    let names = entangled(config, rule);
    let wants = |name: &str| if name == rule.name { want } else { Want::Keep };
    // Taking traffic away needs nothing created: a rule that does not exist sends nothing to the app.
    let creates = want != Want::Route(Route::Lambda);
    let mut attempt = 0;
    loop {
        let plan = diff_only(config, view, &wants, Some(&names))?;
        let mine = Plan {
            modify: plan.modify.into_iter().filter(|m| m.2 == rule.name).collect(),
            delete: plan.delete.into_iter().filter(|d| d.1 == rule.name).collect(),
            priorities: Vec::new(),
            create: if creates { plan.create } else { Vec::new() },
        };
        if mine.is_empty() {
            return Ok(0);
        }
        // Missing rules first: a more specific rule must stand before ours forwards to the app.
        let (creates, rest) =
            (Plan { create: mine.create.clone(), ..Plan::default() }, Plan { create: Vec::new(), ..mine.clone() });
        let applied = async {
            apply(cloud, view, &creates).await?;
            apply(cloud, view, &rest).await
        };
        match applied.await {
            Ok(()) => return Ok(mine.changes()),
            Err(e) if raced(&e) && attempt < RACE_ATTEMPTS => {
                relist(cloud, view, &e).await?;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How often a change that lost a race with another invocation (a rule gone, a priority taken
/// meanwhile) is planned again from a fresh listing.
const RACE_ATTEMPTS: usize = 2;

fn raced(e: &CloudError) -> bool {
    matches!(e.kind, ErrorKind::NotFound | ErrorKind::PriorityInUse)
}

async fn relist<C: Cloud>(cloud: &C, view: &mut ListenerView, e: &CloudError) -> Result<(), CloudError> {
    tracing::info!(listener = %view.listener, code = %e.code, "listener changed under us; listing again");
    view.rules = cloud.listener_rules(&view.listener).await?;
    Ok(())
}
