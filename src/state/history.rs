//! Hours awake and asleep per UTC day, the last [`DAYS_KEPT`] days, for the fleet page's chart.
//! Completed spans are added to the item when they end (a wake ends a sleep, a stop ends an
//! awake spell), split at midnight; the span in progress is added on read. Entries are
//! `day:awake:asleep` (day: days since the epoch; seconds), oldest first.

use super::{Phase, RuleState};

pub const DAYS_KEPT: usize = 30;
const DAY: i64 = 86_400;

/// One UTC day: seconds awake and asleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Day {
    /// Days since 1970-01-01.
    pub day: i64,
    pub awake: u64,
    pub asleep: u64,
}

fn parse(entry: &str) -> Option<Day> {
    let mut parts = entry.split(':').map(str::parse::<i64>);
    let (day, awake, asleep) = (parts.next()?.ok()?, parts.next()?.ok()?, parts.next()?.ok()?);
    Some(Day { day, awake: awake.max(0) as u64, asleep: asleep.max(0) as u64 })
}

fn days_of(entries: &[String]) -> Vec<Day> {
    entries.iter().filter_map(|e| parse(e)).collect()
}

/// Adds `[from, to)` as awake or asleep, split at UTC midnights; keeps the last
/// [`DAYS_KEPT`] days before `to`.
pub fn add_span(s: &mut RuleState, from: i64, to: i64, awake: bool) {
    let mut days = days_of(&s.days);
    add_to(&mut days, from, to, awake);
    let newest = to.div_euclid(DAY);
    days.retain(|d| d.day > newest - DAYS_KEPT as i64);
    s.days = days.iter().map(|d| format!("{}:{}:{}", d.day, d.awake, d.asleep)).collect();
}

fn add_to(days: &mut Vec<Day>, from: i64, to: i64, awake: bool) {
    let mut t = from.max(to - DAYS_KEPT as i64 * DAY);
    while t < to {
        let day = t.div_euclid(DAY);
        let end = ((day + 1) * DAY).min(to);
        let at = match days.iter().position(|d| d.day == day) {
            Some(i) => i,
            None => {
                days.push(Day { day, ..Day::default() });
                days.sort_by_key(|d| d.day);
                days.iter().position(|d| d.day == day).expect("just added")
            }
        };
        let secs = (end - t) as u64;
        if awake {
            days[at].awake += secs;
        } else {
            days[at].asleep += secs;
        }
        t = end;
    }
}

/// The last [`DAYS_KEPT`] days up to `now`, oldest first, every day present (zero when the
/// rule did not exist or nothing was recorded), the span in progress included.
pub fn last_days(s: Option<&RuleState>, now: i64) -> Vec<Day> {
    let mut days = s.map(|s| days_of(&s.days)).unwrap_or_default();
    if let Some(s) = s {
        match (s.phase, s.stopped_at, s.wake_started_at) {
            (Phase::Stopped, Some(since), _) => add_to(&mut days, since, now, false),
            (Phase::Stopped, None, _) => {}
            (_, _, Some(since)) => add_to(&mut days, since, now, true),
            _ => {}
        }
    }
    let today = now.div_euclid(DAY);
    (today - DAYS_KEPT as i64 + 1..=today)
        .map(|day| days.iter().find(|d| d.day == day).copied().unwrap_or(Day { day, ..Day::default() }))
        .collect()
}

/// `2026-12-07` for a day number.
pub fn label(day: i64) -> String {
    let (y, m, d) = super::savings::civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT: i64 = 1_796_601_600; // 2026-12-07T00:00:00Z

    #[test]
    fn spans_split_at_midnight_and_only_thirty_days_are_kept() {
        let mut s = RuleState::new("api");
        add_span(&mut s, MIDNIGHT - 3600, MIDNIGHT + 7200, true);
        assert_eq!(s.days, vec![format!("{}:3600:0", MIDNIGHT / DAY - 1), format!("{}:7200:0", MIDNIGHT / DAY)]);
        add_span(&mut s, MIDNIGHT + 7200, MIDNIGHT + 10_800, false);
        assert_eq!(s.days[1], format!("{}:7200:3600", MIDNIGHT / DAY));
        add_span(&mut s, MIDNIGHT, MIDNIGHT + 40 * DAY + 60, false);
        assert_eq!(s.days.len(), DAYS_KEPT, "bounded");
        assert_eq!(label(MIDNIGHT / DAY), "2026-12-07");
    }

    #[test]
    fn the_last_days_include_the_span_in_progress_and_every_day() {
        let s = RuleState { phase: Phase::Ready, wake_started_at: Some(MIDNIGHT + 3600), ..RuleState::new("api") };
        let days = last_days(Some(&s), MIDNIGHT + 5400);
        assert_eq!(days.len(), DAYS_KEPT);
        assert_eq!(days.last().unwrap().awake, 1800);
        assert!(days[..DAYS_KEPT - 1].iter().all(|d| d.awake == 0 && d.asleep == 0));
    }
}
