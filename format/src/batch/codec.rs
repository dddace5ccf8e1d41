//! Encoding and decoding of whole record batches, with every Kafka codec.
//!
//! Producers (the SDK) encode, consumers decode; the broker never does either. The work is done
//! by the `kafka-protocol` crate so the bytes match what Kafka clients produce and expect.

use std::fmt;
use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    self as kp, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::{MAGIC_V2, RecordBatch};
use crate::error::{FormatError, Result};

/// Compression codec of a record batch (the low three bits of its attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    pub(crate) fn from_attributes(attributes: i16) -> Option<Self> {
        Some(match attributes & 0x7 {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            _ => return None,
        })
    }

    fn to_kafka(self) -> kp::Compression {
        match self {
            Self::None => kp::Compression::None,
            Self::Gzip => kp::Compression::Gzip,
            Self::Snappy => kp::Compression::Snappy,
            Self::Lz4 => kp::Compression::Lz4,
            Self::Zstd => kp::Compression::Zstd,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown compression `{s}`; use none, gzip, snappy, lz4 or zstd")
            })
    }
}

/// A record as a producer writes it or a consumer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Assigned by the broker; ignored on encode (records are numbered from the batch base).
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Header keys must be distinct: the codec keeps them in a map, the last value wins.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Batch-level fields chosen by the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    pub compression: Compression,
    /// -1 for a producer without idempotence.
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence number of the first record; -1 without idempotence.
    pub base_sequence: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            compression: Compression::None,
            producer_id: kp::NO_PRODUCER_ID,
            producer_epoch: kp::NO_PRODUCER_EPOCH,
            base_sequence: kp::NO_SEQUENCE,
        }
    }
}

/// Encodes `records` as one v2 batch with base offset 0.
pub fn encode_batch(records: &[Record], options: &BatchOptions) -> Result<RecordBatch> {
    RecordBatch::parse(encode(
        records.iter().enumerate().map(|(i, r)| (i as i64, r)),
        0,
        options,
    )?)
}

/// Encodes `records`, which keep their offsets, as one batch with the producer fields of
/// `like`, which holds them, in `compression`: what is left of a batch when some records are
/// dropped. Their offsets, timestamps and sequence numbers stay what they were.
pub fn encode_records_at(
    records: &[Record],
    like: &RecordBatch,
    compression: Compression,
) -> Result<RecordBatch> {
    let options = BatchOptions {
        compression,
        producer_id: like.producer_id(),
        producer_epoch: like.producer_epoch(),
        base_sequence: like.base_sequence(),
    };
    let origin = like.base_offset();
    let outside = records
        .iter()
        .find(|r| r.offset < origin || r.offset > like.last_offset());
    if let Some(r) = outside {
        return Err(FormatError::Codec(format!(
            "record at {} is not in the batch [{origin}, {}]",
            r.offset,
            like.last_offset()
        )));
    }
    RecordBatch::parse_sparse(encode(
        records.iter().map(|r| (r.offset - origin, r)),
        origin,
        &options,
    )?)
}

/// Encodes records at `origin` + their delta, the sequence numbers advancing with the deltas,
/// as the bytes of one batch (checked by the caller, which knows whether gaps are allowed).
fn encode<'a>(
    records: impl Iterator<Item = (i64, &'a Record)>,
    origin: i64,
    options: &BatchOptions,
) -> Result<Bytes> {
    let kafka_records: Vec<kp::Record> = records
        .map(|(delta, r)| {
            let delta = delta as i32;
            kp::Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: options.producer_id,
                producer_epoch: options.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: origin + i64::from(delta),
                // The encoder starts a new batch whenever offset − sequence changes, so the
                // sequence must advance with the offset even without idempotence.
                sequence: options.base_sequence.wrapping_add(delta),
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                    .collect::<IndexMap<_, _>>(),
            }
        })
        .collect();
    if kafka_records.is_empty() {
        return Err(FormatError::Codec(
            "a record batch needs at least one record".into(),
        ));
    }
    let mut buf = BytesMut::new();
    let encode_options = RecordEncodeOptions {
        version: MAGIC_V2,
        compression: options.compression.to_kafka(),
    };
    RecordBatchEncoder::encode(&mut buf, kafka_records.iter(), &encode_options)
        .map_err(|e| FormatError::Codec(format!("encoding failed: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes every record of a validated batch, decompressing as needed.
pub fn decode_batch(batch: &RecordBatch) -> Result<Vec<Record>> {
    let mut buf = batch.to_bytes();
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| {
        FormatError::Codec(format!("decoding batch at {}: {e}", batch.base_offset()))
    })?;
    if set.records.len() != batch.record_count() as usize {
        return Err(FormatError::Codec(format!(
            "batch at {} declares {} records but holds {}",
            batch.base_offset(),
            batch.record_count(),
            set.records.len()
        )));
    }
    Ok(set
        .records
        .into_iter()
        .map(|r| Record {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })
        .collect())
}
