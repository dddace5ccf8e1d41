//! The classic consumer-group APIs: FindCoordinator, the rebalance protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), committed offsets (OffsetCommit, OffsetFetch) and group
//! administration (ListGroups, DescribeGroups, DeleteGroups).
//!
//! The coordinator is the proxy's own (`strata_proxy::groups`), so Kafka and gRPC consumers
//! can share a group. Its state is in the metadata store and every proxy serves every group,
//! which is why FindCoordinator always names the proxy that is asked.
//!
//! Static membership (KIP-345, `group.instance.id`) is served as dynamic membership: the
//! instance id is accepted and ignored, so a restarted static member joins as a new member and
//! its previous incarnation leaves the group when its session ends, with one more rebalance
//! than Kafka would do.

mod admin;
mod membership;
mod offsets;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use strata_proto::v1;

use super::Call;
use crate::cluster::host_port;
use crate::codes;

pub(super) use admin::{delete, describe, list};
pub(super) use membership::{heartbeat, join, leave, sync};
pub(super) use offsets::{commit, fetch_offsets};

/// FindCoordinator's key type for consumer groups; 1 is transactions.
const GROUP_KEY: i8 = 0;

/// The answer of a group call, or the Kafka code of its failure (the call's own or the error
/// the answer carries).
fn settled<T>(
    result: Result<T, v1::Error>,
    error_of: impl Fn(&T) -> Option<&v1::Error>,
) -> Result<T, i16> {
    match result {
        Ok(answer) => match error_of(&answer) {
            None => Ok(answer),
            Some(e) => Err(codes::group_code(Some(e))),
        },
        Err(e) => Err(codes::group_code(Some(&e))),
    }
}

/// A Kafka string field as an owned Rust string.
fn text(s: &StrBytes) -> String {
    s.to_string()
}

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(super) fn find_coordinator(
    ctx: &Call<'_>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let me = ctx.cluster.me();
    let (host, port) = host_port(&me.kafka_addr);
    // `(error, message)` for a key of `key_type`; every proxy coordinates every group.
    let answer_for = |key_type: i8| -> (i16, Option<String>) {
        match key_type {
            GROUP_KEY => (codes::NONE, None),
            1 => (
                codes::COORDINATOR_NOT_AVAILABLE,
                Some(
                    "transactions are not supported yet by Strata's Kafka listener; use an idempotent producer without transactional.id"
                        .into(),
                ),
            ),
            other => (
                codes::INVALID_REQUEST,
                Some(format!(
                    "coordinator key type {other} is unknown; use 0 (group)"
                )),
            ),
        }
    };
    let (error, message) = answer_for(request.key_type);
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let served = error == codes::NONE;
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(if served { me.node_id } else { -1 }))
                    .with_host(str_bytes(if served { host.clone() } else { String::new() }))
                    .with_port(if served { port } else { -1 })
                    .with_error_code(error)
                    .with_error_message(message.clone().map(str_bytes))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default().with_error_code(error);
    let response = if version >= 1 {
        response.with_error_message(message.map(str_bytes))
    } else {
        response
    };
    if error == codes::NONE {
        response
            .with_node_id(BrokerId(me.node_id))
            .with_host(str_bytes(host))
            .with_port(port)
    } else {
        response.with_node_id(BrokerId(-1)).with_port(-1)
    }
}
