//! Message trace against a live process cluster on real etcd (a controller, a broker, a
//! proxy): a traced message's path shows its produce, store, delivery and group commit in
//! order with plausible times, through `strata trace`, its JSON and the REST route alike;
//! sampling picks the messages the rule says; queries with bad input get typed errors; a
//! Kafka client's produce and fetch (kcat) are traced like the SDK's.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strata_client::admin::TopicSettings;
use strata_client::{Admin, Connection, Consumer, GrpcClient, Offset, Producer, ProducerRecord};
use strata_format::batch::offsets_of;
use strata_integration_tests::cli::{metrics, samples, strata};
use strata_integration_tests::harness::ops::Cluster as _;
use strata_integration_tests::harness::procs::{ProcessCluster, Spec};
use strata_integration_tests::kafka_clients::KafkaClients;
use strata_proto::v1;
use strata_proxy::trace::{TRACE_TOPIC, sampled};

const STEPS: [&str; 8] = [
    "received",
    "buffered",
    "flush_started",
    "written",
    "committed",
    "acked",
    "delivered",
    "group_committed",
];

/// `strata trace` of `id`, as JSON, retried while its events are still being written.
async fn trace_json(server: &str, id: &str, wanted: usize) -> serde_json::Value {
    let mut last = String::new();
    for _ in 0..40 {
        match strata(
            &["trace", id, "--server", server, "--format", "json"],
            None,
            Duration::from_secs(30),
        )
        .await
        {
            Ok(out) => {
                let json: serde_json::Value = serde_json::from_str(&out).unwrap();
                if json["steps"].as_array().unwrap().len() >= wanted {
                    return json;
                }
                last = out;
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the trace of {id} never got {wanted} steps: {last}");
}

/// The steps of a message as `(step, detail)`; none when it has no trace.
async fn steps_of(grpc: &GrpcClient, topic: &str, offset: i64) -> Vec<(String, String)> {
    let answer = grpc
        .clone()
        .trace(v1::TraceRequest {
            topic: topic.into(),
            partition: 0,
            offset,
            within_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    if let Some(e) = answer.error {
        assert_eq!(e.code, "NOT_FOUND", "{}", e.message);
    }
    answer
        .steps
        .into_iter()
        .map(|s| (s.step, s.detail))
        .collect()
}

/// The first `step` of a message, once its event is written (at most 10 s).
async fn wait_for_step(
    grpc: &GrpcClient,
    topic: &str,
    offset: i64,
    step: &str,
) -> (String, String) {
    for _ in 0..40 {
        if let Some(found) = steps_of(grpc, topic, offset)
            .await
            .into_iter()
            .find(|(s, _)| s == step)
        {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{topic}/0/{offset} never got a {step} step");
}

/// A cluster of one of each (`name` for its logs) with `topic` tracing every message: the
/// cluster, its proxies' addresses and a connection to them.
async fn cluster_tracing(name: &str, topic: &str) -> (ProcessCluster, String, Connection) {
    let spec = Spec {
        brokers: 1,
        proxies: 1,
        storage_nodes: 1,
        replicas: 1,
        ..Spec::standard(name)
    };
    let cluster = ProcessCluster::start(spec).await.unwrap();
    let server = cluster.proxies().join(",");
    let connection = Connection::connect(&server).await.unwrap();
    let every = TopicSettings {
        trace_sample_ppm: Some(1_000_000),
        ..TopicSettings::default()
    };
    Admin::new(connection.clone())
        .create_topic_with(topic, 1, every)
        .await
        .unwrap();
    (cluster, server, connection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_message_shows_every_step_in_order_and_sampling_picks_by_rule() {
    let (cluster, server, connection) = cluster_tracing("trace", "orders").await;
    let admin = Admin::new(connection.clone());
    let created = admin.describe_topic(TRACE_TOPIC).await.unwrap();
    assert_eq!(created.partitions.len(), 8, "{created:?}");

    let producer = Producer::new(connection.clone(), Default::default());
    let mut offsets = Vec::new();
    for i in 0..3 {
        let sent = producer
            .send(ProducerRecord::new("orders", format!("order-{i}")))
            .await
            .unwrap();
        offsets.push(sent.offset);
    }
    let mut consumer = Consumer::builder(&server)
        .group("billing")
        .auto_offset_reset(Offset::Earliest)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&["orders"]).await.unwrap();
    let mut seen = 0;
    for _ in 0..20 {
        seen += consumer.poll(Duration::from_secs(2)).await.unwrap().len();
        if seen >= 3 {
            break;
        }
    }
    assert_eq!(seen, 3, "the consumer got every order");
    consumer.commit_sync().await.unwrap();

    // The CLI's JSON: every step, in order, with plausible times.
    let id = format!("orders/0/{}", offsets[1]);
    let json = trace_json(&server, &id, STEPS.len()).await;
    assert_eq!(json["message_id"], id.as_str());
    let steps = json["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    for step in STEPS {
        assert_eq!(
            names.iter().filter(|n| **n == step).count(),
            1,
            "{step} once in {names:?}"
        );
    }
    let at = |step: &str| {
        steps.iter().find(|s| s["step"] == step).unwrap()["at_us"]
            .as_i64()
            .unwrap()
    };
    // Produce and store: the steps before any consumer's.
    for pair in STEPS[..6].windows(2) {
        assert!(
            at(pair[0]) <= at(pair[1]),
            "{} before {}: {json}",
            pair[0],
            pair[1]
        );
    }
    assert!(at("received") <= at("delivered"));
    assert!(at("delivered") <= at("group_committed"));
    let produce_ms = (at("acked") - at("received")) as f64 / 1000.0;
    assert!(
        (0.0..10_000.0).contains(&produce_ms),
        "a produce acked in {produce_ms} ms"
    );
    let times: Vec<i64> = steps.iter().map(|s| s["at_us"].as_i64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {json}"
    );
    let delivered = steps.iter().find(|s| s["step"] == "delivered").unwrap();
    assert!(
        delivered["detail"]
            .as_str()
            .unwrap()
            .contains("group billing"),
        "{delivered}"
    );
    assert!(
        steps.iter().find(|s| s["step"] == "written").unwrap()["by"]
            .as_str()
            .unwrap()
            .starts_with("broker"),
        "{json}"
    );

    // The table and the REST route tell the same.
    let table = strata(
        &["trace", &id, "--server", &server],
        None,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(table.starts_with(&format!("message {id}\n")), "{table}");
    for step in STEPS {
        assert!(table.contains(step), "{step} in {table}");
    }
    let http = cluster.proxy_http_addrs()[0];
    let rest: serde_json::Value = reqwest::get(format!(
        "http://{http}/v1/topics/orders/partitions/0/messages/{}/trace",
        offsets[1]
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(rest["steps"], json["steps"]);

    // At 1%, the messages the rule picks are traced and the others are not.
    let rare = TopicSettings {
        trace_sample_ppm: Some(10_000),
        ..TopicSettings::default()
    };
    admin.create_topic_with("clicks", 1, rare).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..1_000 {
        let record = ProducerRecord::new("clicks", format!("click-{i}")).with_partition(0);
        pending.push(producer.enqueue(record).await.unwrap());
    }
    let mut clicks = Vec::new();
    for delivery in pending {
        clicks.push(delivery.await.unwrap().offset);
    }
    let picked: Vec<i64> = clicks
        .iter()
        .copied()
        .filter(|o| sampled("clicks", 0, *o, 10_000))
        .collect();
    assert!(
        (4..=30).contains(&picked.len()),
        "1% of 1,000 picked {}",
        picked.len()
    );
    let json = trace_json(&server, &format!("clicks/0/{}", picked[0]), 6).await;
    let names: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(names, STEPS[..6], "produce and store only: no consumer yet");
    let skipped = clicks.iter().find(|o| !picked.contains(o)).unwrap();
    let grpc = connection.grpc();
    let not_traced = grpc
        .clone()
        .trace(v1::TraceRequest {
            topic: "clicks".into(),
            partition: 0,
            offset: *skipped,
            within_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .error
        .unwrap();
    assert_eq!(not_traced.code, "NOT_FOUND");
    assert!(
        not_traced.message.contains("not among them"),
        "{}",
        not_traced.message
    );
    // Exactly the picked messages are traced: all of them, and none of a hundred others.
    for offset in &picked {
        let steps = steps_of(&grpc, "clicks", *offset).await;
        assert_eq!(steps.len(), 6, "clicks/0/{offset}: {steps:?}");
    }
    for offset in clicks.iter().filter(|o| !picked.contains(o)).take(100) {
        assert!(
            steps_of(&grpc, "clicks", *offset).await.is_empty(),
            "clicks/0/{offset} is not picked"
        );
    }

    // A fetch from the middle of a stored batch delivers, and traces, only what follows: from
    // just past a picked message whose stored batch goes on after it. Tried from the last
    // picked message down, so no earlier try delivered the one checked.
    let mut fetch = grpc.clone();
    let mut split = None;
    for i in (0..picked.len() - 1).rev() {
        let read = fetch
            .fetch(v1::FetchRequest {
                topic: "clicks".into(),
                partition: 0,
                offset: picked[i] + 1,
                group: "mid".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let base = read.batches.first().and_then(|b| offsets_of(b));
        if base.is_some_and(|(base, _)| base <= picked[i]) {
            split = Some(i);
            break;
        }
    }
    let split = split.expect("a picked message shares its stored batch with the record after it");
    let delivered = wait_for_step(&grpc, "clicks", picked[split + 1], "delivered").await;
    assert!(delivered.1.contains("group mid"), "{delivered:?}");
    let below_fetch = steps_of(&grpc, "clicks", picked[split]).await;
    assert_eq!(below_fetch.len(), 6, "not delivered: {below_fetch:?}");
    // A group's first position records nothing (it may never have read what is below it);
    // its next commit records the messages between the two.
    let commit = |group: &'static str, offset: i64| {
        let mut grpc = grpc.clone();
        async move {
            let answer = grpc
                .offset_commit(v1::OffsetCommitRequest {
                    group: group.into(),
                    generation: -1,
                    offsets: vec![v1::PartitionOffset {
                        topic: "clicks".into(),
                        partition: 0,
                        offset,
                        metadata: String::new(),
                    }],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(answer.error.is_none(), "{answer:?}");
        }
    };
    commit("late", picked[2] + 1).await;
    commit("late", picked[3] + 1).await;
    let committed = wait_for_step(&grpc, "clicks", picked[3], "group_committed").await;
    assert!(committed.1.contains("group late"), "{committed:?}");
    // A group whose consumer read from the start, then sought forward: its first commit
    // records what it read since the seek, not before.
    for offset in [0, picked[1] + 1] {
        fetch
            .fetch(v1::FetchRequest {
                topic: "clicks".into(),
                partition: 0,
                offset,
                group: "seeker".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    commit("seeker", picked[2] + 1).await;
    let committed = wait_for_step(&grpc, "clicks", picked[2], "group_committed").await;
    assert!(committed.1.contains("group seeker"), "{committed:?}");
    let before_seek = steps_of(&grpc, "clicks", picked[1]).await;
    assert!(
        before_seek
            .iter()
            .all(|(_, detail)| !detail.starts_with("group seeker")),
        "{before_seek:?}"
    );
    let below_first = steps_of(&grpc, "clicks", picked[2]).await;
    assert!(
        below_first
            .iter()
            .all(|(s, detail)| s != "group_committed" || !detail.contains("group late")),
        "{below_first:?}"
    );
    let page = metrics(http).await.unwrap();
    let written = samples(
        &page,
        "strata_proxy_trace_events_total",
        &["outcome=\"written\""],
    );
    let written = written.first().copied().unwrap_or(0.0);
    // Three orders with 3 events each at least (produce, delivery, commit), and the clicks.
    assert!(
        written >= 9.0 + picked.len() as f64,
        "trace events written: {written}"
    );

    // Bad input: typed errors naming what is wrong.
    let ask = |topic: &str, offset: i64| {
        let mut grpc = grpc.clone();
        let topic = topic.to_owned();
        async move {
            grpc.trace(v1::TraceRequest {
                topic,
                partition: 0,
                offset,
                within_ms: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .error
            .unwrap()
        }
    };
    let beyond = ask("orders", 1_000).await;
    assert_eq!(beyond.code, "OFFSET_OUT_OF_RANGE", "{}", beyond.message);
    let unknown = ask("no-such-topic", 0).await;
    assert_eq!(unknown.code, "UNKNOWN_TOPIC", "{}", unknown.message);
    let malformed = strata(
        &["trace", "orders-0-1", "--server", &server],
        None,
        Duration::from_secs(30),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(malformed.contains("TOPIC/PARTITION/OFFSET"), "{malformed}");
    let rest_unknown = reqwest::get(format!(
        "http://{http}/v1/topics/no-such-topic/partitions/0/messages/0/trace"
    ))
    .await
    .unwrap();
    assert_eq!(rest_unknown.status().as_u16(), 404);
    let rest_malformed = reqwest::get(format!(
        "http://{http}/v1/topics/orders/partitions/zero/messages/0/trace"
    ))
    .await
    .unwrap();
    assert_eq!(rest_malformed.status().as_u16(), 400);
    let body: serde_json::Value = rest_malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT", "{body}");
    let forged = producer
        .send(ProducerRecord::new(TRACE_TOPIC, "forged"))
        .await
        .unwrap_err()
        .to_string();
    assert!(forged.contains("only proxies write"), "{forged}");
    let nacked = grpc
        .clone()
        .nack(v1::NackRequest {
            group: "billing".into(),
            topic: TRACE_TOPIC.into(),
            partition: 0,
            offset: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .error
        .unwrap();
    assert!(
        nacked.message.contains("cannot be retried"),
        "{}",
        nacked.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_clients_produce_and_fetch_are_traced_too() {
    let Some(clients) = KafkaClients::find("trace") else {
        return;
    };
    let (cluster, server, _) = cluster_tracing("trace-kafka", "payments").await;
    let bootstrap = cluster.kafka_addrs()[0].to_string();
    let kafka = |args: &[&str]| {
        let mut all = vec!["-b", bootstrap.as_str(), "-t", "payments", "-p", "0"];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let produce = kafka(&["-P", "-X", "acks=all"]);
    let produce: Vec<&str> = produce.iter().map(String::as_str).collect();
    clients
        .kcat(&produce, Some(b"paid\n"), Duration::from_secs(30))
        .await
        .unwrap();
    let fetch = kafka(&["-C", "-o", "beginning", "-c", "1", "-e", "-f", "%o\\n"]);
    let fetch: Vec<&str> = fetch.iter().map(String::as_str).collect();
    let offset = clients
        .kcat(&fetch, None, Duration::from_secs(30))
        .await
        .unwrap();
    let id = format!("payments/0/{}", offset.trim());
    let json = trace_json(&server, &id, 7).await;
    let steps = json["steps"].as_array().unwrap();
    let detail = |step: &str| {
        steps.iter().find(|s| s["step"] == step).unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(detail("received"), "from a Kafka client", "{json}");
    assert_eq!(detail("delivered"), "to a Kafka client", "{json}");
    assert!(
        steps.iter().any(|s| s["step"] == "committed"),
        "acks=all has the store steps: {json}"
    );
}
