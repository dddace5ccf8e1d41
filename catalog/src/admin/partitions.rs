//! Partitions as operators see them: owner, epoch, high watermark and the owner's own account
//! of its state machine.
//!
//! Only the owner knows the state machine state, and asking it is a network call to a broker.
//! The catalog reads metadata only, so the caller brings the answers through [`OwnerStates`]:
//! the controller asks each broker's gRPC `Status`; a caller that needs owners and watermarks
//! only passes [`Unreported`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use strata_meta::schema::{self, BrokerInfo, Checkpoint};

use super::Admin;
use crate::balance::PartitionKey;
use crate::error::{CatalogError, Result};
use crate::state::ClusterState;

/// Per broker id, the state of each partition the broker serves, by (topic, partition).
pub type ReportedStates = HashMap<String, HashMap<(String, u32), String>>;

/// Where a partition listing learns the state each owner says its partitions are in.
pub trait OwnerStates: Sync {
    /// The reports of `brokers` (every registered broker, by id). A broker that did not answer
    /// is absent, and its partitions show as `unknown`.
    fn report(
        &self,
        brokers: &BTreeMap<String, BrokerInfo>,
    ) -> impl Future<Output = ReportedStates> + Send;
}

/// Asks no broker: every assigned partition's state shows as `unknown`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unreported;

impl OwnerStates for Unreported {
    async fn report(&self, _brokers: &BTreeMap<String, BrokerInfo>) -> ReportedStates {
        ReportedStates::new()
    }
}

/// A partition as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionView {
    pub topic: String,
    pub partition: u32,
    pub broker: Option<String>,
    pub epoch: u64,
    /// Offsets below this are committed and readable.
    pub high_watermark: i64,
    /// The owner's state machine state (Start, Recover, Write, Closing, Closed, Fenced), as the
    /// owner reports it; `unassigned` without an owner, `unknown` if the owner did not answer
    /// or was not asked.
    pub state: String,
}

impl Admin {
    /// Every partition, or the partitions of `topic`, with each owner's state as `owners`
    /// report it.
    pub async fn list_partitions(
        &self,
        topic: Option<&str>,
        owners: &impl OwnerStates,
    ) -> Result<Vec<PartitionView>> {
        let state = self.state().await?;
        if let Some(t) = topic
            && !state.topics.contains_key(t)
        {
            return Err(CatalogError::UnknownTopic(t.into()));
        }
        self.partition_views(&state, topic, owners).await
    }

    pub(super) async fn partition_views(
        &self,
        state: &ClusterState,
        topic: Option<&str>,
        owners: &impl OwnerStates,
    ) -> Result<Vec<PartitionView>> {
        let reported = owners.report(&state.brokers).await;
        let mut views = Vec::new();
        for key in state
            .owners()
            .into_keys()
            .filter(|k| topic.is_none_or(|t| t == k.topic))
        {
            let high_watermark = self.high_watermark(&key.topic, key.partition).await?;
            let assignment = state.assignment(&key);
            views.push(PartitionView {
                state: machine_state(&key, assignment.map(|a| a.broker.as_str()), &reported),
                broker: assignment.map(|a| a.broker.clone()),
                epoch: assignment.map_or(0, |a| a.epoch),
                topic: key.topic,
                partition: key.partition,
                high_watermark,
            });
        }
        Ok(views)
    }

    /// The partition's next offset to commit: everything below it is readable.
    pub(crate) async fn high_watermark(&self, topic: &str, partition: u32) -> Result<i64> {
        let key = self.keys.checkpoint(topic, partition);
        Ok(match self.meta.get(&key).await? {
            Some(kv) => schema::decode::<Checkpoint>(&key, &kv.value)?.next_offset,
            None => 0,
        })
    }
}

fn machine_state(key: &PartitionKey, owner: Option<&str>, reported: &ReportedStates) -> String {
    let Some(owner) = owner else {
        return "unassigned".to_owned();
    };
    match reported.get(owner) {
        None => "unknown".to_owned(),
        // The owner answered without it: it has not started the partition yet.
        Some(partitions) => partitions
            .get(&(key.topic.clone(), key.partition))
            .cloned()
            .unwrap_or_else(|| "Start".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_comes_from_the_owner_alone() {
        let key = PartitionKey::new("t", 0);
        let reported = ReportedStates::from([
            (
                "b1".to_owned(),
                HashMap::from([(("t".to_owned(), 0), "Closing".to_owned())]),
            ),
            ("b2".to_owned(), HashMap::new()),
        ]);
        assert_eq!(machine_state(&key, None, &reported), "unassigned");
        assert_eq!(machine_state(&key, Some("b1"), &reported), "Closing");
        assert_eq!(machine_state(&key, Some("b2"), &reported), "Start");
        assert_eq!(machine_state(&key, Some("b3"), &reported), "unknown");
    }
}
