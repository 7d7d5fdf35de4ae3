//! CloudWatch: GetMetricData in batches of 500 queries, paged.

use std::collections::HashMap;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_cloudwatch::Client;

use super::error::cloud_error;
use crate::cloud::{CloudResult, MetricQuery, MetricSeries, METRIC_QUERIES_PER_CALL};

pub async fn metric_data(
    client: &Client,
    queries: &[MetricQuery],
    start: i64,
    end: i64,
) -> CloudResult<Vec<MetricSeries>> {
    let mut by_id: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
    for batch in queries.chunks(METRIC_QUERIES_PER_CALL) {
        let mut token: Option<String> = None;
        loop {
            let out = client
                .get_metric_data()
                .set_metric_data_queries(Some(batch.iter().map(to_query).collect()))
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .scan_by(ScanBy::TimestampDescending)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("GetMetricData", e))?;
            for r in out.metric_data_results() {
                let Some(id) = r.id() else { continue };
                let points = r.timestamps().iter().map(|t| t.secs()).zip(r.values().iter().copied());
                by_id.entry(id.to_string()).or_default().extend(points);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(queries
        .iter()
        .map(|q| MetricSeries { id: q.id.clone(), points: by_id.remove(&q.id).unwrap_or_default() })
        .collect())
}

fn to_query(q: &MetricQuery) -> MetricDataQuery {
    let mut metric = Metric::builder().namespace(q.namespace).metric_name(q.metric);
    for (name, value) in &q.dimensions {
        metric = metric.dimensions(Dimension::builder().name(*name).value(value).build());
    }
    MetricDataQuery::builder()
        .id(&q.id)
        .metric_stat(MetricStat::builder().metric(metric.build()).period(60).stat(q.stat).build())
        .return_data(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_smithy_mocks::{mock, mock_client};

    fn request_count(i: usize) -> MetricQuery {
        MetricQuery {
            id: format!("r{i}"),
            namespace: "AWS/ApplicationELB",
            metric: "RequestCount",
            dimensions: vec![
                ("TargetGroup", format!("targetgroup/t{i}/0123456789abcdef")),
                ("LoadBalancer", "app/dev/50dc6c495c0c9188".into()),
            ],
            stat: "Sum",
        }
    }

    #[tokio::test]
    async fn query_shape_namespace_metric_dimensions_period_stat() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| {
                let q = &r.metric_data_queries()[0];
                let stat = q.metric_stat().unwrap();
                let metric = stat.metric().unwrap();
                let dims: Vec<(&str, &str)> =
                    metric.dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
                q.id() == Some("r0")
                    && q.return_data() == Some(true)
                    && metric.namespace() == Some("AWS/ApplicationELB")
                    && metric.metric_name() == Some("RequestCount")
                    && dims
                        == [
                            ("TargetGroup", "targetgroup/t0/0123456789abcdef"),
                            ("LoadBalancer", "app/dev/50dc6c495c0c9188"),
                        ]
                    && stat.period() == Some(60)
                    && stat.stat() == Some("Sum")
                    && r.start_time().map(|t| t.secs()) == Some(1_000)
                    && r.end_time().map(|t| t.secs()) == Some(4_600)
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("r0")
                            .timestamps(DateTime::from_secs(4_500))
                            .timestamps(DateTime::from_secs(4_440))
                            .values(3.0)
                            .values(0.0)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, [&rule]);
        let got = metric_data(&client, &[request_count(0)], 1_000, 4_600).await.unwrap();
        assert_eq!(got, vec![MetricSeries { id: "r0".into(), points: vec![(4_500, 3.0), (4_440, 0.0)] }]);
    }

    #[tokio::test]
    async fn a_thousand_queries_take_two_calls_of_at_most_500() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| r.metric_data_queries().len() <= 500)
            .sequence()
            .output(|| GetMetricDataOutput::builder().build())
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_cloudwatch, [&rule]);
        let queries: Vec<MetricQuery> = (0..1000).map(request_count).collect();
        let got = metric_data(&client, &queries, 0, 60).await.unwrap();
        assert_eq!(got.len(), 1000, "a series per query, even an empty one");
        assert_eq!(rule.num_calls(), 2);
    }
}
