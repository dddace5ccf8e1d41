//! The delayed-message scheduler of one broker on a test clock: copies appear only once the
//! clock reaches their time, each once, and a new incarnation of the partition delivers what
//! is left without delivering anything again. With no budget for bodies every copy is built
//! from the log read back; with a budget too small for all of them, sweeps of the log refill
//! it with the bodies due next.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_broker::{Ack, Broker, BrokerConfig};
use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_clock::ManualClock;
use strata_format::delay::{DELAY_MS_HEADER, DELIVER_AT_HEADER, delayed_from, is_delayed};
use strata_format::{BatchOptions, Record, decode_batch, encode_batch};
use strata_log::LogReader;
use strata_meta::schema::{self, BrokerInfo, Keyspace};
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaStore};
use strata_storage::{NodePool, PoolConfig};
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_800_000_000_000;
const TOPIC: &str = "timers";

fn record(value: &str, header: Option<(&str, i64)>) -> Bytes {
    let record = Record {
        timestamp: T0,
        value: Some(Bytes::from(value.to_owned())),
        headers: header
            .map(|(h, v)| vec![(h.to_owned(), Some(Bytes::from(v.to_string())))])
            .unwrap_or_default(),
        ..Record::default()
    };
    encode_batch(&[record], &BatchOptions::default())
        .unwrap()
        .to_bytes()
}

async fn wait_for_hw(broker: &Broker, want: i64) {
    for _ in 0..200 {
        if broker.partition(TOPIC, 0).unwrap().high_watermark() >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the high watermark never reached {want}");
}

/// A counter without labels on a metrics page; 0 when absent.
fn counter(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The records of the log, read from storage.
async fn log(reader: &LogReader) -> Vec<Record> {
    let read = reader.read(TOPIC, 0, 0, 1 << 20).await.unwrap();
    read.batches
        .iter()
        .flat_map(|b| decode_batch(b).unwrap())
        .collect()
}

/// A broker owning partition 0 of a delay topic, its flusher and delay worker running, on a
/// clock that moves only when told.
struct Setup {
    broker: Arc<Broker>,
    clock: Arc<ManualClock>,
    reader: LogReader,
    cancel: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start(delay_memory_bytes: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetaStore> = Arc::new(
            EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
                .await
                .unwrap(),
        );
        let keys = Keyspace::new("delays").unwrap();
        let spec = format!("n1=file://{}", dir.path().join("data").display())
            .parse()
            .unwrap();
        let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![spec], 1)).unwrap());
        let info = BrokerInfo {
            id: "b1".into(),
            addr: "b1:7071".into(),
            started_ms: 0,
            zone: String::new(),
        };
        meta.put(&keys.broker("b1"), schema::encode(&info), None)
            .await
            .unwrap();
        Admin::new(meta.clone(), keys.clone())
            .create_topic(NewTopic {
                name: TOPIC.into(),
                partitions: 1,
                max_delay_ms: Some(60_000),
                ..NewTopic::default()
            })
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::at_unix_millis(T0));
        let config = BrokerConfig {
            delay_memory_bytes,
            clock: clock.clone(),
            ..BrokerConfig::new("b1")
        };
        let broker = Broker::new(config, meta.clone(), keys.clone(), pool.clone());
        broker.open_partition(TOPIC, 0).await.unwrap();
        let cancel = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn({
            let (b, c) = (broker.clone(), cancel.clone());
            async move { b.run_flusher(c).await }
        });
        tasks.spawn({
            let (b, c) = (broker.clone(), cancel.clone());
            async move { b.delays().run(c).await }
        });
        let reader = LogReader::new(meta, keys, pool);
        Self {
            broker,
            clock,
            reader,
            cancel,
            tasks,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_appear_at_their_time_once_across_incarnations() {
    let setup = Setup::start(0).await;
    let (broker, clock, reader) = (&setup.broker, &setup.clock, &setup.reader);

    for (value, header) in [
        ("in-5s", Some((DELAY_MS_HEADER, 5_000))),
        ("in-10s", Some((DELAY_MS_HEADER, 10_000))),
        ("now", None),
        ("at-5s", Some((DELIVER_AT_HEADER, T0 + 5_000))),
    ] {
        broker
            .produce(TOPIC, 0, record(value, header), Ack::Durable)
            .await
            .unwrap();
    }
    // Time stands still: nothing is due, so nothing is appended.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(broker.partition(TOPIC, 0).unwrap().high_watermark(), 4);

    clock.advance(Duration::from_millis(5_000));
    wait_for_hw(broker, 6).await;
    let records = log(reader).await;
    let copies: Vec<(i64, String, i64)> = records[4..]
        .iter()
        .map(|r| {
            assert!(!is_delayed(&r.headers));
            let value = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
            (delayed_from(&r.headers).unwrap(), value, r.timestamp)
        })
        .collect();
    assert_eq!(
        copies,
        [
            (0, "in-5s".to_owned(), T0 + 5_000),
            (3, "at-5s".to_owned(), T0 + 5_000)
        ]
    );

    // A new incarnation (the broker lost and regained the partition) scans the log again:
    // what was delivered stays delivered, and what is pending is still delivered on time.
    broker.release(TOPIC, 0);
    broker.open_partition(TOPIC, 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(broker.partition(TOPIC, 0).unwrap().high_watermark(), 6);
    clock.advance(Duration::from_millis(5_000));
    wait_for_hw(broker, 7).await;
    let records = log(reader).await;
    assert_eq!(delayed_from(&records[6].headers), Some(1));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        broker.partition(TOPIC, 0).unwrap().high_watermark(),
        7,
        "nothing is delivered twice"
    );
    let metrics = broker.render_metrics();
    for line in [
        "strata_broker_delay_delivered_records_total 3",
        "strata_broker_delay_pending_records 0",
        "strata_broker_delay_body_bytes 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(
        metrics.contains("strata_broker_delay_read_backs_total"),
        "with no memory for bodies, every copy was read back"
    );

    // A record sent compressed may be delivered as a copy larger than producers may send
    // (max_batch_bytes, 1 MiB): it is still delivered, alone in its batch.
    let big = Record {
        timestamp: T0 + 10_000,
        value: Some(Bytes::from(vec![b'x'; 2 << 20])),
        headers: vec![(
            DELAY_MS_HEADER.to_owned(),
            Some(Bytes::from_static(b"1000")),
        )],
        ..Record::default()
    };
    let zstd = BatchOptions {
        compression: strata_format::Compression::Zstd,
        ..BatchOptions::default()
    };
    let small = encode_batch(&[big], &zstd).unwrap();
    assert!(small.len() < 1 << 20, "the producer's batch fits");
    broker
        .produce(TOPIC, 0, small.to_bytes(), Ack::Durable)
        .await
        .unwrap();
    clock.advance(Duration::from_millis(1_000));
    wait_for_hw(broker, 9).await;
    let read = reader.read(TOPIC, 0, 8, 4 << 20).await.unwrap();
    let copy = decode_batch(&read.batches[0]).unwrap().remove(0);
    assert_eq!(delayed_from(&copy.headers), Some(7));
    assert_eq!(copy.value.unwrap().len(), 2 << 20);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_refill_a_small_budget_with_the_bodies_due_next() {
    // Room for about four of the twenty bodies (about 200 bytes each).
    let setup = Setup::start(900).await;
    let (broker, clock, reader) = (&setup.broker, &setup.clock, &setup.reader);
    const N: i64 = 20;
    // Due 1..=20 s from now, in an order unlike the offsets', in one producer batch.
    let due_s = |i: i64| (i * 7) % N + 1;
    let records: Vec<Record> = (0..N)
        .map(|i| Record {
            timestamp: T0,
            value: Some(Bytes::from(vec![b'a' + i as u8; 100])),
            headers: vec![(
                DELAY_MS_HEADER.to_owned(),
                Some(Bytes::from((due_s(i) * 1_000).to_string())),
            )],
            ..Record::default()
        })
        .collect();
    let batch = encode_batch(&records, &BatchOptions::default()).unwrap();
    broker
        .produce(TOPIC, 0, batch.to_bytes(), Ack::Durable)
        .await
        .unwrap();
    for second in 1..=N {
        clock.advance(Duration::from_millis(1_000));
        wait_for_hw(broker, N + second).await;
    }
    let copies: Vec<(i64, i64)> = log(reader).await[N as usize..]
        .iter()
        .map(|r| (delayed_from(&r.headers).unwrap(), r.timestamp))
        .collect();
    let mut want: Vec<(i64, i64)> = (0..N).map(|i| (i, T0 + due_s(i) * 1_000)).collect();
    want.sort_by_key(|(_, due)| *due);
    assert_eq!(copies, want, "each once, in due order");
    let metrics = setup.broker.render_metrics();
    let sweeps = counter(&metrics, "strata_broker_delay_sweeps_total");
    assert!(
        sweeps >= 2,
        "the budget ran out several times and was refilled by sweeps: {sweeps} sweeps in\n{metrics}"
    );
    // Without sweeps each read-back refills at most the four bodies the budget holds, so the
    // sixteen beyond it take at least four; with them, a copy rarely waits for one (when the
    // test's clock moves on before the loop has swept).
    let read_backs = counter(&metrics, "strata_broker_delay_read_backs_total");
    assert!(
        read_backs <= 2,
        "the sweeps kept the bodies due next held: {read_backs} read-backs in\n{metrics}"
    );
    setup.stop().await;
}
