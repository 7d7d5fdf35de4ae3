//! Working-hours schedules (pure): windows of local time in an IANA time zone.
//!
//! A window is `DAYS [HH:MM-HH:MM]`: `mon-fri 08:00-19:00`, `sat-sun` (whole days),
//! `mon,wed 22:00-06:00` (crossing midnight: it starts on the named day and ends the next). Days
//! are `mon`..`sun`, ranges (`fri-mon` wraps) and comma lists, or `daily`.
//!
//! Windows are wall-clock times, so they follow DST: `08:00` is 08:00 local on both sides of a
//! change. A time that does not exist on a spring-forward day is taken as the same time after
//! the gap, and one that occurs twice in autumn as its first occurrence (jiff's "compatible"
//! disambiguation, as RFC 5545 does). The tz database is compiled into the binary.
//!
//! `awake` windows keep a rule awake; `asleep` windows force it to sleep. Where both cover a
//! moment, `asleep` wins.

use std::time::Duration;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// What a schedule says about a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Awake,
    Asleep,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Awake => "awake",
            Mode::Asleep => "asleep",
        }
    }
}

/// One window: the days it starts on (Monday first) and its local start and end, in minutes
/// after midnight (`end` 1440 is the next midnight; `end <= start` ends the next day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    days: [bool; 7],
    start: u16,
    end: u16,
}

const FORM: &str = "expected DAYS [HH:MM-HH:MM], e.g. \"mon-fri 08:00-19:00\", \"sat-sun\" or \"daily 22:00-06:00\"";
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Window {
    pub fn parse(text: &str) -> Result<Window, String> {
        let bad = |why: &str| format!("`{text}`: {why}; {FORM}");
        let mut parts = text.split_whitespace();
        let days = parse_days(parts.next().ok_or_else(|| bad("empty"))?).map_err(|e| bad(&e))?;
        let (start, end) = match parts.next() {
            None => (0, 1440),
            Some(times) => {
                let (a, b) = times.split_once('-').ok_or_else(|| bad("times are HH:MM-HH:MM"))?;
                let (start, end) = (parse_time(a).map_err(|e| bad(&e))?, parse_time(b).map_err(|e| bad(&e))?);
                if start == end {
                    return Err(bad("a window that starts when it ends is empty; leave the times out for whole days"));
                }
                (start, end)
            }
        };
        if parts.next().is_some() {
            return Err(bad("more than days and one time range"));
        }
        if start == 1440 {
            return Err(bad("a window starts at 23:59 at the latest"));
        }
        Ok(Window { days, start, end })
    }

    /// Local (start, end) of this window for each day from `first` on, `days` days long.
    fn occurrences(&self, first: Date, days: i64) -> Vec<(DateTime, DateTime)> {
        let mut out = Vec::new();
        let mut date = first;
        for _ in 0..days {
            if self.days[date.weekday().to_monday_zero_offset() as usize] {
                let next = date.tomorrow().unwrap_or(date);
                let end_day = if self.end <= self.start || self.end == 1440 { next } else { date };
                out.push((at(date, self.start), at(end_day, self.end % 1440)));
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        out
    }
}

fn at(date: Date, minutes: u16) -> DateTime {
    date.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0)
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    let day = |d: &str| {
        DAYS.iter().position(|n| n.eq_ignore_ascii_case(d)).ok_or_else(|| format!("`{d}` is not a day (mon..sun)"))
    };
    for item in text.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut i = a;
                loop {
                    days[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => days[day(item)?] = true,
        }
    }
    Ok(days)
}

/// `HH:MM` as minutes after midnight; `24:00` is the next midnight.
fn parse_time(text: &str) -> Result<u16, String> {
    let bad = || format!("`{text}` is not a time HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) => Ok(1440),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// A named schedule in one time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// The IANA name as configured (`Europe/Berlin`).
    pub timezone: String,
    tz: TimeZone,
    awake: Vec<Window>,
    asleep: Vec<Window>,
    /// How early an `awake` window's resources start when the rule has no wake history.
    pub prewarm: Duration,
}

/// `prewarm` when the schedule does not set it.
pub const DEFAULT_PREWARM: Duration = Duration::from_secs(600);
/// Added to the expected warm-up: covers the idle check's interval (2 minutes by default) and
/// a slower start than usual.
pub const PREWARM_MARGIN: Duration = Duration::from_secs(300);

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        (&self.name, &self.timezone, &self.awake, &self.asleep, self.prewarm)
            == (&other.name, &other.timezone, &other.awake, &other.asleep, other.prewarm)
    }
}

/// What a schedule says now, and when that changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// `None`: no window covers this moment (on-demand as usual).
    pub mode: Option<Mode>,
    /// When `mode` next changes (epoch seconds), if within the coming week.
    pub next_change: Option<i64>,
    /// When the next `awake` window begins after now (epoch seconds), if one does within a week.
    pub next_awake: Option<i64>,
}

/// How far ahead the schedule is read: every weekly window occurs in it.
const HORIZON_DAYS: i64 = 9;

impl Schedule {
    /// `timezone` is an IANA name; errors name what is wrong, for the config to prefix the key.
    pub fn new(name: &str, timezone: &str, awake: Vec<Window>, asleep: Vec<Window>) -> Result<Schedule, String> {
        let tz = TimeZone::get(timezone)
            .map_err(|_| format!("`{timezone}` is not an IANA time zone name, e.g. \"Europe/Berlin\" or \"UTC\""))?;
        Ok(Schedule {
            name: name.to_string(),
            timezone: timezone.to_string(),
            tz,
            awake,
            asleep,
            prewarm: DEFAULT_PREWARM,
        })
    }

    pub fn with_prewarm(mut self, prewarm: Duration) -> Schedule {
        self.prewarm = prewarm;
        self
    }

    /// How long before an `awake` window its resources start: the median of `warmups` (the
    /// rule's recent wake-to-ready seconds) or `prewarm` without history, plus [`PREWARM_MARGIN`].
    pub fn lead(&self, warmups: &[u64]) -> Duration {
        let expected = match warmups.len() {
            0 => self.prewarm,
            n => {
                let mut sorted = warmups.to_vec();
                sorted.sort_unstable();
                Duration::from_secs(sorted[n / 2])
            }
        };
        expected + PREWARM_MARGIN
    }

    /// The schedule at `now` (epoch seconds).
    pub fn at(&self, now: i64) -> Now {
        let spans = self.spans(now);
        let mode = mode_in(&spans, now);
        let mut bounds: Vec<i64> = spans.iter().flat_map(|s| [s.0, s.1]).filter(|b| *b > now).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let next_change = bounds.iter().copied().find(|b| mode_in(&spans, *b) != mode);
        let next_awake = bounds
            .iter()
            .copied()
            .find(|b| mode_in(&spans, *b) == Some(Mode::Awake) && mode_in(&spans, *b - 1) != Some(Mode::Awake));
        Now { mode, next_change, next_awake }
    }

    /// `epoch` as local time, `Mon 08:00 CET`, for pages and status.
    pub fn local(&self, epoch: i64) -> String {
        match Timestamp::from_second(epoch) {
            Ok(ts) => ts.to_zoned(self.tz.clone()).strftime("%a %H:%M %Z").to_string(),
            Err(_) => epoch.to_string(),
        }
    }

    /// Every window occurrence from the day before `now` on, as epoch-second spans.
    fn spans(&self, now: i64) -> Vec<(i64, i64, Mode)> {
        let Ok(ts) = Timestamp::from_second(now) else { return Vec::new() };
        let today = ts.to_zoned(self.tz.clone()).date();
        let first = today.yesterday().unwrap_or(today);
        let mut spans = Vec::new();
        for (windows, mode) in [(&self.awake, Mode::Awake), (&self.asleep, Mode::Asleep)] {
            for w in windows {
                for (start, end) in w.occurrences(first, HORIZON_DAYS) {
                    if let (Some(s), Some(e)) = (self.instant(start), self.instant(end)) {
                        spans.push((s, e, mode));
                    }
                }
            }
        }
        spans
    }

    fn instant(&self, dt: DateTime) -> Option<i64> {
        self.tz.to_ambiguous_timestamp(dt).compatible().ok().map(|t| t.as_second())
    }
}

/// The moment an override ends, from the `until` an operator gave: `HH:MM` (its next
/// occurrence), `DAY HH:MM` (the next such weekday), or `YYYY-MM-DD HH:MM`; local time in `tz`
/// (an IANA name), after `now`.
pub fn resolve_until(text: &str, tz: &str, now: i64) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a time like \"18:30\", \"mon 08:00\" or \"2026-12-01 08:00\" ({tz})");
    let zone = TimeZone::get(tz).map_err(|_| bad())?;
    let today = Timestamp::from_second(now).map_err(|_| bad())?.to_zoned(zone.clone()).date();
    let words: Vec<&str> = text.split_whitespace().collect();
    let (day, time) = match words.as_slice() {
        [time] => (None, *time),
        [day, time] => (Some(*day), *time),
        _ => return Err(bad()),
    };
    let minutes = parse_time(time).map_err(|_| bad())?.min(1439);
    let instant = |date: Date| zone.to_ambiguous_timestamp(at(date, minutes)).compatible().ok().map(|t| t.as_second());
    let candidates: Vec<Date> = match day {
        Some(d) if d.contains('-') => vec![d.parse::<Date>().map_err(|_| bad())?],
        Some(d) => {
            let want = DAYS.iter().position(|n| n.eq_ignore_ascii_case(d)).ok_or_else(bad)?;
            (0..8)
                .filter_map(|k| today.checked_add(jiff::Span::new().days(k)).ok())
                .filter(|date| date.weekday().to_monday_zero_offset() as usize == want)
                .collect()
        }
        None => (0..2).filter_map(|k| today.checked_add(jiff::Span::new().days(k)).ok()).collect(),
    };
    candidates
        .into_iter()
        .filter_map(instant)
        .find(|t| *t > now)
        .ok_or_else(|| format!("`{text}` ({tz}) is not in the future"))
}

fn mode_in(spans: &[(i64, i64, Mode)], t: i64) -> Option<Mode> {
    let covers = |m: Mode| spans.iter().any(|(s, e, mode)| *mode == m && *s <= t && t < *e);
    if covers(Mode::Asleep) {
        Some(Mode::Asleep)
    } else if covers(Mode::Awake) {
        Some(Mode::Awake)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(tz: &str, awake: &[&str], asleep: &[&str]) -> Schedule {
        let w = |l: &[&str]| l.iter().map(|t| Window::parse(t).unwrap()).collect();
        Schedule::new("s", tz, w(awake), w(asleep)).unwrap()
    }

    /// Epoch seconds of a local time in `tz`.
    fn local(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        let dt = jiff::civil::date(y, mo, d).at(h, mi, 0, 0);
        TimeZone::get(tz).unwrap().to_ambiguous_timestamp(dt).compatible().unwrap().as_second()
    }

    #[test]
    fn windows_parse_or_name_the_expected_form() {
        let w = Window::parse("mon-fri 08:00-19:00").unwrap();
        assert_eq!((w.days, w.start, w.end), ([true, true, true, true, true, false, false], 480, 1140));
        assert_eq!(Window::parse("sat-sun").unwrap().days, [false, false, false, false, false, true, true]);
        assert_eq!(Window::parse("fri-mon").unwrap().days, [true, false, false, false, true, true, true]);
        assert_eq!(Window::parse("mon,wed 22:00-06:00").unwrap().days, [true, false, true, false, false, false, false]);
        assert_eq!(Window::parse("daily 00:00-24:00").unwrap().end, 1440);
        for bad in [
            "",
            "mon-fry",
            "mon 8-19",
            "mon 08:00",
            "mon 25:00-26:00",
            "mon 08:00-08:00",
            "mon 08:60-09:00",
            "mon 08:00-09:00 x",
            "mon 24:00-01:00",
        ] {
            let e = Window::parse(bad).unwrap_err();
            assert!(e.contains("expected DAYS [HH:MM-HH:MM]"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_unknown_time_zone_is_refused() {
        let e = Schedule::new("s", "Europe/Berlinn", vec![], vec![]).unwrap_err();
        assert!(e.contains("IANA"), "{e}");
    }

    #[test]
    fn office_hours_in_berlin() {
        let s = schedule("Europe/Berlin", &["mon-fri 08:00-19:00"], &["sat-sun", "mon-fri 22:00-06:00"]);
        let tz = "Europe/Berlin";
        // Tuesday 2026-11-24.
        let now = s.at(local(tz, 2026, 11, 24, 12, 0));
        assert_eq!(now.mode, Some(Mode::Awake));
        assert_eq!(now.next_change, Some(local(tz, 2026, 11, 24, 19, 0)));
        assert_eq!(s.at(local(tz, 2026, 11, 24, 20, 0)).mode, None);
        let night = s.at(local(tz, 2026, 11, 24, 23, 0));
        assert_eq!(night.mode, Some(Mode::Asleep));
        assert_eq!(night.next_change, Some(local(tz, 2026, 11, 25, 6, 0)), "crosses midnight");
        assert_eq!(night.next_awake, Some(local(tz, 2026, 11, 25, 8, 0)));
        // Friday night runs into the weekend, which ends at Monday 00:00 (the night windows
        // start on weekdays only, so Sunday night is not one).
        let friday = s.at(local(tz, 2026, 11, 27, 23, 0));
        assert_eq!(friday.mode, Some(Mode::Asleep));
        assert_eq!(friday.next_change, Some(local(tz, 2026, 11, 30, 0, 0)));
        assert_eq!(friday.next_awake, Some(local(tz, 2026, 11, 30, 8, 0)));
        assert_eq!(s.local(local(tz, 2026, 11, 30, 8, 0)), "Mon 08:00 CET");
    }

    /// 08:00 stays 08:00 local across both changes: the UTC instant moves by an hour.
    #[test]
    fn windows_follow_dst_in_berlin_and_new_york() {
        // (zone, [(Friday before, Sunday of the change, Monday after)] for spring and autumn)
        type Day = (i16, i8, i8);
        type Change = (Day, Day, Day);
        let cases: [(&str, [Change; 2]); 2] = [
            (
                "Europe/Berlin",
                [((2026, 3, 27), (2026, 3, 29), (2026, 3, 30)), ((2026, 10, 23), (2026, 10, 25), (2026, 10, 26))],
            ),
            (
                "America/New_York",
                [((2026, 3, 6), (2026, 3, 8), (2026, 3, 9)), ((2026, 10, 30), (2026, 11, 1), (2026, 11, 2))],
            ),
        ];
        for (tz, changes) in cases {
            let s = schedule(tz, &["mon-fri 08:00-19:00"], &[]);
            for (i, (fri, sun, mon)) in changes.into_iter().enumerate() {
                let monday = local(tz, mon.0, mon.1, mon.2, 8, 0);
                let friday = local(tz, fri.0, fri.1, fri.2, 8, 0);
                let sunday_evening = local(tz, sun.0, sun.1, sun.2, 20, 0);
                assert_eq!(s.at(sunday_evening).next_awake, Some(monday), "{tz}");
                // Spring loses an hour between the two 08:00s, autumn gains one.
                let expected = if i == 0 { 3 * 86400 - 3600 } else { 3 * 86400 + 3600 };
                assert_eq!(monday - friday, expected, "{tz} change {i}");
                assert_eq!(s.at(monday).mode, Some(Mode::Awake));
                assert_eq!(s.at(monday - 1).mode, None);
                assert_eq!(s.at(friday + 11 * 3600).next_awake, Some(monday), "{tz}: over the weekend and the change");
                assert_eq!(s.local(monday).split(' ').nth(1), Some("08:00"));
            }
        }
    }

    /// A window inside the spring-forward gap starts after the gap; in the autumn fold, at
    /// the first occurrence.
    #[test]
    fn times_in_the_gap_and_the_fold() {
        let tz = "Europe/Berlin";
        let s = schedule(tz, &["sun 02:30-04:00"], &[]);
        // 2026-03-29 02:30 does not exist in Berlin: the window starts at 03:30 CEST (01:30 UTC).
        let sat = local(tz, 2026, 3, 28, 12, 0);
        assert_eq!(s.at(sat).next_awake, Some(local(tz, 2026, 3, 29, 3, 30)));
        assert_eq!(s.local(s.at(sat).next_awake.unwrap()), "Sun 03:30 CEST");
        // 2026-10-25 02:30 happens twice: the window starts at the first (CEST).
        let sat = local(tz, 2026, 10, 24, 12, 0);
        assert_eq!(s.local(s.at(sat).next_awake.unwrap()), "Sun 02:30 CEST");
    }

    #[test]
    fn override_ends_are_the_next_such_local_time() {
        let tz = "Europe/Berlin";
        let now = local(tz, 2026, 11, 28, 12, 0); // Saturday
        assert_eq!(resolve_until("18:30", tz, now), Ok(local(tz, 2026, 11, 28, 18, 30)));
        assert_eq!(resolve_until("09:00", tz, now), Ok(local(tz, 2026, 11, 29, 9, 0)), "tomorrow");
        assert_eq!(resolve_until("mon 08:00", tz, now), Ok(local(tz, 2026, 11, 30, 8, 0)));
        assert_eq!(resolve_until("sat 08:00", tz, now), Ok(local(tz, 2026, 12, 5, 8, 0)), "next week's");
        assert_eq!(resolve_until("2026-12-01 08:00", tz, now), Ok(local(tz, 2026, 12, 1, 8, 0)));
        assert!(resolve_until("2026-11-01 08:00", tz, now).unwrap_err().contains("not in the future"));
        for bad in ["soon", "someday 08:00", "25:00", "mon 8", "2026-13-01 08:00"] {
            assert!(resolve_until(bad, tz, now).unwrap_err().contains("is not a time like"), "{bad}");
        }
    }

    #[test]
    fn asleep_wins_where_both_cover() {
        let s = schedule("UTC", &["daily"], &["sat-sun"]);
        let saturday_noon = local("UTC", 2026, 11, 28, 12, 0);
        let now = s.at(saturday_noon);
        assert_eq!(now.mode, Some(Mode::Asleep));
        assert_eq!(now.next_change, Some(local("UTC", 2026, 11, 30, 0, 0)));
        assert_eq!(now.next_awake, Some(local("UTC", 2026, 11, 30, 0, 0)));
    }
}
