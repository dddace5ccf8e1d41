use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use strata_client::{Ack, Compression, Partitioner, Producer, ProducerConfig, ProducerRecord};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::ProduceArgs;

/// Acknowledgements awaited at once; more lines wait until some arrive.
const MAX_PENDING: usize = 100_000;

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let acks: Ack = args
        .acks
        .parse()
        .map_err(|e: String| anyhow!("--acks: {e}"))?;
    let compression: Compression = args
        .compression
        .parse()
        .map_err(|e: String| anyhow!("--compression: {e}"))?;
    let partitioner = match args.partitioner.as_str() {
        "round-robin" | "roundrobin" => Partitioner::RoundRobin,
        "sticky" | "default" => Partitioner::Default,
        other => anyhow::bail!("--partitioner {other}: use round-robin or sticky"),
    };
    let config = ProducerConfig {
        acks,
        compression,
        partitioner,
        batch_size: args.batch_bytes.max(1),
        linger: Duration::from_millis(args.linger_ms),
        ..ProducerConfig::default()
    };
    let producer = Producer::builder(&args.server.server)
        .config(config)
        .build()
        .await?;
    // Fail on an unknown topic before reading any input.
    producer
        .partitions(&args.topic)
        .await
        .with_context(|| format!("cannot produce to `{}`", args.topic))?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending = FuturesUnordered::new();
    let (mut messages, mut bytes, mut acked) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    while let Some(line) = lines.next_line().await? {
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_owned())), Bytes::from(v.to_owned())),
                None => (None, Bytes::from(line)),
            },
            None => (None, Bytes::from(line)),
        };
        bytes += value.len() as u64;
        messages += 1;
        let mut record = ProducerRecord::new(args.topic.clone(), value);
        record.key = key;
        record.partition = args.partition;
        pending.push(producer.enqueue(record).await?);
        // Collect acknowledgements as they come, so an error stops the input early.
        while let Some(Some(done)) = futures::FutureExt::now_or_never(pending.next()) {
            done?;
            acked += 1;
        }
        while pending.len() >= MAX_PENDING {
            if let Some(done) = pending.next().await {
                done?;
                acked += 1;
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            eprintln!("… {messages} messages read, {acked} acknowledged");
            last_progress = Instant::now();
        }
    }
    producer.flush().await?;
    while let Some(done) = pending.next().await {
        done?;
    }
    producer.close().await?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "sent {messages} messages ({:.2} MB) to {} in {secs:.2} s: {:.0} msg/s, {:.2} MB/s",
        bytes as f64 / 1e6,
        args.topic,
        messages as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
