//! Consumer retries and dead letters on a process cluster on real etcd (two proxies, three
//! brokers, two controllers):
//! - a group's consumer nacks what it fails: a record failing once comes back after its
//!   backoff (not before) naming its origin and attempt, and is then processed; a poison
//!   record comes back `max_retries` times and is then dead-lettered with its origin, attempts
//!   and last error; the group's committed positions move on past both, so nothing blocks;
//! - `strata dlq list|show|replay`, the proxies' REST routes for the same, and `strata nack`;
//! - bad input gets typed errors naming the problem: a retry or dead-letter topic written to
//!   or created directly, a nack without a retry policy, a backoff beyond the retry topic's
//!   maximum, another group's retry topic, an offset with no record.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use strata_client::{
    Admin, Connection, Consumer, ConsumerRecord, Error, ErrorCode, Offset, Producer,
    ProducerRecord, RetryPolicy,
};
use strata_clock::Clock as _;
use strata_integration_tests::cli::strata;
use strata_integration_tests::harness;
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::selecting::value;
use strata_proto::v1;

const MINUTE: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    strata_clock::SystemClock.unix_millis()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
    }
}

/// What the test's consumer did with each record it got.
#[derive(Default)]
struct Seen {
    processed: BTreeMap<String, Vec<ConsumerRecord>>,
    /// When each nack of a value was answered, and the attempt it was.
    nacked: BTreeMap<String, Vec<(i64, u32)>>,
    dead: Vec<(String, i64)>,
}

/// Polls for up to `timeout` or until `done`, failing `o-7` always and `o-3` once.
async fn consume(
    consumer: &mut Consumer,
    seen: &mut Seen,
    timeout: Duration,
    done: impl Fn(&Seen) -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done(seen) && tokio::time::Instant::now() < deadline {
        for record in consumer.poll(Duration::from_millis(500)).await.unwrap() {
            let name = value(&record);
            let fails =
                name == "o-7" && record.attempt() < 3 && !seen.dead.iter().any(|(n, _)| *n == name)
                    || name == "o-3" && record.attempt() == 0;
            if fails {
                let nacked = consumer
                    .nack(&record, &format!("poison: cannot parse {name}"))
                    .await
                    .unwrap();
                if nacked.dead_lettered {
                    seen.dead.push((name.clone(), nacked.offset));
                }
                seen.nacked
                    .entry(name)
                    .or_default()
                    .push((now_ms(), nacked.attempt));
            } else {
                seen.processed.entry(name).or_default().push(record);
            }
        }
        consumer.commit_sync().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_records_come_back_after_their_backoff_and_poison_ones_are_dead_lettered() {
    harness::init_tracing();
    let cluster = ProcessCluster::start(Spec::standard("retries"))
        .await
        .unwrap();
    let proxies = cluster.proxies();
    let server = proxies[0].clone();
    let all_proxies = proxies.join(",");
    let connection = Connection::connect(&all_proxies).await.unwrap();
    let admin = Admin::new(connection.clone());
    admin.create_topic("orders", 2).await.unwrap();
    let producer = Producer::new(connection.clone(), Default::default());
    for i in 0..20 {
        producer
            .send(ProducerRecord::new("orders", format!("o-{i}")).with_key(format!("k{i}")))
            .await
            .unwrap();
    }

    let mut consumer = Consumer::builder(&all_proxies)
        .group("billing")
        .retries(policy())
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&["orders"]).await.unwrap();
    let mut seen = Seen::default();
    consume(&mut consumer, &mut seen, MINUTE, |s| {
        s.processed.len() == 19 && !s.dead.is_empty()
    })
    .await;

    // o-3 failed once and came back, after its 1 s backoff, naming where it came from.
    let again = &seen.processed["o-3"];
    assert_eq!(again.len(), 1, "processed once");
    assert_eq!(again[0].attempt(), 1);
    assert_eq!(again[0].topic, "__retry.billing");
    let (origin_topic, _, _) = again[0].origin().unwrap();
    assert_eq!(origin_topic, "orders");
    let (nacked_at, _) = seen.nacked["o-3"][0];
    assert!(
        again[0].timestamp >= nacked_at - 100 + 1_000,
        "not back before its backoff"
    );
    // o-7 failed its first read and both retries, then went to the dead-letter topic.
    let attempts: Vec<u32> = seen.nacked["o-7"].iter().map(|(_, a)| *a).collect();
    assert_eq!(attempts, [1, 2, 2], "two retries, then dead: {attempts:?}");
    assert_eq!(seen.dead.len(), 1);
    assert!(!seen.processed.contains_key("o-7"));
    assert_eq!(seen.processed.len(), 19, "everything else was processed");
    // The poison record blocked nothing: every position moved on.
    let group = admin.describe_group("billing").await.unwrap();
    for lag in &group.offsets {
        assert_eq!(lag.lag, 0, "{lag:?}");
    }

    // The dead letter, through the CLI and the proxies' REST routes.
    let listed = strata(
        &["dlq", "list", "billing", "--server", &server],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    assert!(
        listed.contains("orders/") && listed.contains("poison: cannot parse o-7"),
        "{listed}"
    );
    let dead_offset = seen.dead[0].1;
    let shown = strata(
        &[
            "dlq",
            "show",
            "billing",
            &dead_offset.to_string(),
            "--server",
            &server,
        ],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["value"], "o-7");
    assert_eq!(shown["attempts"], 2);
    assert_eq!(shown["topic"], "orders");
    let http = cluster.proxy_http_addrs()[1];
    let rest: serde_json::Value =
        reqwest::get(format!("http://{http}/v1/groups/billing/dead-letters"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(rest["letters"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["letters"][0]["last_error"], "poison: cannot parse o-7");

    // Replayed by REST, the record is back in its topic as its producer wrote it.
    let replayed: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "http://{http}/v1/groups/billing/dead-letters/replay"
        ))
        .json(&serde_json::json!({ "offsets": [dead_offset] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["replayed"][0]["topic"], "orders", "{replayed}");
    consume(&mut consumer, &mut seen, MINUTE, |s| {
        s.processed.contains_key("o-7")
    })
    .await;
    assert_eq!(
        seen.processed["o-7"][0].attempt(),
        0,
        "replayed without its history"
    );
    assert_eq!(seen.processed["o-7"][0].topic, "orders");

    // `strata nack` sends a record back by hand; it returns as attempt 1.
    let o0 = &seen.processed["o-0"][0].clone();
    let nacked = strata(
        &[
            "nack",
            "billing",
            "orders",
            &o0.partition.to_string(),
            &o0.offset.to_string(),
            "--error",
            "manual",
            "--delay",
            "1s",
            "--server",
            &server,
        ],
        None,
        MINUTE,
    )
    .await
    .unwrap();
    assert!(nacked.contains("sent to __retry.billing@"), "{nacked}");
    consume(&mut consumer, &mut seen, MINUTE, |s| {
        s.processed["o-0"].len() == 2
    })
    .await;
    assert_eq!(seen.processed["o-0"][1].attempt(), 1);

    // Bad input, each refused with the reason.
    let direct = producer
        .send(ProducerRecord::new("__retry.billing", "forged"))
        .await
        .unwrap_err();
    assert!(
        direct.to_string().contains("retry or dead-letter topic"),
        "{direct}"
    );
    let created = admin.create_topic("__dlq.mine", 1).await.unwrap_err();
    assert!(created.to_string().contains("reserved"), "{created}");
    let plain = Consumer::builder(&server)
        .group("billing")
        .build()
        .await
        .unwrap();
    let Err(Error::InvalidConfig(message)) = plain.nack(o0, "x").await else {
        panic!("a nack without a retry policy must be refused");
    };
    assert!(message.contains("retry policy"), "{message}");
    let nack = |group: &str, topic: &str, offset: i64, delay_ms: i64| v1::NackRequest {
        group: group.into(),
        topic: topic.into(),
        partition: o0.partition,
        offset,
        error: "x".into(),
        delay_ms,
        max_retries: 0,
    };
    for (request, code, says) in [
        (
            nack("billing", "orders", o0.offset, 3 * 3_600_000),
            ErrorCode::InvalidArgument,
            "2 hours",
        ),
        (
            nack("billing", "__retry.other", 0, 0),
            ErrorCode::InvalidArgument,
            "is not a topic group",
        ),
        (
            nack("billing", "orders", 1_000_000, 0),
            ErrorCode::OffsetOutOfRange,
            "out of range",
        ),
    ] {
        let answer = connection.grpc().nack(request).await.unwrap().into_inner();
        let error = answer.error.expect("refused");
        assert_eq!(error.error_code(), Some(code), "{}", error.message);
        assert!(error.message.contains(says), "{}", error.message);
    }
    consumer.close().await.unwrap();
}
