//! Segment codec throughput against plain memcpy and CRC-32C, measured in the same run.
//!
//! `cargo bench -p strata-format --bench codec` prints MB/s per stage and each stage's ratio
//! to memcpy, because absolute figures on shared machines drift from run to run.

// A benchmark measures real elapsed time and writes real random payloads: the clock rule
// of clippy.toml is for code whose time tests must control.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_format::{
    BatchIter, BatchOptions, Footer, Record, RecordBatch, SegmentBuilder, encode_batch,
};

const SEGMENT_BYTES: usize = 32 << 20;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const MIN_TIME: Duration = Duration::from_millis(1500);

/// Runs `f` (which processes `bytes` bytes) until `MIN_TIME` passes; returns MB/s.
fn measure(bytes: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm caches and allocator
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < MIN_TIME {
        f();
        rounds += 1;
    }
    (bytes as f64 * rounds as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn batches() -> Vec<RecordBatch> {
    let mut offset = 0;
    let mut out = Vec::new();
    let mut total = 0;
    let mut i = 0u64;
    while total < SEGMENT_BYTES {
        let records: Vec<Record> = (0..RECORDS_PER_BATCH)
            .map(|_| {
                i += 1;
                Record {
                    timestamp: 1_700_000_000_000 + i as i64,
                    value: Some(Bytes::from(vec![(i % 251) as u8; RECORD_BYTES])),
                    ..Record::default()
                }
            })
            .collect();
        let mut batch = encode_batch(&records, &BatchOptions::default()).expect("encode");
        batch.set_base_offset(offset);
        offset = batch.next_offset();
        total += batch.len();
        // Re-parse from contiguous bytes, as the broker receives batches off the wire.
        out.push(RecordBatch::parse(batch.to_bytes()).expect("parse"));
    }
    out
}

fn main() {
    let batches = batches();
    let data_len: usize = batches.iter().map(RecordBatch::len).sum();
    let build = || {
        let mut builder = SegmentBuilder::default();
        for b in &batches {
            builder.append(b).expect("append");
        }
        builder.finish().expect("finish")
    };
    let object = build().to_bytes();
    let size = object.len() as u64;
    eprintln!(
        "segment: {} batches of {RECORDS_PER_BATCH} × {RECORD_BYTES} B records, {:.1} MiB",
        batches.len(),
        data_len as f64 / (1 << 20) as f64
    );

    let source = vec![7u8; data_len];
    let mut dest = vec![0u8; data_len];
    let memcpy = measure(data_len, || {
        dest.copy_from_slice(black_box(&source));
        black_box(&dest);
    });
    let crc = measure(data_len, || {
        black_box(crc32c::crc32c(black_box(&source)));
    });
    let encode = measure(data_len, || {
        black_box(build());
    });
    let mut flat = Vec::with_capacity(object.len());
    let encode_flat = measure(data_len, || {
        flat.clear();
        build().write_to(&mut flat);
        black_box(&flat);
    });
    let decode = measure(data_len, || {
        let footer = Footer::decode(&object, size).expect("footer");
        let data = object.slice(..footer.data_len as usize);
        let mut count = 0u64;
        for batch in BatchIter::new(data) {
            count += batch.expect("valid batch").record_count() as u64;
        }
        assert_eq!(count, footer.record_count);
    });

    println!("{:<42} {:>10} {:>10}", "stage", "MB/s", "× memcpy");
    for (name, mbs) in [
        ("memcpy (baseline)", memcpy),
        ("crc32c (baseline)", crc),
        ("segment encode (zero-copy chunks)", encode),
        ("segment encode + copy into one buffer", encode_flat),
        ("segment decode with CRC check", decode),
    ] {
        println!("{name:<42} {mbs:>10.0} {:>10.2}", mbs / memcpy);
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "aims: decode with CRC ≥ 2000 MB/s per core: {} ({decode:.0}); encode ≥ 50% of memcpy: {} ({:.0}%)",
        verdict(decode >= 2000.0),
        verdict(encode_flat >= memcpy * 0.5),
        encode_flat / memcpy * 100.0
    );
}
