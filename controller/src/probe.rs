//! Asks brokers what state their partitions are in, for the admin API's partition listings.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::future::join_all;
use strata_catalog::{OwnerStates, ReportedStates};
use strata_meta::schema::BrokerInfo;
use strata_proto::v1::{StatusRequest, broker_client::BrokerClient};

/// How long a listing waits for each broker; a slow broker must not stall the admin API.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Asks every registered broker's gRPC `Status`, all at once.
#[derive(Debug, Clone, Default)]
pub struct BrokerStatus {
    tls: Option<strata_tls::ClientTls>,
}

impl BrokerStatus {
    /// Dials brokers over TLS with `tls` (the controller's own pair, the cluster's CA).
    pub fn new(tls: Option<strata_tls::ClientTls>) -> Self {
        Self { tls }
    }
}

impl OwnerStates for BrokerStatus {
    async fn report(&self, brokers: &BTreeMap<String, BrokerInfo>) -> ReportedStates {
        let tls = self.tls.as_ref();
        let probes = brokers.values().map(|b| async move {
            let answer = tokio::time::timeout(STATUS_TIMEOUT, partition_states(&b.addr, tls))
                .await
                .ok()
                .flatten();
            answer.map(|partitions| (b.id.clone(), partitions))
        });
        join_all(probes).await.into_iter().flatten().collect()
    }
}

async fn partition_states(
    addr: &str,
    tls: Option<&strata_tls::ClientTls>,
) -> Option<HashMap<(String, u32), String>> {
    let channel = strata_tls::ClientTls::endpoint(addr, tls)
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = BrokerClient::new(channel);
    let status = client.status(StatusRequest {}).await.ok()?.into_inner();
    Some(
        status
            .partitions
            .into_iter()
            .map(|p| ((p.topic, p.partition), p.state))
            .collect(),
    )
}
