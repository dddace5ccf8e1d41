use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::batch::codec::{BatchOptions, Compression, encode_batch};

fn tagged(tags: Option<&str>, i: i64) -> Record {
    Record {
        offset: 0,
        timestamp: 1_700_000_000_000 + i,
        key: Some(Bytes::from(format!("k{i}"))),
        value: Some(Bytes::from(format!("v{i}"))),
        headers: tags
            .map(|t| vec![(TAGS_HEADER.to_owned(), Some(Bytes::from(t.to_owned())))])
            .unwrap_or_default(),
    }
}

#[test]
fn expressions_parse_as_rocketmq_writes_them() {
    assert_eq!(TagFilter::parse("*").unwrap(), TagFilter::All);
    assert_eq!(TagFilter::parse("  *  ").unwrap(), TagFilter::All);
    let f = TagFilter::parse("TagA || TagB||tag.c-1").unwrap();
    assert_eq!(f.to_string(), "TagA || TagB || tag.c-1");
    assert_eq!(TagFilter::parse(&f.to_string()).unwrap(), f);
    for (bad, says) in [
        ("", "empty"),
        ("TagA ||", "term 2"),
        ("|| TagA", "term 1"),
        ("TagA|TagB", "holds `|`"),
        ("TagA&&TagB", "holds `&`"),
        ("* || TagA", "stands alone"),
        ("Tag A", "holds ` `"),
    ] {
        let e = TagFilter::parse(bad).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(says), "{bad:?}: {text}");
        assert!(text.contains(&format!("`{bad}`")), "{text}");
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }
    let long = "x".repeat(MAX_TAG_LEN + 1);
    assert!(TagFilter::parse(&long).is_err());
}

#[test]
fn a_record_is_taken_when_it_carries_a_wanted_tag() {
    let f = TagFilter::parse("A || B").unwrap();
    assert!(f.matches(&tagged(Some("A"), 0).headers));
    assert!(f.matches(&tagged(Some("C, B"), 0).headers));
    assert!(!f.matches(&tagged(Some("C"), 0).headers));
    assert!(!f.matches(&tagged(None, 0).headers));
    assert!(TagFilter::All.matches(&tagged(None, 0).headers));
    let bad_utf8 = vec![(TAGS_HEADER.to_owned(), Some(Bytes::from_static(b"\xff")))];
    assert!(!f.matches(&bad_utf8));
    assert!(tags_header(&["A".into(), "B".into()]).unwrap() == "A,B");
    assert!(tags_header(&["A,B".into()]).is_err());
}

#[test]
fn filtering_keeps_offsets_so_positions_move_past_what_was_dropped() {
    let records: Vec<Record> = (0..6)
        .map(|i| tagged([Some("A"), Some("B"), None][i as usize % 3], i))
        .collect();
    let mut batch = encode_batch(&records, &BatchOptions::default()).unwrap();
    batch.set_base_offset(100);
    let batch = RecordBatch::parse(batch.to_bytes()).unwrap();
    let only_b = TagFilter::parse("B").unwrap();
    let Filtered::Part(part) = filter_batch(&batch, &only_b).unwrap() else {
        panic!("a part")
    };
    let kept = decode_batch(&part).unwrap();
    let offsets: Vec<i64> = kept.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [101, 104]);
    assert_eq!(kept[0].value, records[1].value);
    assert_eq!(kept[1].timestamp, records[4].timestamp);
    assert!(matches!(
        filter_batch(&batch, &TagFilter::parse("Z").unwrap()).unwrap(),
        Filtered::Nothing
    ));
    assert!(matches!(
        filter_batch(&batch, &TagFilter::All).unwrap(),
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
