//! The fleet page's content, from the config and the state table's items alone (pure): one
//! row per rule and the last 30 days drawn as inline SVG, readable without JavaScript.

use std::collections::HashMap;

use askama::Template;

use crate::config::{Config, Rule};
use crate::state::fleet::Activity;
use crate::state::history::{self, Day};
use crate::state::{intent, savings, Phase, RuleState};

/// One rule's row.
pub struct Row {
    pub name: String,
    pub hosts: String,
    pub phase: &'static str,
    pub awake: bool,
    /// "as of 12 s ago": when what the row shows was recorded or observed.
    pub fresh: String,
    pub last_activity: String,
    pub stops: String,
    pub intent: String,
    pub last_wake: String,
    pub median_ready: String,
    pub asleep_month: String,
    pub saved: String,
    pub chart: String,
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct FleetPage<'a> {
    host: &'a str,
    user: &'a str,
    token: &'a str,
    rows: Vec<Row>,
    chart: String,
    activity_fresh: String,
    notice: Option<&'a str>,
}

/// What the page is drawn from.
pub struct Fleet<'a> {
    pub config: &'a Config,
    pub states: &'a [RuleState],
    pub activity: &'a HashMap<String, Activity>,
    pub activity_at_ms: Option<i64>,
    pub now: i64,
}

pub fn render(f: &Fleet, host: &str, user: &str, token: &str, notice: Option<&str>) -> String {
    let by_name: HashMap<&str, &RuleState> = f.states.iter().map(|s| (s.rule.as_str(), s)).collect();
    let items: Vec<Option<&RuleState>> = f.config.rules.iter().map(|r| by_name.get(r.name.as_str()).copied()).collect();
    let per_rule: Vec<Vec<Day>> = items.iter().map(|s| history::last_days(*s, f.now)).collect();
    let rows: Vec<Row> =
        f.config.rules.iter().zip(&items).zip(&per_rule).map(|((r, s), days)| row(f, r, *s, days)).collect();
    let activity_fresh = match f.activity_at_ms {
        Some(at) => format!("activity as the idle check saw it {}", ago(f.now, at / 1000)),
        None => "no idle check has run yet".into(),
    };
    let page = FleetPage { host, user, token, rows, chart: chart(&sum(&per_rule), 720, 160), activity_fresh, notice };
    page.render().unwrap_or_else(|e| format!("template error: {e}"))
}

/// One rule's row, from its item (if any) and its last 30 days.
fn row(f: &Fleet, rule: &Rule, s: Option<&RuleState>, days: &[Day]) -> Row {
    let phase = s.map(|s| s.phase).unwrap_or(Phase::Stopped);
    let awake = matches!(phase, Phase::Starting | Phase::WaitingForHealth | Phase::Routing | Phase::Ready);
    let activity = f.activity.get(&rule.name);
    let asleep = s.map(|s| savings::asleep_this_month(s, f.now)).unwrap_or(0);
    Row {
        name: rule.name.clone(),
        hosts: if rule.hosts.is_empty() { "(a dependency)".into() } else { rule.hosts.join(", ") },
        phase: phase.as_str(),
        awake,
        fresh: match s.and_then(|s| s.stopped_by.as_deref()).filter(|_| !awake) {
            Some(by) => format!("put to sleep by {by}; {}", fresh(s, f.now)),
            None => fresh(s, f.now),
        },
        last_activity: activity.and_then(|a| a.last_activity).map_or("-".into(), |t| ago(f.now, t)),
        stops: stops(activity, awake, f.now),
        intent: intent::intent(rule, s, f.now).why().unwrap_or("on demand").to_string(),
        last_wake: last_wake(s, f.now),
        median_ready: median(s.map(|s| s.warmups.as_slice()).unwrap_or_default()),
        asleep_month: format!("{:.1} h", asleep as f64 / 3600.0),
        saved: rule.hourly_cost.map_or("-".into(), |c| format!("{:.2}", savings::saved(c, asleep))),
        chart: chart(days, 150, 28),
    }
}

fn fresh(s: Option<&RuleState>, now: i64) -> String {
    let seen = s.and_then(|s| s.observed_at_ms).map(|ms| ms / 1000);
    let recorded = s.and_then(|s| [s.stopped_at, s.ready_at, s.wake_started_at].into_iter().flatten().max());
    match (seen, recorded) {
        (Some(t), _) => format!("observed {}", ago(now, t)),
        (None, Some(t)) => format!("recorded {}", ago(now, t)),
        (None, None) => "never woken".into(),
    }
}

fn stops(activity: Option<&Activity>, awake: bool, now: i64) -> String {
    match (awake, activity) {
        (false, _) => "-".into(),
        (true, Some(Activity { last_activity: Some(t), idle_seconds })) => {
            let at = t + *idle_seconds as i64;
            if at <= now {
                "at the next idle check".into()
            } else {
                format!("in about {}", human(at - now))
            }
        }
        (true, _) => "once idle".into(),
    }
}

fn last_wake(s: Option<&RuleState>, now: i64) -> String {
    let Some(s) = s else { return "-".into() };
    let Some(at) = s.wake_started_at.or(s.last_wake_at) else { return "-".into() };
    let who = s.woken_by.as_deref().or(s.wake_cause.as_deref()).unwrap_or("unknown");
    let took = match (s.phase, s.warmups.last()) {
        (Phase::Ready | Phase::Stopping | Phase::Stopped, Some(w)) => format!(", ready in {}", human(*w as i64)),
        _ => String::new(),
    };
    format!("{who}, {}{took}", ago(now, at))
}

fn median(warmups: &[u64]) -> String {
    if warmups.is_empty() {
        return "-".into();
    }
    let mut v = warmups.to_vec();
    v.sort_unstable();
    human(v[v.len() / 2] as i64)
}

fn ago(now: i64, t: i64) -> String {
    format!("{} ago", human((now - t).max(0)))
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// The days of every rule added up.
fn sum(per_rule: &[Vec<Day>]) -> Vec<Day> {
    let Some(first) = per_rule.first() else { return Vec::new() };
    first
        .iter()
        .enumerate()
        .map(|(i, d)| Day {
            day: d.day,
            awake: per_rule.iter().map(|r| r[i].awake).sum(),
            asleep: per_rule.iter().map(|r| r[i].asleep).sum(),
        })
        .collect()
}

/// Stacked bars, one per day: hours awake (bottom) and asleep (top), each with a `<title>`.
fn chart(days: &[Day], width: u32, height: u32) -> String {
    let most = days.iter().map(|d| d.awake + d.asleep).max().unwrap_or(0).max(1) as f64;
    let step = width as f64 / days.len().max(1) as f64;
    let mut bars = String::new();
    for (i, d) in days.iter().enumerate() {
        let x = i as f64 * step + step * 0.1;
        let w = step * 0.8;
        let (ha, hs) = (d.awake as f64 / most * height as f64, d.asleep as f64 / most * height as f64);
        let title = format!(
            "{}: {:.1} h awake, {:.1} h asleep",
            history::label(d.day),
            d.awake as f64 / 3600.0,
            d.asleep as f64 / 3600.0
        );
        bars.push_str(&format!(
            "<g><title>{title}</title><rect class=\"awake\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{ha:.1}\"/><rect class=\"asleep\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{hs:.1}\"/></g>",
            height as f64 - ha,
            height as f64 - ha - hs,
        ));
    }
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"hours awake and asleep per day, the last 30 days\">{bars}</svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_pair_per_day_with_its_hours() {
        let days: Vec<Day> =
            (0..30).map(|i| Day { day: 20_400 + i, awake: 3600 * (i as u64 % 3), asleep: 7200 }).collect();
        let svg = chart(&days, 300, 100);
        assert_eq!(svg.matches("class=\"awake\"").count(), 30);
        assert!(svg.contains("<title>2025-11-08: 0.0 h awake, 2.0 h asleep</title>"), "{svg}");
        assert_eq!(median(&[30, 10, 20]), "20 s");
    }
}
