//! Applying plans: the only code that creates, modifies, moves or deletes listener rules. Races
//! with other invocations (a rule gone meanwhile, a priority taken) are met by listing again.

use std::collections::HashSet;

use crate::cloud::{Cloud, CloudError, ErrorKind, ListenerRule, NewRule, RuleChange, Weighted};
use crate::config::standing::{self as priority, MAX_PRIORITY};
use crate::config::{Config, Rule};

use super::diff::{diff, diff_only, Delete, Modify, Move, Plan};
use super::home::Homes;
use super::listener::{complete, entangled, lambda_of, view, ListenerView};
use super::route::{route_of, Route, Want};

/// Applies a plan to one listener, in an order that never leaves two rules on one priority:
/// modify the matched (hosts, action), delete the extra, move priorities, create the missing.
/// `view.rules` is updated to what the listener holds afterwards.
pub async fn apply<C: Cloud>(cloud: &C, view: &mut ListenerView, plan: &Plan) -> Result<(), CloudError> {
    for Modify { rule_arn: arn, change, owner } in &plan.modify {
        cloud.modify_rule(arn, change).await?;
        let auth = change.auth.as_ref().map(|a| a.as_ref().map_or("none", |a| a.kind()));
        tracing::info!(rule = %owner, listener = %view.listener, rule_arn = %arn, hosts = ?change.hosts, forward = ?change.forward.as_ref().map(|f| describe(f)), auth, "standing rule modified");
        if let Some(r) = view.rules.iter_mut().find(|r| &r.arn == arn) {
            note_change(r, change);
        }
    }
    for Delete { rule_arn: arn, owner } in &plan.delete {
        match cloud.delete_rule(arn).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        tracing::info!(rule = %owner, listener = %view.listener, rule_arn = %arn, "listener rule of ours removed: its rule or host chunk is no longer in the config");
        view.rules.retain(|r| &r.arn != arn);
    }
    move_priorities(cloud, view, &plan.moves).await?;
    for new in &plan.create {
        let arn = create(cloud, view, new).await?;
        let auth = new.auth.as_ref().map(|a| a.kind());
        tracing::info!(rule = %new.owner, listener = %view.listener, priority = new.priority, hosts = ?new.hosts, forward = %describe(&new.forward), auth, rule_arn = %arn, "standing rule created");
    }
    Ok(())
}

/// What a ModifyRule changed, in this view of the listener.
fn note_change(r: &mut ListenerRule, change: &RuleChange) {
    if let Some(h) = &change.hosts {
        r.hosts = h.clone();
    }
    if let Some(f) = &change.forward {
        r.forward = f.clone();
    }
    if let Some(a) = &change.auth {
        r.auth = a.clone();
        r.kept.clear();
    }
}

/// SetRulePriorities in one call when no target priority is held; else first to free
/// priorities, then to the targets. AWS accepts a reorder "as long as there are no priority
/// conflicts in the new order" (ELBv2 API reference, SetRulePriorities); moto rejects any target
/// priority held at the time of the call, so the two-step move works on both.
async fn move_priorities<C: Cloud>(cloud: &C, view: &mut ListenerView, moves: &[Move]) -> Result<(), CloudError> {
    if moves.is_empty() {
        return Ok(());
    }
    let moves: Vec<(String, u32)> = moves.iter().map(|m| (m.rule_arn.clone(), m.priority)).collect();
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
    cloud.set_rule_priorities(&moves).await?;
    for (arn, p) in &moves {
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
        auth: new.auth.clone(),
        kept: Vec::new(),
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

/// What a reconcile did, per listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub listener: String,
    pub created: usize,
    pub modified: usize,
    pub moved: usize,
    pub deleted: usize,
    /// Standing rules that carry actions autostop does not manage, kept as they are.
    pub kept: Vec<Kept>,
}

/// A standing rule's actions that are not autostop's (an operator's `authenticate-oidc`, ...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub rule: String,
    pub hosts: Vec<String>,
    pub actions: Vec<String>,
}

/// Actions in front of our forwards that are an operator's: on rules without `auth` (behind
/// SSO or `auth = "none"`, autostop owns them).
fn kept_on(config: &Config, view: &ListenerView) -> Vec<Kept> {
    let unmanaged = |owner: &str| config.rule(owner).is_some_and(|r| r.access == crate::config::Access::Unmanaged);
    let kept = view.rules.iter().filter(|r| r.owner.as_deref().is_some_and(unmanaged)).filter_map(|r| {
        let actions: Vec<String> = r.auth.iter().map(|a| a.kind().to_string()).chain(r.kept.iter().cloned()).collect();
        (!actions.is_empty()).then(|| Some(Kept { rule: r.owner.clone()?, hosts: r.hosts.clone(), actions }))?
    });
    kept.collect()
}

/// Diffs and applies every listener; `dry_run` only plans. Races with other invocations (a rule
/// gone meanwhile, a priority taken) are met by listing again (`RACE_ATTEMPTS`).
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
        let (c, m, d) = if dry_run { (0, 0, 0) } else { super::dashboard::ensure_on(cloud, config, view).await? };
        reports.push(Report {
            listener: view.listener.clone(),
            created: plan.create.len() + c,
            modified: plan.modify.len() + m,
            moved: plan.moves.len(),
            deleted: plan.delete.len() + d,
            kept: kept_on(config, view),
        });
    }
    Ok(reports)
}

/// The homes of `rule` and of the rules entangled with it: what a change to `rule` reads.
async fn homes_for<C: Cloud>(cloud: &C, config: &Config, rule: &Rule) -> Result<Homes, CloudError> {
    let names = entangled(config, rule);
    Homes::resolve(cloud, config, config.rules.iter().filter(|r| names.contains(r.name.as_str()))).await
}

/// Whether every standing rule of `rule` exists and forwards to the app, on every listener of
/// its load balancer.
pub async fn routed_everywhere<C: Cloud>(cloud: &C, config: &Config, rule: &Rule) -> Result<bool, CloudError> {
    let homes = homes_for(cloud, config, rule).await?;
    for listener in homes.listeners(config, rule)? {
        let rules = cloud.listener_rules(listener).await?;
        let mut ours = rules.iter().filter(|r| r.owner.as_deref() == Some(rule.name.as_str()));
        let here = |r: &str| homes.serves(listener, r);
        if !complete(config, &rules, here, rule) || ours.any(|r| route_of(r, rule.app_group()) != Route::App) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Makes `rule`'s standing rules forward to `route` on every listener of its load balancer: one
/// ModifyRule per rule that forwards elsewhere; a missing or malformed standing rule is repaired
/// on the way. Rules of other configured rules are left as they are. Returns how many changes
/// were made.
pub async fn switch<C: Cloud>(cloud: &C, config: &Config, rule: &Rule, route: Route) -> Result<usize, CloudError> {
    let homes = homes_for(cloud, config, rule).await?;
    let mut changed = 0;
    for listener in homes.listeners(config, rule)? {
        let rules = cloud.listener_rules(listener).await?;
        let homed = Some(homes.on(listener));
        let mut view = match lambda_of(&rules, rule) {
            Some(lambda_tg) => ListenerView { listener: listener.clone(), lambda_tg, rules, homed },
            None => view(cloud, listener, &homes).await?,
        };
        changed += switch_on(cloud, config, &mut view, rule, route).await?;
    }
    Ok(changed)
}

/// Creates `rule`'s missing standing rules (forwarding to the Lambda) on the listeners of its
/// load balancer; lists a listener's default action only where some are missing.
pub async fn ensure<C: Cloud>(cloud: &C, config: &Config, rule: &Rule) -> Result<(), CloudError> {
    let homes = homes_for(cloud, config, rule).await?;
    for listener in homes.listeners(config, rule)? {
        let rules = cloud.listener_rules(listener).await?;
        if complete(config, &rules, |r| homes.serves(listener, r), rule) {
            continue;
        }
        tracing::info!(rule = %rule.name, listener = %listener, "standing rule missing: creating it");
        let mut view = view(cloud, listener, &homes).await?;
        ensure_on(cloud, config, &mut view, rule).await?;
    }
    Ok(())
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
        let mine = diff_only(config, view, &wants, Some(&names))?.only_for(&rule.name, creates);
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
