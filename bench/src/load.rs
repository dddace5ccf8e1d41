//! The load: one SDK producer driven as fast as it takes records or at a fixed rate, an SDK
//! consumer tailing the topic for end-to-end latency, and raw fetches reading a topic back.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use strata_client::{
    Ack, Connection, Consumer, ConsumerConfig, DeliveryFuture, Offset, Partitioner, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};
use strata_proto::v1;
use strata_storage::RecordBatch;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::baseline::fill_random;
use super::stats::{CpuSample, CpuUse, MB, Percentiles, Progress, micros};

/// Bytes at the start of every value holding its send time, for end-to-end latency.
pub const STAMP_BYTES: usize = 8;
/// Producers still unacknowledged this long after the window are given up on.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The instant send times are counted from (the process shares one clock, so the consumer
/// can subtract the producer's stamp).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn stamp(at: Instant) -> [u8; STAMP_BYTES] {
    let nanos = u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(0);
    nanos.to_le_bytes()
}

fn unstamp(value: &[u8]) -> Option<Instant> {
    let raw: [u8; STAMP_BYTES] = value.get(..STAMP_BYTES)?.try_into().ok()?;
    Some(epoch() + Duration::from_nanos(u64::from_le_bytes(raw)))
}

pub fn ack_name(ack: Ack) -> &'static str {
    match ack {
        Ack::Durable => "durable",
        Ack::Buffered => "buffered",
        Ack::None => "none",
    }
}

/// One producer run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub server: String,
    pub topic: String,
    pub partitions: u32,
    pub size: usize,
    pub ack: Ack,
    /// Records per second; `None`: as fast as the producer takes them.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub measure: Duration,
    pub linger: Duration,
    pub partitioner: Partitioner,
    /// Tail the topic with a consumer and measure produce → consume latency.
    pub e2e: bool,
    /// What the progress line calls this run.
    pub label: String,
}

/// Counters scraped from every broker's `/metrics`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct BrokerRates {
    pub flushes_per_s: f64,
    pub puts_per_s: f64,
    pub txns_per_s: f64,
    pub segment_mb_per_s: f64,
    /// Mean object size: how much each PUT carried.
    pub bytes_per_put: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadResult {
    /// Records per second asked for (`None`: as fast as possible).
    pub target_msgs_per_s: Option<f64>,
    /// Acknowledged inside the measured window.
    pub acked_msgs: u64,
    pub msgs_per_s: f64,
    /// Acknowledged value bytes per second; MB = 10^6 bytes.
    pub mb_per_s: f64,
    /// `enqueue` → acknowledgement, for records acknowledged inside the window.
    pub ack: Percentiles,
    /// `enqueue` → the consumer's `poll` returned it.
    pub e2e: Option<Percentiles>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// How far the generator fell behind its schedule at worst (rate-limited runs): above a
    /// few ms the asked-for rate was not kept.
    pub behind_schedule_ms: Option<f64>,
    pub cpu: CpuUse,
    pub broker: Option<BrokerRates>,
}

/// Acknowledgements as they arrive, kept for the caller to cut into windows.
#[derive(Debug, Default)]
pub struct AckLog {
    /// (acknowledged at, µs since the run started; latency µs; offset)
    pub acks: Vec<(u64, u32, i64)>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// When each error arrived, µs since the run started.
    pub error_times: Vec<u64>,
}

/// Awaits every acknowledgement it is handed, noting when it came.
pub async fn collect(
    started: Instant,
    mut rx: mpsc::UnboundedReceiver<(Instant, DeliveryFuture)>,
) -> AckLog {
    let mut log = AckLog::default();
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            next = rx.recv(), if open => match next {
                Some((at, ack)) => pending.push(async move { (at, ack.await) }),
                None => open = false,
            },
            Some((at, answer)) = pending.next(), if !pending.is_empty() => {
                let now = Instant::now();
                let since = u64::try_from((now - started).as_micros()).unwrap_or(u64::MAX);
                match answer {
                    Ok(meta) => log.acks.push((since, micros(now - at), meta.offset)),
                    Err(e) => {
                        log.errors += 1;
                        log.error_times.push(since);
                        log.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }
    }
    log
}

pub fn producer_config(ack: Ack, linger: Duration, partitioner: Partitioner) -> ProducerConfig {
    ProducerConfig {
        acks: ack,
        linger,
        partitioner,
        buffer_memory: 64 << 20,
        // 16 KiB records and their framing must fit one batch.
        max_request_size: 1 << 20,
        ..ProducerConfig::default()
    }
}

/// A value of `size` bytes, random after the stamp.
pub fn template(size: usize) -> Bytes {
    let mut value = vec![0u8; size.max(STAMP_BYTES)];
    fill_random(&mut value, size as u64);
    Bytes::from(value)
}

pub fn stamped(template: &Bytes, at: Instant) -> Bytes {
    let mut value = BytesMut::from(&template[..]);
    value[..STAMP_BYTES].copy_from_slice(&stamp(at));
    value.freeze()
}

/// Scrapes the counters of every broker; `None` when one does not answer.
pub async fn scrape_brokers(http: &reqwest::Client, addrs: &[String]) -> Option<[f64; 5]> {
    if addrs.is_empty() {
        return None;
    }
    let mut sum = [0.0; 5];
    for addr in addrs {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        for line in text.lines() {
            let Some((name, value)) = line.split_once(' ') else {
                continue;
            };
            let i = match name {
                "strata_broker_flushes_total" => 0,
                "strata_broker_segment_puts_total" => 1,
                "strata_broker_commit_txns_total" => 2,
                "strata_broker_segment_bytes_total" => 3,
                _ => continue,
            };
            sum[i] += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    sum[4] = 1.0; // present
    Some(sum)
}

fn rates(before: Option<[f64; 5]>, after: Option<[f64; 5]>, secs: f64) -> Option<BrokerRates> {
    let (a, b) = (before?, after?);
    let d = |i: usize| (b[i] - a[i]).max(0.0) / secs;
    let puts = d(1);
    Some(BrokerRates {
        flushes_per_s: d(0),
        puts_per_s: puts,
        txns_per_s: d(2),
        segment_mb_per_s: d(3) / MB,
        bytes_per_put: if puts > 0.0 { d(3) / puts } else { 0.0 },
    })
}

/// Runs the producer (and the tailing consumer) for warm-up + window and reports on the window.
pub async fn run(
    spec: &LoadSpec,
    brokers_http: &[String],
    progress: &mut Progress,
) -> anyhow::Result<LoadResult> {
    let producer = Producer::builder(&spec.server)
        .config(producer_config(spec.ack, spec.linger, spec.partitioner))
        .build()
        .await?;
    let partitions = producer.partitions(&spec.topic).await?;
    if partitions != spec.partitions {
        anyhow::bail!(
            "topic {} has {partitions} partitions, expected {}",
            spec.topic,
            spec.partitions
        );
    }
    let cancel = CancellationToken::new();
    let mut tasks: JoinSet<anyhow::Result<Vec<u32>>> = JoinSet::new();
    let (warm_tx, warm_rx) = tokio::sync::watch::channel(None::<(Instant, Instant)>);
    if spec.e2e {
        let ready = tail(spec, cancel.clone(), warm_rx, &mut tasks).await?;
        ready
            .await
            .context("the tailing consumer stopped before it was ready")?;
    }

    let value = template(spec.size);
    let started = Instant::now();
    let warm_end = started + spec.warmup;
    let end = warm_end + spec.measure;
    let _ = warm_tx.send(Some((warm_end, end)));
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(started, rx));
    let http = reqwest::Client::new();
    let mut scraped_before = None;
    let mut cpu_before = None;
    let mut in_window = false;
    let mut sent = 0u64;
    let mut behind = Duration::ZERO;
    let mut last_show = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !in_window && now >= warm_end {
            in_window = true;
            cpu_before = CpuSample::now();
            scraped_before = scrape_brokers(&http, brokers_http).await;
        }
        if let Some(rate) = spec.rate {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            if due > now {
                tokio::time::sleep_until(due.into()).await;
                continue;
            }
            if in_window {
                behind = behind.max(now - due);
            }
        }
        let at = Instant::now();
        let record_value = if spec.e2e {
            stamped(&value, at)
        } else {
            value.clone()
        };
        let ack = producer
            .enqueue(ProducerRecord::new(spec.topic.clone(), record_value))
            .await
            .with_context(|| format!("enqueue to {} failed", spec.topic))?;
        if tx.send((at, ack)).is_err() {
            anyhow::bail!("the acknowledgement collector stopped early");
        }
        sent += 1;
        if sent.is_multiple_of(256) {
            // The producer never waits while its buffer has room; let the sender and the
            // collector run on this worker too.
            tokio::task::yield_now().await;
            if last_show.elapsed() >= Duration::from_millis(250) {
                last_show = Instant::now();
                let phase = if in_window { "measuring" } else { "warming up" };
                progress.update(&format!(
                    "{}: {phase} {:.1}/{:.1} s, {sent} sent",
                    spec.label,
                    started.elapsed().as_secs_f64(),
                    (end - started).as_secs_f64()
                ));
            }
        }
    }
    let cpu = CpuSample::since(cpu_before, CpuSample::now());
    let scraped_after = scrape_brokers(&http, brokers_http).await;
    drop(tx);
    let flushed = tokio::time::timeout(DRAIN_LIMIT, producer.flush()).await;
    let log = match tokio::time::timeout(DRAIN_LIMIT, collector).await {
        Ok(joined) => joined?,
        Err(_) => anyhow::bail!("acknowledgements still missing {DRAIN_LIMIT:?} after the run"),
    };
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::warn!(topic = %spec.topic, "producer flush did not finish");
    }
    let _ = producer.close().await;
    if spec.ack != Ack::Durable {
        // Buffered and none leave data in the brokers' buffers; the next run must not pay
        // for flushing it.
        progress.update(&format!("{}: waiting for the brokers to flush", spec.label));
        settle(spec, brokers_http).await?;
    }
    // Let the consumer see the last committed records of the window.
    if spec.e2e {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cancel.cancel();
    let mut e2e_samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        e2e_samples.extend(joined??);
    }

    let (w0, w1) = (
        u64::try_from(spec.warmup.as_micros()).unwrap_or(0),
        u64::try_from((spec.warmup + spec.measure).as_micros()).unwrap_or(0),
    );
    let mut latencies: Vec<u32> = log
        .acks
        .iter()
        .filter(|(t, _, _)| (w0..w1).contains(t))
        .map(|(_, l, _)| *l)
        .collect();
    let acked = latencies.len() as u64;
    let secs = spec.measure.as_secs_f64();
    Ok(LoadResult {
        target_msgs_per_s: spec.rate,
        acked_msgs: acked,
        msgs_per_s: acked as f64 / secs,
        mb_per_s: (acked as f64 * spec.size as f64) / MB / secs,
        ack: Percentiles::from_us(&mut latencies),
        e2e: spec.e2e.then(|| Percentiles::from_us(&mut e2e_samples)),
        errors: log.errors,
        first_error: log.first_error,
        behind_schedule_ms: spec.rate.map(|_| behind.as_secs_f64() * 1e3),
        cpu,
        broker: rates(scraped_before, scraped_after, secs),
    })
}

/// Sends one durable record to every partition and waits for them all: each ack means
/// everything before it in its partition is committed. Then waits for the brokers' buffers
/// to be empty (when their metrics are known).
async fn settle(spec: &LoadSpec, brokers_http: &[String]) -> anyhow::Result<()> {
    let producer = Producer::builder(&spec.server)
        .config(producer_config(
            Ack::Durable,
            Duration::ZERO,
            spec.partitioner,
        ))
        .build()
        .await?;
    let value = template(spec.size);
    let mut acks = Vec::with_capacity(spec.partitions as usize);
    for p in 0..spec.partitions {
        let record = ProducerRecord::new(spec.topic.clone(), value.clone()).with_partition(p);
        acks.push(producer.enqueue(record).await?);
    }
    let barrier = async {
        for ack in acks {
            ack.await?;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(120), barrier)
        .await
        .context("the brokers did not flush the previous run within 120 s")??;
    let _ = producer.close().await;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match buffered_bytes(&http, brokers_http).await {
            Some(b) if b > 0.0 => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => break,
        }
    }
    Ok(())
}

/// Bytes waiting in every broker's buffers.
async fn buffered_bytes(http: &reqwest::Client, addrs: &[String]) -> Option<f64> {
    let mut sum = 0.0;
    for addr in addrs {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        sum += text
            .lines()
            .filter_map(|l| l.strip_prefix("strata_broker_buffered_bytes "))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum::<f64>();
    }
    (!addrs.is_empty()).then_some(sum)
}

/// Waits until the proxy serves `topic` (its routing table follows the metadata store a
/// moment after a topic is created).
pub async fn wait_known(server: &str, topic: &str) -> anyhow::Result<()> {
    let admin = strata_client::Admin::connect(server).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match admin.describe_topic(topic).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e)
                    .with_context(|| format!("the proxy does not know {topic} after 30 s"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Starts a consumer on every partition from the current end; the returned future resolves
/// once its positions are set (so nothing produced after is missed). It records
/// produce → poll latency of records sent inside the window.
async fn tail(
    spec: &LoadSpec,
    cancel: CancellationToken,
    window: tokio::sync::watch::Receiver<Option<(Instant, Instant)>>,
    tasks: &mut JoinSet<anyhow::Result<Vec<u32>>>,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    let connection = Connection::connect(&spec.server).await?;
    let config = ConsumerConfig {
        client_id: "strata-bench".into(),
        auto_offset_reset: Offset::Latest,
        enable_auto_commit: false,
        max_poll_records: 10_000,
        fetch_max_wait: Duration::from_millis(500),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(connection, config)?;
    let all = (0..spec.partitions)
        .map(|p| TopicPartition::new(spec.topic.clone(), p))
        .collect();
    consumer.assign(all).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tasks.spawn(async move {
        // The first poll resolves every position to the current end.
        consumer.poll(Duration::from_millis(1)).await?;
        let _ = ready_tx.send(());
        let mut samples = Vec::new();
        loop {
            let records = tokio::select! {
                () = cancel.cancelled() => break,
                records = consumer.poll(Duration::from_millis(100)) => records?,
            };
            let now = Instant::now();
            let Some((warm_end, end)) = *window.borrow() else {
                continue;
            };
            for record in records {
                if let Some(sent) = record.value.as_deref().and_then(unstamp)
                    && sent >= warm_end
                    && sent < end
                {
                    samples.push(micros(now.saturating_duration_since(sent)));
                }
            }
        }
        let _ = consumer.close().await;
        Ok(samples)
    });
    Ok(ready_rx)
}

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
}

/// Reads up to `cap_bytes` of `topic` from offset 0 with raw fetches (`concurrency` partitions
/// at a time), twice: the first pass is cold, the second finds the same objects in the
/// proxy's read cache.
pub async fn consume(
    server: &str,
    topic: &str,
    partitions: u32,
    size: usize,
    cap_bytes: u64,
    progress: &mut Progress,
) -> anyhow::Result<ConsumeResult> {
    let connection = Connection::connect(server).await?;
    let per_partition = (cap_bytes / u64::from(partitions.max(1)) / size.max(1) as u64).max(1);
    let mut result = ConsumeResult {
        partitions,
        size,
        ..ConsumeResult::default()
    };
    for pass in 0..2 {
        progress.update(&format!(
            "consume {topic}: {} pass",
            if pass == 0 { "cold" } else { "cached" }
        ));
        let started = Instant::now();
        let concurrency = (partitions as usize).clamp(1, 32);
        let outcomes: Vec<anyhow::Result<(u64, u64)>> = futures::stream::iter(0..partitions)
            .map(|p| read_partition(connection.clone(), topic, p, per_partition))
            .buffer_unordered(concurrency)
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
        let read = ReadPass {
            mb_per_s: msgs as f64 * size as f64 / MB / secs,
            msgs,
            secs,
            fetches,
        };
        if pass == 0 {
            result.cold = read;
        } else {
            result.cached = read;
        }
    }
    Ok(result)
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
