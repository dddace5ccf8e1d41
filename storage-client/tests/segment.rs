//! Reading segment objects from a store: the GETs a lookup costs, and corruption reaching the
//! caller as a typed error. What the lookups answer is `strata-format`'s own test.

#![allow(clippy::unwrap_used)]

// The batch and segment builders of the format crate's tests, shared by path so they have one
// home and no library has to ship them.
#[path = "../../format/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_format::FormatError;
use strata_storage::SegmentReader;
use strata_storage::segment::{MemoryObject, RangeRead, StoreObject};
use strata_testkit::fault::{Faults, FaultyStore};

async fn stored(bytes: Bytes) -> (StoreObject, Arc<Faults>) {
    let faults = Faults::new();
    let store: Arc<dyn ObjectStore> =
        Arc::new(FaultyStore::new(Arc::new(InMemory::new()), faults.clone()));
    let path = Path::from("seg");
    store.put(&path, bytes.into()).await.unwrap();
    (StoreObject { store, path }, faults)
}

#[tokio::test]
async fn a_lookup_on_an_uncached_segment_takes_two_gets() {
    let batches = common::batches(100, 500, 3, |b| b as i64 * 10);
    let (bytes, meta) = common::segment(&batches, 4096);
    let (object, faults) = stored(bytes.clone()).await;
    let reader = SegmentReader::open(object, &meta).await.unwrap();
    let got = reader.read_from(1000, 1).await.unwrap();
    assert!(got[0].base_offset() <= 1000 && 1000 < got[0].next_offset());
    assert_eq!(faults.counts().gets, 2, "footer + data");
    assert_eq!(reader.offset_for_timestamp(2000).await.unwrap(), Some(700));
    assert_eq!(faults.counts().gets, 3, "one more for a timestamp lookup");
    assert_eq!(reader.offset_for_timestamp(i64::MAX).await.unwrap(), None);
    assert_eq!(
        faults.counts().gets,
        3,
        "none for a timestamp past the segment"
    );
    // With the footer cached, a lookup is one GET.
    let footer = reader.footer().clone();
    let (object, faults) = stored(bytes).await;
    let cached = SegmentReader::with_footer(object, footer);
    cached.read_from(1400, 1).await.unwrap();
    assert_eq!(faults.counts().gets, 1);
}

#[tokio::test]
async fn blind_open_reads_the_footer_from_the_tail() {
    let batches = common::batches(0, 50, 2, |b| b as i64);
    let (bytes, meta) = common::segment(&batches, 128);
    let (object, faults) = stored(bytes).await;
    let reader = SegmentReader::open_blind(object).await.unwrap();
    assert_eq!(reader.footer().next_offset, meta.next_offset);
    assert_eq!(faults.counts().gets, 1);
}

#[tokio::test]
async fn blind_open_of_a_footer_larger_than_the_tail_read_takes_a_second_get() {
    // One index entry (24 bytes) per batch: 3000 batches make a footer over 64 KiB.
    let batches = common::batches(0, 3000, 1, |b| b as i64);
    let (bytes, meta) = common::segment(&batches, 1);
    assert!(meta.footer_len > 64 * 1024);
    let (object, faults) = stored(bytes).await;
    let reader = SegmentReader::open_blind(object).await.unwrap();
    assert_eq!(reader.footer().index.len(), 3000);
    assert_eq!(faults.counts().gets, 2);
}

#[tokio::test]
async fn damage_and_impossible_lookups_reach_the_caller_typed() {
    let batches = common::batches(0, 40, 2, |b| b as i64);
    let (good, meta) = common::segment(&batches, 256);

    let mut wrong_magic = good.to_vec();
    *wrong_magic.last_mut().unwrap() = b'X';
    let (object, _) = stored(Bytes::from(wrong_magic)).await;
    let err = SegmentReader::open_blind(object.clone()).await.unwrap_err();
    assert!(err.is_corruption(), "{err}");
    let err = SegmentReader::open(object, &meta).await.unwrap_err();
    assert!(err.is_corruption(), "{err}");

    let mut flipped_data = good.to_vec();
    flipped_data[100] ^= 0x01;
    let (object, _) = stored(Bytes::from(flipped_data)).await;
    let reader = SegmentReader::open(object, &meta).await.unwrap();
    let err = reader.read_from(0, u64::MAX).await.unwrap_err();
    assert!(err.is_corruption(), "{err}");

    let (object, _) = stored(good).await;
    let reader = SegmentReader::open(object, &meta).await.unwrap();
    let err = reader.read_from(80, 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            strata_storage::StorageError::Format(FormatError::OffsetOutOfRange { offset: 80, .. })
        ),
        "{err}"
    );
    assert!(!err.is_corruption());
}

#[tokio::test]
async fn a_memory_object_refuses_ranges_outside_it() {
    let object = MemoryObject(Bytes::from_static(b"0123456789"));
    assert_eq!(object.read_range(2..5).await.unwrap(), "234");
    assert_eq!(
        object.read_tail(4).await.unwrap(),
        (Bytes::from("6789"), 10)
    );
    assert!(object.read_range(5..11).await.unwrap_err().is_corruption());
}
