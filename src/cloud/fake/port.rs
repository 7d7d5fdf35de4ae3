//! The fake as the port: each [`Cloud`] method is the operation of the part that models it.

use tokio::time::Instant;

use super::FakeCloud;
use crate::cloud::{
    AutoScalingGroup, Cloud, CloudResult, Database, Instance, ListenerFacts, ListenerRule, MetricQuery, MetricSeries,
    NewRule, RuleChange, RuleState, Service, TargetHealth,
};

impl Cloud for FakeCloud {
    fn now(&self) -> i64 {
        self.epoch + Instant::now().duration_since(self.born).as_secs() as i64
    }

    fn now_ms(&self) -> i64 {
        self.epoch * 1000 + Instant::now().duration_since(self.born).as_millis() as i64
    }

    fn emit_metrics(&self, line: String) {
        self.op_emit_metrics(line)
    }

    async fn instances(&self, ids: &[String]) -> CloudResult<Vec<Instance>> {
        self.op_instances(ids).await
    }

    async fn start_instances(&self, ids: &[String]) -> CloudResult<()> {
        self.op_start_instances(ids).await
    }

    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> CloudResult<()> {
        self.op_stop_instances(ids, hibernate).await
    }

    async fn services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        self.op_services(cluster, names).await
    }

    async fn tag_service(&self, service_arn: &str, key: &str, value: &str) -> CloudResult<()> {
        self.op_tag_service(service_arn, key, value).await
    }

    async fn scale_service(&self, cluster: &str, service: &str, desired: u32) -> CloudResult<()> {
        self.op_scale_service(cluster, service, desired).await
    }

    async fn databases(&self, instances: &[String], clusters: &[String]) -> CloudResult<Vec<Database>> {
        self.op_databases(instances, clusters).await
    }

    async fn start_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        self.op_start_database(id, cluster).await
    }

    async fn stop_database(&self, id: &str, cluster: bool) -> CloudResult<()> {
        self.op_stop_database(id, cluster).await
    }

    async fn auto_scaling_groups(&self, names: &[String]) -> CloudResult<Vec<AutoScalingGroup>> {
        self.op_auto_scaling_groups(names).await
    }

    async fn update_auto_scaling_group(&self, name: &str, min: u32, desired: u32) -> CloudResult<()> {
        self.op_update_auto_scaling_group(name, min, desired).await
    }

    async fn tag_auto_scaling_group(&self, name: &str, tags: &[(&str, String)]) -> CloudResult<()> {
        self.op_tag_auto_scaling_group(name, tags).await
    }

    async fn load_balancers_of_groups(
        &self,
        arns: &[String],
    ) -> CloudResult<std::collections::HashMap<String, Vec<String>>> {
        self.op_load_balancers_of_groups(arns).await
    }

    async fn health_check(&self, target_group_arn: &str) -> CloudResult<crate::cloud::HealthCheck> {
        self.op_health_check(target_group_arn).await
    }

    async fn target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth> {
        self.op_target_health(target_group_arn).await
    }

    async fn listener_rules(&self, listener_arn: &str) -> CloudResult<Vec<ListenerRule>> {
        self.op_listener_rules(listener_arn).await
    }

    async fn listeners_of(&self, load_balancer_arn: &str) -> CloudResult<Vec<String>> {
        self.op_listeners_of(load_balancer_arn).await
    }

    async fn listener_facts(&self, listener_arn: &str) -> CloudResult<ListenerFacts> {
        self.op_listener_facts(listener_arn).await
    }

    async fn create_rule(&self, rule: &NewRule) -> CloudResult<String> {
        self.op_create_rule(rule).await
    }

    async fn modify_rule(&self, rule_arn: &str, change: &RuleChange) -> CloudResult<()> {
        self.op_modify_rule(rule_arn, change).await
    }

    async fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> CloudResult<()> {
        self.op_set_rule_priorities(priorities).await
    }

    async fn delete_rule(&self, rule_arn: &str) -> CloudResult<()> {
        self.op_delete_rule(rule_arn).await
    }

    async fn metric_data(&self, queries: &[MetricQuery], start: i64, end: i64) -> CloudResult<Vec<MetricSeries>> {
        self.op_metric_data(queries, start, end).await
    }

    async fn load_states(&self, _table: &str) -> CloudResult<Vec<RuleState>> {
        self.op_load_states(_table).await
    }

    async fn load_state(&self, _table: &str, rule: &str) -> CloudResult<Option<RuleState>> {
        self.op_load_state(_table, rule).await
    }

    async fn put_event(&self, bus: &str, detail_type: &str, detail: &str) -> CloudResult<()> {
        self.op_put_event(bus, detail_type, detail).await
    }

    async fn save_state(&self, _table: &str, state: &RuleState, expected: Option<u64>) -> CloudResult<()> {
        self.op_save_state(_table, state, expected).await
    }
}
