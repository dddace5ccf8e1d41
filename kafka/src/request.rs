//! From a frame to a decoded request, without I/O: what the server does with each frame, and
//! what the fuzz target drives with arbitrary bytes.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::error::{KafkaError, Result};
use crate::versions::{self, Supported};

/// api key, api version, correlation id.
const FIXED_HEADER_LEN: usize = 8;

/// A frame, decoded as far as the listener's table allows.
// One lives per frame and is taken apart at once: boxing the request would cost an allocation
// per request to save stack space nobody holds.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// An advertised API at an advertised version.
    Request {
        header: RequestHeader,
        api: &'static Supported,
        body: RequestKind,
    },
    /// An advertised API at a version outside its range: answered with UNSUPPORTED_VERSION
    /// (ApiVersions with the KIP-511 fallback), so the header fields are all that is known.
    UnsupportedVersion {
        api: &'static Supported,
        version: i16,
        correlation_id: i32,
    },
}

/// Decodes one frame's payload (the bytes after its length prefix).
///
/// A key that is not advertised is an error: the client cannot know how to read an answer to
/// it, so the connection closes. A decode failure of an advertised API is an error too: Kafka
/// brokers close such connections, and the bytes after a misread request cannot be trusted.
pub fn parse(mut frame: Bytes) -> Result<Parsed> {
    if frame.len() < FIXED_HEADER_LEN {
        return Err(KafkaError::Truncated(frame.len()));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = versions::lookup(api_key).ok_or(KafkaError::UnknownApi(api_key))?;
    if !(api.min..=api.max).contains(&version) {
        return Ok(Parsed::UnsupportedVersion {
            api,
            version,
            correlation_id,
        });
    }
    let decode_error = |reason: String| KafkaError::Decode {
        api: api.name,
        version,
        reason,
    };
    let header_version = api.api.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| decode_error(e.to_string()))?;
    let body = RequestKind::decode(api.api, &mut frame, version)
        .map_err(|e| decode_error(e.to_string()))?;
    if frame.has_remaining() && api.api != ApiKey::ApiVersions {
        // Newer ApiVersions requests may carry fields an older decoder does not know; any
        // other request with bytes left over was misread.
        return Err(KafkaError::Decode {
            api: api.name,
            version,
            reason: format!("{} bytes left over after the request", frame.remaining()),
        });
    }
    Ok(Parsed::Request { header, api, body })
}
