use proptest::prelude::*;

use super::*;

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            "\\PC{0,20}",
            prop::collection::vec(any::<u8>(), 0..100),
            any::<Option<i64>>()
        )
            .prop_map(|(key, value, lease)| Mutation::Put {
                key,
                value: Bytes::from(value),
                lease: lease.filter(|l| *l != 0),
            }),
        "\\PC{0,20}".prop_map(|key| Mutation::Delete { key }),
    ]
}

fn key_value() -> impl Strategy<Value = KeyValue> {
    (
        "\\PC{1,20}",
        prop::collection::vec(any::<u8>(), 0..64),
        any::<[i64; 3]>(),
        any::<i64>(),
    )
        .prop_map(|(key, value, [c, m, v], lease)| KeyValue {
            key,
            value: Bytes::from(value),
            create_revision: c,
            mod_revision: m,
            version: v,
            lease: (lease != 0).then_some(lease),
        })
}

fn concat(payloads: &[Vec<u8>]) -> Vec<u8> {
    payloads.iter().flat_map(|p| encode_frame(p)).collect()
}

proptest! {
    #[test]
    fn frames_round_trip(payloads in payloads()) {
        let data = concat(&payloads);
        let scan = scan_frames(&data).unwrap();
        prop_assert_eq!(scan.payloads, payloads.iter().map(Vec::as_slice).collect::<Vec<_>>());
        prop_assert_eq!(scan.valid_len, data.len());
        prop_assert_eq!(scan.torn, None);
    }

    #[test]
    fn a_cut_anywhere_is_a_torn_tail(payloads in payloads(), cut in any::<prop::sample::Index>()) {
        let data = concat(&payloads);
        let cut = cut.index(data.len() + 1);
        let scan = scan_frames(&data[..cut]).unwrap();
        prop_assert!(scan.valid_len <= cut);
        prop_assert_eq!(scan.torn.is_some(), scan.valid_len < cut);
        prop_assert_eq!(&scan.payloads[..], &payloads.iter().map(Vec::as_slice).collect::<Vec<_>>()[..scan.payloads.len()]);
    }

    #[test]
    fn a_flipped_bit_before_the_last_frame_is_corruption(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 2..6),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut data = concat(&payloads);
        let last = FRAME_HEADER + payloads[payloads.len() - 1].len();
        let at = at.index(data.len() - last);
        data[at] ^= 1 << bit;
        prop_assert!(scan_frames(&data).is_err());
    }

    #[test]
    fn records_round_trip(revision in any::<i64>(), mutations in prop::collection::vec(mutation(), 0..10)) {
        let record = Record { revision, mutations };
        prop_assert_eq!(decode_record(&encode_record(&record)).unwrap(), record);
    }

    #[test]
    fn snapshots_round_trip(revision in any::<i64>(), kvs in prop::collection::vec(key_value(), 0..10)) {
        let data = encode_snapshot(revision, kvs.len(), kvs.iter());
        prop_assert_eq!(decode_snapshot(&data).unwrap(), (revision, kvs));
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = scan_frames(&data);
        let _ = decode_record(&data);
        let _ = decode_snapshot(&data);
        let mut with_magic = SNAPSHOT_MAGIC.to_vec();
        with_magic.extend_from_slice(&data);
        let _ = decode_snapshot(&with_magic);
        let mut with_format = vec![RECORD_FORMAT];
        with_format.extend_from_slice(&data);
        let _ = decode_record(&with_format);
    }
}

#[test]
fn zero_filled_tail_is_torn_but_garbage_is_not() {
    let mut data = concat(&[b"one".to_vec(), b"two".to_vec()]);
    let valid = data.len();
    data.extend_from_slice(&[0; 40]);
    let scan = scan_frames(&data).unwrap();
    assert_eq!(scan.payloads.len(), 2);
    assert_eq!(scan.valid_len, valid);
    assert!(scan.torn.is_some());

    data.truncate(valid);
    data.extend_from_slice(&[0xAB; 40]);
    assert_eq!(scan_frames(&data).unwrap_err().0, valid);
}
