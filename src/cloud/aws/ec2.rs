//! EC2: describe, start and stop instances.

use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;

use super::error::cloud_error;
use crate::cloud::{CloudResult, Instance, InstanceState};

/// EC2 accepts at most 200 values per filter.
const IDS_PER_CALL: usize = 200;

/// Describes by `instance-id` filter rather than `InstanceIds`: an unknown id then comes back
/// missing instead of failing the whole call with `InvalidInstanceID.NotFound`.
pub async fn instances(client: &Client, ids: &[String]) -> CloudResult<Vec<Instance>> {
    let mut found: Vec<Instance> = Vec::with_capacity(ids.len());
    for batch in ids.chunks(IDS_PER_CALL) {
        let mut token: Option<String> = None;
        loop {
            let out = client
                .describe_instances()
                .filters(Filter::builder().name("instance-id").set_values(Some(batch.to_vec())).build())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("DescribeInstances", e))?;
            for reservation in out.reservations() {
                found.extend(reservation.instances().iter().filter_map(to_instance));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(in_order(ids, found))
}

fn to_instance(i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
    Some(Instance {
        id: i.instance_id()?.to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| InstanceState::from_ec2_name(n.as_str()))
            .unwrap_or(InstanceState::Pending),
        state_reason: i.state_reason().and_then(|r| r.code()).map(str::to_string),
        launched_at: i.launch_time().map(|t| t.secs()),
        detailed_monitoring: i.monitoring().and_then(|m| m.state())
            == Some(&aws_sdk_ec2::types::MonitoringState::Enabled),
        hibernation_configured: i.hibernation_options().and_then(|h| h.configured()).unwrap_or(false),
    })
}

/// The requested ids in the requested order; ids EC2 did not return are `Missing`.
fn in_order(ids: &[String], mut found: Vec<Instance>) -> Vec<Instance> {
    ids.iter()
        .map(|id| match found.iter().position(|i| &i.id == id) {
            Some(pos) => found.swap_remove(pos),
            None => Instance::missing(id),
        })
        .collect()
}

pub async fn start_instances(client: &Client, ids: &[String]) -> CloudResult<()> {
    client
        .start_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| cloud_error("StartInstances", e))?;
    Ok(())
}

/// Stops (never terminates) the instances; `hibernate` sends `Hibernate=true`.
pub async fn stop_instances(client: &Client, ids: &[String], hibernate: bool) -> CloudResult<()> {
    client
        .stop_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .set_hibernate(hibernate.then_some(true))
        .send()
        .await
        .map_err(|e| cloud_error("StopInstances", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::operation::start_instances::{StartInstancesError, StartInstancesOutput};
    use aws_sdk_ec2::types::{InstanceStateName, Reservation, StateReason};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use crate::cloud::ErrorKind;

    fn instance(id: &str, state: InstanceStateName) -> aws_sdk_ec2::types::Instance {
        aws_sdk_ec2::types::Instance::builder()
            .instance_id(id)
            .state(aws_sdk_ec2::types::InstanceState::builder().name(state).build())
            .state_reason(StateReason::builder().code("Client.InternalError").build())
            .build()
    }

    #[tokio::test]
    async fn describe_filters_by_id_pages_and_marks_missing() {
        let page1 = mock!(Client::describe_instances)
            .match_requests(|r| {
                r.next_token().is_none()
                    && r.instance_ids().is_empty()
                    && r.filters()[0].name() == Some("instance-id")
                    && r.filters()[0].values() == ["i-00000001", "i-00000002", "i-00000003"]
            })
            .then_output(|| {
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder().instances(instance("i-00000002", InstanceStateName::Stopping)).build(),
                    )
                    .next_token("page2")
                    .build()
            });
        let page2 =
            mock!(Client::describe_instances).match_requests(|r| r.next_token() == Some("page2")).then_output(|| {
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder().instances(instance("i-00000001", InstanceStateName::Running)).build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&page1, &page2]);
        let ids: Vec<String> = ["i-00000001", "i-00000002", "i-00000003"].map(String::from).to_vec();
        let got = instances(&client, &ids).await.unwrap();
        let states: Vec<_> = got.iter().map(|i| (i.id.as_str(), i.state)).collect();
        assert_eq!(
            states,
            vec![
                ("i-00000001", InstanceState::Running),
                ("i-00000002", InstanceState::Stopping),
                ("i-00000003", InstanceState::Missing)
            ]
        );
        assert_eq!(got[0].state_reason.as_deref(), Some("Client.InternalError"));
        assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn start_sends_ids_and_classifies_capacity() {
        let ok = mock!(Client::start_instances)
            .match_requests(|r| r.instance_ids() == ["i-00000001"])
            .then_output(|| StartInstancesOutput::builder().build());
        let client = mock_client!(aws_sdk_ec2, [&ok]);
        start_instances(&client, &["i-00000001".to_string()]).await.unwrap();
        assert_eq!(ok.num_calls(), 1);

        let capacity = mock!(Client::start_instances).then_error(|| {
            StartInstancesError::generic(
                aws_sdk_ec2::error::ErrorMetadata::builder()
                    .code("InsufficientInstanceCapacity")
                    .message("We currently do not have sufficient t3.micro capacity")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_ec2, [&capacity]);
        let e = start_instances(&client, &["i-00000001".to_string()]).await.unwrap_err();
        assert_eq!(
            (e.op, e.code.as_str(), e.kind),
            ("StartInstances", "InsufficientInstanceCapacity", ErrorKind::Capacity)
        );
        assert!(e.message.contains("t3.micro"));
    }

    /// `Hibernate=true` only when asked; a plain stop leaves the parameter out.
    #[tokio::test]
    async fn stop_hibernates_only_when_asked() {
        use aws_sdk_ec2::operation::stop_instances::StopInstancesOutput;
        let hibernating = mock!(Client::stop_instances)
            .match_requests(|r| r.instance_ids() == ["i-00000001"] && r.hibernate() == Some(true))
            .then_output(|| StopInstancesOutput::builder().build());
        let plain = mock!(Client::stop_instances)
            .match_requests(|r| r.hibernate().is_none())
            .then_output(|| StopInstancesOutput::builder().build());
        let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&hibernating, &plain]);
        stop_instances(&client, &["i-00000001".to_string()], true).await.unwrap();
        stop_instances(&client, &["i-00000002".to_string()], false).await.unwrap();
        assert_eq!((hibernating.num_calls(), plain.num_calls()), (1, 1));
    }

    #[test]
    fn hibernation_is_read_from_the_instance() {
        let mut i = instance("i-1", InstanceStateName::Running);
        assert!(!to_instance(&i).unwrap().hibernation_configured);
        i.hibernation_options = Some(aws_sdk_ec2::types::HibernationOptions::builder().configured(true).build());
        assert!(to_instance(&i).unwrap().hibernation_configured);
    }
}
