//! Segment objects: lookups by offset and timestamp match a brute-force scan, read only the
//! range they plan, and corrupt objects give typed errors.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use proptest::prelude::*;
use strata_format::{
    Corrupted, Footer, FormatError, RecordBatch, SegmentBuilder, SegmentMeta, decode_batch,
};

fn slice(object: &Bytes, range: std::ops::Range<u64>) -> Bytes {
    object.slice(range.start as usize..range.end as usize)
}

/// What a reader with the segment's metadata does: read the footer range, decode it.
fn open(object: &Bytes, meta: &SegmentMeta) -> Result<Footer, FormatError> {
    let tail = slice(object, meta.footer_range()?);
    Footer::decode_for(&tail, meta)
}

/// What a reader without metadata does, given the last `blind_read` bytes of the object.
fn open_blind(object: &Bytes, blind_read: usize) -> Result<Footer, FormatError> {
    let size = object.len() as u64;
    let tail = object.slice(object.len().saturating_sub(blind_read)..);
    let tail = match Footer::full_tail_range(&tail, size)? {
        Some(range) => slice(object, range),
        None => tail,
    };
    Footer::decode(&tail, size)
}

fn read_from(
    object: &Bytes,
    footer: &Footer,
    offset: i64,
    max_bytes: u64,
) -> Result<Vec<RecordBatch>, FormatError> {
    let read = footer.plan_offset_read(offset, max_bytes)?;
    read.batches(slice(object, read.range.clone()))
}

fn offset_for_timestamp(
    object: &Bytes,
    footer: &Footer,
    timestamp: i64,
) -> Result<Option<i64>, FormatError> {
    footer
        .plan_timestamp_read(timestamp)
        .map(|read| read.offset(slice(object, read.range.clone())))
        .transpose()
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
        let (object, meta) = common::segment(&batches, interval);
        let next = batches.last().unwrap().next_offset();
        prop_assert_eq!(meta.base_offset, base);
        prop_assert_eq!(meta.next_offset, next);
        prop_assert_eq!(meta.size, object.len() as u64);
        let all: Vec<(i64, i64)> = batches
            .iter()
            .flat_map(|b| decode_batch(b).unwrap().into_iter().map(|r| (r.offset, r.timestamp)))
            .collect();
        let footer = open(&object, &meta).unwrap();
        prop_assert_eq!(&open_blind(&object, 64 * 1024).unwrap(), &footer);
        for probe in &probes {
            let offset = base + probe.index((next - base) as usize) as i64;
            let got = read_from(&object, &footer, offset, 1).unwrap();
            let first = &got[0];
            prop_assert!(first.base_offset() <= offset && offset < first.next_offset());
        }
        for &ts in &ts_probes {
            let want = all.iter().find(|(_, t)| *t >= ts).map(|(o, _)| *o);
            prop_assert_eq!(offset_for_timestamp(&object, &footer, ts).unwrap(), want);
        }
    }

    #[test]
    fn random_tails_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let size = data.len() as u64;
        let _ = Footer::decode(&data, size);
        let _ = Footer::full_tail_range(&data, size);
    }
}

#[test]
fn a_blind_read_too_short_for_the_footer_names_the_range_to_read() {
    // One index entry per batch: 24 bytes each, so 100 batches need more than a 1 KiB read.
    let batches = common::batches(0, 100, 1, |b| b as i64);
    let (object, meta) = common::segment(&batches, 1);
    let short = object.slice(object.len() - 1024..);
    let range = Footer::full_tail_range(&short, meta.size).unwrap();
    assert_eq!(range, Some(meta.footer_range().unwrap()));
    assert_eq!(
        open_blind(&object, 1024).unwrap(),
        open(&object, &meta).unwrap()
    );
}

#[test]
fn read_from_respects_max_bytes_and_returns_at_least_one_batch() {
    let batches = common::batches(0, 100, 1, |_| 0);
    let (object, meta) = common::segment(&batches, 1);
    let footer = open(&object, &meta).unwrap();
    assert_eq!(read_from(&object, &footer, 10, 0).unwrap().len(), 1);
    let some = read_from(&object, &footer, 10, 5 * batches[0].len() as u64).unwrap();
    assert!((5..=6).contains(&some.len()), "{}", some.len());
    assert_eq!(read_from(&object, &footer, 0, u64::MAX).unwrap().len(), 100);
    assert_eq!(
        footer.plan_offset_read(100, 1),
        Err(FormatError::OffsetOutOfRange {
            offset: 100,
            base_offset: 0,
            next_offset: 100
        })
    );
}

#[test]
fn batches_must_be_consecutive() {
    let mut a = common::batches(0, 2, 2, |_| 0);
    a[1].set_base_offset(7);
    let mut builder = SegmentBuilder::default();
    builder.append(&a[0]).unwrap();
    assert_eq!(
        builder.append(&a[1]),
        Err(FormatError::OffsetGap {
            expected: 2,
            found: 7
        })
    );
    assert_eq!(
        SegmentBuilder::default().finish().unwrap_err(),
        FormatError::EmptySegment
    );
}

/// Every way the object can be damaged, each expected to be a typed error.
#[test]
fn corrupt_segments_give_typed_errors() {
    let batches = common::batches(0, 40, 2, |b| b as i64);
    let (good, meta) = common::segment(&batches, 256);
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
        let object = Bytes::from(bytes);
        let err = open_blind(&object, 64 * 1024).expect_err(name);
        assert!(err.is_corruption(), "{name}: {err}");
        let sized = SegmentMeta {
            size: object.len() as u64,
            ..meta.clone()
        };
        let err = open(&object, &sized).expect_err(name);
        assert!(err.is_corruption(), "{name}: {err}");
    }

    // Damage inside the batch data: the footer is fine, the lookup that touches it is not.
    let mut flipped_data = good.to_vec();
    flipped_data[100] ^= 0x01;
    let flipped_data = Bytes::from(flipped_data);
    let footer = open(&flipped_data, &meta).unwrap();
    let err = read_from(&flipped_data, &footer, 0, u64::MAX).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::ChecksumMismatch { .. }
                | FormatError::Corrupt {
                    what: Corrupted::SegmentData,
                    ..
                }
        ),
        "{err}"
    );

    // Metadata that disagrees with the object is caught too.
    let lying = SegmentMeta {
        next_offset: meta.next_offset + 5,
        ..meta.clone()
    };
    assert!(open(&good, &lying).unwrap_err().is_corruption());
}
