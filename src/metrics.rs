//! CloudWatch Embedded Metric Format: one JSON log line per event, which CloudWatch Logs turns
//! into metrics in the `autostop` namespace. No PutMetricData call, no extra permission.
//!
//! Emitted: `Wakes`, `TimeToReady` and time per phase (`TimeStarting`, `TimeWaitingForHealth`)
//! when a wake's standing rules are switched to the app; `SecondsAsleep` when a wake starts; `Stops` by `Reason` and
//! `SecondsAwake` when a rule is stopped; `Errors` by AWS `Code` when a wake step fails.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "autostop";

/// A metric value and its CloudWatch unit (`Count`, `Seconds`).
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    pub unit: &'a str,
}

/// One EMF line: `dimensions` are (name, value) pairs, all of them one dimension set.
pub fn line(timestamp_ms: i64, dimensions: &[(&str, &str)], metrics: &[Metric]) -> String {
    let names: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
    line_sets(timestamp_ms, dimensions, &[&names], metrics)
}

/// One EMF line whose metrics are published under each of `sets` (lists of dimension names
/// from `dimensions`): `Wakes` by `Rule` as before, and by `Rule` and `Cause`.
pub fn line_sets(timestamp_ms: i64, dimensions: &[(&str, &str)], sets: &[&[&str]], metrics: &[Metric]) -> String {
    let mut root = Map::new();
    for (name, value) in dimensions {
        root.insert(name.to_string(), json!(value));
    }
    for m in metrics {
        root.insert(m.name.to_string(), json!(m.value));
    }
    let dims: Vec<Vec<&str>> = sets.iter().map(|set| set.to_vec()).collect();
    let defs: Vec<Value> = metrics.iter().map(|m| json!({ "Name": m.name, "Unit": m.unit })).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{ "Namespace": NAMESPACE, "Dimensions": dims, "Metrics": defs }]
        }),
    );
    Value::Object(root).to_string()
}

pub fn count(name: &str) -> Metric<'_> {
    Metric { name, value: 1.0, unit: "Count" }
}

pub fn seconds(name: &str, value: u64) -> Metric<'_> {
    Metric { name, value: value as f64, unit: "Seconds" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_valid_emf() {
        let l = line(
            1_700_000_000_000,
            &[("Rule", "api"), ("Reason", "idle")],
            &[count("Stops"), seconds("SecondsAwake", 600)],
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let def = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(def["Namespace"], "autostop");
        assert_eq!(def["Dimensions"], json!([["Rule", "Reason"]]));
        assert_eq!(
            def["Metrics"],
            json!([{"Name": "Stops", "Unit": "Count"}, {"Name": "SecondsAwake", "Unit": "Seconds"}])
        );
        assert_eq!(
            (v["Rule"].as_str(), v["Reason"].as_str(), v["Stops"].as_f64(), v["SecondsAwake"].as_f64()),
            (Some("api"), Some("idle"), Some(1.0), Some(600.0))
        );
        assert!(!l.contains('\n'), "one line");
    }
}
