//! Compaction, retention and garbage collection under a steady producer.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStore;
use strata_broker::{Ack, Broker, BrokerConfig};
use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_clock::Clock as _;
use strata_format::{BatchOptions, Record, decode_batch, encode_batch};
use strata_log::{LogError, LogReader};
use strata_meta::schema::{self, BrokerInfo, Keyspace};
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaStore};
use strata_storage::{NodePool, PoolConfig};
use tokio_util::sync::CancellationToken;

struct Env {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    pool: Arc<NodePool>,
    store: Arc<dyn ObjectStore>,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

async fn env(topic: NewTopic) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    let keys = Keyspace::new("maint").unwrap();
    let spec = format!("n1=file://{}", dir.path().join("data").display())
        .parse()
        .unwrap();
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![spec], 1)).unwrap());
    let store = pool.store(&strata_storage::NodeId("n1".into())).unwrap();
    let info = BrokerInfo {
        id: "b1".into(),
        addr: "b1:7071".into(),
        started_ms: 0,
        zone: String::new(),
    };
    meta.put(&keys.broker("b1"), schema::encode(&info), None)
        .await
        .unwrap();
    let name = topic.name.clone();
    Admin::new(meta.clone(), keys.clone())
        .create_topic(topic)
        .await
        .unwrap();
    let broker = Broker::new(
        BrokerConfig::new("b1"),
        meta.clone(),
        keys.clone(),
        pool.clone(),
    );
    broker.open_partition(&name, 0).await.unwrap();
    Env {
        meta,
        keys,
        pool,
        store,
        broker,
        _dir: dir,
    }
}

impl Env {
    fn reader(&self) -> LogReader {
        LogReader::new(self.meta.clone(), self.keys.clone(), self.pool.clone())
    }

    async fn object_count(&self) -> usize {
        let all: Vec<_> = self.store.list(None).try_collect().await.unwrap();
        all.len()
    }

    async fn key_count(&self, topic: &str) -> usize {
        self.meta
            .range(&self.keys.log(topic, 0))
            .await
            .unwrap()
            .0
            .len()
    }
}

fn message(i: usize, timestamp: i64) -> Bytes {
    let record = Record {
        timestamp,
        value: Some(Bytes::from(format!("m{i:05}-{}", "x".repeat(100)))),
        ..Record::default()
    };
    encode_batch(&[record], &BatchOptions::default())
        .unwrap()
        .to_bytes()
}

fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) -> tokio::task::JoinHandle<()> {
    tokio::spawn(f)
}

/// The flusher plus a fast maintenance loop (every 30 ms, 100 ms grace), as a steady broker
/// runs them, with short periods so a test sees many passes.
struct Background {
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    fn start(broker: &Arc<Broker>) -> Self {
        let cancel = CancellationToken::new();
        let flusher = spawn({
            let (b, c) = (broker.clone(), cancel.clone());
            async move { b.run_flusher(c).await }
        });
        let maintenance = spawn({
            let (b, c) = (broker.clone(), cancel.clone());
            async move {
                while !c.is_cancelled() {
                    b.maintain_once(Duration::from_millis(100), true).await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
        });
        Self {
            cancel,
            tasks: vec![flusher, maintenance],
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_objects_and_keys_bounded_and_readers_see_no_gap() {
    let topic = NewTopic {
        name: "c".into(),
        partitions: 1,
        retention_ms: Some(-1),
        segment_bytes: Some(8 * 1024),
        ..Default::default()
    };
    let env = env(topic).await;
    let background = Background::start(&env.broker);
    const MESSAGES: usize = 600;
    let producing = Arc::new(AtomicBool::new(true));
    let consumer = spawn({
        let (reader, producing) = (env.reader(), producing.clone());
        async move {
            let mut next = 0i64;
            loop {
                let done = !producing.load(Ordering::SeqCst);
                let result = reader
                    .read("c", 0, next, 4096)
                    .await
                    .expect("reads never fail during compaction");
                for batch in result.batches {
                    assert_eq!(batch.base_offset(), next, "no gap and no repeat");
                    for record in decode_batch(&batch).unwrap() {
                        let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
                        assert!(
                            value.starts_with(&format!("m{next:05}-")),
                            "offset {next} holds {value}"
                        );
                        next += 1;
                    }
                }
                if done && next == result.high_watermark {
                    assert_eq!(next, MESSAGES as i64);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let mut max_objects = 0;
    let mut max_keys = 0;
    for i in 0..MESSAGES {
        env.broker
            .produce("c", 0, message(i, 1_700_000_000_000), Ack::Durable)
            .await
            .unwrap();
        if i % 50 == 0 {
            max_objects = max_objects.max(env.object_count().await);
            max_keys = max_keys.max(env.key_count("c").await);
        }
    }
    producing.store(false, Ordering::SeqCst);
    consumer.await.unwrap();
    let flushes = env.reader().segments("c", 0).await.unwrap().len();
    // Let compaction and GC settle, then look at the end state.
    tokio::time::sleep(Duration::from_millis(600)).await;
    background.stop().await;
    let segments = env.reader().segments("c", 0).await.unwrap();
    let total: u64 = segments.iter().map(|s| s.meta.size).sum();
    eprintln!(
        "{MESSAGES} durable produces → {} segments ({total} bytes); peak {max_objects} objects, {max_keys} keys; {flushes} segments just after producing",
        segments.len()
    );
    // ~100 KB of data in 8 KiB segments, however many flushes made them: merges never
    // rewrite a segment for less than half its size in new data, so some segments stay
    // between half and full, and a short run of shrinking ones can be left where producing
    // stopped — at most twice the minimum, plus a few.
    assert!(
        segments.len() <= 2 * (total / (8 * 1024)) as usize + 6,
        "{} segments",
        segments.len()
    );
    assert!(
        max_objects < 200 && max_keys < 200,
        "bounded while producing: {max_objects} objects, {max_keys} keys"
    );
    assert_eq!(
        env.object_count().await,
        segments.len(),
        "replaced objects are gone after the grace period"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_whole_segments_by_size_and_by_age() {
    let topic = NewTopic {
        name: "r".into(),
        partitions: 1,
        retention_bytes: Some(4096),
        segment_bytes: Some(1024),
        ..Default::default()
    };
    let env = env(topic).await;
    for i in 0..60 {
        env.broker
            .produce(
                "r",
                0,
                message(i, strata_clock::SystemClock.unix_millis()),
                Ack::Buffered,
            )
            .await
            .unwrap();
        if i % 3 == 2 {
            env.broker.flush_once().await;
        }
    }
    env.broker.flush_once().await;
    let stats = env.broker.maintain_once(Duration::ZERO, true).await;
    assert!(stats.segments_expired > 0, "{stats:?}");
    let stats = env.broker.maintain_once(Duration::ZERO, true).await;
    let segments = env.reader().segments("r", 0).await.unwrap();
    let total: u64 = segments.iter().map(|s| s.meta.size).sum();
    assert!(total <= 4096, "{total} bytes kept");
    let first = segments[0].meta.base_offset;
    assert!(first > 0);
    assert!(
        matches!(env.reader().read("r", 0, 0, 1024).await, Err(LogError::OffsetOutOfRange { start, end: 60, .. }) if start == first)
    );
    assert_eq!(
        env.reader()
            .read("r", 0, first, 1024)
            .await
            .unwrap()
            .batches[0]
            .base_offset(),
        first
    );
    assert_eq!(
        env.object_count().await,
        segments.len(),
        "deleted segments' objects are gone: {stats:?}"
    );

    // By age: a topic whose records are two hours old, with one hour of retention.
    let topic = NewTopic {
        name: "a".into(),
        partitions: 1,
        retention_ms: Some(3_600_000),
        ..Default::default()
    };
    let env = self::env(topic).await;
    let old = strata_clock::SystemClock.unix_millis() - 2 * 3_600_000;
    for i in 0..5 {
        env.broker
            .produce("a", 0, message(i, old), Ack::Buffered)
            .await
            .unwrap();
        env.broker.flush_once().await;
    }
    env.broker.maintain_once(Duration::ZERO, false).await;
    let reader = env.reader();
    assert!(reader.segments("a", 0).await.unwrap().is_empty());
    let empty = reader.read("a", 0, 5, 1024).await.unwrap();
    assert_eq!(
        (empty.log_start, empty.high_watermark, empty.batches.len()),
        (5, 5, 0)
    );
    // The log goes on at the same offset.
    assert_eq!(
        env.broker
            .produce(
                "a",
                0,
                message(5, strata_clock::SystemClock.unix_millis()),
                Ack::Buffered
            )
            .await
            .unwrap(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_swept_and_committed_objects_kept() {
    let topic = NewTopic {
        name: "o".into(),
        partitions: 1,
        retention_ms: Some(-1),
        ..Default::default()
    };
    let env = env(topic).await;
    env.broker
        .produce("o", 0, message(0, 1), Ack::Buffered)
        .await
        .unwrap();
    env.broker.flush_once().await;
    let committed = env.reader().segments("o", 0).await.unwrap();
    // An orphan: a segment object a zombie wrote next to the committed one.
    let orphan = object_store::path::Path::from(format!(
        "{}/zombie.seg",
        committed[0].path.rsplit_once('/').unwrap().0
    ));
    env.store
        .put_opts(
            &orphan,
            Bytes::from_static(b"orphan").into(),
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(env.object_count().await, 2);
    // Within the grace period nothing goes.
    assert_eq!(
        env.broker
            .maintain_once(Duration::from_secs(3600), true)
            .await
            .orphans_deleted,
        0
    );
    let stats = env.broker.maintain_once(Duration::ZERO, true).await;
    assert_eq!(stats.orphans_deleted, 1);
    assert_eq!(env.object_count().await, 1);
    assert_eq!(
        env.reader()
            .read("o", 0, 0, 1024)
            .await
            .unwrap()
            .batches
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_deleted_topics_are_swept() {
    let topic = NewTopic {
        name: "gone".into(),
        partitions: 1,
        retention_ms: Some(-1),
        ..Default::default()
    };
    let env = env(topic).await;
    let admin = Admin::new(env.meta.clone(), env.keys.clone());
    admin
        .create_topic(NewTopic {
            name: "kept".into(),
            partitions: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    env.broker.open_partition("kept", 0).await.unwrap();
    // One flush each: a flush of one partition writes a segment object in the topic's folder
    // (two partitions would share a flush object, which the flush-object sweep deletes).
    for topic in ["gone", "kept"] {
        env.broker
            .produce(topic, 0, message(0, 1), Ack::Buffered)
            .await
            .unwrap();
        env.broker.flush_once().await;
    }
    assert_eq!(env.object_count().await, 2);
    admin.delete_topic("gone").await.unwrap();
    // Within the grace period nothing goes; after it, only the deleted topic's object.
    assert_eq!(
        env.broker
            .sweep_deleted_topics(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        env.broker
            .sweep_deleted_topics(Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(env.object_count().await, 1);
    assert_eq!(
        env.reader()
            .read("kept", 0, 0, 1024)
            .await
            .unwrap()
            .batches
            .len(),
        1
    );
    // Another broker with a higher id leaves the sweep to the lowest one.
    let other = Broker::new(
        BrokerConfig::new("b9"),
        env.meta.clone(),
        env.keys.clone(),
        env.pool.clone(),
    );
    let info = BrokerInfo {
        id: "b9".into(),
        addr: "b9:7071".into(),
        started_ms: 0,
        zone: String::new(),
    };
    env.meta
        .put(&env.keys.broker("b9"), schema::encode(&info), None)
        .await
        .unwrap();
    admin.delete_topic("kept").await.unwrap();
    assert_eq!(other.sweep_deleted_topics(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(
        env.broker
            .sweep_deleted_topics(Duration::ZERO)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_under_a_steady_producer_keeps_the_partition_bounded() {
    let topic = NewTopic {
        name: "s".into(),
        partitions: 1,
        retention_bytes: Some(16 * 1024),
        segment_bytes: Some(4 * 1024),
        ..Default::default()
    };
    let env = env(topic).await;
    let background = Background::start(&env.broker);
    let (mut max_objects, mut max_keys) = (0, 0);
    for i in 0..600 {
        let now = strata_clock::SystemClock.unix_millis();
        env.broker
            .produce("s", 0, message(i, now), Ack::Durable)
            .await
            .unwrap();
        if i % 25 == 0 {
            max_objects = max_objects.max(env.object_count().await);
            max_keys = max_keys.max(env.key_count("s").await);
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    background.stop().await;
    let segments = env.reader().segments("s", 0).await.unwrap();
    let kept: u64 = segments.iter().map(|s| s.meta.size).sum();
    eprintln!(
        "~78 KB produced; {kept} bytes kept in {} segments; peak {max_objects} objects, {max_keys} keys",
        segments.len()
    );
    assert!(
        kept <= 16 * 1024,
        "retention holds the partition to 16 KiB: {kept}"
    );
    // Without maintenance every one of the 600 produces would leave an object and a key;
    // a quiet machine peaks near 30. The bound leaves room for a starved CPU (maintenance
    // then runs late) while still failing if retention stops keeping up.
    assert!(
        max_objects < 150 && max_keys < 150,
        "bounded while producing: {max_objects} objects, {max_keys} keys"
    );
    assert_eq!(env.object_count().await, segments.len());
    // What is kept is the newest data, readable from the new log start to the end.
    let result = env
        .reader()
        .read("s", 0, segments[0].meta.base_offset, 1 << 20)
        .await
        .unwrap();
    assert_eq!(result.high_watermark, 600);
    assert!(result.log_start > 0);
}

/// Flush objects of a broker with several partitions: every cycle writes one object shared by
/// the partitions it flushed; compaction moves each partition's sections into segments of its
/// own, and the sweep deletes each flush object once no record refers to it, while a tailing
/// consumer of every partition sees no error and no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_objects_are_compacted_away_and_deleted_under_a_steady_producer() {
    const PARTITIONS: u32 = 4;
    const MESSAGES: usize = 400;
    let topic = NewTopic {
        name: "f".into(),
        partitions: i64::from(PARTITIONS),
        retention_ms: Some(-1),
        segment_bytes: Some(16 * 1024),
        ..Default::default()
    };
    let env = env(topic).await;
    for p in 1..PARTITIONS {
        env.broker.open_partition("f", p).await.unwrap();
    }
    let flush_objects = || async {
        let prefix = strata_log::flush_prefix(env.keys.root());
        let all: Vec<_> = env.store.list(Some(&prefix)).try_collect().await.unwrap();
        all.len()
    };
    let background = Background::start(&env.broker);
    let producing = Arc::new(AtomicBool::new(true));
    let consumers: Vec<_> = (0..PARTITIONS)
        .map(|p| {
            let (reader, producing) = (env.reader(), producing.clone());
            spawn(async move {
                let mut next = 0i64;
                loop {
                    let done = !producing.load(Ordering::SeqCst);
                    let result = reader
                        .read("f", p, next, 4096)
                        .await
                        .expect("reads never fail while flush objects are compacted away");
                    for batch in result.batches {
                        assert_eq!(
                            batch.base_offset(),
                            next,
                            "partition {p}: no gap, no repeat"
                        );
                        for record in decode_batch(&batch).unwrap() {
                            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
                            let i = value[1..6].parse::<usize>().unwrap();
                            assert_eq!(i % PARTITIONS as usize, p as usize, "{value}");
                            assert_eq!(i / PARTITIONS as usize, next as usize, "{value}");
                            next += 1;
                        }
                    }
                    if done && next == result.high_watermark {
                        assert_eq!(next, (MESSAGES / PARTITIONS as usize) as i64);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    let mut seen_flush_objects = 0;
    let mut producers = tokio::task::JoinSet::new();
    for p in 0..PARTITIONS {
        let broker = env.broker.clone();
        producers.spawn(async move {
            for i in (p as usize..MESSAGES).step_by(PARTITIONS as usize) {
                broker
                    .produce("f", p, message(i, 1_700_000_000_000), Ack::Durable)
                    .await
                    .unwrap();
            }
        });
    }
    while !producers.is_empty() {
        seen_flush_objects = seen_flush_objects.max(flush_objects().await);
        if let Ok(Some(done)) =
            tokio::time::timeout(Duration::from_millis(20), producers.join_next()).await
        {
            done.unwrap();
        }
    }
    producing.store(false, Ordering::SeqCst);
    for consumer in consumers {
        consumer.await.unwrap();
    }
    let written = env.broker.metrics.flush_objects.get();
    let sections = env.broker.metrics.flush_sections.get();
    assert!(
        seen_flush_objects > 0,
        "the partitions flushed together into flush objects"
    );
    assert!(
        sections > written,
        "{sections} sections in {written} objects"
    );
    // Producing stopped: compaction takes the last sections out, the sweep deletes the rest.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while flush_objects().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} flush objects left",
            flush_objects().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    background.stop().await;
    eprintln!(
        "{MESSAGES} durable produces over {PARTITIONS} partitions: {written} objects, {sections} sections; \
         at most {seen_flush_objects} flush objects at once, none left"
    );
    for p in 0..PARTITIONS {
        let segments = env.reader().segments("f", p).await.unwrap();
        assert!(
            segments.iter().all(|s| !s.shared),
            "partition {p}: {segments:?}"
        );
        let read = env.reader().read("f", p, 0, 1 << 20).await.unwrap();
        let records: usize = read.batches.iter().map(|b| b.record_count() as usize).sum();
        assert_eq!(
            records,
            MESSAGES / PARTITIONS as usize,
            "partition {p} from the start"
        );
    }
}

/// Compaction reads each flush object once for all its partitions: three cycles over four
/// partitions make three flush objects of four sections each, and merging the four partitions
/// fetches three objects, not twelve sections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_fetches_each_flush_object_once_for_all_its_partitions() {
    const PARTITIONS: u32 = 4;
    let env = env(NewTopic {
        name: "s".into(),
        partitions: i64::from(PARTITIONS),
        retention_ms: Some(-1),
        ..Default::default()
    })
    .await;
    for p in 1..PARTITIONS {
        env.broker.open_partition("s", p).await.unwrap();
    }
    for cycle in 0..3 {
        for p in 0..PARTITIONS {
            let i = cycle * PARTITIONS as usize + p as usize;
            env.broker
                .produce("s", p, message(i, 1_700_000_000_000), Ack::Buffered)
                .await
                .unwrap();
        }
        let stats = env.broker.flush_once().await;
        assert_eq!((stats.partitions, stats.puts), (PARTITIONS as usize, 1));
    }
    let stats = env
        .broker
        .maintain_once(Duration::from_secs(3600), false)
        .await;
    assert_eq!(stats.compactions, PARTITIONS as usize, "{stats:?}");
    assert_eq!(stats.segments_merged, 3 * PARTITIONS as usize, "{stats:?}");
    let metrics = &env.broker.metrics;
    assert_eq!(metrics.compaction_object_loads.get(), 3);
    assert_eq!(
        metrics.compaction_shared_sections.get(),
        3 * u64::from(PARTITIONS)
    );
    for p in 0..PARTITIONS {
        let [merged] = env
            .reader()
            .segments("s", p)
            .await
            .unwrap()
            .try_into()
            .unwrap();
        assert!(!merged.shared, "{merged:?}");
        let read = env.reader().read("s", p, 0, 1 << 20).await.unwrap();
        let values: Vec<usize> = read
            .batches
            .iter()
            .flat_map(|b| decode_batch(b).unwrap())
            .map(|r| {
                String::from_utf8(r.value.unwrap().to_vec()).unwrap()[1..6]
                    .parse()
                    .unwrap()
            })
            .collect();
        let expected: Vec<usize> = (0..3)
            .map(|cycle| cycle * PARTITIONS as usize + p as usize)
            .collect();
        assert_eq!(values, expected);
    }
}
