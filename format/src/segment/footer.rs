use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::SegmentMeta;
use crate::error::{Corrupted, FormatError, Result};

/// Version of the footer layout; readers reject versions they do not know.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"STSG";
/// Fixed size of the trailer at the very end of a segment object.
pub const TRAILER_LEN: usize = 16;
/// Fixed fields of the footer before the index entries.
const FOOTER_FIXED_LEN: usize = 8 * 5 + 4 + 8 + 4;
const INDEX_ENTRY_LEN: usize = 24;

/// One block of the sparse index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Base offset of the first batch in the block.
    pub offset: i64,
    /// Byte position of that batch in the object.
    pub position: u64,
    /// Largest record timestamp in this block and every block before it.
    pub max_timestamp: i64,
}

/// The decoded footer of a segment object. Cheap to clone behind an `Arc` and cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub base_offset: i64,
    pub next_offset: i64,
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    /// Bytes of batch data before the footer.
    pub data_len: u64,
    pub batch_count: u32,
    pub record_count: u64,
    pub index: Vec<IndexEntry>,
}

fn corrupt(what: Corrupted, detail: impl Into<String>) -> FormatError {
    FormatError::corrupt(what, detail)
}

impl Footer {
    /// Encodes footer and trailer.
    pub(crate) fn encode(&self) -> Bytes {
        let footer_len = FOOTER_FIXED_LEN + self.index.len() * INDEX_ENTRY_LEN;
        let mut buf = BytesMut::with_capacity(footer_len + TRAILER_LEN);
        buf.put_i64(self.base_offset);
        buf.put_i64(self.next_offset);
        buf.put_i64(self.min_timestamp);
        buf.put_i64(self.max_timestamp);
        buf.put_u64(self.data_len);
        buf.put_u32(self.batch_count);
        buf.put_u64(self.record_count);
        buf.put_u32(self.index.len() as u32);
        for entry in &self.index {
            buf.put_i64(entry.offset);
            buf.put_u64(entry.position);
            buf.put_i64(entry.max_timestamp);
        }
        let crc = crc32c::crc32c(&buf);
        buf.put_u32(footer_len as u32);
        buf.put_u32(crc);
        buf.put_u16(FORMAT_VERSION);
        buf.put_u16(0);
        buf.put_slice(MAGIC);
        buf.freeze()
    }

    /// Reads the trailer (the last [`TRAILER_LEN`] bytes of `tail`) and returns the footer
    /// length it declares, so a reader knows how much more to fetch.
    pub fn footer_len_from_trailer(tail: &[u8]) -> Result<usize> {
        let Some(start) = tail.len().checked_sub(TRAILER_LEN) else {
            return Err(corrupt(
                Corrupted::SegmentTrailer,
                format!(
                    "object too short: {} bytes, the trailer needs {TRAILER_LEN}",
                    tail.len()
                ),
            ));
        };
        let mut t = &tail[start..];
        let footer_len = t.get_u32() as usize;
        let _crc = t.get_u32();
        let version = t.get_u16();
        let _flags = t.get_u16();
        if t != MAGIC {
            return Err(corrupt(
                Corrupted::SegmentTrailer,
                "wrong magic: this object is not a Strata segment",
            ));
        }
        if version != FORMAT_VERSION {
            return Err(corrupt(
                Corrupted::SegmentTrailer,
                format!(
                    "format version {version} is unknown (this build reads {FORMAT_VERSION}); upgrade Strata"
                ),
            ));
        }
        if footer_len < FOOTER_FIXED_LEN {
            return Err(corrupt(
                Corrupted::SegmentTrailer,
                format!("footer length {footer_len} is below the minimum {FOOTER_FIXED_LEN}"),
            ));
        }
        Ok(footer_len)
    }

    /// Decodes and validates the footer from `tail`, which must end with the trailer and hold
    /// at least the whole footer. `object_size` is the size of the object `tail` came from.
    pub fn decode(tail: &[u8], object_size: u64) -> Result<Self> {
        let footer_len = Self::footer_len_from_trailer(tail)?;
        let needed = footer_len + TRAILER_LEN;
        if needed > tail.len() || needed as u64 > object_size {
            return Err(corrupt(
                Corrupted::SegmentTrailer,
                format!(
                    "footer of {footer_len} bytes points outside the object ({object_size} bytes, {} read)",
                    tail.len()
                ),
            ));
        }
        let footer_bytes = &tail[tail.len() - needed..tail.len() - TRAILER_LEN];
        let stored_crc = u32::from_be_bytes(
            tail[tail.len() - TRAILER_LEN + 4..tail.len() - TRAILER_LEN + 8]
                .try_into()
                .expect("slice of four bytes"),
        );
        let computed = crc32c::crc32c(footer_bytes);
        if stored_crc != computed {
            return Err(FormatError::ChecksumMismatch {
                what: Corrupted::SegmentFooter,
                stored: stored_crc,
                computed,
            });
        }
        let mut b = footer_bytes;
        let footer = Self {
            base_offset: b.get_i64(),
            next_offset: b.get_i64(),
            min_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            data_len: b.get_u64(),
            batch_count: b.get_u32(),
            record_count: b.get_u64(),
            index: {
                let count = b.get_u32() as usize;
                if count.checked_mul(INDEX_ENTRY_LEN) != Some(b.len()) {
                    return Err(corrupt(
                        Corrupted::SegmentFooter,
                        format!("index of {count} entries does not fill {} bytes", b.len()),
                    ));
                }
                (0..count)
                    .map(|_| IndexEntry {
                        offset: b.get_i64(),
                        position: b.get_u64(),
                        max_timestamp: b.get_i64(),
                    })
                    .collect()
            },
        };
        footer.validate(object_size, needed as u64)?;
        Ok(footer)
    }

    /// Decodes the footer read at [`SegmentMeta::footer_range`] and checks that the object
    /// holds the offsets its metadata promises.
    pub fn decode_for(tail: &[u8], meta: &SegmentMeta) -> Result<Self> {
        let footer = Self::decode(tail, meta.size)?;
        if footer.base_offset != meta.base_offset || footer.next_offset != meta.next_offset {
            return Err(corrupt(
                Corrupted::SegmentFooter,
                format!(
                    "object holds offsets [{}, {}) but its metadata says [{}, {})",
                    footer.base_offset, footer.next_offset, meta.base_offset, meta.next_offset
                ),
            ));
        }
        Ok(footer)
    }

    /// For a reader that knew only the object's size and read its last bytes blind: the range
    /// of footer and trailer when `tail` holds just part of them, `None` when it holds them
    /// all (or when the trailer's length cannot be right, which decoding `tail` then reports).
    pub fn full_tail_range(tail: &[u8], object_size: u64) -> Result<Option<Range<u64>>> {
        let needed = (Self::footer_len_from_trailer(tail)? + TRAILER_LEN) as u64;
        Ok((needed > tail.len() as u64 && needed <= object_size)
            .then(|| object_size - needed..object_size))
    }

    fn validate(&self, object_size: u64, tail_len: u64) -> Result<()> {
        let fail = |detail: String| Err(corrupt(Corrupted::SegmentFooter, detail));
        // A CRC-valid footer can still carry any data length; a sum that overflows is a lie too.
        if self.data_len.checked_add(tail_len) != Some(object_size) {
            return fail(format!(
                "data length {} plus footer {tail_len} does not equal object size {object_size}",
                self.data_len
            ));
        }
        if self.base_offset < 0 || self.next_offset <= self.base_offset {
            return fail(format!(
                "offset range [{}, {}) is empty or negative",
                self.base_offset, self.next_offset
            ));
        }
        let Some(first) = self.index.first() else {
            return fail("the offset index is empty".into());
        };
        if first.offset != self.base_offset || first.position != 0 {
            return fail("the first index entry does not start the segment".into());
        }
        for pair in self.index.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.offset <= a.offset || b.position <= a.position || b.max_timestamp < a.max_timestamp
            {
                return fail(format!("index entries out of order at offset {}", b.offset));
            }
        }
        let last = self.index[self.index.len() - 1];
        if last.offset >= self.next_offset || last.position >= self.data_len {
            return fail(format!(
                "index entry at offset {} points past the data",
                last.offset
            ));
        }
        Ok(())
    }

    /// Index of the block holding `offset`, which must lie in the segment.
    pub fn block_for_offset(&self, offset: i64) -> Result<usize> {
        if offset < self.base_offset || offset >= self.next_offset {
            return Err(FormatError::OffsetOutOfRange {
                offset,
                base_offset: self.base_offset,
                next_offset: self.next_offset,
            });
        }
        Ok(self.index.partition_point(|e| e.offset <= offset) - 1)
    }

    /// Index of the first block holding a record with timestamp ≥ `timestamp`, if any.
    pub fn block_for_timestamp(&self, timestamp: i64) -> Option<usize> {
        let block = self.index.partition_point(|e| e.max_timestamp < timestamp);
        (block < self.index.len()).then_some(block)
    }

    /// Byte range of block `block` in the object.
    pub fn block_range(&self, block: usize) -> Range<u64> {
        let start = self.index[block].position;
        let end = self
            .index
            .get(block + 1)
            .map_or(self.data_len, |e| e.position);
        start..end
    }

    /// The smallest block boundary at or after `position`, or the end of the data.
    pub fn boundary_at_or_after(&self, position: u64) -> u64 {
        let i = self.index.partition_point(|e| e.position < position);
        self.index.get(i).map_or(self.data_len, |e| e.position)
    }
}
