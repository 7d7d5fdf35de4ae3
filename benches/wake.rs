//! `make bench`: handler time per request on the hot paths, AWS calls per wake under
//! concurrency and per stop, and the delay from "target healthy" to "standing rule switched".
//! Prints figures; asserts nothing about time (that is what this is for, not the tests).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autostop::app::App;
use autostop::cloud::fake::{FakeCloud, Op};
use autostop::cloud::InstanceState;
use autostop::config::Config;
use serde_json::{json, Value};

const L1: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";
const I1: &str = "i-0123456789abcdef0";

fn config() -> Config {
    let mut text = format!("listener_arns = [\"{L1}\"]\nhold = \"2m\"\nsettle = \"2s\"\n");
    // 200 rules, as a large team might have, so host lookup is measured at size.
    for i in 0..200 {
        text.push_str(&format!(
            "[[rules]]\nname = \"env{i}\"\nhosts = [\"env{i}.dev.example.com\", \"*.env{i}.dev.example.com\"]\ntarget_group_arn = \"{TG}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
        ));
    }
    Config::from_toml(&text).expect("bench config")
}

fn world(latency: Duration, boot: u64, health: u64) -> FakeCloud {
    let cloud = FakeCloud::with_latency(latency);
    cloud.add_instance(I1, InstanceState::Stopped, Duration::from_secs(boot));
    cloud.add_target_group(TG, Duration::from_secs(health));
    cloud.register_instance(TG, I1);
    cloud.add_listener(L1);
    // 200 rules need 200 standing rules: a raised "rules per load balancer" quota.
    cloud.set_rule_quota(1000);
    cloud
}

fn event(host: &str, path: &str, accept: &str) -> Value {
    json!({
        "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/1" } },
        "httpMethod": "GET", "path": path, "queryStringParameters": {},
        "headers": { "host": host, "accept": accept, "user-agent": "bench" },
        "body": "", "isBase64Encoded": false
    })
}

/// Median and p99 of `n` timed runs of `f`, in microseconds.
fn measure<F: std::future::Future<Output = Value>>(
    rt: &tokio::runtime::Runtime,
    n: usize,
    mut f: impl FnMut() -> F,
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        black_box(rt.block_on(f()));
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (samples[n / 2], samples[n * 99 / 100])
}

fn handler_times() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let app = Arc::new(App::new(config(), world(Duration::ZERO, 600, 0)));
    // Warm: the rule is starting (boot 600 s), its status cached for the next second.
    rt.block_on(app.handle(event("env7.dev.example.com", "/__autostop/status", "application/json"), None)).unwrap();

    println!("handler time per request (median / p99, microseconds, 20,000 runs each):");
    let cases: [(&str, &str, &str, &str); 3] = [
        ("unknown host (404 page)", "nope.dev.example.com", "/", "text/html"),
        ("cached status poll (JSON)", "pr-1.env7.dev.example.com", "/__autostop/status", "application/json"),
        ("progress page render", "env7.dev.example.com", "/", "text/html,application/xhtml+xml"),
    ];
    for (label, host, path, accept) in cases {
        let ev = event(host, path, accept);
        let (median, p99) = measure(&rt, 20_000, || {
            let app = Arc::clone(&app);
            let ev = ev.clone();
            async move { app.handle(ev, None).await.unwrap() }
        });
        println!("  {label:<28} {median:>8.1} / {p99:>8.1}");
    }
    let cloud = app.cloud();
    println!(
        "  (AWS calls made over all 60,000 requests: {}; status refreshes at most once a second)",
        cloud.total_calls()
    );
}

/// N held API requests at once for one sleeping rule; boot 30 s, healthy `health_ms` later.
/// Returns the calls made and the delay from the first healthy moment to the standing rule's
/// switch to the app.
fn calls_per_wake(n: usize, health_ms: u64) -> (Vec<(Op, usize)>, f64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(async {
        let latency = Duration::from_millis(20);
        let cloud = world(latency, 30, 0);
        cloud.add_target_group(TG, Duration::from_millis(health_ms));
        cloud.register_instance(TG, I1);
        let app = Arc::new(App::new(config(), cloud));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let app = Arc::clone(&app);
            tasks.spawn(async move {
                let v = app.handle(event("env3.dev.example.com", "/api", "application/json"), None).await.unwrap();
                assert_eq!(v["statusCode"], 307);
            });
        }
        while tasks.join_next().await.is_some() {}
        let cloud = app.cloud();
        // StartInstances takes effect when its call returns; then 30 s of boot, then health.
        let started = cloud.first_call_at(Op::StartInstances).expect("started") + latency;
        let healthy_at = started + Duration::from_secs(30) + Duration::from_millis(health_ms);
        let switched = cloud.first_call_at(Op::ModifyRule).expect("the rule was switched") + latency;
        (cloud.call_counts(), switched.duration_since(healthy_at).as_secs_f64())
    })
}

/// Twenty rules with an instance and a target group each; wakes one, then stops it by the
/// operator's command or by an idle check an hour later. Counts only the stop's calls.
fn calls_per_stop(how: &str) -> (Vec<(Op, usize)>, usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(async {
        let cloud = FakeCloud::with_latency(Duration::from_millis(20));
        cloud.add_listener(L1);
        let mut text = format!("listener_arns = [\"{L1}\"]\nhold = \"2m\"\nidle = \"10m\"\n");
        for i in 0..20 {
            let id = format!("i-{i:017x}");
            let tg = format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t{i}/{i:016x}");
            text.push_str(&format!(
                "[[rules]]\nname = \"env{i}\"\nhosts = [\"env{i}.dev.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
            ));
            cloud.add_instance(&id, InstanceState::Stopped, Duration::from_secs(30));
            cloud.add_target_group(&tg, Duration::from_secs(10));
            cloud.register_instance(&tg, &id);
        }
        let app = App::new(Config::from_toml(&text).unwrap(), cloud);
        app.handle(json!({"autostop": "sync"}), None).await.unwrap();
        let v = app.handle(event("env3.dev.example.com", "/api", "application/json"), None).await.unwrap();
        assert_eq!(v["statusCode"], 307);
        let cloud = app.cloud();
        cloud.reset_calls();
        if how == "stop" {
            app.handle(json!({"autostop": "stop", "rule": "env3"}), None).await.unwrap();
        } else {
            tokio::time::advance(Duration::from_secs(3600)).await;
            let r = app.handle(json!({"autostop": "idle-check", "dry_run": false}), None).await.unwrap();
            let stopped = r["rules"].as_array().unwrap().iter().filter(|r| r["action"] == "stop").count();
            assert_eq!(stopped, 1, "{r}");
        }
        let counts = cloud.call_counts();
        let total = counts.iter().map(|(_, c)| c).sum();
        (counts, total)
    })
}

/// `envs` Lambda environments (separate `App`s) over one fake cloud (30 s boot, healthy 10 s
/// later, 20 ms calls), serving one rule with `extra` keys.
fn environments(envs: usize, extra: &str) -> (Arc<FakeCloud>, Vec<Arc<App<FakeCloud>>>) {
    let text = format!(
        "listener_arns = [\"{L1}\"]\nhold = \"2m\"\n[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\"]\ntarget_group_arn = \"{TG}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n{extra}"
    );
    let cloud = Arc::new(world(Duration::from_millis(20), 30, 10));
    let apps =
        (0..envs).map(|_| Arc::new(App::with_cloud(Config::from_toml(&text).unwrap(), Arc::clone(&cloud)))).collect();
    (cloud, apps)
}

/// Calls per second over `secs`: EC2/ECS/ELBv2 apart from DynamoDB.
fn per_second(counts: &[(Op, usize)], secs: f64) -> (f64, f64) {
    let sum = |ddb: bool| -> usize {
        counts.iter().filter(|(op, _)| [Op::GetItem, Op::PutItem, Op::Scan].contains(op) == ddb).map(|(_, n)| n).sum()
    };
    (sum(false) as f64 / secs, sum(true) as f64 / secs)
}

/// A sleeping click-mode rule whose page is polled once a second by `clients` browsers through
/// `envs` environments for a minute (nothing wakes it): AWS calls per second, EC2/ECS/ELBv2 and
/// DynamoDB apart.
fn click_page(envs: usize, clients: usize) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(async move {
        let (cloud, apps) = environments(envs, "wake = \"click\"\n");
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..clients {
            let apps = apps.clone();
            tasks.spawn(async move {
                for tick in 0..60usize {
                    let app = &apps[(c + tick) % apps.len()];
                    let v =
                        app.handle(event("api.dev.example.com", "/__autostop/status", "application/json"), None).await;
                    assert_eq!(v.unwrap()["statusCode"], 200);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        per_second(&cloud.call_counts(), 60.0)
    })
}

/// What a fleet of Lambda environments does during one wake.
struct Fleet {
    /// AWS calls per second while waking, EC2/ECS/ELBv2 and DynamoDB apart.
    aws_per_sec: f64,
    ddb_per_sec: f64,
    starts: usize,
    switches: usize,
    invocations: usize,
}

/// `envs` independent Lambda environments (separate `App`s: nothing shared but the fake cloud and
/// its DynamoDB) serve `browsers` clients polling the status once a second, or `held` API
/// clients holding one request each, during a wake with a 30 s boot and health 10 s later.
/// Each request lands on an environment in turn, as Lambda spreads concurrent invocations.
fn fleet(envs: usize, browsers: usize, held: usize) -> Fleet {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(async move {
        let (cloud, apps) = environments(envs, "");
        let invocations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..browsers.max(held) {
            let (apps, cloud, invocations) = (apps.clone(), Arc::clone(&cloud), Arc::clone(&invocations));
            let is_browser = c < browsers;
            tasks.spawn(async move {
                for tick in 0..120usize {
                    if cloud.route(L1, "api.dev.example.com") == [TG] {
                        return; // the app answers now: nothing reaches autostop
                    }
                    let app = &apps[(c + tick) % apps.len()];
                    invocations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if is_browser {
                        app.handle(event("api.dev.example.com", "/__autostop/status", "application/json"), None)
                            .await
                            .unwrap();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    } else {
                        // Held, or (beyond the rule's hold slots) 503 at once: retried after
                        // its Retry-After, as HTTP clients do.
                        let v =
                            app.handle(event("api.dev.example.com", "/api", "application/json"), None).await.unwrap();
                        match v["statusCode"].as_u64() {
                            Some(307) => return,
                            Some(503) => {
                                let after = v["multiValueHeaders"]["retry-after"][0]
                                    .as_str()
                                    .or(v["headers"]["retry-after"].as_str())
                                    .and_then(|a| a.parse().ok())
                                    .expect("a 503 says when to retry");
                                tokio::time::sleep(Duration::from_secs(after)).await;
                            }
                            other => panic!("a held client got {other:?}"),
                        }
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let secs = start.elapsed().as_secs_f64().max(1.0);
        let counts = cloud.call_counts();
        let (aws_per_sec, ddb_per_sec) = per_second(&counts, secs);
        let get = |want: Op| counts.iter().find(|(op, _)| *op == want).map(|(_, n)| *n).unwrap_or(0);
        Fleet {
            aws_per_sec,
            ddb_per_sec,
            starts: get(Op::StartInstances),
            switches: get(Op::ModifyRule),
            invocations: invocations.load(std::sync::atomic::Ordering::Relaxed),
        }
    })
}

/// One idle check over `n` awake rules (one instance each, with a `busy_when` signal, so two
/// metric queries per rule), on a zero-latency fake: AWS calls by operation and wall time.
fn idle_check_cost(n: usize, dry_run: bool) -> (Vec<(Op, usize)>, f64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(async {
        let mut text = format!("listener_arns = [\"{L1}\"]\nidle = \"5m\"\n");
        let cloud = FakeCloud::with_latency(Duration::ZERO);
        cloud.add_listener(L1);
        cloud.set_rule_quota(2 * n); // one standing rule per rule: a raised quota past 100
        for i in 0..n {
            let id = format!("i-{i:017x}");
            let tg = format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t{i}/{i:016x}");
            text.push_str(&format!(
                "[[rules]]\nname = \"env{i}\"\nhosts = [\"env{i}.dev.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\nbusy_when = {{ network_packets_in = 500 }}\n"
            ));
            cloud.add_instance(&id, InstanceState::Running, Duration::ZERO);
            cloud.add_target_group(&tg, Duration::ZERO);
            cloud.register_instance(&tg, &id);
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        let app = App::new(Config::from_toml(&text).unwrap(), cloud);
        let start = Instant::now();
        let report = app.handle(json!({"autostop": "idle-check", "dry_run": dry_run}), None).await.unwrap();
        let wall = start.elapsed().as_secs_f64() * 1e3;
        assert_eq!(report["rules"].as_array().unwrap().len(), n);
        (app.cloud().call_counts(), wall)
    })
}

/// The same 200 rules behind OIDC sign-in: a poll with a valid token (ES256 verified, the key
/// cached) and one without (401 page).
fn signin_times() {
    use autostop::cloud::{Authenticate, Cloud, Secret};
    use autostop::config::Access;
    use autostop::identity::testing::{StaticKeys, TestKey};
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let auth = "auth = { oidc = { issuer = \"https://idp.example.com\", authorization_endpoint = \"https://idp.example.com/a\", token_endpoint = \"https://idp.example.com/t\", user_info_endpoint = \"https://idp.example.com/u\", client_id = \"c\", client_secret_env = \"UNSET\" } }\n";
    let mut text = format!(
        "listener_arns = [\"{L1}\"]\nhold = \"2m\"\ndashboard = {{ host = \"autostop.dev.example.com\" }}\n{auth}"
    );
    for i in 0..200 {
        text.push_str(&format!(
            "[[rules]]\nname = \"env{i}\"\nhosts = [\"env{i}.dev.example.com\", \"*.env{i}.dev.example.com\"]\ntarget_group_arn = \"{TG}\"\nec2 = {{ instance_ids = [\"{I1}\"] }}\n"
        ));
    }
    let mut config = Config::from_toml(&text).expect("bench config");
    for rule in &mut config.rules {
        if let Access::Sso(Authenticate::Oidc(o)) = &mut rule.access {
            o.client_secret = Secret(Some("s".into()));
        }
    }
    let key = TestKey::new();
    let (verifier, _) = StaticKeys::new(&[("k1", &key)]).verifier();
    let cloud = world(Duration::ZERO, 600, 0);
    let app = Arc::new(App::new(config, cloud).with_verifier(verifier));
    let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";
    let exp = app.cloud().now() + 86_400;
    let token = key.token(
        json!({"alg": "ES256", "kid": "k1", "signer": lb, "exp": exp}),
        json!({"sub": "u", "email": "ana@example.com"}),
        true,
    );
    let with = |token: Option<&str>| {
        let mut ev = event("env7.dev.example.com", "/__autostop/status", "application/json");
        ev["headers"]["x-forwarded-proto"] = json!("https");
        if let Some(t) = token {
            ev["headers"]["x-amzn-oidc-data"] = json!(t);
        }
        ev
    };
    rt.block_on(app.handle(with(Some(&token)), None)).unwrap();
    let mut fleet = with(Some(&token));
    fleet["headers"]["host"] = json!("autostop.dev.example.com");
    fleet["path"] = json!("/");
    fleet["headers"]["accept"] = json!("text/html");
    fleet["headers"]["user-agent"] = json!("Mozilla/5.0");
    let cases = [
        ("signed-in status poll", with(Some(&token))),
        ("no sign-in (401)", with(None)),
        ("fleet page, 200 rows", fleet),
    ];
    for (label, ev) in cases {
        let (median, p99) = measure(&rt, 20_000, || {
            let app = Arc::clone(&app);
            let ev = ev.clone();
            async move { app.handle(ev, None).await.unwrap() }
        });
        println!("  {label:<28} {median:>8.1} / {p99:>8.1}");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a listing; there are no tests here.
    }
    handler_times();
    println!(
        "behind sign-in (200 rules, ES256 verified on every request, the key cached; the fleet page reads one Scan):"
    );
    signin_times();
    println!();
    println!("AWS calls per wake (boot 30 s, healthy 10 s later, held API requests, paused clock):");
    for n in [1usize, 10, 200] {
        let (counts, _) = calls_per_wake(n, 10_000);
        let total: usize = counts.iter().map(|(_, c)| c).sum();
        let detail: Vec<String> = counts.iter().map(|(op, c)| format!("{op}={c}")).collect();
        println!("  {n:>3} concurrent: {total:>3} calls  [{}]", detail.join(" "));
    }
    // The delay depends on where the healthy moment falls between two polls: sample ten offsets.
    let delays: Vec<f64> = (0..10).map(|k| calls_per_wake(1, 10_000 + 100 * k).1).collect();
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    let max = delays.iter().cloned().fold(0.0, f64::max);
    println!("  target healthy -> standing rule switched to the app: mean {mean:.2} s, max {max:.2} s (10 offsets; poll ~1 s, 20 ms calls)");
    println!();
    println!("a sleeping click-mode page polled once a second for a minute (20 ms calls; it wakes nothing):");
    for (envs, clients) in [(1usize, 1usize), (1, 50), (5, 50), (20, 50)] {
        let (aws, ddb) = click_page(envs, clients);
        println!("  {envs:>3} envs {clients:>4} clients: {aws:>5.1} EC2/ECS/ELBv2 calls per s, {ddb:>5.1} DynamoDB calls per s");
    }
    println!();
    println!(
        "one wake across a fleet of Lambda environments (boot 30 s, healthy 10 s later, 20 ms calls, one listener):"
    );
    println!(
        "  {:>4} envs  {:>5} clients        | EC2/ECS/ELBv2 per s | DynamoDB per s | starts | switches | invocations",
        "", ""
    );
    let mut cases: Vec<(usize, usize, usize, &str)> = Vec::new();
    for envs in [1usize, 10, 50] {
        for browsers in [1usize, 100, 1000] {
            cases.push((envs, browsers, 0, "browsers"));
        }
        cases.push((envs, 0, 50, "held API"));
    }
    for (envs, browsers, held, kind) in cases {
        let f = fleet(envs, browsers, held);
        println!(
            "  {envs:>4} envs  {:>5} {kind:<14} | {:>19.1} | {:>14.1} | {:>6} | {:>8} | {:>11}",
            browsers.max(held),
            f.aws_per_sec,
            f.ddb_per_sec,
            f.starts,
            f.switches,
            f.invocations
        );
    }

    println!();
    println!("AWS calls per stop of one awake rule (one listener, 20 rules configured, 19 asleep):");
    for (label, how) in [("operator stop", "stop"), ("idle check, rule idle", "idle")] {
        let (counts, total) = calls_per_stop(how);
        let detail: Vec<String> = counts.iter().map(|(op, c)| format!("{op}={c}")).collect();
        println!("  {label:<22}: {total:>3} calls  [{}]", detail.join(" "));
    }

    println!();
    println!("one idle check (rules awake 1 h without traffic; 2 metric queries per rule):");
    for n in [10usize, 100, 1000] {
        for dry_run in [true, false] {
            let (counts, wall) = idle_check_cost(n, dry_run);
            let total: usize = counts.iter().map(|(_, c)| c).sum();
            let detail: Vec<String> = counts.iter().map(|(op, c)| format!("{op}={c}")).collect();
            let mode = if dry_run { "decide only" } else { "and stop all" };
            println!("  {n:>4} rules, {mode:<12}: {total:>5} calls, {wall:>7.1} ms  [{}]", detail.join(" "));
        }
    }
}
