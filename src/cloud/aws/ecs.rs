//! ECS: describe services (with tags) in batches, set a desired count, tag a service.

use aws_sdk_ecs::types::{ServiceField, Tag};
use aws_sdk_ecs::Client;

use super::error::cloud_error;
use crate::cloud::{CloudResult, Service, DESIRED_COUNT_TAG};

/// DescribeServices takes at most 10 services per call.
const SERVICES_PER_CALL: usize = 10;

pub async fn services(client: &Client, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
    let mut found = Vec::with_capacity(names.len());
    for batch in names.chunks(SERVICES_PER_CALL) {
        let out = client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(batch.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(|e| cloud_error("DescribeServices", e))?;
        found.extend(out.services().iter().map(|s| to_service(cluster, s)));
    }
    // In the requested order; names ECS reported as failures (MISSING) are missing.
    Ok(names
        .iter()
        .map(|n| {
            found
                .iter()
                .find(|s| &s.name == n || s.arn.ends_with(&format!("/{n}")))
                .cloned()
                .unwrap_or_else(|| Service::missing(cluster, n))
        })
        .collect())
}

fn to_service(cluster: &str, s: &aws_sdk_ecs::types::Service) -> Service {
    Service {
        cluster: cluster.to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        arn: s.service_arn().unwrap_or_default().to_string(),
        desired: s.desired_count().max(0) as u32,
        running: s.running_count().max(0) as u32,
        status: s.status().unwrap_or("ACTIVE").to_string(),
        remembered_count: s
            .tags()
            .iter()
            .find(|t| t.key() == Some(DESIRED_COUNT_TAG))
            .and_then(|t| t.value())
            .and_then(|v| v.parse().ok())
            .filter(|n: &u32| *n > 0),
        changed_at: s.deployments().iter().filter_map(|d| d.updated_at()).map(|t| t.secs()).max(),
    }
}

pub async fn scale_service(client: &Client, cluster: &str, service: &str, desired: u32) -> CloudResult<()> {
    client
        .update_service()
        .cluster(cluster)
        .service(service)
        .desired_count(desired as i32)
        .send()
        .await
        .map_err(|e| cloud_error("UpdateService", e))?;
    Ok(())
}

pub async fn tag_service(client: &Client, service_arn: &str, key: &str, value: &str) -> CloudResult<()> {
    client
        .tag_resource()
        .resource_arn(service_arn)
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .map_err(|e| cloud_error("TagResource", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::update_service::{UpdateServiceError, UpdateServiceOutput};
    use aws_sdk_ecs::types::Failure;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use crate::cloud::ErrorKind;

    fn sdk_service(name: &str, desired: i32) -> aws_sdk_ecs::types::Service {
        aws_sdk_ecs::types::Service::builder()
            .service_name(name)
            .service_arn(format!("arn:aws:ecs:us-east-1:123456789012:service/dev/{name}"))
            .desired_count(desired)
            .running_count(0)
            .status("ACTIVE")
            .tags(Tag::builder().key(DESIRED_COUNT_TAG).value("3").build())
            .build()
    }

    #[tokio::test]
    async fn describe_asks_for_tags_and_reads_the_remembered_count() {
        let rule = mock!(Client::describe_services)
            .match_requests(|r| {
                r.cluster() == Some("dev") && r.services() == ["web"] && r.include() == [ServiceField::Tags]
            })
            .then_output(|| DescribeServicesOutput::builder().services(sdk_service("web", 0)).build());
        let client = mock_client!(aws_sdk_ecs, [&rule]);
        let s = services(&client, "dev", &["web".into()]).await.unwrap().remove(0);
        assert_eq!((s.desired, s.remembered_count, s.status.as_str()), (0, Some(3), "ACTIVE"));
        assert_eq!(s.arn, "arn:aws:ecs:us-east-1:123456789012:service/dev/web");
    }

    #[tokio::test]
    async fn describe_batches_by_ten_and_reports_missing_in_order() {
        let names: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
        let first = mock!(Client::describe_services)
            .match_requests(|r| r.services().len() == 10)
            .then_output(|| DescribeServicesOutput::builder().services(sdk_service("s0", 1)).build());
        let second =
            mock!(Client::describe_services).match_requests(|r| r.services() == ["s10", "s11"]).then_output(|| {
                DescribeServicesOutput::builder()
                    .services(sdk_service("s11", 2))
                    .failures(
                        Failure::builder()
                            .arn("arn:aws:ecs:us-east-1:123456789012:service/dev/s10")
                            .reason("MISSING")
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&first, &second]);
        let got = services(&client, "dev", &names).await.unwrap();
        assert_eq!(got.len(), 12);
        assert_eq!((got[0].desired, got[1].status.as_str()), (1, "MISSING"));
        assert_eq!((got[10].status.as_str(), got[11].desired), ("MISSING", 2));
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn scale_sends_the_count_and_classifies_not_found() {
        let ok = mock!(Client::update_service)
            .match_requests(|r| {
                r.cluster() == Some("dev") && r.service() == Some("web") && r.desired_count() == Some(2)
            })
            .then_output(|| UpdateServiceOutput::builder().build());
        let client = mock_client!(aws_sdk_ecs, [&ok]);
        scale_service(&client, "dev", "web", 2).await.unwrap();
        assert_eq!(ok.num_calls(), 1);

        let missing = mock!(Client::update_service).then_error(|| {
            UpdateServiceError::generic(
                aws_sdk_ecs::error::ErrorMetadata::builder().code("ServiceNotFoundException").build(),
            )
        });
        let client = mock_client!(aws_sdk_ecs, [&missing]);
        let e = scale_service(&client, "dev", "web", 2).await.unwrap_err();
        assert_eq!((e.op, e.kind), ("UpdateService", ErrorKind::NotFound));
    }
}
