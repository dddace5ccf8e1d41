use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use strata_proto::v1::{self, strata_client::StrataClient};
use strata_storage::{RecordBatch, decode_batch};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::produce::{connect, partitions};
use crate::cli::ConsumeArgs;

async fn offset(
    client: &mut StrataClient<Channel>,
    topic: &str,
    partition: u32,
    timestamp: i64,
) -> anyhow::Result<i64> {
    let answer = client
        .list_offsets(v1::ListOffsetsRequest {
            topic: topic.into(),
            partition,
            timestamp,
        })
        .await?
        .into_inner();
    if let Some(e) = answer.error {
        bail!("partition {partition}: {}: {}", e.code, e.message);
    }
    Ok(answer.offset)
}

/// Fetches one partition forever from `offset`, sending each record's value in order.
async fn follow(
    mut client: StrataClient<Channel>,
    topic: String,
    partition: u32,
    mut offset: i64,
    values: mpsc::Sender<Vec<u8>>,
) -> anyhow::Result<()> {
    let mut failures = 0u32;
    loop {
        let request = v1::FetchRequest {
            topic: topic.clone(),
            partition,
            offset,
            max_bytes: 1 << 20,
            max_wait_ms: 500,
        };
        // Fetches are idempotent: ride out a proxy restart or a dropped connection, briefly.
        let answer = match client.fetch(request).await {
            Ok(answer) => {
                failures = 0;
                answer.into_inner()
            }
            Err(status) if failures < 10 => {
                failures += 1;
                tracing::warn!(partition, %status, failures, "fetch failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                continue;
            }
            Err(status) => bail!(
                "partition {partition}: fetch failed 10 times in a row: {}",
                status.message()
            ),
        };
        if let Some(e) = answer.error {
            if e.code == "OFFSET_OUT_OF_RANGE" {
                // Retention removed our position: continue from the oldest data, as Kafka's
                // auto.offset.reset=earliest would.
                offset = self::offset(&mut client, &topic, partition, -2).await?;
                continue;
            }
            bail!("partition {partition}: {}: {}", e.code, e.message);
        }
        for bytes in answer.batches {
            let batch = RecordBatch::parse(bytes)?;
            for record in decode_batch(&batch)? {
                if record.offset < offset {
                    continue;
                }
                offset = record.offset + 1;
                if values
                    .send(record.value.map(|v| v.to_vec()).unwrap_or_default())
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
    }
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.server).await?;
    let partitions = partitions(&mut client, &args.topic).await?;
    let (tx, mut rx) = mpsc::channel(1024);
    let mut tasks = JoinSet::new();
    for p in 0..partitions {
        let start = offset(
            &mut client,
            &args.topic,
            p,
            if args.from_beginning { -2 } else { -1 },
        )
        .await?;
        tasks.spawn(follow(
            client.clone(),
            args.topic.clone(),
            p,
            start,
            tx.clone(),
        ));
    }
    drop(tx);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut messages, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    let idle = args.timeout_ms.map(Duration::from_millis);
    loop {
        if args.max_messages.is_some_and(|max| messages >= max) {
            break;
        }
        let next = match idle {
            Some(idle) => match tokio::time::timeout(idle, rx.recv()).await {
                Ok(v) => v,
                Err(_) => break,
            },
            None => tokio::select! {
                v = rx.recv() => v,
                _ = tokio::signal::ctrl_c() => break,
            },
        };
        let Some(value) = next else {
            // Every fetcher stopped: report the first error.
            while let Some(done) = tasks.join_next().await {
                done??;
            }
            break;
        };
        out.write_all(&value)?;
        out.write_all(b"\n")?;
        messages += 1;
        bytes += value.len() as u64;
    }
    out.flush()?;
    tasks.abort_all();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "received {messages} messages ({:.2} MB) from {} in {secs:.2} s: {:.0} msg/s, {:.2} MB/s",
        bytes as f64 / 1e6,
        args.topic,
        messages as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
