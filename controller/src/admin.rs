//! The operator's levers, independent of HTTP: the REST API and the CLI both call these.
//!
//! Every write is a compare-and-swap on what was read, so two operators (or an operator and
//! the active controller) acting at once cannot corrupt an assignment: one of them gets
//! `Conflict` and retries.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use strata_meta::schema::{self, Checkpoint, Drain, Keyspace, TopicConfig};
use strata_meta::{Compare, CompareOp, MetaStore, Txn, TxnOp};

use crate::balance::PartitionKey;
use crate::error::{ControllerError, Result};
use crate::state::{ClusterState, Move, PlanMode};

/// Upper bound on partitions per topic: enough for any real topic, small enough that a typo
/// (an extra zero or three) does not create a million keys.
pub const MAX_PARTITIONS: u32 = 10_000;
/// How long topic creation waits for its partitions to get owners.
const ASSIGN_WAIT: Duration = Duration::from_secs(5);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

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
    /// owner reports it; `unassigned` without an owner, `unknown` if the owner did not answer.
    pub state: String,
}

/// A broker as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerView {
    pub id: String,
    pub addr: String,
    pub started_ms: i64,
    pub draining: bool,
    pub partitions: usize,
}

/// A topic with its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    #[serde(flatten)]
    pub topic: TopicView,
    pub partitions_detail: Vec<PartitionView>,
}

/// Admin operations over one cluster's metadata.
#[derive(Debug, Clone)]
pub struct Admin {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
}

impl Admin {
    pub fn new(meta: Arc<dyn MetaStore>, keys: Keyspace) -> Self {
        Self { meta, keys }
    }

    /// The metadata store this admin works on.
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    async fn state(&self) -> Result<ClusterState> {
        ClusterState::load(self.meta.as_ref(), &self.keys).await
    }

    fn check_partitions(count: i64) -> Result<u32> {
        if !(1..=i64::from(MAX_PARTITIONS)).contains(&count) {
            return Err(ControllerError::InvalidArgument(format!(
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
            return Err(ControllerError::InvalidArgument(
                "retention_ms and retention_bytes must be positive, or -1 for no limit".into(),
            ));
        }
        let segment_bytes = new.segment_bytes.unwrap_or(schema::DEFAULT_SEGMENT_BYTES);
        if segment_bytes < 1024 {
            return Err(ControllerError::InvalidArgument(format!(
                "segment_bytes must be at least 1024, got {segment_bytes}"
            )));
        }
        let config = TopicConfig {
            id: rand::random::<u64>() >> 1,
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
            return Err(ControllerError::TopicExists(new.name));
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
                Err(ControllerError::Conflict(_)) if Instant::now() < deadline => {
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

    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let state = self.state().await?;
        let config = state
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| ControllerError::UnknownTopic(name.into()))?;
        let partitions_detail = self.partition_views(&state, Some(name)).await?;
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
            return Err(ControllerError::UnknownTopic(name.into()));
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
            .ok_or_else(|| ControllerError::UnknownTopic(name.into()))?;
        let mut config: TopicConfig = schema::decode(&key, &kv.value)?;
        if total <= config.partitions {
            return Err(ControllerError::InvalidArgument(format!(
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
            return Err(ControllerError::Conflict(format!(
                "topic `{name}` changed meanwhile"
            )));
        }
        self.place_homeless_and_wait(name).await?;
        Ok(TopicView {
            name: name.into(),
            config,
        })
    }

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
                draining: state.drained.contains(&b.id),
                partitions: owners
                    .values()
                    .filter(|o| o.as_deref() == Some(b.id.as_str()))
                    .count(),
            })
            .collect())
    }

    pub async fn list_partitions(&self, topic: Option<&str>) -> Result<Vec<PartitionView>> {
        let state = self.state().await?;
        if let Some(t) = topic
            && !state.topics.contains_key(t)
        {
            return Err(ControllerError::UnknownTopic(t.into()));
        }
        self.partition_views(&state, topic).await
    }

    async fn partition_views(
        &self,
        state: &ClusterState,
        topic: Option<&str>,
    ) -> Result<Vec<PartitionView>> {
        let reported = crate::probe::partition_states(state).await;
        let mut views = Vec::new();
        for key in state
            .owners()
            .into_keys()
            .filter(|k| topic.is_none_or(|t| t == k.topic))
        {
            let commit_key = self.keys.commit(&key.topic, key.partition);
            let high_watermark = match self.meta.get(&commit_key).await? {
                Some(kv) => schema::decode::<Checkpoint>(&commit_key, &kv.value)?.next_offset,
                None => 0,
            };
            let assignment = state.assignment(&key);
            let machine = match assignment {
                None => "unassigned".to_owned(),
                Some(a) => match reported.get(&a.broker) {
                    None => "unknown".to_owned(),
                    Some(partitions) => partitions
                        .get(&(key.topic.clone(), key.partition))
                        .cloned()
                        .unwrap_or_else(|| "Start".to_owned()),
                },
            };
            views.push(PartitionView {
                state: machine,
                broker: assignment.map(|a| a.broker.clone()),
                epoch: assignment.map_or(0, |a| a.epoch),
                topic: key.topic,
                partition: key.partition,
                high_watermark,
            });
        }
        Ok(views)
    }

    /// Moves one partition to `broker`. Touches only its assignment key: no data moves.
    pub async fn reassign(&self, topic: &str, partition: i64, broker: &str) -> Result<Move> {
        let state = self.state().await?;
        let config = state
            .topics
            .get(topic)
            .ok_or_else(|| ControllerError::UnknownTopic(topic.into()))?;
        if partition < 0 || partition >= i64::from(config.partitions) {
            return Err(ControllerError::UnknownPartition {
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
            return Err(ControllerError::UnknownBroker(broker.into()));
        }
        if state.drained.contains(broker) {
            return Err(ControllerError::BrokerDraining(broker.into()));
        }
        Ok(())
    }

    /// Balances every partition over the eligible brokers with the fewest moves.
    pub async fn rebalance(&self) -> Result<Vec<Move>> {
        let state = self.state().await?;
        if state.eligible().is_empty() {
            return Err(ControllerError::NoBrokers(
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
            return Err(ControllerError::UnknownBroker(broker.into()));
        }
        if state.eligible().iter().all(|b| b == broker) {
            return Err(ControllerError::NoBrokers(format!(
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
            return Err(ControllerError::InvalidArgument(format!(
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
