//! Flush objects: what the builder writes, the TOC gives back, every section reads as the
//! segment it was, and damaged objects give typed errors instead of panics.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use proptest::prelude::*;
use strata_format::{
    Corrupted, FLUSH_TRAILER_LEN, FlushObjectBuilder, FlushToc, Footer, FormatError, RecordBatch,
    Section,
};

fn slice(object: &Bytes, range: std::ops::Range<u64>) -> Bytes {
    object.slice(range.start as usize..range.end as usize)
}

/// What a reader that knows only the object's size does: read the trailer, then the tail it
/// names, then decode that.
fn open(object: &Bytes) -> Result<FlushToc, FormatError> {
    let trailer = object.slice(object.len().saturating_sub(FLUSH_TRAILER_LEN)..);
    let tail_len = FlushToc::tail_len_from_trailer(&trailer)?;
    let tail = object.slice(object.len().saturating_sub(tail_len)..);
    FlushToc::decode(&tail, object.len() as u64)
}

/// What a segment reader does with a section: its footer, then all of its batches.
fn read_section(object: &Bytes, section: &Section) -> Result<Vec<RecordBatch>, FormatError> {
    let footer = Footer::decode_for(&slice(object, section.footer_range()?), &section.meta)?;
    let data = slice(object, section.range());
    let read = footer.plan_offset_read(section.meta.base_offset, u64::MAX)?;
    read.batches(slice(&data, read.range.clone()))
}

/// One partition to flush: its name and the batches of its segment.
#[derive(Debug, Clone)]
struct Partition {
    topic: String,
    topic_id: u64,
    partition: u32,
    batches: Vec<RecordBatch>,
}

fn partition() -> impl Strategy<Value = Partition> {
    (
        "\\PC{0,24}",
        any::<u64>(),
        any::<u32>(),
        0i64..1_000_000,
        1usize..12,
        1usize..4,
    )
        .prop_map(
            |(topic, topic_id, partition, base, count, per_batch)| Partition {
                topic,
                topic_id,
                partition,
                batches: common::batches(base, count, per_batch, |b| 1000 + b as i64),
            },
        )
}

fn build(partitions: &[Partition], interval: u64) -> strata_format::EncodedFlushObject {
    let mut builder = FlushObjectBuilder::new();
    for p in partitions {
        let before = builder.data_len();
        let segment = common::encoded_segment(&p.batches, interval);
        let size = segment.meta.size;
        let start = builder.push(&p.topic, p.topic_id, p.partition, segment);
        assert_eq!(start, before);
        assert_eq!(builder.data_len(), before + size);
    }
    assert_eq!(builder.len(), partitions.len());
    builder.finish().unwrap()
}

fn flush_object(partitions: usize) -> (Bytes, Vec<Section>) {
    let partitions: Vec<Partition> = (0..partitions)
        .map(|i| Partition {
            topic: format!("topic-{i}"),
            topic_id: i as u64 + 1,
            partition: i as u32,
            batches: common::batches(i as i64 * 10, 3, 2, |b| b as i64),
        })
        .collect();
    let object = build(&partitions, 256);
    (object.to_bytes(), object.sections)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sections_round_trip_and_read_as_segments(
        partitions in proptest::collection::vec(partition(), 1..8),
        interval in prop_oneof![Just(1u64), Just(300), Just(4096)],
    ) {
        let encoded = build(&partitions, interval);
        let object = encoded.to_bytes();
        prop_assert_eq!(object.len() as u64, encoded.size);
        let toc = open(&object).unwrap();
        prop_assert_eq!(&toc.sections, &encoded.sections);
        // A reader that read more than it needed decodes the same.
        prop_assert_eq!(&FlushToc::decode(&object, encoded.size).unwrap(), &toc);
        for (section, p) in toc.sections.iter().zip(&partitions) {
            prop_assert_eq!(&section.topic, &p.topic);
            prop_assert_eq!(section.topic_id, p.topic_id);
            prop_assert_eq!(section.partition, p.partition);
            // As stored: the batches written kept their assigned offsets beside the bytes.
            let stored = |b: &[RecordBatch]| b.iter().map(RecordBatch::to_bytes).collect::<Vec<_>>();
            prop_assert_eq!(stored(&read_section(&object, section).unwrap()), stored(&p.batches));
        }
    }

    #[test]
    fn random_tails_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let size = data.len() as u64;
        let _ = FlushToc::tail_len_from_trailer(&data);
        let _ = FlushToc::decode(&data, size);
        let _ = FlushToc::decode(&data, size / 2);
    }

    /// Past the checksum, where random bytes never get: damage with the CRC fixed up.
    #[test]
    fn damaged_tocs_with_valid_crcs_never_panic(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (object, _) = flush_object(3);
        let toc_len = u32::from_be_bytes(object[object.len() - 16..][..4].try_into().unwrap());
        let toc_start = object.len() - 16 - toc_len as usize;
        let mut toc = object[toc_start..object.len() - 16].to_vec();
        let i = at.index(toc.len());
        toc[i] = byte;
        let damaged = with_toc(&object[..toc_start], &toc);
        match FlushToc::decode(&damaged, damaged.len() as u64) {
            Ok(decoded) => {
                for s in &decoded.sections {
                    let _ = read_section(&damaged, s);
                }
            }
            Err(e) => prop_assert!(e.is_corruption(), "{}", e),
        }
    }
}

#[test]
fn chunks_are_the_segments_own_without_copies() {
    let batches = common::batches(0, 4, 2, |b| b as i64);
    let segment = common::encoded_segment(&batches, 1);
    let pointers: Vec<*const u8> = segment.chunks.iter().map(|c| c.as_ptr()).collect();
    let mut builder = FlushObjectBuilder::new();
    builder.push("t", 1, 0, segment);
    let object = builder.finish().unwrap();
    assert_eq!(object.chunks.len(), pointers.len() + 1);
    for (chunk, pointer) in object.chunks.iter().zip(&pointers) {
        assert_eq!(chunk.as_ptr(), *pointer);
    }
}

#[test]
fn nothing_to_flush_and_overlong_topics_are_build_errors() {
    let builder = FlushObjectBuilder::new();
    assert!(builder.is_empty());
    assert_eq!(builder.finish().unwrap_err(), FormatError::EmptyFlushObject);

    let mut builder = FlushObjectBuilder::new();
    let segment = common::encoded_segment(&common::batches(0, 1, 1, |_| 0), 1);
    builder.push(&"x".repeat(70_000), 1, 0, segment);
    assert!(matches!(
        builder.finish().unwrap_err(),
        FormatError::FlushTocOverflow(_)
    ));
}

// ---- Hand-built tables of contents, written from the layout rather than by the builder ----

/// One TOC entry as the layout describes it.
fn entry(s: &Section) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend((s.topic.len() as u16).to_be_bytes());
    e.extend(s.topic.as_bytes());
    e.extend(s.topic_id.to_be_bytes());
    e.extend(s.partition.to_be_bytes());
    e.extend(s.start.to_be_bytes());
    let m = &s.meta;
    e.extend(m.size.to_be_bytes());
    e.extend(m.footer_len.to_be_bytes());
    e.extend(m.base_offset.to_be_bytes());
    e.extend(m.next_offset.to_be_bytes());
    e.extend(m.min_timestamp.to_be_bytes());
    e.extend(m.max_timestamp.to_be_bytes());
    e.extend(m.batch_count.to_be_bytes());
    e.extend(m.record_count.to_be_bytes());
    e
}

fn toc(count: u32, sections: &[Section]) -> Vec<u8> {
    let mut toc = count.to_be_bytes().to_vec();
    for s in sections {
        toc.extend(entry(s));
    }
    toc
}

/// `data` followed by `toc` and a trailer with the right length and CRC.
fn with_toc(data: &[u8], toc: &[u8]) -> Bytes {
    let mut out = data.to_vec();
    out.extend(toc);
    out.extend((toc.len() as u32).to_be_bytes());
    out.extend(crc32c::crc32c(toc).to_be_bytes());
    out.extend(1u16.to_be_bytes());
    out.extend(0u16.to_be_bytes());
    out.extend(b"STFO");
    Bytes::from(out)
}

fn decode_all(object: &[u8]) -> Result<FlushToc, FormatError> {
    FlushToc::decode(object, object.len() as u64)
}

fn assert_corrupt(result: Result<FlushToc, FormatError>, what: Corrupted, says: &str) {
    match result {
        Err(FormatError::Corrupt { what: got, detail }) => {
            assert_eq!(got, what, "{detail}");
            assert!(detail.contains(says), "{detail:?} does not say {says:?}");
        }
        other => panic!("expected corrupt {what} saying {says:?}, got {other:?}"),
    }
}

#[test]
fn the_hand_built_layout_matches_the_builder() {
    let (object, sections) = flush_object(3);
    let data_len = sections.last().unwrap().range().end as usize;
    assert_eq!(with_toc(&object[..data_len], &toc(3, &sections)), object);
}

#[test]
fn damaged_trailers_give_typed_errors() {
    let (good, _) = flush_object(2);
    let n = good.len();
    let trailer = n - FLUSH_TRAILER_LEN;
    let what = Corrupted::FlushTrailer;

    assert_corrupt(decode_all(&good[..10]), what, "too short");
    assert_corrupt(decode_all(&[]), what, "too short");
    let mut magic = good.to_vec();
    magic[n - 1] = b'G';
    assert_corrupt(decode_all(&magic), what, "magic");
    let mut version = good.to_vec();
    version[trailer + 9] = 2;
    assert_corrupt(decode_all(&version), what, "version 2");
    let mut tiny = good.to_vec();
    tiny[trailer..trailer + 4].copy_from_slice(&3u32.to_be_bytes());
    assert_corrupt(decode_all(&tiny), what, "below the minimum");
    let mut outside = good.to_vec();
    outside[trailer..trailer + 4].copy_from_slice(&(n as u32 * 2).to_be_bytes());
    assert_corrupt(decode_all(&outside), what, "does not fit");
    // A reader that read too little of a good object.
    let short = &good[n - 100..];
    assert_corrupt(
        FlushToc::decode(short, n as u64),
        what,
        "only 100 were read",
    );
    assert_corrupt(FlushToc::decode(&good, n as u64 - 1), what, "bytes read");

    let mut flipped = good.to_vec();
    flipped[trailer - 10] ^= 0x40;
    assert!(matches!(
        decode_all(&flipped),
        Err(FormatError::ChecksumMismatch {
            what: Corrupted::FlushToc,
            ..
        })
    ));
}

#[test]
fn damaged_tables_of_contents_give_typed_errors() {
    let (good, sections) = flush_object(3);
    let data_len = sections.last().unwrap().range().end;
    let data = &good[..data_len as usize];
    let what = Corrupted::FlushToc;
    let with = |edit: &dyn Fn(&mut Vec<Section>)| {
        let mut s = sections.clone();
        edit(&mut s);
        decode_all(&with_toc(data, &toc(s.len() as u32, &s)))
    };

    let mut huge = toc(u32::MAX, &sections);
    assert_corrupt(decode_all(&with_toc(data, &huge)), what, "cannot fit");
    huge[..4].copy_from_slice(&0u32.to_be_bytes());
    assert_corrupt(decode_all(&with_toc(data, &huge)), what, "no sections");
    let mut trailing = toc(3, &sections);
    trailing.extend([0; 3]);
    assert_corrupt(
        decode_all(&with_toc(data, &trailing)),
        what,
        "after the last",
    );
    // Count 2 is plausible for the bytes, but entry 1's topic claims most of them.
    let mut truncated = toc(2, &sections[..1]);
    truncated.extend(500u16.to_be_bytes());
    truncated.extend([b'a'; 100]);
    let first = sections[0].range().end as usize;
    assert_corrupt(
        decode_all(&with_toc(&data[..first], &truncated)),
        what,
        "entry 1 is truncated",
    );
    let mut not_utf8 = toc(1, &[]);
    let mut e = entry(&Section {
        topic: "ab".into(),
        ..sections[0].clone()
    });
    e[2] = 0xff;
    not_utf8.extend(e);
    assert_corrupt(
        decode_all(&with_toc(&data[..first], &not_utf8)),
        what,
        "UTF-8",
    );

    assert_corrupt(with(&|s| s[1].start -= 1), what, "overlapping");
    assert_corrupt(with(&|s| s[2].start += 1), what, "gap");
    assert_corrupt(with(&|s| s[0].start = 5), what, "gap after position 0");
    assert_corrupt(with(&|s| s[2].meta.size += 1), what, "past the TOC");
    assert_corrupt(with(&|s| s[2].meta.size = u64::MAX), what, "past the TOC");
    assert_corrupt(
        with(&|s| {
            s.pop();
        }),
        what,
        "sections end at",
    );
    assert_corrupt(
        with(&|s| s[1].meta.footer_len = 15),
        what,
        "footer length 15",
    );
    assert_corrupt(
        with(&|s| s[1].meta.footer_len = s[1].meta.size as u32 + 1),
        what,
        "footer length",
    );
    assert_corrupt(
        with(&|s| s[0].meta.next_offset = s[0].meta.base_offset - 1),
        what,
        "offset range",
    );
    // Still a valid layout after all that: the builder's sections, re-encoded, decode.
    assert_eq!(with(&|_| {}).unwrap().sections, sections);
}
