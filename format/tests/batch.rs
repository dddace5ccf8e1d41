//! Record batch codec: round trips for every codec, and corrupt input never panics.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use strata_format::{
    BatchIter, BatchOptions, Compression, Corrupted, FormatError, Record, RecordBatch,
    decode_batch, encode_batch,
};

fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        0i64..4_000_000_000_000,
        arb_bytes(64),
        arb_bytes(512),
        proptest::collection::btree_map("[a-z]{1,8}", arb_bytes(16), 0..4),
    )
        .prop_map(|(timestamp, key, value, headers)| Record {
            offset: 0,
            timestamp,
            key,
            value,
            headers: headers.into_iter().collect(),
        })
}

fn arb_compression() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip_every_codec(
        records in proptest::collection::vec(arb_record(), 1..40),
        compression in arb_compression(),
        producer in proptest::option::of((0i64..1 << 40, 0i16..100, 0i32..1 << 30)),
        base_offset in 0i64..1 << 50,
    ) {
        let options = match producer {
            Some((producer_id, producer_epoch, base_sequence)) =>
                BatchOptions { compression, producer_id, producer_epoch, base_sequence },
            None => BatchOptions { compression, ..BatchOptions::default() },
        };
        let mut batch = encode_batch(&records, &options).unwrap();
        batch.set_base_offset(base_offset);
        // What a reader sees: the stored bytes, parsed again from scratch.
        let stored = RecordBatch::parse(batch.to_bytes()).unwrap();
        prop_assert_eq!(stored.base_offset(), base_offset);
        prop_assert_eq!(stored.record_count() as usize, records.len());
        prop_assert_eq!(stored.compression(), compression);
        prop_assert_eq!(stored.producer_id(), options.producer_id);
        prop_assert_eq!(stored.producer_epoch(), options.producer_epoch);
        prop_assert_eq!(stored.base_sequence(), options.base_sequence);
        prop_assert_eq!(stored.is_idempotent(), producer.is_some());
        prop_assert_eq!(stored.max_timestamp(), records.iter().map(|r| r.timestamp).max().unwrap());
        prop_assert_eq!(stored.base_timestamp(), records.iter().map(|r| r.timestamp).min().unwrap());
        let decoded = decode_batch(&stored).unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (got, want)) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.offset, base_offset + i as i64);
            prop_assert_eq!(got.timestamp, want.timestamp);
            prop_assert_eq!(&got.key, &want.key);
            prop_assert_eq!(&got.value, &want.value);
            prop_assert_eq!(&got.headers, &want.headers);
        }
    }

    #[test]
    fn chunks_equal_stored_bytes(records in proptest::collection::vec(arb_record(), 1..5), offset in any::<i64>()) {
        let mut batch = encode_batch(&records, &BatchOptions::default()).unwrap();
        batch.set_base_offset(offset);
        let [head, rest] = batch.chunks();
        let mut joined = BytesMut::new();
        joined.extend_from_slice(&head);
        joined.extend_from_slice(&rest);
        prop_assert_eq!(joined.freeze(), batch.to_bytes());
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        for batch in BatchIter::new(Bytes::from(data)).flatten() {
            let _ = decode_batch(&batch);
        }
    }

    #[test]
    fn any_flipped_bit_is_caught(records in proptest::collection::vec(arb_record(), 1..5), bit in any::<prop::sample::Index>()) {
        let batch = encode_batch(&records, &BatchOptions::default()).unwrap();
        let mut bytes = batch.to_bytes().to_vec();
        // baseOffset and partitionLeaderEpoch are outside the CRC by design; flip elsewhere.
        let covered = 8 * 8..bytes.len() * 8;
        let bit = covered.start + bit.index(covered.len());
        if (12 * 8..16 * 8).contains(&bit) {
            return Ok(());
        }
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(RecordBatch::parse(Bytes::from(bytes)).is_err());
    }
}

fn sample() -> Bytes {
    let records: Vec<Record> = (0..3).map(|i| common::record(i, 1000 + i as i64)).collect();
    encode_batch(&records, &BatchOptions::default())
        .unwrap()
        .to_bytes()
}

fn expect_corrupt(bytes: Vec<u8>, needle: &str) {
    match RecordBatch::parse(Bytes::from(bytes)) {
        Err(FormatError::Corrupt {
            what: Corrupted::RecordBatch,
            detail,
        }) => {
            assert!(
                detail.contains(needle),
                "`{detail}` should mention `{needle}`"
            );
        }
        other => panic!("expected a corrupt-batch error mentioning `{needle}`, got {other:?}"),
    }
}

#[test]
fn truncated_batch_is_rejected() {
    let bytes = sample();
    expect_corrupt(bytes[..30].to_vec(), "truncated");
    expect_corrupt(bytes[..bytes.len() - 1].to_vec(), "batchLength");
}

#[test]
fn wrong_magic_is_rejected() {
    let mut bytes = sample().to_vec();
    bytes[16] = 1;
    expect_corrupt(bytes, "magic 1");
}

#[test]
fn lying_lengths_are_rejected() {
    let mut bytes = sample().to_vec();
    bytes[8..12].copy_from_slice(&(i32::MAX).to_be_bytes());
    expect_corrupt(bytes, "batchLength");
    let mut bytes = sample().to_vec();
    bytes[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    expect_corrupt(bytes, "below the header size");
    // A record count that cannot fit in the bytes given (header fields are CRC-covered, so
    // fix the CRC to reach the count check the way an attacker would).
    let mut bytes = sample().to_vec();
    bytes[57..61].copy_from_slice(&(1_000_000i32).to_be_bytes());
    bytes[23..27].copy_from_slice(&(999_999i32).to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    expect_corrupt(bytes, "cannot fit");
}

#[test]
fn bad_crc_is_rejected() {
    let mut bytes = sample().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    match RecordBatch::parse(Bytes::from(bytes)) {
        Err(FormatError::ChecksumMismatch {
            what: Corrupted::RecordBatch,
            stored,
            computed,
        }) => {
            assert_ne!(stored, computed);
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
}

#[test]
fn unknown_codec_is_rejected() {
    let mut bytes = sample().to_vec();
    bytes[22] |= 0x7;
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    expect_corrupt(bytes, "unknown compression codec 7");
}

#[test]
fn iterator_stops_at_the_first_bad_batch() {
    let good = sample();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&good);
    buf.extend_from_slice(&good[..40]);
    let results: Vec<_> = BatchIter::new(buf.freeze()).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(results[1].as_ref().is_err_and(FormatError::is_corruption));
}

#[test]
fn compression_names_parse() {
    for c in Compression::ALL {
        assert_eq!(c.as_str().parse::<Compression>().unwrap(), c);
    }
    let err = "brotli".parse::<Compression>().unwrap_err();
    assert!(err.contains("gzip"), "{err}");
}
