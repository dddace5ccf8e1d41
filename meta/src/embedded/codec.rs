//! Byte formats of the embedded store: log frames, log records and snapshots.
//!
//! Everything is little-endian. A log frame is
//! `[payload len: u32][crc32c(len bytes): u32][crc32c(payload): u32][payload]`; the separate
//! length checksum lets recovery trust a length before reading the payload it points to, so a
//! damaged length is reported as corruption instead of being mistaken for a torn tail.

use bytes::Bytes;

use crate::{KeyValue, LeaseId, Revision};

/// Bytes before each payload.
pub(crate) const FRAME_HEADER: usize = 12;

/// No record comes close: requests are capped at 1 MiB. Anything larger is damage.
pub(crate) const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

const RECORD_FORMAT: u8 = 1;
const SNAPSHOT_FORMAT: u8 = 1;
const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;

/// One change inside a committed record, fully resolved (no prefixes, no conditions), so replay
/// needs nothing but the previous state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mutation {
    Put {
        key: String,
        value: Bytes,
        lease: Option<LeaseId>,
    },
    Delete {
        key: String,
    },
}

/// Everything one revision changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub revision: Revision,
    pub mutations: Vec<Mutation>,
}

/// Wraps a payload in a frame.
pub(crate) fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::crc32c(&len).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// What a scan of a log body found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scan<'a> {
    /// The intact payloads, in order.
    pub payloads: Vec<&'a [u8]>,
    /// Bytes up to the end of the last intact frame.
    pub valid_len: usize,
    /// Why the bytes after `valid_len` were dropped, if there are any.
    pub torn: Option<String>,
}

/// Splits a log body into frames.
///
/// A damaged frame is a torn tail (a write cut short by a crash, safe to drop) only when nothing
/// that could be a later write follows it: its payload runs past the end of the data, it is the
/// last frame, or everything from it on is zeros (a file system that extended the file but
/// never wrote the block). Anything else is corruption, returned as `Err((offset, detail))`.
pub(crate) fn scan_frames(data: &[u8]) -> Result<Scan<'_>, (usize, String)> {
    let mut payloads = Vec::new();
    let mut at = 0;
    let torn = loop {
        let rest = &data[at..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < FRAME_HEADER {
            break Some(format!("{} byte(s) of a frame header", rest.len()));
        }
        let len_bytes = &rest[..4];
        if crc32c::crc32c(len_bytes) != read_u32(&rest[4..8]) {
            if rest.iter().all(|b| *b == 0) {
                break Some(format!("{} zero byte(s)", rest.len()));
            }
            return Err((at, "frame length checksum mismatch".into()));
        }
        let len = read_u32(len_bytes) as usize;
        if len > MAX_PAYLOAD {
            return Err((
                at,
                format!("frame length {len} exceeds the {MAX_PAYLOAD} limit"),
            ));
        }
        let Some(payload) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
            break Some(format!(
                "a frame of {len} bytes with only {} present",
                rest.len()
            ));
        };
        if crc32c::crc32c(payload) != read_u32(&rest[8..12]) {
            if rest.len() == FRAME_HEADER + len {
                break Some("a last frame whose payload checksum does not match".into());
            }
            return Err((at, "frame payload checksum mismatch".into()));
        }
        payloads.push(payload);
        at += FRAME_HEADER + len;
    };
    Ok(Scan {
        payloads,
        valid_len: at,
        torn,
    })
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(buf)
}

/// Encodes a record as a frame payload.
pub(crate) fn encode_record(record: &Record) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    out.extend_from_slice(&record.revision.to_le_bytes());
    put_len(&mut out, record.mutations.len());
    for mutation in &record.mutations {
        match mutation {
            Mutation::Put { key, value, lease } => {
                out.push(TAG_PUT);
                put_bytes(&mut out, key.as_bytes());
                put_bytes(&mut out, value);
                out.extend_from_slice(&lease.unwrap_or(0).to_le_bytes());
            }
            Mutation::Delete { key } => {
                out.push(TAG_DELETE);
                put_bytes(&mut out, key.as_bytes());
            }
        }
    }
    out
}

/// Decodes a frame payload; never panics on arbitrary bytes.
pub(crate) fn decode_record(payload: &[u8]) -> Result<Record, String> {
    let mut r = Reader {
        buf: payload,
        at: 0,
    };
    let format = r.u8()?;
    if format != RECORD_FORMAT {
        return Err(format!("unknown record format {format}"));
    }
    let revision = r.i64()?;
    let count = r.u32()?;
    let mut mutations = Vec::new();
    for _ in 0..count {
        mutations.push(match r.u8()? {
            TAG_PUT => {
                let key = r.string()?;
                let value = Bytes::copy_from_slice(r.bytes()?);
                let lease = r.i64()?;
                Mutation::Put {
                    key,
                    value,
                    lease: (lease != 0).then_some(lease),
                }
            }
            TAG_DELETE => Mutation::Delete { key: r.string()? },
            tag => return Err(format!("unknown mutation tag {tag}")),
        });
    }
    r.finish()?;
    Ok(Record {
        revision,
        mutations,
    })
}

/// Encodes a full state dump: `[magic 8][crc32c(body): u32][body len: u64][body]`.
pub(crate) fn encode_snapshot<'a>(
    revision: Revision,
    count: usize,
    kvs: impl Iterator<Item = &'a KeyValue>,
) -> Vec<u8> {
    let mut body = vec![SNAPSHOT_FORMAT];
    body.extend_from_slice(&revision.to_le_bytes());
    body.extend_from_slice(&(count as u64).to_le_bytes());
    for kv in kvs {
        put_bytes(&mut body, kv.key.as_bytes());
        put_bytes(&mut body, &kv.value);
        for n in [
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.lease.unwrap_or(0),
        ] {
            body.extend_from_slice(&n.to_le_bytes());
        }
    }
    let mut out = Vec::with_capacity(20 + body.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The first bytes of a snapshot file.
pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"STRSNAP\x01";

/// Decodes a snapshot file; never panics on arbitrary bytes.
pub(crate) fn decode_snapshot(data: &[u8]) -> Result<(Revision, Vec<KeyValue>), String> {
    let mut r = Reader { buf: data, at: 0 };
    if r.take(8)? != SNAPSHOT_MAGIC {
        return Err("not a Strata metadata snapshot (bad magic)".into());
    }
    let crc = r.u32()?;
    let len = r.u64()?;
    let body = r.rest();
    if body.len() as u64 != len {
        return Err(format!("body is {} bytes, header says {len}", body.len()));
    }
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".into());
    }
    let mut r = Reader { buf: body, at: 0 };
    let format = r.u8()?;
    if format != SNAPSHOT_FORMAT {
        return Err(format!("unknown snapshot format {format}"));
    }
    let revision = r.i64()?;
    let count = r.u64()?;
    let mut kvs = Vec::new();
    for _ in 0..count {
        let key = r.string()?;
        let value = Bytes::copy_from_slice(r.bytes()?);
        let (create_revision, mod_revision, version, lease) =
            (r.i64()?, r.i64()?, r.i64()?, r.i64()?);
        kvs.push(KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
            version,
            lease: (lease != 0).then_some(lease),
        });
    }
    r.finish()?;
    Ok((revision, kvs))
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor: every read fails instead of panicking when the data runs out.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.buf.len());
        let Some(end) = end else {
            return Err(format!("truncated: wanted {n} bytes at offset {}", self.at));
        };
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(read_u32(self.take(4)?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(self.u64()? as i64)
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, String> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "key is not UTF-8".to_string())
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.at..];
        self.at = self.buf.len();
        out
    }

    fn finish(&self) -> Result<(), String> {
        if self.at != self.buf.len() {
            return Err(format!(
                "{} unexpected trailing bytes",
                self.buf.len() - self.at
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
