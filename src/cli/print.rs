//! The CLI's words: each typed report as the terminal shows it. Pure; the reports come from
//! the handler's commands.

use crate::ops::overrides::OverrideReport;
use crate::ops::status::{RuleStatus, StatusReport};
use crate::ops::sync::SyncReport;
use crate::ops::validate::Findings;
use crate::sleep::IdleReport;

fn ago(now: i64, t: Option<i64>) -> String {
    match t {
        Some(t) => human((now - t).max(0)) + " ago",
        None => "-".into(),
    }
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

const HEADER: [&str; 9] = [
    "RULE",
    "PHASE",
    "RESOURCES",
    "LB RULES",
    "LAST ACTIVITY",
    "IDLE FOR / IDLE",
    "WAKES/STOPS",
    "ASLEEP (MONTH)",
    "SAVED",
];

/// One rule's row of the `status` table.
fn row(now: i64, r: &RuleStatus) -> Vec<String> {
    let resources: Vec<String> = r.resources.iter().map(|x| format!("{} {}", x.id, x.state)).collect();
    vec![
        r.rule.clone(),
        if r.observed { r.phase.as_str().to_string() } else { "unknown".into() },
        resources.join(", "),
        r.listener_rules.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        ago(now, r.last_activity),
        format!("{} / {}", r.idle_for_seconds.map(human).unwrap_or_else(|| "-".into()), human(r.idle_seconds as i64)),
        format!("{}/{}", r.wakes, r.stops),
        format!("{:.1}h", r.hours_asleep_this_month),
        r.saved_this_month.map(|s| format!("{s:.2}")).unwrap_or_else(|| "-".into()),
    ]
}

/// The `status` table, and the notes below it.
pub fn status_table(report: &StatusReport) -> String {
    let mut rows: Vec<Vec<String>> = vec![HEADER.iter().map(|h| h.to_string()).collect()];
    rows.extend(report.rules.iter().map(|r| row(report.now, r)));
    let widths: Vec<usize> =
        (0..HEADER.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&notes(report));
    out
}

/// Below the table, per rule: its hosts, who was kept out in the last hour, what its override
/// or schedule says, its last error.
fn notes(report: &StatusReport) -> String {
    let mut out = String::new();
    for r in &report.rules {
        let hosts =
            if r.hosts.is_empty() { "no hosts (a dependency of other rules)".to_string() } else { r.hosts.join(", ") };
        out.push_str(&format!("{}: {hosts}\n", r.rule));
    }
    // Who was kept out: requests answered without a wake (bots, probes, other networks).
    for r in &report.rules {
        let Some(by) = r.refused_last_hour.as_ref().filter(|m| !m.is_empty()) else { continue };
        let parts: Vec<String> = by.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
        out.push_str(&format!("{}: refused in the last hour: {}\n", r.rule, parts.join(", ")));
    }
    // Overrides and schedules: why a rule is kept awake or asleep, and until when.
    for r in &report.rules {
        if let Some(intent) = &r.intent {
            out.push_str(&format!("{}: {intent}\n", r.rule));
        } else if let Some((s, next)) = r.schedule.as_ref().and_then(|s| Some((&s.name, s.next_change_local.as_ref()?)))
        {
            out.push_str(&format!("{}: on demand; schedule `{s}` changes {next}\n", r.rule));
        }
    }
    // Who woke each rule last, and when.
    for r in &report.rules {
        let Some(w) = &r.last_wake else { continue };
        let who = w.woken_by.as_deref().or(w.cause.as_deref()).unwrap_or("unknown");
        out.push_str(&format!(
            "{}: last woken by {who} {}
",
            r.rule,
            ago(report.now, Some(w.at))
        ));
    }
    // A failed stop or start says why, and what to do, below the table.
    for r in &report.rules {
        if let Some(e) = &r.last_error {
            out.push_str(&format!("{}: last error: {e}\n", r.rule));
        }
    }
    out
}

/// One line per rule: its action, what came of it, and why.
pub fn idle_report(report: &IdleReport) -> String {
    let lines = report.rules.iter().map(|r| {
        let action =
            serde_json::to_value(r.action).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        format!("{:<20} {:<20} {:<10} {}\n", r.rule, action, r.outcome, r.reason)
    });
    lines.collect()
}

pub fn sync(report: &SyncReport) -> String {
    let mut out = String::new();
    for l in &report.listeners {
        out.push_str(&format!(
            "{}: {} created, {} modified, {} moved, {} deleted\n",
            l.listener, l.created, l.modified, l.moved, l.deleted
        ));
        for k in &l.kept {
            out.push_str(&format!(
                "  kept {} on rule {} ({}): autostop changes only the forward action\n",
                k.actions.join(", "),
                k.rule,
                k.hosts.join(", ")
            ));
        }
    }
    out
}

pub fn findings(found: &Findings) -> String {
    let mut out = String::new();
    for line in &found.budget {
        out.push_str(&format!("budget: {line}\n"));
    }
    for a in &found.advice {
        out.push_str(&format!("advice: {a}\n"));
    }
    for p in &found.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    match found.problems.len() {
        0 => out.push_str("config ok, and everything it names exists in AWS, is wired for autostop and fits\n"),
        n => out.push_str(&format!("{n} problem(s)\n")),
    }
    out
}

pub fn override_set(report: &OverrideReport) -> String {
    match &report.shown {
        Some(o) => format!("{}: {} until {} ({})", report.rule, o.mode, o.until_local, report.result),
        None => format!("{}: override cleared; its schedule and the idle check decide again", report.rule),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::status::ScheduleNow;
    use crate::state::Phase;

    fn rule(name: &str, phase: Phase, hosts: &[&str]) -> RuleStatus {
        RuleStatus {
            rule: name.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            phase,
            observed: true,
            message: String::new(),
            resources: vec![],
            listener_rules: None,
            last_activity: None,
            idle_for_seconds: None,
            idle_seconds: 300,
            last_error: None,
            wakes: 0,
            stops: 0,
            month: "2026-11".into(),
            hours_asleep_this_month: 0.0,
            hourly_cost: None,
            saved_this_month: None,
            refused_last_hour: None,
            intent: None,
            schedule: None,
            override_now: None,
            last_wake: None,
        }
    }

    #[test]
    fn the_status_table_shows_a_failed_stop_and_what_to_do() {
        let mut api = rule("api", Phase::Ready, &["api.x.com"]);
        api.wakes = 1;
        api.last_error =
            Some("could not stop: i-1: UnauthorizedOperation (StopInstances). Then run `autostop stop api`".into());
        api.refused_last_hour = Some([("bot".to_string(), 12), ("path".to_string(), 3)].into());
        api.intent = Some("kept awake by alice until Sat 14:00 CET".into());
        api.last_wake = Some(crate::ops::status::LastWake {
            at: 40,
            cause: Some("browser".into()),
            woken_by: Some("ana@example.com".into()),
        });
        let mut web = rule("web", Phase::Stopped, &["web.x.com"]);
        web.stops = 1;
        web.schedule = Some(ScheduleNow {
            name: "office-hours".into(),
            timezone: "Europe/Berlin".into(),
            mode: None,
            next_change: Some(200),
            next_change_local: Some("Mon 08:00 CET".into()),
        });
        let db = rule("db", Phase::Stopped, &[]);
        let table = status_table(&StatusReport { now: 100, rules: vec![api, web, db], problems: vec![] });
        assert!(table.contains("api: last error: could not stop: i-1: UnauthorizedOperation"), "{table}");
        assert!(!table.contains("web: last error"), "{table}");
        assert!(table.contains("api: last woken by ana@example.com 60s ago"), "{table}");
        assert!(table.contains("api: refused in the last hour: bot 12, path 3"), "{table}");
        assert!(!table.contains("web: refused"), "{table}");
        assert!(table.contains("api: kept awake by alice until Sat 14:00 CET"), "{table}");
        assert!(table.contains("web: on demand; schedule `office-hours` changes Mon 08:00 CET"), "{table}");
        assert!(table.contains("db: no hosts (a dependency of other rules)"), "{table}");
    }
}
