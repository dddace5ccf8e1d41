//! How late delayed messages arrive: with many pending, and across a SIGKILL of their owner.
//!
//! The goal (issue 19): p99 lateness ≤ 1 s with 1,000,000 pending delayed messages, and across
//! a `kill -9` of the broker owning their partition. A record's lateness is when the consumer
//! received its delivered copy minus the copy's timestamp, which is the record's due time.
//!
//! - **steady**: a `strata standalone` (release binary), a topic of 4 partitions accepting
//!   delays up to 10 min. A consumer (no group, every partition from the earliest offset)
//!   reads from the start. `DELAY_PENDING` (default 1,000,000) records of 100 bytes are
//!   produced, each with `with_deliver_at`, due at a time spread uniformly over a window of
//!   `DELAY_WINDOW_SECS` (default 60) that opens `DELAY_LEAD_SECS` after production starts
//!   (default 15 s plus 1 s per 20,000 records), so that every record is pending when
//!   production ends. Then the consumer reads until every copy arrived (or the window's end
//!   plus 120 s). Printed: the produce rate, the lateness percentiles, early deliveries (must
//!   be 0), duplicates and missing records, the server's RSS (with everything pending, and
//!   its peak) and CPU, and the broker's `strata_broker_delay_*` metrics where it has them.
//! - **kill**: a process cluster on real etcd and `s3s-fs` (2 brokers, 1 controller, 1
//!   proxy, 1 storage node; leases of 2 s, as in the fault tests). `DELAY_KILL_PENDING`
//!   (default 200,000) records due over `DELAY_KILL_WINDOW_SECS` (default 30); 5 s into the
//!   window the owner of partition 0 is killed with SIGKILL, and the other broker takes its
//!   partitions over. The same figures, for the killed broker's partitions (split into the
//!   records due during the outage and after it) and for the others, which a second consumer
//!   also reads alone (so a lateness of theirs shared with the killed partitions' consumer
//!   shows as such); when the new owner took the partitions over, when its schedulers had
//!   read the log (from its log) and when its first copy arrived; the survivor's storage GETs.
//!
//! Both phases also print the lateness by due time (5 s or 2 s buckets of the window), and
//! progress lines every 5 s; a server process that dies ends the run with an error.
//!
//! `cargo bench -p strata-integration-tests --bench delay_lateness` after
//! `cargo build --release -p strata` (or set `STRATA_TEST_BIN`); the kill phase needs etcd
//! and `s3s-fs` (`scripts/setup.sh`). `DELAY_PHASES=steady` or `DELAY_PHASES=kill` runs one
//! phase. `STRATA_DELAY_MEMORY_BYTES` sets the servers' budget for pending bodies (64 MiB by
//! default). Asserts nothing: the figures go to `docs/benchmarks.md`.

// A benchmark measures real time against real servers.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use strata_client::admin::TopicSettings;
use strata_client::{
    Admin, Consumer, ConsumerConfig, Offset, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use strata_integration_tests::cli::metrics;
use strata_integration_tests::harness::ops::{AdminApi, Cluster as _};
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::measure::{cpu_seconds, memory_mib, quantile};
use strata_testkit::{StrataServer, log_dir, strata_binary, target_tmp_dir};
use tokio::task::JoinHandle;

const PARTITIONS: u32 = 4;
const VALUE_BYTES: usize = 100;
const MAX_DELAY_MS: i64 = 600_000;
/// Copies still missing this long after the window's end are counted missing.
const GRACE: Duration = Duration::from_secs(120);
/// Seconds between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Acknowledgements awaited at most (records produced and not yet acknowledged).
const IN_FLIGHT: usize = 20_000;
/// When, into the kill phase's window, the owner of partition 0 is killed.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// A pause in a partition's deliveries at least this long after the kill ends the old owner's
/// copies; the first one after it is the new owner's.
const OUTAGE_GAP_US: i64 = 300_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn now_ms() -> i64 {
    now_us() / 1_000
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A fixed pseudo-random number for `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `id.due.` then padding: the consumer learns the record and its asked due time from it.
fn value_of(id: usize, due_ms: i64) -> String {
    let mut value = format!("{id:010}.{due_ms:013}.");
    value.extend(std::iter::repeat_n('x', VALUE_BYTES - value.len()));
    value
}

fn parse_value(value: &[u8]) -> Option<(usize, i64)> {
    let text = std::str::from_utf8(value.get(..24)?).ok()?;
    Some((text[..10].parse().ok()?, text[11..24].parse().ok()?))
}

/// The process whose command line has the argument `arg` (a listening address).
fn pid_with_arg(arg: &str) -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        cmdline
            .split(|b| *b == 0)
            .any(|a| a == arg.as_bytes())
            .then_some(pid)
    })
}

/// The broker's `strata_broker_delay_*` figures (histogram buckets left out), by name
/// without the prefix.
async fn delay_metrics(http: SocketAddr) -> Vec<(String, f64)> {
    let Ok(page) = metrics(http).await else {
        return Vec::new();
    };
    page.lines()
        .filter(|l| l.starts_with("strata_broker_delay") && !l.contains("_bucket"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((
                name.trim_start_matches("strata_broker_").to_owned(),
                value.parse().ok()?,
            ))
        })
        .collect()
}

/// The summed figures of several brokers, printed on one line.
async fn broker_line(https: &[SocketAddr]) -> String {
    let mut sums: Vec<(String, f64)> = Vec::new();
    for http in https {
        for (name, value) in delay_metrics(*http).await {
            match sums.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum += value,
                None => sums.push((name, value)),
            }
        }
    }
    if sums.is_empty() {
        return "broker: no strata_broker_delay_* metrics".to_owned();
    }
    let shown: Vec<String> = sums
        .iter()
        .map(|(name, value)| {
            if name.ends_with("_sum") || name.ends_with("seconds") {
                format!("{name}={value:.3}")
            } else {
                format!("{name}={}", thousands(*value as u64))
            }
        })
        .collect();
    format!("broker: {}", shown.join(" "))
}

/// A first copy: (partition, received at µs, lateness µs, due ms).
type Receipt = (u32, i64, i64, i64);

/// What the consumer saw.
#[derive(Default)]
struct Tally {
    /// Copies received per record id.
    copies: Vec<u8>,
    /// Each first copy.
    receipts: Vec<Receipt>,
    duplicates: u64,
    /// Copies whose timestamp is not the due time they asked for.
    wrong_timestamp: u64,
    /// Records that are not this run's.
    foreign: u64,
    poll_errors: u64,
}

/// What a consumer reads: `partitions` of `topic`, until `want` of the `n` records arrived.
struct Reads {
    topic: String,
    partitions: Vec<u32>,
    n: usize,
    want: usize,
}

/// Reads `reads.partitions` from the earliest offset until `reads.want` distinct records
/// arrived or `deadline`; `delivered` counts them as they come.
async fn consume(
    server: String,
    reads: Reads,
    deadline: Instant,
    delivered: Arc<AtomicUsize>,
) -> anyhow::Result<Tally> {
    let Reads {
        topic,
        partitions,
        n,
        want,
    } = reads;
    let mut consumer = Consumer::builder(&server)
        .config(ConsumerConfig {
            auto_offset_reset: Offset::Earliest,
            max_poll_records: 10_000,
            ..ConsumerConfig::default()
        })
        .build()
        .await?;
    consumer
        .assign(
            partitions
                .iter()
                .map(|p| TopicPartition::new(&topic, *p))
                .collect(),
        )
        .await?;
    let mut tally = Tally {
        copies: vec![0; n],
        receipts: Vec::with_capacity(n),
        ..Tally::default()
    };
    while tally.receipts.len() < want && Instant::now() < deadline {
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(e) => {
                tally.poll_errors += 1;
                if tally.poll_errors <= 5 {
                    eprintln!("[consumer] poll failed: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let at = now_us();
        for record in records {
            let Some((id, due)) = record.value.as_deref().and_then(parse_value) else {
                tally.foreign += 1;
                continue;
            };
            let Some(count) = tally.copies.get_mut(id) else {
                tally.foreign += 1;
                continue;
            };
            *count = count.saturating_add(1);
            if *count > 1 {
                tally.duplicates += 1;
                continue;
            }
            if record.timestamp != due {
                tally.wrong_timestamp += 1;
            }
            tally
                .receipts
                .push((record.partition, at, at - record.timestamp * 1_000, due));
        }
        delivered.store(tally.receipts.len(), Ordering::Relaxed);
    }
    if let Err(e) = consumer.close().await {
        eprintln!("[consumer] close failed: {e}");
    }
    Ok(tally)
}

/// A consumer running in its own task.
struct Reading {
    delivered: Arc<AtomicUsize>,
    task: JoinHandle<anyhow::Result<Tally>>,
}

fn start_reading(server: &str, reads: Reads, deadline: Instant) -> Reading {
    let delivered = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(consume(
        server.to_owned(),
        reads,
        deadline,
        delivered.clone(),
    ));
    Reading { delivered, task }
}

/// Every partition of `topic`, until all `n` records arrived.
fn all_of(topic: &str, n: usize) -> Reads {
    Reads {
        topic: topic.to_owned(),
        partitions: (0..PARTITIONS).collect(),
        n,
        want: n,
    }
}

/// When the records of a run are due: `window_ms` wide, opening `lead_ms` after `start_ms`.
#[derive(Clone, Copy)]
struct Schedule {
    start_ms: i64,
    lead_ms: i64,
    window_ms: i64,
}

impl Schedule {
    /// Production starts now; the window opens `lead` later and lasts `window`.
    fn from_now(lead: Duration, window: Duration) -> Self {
        Self {
            start_ms: now_ms(),
            lead_ms: lead.as_millis() as i64,
            window_ms: window.as_millis() as i64,
        }
    }

    fn opens_ms(&self) -> i64 {
        self.start_ms + self.lead_ms
    }

    fn due_of(&self, id: usize) -> i64 {
        self.opens_ms() + (mix(id as u64) % self.window_ms as u64) as i64
    }
}

/// Sleeps until the wall clock reads `at_ms`.
async fn sleep_until_ms(at_ms: i64) {
    let left = at_ms - now_ms();
    if left > 0 {
        tokio::time::sleep(Duration::from_millis(left as u64)).await;
    }
}

/// Produces `n` delayed records to `topic`, record `i` to partition `i % PARTITIONS`;
/// returns the time it took, every record acknowledged.
async fn produce(
    label: &str,
    server: &str,
    topic: &str,
    n: usize,
    schedule: Schedule,
) -> anyhow::Result<Duration> {
    let producer = Producer::builder(server)
        .config(ProducerConfig {
            linger: Duration::from_millis(5),
            ..ProducerConfig::default()
        })
        .build()
        .await?;
    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut acks = VecDeque::with_capacity(IN_FLIGHT);
    for id in 0..n {
        let due = schedule.due_of(id);
        let record = ProducerRecord::new(topic, value_of(id, due))
            .with_partition(id as u32 % PARTITIONS)
            .with_deliver_at(due);
        acks.push_back(producer.enqueue(record).await?);
        while acks.len() >= IN_FLIGHT {
            if let Some(ack) = acks.pop_front() {
                ack.await?;
            }
        }
        if last_line.elapsed() >= PROGRESS_EVERY {
            last_line = Instant::now();
            eprintln!(
                "[{label}] produced {} of {} ({:.0} records/s)",
                thousands(id as u64 + 1),
                thousands(n as u64),
                (id + 1) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    for ack in acks {
        ack.await?;
    }
    let took = started.elapsed();
    producer.close().await?;
    Ok(took)
}

/// Whether the process runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            Some(state != "Z")
        })
        .unwrap_or(false)
}

/// Prints progress until the consumer finished, every few seconds; stops it if one of the
/// `servers` processes is gone.
async fn watch(
    label: &str,
    reading: &Reading,
    n: usize,
    https: &[SocketAddr],
    opens_ms: i64,
    servers: &[u32],
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.tick().await;
    while !reading.task.is_finished() {
        tokio::select! {
            _ = ticker.tick() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => continue,
        }
        if let Some(pid) = servers.iter().find(|pid| !running(**pid)) {
            reading.task.abort();
            anyhow::bail!("[{label}] server process {pid} is gone (see its log); stopped");
        }
        eprintln!(
            "[{label}] window +{:.0} s: delivered {} of {}; {}",
            (now_ms() - opens_ms) as f64 / 1000.0,
            thousands(reading.delivered.load(Ordering::Relaxed) as u64),
            thousands(n as u64),
            broker_line(https).await
        );
    }
    Ok(())
}

/// The brokers' storage GETs so far (`strata_broker_storage_requests_total{op="get"}`).
async fn storage_gets(https: &[SocketAddr]) -> f64 {
    let mut sum = 0.0;
    for http in https {
        if let Ok(page) = metrics(http).await {
            sum += page
                .lines()
                .filter(|l| l.starts_with("strata_broker_storage_requests") && l.contains("get"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
    }
    sum
}

/// Seconds since midnight (UTC) of a log line's leading RFC 3339 timestamp.
fn log_time_of_day(line: &str) -> Option<f64> {
    let time = line.split_whitespace().next()?.split_once('T')?.1;
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// From the new owner's log: when each of `partitions` of `topic` started there and when its
/// delay scheduler finished reading the log, as seconds after `killed_us`.
fn takeover_from_log(
    log: &std::path::Path,
    topic: &str,
    partitions: &BTreeSet<u32>,
    killed_us: i64,
) {
    let Ok(text) = std::fs::read_to_string(log) else {
        println!("no log at {}", log.display());
        return;
    };
    let killed = (killed_us as f64 / 1e6) % 86_400.0;
    for p in partitions {
        let of = |l: &&str| l.contains(&format!("topic={topic} partition={p} "));
        let after = |l: &str| log_time_of_day(l).map(|t| t - killed).filter(|d| *d >= 0.0);
        let started = text
            .lines()
            .filter(of)
            .filter(|l| l.contains("partition starting"))
            .find_map(after);
        let scanned = text
            .lines()
            .filter(of)
            .filter(|l| l.contains("delay scheduler recovered"))
            .find_map(|l| Some((after(l)?, l.split("records ").nth(1)?.to_owned())));
        println!(
            "partition {p}: started on the new owner {}; its delay scheduler read the log {}",
            started.map_or("(not in the log)".to_owned(), |t| format!(
                "{t:.2} s after the kill"
            )),
            scanned.map_or("(not in the log)".to_owned(), |(t, what)| format!(
                "by {t:.2} s after the kill ({what})"
            )),
        );
    }
}

fn ms(us: i64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

fn header() {
    println!(
        "{:<30}  {:>9}  {:>6}  {:>5}  {:>8}  {:>8}  {:>8}  {:>8}  {:>9}",
        "records", "delivered", "early", "dups", "missing", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
}

/// One row of figures over the first copies `receipts` of `expected` records.
fn row(name: &str, receipts: &[&Receipt], expected: usize, duplicates: u64) {
    let mut late: Vec<i64> = receipts.iter().map(|r| r.2).collect();
    late.sort_unstable();
    let early = late.iter().filter(|l| **l < 0).count();
    println!(
        "{:<30}  {:>9}  {:>6}  {:>5}  {:>8}  {:>8}  {:>8}  {:>8}  {:>9}",
        name,
        thousands(late.len() as u64),
        early,
        duplicates,
        thousands(expected.saturating_sub(late.len()) as u64),
        ms(quantile(&late, 0.5)),
        ms(quantile(&late, 0.9)),
        ms(quantile(&late, 0.99)),
        ms(late.last().copied().unwrap_or(0)),
    );
}

/// Lateness by due time: for each `bucket_ms` of due times from `opens_ms` on, each
/// group's records, p50, p99 and max.
fn by_due(groups: &[(&str, &[&Receipt])], opens_ms: i64, bucket_ms: i64, buckets: i64) {
    let mut head = format!("{:>10}", "due at s");
    for (name, _) in groups {
        head.push_str(&format!("  | {name:<30}"));
    }
    println!("lateness by due time (seconds into the window; records, p50/p99/max ms):");
    println!("{head}");
    for b in 0..buckets {
        let (from, to) = (opens_ms + b * bucket_ms, opens_ms + (b + 1) * bucket_ms);
        let mut line = format!(
            "{:>10}",
            format!("{}-{}", b * bucket_ms / 1000, (b + 1) * bucket_ms / 1000)
        );
        for (_, receipts) in groups {
            let mut late: Vec<i64> = receipts
                .iter()
                .filter(|r| r.3 >= from && r.3 < to)
                .map(|r| r.2)
                .collect();
            late.sort_unstable();
            line.push_str(&format!(
                "  | {:>7} {:>7}/{:>7}/{:>7}",
                thousands(late.len() as u64),
                ms(quantile(&late, 0.5)),
                ms(quantile(&late, 0.99)),
                ms(late.last().copied().unwrap_or(0))
            ));
        }
        println!("{line}");
    }
}

fn checks(tally: &Tally) {
    println!(
        "copies with a timestamp other than their due time: {}; records not of this run: {}; \
         failed polls: {}",
        tally.wrong_timestamp, tally.foreign, tally.poll_errors
    );
}

fn lead_for(n: usize) -> Duration {
    Duration::from_secs(env_or("DELAY_LEAD_SECS", 15 + n as u64 / 20_000))
}

async fn create_topic(server: &str, topic: &str) -> anyhow::Result<()> {
    let admin = Admin::connect(server).await?;
    admin
        .create_topic_with(
            topic,
            PARTITIONS,
            TopicSettings {
                max_delay_ms: Some(MAX_DELAY_MS),
                ..TopicSettings::default()
            },
        )
        .await?;
    Ok(())
}

async fn steady() -> anyhow::Result<()> {
    let n: usize = env_or("DELAY_PENDING", 1_000_000);
    let window = Duration::from_secs(env_or("DELAY_WINDOW_SECS", 60));
    let lead = lead_for(n);
    let logs = log_dir(&target_tmp_dir()?, "delay-lateness")?;
    let data = tempfile::tempdir()?;
    let binary = strata_binary()?;
    eprintln!(
        "[steady] strata standalone from {}; logs in {}",
        binary.display(),
        logs.display()
    );
    let process = StrataServer::standalone(&binary, data.path(), &logs)?;
    let server = process.addr().to_string();
    let http = process
        .listener("--broker-http-addr")
        .context("no broker HTTP listener")?;
    let pid = process.pid().context("no server pid")?;
    let https = [http];
    let topic = "delays-steady";
    create_topic(&server, topic).await?;

    let schedule = Schedule::from_now(lead, window);
    let deadline = Instant::now() + lead + window + GRACE;
    let reading = start_reading(&server, all_of(topic, n), deadline);
    let cpu_start = cpu_seconds(pid);
    println!(
        "== steady: {} records of {VALUE_BYTES} B over {PARTITIONS} partitions, due over {} s \
         opening {} s after production starts",
        thousands(n as u64),
        window.as_secs(),
        lead.as_secs()
    );
    let took = produce("steady", &server, topic, n, schedule).await?;
    let cpu_produced = cpu_seconds(pid);
    let left_ms = schedule.opens_ms() - now_ms();
    println!(
        "produced {} records in {:.1} s: {:.0} records/s; server CPU {:.1} s",
        thousands(n as u64),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        cpu_produced - cpu_start
    );
    if left_ms > 0 {
        println!(
            "all {} pending {:.1} s after production started; the window opens {:.1} s later",
            thousands(n as u64),
            took.as_secs_f64(),
            left_ms as f64 / 1000.0
        );
    } else {
        println!(
            "production ended {:.1} s after the window opened: not all were pending at once \
             (raise DELAY_LEAD_SECS)",
            -left_ms as f64 / 1000.0
        );
    }
    // Let the schedulers take in the last commits before looking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_pending = memory_mib(pid, "VmRSS");
    println!(
        "with everything pending: server RSS {rss_pending:.0} MiB; {}",
        broker_line(&https).await
    );
    while now_ms() + PROGRESS_EVERY.as_millis() as i64 <= schedule.opens_ms() {
        tokio::time::sleep(PROGRESS_EVERY).await;
        eprintln!(
            "[steady] window opens in {:.0} s; delivered {}; {}",
            (schedule.opens_ms() - now_ms()) as f64 / 1000.0,
            reading.delivered.load(Ordering::Relaxed),
            broker_line(&https).await
        );
    }
    sleep_until_ms(schedule.opens_ms()).await;
    let cpu_opened = cpu_seconds(pid);
    let gets_opened = storage_gets(&https).await;
    watch("steady", &reading, n, &https, schedule.opens_ms(), &[pid]).await?;
    let tally = reading.task.await??;
    let cpu_end = cpu_seconds(pid);
    let finished_ms = now_ms();

    println!(
        "delivered over {:.1} s from the window's opening ({} s wide)",
        (finished_ms - schedule.opens_ms()) as f64 / 1000.0,
        window.as_secs()
    );
    header();
    let all: Vec<_> = tally.receipts.iter().collect();
    row("all", &all, n, tally.duplicates);
    checks(&tally);
    by_due(
        &[("all", &all)],
        schedule.opens_ms(),
        5_000,
        (schedule.window_ms + 4_999) / 5_000,
    );
    println!(
        "server (proxy, broker, controller in one process): RSS {rss_pending:.0} MiB with \
         everything pending, peak {:.0} MiB; CPU {:.1} s producing, {:.1} s while pending, \
         {:.1} s delivering ({:.0}% of a core)",
        memory_mib(pid, "VmHWM"),
        cpu_produced - cpu_start,
        cpu_opened - cpu_produced,
        cpu_end - cpu_opened,
        100.0 * (cpu_end - cpu_opened) / ((finished_ms - schedule.opens_ms()) as f64 / 1000.0)
    );
    println!(
        "storage GETs by the broker while delivering: {:.0}",
        storage_gets(&https).await - gets_opened
    );
    println!("at the end: {}", broker_line(&https).await);
    Ok(())
}

/// A broker of the kill phase's cluster.
struct Member {
    id: String,
    http: SocketAddr,
    pid: Option<u32>,
}

async fn kill() -> anyhow::Result<()> {
    let n: usize = env_or("DELAY_KILL_PENDING", 200_000);
    let window = Duration::from_secs(env_or("DELAY_KILL_WINDOW_SECS", 30));
    let lead = lead_for(n);
    let mut cluster = ProcessCluster::start(Spec {
        brokers: 2,
        controllers: 1,
        proxies: 1,
        storage_nodes: 1,
        replicas: 1,
        ..Spec::standard("delay-lateness-kill")
    })
    .await?;
    let server = cluster.proxies()[0].clone();
    let members: Vec<Member> = cluster
        .brokers()
        .into_iter()
        .zip(cluster.broker_http_urls())
        .map(|(id, url)| {
            let http: SocketAddr = url.trim_start_matches("http://").parse()?;
            let pid = pid_with_arg(&http.to_string());
            Ok(Member { id, http, pid })
        })
        .collect::<anyhow::Result<_>>()?;
    let https: Vec<SocketAddr> = members.iter().map(|m| m.http).collect();
    let api = AdminApi::new(cluster.admin_urls());
    let topic = "delays-kill";
    create_topic(&server, topic).await?;
    let owners = api
        .wait_owned(topic, Duration::from_secs(60), |_| true)
        .await?;
    let victim = owners
        .iter()
        .find(|p| p.partition == 0)
        .and_then(|p| p.broker.clone())
        .context("partition 0 has no owner")?;
    let killed_partitions: BTreeSet<u32> = owners
        .iter()
        .filter(|p| p.broker.as_deref() == Some(victim.as_str()))
        .map(|p| p.partition)
        .collect();
    let survivor_https: Vec<SocketAddr> = members
        .iter()
        .filter(|m| m.id != victim)
        .map(|m| m.http)
        .collect();

    let schedule = Schedule::from_now(lead, window);
    let deadline = Instant::now() + lead + window + GRACE;
    let reading = start_reading(&server, all_of(topic, n), deadline);
    // A second consumer of the other partitions only: whether their lateness after the kill
    // is their broker's or comes from sharing a consumer with the killed partitions.
    let other_partitions: Vec<u32> = (0..PARTITIONS)
        .filter(|p| !killed_partitions.contains(p))
        .collect();
    let expected_killed = (0..n)
        .filter(|id| killed_partitions.contains(&(*id as u32 % PARTITIONS)))
        .count();
    let reading_others = start_reading(
        &server,
        Reads {
            topic: topic.to_owned(),
            partitions: other_partitions,
            n,
            want: n - expected_killed,
        },
        deadline,
    );
    println!(
        "== kill: {} records of {VALUE_BYTES} B over {PARTITIONS} partitions, due over {} s \
         opening {} s after production starts; 2 brokers, leases of 2 s; {victim} owns \
         partitions {killed_partitions:?} and is killed {} s into the window",
        thousands(n as u64),
        window.as_secs(),
        lead.as_secs(),
        KILL_AFTER.as_secs()
    );
    let took = produce("kill", &server, topic, n, schedule).await?;
    let left_ms = schedule.opens_ms() - now_ms();
    println!(
        "produced {} records in {:.1} s: {:.0} records/s; the window opens {:.1} s later",
        thousands(n as u64),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        left_ms as f64 / 1000.0
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("with everything pending: {}", broker_line(&https).await);
    let kill_ms = schedule.opens_ms() + KILL_AFTER.as_millis() as i64;
    while now_ms() + PROGRESS_EVERY.as_millis() as i64 <= kill_ms {
        tokio::time::sleep(PROGRESS_EVERY).await;
        eprintln!(
            "[kill] window +{:.0} s: delivered {} of {}; {}",
            (now_ms() - schedule.opens_ms()) as f64 / 1000.0,
            thousands(reading.delivered.load(Ordering::Relaxed) as u64),
            thousands(n as u64),
            broker_line(&https).await
        );
    }
    sleep_until_ms(kill_ms).await;
    let victim_member = members.iter().find(|m| m.id == victim);
    let victim_figures = victim_member
        .and_then(|m| m.pid)
        .map(|pid| (memory_mib(pid, "VmHWM"), cpu_seconds(pid)));
    let gets_before = storage_gets(&survivor_https).await;
    let killed_us = now_us();
    cluster.kill_broker(&victim).await?;
    eprintln!("[kill] killed {victim} (SIGKILL)");
    // Until another broker writes partition 0.
    let mut took_over_us = None;
    let takeover_deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < takeover_deadline {
        if let Ok(parts) = api.partitions(topic).await
            && parts.iter().any(|p| {
                p.partition == 0
                    && p.state == "Write"
                    && p.broker.as_deref().is_some_and(|b| b != victim)
            })
        {
            took_over_us = Some(now_us());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let survivor_pids: Vec<u32> = members
        .iter()
        .filter(|m| m.id != victim)
        .filter_map(|m| m.pid)
        .collect();
    watch(
        "kill",
        &reading,
        n,
        &survivor_https,
        schedule.opens_ms(),
        &survivor_pids,
    )
    .await?;
    let tally = reading.task.await??;
    let tally_others = reading_others.task.await??;

    // The new owner's first copy: the first on a killed partition after a pause of
    // OUTAGE_GAP_US that ends after the kill.
    let mut on_killed: Vec<i64> = tally
        .receipts
        .iter()
        .filter(|r| killed_partitions.contains(&r.0))
        .map(|r| r.1)
        .collect();
    on_killed.sort_unstable();
    let first_new = on_killed
        .windows(2)
        .find(|w| w[1] > killed_us && w[1] - w[0] >= OUTAGE_GAP_US)
        .map(|w| w[1])
        .or_else(|| on_killed.iter().copied().find(|t| *t > killed_us));
    println!(
        "{victim} killed {:.1} s into the window; partition 0 written by another broker {} \
         later; its first copy on {victim}'s partitions received {} after the kill",
        KILL_AFTER.as_secs_f64(),
        took_over_us.map_or("not within 60 s".to_owned(), |t| format!(
            "{:.2} s",
            (t - killed_us) as f64 / 1e6
        )),
        first_new.map_or("never".to_owned(), |t| format!(
            "{:.2} s",
            (t - killed_us) as f64 / 1e6
        )),
    );
    for m in members.iter().filter(|m| m.id != victim) {
        takeover_from_log(&cluster.log_of(&m.id), topic, &killed_partitions, killed_us);
    }
    println!(
        "storage GETs by the surviving broker from the kill to the end: {:.0}",
        storage_gets(&survivor_https).await - gets_before
    );
    header();
    let all: Vec<_> = tally.receipts.iter().collect();
    let of_killed: Vec<_> = all
        .iter()
        .copied()
        .filter(|r| killed_partitions.contains(&r.0))
        .collect();
    let of_others: Vec<_> = all
        .iter()
        .copied()
        .filter(|r| !killed_partitions.contains(&r.0))
        .collect();
    row("all", &all, n, tally.duplicates);
    row(
        &format!("killed {victim}'s partitions"),
        &of_killed,
        expected_killed,
        0,
    );
    let killed_ms = killed_us / 1_000;
    let due_in_outage: Vec<_> = of_killed
        .iter()
        .copied()
        .filter(|r| r.3 <= first_new.unwrap_or(i64::MAX) / 1_000 && r.3 >= killed_ms)
        .collect();
    let expected_in_outage = due_in_outage.len();
    row(
        "  of them due in the outage",
        &due_in_outage,
        expected_in_outage,
        0,
    );
    let due_after: Vec<_> = of_killed
        .iter()
        .copied()
        .filter(|r| r.3 > first_new.unwrap_or(i64::MAX) / 1_000)
        .collect();
    let expected_after = due_after.len();
    row("  of them due after it", &due_after, expected_after, 0);
    row("the other partitions", &of_others, n - expected_killed, 0);
    let alone: Vec<_> = tally_others.receipts.iter().collect();
    row(
        "  read by a consumer of their own",
        &alone,
        n - expected_killed,
        tally_others.duplicates,
    );
    println!(
        "(duplicates are counted over all records: {}; missing per row counts records never \
         delivered, except in the outage rows, which count only what arrived)",
        tally.duplicates
    );
    checks(&tally);
    by_due(
        &[
            (&format!("killed {victim}'s partitions"), &of_killed),
            ("the other partitions", &of_others),
            ("  by a consumer of their own", &alone),
        ],
        schedule.opens_ms(),
        2_000,
        (schedule.window_ms + 1_999) / 2_000,
    );
    if let Some((peak, cpu)) = victim_figures {
        println!("{victim} before the kill: RSS peak {peak:.0} MiB, CPU {cpu:.1} s");
    }
    for m in members.iter().filter(|m| m.id != victim) {
        if let Some(pid) = m.pid {
            println!(
                "{} (took over): RSS peak {:.0} MiB, CPU {:.1} s over the whole phase",
                m.id,
                memory_mib(pid, "VmHWM"),
                cpu_seconds(pid)
            );
        }
    }
    println!("at the end: {}", broker_line(&survivor_https).await);
    println!("logs in {}", cluster.logs());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let phases = std::env::var("DELAY_PHASES").unwrap_or_else(|_| "steady,kill".to_owned());
    for phase in phases.split(',').map(str::trim) {
        match phase {
            "steady" => steady().await?,
            "kill" => kill().await?,
            other => anyhow::bail!("DELAY_PHASES: unknown phase `{other}` (steady, kill)"),
        }
    }
    Ok(())
}
