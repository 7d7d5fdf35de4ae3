//! Only people wake environments: crawlers, monitors, scanners, HEAD/OPTIONS and clients from
//! outside `wake_from` get a static answer, and not one AWS call is made for them.

mod common;

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op};
use common::*;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";

fn app(extra_top: &str, extra_rule: &str) -> App<FakeCloud> {
    let text = format!(
        "listener_arns = [\"{L1}\"]\n{extra_top}\n[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n{extra_rule}\n"
    );
    App::new(config(&text), ec2_world(20, 10, &[L1]))
}

async fn get(app: &App<FakeCloud>, method: &str, path: &str, ua: &str, xff: &str) -> Resp {
    let headers = [("accept", CHROME_ACCEPT), ("user-agent", ua), ("x-forwarded-for", xff)];
    send(app, alb_event(method, "api.dev.example.com", path, &headers)).await
}

#[tokio::test(start_paused = true)]
async fn bots_probes_and_odd_methods_get_a_static_answer_and_no_aws_call() {
    let app = app("", "");
    for (method, path, ua) in [
        ("GET", "/", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        ("GET", "/", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
        ("GET", "/", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"),
        ("GET", "/wp-login.php", FIREFOX),
        ("GET", "/.env", FIREFOX),
        ("GET", "/.git/config", FIREFOX),
        ("GET", "/.well-known/security.txt", FIREFOX),
        ("HEAD", "/", FIREFOX),
        ("OPTIONS", "/v1/items", FIREFOX),
    ] {
        let r = get(&app, method, path, ua, "198.51.100.2").await;
        assert_eq!(r.status, 503, "{method} {path} {ua}: {}", r.body);
        assert_eq!(r.header("retry-after").as_deref(), Some("3600"));
        assert_eq!(r.header("x-robots-tag").as_deref(), Some("noindex"));
        assert_eq!(r.header("x-autostop").as_deref(), Some("refused"));
    }
    let robots = get(&app, "GET", "/robots.txt", FIREFOX, "198.51.100.2").await;
    assert_eq!((robots.status, robots.body.as_str()), (200, "User-agent: *\nDisallow: /\n"));
    assert_eq!(app.cloud().total_calls(), 0, "{:?}", app.cloud().call_counts());
    let reasons: Vec<String> =
        emf_lines(app.cloud(), "Refused").iter().map(|v| v["Reason"].as_str().unwrap().to_string()).collect();
    let want = ["bot", "bot", "bot", "path", "path", "path", "path", "method", "method", "path"];
    assert_eq!(reasons, want, "one Refused count per refusal, by reason");
    // `autostop status` shows them, as CloudWatch has them once its lag has passed.
    tokio::time::advance(Duration::from_secs(5 * 60)).await;
    let report = app.status().await;
    let refused = report.rules[0].refused_last_hour.clone().unwrap_or_default();
    let want = [("bot".to_string(), 3), ("path".to_string(), 5), ("method".to_string(), 2)];
    assert_eq!(refused, want.into(), "{report:?}");
    // A person's request wakes it as before.
    assert_eq!(get(&app, "GET", "/", FIREFOX, "198.51.100.2").await.status, 200);
    assert_eq!(app.cloud().calls(Op::StartInstances), 1);
}

#[tokio::test(start_paused = true)]
async fn only_clients_from_wake_from_wake_and_the_right_most_forwarded_entry_counts() {
    let app = app("wake_from = [\"10.0.0.0/8\", \"2001:db8::/32\"]", "");
    // The left-most entry is whatever the client wrote; the ALB appended the right-most.
    let spoofed = get(&app, "GET", "/", FIREFOX, "10.1.2.3, 198.51.100.2").await;
    assert_eq!(spoofed.status, 403, "{}", spoofed.body);
    assert!(spoofed.body.contains("10.0.0.0/8") && spoofed.body.contains("2001:db8::/32"), "{}", spoofed.body);
    assert_eq!(spoofed.header("retry-after"), None);
    let api = send(
        &app,
        alb_event(
            "POST",
            "api.dev.example.com",
            "/v1",
            &[("accept", "application/json"), ("x-forwarded-for", "203.0.113.9")],
        ),
    )
    .await;
    assert_eq!((api.status, api.json()["reason"].as_str()), (403, Some("network")), "{}", api.body);
    assert_eq!(app.cloud().total_calls(), 0);
    for xff in ["198.51.100.2, 10.1.2.3", "2001:db8:1::5"] {
        assert_eq!(get(&app, "GET", "/", FIREFOX, xff).await.status, 200, "{xff}");
    }
    assert_eq!(app.cloud().calls(Op::StartInstances), 1);
}

/// Behind CloudFront the right-most entry is CloudFront's address; with `trusted_proxies` the
/// client is the right-most entry outside them. An `ip:port` entry (the ALB's
/// `routing.http.xff_client_port.enabled`) is read as its address.
#[tokio::test(start_paused = true)]
async fn behind_trusted_proxies_the_client_is_the_entry_before_them_and_ports_are_read() {
    let plain = app("wake_from = [\"10.0.0.0/8\"]", "");
    let app = app("wake_from = [\"10.0.0.0/8\"]\ntrusted_proxies = [\"130.176.0.0/16\"]", "");
    let stranger = get(&app, "GET", "/", FIREFOX, "10.1.2.3, 198.51.100.2:50123, 130.176.4.9:443").await;
    assert_eq!(stranger.status, 403, "a forged office entry left of the stranger counts for nothing");
    assert_eq!(app.cloud().total_calls(), 0);
    let office = get(&app, "GET", "/", FIREFOX, "10.1.2.3:50123, 130.176.4.9:443").await;
    assert_eq!(office.status, 200, "{}", office.body);
    assert_eq!(app.cloud().calls(Op::StartInstances), 1);
    assert_eq!(
        get(&plain, "GET", "/", FIREFOX, "10.1.2.3, 130.176.4.9").await.status,
        403,
        "untrusted: the CDN is the client"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rule_may_open_or_narrow_what_the_top_level_says() {
    // Top level: the office only, extra bot and path. The rule: anyone, built-in lists off.
    let app = app(
        "wake_from = [\"10.0.0.0/8\"]\nnever_wake = { user_agents = [\"acme-monitor\"], paths = [\"/healthz\"] }",
        "wake_from = [\"0.0.0.0/0\", \"::/0\"]\nnever_wake = { defaults = false }",
    );
    assert_eq!(get(&app, "GET", "/", "Googlebot/2.1", "198.51.100.2").await.status, 200, "defaults off, anyone");
    assert_eq!(get(&app, "GET", "/", "Acme-Monitor/3", "198.51.100.2").await.status, 503, "the top level's own bot");
    assert_eq!(get(&app, "GET", "/healthz", FIREFOX, "198.51.100.2").await.status, 503, "the top level's own path");
}

#[tokio::test(start_paused = true)]
async fn every_answer_is_kept_out_of_indexes_and_caches() {
    let app = app("", "");
    let unknown = send(&app, alb_event("GET", "nope.dev.example.com", "/", &[("accept", CHROME_ACCEPT)])).await;
    let page = get(&app, "GET", "/", FIREFOX, "198.51.100.2").await;
    let status = status(&app, "api.dev.example.com").await;
    assert_eq!(status["phase"], "starting");
    for r in [&unknown, &page] {
        assert_eq!(r.header("x-robots-tag").as_deref(), Some("noindex"));
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store, private"));
        assert_eq!(r.header("vary").as_deref(), Some("Accept, User-Agent"));
    }
}

#[test]
fn bad_gate_keys_are_named() {
    let base = format!(
        "listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"api\"\nhosts = [\"api.x.com\"]\ntarget_group_arn = \"{TG_API}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
    );
    for (extra, key) in [
        ("wake_from = [\"10.0.0.0/33\"]\n", "wake_from"),
        ("wake_from = []\n", "wake_from"),
        ("trusted_proxies = [\"130.176.0.0\"]\n", "trusted_proxies"),
        ("trusted_proxies = []\n", "trusted_proxies"),
        ("never_wake = { paths = [\"wp-admin\"] }\n", "never_wake.paths"),
        ("never_wake = { user_agents = [\" \"] }\n", "never_wake.user_agents"),
        ("wake = \"sometimes\"\n", "wake"),
        ("wake_token = { header = \"x wake\", env = \"T\" }\n", "wake_token.header"),
        ("wake_token = { header = \"cookie\", env = \"T\" }\n", "wake_token.header"),
        ("wake_token = { header = \"x-autostop-wake\", env = \"\" }\n", "wake_token.env"),
    ] {
        let e = autostop::config::Config::from_toml(&format!("{extra}{base}")).unwrap_err();
        assert_eq!(e.key, key, "{extra}: {e}");
    }
    for (extra, key) in
        [("wake_from = [\"10.0.0.0\"]\n", "rules[0] (api).wake_from"), ("wake = \"clik\"\n", "rules[0] (api).wake")]
    {
        let e = autostop::config::Config::from_toml(&format!("{base}{extra}")).unwrap_err();
        assert_eq!(e.key, key, "{extra}: {e}");
    }
}
