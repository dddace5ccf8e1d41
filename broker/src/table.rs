//! The partitions this broker serves, by topic and partition: what the produce path, the
//! flusher, maintenance and the status endpoints all look up.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_storage::NodePool;

use crate::partition::Partition;

type Key = (String, u32);

#[derive(Debug, Default)]
pub(crate) struct PartitionTable {
    map: RwLock<HashMap<Key, Arc<Partition>>>,
    /// Told when a partition becomes writable; the delay worker waits on it.
    became_writable: Notify,
}

impl PartitionTable {
    pub(crate) fn all(&self) -> Vec<Arc<Partition>> {
        self.read().values().cloned().collect()
    }

    pub(crate) fn get(&self, topic: &str, partition: u32) -> Option<Arc<Partition>> {
        self.read().get(&(topic.to_owned(), partition)).cloned()
    }

    /// Serves `p` from now on; returns the incarnation it replaces.
    pub(crate) fn insert(&self, p: Arc<Partition>) -> Option<Arc<Partition>> {
        self.write().insert((p.topic.clone(), p.partition), p)
    }

    pub(crate) fn remove(&self, topic: &str, partition: u32) -> Option<Arc<Partition>> {
        self.write().remove(&(topic.to_owned(), partition))
    }

    /// Removes `p` unless a newer incarnation replaced it meanwhile.
    pub(crate) fn remove_incarnation(&self, p: &Arc<Partition>) {
        let mut map = self.write();
        let key = (p.topic.clone(), p.partition);
        if map.get(&key).is_some_and(|served| Arc::ptr_eq(served, p)) {
            map.remove(&key);
        }
    }

    /// Tells the one waiter of [`Self::writable`] (or its next wait) that a partition
    /// became writable.
    pub(crate) fn note_writable(&self) {
        self.became_writable.notify_one();
    }

    /// Returns once a partition became writable since the last return.
    pub(crate) async fn writable(&self) {
        self.became_writable.notified().await;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Key, Arc<Partition>>> {
        self.map.read().expect("partition table poisoned")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Key, Arc<Partition>>> {
        self.map.write().expect("partition table poisoned")
    }
}

/// Where a broker's log lives and under which name it writes: what the flusher and the
/// maintainer both need.
#[derive(Debug, Clone)]
pub(crate) struct LogAccess {
    /// The broker's id: the writer named in checkpoints.
    pub(crate) writer: String,
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) keys: Keyspace,
    pub(crate) pool: Arc<NodePool>,
}
