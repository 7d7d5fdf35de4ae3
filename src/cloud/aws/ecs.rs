//! ECS: describe a service (with tags) and set its desired count.

use aws_sdk_ecs::types::ServiceField;
use aws_sdk_ecs::Client;

use super::cloud_error;
use crate::cloud::{CloudResult, Service, DESIRED_COUNT_TAG};

pub async fn service(client: &Client, cluster: &str, service: &str) -> CloudResult<Service> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(service)
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(|e| cloud_error("DescribeServices", e))?;
    Ok(out.services().first().map(to_service).unwrap_or(Service {
        desired: 0,
        running: 0,
        status: "MISSING".into(),
        remembered_count: None,
    }))
}

fn to_service(s: &aws_sdk_ecs::types::Service) -> Service {
    Service {
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
    }
}

pub async fn scale_service(
    client: &Client,
    cluster: &str,
    service: &str,
    desired: u32,
) -> CloudResult<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::update_service::{UpdateServiceError, UpdateServiceOutput};
    use aws_sdk_ecs::types::{Failure, Tag};
    use aws_smithy_mocks::{mock, mock_client};

    use crate::cloud::ErrorKind;

    #[tokio::test]
    async fn describe_asks_for_tags_and_reads_the_remembered_count() {
        let rule = mock!(Client::describe_services)
            .match_requests(|r| {
                r.cluster() == Some("dev")
                    && r.services() == ["web"]
                    && r.include() == [ServiceField::Tags]
            })
            .then_output(|| {
                DescribeServicesOutput::builder()
                    .services(
                        aws_sdk_ecs::types::Service::builder()
                            .desired_count(0)
                            .running_count(0)
                            .status("ACTIVE")
                            .tags(Tag::builder().key(DESIRED_COUNT_TAG).value("3").build())
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_ecs, [&rule]);
        let s = service(&client, "dev", "web").await.unwrap();
        assert_eq!(
            s,
            Service {
                desired: 0,
                running: 0,
                status: "ACTIVE".into(),
                remembered_count: Some(3)
            }
        );
    }

    #[tokio::test]
    async fn a_missing_service_is_reported_not_failed() {
        let rule = mock!(Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .failures(
                    Failure::builder()
                        .arn("arn:aws:ecs:us-east-1:123456789012:service/dev/web")
                        .reason("MISSING")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_ecs, [&rule]);
        assert_eq!(
            service(&client, "dev", "web").await.unwrap().status,
            "MISSING"
        );
    }

    #[tokio::test]
    async fn scale_sends_the_count_and_classifies_not_found() {
        let ok = mock!(Client::update_service)
            .match_requests(|r| {
                r.cluster() == Some("dev")
                    && r.service() == Some("web")
                    && r.desired_count() == Some(2)
            })
            .then_output(|| UpdateServiceOutput::builder().build());
        let client = mock_client!(aws_sdk_ecs, [&ok]);
        scale_service(&client, "dev", "web", 2).await.unwrap();
        assert_eq!(ok.num_calls(), 1);

        let missing = mock!(Client::update_service).then_error(|| {
            UpdateServiceError::generic(
                aws_sdk_ecs::error::ErrorMetadata::builder()
                    .code("ServiceNotFoundException")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_ecs, [&missing]);
        let e = scale_service(&client, "dev", "web", 2).await.unwrap_err();
        assert_eq!((e.op, e.kind), ("UpdateService", ErrorKind::NotFound));
    }
}
