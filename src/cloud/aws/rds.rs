//! RDS: describe DB instances and Aurora DB clusters, start and stop them.

use aws_sdk_rds::types::Filter;
use aws_sdk_rds::Client;

use super::error::cloud_error;
use crate::cloud::{CloudResult, Database};

/// Describes by `db-instance-id` / `db-cluster-id` filter, so an unknown id comes back missing
/// instead of failing the whole call with DBInstanceNotFound.
pub async fn databases(client: &Client, instances: &[String], clusters: &[String]) -> CloudResult<Vec<Database>> {
    let mut found: Vec<Database> = Vec::new();
    for batch in instances.chunks(100) {
        let mut marker: Option<String> = None;
        loop {
            let out = client
                .describe_db_instances()
                .filters(Filter::builder().name("db-instance-id").set_values(Some(batch.to_vec())).build())
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| cloud_error("DescribeDBInstances", e))?;
            found.extend(out.db_instances().iter().map(to_instance));
            match out.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
    }
    for batch in clusters.chunks(100) {
        let mut marker: Option<String> = None;
        loop {
            let out = client
                .describe_db_clusters()
                .filters(Filter::builder().name("db-cluster-id").set_values(Some(batch.to_vec())).build())
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| cloud_error("DescribeDBClusters", e))?;
            found.extend(out.db_clusters().iter().map(to_cluster));
            match out.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
    }
    let wanted = instances.iter().map(|i| (i, false)).chain(clusters.iter().map(|c| (c, true)));
    Ok(wanted
        .map(|(id, cluster)| {
            found
                .iter()
                .find(|d| &d.id == id && d.cluster == cluster)
                .cloned()
                .unwrap_or_else(|| Database::missing(id, cluster))
        })
        .collect())
}

fn to_instance(d: &aws_sdk_rds::types::DbInstance) -> Database {
    let cannot_stop = if let Some(source) = d.read_replica_source_db_instance_identifier() {
        Some(format!("it is a read replica of {source}, and RDS cannot stop a read replica"))
    } else {
        d.db_cluster_identifier()
            .map(|c| format!("it is an instance of Aurora cluster {c}: list the cluster under rds.clusters instead"))
    };
    Database {
        id: d.db_instance_identifier().unwrap_or_default().to_string(),
        cluster: false,
        status: d.db_instance_status().unwrap_or("unknown").to_string(),
        cannot_stop,
    }
}

fn to_cluster(c: &aws_sdk_rds::types::DbCluster) -> Database {
    let cannot_stop = c
        .replication_source_identifier()
        .map(|s| format!("it is a replica of {s}, and RDS cannot stop a replica cluster"));
    Database {
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        cluster: true,
        status: c.status().unwrap_or("unknown").to_string(),
        cannot_stop,
    }
}

pub async fn start(client: &Client, id: &str, cluster: bool) -> CloudResult<()> {
    if cluster {
        client
            .start_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
            .map_err(|e| cloud_error("StartDBCluster", e))?;
    } else {
        client
            .start_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| cloud_error("StartDBInstance", e))?;
    }
    Ok(())
}

pub async fn stop(client: &Client, id: &str, cluster: bool) -> CloudResult<()> {
    if cluster {
        client.stop_db_cluster().db_cluster_identifier(id).send().await.map_err(|e| cloud_error("StopDBCluster", e))?;
    } else {
        client
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| cloud_error("StopDBInstance", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::start_db_instance::StartDBInstanceError;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use crate::cloud::ErrorKind;

    #[tokio::test]
    async fn databases_in_order_with_why_they_cannot_stop() {
        let instances = mock!(Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    aws_sdk_rds::types::DbInstance::builder()
                        .db_instance_identifier("dev-db")
                        .db_instance_status("stopped")
                        .build(),
                )
                .db_instances(
                    aws_sdk_rds::types::DbInstance::builder()
                        .db_instance_identifier("dev-replica")
                        .db_instance_status("available")
                        .read_replica_source_db_instance_identifier("dev-db")
                        .build(),
                )
                .build()
        });
        let clusters = mock!(Client::describe_db_clusters).then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    aws_sdk_rds::types::DbCluster::builder()
                        .db_cluster_identifier("dev-aurora")
                        .status("available")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&instances, &clusters]);
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = databases(&client, &ids(&["dev-replica", "dev-db", "gone"]), &ids(&["dev-aurora"])).await.unwrap();
        let summary: Vec<(&str, bool, &str)> =
            got.iter().map(|d| (d.id.as_str(), d.cluster, d.status.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("dev-replica", false, "available"),
                ("dev-db", false, "stopped"),
                ("gone", false, "missing"),
                ("dev-aurora", true, "available")
            ]
        );
        assert!(got[0].cannot_stop.as_deref().unwrap().contains("read replica"));
        assert!(got[1].cannot_stop.is_none());
    }

    #[tokio::test]
    async fn a_start_in_the_wrong_state_is_invalid_state() {
        let rule = mock!(Client::start_db_instance).then_error(|| {
            StartDBInstanceError::generic(
                aws_sdk_rds::error::ErrorMetadata::builder().code("InvalidDBInstanceState").build(),
            )
        });
        let client = mock_client!(aws_sdk_rds, [&rule]);
        let e = start(&client, "dev-db", false).await.unwrap_err();
        assert_eq!((e.op, e.kind), ("StartDBInstance", ErrorKind::InvalidState));
    }
}
