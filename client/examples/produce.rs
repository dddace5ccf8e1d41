//! Sends COUNT records of SIZE bytes (default 1 KiB) to TOPIC as fast as the producer takes
//! them, then prints throughput and acknowledgement latency.
//!
//! ```text
//! cargo run --release -p strata-client --example produce -- 127.0.0.1:7070 TOPIC COUNT [SIZE] [ACKS] [COMPRESSION] [RATE]
//! ```
//!
//! ACKS is durable (default), buffered or none; COMPRESSION none (default), gzip, snappy, lz4
//! or zstd; RATE caps records per second (0, the default: as fast as possible). Latency is
//! measured from `enqueue` to the acknowledgement, so at full speed it is mostly the time a
//! record waits in the producer's buffer; a RATE below the maximum shows the round trip.

// An example program measures its own real elapsed time.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use strata_client::{Ack, Compression, DeliveryFuture, Producer, ProducerRecord};
use tokio::sync::mpsc;

const USAGE: &str = "usage: produce SERVER TOPIC COUNT [SIZE] [ACKS] [COMPRESSION] [RATE]";

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match args.get(i) {
        Some(s) => s
            .parse()
            .map_err(|e| anyhow::anyhow!("argument {i} (`{s}`): {e}\n{USAGE}")),
        None => default.ok_or_else(|| anyhow::anyhow!("{USAGE}")),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server: String = arg(&args, 0, None)?;
    let topic: String = arg(&args, 1, None)?;
    let count: usize = arg(&args, 2, None)?;
    let size: usize = arg(&args, 3, Some(1024))?;
    let acks: Ack = arg(&args, 4, Some(Ack::Durable))?;
    let compression: Compression = arg(&args, 5, Some(Compression::None))?;
    let rate: u64 = arg(&args, 6, Some(0))?;

    let producer = Producer::builder(&server)
        .acks(acks)
        .compression(compression)
        .build()
        .await?;
    let partitions = producer.partitions(&topic).await?;
    println!(
        "sending {count} records of {size} bytes to {topic} ({partitions} partitions), acks {acks:?}, compression {compression}"
    );

    // Acknowledgements are awaited by a task of their own, so a record's latency is measured
    // when its ack arrives, not when the sending loop gets round to looking.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, DeliveryFuture)>();
    let collector = tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        let mut latencies = Vec::with_capacity(count);
        let mut failures = 0usize;
        let mut first_error = None;
        let mut open = true;
        while open || !pending.is_empty() {
            tokio::select! {
                next = rx.recv(), if open => match next {
                    Some((start, ack)) => pending.push(async move { (start, ack.await) }),
                    None => open = false,
                },
                Some((start, answer)) = pending.next(), if !pending.is_empty() => match answer {
                    Ok(_) => latencies.push(start.elapsed()),
                    Err(e) => {
                        failures += 1;
                        first_error.get_or_insert(e);
                    }
                },
            }
        }
        (latencies, failures, first_error)
    });

    let value = Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    for i in 0..count {
        if rate > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let record = ProducerRecord::new(topic.clone(), value.clone());
        let enqueued = Instant::now();
        let ack = producer.enqueue(record).await?;
        if tx.send((enqueued, ack)).is_err() {
            anyhow::bail!("the acknowledgement collector stopped early");
        }
    }
    drop(tx);
    let (mut latencies, failures, first_error) = collector.await?;
    let elapsed = started.elapsed();
    producer.close().await?;

    latencies.sort_unstable();
    let secs = elapsed.as_secs_f64();
    let acked = latencies.len();
    println!(
        "{acked} acknowledged, {failures} failed in {secs:.2} s: {:.0} msgs/s, {:.1} MB/s",
        acked as f64 / secs,
        (acked * size) as f64 / secs / 1e6
    );
    println!(
        "ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    if let Some(e) = first_error {
        anyhow::bail!("{failures} records failed; the first: {e}");
    }
    Ok(())
}
