//! Measuring the bytes a partition move copies.
//!
//! A [`Snapshot`] records the metadata (every key under the cluster's root, every segment
//! record, every checkpoint) and the storage (every object on every node, with its size) at
//! one moment. Two measures compare a snapshot taken just before a fault with one taken after
//! the partitions moved:
//!
//! - [`copied`], valid under load: segment records that appeared after the first snapshot
//!   for offsets the partition had already committed then. New data always gets offsets at
//!   or past the old high watermark, so the only legitimate writer of such records is
//!   compaction, which *merges* segments: its output replaces two or more old records, or one
//!   old record together with newer data. Every other new record for old offsets — a one for
//!   one rewrite of existing data, which is what copying a partition on a move would look
//!   like — counts as copied, with its bytes times its copies.
//! - [`quiet`], with producers paused around the move: bytes of objects that appeared in
//!   storage, less those of compaction outputs, and the change in the number of metadata keys
//!   (group keys aside; consumers keep committing). Nothing else writes while producers are
//!   paused.

use std::collections::BTreeMap;

use anyhow::Context;
use futures::TryStreamExt;
use strata_log::SegmentRecord;
use strata_meta::MetaStore;
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_storage::NodePool;

/// One segment record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub topic: String,
    pub partition: u32,
    pub base: i64,
    /// One past the last offset.
    pub next: i64,
    pub path: String,
    pub size: u64,
    pub copies: usize,
    /// The storage nodes holding its object.
    pub nodes: Vec<String>,
}

/// Metadata and storage at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub meta_keys: usize,
    /// By segment key.
    pub segments: BTreeMap<String, Segment>,
    /// High watermark by (topic, partition).
    pub commits: BTreeMap<(String, u32), i64>,
    /// Size by (node, object path).
    pub objects: BTreeMap<(String, String), u64>,
    /// Storage nodes that could not be listed.
    pub unreachable_nodes: Vec<String>,
}

impl Snapshot {
    /// Records the metadata, and with `storage` every object on every node (listing them is
    /// slow once there are many: only the quiet measure needs it).
    pub async fn take(
        meta: &dyn MetaStore,
        keys: &Keyspace,
        storage: Option<&NodePool>,
    ) -> anyhow::Result<Self> {
        let mut snapshot = Self::default();
        let (kvs, _) = meta.range(&format!("{}/", keys.root())).await?;
        let groups = keys.groups();
        // Group keys change as consumers commit, gc keys as compaction and collection run.
        snapshot.meta_keys = kvs
            .iter()
            .filter(|kv| !kv.key.starts_with(&groups) && !kv.key.contains("/gc/"))
            .count();
        snapshot.unreachable_nodes.clear();
        let log_prefix = format!("{}/log/", keys.root());
        for kv in &kvs {
            let Some(rest) = kv.key.strip_prefix(&log_prefix) else {
                continue;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                [topic, p, "seg", _] => {
                    let record: SegmentRecord = schema::decode(&kv.key, &kv.value)?;
                    snapshot.segments.insert(
                        kv.key.clone(),
                        Segment {
                            topic: (*topic).to_owned(),
                            partition: p.parse()?,
                            base: record.meta.base_offset,
                            next: record.meta.next_offset,
                            path: record.path.clone(),
                            size: record.meta.size,
                            copies: record.placement.nodes.len(),
                            nodes: record.placement.nodes.iter().map(|n| n.0.clone()).collect(),
                        },
                    );
                }
                [topic, p, "commit"] => {
                    let checkpoint: Checkpoint = schema::decode(&kv.key, &kv.value)?;
                    snapshot
                        .commits
                        .insert(((*topic).to_owned(), p.parse()?), checkpoint.next_offset);
                }
                _ => {}
            }
        }
        let Some(pool) = storage else {
            return Ok(snapshot);
        };
        for node in pool.node_ids() {
            let store = pool
                .store(&node)
                .with_context(|| format!("no store for node {node}"))?;
            // A node that is down (a fault) cannot be listed; the record measure needs no
            // listing, and the quiet measure is only taken with every node up. A listing can
            // also fail while objects are deleted under it (s3s-fs walks its folders), so a
            // failed one is tried again a few times.
            let mut listed = None;
            for attempt in 0..5 {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(20),
                    store.list(None).try_collect::<Vec<_>>(),
                )
                .await
                {
                    Ok(Ok(objects)) => {
                        listed = Some(objects);
                        break;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(node = %node, attempt, error = %e, "cannot list a storage node");
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    }
                    Err(_) => break,
                }
            }
            let Some(objects) = listed else {
                snapshot.unreachable_nodes.push(node.to_string());
                continue;
            };
            for object in objects {
                snapshot
                    .objects
                    .insert((node.to_string(), object.location.to_string()), object.size);
            }
        }
        Ok(snapshot)
    }

    /// Offset ranges that no segment record covers although they are below the partition's
    /// high watermark (between the first record and the checkpoint): a reader would find
    /// nothing there. Must be empty.
    pub fn holes(&self) -> Vec<String> {
        let mut by_partition: BTreeMap<(&str, u32), Vec<&Segment>> = BTreeMap::new();
        for seg in self.segments.values() {
            by_partition
                .entry((seg.topic.as_str(), seg.partition))
                .or_default()
                .push(seg);
        }
        let mut holes = Vec::new();
        for ((topic, partition), mut segs) in by_partition {
            segs.sort_by_key(|s| s.base);
            for pair in segs.windows(2) {
                if pair[0].next != pair[1].base {
                    holes.push(format!(
                        "{topic}/{partition}: {}..{} (records {} and {})",
                        pair[0].next, pair[1].base, pair[0].path, pair[1].path
                    ));
                }
            }
            let end = self
                .commits
                .get(&(topic.to_owned(), partition))
                .copied()
                .unwrap_or(0);
            if let Some(last) = segs.last()
                && last.next < end
            {
                holes.push(format!(
                    "{topic}/{partition}: {}..{end} (after the last record)",
                    last.next
                ));
            }
        }
        holes
    }

    /// Bytes of every object on every node.
    pub fn storage_bytes(&self) -> u64 {
        self.objects.values().sum()
    }
}

/// What a move copied, by the record measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Bytes (all copies) of new records for offsets committed before the move that are not
    /// merges: must be 0.
    pub bytes: u64,
    /// Bytes (all copies) of compaction outputs among the new records.
    pub compacted_bytes: u64,
    /// Old records replaced other than by a merge: must be 0.
    pub records_rewritten: u64,
}

impl std::ops::AddAssign for Copied {
    fn add_assign(&mut self, other: Self) {
        self.bytes += other.bytes;
        self.compacted_bytes += other.compacted_bytes;
        self.records_rewritten += other.records_rewritten;
    }
}

/// The new records for old offsets, split into merges and copies, and the bytes of each.
fn classify(before: &Snapshot, after: &Snapshot) -> (Vec<Segment>, Vec<Segment>) {
    let (mut merges, mut copies) = (Vec::new(), Vec::new());
    for (key, seg) in &after.segments {
        let old_end = before
            .commits
            .get(&(seg.topic.clone(), seg.partition))
            .copied()
            .unwrap_or(0);
        if seg.base >= old_end || before.segments.get(key) == Some(seg) {
            continue;
        }
        let replaced = before
            .segments
            .values()
            .filter(|old| {
                old.topic == seg.topic
                    && old.partition == seg.partition
                    && old.base >= seg.base
                    && old.base < seg.next
            })
            .count();
        if replaced >= 2 || (replaced == 1 && seg.next > old_end) {
            merges.push(seg.clone());
        } else {
            copies.push(seg.clone());
        }
    }
    (merges, copies)
}

/// The record measure between a snapshot before the move and one after (see the module).
pub fn copied(before: &Snapshot, after: &Snapshot) -> Copied {
    let (merges, copies) = classify(before, after);
    let bytes = |segs: &[Segment]| segs.iter().map(|s| s.size * s.copies as u64).sum();
    let mut out = Copied {
        bytes: bytes(&copies),
        compacted_bytes: bytes(&merges),
        records_rewritten: 0,
    };
    for (key, seg) in &before.segments {
        if after.segments.get(key) == Some(seg) {
            continue;
        }
        let merged = merges.iter().any(|m| {
            m.topic == seg.topic
                && m.partition == seg.partition
                && m.base <= seg.base
                && seg.base < m.next
        });
        if !merged {
            out.records_rewritten += 1;
        }
    }
    out
}

/// The quiet measure, with producers paused between the two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quiet {
    /// Bytes of objects that appeared in storage and that a segment record other than a
    /// compaction output points at: data a move copied. Must be 0.
    pub new_bytes: u64,
    /// Bytes of objects that appeared in storage and that no record points at: in practice a
    /// compaction cut short when its partition moved away (its output is an orphan, which the
    /// broker deletes). Reported, not a copy.
    pub orphan_bytes: u64,
    /// Bytes of compaction outputs committed meanwhile.
    pub compacted_bytes: u64,
    /// Metadata keys after − before (group and garbage-collection keys aside): new broker
    /// registrations, never segment records.
    pub meta_keys: i64,
    /// Segment records after − before, merges aside: must be 0.
    pub segments: i64,
}

pub fn quiet(before: &Snapshot, after: &Snapshot) -> Quiet {
    use std::collections::HashSet;
    let (merges, _) = classify(before, after);
    let merged_paths: HashSet<&str> = merges.iter().map(|m| m.path.as_str()).collect();
    let referenced: HashSet<&str> = after.segments.values().map(|s| s.path.as_str()).collect();
    let existing: HashSet<&str> = before.objects.keys().map(|(_, p)| p.as_str()).collect();
    let mut out = Quiet::default();
    for ((_, path), size) in &after.objects {
        let path = path.as_str();
        if existing.contains(path) {
            continue;
        }
        if merged_paths.contains(path) {
            out.compacted_bytes += size;
        } else if referenced.contains(path) {
            out.new_bytes += size;
        } else {
            out.orphan_bytes += size;
        }
    }
    let merged_away: i64 = merges
        .iter()
        .map(|m| {
            before
                .segments
                .values()
                .filter(|old| {
                    old.topic == m.topic
                        && old.partition == m.partition
                        && old.base >= m.base
                        && old.base < m.next
                })
                .count() as i64
                - 1
        })
        .sum();
    out.meta_keys = after.meta_keys as i64 - before.meta_keys as i64;
    out.segments = after.segments.len() as i64 - before.segments.len() as i64 + merged_away;
    out
}
