#![allow(dead_code)]

use bytes::Bytes;
use strata_format::{
    BatchOptions, Compression, EncodedSegment, Record, RecordBatch, SegmentBuilder, SegmentMeta,
    encode_batch,
};

/// A record with a recognisable value.
pub fn record(i: u64, timestamp: i64) -> Record {
    Record {
        offset: 0,
        timestamp,
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!(
            "value-{i}-{}",
            "x".repeat((i % 50) as usize)
        ))),
        headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
    }
}

/// `count` batches of `per_batch` records, numbered densely from `base`, with timestamps from
/// `ts(batch index)`.
pub fn batches(
    base: i64,
    count: usize,
    per_batch: usize,
    ts: impl Fn(usize) -> i64,
) -> Vec<RecordBatch> {
    let mut next = base;
    (0..count)
        .map(|b| {
            let records: Vec<Record> = (0..per_batch)
                .map(|r| record((b * per_batch + r) as u64, ts(b) + r as i64))
                .collect();
            let mut batch = encode_batch(&records, &BatchOptions::default()).expect("encode");
            batch.set_base_offset(next);
            next = batch.next_offset();
            batch
        })
        .collect()
}

pub fn options(compression: Compression) -> BatchOptions {
    BatchOptions {
        compression,
        ..BatchOptions::default()
    }
}

/// A segment object of `batches` with an index entry every `interval` bytes: its bytes as
/// stored and its meta.
pub fn segment(batches: &[RecordBatch], interval: u64) -> (Bytes, SegmentMeta) {
    let segment = encoded_segment(batches, interval);
    (segment.to_bytes(), segment.meta)
}

/// The same segment as the builder hands it over, chunks and all.
pub fn encoded_segment(batches: &[RecordBatch], interval: u64) -> EncodedSegment {
    let mut builder = SegmentBuilder::new(interval);
    for b in batches {
        builder.append(b).expect("consecutive batches");
    }
    builder.finish().expect("at least one batch")
}
