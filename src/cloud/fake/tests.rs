//! The fake's own tests: each AWS behaviour it claims to enforce, named with its source, seen
//! through the port as autostop sees it.

use std::time::Duration;

use super::*;
use crate::cloud::{Cloud, CloudResult, ErrorKind, MetricQuery, NewRule, RuleChange, Weighted};

const L: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";
const I1: &str = "i-0123456789abcdef0";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|h| h.to_string()).collect()
}

fn rule(priority: u32, hosts: &[&str], forward: Vec<Weighted>) -> NewRule {
    NewRule { listener_arn: L.into(), priority, hosts: s(hosts), forward, auth: None, owner: "api".into() }
}

/// A running instance in `TG`, and a listener whose default action is the Lambda.
fn world() -> FakeCloud {
    let cloud = FakeCloud::with_latency(Duration::ZERO);
    cloud.add_instance(I1, InstanceState::Running, Duration::from_secs(30));
    cloud.add_target_group(TG, Duration::from_secs(10));
    cloud.register_instance(TG, I1);
    cloud.add_listener(L);
    cloud
}

fn code<T: std::fmt::Debug>(r: CloudResult<T>) -> String {
    r.expect_err("AWS refuses this").code
}

/// ELBv2 API reference, TargetHealth: a group no listener rule or default action references
/// is not health-checked (`unused`, `Target.NotInUse`); ALB guide, "Health checks for your
/// target groups": once referenced, a target is `initial` for HealthyThresholdCount x
/// interval, at least 2 x 5 s, then `healthy`.
#[tokio::test(start_paused = true)]
async fn a_group_is_health_checked_only_once_referenced_and_healthy_after_the_threshold() {
    let cloud = world();
    let h = cloud.target_health(TG).await.unwrap();
    assert_eq!((h.not_in_use, h.healthy, h.total), (1, 0, 0));
    cloud
        .create_rule(&rule(10, &["api.x.com"], vec![Weighted::new(LAMBDA_TG, 1), Weighted::new(TG, 0)]))
        .await
        .unwrap();
    assert_eq!(cloud.target_health(TG).await.unwrap().initial, 1, "a weight-0 member is referenced too");
    tokio::time::advance(MIN_HEALTHY_AFTER - Duration::from_secs(1)).await;
    assert_eq!(cloud.target_health(TG).await.unwrap().healthy, 0);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cloud.target_health(TG).await.unwrap().healthy, 1);
}

/// ELBv2 API reference, TargetHealth: a stopped instance target is `unused`
/// (`Target.InvalidState`), not counted among the checked ones.
#[tokio::test(start_paused = true)]
async fn a_stopped_instance_is_not_a_checked_target() {
    let cloud = world();
    cloud.set_instance_state(I1, InstanceState::Stopped);
    cloud.create_rule(&rule(10, &["api.x.com"], vec![Weighted::new(TG, 1)])).await.unwrap();
    let h = cloud.target_health(TG).await.unwrap();
    assert_eq!((h.total, h.healthy, h.initial), (0, 0, 0));
}

/// ALB guide, "Listener rules": rules in priority order, the first match wins, else the default
/// action; "Condition types for listener rules": host values match case-insensitively, `*`
/// any characters (dots too), `?` exactly one; ELBv2 API reference, TargetGroupTuple: traffic
/// only to members with a weight above 0.
#[tokio::test(start_paused = true)]
async fn routing_is_first_match_by_priority_with_alb_host_globs_and_weights() {
    let cloud = world();
    cloud.add_foreign_rule(L, 5, &["*.X.com"]);
    cloud.create_rule(&rule(10, &["api.x.com"], vec![Weighted::new(TG, 1)])).await.unwrap();
    cloud
        .create_rule(&rule(20, &["web-?.y.com"], vec![Weighted::new(LAMBDA_TG, 0), Weighted::new(TG, 1)]))
        .await
        .unwrap();
    assert_eq!(cloud.route(L, "api.x.com"), vec!["arn:foreign-tg"], "the wildcard at 5 comes first");
    assert_eq!(cloud.route(L, "a.b.x.com"), vec!["arn:foreign-tg"], "* spans dots");
    assert_eq!(cloud.route(L, "web-1.y.com"), vec![TG], "weight 0 gets nothing");
    assert_eq!(cloud.route(L, "web-12.y.com"), vec![LAMBDA_TG], "? is one character: the default action");
}

/// ALB guide, "Condition types for listener rules" and quotas: one host-header condition of at
/// most 3 values per rule, each at most 128 characters; ELBv2 API reference,
/// ForwardActionConfig: 1 to 5 target groups, weights 0-999.
#[tokio::test(start_paused = true)]
async fn rule_shapes_beyond_alb_quotas_are_refused() {
    let cloud = world();
    let fwd = || vec![Weighted::new(TG, 1)];
    let long = format!("{}.x.com", "a".repeat(124));
    assert_eq!(code(cloud.create_rule(&rule(1, &["a.x", "b.x", "c.x", "d.x"], fwd())).await), "ValidationError");
    assert_eq!(code(cloud.create_rule(&rule(2, &[long.as_str()], fwd())).await), "ValidationError");
    let six = vec![Weighted::new(TG, 1); 6];
    assert_eq!(code(cloud.create_rule(&rule(3, &["a.x"], six)).await), "ValidationError");
    assert_eq!(code(cloud.create_rule(&rule(4, &["a.x"], vec![Weighted::new(TG, 1000)])).await), "ValidationError");
    assert!(cloud.create_rule(&rule(5, &["a.x", "b.x", "c.x"], vec![Weighted::new(TG, 999)])).await.is_ok());
}

/// ELBv2 API reference, CreateRule: priorities 1-50000, one rule per priority
/// (`PriorityInUse`); ALB quotas: rules per load balancer (`TooManyRules`, 100 by default).
#[tokio::test(start_paused = true)]
async fn priorities_are_unique_and_in_range_and_rules_per_load_balancer_are_counted() {
    let cloud = world();
    let fwd = || vec![Weighted::new(TG, 1)];
    assert_eq!(code(cloud.create_rule(&rule(0, &["a.x"], fwd())).await), "ValidationError");
    assert_eq!(code(cloud.create_rule(&rule(50_001, &["a.x"], fwd())).await), "ValidationError");
    cloud.create_rule(&rule(7, &["a.x"], fwd())).await.unwrap();
    assert_eq!(code(cloud.create_rule(&rule(7, &["b.x"], fwd())).await), "PriorityInUse");
    cloud.set_rule_quota(2);
    cloud.create_rule(&rule(8, &["b.x"], fwd())).await.unwrap();
    assert_eq!(code(cloud.create_rule(&rule(9, &["c.x"], fwd())).await), "TooManyRules");
}

/// ELBv2 API reference, SetRulePriorities: "You can reorder the rules as long as there are no
/// priority conflicts in the new order" (moto checks before the change instead).
#[tokio::test(start_paused = true)]
async fn set_rule_priorities_checks_the_order_after_the_change() {
    let cloud = world();
    let a = cloud.create_rule(&rule(1, &["a.x"], vec![Weighted::new(TG, 1)])).await.unwrap();
    let b = cloud.create_rule(&rule(2, &["b.x"], vec![Weighted::new(TG, 1)])).await.unwrap();
    cloud.set_rule_priorities(&[(a.clone(), 2), (b.clone(), 1)]).await.unwrap();
    let order: Vec<String> = cloud.rules(L).into_iter().map(|r| r.arn).collect();
    assert_eq!(order, vec![b.clone(), a.clone()], "swapped in one call");
    assert_eq!(code(cloud.set_rule_priorities(&[(a, 1)]).await), "PriorityInUse", "b stays on 1");
}

/// ELBv2 API reference, ModifyRule / SetRulePriorities / DeleteRule / DescribeTags: a rule that
/// is gone is `RuleNotFound` (moto's DeleteRule succeeds instead).
#[tokio::test(start_paused = true)]
async fn a_rule_that_is_gone_is_rule_not_found_and_a_listing_that_raced_it_lists_again() {
    let cloud = world();
    let arn = cloud.create_rule(&rule(1, &["a.x"], vec![Weighted::new(TG, 1)])).await.unwrap();
    cloud.delete_during_next_listing(&arn);
    assert!(cloud.listener_rules(L).await.unwrap().is_empty(), "the listing after RuleNotFound");
    assert_eq!(cloud.calls(Op::DescribeRules), 2, "DescribeTags said RuleNotFound: listed again");
    assert_eq!(code(cloud.modify_rule(&arn, &RuleChange::default()).await), "RuleNotFound");
    assert_eq!(code(cloud.set_rule_priorities(&[(arn.clone(), 3)]).await), "RuleNotFound");
    assert_eq!(code(cloud.delete_rule(&arn).await), "RuleNotFound");
}

/// EC2 API reference, StartInstances: a `stopping` instance cannot be started
/// (`IncorrectInstanceState`); EC2 troubleshooting: an instance whose encrypted volume cannot be
/// attached goes `pending` -> `stopped` with `Client.InternalError`.
#[tokio::test(start_paused = true)]
async fn instances_start_only_when_stopped_and_a_kms_failure_falls_back_to_stopped() {
    let cloud = world();
    cloud.set_stopping(I1, Duration::from_secs(20));
    assert_eq!(code(cloud.start_instances(&s(&[I1])).await), "IncorrectInstanceState");
    tokio::time::advance(Duration::from_secs(20)).await;
    cloud.fail_to_boot(I1);
    cloud.start_instances(&s(&[I1])).await.unwrap();
    assert_eq!(cloud.instance_state(I1), InstanceState::Pending);
    tokio::time::advance(Duration::from_secs(30)).await;
    let i = cloud.instances(&s(&[I1])).await.unwrap().remove(0);
    assert_eq!((i.state, i.state_reason.as_deref()), (InstanceState::Stopped, Some("Client.InternalError")));
}

/// EC2 user guide, "Hibernate your Amazon EC2 instance": only an instance launched with
/// hibernation enabled can hibernate.
#[tokio::test(start_paused = true)]
async fn only_an_instance_launched_for_hibernation_hibernates() {
    let cloud = world();
    assert_eq!(code(cloud.stop_instances(&s(&[I1]), true).await), "UnsupportedOperation");
    cloud.enable_hibernation(I1);
    cloud.stop_instances(&s(&[I1]), true).await.unwrap();
    assert!(cloud.hibernated(I1));
}

/// EC2 Auto Scaling API reference, UpdateAutoScalingGroup: a desired capacity outside the
/// group's min and max is a `ValidationError`.
#[tokio::test(start_paused = true)]
async fn a_group_takes_a_desired_capacity_within_min_and_max_only() {
    let cloud = world();
    cloud.add_asg("web", 1, 3, 2, Duration::from_secs(60));
    assert_eq!(code(cloud.update_auto_scaling_group("web", 0, 4).await), "ValidationError");
    assert_eq!(code(cloud.update_auto_scaling_group("web", 2, 1).await), "ValidationError");
    cloud.update_auto_scaling_group("web", 0, 0).await.unwrap();
    assert_eq!(cloud.asg_sizes("web"), (0, 0));
}

/// RDS API reference, StartDBInstance / StopDBInstance: only a stopped database starts and only
/// an available one stops (`InvalidDBInstanceState`; `InvalidDBClusterStateFault` for a
/// cluster); RDS user guide: a read replica cannot be stopped.
#[tokio::test(start_paused = true)]
async fn databases_start_when_stopped_stop_when_available_and_never_a_read_replica() {
    let cloud = world();
    cloud.add_database("db", false, "available", Duration::from_secs(60));
    cloud.add_database("aurora", true, "stopped", Duration::from_secs(60));
    cloud.add_database("replica", false, "available", Duration::from_secs(60));
    cloud.make_read_replica("replica", "db");
    assert_eq!(code(cloud.start_database("db", false).await), "InvalidDBInstanceState");
    assert_eq!(code(cloud.stop_database("aurora", true).await), "InvalidDBClusterStateFault");
    assert_eq!(code(cloud.stop_database("replica", false).await), "InvalidDBInstanceState");
    cloud.start_database("aurora", true).await.unwrap();
    assert_eq!(cloud.database_status("aurora", true), "starting");
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(cloud.database_status("aurora", true), "available");
}

/// CloudWatch user guide, "Specification: Embedded metric format": every metric of a line is
/// extracted under each dimension set it declares; ALB guide, CloudWatch metrics: datapoints
/// come late (the lag a test sets).
#[tokio::test(start_paused = true)]
async fn emf_lines_become_datapoints_under_each_set_once_the_lag_has_passed() {
    let cloud = world();
    cloud.set_metric_lag(Duration::from_secs(120));
    let dims = [("Rule", "api"), ("Cause", "browser")];
    let line = crate::telemetry::emf::line_sets(
        cloud.now_ms(),
        &dims,
        &[&["Rule"], &["Rule", "Cause"]],
        &[crate::telemetry::emf::count("Wakes")],
    );
    cloud.emit_metrics(line);
    let query = |id: &str, d: Vec<(&'static str, String)>| MetricQuery {
        id: id.into(),
        namespace: "autostop",
        metric: "Wakes",
        dimensions: d,
        stat: "Sum",
    };
    let queries = [
        query("a", vec![("Rule", "api".into())]),
        query("b", vec![("Rule", "api".into()), ("Cause", "browser".into())]),
    ];
    let (from, to) = (cloud.now() - 600, cloud.now() + 600);
    let early = cloud.metric_data(&queries, from, to).await.unwrap();
    assert!(early.iter().all(|s| s.points.is_empty()), "not visible before the lag");
    tokio::time::advance(Duration::from_secs(180)).await;
    let later = cloud.metric_data(&queries, from, to).await.unwrap();
    assert_eq!(later.iter().map(|s| s.points.len()).collect::<Vec<_>>(), vec![1, 1], "one datapoint under each set");
}

/// DynamoDB API reference, PutItem with a ConditionExpression: a write conditional on a version
/// that is no longer stored fails with `ConditionalCheckFailedException`; a missing table is
/// `ResourceNotFoundException`.
#[tokio::test(start_paused = true)]
async fn the_state_table_writes_only_over_the_version_expected() {
    let cloud = world();
    let item = RuleState { version: 1, ..RuleState::new("api") };
    cloud.save_state("t", &item, None).await.unwrap();
    assert_eq!(code(cloud.save_state("t", &item, None).await), "ConditionalCheckFailedException", "exists already");
    let next = RuleState { version: 2, ..item.clone() };
    cloud.save_state("t", &next, Some(1)).await.unwrap();
    let e = cloud.save_state("t", &next, Some(1)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    cloud.drop_state_table();
    assert_eq!(code(cloud.load_state("t", "api").await), "ResourceNotFoundException");
}

/// Every call is counted by its operation, failed ones included, and a failure injected for one
/// operation is that operation's only.
#[tokio::test(start_paused = true)]
async fn calls_are_counted_by_operation_and_failures_are_injected_per_operation() {
    let cloud = world();
    cloud.fail_next(Op::StartInstances, "InsufficientInstanceCapacity", 1);
    cloud.set_instance_state(I1, InstanceState::Stopped);
    assert!(cloud.instances(&s(&[I1])).await.is_ok(), "another operation is unaffected");
    assert_eq!(code(cloud.start_instances(&s(&[I1])).await), "InsufficientInstanceCapacity");
    cloud.start_instances(&s(&[I1])).await.unwrap();
    assert_eq!(cloud.call_counts(), vec![(Op::DescribeInstances, 1), (Op::StartInstances, 2)]);
}

/// EC2 API reference, error codes: `InsufficientInstanceCapacity` fails the StartInstances that
/// asks for such an instance; the fake starts none of its instances.
#[tokio::test(start_paused = true)]
async fn a_start_asking_for_an_instance_without_capacity_fails_whole() {
    let cloud = world();
    let i2 = "i-0fedcba9876543210";
    cloud.add_instance(i2, InstanceState::Stopped, Duration::from_secs(30));
    cloud.set_instance_state(I1, InstanceState::Stopped);
    cloud.no_capacity_for(i2, true);
    assert_eq!(code(cloud.start_instances(&s(&[I1, i2])).await), "InsufficientInstanceCapacity");
    assert_eq!(cloud.instance_state(I1), InstanceState::Stopped, "none of the call's instances started");
    cloud.start_instances(&s(&[I1])).await.unwrap();
    assert_eq!(cloud.instance_state(I1), InstanceState::Pending);
}

/// ALB guide, "Health checks for your target groups": a target turns healthy after
/// HealthyThresholdCount passing checks, HealthCheckIntervalSeconds apart; DescribeTargetGroups
/// reports both.
#[tokio::test(start_paused = true)]
async fn a_target_turns_healthy_after_threshold_times_interval_as_the_group_reports() {
    let cloud = world();
    cloud.set_health_check(TG, 3, 10);
    assert_eq!(cloud.health_check(TG).await.unwrap().floor_secs(), 30);
    cloud.create_rule(&rule(10, &["api.x.com"], vec![Weighted::new(TG, 1)])).await.unwrap();
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(cloud.target_health(TG).await.unwrap().healthy, 0);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cloud.target_health(TG).await.unwrap().healthy, 1);
}

/// ALB quotas, "Load balancers per target group: 1"; ELBv2 API reference, TargetGroup
/// `LoadBalancerArns` ("you can use each target group with only one load balancer") and the
/// `TargetGroupAssociationLimit` error of CreateRule and ModifyRule.
#[tokio::test(start_paused = true)]
async fn a_target_group_serves_one_load_balancer() {
    const OTHER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/staging/7c1b2d3e4f5a6b7c/0a1b2c3d4e5f6a7b";
    let cloud = world();
    cloud.add_listener_with_default(
        OTHER,
        Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop-2/1"),
    );
    assert_eq!(
        cloud.load_balancers_of_groups(&[TG.to_string()]).await.unwrap()[TG],
        Vec::<String>::new(),
        "attached nowhere yet"
    );
    cloud.create_rule(&rule(1, &["a.x"], vec![Weighted::new(TG, 0), Weighted::new(LAMBDA_TG, 1)])).await.unwrap();
    let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";
    assert_eq!(
        cloud.load_balancers_of_groups(&[TG.to_string()]).await.unwrap()[TG],
        vec![lb.to_string()],
        "weight 0 attaches it too"
    );
    let elsewhere = NewRule { listener_arn: OTHER.into(), ..rule(1, &["a.x"], vec![Weighted::new(TG, 1)]) };
    let e = cloud.create_rule(&elsewhere).await.unwrap_err();
    assert_eq!((e.code.as_str(), e.kind), ("TargetGroupAssociationLimit", ErrorKind::Limit));
    let other = NewRule { listener_arn: OTHER.into(), ..rule(2, &["b.x"], vec![Weighted::new(I1_TG, 1)]) };
    cloud.add_target_group(I1_TG, Duration::from_secs(10));
    let arn = cloud.create_rule(&other).await.unwrap();
    let to_tg = RuleChange { hosts: None, forward: Some(vec![Weighted::new(TG, 1)]), auth: None };
    assert_eq!(code(cloud.modify_rule(&arn, &to_tg).await), "TargetGroupAssociationLimit");
    let asked = cloud.load_balancers_of_groups(&[TG.to_string(), "arn:unknown".to_string()]).await.unwrap();
    assert_eq!(asked.keys().collect::<Vec<_>>(), vec![TG], "unknown groups are left out");
}

const I1_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/staging-api/9";

/// DescribeRules never returns an OIDC client secret (ELBv2 API reference,
/// AuthenticateOidcActionConfig): the fake keeps none either, so nothing can come to rely on it.
#[tokio::test(start_paused = true)]
async fn a_rule_behind_oidc_reads_back_without_its_secret() {
    use crate::cloud::{Authenticate, Oidc, Secret};
    let cloud = world();
    let oidc = Authenticate::Oidc(Oidc {
        issuer: "https://idp.example.com".into(),
        authorization_endpoint: "https://idp.example.com/a".into(),
        token_endpoint: "https://idp.example.com/t".into(),
        user_info_endpoint: "https://idp.example.com/u".into(),
        client_id: "c".into(),
        client_secret: Secret(Some("s3cret".into())),
        session: Default::default(),
    });
    let new = NewRule { auth: Some(oidc), ..rule(1, &["a.x.com"], vec![Weighted::new(TG, 1)]) };
    cloud.create_rule(&new).await.unwrap();
    let read = cloud.listener_rules(L).await.unwrap();
    let Some(Authenticate::Oidc(o)) = &read[0].auth else { panic!("the action is there") };
    assert_eq!(o.client_secret.0, None);
}
