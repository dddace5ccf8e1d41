//! Baselines measured in the same run as Strata, so each Strata figure can be read as a ratio
//! on a shared, noisy machine: the disk with fsync, loopback TCP, CRC-32C, the storage server's
//! own PUT/GET speed through the same client code the brokers use, the metadata store's
//! transaction latency, and a round trip to the proxy.

mod local;
mod meta;
mod storage;

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use self::local::{DiskBaseline, crc32c, disk, disk_off_runtime, loopback_tcp};
pub use self::meta::{MetaBaseline, meta};
pub use self::storage::{PutLatency, StorageBaseline, open_pool, storage};
use crate::args::{BenchArgs, Suite};
use crate::plan::Plan;
use crate::report::or_failure;
use crate::stats::{Percentiles, Progress, fmt_opt};

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

/// `len` bytes from [`fill_random`].
pub fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut bytes = vec![0u8; len];
    fill_random(&mut bytes, seed);
    Bytes::from(bytes)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baselines {
    pub disk_before: Option<DiskBaseline>,
    pub disk_after: Option<DiskBaseline>,
    pub loopback_tcp_mb_s: Option<f64>,
    pub crc32c_mb_s: Option<f64>,
    pub storage: Option<StorageBaseline>,
    pub meta: Option<MetaBaseline>,
    /// A Metadata call to the proxy: one gRPC round trip, the network floor of every ack.
    pub proxy_rpc: Option<Percentiles>,
}

impl Baselines {
    pub fn disk_mb_s(&self) -> Option<f64> {
        DiskBaseline::mean_mb_s(self.disk_before.as_ref(), self.disk_after.as_ref())
    }
}

/// Every baseline the flags make possible. One that fails is listed in `failures` and the
/// others are measured all the same.
pub(crate) async fn measure(
    args: &BenchArgs,
    plan: &Plan,
    progress: &mut Progress,
    failures: &mut Vec<String>,
) -> Baselines {
    let mut b = Baselines::default();
    if let Some(dir) = args.storage_dir.clone() {
        progress.update(&format!(
            "baseline: fsync'd sequential write of {}",
            dir.display()
        ));
        let disk = disk_off_runtime(dir, plan.by_length(5, 3)).await;
        b.disk_before = or_failure(failures, "disk baseline", disk);
    }
    progress.update("baseline: loopback TCP");
    let time = Duration::from_millis(plan.by_length(1500, 500));
    let tcp = off_runtime(move || loopback_tcp(time)).await;
    b.loopback_tcp_mb_s = or_failure(failures, "loopback TCP baseline", tcp);
    progress.update("baseline: CRC-32C");
    let time = Duration::from_millis(plan.by_length(1000, 300));
    let crc = off_runtime(move || Ok(crc32c(time))).await;
    b.crc32c_mb_s = or_failure(failures, "CRC-32C baseline", crc);
    if let Some(url) = &args.storage_node {
        progress.update(&format!("baseline: storage PUT/GET of {}", plan.label));
        let measured = storage(url, Duration::from_secs(plan.by_length(3, 1))).await;
        b.storage = or_failure(failures, "storage baseline", measured);
    }
    if let Some(url) = &args.meta {
        progress.update("baseline: metadata store transactions");
        b.meta = or_failure(
            failures,
            "metadata baseline",
            meta(url, &args.cluster).await,
        );
    }
    if args.what.iter().any(|s| *s != Suite::Baselines) {
        progress.update("baseline: proxy round trip");
        b.proxy_rpc = or_failure(failures, "proxy round trip", proxy_rtt(&args.server).await);
    }
    progress.done(&format!(
        "baselines: disk {} MB/s, loopback TCP {} MB/s, CRC-32C {} MB/s, storage parallel PUT {} MB/s",
        fmt_opt(b.disk_before.as_ref().map(|d| d.fsync_mb_s), 1),
        fmt_opt(b.loopback_tcp_mb_s, 0),
        fmt_opt(b.crc32c_mb_s, 0),
        fmt_opt(b.storage.as_ref().map(|s| s.parallel_put_mb_s), 1),
    ));
    b
}

/// Runs a probe that blocks on the disk or a socket on a blocking thread, so the runtime's
/// workers stay free.
async fn off_runtime<T: Send + 'static>(
    probe: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(probe).await?
}

/// One Metadata call at a time to the proxy: the gRPC round trip under every produce.
async fn proxy_rtt(server: &str) -> anyhow::Result<Percentiles> {
    let connection = crate::credentials::connect(server).await?;
    let mut grpc = connection.grpc();
    let mut took = Vec::with_capacity(200);
    // The first call opens the HTTP/2 stream and is not timed.
    for i in 0..=200 {
        let started = Instant::now();
        grpc.metadata(strata_proto::v1::MetadataRequest {
            topics: vec!["bench-rtt-probe".into()],
        })
        .await?;
        if i > 0 {
            took.push(started.elapsed());
        }
    }
    Ok(Percentiles::from_durations(&took))
}
