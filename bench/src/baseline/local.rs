//! This machine's own limits: the disk with fsync, loopback TCP and CRC-32C.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::fill_random;
use crate::stats::{MB, median, median_ms};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiskBaseline {
    pub dir: String,
    pub method: String,
    /// Sequential writes with fdatasync after each 4 MiB.
    pub fsync_mb_s: f64,
    /// Appending 4 KiB and fdatasync-ing it: the floor under every synced write.
    pub small_fsync_ms: f64,
}

impl DiskBaseline {
    /// The mean of the baseline measured before and after the points: the disk's speed moves
    /// during a run on a shared machine, and the mean is fairer to every point than either end.
    pub fn mean_mb_s(before: Option<&Self>, after: Option<&Self>) -> Option<f64> {
        match (before, after) {
            (Some(a), Some(b)) => Some((a.fsync_mb_s + b.fsync_mb_s) / 2.0),
            (Some(one), None) | (None, Some(one)) => Some(one.fsync_mb_s),
            (None, None) => None,
        }
    }
}

/// Sequential write bandwidth of `dir` with fsync: 16 writes of 4 MiB, each followed by
/// fdatasync, into a new file (one synced write per PUT-sized chunk, the shape of a flush), and
/// the latency of a 4 KiB append with fdatasync.
pub fn disk(dir: &Path, rounds: usize) -> anyhow::Result<DiskBaseline> {
    let path = dir.join(format!("strata-bench-fsync-{}.bin", std::process::id()));
    let fsync_mb_s = fsync_bandwidth_mb_s(&path, rounds)
        .with_context(|| format!("fsync baseline in {}", dir.display()))?;
    let small_fsync_ms = small_fsync_ms(&path)?;
    Ok(DiskBaseline {
        dir: dir.display().to_string(),
        method: format!(
            "{FSYNC_CHUNKS} x 4 MiB writes, each followed by fdatasync; median of {rounds} rounds \
             after 1 untimed"
        ),
        fsync_mb_s,
        small_fsync_ms,
    })
}

/// [`disk`] on a blocking thread, so the async runtime's workers stay free.
pub async fn disk_off_runtime(dir: PathBuf, rounds: usize) -> anyhow::Result<DiskBaseline> {
    super::off_runtime(move || disk(&dir, rounds)).await
}

const FSYNC_CHUNK: usize = 4 << 20;
const FSYNC_CHUNKS: usize = 16;

/// The median of `rounds` timed rounds after one untimed round: on these VMs the first file
/// written after an idle spell is several times slower than the next.
fn fsync_bandwidth_mb_s(path: &Path, rounds: usize) -> anyhow::Result<f64> {
    let mut chunk = vec![0u8; FSYNC_CHUNK];
    fill_random(&mut chunk, 42);
    let mut mb_s = Vec::with_capacity(rounds);
    for round in 0..=rounds {
        let mut file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let started = Instant::now();
        for _ in 0..FSYNC_CHUNKS {
            file.write_all(&chunk)?;
            file.sync_data()?;
        }
        let secs = started.elapsed().as_secs_f64();
        drop(file);
        std::fs::remove_file(path)?;
        if round > 0 {
            mb_s.push((FSYNC_CHUNK * FSYNC_CHUNKS) as f64 / MB / secs);
        }
    }
    median(&mut mb_s).context("the fsync baseline needs at least one timed round")
}

/// The median of 32 appends of 4 KiB, each followed by fdatasync.
fn small_fsync_ms(path: &Path) -> anyhow::Result<f64> {
    let mut block = vec![0u8; 4096];
    fill_random(&mut block, 7);
    let mut file = std::fs::File::create(path)?;
    let mut took = Vec::with_capacity(32);
    for _ in 0..32 {
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        took.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(path)?;
    median_ms(&took).context("no samples")
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
