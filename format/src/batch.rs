//! Kafka RecordBatch v2 (magic 2).
//!
//! The broker's hot path only needs [`RecordBatch`]: a validated, zero-copy view of the batch
//! header over [`Bytes`]. It checks the CRC-32C and the lengths once, reads counts and
//! timestamps, and changes `baseOffset` without re-encoding anything (the offset is not covered
//! by the CRC, so the record bytes stay exactly as the producer sent them). Full encoding and
//! decoding of records, with every codec, lives in [`codec`].

pub mod codec;

use bytes::{Buf, BufMut, Bytes};

use crate::error::{Corrupted, FormatError, Result};

/// Size of the fixed v2 header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// The only batch format Strata stores.
pub const MAGIC_V2: i8 = 2;
/// Smallest possible encoded record: one byte each for length, attributes, timestamp delta,
/// offset delta, key length, value length and header count.
const MIN_RECORD_LEN: usize = 7;
/// Upper bound on records in one batch, so a lying header cannot make a decoder reserve
/// gigabytes before it notices the lie.
pub const MAX_RECORDS_PER_BATCH: i32 = 1 << 20;

mod field {
    pub const BASE_OFFSET: usize = 0;
    pub const BATCH_LENGTH: usize = 8;
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    pub const MAGIC: usize = 16;
    pub const CRC: usize = 17;
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const BASE_TIMESTAMP: usize = 27;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const PRODUCER_ID: usize = 43;
    pub const PRODUCER_EPOCH: usize = 51;
    pub const BASE_SEQUENCE: usize = 53;
    pub const RECORD_COUNT: usize = 57;
}

/// Whether a batch must hold every offset of its range (as produced) or may have gaps (as a
/// filtered read leaves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Density {
    Dense,
    Sparse,
}

/// The offset after the last of the batch at the start of `bytes`, from its header alone
/// (base offset + lastOffsetDelta + 1), without checking the batch: for bytes this process
/// has already validated. `None` when they are shorter than a header.
pub fn next_offset_of(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let base = read_i64(bytes, field::BASE_OFFSET);
    let delta = read_i32(bytes, field::LAST_OFFSET_DELTA);
    Some(base.saturating_add(i64::from(delta)).saturating_add(1))
}

/// The offsets `[base, next)` the batch at the start of `bytes` spans, from its header alone,
/// without checking the batch (as [`next_offset_of`]). `None` when they are shorter than a
/// header.
pub fn offsets_of(bytes: &[u8]) -> Option<(i64, i64)> {
    Some((read_i64(bytes, field::BASE_OFFSET), next_offset_of(bytes)?))
}

/// The bytes of a batch of no records spanning offsets `[base_offset, next_offset)`, as
/// Kafka's compaction leaves when it removes every record of a batch: a Kafka consumer moves
/// its position past it. A filtered read sends one where the records it left out end the
/// answer, so a consumer that cannot be told `next_offset` does not ask for them again.
/// Only for Kafka clients: Strata's own readers refuse empty batches.
pub fn skip_batch(base_offset: i64, next_offset: i64) -> Bytes {
    let last_delta = i32::try_from(next_offset - base_offset - 1).unwrap_or(i32::MAX);
    let mut b = bytes::BytesMut::with_capacity(HEADER_LEN);
    b.put_i64(base_offset);
    b.put_i32((HEADER_LEN - field::PARTITION_LEADER_EPOCH) as i32);
    b.put_i32(-1); // partition leader epoch
    b.put_i8(MAGIC_V2);
    b.put_u32(0); // CRC, below
    b.put_i16(0); // attributes: no compression, create time
    b.put_i32(last_delta);
    b.put_i64(-1); // base timestamp
    b.put_i64(-1); // max timestamp
    b.put_i64(-1); // producer id
    b.put_i16(-1); // producer epoch
    b.put_i32(-1); // base sequence
    b.put_i32(0); // record count
    let crc = crc32c::crc32c(&b[field::ATTRIBUTES..]);
    b[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// A validated record batch: the header has been bounds-checked and the CRC verified.
///
/// `base_offset` is held beside the bytes so that assigning offsets never copies the batch;
/// [`RecordBatch::chunks`] yields the header with the new offset followed by the untouched rest.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
    base_offset: i64,
}

impl std::fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset)
            .field("records", &self.record_count())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

fn read_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn read_i32(b: &[u8], at: usize) -> i32 {
    (&b[at..at + 4]).get_i32()
}
fn read_i64(b: &[u8], at: usize) -> i64 {
    (&b[at..at + 8]).get_i64()
}

impl RecordBatch {
    /// Validates `bytes` as exactly one v2 record batch.
    pub fn parse(bytes: Bytes) -> Result<Self> {
        Self::parse_with(bytes, Density::Dense)
    }

    /// Validates `bytes` as one v2 record batch as a reader may receive it: some of its
    /// records may have been left out (by a consumer's tag filter, as Kafka's compaction
    /// does), so its offsets may have gaps and `lastOffsetDelta` may exceed the record count
    /// less one. Batches a producer sends are [`RecordBatch::parse`]d: those are dense.
    pub fn parse_sparse(bytes: Bytes) -> Result<Self> {
        Self::parse_with(bytes, Density::Sparse)
    }

    fn parse_with(bytes: Bytes, density: Density) -> Result<Self> {
        let total = Self::check_frame(&bytes)?;
        if total != bytes.len() {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!(
                    "batchLength says {total} bytes but {} were given",
                    bytes.len()
                ),
            ));
        }
        Self::check_body(&bytes, density)?;
        let base_offset = read_i64(&bytes, field::BASE_OFFSET);
        Ok(Self { bytes, base_offset })
    }

    /// Reads the frame length of the batch at the start of `buf` and checks the fixed header;
    /// returns the batch's total size in bytes.
    fn check_frame(buf: &[u8]) -> Result<usize> {
        if buf.len() < HEADER_LEN {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!(
                    "truncated: {} bytes, the v2 header alone needs {HEADER_LEN}",
                    buf.len()
                ),
            ));
        }
        let magic = buf[field::MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!(
                    "magic {magic}: only RecordBatch v2 (magic 2) is supported; upgrade the producer"
                ),
            ));
        }
        let batch_length = read_i32(buf, field::BATCH_LENGTH);
        let min_length = (HEADER_LEN - field::PARTITION_LEADER_EPOCH) as i32;
        if batch_length < min_length {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!("batchLength {batch_length} is below the header size {min_length}"),
            ));
        }
        let total = field::PARTITION_LEADER_EPOCH + batch_length as usize;
        if total > buf.len() {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!(
                    "batchLength says {total} bytes but only {} remain",
                    buf.len()
                ),
            ));
        }
        Ok(total)
    }

    /// Checks attributes, counts and the CRC of a batch whose frame is already known good.
    fn check_body(batch: &[u8], density: Density) -> Result<()> {
        let attributes = read_i16(batch, field::ATTRIBUTES);
        if codec::Compression::from_attributes(attributes).is_none() {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!(
                    "unknown compression codec {} in attributes",
                    attributes & 0x7
                ),
            ));
        }
        let count = read_i32(batch, field::RECORD_COUNT);
        let last_delta = read_i32(batch, field::LAST_OFFSET_DELTA);
        if count <= 0 || count > MAX_RECORDS_PER_BATCH {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!("record count {count} is outside 1..={MAX_RECORDS_PER_BATCH}"),
            ));
        }
        let fits = match density {
            Density::Dense => last_delta == count - 1,
            Density::Sparse => last_delta >= count - 1,
        };
        if !fits {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!("lastOffsetDelta {last_delta} does not match record count {count}"),
            ));
        }
        let records_len = batch.len() - HEADER_LEN;
        if attributes & 0x7 == 0 && (count as usize) * MIN_RECORD_LEN > records_len {
            return Err(FormatError::corrupt(
                Corrupted::RecordBatch,
                format!("{count} records cannot fit in {records_len} uncompressed bytes"),
            ));
        }
        let stored = read_i32(batch, field::CRC) as u32;
        let computed = crc32c::crc32c(&batch[field::ATTRIBUTES..]);
        if stored != computed {
            return Err(FormatError::ChecksumMismatch {
                what: Corrupted::RecordBatch,
                stored,
                computed,
            });
        }
        Ok(())
    }

    /// Total encoded size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// A batch always holds at least one record; kept for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta())
    }

    /// The offset after the last record.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Assigns the batch its place in the log. Only `baseOffset`, which the CRC does not
    /// cover, changes.
    pub fn set_base_offset(&mut self, offset: i64) {
        self.base_offset = offset;
    }

    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(&self.bytes, field::PARTITION_LEADER_EPOCH)
    }
    pub fn attributes(&self) -> i16 {
        read_i16(&self.bytes, field::ATTRIBUTES)
    }
    pub fn compression(&self) -> codec::Compression {
        codec::Compression::from_attributes(self.attributes())
            .expect("codec checked when the batch was parsed")
    }
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(&self.bytes, field::LAST_OFFSET_DELTA)
    }
    pub fn record_count(&self) -> i32 {
        read_i32(&self.bytes, field::RECORD_COUNT)
    }
    pub fn base_timestamp(&self) -> i64 {
        read_i64(&self.bytes, field::BASE_TIMESTAMP)
    }
    pub fn max_timestamp(&self) -> i64 {
        read_i64(&self.bytes, field::MAX_TIMESTAMP)
    }
    pub fn producer_id(&self) -> i64 {
        read_i64(&self.bytes, field::PRODUCER_ID)
    }
    pub fn producer_epoch(&self) -> i16 {
        read_i16(&self.bytes, field::PRODUCER_EPOCH)
    }
    pub fn base_sequence(&self) -> i32 {
        read_i32(&self.bytes, field::BASE_SEQUENCE)
    }
    /// True when the batch belongs to an idempotent producer (it has a producer id).
    pub fn is_idempotent(&self) -> bool {
        self.producer_id() >= 0 && self.base_sequence() >= 0
    }

    /// The encoded batch as two chunks: the 8-byte `baseOffset` as assigned, then the rest of
    /// the bytes exactly as received. Writing both back to back gives the stored batch.
    pub fn chunks(&self) -> [Bytes; 2] {
        [
            Bytes::copy_from_slice(&self.base_offset.to_be_bytes()),
            self.bytes.slice(field::BATCH_LENGTH..),
        ]
    }

    /// The stored form as one contiguous buffer; copies only when the offset was reassigned.
    pub fn to_bytes(&self) -> Bytes {
        if read_i64(&self.bytes, field::BASE_OFFSET) == self.base_offset {
            return self.bytes.clone();
        }
        let mut out = Vec::with_capacity(self.bytes.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&self.bytes[field::BATCH_LENGTH..]);
        Bytes::from(out)
    }
}

/// Iterates over the batches stored back to back in `buf`, validating each.
///
/// Stops after the first error, which it yields.
#[derive(Debug)]
pub struct BatchIter {
    buf: Bytes,
    failed: bool,
}

impl BatchIter {
    pub fn new(buf: Bytes) -> Self {
        Self { buf, failed: false }
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let total = match RecordBatch::check_frame(&self.buf) {
            Ok(total) => total,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let bytes = self.buf.split_to(total);
        let parsed = RecordBatch::parse(bytes);
        self.failed = parsed.is_err();
        Some(parsed)
    }
}
