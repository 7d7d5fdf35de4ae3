//! EC2 Auto Scaling: describe groups (with their tags), set min size and desired capacity,
//! remember them in tags, and find which group an instance belongs to.

use aws_sdk_autoscaling::types::{LifecycleState, Tag};
use aws_sdk_autoscaling::Client;

use super::error::cloud_error;
use crate::cloud::{AutoScalingGroup, CloudResult, ASG_DESIRED_TAG, ASG_MIN_TAG};

/// DescribeAutoScalingGroups takes at most 100 names per call (MaxRecords 100).
const GROUPS_PER_CALL: usize = 100;

pub async fn groups(client: &Client, names: &[String]) -> CloudResult<Vec<AutoScalingGroup>> {
    let mut found: Vec<AutoScalingGroup> = Vec::with_capacity(names.len());
    for batch in names.chunks(GROUPS_PER_CALL) {
        let mut token: Option<String> = None;
        loop {
            let out = client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(batch.to_vec()))
                .max_records(GROUPS_PER_CALL as i32)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("DescribeAutoScalingGroups", e))?;
            found.extend(out.auto_scaling_groups().iter().map(to_group));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(names
        .iter()
        .map(|n| found.iter().find(|g| &g.name == n).cloned().unwrap_or_else(|| AutoScalingGroup::missing(n)))
        .collect())
}

fn to_group(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> AutoScalingGroup {
    let tag = |key: &str| -> Option<u32> {
        g.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).and_then(|v| v.parse().ok())
    };
    AutoScalingGroup {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        exists: true,
        min: g.min_size().unwrap_or(0).max(0) as u32,
        max: g.max_size().unwrap_or(0).max(0) as u32,
        desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
        in_service: g.instances().iter().filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService)).count()
            as u32,
        remembered_min: tag(ASG_MIN_TAG),
        remembered_desired: tag(ASG_DESIRED_TAG).filter(|n| *n > 0),
    }
}

pub async fn update(client: &Client, name: &str, min: u32, desired: u32) -> CloudResult<()> {
    client
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(min as i32)
        .desired_capacity(desired as i32)
        .send()
        .await
        .map_err(|e| cloud_error("UpdateAutoScalingGroup", e))?;
    Ok(())
}

pub async fn tag(client: &Client, name: &str, tags: &[(&str, String)]) -> CloudResult<()> {
    let tags = tags.iter().map(|(k, v)| {
        Tag::builder()
            .resource_id(name)
            .resource_type("auto-scaling-group")
            .key(*k)
            .value(v)
            .propagate_at_launch(false)
            .build()
    });
    client
        .create_or_update_tags()
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .map_err(|e| cloud_error("CreateOrUpdateTags", e))?;
    Ok(())
}

/// The group each of these instances belongs to, for those that belong to one
/// (DescribeAutoScalingInstances, at most 50 ids per call).
pub async fn groups_of_instances(client: &Client, ids: &[String]) -> CloudResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for batch in ids.chunks(50) {
        let page = client
            .describe_auto_scaling_instances()
            .set_instance_ids(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error("DescribeAutoScalingInstances", e))?;
        for i in page.auto_scaling_instances() {
            if let (Some(id), Some(group)) = (i.instance_id(), i.auto_scaling_group_name()) {
                out.push((id.to_string(), group.to_string()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
    use aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupOutput;
    use aws_sdk_autoscaling::types::{Instance, TagDescription};
    use aws_smithy_mocks::{mock, mock_client};

    fn group(name: &str, desired: i32) -> aws_sdk_autoscaling::types::AutoScalingGroup {
        let instance =
            |id: &str, state: LifecycleState| Instance::builder().instance_id(id).lifecycle_state(state).build();
        aws_sdk_autoscaling::types::AutoScalingGroup::builder()
            .auto_scaling_group_name(name)
            .min_size(0)
            .max_size(4)
            .desired_capacity(desired)
            .instances(instance("i-1", LifecycleState::InService))
            .instances(instance("i-2", LifecycleState::Pending))
            .tags(TagDescription::builder().key(ASG_MIN_TAG).value("1").build())
            .tags(TagDescription::builder().key(ASG_DESIRED_TAG).value("2").build())
            .build()
    }

    #[tokio::test]
    async fn groups_are_read_in_order_with_their_remembered_sizes() {
        let rule = mock!(Client::describe_auto_scaling_groups)
            .match_requests(|r| r.auto_scaling_group_names() == ["web", "gone"])
            .then_output(|| DescribeAutoScalingGroupsOutput::builder().auto_scaling_groups(group("web", 0)).build());
        let client = mock_client!(aws_sdk_autoscaling, [&rule]);
        let got = groups(&client, &["web".to_string(), "gone".to_string()]).await.unwrap();
        assert_eq!(
            got[0],
            AutoScalingGroup {
                name: "web".into(),
                exists: true,
                min: 0,
                max: 4,
                desired: 0,
                in_service: 1,
                remembered_min: Some(1),
                remembered_desired: Some(2),
            }
        );
        assert_eq!(got[1], AutoScalingGroup::missing("gone"));
    }

    #[tokio::test]
    async fn update_sets_min_and_desired() {
        let rule = mock!(Client::update_auto_scaling_group)
            .match_requests(|r| {
                r.auto_scaling_group_name() == Some("web") && r.min_size() == Some(0) && r.desired_capacity() == Some(0)
            })
            .then_output(|| UpdateAutoScalingGroupOutput::builder().build());
        let client = mock_client!(aws_sdk_autoscaling, [&rule]);
        update(&client, "web", 0, 0).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }
}
