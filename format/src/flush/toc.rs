//! The table of contents and trailer at the end of a flush object.
//!
//! ```text
//! toc:   count u32, then per section:
//!        topic_len u16 | topic | topic_id u64 | partition u32 | start u64 |
//!        size u64 | footer_len u32 | base_offset i64 | next_offset i64 |
//!        min_timestamp i64 | max_timestamp i64 | batch_count u32 | record_count u64
//! trailer: toc_len u32 | toc_crc u32 | version u16 | flags u16 | "STFO"
//! ```
//!
//! Big-endian throughout, like the segment footer. Everything read here is untrusted: every
//! read is bounds-checked, every sum checked, and nothing is allocated for a count the bytes
//! cannot hold.

use bytes::{BufMut, Bytes, BytesMut};

use super::Section;
use crate::error::{Corrupted, FormatError, Result};
use crate::segment::{SegmentMeta, TRAILER_LEN};

/// Version of the TOC layout; readers reject versions they do not know.
pub const FLUSH_FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"STFO";
/// Fixed size of the trailer at the very end of a flush object.
pub const FLUSH_TRAILER_LEN: usize = 16;
const COUNT_LEN: usize = 4;
/// An entry with an empty topic name; every entry takes at least this much.
const ENTRY_MIN_LEN: usize = 2 + 8 + 4 + 8 + 8 + 4 + 8 * 4 + 4 + 8;
/// An object holds at least one section, so a shorter TOC is damage.
const TOC_MIN_LEN: usize = COUNT_LEN + ENTRY_MIN_LEN;

fn corrupt_trailer(detail: impl Into<String>) -> FormatError {
    FormatError::corrupt(Corrupted::FlushTrailer, detail)
}

fn corrupt_toc(detail: impl Into<String>) -> FormatError {
    FormatError::corrupt(Corrupted::FlushToc, detail)
}

/// Encodes TOC and trailer for `sections`, which the builder laid out back to back.
pub(super) fn encode(sections: &[Section]) -> Result<Bytes> {
    let count = u32::try_from(sections.len())
        .map_err(|_| FormatError::FlushTocOverflow(format!("{} sections", sections.len())))?;
    let topics: usize = sections.iter().map(|s| s.topic.len()).sum();
    let mut buf = BytesMut::with_capacity(
        COUNT_LEN + sections.len() * ENTRY_MIN_LEN + topics + FLUSH_TRAILER_LEN,
    );
    buf.put_u32(count);
    for s in sections {
        let topic_len = u16::try_from(s.topic.len()).map_err(|_| {
            FormatError::FlushTocOverflow(format!(
                "a topic name of {} bytes (at most {})",
                s.topic.len(),
                u16::MAX
            ))
        })?;
        buf.put_u16(topic_len);
        buf.put_slice(s.topic.as_bytes());
        buf.put_u64(s.topic_id);
        buf.put_u32(s.partition);
        buf.put_u64(s.start);
        let m = &s.meta;
        buf.put_u64(m.size);
        buf.put_u32(m.footer_len);
        buf.put_i64(m.base_offset);
        buf.put_i64(m.next_offset);
        buf.put_i64(m.min_timestamp);
        buf.put_i64(m.max_timestamp);
        buf.put_u32(m.batch_count);
        buf.put_u64(m.record_count);
    }
    let toc_len = u32::try_from(buf.len())
        .map_err(|_| FormatError::FlushTocOverflow(format!("{} bytes of TOC", buf.len())))?;
    let crc = crc32c::crc32c(&buf);
    buf.put_u32(toc_len);
    buf.put_u32(crc);
    buf.put_u16(FLUSH_FORMAT_VERSION);
    buf.put_u16(0);
    buf.put_slice(MAGIC);
    Ok(buf.freeze())
}

/// The decoded trailer, once its magic and version are known good.
struct Trailer {
    toc_len: usize,
    toc_crc: u32,
}

impl Trailer {
    fn read(tail: &[u8]) -> Result<Self> {
        let Some((_, trailer)) = tail.split_last_chunk::<FLUSH_TRAILER_LEN>() else {
            return Err(corrupt_trailer(format!(
                "object too short: {} bytes, the trailer needs {FLUSH_TRAILER_LEN}",
                tail.len()
            )));
        };
        // Flags are reserved: version 1 writes zero and gives them no meaning.
        let [l0, l1, l2, l3, c0, c1, c2, c3, v0, v1, _, _, magic @ ..] = *trailer;
        if &magic != MAGIC {
            return Err(corrupt_trailer(
                "wrong magic: this object is not a Strata flush object",
            ));
        }
        let version = u16::from_be_bytes([v0, v1]);
        if version != FLUSH_FORMAT_VERSION {
            return Err(corrupt_trailer(format!(
                "format version {version} is unknown (this build reads {FLUSH_FORMAT_VERSION}); upgrade Strata"
            )));
        }
        let toc_len = u32::from_be_bytes([l0, l1, l2, l3]);
        let toc_len = usize::try_from(toc_len)
            .ok()
            .filter(|&len| len.checked_add(FLUSH_TRAILER_LEN).is_some())
            .ok_or_else(|| {
                corrupt_trailer(format!("TOC length {toc_len} is too large to address"))
            })?;
        if toc_len < TOC_MIN_LEN {
            return Err(corrupt_trailer(format!(
                "TOC length {toc_len} is below the minimum {TOC_MIN_LEN} of one section"
            )));
        }
        Ok(Self {
            toc_len,
            toc_crc: u32::from_be_bytes([c0, c1, c2, c3]),
        })
    }
}

/// The sections of a flush object, decoded from its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushToc {
    pub sections: Vec<Section>,
}

impl FlushToc {
    /// From the last [`FLUSH_TRAILER_LEN`] bytes (or more) of an object: how many bytes of TOC
    /// plus trailer to read from its end.
    pub fn tail_len_from_trailer(tail: &[u8]) -> Result<usize> {
        // `read` checked that the sum does not overflow.
        Trailer::read(tail).map(|t| t.toc_len + FLUSH_TRAILER_LEN)
    }

    /// Decodes and validates TOC and trailer from `tail`, the last bytes (at least TOC plus
    /// trailer) of an object of `object_size` bytes.
    pub fn decode(tail: &[u8], object_size: u64) -> Result<Self> {
        let trailer = Trailer::read(tail)?;
        let tail_len = trailer.toc_len + FLUSH_TRAILER_LEN;
        if tail.len() as u64 > object_size {
            return Err(corrupt_trailer(format!(
                "{} bytes read from the end of an object of {object_size}",
                tail.len()
            )));
        }
        if tail_len as u64 > object_size {
            return Err(corrupt_trailer(format!(
                "TOC of {} bytes does not fit in an object of {object_size}",
                trailer.toc_len
            )));
        }
        let toc_start = object_size - tail_len as u64;
        let toc = tail
            .len()
            .checked_sub(tail_len)
            .and_then(|from| tail.get(from..tail.len() - FLUSH_TRAILER_LEN))
            .ok_or_else(|| {
                corrupt_trailer(format!(
                    "TOC and trailer take {tail_len} bytes but only {} were read",
                    tail.len()
                ))
            })?;
        let computed = crc32c::crc32c(toc);
        if computed != trailer.toc_crc {
            return Err(FormatError::ChecksumMismatch {
                what: Corrupted::FlushToc,
                stored: trailer.toc_crc,
                computed,
            });
        }
        let sections = decode_entries(toc)?;
        validate_layout(&sections, toc_start)?;
        Ok(Self { sections })
    }
}

fn decode_entries(toc: &[u8]) -> Result<Vec<Section>> {
    let Some((count, entries)) = toc.split_first_chunk::<COUNT_LEN>() else {
        return Err(corrupt_toc("too short for the section count"));
    };
    let count = u32::from_be_bytes(*count);
    if count == 0 {
        return Err(corrupt_toc(
            "no sections: a flush object holds at least one",
        ));
    }
    // The count is untrusted: bound it by what the bytes can hold before allocating for it.
    let fits = entries.len() / ENTRY_MIN_LEN;
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= fits)
        .ok_or_else(|| {
            corrupt_toc(format!(
                "{count} sections cannot fit in {} bytes (at most {fits})",
                entries.len()
            ))
        })?;
    let mut reader = Entries {
        rest: entries,
        entry: 0,
    };
    let mut sections = Vec::with_capacity(count);
    for entry in 0..count {
        reader.entry = entry;
        sections.push(reader.section()?);
    }
    if !reader.rest.is_empty() {
        return Err(corrupt_toc(format!(
            "{} bytes after the last of {count} sections",
            reader.rest.len()
        )));
    }
    Ok(sections)
}

/// A cursor over TOC entries whose errors name the entry and field that ran out.
struct Entries<'a> {
    rest: &'a [u8],
    entry: usize,
}

impl<'a> Entries<'a> {
    fn truncated(&self, needed: usize, field: &str) -> FormatError {
        corrupt_toc(format!(
            "entry {} is truncated: its {field} needs {needed} bytes, {} are left",
            self.entry,
            self.rest.len()
        ))
    }

    fn bytes(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let (head, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| self.truncated(n, field))?;
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated(N, field))?;
        self.rest = rest;
        Ok(*head)
    }

    fn u16(&mut self, field: &str) -> Result<u16> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &str) -> Result<u32> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn u64(&mut self, field: &str) -> Result<u64> {
        self.array(field).map(u64::from_be_bytes)
    }

    fn i64(&mut self, field: &str) -> Result<i64> {
        self.array(field).map(i64::from_be_bytes)
    }

    fn section(&mut self) -> Result<Section> {
        let topic_len = self.u16("topic length")?;
        let topic = self.bytes(usize::from(topic_len), "topic")?;
        let topic = std::str::from_utf8(topic)
            .map_err(|e| corrupt_toc(format!("entry {}: topic is not UTF-8: {e}", self.entry)))?;
        Ok(Section {
            topic: topic.to_owned(),
            topic_id: self.u64("topic id")?,
            partition: self.u32("partition")?,
            start: self.u64("start")?,
            meta: SegmentMeta {
                size: self.u64("size")?,
                footer_len: self.u32("footer length")?,
                base_offset: self.i64("base offset")?,
                next_offset: self.i64("next offset")?,
                min_timestamp: self.i64("min timestamp")?,
                max_timestamp: self.i64("max timestamp")?,
                batch_count: self.u32("batch count")?,
                record_count: self.u64("record count")?,
            },
        })
    }
}

/// Sections must tile the bytes before the TOC exactly, each a plausible segment object, so a
/// reader can trust any section's range without checking the others.
fn validate_layout(sections: &[Section], toc_start: u64) -> Result<()> {
    let mut end_of_previous = 0u64;
    for (i, s) in sections.iter().enumerate() {
        let name = || format!("section {i} ({} partition {})", s.topic, s.partition);
        let m = &s.meta;
        if u64::from(m.footer_len) < TRAILER_LEN as u64 || u64::from(m.footer_len) > m.size {
            return Err(corrupt_toc(format!(
                "{}: footer length {} does not fit a segment of {} bytes",
                name(),
                m.footer_len,
                m.size
            )));
        }
        // The segment footer rejects the same ranges; catching them here names the section.
        if m.base_offset < 0 || m.next_offset <= m.base_offset {
            return Err(corrupt_toc(format!(
                "{}: offset range [{}, {}) is empty or negative",
                name(),
                m.base_offset,
                m.next_offset
            )));
        }
        if s.start < end_of_previous {
            return Err(corrupt_toc(format!(
                "{}: starts at {}, overlapping the section before it, which ends at {end_of_previous}",
                name(),
                s.start
            )));
        }
        if s.start > end_of_previous {
            return Err(corrupt_toc(format!(
                "{}: starts at {}, leaving a gap after position {end_of_previous}",
                name(),
                s.start
            )));
        }
        let end = s.start.checked_add(m.size).filter(|&end| end <= toc_start);
        let Some(end) = end else {
            return Err(corrupt_toc(format!(
                "{}: {} bytes from {} extend past the TOC at {toc_start}",
                name(),
                m.size,
                s.start
            )));
        };
        end_of_previous = end;
    }
    if end_of_previous != toc_start {
        return Err(corrupt_toc(format!(
            "sections end at {end_of_previous} but the TOC starts at {toc_start}"
        )));
    }
    Ok(())
}
