//! The flush-object sweep. A flush object holds sections of many partitions, possibly owned by
//! different brokers by now, so no partition's maintenance may delete it: compaction and
//! retention drop their records, and this sweep deletes an object once no committed record
//! has referred to it for the readers' grace period. One broker (the registered one with the
//! lowest id) sweeps for the cluster.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_log::{SegmentRecord, flush_prefix};
use strata_meta::schema;
use strata_storage::NodeId;

use super::Maintainer;
use crate::error::Result;
use crate::partition::now_ms;

/// Flush objects this sweeper found unreferenced, and since when (ms). Kept in memory: a
/// sweeper that restarts, or a new lowest broker, starts the grace over, which only delays.
pub(super) type Unreferenced = std::sync::Mutex<HashMap<String, i64>>;

impl Maintainer {
    /// Deletes flush objects older than `gc_grace` that no segment record has referred to for
    /// `gc_grace`: readers that listed a record before compaction replaced it finish first,
    /// and a flush whose commit is still on its way (its object is young) is left alone.
    /// Returns the objects deleted.
    pub async fn sweep_flush_objects(&self, gc_grace: Duration) -> Result<usize> {
        if !self.sweeps_for_cluster().await? {
            return Ok(0);
        }
        // Storage is listed before the records are read, so every listed object that a commit
        // refers to is seen referenced: its commit landed before the records were read, or it
        // is still young.
        let prefix = flush_prefix(self.log.keys.root());
        let mut stored: HashMap<String, (Vec<NodeId>, i64)> = HashMap::new();
        for node in self.log.pool.node_ids() {
            let Some(store) = self.log.pool.store(&node) else {
                continue;
            };
            let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
            for object in objects {
                let entry = stored
                    .entry(object.location.to_string())
                    .or_insert_with(|| (Vec::new(), i64::MAX));
                entry.0.push(node.clone());
                entry.1 = entry.1.min(object.last_modified.timestamp_millis());
            }
        }
        let referenced = self.referenced_flush_objects().await?;
        let now = now_ms();
        let grace_ms = gc_grace.as_millis() as i64;
        let mut due = Vec::new();
        {
            let mut unreferenced = self
                .unreferenced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            unreferenced.retain(|path, _| stored.contains_key(path) && !referenced.contains(path));
            for (path, (nodes, modified)) in stored {
                if referenced.contains(&path) || modified > now - grace_ms {
                    continue;
                }
                let since = *unreferenced.entry(path.clone()).or_insert(now);
                if now - since >= grace_ms {
                    unreferenced.remove(&path);
                    due.push((path, nodes));
                }
            }
        }
        let mut deleted = 0;
        for (path, nodes) in due {
            let location = Path::from(path.as_str());
            for node in &nodes {
                if let Some(store) = self.log.pool.store(node) {
                    store.delete(&location).await?;
                }
            }
            tracing::debug!(%path, copies = nodes.len(), "deleted a flush object no record refers to");
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Paths of the flush objects that committed segment records refer to.
    async fn referenced_flush_objects(&self) -> Result<HashSet<String>> {
        let keys = &self.log.keys;
        let (kvs, _) = self.log.meta.range(&keys.logs()).await?;
        let mut referenced = HashSet::new();
        for kv in kvs.iter().filter(|kv| keys.is_segment_key(&kv.key)) {
            let record: SegmentRecord = schema::decode(&kv.key, &kv.value)?;
            if record.shared {
                referenced.insert(record.path);
            }
        }
        Ok(referenced)
    }
}
