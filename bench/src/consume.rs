//! Reading a topic back with raw fetches: from storage the first time (cold), from the proxy's
//! read cache the second.

use std::time::Instant;

use anyhow::Context as _;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use strata_client::Connection;
use strata_format::RecordBatch;
use strata_proto::v1;

use crate::stats::{MB, Progress};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ReadPass {
    pub mb_per_s: f64,
    pub msgs: u64,
    pub secs: f64,
    pub fetches: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConsumeResult {
    pub partitions: u32,
    pub size: usize,
    /// Never read before through this proxy: every byte comes from storage.
    pub cold: ReadPass,
    /// The same offsets again: served from the proxy's read cache.
    pub cached: ReadPass,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Seconds waited before the cold pass for the brokers to stop writing to storage (their
    /// compaction of what was just produced), and whether they did within the limit.
    #[serde(default)]
    pub settle_secs: f64,
    #[serde(default)]
    pub settled: bool,
    /// False when the brokers could not be asked (no `--broker-http`, or a scrape failed).
    #[serde(default)]
    pub settle_measured: bool,
}

/// Partitions read at the same time.
const CONCURRENCY: usize = 32;

/// Reads up to `cap_bytes` of `topic` from offset 0 with raw fetches ([`CONCURRENCY`]
/// partitions at a time), twice: the first pass is cold, the second finds the same objects in
/// the proxy's read cache.
pub async fn consume(
    server: &str,
    topic: &str,
    partitions: u32,
    size: usize,
    cap_bytes: u64,
    progress: &mut Progress,
) -> anyhow::Result<ConsumeResult> {
    let connection = crate::credentials::connect(server).await?;
    let per_partition = (cap_bytes / u64::from(partitions.max(1)) / size.max(1) as u64).max(1);
    let mut result = ConsumeResult {
        partitions,
        size,
        ..ConsumeResult::default()
    };
    progress.update(&format!("consume {topic}: cold pass"));
    result.cold = read_pass(&connection, topic, per_partition, &mut result).await;
    progress.update(&format!("consume {topic}: cached pass"));
    result.cached = read_pass(&connection, topic, per_partition, &mut result).await;
    Ok(result)
}

/// Reads every partition once; a partition that fails is counted in `result`'s errors.
async fn read_pass(
    connection: &Connection,
    topic: &str,
    per_partition: u64,
    result: &mut ConsumeResult,
) -> ReadPass {
    let started = Instant::now();
    let outcomes: Vec<anyhow::Result<(u64, u64)>> = futures::stream::iter(0..result.partitions)
        .map(|p| read_partition(connection.clone(), topic, p, per_partition))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let (mut msgs, mut fetches) = (0u64, 0u64);
    for outcome in outcomes {
        match outcome {
            Ok((m, f)) => {
                msgs += m;
                fetches += f;
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    ReadPass {
        mb_per_s: msgs as f64 * result.size as f64 / MB / secs,
        msgs,
        secs,
        fetches,
    }
}

/// Fetches one partition from 0 until `limit` records or its end; (records, fetches).
async fn read_partition(
    connection: Connection,
    topic: &str,
    partition: u32,
    limit: u64,
) -> anyhow::Result<(u64, u64)> {
    let mut grpc = connection.grpc();
    let (mut offset, mut records, mut fetches) = (0i64, 0u64, 0u64);
    while records < limit {
        let answer = grpc
            .fetch(v1::FetchRequest {
                topic: topic.to_owned(),
                partition,
                offset,
                max_bytes: 1 << 20,
                max_wait_ms: 0,
                ..Default::default()
            })
            .await
            .with_context(|| format!("fetch {topic}/{partition} at {offset}"))?
            .into_inner();
        fetches += 1;
        if let Some(e) = answer.error {
            anyhow::bail!("fetch {topic}/{partition} at {offset}: {}", e.message);
        }
        if answer.batches.is_empty() {
            break;
        }
        for bytes in answer.batches {
            // Parsing checks the CRC, as a consumer does before handing records out.
            let batch = RecordBatch::parse(bytes)
                .with_context(|| format!("a corrupt batch in {topic}/{partition}"))?;
            records += (batch.next_offset() - batch.base_offset()).max(0) as u64;
            offset = batch.next_offset();
        }
        if offset >= answer.high_watermark {
            break;
        }
    }
    Ok((records, fetches))
}
