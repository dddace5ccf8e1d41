//! The load: one SDK producer driven as fast as it takes records or at a fixed rate, with an
//! SDK consumer tailing the topic for end-to-end latency.

mod acks;
mod brokers;
mod stamp;
mod tail;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use strata_client::{Ack, DeliveryFuture, Partitioner, Producer, ProducerConfig, ProducerRecord};
use tokio::sync::mpsc;

pub use self::acks::{AckLog, collect};
pub use self::brokers::{BrokerCounters, BrokerRates, wait_for_quiet_storage};
pub use self::stamp::{STAMP_BYTES, template};
use self::tail::Tail;
use crate::stats::{CpuSample, CpuUse, MB, Percentiles, Progress};

/// Producers still unacknowledged this long after the window are given up on.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

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
    /// Counters scraped from every broker's `/metrics`.
    pub broker: Option<BrokerRates>,
}

/// A producer with the bench's settings: 64 MiB of buffer, and requests big enough for the
/// largest message size.
pub async fn producer(
    server: &str,
    ack: Ack,
    linger: Duration,
    partitioner: Partitioner,
) -> anyhow::Result<Producer> {
    let config = ProducerConfig {
        acks: ack,
        linger,
        partitioner,
        buffer_memory: 64 << 20,
        // 16 KiB records and their framing must fit one batch.
        max_request_size: 1 << 20,
        ..ProducerConfig::default()
    };
    Ok(crate::credentials::producer(server)
        .config(config)
        .build()
        .await?)
}

/// Runs the producer (and the tailing consumer) for warm-up + window and reports on the window.
pub async fn run(
    spec: &LoadSpec,
    brokers_http: &[String],
    progress: &mut Progress,
) -> anyhow::Result<LoadResult> {
    let producer = producer(&spec.server, spec.ack, spec.linger, spec.partitioner).await?;
    let partitions = producer.partitions(&spec.topic).await?;
    if partitions != spec.partitions {
        anyhow::bail!(
            "topic {} has {partitions} partitions, expected {}",
            spec.topic,
            spec.partitions
        );
    }
    let tail = if spec.e2e {
        Some(Tail::start(&spec.server, &spec.topic, spec.partitions).await?)
    } else {
        None
    };
    let started = Instant::now();
    let window = started + spec.warmup..started + spec.warmup + spec.measure;
    if let Some(tail) = &tail {
        tail.measure(window.clone());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(started, rx));
    let sent = send(spec, &producer, tx, started, brokers_http, progress).await?;

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
    let e2e = match tail {
        Some(tail) => {
            // Let the consumer see the last committed records of the window.
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some(Percentiles::from_us(&mut tail.stop().await?))
        }
        None => None,
    };

    let ack = log.latency_within(spec.warmup..spec.warmup + spec.measure);
    let secs = spec.measure.as_secs_f64();
    Ok(LoadResult {
        target_msgs_per_s: spec.rate,
        acked_msgs: ack.samples,
        msgs_per_s: ack.samples as f64 / secs,
        mb_per_s: (ack.samples as f64 * spec.size as f64) / MB / secs,
        ack,
        e2e,
        errors: log.errors,
        first_error: log.first_error,
        behind_schedule_ms: spec.rate.map(|_| sent.behind.as_secs_f64() * 1e3),
        cpu: sent.cpu,
        broker: BrokerCounters::rates(sent.brokers_before, sent.brokers_after, secs),
    })
}

/// What the sender saw of the measured window.
struct Sent {
    cpu: CpuUse,
    brokers_before: Option<BrokerCounters>,
    brokers_after: Option<BrokerCounters>,
    /// The furthest the sender fell behind its schedule inside the window.
    behind: Duration,
}

/// Enqueues records until the window ends, at `spec.rate` or as fast as the producer takes
/// them, handing each acknowledgement to `acks`.
async fn send(
    spec: &LoadSpec,
    producer: &Producer,
    acks: mpsc::UnboundedSender<(Instant, DeliveryFuture)>,
    started: Instant,
    brokers_http: &[String],
    progress: &mut Progress,
) -> anyhow::Result<Sent> {
    let value = template(spec.size);
    let warm_end = started + spec.warmup;
    let end = warm_end + spec.measure;
    let http = reqwest::Client::new();
    let (mut brokers_before, mut cpu_before) = (None, None);
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
            brokers_before = BrokerCounters::scrape(&http, brokers_http).await;
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
            stamp::stamped(&value, at)
        } else {
            value.clone()
        };
        let ack = producer
            .enqueue(ProducerRecord::new(spec.topic.clone(), record_value))
            .await
            .with_context(|| format!("enqueue to {} failed", spec.topic))?;
        if acks.send((at, ack)).is_err() {
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
    Ok(Sent {
        cpu: CpuSample::since(cpu_before, CpuSample::now()),
        brokers_before,
        brokers_after: BrokerCounters::scrape(&http, brokers_http).await,
        behind,
    })
}

/// Sends one durable record to every partition and waits for them all: each ack means
/// everything before it in its partition is committed. Then waits for the brokers' buffers
/// to be empty (when their metrics are known).
async fn settle(spec: &LoadSpec, brokers_http: &[String]) -> anyhow::Result<()> {
    let producer = producer(&spec.server, Ack::Durable, Duration::ZERO, spec.partitioner).await?;
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
        match brokers::buffered_bytes(&http, brokers_http).await {
            Some(b) if b > 0.0 => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => break,
        }
    }
    Ok(())
}
