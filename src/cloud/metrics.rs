//! CloudWatch metric queries and their series, as the idle check and the status read them.

/// One metric to read, one-minute periods. `id` must start with a lower-case letter.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub id: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    /// In the order they were published (CloudWatch matches them exactly).
    pub dimensions: Vec<(&'static str, String)>,
    /// `Sum`, `Average` or `Maximum`.
    pub stat: &'static str,
}

/// Datapoints of one query: (start of the minute in epoch seconds, value).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricSeries {
    pub id: String,
    pub points: Vec<(i64, f64)>,
}

/// GetMetricData takes at most 500 queries per call.
pub const METRIC_QUERIES_PER_CALL: usize = 500;
