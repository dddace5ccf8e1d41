//! The SDK producer against a whole in-process Strata: what it sends is read back with the
//! Fetch RPC and checked record by record.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use futures::FutureExt;
use strata_client::{
    Ack, Compression, Connection, Error, ErrorCode, Partitioner, Producer, ProducerRecord,
    partition_for_key,
};
use strata_format::{Record, RecordBatch, decode_batch};
use strata_integration_tests::InProcess;
use strata_proto::v1;

async fn create_topic(server: &InProcess, name: &str, partitions: u32) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/topics", server.admin))
        .json(&serde_json::json!({ "name": name, "partitions": partitions }))
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status.is_success(),
        "create {name}: {status} {}",
        response.text().await?
    );
    Ok(())
}

/// A stored batch with its records.
struct Stored {
    compression: Compression,
    records: Vec<Record>,
}

/// Reads `partition` from offset 0 until `count` records arrived (or 5 s passed).
async fn read_batches(
    server: &InProcess,
    topic: &str,
    partition: u32,
    count: usize,
) -> anyhow::Result<Vec<Stored>> {
    let mut grpc = Connection::connect(&server.proxy).await?.grpc();
    let mut batches = Vec::new();
    let mut seen = 0;
    let mut offset = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen < count {
        ensure!(
            Instant::now() < deadline,
            "{topic}/{partition}: only {seen} of {count} records arrived"
        );
        let answer = grpc
            .fetch(v1::FetchRequest {
                topic: topic.to_owned(),
                partition,
                offset,
                max_bytes: 4 << 20,
                max_wait_ms: 500,
                ..Default::default()
            })
            .await?
            .into_inner();
        if let Some(e) = answer.error {
            anyhow::bail!(
                "fetch {topic}/{partition}@{offset}: {}: {}",
                e.code,
                e.message
            );
        }
        for bytes in answer.batches {
            let batch = RecordBatch::parse(bytes)?;
            let records: Vec<Record> = decode_batch(&batch)?
                .into_iter()
                .filter(|r| r.offset >= offset)
                .collect();
            if let Some(last) = records.last() {
                offset = last.offset + 1;
            }
            seen += records.len();
            batches.push(Stored {
                compression: batch.compression(),
                records,
            });
        }
    }
    Ok(batches)
}

async fn read(
    server: &InProcess,
    topic: &str,
    partition: u32,
    count: usize,
) -> anyhow::Result<Vec<Record>> {
    Ok(read_batches(server, topic, partition, count)
        .await?
        .into_iter()
        .flat_map(|b| b.records)
        .collect())
}

fn text(bytes: &Option<Bytes>) -> String {
    bytes
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_codec_round_trips() -> anyhow::Result<()> {
    let server = InProcess::start().await?;
    create_topic(&server, "codecs", 1).await?;
    let mut expected = Vec::new();
    for codec in Compression::ALL {
        let producer = Producer::builder(&server.proxy)
            .compression(codec)
            .build()
            .await?;
        let mut acks = Vec::new();
        for i in 0..50 {
            let value = format!("{codec} record {i} {}", "compressible ".repeat(20));
            let record = ProducerRecord::new("codecs", value.clone())
                .with_key(format!("key-{i}"))
                .with_header("codec", codec.as_str())
                .with_timestamp(1_700_000_000_000 + i);
            expected.push((codec, record.clone()));
            acks.push(producer.enqueue(record).await?);
        }
        for ack in acks {
            ack.await?;
        }
        producer.close().await?;
    }
    let batches = read_batches(&server, "codecs", 0, expected.len()).await?;
    let stored: Vec<(Compression, Record)> = batches
        .into_iter()
        .flat_map(|b| {
            let codec = b.compression;
            b.records.into_iter().map(move |r| (codec, r))
        })
        .collect();
    ensure!(stored.len() == expected.len());
    for (i, ((codec, sent), (stored_codec, got))) in expected.iter().zip(&stored).enumerate() {
        ensure!(
            *stored_codec == *codec,
            "record {i}: stored as {stored_codec}, sent as {codec}"
        );
        ensure!(got.offset == i as i64);
        ensure!(
            got.key == sent.key && got.value == sent.value,
            "record {i} differs"
        );
        ensure!(Some(got.timestamp) == sent.timestamp);
        ensure!(
            got.headers == sent.headers,
            "record {i}: headers {:?}",
            got.headers
        );
    }
    Ok(())
}

#[tokio::test]
async fn keyed_records_land_on_partition_for_key_and_explicit_partitions_win() -> anyhow::Result<()>
{
    let server = InProcess::start().await?;
    create_topic(&server, "keys", 4).await?;
    let producer = Producer::builder(&server.proxy).build().await?;
    ensure!(producer.partitions("keys").await? == 4);
    let mut acks = Vec::new();
    for i in 0..200 {
        let key = format!("user-{i}");
        acks.push((
            key.clone(),
            producer
                .enqueue(ProducerRecord::new("keys", "v").with_key(key))
                .await?,
        ));
    }
    let mut per_partition: HashMap<u32, Vec<String>> = HashMap::new();
    for (key, ack) in acks {
        let stored = ack.await?;
        ensure!(
            stored.partition == partition_for_key(key.as_bytes(), 4),
            "{key}"
        );
        per_partition.entry(stored.partition).or_default().push(key);
    }
    // Explicit partitions beat the key's hash.
    let explicit = producer
        .send(
            ProducerRecord::new("keys", "explicit")
                .with_key("user-0")
                .with_partition((partition_for_key(b"user-0", 4) + 1) % 4),
        )
        .await?;
    ensure!(explicit.partition == (partition_for_key(b"user-0", 4) + 1) % 4);
    per_partition
        .entry(explicit.partition)
        .or_default()
        .push("user-0".into());
    ensure!(
        per_partition.len() == 4,
        "200 keys should use every partition"
    );
    for (partition, keys) in per_partition {
        let records = read(&server, "keys", partition, keys.len()).await?;
        let stored: Vec<String> = records.iter().map(|r| text(&r.key)).collect();
        ensure!(
            stored == keys,
            "partition {partition}: {stored:?} != {keys:?}"
        );
    }
    producer.close().await?;

    // Round robin without keys: one record per partition in turn.
    let producer = Producer::builder(&server.proxy)
        .partitioner(Partitioner::RoundRobin)
        .build()
        .await?;
    let mut counts = [0; 4];
    for _ in 0..8 {
        counts[producer
            .send(ProducerRecord::new("keys", "rr"))
            .await?
            .partition as usize] += 1;
    }
    ensure!(counts == [2, 2, 2, 2], "{counts:?}");
    Ok(())
}

#[tokio::test]
async fn concurrent_enqueues_keep_partition_order_with_dense_offsets() -> anyhow::Result<()> {
    const TASKS: usize = 8;
    const PER_TASK: usize = 1250;
    let server = InProcess::start().await?;
    create_topic(&server, "order", 4).await?;
    // Small batches: many batches per partition, several per request.
    let producer = Producer::builder(&server.proxy)
        .batch_size(8 << 10)
        .linger(Duration::from_millis(2))
        .build()
        .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let producer = producer.clone();
        tasks.spawn(async move {
            let partition = (task % 4) as u32;
            let mut acks = Vec::with_capacity(PER_TASK);
            for seq in 0..PER_TASK {
                let value = format!("{task}:{seq}:{}", "x".repeat(64));
                let record = ProducerRecord::new("order", value).with_partition(partition);
                acks.push(producer.enqueue(record).await?);
            }
            let mut offsets = Vec::with_capacity(PER_TASK);
            for ack in acks {
                let stored = ack.await?;
                anyhow::ensure!(stored.partition == partition);
                offsets.push(stored.offset);
            }
            anyhow::Ok((task, offsets))
        });
    }
    let mut acked: HashMap<(usize, usize), i64> = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (task, offsets) = done??;
        for (seq, offset) in offsets.into_iter().enumerate() {
            acked.insert((task, seq), offset);
        }
    }
    ensure!(acked.len() == TASKS * PER_TASK);
    for partition in 0..4u32 {
        let count = TASKS / 4 * PER_TASK;
        let records = read(&server, "order", partition, count).await?;
        ensure!(
            records.len() == count,
            "partition {partition}: {} records",
            records.len()
        );
        let mut next_seq: HashMap<usize, usize> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            ensure!(record.offset == i as i64, "offsets are dense from 0");
            let value = text(&record.value);
            let mut parts = value.split(':');
            let task: usize = parts.next().context("task")?.parse()?;
            let seq: usize = parts.next().context("seq")?.parse()?;
            let expected = next_seq.entry(task).or_insert(0);
            ensure!(
                seq == *expected,
                "partition {partition}: task {task} seq {seq} after {expected}"
            );
            *expected += 1;
            ensure!(
                acked[&(task, seq)] == record.offset,
                "acked offset matches the stored one"
            );
        }
    }
    producer.close().await?;
    Ok(())
}

#[tokio::test]
async fn flush_sends_at_once_and_waits_for_every_ack() -> anyhow::Result<()> {
    let server = InProcess::start().await?;
    create_topic(&server, "flush", 2).await?;
    let producer = Producer::builder(&server.proxy)
        .linger(Duration::from_secs(30))
        .build()
        .await?;
    let mut acks = Vec::new();
    for i in 0..100 {
        acks.push(
            producer
                .enqueue(ProducerRecord::new("flush", format!("{i}")))
                .await?,
        );
    }
    let started = Instant::now();
    producer.flush().await?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "flush waited for linger"
    );
    for ack in acks {
        let stored = ack
            .now_or_never()
            .context("flush returned before an ack")??;
        ensure!(stored.offset >= 0);
    }
    producer.close().await?;
    Ok(())
}

#[tokio::test]
async fn unknown_topics_partitions_and_oversize_records_are_typed_errors() -> anyhow::Result<()> {
    let server = InProcess::start().await?;
    create_topic(&server, "limits", 2).await?;
    let producer = Producer::builder(&server.proxy).build().await?;
    let e = producer
        .send(ProducerRecord::new("no-such-topic", "v"))
        .await
        .expect_err("unknown topic");
    ensure!(e.code() == Some(ErrorCode::UnknownTopic), "{e}");
    let e = producer
        .partitions("no-such-topic")
        .await
        .expect_err("unknown");
    ensure!(e.code() == Some(ErrorCode::UnknownTopic), "{e}");
    let e = producer
        .send(ProducerRecord::new("limits", "v").with_partition(2))
        .await
        .expect_err("2 partitions");
    ensure!(e.code() == Some(ErrorCode::UnknownPartition), "{e}");
    let e = producer
        .send(ProducerRecord::new("limits", vec![0u8; 2 << 20]))
        .await
        .expect_err("too large");
    ensure!(e.code() == Some(ErrorCode::MessageTooLarge), "{e}");
    producer.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_batch_the_broker_refuses_fails_alone_and_later_records_still_land() -> anyhow::Result<()>
{
    let server = InProcess::start().await?;
    create_topic(&server, "refused", 1).await?;
    // Above the broker's 1 MiB batch limit, so the broker (not the client) refuses it.
    let producer = Producer::builder(&server.proxy)
        .max_request_size(4 << 20)
        .build()
        .await?;
    let first = producer
        .send(ProducerRecord::new("refused", "before"))
        .await?;
    let e = producer
        .send(ProducerRecord::new("refused", vec![0u8; 2 << 20]))
        .await
        .expect_err("the broker refuses batches over 1 MiB");
    ensure!(
        matches!(
            e,
            Error::Server {
                code: ErrorCode::MessageTooLarge,
                ..
            }
        ),
        "{e}"
    );
    // The refused batch used a sequence number; the records after it must not be stuck
    // behind the gap.
    let after = producer
        .send(ProducerRecord::new("refused", "after"))
        .await?;
    ensure!(
        (first.offset, after.offset) == (0, 1),
        "{first:?} {after:?}"
    );
    let records = read(&server, "refused", 0, 2).await?;
    ensure!(text(&records[0].value) == "before" && text(&records[1].value) == "after");
    producer.close().await?;
    Ok(())
}

#[tokio::test]
async fn ack_none_and_buffered_deliver() -> anyhow::Result<()> {
    let server = InProcess::start().await?;
    create_topic(&server, "acks", 1).await?;
    let none = Producer::builder(&server.proxy)
        .acks(Ack::None)
        .build()
        .await?;
    let buffered = Producer::builder(&server.proxy)
        .acks(Ack::Buffered)
        .build()
        .await?;
    for i in 0..10 {
        let stored = none
            .send(ProducerRecord::new("acks", format!("none {i}")))
            .await?;
        ensure!(stored.offset == -1, "ack none returns no offset");
    }
    for i in 0..10 {
        let stored = buffered
            .send(ProducerRecord::new("acks", format!("buffered {i}")))
            .await?;
        ensure!(stored.offset == 10 + i, "offset {}", stored.offset);
    }
    let records = read(&server, "acks", 0, 20).await?;
    let values: Vec<String> = records.iter().map(|r| text(&r.value)).collect();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("none {i}"))
        .chain((0..10).map(|i| format!("buffered {i}")))
        .collect();
    ensure!(values == expected, "{values:?}");
    none.close().await?;
    buffered.close().await?;
    Ok(())
}
