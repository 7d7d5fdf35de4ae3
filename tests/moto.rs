//! Integration tests: the real handler and AWS adapters against a moto server, so the wire
//! protocols are real. `make test` starts moto and sets AWS_ENDPOINT_URL (tests/with-moto.sh);
//! plain `cargo test` skips these.

mod common;

use std::time::Duration;

use autostop::app::App;
use autostop::cloud::aws::AwsCloud;
use aws_sdk_ec2::types::{InstanceStateName, InstanceType};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum, TargetDescription, TargetTypeEnum};
use common::*;

struct World {
    sdk: aws_config::SdkConfig,
    ec2: aws_sdk_ec2::Client,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    listeners: Vec<String>,
    /// The default action's target group: autostop's Lambda.
    lambda_tg: String,
    vpc: String,
}

async fn world(name: &str) -> World {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|u| u.starts_with("http://127.0.0.1")),
        "these tests need moto: run them with `make test`"
    );
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let subnets: Vec<String> = ec2
        .describe_subnets()
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .filter(|s| s.default_for_az() == Some(true))
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .take(2)
        .collect();
    let vpc = ec2.describe_vpcs().send().await.unwrap().vpcs()[0].vpc_id().unwrap().to_string();
    let lb = elb.create_load_balancer().name(name).set_subnets(Some(subnets)).send().await.unwrap().load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let lambda_tg = elb
        .create_target_group()
        .name(format!("{name}-autostop"))
        .target_type(TargetTypeEnum::Lambda)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let mut listeners = Vec::new();
    for port in [80, 8080] {
        let l = elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .default_actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&lambda_tg).build())
            .send()
            .await
            .unwrap();
        listeners.push(l.listeners()[0].listener_arn().unwrap().to_string());
    }
    World { sdk, ec2, ecs, elb, listeners, lambda_tg, vpc }
}

impl World {
    async fn target_group(&self, name: &str, kind: TargetTypeEnum) -> String {
        self.elb
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(&self.vpc)
            .target_type(kind)
            .send()
            .await
            .unwrap()
            .target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string()
    }

    /// An instance registered in `tg`, stopped.
    async fn stopped_instance(&self, tg: &str) -> String {
        let id = self
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .unwrap()
            .instances()[0]
            .instance_id()
            .unwrap()
            .to_string();
        // Registered while running (AWS refuses stopped targets), then put to sleep.
        self.elb
            .register_targets()
            .target_group_arn(tg)
            .targets(TargetDescription::builder().id(&id).port(80).build())
            .send()
            .await
            .unwrap();
        self.ec2.stop_instances().instance_ids(&id).send().await.unwrap();
        id
    }

    /// A cluster with one service of `desired` tasks.
    async fn ecs_service(&self, cluster: &str, service: &str, desired: i32) {
        self.ecs.create_cluster().cluster_name(cluster).send().await.unwrap();
        let container =
            aws_sdk_ecs::types::ContainerDefinition::builder().name(service).image("nginx").memory(128).build();
        self.ecs.register_task_definition().family(service).container_definitions(container).send().await.unwrap();
        self.ecs
            .create_service()
            .cluster(cluster)
            .service_name(service)
            .task_definition(service)
            .desired_count(desired)
            .send()
            .await
            .unwrap();
    }

    async fn instance_state(&self, id: &str) -> InstanceStateName {
        let out = self.ec2.describe_instances().instance_ids(id).send().await.unwrap();
        out.reservations()[0].instances()[0].state().unwrap().name().unwrap().clone()
    }

    /// Non-default rules of a listener as (priority, hosts, target groups it sends traffic to,
    /// autostop:rule tag), in priority order.
    async fn rules(&self, listener: &str) -> Vec<(String, Vec<String>, Vec<String>, Option<String>)> {
        let out = self.elb.describe_rules().listener_arn(listener).send().await.unwrap();
        let mut rules = Vec::new();
        let mut sorted: Vec<_> = out.rules().iter().filter(|r| r.is_default() != Some(true)).collect();
        sorted.sort_by_key(|r| r.priority().unwrap().parse::<u32>().unwrap());
        for r in sorted {
            let arn = r.rule_arn().unwrap();
            let tags = self.elb.describe_tags().resource_arns(arn).send().await.unwrap();
            let owner = tags.tag_descriptions()[0]
                .tags()
                .iter()
                .find(|t| t.key() == Some("autostop:rule"))
                .and_then(|t| t.value().map(str::to_string));
            let hosts = r
                .conditions()
                .iter()
                .filter(|c| c.field() == Some("host-header"))
                .flat_map(|c| c.host_header_config().map(|h| h.values().to_vec()).unwrap_or_default())
                .collect();
            // Where the rule sends traffic: forward members with a weight above 0.
            let tgs = r
                .actions()
                .iter()
                .flat_map(|a| match a.forward_config() {
                    Some(fc) if !fc.target_groups().is_empty() => fc
                        .target_groups()
                        .iter()
                        .filter(|t| t.weight().unwrap_or(1) > 0)
                        .filter_map(|t| t.target_group_arn().map(str::to_string))
                        .collect::<Vec<_>>(),
                    _ => a.target_group_arn().map(str::to_string).into_iter().collect(),
                })
                .collect();
            rules.push((r.priority().unwrap().to_string(), hosts, tgs, owner));
        }
        rules
    }

    /// `autostop validate --aws` of a config with this world's listeners and `rules`.
    fn validate_aws(&self, name: &str, rules: &str) -> (i32, String, String) {
        let listeners: Vec<String> = self.listeners.iter().map(|l| format!("\"{l}\"")).collect();
        let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.toml"));
        std::fs::write(&file, format!("listener_arns = [{}]\n{rules}", listeners.join(", "))).unwrap();
        cli(&["validate", "--aws"], &file)
    }

    fn app(&self, rules: &str) -> App<AwsCloud> {
        self.app_at(rules, "autostop-state", 0)
    }

    /// An app whose clock runs `skew` seconds ahead, with its own state table.
    fn app_at(&self, rules: &str, table: &str, skew: i64) -> App<AwsCloud> {
        let listeners: Vec<String> = self.listeners.iter().map(|l| format!("\"{l}\"")).collect();
        let text = format!(
            "listener_arns = [{}]\nstate_table = \"{table}\"\nhold = \"20s\"\nsettle = \"1s\"\n{rules}",
            listeners.join(", ")
        );
        App::new(config(&text), AwsCloud::new(&self.sdk).with_clock_skew(skew))
    }

    async fn state_table(&self, name: &str) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("rule")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(KeySchemaElement::builder().attribute_name("rule").key_type(KeyType::Hash).build().unwrap())
            .send()
            .await
            .unwrap();
    }

    async fn item(&self, table: &str, rule: &str) -> std::collections::HashMap<String, String> {
        let out = aws_sdk_dynamodb::Client::new(&self.sdk)
            .get_item()
            .table_name(table)
            .key("rule", aws_sdk_dynamodb::types::AttributeValue::S(rule.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item()
            .map(|i| i.iter().filter_map(|(k, v)| v.as_s().or(v.as_n()).ok().map(|s| (k.clone(), s.clone()))).collect())
            .unwrap_or_default()
    }

    async fn desired(&self, cluster: &str, service: &str) -> (i32, Option<String>) {
        let out = self.ecs.describe_services().cluster(cluster).services(service).send().await.unwrap();
        let svc = &out.services()[0];
        let tags = self.ecs.list_tags_for_resource().resource_arn(svc.service_arn().unwrap()).send().await.unwrap();
        let tag = tags.tags().iter().find(|t| t.key() == Some("autostop:desired-count")).and_then(|t| t.value());
        (svc.desired_count(), tag.map(str::to_string))
    }
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn an_ec2_rule_wakes_through_the_real_handler() {
    let w = world("it-ec2").await;
    let tg = w.target_group("it-ec2-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Stopped);
    let app = w.app(&format!(
        "[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\", \"*.api.dev.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    ));

    let before = app.handle(serde_json::json!({"autostop": "status"}), None).await.unwrap();
    assert_eq!(before["rules"][0]["phase"], "stopped", "{before}");

    let r = api(&app, "POST", "api.dev.example.com", "/v1/items").await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/v1/items"));
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Running);
    for listener in &w.listeners {
        let rules = w.rules(listener).await;
        assert_eq!(rules.len(), 1, "exactly one rule on {listener}: {rules:?}");
        let (_, hosts, tgs, owner) = &rules[0];
        assert_eq!(hosts, &vec!["api.dev.example.com".to_string(), "*.api.dev.example.com".to_string()]);
        assert_eq!(tgs, &vec![tg.clone()]);
        assert_eq!(owner.as_deref(), Some("api"));
    }

    // A second request for the same host: 307, and nothing new in the listener.
    let r = api(&app, "GET", "x.api.dev.example.com", "/again").await;
    assert_eq!(r.status, 307);
    for listener in &w.listeners {
        assert_eq!(w.rules(listener).await.len(), 1);
    }
    // A fresh Lambda instance (no memory) finds the rule in place and creates no other.
    let fresh = w.app(&format!(
        "[[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\", \"*.api.dev.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    ));
    assert_eq!(api(&fresh, "GET", "api.dev.example.com", "/").await.status, 307);
    for listener in &w.listeners {
        assert_eq!(w.rules(listener).await.len(), 1);
    }
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn an_ecs_rule_scales_up_and_routes_once_a_target_registers() {
    let w = world("it-ecs").await;
    let tg = w.target_group("it-ecs-web", TargetTypeEnum::Ip).await;
    w.ecs_service("it-dev", "web", 0).await;
    let app = w.app(&format!(
        "[[rules]]\nname = \"web\"\nhosts = [\"web.dev.example.com\"]\ntarget_group_arn = \"{tg}\"\necs = {{ cluster = \"it-dev\", service = \"web\", desired_count = 2 }}\n"
    ));

    let s = status(&app, "web.dev.example.com").await;
    assert_eq!(s["phase"], "starting", "{s}");
    let svc = w.ecs.describe_services().cluster("it-dev").services("web").send().await.unwrap();
    assert_eq!(svc.services()[0].desired_count(), 2);

    // No healthy target yet: a held request runs out its hold budget.
    let left = Some(Duration::from_secs(5));
    let v = app
        .handle(alb_event("GET", "web.dev.example.com", "/", &[("accept", "application/json")]), left)
        .await
        .unwrap();
    let r = Resp::from_value(v);
    assert_eq!((r.status, r.json()["phase"].as_str()), (503, Some("waiting_for_health")), "{}", r.body);
    for listener in &w.listeners {
        let rules = w.rules(listener).await;
        assert_eq!(rules.len(), 1, "the standing rule exists from the first request: {rules:?}");
        assert_eq!(rules[0].2, vec![w.lambda_tg.clone()], "but sends traffic to the Lambda until a target is healthy");
    }

    // ECS would register the task's IP now.
    w.elb
        .register_targets()
        .target_group_arn(&tg)
        .targets(TargetDescription::builder().id("10.0.1.50").port(80).build())
        .send()
        .await
        .unwrap();
    let r = api(&app, "GET", "web.dev.example.com", "/").await;
    assert_eq!(r.status, 307, "{}", r.body);
    for listener in &w.listeners {
        let rules = w.rules(listener).await;
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0].1, vec!["web.dev.example.com".to_string()]);
        assert_eq!(rules[0].2, vec![tg.clone()]);
        assert_eq!(rules[0].3.as_deref(), Some("web"));
    }
}

/// The whole loop: wake, traffic for one rule only, idle check "later", wake again. What moto
/// shows is the end state; the order of the stop (traffic away before anything stops) is
/// asserted on the strict fake, which checks after every call that nothing routes to a
/// stopping target (tests/idle.rs).
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn idle_check_stops_the_idle_rule_and_leaves_the_busy_one() {
    let w = world("it-loop").await;
    w.state_table("it-loop-state").await;
    let api_tg = w.target_group("it-loop-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&api_tg).await;
    let web_tg = w.target_group("it-loop-web", TargetTypeEnum::Ip).await;
    // Someone left the web service running (2 tasks) with no listener rule.
    w.ecs_service("it-loop", "web", 2).await;
    let task_ip = TargetDescription::builder().id("10.0.2.10").port(80).build();
    w.elb.register_targets().target_group_arn(&web_tg).targets(task_ip.clone()).send().await.unwrap();
    let rules = format!(
        "idle = \"5m\"\n\
         [[rules]]\nname = \"api\"\nhosts = [\"api.loop.example.com\"]\ntarget_group_arn = \"{api_tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n\
         [[rules]]\nname = \"web\"\nhosts = [\"web.loop.example.com\"]\ntarget_group_arn = \"{web_tg}\"\necs = {{ cluster = \"it-loop\", service = \"web\" }}\n"
    );
    let now_app = w.app_at(&rules, "it-loop-state", 0);
    assert_eq!(api(&now_app, "GET", "api.loop.example.com", "/").await.status, 307);
    assert_eq!(w.item("it-loop-state", "api").await.get("phase").map(String::as_str), Some("ready"));

    // Twenty minutes later the api has traffic (the ALB wrote RequestCount), the web has none.
    let later = 20 * 60;
    let cw = aws_sdk_cloudwatch::Client::new(&w.sdk);
    let lb = autostop::cloud::alb::load_balancer_dimension(&w.listeners[0]);
    let when = std::time::SystemTime::now() + Duration::from_secs(later as u64 - 4 * 60);
    cw.put_metric_data()
        .namespace("AWS/ApplicationELB")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("RequestCount")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("TargetGroup")
                        .value(autostop::cloud::alb::target_group_dimension(&api_tg))
                        .build(),
                )
                .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("LoadBalancer").value(lb).build())
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(when))
                .value(42.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let later_app = w.app_at(&rules, "it-loop-state", later);
    let event = serde_json::json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let report = later_app.handle(event, None).await.unwrap();
    let decision = |rule: &str| {
        let r = report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).unwrap().clone();
        (r["action"].as_str().unwrap().to_string(), r["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(decision("api"), ("keep".to_string(), "nothing".to_string()), "{report}");
    assert_eq!(decision("web"), ("stop".to_string(), "done".to_string()), "{report}");

    // The busy rule is untouched; the idle one's standing rule sends traffic to the Lambda again,
    // and its service sleeps at 0 remembering 2.
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Running);
    for listener in &w.listeners {
        let rules = w.rules(listener).await;
        assert_eq!(rules.len(), 2, "one standing rule per rule: {rules:?}");
        let to = |owner: &str| rules.iter().find(|r| r.3.as_deref() == Some(owner)).unwrap().2.clone();
        assert_eq!((to("api"), to("web")), (vec![api_tg.clone()], vec![w.lambda_tg.clone()]));
    }
    assert_eq!(w.desired("it-loop", "web").await, (0, Some("2".to_string())));
    let item = w.item("it-loop-state", "web").await;
    assert_eq!((item["phase"].as_str(), item["stops"].as_str()), ("stopped", "1"), "{item:?}");

    // ECS took the task out of the target group; a visitor wakes it again.
    w.elb.deregister_targets().target_group_arn(&web_tg).targets(task_ip.clone()).send().await.unwrap();
    let s = status(&later_app, "web.loop.example.com").await;
    assert_eq!(s["phase"], "starting", "{s}");
    assert_eq!(w.desired("it-loop", "web").await.0, 2, "the remembered count is restored");
    w.elb.register_targets().target_group_arn(&web_tg).targets(task_ip).send().await.unwrap();
    assert_eq!(api(&later_app, "GET", "web.loop.example.com", "/").await.status, 307);
    for listener in &w.listeners {
        let rules = w.rules(listener).await;
        assert_eq!(rules.len(), 2, "{rules:?}");
        let to = |owner: &str| rules.iter().find(|r| r.3.as_deref() == Some(owner)).unwrap().2.clone();
        assert_eq!((to("api"), to("web")), (vec![api_tg.clone()], vec![web_tg.clone()]));
    }
    let item = w.item("it-loop-state", "web").await;
    assert_eq!((item["phase"].as_str(), item["wakes"].as_str()), ("ready", "1"), "{item:?}");
    assert!(item["version"].parse::<u64>().unwrap() >= 4, "stopping, stopped, starting, ready: {item:?}");
}

/// Runs the real binary as a CLI (outside Lambda) against moto.
fn cli(args: &[&str], config: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autostop"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("the binary runs");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).to_string();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn the_cli_validates_wakes_reports_and_stops() {
    let w = world("it-cli").await;
    w.state_table("it-cli-state").await;
    let tg = w.target_group("it-cli-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let listeners: Vec<String> = w.listeners.iter().map(|l| format!("\"{l}\"")).collect();
    let base = format!("listener_arns = [{}]\nstate_table = \"it-cli-state\"\nsettle = \"1s\"\n", listeners.join(", "));
    let api_rule = format!(
        "[[rules]]\nname = \"api\"\nhosts = [\"api.cli.example.com\"]\ntarget_group_arn = \"{tg}\"\nhourly_cost = 3600.0\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    );
    let good = dir.join("good.toml");
    std::fs::write(&good, format!("{base}{api_rule}")).unwrap();

    let (code, out, _) = cli(&["validate"], &good);
    assert_eq!((code, out.trim()), (0, "config ok: 1 rules, 1 hosts, 2 listeners"));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, format!("{base}{}", api_rule.replace("hourly_cost", "hourly_costs"))).unwrap();
    let (code, _, err) = cli(&["validate"], &bad);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hourly_costs"), "{err}");
    let (code, out, err) = cli(&["validate", "--aws"], &good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 standing rules (1 host chunks x 2 listeners) + 0 rules not ours = 2 of 100 rules"),
        "the budget against moto's DescribeAccountLimits: {out}"
    );
    // `hibernate = true` on an instance launched without hibernation: named, not a silent stop.
    let hib = dir.join("hibernate.toml");
    std::fs::write(&hib, format!("{base}{}", api_rule.replace("\"] }", "\"], hibernate = true }"))).unwrap();
    let (code, out, err) = cli(&["validate", "--aws"], &hib);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("instance {id} is not enabled for hibernation")), "{out}");

    let (code, out, err) = cli(&["wake", "api"], &good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("api: ready after"), "{out}");
    assert!(err.contains("starting") && err.contains("routing"), "progress on the way: {err}");
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Running);

    let (code, out, _) = cli(&["status", "--json"], &good);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let api = &report["rules"][0];
    assert_eq!(
        (api["phase"].as_str(), api["listener_rules"].as_u64(), api["wakes"].as_u64()),
        (Some("ready"), Some(2), Some(1)),
        "{api}"
    );
    assert_eq!(api["hosts"], serde_json::json!(["api.cli.example.com"]));
    let (_, table, _) = cli(&["status"], &good);
    let row = table.lines().find(|l| l.starts_with("api ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("ready") && row.contains(&id) && row.contains("1/0"), "{table}");

    let epoch = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let stopped_from = epoch();
    let (code, out, err) = cli(&["stop", "api"], &good);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Stopped);
    for l in &w.listeners {
        let rules = w.rules(l).await;
        assert_eq!(rules.len(), 1, "the standing rule stays: {rules:?}");
        assert_eq!(rules[0].2, vec![w.lambda_tg.clone()], "and sends traffic to the Lambda");
    }
    let (_, out, _) = cli(&["status", "--json"], &good);
    let api: serde_json::Value = serde_json::from_str::<serde_json::Value>(&out).unwrap()["rules"][0].clone();
    assert_eq!((api["phase"].as_str(), api["stops"].as_u64()), (Some("stopped"), Some(1)), "{api}");
    // hourly_cost 3600 is 1 per second asleep: the saving is the seconds asleep so far.
    let asleep_so_far = (epoch() - stopped_from) as f64;
    let saved = api["saved_this_month"].as_f64().unwrap();
    assert!((0.0..=asleep_so_far + 1.0).contains(&saved), "saved {saved} for at most {asleep_so_far} s: {api}");
    let (code, out, _) = cli(&["idle-check", "--dry-run"], &good);
    assert_eq!(code, 0);
    assert!(out.contains("api") && out.contains("asleep"), "{out}");
    let (code, _, err) = cli(&["wake", "nope"], &good);
    assert_eq!(code, 2, "{err}");
    // Waking again closes the sleep into the month's total, priced at hourly_cost.
    let (code, out, err) = cli(&["wake", "api"], &good);
    assert_eq!(code, 0, "{out}{err}");
    let slept_at_most = epoch() - stopped_from;
    let item = w.item("it-cli-state", "api").await;
    assert_eq!(item.get("asleep_month"), Some(&autostop::state::savings::month_label(epoch())), "{item:?}");
    let asleep: i64 = item["asleep_seconds"].parse().unwrap();
    assert!((0..=slept_at_most).contains(&asleep), "slept {asleep} s of at most {slept_at_most}: {item:?}");
    let saved: f64 = item["saved_this_month"].parse().unwrap();
    assert_eq!(saved, asleep as f64, "1 per second asleep: {item:?}");

    // Overrides through the real adapters: recorded by the caller's identity from STS.
    let (code, out, err) = cli(&["sleep", "api", "--for", "2h"], &good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("api: asleep until ") && out.contains("UTC"), "{out}");
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Stopped, "put to sleep now");
    let item = w.item("it-cli-state", "api").await;
    assert_eq!(item.get("override_mode").map(String::as_str), Some("asleep"), "{item:?}");
    assert!(item.get("override_by").is_some_and(|b| b.starts_with("arn:aws:")), "STS caller: {item:?}");
    let (_, out, _) = cli(&["status", "--json"], &good);
    let api: serde_json::Value = serde_json::from_str::<serde_json::Value>(&out).unwrap()["rules"][0].clone();
    assert!(api["intent"].as_str().is_some_and(|i| i.starts_with("put to sleep by arn:aws:")), "{api}");
    let (code, _, err) = cli(&["wake", "api", "--timeout", "5s"], &good);
    assert_eq!(code, 1, "held asleep: the wake starts nothing. {err}");
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Stopped);
    let (code, out, err) = cli(&["resume", "api"], &good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!w.item("it-cli-state", "api").await.contains_key("override_mode"));
    let (code, _, err) = cli(&["keep-awake", "api", "--until", "someday"], &good);
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = cli(&["keep-awake", "api", "--for", "1h"], &good);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Running, "kept awake: started now. {out}{err}");

    // validate --aws catches a missing target group and a foreign rule on a configured host.
    w.elb
        .create_rule()
        .listener_arn(&w.listeners[0])
        .priority(7)
        .conditions(
            aws_sdk_elasticloadbalancingv2::types::RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    aws_sdk_elasticloadbalancingv2::types::HostHeaderConditionConfig::builder()
                        .values("api.cli.example.com")
                        .build(),
                )
                .build(),
        )
        .actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg).build())
        .send()
        .await
        .unwrap();
    let missing = dir.join("missing.toml");
    let ghost = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ghost/0123456789abcdef";
    std::fs::write(&missing, format!("{base}{api_rule}{}", api_rule.replace("\"api", "\"ghost").replace(&tg, ghost)))
        .unwrap();
    let (code, out, err) = cli(&["validate", "--aws"], &missing);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("target group") && out.contains("ghost") && out.contains("does not exist"), "{out}");
    assert!(out.contains("already claims host api.cli.example.com"), "{out}");

    // A listener whose default action is not autostop's Lambda, and an instance that does not
    // exist: both named.
    let lb = w.elb.describe_listeners().listener_arns(&w.listeners[0]).send().await.unwrap().listeners()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let app_default = w
        .elb
        .create_listener()
        .load_balancer_arn(lb)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(9090)
        .default_actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg).build())
        .send()
        .await
        .unwrap()
        .listeners()[0]
        .listener_arn()
        .unwrap()
        .to_string();
    let miswired = dir.join("miswired.toml");
    let text =
        format!("{base}{api_rule}").replacen("listener_arns = [", &format!("listener_arns = [\"{app_default}\", "), 1);
    std::fs::write(&miswired, text.replace(&id, "i-0000000000000dead")).unwrap();
    let (code, miswired_out, err) = cli(&["validate", "--aws"], &miswired);
    assert_eq!(code, 1, "{miswired_out}{err}");
    let not_lambda = format!("listener {app_default}: its default action does not forward to a Lambda target group");
    assert!(miswired_out.contains(&not_lambda), "{miswired_out}");
    assert!(miswired_out.contains("instance i-0000000000000dead is missing"), "{miswired_out}");
    assert!(
        out.contains("4 standing rules (2 host chunks x 2 listeners) + 1 rules not ours = 5 of 100 rules"),
        "the foreign rule counts too: {out}"
    );
}

/// Standing rules through the real adapters: sync creates them, a wake switches one to the app,
/// a stop switches it back, a config change re-syncs hosts and order, an orphan is removed.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn standing_rules_are_created_switched_reordered_and_removed() {
    let w = world("it-std").await;
    w.state_table("it-std-state").await;
    let api_tg = w.target_group("it-std-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&api_tg).await;
    let web_tg = w.target_group("it-std-web", TargetTypeEnum::Ip).await;
    w.ecs_service("it-std", "web", 0).await;
    let api_rule = format!(
        "[[rules]]\nname = \"api\"\nhosts = [\"api.std.example.com\", \"*.api.std.example.com\"]\ntarget_group_arn = \"{api_tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    );
    let web_rule = format!(
        "[[rules]]\nname = \"web\"\nhosts = [\"web.std.example.com\"]\ntarget_group_arn = \"{web_tg}\"\necs = {{ cluster = \"it-std\", service = \"web\" }}\n"
    );
    let lambda = vec![w.lambda_tg.clone()];

    // Sync: one standing rule per host set per listener, all to the Lambda.
    let app = w.app_at(&format!("{api_rule}{web_rule}"), "it-std-state", 0);
    app.handle(serde_json::json!({"autostop": "sync"}), None).await.unwrap();
    for l in &w.listeners {
        let rules = w.rules(l).await;
        let got: Vec<(&str, Option<&str>, &Vec<String>)> =
            rules.iter().map(|r| (r.0.as_str(), r.3.as_deref(), &r.2)).collect();
        assert_eq!(got, vec![("10000", Some("api"), &lambda), ("10001", Some("web"), &lambda)], "{rules:?}");
    }

    // A wake switches api's rule to the app; a stop switches it back.
    assert_eq!(api(&app, "GET", "x.api.std.example.com", "/").await.status, 307);
    for l in &w.listeners {
        assert_eq!(w.rules(l).await[0].2, vec![api_tg.clone()]);
    }
    let v = app.handle(serde_json::json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    assert_eq!(v["result"], "stopped", "{v}");
    for l in &w.listeners {
        let rules = w.rules(l).await;
        assert_eq!((rules.len(), &rules[0].2), (2, &lambda), "{rules:?}");
    }

    // A new rule claims a host under api's wildcard and comes first in the file; `web` leaves.
    let special = format!(
        "[[rules]]\nname = \"special\"\nhosts = [\"special.api.std.example.com\"]\ntarget_group_arn = \"{web_tg}\"\necs = {{ cluster = \"it-std\", service = \"web\" }}\n"
    );
    let app = w.app_at(&format!("{special}{api_rule}"), "it-std-state", 0);
    let v = app.handle(serde_json::json!({"autostop": "sync"}), None).await.unwrap();
    assert_eq!(v["listeners"][0]["deleted"], 1, "web's rule is removed: {v}");
    for l in &w.listeners {
        let got: Vec<(String, Vec<String>, Option<String>)> =
            w.rules(l).await.into_iter().map(|r| (r.0, r.1, r.3)).collect();
        let want = |p: &str, h: &str, o: &str| (p.to_string(), vec![h.to_string()], Some(o.to_string()));
        assert_eq!(
            got,
            vec![
                want("10000", "special.api.std.example.com", "special"),
                want("10001", "api.std.example.com", "api"),
                want("10002", "*.api.std.example.com", "api"),
            ]
        );
    }
}

impl World {
    /// The first standing rule's ARN and its actions' types in order, on `listener`.
    /// The load balancer, and an HTTPS listener on it whose default action is the Lambda (moto
    /// takes any certificate ARN).
    async fn https_listener(&self) -> (String, String) {
        let lb = self.elb.describe_listeners().listener_arns(&self.listeners[0]).send().await.unwrap().listeners()[0]
            .load_balancer_arn()
            .unwrap()
            .to_string();
        let cert = aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
            .certificate_arn("arn:aws:iam::123456789012:server-certificate/dev")
            .build();
        let default = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&self.lambda_tg).build();
        let out = self.elb.create_listener().load_balancer_arn(&lb).protocol(ProtocolEnum::Https).port(443);
        let out = out.certificates(cert).default_actions(default).send().await.unwrap();
        (lb, out.listeners()[0].listener_arn().unwrap().to_string())
    }

    async fn first_rule(&self, listener: &str) -> (String, Vec<String>) {
        let out = self.elb.describe_rules().listener_arn(listener).send().await.unwrap();
        let rule = out.rules().iter().find(|r| r.is_default() != Some(true)).expect("a standing rule");
        let mut actions: Vec<&Action> = rule.actions().iter().collect();
        actions.sort_by_key(|a| a.order());
        let types = actions.iter().map(|a| a.r#type().unwrap().as_str().to_string()).collect();
        (rule.rule_arn().unwrap().to_string(), types)
    }
}

/// ModifyRule replaces the whole action list, on moto as on AWS: an authenticate-oidc action an
/// operator put in front of a standing rule stays through the real adapter's wake and stop.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn an_authenticate_action_in_front_of_a_standing_rule_survives_wake_and_stop() {
    use aws_sdk_elasticloadbalancingv2::types::AuthenticateOidcActionConfig;
    let w = world("it-sso").await;
    w.state_table("it-sso-state").await;
    let tg = w.target_group("it-sso-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    let rule = format!(
        "[[rules]]\nname = \"api\"\nhosts = [\"api.sso.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    );
    let app = w.app_at(&rule, "it-sso-state", 0);
    app.handle(serde_json::json!({"autostop": "sync"}), None).await.unwrap();
    let (arn, _) = w.first_rule(&w.listeners[0]).await;
    let current = w.elb.describe_rules().rule_arns(&arn).send().await.unwrap().rules()[0].actions().to_vec();
    let oidc = AuthenticateOidcActionConfig::builder()
        .issuer("https://idp.example.com")
        .authorization_endpoint("https://idp.example.com/auth")
        .token_endpoint("https://idp.example.com/token")
        .user_info_endpoint("https://idp.example.com/userinfo")
        .client_id("dev")
        .client_secret("s3cret")
        .build();
    let auth =
        Action::builder().r#type(ActionTypeEnum::AuthenticateOidc).authenticate_oidc_config(oidc).order(1).build();
    let mut forward = current[0].clone();
    forward.order = Some(2);
    w.elb.modify_rule().rule_arn(&arn).actions(auth).actions(forward).send().await.unwrap();
    let sso = vec!["authenticate-oidc".to_string(), "forward".to_string()];

    assert_eq!(api(&app, "GET", "api.sso.example.com", "/").await.status, 307);
    assert_eq!(w.first_rule(&w.listeners[0]).await, (arn.clone(), sso.clone()), "woken");
    assert_eq!(w.rules(&w.listeners[0]).await[0].2, vec![tg.clone()]);
    let v = app.handle(serde_json::json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    assert_eq!(v["result"], "stopped", "{v}");
    assert_eq!(w.first_rule(&w.listeners[0]).await, (arn, sso), "stopped");
    assert_eq!(w.rules(&w.listeners[0]).await[0].2, vec![w.lambda_tg.clone()]);
}

/// One request to moto's own API (`/moto-api/...`) with a plain HTTP/1.1 client.
fn moto_api(method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// Standard base64 (moto's recorder encodes request bodies with it).
fn base64_decode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else { continue };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The AWS operations moto recorded whose request mentions `marker`, by name (query protocol:
/// `Action=` in the body; JSON protocols: the `X-Amz-Target` header).
fn recorded_calls(marker: &str) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for line in moto_api("GET", "/moto-api/recorder/download-recording").lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let raw = entry["body"].as_str().unwrap_or("");
        let body = if entry["body_encoded"] == true { base64_decode(raw) } else { raw.to_string() };
        let body = body.as_str();
        if !body.contains(marker) && !entry["url"].as_str().unwrap_or("").contains(marker) {
            continue;
        }
        let target = entry["headers"]
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target")).and_then(|(_, v)| v.as_str()));
        let op = match target {
            Some(t) => t.rsplit('.').next().unwrap_or(t).to_string(),
            None => body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("?").to_string(),
        };
        *counts.entry(op).or_insert(0) += 1;
    }
    counts
}

/// Three Lambda environments (three `App`s, nothing shared but moto) wake one rule under
/// concurrent held requests; moto's own request log says what reached AWS.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn three_environments_wake_a_rule_with_one_start_and_one_switch_per_listener() {
    moto_api("POST", "/moto-api/recorder/start-recording");
    let w = world("it-fleet").await;
    w.state_table("it-fleet-state").await;
    let tg = w.target_group("it-fleet-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    let rules = format!(
        "[[rules]]\nname = \"api\"\nhosts = [\"api.fleet.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    );
    let envs: Vec<std::sync::Arc<App<AwsCloud>>> =
        (0..3).map(|_| std::sync::Arc::new(w.app_at(&rules, "it-fleet-state", 0))).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..12 {
        let app = std::sync::Arc::clone(&envs[k % 3]);
        tasks.spawn(async move { api_retrying(&app, "POST", "api.fleet.example.com", "/v1/items").await });
    }
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 307, "{}", r.body);
    }
    assert_eq!(w.instance_state(&id).await, InstanceStateName::Running);
    let by_instance = recorded_calls(&id);
    assert_eq!(by_instance.get("StartInstances"), Some(&1), "{by_instance:?}");
    let on_listeners = recorded_calls("it-fleet");
    assert_eq!(on_listeners.get("CreateRule"), Some(&2), "one standing rule per listener: {on_listeners:?}");
    assert_eq!(on_listeners.get("ModifyRule"), Some(&2), "one switch per listener: {on_listeners:?}");
}

/// An Auto Scaling group through the real adapters: the operator stop remembers its sizes in
/// tags and sets them to 0; a wake restores them; validate --aws names an instance of the group
/// configured by id.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn an_auto_scaling_group_is_scaled_to_zero_and_restored() {
    let w = world("it-asg").await;
    let tg = w.target_group("it-asg-web", TargetTypeEnum::Instance).await;
    let asg = aws_sdk_autoscaling::Client::new(&w.sdk);
    let subnet = w.ec2.describe_subnets().send().await.unwrap().subnets()[0].subnet_id().unwrap().to_string();
    asg.create_launch_configuration()
        .launch_configuration_name("it-asg-lc")
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("it-asg-web")
        .launch_configuration_name("it-asg-lc")
        .min_size(1)
        .max_size(4)
        .desired_capacity(2)
        .vpc_zone_identifier(subnet)
        .target_group_arns(&tg)
        .send()
        .await
        .unwrap();
    let sizes = || async {
        let g = asg.describe_auto_scaling_groups().auto_scaling_group_names("it-asg-web").send().await.unwrap();
        let g = &g.auto_scaling_groups()[0];
        let tag = |k: &str| g.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
        (g.min_size(), g.desired_capacity(), tag("autostop:min-size"), tag("autostop:desired-capacity"))
    };
    let app = w.app(&format!(
        "[[rules]]\nname = \"web\"\nhosts = [\"web.asg.example.com\"]\ntarget_group_arn = \"{tg}\"\nasg = {{ name = \"it-asg-web\" }}\n"
    ));
    let r = app.handle(serde_json::json!({"autostop": "stop", "rule": "web"}), None).await.unwrap();
    assert_eq!(r["result"], "stopped", "{r}");
    assert_eq!(sizes().await, (Some(0), Some(0), Some("1".into()), Some("2".into())));

    let s = app.handle(serde_json::json!({"autostop": "wake", "rule": "web"}), None).await.unwrap();
    assert_ne!(s["phase"], "error", "{s}");
    assert_eq!((sizes().await.0, sizes().await.1), (Some(1), Some(2)), "restored from the tags");

    // An instance of the group named by id: validate --aws says to use the group.
    let member = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("it-asg-web")
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()[0]
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .expect("moto launches the group's instances");
    let rules = format!(
        "[[rules]]\nname = \"web\"\nhosts = [\"web.asg.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{member}\"] }}\n"
    );
    let (code, out, err) = w.validate_aws("it-asg-by-id", &rules);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("instance {member} belongs to Auto Scaling group `it-asg-web`")), "{out}");
}

/// An RDS instance and an Aurora cluster through the real adapters: stopped, then woken until
/// `available`; validate --aws names a read replica, which RDS cannot stop.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn rds_instances_and_clusters_wake_and_stop() {
    let w = world("it-rds").await;
    let rds = aws_sdk_rds::Client::new(&w.sdk);
    rds.create_db_instance()
        .db_instance_identifier("it-rds-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("dev")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .unwrap();
    rds.create_db_cluster()
        .db_cluster_identifier("it-rds-aurora")
        .engine("aurora-postgresql")
        .master_username("dev")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .unwrap();
    let status = || async {
        let i = rds.describe_db_instances().db_instance_identifier("it-rds-db").send().await.unwrap();
        let c = rds.describe_db_clusters().db_cluster_identifier("it-rds-aurora").send().await.unwrap();
        (
            i.db_instances()[0].db_instance_status().unwrap_or_default().to_string(),
            c.db_clusters()[0].status().unwrap_or_default().to_string(),
        )
    };
    let app =
        w.app("[[rules]]\nname = \"db\"\nrds = { instances = [\"it-rds-db\"], clusters = [\"it-rds-aurora\"] }\n");
    let r = app.handle(serde_json::json!({"autostop": "stop", "rule": "db"}), None).await.unwrap();
    assert_eq!(r["result"], "stopped", "{r}");
    assert_eq!(status().await, ("stopped".to_string(), "stopped".to_string()));
    let mut phase = String::new();
    for _ in 0..20 {
        let s = app.handle(serde_json::json!({"autostop": "wake", "rule": "db"}), None).await.unwrap();
        phase = s["phase"].as_str().unwrap_or_default().to_string();
        if phase == "ready" || phase == "error" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert_eq!(phase, "ready");
    assert_eq!(status().await, ("available".to_string(), "available".to_string()));

    rds.create_db_instance_read_replica()
        .db_instance_identifier("it-rds-replica")
        .source_db_instance_identifier("it-rds-db")
        .send()
        .await
        .unwrap();
    let rules = "[[rules]]\nname = \"db\"\nrds = { instances = [\"it-rds-replica\"] }\n";
    let (code, out, err) = w.validate_aws("it-rds-replica", rules);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("RDS instance it-rds-replica cannot be stopped") && out.contains("read replica"), "{out}");
}

/// validate --aws reads the load balancer's X-Forwarded-For handling (DescribeLoadBalancerAttributes)
/// and says when it defeats wake_from: `preserve` passes on what the client wrote.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn validate_names_a_forwarded_for_mode_that_defeats_wake_from() {
    use aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute;
    let w = world("it-xff").await;
    let tg = w.target_group("it-xff-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    let rules = format!(
        "wake_from = [\"10.0.0.0/8\"]\n[[rules]]\nname = \"api\"\nhosts = [\"api.xff.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    );
    let (code, out, err) = w.validate_aws("it-xff-append", &rules);
    assert_eq!(code, 0, "append (the default) is fine: {out}{err}");
    let floor = out.lines().find(|l| l.starts_with("advice: rule `api`: a wake waits at least")).unwrap_or_default();
    assert!(floor.contains("passing x") && floor.contains("--healthy-threshold-count 2"), "{out}");
    let listener = w.elb.describe_listeners().listener_arns(&w.listeners[0]).send().await.unwrap();
    let lb = listener.listeners()[0].load_balancer_arn().unwrap().to_string();
    let preserve =
        LoadBalancerAttribute::builder().key("routing.http.xff_header_processing.mode").value("preserve").build();
    w.elb.modify_load_balancer_attributes().load_balancer_arn(&lb).attributes(preserve).send().await.unwrap();
    let (code, out, err) = w.validate_aws("it-xff-preserve", &rules);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("routing.http.xff_header_processing.mode is `preserve`"), "{out}");
}

/// A rule behind sign-in through the real adapter: its standing rule on the HTTPS listener is
/// created with the authenticate action first (and reads back as configured), none is put on the
/// HTTP listener, and a signed-in request wakes it with the action kept. moto takes
/// authenticate actions on HTTP listeners too, and returns the client secret; AWS does neither
/// (the strict fake covers both, `tests/auth.rs`).
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn a_rule_behind_sign_in_authenticates_first_on_the_https_listener_only() {
    use autostop::cloud::{Authenticate, Cloud, Secret};
    use autostop::config::Access;
    use autostop::identity::testing::{StaticKeys, TestKey};
    let w = world("it-auth").await;
    w.state_table("it-auth-state").await;
    let tg = w.target_group("it-auth-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    let (lb, https) = w.https_listener().await;
    let text = format!(
        r#"listener_arns = ["{http}", "{https}"]
state_table = "it-auth-state"
hold = "20s"
auth = {{ oidc = {{ issuer = "https://idp.example.com", authorization_endpoint = "https://idp.example.com/auth",
         token_endpoint = "https://idp.example.com/token", user_info_endpoint = "https://idp.example.com/me",
         client_id = "autostop-dev", client_secret_env = "UNSET_IN_TESTS", scope = "openid email" }} }}
[[rules]]
name = "api"
hosts = ["api.auth.example.com"]
target_group_arn = "{tg}"
ec2 = {{ instance_ids = ["{id}"] }}
"#,
        http = w.listeners[0]
    );
    let mut config = config(&text);
    let Access::Sso(Authenticate::Oidc(o)) = &mut config.rules[0].access else { panic!("sso") };
    o.client_secret = Secret(Some("s3cret".into()));
    let want = config.rules[0].access.sso().cloned();
    let key = TestKey::new();
    let (verifier, _) = StaticKeys::new(&[("kid-1", &key)]).verifier();
    let app = App::new(config, AwsCloud::new(&w.sdk)).with_verifier(verifier);
    app.handle(serde_json::json!({"autostop": "sync"}), None).await.unwrap();

    let sso = vec!["authenticate-oidc".to_string(), "forward".to_string()];
    assert_eq!(w.first_rule(&https).await.1, sso, "created behind sign-in");
    assert!(w.rules(&w.listeners[0]).await.is_empty(), "no rule behind sign-in on the HTTP listener");
    let read = app.cloud().listener_rules(&https).await.unwrap();
    assert_eq!(read[0].auth, want, "read back as configured");

    let now = app.cloud().now();
    let header = serde_json::json!({"alg": "ES256", "kid": "kid-1", "signer": lb, "exp": now + 600});
    let token = key.token(header, serde_json::json!({"sub": "u-1", "email": "ana@example.com"}), true);
    let signed = |path: &str| {
        alb_event(
            "GET",
            "api.auth.example.com",
            path,
            &[("accept", "application/json"), ("x-forwarded-proto", "https"), ("x-amzn-oidc-data", &token)],
        )
    };
    let r = send(&app, signed("/")).await;
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(w.first_rule(&https).await.1, sso, "awake, still behind sign-in");
    assert_eq!(w.rules(&https).await[0].2, vec![tg.clone()]);
    let status = app.handle(serde_json::json!({"autostop": "status"}), None).await.unwrap();
    assert_eq!(status["rules"][0]["last_wake"]["woken_by"], "ana@example.com", "{status}");
    let v = app.handle(serde_json::json!({"autostop": "stop", "rule": "api"}), None).await.unwrap();
    assert_eq!(v["result"], "stopped", "{v}");
    assert_eq!(w.first_rule(&https).await.1, sso, "asleep, still behind sign-in");
}

/// validate --aws with a rule behind sign-in: a problem while every listener is HTTP (ALB
/// authenticates only on HTTPS), advice naming the HTTP one once an HTTPS listener is there too.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn validate_says_a_rule_behind_sign_in_needs_an_https_listener() {
    let w = world("it-https").await;
    let tg = w.target_group("it-https-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    let rules = format!(
        r#"auth = {{ cognito = {{ user_pool_arn = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc", user_pool_client_id = "c1", user_pool_domain = "dev-login" }} }}
[[rules]]
name = "api"
hosts = ["api.https.example.com"]
target_group_arn = "{tg}"
ec2 = {{ instance_ids = ["{id}"] }}
"#
    );
    let (code, out, err) = w.validate_aws("it-https-none", &rules);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("no listener is HTTPS") && out.contains("Type=redirect"), "{out}");
    let (_, https) = w.https_listener().await;
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-https-mixed.toml");
    std::fs::write(&file, format!("listener_arns = [\"{}\", \"{https}\"]\n{rules}", w.listeners[0])).unwrap();
    let (_, out, err) = cli(&["validate", "--aws"], &file);
    assert!(!out.contains("no listener is HTTPS"), "{out}{err}");
    assert!(out.contains(&format!("advice: listener {} is HTTP", w.listeners[0])), "{out}");
}

/// One SQS query-protocol call to moto (no SDK crate for a test's reads): the XML answer.
fn sqs(params: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let enc = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let body: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let body = body.join("&") + "&Version=2012-11-05";
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply
}

/// Every value of `<tag>` in an XML text.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|p| p.split_once(&close).map(|(v, _)| v.replace("&quot;", "\"").replace("&amp;", "&")))
        .collect()
}

/// Lifecycle events through the real adapter onto a bus, delivered by an EventBridge rule to an
/// SQS queue and read back: three environments race one wake, and exactly one `Wake Started`
/// and one `Environment Ready` arrive.
#[tokio::test]
#[ignore = "needs moto: run `make test`"]
async fn three_environments_racing_a_wake_deliver_exactly_one_environment_ready() {
    let w = world("it-events").await;
    w.state_table("it-events-state").await;
    let tg = w.target_group("it-events-api", TargetTypeEnum::Instance).await;
    let id = w.stopped_instance(&tg).await;
    let queue_url = xml_values(&sqs(&[("Action", "CreateQueue"), ("QueueName", "it-events")]), "QueueUrl")[0].clone();
    let queue_arn = "arn:aws:sqs:us-east-1:123456789012:it-events";
    let eb = aws_sdk_eventbridge::Client::new(&w.sdk);
    eb.create_event_bus().name("it-events").send().await.unwrap();
    let pattern = r#"{"source": ["autostop"]}"#;
    eb.put_rule().name("to-queue").event_bus_name("it-events").event_pattern(pattern).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("q").arn(queue_arn).build().unwrap();
    eb.put_targets().rule("to-queue").event_bus_name("it-events").targets(target).send().await.unwrap();

    let rules = format!(
        "events = {{ bus = \"it-events\" }}\n[[rules]]\nname = \"api\"\nhosts = [\"api.events.example.com\"]\ntarget_group_arn = \"{tg}\"\nec2 = {{ instance_ids = [\"{id}\"] }}\n"
    );
    let envs: Vec<std::sync::Arc<App<AwsCloud>>> =
        (0..3).map(|_| std::sync::Arc::new(w.app_at(&rules, "it-events-state", 0))).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..9 {
        let app = std::sync::Arc::clone(&envs[k % 3]);
        tasks.spawn(async move { api_retrying(&app, "GET", "api.events.example.com", "/").await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().status, 307);
    }
    let mut kinds = Vec::new();
    for _ in 0..5 {
        let got = sqs(&[("Action", "ReceiveMessage"), ("QueueUrl", &queue_url), ("MaxNumberOfMessages", "10")]);
        for body in xml_values(&got, "Body") {
            let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
            assert_eq!((event["source"].as_str(), event["detail"]["rule"].as_str()), (Some("autostop"), Some("api")));
            kinds.push(event["detail-type"].as_str().unwrap_or_default().to_string());
        }
    }
    kinds.sort();
    assert_eq!(kinds, vec!["Environment Ready", "Wake Started"], "one each, whichever environment made them");
}
