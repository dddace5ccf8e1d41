//! What tag and property filtering save the client and cost the proxy.
//!
//! A `strata standalone`; 4 partitions get `TAG_FILTER_MB` (default 256) of 1 KiB records
//! (text that compresses about 2:1), a tenth tagged `rare` and the rest `common`,
//! uncompressed and then lz4; each also has an `amount` header, 0 to 99. Each topic is read
//! whole five times by the SDK from the proxy's cache: with `*`, with `rare`, with `common`,
//! and with the property filters `amount < 10` and `amount >= 10` (the same shares). For each read it prints the batch bytes
//! the proxy sent (`strata_proxy_fetched_bytes_total`), the records, the rate and the server
//! process's CPU (from /proc: the broker is idle during a read, so it is the proxy's), also
//! as seconds per GB of records read. Asserts nothing: the figures go to `docs/benchmarks.md`.
//!
//! `cargo bench -p strata-integration-tests --bench tag_filter` (the release binary; set
//! `STRATA_TEST_BIN` for another).

// A benchmark measures real time against a real server.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use strata_client::{
    Admin, Compression, Consumer, Offset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use strata_integration_tests::cli::metrics;
use strata_integration_tests::measure::cpu_seconds;
use strata_testkit::{StrataServer, log_dir, strata_binary, target_tmp_dir};

const PARTITIONS: u32 = 4;
const RECORD_BYTES: usize = 1024;
/// (tags, property filter) of each measured read: everything, then a tenth and nine tenths
/// by tag, then the same shares by an `amount` header (0 to 99).
const SELECTORS: [(&str, &str); 5] = [
    ("*", ""),
    ("rare", ""),
    ("common", ""),
    ("*", "amount < 10"),
    ("*", "amount >= 10"),
];

/// The proxy's count of batch bytes sent to consumers.
async fn fetched_bytes(http: std::net::SocketAddr) -> anyhow::Result<f64> {
    let page = metrics(http).await?;
    page.lines()
        .find(|l| l.starts_with("strata_proxy_fetched_bytes_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .context("no strata_proxy_fetched_bytes_total on the proxy's /metrics")
}

struct Server {
    grpc: String,
    http: std::net::SocketAddr,
    pid: u32,
}

struct Read {
    records: u64,
    sent: f64,
    elapsed: Duration,
    cpu: f64,
}

/// Reads every partition of `topic` from the start to its end with `tags` and the property
/// filter `filter`.
async fn read_all(
    server: &Server,
    topic: &str,
    (tags, filter): (&str, &str),
    ends: &[i64],
) -> anyhow::Result<Read> {
    let mut consumer = Consumer::builder(&server.grpc)
        .auto_offset_reset(Offset::Earliest)
        .tags(tags)
        .filter(filter)
        .build()
        .await?;
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(partitions.clone()).await?;
    let cpu_before = cpu_seconds(server.pid);
    let sent_before = fetched_bytes(server.http).await?;
    let started = Instant::now();
    let mut records = 0u64;
    let deadline = started + Duration::from_secs(300);
    loop {
        records += consumer.poll(Duration::from_millis(200)).await?.len() as u64;
        let done = partitions
            .iter()
            .zip(ends)
            .all(|(tp, end)| consumer.position(tp).is_some_and(|p| p >= *end));
        anyhow::ensure!(
            Instant::now() < deadline,
            "the read did not finish in 300 s"
        );
        if done {
            break;
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(server.pid) - cpu_before;
    let sent = fetched_bytes(server.http).await? - sent_before;
    consumer.close().await?;
    Ok(Read {
        records,
        sent,
        elapsed,
        cpu,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let megabytes: usize = std::env::var("TAG_FILTER_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let logs = log_dir(&target_tmp_dir()?, "tag-filter")?;
    let data = tempfile::tempdir()?;
    let binary = strata_binary()?;
    eprintln!("[tags] strata standalone from {}", binary.display());
    // A cache big enough for every topic, so the reads measure filtering, not storage.
    let config = logs.join("tag-filter.toml");
    std::fs::write(
        &config,
        format!("[proxy]\ncache_bytes = {}\n", 4 * megabytes * 1024 * 1024),
    )?;
    let process = StrataServer::standalone_with(
        &binary,
        data.path(),
        &logs,
        &["--config".into(), config.display().to_string()],
    )?;
    let server = Server {
        grpc: process.addr().to_string(),
        http: process
            .listener("--proxy-http-addr")
            .context("no proxy HTTP listener")?,
        pid: process.pid().context("no server pid")?,
    };
    let grpc = server.grpc.clone();
    let admin = Admin::connect(&grpc).await?;
    let records = megabytes * 1024 * 1024 / RECORD_BYTES;
    println!(
        "{:>6}  {:>18}  {:>9}  {:>9}  {:>6}  {:>10}  {:>10}  {:>13}",
        "codec",
        "selector",
        "records",
        "sent MB",
        "saved",
        "records/s",
        "proxy CPU",
        "CPU s per GB"
    );
    for compression in [Compression::None, Compression::Lz4] {
        let topic = format!("tags-{compression}");
        admin.create_topic(&topic, PARTITIONS).await?;
        let producer = Producer::builder(&grpc)
            .config(ProducerConfig {
                compression,
                linger: Duration::from_millis(5),
                ..ProducerConfig::default()
            })
            .build()
            .await?;
        let mut acks = Vec::with_capacity(records);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..records {
            let tag = if i % 10 == 0 { "rare" } else { "common" };
            // Hex digits of a simple generator: text that compresses about 2:1, like JSON.
            let body: String = (0..(RECORD_BYTES - 16) / 16)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    format!("{:016x}", state >> 1)
                })
                .collect();
            let record = ProducerRecord::new(&topic, format!("{i:>12}{body}"))
                .with_tags([tag])
                .with_header("amount", (i % 100).to_string());
            acks.push(producer.enqueue(record).await?);
            if acks.len() >= 10_000 {
                for ack in acks.drain(..) {
                    ack.await?;
                }
            }
        }
        for ack in acks {
            ack.await?;
        }
        producer.close().await?;
        let mut ends = Vec::new();
        for p in 0..PARTITIONS {
            ends.push(
                admin
                    .list_offset(&TopicPartition::new(&topic, p), Offset::Latest)
                    .await?,
            );
        }
        // A first read fills the proxy's cache; the measured ones all read from it.
        read_all(&server, &topic, ("*", ""), &ends).await?;
        let mut whole = None;
        for selector in SELECTORS {
            let read = read_all(&server, &topic, selector, &ends).await?;
            let whole_sent = *whole.get_or_insert(read.sent);
            let read_gb = (records * RECORD_BYTES) as f64 / 1e9;
            println!(
                "{:>6}  {:>18}  {:>9}  {:>9.1}  {:>5.0}%  {:>10.0}  {:>9.2}s  {:>13.2}",
                compression.to_string(),
                if selector.1.is_empty() {
                    selector.0
                } else {
                    selector.1
                },
                read.records,
                read.sent / 1e6,
                100.0 * (1.0 - read.sent / whole_sent),
                records as f64 / read.elapsed.as_secs_f64(),
                read.cpu,
                read.cpu / read_gb,
            );
        }
    }
    Ok(())
}
