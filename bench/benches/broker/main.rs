//! One broker's write path with file storage: throughput and produce-ack latency of 1 KiB
//! messages for each ack mode and for 1 to 1,000 partitions, with the metadata transactions
//! and object PUTs per second that each point costs.
//!
//! Everything runs in this process: an [`EmbeddedStore`] (which fsyncs its log, as etcd would)
//! and one `file://` storage node with fsync on, both in a fresh folder per point under one
//! temporary directory (several GB by the end; removed when the run ends). The flush loop is the
//! bench's own copy of `Broker::run_flusher`, so that it can add up the [`FlushStats`] of every
//! cycle.
//!
//! Run with `cargo bench -p strata-broker --bench broker [-- NAME…]` (only points whose name
//! contains a NAME). Progress goes to stderr, the table to stdout, and the same results as JSON
//! to `target/bench-broker.json`. See docs/benchmarks.md for what each figure means.

use std::error::Error;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use strata_broker::{Ack, Broker, BrokerConfig, FlushStats, PARTITIONS_PER_TXN};
use strata_controller::Admin;
use strata_controller::admin::NewTopic;
use strata_meta::schema::{self, BrokerInfo, Keyspace};
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaStore, Txn, TxnOp};
use strata_storage::pool::NodeSpec;
use strata_storage::{BatchOptions, NodeId, NodePool, PoolConfig, Record, encode_batch};
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn Error + Send + Sync>;

const TOPIC: &str = "bench";
const VALUE_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
/// Batches are encoded once and reused: encoding is the client's cost, not the broker's. A few
/// distinct ones keep segments from being one repeated byte pattern.
const DISTINCT_BATCHES: usize = 8;
/// Concurrent produce calls of the ordinary points.
const IN_FLIGHT: usize = 64;
/// Long enough for the first write to every partition (which creates its object folder) to fall
/// before the window at 1,000 partitions; a running broker has those folders already.
const WARMUP: Duration = Duration::from_secs(1);
/// Buffered acks flush in cycles of more than half a second; a 5 s window holds several.
const MEASURE: Duration = Duration::from_secs(5);
/// Producers still waiting this long after the window ends are aborted (a hung flusher must not
/// hang the bench).
const DRAIN_LIMIT: Duration = Duration::from_secs(20);
/// The broker's own flusher sleeps on a crate-private `Notify` until data arrives; from outside
/// the crate the closest stand-in is to look at the buffers this often.
const IDLE_POLL: Duration = Duration::from_millis(1);
/// Samples per stage probe (the medians printed before the points).
const PROBE_SAMPLES: usize = 16;
const MB: f64 = 1_000_000.0;

#[derive(Debug, Clone, Copy)]
struct Point {
    name: &'static str,
    partitions: u32,
    ack: Ack,
    in_flight: usize,
}

const POINTS: [Point; 8] = [
    Point {
        name: "a-durable-10p",
        partitions: 10,
        ack: Ack::Durable,
        in_flight: IN_FLIGHT,
    },
    Point {
        name: "a-buffered-10p",
        partitions: 10,
        ack: Ack::Buffered,
        in_flight: IN_FLIGHT,
    },
    Point {
        name: "a-none-10p",
        partitions: 10,
        ack: Ack::None,
        in_flight: IN_FLIGHT,
    },
    Point {
        name: "b-durable-1p",
        partitions: 1,
        ack: Ack::Durable,
        in_flight: IN_FLIGHT,
    },
    Point {
        name: "b-durable-100p",
        partitions: 100,
        ack: Ack::Durable,
        in_flight: IN_FLIGHT,
    },
    Point {
        name: "b-durable-1000p",
        partitions: 1000,
        ack: Ack::Durable,
        in_flight: IN_FLIGHT,
    },
    // With 64 produces in flight at most 64 of 1,000 partitions have data in a cycle; one
    // produce per partition makes every cycle touch all of them.
    Point {
        name: "c-durable-1000p-wide",
        partitions: 1000,
        ack: Ack::Durable,
        in_flight: 1000,
    },
    // Closed-loop producers cap throughput at in-flight bytes ÷ ack latency; ten times more in
    // flight shows how much of the 10-partition figure is that cap rather than the broker.
    Point {
        name: "c-durable-10p-deep",
        partitions: 10,
        ack: Ack::Durable,
        in_flight: 640,
    },
];

fn ack_name(ack: Ack) -> &'static str {
    match ack {
        Ack::None => "none",
        Ack::Buffered => "buffered",
        Ack::Durable => "durable",
    }
}

/// What the flush loop did, added up over every cycle.
#[derive(Debug, Default)]
struct FlushCounters {
    cycles: AtomicU64,
    txns: AtomicU64,
    puts: AtomicU64,
    bytes: AtomicU64,
    busy_ns: AtomicU64,
    retrying: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct FlushSnapshot {
    at: Instant,
    cycles: u64,
    txns: u64,
    puts: u64,
    bytes: u64,
    busy_ns: u64,
    retrying: u64,
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

    fn snapshot(&self) -> FlushSnapshot {
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

/// `Broker::run_flusher` with counters: once anything is buffered, wait `linger` (unless
/// `flush_bytes` are already waiting), run one cycle, repeat.
async fn flush_loop(
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

/// xorshift64*: incompressible-looking values without a `rand` dependency.
fn fill_random(buf: &mut [u8], seed: u64) {
    let mut state = seed | 1;
    for chunk in buf.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

fn encoded_batches() -> Result<Vec<Bytes>, BoxError> {
    let mut batches = Vec::with_capacity(DISTINCT_BATCHES);
    for b in 0..DISTINCT_BATCHES {
        let records: Vec<Record> = (0..RECORDS_PER_BATCH)
            .map(|r| {
                let mut value = vec![0u8; VALUE_BYTES];
                fill_random(&mut value, (b * RECORDS_PER_BATCH + r) as u64 + 1);
                Record {
                    timestamp: 1_700_000_000_000,
                    value: Some(Bytes::from(value)),
                    ..Record::default()
                }
            })
            .collect();
        batches.push(encode_batch(&records, &BatchOptions::default())?.to_bytes());
    }
    Ok(batches)
}

fn file_pool(dir: &Path) -> Result<Arc<NodePool>, BoxError> {
    // `PoolConfig::new` keeps the backend default: fsync every file:// write.
    let spec = NodeSpec {
        id: NodeId("n1".into()),
        url: format!("file://{}", dir.display()),
    };
    Ok(Arc::new(NodePool::open(&PoolConfig::new(vec![spec], 1))?))
}

async fn open_meta(dir: &Path) -> Result<Arc<dyn MetaStore>, BoxError> {
    Ok(Arc::new(
        EmbeddedStore::open(dir, EmbeddedOptions::default()).await?,
    ))
}

#[derive(Debug, Clone)]
struct Outcome {
    point: Point,
    setup_s: f64,
    acked: u64,
    msgs_per_s: f64,
    mb_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    txns_per_s: f64,
    puts_per_s: f64,
    flushed_mb_per_s: f64,
    flushes_per_s: f64,
    flush_ms_mean: f64,
    puts_per_flush: f64,
    retrying: u64,
    /// Cores busy during the window.
    cpu: CpuUse,
    errors: u64,
    first_error: Option<String>,
    aborted: usize,
}

/// CPU seconds used so far, from `/proc`.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    at: Instant,
    /// Every thread of this process, user and system mode.
    own_user: f64,
    own_sys: f64,
    /// The whole machine, busy (not idle, not iowait) and stolen by the hypervisor.
    machine_busy: f64,
    steal: f64,
}

/// Cores busy on average between two samples.
#[derive(Debug, Clone, Copy)]
struct CpuUse {
    user: f64,
    sys: f64,
    /// Busy outside this process: others' work on a shared machine.
    others: f64,
    steal: f64,
}

impl CpuUse {
    const UNKNOWN: CpuUse = CpuUse {
        user: f64::NAN,
        sys: f64::NAN,
        others: f64::NAN,
        steal: f64::NAN,
    };
}

impl CpuSample {
    /// `None` where there is no Linux `/proc`.
    fn now() -> Option<Self> {
        // Linux reports both files in USER_HZ ticks, which is 100 on every architecture.
        const TICKS_PER_S: f64 = 100.0;
        let at = Instant::now();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold spaces; field 3 follows.
        let own: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let own_ticks = |field: usize| own.get(field - 3)?.parse::<f64>().ok();
        let all = std::fs::read_to_string("/proc/stat").ok()?;
        // "cpu user nice system idle iowait irq softirq steal ..."
        let all: Vec<f64> = all
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let all_ticks = |i: usize| all.get(i).copied();
        let busy = [0, 1, 2, 5, 6]
            .into_iter()
            .map(all_ticks)
            .sum::<Option<f64>>()?;
        Some(Self {
            at,
            own_user: own_ticks(14)? / TICKS_PER_S,
            own_sys: own_ticks(15)? / TICKS_PER_S,
            machine_busy: busy / TICKS_PER_S,
            steal: all_ticks(7).unwrap_or(0.0) / TICKS_PER_S,
        })
    }

    fn since(start: Option<Self>, end: Option<Self>) -> CpuUse {
        let (Some(a), Some(b)) = (start, end) else {
            return CpuUse::UNKNOWN;
        };
        let secs = (b.at - a.at).as_secs_f64();
        let (user, sys) = (b.own_user - a.own_user, b.own_sys - a.own_sys);
        CpuUse {
            user: user / secs,
            sys: sys / secs,
            others: ((b.machine_busy - a.machine_busy) - user - sys).max(0.0) / secs,
            steal: (b.steal - a.steal) / secs,
        }
    }
}

fn percentile_ms(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted_ns.len() as f64).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1e6
}

/// A fresh folder `root/name`. Nothing is deleted before the run ends: on this machine's ext4
/// (no journal), creating files right after tens of thousands were deleted spends most of its
/// CPU in the inode allocator skipping recently deleted inodes, and the next point would pay
/// for the previous point's cleanup.
fn fresh_dir(root: &Path, name: &str) -> Result<PathBuf, BoxError> {
    let dir = root.join(name);
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

/// A broker "b1" serving every partition of [`TOPIC`], over a fresh metadata store and storage
/// node in `root/name`.
struct Setup {
    broker: Arc<Broker>,
    linger: Duration,
    flush_bytes: usize,
}

async fn set_up(root: &Path, name: &str, partitions: u32) -> Result<Setup, BoxError> {
    let dir = fresh_dir(root, name)?;
    let meta = open_meta(&dir.join("meta")).await?;
    let pool = file_pool(&dir.join("node1"))?;
    let keys = Keyspace::new("bench")?;
    let info = BrokerInfo {
        id: "b1".into(),
        addr: "b1:7071".into(),
        started_ms: 0,
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
    let (linger, flush_bytes) = (config.linger, config.flush_bytes);
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

/// Median `flush_once` of `partitions` partitions holding one batch each, with nothing else
/// running: the cycle's own cost, without producers competing for the two cores.
async fn isolated_flush_ms(root: &Path, partitions: u32, batch: &Bytes) -> Result<f64, BoxError> {
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
            return Err(format!(
                "isolated flush wrote {} of {partitions} objects",
                stats.puts
            )
            .into());
        }
    }
    Ok(median_ms(samples))
}

async fn run_point(root: &Path, point: Point, batches: &[Bytes]) -> Result<Outcome, BoxError> {
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
    let cpu = CpuSample::since(cpu_before, cpu_after);

    let drain_deadline = tokio::time::Instant::from_std(end + DRAIN_LIMIT);
    let mut latencies = Vec::new();
    let (mut errors, mut first_error, mut aborted) = (0, None, 0);
    for handle in producers {
        let abort = handle.abort_handle();
        match tokio::time::timeout_at(drain_deadline, handle).await {
            Ok(Ok(tally)) => {
                latencies.extend(tally.latencies_ns);
                errors += tally.errors;
                first_error = first_error.or(tally.first_error);
            }
            Ok(Err(join)) => return Err(join.into()),
            Err(_) => {
                abort.abort();
                aborted += 1;
            }
        }
    }
    cancel.cancel();
    if tokio::time::timeout(DRAIN_LIMIT, flusher).await.is_err() {
        eprintln!(
            "{}: the flush loop did not stop within {DRAIN_LIMIT:?}; left running",
            point.name
        );
    }

    latencies.sort_unstable();
    let acked = latencies.len() as u64;
    let msgs = (acked * RECORDS_PER_BATCH as u64) as f64;
    let window = MEASURE.as_secs_f64();
    let flush_window = (after.at - before.at).as_secs_f64();
    let cycles = after.cycles - before.cycles;
    Ok(Outcome {
        point,
        setup_s,
        acked,
        msgs_per_s: msgs / window,
        mb_per_s: msgs * VALUE_BYTES as f64 / MB / window,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        p999_ms: percentile_ms(&latencies, 0.999),
        txns_per_s: (after.txns - before.txns) as f64 / flush_window,
        puts_per_s: (after.puts - before.puts) as f64 / flush_window,
        flushed_mb_per_s: (after.bytes - before.bytes) as f64 / MB / flush_window,
        flushes_per_s: cycles as f64 / flush_window,
        flush_ms_mean: if cycles == 0 {
            f64::NAN
        } else {
            (after.busy_ns - before.busy_ns) as f64 / 1e6 / cycles as f64
        },
        puts_per_flush: if cycles == 0 {
            f64::NAN
        } else {
            (after.puts - before.puts) as f64 / cycles as f64
        },
        retrying: after.retrying - before.retrying,
        cpu,
        errors,
        first_error,
        aborted,
    })
}

/// Sequential write bandwidth of `dir` with fsync: 16 writes of 4 MiB, each followed by
/// fdatasync, into a new file. One synced write per PUT-sized chunk is what a flush does, so
/// this is the ceiling a broker on this disk can approach.
///
/// On the VM these figures come from, the first such file after a few idle seconds is written
/// 3-5 times slower than the next ones, so one untimed round comes first and the median of
/// five timed rounds is returned.
fn fsync_bandwidth_mb_s(dir: &Path) -> Result<f64, BoxError> {
    const CHUNK: usize = 4 << 20;
    const CHUNKS: usize = 16;
    let mut chunk = vec![0u8; CHUNK];
    fill_random(&mut chunk, 42);
    let path = dir.join("fsync-baseline.bin");
    let mut rounds = Vec::with_capacity(5);
    for round in 0..6 {
        let mut file = File::create(&path)?;
        let started = Instant::now();
        for _ in 0..CHUNKS {
            file.write_all(&chunk)?;
            file.sync_data()?;
        }
        let secs = started.elapsed().as_secs_f64();
        drop(file);
        std::fs::remove_file(&path)?;
        if round > 0 {
            rounds.push((CHUNK * CHUNKS) as f64 / MB / secs);
        }
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[rounds.len() / 2])
}

/// Median latency of appending 4 KiB to a file and fdatasync-ing it: the floor under every
/// synced write (segment PUT, metadata log append).
fn small_fsync_ms(dir: &Path) -> Result<f64, BoxError> {
    let mut block = vec![0u8; 4096];
    fill_random(&mut block, 7);
    let path = dir.join("fsync-small.bin");
    let mut file = File::create(&path)?;
    let mut samples = Vec::with_capacity(PROBE_SAMPLES * 2);
    for _ in 0..PROBE_SAMPLES * 2 {
        let started = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        samples.push(started.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(median_ms(samples))
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// Medians of the two synced steps of a flush, each alone: an object PUT through the node pool
/// and a metadata transaction with the operations the flusher commits per partition.
#[derive(Debug, Clone, Copy)]
struct Stages {
    put_16k_ms: f64,
    put_1m_ms: f64,
    /// The PUT phase of a cycle with [`WAVE_OBJECTS`] partitions, without the broker.
    put_wave_ms: f64,
    txn_1p_ms: f64,
    txn_40p_ms: f64,
    /// `(partitions, ms)`: a whole `flush_once` of that many partitions with one batch each,
    /// nothing else running.
    flush_alone_ms: [(u32, f64); 4],
}

impl Stages {
    fn describe(&self) -> String {
        let flushes: Vec<String> = self
            .flush_alone_ms
            .iter()
            .map(|(n, ms)| format!("{n}: {ms:.2} ms"))
            .collect();
        format!(
            "stages alone (medians): PUT 16 KiB {:.2} ms, PUT 1 MiB {:.2} ms, {WAVE_OBJECTS} PUTs of 16 KiB {WAVE_PARALLEL} at a time {:.2} ms; meta txn for 1 partition {:.2} ms, for {PARTITIONS_PER_TXN} partitions {:.2} ms\nflush_once alone, partitions with one 16 KiB batch each: {}",
            self.put_16k_ms,
            self.put_1m_ms,
            self.put_wave_ms,
            self.txn_1p_ms,
            self.txn_40p_ms,
            flushes.join(", ")
        )
    }
}

/// Objects in the PUT-phase probe: as many as a cycle has with 64 produces in flight.
const WAVE_OBJECTS: usize = 64;
/// As `PARALLEL_PUTS` in the flusher (crate-private there).
const WAVE_PARALLEL: usize = 16;

async fn probe_stages(root: &Path) -> Result<Stages, BoxError> {
    let dir = fresh_dir(root, "probe")?;
    let pool = file_pool(&dir.join("node1"))?;
    let mut put_ms = Vec::new();
    for size in [16 << 10, 1 << 20] {
        let mut payload = vec![0u8; size];
        fill_random(&mut payload, size as u64);
        let payload = Bytes::from(payload);
        let mut samples = Vec::with_capacity(PROBE_SAMPLES);
        for i in 0..PROBE_SAMPLES {
            // Same folder for every sample, as a partition's segments share one.
            let path = object_store::path::Path::from(format!("probe/{size}/{i:04}.seg"));
            let started = Instant::now();
            pool.put(&path, PutPayload::from(payload.clone())).await?;
            samples.push(started.elapsed());
        }
        put_ms.push(median_ms(samples));
    }

    // 16 KiB objects into distinct folders, 16 at a time: the flusher's PUT phase. Round 0
    // creates the folders (a running broker has them) and is not timed.
    let mut payload = vec![0u8; 16 << 10];
    fill_random(&mut payload, 3);
    let payload = Bytes::from(payload);
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
    let put_wave_ms = median_ms(wave_samples);

    let meta = open_meta(&dir.join("meta")).await?;
    // The flusher writes a segment record and a checkpoint per partition; values of about the
    // size those encode to.
    let value = Bytes::from(vec![b'x'; 200]);
    let mut txn_ms = Vec::new();
    for partitions in [1, PARTITIONS_PER_TXN] {
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
        txn_ms.push(median_ms(samples));
    }
    Ok(Stages {
        put_16k_ms: put_ms[0],
        put_1m_ms: put_ms[1],
        put_wave_ms,
        txn_1p_ms: txn_ms[0],
        txn_40p_ms: txn_ms[1],
        flush_alone_ms: [1, 10, 64, 1000].map(|n| (n, f64::NAN)),
    })
}

fn fmt_f(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "-".into()
    }
}

/// A JSON number, or `null` where there is none (JSON has no NaN).
fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "null".into()
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Baseline {
    before: f64,
    after: f64,
    small_fsync_ms: f64,
}

impl Baseline {
    /// Machines are shared and noisy: the ratio uses the mean of a run before and after.
    fn mb_s(&self) -> f64 {
        (self.before + self.after) / 2.0
    }
}

fn table(outcomes: &[Outcome], baseline: &Baseline) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>5} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} | {:>5} {:>8} {:>7} {:>8} {:>9} {:>9} {:>6} {:>6}",
        "point",
        "parts",
        "ack",
        "msgs/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "txns/s",
        "PUTs/s",
        "÷fsync",
        "infl",
        "flush/s",
        "PUT/fl",
        "flush ms",
        "flushMB/s",
        "cpu u+s",
        "others",
        "errors",
    );
    for o in outcomes {
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>8} {:>9.0} {:>8.1} {:>8} {:>8} {:>8} {:>7.1} {:>7.1} {:>7.3} | {:>5} {:>8.1} {:>7.1} {:>8} {:>9.1} {:>9} {:>6} {:>6}",
            o.point.name,
            o.point.partitions,
            ack_name(o.point.ack),
            o.msgs_per_s,
            o.mb_per_s,
            fmt_f(o.p50_ms, 3),
            fmt_f(o.p99_ms, 3),
            fmt_f(o.p999_ms, 3),
            o.txns_per_s,
            o.puts_per_s,
            o.mb_per_s / baseline.mb_s(),
            o.point.in_flight,
            o.flushes_per_s,
            o.puts_per_flush,
            fmt_f(o.flush_ms_mean, 2),
            o.flushed_mb_per_s,
            format!("{}+{}", fmt_f(o.cpu.user, 2), fmt_f(o.cpu.sys, 2)),
            fmt_f(o.cpu.others, 2),
            o.errors,
        );
    }
    out
}

/// The machine as the run saw it: others' work on a shared machine skews every figure.
#[derive(Debug, Clone, Copy)]
struct Machine {
    cores: usize,
    /// From the first probe to the last baseline.
    cpu: CpuUse,
}

fn json(outcomes: &[Outcome], baseline: &Baseline, stages: &Stages, machine: Machine) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{{");
    let _ = writeln!(
        out,
        "  \"machine\": {{\"cores\": {}, \"cpu_others_cores\": {}, \"cpu_steal_cores\": {}}},",
        machine.cores,
        json_num(machine.cpu.others),
        json_num(machine.cpu.steal)
    );
    let _ = writeln!(
        out,
        "  \"settings\": {{\"value_bytes\": {VALUE_BYTES}, \"records_per_batch\": {RECORDS_PER_BATCH}, \"warmup_s\": {}, \"measure_s\": {}, \"mb\": 1000000}},",
        WARMUP.as_secs_f64(),
        MEASURE.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  \"baseline\": {{\"method\": \"16 x 4 MiB writes, each followed by fdatasync; median of 5 rounds after 1 untimed\", \"fsync_mb_s_before\": {}, \"fsync_mb_s_after\": {}, \"fsync_mb_s\": {}, \"small_fsync_ms\": {}}},",
        json_num(baseline.before),
        json_num(baseline.after),
        json_num(baseline.mb_s()),
        json_num(baseline.small_fsync_ms)
    );
    let _ = writeln!(
        out,
        "  \"stages\": {{\"put_16k_ms\": {}, \"put_1m_ms\": {}, \"put_wave_{WAVE_OBJECTS}x16k_ms\": {}, \"txn_1p_ms\": {}, \"txn_40p_ms\": {}, \"flush_alone_ms\": {{{}}}}},",
        json_num(stages.put_16k_ms),
        json_num(stages.put_1m_ms),
        json_num(stages.put_wave_ms),
        json_num(stages.txn_1p_ms),
        json_num(stages.txn_40p_ms),
        stages
            .flush_alone_ms
            .iter()
            .map(|(n, ms)| format!("\"{n}\": {}", json_num(*ms)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out, "  \"points\": [");
    for (i, o) in outcomes.iter().enumerate() {
        let comma = if i + 1 < outcomes.len() { "," } else { "" };
        let _ = writeln!(
            out,
            "    {{\"point\": {}, \"partitions\": {}, \"ack\": {}, \"in_flight\": {}, \"setup_s\": {}, \"acked_batches\": {}, \"msgs_per_s\": {}, \"mb_per_s\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"p999_ms\": {}, \"txns_per_s\": {}, \"puts_per_s\": {}, \"mb_per_s_over_fsync\": {}, \"flushes_per_s\": {}, \"puts_per_flush\": {}, \"flush_ms_mean\": {}, \"flushed_mb_per_s\": {}, \"retrying\": {}, \"cpu_user_cores\": {}, \"cpu_sys_cores\": {}, \"cpu_others_cores\": {}, \"cpu_steal_cores\": {}, \"errors\": {}, \"first_error\": {}, \"aborted_producers\": {}}}{comma}",
            json_str(o.point.name),
            o.point.partitions,
            json_str(ack_name(o.point.ack)),
            o.point.in_flight,
            json_num(o.setup_s),
            o.acked,
            json_num(o.msgs_per_s),
            json_num(o.mb_per_s),
            json_num(o.p50_ms),
            json_num(o.p99_ms),
            json_num(o.p999_ms),
            json_num(o.txns_per_s),
            json_num(o.puts_per_s),
            json_num(o.mb_per_s / baseline.mb_s()),
            json_num(o.flushes_per_s),
            json_num(o.puts_per_flush),
            json_num(o.flush_ms_mean),
            json_num(o.flushed_mb_per_s),
            o.retrying,
            json_num(o.cpu.user),
            json_num(o.cpu.sys),
            json_num(o.cpu.others),
            json_num(o.cpu.steal),
            o.errors,
            o.first_error
                .as_deref()
                .map_or_else(|| "null".into(), json_str),
            o.aborted,
        );
    }
    let _ = writeln!(out, "  ]");
    let _ = writeln!(out, "}}");
    out
}

/// `target/` of this build: the bench binary is `target/<profile>/deps/broker-<hash>`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

async fn run() -> Result<(), BoxError> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu_start = CpuSample::now();
    let root = tempfile::Builder::new().prefix("strata-bench-").tempdir()?;
    eprintln!(
        "broker bench: {cores} cores, temp dir {}",
        root.path().display()
    );
    let batches = encoded_batches()?;

    let before = tokio::task::spawn_blocking({
        let dir = root.path().to_path_buf();
        move || fsync_bandwidth_mb_s(&dir)
    })
    .await??;
    let small_fsync_ms = tokio::task::spawn_blocking({
        let dir = root.path().to_path_buf();
        move || small_fsync_ms(&dir)
    })
    .await??;
    eprintln!(
        "fsync baseline: {before:.1} MB/s (4 MiB writes + fdatasync); 4 KiB append + fdatasync {small_fsync_ms:.2} ms"
    );
    let mut stages = probe_stages(root.path()).await?;
    for (n, ms) in &mut stages.flush_alone_ms {
        *ms = isolated_flush_ms(root.path(), *n, &batches[0]).await?;
    }
    eprintln!("{}", stages.describe());

    // `cargo bench -p strata-broker --bench broker -- 1000p` runs the points whose name contains
    // one of the words; cargo itself adds `--bench`, which is not a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let selected = POINTS
        .into_iter()
        .filter(|p| filters.is_empty() || filters.iter().any(|f| p.name.contains(f.as_str())));
    let mut outcomes = Vec::with_capacity(POINTS.len());
    for point in selected {
        let outcome = run_point(root.path(), point, &batches).await?;
        eprintln!(
            "{}: setup {:.1} s, {:.0} msgs/s, {:.1} MB/s, p50 {} ms, p99 {} ms, {:.1} txns/s, {:.1} PUTs/s, {:.1} flushes/s of {} ms{}",
            point.name,
            outcome.setup_s,
            outcome.msgs_per_s,
            outcome.mb_per_s,
            fmt_f(outcome.p50_ms, 3),
            fmt_f(outcome.p99_ms, 3),
            outcome.txns_per_s,
            outcome.puts_per_s,
            outcome.flushes_per_s,
            fmt_f(outcome.flush_ms_mean, 2),
            match &outcome.first_error {
                Some(e) => format!(", {} errors (first: {e})", outcome.errors),
                None => String::new(),
            },
        );
        outcomes.push(outcome);
    }

    let after = tokio::task::spawn_blocking({
        let dir = root.path().to_path_buf();
        move || fsync_bandwidth_mb_s(&dir)
    })
    .await??;
    let baseline = Baseline {
        before,
        after,
        small_fsync_ms,
    };
    let machine = Machine {
        cores,
        cpu: CpuSample::since(cpu_start, CpuSample::now()),
    };
    eprintln!(
        "fsync baseline after the points: {after:.1} MB/s; ratios use the mean, {:.1} MB/s",
        baseline.mb_s()
    );

    println!();
    println!(
        "one broker, file storage (fsync), embedded metadata store; {VALUE_BYTES} B values, {RECORDS_PER_BATCH} per batch; {:.1} s warm-up + {:.1} s measured per point; MB = 10^6 B",
        WARMUP.as_secs_f64(),
        MEASURE.as_secs_f64()
    );
    println!(
        "{cores} cores; over the run, other processes kept {} cores busy and the hypervisor stole {}",
        fmt_f(machine.cpu.others, 2),
        fmt_f(machine.cpu.steal, 2)
    );
    println!(
        "fsync baseline {:.1} MB/s (16 x 4 MiB writes each followed by fdatasync, median of 5 after a warm-up round; mean of {before:.1} before and {after:.1} after the points); 4 KiB append + fdatasync {small_fsync_ms:.2} ms",
        baseline.mb_s()
    );
    println!("{}", stages.describe());
    println!();
    print!("{}", table(&outcomes, &baseline));

    let path = target_dir().join("bench-broker.json");
    std::fs::write(&path, json(&outcomes, &baseline, &stages, machine))?;
    eprintln!(
        "wrote {}; removing {}",
        path.display(),
        root.path().display()
    );
    root.close()?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    // Two workers, as the two cores of the machine the figures in docs/benchmarks.md come from;
    // fsyncs run on tokio's blocking pool either way.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}
