//! What every point starts from: a fresh folder with an embedded metadata store, one
//! `file://` storage node, and broker `b1` serving every partition of the topic.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_bench::baseline::{open_pool, random_bytes};
use strata_broker::{Broker, BrokerConfig};
use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_format::{BatchOptions, Record, encode_batch};
use strata_meta::schema::{self, BrokerInfo, Keyspace};
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaStore};

use crate::{RECORDS_PER_BATCH, TOPIC, VALUE_BYTES};

/// Batches are encoded once and reused: encoding is the client's cost, not the broker's. A few
/// distinct ones keep segments from being one repeated byte pattern.
const DISTINCT_BATCHES: usize = 8;

pub fn encoded_batches() -> anyhow::Result<Vec<Bytes>> {
    let mut batches = Vec::with_capacity(DISTINCT_BATCHES);
    for b in 0..DISTINCT_BATCHES {
        let records: Vec<Record> = (0..RECORDS_PER_BATCH)
            .map(|r| {
                let seed = (b * RECORDS_PER_BATCH + r) as u64 + 1;
                Record {
                    timestamp: 1_700_000_000_000,
                    value: Some(random_bytes(VALUE_BYTES, seed)),
                    ..Record::default()
                }
            })
            .collect();
        batches.push(encode_batch(&records, &BatchOptions::default())?.to_bytes());
    }
    Ok(batches)
}

/// A fresh folder `root/name`. Nothing is deleted before the run ends: on this machine's ext4
/// (no journal), creating files right after tens of thousands were deleted spends most of its
/// CPU in the inode allocator skipping recently deleted inodes, and the next point would pay
/// for the previous point's cleanup.
pub fn fresh_dir(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = root.join(name);
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

/// One `file://` node with replicas = 1. The pool keeps the backend's default: fsync every
/// write, as a broker does.
pub fn file_pool(dir: &Path) -> anyhow::Result<Arc<strata_storage::NodePool>> {
    open_pool(&format!("n1=file://{}", dir.display()))
}

pub async fn open_meta(dir: &Path) -> anyhow::Result<Arc<dyn MetaStore>> {
    Ok(Arc::new(
        EmbeddedStore::open(dir, EmbeddedOptions::default()).await?,
    ))
}

/// A broker "b1" serving every partition of [`TOPIC`], with the flush settings of its config.
pub struct Setup {
    pub broker: Arc<Broker>,
    pub linger: Duration,
    pub flush_bytes: usize,
}

/// Broker `b1` over a fresh metadata store and storage node in `root/name`, with `partitions`
/// partitions of [`TOPIC`] recovered and writable.
pub async fn set_up(root: &Path, name: &str, partitions: u32) -> anyhow::Result<Setup> {
    let dir = fresh_dir(root, name)?;
    let meta = open_meta(&dir.join("meta")).await?;
    let pool = file_pool(&dir.join("node1"))?;
    let keys = Keyspace::new("bench")?;
    let info = BrokerInfo {
        id: "b1".into(),
        addr: "b1:7071".into(),
        started_ms: 0,
        zone: String::new(),
    };
    meta.put(&keys.broker("b1"), schema::encode(&info), None)
        .await?;
    Admin::new(meta.clone(), keys.clone())
        .create_topic(NewTopic {
            name: TOPIC.into(),
            partitions: i64::from(partitions),
            ..Default::default()
        })
        .await?;
    let config = BrokerConfig::new("b1");
    let (linger, flush_bytes) = (config.flush.linger, config.flush.flush_bytes);
    let broker = Broker::new(config, meta.clone(), keys, pool);
    for p in 0..partitions {
        broker.open_partition(TOPIC, p).await?;
    }
    Ok(Setup {
        broker,
        linger,
        flush_bytes,
    })
}
