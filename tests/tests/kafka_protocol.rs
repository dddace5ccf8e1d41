//! The Kafka listener byte by byte: version negotiation, the data path at exact versions, and
//! what bad input does to a connection (and does not do to the others).

// Helpers unwrap like the tests they serve; long polls are timed against real time.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, InitProducerIdRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use strata_format::{BatchOptions, Record, RecordBatch, encode_batch};
use strata_integration_tests::InProcess;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::kafka_wire::KafkaWire;

const UNSUPPORTED_VERSION: i16 = 35;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn kafka_addr(server: &InProcess) -> SocketAddr {
    server.kafka.parse().unwrap()
}

async fn create_topic(server: &InProcess, name: &str, partitions: i64) {
    let body = serde_json::json!({ "name": name, "partitions": partitions });
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/topics", server.admin))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
}

fn batch(values: &[&str], options: &BatchOptions) -> RecordBatch {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.to_string())),
            headers: vec![("h".into(), Some(Bytes::from_static(b"x")))],
            ..Record::default()
        })
        .collect();
    encode_batch(&records, options).unwrap()
}

async fn produce(
    wire: &mut KafkaWire,
    version: i16,
    topic: &str,
    records: Bytes,
    acks: i16,
) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let response = wire.call(version, &request).await.unwrap();
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_answers_every_version_from_0_to_4_with_the_same_table() {
    let server = InProcess::start().await.unwrap();
    let mut wire = KafkaWire::connect(kafka_addr(&server)).await.unwrap();
    let mut tables = Vec::new();
    for version in 0..=4 {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strata-tests"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let response = wire.call(version, &request).await.unwrap();
        assert_eq!(response.error_code, 0, "v{version}");
        let table: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        tables.push(table);
    }
    assert!(tables.windows(2).all(|w| w[0] == w[1]), "{tables:?}");
    let table = &tables[0];
    let row = |api: ApiKey| table.iter().find(|r| r.0 == api as i16).copied();
    assert_eq!(row(ApiKey::ApiVersions), Some((18, 0, 4)));
    assert!(row(ApiKey::Produce).is_some_and(|r| r.1 <= 3 && r.2 >= 9));
    assert!(row(ApiKey::Fetch).is_some_and(|r| r.1 <= 4 && r.2 >= 11));
    assert!(row(ApiKey::Metadata).is_some_and(|r| r.2 >= 12));
    // Nothing is advertised that does not work: no transactions, no KIP-848 groups.
    for absent in [
        ApiKey::AddPartitionsToTxn,
        ApiKey::EndTxn,
        ApiKey::ConsumerGroupHeartbeat,
    ] {
        assert_eq!(row(absent), None, "{absent:?} is advertised");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_above_the_highest_gets_a_v0_answer_with_error_35_and_the_table() {
    let server = InProcess::start().await.unwrap();
    let mut wire = KafkaWire::connect(kafka_addr(&server)).await.unwrap();
    // A client newer than the listener: ApiVersions v99, whose body we cannot know.
    let frame = KafkaWire::frame(4, 77, &ApiVersionsRequest::default()).unwrap();
    let mut bytes = frame.to_vec();
    bytes[6..8].copy_from_slice(&99i16.to_be_bytes());
    wire.send_raw(&bytes).await.unwrap();
    let mut answer = wire
        .read_frame()
        .await
        .unwrap()
        .expect("an answer, not a closed connection");
    let header = ResponseHeader::decode(&mut answer, 0).unwrap();
    assert_eq!(header.correlation_id, 77);
    let body = ApiVersionsResponse::decode(&mut answer, 0).unwrap();
    assert_eq!(body.error_code, UNSUPPORTED_VERSION);
    let own = body
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .unwrap();
    assert_eq!((own.min_version, own.max_version), (0, 4));
    // The client retries at a version both know, on the same connection.
    let retried = wire.call(3, &ApiVersionsRequest::default()).await.unwrap();
    assert_eq!(retried.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_batches_come_back_byte_for_byte_and_a_fetch_inside_a_batch_returns_it_whole() {
    let server = InProcess::start().await.unwrap();
    create_topic(&server, "bytes", 1).await;
    let mut wire = KafkaWire::connect(kafka_addr(&server)).await.unwrap();
    let first = batch(&["a", "b", "c"], &BatchOptions::default());
    let second = batch(&["d", "e"], &BatchOptions::default());
    assert_eq!(
        produce(&mut wire, 9, "bytes", first.to_bytes(), -1).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut wire, 3, "bytes", second.to_bytes(), -1).await,
        (0, 3)
    );

    // From offset 1, inside the first batch: both batches, whole, as sent but for baseOffset.
    let response = wire.call(12, &fetch_request("bytes", 1, 0)).await.unwrap();
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let records = p.records.clone().unwrap();
    let mut expected_second = second.clone();
    expected_second.set_base_offset(3);
    let mut expected = first.to_bytes().to_vec();
    expected.extend_from_slice(&expected_second.to_bytes());
    assert_eq!(records.as_ref(), expected.as_slice());
    assert!(p.high_watermark >= 5);

    // The same at the lowest Fetch version served.
    let old = wire.call(4, &fetch_request("bytes", 3, 0)).await.unwrap();
    let old_records = old.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(RecordBatch::parse(old_records).unwrap().base_offset(), 3);

    // acks=1 answers once the batch is buffered; consumers see it once it is committed.
    let third = batch(&["f"], &BatchOptions::default());
    assert_eq!(
        produce(&mut wire, 9, "bytes", third.to_bytes(), 1).await,
        (0, 5)
    );
    let response = wire
        .call(12, &fetch_request("bytes", 5, 10_000))
        .await
        .unwrap();
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(RecordBatch::parse(records).unwrap().base_offset(), 5);

    // ListOffsets: earliest, latest.
    for (timestamp, offset) in [(-2, 0), (-1, 6)] {
        let request = ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic_name("bytes"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(timestamp),
                    ]),
            ]);
        let response = wire.call(7, &request).await.unwrap();
        let p = &response.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset),
            (0, offset),
            "timestamp {timestamp}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_fetch_waits_for_max_wait_and_a_produce_wakes_it() {
    let server = InProcess::start().await.unwrap();
    create_topic(&server, "poll", 1).await;
    let addr = kafka_addr(&server);
    let mut wire = KafkaWire::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let response = wire.call(12, &fetch_request("poll", 0, 300)).await.unwrap();
    assert!(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .is_none_or(Bytes::is_empty)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );

    let waiting = tokio::spawn(async move {
        wire.call(12, &fetch_request("poll", 0, 20_000))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut producer = KafkaWire::connect(addr).await.unwrap();
    let sent = batch(&["wake"], &BatchOptions::default());
    assert_eq!(
        produce(&mut producer, 9, "poll", sent.to_bytes(), -1).await,
        (0, 0)
    );
    let woken = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    let records = woken.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(records, sent.to_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_gives_stable_topic_ids_and_unknown_topics_are_not_created() {
    let server = InProcess::start().await.unwrap();
    create_topic(&server, "ids", 3).await;
    let mut wire = KafkaWire::connect(kafka_addr(&server)).await.unwrap();
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name("ids"))),
            MetadataRequestTopic::default().with_name(Some(topic_name("missing"))),
        ]))
        .with_allow_auto_topic_creation(true);
    let first = wire.call(12, &request).await.unwrap();
    let again = wire.call(12, &request).await.unwrap();
    assert_eq!(first.brokers.len(), 1);
    let ids = &first.topics[0];
    assert_eq!(ids.error_code, 0);
    assert_eq!(ids.partitions.len(), 3);
    assert!(!ids.topic_id.is_nil());
    assert_eq!(ids.topic_id, again.topics[0].topic_id);
    let leader = first.brokers[0].node_id;
    assert!(ids.partitions.iter().all(|p| p.leader_id == leader));
    // Auto-creation is off by default.
    assert_eq!(first.topics[1].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(again.topics[1].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    // v0 has no null: an empty list means every topic.
    let all = wire
        .call(0, &MetadataRequest::default().with_topics(Some(Vec::new())))
        .await
        .unwrap();
    assert!(
        all.topics
            .iter()
            .any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "ids"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_ids_are_unique_and_an_idempotent_retry_lands_once() {
    let server = InProcess::start().await.unwrap();
    create_topic(&server, "idem", 1).await;
    let mut wire = KafkaWire::connect(kafka_addr(&server)).await.unwrap();
    let a = wire
        .call(
            4,
            &InitProducerIdRequest::default()
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await
        .unwrap();
    let b = wire
        .call(0, &InitProducerIdRequest::default())
        .await
        .unwrap();
    assert_eq!((a.error_code, b.error_code), (0, 0));
    assert_ne!(a.producer_id, b.producer_id);
    let options = BatchOptions {
        producer_id: a.producer_id.0,
        producer_epoch: a.producer_epoch,
        base_sequence: 0,
        ..BatchOptions::default()
    };
    let sent = batch(&["once"], &options).to_bytes();
    assert_eq!(
        produce(&mut wire, 9, "idem", sent.clone(), -1).await,
        (0, 0)
    );
    // The retry of a batch whose answer was lost gets the same offset, and nothing is appended.
    assert_eq!(produce(&mut wire, 9, "idem", sent, -1).await, (0, 0));
    let response = wire.call(12, &fetch_request("idem", 0, 0)).await.unwrap();
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(response.responses[0].partitions[0].high_watermark, 1);
    assert_eq!(RecordBatch::parse(records).unwrap().record_count(), 1);
    // Transactions are not built: a transactional producer is told so before it sends data.
    let txn = wire
        .call(
            4,
            &InitProducerIdRequest::default().with_transactional_id(Some(
                kafka_protocol::messages::TransactionalId(StrBytes::from_static_str("t")),
            )),
        )
        .await
        .unwrap();
    assert_ne!(txn.error_code, 0);
}

/// Each kind of bad input closes its own connection, and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_their_connection_and_the_others_keep_working() {
    let server = InProcess::start().await.unwrap();
    let addr = kafka_addr(&server);
    let mut bystander = KafkaWire::connect(addr).await.unwrap();
    let api_versions = KafkaWire::frame(3, 1, &ApiVersionsRequest::default()).unwrap();

    let mut over_limit = (200i32 << 20).to_be_bytes().to_vec(); // 200 MiB, over the 100 MiB default
    over_limit.extend_from_slice(&api_versions[4..]);
    let mut unknown_api = api_versions.to_vec();
    unknown_api[4..6].copy_from_slice(&999i16.to_be_bytes());
    let mut produce_v2 = api_versions.to_vec(); // Produce below the lowest version served
    produce_v2[4..6].copy_from_slice(&0i16.to_be_bytes());
    produce_v2[6..8].copy_from_slice(&2i16.to_be_bytes());
    let mut garbage = 64i32.to_be_bytes().to_vec();
    garbage.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    let mut lying_metadata = 12i32.to_be_bytes().to_vec(); // Metadata v12 whose body is cut short
    lying_metadata.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 9, 0xff, 0xff, 0, 0x05]);
    let cases: [(&str, Vec<u8>, bool); 6] = [
        ("a frame over --kafka-max-request-bytes", over_limit, false),
        ("an unknown API key", unknown_api, false),
        ("a version below the lowest served", produce_v2, false),
        ("garbage", garbage, false),
        ("a body shorter than its message", lying_metadata, false),
        (
            "a truncated frame",
            api_versions[..api_versions.len() - 3].to_vec(),
            true,
        ),
    ];
    for (what, bytes, then_hang_up) in cases {
        let mut wire = KafkaWire::connect(addr).await.unwrap();
        wire.send_raw(&bytes).await.unwrap();
        if then_hang_up {
            wire.shutdown_write().await.unwrap();
        }
        assert_eq!(
            wire.read_frame().await.unwrap(),
            None,
            "{what}: the connection stays open"
        );
        let answer = bystander.call(3, &ApiVersionsRequest::default()).await;
        assert_eq!(answer.unwrap().error_code, 0, "after {what}");
    }
    let metrics = strata_integration_tests::cli::metrics(&server.proxy_http)
        .await
        .unwrap();
    assert!(
        metrics.contains("strata_proxy_kafka_closed_connections_total"),
        "{metrics}"
    );
}

/// Stateless proxies as a Kafka cluster: every live proxy is a broker, leadership is spread over
/// them and agreed by all, and a proxy killed with -9 drops out within its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_the_live_proxies_and_a_killed_one_drops_out_within_its_lease() {
    use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
    let spec = Spec {
        brokers: 1,
        controllers: 1,
        proxies: 2,
        storage_nodes: 1,
        replicas: 1,
        ..Spec::standard("kafka-metadata")
    };
    let mut cluster = ProcessCluster::start(spec).await.unwrap();
    let addrs = cluster.kafka_addrs();
    assert_eq!(addrs.len(), 2);
    let admin = &strata_integration_tests::harness::ops::Cluster::admin_urls(&cluster)[0];
    let created = reqwest::Client::new()
        .post(format!("{admin}/v1/topics"))
        .json(&serde_json::json!({ "name": "spread", "partitions": 8 }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name("spread"))),
    ]));
    let mut views = Vec::new();
    for addr in &addrs {
        let mut wire = KafkaWire::connect(*addr).await.unwrap();
        views.push(wire.call(12, &request).await.unwrap());
    }
    let mut nodes: Vec<(i32, i32)> = views[0]
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.port))
        .collect();
    nodes.sort_unstable();
    let mut ports: Vec<i32> = addrs.iter().map(|a| i32::from(a.port())).collect();
    ports.sort_unstable();
    assert_eq!(nodes.iter().map(|n| n.1).collect::<Vec<_>>(), ports);
    let leaders = |m: &kafka_protocol::messages::MetadataResponse| -> Vec<i32> {
        m.topics[0]
            .partitions
            .iter()
            .map(|p| p.leader_id.0)
            .collect()
    };
    // Both proxies agree, and both lead some partitions.
    assert_eq!(leaders(&views[0]), leaders(&views[1]));
    for (node, _) in &nodes {
        assert!(
            leaders(&views[0]).contains(node),
            "node {node} leads nothing"
        );
    }

    cluster.kill_proxy(1).await.unwrap();
    let survivor = addrs[0];
    // The lease TTL of the harness is 2 s; allow for etcd's minimum TTL and renewal slack.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut wire = KafkaWire::connect(survivor).await.unwrap();
        let view = wire.call(12, &request).await.unwrap();
        if view.brokers.len() == 1 {
            assert_eq!(view.brokers[0].port, i32::from(survivor.port()));
            let only = view.brokers[0].node_id.0;
            assert!(leaders(&view).iter().all(|l| *l == only));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed proxy is still listed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Restarted under the same id, it comes back with the same node id.
    cluster.start_proxy(1).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut wire = KafkaWire::connect(survivor).await.unwrap();
        let view = wire.call(12, &request).await.unwrap();
        let mut back: Vec<(i32, i32)> =
            view.brokers.iter().map(|b| (b.node_id.0, b.port)).collect();
        back.sort_unstable();
        if back.len() == 2 {
            assert_eq!(back, nodes);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted proxy is not listed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// librdkafka pipelines many Produce requests on one connection: they are answered in request
/// order, one partition's batches land in the order sent (an idempotent producer's sequences
/// stay in order), and a request of another kind between them keeps its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_land_in_order() {
    use kafka_protocol::messages::{ApiVersionsResponse, ProduceResponse};
    let server = InProcess::start().await.unwrap();
    create_topic(&server, "pipelined", 1).await;
    let mut wire = KafkaWire::connect(kafka_addr(&server)).await.unwrap();
    let id = wire
        .call(
            4,
            &InitProducerIdRequest::default().with_transactional_id(None),
        )
        .await
        .unwrap();
    let mut sequence = 0;
    let mut next_batch = |values: &[&str]| {
        let options = BatchOptions {
            producer_id: id.producer_id.0,
            producer_epoch: id.producer_epoch,
            base_sequence: sequence,
            ..BatchOptions::default()
        };
        sequence += values.len() as i32;
        batch(values, &options).to_bytes()
    };
    let produce = |records: Bytes| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic_name("pipelined"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records)),
                    ]),
            ])
    };
    let mut frames = Vec::new();
    frames.extend(KafkaWire::frame(9, 101, &produce(next_batch(&["a", "b", "c"]))).unwrap());
    frames.extend(KafkaWire::frame(9, 102, &produce(next_batch(&["d", "e"]))).unwrap());
    frames.extend(KafkaWire::frame(3, 103, &ApiVersionsRequest::default()).unwrap());
    frames.extend(KafkaWire::frame(9, 104, &produce(next_batch(&["f"]))).unwrap());
    wire.send_raw(&frames).await.unwrap();
    let mut offsets = Vec::new();
    for (expected_id, is_produce) in [(101, true), (102, true), (103, false), (104, true)] {
        let mut answer = wire.read_frame().await.unwrap().expect("an answer");
        let version = if is_produce { 9 } else { 3 };
        let header_version = if is_produce {
            ApiKey::Produce.response_header_version(version)
        } else {
            0
        };
        let header = ResponseHeader::decode(&mut answer, header_version).unwrap();
        assert_eq!(header.correlation_id, expected_id);
        if is_produce {
            let response = ProduceResponse::decode(&mut answer, version).unwrap();
            let p = &response.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "{:?}", p.error_message);
            offsets.push(p.base_offset);
        } else {
            assert_eq!(
                ApiVersionsResponse::decode(&mut answer, version)
                    .unwrap()
                    .error_code,
                0
            );
        }
    }
    assert_eq!(offsets, [0, 3, 5]);
    let response = wire
        .call(12, &fetch_request("pipelined", 0, 0))
        .await
        .unwrap();
    assert_eq!(response.responses[0].partitions[0].high_watermark, 6);
}
