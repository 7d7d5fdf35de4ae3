//! What a rule should be now, from its operator override and its schedule (pure).
//!
//! An override (`keep-awake`, `sleep`) wins until it expires; then the schedule decides: inside
//! an `awake` window the rule is kept awake, inside an `asleep` window it is put and kept to
//! sleep, and shortly before an `awake` window it is started early (pre-warming) so that it is
//! ready when the window begins. Elsewhere it wakes on demand and sleeps when idle, as always.

use super::RuleState;
use crate::config::schedule::{Mode, Schedule};
use crate::config::Rule;

/// An operator's override, read from the state item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub mode: Mode,
    pub until: i64,
    pub by: String,
}

impl Override {
    /// The item's override while it lasts; `None` once expired or when there is none.
    pub fn active(state: Option<&RuleState>, now: i64) -> Option<Override> {
        let s = state?;
        let mode = match s.override_mode.as_deref()? {
            "awake" => Mode::Awake,
            "asleep" => Mode::Asleep,
            _ => return None,
        };
        let until = s.override_until.filter(|u| *u > now)?;
        Some(Override { mode, until, by: s.override_by.clone().unwrap_or_else(|| "operator".into()) })
    }
}

/// What the rule should be now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Wake on demand, sleep when idle.
    OnDemand,
    /// Keep running, and start if stopped (an override, or an `awake` window).
    Awake { why: String },
    /// Start now so the coming `awake` window finds it ready.
    Prewarm { why: String, window_starts: i64 },
    /// Stop if running, and wake for nobody until `until` (an override, or an `asleep` window).
    Asleep { why: String, until: Option<i64> },
}

impl Intent {
    pub fn why(&self) -> Option<&str> {
        match self {
            Intent::OnDemand => None,
            Intent::Awake { why } | Intent::Prewarm { why, .. } | Intent::Asleep { why, .. } => Some(why),
        }
    }
}

/// The rule's intent at `now` (epoch seconds), from its state item (override, warm-ups).
pub fn intent(rule: &Rule, state: Option<&RuleState>, now: i64) -> Intent {
    let schedule = rule.schedule.as_deref();
    if let Some(o) = Override::active(state, now) {
        let until = local(schedule, o.until);
        return match o.mode {
            Mode::Awake => Intent::Awake { why: format!("kept awake by {} until {until}", o.by) },
            Mode::Asleep => {
                Intent::Asleep { why: format!("put to sleep by {} until {until}", o.by), until: Some(o.until) }
            }
        };
    }
    let Some(schedule) = schedule else { return Intent::OnDemand };
    let at = schedule.at(now);
    let name = &schedule.name;
    match at.mode {
        Some(Mode::Asleep) => {
            let until = at.next_change;
            let when = until.map(|u| format!(" until {}", schedule.local(u))).unwrap_or_default();
            Intent::Asleep { why: format!("asleep on schedule `{name}`{when}"), until }
        }
        Some(Mode::Awake) => {
            let when = at.next_change.map(|u| format!(" until {}", schedule.local(u))).unwrap_or_default();
            Intent::Awake { why: format!("awake on schedule `{name}`{when}") }
        }
        None => {
            let warmups = state.map(|s| s.warmups.as_slice()).unwrap_or(&[]);
            let lead = schedule.lead(warmups).as_secs() as i64;
            match at.next_awake {
                Some(start) if start - now <= lead => Intent::Prewarm {
                    why: format!(
                        "pre-warming for schedule `{name}`: its awake window begins {} and a start takes about {} s",
                        schedule.local(start),
                        lead - crate::config::schedule::PREWARM_MARGIN.as_secs() as i64
                    ),
                    window_starts: start,
                },
                _ => Intent::OnDemand,
            }
        }
    }
}

/// `epoch` in the schedule's zone, else in UTC.
pub fn local(schedule: Option<&Schedule>, epoch: i64) -> String {
    match schedule {
        Some(s) => s.local(epoch),
        None => jiff::Timestamp::from_second(epoch)
            .map(|t| t.strftime("%a %Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|_| epoch.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schedule::Window;
    use std::sync::Arc;

    fn rule(schedule: Option<Schedule>) -> Rule {
        let text = "listener_arns = [\"arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2\"]\n\
             [[rules]]\nname = \"api\"\nhosts = [\"api.x.com\"]\n\
             target_group_arn = \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067\"\n\
             ec2 = { instance_ids = [\"i-0123456789abcdef0\"] }\n";
        let mut r = crate::config::Config::from_toml(text).unwrap().rules.remove(0);
        r.schedule = schedule.map(Arc::new);
        r
    }

    fn office() -> Schedule {
        let w = |t: &str| Window::parse(t).unwrap();
        Schedule::new("office", "UTC", vec![w("mon-fri 08:00-19:00")], vec![w("sat-sun")]).unwrap()
    }

    /// Tuesday 2026-11-24 at `h:m` UTC.
    fn tue(h: i64, m: i64) -> i64 {
        1_795_478_400 + h * 3600 + m * 60
    }

    #[test]
    fn without_schedule_or_override_a_rule_is_on_demand() {
        assert_eq!(intent(&rule(None), None, tue(12, 0)), Intent::OnDemand);
    }

    #[test]
    fn windows_and_prewarming() {
        let r = rule(Some(office()));
        assert!(matches!(intent(&r, None, tue(12, 0)), Intent::Awake { .. }));
        assert_eq!(intent(&r, None, tue(20, 0)), Intent::OnDemand);
        // Without history: prewarm 10 m + margin 5 m before Wednesday 08:00.
        assert_eq!(intent(&r, None, tue(24 + 7, 44)), Intent::OnDemand);
        let Intent::Prewarm { window_starts, why } = intent(&r, None, tue(24 + 7, 45)) else { panic!() };
        assert_eq!(window_starts, tue(24 + 8, 0));
        assert!(why.contains("Wed 08:00"), "{why}");
        // With history (median 60 s): 6 minutes ahead.
        let mut s = RuleState::new("api");
        s.warmups = vec![50, 60, 300];
        assert_eq!(intent(&r, Some(&s), tue(24 + 7, 53)), Intent::OnDemand);
        assert!(matches!(intent(&r, Some(&s), tue(24 + 7, 54)), Intent::Prewarm { .. }));
        // Saturday: asleep until Monday 00:00.
        let Intent::Asleep { until, why } = intent(&r, None, tue(4 * 24 + 12, 0)) else { panic!() };
        assert_eq!(until, Some(tue(6 * 24, 0)));
        assert!(why.contains("asleep on schedule `office` until Mon 00:00"), "{why}");
    }

    #[test]
    fn an_override_wins_until_it_expires() {
        let r = rule(Some(office()));
        let mut s = RuleState::new("api");
        s.override_mode = Some("awake".into());
        s.override_until = Some(tue(4 * 24 + 18, 0));
        s.override_by = Some("alice".into());
        let saturday = tue(4 * 24 + 12, 0);
        let Intent::Awake { why } = intent(&r, Some(&s), saturday) else { panic!() };
        assert_eq!(why, "kept awake by alice until Sat 18:00 UTC");
        assert!(matches!(intent(&r, Some(&s), tue(4 * 24 + 18, 0)), Intent::Asleep { .. }), "expired");
        s.override_mode = Some("asleep".into());
        s.override_until = Some(tue(14, 0));
        assert!(matches!(intent(&r, Some(&s), tue(12, 0)), Intent::Asleep { until: Some(u), .. } if u == tue(14, 0)));
        assert!(matches!(intent(&r, Some(&s), tue(14, 0)), Intent::Awake { .. }));
        assert!(matches!(intent(&rule(None), Some(&s), tue(12, 0)), Intent::Asleep { .. }), "no schedule needed");
    }
}
