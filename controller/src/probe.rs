//! Asks brokers what state their partitions are in, for the admin API.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use strata_proto::v1::{StatusRequest, broker_client::BrokerClient};

use crate::state::ClusterState;

/// Per broker id, the state of each partition it serves. Brokers that do not answer within a
/// second are absent.
pub async fn partition_states(
    state: &ClusterState,
) -> HashMap<String, HashMap<(String, u32), String>> {
    let probes = state.brokers.values().map(|b| async move {
        let ask = async {
            let mut client = BrokerClient::connect(format!("http://{}", b.addr))
                .await
                .ok()?;
            let status = client.status(StatusRequest {}).await.ok()?.into_inner();
            Some(
                status
                    .partitions
                    .into_iter()
                    .map(|p| ((p.topic, p.partition), p.state))
                    .collect(),
            )
        };
        let answer = tokio::time::timeout(Duration::from_secs(1), ask)
            .await
            .ok()
            .flatten();
        answer.map(|partitions| (b.id.clone(), partitions))
    });
    join_all(probes).await.into_iter().flatten().collect()
}
