//! The config contract: what loads, and what each bad key says.

use super::*;

pub(crate) const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";

fn spec_example() -> String {
    format!(
        r#"
listener_arns = ["{LISTENER}"]
state_table = "autostop-state"
idle = "30m"
hold = "25s"
settle = "2s"

[[rules]]
name = "api"
hosts = ["api.dev.example.com", "*.api.dev.example.com"]
target_group_arn = "{TG}"
idle = "15m"
priority = 1200
ec2 = {{ instance_ids = ["i-0123456789abcdef0"] }}
busy_when = {{ network_packets_in = 500 }}

[[rules]]
name = "web"
hosts = ["web.dev.example.com"]
target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0467ef3c8400ae65"
ecs = {{ cluster = "dev", service = "web", desired_count = 2 }}
"#
    )
}

fn load_err(text: &str) -> ConfigError {
    Config::from_toml(text).expect_err("config should be rejected")
}

/// The spec's example with one line replaced.
fn with(from: &str, to: &str) -> String {
    let text = spec_example();
    assert!(text.contains(from), "fixture lacks {from}");
    text.replacen(from, to, 1)
}

#[test]
fn spec_example_loads() {
    let c = Config::from_toml(&spec_example()).unwrap();
    assert_eq!(c.idle, Duration::from_secs(1800));
    assert_eq!(c.hold, Duration::from_secs(25));
    assert_eq!(c.settle, Duration::from_secs(2));
    let api = c.rule("api").unwrap();
    assert_eq!(api.idle, Duration::from_secs(900));
    assert_eq!(api.priority, Some(1200));
    assert_eq!(api.busy_when, Some(BusySignal::NetworkPacketsIn(500)));
    let web = c.rule("web").unwrap();
    assert_eq!(web.idle, Duration::from_secs(1800), "default idle applies");
    assert_eq!(web.ecs.as_ref().unwrap().desired_count, Some(2));
    assert_eq!(c.rule_for_host("x.api.dev.example.com").unwrap().name, "api");
    assert_eq!(c.rule_for_host("web.dev.example.com").unwrap().name, "web");
}

#[test]
fn defaults_apply_when_omitted() {
    let text = format!(
        "listener_arns = [\"{LISTENER}\"]\n[[rules]]\nname = \"a\"\nhosts = [\"a.x\"]\ntarget_group_arn = \"{TG}\"\necs = {{ cluster = \"c\", service = \"s\" }}\n"
    );
    let c = Config::from_toml(&text).unwrap();
    assert_eq!(c.state_table, "autostop-state");
    assert_eq!(
        (c.idle, c.hold, c.settle),
        (Duration::from_secs(1800), Duration::from_secs(25), Duration::from_secs(2))
    );
}

#[test]
fn unknown_key_is_named() {
    let e = load_err(&with("idle = \"15m\"", "idel = \"15m\""));
    assert!(e.to_string().contains("idel"), "{e}");
    let e = load_err(&with("state_table", "statetable"));
    assert!(e.to_string().contains("statetable"), "{e}");
}

#[test]
fn duplicate_rule_name() {
    let e = load_err(&with("name = \"web\"", "name = \"api\""));
    assert_eq!(e.key, "rules[1].name");
    assert!(e.reason.contains("duplicate rule name `api`"));
}

#[test]
fn host_claimed_by_two_rules() {
    let e = load_err(&with("hosts = [\"web.dev.example.com\"]", "hosts = [\"API.dev.example.com.\"]"));
    assert_eq!(e.key, "rules[1] (web).hosts");
    assert!(e.reason.contains("already claimed by rule `api`"), "{e}");
}

#[test]
fn duplicate_host_within_a_rule() {
    let e = load_err(&with(
        "hosts = [\"web.dev.example.com\"]",
        "hosts = [\"web.dev.example.com\", \"WEB.dev.example.com\"]",
    ));
    assert!(e.reason.contains("listed twice"), "{e}");
}

#[test]
fn bad_durations() {
    for (bad, why) in
        [("15x", "not a duration"), ("15", "needs a unit"), ("0s", "longer than zero"), ("", "not a duration")]
    {
        let e = load_err(&with("idle = \"15m\"", &format!("idle = \"{bad}\"")));
        assert_eq!(e.key, "rules[0] (api).idle");
        assert!(e.reason.contains(why), "{bad}: {e}");
    }
    let e = load_err(&with("hold = \"25s\"", "hold = \"soon\""));
    assert_eq!(e.key, "hold");
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
}

#[test]
fn bad_arns() {
    let e = load_err(&with(TG, "arn:aws:ec2:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067"));
    assert_eq!(e.key, "rules[0] (api).target_group_arn");
    let e = load_err(&with(TG, "targetgroup/api"));
    assert!(e.reason.contains("not an ELBv2 targetgroup ARN"), "{e}");
    let e = load_err(&with(
        LISTENER,
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188",
    ));
    assert_eq!(e.key, "listener_arns[0]");
    let e = load_err(&with(LISTENER, "arn:aws:elasticloadbalancing:us-east-1:1234:listener/app/dev/5/f"));
    assert_eq!(e.key, "listener_arns[0]", "short account id");
}

#[test]
fn rule_without_resources() {
    let e = load_err(&with("ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }", ""));
    assert_eq!(e.key, "rules[1] (web)", "the rule lacks all four kinds: none of their keys is named");
    assert!(e.reason.contains("no resources"));
}

#[test]
fn bad_names_hosts_ids_and_numbers() {
    assert_eq!(load_err(&with("name = \"web\"", "name = \"Web App\"")).key, "rules[1].name");
    assert!(load_err(&with("\"web.dev.example.com\"", "\"web.dev.example.com:443\"")).reason.contains("port"));
    assert!(load_err(&with("\"web.dev.example.com\"", "\"web.*.example.com\"")).reason.contains("first label"));
    for (bad, why) in [
        ("web_1.dev.example.com", "letters, digits and `-`"),
        ("web?.dev.example.com", "letters, digits and `-`"),
        ("bücher.dev.example.com", "punycode"),
        ("localhost", "at least one `.`"),
        ("web.dev.example.c0m", "letters only"),
    ] {
        let e = load_err(&with("\"web.dev.example.com\"", &format!("\"{bad}\"")));
        assert_eq!(e.key, "rules[1] (web).hosts", "{bad}");
        assert!(e.reason.contains(why), "{bad}: {e}");
    }
    let long = format!("{}.example.com", ["a".repeat(60), "b".repeat(60)].join("."));
    assert!(load_err(&with("\"web.dev.example.com\"", &format!("\"{long}\""))).reason.contains("128"));
    assert!(Config::from_toml(&with("\"web.dev.example.com\"", "\"xn--bcher-kva.dev.example.com\"")).is_ok());
    assert_eq!(load_err(&with("i-0123456789abcdef0", "vm-1")).key, "rules[0] (api).ec2.instance_ids");
    assert_eq!(load_err(&with("priority = 1200", "priority = 0")).key, "rules[0] (api).priority");
    assert_eq!(load_err(&with("desired_count = 2", "desired_count = 0")).key, "rules[1] (web).ecs.desired_count");
    assert_eq!(
        load_err(&with("{ network_packets_in = 500 }", "{ network_packets_in = 500, cpu_percent = 5 }")).key,
        "rules[0] (api).busy_when"
    );
    let e = load_err(&with("listener_arns = [", "x = 1\nlistener_arns = ["));
    assert!(e.to_string().contains("unknown field `x`"), "the unknown key is named: {e}");
}

#[test]
fn metrics_lag_defaults_to_three_minutes_and_may_be_zero() {
    assert_eq!(Config::from_toml(&spec_example()).unwrap().metrics_lag, Duration::from_secs(180));
    let c = Config::from_toml(&with("settle = \"2s\"", "settle = \"2s\"\nmetrics_lag = \"0s\"")).unwrap();
    assert_eq!(c.metrics_lag, Duration::ZERO);
    let e = load_err(&with("settle = \"2s\"", "settle = \"2s\"\nmetrics_lag = \"soon\""));
    assert_eq!(e.key, "metrics_lag");
}

#[test]
fn overlapping_priorities() {
    let e = load_err(&with("desired_count = 2 }", "desired_count = 2 }\npriority = 1200"));
    assert_eq!(e.key, "rules[1] (web).priority");
    assert!(e.reason.contains("overlaps"), "{e}");
}

#[test]
fn a_configured_priority_that_puts_a_wildcard_before_a_host_it_captures_names_both_rules() {
    let text = with("ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }", "ecs = { cluster = \"dev\", service = \"web\" }\n[[rules]]\nname = \"wild\"\nhosts = [\"*.dev.example.com\"]\ntarget_group_arn = \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/wild/0467ef3c8400ae66\"\npriority = 5\necs = { cluster = \"dev\", service = \"wild\" }");
    let e = load_err(&text);
    assert_eq!(e.key, "rules[2] (wild).priority");
    assert!(e.reason.contains("rule `wild` (*.dev.example.com, priority 5)"), "{e}");
    assert!(e.reason.contains("rule `api` (api.dev.example.com, priority 1200)"), "{e}");
    // Above the exact hosts it overlaps, the same priority is fine.
    let c = Config::from_toml(&text.replace("priority = 5", "priority = 20000")).unwrap();
    let order: Vec<&str> = c.standing.iter().map(|c| c.hosts[0].as_str()).collect();
    assert_eq!(order, vec!["api.dev.example.com", "web.dev.example.com", "*.api.dev.example.com", "*.dev.example.com"]);
    assert_eq!(c.standing_priorities, vec![1200, 10_000, 1201, 20_000]);
}

#[test]
fn the_deployment_fills_what_the_file_leaves_out() {
    let file = with(&format!("listener_arns = [\"{LISTENER}\"]\nstate_table = \"autostop-state\""), "");
    let deployed = Deployment {
        listener_arns: vec![LISTENER.into()],
        state_table: Some("stack-state".into()),
        ..Default::default()
    };
    let c = Config::from_toml_with(&file, &deployed).unwrap();
    assert_eq!(
        (c.listener_arns.as_slice(), c.state_table.as_str()),
        ([LISTENER.to_string()].as_slice(), "stack-state")
    );
    // The file wins where it speaks.
    let c = Config::from_toml_with(&spec_example(), &deployed).unwrap();
    assert_eq!(c.state_table, "autostop-state");
    // Deployment values are validated like the file's.
    let bad = Deployment { listener_arns: vec!["nope".into()], ..Default::default() };
    assert_eq!(Config::from_toml_with(&file, &bad).unwrap_err().key, "listener_arns[0]");
}

#[test]
fn missing_listeners() {
    let e = load_err(&with(&format!("listener_arns = [\"{LISTENER}\"]"), "listener_arns = []"));
    assert_eq!(e.key, "listener_arns");
    let e = load_err(&with(&format!("listener_arns = [\"{LISTENER}\"]"), ""));
    assert!(e.to_string().contains("listener_arns"), "{e}");
}

#[test]
fn schedules_resolve_or_name_the_key_at_fault() {
    let schedules = r#"
[[schedules]]
name = "office-hours"
timezone = "Europe/Berlin"
awake = ["mon-fri 08:00-19:00"]
asleep = ["sat-sun", "mon-fri 22:00-06:00"]
prewarm = "15m"

[[rules]]
name = "api""#;
    let text = with("\n[[rules]]\nname = \"api\"", schedules).replacen(
        "busy_when",
        "schedule = \"office-hours\"\nbusy_when",
        1,
    );
    let c = Config::from_toml(&text).unwrap();
    let s = c.rule("api").unwrap().schedule.as_ref().expect("api has the schedule");
    assert_eq!(
        (s.name.as_str(), s.timezone.as_str(), s.prewarm),
        ("office-hours", "Europe/Berlin", Duration::from_secs(900))
    );
    assert!(c.rule("web").unwrap().schedule.is_none());

    let e = load_err(&text.replace("schedule = \"office-hours\"", "schedule = \"office\""));
    assert_eq!(e.key, "rules[0] (api).schedule");
    assert!(e.reason.contains("no schedule named `office`") && e.reason.contains("office-hours"), "{e}");
    let e = load_err(&text.replace("\"sat-sun\"", "\"sat-sunday\""));
    assert_eq!(e.key, "schedules[0] (office-hours).asleep[0]");
    assert!(e.reason.contains("expected DAYS [HH:MM-HH:MM]"), "{e}");
    let e = load_err(&text.replace("Europe/Berlin", "Berlin"));
    assert_eq!(e.key, "schedules[0] (office-hours).timezone");
    let e = load_err(&text.replace("prewarm = \"15m\"", "prewarm = \"soon\""));
    assert_eq!(e.key, "schedules[0] (office-hours).prewarm");
    let e = load_err(
        &text.replace("awake = [\"mon-fri 08:00-19:00\"]\nasleep = [\"sat-sun\", \"mon-fri 22:00-06:00\"]", ""),
    );
    assert_eq!(e.key, "schedules[0] (office-hours).awake");
}

#[test]
fn dependencies_name_rules_without_cycles() {
    let db = "\n[[rules]]\nname = \"db\"\nec2 = { instance_ids = [\"i-0aaaaaaaaaaaaaaaa\"] }\n";
    let text = with("busy_when", "depends_on = [\"db\"]\ndelay = \"10s\"\nbusy_when") + db;
    let c = Config::from_toml(&text).unwrap();
    let (api, db_rule) = (c.rule("api").unwrap(), c.rule("db").unwrap());
    assert_eq!((api.depends_on.clone(), api.delay), (vec!["db".to_string()], Duration::from_secs(10)));
    assert!(db_rule.hosts.is_empty() && db_rule.target_group_arn.is_none());
    assert_eq!(c.dependents("db"), vec![0]);

    let e = load_err(&text.replace("depends_on = [\"db\"]", "depends_on = [\"dbx\"]"));
    assert_eq!(e.key, "rules[0] (api).depends_on");
    assert!(e.reason.contains("no rule named `dbx`"), "{e}");
    let e = load_err(
        &text
            .replace("depends_on = [\"db\"]\ndelay = \"10s\"", "")
            .replace("name = \"db\"\n", "name = \"db\"\ndelay = \"5s\"\n"),
    );
    assert_eq!(e.key, "rules[2] (db).delay");
    let cyclic = text.replace("name = \"db\"\n", "name = \"db\"\ndepends_on = [\"web\"]\n").replace(
        "ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }",
        "ecs = { cluster = \"dev\", service = \"web\", desired_count = 2 }\ndepends_on = [\"api\"]",
    );
    let e = load_err(&cyclic);
    assert!(e.reason.contains("dependency cycle: api -> db -> web -> api"), "{e}");
    let e = load_err(&text.replace("depends_on = [\"db\"]", "depends_on = [\"api\"]"));
    assert!(e.reason.contains("dependency cycle: api -> api"), "{e}");
    let e = load_err(&(text.clone() + "\n[[rules]]\nname = \"half\"\nhosts = [\"half.x.com\"]\nec2 = { instance_ids = [\"i-0bbbbbbbbbbbbbbbb\"] }\n"));
    assert_eq!(e.key, "rules[3] (half).target_group_arn");
    assert!(e.reason.contains("or neither"), "{e}");
}

#[test]
fn a_rules_load_balancer_is_an_alb_arn_with_a_configured_listener() {
    let dev = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";
    let ok = with("idle = \"15m\"", &format!("idle = \"15m\"\nload_balancer = \"{dev}\""));
    assert_eq!(Config::from_toml(&ok).unwrap().rules[0].load_balancer.as_deref(), Some(dev));
    let e = load_err(&with("idle = \"15m\"", "idle = \"15m\"\nload_balancer = \"dev\""));
    assert_eq!(e.key, "rules[0] (api).load_balancer");
    let other = dev.replace("app/dev/50dc6c495c0c9188", "app/staging/7c1b2d3e4f5a6b7c");
    let e = load_err(&with("idle = \"15m\"", &format!("idle = \"15m\"\nload_balancer = \"{other}\"")));
    assert_eq!(e.key, "rules[0] (api).load_balancer");
    assert!(e.reason.contains("none of the listeners"), "{}", e.reason);
}
