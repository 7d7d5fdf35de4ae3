//! CloudWatch Embedded Metric Format: one JSON log line per event, which CloudWatch Logs turns
//! into metrics in the `autostop` namespace. No PutMetricData call, no extra permission.
//!
//! Emitted: `Wakes`, `TimeToReady` and time per phase (`TimeStarting`, `TimeWaitingForHealth`)
//! when a wake's standing rules are switched to the app; `SecondsAsleep` when a wake starts; `Stops` by `Reason` and
//! `SecondsAwake` when a rule is stopped; `Errors` by AWS `Code` when a wake step fails.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

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
    let line = Line { timestamp_ms, dimensions, sets, metrics };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The EMF document, serialised straight from its parts: a refused request emits one, and a
/// JSON tree built first would cost more than the refusal itself.
struct Line<'a> {
    timestamp_ms: i64,
    dimensions: &'a [(&'a str, &'a str)],
    sets: &'a [&'a [&'a str]],
    metrics: &'a [Metric<'a>],
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut root = serializer.serialize_map(None)?;
        for (name, value) in self.dimensions {
            root.serialize_entry(name, value)?;
        }
        for m in self.metrics {
            root.serialize_entry(m.name, &m.value)?;
        }
        let defs: Vec<Definition> = self.metrics.iter().map(|m| Definition { name: m.name, unit: m.unit }).collect();
        let directive = Directive { namespace: NAMESPACE, dimensions: self.sets, metrics: &defs };
        root.serialize_entry("_aws", &Aws { timestamp: self.timestamp_ms, cloud_watch_metrics: [directive] })?;
        root.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Aws<'a> {
    timestamp: i64,
    cloud_watch_metrics: [Directive<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'a str,
    dimensions: &'a [&'a [&'a str]],
    metrics: &'a [Definition<'a>],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Definition<'a> {
    name: &'a str,
    unit: &'a str,
}

/// A line whose only varying part is its timestamp, built once and split around it: the
/// `Refused` line of a rule and reason is the same on every refusal but for the time.
#[derive(Debug, Clone)]
pub struct Template {
    head: String,
    tail: String,
}

impl Template {
    pub fn new(dimensions: &[(&str, &str)], metrics: &[Metric]) -> Template {
        let line = line(0, dimensions, metrics);
        // `"Timestamp":0` unescaped is the key itself: inside a JSON string its quotes are `\"`.
        let at = line.rfind("\"Timestamp\":0").map(|i| i + "\"Timestamp\":".len()).unwrap_or(line.len());
        Template { head: line[..at].to_string(), tail: line[at + 1..].to_string() }
    }

    pub fn at(&self, timestamp_ms: i64) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(self.head.len() + self.tail.len() + 13);
        out.push_str(&self.head);
        let _ = write!(out, "{timestamp_ms}");
        out.push_str(&self.tail);
        out
    }
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
    use serde_json::{json, Value};

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

    #[test]
    fn a_template_is_the_line_at_any_time() {
        for rule in ["api", "\"Timestamp\":0", "-9"] {
            let dims = [("Rule", rule), ("Reason", "bot")];
            let template = Template::new(&dims, &[count("Refused")]);
            for ts in [0, 1_700_000_000_123, 9] {
                assert_eq!(template.at(ts), line(ts, &dims, &[count("Refused")]), "{rule} at {ts}");
            }
        }
    }
}
