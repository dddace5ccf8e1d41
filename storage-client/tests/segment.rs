//! Segment objects: lookups by offset and timestamp match a brute-force scan, take at most two
//! GETs, and corrupt objects give typed errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use proptest::prelude::*;
use strata_storage::fault::{Faults, FaultyStore};
use strata_storage::segment::StoreObject;
use strata_storage::{
    Corrupted, RecordBatch, SegmentBuilder, SegmentMeta, SegmentReader, StorageError, decode_batch,
};

fn build(batches: &[RecordBatch], interval: u64) -> (Bytes, SegmentMeta) {
    let mut builder = SegmentBuilder::new(interval);
    for b in batches {
        builder.append(b).unwrap();
    }
    let segment = builder.finish().unwrap();
    (segment.to_bytes(), segment.meta)
}

async fn stored(bytes: Bytes) -> (StoreObject, Arc<Faults>) {
    let faults = Faults::new();
    let store: Arc<dyn ObjectStore> =
        Arc::new(FaultyStore::new(Arc::new(InMemory::new()), faults.clone()));
    let path = Path::from("seg");
    store.put(&path, bytes.into()).await.unwrap();
    (StoreObject { store, path }, faults)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lookups_match_brute_force(
        base in 0i64..1_000_000,
        per_batch in 1usize..6,
        timestamps in proptest::collection::vec(0i64..10_000, 1..60),
        interval in prop_oneof![Just(1u64), Just(300), Just(4096)],
        probes in proptest::collection::vec(any::<prop::sample::Index>(), 1..10),
        ts_probes in proptest::collection::vec(-10i64..10_100, 1..10),
    ) {
        let batches = common::batches(base, timestamps.len(), per_batch, |b| timestamps[b]);
        let (bytes, meta) = build(&batches, interval);
        let next = batches.last().unwrap().next_offset();
        prop_assert_eq!(meta.base_offset, base);
        prop_assert_eq!(meta.next_offset, next);
        prop_assert_eq!(meta.size, bytes.len() as u64);
        let all: Vec<(i64, i64)> = batches
            .iter()
            .flat_map(|b| decode_batch(b).unwrap().into_iter().map(|r| (r.offset, r.timestamp)))
            .collect();
        runtime().block_on(async {
            let (object, faults) = stored(bytes).await;
            let reader = SegmentReader::open(object, &meta).await.unwrap();
            for probe in &probes {
                let offset = base + probe.index((next - base) as usize) as i64;
                let got = reader.read_from(offset, 1).await.unwrap();
                let first = &got[0];
                prop_assert!(first.base_offset() <= offset && offset < first.next_offset());
            }
            for &ts in &ts_probes {
                let want = all.iter().find(|(_, t)| *t >= ts).map(|(o, _)| *o);
                prop_assert_eq!(reader.offset_for_timestamp(ts).await.unwrap(), want);
            }
            // One GET for the footer, then one per lookup.
            let lookups = (probes.len() + ts_probes.len()) as u64;
            prop_assert!(faults.counts().gets <= 1 + lookups);
            Ok(())
        })?;
    }

    #[test]
    fn random_tails_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let size = data.len() as u64;
        let _ = strata_storage::Footer::decode(&data, size);
    }
}

#[tokio::test]
async fn a_lookup_on_an_uncached_segment_takes_two_gets() {
    let batches = common::batches(100, 500, 3, |b| b as i64 * 10);
    let (bytes, meta) = build(&batches, 4096);
    let (object, faults) = stored(bytes).await;
    let reader = SegmentReader::open(object, &meta).await.unwrap();
    let got = reader.read_from(1000, 1).await.unwrap();
    assert!(got[0].base_offset() <= 1000 && 1000 < got[0].next_offset());
    assert_eq!(faults.counts().gets, 2, "footer + data");
    // With the footer cached, a lookup is one GET.
    let footer = reader.footer().clone();
    let (object, faults) = stored(build(&batches, 4096).0).await;
    let cached = SegmentReader::with_footer(object, footer);
    cached.read_from(1400, 1).await.unwrap();
    assert_eq!(faults.counts().gets, 1);
}

#[tokio::test]
async fn blind_open_reads_the_footer_from_the_tail() {
    let batches = common::batches(0, 50, 2, |b| b as i64);
    let (bytes, meta) = build(&batches, 128);
    let (object, faults) = stored(bytes).await;
    let reader = SegmentReader::open_blind(object).await.unwrap();
    assert_eq!(reader.footer().next_offset, meta.next_offset);
    assert_eq!(faults.counts().gets, 1);
}

#[tokio::test]
async fn read_from_respects_max_bytes_and_returns_at_least_one_batch() {
    let batches = common::batches(0, 100, 1, |_| 0);
    let (bytes, meta) = build(&batches, 1);
    let (object, _) = stored(bytes).await;
    let reader = SegmentReader::open(object, &meta).await.unwrap();
    assert_eq!(reader.read_from(10, 0).await.unwrap().len(), 1);
    let some = reader
        .read_from(10, 5 * batches[0].len() as u64)
        .await
        .unwrap();
    assert!((5..=6).contains(&some.len()), "{}", some.len());
    assert_eq!(reader.read_from(0, u64::MAX).await.unwrap().len(), 100);
    assert!(matches!(
        reader.read_from(100, 1).await,
        Err(StorageError::OffsetOutOfRange {
            offset: 100,
            base_offset: 0,
            next_offset: 100
        })
    ));
}

#[test]
fn batches_must_be_consecutive() {
    let mut a = common::batches(0, 2, 2, |_| 0);
    a[1].set_base_offset(7);
    let mut builder = SegmentBuilder::default();
    builder.append(&a[0]).unwrap();
    assert!(matches!(
        builder.append(&a[1]),
        Err(StorageError::OffsetGap {
            expected: 2,
            found: 7
        })
    ));
    assert!(SegmentBuilder::default().finish().is_err());
}

/// Every way the object can be damaged, each expected to be a typed error.
#[tokio::test]
async fn corrupt_segments_give_typed_errors() {
    let batches = common::batches(0, 40, 2, |b| b as i64);
    let (good, meta) = build(&batches, 256);
    let n = good.len();
    let trailer = n - 16;

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated to 10 bytes", good[..10].to_vec()),
        ("truncated tail", good[..n - 3].to_vec()),
        ("empty", Vec::new()),
    ];
    let mut wrong_magic = good.to_vec();
    wrong_magic[n - 1] = b'X';
    cases.push(("wrong magic", wrong_magic));
    let mut bad_version = good.to_vec();
    bad_version[trailer + 8] = 9;
    cases.push(("unknown version", bad_version));
    let mut footer_outside = good.to_vec();
    footer_outside[trailer..trailer + 4].copy_from_slice(&(n as u32 * 2).to_be_bytes());
    cases.push(("footer pointing outside the object", footer_outside));
    let mut flipped_footer = good.to_vec();
    flipped_footer[trailer - 5] ^= 0x10;
    cases.push(("flipped bit in the footer", flipped_footer));
    let mut bad_footer_crc = good.to_vec();
    bad_footer_crc[trailer + 4] ^= 0x01;
    cases.push(("bad footer crc", bad_footer_crc));
    // A footer whose CRC is right but whose data length is absurd: the size check must not
    // overflow (found by the segment_decode fuzz target).
    let mut huge_data_len = good.to_vec();
    let footer_len = u32::from_be_bytes(good[trailer..trailer + 4].try_into().unwrap()) as usize;
    let footer_start = trailer - footer_len;
    huge_data_len[footer_start + 32..footer_start + 40].copy_from_slice(&u64::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&huge_data_len[footer_start..trailer]);
    huge_data_len[trailer + 4..trailer + 8].copy_from_slice(&crc.to_be_bytes());
    cases.push(("data length overflowing the object size", huge_data_len));

    for (name, bytes) in cases {
        let size = bytes.len() as u64;
        let (object, _) = stored(Bytes::from(bytes)).await;
        let blind = SegmentReader::open_blind(object.clone()).await;
        let err = blind.expect_err(name);
        assert!(err.is_corruption(), "{name}: {err}");
        let sized = SegmentMeta {
            size,
            ..meta.clone()
        };
        assert!(SegmentReader::open(object, &sized).await.is_err(), "{name}");
    }

    // Damage inside the batch data: the footer is fine, the lookup that touches it is not.
    let mut flipped_data = good.to_vec();
    flipped_data[100] ^= 0x01;
    let (object, _) = stored(Bytes::from(flipped_data)).await;
    let reader = SegmentReader::open(object, &meta).await.unwrap();
    let err = reader.read_from(0, u64::MAX).await.unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        matches!(
            err,
            StorageError::ChecksumMismatch { .. }
                | StorageError::Corrupt {
                    what: Corrupted::SegmentData,
                    ..
                }
        ),
        "{err}"
    );

    // Metadata that disagrees with the object is caught too.
    let (object, _) = stored(good.clone()).await;
    let lying = SegmentMeta {
        next_offset: meta.next_offset + 5,
        ..meta.clone()
    };
    assert!(
        SegmentReader::open(object, &lying)
            .await
            .unwrap_err()
            .is_corruption()
    );
}
