use super::*;
use tokio::sync::Semaphore;

fn config() -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_millis(5),
        batch_size: 1000,
        ..ProducerConfig::default()
    }
}

struct Harness {
    acc: Accumulator,
    memory: Arc<Semaphore>,
    tracker: Arc<Tracker>,
    now: Instant,
}

type Delivery = oneshot::Receiver<Result<RecordMetadata>>;

impl Harness {
    fn new(config: ProducerConfig) -> Self {
        let tracker = Arc::new(Tracker::default());
        Self {
            acc: Accumulator::new(config, Arc::clone(&tracker)),
            memory: Arc::new(Semaphore::new(1 << 30)),
            tracker,
            now: Instant::now(),
        }
    }

    fn append_to(&mut self, partition: Option<u32>, value: &[u8]) -> (Appended, Delivery) {
        let record = Record {
            timestamp: 7,
            value: Some(Bytes::copy_from_slice(value)),
            ..Record::default()
        };
        let size = record_size(&record);
        let memory = Arc::clone(&self.memory)
            .try_acquire_many_owned(size as u32)
            .expect("test semaphore has room");
        let (tx, rx) = oneshot::channel();
        let appended = self.acc.append(
            "t",
            4,
            partition,
            record,
            Waiter { tx, timestamp: 7 },
            size,
            memory,
            self.now,
        );
        (appended, rx)
    }

    fn ready(&mut self) -> (Vec<Request>, Option<Instant>) {
        self.acc.ready(self.now)
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }
}

fn sequences(request: &Request) -> Vec<(i64, i16, i32, usize)> {
    request
        .batches
        .iter()
        .map(|b| {
            let s = b.sequence.expect("idempotent batches have sequences");
            (s.session.producer_id, s.session.epoch, s.base, b.count())
        })
        .collect()
}

fn stored(request: &Request, base: i64) -> Vec<Outcome> {
    let mut next = base;
    request
        .batches
        .iter()
        .map(|b| {
            let outcome = Outcome::Stored(next);
            next += b.count() as i64;
            outcome
        })
        .collect()
}

fn not_leader() -> Error {
    Error::Server {
        code: ErrorCode::NotLeader,
        message: "moved".into(),
    }
}

#[test]
fn record_size_bounds_the_encoded_record() {
    let record = Record {
        timestamp: i64::MAX / 2,
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from(vec![7u8; 300])),
        headers: vec![
            ("h".into(), Some(Bytes::from_static(b"v"))),
            ("n".into(), None),
        ],
        ..Record::default()
    };
    let records = vec![record.clone(); 10];
    let encoded = encode_batch(&records, &BatchOptions::default()).expect("encodes");
    assert!(encoded.len() <= BATCH_OVERHEAD + 10 * record_size(&record));
    // Loose by design, but not wildly: well under a header's worth of bytes per record.
    assert!(encoded.len() + 10 * 50 > BATCH_OVERHEAD + 10 * record_size(&record));
}

#[test]
fn an_incompressible_batch_at_the_limit_is_sent_uncompressed() {
    let mut h = Harness::new(ProducerConfig {
        max_request_size: 64 << 10,
        linger: Duration::ZERO,
        ..config()
    });
    let limit = (64 << 10) - BATCH_OVERHEAD - record_size(&Record::default());
    let seeded = strata_clock::SeededRandom::new(11);
    let noise: Vec<u8> = (0..limit).map(|_| seeded.next_u64() as u8).collect();
    let (_, _rx) = h.append_to(Some(0), &noise);
    let (mut requests, _) = h.ready();
    let mut request = requests.pop().expect("a request");
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        request.batches[0].payload = Payload::Records(vec![Record {
            timestamp: 7,
            value: Some(Bytes::from(noise.clone())),
            ..Record::default()
        }]);
        let bytes = request.batches[0].encode(codec, 64 << 10).expect("encodes");
        assert!(bytes.len() <= 64 << 10, "{codec}: {} bytes", bytes.len());
    }
    // Compressible data keeps its codec.
    let mut h = Harness::new(config());
    let (_, _rx) = h.append_to(Some(0), &[0; 5000]);
    h.advance(Duration::from_millis(5));
    let (mut requests, _) = h.ready();
    let mut request = requests.pop().expect("a request");
    let bytes = request.batches[0]
        .encode(Compression::Zstd, 1 << 20)
        .expect("encodes");
    let batch = RecordBatch::parse(bytes).expect("valid");
    assert_eq!(batch.compression(), Compression::Zstd);
    assert!(batch.len() < 1000);
}

#[test]
fn a_batch_waits_for_linger_then_goes() {
    let mut h = Harness::new(config());
    let (appended, _rx) = h.append_to(Some(1), b"v");
    assert!(appended.wake, "a new batch needs a linger timer");
    let (requests, wake) = h.ready();
    assert!(requests.is_empty());
    assert_eq!(wake, Some(h.now + Duration::from_millis(5)));
    h.advance(Duration::from_millis(4));
    assert!(h.ready().0.is_empty());
    let (appended, _rx2) = h.append_to(Some(1), b"w");
    assert!(!appended.wake, "joining an open batch is no news");
    h.advance(Duration::from_millis(1));
    let (requests, _) = h.ready();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].tp, TopicPartition::new("t", 1));
    assert_eq!(requests[0].batches.len(), 1);
    assert_eq!(requests[0].batches[0].count(), 2);
}

#[test]
fn a_full_batch_goes_at_once_and_batches_never_exceed_the_request_size() {
    let mut h = Harness::new(ProducerConfig {
        batch_size: 1000,
        max_request_size: 1500,
        linger: Duration::from_secs(60),
        ..config()
    });
    // record_size is 36 + 300 = 336: three make 1008 >= batch_size.
    let mut receivers = Vec::new();
    for _ in 0..2 {
        receivers.push(h.append_to(Some(0), &[1; 300]).1);
    }
    assert!(h.ready().0.is_empty());
    let (appended, rx) = h.append_to(Some(0), &[1; 300]);
    receivers.push(rx);
    assert!(appended.wake);
    let (requests, _) = h.ready();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].batches[0].count(), 3);

    // With a large batch_size the request size caps the batch.
    let mut h = Harness::new(ProducerConfig {
        batch_size: 1 << 20,
        max_request_size: 1500,
        linger: Duration::from_secs(60),
        ..config()
    });
    let mut receivers = Vec::new();
    for _ in 0..9 {
        receivers.push(h.append_to(Some(0), &[1; 300]).1);
    }
    h.acc.seal_all();
    let (mut requests, _) = h.ready();
    let request = requests.pop().expect("one request");
    let counts: Vec<usize> = request.batches.iter().map(Batch::count).collect();
    assert_eq!(counts, vec![4, 4, 1]);
    for mut batch in request.batches {
        let bytes = batch.encode(Compression::None, 1500).expect("encodes");
        assert!(bytes.len() <= 1500, "{} bytes", bytes.len());
    }
}

#[test]
fn one_request_in_flight_per_partition_and_the_backlog_goes_together() {
    let mut h = Harness::new(ProducerConfig {
        batch_size: 0,
        max_request_size: 1500,
        ..config()
    });
    let (_, rx0) = h.append_to(Some(2), b"a");
    let (requests, _) = h.ready();
    assert_eq!(requests.len(), 1);
    let first = requests.into_iter().next().expect("one request");
    // While partition 2 is busy its open batch grows to max_request_size (4 records of
    // 336 bytes) rather than being cut at batch_size.
    let mut later = Vec::new();
    for _ in 0..22 {
        later.push(h.append_to(Some(2), &[7; 300]).1);
    }
    // Another partition is not held up.
    let (_, rx_other) = h.append_to(Some(3), b"b");
    let (requests, _) = h.ready();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].tp.partition, 3);
    let outcomes = stored(&first, 0);
    h.acc.complete(first, outcomes, h.now);
    let (requests, _) = h.ready();
    assert_eq!(requests.len(), 1);
    let counts: Vec<usize> = requests[0].batches.iter().map(Batch::count).collect();
    assert_eq!(counts, vec![4; MAX_BATCHES_PER_REQUEST]);
    let metadata = rx0.blocking_recv().expect("answered").expect("stored");
    assert_eq!((metadata.partition, metadata.offset), (2, 0));
    drop(rx_other);
}

#[test]
fn sequences_advance_by_record_count_and_retries_resend_the_same_bytes() {
    let mut h = Harness::new(ProducerConfig {
        batch_size: 0,
        ..config()
    });
    let mut receivers = Vec::new();
    for _ in 0..3 {
        receivers.push(h.append_to(Some(0), b"x").1);
    }
    // batch_size 0 puts every record in its own batch.
    let (mut requests, _) = h.ready();
    let mut request = requests.pop().expect("a request");
    let seqs = sequences(&request);
    assert_eq!(
        seqs.iter().map(|s| (s.1, s.2, s.3)).collect::<Vec<_>>(),
        vec![(0, 0, 1), (0, 1, 1), (0, 2, 1)]
    );
    let first_bytes: Vec<Bytes> = request
        .batches
        .iter_mut()
        .map(|b| b.encode(Compression::Lz4, 1 << 20).expect("encodes"))
        .collect();
    let parsed = RecordBatch::parse(first_bytes[1].clone()).expect("valid");
    assert_eq!(parsed.base_sequence(), 1);
    assert_eq!(parsed.producer_id(), seqs[0].0);

    let outcomes = (0..3).map(|_| Outcome::Failed(not_leader())).collect();
    h.acc.complete(request, outcomes, h.now);
    assert!(h.ready().0.is_empty(), "backing off");
    h.advance(Duration::from_millis(100));
    let (mut requests, _) = h.ready();
    let mut request = requests.pop().expect("the retry");
    assert_eq!(sequences(&request), seqs);
    let retry_bytes: Vec<Bytes> = request
        .batches
        .iter_mut()
        .map(|b| b.encode(Compression::Lz4, 1 << 20).expect("encodes"))
        .collect();
    assert_eq!(retry_bytes, first_bytes);
    let outcomes = stored(&request, 10);
    h.acc.complete(request, outcomes, h.now);
    let offsets: Vec<i64> = receivers
        .into_iter()
        .map(|rx| {
            rx.blocking_recv()
                .expect("answered")
                .expect("stored")
                .offset
        })
        .collect();
    assert_eq!(offsets, vec![10, 11, 12]);

    let (_, _rx) = h.append_to(Some(0), b"y");
    h.advance(Duration::from_millis(5));
    let (requests, _) = h.ready();
    assert_eq!(sequences(&requests[0])[0].2, 3, "sequences continue");
}

#[test]
fn a_batch_failed_for_good_moves_the_partition_to_a_new_epoch() {
    let mut h = Harness::new(ProducerConfig {
        batch_size: 0,
        ..config()
    });
    let (_, rx_a) = h.append_to(Some(0), b"a");
    let (_, rx_b) = h.append_to(Some(0), b"b");
    let (mut requests, _) = h.ready();
    let request = requests.pop().expect("a request");
    let (pid, ..) = sequences(&request)[0];
    let outcomes = vec![
        Outcome::Failed(Error::Server {
            code: ErrorCode::CorruptMessage,
            message: "bad".into(),
        }),
        // The broker refuses the batch after the gap; it was not stored.
        Outcome::Failed(Error::Server {
            code: ErrorCode::InvalidArgument,
            message: "sequence 1 where 0 was expected".into(),
        }),
    ];
    h.acc.complete(request, outcomes, h.now);
    let failed = rx_a.blocking_recv().expect("answered");
    assert_eq!(
        failed.expect_err("failed").code(),
        Some(ErrorCode::CorruptMessage)
    );
    let (mut requests, _) = h.ready();
    let request = requests.pop().expect("b is resent");
    // b was re-sequenced in the new epoch (1) and then moved once more for its own refusal.
    let seqs = sequences(&request);
    assert_eq!(seqs.len(), 1);
    assert_eq!(seqs[0].0, pid);
    assert!(seqs[0].1 >= 1);
    assert_eq!(seqs[0].2, 0);
    let outcomes = stored(&request, 0);
    h.acc.complete(request, outcomes, h.now);
    assert_eq!(
        rx_b.blocking_recv()
            .expect("answered")
            .expect("stored")
            .offset,
        0
    );
}

#[test]
fn a_refused_sequence_is_resent_only_once() {
    let mut h = Harness::new(config());
    let (_, rx) = h.append_to(Some(0), b"a");
    h.advance(Duration::from_millis(5));
    let invalid = || {
        Outcome::Failed(Error::Server {
            code: ErrorCode::InvalidArgument,
            message: "out of order".into(),
        })
    };
    let (mut requests, _) = h.ready();
    let request = requests.pop().expect("first");
    assert_eq!(sequences(&request)[0].1, 0);
    h.acc.complete(request, vec![invalid()], h.now);
    let (mut requests, _) = h.ready();
    let request = requests.pop().expect("resent at once");
    assert_eq!(sequences(&request)[0].1, 1);
    h.acc.complete(request, vec![invalid()], h.now);
    let e = rx.blocking_recv().expect("answered").expect_err("failed");
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument));
    assert!(h.ready().0.is_empty());
}

#[test]
fn without_idempotence_batches_carry_no_sequence() {
    let mut h = Harness::new(ProducerConfig {
        idempotence: false,
        ..config()
    });
    let (_, _rx) = h.append_to(Some(0), b"a");
    h.advance(Duration::from_millis(5));
    let (mut requests, _) = h.ready();
    let mut request = requests.pop().expect("a request");
    assert!(request.batches[0].sequence.is_none());
    let bytes = request.batches[0]
        .encode(Compression::None, 1500)
        .expect("encodes");
    let parsed = RecordBatch::parse(bytes).expect("valid");
    assert!(!parsed.is_idempotent());
}

#[test]
fn expired_batches_fail_with_a_timeout_and_free_their_memory() {
    let mut h = Harness::new(ProducerConfig {
        delivery_timeout: Duration::from_secs(2),
        ..config()
    });
    let before = h.memory.available_permits();
    let (_, rx) = h.append_to(Some(0), b"a");
    assert!(h.memory.available_permits() < before);
    h.advance(Duration::from_millis(5));
    let (mut requests, _) = h.ready();
    let request = requests.pop().expect("sent");
    let (_, rx_later) = h.append_to(Some(0), b"b");
    h.acc
        .complete(request, vec![Outcome::Failed(not_leader())], h.now);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 100, "never expired");
        let (requests, wake) = h.ready();
        if requests.is_empty() && wake.is_none() {
            break;
        }
        for request in requests {
            let outcomes = request
                .batches
                .iter()
                .map(|_| Outcome::Failed(not_leader()))
                .collect();
            h.acc.complete(request, outcomes, h.now);
        }
        if let Some(at) = wake {
            h.now = h.now.max(at);
        }
    }
    for rx in [rx, rx_later] {
        let e = rx.blocking_recv().expect("answered").expect_err("expired");
        assert!(matches!(e, Error::Timeout(..)), "{e}");
        assert!(e.to_string().contains("NOT_LEADER"), "{e}");
    }
    assert_eq!(h.memory.available_permits(), before);
    assert!(h.acc.is_idle());
    assert!(h.tracker.finished_before(h.tracker.mark()));
}

#[test]
fn sticky_partitioner_stays_until_the_batch_is_sealed() {
    let mut h = Harness::new(ProducerConfig {
        batch_size: 1000,
        linger: Duration::from_secs(60),
        ..config()
    });
    let mut receivers = Vec::new();
    let mut chosen = Vec::new();
    for _ in 0..9 {
        let (appended, rx) = h.append_to(None, &[0; 300]);
        chosen.push(appended.partition);
        receivers.push(rx);
    }
    // Three records fill a batch (see record_size), then the next partition takes over.
    let first = chosen[0];
    assert_eq!(
        chosen,
        vec![
            first,
            first,
            first,
            (first + 1) % 4,
            (first + 1) % 4,
            (first + 1) % 4,
            (first + 2) % 4,
            (first + 2) % 4,
            (first + 2) % 4,
        ]
    );
    // A batch sealed by flush (or linger) also moves the sticky partition.
    let (appended, _rx) = h.append_to(None, b"x");
    assert_eq!(appended.partition, (first + 3) % 4);
    h.acc.seal_all();
    let (appended, _rx) = h.append_to(None, b"x");
    assert_eq!(appended.partition, first);
}

#[test]
fn round_robin_partitioner_moves_on_every_record() {
    let mut h = Harness::new(ProducerConfig {
        partitioner: Partitioner::RoundRobin,
        ..config()
    });
    let mut receivers = Vec::new();
    let mut chosen = Vec::new();
    for _ in 0..8 {
        let (appended, rx) = h.append_to(None, b"v");
        chosen.push(appended.partition);
        receivers.push(rx);
    }
    for pair in chosen.windows(2) {
        assert_eq!(pair[1], (pair[0] + 1) % 4);
    }
    // An explicit partition is not the partitioner's business.
    let (appended, _rx) = h.append_to(Some(2), b"v");
    assert_eq!(appended.partition, 2);
}

#[test]
fn the_tracker_sees_every_batch_finish() {
    let mut h = Harness::new(config());
    let (_, rx) = h.append_to(Some(0), b"a");
    h.acc.seal_all();
    let mark = h.tracker.mark();
    assert!(!h.tracker.finished_before(mark));
    let (_, _rx_after) = h.append_to(Some(1), b"b");
    let (mut requests, _) = h.ready();
    let request = requests.pop().expect("partition 0 goes");
    assert_eq!(request.tp.partition, 0);
    let outcomes = stored(&request, 0);
    h.acc.complete(request, outcomes, h.now);
    assert!(rx.blocking_recv().is_ok());
    assert!(
        h.tracker.finished_before(mark),
        "the later batch does not count"
    );
    assert!(!h.tracker.finished_before(h.tracker.mark()));
}
