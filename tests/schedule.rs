//! Schedules and overrides on the in-memory cloud with a paused clock: pre-warming ready at a
//! window's start (across DST changes), forced sleep, and overrides that expire.

mod common;

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op, LAMBDA_TG};
use autostop::cloud::{Cloud, InstanceState};
use common::*;
use serde_json::{json, Value};
use tokio::time::{advance, Instant};

const HOST: &str = "api.dev.example.com";
/// How often EventBridge runs the idle check (the stack's default).
const RATE: Duration = Duration::from_secs(120);

/// Epoch seconds of a local time.
fn local(tz: &str, (y, mo, d): (i16, i8, i8), h: i8, mi: i8) -> i64 {
    let dt = jiff::civil::date(y, mo, d).at(h, mi, 0, 0);
    jiff::tz::TimeZone::get(tz).unwrap().to_ambiguous_timestamp(dt).compatible().unwrap().as_second()
}

fn app(tz: &str, schedule: &str, cloud: FakeCloud) -> App<FakeCloud> {
    let text = format!(
        r#"
listener_arns = ["{L1}"]
hold = "2m"
[[schedules]]
name = "office-hours"
timezone = "{tz}"
{schedule}

[[rules]]
name = "api"
hosts = ["{HOST}"]
target_group_arn = "{TG_API}"
schedule = "office-hours"
ec2 = {{ instance_ids = ["{I1}"] }}
"#
    );
    App::new(config(&text), cloud)
}

async fn scheduled_check(app: &App<FakeCloud>) -> Value {
    let event =
        json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    app.handle(event, Some(Duration::from_secs(60))).await.expect("idle check runs")
}

fn action(report: &Value) -> String {
    report["rules"][0]["action"].as_str().unwrap_or_default().to_string()
}

/// Runs the idle check every [`RATE`] from now until `until` (epoch seconds); returns when
/// the rule first routed to the app, as the fake's wall clock saw it after each check.
async fn checks_until(app: &App<FakeCloud>, until: i64) -> Option<i64> {
    let mut ready_at = None;
    let mut next = Instant::now();
    while app.cloud().now() < until {
        tokio::time::sleep_until(next).await;
        next += RATE;
        scheduled_check(app).await;
        if ready_at.is_none() && app.cloud().routes_to(L1, HOST) == TG_API {
            ready_at = Some(app.cloud().now());
        }
    }
    ready_at
}

/// A Monday 08:00 window: the checks start the instance early enough that the host reaches
/// the app at 08:00 local, on an ordinary Monday and on the Mondays after both DST changes
/// in Berlin and New York (08:00 local is then an hour off the week before in UTC).
#[tokio::test(start_paused = true)]
async fn prewarming_is_ready_when_the_window_begins_across_dst() {
    let mondays = [
        ("Europe/Berlin", (2026, 11, 30)),
        ("Europe/Berlin", (2026, 3, 30)),
        ("Europe/Berlin", (2026, 10, 26)),
        ("America/New_York", (2026, 3, 9)),
        ("America/New_York", (2026, 11, 2)),
    ];
    for (tz, monday) in mondays {
        let window = local(tz, monday, 8, 0);
        // Boots in 60 s, healthy 60 s after: two minutes, well inside the 10 m prewarm.
        let cloud = ec2_world(60, 60, &[L1]).starting_at(local(tz, monday, 7, 15));
        let app = app(tz, "awake = [\"mon-fri 08:00-19:00\"]", cloud);
        let ready = checks_until(&app, window).await;
        assert_eq!(app.cloud().calls(Op::StartInstances), 1, "{tz} {monday:?}: started once");
        let ready = ready.unwrap_or_else(|| panic!("{tz} {monday:?}: not routed to the app by 08:00"));
        assert!(ready <= window, "{tz} {monday:?}: ready {} s late", ready - window);
        assert!(window - ready <= 15 * 60, "{tz} {monday:?}: started more than prewarm + margin early");
        // Inside the window it is kept, idle or not.
        let report = scheduled_check(&app).await;
        assert_eq!(action(&report), "keep", "{report}");
        assert_eq!(app.cloud().calls(Op::StopInstances), 0);
    }
}

/// With wake history the lead is the median warm-up plus the margin, not the default prewarm.
#[tokio::test(start_paused = true)]
async fn the_lead_follows_the_rules_warmups() {
    let tz = "Europe/Berlin";
    let monday = (2026, 11, 30);
    let cloud = ec2_world(60, 60, &[L1]).starting_at(local(tz, monday, 7, 30));
    let mut state = autostop::cloud::RuleState::new("api");
    state.warmups = vec![100, 120, 900];
    cloud.seed_state(state);
    let app = app(tz, "awake = [\"mon-fri 08:00-19:00\"]", cloud);
    let window = local(tz, monday, 8, 0);
    checks_until(&app, window - 8 * 60).await;
    assert_eq!(app.cloud().calls(Op::StartInstances), 0, "120 s + 5 m margin: not before 07:53");
    let ready = checks_until(&app, window).await;
    assert!(ready.is_some_and(|r| r <= window), "ready by 08:00");
}

/// During an asleep window a request wakes nothing: a page (or JSON) says until when, and no
/// AWS call beyond the item's read is made. A running rule is stopped by the next check.
#[tokio::test(start_paused = true)]
async fn forced_sleep_refuses_wakes_and_stops_what_runs() {
    let tz = "Europe/Berlin";
    let saturday = (2026, 11, 28);
    let cloud = ec2_world(20, 10, &[L1]).starting_at(local(tz, saturday, 12, 0));
    let app = app(tz, "awake = [\"mon-fri 08:00-19:00\"]\nasleep = [\"sat-sun\"]", cloud);
    app.handle(json!({"autostop": "sync"}), None).await.unwrap();
    app.cloud().reset_calls();

    let page = browser(&app, HOST).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("Asleep on schedule") && page.body.contains("Mon 00:00 CET"), "{}", page.body);
    assert_eq!(page.header("retry-after").as_deref(), Some("86400"), "until the hold ends, at most a day");
    let r = api(&app, "GET", HOST, "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["held_asleep"]["until"], local(tz, (2026, 11, 30), 0, 0));
    assert_eq!(r.header("retry-after").as_deref(), Some("86400"), "36 h until Monday 00:00, at most a day");
    let calls: Vec<Op> = app.cloud().call_counts().into_iter().map(|(op, _)| op).collect();
    assert_eq!(calls, [Op::GetItem], "only the item is read");
    assert_eq!(app.cloud().instance_state(I1), InstanceState::Stopped);

    // Started by hand during the window: the next check stops it, however busy.
    app.cloud().set_instance_state(I1, InstanceState::Running);
    let report = scheduled_check(&app).await;
    assert_eq!(action(&report), "stop", "{report}");
    assert!(report["rules"][0]["reason"].as_str().unwrap().contains("asleep on schedule"), "{report}");
    assert_eq!(app.cloud().routes_to(L1, HOST), LAMBDA_TG);
}

/// `keep-awake` wins over the asleep window until it expires; then the check stops the rule.
/// `sleep` holds an on-demand rule asleep until it expires; `resume` clears an override.
#[tokio::test(start_paused = true)]
async fn overrides_win_until_they_expire() {
    let tz = "Europe/Berlin";
    let saturday = (2026, 11, 28);
    let cloud = ec2_world(20, 10, &[L1]).starting_at(local(tz, saturday, 12, 0));
    let app = app(tz, "asleep = [\"sat-sun\"]", cloud);

    let r = app.handle(json!({"autostop": "keep-awake", "rule": "api", "for": "2h"}), None).await.unwrap();
    assert_eq!(r["override"]["mode"], "awake", "{r}");
    assert_eq!(r["override"]["by"], "operator");
    assert_eq!(r["override"]["until"], local(tz, saturday, 14, 0));
    // The progress page says why the rule runs on a Saturday.
    let page = browser(&app, HOST).await;
    assert!(page.body.contains("kept awake by operator until Sat 14:00 CET"), "{}", page.body);
    // The direct invoke starts it; a request then waits for it like any other.
    assert_eq!(api(&app, "GET", HOST, "/").await.status, 307);
    assert_eq!(app.cloud().routes_to(L1, HOST), TG_API);
    assert_eq!(action(&scheduled_check(&app).await), "keep");
    let status = app.handle(json!({"autostop": "status"}), None).await.unwrap();
    assert!(
        status["rules"][0]["intent"].as_str().unwrap().contains("kept awake by operator until Sat 14:00 CET"),
        "{status}"
    );

    advance(Duration::from_secs(2 * 3600)).await;
    let report = scheduled_check(&app).await;
    assert_eq!(action(&report), "stop", "expired: the schedule decides again. {report}");
    assert_eq!(app.cloud().routes_to(L1, HOST), LAMBDA_TG);

    // `sleep` until Monday evening, then `resume`: the weekend's window still holds it.
    let r = app.handle(json!({"autostop": "sleep", "rule": "api", "until": "mon 18:00"}), None).await.unwrap();
    assert_eq!(r["override"]["until"], local(tz, (2026, 11, 30), 18, 0), "{r}");
    assert_eq!(api(&app, "GET", HOST, "/").await.status, 503, "held asleep by the override");
    let r = app.handle(json!({"autostop": "resume", "rule": "api"}), None).await.unwrap();
    assert_eq!(r["override"], Value::Null, "{r}");
    assert_eq!(api(&app, "GET", HOST, "/").await.status, 503, "still the weekend's asleep window");
}

#[tokio::test(start_paused = true)]
async fn bad_override_commands_change_nothing() {
    let cloud = ec2_world(20, 10, &[L1]);
    let app = app("UTC", "asleep = [\"sat-sun\"]", cloud);
    for (cmd, why) in [
        (json!({"autostop": "keep-awake", "rule": "api"}), "needs \"for\""),
        (json!({"autostop": "keep-awake", "rule": "api", "for": "soon"}), "for"),
        (json!({"autostop": "sleep", "rule": "api", "until": "someday 08:00"}), "until"),
        (json!({"autostop": "keep-awake", "rule": "nope", "for": "1h"}), "no rule named `nope`"),
        (json!({"autostop": "keep-awake", "rule": "api", "for": "1h", "until": "18:00"}), "not both"),
    ] {
        let e = app.handle(cmd.clone(), None).await.unwrap_err();
        assert!(e.to_string().contains(why), "{cmd}: {e}");
    }
    assert_eq!(app.cloud().total_calls(), 0);
}
