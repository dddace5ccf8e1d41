//! Partition moves through the admin API: how long until the new owner acknowledges a
//! produce, and how many bytes the move copied (none, by design).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use strata_client::{Ack, Partitioner, ProducerRecord};
use strata_storage::NodePool;

use super::claims::{claims, revision};
use super::closed_loop::ClosedLoop;
use super::{ElasticSettings, SIZE, other_broker};
use crate::baseline::open_pool;
use crate::load::{self, BrokerCounters};
use crate::stats::{Progress, fmt_opt, median, millis};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MoveResult {
    /// Request sent → first produce acknowledged by the new owner, per trial.
    pub move_ms: Vec<f64>,
    /// Request sent → the admin API answered (the assignment is written).
    pub api_ms: Vec<f64>,
    pub move_p50_ms: Option<f64>,
    pub move_max_ms: Option<f64>,
    /// The partition's objects before the quiet move.
    pub objects_before: u64,
    pub bytes_before: u64,
    /// Bytes of objects that appeared under the partition's prefix during a move with no
    /// produce running.
    pub bytes_copied: Option<u64>,
    /// Segment bytes all brokers wrote during that move (their /metrics).
    pub broker_segment_bytes_during_move: Option<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// The partition every move measures.
const PARTITION: u32 = 0;

/// Partition moves between brokers: one quiet (objects listed before and after), then
/// `trials` under a closed-loop load on the moved partition.
pub async fn partition_move(
    s: &ElasticSettings<'_>,
    progress: &mut Progress,
) -> anyhow::Result<MoveResult> {
    let brokers = s.brokers_for("a partition move").await?;
    let (topic, topic_id) = s.new_topic("move", 2).await?;
    progress.update(&format!("move: filling {topic}/{PARTITION}"));
    fill(s, &topic).await?;
    let mut result = quiet_move(s, &brokers, &topic, topic_id).await?;
    timed_moves(s, &brokers, &topic, &mut result, progress).await?;
    result.move_p50_ms = median(&mut result.move_ms.clone());
    result.move_max_ms = result.move_ms.iter().copied().max_by(f64::total_cmp);
    progress.done(&format!(
        "move: request → first ack by the new owner p50 {} ms, max {} ms; bytes copied {}",
        fmt_opt(result.move_p50_ms, 1),
        fmt_opt(result.move_max_ms, 1),
        result.bytes_copied.map_or("-".into(), |b| b.to_string())
    ));
    let _ = s.admin.delete_topic(&topic).await;
    Ok(result)
}

/// Data a move must not copy: about 8 MB in the partition.
async fn fill(s: &ElasticSettings<'_>, topic: &str) -> anyhow::Result<()> {
    let producer = load::producer(
        &s.args.server,
        Ack::Durable,
        Duration::from_millis(5),
        Partitioner::RoundRobin,
    )
    .await?;
    let value = load::template(SIZE);
    let mut acks = Vec::new();
    for _ in 0..(8_000_000 / SIZE.max(1)) {
        let record = ProducerRecord::new(topic.to_owned(), value.clone()).with_partition(PARTITION);
        acks.push(producer.enqueue(record).await?);
    }
    for ack in acks {
        ack.await?;
    }
    producer.close().await?;
    Ok(())
}

/// One move with nothing running: the partition's objects are listed before and after, and
/// the brokers' segment bytes are read around it.
async fn quiet_move(
    s: &ElasticSettings<'_>,
    brokers: &[String],
    topic: &str,
    topic_id: u64,
) -> anyhow::Result<MoveResult> {
    let mut result = MoveResult::default();
    let pool = s.args.storage_node.as_deref().map(open_pool).transpose()?;
    let before = match &pool {
        Some(pool) => Some(partition_objects(pool, s, topic, topic_id).await?),
        None => None,
    };
    let http = reqwest::Client::new();
    let scraped_before = BrokerCounters::scrape(&http, &s.args.broker_http).await;
    let target = other_broker(brokers, &s.admin.owner(topic, PARTITION).await?);
    let moved = s.admin.reassign(topic, PARTITION, &target).await?;
    s.admin
        .wait_owner(
            topic,
            PARTITION,
            &target,
            moved.epoch,
            Duration::from_secs(10),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scraped_after = BrokerCounters::scrape(&http, &s.args.broker_http).await;
    if let (Some(pool), Some(before)) = (&pool, &before) {
        let after = partition_objects(pool, s, topic, topic_id).await?;
        result.objects_before = before.len() as u64;
        result.bytes_before = before.values().sum();
        result.bytes_copied = Some(
            after
                .iter()
                .filter(|(k, _)| !before.contains_key(*k))
                .map(|(_, v)| *v)
                .sum(),
        );
    }
    if let (Some(a), Some(b)) = (scraped_before, scraped_after) {
        result.broker_segment_bytes_during_move =
            Some((b.segment_bytes - a.segment_bytes).max(0.0) as u64);
    }
    Ok(result)
}

/// Moves back and forth under a closed-loop load, timed from the request to the first
/// acknowledgement by the new owner.
async fn timed_moves(
    s: &ElasticSettings<'_>,
    brokers: &[String],
    topic: &str,
    result: &mut MoveResult,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let load = ClosedLoop::start(&s.args.server, topic, &[PARTITION], SIZE).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for trial in 0..s.trials {
        progress.update(&format!("move: trial {}/{}", trial + 1, s.trials));
        let target = other_broker(brokers, &s.admin.owner(topic, PARTITION).await?);
        let rev = revision(s.meta.as_ref(), &s.keys).await?;
        let old_epoch = s.admin.partitions(topic).await?[PARTITION as usize].epoch;
        let sent = Instant::now();
        let moved = s.admin.reassign(topic, PARTITION, &target).await?;
        let answered = Instant::now();
        let old_epochs = BTreeMap::from([(PARTITION, old_epoch)]);
        let limit = Duration::from_secs(10);
        let claim =
            claims(s.meta.as_ref(), &s.keys, topic, &old_epochs, rev, limit).await?[&PARTITION];
        if claim.epoch != moved.epoch {
            tracing::warn!(
                epoch = claim.epoch,
                expected = moved.epoch,
                "claimed at another epoch than the move's"
            );
        }
        let first = load
            .first_ack(PARTITION, claim.from_offset, sent, limit)
            .await?;
        result.move_ms.push(millis(first - sent));
        result.api_ms.push(millis(answered - sent));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (result.errors, result.first_error) = load.stop().await;
    Ok(())
}

/// The partition's objects on every storage node: `node/path` → bytes.
async fn partition_objects(
    pool: &NodePool,
    s: &ElasticSettings<'_>,
    topic: &str,
    topic_id: u64,
) -> anyhow::Result<HashMap<String, u64>> {
    let prefix = strata_log::partition_prefix(s.keys.root(), topic, topic_id, PARTITION);
    let mut out = HashMap::new();
    for node in pool.node_ids() {
        let Some(store) = pool.store(&node) else {
            continue;
        };
        let mut listing = store.list(Some(&prefix));
        while let Some(object) = listing.next().await {
            let object = object?;
            out.insert(format!("{node}/{}", object.location), object.size);
        }
    }
    Ok(out)
}
