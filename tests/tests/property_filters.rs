//! SQL-92 property filters (RocketMQ's `MessageSelector.bySql`) on a process cluster on real
//! etcd (two proxies, brokers, a controller):
//! - records with headers from the SDK (`with_header`) and from a Kafka producer (kcat `-H`)
//!   reach a group consumer filtering on them, and nothing else does; its commits move past
//!   what was left out, so its lag is 0 once it is through;
//! - a filter and a tag expression together take only what both take;
//! - the CLI's `consume --filter` reads what it should;
//! - a condition that does not parse gets a typed error naming it and where, from the SDK, the
//!   CLI, and the proxy when sent raw.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use strata_client::{
    Admin, Connection, Consumer, ConsumerRecord, Error, ErrorCode, Offset, Producer,
    ProducerRecord, TopicPartition,
};
use strata_format::{RecordBatch, decode_batch};
use strata_integration_tests::cli::strata;
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_proto::v1;
use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);
const RECORDS: u32 = 300;

/// Record `i`'s region, and its amount (`None`: no amount header).
fn region(i: u32) -> &'static str {
    ["eu", "us", "uk"][(i % 3) as usize]
}
fn amount(i: u32) -> Option<u32> {
    (!i.is_multiple_of(10)).then_some(i)
}

fn value(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.clone().unwrap().to_vec()).unwrap()
}

/// Polls until `want` records came or 60 s passed, then a while longer for any extra.
async fn read(consumer: &mut Consumer, want: usize) -> BTreeSet<String> {
    let deadline = Instant::now() + MINUTE;
    let mut all = Vec::new();
    while all.len() < want && Instant::now() < deadline {
        all.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    }
    all.extend(consumer.poll(Duration::from_millis(1_500)).await.unwrap());
    let values: BTreeSet<String> = all.iter().map(value).collect();
    assert_eq!(all.len(), values.len(), "no record twice");
    values
}

fn sdk_values(take: impl Fn(u32) -> bool) -> BTreeSet<String> {
    (0..RECORDS)
        .filter(|i| take(*i))
        .map(|i| format!("sdk-{i}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_receive_only_what_their_condition_holds_for() {
    harness::init_tracing();
    let Some(clients) = KafkaClients::find("property_filters") else {
        return;
    };
    let cluster = ProcessCluster::start(Spec::standard("property-filters"))
        .await
        .unwrap();
    let proxies = cluster.proxies();
    let server = proxies[0].clone();
    let connection = Connection::connect(&proxies.join(",")).await.unwrap();
    let admin = Admin::new(connection.clone());
    admin.create_topic("payments", 2).await.unwrap();

    let producer = Producer::new(connection.clone(), Default::default());
    for i in 0..RECORDS {
        let mut record =
            ProducerRecord::new("payments", format!("sdk-{i}")).with_header("region", region(i));
        if let Some(a) = amount(i) {
            record = record.with_header("amount", a.to_string());
        }
        if i % 2 == 0 {
            record = record.with_tags(["paid"]);
        }
        producer.send(record).await.unwrap();
    }
    let kafka = cluster.kafka_addrs()[0].to_string();
    for (name, headers) in [
        ("kcat-0", ["region=eu", "amount=500"]),
        ("kcat-1", ["region=us", "amount=900"]),
    ] {
        let mut args = vec!["-b", kafka.as_str(), "-t", "payments", "-P"];
        for h in &headers {
            args.extend(["-H", h]);
        }
        clients
            .kcat(&args, Some(format!("{name}\n").as_bytes()), MINUTE)
            .await
            .unwrap();
    }

    // A group member gets exactly the records the condition holds for.
    let condition = "region IN ('eu', 'uk') AND amount > 100";
    let mut wanted = sdk_values(|i| region(i) != "us" && amount(i).is_some_and(|a| a > 100));
    wanted.insert("kcat-0".into());
    let mut audit = Consumer::builder(&proxies.join(","))
        .group("audit")
        .auto_offset_reset(Offset::Earliest)
        .filter(condition)
        .build()
        .await
        .unwrap();
    audit.subscribe(&["payments"]).await.unwrap();
    assert_eq!(read(&mut audit, wanted.len()).await, wanted);
    audit.commit_sync().await.unwrap();
    let described = admin.describe_group("audit").await.unwrap();
    assert_eq!(described.offsets.len(), 2, "{described:?}");
    for lag in &described.offsets {
        assert_eq!(lag.lag, 0, "{lag:?}");
        assert!(lag.committed > 0, "{lag:?}");
    }
    audit.close().await.unwrap();

    // With tags too: both must take a record.
    let mut small = Consumer::builder(&server)
        .auto_offset_reset(Offset::Earliest)
        .tags("paid")
        .filter("amount BETWEEN 10 AND 40 AND NOT region = 'uk'")
        .build()
        .await
        .unwrap();
    small
        .assign((0..2).map(|p| TopicPartition::new("payments", p)).collect())
        .await
        .unwrap();
    let wanted = sdk_values(|i| {
        i % 2 == 0 && amount(i).is_some_and(|a| (10..=40).contains(&a)) && region(i) != "uk"
    });
    assert!(!wanted.is_empty());
    assert_eq!(read(&mut small, wanted.len()).await, wanted);

    // The CLI, with a header missing from some records: those are left out.
    let out = strata(
        &[
            "consume",
            "payments",
            "--filter",
            "region = 'us' AND amount >= 250",
            "--from-beginning",
            "--timeout-ms",
            "3000",
            "--server",
            &server,
        ],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    let expected =
        sdk_values(|i| region(i) == "us" && amount(i).is_some_and(|a| a >= 250)).len() + 1;
    assert_eq!(out.lines().count(), expected, "{out}");

    // The proxy itself leaves records out (the SDK checks again, so only a raw fetch shows
    // what the proxy sent): every record it sends holds, and the next read starts past the
    // last record it read, taken or not.
    let raw = connection
        .grpc()
        .fetch(v1::FetchRequest {
            topic: "payments".into(),
            partition: 0,
            offset: 0,
            max_bytes: 1 << 20,
            max_wait_ms: 0,
            filter: "region = 'uk'".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(raw.error.is_none(), "{:?}", raw.error);
    let mut sent = 0;
    for bytes in raw.batches {
        let batch = RecordBatch::parse_sparse(bytes).unwrap();
        for record in decode_batch(&batch).unwrap() {
            let region = record.headers.iter().find(|(k, _)| k == "region");
            assert_eq!(region.and_then(|(_, v)| v.as_deref()), Some(&b"uk"[..]));
            sent += 1;
        }
    }
    let read = raw.next_offset;
    assert!(
        sent > 0 && sent * 2 < read,
        "{sent} records sent of {read} read"
    );

    // Bad input, each with an error naming the condition and the place.
    let Err(Error::InvalidConfig(message)) =
        Consumer::builder(&server).filter("amount >").build().await
    else {
        panic!("a condition that does not parse was accepted");
    };
    assert!(
        message.contains("`amount >` does not parse at character 9"),
        "{message}"
    );
    let cli_refusal = strata(
        &[
            "consume",
            "payments",
            "--filter",
            "region < 'eu'",
            "--server",
            &server,
        ],
        None,
        MINUTE,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{cli_refusal:#}").contains("compare with = or <> only"),
        "{cli_refusal:#}"
    );
    let raw = connection
        .grpc()
        .fetch(v1::FetchRequest {
            topic: "payments".into(),
            partition: 0,
            offset: 0,
            max_bytes: 1 << 20,
            max_wait_ms: 0,
            filter: "region = 'eu' AND".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let error = raw.error.unwrap();
    assert_eq!(error.error_code(), Some(ErrorCode::InvalidArgument));
    assert!(
        error.message.contains("`region = 'eu' AND`"),
        "{}",
        error.message
    );
    assert!(raw.batches.is_empty());
}
