//! Each stage of a flush measured alone, before the points: an object PUT through the node
//! pool, the PUT phase of one cycle, a metadata transaction with what the flusher commits per
//! partition, and a whole `flush_once` with nothing else running.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use serde::Serialize;
use strata_bench::baseline::random_bytes;
use strata_bench::stats::{fmt_opt, median_ms};
use strata_broker::{Ack, partitions_per_txn};
use strata_meta::{Txn, TxnOp};

use crate::TOPIC;
use crate::setup::{file_pool, fresh_dir, open_meta, set_up};

/// Samples per stage probe (the medians printed before the points).
pub const PROBE_SAMPLES: usize = 16;
/// Objects in the PUT-phase probe: as many as a cycle has with 64 produces in flight.
const WAVE_OBJECTS: usize = 64;
/// As `PARALLEL_PUTS` in the flusher (crate-private there).
const WAVE_PARALLEL: usize = 16;

/// Medians, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    pub put_16k_ms: Option<f64>,
    pub put_1m_ms: Option<f64>,
    /// The PUT phase of a cycle with [`WAVE_OBJECTS`] partitions, without the broker.
    pub put_wave_ms: Option<f64>,
    pub txn_1p_ms: Option<f64>,
    /// A transaction of as many partitions as a flush commits in one.
    pub txn_full_ms: Option<f64>,
    pub partitions_per_txn: usize,
    /// A whole `flush_once` of that many partitions with one batch each, nothing else running.
    pub flush_alone: Vec<FlushAlone>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FlushAlone {
    pub partitions: u32,
    pub ms: Option<f64>,
}

impl Stages {
    pub fn describe(&self) -> String {
        let flushes: Vec<String> = self
            .flush_alone
            .iter()
            .map(|f| format!("{}: {} ms", f.partitions, fmt_opt(f.ms, 2)))
            .collect();
        format!(
            "stages alone (medians): PUT 16 KiB {} ms, PUT 1 MiB {} ms, {WAVE_OBJECTS} PUTs of 16 KiB {WAVE_PARALLEL} at a time {} ms; meta txn for 1 partition {} ms, for {} partitions {} ms\nflush_once alone, partitions with one 16 KiB batch each: {}",
            fmt_opt(self.put_16k_ms, 2),
            fmt_opt(self.put_1m_ms, 2),
            fmt_opt(self.put_wave_ms, 2),
            fmt_opt(self.txn_1p_ms, 2),
            self.partitions_per_txn,
            fmt_opt(self.txn_full_ms, 2),
            flushes.join(", ")
        )
    }
}

pub async fn probe(root: &Path, batch: &Bytes) -> anyhow::Result<Stages> {
    let dir = fresh_dir(root, "probe")?;
    let pool = file_pool(&dir.join("node1"))?;
    let mut put_ms = Vec::new();
    for size in [16 << 10, 1 << 20] {
        let payload = random_bytes(size, size as u64);
        let mut samples = Vec::with_capacity(PROBE_SAMPLES);
        for i in 0..PROBE_SAMPLES {
            // Same folder for every sample, as a partition's segments share one.
            let path = object_store::path::Path::from(format!("probe/{size}/{i:04}.seg"));
            let started = Instant::now();
            pool.put(&path, PutPayload::from(payload.clone())).await?;
            samples.push(started.elapsed());
        }
        put_ms.push(median_ms(&samples));
    }

    // 16 KiB objects into distinct folders, 16 at a time: the flusher's PUT phase. Round 0
    // creates the folders (a running broker has them) and is not timed.
    let payload = random_bytes(16 << 10, 3);
    let mut wave_samples = Vec::new();
    for round in 0..4 {
        let started = Instant::now();
        futures::stream::iter(0..WAVE_OBJECTS)
            .map(|folder| {
                let (pool, payload) = (&pool, payload.clone());
                async move {
                    let path =
                        object_store::path::Path::from(format!("wave/{folder}/{round:04}.seg"));
                    pool.put(&path, PutPayload::from(payload)).await
                }
            })
            .buffer_unordered(WAVE_PARALLEL)
            .try_collect::<Vec<_>>()
            .await?;
        if round > 0 {
            wave_samples.push(started.elapsed());
        }
    }

    let meta = open_meta(&dir.join("meta")).await?;
    // The flusher writes a segment record and a checkpoint per partition; values of about the
    // size those encode to.
    let value = Bytes::from(vec![b'x'; 200]);
    let mut txn_ms = Vec::new();
    let per_txn = partitions_per_txn(meta.max_txn_ops());
    for partitions in [1, per_txn] {
        let mut samples = Vec::with_capacity(PROBE_SAMPLES);
        for i in 0..PROBE_SAMPLES {
            let ops = (0..partitions).flat_map(|p| {
                [
                    TxnOp::put(
                        format!("/probe/{partitions}/{p}/segments/{i:04}"),
                        value.clone(),
                    ),
                    TxnOp::put(format!("/probe/{partitions}/{p}/commit"), value.clone()),
                ]
            });
            let started = Instant::now();
            meta.txn(Txn::new().and_then(ops)).await?;
            samples.push(started.elapsed());
        }
        txn_ms.push(median_ms(&samples));
    }
    let mut flush_alone = Vec::new();
    for partitions in [1, 10, 64, 1000] {
        let ms = isolated_flush_ms(root, partitions, batch).await?;
        flush_alone.push(FlushAlone { partitions, ms });
    }
    Ok(Stages {
        put_16k_ms: put_ms[0],
        put_1m_ms: put_ms[1],
        put_wave_ms: median_ms(&wave_samples),
        txn_1p_ms: txn_ms[0],
        txn_full_ms: txn_ms[1],
        partitions_per_txn: per_txn,
        flush_alone,
    })
}

/// Median `flush_once` of `partitions` partitions holding one batch each, with nothing else
/// running: the cycle's own cost, without producers competing for the two cores.
async fn isolated_flush_ms(
    root: &Path,
    partitions: u32,
    batch: &Bytes,
) -> anyhow::Result<Option<f64>> {
    let setup = set_up(root, &format!("isolated-{partitions}"), partitions).await?;
    let mut samples = Vec::new();
    for round in 0..12 {
        for p in 0..partitions {
            setup
                .broker
                .produce(TOPIC, p, batch.clone(), Ack::Buffered)
                .await?;
        }
        let started = Instant::now();
        let stats = setup.broker.flush_once().await;
        // Round 0 creates every partition's folder, which a running broker has already.
        if round > 0 {
            samples.push(started.elapsed());
        }
        if stats.puts != partitions as usize {
            anyhow::bail!(
                "isolated flush wrote {} of {partitions} objects",
                stats.puts
            );
        }
    }
    Ok(median_ms(&samples))
}
