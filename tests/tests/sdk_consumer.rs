//! The SDK's consumer and admin client against a whole Strata in-process: assignment and
//! seeks, groups with commits that survive a restart of the consumer, and bad input answered
//! with typed errors while the proxy keeps serving.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use strata_client::{
    Admin, Consumer, ConsumerRecord, Error, ErrorCode, Offset, Producer, ProducerRecord,
    TopicPartition,
};
use strata_integration_tests::InProcess;
use strata_proto::v1;

async fn poll_until(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut all = Vec::new();
    for _ in 0..100 {
        all.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
        if all.len() >= n {
            break;
        }
    }
    all
}

fn values(records: &[ConsumerRecord]) -> Vec<u32> {
    records
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_seek_and_list_offsets() {
    let server = InProcess::start().await.unwrap();
    let admin = Admin::connect(&server.proxy).await.unwrap();
    let topic = admin.create_topic("seek", 2).await.unwrap();
    assert_eq!(topic.partitions.len(), 2);
    assert!(
        topic
            .partitions
            .iter()
            .all(|p| p.broker.is_some() && p.epoch >= 1)
    );
    server
        .produce("seek", 1, 0..100, Some(1_000_000))
        .await
        .unwrap();

    let tp = TopicPartition::new("seek", 1);
    assert_eq!(admin.list_offset(&tp, Offset::Earliest).await.unwrap(), 0);
    assert_eq!(admin.list_offset(&tp, Offset::Latest).await.unwrap(), 100);
    assert_eq!(
        admin
            .list_offset(&tp, Offset::Timestamp(1_000_042))
            .await
            .unwrap(),
        42
    );

    let mut consumer = Consumer::builder(&server.proxy)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    consumer.assign(vec![tp.clone()]).await.unwrap();
    let all = poll_until(&mut consumer, 100).await;
    assert_eq!(values(&all), (0..100).collect::<Vec<_>>());
    assert_eq!(consumer.position(&tp), Some(100));

    consumer.seek(&tp, Offset::At(90)).await.unwrap();
    assert_eq!(
        values(&poll_until(&mut consumer, 10).await),
        (90..100).collect::<Vec<_>>()
    );
    consumer
        .seek(&tp, Offset::Timestamp(1_000_095))
        .await
        .unwrap();
    assert_eq!(
        values(&poll_until(&mut consumer, 5).await),
        (95..100).collect::<Vec<_>>()
    );
    consumer.seek(&tp, Offset::Earliest).await.unwrap();
    consumer.set_max_poll_records(7);
    let first = consumer.poll(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        values(&first),
        (0..7).collect::<Vec<_>>(),
        "max_poll_records caps one poll"
    );
    consumer.seek(&tp, Offset::Latest).await.unwrap();
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );

    // Seeking a partition that is not assigned is refused with a clear message.
    let other = TopicPartition::new("seek", 0);
    let e = consumer.seek(&other, Offset::At(0)).await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidConfig(ref m) if m.contains("not assigned")),
        "{e}"
    );
    consumer.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_resumes_from_its_commits_and_fences_foreign_commits() {
    let server = InProcess::start().await.unwrap();
    let admin = Admin::connect(&server.proxy).await.unwrap();
    admin.create_topic("orders", 4).await.unwrap();
    for p in 0..4 {
        server
            .produce("orders", p, p * 100..p * 100 + 50, None)
            .await
            .unwrap();
    }
    let builder = || {
        Consumer::builder(&server.proxy)
            .group("billing")
            .auto_offset_reset(Offset::Earliest)
            .enable_auto_commit(false)
            .session_timeout(Duration::from_secs(3))
            .heartbeat_interval(Duration::from_millis(500))
    };
    let mut first = builder().build().await.unwrap();
    first.subscribe(&["orders"]).await.unwrap();
    let got = poll_until(&mut first, 200).await;
    assert_eq!(got.len(), 200);
    assert_eq!(first.assignment().len(), 4);
    // Commit only half of partition 0 and all of the others.
    let mut offsets: BTreeMap<TopicPartition, i64> =
        first.assignment().into_iter().map(|tp| (tp, 50)).collect();
    offsets.insert(TopicPartition::new("orders", 0), 25);
    first.commit_offsets(&offsets).await.unwrap();
    let committed = first
        .committed(&[TopicPartition::new("orders", 0)])
        .await
        .unwrap();
    assert_eq!(committed[&TopicPartition::new("orders", 0)], 25);
    first.close().await.unwrap();

    // A new member of the group continues from the commits: only 25..50 of partition 0.
    let mut second = builder().build().await.unwrap();
    second.subscribe(&["orders"]).await.unwrap();
    let again = poll_until(&mut second, 25).await;
    assert_eq!(values(&again), (25..50).collect::<Vec<_>>());

    // A third member joins; the leader splits 2/2. A commit for a partition the other member
    // owns is refused with a typed error.
    let third = builder().build().await.unwrap();
    // Each member polls in its own task, as two processes would: a member blocked in a
    // rebalance waits for the other to rejoin, which it does from its own poll loop.
    let stop = Arc::new(AtomicBool::new(false));
    let views: Vec<Arc<Mutex<(usize, i32)>>> = (0..2).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (mut consumer, view) in [second, third].into_iter().zip(views.clone()) {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            consumer.subscribe(&["orders"]).await.unwrap();
            while !stop.load(Ordering::SeqCst) {
                consumer.poll(Duration::from_millis(100)).await.unwrap();
                *view.lock().unwrap() = (consumer.assignment().len(), consumer.generation());
            }
            consumer
        }));
    }
    for _ in 0..300 {
        let (a, b) = (*views[0].lock().unwrap(), *views[1].lock().unwrap());
        if a.0 == 2 && b.0 == 2 && a.1 == b.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut settled = Vec::new();
    for task in tasks {
        settled.push(task.await.unwrap());
    }
    let third = settled.pop().unwrap();
    let mut second = settled.pop().unwrap();
    assert_eq!(
        (second.assignment().len(), third.assignment().len()),
        (2, 2)
    );
    let foreign = third.assignment()[0].clone();
    let e = second
        .commit_offsets(&BTreeMap::from([(foreign.clone(), 1)]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PartitionNotAssigned), "{e}");
    assert!(e.to_string().contains(&foreign.to_string()), "{e}");

    let group = admin.describe_group("billing").await.unwrap();
    assert_eq!(group.state, "Stable");
    assert_eq!(group.members.len(), 2);
    assert_eq!(group.protocol, "range");
    assert_eq!(
        group.offsets.iter().map(|o| o.lag).sum::<i64>(),
        25,
        "{group:?}"
    );
    let listed = admin.list_groups().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|g| g.group == "billing" && g.members == 2)
    );
    second.close().await.unwrap();
    third.close().await.unwrap();
    server.stop().await.unwrap();
}

/// Raw bytes as a gRPC message, to send what no generated client would.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_typed_errors_and_the_proxy_keeps_serving() {
    let server = InProcess::start().await.unwrap();
    let admin = Admin::connect(&server.proxy).await.unwrap();
    admin.create_topic("t", 1).await.unwrap();
    let connection = strata_client::Connection::connect(&server.proxy)
        .await
        .unwrap();
    let mut grpc = connection.grpc();

    // Unknown topic: producer, admin, fetch.
    let producer = Producer::builder(&server.proxy).build().await.unwrap();
    let e = producer
        .send(ProducerRecord::new("nope", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopic), "{e}");
    let e = admin.describe_topic("nope").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownTopic), "{e}");
    let fetch = |topic: &str, partition, offset| v1::FetchRequest {
        topic: topic.into(),
        partition,
        offset,
        max_bytes: 0,
        max_wait_ms: 0,
        ..Default::default()
    };
    let answer = grpc.fetch(fetch("nope", 0, 0)).await.unwrap().into_inner();
    assert_eq!(answer.error.unwrap().code, "UNKNOWN_TOPIC");
    let answer = grpc.fetch(fetch("t", 9, 0)).await.unwrap().into_inner();
    assert_eq!(answer.error.unwrap().code, "UNKNOWN_PARTITION");

    // Bad offsets.
    producer
        .send(ProducerRecord::new("t", "one"))
        .await
        .unwrap();
    for offset in [-5, 1_000_000] {
        let answer = grpc
            .fetch(fetch("t", 0, offset))
            .await
            .unwrap()
            .into_inner();
        let e = answer.error.unwrap();
        assert_eq!(e.code, "OFFSET_OUT_OF_RANGE", "{offset}");
        assert!(e.message.contains("[0, 1)"), "{}", e.message);
    }
    let answer = grpc
        .list_offsets(v1::ListOffsetsRequest {
            topic: "t".into(),
            partition: 0,
            timestamp: -7,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.error.unwrap().code, "INVALID_ARGUMENT");
    let answer = grpc
        .offset_commit(v1::OffsetCommitRequest {
            broadcast_member: String::new(),
            group: "g".into(),
            generation: -1,
            member_id: String::new(),
            offsets: vec![
                v1::PartitionOffset {
                    topic: "t".into(),
                    partition: 0,
                    offset: -1,
                    metadata: String::new(),
                },
                v1::PartitionOffset {
                    topic: "t".into(),
                    partition: 0,
                    offset: 2,
                    metadata: String::new(),
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<String> = answer
        .partitions
        .iter()
        .map(|p| p.error.clone().unwrap().code)
        .collect();
    assert_eq!(codes, vec!["INVALID_ARGUMENT", "OFFSET_OUT_OF_RANGE"]);

    // A corrupt record batch and an unknown ack mode.
    let answer = grpc
        .produce(v1::ProduceRequest {
            ack: 0,
            partitions: vec![v1::PartitionBatches {
                topic: "t".into(),
                partition: 0,
                batches: vec![Bytes::from_static(&[7; 80])],
                leader_epoch: 0,
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.partitions[0].batches[0].error.clone().unwrap().code,
        "CORRUPT_MESSAGE"
    );
    let status = grpc
        .produce(v1::ProduceRequest {
            ack: 42,
            partitions: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.metadata().get("strata-error-code").unwrap(),
        "INVALID_ARGUMENT"
    );

    // Garbage where a protobuf message belongs.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.proxy))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for method in [
        "/strata.v1.Strata/Produce",
        "/strata.v1.Strata/JoinGroup",
        "/strata.v1.Strata/OffsetCommit",
    ] {
        let mut raw = tonic::client::Grpc::new(channel.clone());
        raw.ready().await.unwrap();
        let status = raw
            .unary(
                tonic::Request::new(Bytes::from_static(&[0xff; 64])),
                tonic::codegen::http::uri::PathAndQuery::from_static(method),
                RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal, "{method}: {status}");
        assert!(status.message().contains("decode"), "{method}: {status}");
    }

    // Still serving.
    let sent = producer
        .send(ProducerRecord::new("t", "two"))
        .await
        .unwrap();
    assert_eq!(sent.offset, 1);
    let answer = grpc.fetch(fetch("t", 0, 0)).await.unwrap().into_inner();
    assert!(answer.error.is_none() && answer.high_watermark == 2);
    producer.close().await.unwrap();
    server.stop().await.unwrap();
}

/// What a member's poll loop last saw: its partitions, and how many records it read.
type MemberView = (Vec<u32>, usize);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_groups_commit_automatically_and_asynchronously() {
    let server = InProcess::start().await.unwrap();
    let admin = Admin::connect(&server.proxy).await.unwrap();
    admin.create_topic("rr", 4).await.unwrap();
    for p in 0..4 {
        server.produce("rr", p, 0..10, None).await.unwrap();
    }

    // Two members offering round-robin only, committing by themselves every 100 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let views: Vec<Arc<Mutex<MemberView>>> = (0..2).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for view in &views {
        let mut consumer = Consumer::builder(&server.proxy)
            .group("rr-auto")
            .assignors(vec![strata_client::Assignor::RoundRobin])
            .auto_offset_reset(Offset::Earliest)
            .auto_commit_interval(Duration::from_millis(100))
            .session_timeout(Duration::from_secs(3))
            .heartbeat_interval(Duration::from_millis(500))
            .build()
            .await
            .unwrap();
        let (stop, view) = (stop.clone(), view.clone());
        tasks.push(tokio::spawn(async move {
            consumer.subscribe(&["rr"]).await.unwrap();
            while !stop.load(Ordering::SeqCst) {
                let records = consumer.poll(Duration::from_millis(100)).await.unwrap();
                let mut view = view.lock().unwrap();
                view.0 = consumer
                    .assignment()
                    .iter()
                    .map(|tp| tp.partition)
                    .collect();
                view.1 += records.len();
            }
            consumer.close().await.unwrap();
        }));
    }
    // Settled when both hold two partitions and the group's lag is 0 with no explicit commit.
    let mut group = None;
    for _ in 0..300 {
        let held: Vec<Vec<u32>> = views.iter().map(|v| v.lock().unwrap().0.clone()).collect();
        if held.iter().all(|h| h.len() == 2) {
            let g = admin.describe_group("rr-auto").await.unwrap();
            if g.offsets.len() == 4 && g.offsets.iter().all(|o| o.lag == 0) {
                group = Some((g, held));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let (group, mut held) =
        group.expect("the two members split the topic and auto-committed everything within 30 s");
    assert_eq!(group.protocol, "roundrobin");
    held.sort();
    // Round-robin deals partitions in turn (range would give 0,1 and 2,3).
    assert_eq!(held, vec![vec![0, 2], vec![1, 3]]);
    let records: usize = views.iter().map(|v| v.lock().unwrap().1).sum();
    assert!(records >= 40, "every record was read ({records})");

    // commit_async: the commit lands in the background, without auto-commit.
    let mut consumer = Consumer::builder(&server.proxy)
        .group("rr-async")
        .enable_auto_commit(false)
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&["rr"]).await.unwrap();
    assert_eq!(poll_until(&mut consumer, 40).await.len(), 40);
    let all: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new("rr", p)).collect();
    assert!(
        consumer.committed(&all).await.unwrap().is_empty(),
        "nothing committed yet"
    );
    consumer.commit_async().unwrap();
    let mut committed = BTreeMap::new();
    for _ in 0..100 {
        committed = consumer.committed(&all).await.unwrap();
        if committed.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        committed,
        all.iter()
            .map(|tp| (tp.clone(), 10))
            .collect::<BTreeMap<_, _>>()
    );
    consumer.close().await.unwrap();
    server.stop().await.unwrap();
}
