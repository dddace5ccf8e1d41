//! Record values that carry their send time in their first bytes, so a consumer in the same
//! process can measure produce → consume latency.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::baseline::random_bytes;

/// Bytes at the start of every value holding its send time.
pub const STAMP_BYTES: usize = 8;

/// The instant send times are counted from (the process shares one clock, so the consumer
/// can subtract the producer's stamp).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A value of `size` bytes, random after the stamp.
pub fn template(size: usize) -> Bytes {
    random_bytes(size.max(STAMP_BYTES), size as u64)
}

/// `template` with `at` in its first bytes.
pub fn stamped(template: &Bytes, at: Instant) -> Bytes {
    let nanos = u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(0);
    let mut value = BytesMut::from(&template[..]);
    value[..STAMP_BYTES].copy_from_slice(&nanos.to_le_bytes());
    value.freeze()
}

/// When a stamped value was sent; `None` for a value too short to carry a stamp.
pub fn sent_at(value: &[u8]) -> Option<Instant> {
    let raw: [u8; STAMP_BYTES] = value.get(..STAMP_BYTES)?.try_into().ok()?;
    Some(epoch() + Duration::from_nanos(u64::from_le_bytes(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_as_its_send_time() {
        let template = template(64);
        let at = Instant::now() + Duration::from_millis(3);
        let value = stamped(&template, at);
        assert_eq!(value.len(), 64);
        assert_eq!(value[STAMP_BYTES..], template[STAMP_BYTES..]);
        let back = sent_at(&value).unwrap();
        assert!(back.max(at) - back.min(at) < Duration::from_micros(1));
        assert!(sent_at(&value[..4]).is_none());
    }
}
