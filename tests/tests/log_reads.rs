//! Reads of the committed log at the edges the long fault run found: a regression test for a
//! bug it caught (fixed in 57fb93d, "log: a read that stops inside a segment returns there").

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use strata_log::{LogReader, SegmentRecord};
use strata_meta::MetaStore;
use strata_meta::schema::{self, Checkpoint, Keyspace};
use strata_storage::{
    BatchOptions, NodePool, PoolConfig, Record, RecordBatch, SegmentBuilder, encode_batch,
};

/// Writes one segment object of one-record batches with 256-byte values (what producers
/// sending a few hundred small messages a second make), for offsets `base..base + records`,
/// and commits its record; returns the record.
async fn write_segment(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    pool: &NodePool,
    base: i64,
    records: i64,
) -> SegmentRecord {
    let mut builder = SegmentBuilder::default();
    let mut offset = base;
    while offset < base + records {
        let batch = [Record {
            timestamp: 1,
            value: Some(Bytes::from(vec![b'a' + (offset % 26) as u8; 256])),
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
    let path = strata_log::object_path(keys.root(), "t", 1, 0, base, 1);
    let placement = pool.put(&path, segment.payload()).await.unwrap();
    let record = SegmentRecord {
        path: path.to_string(),
        placement,
        meta: segment.meta,
        epoch: 1,
        created_ms: 0,
    };
    meta.put(&keys.segment("t", 0, base), schema::encode(&record), None)
        .await
        .unwrap();
    record
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
    write_segment(meta.as_ref(), &keys, &pool, 0, 5_000).await;
    write_segment(meta.as_ref(), &keys, &pool, 5_000, 20).await;
    let checkpoint = Checkpoint {
        epoch: 1,
        next_offset: 5_020,
        broker: "b1".into(),
        committed_ms: 0,
    };
    meta.put(&keys.commit("t", 0), schema::encode(&checkpoint), None)
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
