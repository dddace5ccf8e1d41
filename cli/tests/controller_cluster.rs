//! Controllers as real processes on a real etcd, with brokers registering under leases:
//! balance, dead-broker reassignment, joins with the fewest moves, strictly increasing epochs,
//! failover of the active controller, and the admin API's answers to bad input.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Cluster, call, eventually};
use futures::StreamExt;
use serde_json::{Value, json};
use strata_meta::schema::{self, Assignment, BrokerInfo, Keyspace};
use strata_meta::{LeaseKeeper, MetaStore, WatchEvent};
use strata_testkit::StrataServer;

const TTL: Duration = Duration::from_secs(2);

async fn register(meta: &Arc<dyn MetaStore>, keys: &Keyspace, id: &str) -> LeaseKeeper {
    let keeper = LeaseKeeper::start(meta.clone(), TTL).await.unwrap();
    let info = BrokerInfo {
        id: id.into(),
        addr: format!("127.0.0.1:1{id}"),
        started_ms: 0,
        zone: String::new(),
    };
    meta.put(
        &keys.broker(id),
        schema::encode(&info),
        Some(keeper.lease_id()),
    )
    .await
    .unwrap();
    keeper
}

async fn assignments(meta: &Arc<dyn MetaStore>, keys: &Keyspace) -> BTreeMap<u32, Assignment> {
    let (kvs, _) = meta.range(&keys.topic_assignments("orders")).await.unwrap();
    kvs.iter()
        .map(|kv| {
            (
                keys.partition_of(&kv.key).unwrap().1,
                schema::decode(&kv.key, &kv.value).unwrap(),
            )
        })
        .collect()
}

fn counts(map: &BTreeMap<u32, Assignment>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in map.values() {
        *counts.entry(a.broker.clone()).or_insert(0) += 1;
    }
    counts
}

/// Waits until the 12 partitions are spread over exactly `brokers`, evenly.
async fn balanced_over(
    meta: &Arc<dyn MetaStore>,
    keys: &Keyspace,
    brokers: &[&str],
) -> BTreeMap<u32, Assignment> {
    eventually(
        &format!("partitions balanced over {brokers:?}"),
        Duration::from_secs(15),
        || async {
            let map = assignments(meta, keys).await;
            let c = counts(&map);
            let owners: Vec<&str> = c.keys().map(String::as_str).collect();
            let (min, max) = (
                c.values().min().copied().unwrap_or(0),
                c.values().max().copied().unwrap_or(0),
            );
            (map.len() == 12 && owners == brokers && max - min <= 1).then_some(map)
        },
    )
    .await
}

async fn leader(http: &reqwest::Client, controller: &StrataServer) -> Option<String> {
    let body: Value = http
        .get(format!("{}/v1/controller", controller.url()))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["leader"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_keep_partitions_balanced_through_failures() {
    let cluster = Cluster::start("controllers").await;
    let (meta, keys) = (cluster.meta.clone(), cluster.keys.clone());
    let http = reqwest::Client::new();

    // Record every assignment write for the epoch check at the end.
    let seen: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut watch = meta.watch_prefix(&keys.assignments(), None).await.unwrap();
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(event)) = watch.next().await {
                if let WatchEvent::Put(kv) = event {
                    let a: Assignment = schema::decode(&kv.key, &kv.value).unwrap();
                    seen.lock().unwrap().push((kv.key.clone(), a.epoch));
                }
            }
        })
    };

    let mut controllers = vec![cluster.controller("c1"), cluster.controller("c2")];
    let b1 = register(&meta, &keys, "b1").await;
    let b2 = register(&meta, &keys, "b2").await;
    let b3 = register(&meta, &keys, "b3").await;

    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/topics", controllers[0].url()),
        Some(r#"{"name":"orders","partitions":12}"#),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let initial = balanced_over(&meta, &keys, &["b1", "b2", "b3"]).await;
    assert!(initial.values().all(|a| a.epoch == 1));

    // A broker dies (its lease runs out): its four partitions go to the other two.
    drop(b3);
    let after_death = balanced_over(&meta, &keys, &["b1", "b2"]).await;
    let moved: Vec<u32> = initial
        .iter()
        .filter(|(_, a)| a.broker == "b3")
        .map(|(p, _)| *p)
        .collect();
    for (p, a) in &after_death {
        let expected = if moved.contains(p) { 2 } else { 1 };
        assert_eq!(
            a.epoch, expected,
            "partition {p}: only moved partitions change epoch"
        );
    }

    // A broker joins: it takes its share, four partitions, and nothing else moves.
    let b4 = register(&meta, &keys, "b4").await;
    let after_join = balanced_over(&meta, &keys, &["b1", "b2", "b4"]).await;
    let moves = after_join
        .iter()
        .filter(|(p, a)| after_death[p].broker != a.broker)
        .count();
    assert_eq!(moves, 4, "a joining broker takes exactly its share");

    // Kill -9 the active controller: the standby takes over within a few seconds.
    let active = eventually("an active controller", Duration::from_secs(10), || {
        leader(&http, &controllers[0])
    })
    .await;
    let index = controllers.iter().position(|c| c.id() == active).unwrap();
    let mut dead = controllers.remove(index);
    dead.kill();
    let survivor = &controllers[0];
    let took_over = Instant::now();
    eventually(
        "the standby to take over",
        Duration::from_secs(10),
        || async {
            (leader(&http, survivor).await.as_deref() == Some(survivor.id())).then_some(())
        },
    )
    .await;
    eprintln!("standby took over in {:?}", took_over.elapsed());

    // The new leader keeps the assignment consistent: b1 dies too.
    drop(b1);
    let after_failover = balanced_over(&meta, &keys, &["b2", "b4"]).await;

    // A manual reassignment through the API is one metadata write with the next epoch.
    let target = after_failover[&0].broker.clone();
    let other = if target == "b2" { "b4" } else { "b2" };
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/reassignments", survivor.url()),
        Some(&json!({"topic": "orders", "partition": 0, "broker": other}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["moves"][0]["epoch"], after_failover[&0].epoch + 1);
    assert_eq!(assignments(&meta, &keys).await[&0].broker, other);

    // Epochs only ever increase, per partition, across everything above.
    tokio::time::sleep(Duration::from_millis(300)).await;
    recorder.abort();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (key, epoch) in seen.lock().unwrap().iter() {
        if let Some(previous) = last.insert(key.clone(), *epoch) {
            assert!(
                *epoch > previous,
                "{key}: epoch went from {previous} to {epoch}"
            );
        }
    }
    assert!(last.len() == 12);
    drop((b2, b4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_requests_get_typed_errors_and_change_nothing() {
    let cluster = Cluster::start("bad-admin").await;
    let (meta, keys) = (cluster.meta.clone(), cluster.keys.clone());
    let http = reqwest::Client::new();
    let controller = cluster.controller("c1");
    let _b1 = register(&meta, &keys, "b1").await;
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/topics", controller.url()),
        Some(r#"{"name":"orders","partitions":2}"#),
    )
    .await;
    assert_eq!(status, 201);
    balanced_over_two(&meta, &keys).await;
    let (_, before) = meta.range(keys.root()).await.unwrap();

    use reqwest::Method as M;
    let cases: &[(M, &str, Option<&str>, u16, &str)] = &[
        (M::GET, "/v1/topics/nope", None, 404, "UNKNOWN_TOPIC"),
        (M::DELETE, "/v1/topics/nope", None, 404, "UNKNOWN_TOPIC"),
        (
            M::POST,
            "/v1/topics",
            Some(r#"{"name":"t","partitions":-3}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/topics",
            Some(r#"{"name":"t","partitions":0}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/topics",
            Some(r#"{"name":"bad/name","partitions":1}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/topics",
            Some(r#"{"name":"t","partitions":1,"colour":1}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/topics",
            Some(r#"{"name": "t", "partitions": "#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/topics",
            Some("not json at all"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/topics",
            Some(r#"{"name":"orders","partitions":3}"#),
            409,
            "TOPIC_EXISTS",
        ),
        (
            M::POST,
            "/v1/topics/orders/partitions",
            Some(r#"{"partitions":1}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/topics/nope/partitions",
            Some(r#"{"partitions":5}"#),
            404,
            "UNKNOWN_TOPIC",
        ),
        (
            M::GET,
            "/v1/partitions?topic=nope",
            None,
            404,
            "UNKNOWN_TOPIC",
        ),
        (
            M::POST,
            "/v1/reassignments",
            Some(r#"{"topic":"orders","partition":0,"broker":"dead"}"#),
            404,
            "UNKNOWN_BROKER",
        ),
        (
            M::POST,
            "/v1/reassignments",
            Some(r#"{"topic":"orders","partition":9,"broker":"b1"}"#),
            404,
            "UNKNOWN_PARTITION",
        ),
        (
            M::POST,
            "/v1/reassignments",
            Some(r#"{"topic":"orders","partition":-1,"broker":"b1"}"#),
            404,
            "UNKNOWN_PARTITION",
        ),
        (
            M::POST,
            "/v1/reassignments",
            Some(r#"{"topic":"nope","partition":0,"broker":"b1"}"#),
            404,
            "UNKNOWN_TOPIC",
        ),
        (
            M::POST,
            "/v1/reassignments",
            Some(r#"{"rebalance":false}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/reassignments",
            Some(r#"{"move":"everything"}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            M::POST,
            "/v1/brokers/ghost/drain",
            None,
            404,
            "UNKNOWN_BROKER",
        ),
        (
            M::POST,
            "/v1/brokers/b1/drain",
            None,
            422,
            "BROKER_UNAVAILABLE",
        ),
        (
            M::DELETE,
            "/v1/brokers/b1/drain",
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (M::GET, "/v1/nothing-here", None, 404, "NOT_FOUND"),
        (M::PUT, "/v1/topics", Some("{}"), 405, "METHOD_NOT_ALLOWED"),
    ];
    for (method, path, body, want_status, want_code) in cases {
        let (status, answer) = call(
            &http,
            method.clone(),
            format!("{}{path}", controller.url()),
            *body,
        )
        .await;
        assert_eq!(status, *want_status, "{method} {path}: {answer}");
        assert_eq!(
            answer["error"]["code"], *want_code,
            "{method} {path}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.len() > 10,
            "{method} {path}: the message explains: {message}"
        );
    }
    // Not one write reached etcd: its revision is where it was.
    let (_, after) = meta.range(keys.root()).await.unwrap();
    assert_eq!(before, after, "bad requests changed nothing in etcd");
    // The server still serves.
    let (status, _) = call(
        &http,
        M::GET,
        format!("{}/v1/topics", controller.url()),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

async fn balanced_over_two(meta: &Arc<dyn MetaStore>, keys: &Keyspace) {
    eventually(
        "both partitions assigned",
        Duration::from_secs(10),
        || async { (assignments(meta, keys).await.len() == 2).then_some(()) },
    )
    .await;
}

/// Every route the OpenAPI document lists answers on the live server (with a domain answer,
/// not "no such route" or "wrong method"), and the document lists every route there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_live_routes() {
    let cluster = Cluster::start("openapi").await;
    let controller = cluster.controller("c1");
    let http = reqwest::Client::new();
    let (status, doc) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/openapi.json", controller.url()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let concrete = path
                .replace("{topic}", "some-topic")
                .replace("{broker}", "some-broker")
                .replace("{group}", "some-group")
                .replace("{user}", "some-user")
                .replace("{id}", "0123456789abcdef");
            let body = op.get("requestBody").map(|_| "{}");
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let (status, answer) = call(
                &http,
                method.clone(),
                format!("{}{concrete}", controller.url()),
                body,
            )
            .await;
            let code = answer["error"]["code"].as_str().unwrap_or("");
            assert!(
                code != "NOT_FOUND" && code != "METHOD_NOT_ALLOWED" && status != 405,
                "{method} {path} is documented but not served: {status} {answer}"
            );
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            if (200..300).contains(&status) {
                assert!(
                    documented.contains(&&status.to_string()),
                    "{method} {path}: {status} undocumented"
                );
            }
        }
    }
    assert_eq!(operations, 27, "every route is documented");
    // Methods a path does not document are refused as such.
    for (path, item) in paths {
        for method in ["get", "post", "delete", "put", "patch"] {
            if item.get(method).is_none() {
                let concrete = path
                    .replace("{topic}", "x")
                    .replace("{broker}", "x")
                    .replace("{group}", "x")
                    .replace("{user}", "x")
                    .replace("{id}", "x");
                let (status, _) = call(
                    &http,
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{concrete}", controller.url()),
                    None,
                )
                .await;
                assert_eq!(
                    status, 405,
                    "{method} {path} is not documented, so it must not be served"
                );
            }
        }
    }
}
