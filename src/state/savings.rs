//! Savings: hours asleep this month (UTC calendar month) and, with `hourly_cost`, money saved.
//!
//! Completed sleeps accumulate in the state item (`asleep_month`, `asleep_seconds`) when a wake
//! ends them; a sleep in progress is added on read. A sleep that began last month counts from the
//! first second of this one.

use super::{Phase, RuleState};

/// `(year, month)` of an epoch second, UTC.
pub fn year_month(epoch: i64) -> (i64, u32) {
    let (y, m, _) = civil(epoch.div_euclid(86_400));
    (y, m)
}

/// `(year, month, day)` of a day number (days since 1970-01-01; Howard Hinnant's
/// civil-from-days).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// Epoch second at which the UTC month containing `epoch` began.
pub fn month_start(epoch: i64) -> i64 {
    let (y, m) = year_month(epoch);
    // days_from_civil for (y, m, 1)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

pub fn month_label(epoch: i64) -> String {
    let (y, m) = year_month(epoch);
    format!("{y:04}-{m:02}")
}

/// Adds the sleep that ends at `now` (it began at `s.stopped_at`) to this month's total, and
/// prices the month at `hourly_cost`.
pub fn close_sleep(s: &mut RuleState, now: i64, hourly_cost: Option<f64>) {
    let label = month_label(now);
    if s.asleep_month.as_deref() != Some(label.as_str()) {
        s.asleep_month = Some(label);
        s.asleep_seconds = 0;
    }
    if let Some(stopped) = s.stopped_at {
        s.asleep_seconds += (now - stopped.max(month_start(now))).max(0) as u64;
    }
    s.saved_this_month = hourly_cost.map(|c| saved(c, s.asleep_seconds));
}

/// Money saved by `seconds` asleep at `hourly_cost`, to the cent.
pub fn saved(hourly_cost: f64, seconds: u64) -> f64 {
    (hourly_cost * seconds as f64 / 3600.0 * 100.0).round() / 100.0
}

/// Seconds asleep this month, including a sleep in progress.
pub fn asleep_this_month(s: &RuleState, now: i64) -> u64 {
    let label = month_label(now);
    let done = if s.asleep_month.as_deref() == Some(label.as_str()) { s.asleep_seconds } else { 0 };
    let current = match (s.phase, s.stopped_at) {
        (Phase::Stopped, Some(stopped)) => (now - stopped.max(month_start(now))).max(0) as u64,
        _ => 0,
    };
    done + current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(1_795_514_400), (2026, 11), "2026-11-24T10:00:00Z");
        assert_eq!(month_start(1_795_514_400), 1_793_491_200, "2026-11-01T00:00:00Z");
        assert_eq!(year_month(951_782_400), (2000, 2), "2000-02-29 (leap)");
        assert_eq!(month_start(951_782_400), 949_363_200);
        assert_eq!(month_label(1_795_514_400), "2026-11");
    }

    #[test]
    fn sleeps_accumulate_per_month_and_the_current_one_counts() {
        let nov1 = 1_793_491_200;
        let mut s = RuleState { phase: Phase::Stopped, stopped_at: Some(nov1 - 3_600), ..RuleState::new("api") };
        // Asleep since an hour before the month began: only this month's part counts.
        assert_eq!(asleep_this_month(&s, nov1 + 7_200), 7_200);
        close_sleep(&mut s, nov1 + 7_200, Some(0.5));
        assert_eq!(s.saved_this_month, Some(1.0), "2 h at 0.50");
        s.phase = Phase::Ready;
        assert_eq!(asleep_this_month(&s, nov1 + 9_000), 7_200, "awake: nothing in progress");
        s.phase = Phase::Stopped;
        s.stopped_at = Some(nov1 + 10_000);
        assert_eq!(asleep_this_month(&s, nov1 + 10_600), 7_800);
        // A new month starts from zero: still asleep 40 days after 1 November (10 days into
        // December), only December's 10 days count.
        assert_eq!(asleep_this_month(&s, nov1 + 40 * 86_400), 10 * 86_400);
    }
}
