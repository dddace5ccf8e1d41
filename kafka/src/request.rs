//! From a frame to a decoded request, without I/O: what the server does with each frame, and
//! what the fuzz target drives with arbitrary bytes.

mod guard;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::error::{KafkaError, Result};
use crate::versions::{self, Supported};
use guard::{Guarded, Mode};

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
pub fn parse(frame: Bytes) -> Result<Parsed> {
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
    // Most frames decode in one pass; a frame with an i32 larger than its remaining bytes is
    // decoded again with its real values once the probe has shown that none was a length.
    let (header, body, frame) = match decode(&frame, header_version, api.api, version, Mode::Probe)
    {
        Ok((header, body, rest, false)) => (header, body, rest),
        Ok((_, _, _, true)) => {
            let (header, body, rest, _) =
                decode(&frame, header_version, api.api, version, Mode::Exact)
                    .map_err(decode_error)?;
            (header, body, rest)
        }
        Err(reason) => return Err(decode_error(reason)),
    };
    // Bytes after a whole request are ignored, as Kafka brokers ignore them: librdkafka 2.16
    // sends three after its Metadata v12 request, and newer ApiVersions requests carry fields
    // an older decoder does not know.
    if frame.has_remaining() {
        tracing::debug!(
            api = api.name,
            version,
            left = frame.remaining(),
            "bytes after a whole request ignored"
        );
    }
    Ok(Parsed::Request { header, api, body })
}

/// `(header, body, bytes left, whether the probe replaced a value)`.
fn decode(
    frame: &Bytes,
    header_version: i16,
    api: ApiKey,
    version: i16,
    mode: Mode,
) -> std::result::Result<(RequestHeader, RequestKind, Bytes, bool), String> {
    let mut buf = Guarded::new(frame.clone(), mode);
    let header = RequestHeader::decode(&mut buf, header_version).map_err(|e| e.to_string())?;
    let body = decode_body(api, &mut buf, version)?;
    let replaced = buf.replaced;
    Ok((header, body, buf.into_inner(), replaced))
}

/// The request body of `api`: `RequestKind::decode` takes only `Bytes`, not a guarded buffer.
fn decode_body(
    api: ApiKey,
    buf: &mut Guarded,
    version: i16,
) -> std::result::Result<RequestKind, String> {
    macro_rules! bodies {
        ($($kind:ident: $request:ident),+ $(,)?) => {
            match api {
                $(ApiKey::$kind => $request::decode(buf, version).map(RequestKind::$kind),)+
                other => return Err(format!("no decoder for {other:?}")),
            }
        };
    }
    bodies! {
        Produce: ProduceRequest,
        Fetch: FetchRequest,
        ListOffsets: ListOffsetsRequest,
        Metadata: MetadataRequest,
        OffsetCommit: OffsetCommitRequest,
        OffsetFetch: OffsetFetchRequest,
        FindCoordinator: FindCoordinatorRequest,
        JoinGroup: JoinGroupRequest,
        Heartbeat: HeartbeatRequest,
        LeaveGroup: LeaveGroupRequest,
        SyncGroup: SyncGroupRequest,
        DescribeGroups: DescribeGroupsRequest,
        ListGroups: ListGroupsRequest,
        ApiVersions: ApiVersionsRequest,
        CreateTopics: CreateTopicsRequest,
        DeleteTopics: DeleteTopicsRequest,
        InitProducerId: InitProducerIdRequest,
        OffsetForLeaderEpoch: OffsetForLeaderEpochRequest,
        DescribeAcls: DescribeAclsRequest,
        CreateAcls: CreateAclsRequest,
        DeleteAcls: DeleteAclsRequest,
        DescribeConfigs: DescribeConfigsRequest,
        AlterConfigs: AlterConfigsRequest,
        CreatePartitions: CreatePartitionsRequest,
        DeleteGroups: DeleteGroupsRequest,
        IncrementalAlterConfigs: IncrementalAlterConfigsRequest,
        DescribeCluster: DescribeClusterRequest,
        SaslHandshake: SaslHandshakeRequest,
        SaslAuthenticate: SaslAuthenticateRequest,
        DescribeUserScramCredentials: DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials: AlterUserScramCredentialsRequest,
    }
    .map_err(|e| e.to_string())
}
