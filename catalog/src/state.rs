//! Reading the cluster's state from metadata, planning assignment changes and writing them.

use std::collections::{BTreeMap, BTreeSet};

use strata_meta::schema::{self, Assignment, BrokerInfo, Keyspace, TopicConfig};
use strata_meta::{Compare, CompareOp, MetaStore, Revision, Txn, TxnOp};

use crate::balance::{self, PartitionKey};
use crate::error::{CatalogError, Result};

/// Assignment changes per transaction; bounded by the store's operations-per-transaction limit.
const MOVES_PER_TXN: usize = 32;

/// A snapshot of everything assignment decisions depend on.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub brokers: BTreeMap<String, BrokerInfo>,
    pub drained: BTreeSet<String>,
    pub topics: BTreeMap<String, TopicConfig>,
    /// Every assignment key with its value and mod revision, including stale ones left by an
    /// earlier incarnation of a topic (their revision still guards the next write).
    pub assignments: BTreeMap<PartitionKey, (Assignment, Revision)>,
}

/// How much freedom a plan has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    /// Balance fully with the fewest moves (brokers joined or left, or an operator asked).
    Rebalance,
    /// Only place partitions without a live, undrained owner.
    HomelessOnly,
}

/// One assignment change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Move {
    pub topic: String,
    pub partition: u32,
    pub from: Option<String>,
    pub to: String,
    /// The epoch the partition gets with this move.
    pub epoch: u64,
}

impl ClusterState {
    pub async fn load(meta: &dyn MetaStore, keys: &Keyspace) -> Result<Self> {
        let mut state = Self::default();
        for kv in meta.range(&keys.brokers()).await?.0 {
            let info: BrokerInfo = schema::decode(&kv.key, &kv.value)?;
            state.brokers.insert(info.id.clone(), info);
        }
        for kv in meta.range(&keys.drains()).await?.0 {
            if let Some(id) = kv.key.strip_prefix(&keys.drains()) {
                state.drained.insert(id.to_owned());
            }
        }
        for kv in meta.range(&keys.topics()).await?.0 {
            if let Some(name) = keys.topic_name_of(&kv.key) {
                state
                    .topics
                    .insert(name.to_owned(), schema::decode(&kv.key, &kv.value)?);
            }
        }
        for kv in meta.range(&keys.assignments()).await?.0 {
            if let Some((topic, partition)) = keys.partition_of(&kv.key) {
                let assignment: Assignment = schema::decode(&kv.key, &kv.value)?;
                state.assignments.insert(
                    PartitionKey { topic, partition },
                    (assignment, kv.mod_revision),
                );
            }
        }
        Ok(state)
    }

    /// Brokers that may own partitions: registered and not drained.
    pub fn eligible(&self) -> BTreeSet<String> {
        self.brokers
            .keys()
            .filter(|b| !self.drained.contains(*b))
            .cloned()
            .collect()
    }

    /// The current assignment of a partition, if it belongs to the topic's current incarnation.
    pub fn assignment(&self, key: &PartitionKey) -> Option<&Assignment> {
        let topic = self.topics.get(&key.topic)?;
        self.assignments
            .get(key)
            .map(|(a, _)| a)
            .filter(|a| a.topic_id == topic.id)
    }

    /// Every partition of every topic with its current owner.
    pub fn owners(&self) -> BTreeMap<PartitionKey, Option<String>> {
        self.topics
            .iter()
            .flat_map(|(name, config)| {
                (0..config.partitions).map(move |p| PartitionKey::new(name.clone(), p))
            })
            .map(|key| {
                let owner = self.assignment(&key).map(|a| a.broker.clone());
                (key, owner)
            })
            .collect()
    }

    /// The moves that reach the assignment `mode` asks for.
    pub fn plan(&self, mode: PlanMode) -> Vec<Move> {
        let current = self.owners();
        let eligible = self.eligible();
        let zones: balance::Zones = self
            .brokers
            .values()
            .filter(|b| !b.zone.is_empty())
            .map(|b| (b.id.clone(), b.zone.clone()))
            .collect();
        let next = match mode {
            PlanMode::Rebalance => balance::rebalance(&current, &eligible, &zones),
            PlanMode::HomelessOnly => balance::place_homeless(&current, &eligible, &zones),
        };
        next.into_iter()
            .filter(|(key, to)| current.get(key).and_then(Option::as_ref) != Some(to))
            .map(|(key, to)| self.move_to(key, to))
            .collect()
    }

    /// A move of `key` to broker `to`, with the next epoch.
    pub fn move_to(&self, key: PartitionKey, to: String) -> Move {
        let previous = self.assignments.get(&key).map(|(a, _)| a);
        Move {
            from: self.assignment(&key).map(|a| a.broker.clone()),
            epoch: previous.map_or(1, |a| a.epoch + 1),
            topic: key.topic,
            partition: key.partition,
            to,
        }
    }

    /// Writes `moves`, each guarded by the mod revision its assignment had in this snapshot,
    /// plus `fence` (the active controller's leadership) when given. A lost race is `Conflict`.
    pub async fn apply(
        &self,
        meta: &dyn MetaStore,
        keys: &Keyspace,
        moves: &[Move],
        fence: Option<&Compare>,
    ) -> Result<()> {
        for chunk in moves.chunks(MOVES_PER_TXN) {
            let mut txn = Txn::new();
            if let Some(fence) = fence {
                txn = txn.when([fence.clone()]);
            }
            for m in chunk {
                let key = PartitionKey::new(m.topic.clone(), m.partition);
                let path = keys.assignment(&m.topic, m.partition);
                let guard = match self.assignments.get(&key) {
                    Some((_, revision)) => {
                        Compare::mod_revision(path.clone(), CompareOp::Equal, *revision)
                    }
                    None => Compare::absent(path.clone()),
                };
                let topic_id = self.topics.get(&m.topic).map_or(0, |t| t.id);
                let value = Assignment {
                    broker: m.to.clone(),
                    epoch: m.epoch,
                    topic_id,
                };
                txn = txn
                    .when([guard])
                    .and_then([TxnOp::put(path, schema::encode(&value))]);
            }
            if !meta.txn(txn).await?.succeeded {
                return Err(CatalogError::Conflict(
                    "assignments or leadership changed".into(),
                ));
            }
            for m in chunk {
                tracing::info!(topic = %m.topic, partition = m.partition, from = ?m.from, to = %m.to, epoch = m.epoch, "partition assigned");
            }
        }
        Ok(())
    }
}
