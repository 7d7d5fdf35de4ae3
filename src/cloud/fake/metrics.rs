//! CloudWatch: datapoints by namespace, metric and dimensions, visible only after the lag a
//! test sets; and EMF lines turned into datapoints as CloudWatch Logs does.

use std::time::Duration;

use super::{FakeCloud, Op};
use crate::cloud::alb::{load_balancer_dimension, target_group_dimension};
use crate::cloud::{Cloud, CloudError, CloudResult, MetricQuery, MetricSeries, METRIC_QUERIES_PER_CALL};

impl FakeCloud {
    /// Makes CloudWatch datapoints visible only `lag` after their minute.
    pub fn set_metric_lag(&self, lag: Duration) {
        *self.metric_lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }

    /// Records a datapoint at the minute containing wall time `at`.
    pub fn put_metric(&self, namespace: &str, metric: &str, dimensions: &[(&str, &str)], at: i64, value: f64) {
        let key = metric_key(namespace, metric, dimensions.iter().map(|(k, v)| (*k, *v)));
        let mut s = self.lock();
        let points = s.metrics.entry(key).or_default();
        let minute = at - at.rem_euclid(60);
        match points.iter_mut().find(|(t, _)| *t == minute) {
            Some(p) => p.1 += value,
            None => points.push((minute, value)),
        }
    }

    /// ALB requests for a target group behind a load balancer, now.
    pub fn put_requests(&self, target_group_arn: &str, listener_arn: &str, count: f64) {
        let tg = target_group_dimension(target_group_arn);
        let lb = load_balancer_dimension(listener_arn);
        self.put_metric(
            "AWS/ApplicationELB",
            "RequestCount",
            &[("TargetGroup", &tg), ("LoadBalancer", &lb)],
            self.now(),
            count,
        );
    }

    /// The events put so far: (bus, detail type, detail JSON).
    pub fn events(&self) -> Vec<(String, String, String)> {
        self.lock().events.clone()
    }

    /// PutEvents of one entry: the detail must be a JSON object (EventBridge rejects an entry
    /// whose `Detail` is not, EventBridge API reference, PutEventsRequestEntry).
    pub(super) async fn op_put_event(&self, bus: &str, detail_type: &str, detail: &str) -> CloudResult<()> {
        self.enter(Op::PutEvents).await?;
        if !serde_json::from_str::<serde_json::Value>(detail).is_ok_and(|v| v.is_object()) {
            return Err(CloudError::new("PutEvents", "MalformedDetail", "Detail is not a JSON object"));
        }
        self.lock().events.push((bus.to_string(), detail_type.to_string(), detail.to_string()));
        Ok(())
    }

    /// The EMF lines emitted so far.
    pub fn metric_lines(&self) -> Vec<String> {
        self.lock().emf.clone()
    }

    /// Kept as a log line, and turned into datapoints as CloudWatch does with an EMF line:
    /// every metric under every dimension set it declares ("Specification: Embedded metric
    /// format", CloudWatch user guide).
    pub(super) fn op_emit_metrics(&self, line: String) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            let at = v["_aws"]["Timestamp"].as_i64().unwrap_or(0) / 1000;
            for def in v["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
                let ns = def["Namespace"].as_str().unwrap_or("");
                for set in def["Dimensions"].as_array().into_iter().flatten() {
                    let dims: Vec<(&str, &str)> = set
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|d| d.as_str())
                        .map(|d| (d, v[d].as_str().unwrap_or("")))
                        .collect();
                    for m in def["Metrics"].as_array().into_iter().flatten() {
                        let name = m["Name"].as_str().unwrap_or("");
                        self.put_metric(ns, name, &dims, at, v[name].as_f64().unwrap_or(0.0));
                    }
                }
            }
        }
        self.lock().emf.push(line);
    }

    pub(super) async fn op_metric_data(
        &self,
        queries: &[MetricQuery],
        start: i64,
        end: i64,
    ) -> CloudResult<Vec<MetricSeries>> {
        for _ in queries.chunks(METRIC_QUERIES_PER_CALL) {
            self.enter(Op::GetMetricData).await?;
        }
        let lag = self.metric_lag.lock().unwrap_or_else(|p| p.into_inner()).as_secs() as i64;
        let visible_until = self.now() - lag;
        let s = self.lock();
        Ok(queries
            .iter()
            .map(|q| {
                let key = metric_key(q.namespace, q.metric, q.dimensions.iter().map(|(k, v)| (*k, v.as_str())));
                let mut points: Vec<(i64, f64)> = s
                    .metrics
                    .get(&key)
                    .map(|p| {
                        p.iter().copied().filter(|(t, _)| *t >= start && *t < end && t + 60 <= visible_until).collect()
                    })
                    .unwrap_or_default();
                points.sort_by_key(|p| std::cmp::Reverse(p.0));
                MetricSeries { id: q.id.clone(), points }
            })
            .collect())
    }
}

pub(super) fn metric_key<'a>(namespace: &str, metric: &str, dims: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let dims: Vec<String> = dims.map(|(k, v)| format!("{k}={v}")).collect();
    format!("{namespace}|{metric}|{}", dims.join(","))
}
