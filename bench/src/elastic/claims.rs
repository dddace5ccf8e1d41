//! Who claimed a partition, and from which offset: replayed from the partition's commit key.
//!
//! "First produce acknowledged by the new owner" is exact: the new owner's claim writes a
//! checkpoint with its epoch and the offset it continues from, N; the old owner can never
//! commit offset N or later (its commits compare the assignment), so the first acknowledgement
//! of an offset ≥ N is the new owner's. The bench reads the claim by replaying the partition's
//! commit key in the metadata store from a revision taken before the event.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::bail;
use futures::StreamExt;
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_meta::{MetaStore, WatchEvent};

/// The new owner's claim: its epoch and the offset it continues from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub epoch: u64,
    pub from_offset: i64,
}

/// The store's revision now.
pub async fn revision(meta: &dyn MetaStore, keys: &Keyspace) -> anyhow::Result<i64> {
    Ok(meta.range(&keys.controller()).await?.1)
}

/// Replays commit keys of `topic` from `from_revision` until each partition of `old_epochs`
/// shows a checkpoint with a newer epoch: the new owner's claim.
pub async fn claims(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    topic: &str,
    old_epochs: &BTreeMap<u32, u64>,
    from_revision: i64,
    limit: Duration,
) -> anyhow::Result<HashMap<u32, Claim>> {
    let commit_keys: HashMap<String, u32> = old_epochs
        .keys()
        .map(|p| (keys.checkpoint(topic, *p), *p))
        .collect();
    let mut found = HashMap::new();
    let mut watch = meta
        .watch_prefix(&keys.topic_log(topic), Some(from_revision + 1))
        .await?;
    let deadline = tokio::time::Instant::now() + limit;
    while found.len() < old_epochs.len() {
        let event = match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Some(event)) => event?,
            Ok(None) => bail!("the metadata watch ended"),
            Err(_) => bail!(
                "only {} of {} partitions were claimed by a new owner within {limit:?}",
                found.len(),
                old_epochs.len()
            ),
        };
        let WatchEvent::Put(kv) = event else {
            continue;
        };
        let Some(&p) = commit_keys.get(&kv.key) else {
            continue;
        };
        let checkpoint: Checkpoint = schema::decode(&kv.key, &kv.value)?;
        if checkpoint.epoch > old_epochs[&p] && !found.contains_key(&p) {
            found.insert(
                p,
                Claim {
                    epoch: checkpoint.epoch,
                    from_offset: checkpoint.next_offset,
                },
            );
        }
    }
    Ok(found)
}
