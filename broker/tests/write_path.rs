//! The broker's write path in process, against real metadata stores and storage backends.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_broker::{Ack, Broker, BrokerConfig, BrokerError, Limits, PartitionState};
use strata_catalog::admin::NewTopic;
use strata_catalog::{Admin, Unreported};
use strata_clock::{SeededRandom, SystemClock};
use strata_format::{BatchOptions, Record, decode_batch, encode_batch};
use strata_log::LogReader;
use strata_meta::intercept::{Hook, Intercepted};
use strata_meta::schema::{self, BrokerInfo, Keyspace};
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaError, MetaStore};
use strata_proto::{Coded, ErrorCode};
use strata_storage::pool::PoolConfig;
use strata_storage::{NodeId, NodePool};
use strata_testkit::fault::{Faults, faulty_nodes};
use tokio_util::sync::CancellationToken;

struct Env {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    pool: Arc<NodePool>,
    faults: Vec<Arc<Faults>>,
    raw: Vec<Arc<dyn ObjectStore>>,
    admin: Admin,
    _dir: tempfile::TempDir,
}

async fn env(nodes: usize, replicas: usize) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    env_with(meta, dir, nodes, replicas)
}

fn env_with(
    meta: Arc<dyn MetaStore>,
    dir: tempfile::TempDir,
    nodes: usize,
    replicas: usize,
) -> Env {
    let keys = Keyspace::new("broker-test").unwrap();
    let raw: Vec<Arc<dyn ObjectStore>> = (0..nodes)
        .map(|i| {
            let url = format!("file://{}", dir.path().join(format!("node{i}")).display());
            strata_storage::backend::open(&url, Default::default()).unwrap()
        })
        .collect();
    let (faults, named) = faulty_nodes(&raw);
    let stores = named.into_iter().map(|(n, s)| (NodeId(n), s)).collect();
    let mut config = PoolConfig::new(Vec::new(), replicas);
    config.request_timeout = Duration::from_secs(2);
    // Several tests count requests exactly; a hedge after a scheduling stall on a busy machine
    // would add one. The pool's own tests cover hedging.
    config.hedging = strata_storage::pool::Hedging::OFF;
    let pool = Arc::new(
        NodePool::from_stores(
            stores,
            &config,
            Arc::new(SystemClock),
            Arc::new(SeededRandom::new(9)),
        )
        .unwrap(),
    );
    let admin = Admin::new(meta.clone(), keys.clone());
    Env {
        meta,
        keys,
        pool,
        faults,
        raw,
        admin,
        _dir: dir,
    }
}

/// An environment (one node, one copy) whose metadata store runs every call through `hook`.
async fn hooked_env<H: Hook + 'static>(hook: H) -> (Env, Arc<Intercepted<H>>) {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let hooked = Arc::new(Intercepted { inner, hook });
    (env_with(hooked.clone(), dir, 1, 1), hooked)
}

impl Env {
    async fn register(&self, id: &str) {
        let info = BrokerInfo {
            id: id.into(),
            addr: format!("{id}:7071"),
            started_ms: 0,
            zone: String::new(),
        };
        self.meta
            .put(&self.keys.broker(id), schema::encode(&info), None)
            .await
            .unwrap();
    }

    fn broker(&self, id: &str, limits: Limits) -> Arc<Broker> {
        let config = BrokerConfig {
            limits,
            ..BrokerConfig::new(id)
        };
        Broker::new(
            config,
            self.meta.clone(),
            self.keys.clone(),
            self.pool.clone(),
        )
    }

    /// Broker `b1` writing topic `t` of 5 partitions, each with the record `v{p}` buffered.
    async fn five_partitions_with_one_record_each(&self) -> Arc<Broker> {
        self.partitions_with_one_record_each(5).await
    }

    async fn partitions_with_one_record_each(&self, partitions: u32) -> Arc<Broker> {
        self.register("b1").await;
        self.topic("t", i64::from(partitions)).await;
        let broker = self.broker("b1", Limits::default());
        for p in 0..partitions {
            broker.open_partition("t", p).await.unwrap();
            broker
                .produce("t", p, one(&format!("v{p}")), Ack::Buffered)
                .await
                .unwrap();
        }
        broker
    }

    fn reader(&self) -> LogReader {
        LogReader::new(self.meta.clone(), self.keys.clone(), self.pool.clone())
    }

    async fn topic(&self, name: &str, partitions: i64) {
        self.admin
            .create_topic(NewTopic {
                name: name.into(),
                partitions,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Every committed record value of a partition, checking offsets are dense from 0.
    async fn read_all(&self, topic: &str, partition: u32) -> Vec<String> {
        let reader = self.reader();
        let hw = reader.high_watermark(topic, partition).await.unwrap();
        let mut values = Vec::new();
        let mut next = 0;
        while next < hw {
            let result = reader.read(topic, partition, next, 1 << 20).await.unwrap();
            assert!(!result.batches.is_empty());
            for batch in result.batches {
                assert_eq!(
                    batch.base_offset(),
                    next,
                    "dense offsets, no gaps or repeats"
                );
                for record in decode_batch(&batch).unwrap() {
                    assert_eq!(record.offset, next);
                    values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
                    next += 1;
                }
            }
        }
        values
    }
}

fn batch(values: &[String], options: BatchOptions) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .map(|v| Record {
            timestamp: 1_700_000_000_000,
            value: Some(Bytes::from(v.clone())),
            ..Record::default()
        })
        .collect();
    encode_batch(&records, &options).unwrap().to_bytes()
}

fn one(value: &str) -> Bytes {
    batch(&[value.to_owned()], BatchOptions::default())
}

fn run_flusher(broker: &Arc<Broker>) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (broker, cancel) = (broker.clone(), cancel.clone());
        async move { broker.run_flusher(cancel).await }
    });
    (cancel, task)
}

/// Durable produces from concurrent producers to several partitions read back exactly, in order.
async fn produce_and_read_back(env: Env) {
    env.register("b1").await;
    env.topic("t", 3).await;
    let broker = env.broker("b1", Limits::default());
    for p in 0..3 {
        let opened = broker.open_partition("t", p).await.unwrap();
        assert_eq!(opened.state(), PartitionState::Write);
    }
    let (cancel, flusher) = run_flusher(&broker);
    let mut producers = Vec::new();
    for producer in 0..4 {
        let broker = broker.clone();
        producers.push(tokio::spawn(async move {
            for i in 0..30 {
                let p = (i % 3) as u32;
                let values: Vec<String> =
                    (0..5).map(|r| format!("p{producer}-b{i}-r{r}")).collect();
                broker
                    .produce(
                        "t",
                        p,
                        batch(&values, BatchOptions::default()),
                        Ack::Durable,
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    cancel.cancel();
    flusher.await.unwrap();
    let mut total = 0;
    for p in 0..3 {
        let values = env.read_all("t", p).await;
        // Per producer, its records keep their order within each partition.
        for producer in 0..4 {
            let mine: Vec<&String> = values
                .iter()
                .filter(|v| v.starts_with(&format!("p{producer}-")))
                .collect();
            let mut sorted = mine.clone();
            sorted.sort_by_key(|v| {
                let parts: Vec<u32> = v
                    .split('-')
                    .skip(1)
                    .map(|s| s[1..].parse().unwrap())
                    .collect();
                (parts[0], parts[1])
            });
            assert_eq!(
                mine, sorted,
                "partition {p} keeps producer {producer}'s order"
            );
        }
        total += values.len();
    }
    assert_eq!(total, 4 * 30 * 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_read_back_on_embedded_meta_and_file_storage() {
    produce_and_read_back(env(3, 2).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_read_back_on_etcd() {
    let etcd = strata_testkit::EtcdServer::start().expect("real etcd must start");
    let meta = strata_meta::open(&etcd.endpoint().replace("http://", "etcd://"))
        .await
        .unwrap();
    produce_and_read_back(env_with(meta, tempfile::tempdir().unwrap(), 3, 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_read_back_on_s3() {
    let s3 = strata_testkit::S3Server::start().expect("the S3-protocol test server must start");
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let mut e = env_with(meta, dir, 2, 1);
    s3.create_bucket("strata-data").unwrap();
    let store = strata_storage::backend::open(&s3.url("strata-data"), Default::default()).unwrap();
    let config = PoolConfig::new(Vec::new(), 1);
    e.pool = Arc::new(
        NodePool::from_stores(
            vec![(NodeId("s3".into()), store)],
            &config,
            Arc::new(SystemClock),
            Arc::new(SeededRandom::new(1)),
        )
        .unwrap(),
    );
    produce_and_read_back(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_recovers_without_copying_and_continues_the_offsets() {
    let env = env(2, 1).await;
    env.register("b1").await;
    env.register("b2").await;
    env.topic("t", 1).await;
    let owner = env
        .admin
        .list_partitions(Some("t"), &Unreported)
        .await
        .unwrap()[0]
        .broker
        .clone()
        .unwrap();
    let other = if owner == "b1" { "b2" } else { "b1" };
    let first = env.broker(&owner, Limits::default());
    first.open_partition("t", 0).await.unwrap();
    let (cancel, flusher) = run_flusher(&first);
    for i in 0..10 {
        assert_eq!(
            first
                .produce("t", 0, one(&format!("a{i}")), Ack::Durable)
                .await
                .unwrap(),
            i
        );
    }
    // The owner dies without a word (no shutdown); the partition moves.
    cancel.cancel();
    flusher.await.unwrap();
    drop(first);
    let before: u64 = env.faults.iter().map(|f| f.counts().total()).sum();
    // The same call the admin REST API's reassignment makes.
    env.admin.reassign("t", 0, other).await.unwrap();
    let second = env.broker(other, Limits::default());
    let recovered = second.open_partition("t", 0).await.unwrap();
    let after: u64 = env.faults.iter().map(|f| f.counts().total()).sum();
    assert_eq!(
        after, before,
        "moving and recovering a partition reads and writes no object"
    );
    assert_eq!(recovered.high_watermark(), 10);
    assert_eq!(recovered.epoch, 2);
    let (cancel, flusher) = run_flusher(&second);
    assert_eq!(
        second
            .produce("t", 0, one("b0"), Ack::Durable)
            .await
            .unwrap(),
        10
    );
    cancel.cancel();
    flusher.await.unwrap();
    let values = env.read_all("t", 0).await;
    assert_eq!(values.len(), 11);
    assert_eq!(values[10], "b0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_cannot_commit_after_the_partition_moved() {
    let env = env(2, 1).await;
    env.register("b1").await;
    env.register("b2").await;
    env.topic("t", 1).await;
    let owner = env
        .admin
        .list_partitions(Some("t"), &Unreported)
        .await
        .unwrap()[0]
        .broker
        .clone()
        .unwrap();
    let other = if owner == "b1" { "b2" } else { "b1" };
    let zombie = env.broker(&owner, Limits::default());
    zombie.open_partition("t", 0).await.unwrap();
    zombie
        .produce("t", 0, one("committed-before"), Ack::Buffered)
        .await
        .unwrap();
    assert_eq!(zombie.flush_once().await.txns, 1);
    // The zombie buffers more, with one producer waiting for a durable ack, then "pauses".
    zombie
        .produce("t", 0, one("zombie-buffered"), Ack::Buffered)
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let zombie = zombie.clone();
        async move {
            zombie
                .produce("t", 0, one("zombie-durable"), Ack::Durable)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Meanwhile the partition moves and the new owner takes writes.
    env.admin.reassign("t", 0, other).await.unwrap();
    let fresh = env.broker(other, Limits::default());
    fresh.open_partition("t", 0).await.unwrap();
    fresh
        .produce("t", 0, one("new-owner"), Ack::Buffered)
        .await
        .unwrap();
    fresh.flush_once().await;
    // The zombie wakes and flushes: its segment is written but the commit is refused.
    let puts_before: u64 = env.faults.iter().map(|f| f.counts().puts).sum();
    let stats = zombie.flush_once().await;
    assert_eq!(stats.fenced, 1, "{stats:?}");
    assert_eq!(
        env.faults.iter().map(|f| f.counts().puts).sum::<u64>(),
        puts_before + 1,
        "its object is an orphan"
    );
    let err = waiting.await.unwrap().unwrap_err();
    assert!(matches!(err, BrokerError::Fenced { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::NotLeader);
    assert_eq!(
        zombie.partition("t", 0).unwrap().state(),
        PartitionState::Fenced
    );
    assert!(matches!(
        zombie.produce("t", 0, one("late"), Ack::Durable).await,
        Err(BrokerError::Fenced { .. })
    ));
    // Nothing the zombie buffered is visible; the log is consistent.
    assert_eq!(
        env.read_all("t", 0).await,
        vec!["committed-before", "new-owner"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_flushed_together_share_one_object_and_one_transaction() {
    let env = env(1, 1).await;
    let broker = env.five_partitions_with_one_record_each().await;
    let stats = broker.flush_once().await;
    assert_eq!((stats.partitions, stats.puts, stats.txns), (5, 1, 1));
    // One flush object, a section per partition, each read back as that partition's log.
    let reader = env.reader();
    let mut sections = Vec::new();
    for p in 0..5 {
        let [record] = reader.segments("t", p).await.unwrap().try_into().unwrap();
        assert!(record.shared, "{record:?}");
        sections.push((record.path.clone(), record.start));
        assert_eq!(env.read_all("t", p).await, [format!("v{p}")]);
    }
    assert!(sections.iter().all(|(path, _)| *path == sections[0].0));
    let starts: std::collections::BTreeSet<_> = sections.iter().map(|(_, start)| *start).collect();
    assert_eq!(starts.len(), 5, "{sections:?}");
    let mut revisions = std::collections::BTreeSet::new();
    for p in 0..5 {
        revisions.insert(
            env.meta
                .get(&env.keys.checkpoint("t", p))
                .await
                .unwrap()
                .unwrap()
                .mod_revision,
        );
    }
    assert_eq!(
        revisions.len(),
        1,
        "all five checkpoints changed in the same revision"
    );
}

/// Consumers tailing every partition of a flush object cost one GET between them: the first
/// read fetches the object whole and caches each partition's section; the others, even
/// when they ask at the same moment, wait for that load and read from memory.
/// A cycle's commits are sized by the store's limit: etcd started with `--max-txn-ops=1024`
/// (as the chart ships it) takes 341 partitions per transaction, the default 42.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_commits_as_many_partitions_per_transaction_as_the_store_allows() {
    let etcd = strata_testkit::EtcdServer::start().expect("real etcd must start");
    let url = etcd.endpoint().replace("http://", "etcd://");
    for limit in [
        strata_testkit::ETCD_MAX_TXN_OPS,
        strata_meta::DEFAULT_MAX_TXN_OPS,
    ] {
        let meta = strata_meta::open_with(&url, limit, None).await.unwrap();
        // A cluster per limit: each run has a keyspace of its own in the one etcd.
        let mut env = env_with(meta, tempfile::tempdir().unwrap(), 1, 1);
        env.keys = Keyspace::new(&format!("limit-{limit}")).unwrap();
        env.admin = Admin::new(env.meta.clone(), env.keys.clone());
        let broker = env.partitions_with_one_record_each(400).await;
        let stats = broker.flush_once().await;
        let per_txn = strata_broker::partitions_per_txn(limit);
        assert_eq!(
            (stats.partitions, stats.puts, stats.txns),
            (400, 1, 400usize.div_ceil(per_txn)),
            "limit {limit}"
        );
        for p in [0, 41, 42, 340, 341, 399] {
            assert_eq!(env.read_all("t", p).await, vec![format!("v{p}")]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailing_readers_of_a_flush_object_share_one_fetch_of_it() {
    use std::sync::atomic::Ordering;
    use strata_log::{CacheConfig, ReadCache};
    let env = env(1, 1).await;
    let broker = env.five_partitions_with_one_record_each().await;
    assert_eq!(broker.flush_once().await.puts, 1);
    let cache = Arc::new(ReadCache::new(CacheConfig::default()));
    let reader = env.reader().with_cache(cache.clone());
    let reads = (0..5).map(|p| {
        let reader = reader.clone();
        tokio::spawn(async move { (p, reader.read("t", p, 0, 1 << 20).await.unwrap()) })
    });
    for read in futures::future::join_all(reads).await {
        let (p, result) = read.unwrap();
        let [batch] = result.batches.try_into().unwrap();
        let value = decode_batch(&batch).unwrap()[0].value.clone().unwrap();
        assert_eq!(value, format!("v{p}").as_bytes());
    }
    assert_eq!(cache.stats.object_loads.load(Ordering::Relaxed), 1);
    // A partition's older segments are read section by section: a new flush makes the first
    // one older than the tail only after four more, so read it through a reader whose cache
    // has nothing and with a fifth segment on top.
    for round in 0..4 {
        broker
            .produce("t", 0, one(&format!("w{round}")), Ack::Buffered)
            .await
            .unwrap();
        broker
            .produce("t", 1, one(&format!("w{round}")), Ack::Buffered)
            .await
            .unwrap();
        assert_eq!(broker.flush_once().await.puts, 1);
    }
    let cold = Arc::new(ReadCache::new(CacheConfig::default()));
    let result = env
        .reader()
        .with_cache(cold.clone())
        .read("t", 0, 0, 1)
        .await
        .unwrap();
    assert_eq!(result.batches.len(), 1);
    assert_eq!(cold.stats.object_loads.load(Ordering::Relaxed), 0);
    assert_eq!(env.read_all("t", 0).await, ["v0", "w0", "w1", "w2", "w3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_land_once_even_across_a_move() {
    let env = env(1, 1).await;
    env.register("b1").await;
    env.register("b2").await;
    env.topic("t", 1).await;
    let owner = env
        .admin
        .list_partitions(Some("t"), &Unreported)
        .await
        .unwrap()[0]
        .broker
        .clone()
        .unwrap();
    let other = if owner == "b1" { "b2" } else { "b1" };
    let idem = |seq: i32, epoch: i16| BatchOptions {
        producer_id: 42,
        producer_epoch: epoch,
        base_sequence: seq,
        ..Default::default()
    };
    let values = |tag: &str| vec![format!("{tag}-0"), format!("{tag}-1")];
    let first = env.broker(&owner, Limits::default());
    first.open_partition("t", 0).await.unwrap();
    let (cancel, flusher) = run_flusher(&first);
    assert_eq!(
        first
            .produce("t", 0, batch(&values("x"), idem(0, 0)), Ack::Durable)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        first
            .produce("t", 0, batch(&values("y"), idem(2, 0)), Ack::Durable)
            .await
            .unwrap(),
        2
    );
    // A retry after a timeout: same producer, epoch and sequences → the original offsets.
    assert_eq!(
        first
            .produce("t", 0, batch(&values("y"), idem(2, 0)), Ack::Durable)
            .await
            .unwrap(),
        2
    );
    let gap = first
        .produce("t", 0, batch(&values("z"), idem(9, 0)), Ack::Durable)
        .await
        .unwrap_err();
    assert!(
        matches!(
            gap,
            BrokerError::OutOfOrderSequence {
                expected: 4,
                got: 9,
                ..
            }
        ),
        "{gap}"
    );
    cancel.cancel();
    flusher.await.unwrap();
    // The partition moves; the retry reaches the new owner, which knows it from the commit.
    env.admin.reassign("t", 0, other).await.unwrap();
    let second = env.broker(other, Limits::default());
    second.open_partition("t", 0).await.unwrap();
    let (cancel, flusher) = run_flusher(&second);
    assert_eq!(
        second
            .produce("t", 0, batch(&values("y"), idem(2, 0)), Ack::Durable)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        second
            .produce("t", 0, batch(&values("z"), idem(4, 0)), Ack::Durable)
            .await
            .unwrap(),
        4
    );
    // A newer session of the producer fences the old one.
    assert_eq!(
        second
            .produce("t", 0, batch(&values("n"), idem(0, 1)), Ack::Durable)
            .await
            .unwrap(),
        6
    );
    let old = second
        .produce("t", 0, batch(&values("o"), idem(6, 0)), Ack::Durable)
        .await
        .unwrap_err();
    assert!(
        matches!(
            old,
            BrokerError::ProducerFenced {
                epoch: 0,
                current: 1,
                ..
            }
        ),
        "{old}"
    );
    cancel.cancel();
    flusher.await.unwrap();
    assert_eq!(
        env.read_all("t", 0).await,
        vec!["x-0", "x-1", "y-0", "y-1", "z-0", "z-1", "n-0", "n-1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_the_partition_keeps_serving() {
    let env = env(1, 1).await;
    env.register("b1").await;
    env.topic("t", 1).await;
    let limits = Limits {
        max_batch_bytes: 2048,
        ..Limits::default()
    };
    let broker = env.broker("b1", limits);
    broker.open_partition("t", 0).await.unwrap();
    let (cancel, flusher) = run_flusher(&broker);
    let mut corrupt = one("hello").to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let cases: Vec<(&str, BrokerError)> = vec![
        (
            "flipped bit",
            broker
                .produce("t", 0, Bytes::from(corrupt), Ack::Durable)
                .await
                .unwrap_err(),
        ),
        (
            "garbage",
            broker
                .produce(
                    "t",
                    0,
                    Bytes::from_static(b"not a record batch"),
                    Ack::Durable,
                )
                .await
                .unwrap_err(),
        ),
        (
            "oversize",
            broker
                .produce("t", 0, one(&"x".repeat(4096)), Ack::Durable)
                .await
                .unwrap_err(),
        ),
        (
            "unknown partition",
            broker
                .produce("t", 7, one("v"), Ack::Durable)
                .await
                .unwrap_err(),
        ),
        (
            "unknown topic",
            broker
                .produce("nope", 0, one("v"), Ack::Durable)
                .await
                .unwrap_err(),
        ),
    ];
    let stale = broker
        .produce_at_epoch("t", 0, vec![one("v")], Ack::Durable, Some(7))
        .await
        .pop()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            stale,
            BrokerError::EpochMismatch {
                requested: 7,
                current: 1,
                ..
            }
        ),
        "{stale}"
    );
    let codes: Vec<ErrorCode> = cases
        .iter()
        .map(|(_, e)| e.code())
        .chain([stale.code()])
        .collect();
    assert_eq!(
        codes,
        [
            ErrorCode::CorruptMessage,
            ErrorCode::CorruptMessage,
            ErrorCode::MessageTooLarge,
            ErrorCode::NotLeader,
            ErrorCode::NotLeader,
            ErrorCode::NotLeader
        ],
        "{cases:?}"
    );
    assert_eq!(
        broker
            .produce_at_epoch("t", 0, vec![one("right-epoch")], Ack::Buffered, Some(1))
            .await
            .pop()
            .unwrap()
            .unwrap(),
        0
    );
    assert_eq!(
        broker
            .produce("t", 0, one("fine"), Ack::Durable)
            .await
            .unwrap(),
        1
    );
    cancel.cancel();
    flusher.await.unwrap();
    assert_eq!(env.read_all("t", 0).await, vec!["right-epoch", "fine"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_node_failing_during_flushes_changes_nothing_for_producers() {
    let env = env(4, 2).await;
    env.register("b1").await;
    env.topic("t", 2).await;
    let broker = env.broker("b1", Limits::default());
    for p in 0..2 {
        broker.open_partition("t", p).await.unwrap();
    }
    let (cancel, flusher) = run_flusher(&broker);
    env.faults[1].fail_writes_after(3);
    for i in 0..60 {
        broker
            .produce("t", i % 2, one(&format!("v{i}")), Ack::Durable)
            .await
            .unwrap();
    }
    cancel.cancel();
    flusher.await.unwrap();
    // Every committed segment has its two copies, on nodes other than the dead one after it died.
    let reader = env.reader();
    for p in 0..2 {
        for segment in reader.segments("t", p).await.unwrap() {
            assert_eq!(segment.placement.nodes.len(), 2);
            for node in &segment.placement.nodes {
                let i: usize = node.0[1..].parse().unwrap();
                let bytes = env.raw[i]
                    .get(&segment.object_path())
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                // The whole object: a segment of its own, or a flush object holding it.
                assert!(bytes.len() as u64 >= segment.range().end, "copy on {node}");
            }
        }
        assert_eq!(env.read_all("t", p).await.len(), 30);
    }
    assert!(
        env.faults[1].counts().puts > 3,
        "the failing node was tried and failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_pushes_back_until_a_flush_makes_room() {
    let env = env(1, 1).await;
    env.register("b1").await;
    env.topic("t", 1).await;
    let limits = Limits {
        max_buffer_bytes: 300,
        buffer_wait: Duration::from_millis(300),
        ..Limits::default()
    };
    let broker = env.broker("b1", limits);
    broker.open_partition("t", 0).await.unwrap();
    let big = || one(&"x".repeat(200));
    broker.produce("t", 0, big(), Ack::Buffered).await.unwrap();
    // No flusher runs: the second batch waits, then hears THROTTLED.
    let err = broker
        .produce("t", 0, big(), Ack::Buffered)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Throttled, "{err}");
    // With the flusher running the same produce goes through.
    let (cancel, flusher) = run_flusher(&broker);
    broker.produce("t", 0, big(), Ack::Durable).await.unwrap();
    cancel.cancel();
    flusher.await.unwrap();
    assert_eq!(env.read_all("t", 0).await.len(), 2);
}

/// A broker that lost its lease (an etcd restart) reopens its partitions at the same epoch,
/// under the same assignment. A flush its first incarnation still had pending must not commit
/// after the reopen read the checkpoint: both would hand out the same offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_partition_fences_the_late_commits_of_its_earlier_incarnation() {
    let env = env(1, 1).await;
    env.register("b1").await;
    env.topic("t", 1).await;
    let first = env.broker("b1", Limits::default());
    first.open_partition("t", 0).await.unwrap();
    first
        .produce("t", 0, one("first-incarnation"), Ack::Buffered)
        .await
        .unwrap();
    env.faults[0].fail_writes(true);
    assert_eq!(
        first.flush_once().await.retrying,
        1,
        "the unit waits for a retry"
    );
    env.faults[0].fail_writes(false);

    // The same broker, registered again, opens the partition anew (same id, same epoch).
    let second = env.broker("b1", Limits::default());
    second.open_partition("t", 0).await.unwrap();
    let offset = second
        .produce("t", 0, one("second-incarnation"), Ack::Buffered)
        .await
        .unwrap();
    assert_eq!(offset, 0, "the first incarnation committed nothing");
    assert_eq!(second.flush_once().await.txns, 1);

    // The first incarnation's retry now finds storage writable again: its commit is refused.
    let stats = first.flush_once().await;
    assert_eq!(stats.fenced, 1, "{stats:?}");
    assert_eq!(
        first.partition("t", 0).unwrap().state(),
        PartitionState::Fenced
    );
    second
        .produce("t", 0, one("after"), Ack::Buffered)
        .await
        .unwrap();
    assert_eq!(
        second.flush_once().await.txns,
        1,
        "the second keeps committing"
    );
    assert_eq!(
        env.read_all("t", 0).await,
        ["second-incarnation", "after"],
        "offset 0 was committed once"
    );
}

/// A partition released while its unit waits for a retry (the broker lost its lease) drops
/// the unit: nothing it held is committed later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_partition_drops_the_unit_waiting_for_a_retry() {
    let env = env(1, 1).await;
    env.register("b1").await;
    env.topic("t", 1).await;
    let broker = env.broker("b1", Limits::default());
    broker.open_partition("t", 0).await.unwrap();
    broker
        .produce("t", 0, one("dropped"), Ack::Buffered)
        .await
        .unwrap();
    env.faults[0].fail_writes(true);
    assert_eq!(broker.flush_once().await.retrying, 1);
    env.faults[0].fail_writes(false);
    broker.release("t", 0);
    let stats = broker.flush_once().await;
    assert_eq!((stats.puts, stats.txns), (0, 0), "{stats:?}");
    broker.open_partition("t", 0).await.unwrap();
    broker
        .produce("t", 0, one("kept"), Ack::Buffered)
        .await
        .unwrap();
    broker.flush_once().await;
    assert_eq!(env.read_all("t", 0).await, ["kept"]);
}

/// Applies a transaction and then loses its answer, once, as when etcd goes away between
/// committing and replying.
#[derive(Debug, Default)]
struct LosesOneAnswer {
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Hook for LosesOneAnswer {
    async fn txn(
        &self,
        inner: &dyn MetaStore,
        txn: strata_meta::Txn,
    ) -> Result<strata_meta::TxnResult, MetaError> {
        let result = inner.txn(txn).await?;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(MetaError::Unavailable {
                message: format!(
                    "connection reset after the transaction (it committed at {})",
                    result.revision
                ),
            });
        }
        Ok(result)
    }
}

/// Found by the long fault run: etcd restarted while a commit was in flight; the transaction
/// had landed but its answer was lost, so the flusher retried it, the retry's guard failed
/// against the checkpoint that very commit had written, and the partition was fenced
/// although nobody else owned it — unwritable for good (the proxy kept routing to it). The
/// retry must recognise its own commit, acknowledge it once and keep the partition writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_was_lost_is_recognised_by_its_retry() {
    let (env, lossy) = hooked_env(LosesOneAnswer::default()).await;
    env.register("b1").await;
    env.topic("t", 1).await;
    let broker = env.broker("b1", Limits::default());
    broker.open_partition("t", 0).await.unwrap();
    let waiter = tokio::spawn({
        let broker = broker.clone();
        async move { broker.produce("t", 0, one("landed"), Ack::Durable).await }
    });
    while broker.partition("t", 0).unwrap().buffered_bytes() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lossy
        .hook
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let stats = broker.flush_once().await;
    assert_eq!((stats.txns, stats.retrying), (1, 1), "{stats:?}");
    assert_eq!(
        env.reader().high_watermark("t", 0).await.unwrap(),
        1,
        "it landed"
    );

    let stats = broker.flush_once().await;
    assert_eq!((stats.fenced, stats.retrying), (0, 0), "{stats:?}");
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        0,
        "acknowledged once, at offset 0"
    );
    assert_eq!(
        broker.partition("t", 0).unwrap().state(),
        PartitionState::Write
    );
    broker
        .produce("t", 0, one("after"), Ack::Buffered)
        .await
        .unwrap();
    assert_eq!(broker.flush_once().await.txns, 1);
    assert_eq!(env.read_all("t", 0).await, ["landed", "after"]);
}

/// A partition fenced while its assignment still names this broker is opened anew by the next
/// `open_partition` (the membership loop calls it after any fence): the claim decides, and
/// the latest claim wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_partition_still_assigned_here_is_opened_anew() {
    let env = env(1, 1).await;
    env.register("b1").await;
    env.topic("t", 1).await;
    let first = env.broker("b1", Limits::default());
    first.open_partition("t", 0).await.unwrap();
    // Another incarnation under the same id claims the partition; the first one's next
    // commit is refused.
    let second = env.broker("b1", Limits::default());
    second.open_partition("t", 0).await.unwrap();
    first
        .produce("t", 0, one("refused"), Ack::Buffered)
        .await
        .unwrap();
    assert_eq!(first.flush_once().await.fenced, 1);
    let fenced = first.partition("t", 0).unwrap();
    assert_eq!(fenced.state(), PartitionState::Fenced);

    let reopened = first.open_partition("t", 0).await.unwrap();
    assert!(!Arc::ptr_eq(&fenced, &reopened), "a new incarnation");
    assert_eq!(reopened.state(), PartitionState::Write);
    let offset = first
        .produce("t", 0, one("written"), Ack::Buffered)
        .await
        .unwrap();
    assert_eq!(offset, 0, "nothing of the fenced incarnation was committed");
    assert_eq!(first.flush_once().await.txns, 1);
    second
        .produce("t", 0, one("stale"), Ack::Buffered)
        .await
        .unwrap();
    assert_eq!(second.flush_once().await.fenced, 1, "the latest claim won");
    assert_eq!(env.read_all("t", 0).await, ["written"]);
}

/// Holds every claim (the transaction that writes only a checkpoint) until the test lets it
/// through, so the Start and Recover states can be watched.
#[derive(Debug)]
struct HoldsClaims {
    gate: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl Hook for HoldsClaims {
    async fn txn(
        &self,
        inner: &dyn MetaStore,
        txn: strata_meta::Txn,
    ) -> Result<strata_meta::TxnResult, MetaError> {
        let claim = matches!(txn.success(), [strata_meta::TxnOp::Put { key, .. }] if key.ends_with("/commit"));
        if claim {
            self.gate.acquire().await.unwrap().forget();
        }
        inner.txn(txn).await
    }
}

/// A broker that is given partitions shows each as Start at once and as Recover while it
/// claims it, in its status (which `GET /v1/partitions` shows) and in its metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_recover_show_while_partitions_open() {
    let (env, held) = hooked_env(HoldsClaims {
        gate: tokio::sync::Semaphore::new(0),
    })
    .await;
    env.register("b1").await;
    env.topic("t", 2).await;
    let broker = env.broker("b1", Limits::default());
    let cancel = CancellationToken::new();
    let member = tokio::spawn({
        let (broker, cancel) = (broker.clone(), cancel.clone());
        let node = strata_broker::NodeConfig {
            advertised_addr: "b1:7071".into(),
            lease_ttl: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            storage_stall_limit: Duration::from_secs(60),
            zone: Some("zone-a".into()),
        };
        async move { broker.run_member(node, cancel).await }
    });
    let states = || {
        let mut states: Vec<String> = broker
            .status()
            .iter()
            .map(|p| p.state().to_string())
            .collect();
        states.sort();
        states
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while states() != ["Recover", "Start"] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "states {:?}",
            states()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let metrics = broker.render_metrics();
    for state in ["Start", "Recover"] {
        let line = format!("strata_broker_partitions{{state=\"{state}\"}} 1");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    // The storage pool's figures are on the same page.
    assert!(
        metrics.contains("strata_broker_storage_node_healthy{"),
        "pool metrics missing:\n{metrics}"
    );
    let refused = broker.produce("t", 0, one("early"), Ack::Durable).await;
    assert!(
        matches!(refused, Err(BrokerError::NotLeader { .. })),
        "{refused:?}"
    );

    held.hook.gate.add_permits(2);
    while states() != ["Write", "Write"] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "states {:?}",
            states()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    member.await.unwrap().unwrap();
}

/// Moves one partition of a flush to another broker when the flush's commit arrives: after
/// the flush object is written, before its sections are committed.
#[derive(Debug)]
struct MovesOnCommit {
    keys: Keyspace,
    topic: String,
    partition: u32,
    moved: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Hook for MovesOnCommit {
    async fn txn(
        &self,
        inner: &dyn MetaStore,
        txn: strata_meta::Txn,
    ) -> Result<strata_meta::TxnResult, MetaError> {
        let segments = txn
            .success()
            .iter()
            .filter(|op| matches!(op, strata_meta::TxnOp::Put { key, .. } if key.contains("/seg/")))
            .count();
        if segments >= 2 && !self.moved.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let key = self.keys.assignment(&self.topic, self.partition);
            let kv = inner.get(&key).await?.expect("assigned");
            let mut assignment: schema::Assignment = schema::decode(&key, &kv.value).unwrap();
            assignment.broker = "b2".into();
            assignment.epoch += 1;
            inner.put(&key, schema::encode(&assignment), None).await?;
        }
        inner.txn(txn).await
    }
}

/// Fencing keeps its meaning inside a shared object: a flush holding partitions 0 and 1,
/// where 0 moved between the PUT and the commit, commits 1 and not 0, and 0 is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_moved_mid_flush_is_not_committed_with_the_rest_of_its_object() {
    let (env, hooked) = hooked_env(MovesOnCommit {
        keys: Keyspace::new("broker-test").unwrap(),
        topic: "t".into(),
        partition: 0,
        moved: false.into(),
    })
    .await;
    env.register("b1").await;
    env.topic("t", 2).await;
    let broker = env.broker("b1", Limits::default());
    let mut acks = Vec::new();
    for p in 0..2 {
        broker.open_partition("t", p).await.unwrap();
        acks.push(tokio::spawn({
            let broker = broker.clone();
            async move {
                broker
                    .produce("t", p, one(&format!("v{p}")), Ack::Durable)
                    .await
            }
        }));
    }
    while broker
        .status()
        .iter()
        .filter(|p| p.buffered_bytes() > 0)
        .count()
        < 2
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = broker.flush_once().await;
    assert!(hooked.hook.moved.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        (stats.partitions, stats.puts, stats.fenced),
        (2, 1, 1),
        "{stats:?}"
    );
    let moved = acks.remove(0).await.unwrap().unwrap_err();
    assert!(matches!(moved, BrokerError::Fenced { .. }), "{moved}");
    acks.remove(0).await.unwrap().unwrap();
    assert_eq!(
        broker.partition("t", 0).unwrap().state(),
        PartitionState::Fenced
    );
    let reader = env.reader();
    assert_eq!(reader.high_watermark("t", 0).await.unwrap(), 0);
    assert!(reader.segments("t", 0).await.unwrap().is_empty());
    assert_eq!(env.read_all("t", 1).await, ["v1"]);
    // Partition 1's committed section lives in the object that also holds 0's uncommitted one.
    let [record] = reader.segments("t", 1).await.unwrap().try_into().unwrap();
    let object = env.raw[0]
        .get(&record.object_path())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let toc = strata_format::FlushToc::decode(&object, object.len() as u64).unwrap();
    let held: Vec<u32> = toc.sections.iter().map(|s| s.partition).collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.contains(&0) && held.contains(&1), "{held:?}");
}

/// Flush cycles overlap: while one cycle's PUT hangs, the next cycle writes its own object,
/// and the commits still land in order — a partition's later unit after its earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_put_holds_up_its_own_cycle_and_the_next_cycle_writes_meanwhile() {
    let env = env(1, 1).await;
    env.register("b1").await;
    env.topic("t", 2).await;
    let broker = env.broker("b1", Limits::default());
    for p in 0..2 {
        broker.open_partition("t", p).await.unwrap();
    }
    let (cancel, flusher) = run_flusher(&broker);
    let puts = || env.faults[0].counts().puts;
    let wait_for_puts = |n: u64| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while puts() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} PUTs, waiting for {n}",
                puts()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let produce = |p: u32, value: &'static str| {
        let broker = broker.clone();
        tokio::spawn(async move { broker.produce("t", p, one(value), Ack::Durable).await })
    };
    // Below the pool's 2 s request timeout: the PUT is slow, not failed.
    env.faults[0].delay(Duration::from_millis(1500));
    let first = produce(0, "a");
    wait_for_puts(1).await;
    let second = produce(0, "b");
    let other = produce(1, "c");
    wait_for_puts(2).await;
    assert!(
        !first.is_finished(),
        "the second cycle's PUT started while the first cycle's still hung"
    );
    let a = first.await.unwrap().unwrap();
    let b = second.await.unwrap().unwrap();
    other.await.unwrap().unwrap();
    assert_eq!(
        (a, b),
        (0, 1),
        "partition 0's units committed in the order taken"
    );
    env.faults[0].heal();
    cancel.cancel();
    flusher.await.unwrap();
    assert_eq!(env.read_all("t", 0).await, ["a", "b"]);
    assert_eq!(env.read_all("t", 1).await, ["c"]);
}
