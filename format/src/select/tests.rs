use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::batch::codec::{BatchOptions, encode_batch};
use crate::tags::tests::tagged;

#[test]
fn filtering_keeps_offsets_so_positions_move_past_what_was_dropped() {
    let records: Vec<Record> = (0..6)
        .map(|i| tagged([Some("A"), Some("B"), None][i as usize % 3], i))
        .collect();
    let mut batch = encode_batch(&records, &BatchOptions::default()).unwrap();
    batch.set_base_offset(100);
    let batch = RecordBatch::parse(batch.to_bytes()).unwrap();
    let only_b = Selector::parse("B", "").unwrap();
    let Filtered::Part(part) = filter_batch(&batch, &only_b).unwrap() else {
        panic!("a part")
    };
    let kept = decode_batch(&part).unwrap();
    let offsets: Vec<i64> = kept.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [101, 104]);
    assert_eq!(kept[0].value, records[1].value);
    assert_eq!(kept[1].timestamp, records[4].timestamp);
    assert!(matches!(
        filter_batch(&batch, &TagFilter::parse("Z").unwrap().into()).unwrap(),
        Filtered::Nothing
    ));
    assert!(matches!(
        filter_batch(&batch, &Selector::ALL).unwrap(),
        Filtered::Whole(_)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any subset of any batch, in any compression, decodes to the same records at the same
    /// offsets.
    #[test]
    fn a_subset_decodes_to_the_same_records(
        base in 0i64..1_000_000,
        kept in proptest::collection::vec(any::<bool>(), 1..40),
        codec in 0usize..Compression::ALL.len(),
        idempotent in any::<bool>(),
    ) {
        let records: Vec<Record> = (0..kept.len() as i64).map(|i| tagged(Some("t"), i)).collect();
        let options = BatchOptions {
            compression: Compression::ALL[codec],
            producer_id: if idempotent { 7 } else { -1 },
            producer_epoch: if idempotent { 1 } else { -1 },
            base_sequence: if idempotent { 40 } else { -1 },
        };
        let mut batch = encode_batch(&records, &options).unwrap();
        batch.set_base_offset(base);
        let batch = RecordBatch::parse(batch.to_bytes()).unwrap();
        let all = decode_batch(&batch).unwrap();
        let wanted: Vec<Record> = all
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .map(|(r, _)| r.clone())
            .collect();
        prop_assume!(!wanted.is_empty());
        let codec = reencoding(batch.compression());
        let part = encode_records_at(&wanted, &batch, codec).unwrap();
        let part = RecordBatch::parse_sparse(part.to_bytes()).unwrap();
        prop_assert_eq!(part.compression(), codec);
        prop_assert_eq!(part.producer_id(), batch.producer_id());
        prop_assert_eq!(decode_batch(&part).unwrap(), wanted);
    }
}

#[test]
fn a_record_is_taken_when_tags_and_properties_both_take_it() {
    let record = |tags: &str, region: &str| {
        let mut r = tagged(Some(tags), 0);
        r.headers
            .push(("region".into(), Some(Bytes::from(region.to_owned()))));
        r.headers
    };
    let selector = Selector::parse("paid || refunded", "region IN ('eu', 'uk')").unwrap();
    assert!(selector.matches(&record("paid", "eu")));
    assert!(!selector.matches(&record("paid", "us")));
    assert!(!selector.matches(&record("shipped", "eu")));
    assert!(Selector::parse("", " ").unwrap().is_all());
    assert!(!Selector::parse("*", "region = 'eu'").unwrap().is_all());
    assert!(matches!(
        Selector::parse("a |", ""),
        Err(SelectorError::Tags(_))
    ));
    assert!(matches!(
        Selector::parse("*", "a ="),
        Err(SelectorError::Properties(_))
    ));
}

#[test]
fn lane_filtering_keeps_the_codec_kafka_consumers_asked_for() {
    let lanes_only = Selector::ALL.on_lanes(crate::lanes::LaneFilter::Main);
    assert_eq!(lanes_only.codec_for(Compression::Gzip), Compression::Gzip);
    assert_eq!(lanes_only.codec_for(Compression::Lz4), Compression::Lz4);
    let tagged = Selector::parse("paid", "").unwrap();
    assert_eq!(tagged.codec_for(Compression::Gzip), Compression::Zstd);
    let filtered = Selector::parse("", "a = 1")
        .unwrap()
        .on_lanes(crate::lanes::LaneFilter::Main);
    assert_eq!(filtered.codec_for(Compression::Lz4), Compression::Zstd);
}

#[test]
fn delayed_originals_are_hidden_and_their_copies_shown_in_the_batch_codec() {
    let delayed = |i: i64| Record {
        headers: vec![(
            crate::delay::DELAY_MS_HEADER.to_owned(),
            Some(Bytes::from_static(b"1000")),
        )],
        ..tagged(None, i)
    };
    let copy = crate::delay::delivered_copy(delayed(0), 0, 5);
    let records = [tagged(None, 0), delayed(1), copy];
    let batch = encode_batch(
        &records,
        &BatchOptions {
            compression: Compression::Gzip,
            ..BatchOptions::default()
        },
    )
    .unwrap();
    let hiding = Selector::ALL.hiding_delayed();
    assert!(!hiding.is_all());
    let Filtered::Part(part) = filter_batch(&batch, &hiding).unwrap() else {
        panic!("a part")
    };
    assert_eq!(
        part.compression(),
        Compression::Gzip,
        "Kafka consumers read it"
    );
    let offsets: Vec<i64> = decode_batch(&part)
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, [0, 2]);
    assert!(matches!(
        filter_batch(&batch, &Selector::ALL).unwrap(),
        Filtered::Whole(_)
    ));
}
