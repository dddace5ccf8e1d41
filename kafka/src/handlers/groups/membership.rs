//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup, relayed to the coordinator. The assignor is
//! the client's: protocol metadata and the leader's assignment pass through untouched.

use std::net::SocketAddr;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use strata_meta::schema;
use strata_proto::ErrorCode;
use strata_proto::v1::{self, strata_server::Strata};
use strata_proxy::groups::{MAX_SESSION_MS, MIN_SESSION_MS};
use tonic::transport::server::TcpConnectInfo;

use super::{settled, str_bytes, text};
use crate::codes;
use crate::handlers::{Call, answer};

/// The first version whose JoinGroup answer names the protocol type and may leave the
/// protocol name null.
const JOIN_PROTOCOL_TYPE_VERSION: i16 = 7;
/// The first version whose SyncGroup answer names the protocol type and name.
const SYNC_PROTOCOL_VERSION: i16 = 5;
/// The first LeaveGroup version that leaves a batch of members.
const LEAVE_BATCH_VERSION: i16 = 3;

/// Kafka's error for a join the coordinator would refuse as invalid, checked here because
/// the coordinator reports all of them as one code.
fn join_precheck(request: &JoinGroupRequest) -> Option<i16> {
    if schema::validate_name("group", &request.group_id.0).is_err() {
        return Some(codes::INVALID_GROUP_ID);
    }
    let session = u32::try_from(request.session_timeout_ms).unwrap_or(0);
    if !(MIN_SESSION_MS..=MAX_SESSION_MS).contains(&session) {
        return Some(codes::INVALID_SESSION_TIMEOUT);
    }
    if request.protocol_type.is_empty() || request.protocols.is_empty() {
        return Some(codes::INCONSISTENT_GROUP_PROTOCOL);
    }
    None
}

fn join_failed(request: &JoinGroupRequest, error: i16, version: i16) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(error)
        .with_generation_id(-1)
        .with_member_id(request.member_id.clone())
        .with_protocol_name((version < JOIN_PROTOCOL_TYPE_VERSION).then(StrBytes::default))
}

/// A new member gets its id in the answer to its first join, without Kafka's extra round trip
/// through MEMBER_ID_REQUIRED (KIP-394): every client version accepts an id assigned on the
/// first join, and the coordinator ends the session of a member that never learns its id.
pub(crate) async fn join(
    ctx: &Call<'_>,
    peer: SocketAddr,
    header: &RequestHeader,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    if let Some(error) = join_precheck(&request) {
        return join_failed(&request, error, version);
    }
    let call = v1::JoinGroupRequest {
        group: text(&request.group_id.0),
        member_id: text(&request.member_id),
        client_id: header.client_id.as_ref().map(text).unwrap_or_default(),
        session_timeout_ms: u32::try_from(request.session_timeout_ms).unwrap_or_default(),
        // v0 has no rebalance timeout (-1): the coordinator then uses the session timeout.
        rebalance_timeout_ms: u32::try_from(request.rebalance_timeout_ms).unwrap_or_default(),
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .iter()
            .map(|p| v1::GroupProtocol {
                name: text(&p.name),
                metadata: p.metadata.clone(),
            })
            .collect(),
        // Kafka consumers read the main lane.
        lane: String::new(),
    };
    let mut call = ctx.request(call);
    // The coordinator records the member's host (DescribeGroups shows it) from the connection
    // a gRPC call came in on; this one came in on the Kafka connection.
    call.extensions_mut().insert(TcpConnectInfo {
        local_addr: None,
        remote_addr: Some(peer),
    });
    let response = match answer(ctx.service.join_group(call).await) {
        Ok(response) => response,
        Err(e) => return join_failed(&request, codes::group_code(Some(&e)), version),
    };
    if let Some(e) = &response.error {
        let error = match e.error_code() {
            // The name and the timeouts were checked above: what is left is a protocol type
            // or a set of assignors the other members do not share.
            Some(ErrorCode::InvalidArgument) => codes::INCONSISTENT_GROUP_PROTOCOL,
            _ => codes::group_code(Some(e)),
        };
        return join_failed(&request, error, version);
    }
    let members = response
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_metadata(m.metadata)
        })
        .collect();
    let protocol_type =
        (version >= JOIN_PROTOCOL_TYPE_VERSION).then(|| request.protocol_type.clone());
    JoinGroupResponse::default()
        .with_generation_id(response.generation)
        .with_protocol_type(protocol_type)
        .with_protocol_name(Some(str_bytes(response.protocol)))
        .with_leader(str_bytes(response.leader))
        .with_member_id(str_bytes(response.member_id))
        .with_members(members)
}

pub(crate) async fn sync(
    ctx: &Call<'_>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let call = v1::SyncGroupRequest {
        group: text(&request.group_id.0),
        generation: request.generation_id,
        member_id: text(&request.member_id),
        assignments: request
            .assignments
            .iter()
            .map(|a| v1::MemberAssignment {
                member_id: text(&a.member_id),
                assignment: a.assignment.clone(),
            })
            .collect(),
    };
    let synced = match settled(
        answer(ctx.service.sync_group(ctx.request(call)).await),
        |r: &v1::SyncGroupResponse| r.error.as_ref(),
    ) {
        Ok(synced) => synced,
        Err(error) => return SyncGroupResponse::default().with_error_code(error),
    };
    let response = SyncGroupResponse::default().with_assignment(synced.assignment);
    if version >= SYNC_PROTOCOL_VERSION {
        response
            .with_protocol_type(request.protocol_type)
            .with_protocol_name(Some(str_bytes(synced.protocol)))
    } else {
        response
    }
}

pub(crate) async fn heartbeat(ctx: &Call<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    let call = v1::HeartbeatRequest {
        group: text(&request.group_id.0),
        generation: request.generation_id,
        member_id: text(&request.member_id),
    };
    let error = match settled(
        answer(ctx.service.heartbeat(ctx.request(call)).await),
        |r: &v1::HeartbeatResponse| r.error.as_ref(),
    ) {
        Ok(_) => codes::NONE,
        Err(error) => error,
    };
    HeartbeatResponse::default().with_error_code(error)
}

async fn leave_one(ctx: &Call<'_>, group: &str, member_id: &str) -> i16 {
    let call = v1::LeaveGroupRequest {
        group: group.to_owned(),
        member_id: member_id.to_owned(),
    };
    match settled(
        answer(ctx.service.leave_group(ctx.request(call)).await),
        |r: &v1::LeaveGroupResponse| r.error.as_ref(),
    ) {
        Ok(_) => codes::NONE,
        Err(error) => error,
    }
}

/// v3+ leaves a batch of members, each answered on its own (a static member named only by
/// its instance id is unknown here: static members are served as dynamic ones).
pub(crate) async fn leave(
    ctx: &Call<'_>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = text(&request.group_id.0);
    if version < LEAVE_BATCH_VERSION {
        let error = leave_one(ctx, &group, &request.member_id).await;
        return LeaveGroupResponse::default().with_error_code(error);
    }
    let mut members = Vec::with_capacity(request.members.len());
    let mut group_error = codes::NONE;
    for m in request.members {
        let error = leave_one(ctx, &group, &m.member_id).await;
        // A group-wide failure is the answer's own; a member the group does not have is the
        // member's.
        if matches!(
            error,
            codes::INVALID_GROUP_ID | codes::COORDINATOR_NOT_AVAILABLE
        ) {
            group_error = error;
        }
        members.push(
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(error),
        );
    }
    LeaveGroupResponse::default()
        .with_error_code(group_error)
        .with_members(members)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;

    use super::*;

    fn request(group: &str, session_ms: i32, protocols: usize) -> JoinGroupRequest {
        JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_session_timeout_ms(session_ms)
            .with_protocol_type(str_bytes("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(str_bytes("range"));
                protocols
            ])
    }

    #[test]
    fn joins_the_coordinator_would_refuse_get_the_code_kafka_clients_expect() {
        assert_eq!(join_precheck(&request("g", 10_000, 1)), None);
        assert_eq!(
            join_precheck(&request("", 10_000, 1)),
            Some(codes::INVALID_GROUP_ID)
        );
        assert_eq!(
            join_precheck(&request("a/b", 10_000, 1)),
            Some(codes::INVALID_GROUP_ID)
        );
        for session in [-1, 0, 999, i32::MAX] {
            assert_eq!(
                join_precheck(&request("g", session, 1)),
                Some(codes::INVALID_SESSION_TIMEOUT),
                "{session}"
            );
        }
        assert_eq!(
            join_precheck(&request("g", 10_000, 0)),
            Some(codes::INCONSISTENT_GROUP_PROTOCOL)
        );
    }

    #[test]
    fn a_failed_join_keeps_the_member_id_and_encodes_at_every_version() {
        use kafka_protocol::protocol::Encodable;
        let r = request("g", 10_000, 1).with_member_id(str_bytes("m-1"));
        for version in 0..=9 {
            let failed = join_failed(&r, codes::UNKNOWN_MEMBER_ID, version);
            assert_eq!(failed.member_id.as_str(), "m-1");
            let mut buf = bytes::BytesMut::new();
            failed.encode(&mut buf, version).unwrap();
        }
    }
}
