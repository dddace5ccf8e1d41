//! The measured points, and one point's run: closed-loop producers against a fresh broker,
//! a warm-up, then a window whose acknowledgements count.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Serialize, Serializer};
use strata_bench::stats::{CpuSample, CpuUse, MB, Percentiles, Progress};
use strata_broker::{Ack, Broker};
use tokio_util::sync::CancellationToken;

use crate::flush::{FlushCounters, FlushRates, flush_loop};
use crate::setup::{Setup, set_up};
use crate::{MEASURE, RECORDS_PER_BATCH, TOPIC, VALUE_BYTES, WARMUP};

/// Concurrent produce calls of the ordinary points.
const IN_FLIGHT: usize = 64;
/// Producers still waiting this long after the window ends are aborted (a hung flusher must not
/// hang the bench).
const DRAIN_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    #[serde(rename = "point")]
    pub name: &'static str,
    pub partitions: u32,
    #[serde(serialize_with = "serialize_ack")]
    pub ack: Ack,
    pub in_flight: usize,
}

const fn point(name: &'static str, partitions: u32, ack: Ack, in_flight: usize) -> Point {
    Point {
        name,
        partitions,
        ack,
        in_flight,
    }
}

pub const POINTS: [Point; 8] = [
    point("a-durable-10p", 10, Ack::Durable, IN_FLIGHT),
    point("a-buffered-10p", 10, Ack::Buffered, IN_FLIGHT),
    point("a-none-10p", 10, Ack::None, IN_FLIGHT),
    point("b-durable-1p", 1, Ack::Durable, IN_FLIGHT),
    point("b-durable-100p", 100, Ack::Durable, IN_FLIGHT),
    point("b-durable-1000p", 1000, Ack::Durable, IN_FLIGHT),
    // With 64 produces in flight at most 64 of 1,000 partitions have data in a cycle; one
    // produce per partition makes every cycle touch all of them.
    point("c-durable-1000p-wide", 1000, Ack::Durable, 1000),
    // Closed-loop producers cap throughput at in-flight bytes ÷ ack latency; ten times more in
    // flight shows how much of the 10-partition figure is that cap rather than the broker.
    point("c-durable-10p-deep", 10, Ack::Durable, 640),
];

pub fn ack_name(ack: Ack) -> &'static str {
    match ack {
        Ack::None => "none",
        Ack::Buffered => "buffered",
        Ack::Durable => "durable",
    }
}

fn serialize_ack<S: Serializer>(ack: &Ack, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(ack_name(*ack))
}

/// What one point measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub point: Point,
    /// Recovering every partition (one claim transaction each).
    pub setup_s: f64,
    pub msgs_per_s: f64,
    /// Acknowledged record values per second; MB = 10^6 bytes.
    pub mb_per_s: f64,
    /// `mb_per_s` ÷ the fsync baseline, once that is known.
    pub mb_per_s_over_fsync: Option<f64>,
    /// From just before `produce` to just after it returns; one sample per acknowledged batch.
    pub latency: Percentiles,
    #[serde(flatten)]
    pub flush: FlushRates,
    /// Cores busy during the window.
    pub cpu: CpuUse,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Producers still waiting [`DRAIN_LIMIT`] after the window.
    pub aborted_producers: usize,
}

/// The shared side of one point's producers.
#[derive(Debug)]
struct Load {
    broker: Arc<Broker>,
    batches: Vec<Bytes>,
    partitions: u32,
    ack: Ack,
    /// Round-robin cursor over partitions, shared so the spread is even whatever the timing.
    next: AtomicU64,
    warm_end: Instant,
    end: Instant,
}

#[derive(Debug, Default)]
struct Tally {
    /// Latency of every produce acknowledged inside the window.
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// One closed-loop producer: produce, wait for the ack, repeat until the window ends. A produce
/// counts when its ack arrives inside the window.
async fn producer(load: Arc<Load>, id: usize) -> Tally {
    let mut tally = Tally::default();
    let mut which = id;
    loop {
        let started = Instant::now();
        if started >= load.end {
            return tally;
        }
        let partition =
            (load.next.fetch_add(1, Ordering::Relaxed) % u64::from(load.partitions)) as u32;
        let batch = load.batches[which % load.batches.len()].clone();
        which += 1;
        let result = load.broker.produce(TOPIC, partition, batch, load.ack).await;
        let done = Instant::now();
        let inside = done >= load.warm_end && done < load.end;
        match result {
            Ok(_) if inside => tally
                .latencies_ns
                .push(u64::try_from((done - started).as_nanos()).unwrap_or(u64::MAX)),
            Ok(_) => {}
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        if load.ack != Ack::Durable {
            // Without a durable ack, produce never waits unless the buffer is full, so this task
            // would otherwise keep its worker thread from the flusher; a real producer arrives
            // over the network and yields there.
            tokio::task::yield_now().await;
        }
    }
}

pub async fn run_point(
    root: &Path,
    point: Point,
    batches: &[Bytes],
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    progress.update(&format!(
        "{}: opening {} partitions",
        point.name, point.partitions
    ));
    let setup_started = Instant::now();
    let Setup {
        broker,
        linger,
        flush_bytes,
    } = set_up(root, point.name, point.partitions).await?;
    let setup_s = setup_started.elapsed().as_secs_f64();

    let counters = Arc::new(FlushCounters::default());
    let cancel = CancellationToken::new();
    let flusher = tokio::spawn(flush_loop(
        broker.clone(),
        linger,
        flush_bytes,
        counters.clone(),
        cancel.clone(),
    ));
    let warm_end = Instant::now() + WARMUP;
    let end = warm_end + MEASURE;
    let load = Arc::new(Load {
        broker: broker.clone(),
        batches: batches.to_vec(),
        partitions: point.partitions,
        ack: point.ack,
        next: AtomicU64::new(0),
        warm_end,
        end,
    });
    let producers: Vec<_> = (0..point.in_flight)
        .map(|i| tokio::spawn(producer(load.clone(), i)))
        .collect();

    tokio::time::sleep_until(warm_end.into()).await;
    let (before, cpu_before) = (counters.snapshot(), CpuSample::now());
    tokio::time::sleep_until(end.into()).await;
    let (after, cpu_after) = (counters.snapshot(), CpuSample::now());

    let drain_deadline = tokio::time::Instant::from_std(end + DRAIN_LIMIT);
    let mut latencies_ns = Vec::new();
    let (mut errors, mut first_error, mut aborted_producers) = (0, None, 0);
    for handle in producers {
        let abort = handle.abort_handle();
        match tokio::time::timeout_at(drain_deadline, handle).await {
            Ok(tally) => {
                let tally = tally?;
                latencies_ns.extend(tally.latencies_ns);
                errors += tally.errors;
                first_error = first_error.or(tally.first_error);
            }
            Err(_) => {
                abort.abort();
                aborted_producers += 1;
            }
        }
    }
    cancel.cancel();
    if tokio::time::timeout(DRAIN_LIMIT, flusher).await.is_err() {
        progress.done(&format!(
            "{}: the flush loop did not stop within {DRAIN_LIMIT:?}; left running",
            point.name
        ));
    }

    let latency = Percentiles::from_ns(&mut latencies_ns);
    let msgs = (latency.samples * RECORDS_PER_BATCH as u64) as f64;
    let window = MEASURE.as_secs_f64();
    Ok(Outcome {
        point,
        setup_s,
        msgs_per_s: msgs / window,
        mb_per_s: msgs * VALUE_BYTES as f64 / MB / window,
        mb_per_s_over_fsync: None,
        latency,
        flush: after.rates_since(&before),
        cpu: CpuSample::since(cpu_before, cpu_after),
        errors,
        first_error,
        aborted_producers,
    })
}
