use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use strata_proto::v1::{self, strata_client::StrataClient};
use strata_storage::{BatchOptions, Record, encode_batch};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::cli::ProduceArgs;

/// Kafka's default partitioner hash (murmur2, seed 0x9747b28c), so keyed messages land on the
/// partition a Kafka client would pick.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions
}

pub async fn connect(server: &str) -> anyhow::Result<StrataClient<Channel>> {
    let client = StrataClient::connect(format!("http://{server}"))
        .await
        .with_context(|| format!("cannot reach the proxy at {server}; is `strata standalone` (or a proxy) running? pass --server"))?;
    Ok(client.max_decoding_message_size(64 << 20))
}

pub async fn partitions(client: &mut StrataClient<Channel>, topic: &str) -> anyhow::Result<u32> {
    let metadata = client
        .metadata(v1::MetadataRequest {
            topics: vec![topic.to_owned()],
        })
        .await?
        .into_inner();
    let topic_meta = metadata
        .topics
        .into_iter()
        .next()
        .context("the proxy returned no metadata")?;
    if let Some(e) = topic_meta.error {
        bail!("{}: {}", e.code, e.message);
    }
    Ok(topic_meta.partitions.len() as u32)
}

/// Sends one partition's batches in order, one request at a time (so order is kept), with an
/// idempotent producer id so a retried request is never written twice.
async fn send_partition(
    mut client: StrataClient<Channel>,
    topic: String,
    partition: u32,
    ack: v1::Ack,
    producer_id: i64,
    mut batches: mpsc::Receiver<Vec<Record>>,
) -> anyhow::Result<()> {
    let mut sequence = 0i32;
    while let Some(records) = batches.recv().await {
        let options = BatchOptions {
            producer_id,
            producer_epoch: 0,
            base_sequence: sequence,
            ..Default::default()
        };
        let batch = encode_batch(&records, &options)?.to_bytes();
        sequence = sequence.wrapping_add(records.len() as i32);
        let mut attempt = 0;
        loop {
            let request = v1::ProduceRequest {
                ack: ack as i32,
                partitions: vec![v1::PartitionBatches {
                    topic: topic.clone(),
                    partition,
                    batches: vec![batch.clone()],
                    leader_epoch: 0,
                }],
            };
            match client.produce(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    let result = response
                        .partitions
                        .first()
                        .and_then(|p| p.batches.first())
                        .context("empty produce answer")?;
                    if let Some(e) = &result.error {
                        bail!("partition {partition}: {}: {}", e.code, e.message);
                    }
                    break;
                }
                Err(status) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(partition, %status, attempt, "produce failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(status) => bail!("partition {partition}: {}", status.message()),
            }
        }
    }
    Ok(())
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let ack = match args.acks.as_str() {
        "durable" | "all" => v1::Ack::Durable,
        "buffered" | "1" => v1::Ack::Buffered,
        "none" | "0" => v1::Ack::None,
        other => bail!("--acks {other}: use durable, buffered or none"),
    };
    let batch_size = args.batch_size.max(1);
    let mut client = connect(&args.server).await?;
    let partitions = partitions(&mut client, &args.topic).await?;
    let producer_id = (rand::random::<u64>() >> 2) as i64;
    let mut senders = Vec::new();
    let mut tasks = JoinSet::new();
    for p in 0..partitions {
        let (tx, rx) = mpsc::channel(4);
        senders.push(tx);
        tasks.spawn(send_partition(
            client.clone(),
            args.topic.clone(),
            p,
            ack,
            producer_id,
            rx,
        ));
    }
    let mut pending: Vec<Vec<Record>> = vec![Vec::new(); partitions as usize];
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut sticky = 0u32;
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
        let partition = match &key {
            Some(k) => partition_for_key(k, partitions),
            None => sticky,
        };
        bytes += value.len() as u64;
        messages += 1;
        let timestamp = strata_storage::clock::unix_millis();
        pending[partition as usize].push(Record {
            timestamp,
            key,
            value: Some(value),
            ..Record::default()
        });
        if pending[partition as usize].len() >= batch_size {
            let full = std::mem::take(&mut pending[partition as usize]);
            if senders[partition as usize].send(full).await.is_err() {
                break; // the sender failed; its error is reported below
            }
            if args.key_separator.is_none() {
                sticky = (sticky + 1) % partitions;
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            eprintln!("… {messages} messages read");
            last_progress = Instant::now();
        }
    }
    for (p, records) in pending.into_iter().enumerate() {
        if !records.is_empty() {
            let _ = senders[p].send(records).await;
        }
    }
    drop(senders);
    while let Some(done) = tasks.join_next().await {
        done??;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Kafka's own partitioner tests (`Utils.murmur2`).
    #[test]
    fn murmur2_matches_kafka() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
