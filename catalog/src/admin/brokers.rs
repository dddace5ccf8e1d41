//! Brokers and where partitions live: listing, moving one partition, rebalancing, draining.

use serde::{Deserialize, Serialize};
use strata_meta::schema::{self, Drain};

use super::{Admin, now_ms};
use crate::balance::PartitionKey;
use crate::error::{CatalogError, Result};
use crate::state::{ClusterState, Move, PlanMode};

/// A broker as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerView {
    pub id: String,
    pub addr: String,
    pub started_ms: i64,
    pub draining: bool,
    pub partitions: usize,
    /// Availability zone; empty for none.
    #[serde(default)]
    pub zone: String,
}

impl Admin {
    pub async fn list_brokers(&self) -> Result<Vec<BrokerView>> {
        let state = self.state().await?;
        let owners = state.owners();
        Ok(state
            .brokers
            .values()
            .map(|b| BrokerView {
                id: b.id.clone(),
                addr: b.addr.clone(),
                started_ms: b.started_ms,
                zone: b.zone.clone(),
                draining: state.drained.contains(&b.id),
                partitions: owners
                    .values()
                    .filter(|o| o.as_deref() == Some(b.id.as_str()))
                    .count(),
            })
            .collect())
    }

    /// Moves one partition to `broker`. Touches only its assignment key: no data moves.
    pub async fn reassign(&self, topic: &str, partition: i64, broker: &str) -> Result<Move> {
        let state = self.state().await?;
        let config = state
            .topics
            .get(topic)
            .ok_or_else(|| CatalogError::UnknownTopic(topic.into()))?;
        if partition < 0 || partition >= i64::from(config.partitions) {
            return Err(CatalogError::UnknownPartition {
                topic: topic.into(),
                partition: partition.clamp(0, i64::from(u32::MAX)) as u32,
                count: config.partitions,
            });
        }
        self.check_target(&state, broker)?;
        let key = PartitionKey::new(topic, partition as u32);
        let current = state.assignment(&key).cloned();
        if let Some(a) = current.filter(|a| a.broker == broker) {
            // Already there: report it without bumping the epoch (idempotent request).
            return Ok(Move {
                topic: topic.into(),
                partition: key.partition,
                from: Some(a.broker.clone()),
                to: a.broker,
                epoch: a.epoch,
            });
        }
        let m = state.move_to(key, broker.to_owned());
        state
            .apply(
                self.meta.as_ref(),
                &self.keys,
                std::slice::from_ref(&m),
                None,
            )
            .await?;
        Ok(m)
    }

    fn check_target(&self, state: &ClusterState, broker: &str) -> Result<()> {
        if !state.brokers.contains_key(broker) {
            return Err(CatalogError::UnknownBroker(broker.into()));
        }
        if state.drained.contains(broker) {
            return Err(CatalogError::BrokerDraining(broker.into()));
        }
        Ok(())
    }

    /// Balances every partition over the eligible brokers with the fewest moves.
    pub async fn rebalance(&self) -> Result<Vec<Move>> {
        let state = self.state().await?;
        if state.eligible().is_empty() {
            return Err(CatalogError::NoBrokers(
                "every registered broker is draining or none is registered".into(),
            ));
        }
        let moves = state.plan(PlanMode::Rebalance);
        state
            .apply(self.meta.as_ref(), &self.keys, &moves, None)
            .await?;
        Ok(moves)
    }

    /// Marks a broker as draining and moves its partitions to the others. It stays drained
    /// (takes no partitions, even after a restart) until undrained.
    pub async fn drain(&self, broker: &str) -> Result<Vec<Move>> {
        schema::validate_name("broker", broker)?;
        let state = self.state().await?;
        if !state.brokers.contains_key(broker) && !state.drained.contains(broker) {
            return Err(CatalogError::UnknownBroker(broker.into()));
        }
        if state.eligible().iter().all(|b| b == broker) {
            return Err(CatalogError::NoBrokers(format!(
                "draining `{broker}` would leave no broker to take its partitions"
            )));
        }
        self.meta
            .put(
                &self.keys.drain(broker),
                schema::encode(&Drain {
                    requested_ms: now_ms(),
                }),
                None,
            )
            .await?;
        let state = self.state().await?;
        let moves = state.plan(PlanMode::HomelessOnly);
        state
            .apply(self.meta.as_ref(), &self.keys, &moves, None)
            .await?;
        tracing::info!(%broker, moved = moves.len(), "broker drained");
        Ok(moves)
    }

    /// Lets a drained broker take partitions again and gives it its share.
    pub async fn undrain(&self, broker: &str) -> Result<Vec<Move>> {
        schema::validate_name("broker", broker)?;
        if !self.meta.delete(&self.keys.drain(broker)).await? {
            return Err(CatalogError::InvalidArgument(format!(
                "broker `{broker}` is not draining"
            )));
        }
        let state = self.state().await?;
        if state.eligible().is_empty() {
            return Ok(Vec::new());
        }
        let moves = state.plan(PlanMode::Rebalance);
        state
            .apply(self.meta.as_ref(), &self.keys, &moves, None)
            .await?;
        Ok(moves)
    }
}
