//! Delayed and scheduled messages on a process cluster on real etcd (two proxies, three
//! brokers, two controllers):
//! - a topic accepts delays up to a maximum set through the CLI (`topic create
//!   --max-delay`), and `topic describe` shows it;
//! - delayed records from the SDK (`with_delay`, `with_delay_level`, `with_deliver_at`), the
//!   CLI (`produce --delay`) and a Kafka producer (kcat setting `strata-delay-ms`) are stored
//!   at once and reach consumers, SDK and Kafka alike, only at their time, each once;
//! - the owner of a partition with pending delayed records is killed with SIGKILL, and
//!   another partition is moved to another broker while records are pending: nothing is
//!   delivered early, nothing is lost, nothing twice;
//! - bad input gets typed errors naming the problem: a delay beyond the topic's maximum, a
//!   delay on a topic that takes none, a malformed delay header sent past the SDK's checks.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use strata_clock::Clock as _;

use strata_client::{
    Connection, Consumer, ConsumerRecord, Error, ErrorCode, Offset, Producer, ProducerRecord,
};
use strata_format::delay::{DELAY_MS_HEADER, DELAYED_FROM_HEADER, delayed_from};
use strata_format::{BatchOptions, Record, encode_batch};
use strata_integration_tests::cli::strata;
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::{AdminApi, Cluster as _};
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_proto::v1;

const MINUTE: Duration = Duration::from_secs(60);
/// Long enough for the kill and the move to happen while every delayed record is pending.
const DELAY: Duration = Duration::from_secs(8);

fn now_ms() -> i64 {
    strata_clock::SystemClock.unix_millis()
}

/// A delivered record and when this consumer got it.
struct Seen {
    record: ConsumerRecord,
    at_ms: i64,
}

fn value(record: &ConsumerRecord) -> String {
    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned()
}

/// Reads until `want` records arrived or `timeout` passed, noting when each arrived.
async fn read_for(consumer: &mut Consumer, want: usize, timeout: Duration) -> Vec<Seen> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    while seen.len() < want && tokio::time::Instant::now() < deadline {
        for record in consumer.poll(Duration::from_millis(500)).await.unwrap() {
            seen.push(Seen {
                record,
                at_ms: now_ms(),
            });
        }
    }
    seen
}

fn refusal(e: Error) -> String {
    match e {
        Error::Server { code, message } => {
            assert_eq!(code, ErrorCode::InvalidArgument, "{message}");
            message
        }
        other => panic!("expected a typed refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_arrive_at_their_time_once_across_a_kill_and_a_move() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("delays") else {
        return;
    };
    let mut cluster = ProcessCluster::start(Spec::standard("delays"))
        .await
        .unwrap();
    let proxies = cluster.proxies();
    let server = proxies[0].clone();
    let admin_url = cluster.admin_urls()[0].clone();
    let api = AdminApi::new(cluster.admin_urls());
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--admin".to_owned(), admin_url.clone()]);
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            strata(&refs, None, MINUTE).await
        }
    };
    cli(&[
        "topic",
        "create",
        "timers",
        "--partitions",
        "2",
        "--max-delay",
        "10m",
    ])
    .await
    .unwrap();
    cli(&["topic", "create", "plain", "--partitions", "1"])
        .await
        .unwrap();
    let described = cli(&["topic", "describe", "timers"]).await.unwrap();
    assert!(described.contains("max_delay 10m"), "{described}");

    // Bad input first, each refused with the reason.
    let connection = Connection::connect(&proxies.join(",")).await.unwrap();
    let producer = Producer::new(connection.clone(), Default::default());
    let too_late = producer
        .send(ProducerRecord::new("timers", "x").with_delay(Duration::from_secs(3600)))
        .await
        .unwrap_err();
    assert!(refusal(too_late).contains("max_delay_ms"));
    let not_accepted = producer
        .send(ProducerRecord::new("plain", "x").with_delay(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(refusal(not_accepted).contains("does not accept delayed records"));
    let cli_refused = strata(
        &["produce", "timers", "--delay", "1h", "--server", &server],
        Some(b"late\n"),
        MINUTE,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{cli_refused:#}").contains("max_delay_ms"),
        "{cli_refused:#}"
    );
    // Past the SDK's checks, the proxy refuses a malformed header itself.
    let bad = encode_batch(
        &[Record {
            offset: 0,
            timestamp: now_ms(),
            key: None,
            value: Some("bad".into()),
            headers: vec![("strata-delay-level".into(), Some("19".into()))],
        }],
        &BatchOptions::default(),
    )
    .unwrap();
    let answer = connection
        .grpc()
        .produce(v1::ProduceRequest {
            partitions: vec![v1::PartitionBatches {
                topic: "timers".into(),
                partition: 0,
                batches: vec![bad.to_bytes()],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let error = answer.partitions[0].batches[0].error.clone().unwrap();
    assert_eq!(error.error_code(), Some(ErrorCode::InvalidArgument));
    assert!(
        error.message.contains("strata-delay-level") && error.message.contains("1 to 18"),
        "{}",
        error.message
    );

    // Delayed records from every kind of producer, and some that are not delayed.
    let sent_at = now_ms();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let delay_ms = DELAY.as_millis() as i64;
    for i in 0..40 {
        let name = format!("sdk-{i}");
        let record = ProducerRecord::new("timers", name.clone())
            .with_partition(i % 2)
            .with_timestamp(sent_at)
            .with_delay(DELAY);
        producer.send(record).await.unwrap();
        expected.insert(name, sent_at + delay_ms);
    }
    let at = sent_at + delay_ms + 1_000;
    producer
        .send(
            ProducerRecord::new("timers", "sdk-at")
                .with_partition(0)
                .with_deliver_at(at),
        )
        .await
        .unwrap();
    expected.insert("sdk-at".into(), at);
    producer
        .send(
            ProducerRecord::new("timers", "sdk-level")
                .with_partition(1)
                .with_timestamp(sent_at)
                .with_delay_level(3),
        )
        .await
        .unwrap();
    expected.insert("sdk-level".into(), sent_at + 10_000);
    let cli_before = now_ms();
    strata(
        &["produce", "timers", "--delay", "8s", "--server", &server],
        Some(b"cli-0\ncli-1\ncli-2\n"),
        MINUTE,
    )
    .await
    .unwrap();
    for i in 0..3 {
        expected.insert(format!("cli-{i}"), cli_before + delay_ms);
    }
    let kafka = cluster.kafka_addrs()[0].to_string();
    let kafka_before = now_ms();
    let header = format!("{DELAY_MS_HEADER}={delay_ms}");
    clients
        .kcat(
            &["-b", &kafka, "-t", "timers", "-P", "-H", &header],
            Some(b"kafka-0\nkafka-1\n"),
            MINUTE,
        )
        .await
        .unwrap();
    for i in 0..2 {
        expected.insert(format!("kafka-{i}"), kafka_before + delay_ms);
    }
    for i in 0..10 {
        producer
            .send(ProducerRecord::new("timers", format!("now-{i}")).with_partition(i % 2))
            .await
            .unwrap();
    }

    // While they are pending: the owner of partition 0 is killed, partition 1 moves.
    let owners = api.wait_owned("timers", MINUTE, |_| true).await.unwrap();
    let killed = owners[0].broker.clone().unwrap();
    let mover = owners[1].broker.clone().unwrap();
    let target = cluster
        .brokers()
        .into_iter()
        .find(|b| *b != killed && *b != mover)
        .unwrap();
    cluster.kill_broker(&killed).await.unwrap();
    api.reassign("timers", 1, &target).await.unwrap();
    assert!(
        now_ms() < sent_at + delay_ms - 1_000,
        "the faults must land while the records are pending; the setup took too long"
    );

    // Only the records that were not delayed are there at first.
    let mut consumer = Consumer::builder(&proxies.join(","))
        .group("reminders")
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&["timers"]).await.unwrap();
    let seen = read_for(&mut consumer, expected.len() + 10, Duration::from_secs(90)).await;
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    let mut late = Vec::new();
    for s in &seen {
        let name = value(&s.record);
        *delivered.entry(name.clone()).or_default() += 1;
        if name.starts_with("now-") {
            assert!(delayed_from(&s.record.headers).is_none());
            continue;
        }
        let due = expected[&name];
        assert!(
            s.at_ms >= due,
            "{name} delivered {} ms early",
            due - s.at_ms
        );
        assert!(
            s.record
                .headers
                .iter()
                .any(|(k, _)| k == DELAYED_FROM_HEADER),
            "{name}: a delivered copy names its original"
        );
        assert!(
            !strata_format::delay::is_delayed(&s.record.headers),
            "{name}: consumers never see a delayed original"
        );
        late.push(s.at_ms - due);
    }
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !delivered.contains_key(*k))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    late.sort_unstable();
    tracing::info!(
        records = late.len(),
        p50_ms = late[late.len() / 2],
        max_ms = late[late.len() - 1],
        "lateness across a SIGKILL of the owner and a partition move"
    );

    // A Kafka consumer sees each delivered copy once, and no original.
    let kafka_read = clients
        .kcat(
            &[
                "-b",
                &kafka,
                "-C",
                "-t",
                "timers",
                "-o",
                "beginning",
                "-e",
                "-q",
            ],
            None,
            MINUTE,
        )
        .await
        .unwrap();
    let mut kafka_values: Vec<&str> = kafka_read.lines().collect();
    kafka_values.sort_unstable();
    let mut all: Vec<&str> = delivered.keys().map(String::as_str).collect();
    all.sort_unstable();
    assert_eq!(kafka_values, all);
}
