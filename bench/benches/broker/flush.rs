//! The bench's copy of `Broker::run_flusher`, adding up the `FlushStats` of every cycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use strata_bench::stats::MB;
use strata_broker::{Broker, FlushStats};
use tokio_util::sync::CancellationToken;

/// The broker's own flusher sleeps on a crate-private `Notify` until data arrives; from outside
/// the crate the closest stand-in is to look at the buffers this often.
const IDLE_POLL: Duration = Duration::from_millis(1);

/// What the flush loop did, added up over every cycle.
#[derive(Debug, Default)]
pub struct FlushCounters {
    cycles: AtomicU64,
    txns: AtomicU64,
    puts: AtomicU64,
    bytes: AtomicU64,
    busy_ns: AtomicU64,
    retrying: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
pub struct FlushSnapshot {
    pub at: Instant,
    pub cycles: u64,
    pub txns: u64,
    pub puts: u64,
    pub bytes: u64,
    pub busy_ns: u64,
    pub retrying: u64,
}

impl FlushCounters {
    fn add(&self, stats: &FlushStats, busy: Duration) {
        self.cycles.fetch_add(1, Ordering::Relaxed);
        self.txns.fetch_add(stats.txns as u64, Ordering::Relaxed);
        self.puts.fetch_add(stats.puts as u64, Ordering::Relaxed);
        self.bytes.fetch_add(stats.bytes, Ordering::Relaxed);
        self.busy_ns.fetch_add(
            u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.retrying
            .fetch_add(stats.retrying as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> FlushSnapshot {
        FlushSnapshot {
            at: Instant::now(),
            cycles: self.cycles.load(Ordering::Relaxed),
            txns: self.txns.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            retrying: self.retrying.load(Ordering::Relaxed),
        }
    }
}

/// The flush loop's work in a window, per second and per cycle.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FlushRates {
    pub txns_per_s: f64,
    pub puts_per_s: f64,
    pub flushes_per_s: f64,
    pub puts_per_flush: Option<f64>,
    /// Time inside `flush_once` (the PUT phase and the commits; not the linger).
    pub flush_ms_mean: Option<f64>,
    /// Segment bytes written; more than the acked payload by the batch and segment overhead.
    pub flushed_mb_per_s: f64,
    /// Partitions whose flush failed and is being retried.
    pub retrying: u64,
}

impl FlushSnapshot {
    pub fn rates_since(&self, before: &Self) -> FlushRates {
        let secs = (self.at - before.at).as_secs_f64();
        let cycles = self.cycles - before.cycles;
        let puts = (self.puts - before.puts) as f64;
        let per_cycle = |x: f64| (cycles > 0).then(|| x / cycles as f64);
        FlushRates {
            txns_per_s: (self.txns - before.txns) as f64 / secs,
            puts_per_s: puts / secs,
            flushes_per_s: cycles as f64 / secs,
            puts_per_flush: per_cycle(puts),
            flush_ms_mean: per_cycle((self.busy_ns - before.busy_ns) as f64 / 1e6),
            flushed_mb_per_s: (self.bytes - before.bytes) as f64 / MB / secs,
            retrying: self.retrying - before.retrying,
        }
    }
}

/// `Broker::run_flusher` with counters: once anything is buffered, wait `linger` (unless
/// `flush_bytes` are already waiting), run one cycle, repeat.
pub async fn flush_loop(
    broker: Arc<Broker>,
    linger: Duration,
    flush_bytes: usize,
    counters: Arc<FlushCounters>,
    cancel: CancellationToken,
) {
    while !cancel.is_cancelled() {
        let buffered: usize = broker.status().iter().map(|p| p.buffered_bytes()).sum();
        if buffered == 0 {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(IDLE_POLL) => continue,
            }
        }
        if buffered < flush_bytes {
            tokio::time::sleep(linger).await;
        }
        let started = Instant::now();
        let stats = broker.flush_once().await;
        counters.add(&stats, started.elapsed());
        if stats.retrying > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
