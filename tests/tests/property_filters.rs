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
    Admin, Connection, Consumer, Error, Offset, Producer, ProducerRecord, TopicPartition,
};
use strata_format::{RecordBatch, decode_batch};
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_integration_tests::selecting::{
    assert_fetch_refused, consume_refused_by_cli, consume_with_cli, fetch_from_start, raw_fetch,
    read_values,
};
use strata_proto::v1;

const MINUTE: Duration = Duration::from_secs(60);
const RECORDS: u32 = 300;

/// Record `i`'s region, and its amount (`None`: no amount header).
fn region(i: u32) -> &'static str {
    ["eu", "us", "uk"][(i % 3) as usize]
}
fn amount(i: u32) -> Option<u32> {
    (!i.is_multiple_of(10)).then_some(i)
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
    assert_eq!(read_values(&mut audit, wanted.len()).await, wanted);
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
    assert_eq!(read_values(&mut small, wanted.len()).await, wanted);

    // The CLI, with a header missing from some records: those are left out.
    let out = consume_with_cli(
        &server,
        "payments",
        &["--filter", "region = 'us' AND amount >= 250"],
    )
    .await;
    let expected =
        sdk_values(|i| region(i) == "us" && amount(i).is_some_and(|a| a >= 250)).len() + 1;
    assert_eq!(out.lines().count(), expected, "{out}");

    // The proxy itself leaves records out (the SDK checks again, so only a raw fetch shows
    // what the proxy sent): every record it sends holds, and the next read starts past the
    // last record it read, taken or not.
    let uk = v1::FetchRequest {
        filter: "region = 'uk'".into(),
        ..fetch_from_start("payments")
    };
    let raw = raw_fetch(&connection, uk).await;
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
    let cli_refusal =
        consume_refused_by_cli(&server, "payments", &["--filter", "region < 'eu'"]).await;
    assert!(
        cli_refusal.contains("compare with = or <> only"),
        "{cli_refusal}"
    );
    let bad = v1::FetchRequest {
        filter: "region = 'eu' AND".into(),
        ..fetch_from_start("payments")
    };
    assert_fetch_refused(&connection, bad, &["`region = 'eu' AND`"]).await;
}
