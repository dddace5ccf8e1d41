//! A buffer that keeps `kafka-protocol`'s decoders from allocating for elements a frame cannot
//! hold.
//!
//! The decoders (0.18) size a `Vec` from an array's length prefix before reading any element,
//! so a 20-byte frame claiming two billion elements asks for tens of gigabytes, and a failed
//! allocation aborts the process (found by the `request_decode` fuzz target). Every element
//! takes at least one byte on the wire, so a length larger than the bytes left is impossible;
//! this buffer makes such lengths fail before the decoder allocates:
//!
//! - Compact (flexible-version) lengths are unsigned varints, read one byte at a time: a varint
//!   of two bytes or more whose value exceeds the bytes left (plus one, the null marker) fails
//!   on its last byte. Such a value is never a valid length, and the other varints of a request
//!   (tagged-field tags and counts) are small.
//! - Classic lengths are i32s, like many scalars (timeouts, byte limits) whose large values are
//!   valid. In [`Mode::Probe`] an i32 larger than the bytes left reads as -2, a length every
//!   decoder refuses and a scalar value none looks at, so a probe that succeeds proves no such
//!   i32 was a length; the frame is then decoded again in [`Mode::Exact`] with the real values.

use bytes::{Buf, Bytes, TryGetError};
use kafka_protocol::protocol::buf::ByteBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// i32s larger than the bytes left read as -2.
    Probe,
    /// Every value as sent.
    Exact,
}

#[derive(Debug)]
pub(super) struct Guarded {
    bytes: Bytes,
    mode: Mode,
    /// A probe replaced at least one i32.
    pub replaced: bool,
    /// The varint being read: its value so far and how many of its bytes were read.
    varint: Option<(u64, u32)>,
}

/// Read where a multi-byte varint larger than the bytes left ended.
fn impossible() -> TryGetError {
    TryGetError {
        requested: usize::MAX,
        available: 0,
    }
}

impl Guarded {
    pub fn new(bytes: Bytes, mode: Mode) -> Self {
        Self {
            bytes,
            mode,
            replaced: false,
            varint: None,
        }
    }

    pub fn into_inner(self) -> Bytes {
        self.bytes
    }

    fn end_varint(&mut self) {
        self.varint = None;
    }
}

impl Buf for Guarded {
    fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn chunk(&self) -> &[u8] {
        &self.bytes
    }

    fn advance(&mut self, n: usize) {
        self.end_varint();
        self.bytes.advance(n);
    }

    fn try_get_u8(&mut self) -> Result<u8, TryGetError> {
        let byte = self.bytes.try_get_u8()?;
        let (value, read) = self.varint.unwrap_or((0, 0));
        let value = value | u64::from(byte & 0x7f) << (7 * read);
        if byte & 0x80 != 0 && read < 4 {
            self.varint = Some((value, read + 1));
        } else {
            self.varint = None;
            if read >= 1 && value > self.bytes.len() as u64 + 1 {
                return Err(impossible());
            }
        }
        Ok(byte)
    }

    fn try_get_i8(&mut self) -> Result<i8, TryGetError> {
        self.end_varint();
        self.bytes.try_get_i8()
    }

    fn try_get_i16(&mut self) -> Result<i16, TryGetError> {
        self.end_varint();
        self.bytes.try_get_i16()
    }

    fn try_get_u16(&mut self) -> Result<u16, TryGetError> {
        self.end_varint();
        self.bytes.try_get_u16()
    }

    fn try_get_i32(&mut self) -> Result<i32, TryGetError> {
        self.end_varint();
        let value = self.bytes.try_get_i32()?;
        if self.mode == Mode::Probe && value > 0 && value as usize > self.bytes.len() {
            self.replaced = true;
            return Ok(-2);
        }
        Ok(value)
    }

    fn try_get_u32(&mut self) -> Result<u32, TryGetError> {
        self.end_varint();
        self.bytes.try_get_u32()
    }

    fn try_get_i64(&mut self) -> Result<i64, TryGetError> {
        self.end_varint();
        self.bytes.try_get_i64()
    }

    fn try_get_f64(&mut self) -> Result<f64, TryGetError> {
        self.end_varint();
        self.bytes.try_get_f64()
    }

    fn try_copy_to_slice(&mut self, dst: &mut [u8]) -> Result<(), TryGetError> {
        self.end_varint();
        self.bytes.try_copy_to_slice(dst)
    }
}

impl ByteBuf for Guarded {
    fn peek_bytes(&mut self, r: std::ops::Range<usize>) -> Bytes {
        self.bytes.slice(r)
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        self.end_varint();
        self.bytes.split_to(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_byte_varint_longer_than_what_is_left_fails_on_its_last_byte() {
        // 300 as a varint (0xac 0x02), then 10 bytes: 300 elements cannot fit.
        let mut frame = vec![0xac, 0x02];
        frame.extend([0u8; 10]);
        let mut buf = Guarded::new(Bytes::from(frame), Mode::Exact);
        assert!(buf.try_get_u8().is_ok());
        assert!(buf.try_get_u8().is_err());
        // The same varint with 400 bytes after it is a possible length.
        let mut frame = vec![0xac, 0x02];
        frame.extend([0u8; 400]);
        let mut buf = Guarded::new(Bytes::from(frame), Mode::Exact);
        assert_eq!(
            (buf.try_get_u8().unwrap(), buf.try_get_u8().unwrap()),
            (0xac, 0x02)
        );
    }

    #[test]
    fn a_probe_reads_an_i32_larger_than_what_is_left_as_minus_two() {
        let frame = [&30_000i32.to_be_bytes()[..], &[0u8; 8]].concat();
        let mut probe = Guarded::new(Bytes::from(frame.clone()), Mode::Probe);
        assert_eq!(probe.try_get_i32().unwrap(), -2);
        assert!(probe.replaced);
        let mut exact = Guarded::new(Bytes::from(frame), Mode::Exact);
        assert_eq!(exact.try_get_i32().unwrap(), 30_000);
    }
}
