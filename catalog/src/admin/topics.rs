//! Topics: create, list, describe, grow, delete.

use std::time::Duration;
use strata_clock::{RandomSource, ThreadRandom};

use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use strata_meta::schema::{self, TopicConfig};
use strata_meta::{Compare, CompareOp, Txn, TxnOp};

use super::partitions::{OwnerStates, PartitionView};
use super::{Admin, now_ms};
use crate::error::{CatalogError, Result};
use crate::state::PlanMode;

/// Upper bound on partitions per topic: enough for any real topic, small enough that a typo
/// (an extra zero or three) does not create a million keys.
pub const MAX_PARTITIONS: u32 = 10_000;
/// How long topic creation waits for its partitions to get owners.
const ASSIGN_WAIT: Duration = Duration::from_secs(5);

/// Settings of a new topic; unset fields take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i64,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub segment_bytes: Option<u64>,
}

/// A topic as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicView {
    pub name: String,
    #[serde(flatten)]
    pub config: TopicConfig,
}

/// A topic with its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    #[serde(flatten)]
    pub topic: TopicView,
    pub partitions_detail: Vec<PartitionView>,
}

impl Admin {
    fn check_partitions(count: i64) -> Result<u32> {
        if !(1..=i64::from(MAX_PARTITIONS)).contains(&count) {
            return Err(CatalogError::InvalidArgument(format!(
                "partitions must be between 1 and {MAX_PARTITIONS}, got {count}"
            )));
        }
        Ok(count as u32)
    }

    pub async fn create_topic(&self, new: NewTopic) -> Result<TopicView> {
        schema::validate_name("topic", &new.name)?;
        let partitions = Self::check_partitions(new.partitions)?;
        let retention_ms = new.retention_ms.unwrap_or(schema::DEFAULT_RETENTION_MS);
        let retention_bytes = new.retention_bytes.unwrap_or(-1);
        if retention_ms < -1 || retention_ms == 0 || retention_bytes < -1 || retention_bytes == 0 {
            return Err(CatalogError::InvalidArgument(
                "retention_ms and retention_bytes must be positive, or -1 for no limit".into(),
            ));
        }
        let segment_bytes = new.segment_bytes.unwrap_or(schema::DEFAULT_SEGMENT_BYTES);
        if segment_bytes < 1024 {
            return Err(CatalogError::InvalidArgument(format!(
                "segment_bytes must be at least 1024, got {segment_bytes}"
            )));
        }
        let config = TopicConfig {
            id: ThreadRandom.next_u64() >> 1,
            partitions,
            retention_ms,
            retention_bytes,
            segment_bytes,
            created_ms: now_ms(),
        };
        let key = self.keys.topic(&new.name);
        // Leftovers of an earlier topic of this name go in the same transaction.
        let txn = Txn::new().when([Compare::absent(key.clone())]).and_then([
            TxnOp::delete_prefix(self.keys.topic_assignments(&new.name)),
            TxnOp::delete_prefix(self.keys.topic_log(&new.name)),
            TxnOp::put(key, schema::encode(&config)),
        ]);
        if !self.meta.txn(txn).await?.succeeded {
            return Err(CatalogError::TopicExists(new.name));
        }
        tracing::info!(topic = %new.name, partitions, "topic created");
        self.place_homeless_and_wait(&new.name).await?;
        Ok(TopicView {
            name: new.name,
            config,
        })
    }

    /// Assigns new partitions right away (the active controller would too, a moment later) so
    /// producers can start at once; waits a bounded time if a race makes that fail.
    async fn place_homeless_and_wait(&self, topic: &str) -> Result<()> {
        let deadline = Instant::now() + ASSIGN_WAIT;
        loop {
            let state = self.state().await?;
            if state.eligible().is_empty() {
                return Ok(()); // nothing to wait for: no broker can take partitions yet
            }
            let moves = state.plan(PlanMode::HomelessOnly);
            if moves.iter().all(|m| m.topic != topic) {
                return Ok(());
            }
            match state
                .apply(self.meta.as_ref(), &self.keys, &moves, None)
                .await
            {
                Ok(()) => return Ok(()),
                Err(CatalogError::Conflict(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn list_topics(&self) -> Result<Vec<TopicView>> {
        let state = self.state().await?;
        Ok(state
            .topics
            .into_iter()
            .map(|(name, config)| TopicView { name, config })
            .collect())
    }

    /// The topic and its partitions, with each owner's state as `owners` report it.
    pub async fn describe_topic(
        &self,
        name: &str,
        owners: &impl OwnerStates,
    ) -> Result<TopicDescription> {
        let state = self.state().await?;
        let config = state
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| CatalogError::UnknownTopic(name.into()))?;
        let partitions_detail = self.partition_views(&state, Some(name), owners).await?;
        Ok(TopicDescription {
            topic: TopicView {
                name: name.into(),
                config,
            },
            partitions_detail,
        })
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        schema::validate_name("topic", name)?;
        let txn = Txn::new()
            .when([Compare::exists(self.keys.topic(name))])
            .and_then([
                TxnOp::delete(self.keys.topic(name)),
                TxnOp::delete_prefix(self.keys.topic_assignments(name)),
                TxnOp::delete_prefix(self.keys.topic_log(name)),
            ]);
        if !self.meta.txn(txn).await?.succeeded {
            return Err(CatalogError::UnknownTopic(name.into()));
        }
        tracing::info!(topic = %name, "topic deleted");
        Ok(())
    }

    /// Raises a topic's partition count to `total` (partitions can never be removed: keys would
    /// map to different partitions).
    pub async fn add_partitions(&self, name: &str, total: i64) -> Result<TopicView> {
        let total = Self::check_partitions(total)?;
        let key = self.keys.topic(name);
        let kv = self
            .meta
            .get(&key)
            .await?
            .ok_or_else(|| CatalogError::UnknownTopic(name.into()))?;
        let mut config: TopicConfig = schema::decode(&key, &kv.value)?;
        if total <= config.partitions {
            return Err(CatalogError::InvalidArgument(format!(
                "topic `{name}` already has {} partitions; the count can only grow",
                config.partitions
            )));
        }
        config.partitions = total;
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                kv.mod_revision,
            )])
            .and_then([TxnOp::put(key, schema::encode(&config))]);
        if !self.meta.txn(txn).await?.succeeded {
            return Err(CatalogError::Conflict(format!(
                "topic `{name}` changed meanwhile"
            )));
        }
        self.place_homeless_and_wait(name).await?;
        Ok(TopicView {
            name: name.into(),
            config,
        })
    }
}
