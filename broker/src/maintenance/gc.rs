//! Garbage collection: objects recorded for deletion once their grace has passed, orphans of
//! a partition (objects no record references), and the objects of deleted topics.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_log::{Claim, FLUSH_FOLDER, GcRecord, partition_prefix};
use strata_meta::schema::{self, TopicConfig};
use strata_meta::{Compare, CompareOp, TxnOp};

use super::Maintainer;
use crate::error::Result;
use crate::partition::{Partition, now_ms};

impl Maintainer {
    /// Deletes the objects of every GC record that is due, then the record.
    pub(super) async fn collect_garbage(&self, p: &Partition, claim: &Claim) -> Result<usize> {
        let (kvs, _) = self
            .log
            .meta
            .range(&self.log.keys.gc_records(&p.topic, p.partition))
            .await?;
        let now = now_ms();
        let mut deleted = 0;
        for kv in kvs {
            let record: GcRecord = schema::decode(&kv.key, &kv.value)?;
            if record.due_ms > now {
                break; // keys sort by due time
            }
            for (path, placement) in &record.objects {
                self.log
                    .pool
                    .delete(placement, &Path::from(path.as_str()))
                    .await?;
                deleted += 1;
            }
            let unchanged =
                Compare::mod_revision(kv.key.clone(), CompareOp::Equal, kv.mod_revision);
            self.apply(claim, &[unchanged], &[TxnOp::delete(kv.key.clone())])
                .await?;
        }
        Ok(deleted)
    }

    /// Deletes the partition's objects that no segment or GC record references and that are
    /// older than the grace period.
    pub(super) async fn sweep_orphans(&self, p: &Partition, grace_ms: i64) -> Result<usize> {
        let mut referenced: HashSet<String> = self
            .load_segments(p)
            .await?
            .into_iter()
            .map(|s| s.record.path)
            .collect();
        let (gc, _) = self
            .log
            .meta
            .range(&self.log.keys.gc_records(&p.topic, p.partition))
            .await?;
        for kv in gc {
            let record: GcRecord = schema::decode(&kv.key, &kv.value)?;
            referenced.extend(record.objects.into_iter().map(|(path, _)| path));
        }
        let prefix = partition_prefix(self.log.keys.root(), &p.topic, p.topic_id, p.partition);
        let cutoff = now_ms() - grace_ms;
        let mut deleted = 0;
        for node in self.log.pool.node_ids() {
            let Some(store) = self.log.pool.store(&node) else {
                continue;
            };
            let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
            for object in objects {
                let old_enough = object.last_modified.timestamp_millis() < cutoff;
                if old_enough && !referenced.contains(object.location.as_ref()) {
                    store.delete(&object.location).await?;
                    tracing::info!(%node, path = %object.location, "deleted orphan object");
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes the objects of topics that no longer exist (deleted, or deleted and created
    /// again: the folder names the incarnation), once older than `gc_grace`. No partition owner
    /// is left to do this, so the registered broker with the lowest id does it for the cluster.
    pub async fn sweep_deleted_topics(&self, gc_grace: Duration) -> Result<usize> {
        if !self.sweeps_for_cluster().await? {
            return Ok(0);
        }
        let (meta, keys) = (&self.log.meta, &self.log.keys);
        let (topics, _) = meta.range(&keys.topics()).await?;
        let mut live = HashSet::new();
        for kv in topics {
            let config: TopicConfig = schema::decode(&kv.key, &kv.value)?;
            if let Some(name) = keys.topic_name_of(&kv.key) {
                live.insert(format!("{name}-{:016x}", config.id));
            }
        }
        let root = Path::from(keys.root().trim_start_matches('/'));
        let cutoff = now_ms() - gc_grace.as_millis() as i64;
        let mut deleted = 0;
        for node in self.log.pool.node_ids() {
            let Some(store) = self.log.pool.store(&node) else {
                continue;
            };
            let listing = store.list_with_delimiter(Some(&root)).await?;
            for folder in listing.common_prefixes {
                if folder
                    .filename()
                    .is_none_or(|name| name == FLUSH_FOLDER || live.contains(name))
                {
                    continue;
                }
                let objects: Vec<_> = store.list(Some(&folder)).try_collect().await?;
                for object in objects
                    .into_iter()
                    .filter(|o| o.last_modified.timestamp_millis() < cutoff)
                {
                    store.delete(&object.location).await?;
                    deleted += 1;
                }
                tracing::info!(%node, folder = %folder, deleted, "swept objects of a deleted topic");
            }
        }
        Ok(deleted)
    }

    /// Whether this broker does the cluster's sweeps: it is the registered broker with the
    /// lowest id (or none is registered, as in a single-broker test).
    pub(super) async fn sweeps_for_cluster(&self) -> Result<bool> {
        let keys = &self.log.keys;
        let (brokers, _) = self.log.meta.range(&keys.brokers()).await?;
        let lowest = brokers
            .iter()
            .filter_map(|kv| keys.broker_id_of(&kv.key))
            .min();
        Ok(lowest.is_none_or(|id| id == self.log.writer))
    }
}
