//! Real Kafka clients against Strata's Kafka listener, each scenario on a `strata standalone`
//! process and on a process cluster on real etcd (a controller, two brokers, two proxies):
//! kcat's metadata listing and keyed produce/consume with headers; confluent-kafka's
//! idempotent producer in every compression, read back in full; records written by Kafka
//! clients read identically by `strata consume` and the SDK, and the other way round; kcat
//! and confluent-kafka consumer groups, with a member killed by `kill -9`; confluent-kafka's
//! AdminClient creating, configuring, growing and deleting the topics the others use.
//!
//! The clients come from `scripts/setup.sh` (kcat from Debian, Python clients in
//! `target/kafka-venv`); see `strata_integration_tests::kafka_clients`. The Python programs
//! are `tests/kafka/*.py`. Scenarios run one at a time: each starts several processes.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use strata_client::{Connection, Consumer, ConsumerConfig, Offset, Producer, ProducerRecord};
use strata_client::{ConsumerRecord, TopicPartition};
use strata_integration_tests::harness;
use strata_integration_tests::kafka_clients::{Backend, BackendKind, KafkaClients, spawn_lines};
use tokio::io::{AsyncBufReadExt, BufReader};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MINUTE: Duration = Duration::from_secs(60);

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// Runs `scenario` on each backend in turn; `None` when the clients are missing (skipped).
macro_rules! on_every_backend {
    ($test:expr, |$backend:ident, $clients:ident| $body:expr) => {{
        let _one_at_a_time = SERIAL.lock().await;
        harness::init_tracing();
        let Some($clients) = KafkaClients::find($test) else {
            return;
        };
        for kind in BackendKind::ALL {
            let started = Instant::now();
            let $backend = Backend::start(kind, $test).await.unwrap();
            $body;
            eprintln!(
                "[{}] {} passed in {:.1} s",
                kind.name(),
                $test,
                started.elapsed().as_secs_f64()
            );
        }
    }};
}

// ---------------------------------------------------------------------------------------
// kcat

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_the_proxies_and_round_trips_keys_and_headers() {
    on_every_backend!("kcat", |backend, clients| kcat_scenario(&backend, &clients)
        .await);
}

async fn kcat_scenario(backend: &Backend, clients: &KafkaClients) {
    let bootstrap = backend.bootstrap();
    backend.create_topic("kcat", 3).await.unwrap();

    let listing = clients
        .kcat(&["-b", &bootstrap, "-L", "-t", "kcat"], None, MINUTE)
        .await
        .unwrap();
    let proxies = backend.kafka_addrs();
    assert!(
        listing.contains(&format!(" {} brokers:", proxies.len())),
        "kcat -L should list the {} proxies as brokers:\n{listing}",
        proxies.len()
    );
    for addr in &proxies {
        assert!(
            listing.contains(&format!(" at {addr}")),
            "proxy {addr} missing from kcat -L:\n{listing}"
        );
    }
    assert!(
        listing.contains("topic \"kcat\" with 3 partitions:"),
        "{listing}"
    );
    for p in 0..3 {
        assert!(
            listing.contains(&format!("partition {p}, leader ")),
            "partition {p} missing:\n{listing}"
        );
    }
    assert!(
        !listing.contains("err"),
        "kcat -L reports an error:\n{listing}"
    );

    // Keyed messages with two headers, into partition 1, then read back from the beginning.
    let input = "alpha:one\nbeta:two\ngamma:three with spaces\n";
    clients
        .kcat(
            &[
                "-b",
                &bootstrap,
                "-P",
                "-t",
                "kcat",
                "-p",
                "1",
                "-K:",
                "-H",
                "h1=x",
                "-H",
                "trace=abc-123",
            ],
            Some(input.as_bytes()),
            MINUTE,
        )
        .await
        .unwrap();
    let read = clients
        .kcat(
            &[
                "-b",
                &bootstrap,
                "-C",
                "-t",
                "kcat",
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "key=%k value=%s headers=%h partition=%p offset=%o\n",
            ],
            None,
            MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        "key=alpha value=one headers=h1=x,trace=abc-123 partition=1 offset=0\n\
         key=beta value=two headers=h1=x,trace=abc-123 partition=1 offset=1\n\
         key=gamma value=three with spaces headers=h1=x,trace=abc-123 partition=1 offset=2\n",
        "kcat read back something else"
    );
}

// ---------------------------------------------------------------------------------------
// confluent-kafka's idempotent producer, every compression

/// Messages per compression. Measured on the shared 2-core machine with a debug build:
/// 100,000 messages of 100 bytes take 1-4 s to produce and 2-8 s to read back per codec,
/// 17-33 s for all four per backend, so both backends get the full count
/// (`STRATA_KAFKA_MESSAGES` changes it).
fn messages_per_codec() -> u64 {
    std::env::var("STRATA_KAFKA_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_idempotent_producer_in_every_compression() {
    on_every_backend!("compression", |backend, clients| compression_scenario(
        &backend, &clients
    )
    .await);
}

async fn compression_scenario(backend: &Backend, clients: &KafkaClients) {
    let n = messages_per_codec();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        backend.create_topic(&topic, 3).await.unwrap();
        let started = Instant::now();
        let produced = clients
            .python_json(
                "confluent_produce.py",
                &[
                    s("--bootstrap"),
                    backend.bootstrap(),
                    s("--topic"),
                    topic.clone(),
                    s("--count"),
                    n.to_string(),
                    s("--prefix"),
                    s(codec),
                    s("--value-bytes"),
                    s(100),
                    s("--compression"),
                    s(codec),
                    s("--timeout"),
                    s(240),
                ],
                5 * MINUTE,
            )
            .await
            .unwrap();
        let produce_secs = started.elapsed().as_secs_f64();
        assert_eq!(produced["acked"], n, "{codec}: {produced}");
        assert_eq!(produced["failed"], 0, "{codec}: {produced}");
        assert_eq!(produced["fatal"], json!([]), "{codec}: {produced}");
        // Offsets are dense from 0 in every partition.
        let offsets = produced["offsets"].as_object().unwrap();
        let mut total = 0;
        for (p, range) in offsets {
            let (first, last, count) = (range[0].as_i64(), range[1].as_i64(), range[2].as_i64());
            assert_eq!(first, Some(0), "{codec} partition {p}: {range}");
            assert_eq!(
                last.unwrap() + 1,
                count.unwrap(),
                "{codec} partition {p} has holes or repeats: {range}"
            );
            total += count.unwrap();
        }
        assert_eq!(total, n as i64);

        let started = Instant::now();
        let consumed = clients
            .python_json(
                "confluent_consume.py",
                &[
                    s("--bootstrap"),
                    backend.bootstrap(),
                    s("--topic"),
                    topic.clone(),
                    s("--expect"),
                    n.to_string(),
                    s("--prefix"),
                    s(codec),
                    s("--value-bytes"),
                    s(100),
                    s("--timeout"),
                    s(240),
                ],
                5 * MINUTE,
            )
            .await
            .unwrap();
        let consume_secs = started.elapsed().as_secs_f64();
        assert_eq!(consumed["count"], n, "{codec}: {consumed}");
        assert_eq!(consumed["distinct"], n, "{codec}: {consumed}");
        assert_eq!(consumed["duplicates"], 0, "{codec}: {consumed}");
        assert_eq!(consumed["missing"], 0, "{codec}: {consumed}");
        assert_eq!(consumed["bad"], 0, "{codec}: {consumed}");
        assert_eq!(consumed["complete"], true, "{codec}: {consumed}");
        eprintln!(
            "[{}] {codec}: {n} messages produced in {produce_secs:.1} s, read back in \
             {consume_secs:.1} s",
            backend.kind.name()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Both directions: Kafka clients ⇄ strata CLI and SDK

/// What every client must agree on for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    value: String,
    headers: BTreeMap<String, String>,
    timestamp: i64,
    partition: u32,
}

const BASE_TS: i64 = 1_700_000_000_000;

/// The records the Kafka clients or the SDK write with chosen timestamps: key `{tag}{i}`.
fn chosen(tag: &str, n: u32) -> BTreeMap<String, Seen> {
    (0..n)
        .map(|i| {
            let headers = BTreeMap::from([
                ("h".to_owned(), format!("x{i}")),
                ("n".to_owned(), i.to_string()),
            ]);
            let seen = Seen {
                value: format!("{tag}-value-{i}"),
                headers,
                timestamp: BASE_TS + i64::from(i) * 1000,
                partition: i % 2,
            };
            (format!("{tag}{i}"), seen)
        })
        .collect()
}

fn text(b: Option<&Bytes>) -> String {
    String::from_utf8(b.map(|b| b.to_vec()).unwrap_or_default()).unwrap()
}

fn from_sdk(r: &ConsumerRecord) -> (String, Seen) {
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), text(v.as_ref())))
        .collect();
    let seen = Seen {
        value: text(r.value.as_ref()),
        headers,
        timestamp: r.timestamp,
        partition: r.partition,
    };
    (text(r.key.as_ref()), seen)
}

fn from_json(r: &Value) -> (String, Seen) {
    let headers = r["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let seen = Seen {
        value: r["value"].as_str().unwrap_or_default().to_owned(),
        headers,
        timestamp: r["timestamp"].as_i64().unwrap(),
        partition: u32::try_from(r["partition"].as_u64().unwrap()).unwrap(),
    };
    (r["key"].as_str().unwrap_or_default().to_owned(), seen)
}

/// Every record of `topic`, read with the SDK from the beginning of both partitions.
async fn sdk_read(backend: &Backend, topic: &str, n: usize) -> BTreeMap<String, Seen> {
    let connection = Connection::connect(&backend.grpc()).await.unwrap();
    let mut consumer = Consumer::new(
        connection,
        ConsumerConfig {
            auto_offset_reset: Offset::Earliest,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    consumer
        .assign(vec![
            TopicPartition::new(topic, 0),
            TopicPartition::new(topic, 1),
        ])
        .await
        .unwrap();
    let mut all = Vec::new();
    for _ in 0..150 {
        all.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
        if all.len() >= n {
            break;
        }
    }
    consumer.close().await.unwrap();
    assert_eq!(all.len(), n, "the SDK read {} of {n} records", all.len());
    all.iter().map(from_sdk).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_clients_and_strata_clients_read_each_other() {
    on_every_backend!("both-ways", |backend, clients| {
        kafka_to_strata(&backend, &clients).await;
        strata_to_kafka(&backend, &clients).await;
    });
}

/// confluent-kafka and kcat write; `strata consume` and the SDK read the same records.
async fn kafka_to_strata(backend: &Backend, clients: &KafkaClients) {
    let topic = "from-kafka";
    backend.create_topic(topic, 2).await.unwrap();
    let confluent = chosen("c", 10);
    let spec: Vec<Value> = confluent
        .iter()
        .map(|(key, r)| {
            json!({"key": key, "value": r.value, "headers": r.headers,
                   "timestamp": r.timestamp, "partition": r.partition})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let spec_file = dir.path().join("records.json");
    std::fs::write(&spec_file, serde_json::to_vec(&spec).unwrap()).unwrap();
    let produced = clients
        .python_json(
            "confluent_produce.py",
            &[
                s("--bootstrap"),
                backend.bootstrap(),
                s("--topic"),
                s(topic),
                s("--records"),
                spec_file.display().to_string(),
                s("--timeout"),
                s(60),
            ],
            2 * MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(produced["acked"], 10, "{produced}");

    // kcat sets no timestamp of its own choosing: the producer's clock, checked for range.
    let before = now_ms() - 60_000;
    clients
        .kcat(
            &[
                "-b",
                &backend.bootstrap(),
                "-P",
                "-t",
                topic,
                "-p",
                "0",
                "-K:",
                "-H",
                "src=kcat",
            ],
            Some(b"k0:kcat-value-0\nk1:kcat-value-1\nk2:kcat-value-2\n"),
            MINUTE,
        )
        .await
        .unwrap();
    let after = now_ms() + 60_000;

    // The SDK sees every key, value, header and timestamp.
    let read = sdk_read(backend, topic, 13).await;
    for (key, want) in &confluent {
        assert_eq!(read.get(key), Some(want), "SDK read of {key}");
    }
    for i in 0..3 {
        let got = &read[&format!("k{i}")];
        assert_eq!(got.value, format!("kcat-value-{i}"));
        assert_eq!(
            got.headers,
            BTreeMap::from([("src".to_owned(), "kcat".to_owned())])
        );
        assert_eq!(got.partition, 0);
        assert!(
            (before..after).contains(&got.timestamp),
            "kcat's record {i} has timestamp {}, not the producer's clock",
            got.timestamp
        );
    }

    // `strata consume` prints every field the same.
    let printed = clients
        .strata(
            &[
                "consume",
                topic,
                "--server",
                &backend.grpc(),
                "--from-beginning",
                "--print-offsets",
                "--print-timestamp",
                "--print-key",
                "--print-headers",
                "--max-messages",
                "13",
                "--timeout-ms",
                "20000",
            ],
            None,
            MINUTE,
        )
        .await
        .unwrap();
    let mut cli: BTreeMap<String, Seen> = BTreeMap::new();
    for line in printed.lines() {
        // partition, offset, timestamp, key, headers, value
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        assert_eq!(f.len(), 6, "strata consume printed {line:?}");
        let seen = Seen {
            value: f[5].to_owned(),
            headers: kv_headers(f[4]),
            timestamp: f[2].parse().unwrap(),
            partition: f[0].parse().unwrap(),
        };
        cli.insert(f[3].to_owned(), seen);
    }
    assert_eq!(cli, read, "strata consume printed:\n{printed}");
}

/// `name=value,name=value` (kcat's `%h`, `strata consume --print-headers`).
fn kv_headers(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.to_owned(), String::new()),
        })
        .collect()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The SDK and `strata produce` write; confluent-kafka, kafka-python and kcat read the same.
async fn strata_to_kafka(backend: &Backend, clients: &KafkaClients) {
    let topic = "from-strata";
    backend.create_topic(topic, 2).await.unwrap();
    let sdk = chosen("s", 10);
    let producer = Producer::builder(&backend.grpc()).build().await.unwrap();
    for (key, r) in &sdk {
        let mut record = ProducerRecord::new(topic, r.value.clone());
        record.key = Some(Bytes::from(key.clone()));
        record.partition = Some(r.partition);
        record.timestamp = Some(r.timestamp);
        record.headers = r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
            .collect();
        producer.send(record).await.unwrap();
    }
    producer.close().await.unwrap();
    let before = now_ms() - 60_000;
    clients
        .strata(
            &[
                "produce",
                topic,
                "--server",
                &backend.grpc(),
                "--key-separator",
                ":",
                "--partition",
                "1",
            ],
            Some(b"cli0:cli-value-0\ncli1:cli-value-1\n"),
            MINUTE,
        )
        .await
        .unwrap();
    let after = now_ms() + 60_000;
    let check = |client: &str, read: &BTreeMap<String, Seen>| {
        assert_eq!(read.len(), 12, "{client} read {read:?}");
        for (key, want) in &sdk {
            assert_eq!(read.get(key), Some(want), "{client}'s read of {key}");
        }
        for i in 0..2 {
            let got = &read[&format!("cli{i}")];
            assert_eq!(got.value, format!("cli-value-{i}"), "{client}");
            assert!(got.headers.is_empty(), "{client}: {got:?}");
            assert_eq!(got.partition, 1, "{client}");
            assert!(
                (before..after).contains(&got.timestamp),
                "{client}: {got:?}"
            );
        }
    };

    let confluent = clients
        .python_json(
            "confluent_consume.py",
            &[
                s("--bootstrap"),
                backend.bootstrap(),
                s("--topic"),
                s(topic),
                s("--expect"),
                s(12),
                s("--dump"),
                s("--timeout"),
                s(60),
            ],
            2 * MINUTE,
        )
        .await
        .unwrap();
    let records = confluent["records"].as_array().unwrap();
    assert!(
        records.iter().all(|r| r["timestamp_type"] == 1),
        "CreateTime expected: {confluent}"
    );
    check("confluent-kafka", &records.iter().map(from_json).collect());

    let kafka_python = clients
        .python_json(
            "kafka_python_consume.py",
            &[
                s("--bootstrap"),
                backend.bootstrap(),
                s("--topic"),
                s(topic),
                s("--expect"),
                s(12),
                s("--timeout"),
                s(60),
            ],
            2 * MINUTE,
        )
        .await
        .unwrap();
    let records = kafka_python["records"].as_array().unwrap();
    check("kafka-python", &records.iter().map(from_json).collect());

    // kcat: one line per record, headers as `k=v,k=v`.
    let printed = clients
        .kcat(
            &[
                "-b",
                &backend.bootstrap(),
                "-C",
                "-t",
                topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k\t%s\t%h\t%p\t%T\n",
            ],
            None,
            MINUTE,
        )
        .await
        .unwrap();
    let kcat: BTreeMap<String, Seen> = printed
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "kcat printed {line:?}");
            let seen = Seen {
                value: f[1].to_owned(),
                headers: kv_headers(f[2]),
                timestamp: f[4].parse().unwrap(),
                partition: f[3].parse().unwrap(),
            };
            (f[0].to_owned(), seen)
        })
        .collect();
    check("kcat", &kcat);
}

// ---------------------------------------------------------------------------------------
// Consumer groups (the Kafka group APIs: FindCoordinator, JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch)

/// Sends `n` generated messages (`{prefix}-k{i}`) with confluent-kafka, at most `rate` a
/// second (0: as fast as it can), and checks they were all acknowledged.
async fn produce_generated(
    clients: KafkaClients,
    bootstrap: String,
    topic: &str,
    prefix: &str,
    n: u64,
    rate: u64,
) {
    let produced = clients
        .python_json(
            "confluent_produce.py",
            &[
                s("--bootstrap"),
                bootstrap,
                s("--topic"),
                s(topic),
                s("--count"),
                n.to_string(),
                s("--prefix"),
                s(prefix),
                s("--rate"),
                rate.to_string(),
                s("--timeout"),
                s(60),
            ],
            2 * MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(produced["acked"], n, "{produced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_group_consume() {
    on_every_backend!("kcat-group", |backend, clients| {
        backend.create_topic("kcat-group", 3).await.unwrap();
        produce_generated(
            clients.clone(),
            backend.bootstrap(),
            "kcat-group",
            "kg",
            300,
            0,
        )
        .await;
        let printed = clients
            .kcat(
                &[
                    "-b",
                    &backend.bootstrap(),
                    "-G",
                    "kcat-readers",
                    "-X",
                    "auto.offset.reset=earliest",
                    "-e",
                    "-q",
                    "-f",
                    "%k %s\n",
                    "kcat-group",
                ],
                None,
                MINUTE,
            )
            .await
            .unwrap();
        let lines: BTreeSet<&str> = printed.lines().collect();
        assert_eq!(printed.lines().count(), 300, "kcat -G printed:\n{printed}");
        for i in 0..300 {
            assert!(lines.contains(format!("kg-k{i} kg-v{i}").as_str()), "{i}");
        }
        let group = group_view(&backend, "kcat-readers").await;
        assert_committed_everything(&group, "kcat-group", 3, 300);
    });
}

/// The group as the admin REST API shows it (`GET /v1/groups/{group}`).
async fn group_view(backend: &Backend, group: &str) -> Value {
    let url = format!("http://{}/v1/groups/{group}", backend.admin_addr());
    let mut last = String::new();
    for _ in 0..50 {
        match reqwest::get(&url).await {
            Ok(r) if r.status().is_success() => return r.json().await.unwrap(),
            Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("GET {url}: {last}");
}

/// Every partition of `topic` has a committed offset at its high watermark (lag 0), and the
/// committed offsets add up to `total`.
fn assert_committed_everything(group: &Value, topic: &str, partitions: u32, total: i64) {
    let offsets: Vec<&Value> = group["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["topic"] == topic)
        .collect();
    assert_eq!(offsets.len(), partitions as usize, "{group}");
    let committed: i64 = offsets
        .iter()
        .map(|o| o["committed"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, total, "{group}");
    for o in offsets {
        assert_eq!(o["lag"], 0, "{o}");
        assert_eq!(o["committed"], o["high_watermark"], "{o}");
    }
}

/// One confluent-kafka group member process and what it printed so far.
struct Member {
    name: String,
    child: tokio::process::Child,
    events: tokio::sync::mpsc::UnboundedReceiver<Value>,
    assigned: Vec<u64>,
    keys: Vec<String>,
    /// Offsets read, by partition.
    offsets: BTreeMap<u64, Vec<i64>>,
    done: Option<Value>,
}

impl Member {
    fn start(
        clients: &KafkaClients,
        backend: &Backend,
        topic: &str,
        group: &str,
        name: &str,
    ) -> Self {
        let command = clients.python(
            "confluent_member.py",
            &[
                s("--bootstrap"),
                backend.bootstrap(),
                s("--topic"),
                s(topic),
                s("--group"),
                s(group),
                s("--name"),
                s(name),
                s("--timeout"),
                s(180),
            ],
        );
        let mut child = spawn_lines(command).unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(event);
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            events,
            assigned: Vec::new(),
            keys: Vec::new(),
            offsets: BTreeMap::new(),
            done: None,
        }
    }

    /// Takes in what the member printed since the last call.
    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event["event"].as_str() {
                Some("assigned") => {
                    self.assigned = event["partitions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_u64().unwrap())
                        .collect();
                }
                Some("revoked") => self.assigned.clear(),
                Some("consumed") => {
                    for record in event["records"].as_array().unwrap() {
                        self.keys.push(record[0].as_str().unwrap().to_owned());
                        self.offsets
                            .entry(record[1].as_u64().unwrap())
                            .or_default()
                            .push(record[2].as_i64().unwrap());
                    }
                }
                Some("done") => self.done = Some(event),
                _ => {}
            }
        }
    }

    /// Closes its stdin: the member leaves the group, commits, prints `done` and exits.
    async fn stop(&mut self) {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(MINUTE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within a minute", self.name))
            .unwrap();
        assert!(status.success(), "{} exited with {status}", self.name);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.drain();
    }
}

/// Polls `members` until `done` holds of them, at most `timeout`; on a timeout, what each
/// member holds.
async fn try_wait_members(
    members: &mut [Member],
    timeout: Duration,
    done: impl Fn(&[Member]) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        for m in members.iter_mut() {
            m.drain();
        }
        if done(members) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let state: Vec<String> = members
                .iter()
                .map(|m| format!("{}: {:?} {} keys", m.name, m.assigned, m.keys.len()))
                .collect();
            return Err(format!("{state:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_members(
    members: &mut [Member],
    timeout: Duration,
    what: &str,
    done: impl Fn(&[Member]) -> bool,
) {
    if let Err(state) = try_wait_members(members, timeout, done).await {
        panic!("{what} within {timeout:?}: {state}");
    }
}

/// Per partition, the offsets read by any of `members`: `p: n distinct in [min, max], holes`.
fn coverage(members: &[&Member]) -> String {
    let mut all: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
    for m in members {
        for (p, offsets) in &m.offsets {
            all.entry(*p).or_default().extend(offsets);
        }
    }
    all.iter()
        .map(|(p, offsets)| {
            let (min, max) = (offsets.first().unwrap(), offsets.last().unwrap());
            let holes: Vec<i64> = (*min..=*max)
                .filter(|o| !offsets.contains(o))
                .take(10)
                .collect();
            format!("p{p}: {} in [{min}, {max}], holes {holes:?}", offsets.len())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three_confluent_consumers_survives_a_kill_9() {
    on_every_backend!("group-of-three", |backend, clients| {
        group_of_three(&backend, &clients).await;
    });
}

async fn group_of_three(backend: &Backend, clients: &KafkaClients) {
    let (topic, group) = ("shared", "three");
    backend.create_topic(topic, 6).await.unwrap();
    let mut members: Vec<Member> = ["m1", "m2", "m3"]
        .iter()
        .map(|name| Member::start(clients, backend, topic, group, name))
        .collect();
    // The three split the six partitions, two each.
    wait_members(
        &mut members,
        MINUTE,
        "three members sharing 6 partitions",
        |ms| {
            let all: BTreeSet<u64> = ms.iter().flat_map(|m| m.assigned.clone()).collect();
            all.len() == 6 && ms.iter().all(|m| m.assigned.len() == 2)
        },
    )
    .await;

    // 3000 messages over 3 s; the third member is killed while they flow.
    let first = tokio::spawn(produce_generated(
        clients.clone(),
        backend.bootstrap(),
        topic,
        "g1",
        3000,
        1000,
    ));
    wait_members(&mut members, MINUTE, "every member consuming", |ms| {
        ms.iter().all(|m| !m.keys.is_empty())
    })
    .await;

    // kill -9 of the third: the other two take its partitions.
    let victim = members.pop().unwrap();
    let pid = victim.child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_members(
        &mut members,
        MINUTE,
        "two members taking all 6 partitions",
        |ms| {
            let all: BTreeSet<u64> = ms.iter().flat_map(|m| m.assigned.clone()).collect();
            all.len() == 6 && ms.iter().all(|m| m.assigned.len() == 3)
        },
    )
    .await;
    first.await.unwrap();
    produce_generated(clients.clone(), backend.bootstrap(), topic, "g2", 3000, 0).await;

    let mut victim = victim;
    victim.drain();
    let expected: BTreeSet<String> = (0..3000)
        .flat_map(|i| [format!("g1-k{i}"), format!("g2-k{i}")])
        .collect();
    let victim_keys: BTreeSet<String> = victim.keys.iter().cloned().collect();
    let all_read = try_wait_members(&mut members, MINUTE, |ms| {
        let mut seen = victim_keys.clone();
        seen.extend(ms.iter().flat_map(|m| m.keys.iter().cloned()));
        expected.is_subset(&seen)
    })
    .await;
    if let Err(state) = all_read {
        let everyone: Vec<&Member> = members.iter().chain([&victim]).collect();
        panic!(
            "not all 6000 messages consumed within a minute: {state}\nread: {}\n\
             the killed member read: {}\ngroup: {}",
            coverage(&everyone),
            coverage(&[&victim]),
            group_view(backend, group).await
        );
    }
    for m in &mut members {
        m.stop().await;
        let done = m.done.as_ref().unwrap();
        assert_eq!(done["errors"], json!({}), "{}: {done}", m.name);
    }
    let total: usize = victim.keys.len() + members.iter().map(|m| m.keys.len()).sum::<usize>();
    eprintln!(
        "[{}] group of three: {} messages consumed for 6000 ({} by the killed member)",
        backend.kind.name(),
        total,
        victim.keys.len()
    );

    // The group's commits: lag 0 on every partition, in the REST API and in the CLI.
    let view = group_view(backend, group).await;
    assert_committed_everything(&view, topic, 6, 6000);
    let described = clients
        .strata(
            &["group", "describe", group, "--server", &backend.grpc()],
            None,
            MINUTE,
        )
        .await
        .unwrap();
    assert!(described.contains("total lag 0"), "{described}");
    for p in 0..6 {
        let row = described
            .lines()
            .find(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 5 && f[0] == topic && f[1] == p.to_string()
            })
            .unwrap_or_else(|| panic!("no row for partition {p}:\n{described}"));
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(f[2], f[3], "committed = high watermark: {row}");
        assert_eq!(f[4], "0", "lag: {row}");
    }
}

// ---------------------------------------------------------------------------------------
// confluent-kafka's AdminClient (the Kafka admin APIs: CreateTopics, DescribeConfigs,
// CreatePartitions, DeleteTopics)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_admin_client_manages_the_topics_clients_use() {
    on_every_backend!("confluent-admin", |backend, clients| {
        confluent_admin(&backend, &clients).await;
    });
}

async fn confluent_admin(backend: &Backend, clients: &KafkaClients) {
    let admin = |topic: &str, delete: bool| {
        let mut args = vec![
            s("--bootstrap"),
            backend.bootstrap(),
            s("--topic"),
            s(topic),
            s("--partitions"),
            s(3),
            s("--retention-ms"),
            s(3_600_000),
            s("--timeout"),
            s(60),
        ];
        if delete {
            args.push(s("--delete"));
        }
        let clients = clients.clone();
        async move {
            clients
                .python_json("confluent_admin.py", &args, 2 * MINUTE)
                .await
                .unwrap()
        }
    };
    let made = admin("admin-made", false).await;
    assert_eq!(made["errors"], json!([]), "{made}");
    assert_eq!(made["created"], true, "{made}");
    assert_eq!(made["retention_ms"], "3600000", "{made}");
    assert_eq!(made["partitions_after"], 4, "{made}");
    let mut proxies: Vec<String> = backend
        .kafka_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    proxies.sort();
    assert_eq!(made["brokers"], json!(proxies), "{made}");

    // Strata's own clients see the topic as the Kafka admin left it, and Kafka clients use it.
    let topic = strata_client::Admin::connect(&backend.grpc())
        .await
        .unwrap()
        .describe_topic("admin-made")
        .await
        .unwrap();
    assert_eq!(topic.partitions.len(), 4);
    backend
        .admin_api()
        .wait_owned("admin-made", MINUTE, |_| true)
        .await
        .unwrap();
    produce_generated(
        clients.clone(),
        backend.bootstrap(),
        "admin-made",
        "adm",
        1000,
        0,
    )
    .await;
    let consumed = clients
        .python_json(
            "confluent_consume.py",
            &[
                s("--bootstrap"),
                backend.bootstrap(),
                s("--topic"),
                s("admin-made"),
                s("--expect"),
                s(1000),
                s("--prefix"),
                s("adm"),
                s("--timeout"),
                s(60),
            ],
            2 * MINUTE,
        )
        .await
        .unwrap();
    assert_eq!(consumed["complete"], true, "{consumed}");
    assert_eq!(consumed["duplicates"], 0, "{consumed}");

    // A topic deleted through the Kafka admin is gone for Strata's clients too.
    let gone = admin("admin-gone", true).await;
    assert_eq!(gone["errors"], json!([]), "{gone}");
    assert_eq!(gone["deleted"], true, "{gone}");
    assert_eq!(gone["listed_after_delete"], false, "{gone}");
    let described = strata_client::Admin::connect(&backend.grpc())
        .await
        .unwrap()
        .describe_topic("admin-gone")
        .await;
    assert!(described.is_err(), "a deleted topic: {described:?}");
}
