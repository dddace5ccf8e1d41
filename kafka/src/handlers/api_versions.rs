//! ApiVersions, with the KIP-511 fallback for clients newer than this listener.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};

use crate::codes;
use crate::versions::{SUPPORTED, Supported};

fn table() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.api as i16)
                .with_min_version(s.min)
                .with_max_version(s.max)
        })
        .collect()
}

pub(super) fn handle(_request: &ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(table())
}

/// The answer to a request at a version this listener does not serve: for ApiVersions, a v0
/// body with UNSUPPORTED_VERSION and the table, so the client can pick a version it shares
/// with us (KIP-511); for any other API, nothing (the connection closes).
pub(crate) fn unsupported_version(
    api: &'static Supported,
    _version: i16,
    correlation_id: i32,
) -> Option<Bytes> {
    if api.api != ApiKey::ApiVersions {
        return None;
    }
    let body = ApiVersionsResponse::default()
        .with_error_code(codes::UNSUPPORTED_VERSION)
        .with_api_keys(table());
    super::encode(api, correlation_id, 0, &ResponseKind::ApiVersions(body)).ok()
}
