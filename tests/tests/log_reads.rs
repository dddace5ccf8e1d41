//! Reads of the committed log at the edges: a regression test for a bug the long fault run
//! caught (fixed in 57fb93d, "log: a read that stops inside a segment returns there"), and a
//! reader keeping its segment list between reads while the log changes under it.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use strata_format::{BatchOptions, Record, RecordBatch, SegmentBuilder, encode_batch};
use strata_log::{LogReader, SegmentRecord};
use strata_meta::MetaStore;
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_storage::{NodePool, PoolConfig};

/// Writes one segment object of one-record batches with 256-byte values (what producers
/// sending a few hundred small messages a second make), for offsets `base..base + records`,
/// and commits its record; returns the record. Every byte of the value at offset `o` is
/// [`letter`]`(first, o)`.
async fn write_segment(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    pool: &NodePool,
    base: i64,
    records: i64,
    first: u8,
) -> SegmentRecord {
    let record = write_object(keys, pool, base, records, first, 1).await;
    meta.put(&keys.segment("t", 0, base), schema::encode(&record), None)
        .await
        .unwrap();
    record
}

/// The object of [`write_segment`], written by a writer at `epoch`, without its record.
async fn write_object(
    keys: &Keyspace,
    pool: &NodePool,
    base: i64,
    records: i64,
    first: u8,
    epoch: u64,
) -> SegmentRecord {
    let mut builder = SegmentBuilder::default();
    let mut offset = base;
    while offset < base + records {
        let batch = [Record {
            timestamp: 1,
            value: Some(Bytes::from(vec![letter(first, offset); 256])),
            ..Record::default()
        }];
        let bytes = encode_batch(&batch, &BatchOptions::default())
            .unwrap()
            .to_bytes();
        let mut batch = RecordBatch::parse(bytes).unwrap();
        batch.set_base_offset(offset);
        builder.append(&batch).unwrap();
        offset += 1;
    }
    let segment = builder.finish().unwrap();
    let path = strata_log::object_path(keys.root(), "t", 1, 0, base, epoch);
    let placement = pool
        .put(&path, segment.chunks.iter().cloned().collect())
        .await
        .unwrap();
    SegmentRecord {
        path: path.to_string(),
        placement,
        start: 0,
        shared: false,
        object_size: 0,
        meta: segment.meta,
        epoch,
        created_ms: 0,
    }
}

fn letter(first: u8, offset: i64) -> u8 {
    first + (offset % 26) as u8
}

/// Found by the long run: after compaction made a partition's first segment larger than a
/// fetch's `max_bytes`, consumers reading that history got `UNAVAILABLE: storage: offset X is
/// outside segment [Y, Z)` on every retry, for ever (the SDK's fetcher retried it 80+ times).
///
/// `LogReader::read_once` read the segment holding the offset with the byte budget; the
/// segment reader returns whole index blocks from the block holding the offset, so the bytes
/// it returned from the offset on could fall short of the budget while the segment still had
/// more, and the loop then moved to the *next* segment with an offset that segment does not
/// hold. Before the fix, 98 of these 286 reads failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_ends_inside_a_large_segment_does_not_jump_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        strata_meta::open(&format!("embedded://{}", dir.path().join("meta").display()))
            .await
            .unwrap();
    let keys = Keyspace::new("repro").unwrap();
    let node = format!("n1=file://{}", dir.path().join("data").display());
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![node.parse().unwrap()], 1)).unwrap());
    // A "compacted" segment of ~1.5 MB (5,000 records), then a small one.
    write_segment(meta.as_ref(), &keys, &pool, 0, 5_000, b'a').await;
    write_segment(meta.as_ref(), &keys, &pool, 5_000, 20, b'a').await;
    let checkpoint = Checkpoint {
        epoch: 1,
        next_offset: 5_020,
        broker: "b1".into(),
        committed_ms: 0,
    };
    meta.put(&keys.checkpoint("t", 0), schema::encode(&checkpoint), None)
        .await
        .unwrap();
    let reader = LogReader::new(meta, keys, pool);
    // Consumers fetch 1 MiB (the SDK's default) from wherever they are; some offsets sit
    // late in their index block.
    let mut failures = Vec::new();
    for offset in (0..2_000).step_by(7) {
        match reader.read("t", 0, offset, 1 << 20).await {
            Ok(result) => assert!(
                result
                    .batches
                    .first()
                    .is_some_and(|b| b.next_offset() > offset),
                "a read at {offset} returned nothing"
            ),
            Err(e) => failures.push(format!("{offset}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 286 reads failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

async fn commit(meta: &dyn MetaStore, keys: &Keyspace, next_offset: i64) {
    let checkpoint = Checkpoint {
        epoch: 1,
        next_offset,
        broker: "b1".into(),
        committed_ms: 0,
    };
    meta.put(&keys.checkpoint("t", 0), schema::encode(&checkpoint), None)
        .await
        .unwrap();
}

/// (offset, first byte of the value) of every record a read returned.
fn letters(result: &strata_log::ReadResult) -> Vec<(i64, u8)> {
    result
        .batches
        .iter()
        .flat_map(|b| {
            let base = b.base_offset();
            strata_format::decode_batch(b)
                .unwrap()
                .into_iter()
                .enumerate()
                .map(move |(i, r)| (base + i as i64, r.value.unwrap()[0]))
        })
        .collect()
}

fn expected(first: u8, offsets: std::ops::Range<i64>) -> Vec<(i64, u8)> {
    offsets.map(|o| (o, letter(first, o))).collect()
}

/// The reader keeps each partition's segment list and reads only what was committed since
/// (`strata_log::index`); here the log changes under it in every way it can — new commits,
/// compaction replacing records, retention deleting them (their objects collected at once,
/// as with no grace period at all) and the topic deleted and created again — and every read
/// must still return exactly what the log holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_keeping_its_segment_list_follows_every_change_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        strata_meta::open(&format!("embedded://{}", dir.path().join("meta").display()))
            .await
            .unwrap();
    let m = meta.as_ref();
    let keys = Keyspace::new("index").unwrap();
    let node = format!("n1=file://{}", dir.path().join("data").display());
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![node.parse().unwrap()], 1)).unwrap());
    let reader = LogReader::new(meta.clone(), keys.clone(), pool.clone());
    let read = |offset| reader.read("t", 0, offset, 1 << 20);

    let first = write_segment(m, &keys, &pool, 0, 10, b'a').await;
    commit(m, &keys, 10).await;
    assert_eq!(letters(&read(0).await.unwrap()), expected(b'a', 0..10));
    let second = write_segment(m, &keys, &pool, 10, 10, b'a').await;
    commit(m, &keys, 20).await;
    assert_eq!(letters(&read(10).await.unwrap()), expected(b'a', 10..20));
    assert_eq!(letters(&read(0).await.unwrap()), expected(b'a', 0..20));

    // Compaction: one object for [0, 20) under the first key, the second key deleted, and
    // both old objects already collected.
    let merged = write_segment(m, &keys, &pool, 0, 20, b'a').await;
    m.delete(&keys.segment("t", 0, 10)).await.unwrap();
    for old in [&first, &second] {
        pool.delete(&old.placement, &old.object_path())
            .await
            .unwrap();
    }
    assert_eq!(letters(&read(12).await.unwrap()), expected(b'a', 12..20));
    assert_eq!(letters(&read(3).await.unwrap()), expected(b'a', 3..20));

    // Retention: new data [20, 30), then [0, 20) deleted with its object.
    let newest = write_segment(m, &keys, &pool, 20, 10, b'a').await;
    commit(m, &keys, 30).await;
    assert_eq!(letters(&read(25).await.unwrap()), expected(b'a', 25..30));
    m.delete(&keys.segment("t", 0, 0)).await.unwrap();
    pool.delete(&merged.placement, &merged.object_path())
        .await
        .unwrap();
    match read(5).await {
        Err(strata_log::LogError::OffsetOutOfRange { start, end, .. }) => {
            assert_eq!((start, end), (20, 30));
        }
        other => panic!("a read below the log start: {other:?}"),
    }
    assert_eq!(letters(&read(20).await.unwrap()), expected(b'a', 20..30));

    // The topic deleted and created again with as many offsets but other values; the old
    // incarnation's last object is still there (its sweep has not run), and must not be read.
    assert!(m.delete_prefix(&keys.log("t", 0)).await.unwrap() >= 2);
    assert!(
        pool.get(&newest.placement, &newest.object_path())
            .await
            .is_ok()
    );
    write_segment(m, &keys, &pool, 0, 30, b'A').await;
    commit(m, &keys, 30).await;
    assert_eq!(letters(&read(25).await.unwrap()), expected(b'A', 25..30));
    assert_eq!(letters(&read(0).await.unwrap()), expected(b'A', 0..30));
}

/// The proxy's watch fetches a flush's new segment into the read cache as soon as its record
/// appears, for partitions that someone reads, so a consumer at the tail wakes to data in
/// memory; segments that compaction wrote over existing records are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_segments_of_a_partition_being_read_are_cached_before_the_read() {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    use strata_log::{CacheConfig, ReadCache};
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        strata_meta::open(&format!("embedded://{}", dir.path().join("meta").display()))
            .await
            .unwrap();
    let keys = Keyspace::new("prefetch").unwrap();
    let node = format!("n1=file://{}", dir.path().join("data").display());
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![node.parse().unwrap()], 1)).unwrap());
    let cache = Arc::new(ReadCache::new(CacheConfig::default()));
    let reader = LogReader::new(meta.clone(), keys.clone(), pool.clone()).with_cache(cache.clone());
    let watch = strata_proxy::CheckpointWatch::prefetching(meta.clone(), keys.clone(), reader);
    let _reading = watch.notifier("t", 0);
    let cancel = tokio_util::sync::CancellationToken::new();
    let follow = tokio::spawn({
        let (watch, cancel) = (watch.clone(), cancel.clone());
        async move { watch.follow(cancel).await }
    });
    let cached_soon = |key: String| {
        let cache = cache.clone();
        async move {
            for _ in 0..100 {
                if cache.contains(&key) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    // The watch starts on its own time: flush until a segment is prefetched (bounded).
    let mut base = 0;
    let mut first = None;
    for _ in 0..10 {
        let record = write_segment(meta.as_ref(), &keys, &pool, base, 10, b'a').await;
        base += 10;
        if cached_soon(record.cache_key()).await {
            first = Some(record);
            break;
        }
    }
    let first = first.expect("no new segment was prefetched within 10 flushes");
    // Compaction's kind of write: an existing record now names a new object.
    let merged = write_object(&keys, &pool, first.meta.base_offset, 10, b'a', 2).await;
    meta.put(
        &keys.segment("t", 0, first.meta.base_offset),
        schema::encode(&merged),
        None,
    )
    .await
    .unwrap();
    let next = write_segment(meta.as_ref(), &keys, &pool, base, 10, b'a').await;
    assert!(
        cached_soon(next.cache_key()).await,
        "the next flush was not prefetched"
    );
    // Events arrive in order, so the rewrite was seen before `next`, and skipped.
    assert!(!cache.contains(&merged.cache_key()));
    assert!(cache.stats.prefetches.load(Ordering::Relaxed) >= 2);
    cancel.cancel();
    follow.await.unwrap();
}
