//! A Kafka client's view of broker faults: on a process cluster on real etcd (a controller,
//! two brokers, two proxies), confluent-kafka's idempotent producer (acks=all) sends a steady
//! stream while a confluent-kafka consumer reads it; one broker is killed with `kill -9`, its
//! partitions move to the other, it comes back, and a partition is moved to it through the
//! admin REST API (`POST /v1/reassignments`). Every acknowledged message must be read exactly
//! once, at the offset its acknowledgement gave, and the clients must have seen only
//! retriable errors (their summaries, printed, list every error).

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_integration_tests::harness;
use strata_integration_tests::kafka_clients::{Backend, BackendKind, KafkaClients};

/// Messages of the stream and its rate: 20 s of traffic, so the kill, the failover, the
/// restart and the reassignment all happen while it flows.
const MESSAGES: u64 = 6000;
const RATE: u64 = 300;

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// `key<TAB>partition<TAB>offset` lines of a client's file, by key.
fn lines(path: &std::path::Path) -> Vec<(String, u32, i64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_owned(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

async fn owners(backend: &Backend, topic: &str) -> BTreeMap<u32, String> {
    backend
        .admin_api()
        .partitions(topic)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.broker.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_through_a_broker_kill_and_a_reassignment() {
    let test = "kafka-faults";
    harness::init_tracing();
    let Some(clients) = KafkaClients::find(test) else {
        return;
    };
    let mut backend = Backend::start(BackendKind::Cluster, test).await.unwrap();
    let topic = "steady";
    backend.create_topic(topic, 4).await.unwrap();
    let before = owners(&backend, topic).await;
    eprintln!("owners before: {before:?}");
    let victim = before.values().next().unwrap().clone();
    let survivor = backend
        .brokers()
        .into_iter()
        .find(|b| *b != victim)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let acked_file = dir.path().join("acked.tsv");
    let read_file = dir.path().join("read.tsv");
    let producer = {
        let clients = clients.clone();
        let args = vec![
            s("--bootstrap"),
            backend.bootstrap(),
            s("--topic"),
            s(topic),
            s("--count"),
            s(MESSAGES),
            s("--rate"),
            s(RATE),
            s("--prefix"),
            s("f"),
            s("--acked-file"),
            acked_file.display().to_string(),
            s("--timeout"),
            s(120),
        ];
        tokio::spawn(async move {
            clients
                .python_json("confluent_produce.py", &args, Duration::from_secs(180))
                .await
        })
    };
    let consumer = {
        let clients = clients.clone();
        let args = vec![
            s("--bootstrap"),
            backend.bootstrap(),
            s("--topic"),
            s(topic),
            s("--prefix"),
            s("f"),
            s("--keys-file"),
            read_file.display().to_string(),
            s("--idle"),
            s(15),
            s("--timeout"),
            s(150),
        ];
        tokio::spawn(async move {
            clients
                .python_json("confluent_consume.py", &args, Duration::from_secs(180))
                .await
        })
    };

    // The fault, the failover, the return and a reassignment, while the stream flows.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let killed_at = Instant::now();
    backend.kill(&victim).unwrap();
    eprintln!("kill -9 {victim}");
    let api = backend.admin_api();
    api.wait_owned(topic, Duration::from_secs(30), |b| b == survivor)
        .await
        .unwrap();
    eprintln!(
        "every partition on {survivor} {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    backend.restart(&victim).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !api
        .brokers()
        .await
        .is_ok_and(|bs| bs.iter().any(|b| b.id == victim))
    {
        assert!(Instant::now() < deadline, "{victim} did not register again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Move a partition to the broker that does not own it now (the controller may already
    // have given the returning broker some back), and wait for it to be writable there.
    let parts = api.partitions(topic).await.unwrap();
    let moved = parts.iter().max_by_key(|p| p.high_watermark).unwrap();
    let target = if moved.broker.as_deref() == Some(victim.as_str()) {
        survivor.clone()
    } else {
        victim.clone()
    };
    api.reassign(topic, moved.partition, &target).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let parts = api.partitions(topic).await.unwrap();
        let now = parts
            .iter()
            .find(|p| p.partition == moved.partition)
            .unwrap();
        if now.broker.as_deref() == Some(target.as_str())
            && now.state == "Write"
            && now.epoch > moved.epoch
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partition {} not writable on {target} 30 s after its reassignment: {parts:?}",
            moved.partition
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "partition {} reassigned to {target} at {:.1} s; owners now {:?}",
        moved.partition,
        killed_at.elapsed().as_secs_f64() + 4.0,
        owners(&backend, topic).await
    );

    let produced: Value = producer.await.unwrap().unwrap();
    let live: Value = consumer.await.unwrap().unwrap();
    eprintln!("producer: {produced}");
    eprintln!("live consumer: {live}");

    // The producer: everything acknowledged in the end, no message failed, no fatal error.
    assert_eq!(produced["sent"], MESSAGES, "{produced}");
    assert_eq!(produced["failed"], 0, "{produced}");
    assert_eq!(produced["fatal"], Value::Array(vec![]), "{produced}");
    assert_eq!(produced["retriable_only"], true, "{produced}");
    let acked = lines(&acked_file);
    assert_eq!(acked.len() as u64, MESSAGES, "{produced}");

    // The live consumer read each acknowledged message once, where it was acknowledged.
    let mut read: BTreeMap<String, Vec<(u32, i64)>> = BTreeMap::new();
    for (key, p, o) in lines(&read_file) {
        read.entry(key).or_default().push((p, o));
    }
    let lost: Vec<&String> = acked
        .iter()
        .filter(|(k, _, _)| !read.contains_key(k))
        .map(|(k, _, _)| k)
        .collect();
    let duplicated: Vec<(&String, &Vec<(u32, i64)>)> =
        read.iter().filter(|(_, at)| at.len() > 1).collect();
    let misplaced: Vec<&(String, u32, i64)> = acked
        .iter()
        .filter(|(k, p, o)| read.get(k).is_some_and(|at| at[0] != (*p, *o)))
        .collect();
    eprintln!(
        "live read: {} acknowledged, {} read, {} lost, {} duplicated, {} at another offset",
        acked.len(),
        read.len(),
        lost.len(),
        duplicated.len(),
        misplaced.len()
    );
    assert!(lost.is_empty(), "lost: {:?}", &lost[..lost.len().min(20)]);
    assert!(
        duplicated.is_empty(),
        "duplicated: {:?}",
        &duplicated[..duplicated.len().min(20)]
    );
    assert!(
        misplaced.is_empty(),
        "misplaced: {:?}",
        &misplaced[..misplaced.len().min(20)]
    );
    assert_eq!(live["bad"], 0, "{live}");
    // The consumer's errors are connection losses it recovers from, never fatal ones.
    for error in live["error_samples"].as_array().unwrap() {
        assert_eq!(error["fatal"], false, "{live}");
    }

    // A fresh read of the whole log agrees: every acknowledged message once, in its place.
    let reread = clients
        .python_json(
            "confluent_consume.py",
            &[
                s("--bootstrap"),
                backend.bootstrap(),
                s("--topic"),
                s(topic),
                s("--acked-file"),
                acked_file.display().to_string(),
                s("--prefix"),
                s("f"),
                s("--timeout"),
                s(60),
            ],
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    eprintln!("re-read: {reread}");
    assert_eq!(reread["missing"], 0, "{reread}");
    assert_eq!(reread["duplicates"], 0, "{reread}");
    assert_eq!(reread["wrong_place"], 0, "{reread}");
    assert_eq!(reread["bad"], 0, "{reread}");
    assert_eq!(reread["count"], MESSAGES, "{reread}");
}
