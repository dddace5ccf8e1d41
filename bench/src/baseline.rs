//! Baselines measured in the same run as Strata, so each Strata figure can be read as a ratio
//! on a shared, noisy machine: the disk with fsync, loopback TCP, CRC-32C, the storage server's
//! own PUT/GET speed through the same client code the brokers use, and the metadata store's
//! transaction latency.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use serde::{Deserialize, Serialize};
use strata_storage::pool::{NodeSpec, PoolConfig};
use strata_storage::{NodePool, Placement};

use super::stats::{MB, Percentiles};

/// xorshift64*: incompressible-looking bytes without drawing on the OS random source.
pub fn fill_random(buf: &mut [u8], seed: u64) {
    let mut state = seed | 1;
    for chunk in buf.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiskBaseline {
    pub dir: String,
    pub method: String,
    /// Sequential writes with fdatasync after each 4 MiB.
    pub fsync_mb_s: f64,
    /// Appending 4 KiB and fdatasync-ing it: the floor under every synced write.
    pub small_fsync_ms: f64,
}

/// Sequential write bandwidth of `dir` with fsync: 16 writes of 4 MiB, each followed by
/// fdatasync, into a new file (one synced write per PUT-sized chunk, the shape of a flush).
/// One untimed round first: on these VMs the first file after an idle spell writes several
/// times slower. The median of five timed rounds.
pub fn disk(dir: &Path, rounds: usize) -> anyhow::Result<DiskBaseline> {
    const CHUNK: usize = 4 << 20;
    const CHUNKS: usize = 16;
    let mut chunk = vec![0u8; CHUNK];
    fill_random(&mut chunk, 42);
    let path = dir.join(format!("strata-bench-fsync-{}.bin", std::process::id()));
    let mut mb_s = Vec::with_capacity(rounds);
    for round in 0..=rounds {
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write the fsync baseline file {}", path.display()))?;
        let started = Instant::now();
        for _ in 0..CHUNKS {
            file.write_all(&chunk)?;
            file.sync_data()?;
        }
        let secs = started.elapsed().as_secs_f64();
        drop(file);
        std::fs::remove_file(&path)?;
        if round > 0 {
            mb_s.push((CHUNK * CHUNKS) as f64 / MB / secs);
        }
    }
    mb_s.sort_by(f64::total_cmp);

    let mut file = std::fs::File::create(&path)?;
    let mut block = vec![0u8; 4096];
    fill_random(&mut block, 7);
    let mut small = Vec::with_capacity(32);
    for _ in 0..32 {
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        small.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    small.sort_unstable();
    Ok(DiskBaseline {
        dir: dir.display().to_string(),
        method: format!(
            "{CHUNKS} x 4 MiB writes, each followed by fdatasync; median of {rounds} rounds after 1 untimed"
        ),
        fsync_mb_s: mb_s[mb_s.len() / 2],
        small_fsync_ms: small[small.len() / 2].as_secs_f64() * 1e3,
    })
}

/// One TCP connection over loopback, 256 KiB writes for `time`: the ceiling of any byte
/// that crosses a socket here (every produce crosses two, client→proxy→broker).
pub fn loopback_tcp(time: Duration) -> anyhow::Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut socket, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            match socket.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut socket = std::net::TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    let mut chunk = vec![0u8; 256 << 10];
    fill_random(&mut chunk, 9);
    let started = Instant::now();
    while started.elapsed() < time {
        socket.write_all(&chunk)?;
    }
    drop(socket);
    let total = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the loopback reader thread panicked"))??;
    Ok(total as f64 / MB / started.elapsed().as_secs_f64())
}

/// CRC-32C over a 4 MiB buffer for `time`, the checksum every batch carries (the client
/// computes it, the broker verifies it).
pub fn crc32c(time: Duration) -> f64 {
    let mut buf = vec![0u8; 4 << 20];
    fill_random(&mut buf, 11);
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut acc = 0u32;
    while started.elapsed() < time {
        acc ^= ::crc32c::crc32c(std::hint::black_box(&buf));
        bytes += buf.len() as u64;
    }
    std::hint::black_box(acc);
    bytes as f64 / MB / started.elapsed().as_secs_f64()
}

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

/// PUT latency and parallel PUT/GET throughput of one storage node, through the pool the
/// brokers use, under `bench-probe/` (deleted afterwards).
pub async fn storage(url: &str, time: Duration) -> anyhow::Result<StorageBaseline> {
    const PARALLEL: usize = 16; // the flusher's PARALLEL_PUTS
    const PARALLEL_BYTES: usize = 1 << 20;
    let pool = open_pool(url)?;
    let nonce: u32 = rand::random();
    let prefix = format!("bench-probe/{nonce:08x}");
    let mut written: Vec<(Placement, object_store::path::Path)> = Vec::new();

    let mut sequential = Vec::new();
    for (bytes, samples) in [
        (16 << 10, 64),
        (256 << 10, 48),
        (1 << 20, 32),
        (4 << 20, 16),
    ] {
        let mut payload = vec![0u8; bytes];
        fill_random(&mut payload, bytes as u64);
        let payload = Bytes::from(payload);
        let mut took = Vec::with_capacity(samples);
        // One untimed PUT creates the folder, which a running partition has already.
        for i in 0..=samples {
            let path = object_store::path::Path::from(format!("{prefix}/seq-{bytes}/{i:05}.seg"));
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

    let mut payload = vec![0u8; PARALLEL_BYTES];
    fill_random(&mut payload, 5);
    let payload = Bytes::from(payload);
    let started = Instant::now();
    let deadline = started + time;
    let mut next = 0usize;
    let mut latencies = Vec::new();
    let mut parallel_paths = Vec::new();
    // Waves of PARALLEL, until the time is up.
    while Instant::now() < deadline {
        let wave: Vec<_> = (next..next + PARALLEL)
            .map(|i| {
                object_store::path::Path::from(format!("{prefix}/par/{:03}/{i:06}.seg", i % 64))
            })
            .collect();
        next += PARALLEL;
        let results: Vec<(Duration, Placement, object_store::path::Path)> =
            futures::stream::iter(wave)
                .map(|path| {
                    let (pool, payload) = (&pool, payload.clone());
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
            parallel_paths.push((placement, path));
        }
    }
    let put_secs = started.elapsed().as_secs_f64();
    let puts = parallel_paths.len();

    let started = Instant::now();
    let read: usize = futures::stream::iter(parallel_paths.iter())
        .map(|(placement, path)| {
            let pool = &pool;
            async move { pool.get(placement, path).await.map(|b| b.len()) }
        })
        .buffer_unordered(PARALLEL)
        .try_fold(0usize, |sum, n| async move { Ok(sum + n) })
        .await?;
    let get_secs = started.elapsed().as_secs_f64();
    written.extend(parallel_paths);

    futures::stream::iter(written)
        .for_each_concurrent(PARALLEL, |(placement, path)| {
            let pool = &pool;
            async move {
                if let Err(e) = pool.delete(&placement, &path).await {
                    tracing::debug!(error = %e, %path, "probe object not deleted");
                }
            }
        })
        .await;

    Ok(StorageBaseline {
        node: strata_storage::backend::redact(url),
        sequential,
        parallel: PARALLEL,
        parallel_object_bytes: PARALLEL_BYTES,
        parallel_put_mb_s: (puts * PARALLEL_BYTES) as f64 / MB / put_secs,
        parallel_puts_per_s: puts as f64 / put_secs,
        parallel_put: Percentiles::from_durations(&latencies),
        parallel_get_mb_s: read as f64 / MB / get_secs,
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaBaseline {
    pub url: String,
    /// A transaction putting two ~200-byte keys, the shape of one partition's commit.
    pub txn: Percentiles,
}

/// Commit-shaped transactions against the metadata store (keys under the cluster's
/// `bench-probe/`, deleted afterwards).
pub async fn meta(url: &str, cluster: &str) -> anyhow::Result<MetaBaseline> {
    use strata_meta::{Txn, TxnOp};
    let store = strata_meta::open(url)
        .await
        .with_context(|| format!("cannot open metadata store {url}"))?;
    let keys = strata_meta::schema::Keyspace::new(cluster)?;
    let prefix = format!("{}/bench-probe/{:08x}/", keys.root(), rand::random::<u32>());
    let value = Bytes::from(vec![b'x'; 200]);
    let mut took = Vec::with_capacity(64);
    for i in 0..64 {
        let txn = Txn::new().and_then([
            TxnOp::put(format!("{prefix}seg/{i:05}"), value.clone()),
            TxnOp::put(format!("{prefix}commit"), value.clone()),
        ]);
        let started = Instant::now();
        store.txn(txn).await?;
        took.push(started.elapsed());
    }
    store.delete_prefix(&prefix).await?;
    Ok(MetaBaseline {
        url: url.to_owned(),
        txn: Percentiles::from_durations(&took),
    })
}
