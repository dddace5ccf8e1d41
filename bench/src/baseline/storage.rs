//! The storage server's own speed, through the node pool the brokers use: PUT latency one at a
//! time, parallel PUT and GET throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use serde::{Deserialize, Serialize};
use strata_storage::pool::{NodeSpec, PoolConfig};
use strata_storage::{NodePool, Placement};

use super::random_bytes;
use crate::stats::{MB, Percentiles};

/// One object size of the storage probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PutLatency {
    pub bytes: usize,
    pub put: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StorageBaseline {
    /// The node URL without credentials.
    pub node: String,
    /// One PUT at a time.
    pub sequential: Vec<PutLatency>,
    /// PUTs of `parallel_object_bytes`, `parallel` at a time, as the flusher issues them.
    pub parallel: usize,
    pub parallel_object_bytes: usize,
    pub parallel_put_mb_s: f64,
    pub parallel_puts_per_s: f64,
    pub parallel_put: Percentiles,
    /// GETs of the same objects, `parallel` at a time: the ceiling of a cold read.
    pub parallel_get_mb_s: f64,
}

/// The storage pool for `url` (`name=url` or a URL), as brokers open it (fsync on for file://).
pub fn open_pool(url: &str) -> anyhow::Result<Arc<NodePool>> {
    let spec: NodeSpec = url.parse()?;
    Ok(Arc::new(NodePool::open(&PoolConfig::new(vec![spec], 1))?))
}

/// The flusher's `PARALLEL_PUTS`.
const PARALLEL: usize = 16;
const PARALLEL_BYTES: usize = 1 << 20;

type ObjectPath = object_store::path::Path;

/// PUT latency and parallel PUT/GET throughput of one storage node, through the pool the
/// brokers use, under `bench-probe/` (deleted afterwards).
pub async fn storage(url: &str, time: Duration) -> anyhow::Result<StorageBaseline> {
    let pool = open_pool(url)?;
    let prefix = format!("bench-probe/{:08x}", rand::random::<u32>());
    let mut written = Vec::new();
    let measured = async {
        let sequential = sequential_puts(&pool, &prefix, &mut written).await?;
        let parallel = parallel_puts_and_gets(&pool, &prefix, time, &mut written).await?;
        anyhow::Ok((sequential, parallel))
    }
    .await;
    delete(&pool, written).await;
    let (sequential, parallel) = measured?;
    Ok(StorageBaseline {
        node: strata_storage::backend::redact(url),
        sequential,
        parallel: PARALLEL,
        parallel_object_bytes: PARALLEL_BYTES,
        parallel_put_mb_s: parallel.put_mb_s,
        parallel_puts_per_s: parallel.puts_per_s,
        parallel_put: parallel.put,
        parallel_get_mb_s: parallel.get_mb_s,
    })
}

struct Parallel {
    put: Percentiles,
    put_mb_s: f64,
    puts_per_s: f64,
    get_mb_s: f64,
}

/// PUT latency one at a time, for the object sizes a broker writes.
async fn sequential_puts(
    pool: &NodePool,
    prefix: &str,
    written: &mut Vec<(Placement, ObjectPath)>,
) -> anyhow::Result<Vec<PutLatency>> {
    let mut sequential = Vec::new();
    for (bytes, samples) in [
        (16 << 10, 64),
        (256 << 10, 48),
        (1 << 20, 32),
        (4 << 20, 16),
    ] {
        let payload = random_bytes(bytes, bytes as u64);
        let mut took = Vec::with_capacity(samples);
        // One untimed PUT creates the folder, which a running partition has already.
        for i in 0..=samples {
            let path = ObjectPath::from(format!("{prefix}/seq-{bytes}/{i:05}.seg"));
            let started = Instant::now();
            let placement = pool.put(&path, PutPayload::from(payload.clone())).await?;
            if i > 0 {
                took.push(started.elapsed());
            }
            written.push((placement, path));
        }
        sequential.push(PutLatency {
            bytes,
            put: Percentiles::from_durations(&took),
        });
    }
    Ok(sequential)
}

/// Waves of [`PARALLEL`] PUTs until `time` is up, then GETs of the same objects, as many at a
/// time.
async fn parallel_puts_and_gets(
    pool: &NodePool,
    prefix: &str,
    time: Duration,
    written: &mut Vec<(Placement, ObjectPath)>,
) -> anyhow::Result<Parallel> {
    let payload = random_bytes(PARALLEL_BYTES, 5);
    let started = Instant::now();
    let deadline = started + time;
    let mut latencies = Vec::new();
    let first = written.len();
    while Instant::now() < deadline {
        let wave = (written.len()..written.len() + PARALLEL)
            .map(|i| ObjectPath::from(format!("{prefix}/par/{:03}/{i:06}.seg", i % 64)));
        let results: Vec<(Duration, Placement, ObjectPath)> = futures::stream::iter(wave)
            .map(|path| {
                let payload = payload.clone();
                async move {
                    let t = Instant::now();
                    let placement = pool.put(&path, PutPayload::from(payload)).await?;
                    Ok::<_, anyhow::Error>((t.elapsed(), placement, path))
                }
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        for (took, placement, path) in results {
            latencies.push(took);
            written.push((placement, path));
        }
    }
    let put_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let read: usize = futures::stream::iter(&written[first..])
        .map(|(placement, path)| async move { pool.get(placement, path).await.map(|b| b.len()) })
        .buffer_unordered(PARALLEL)
        .try_fold(0usize, |sum, n| async move { Ok(sum + n) })
        .await?;
    let puts = latencies.len() as f64;
    Ok(Parallel {
        put: Percentiles::from_durations(&latencies),
        put_mb_s: puts * PARALLEL_BYTES as f64 / MB / put_secs,
        puts_per_s: puts / put_secs,
        get_mb_s: read as f64 / MB / started.elapsed().as_secs_f64(),
    })
}

/// Removes the probe objects; one left behind is only logged.
async fn delete(pool: &NodePool, written: Vec<(Placement, ObjectPath)>) {
    futures::stream::iter(written)
        .for_each_concurrent(PARALLEL, |(placement, path)| async move {
            if let Err(e) = pool.delete(&placement, &path).await {
                tracing::debug!(error = %e, %path, "probe object not deleted");
            }
        })
        .await;
}
