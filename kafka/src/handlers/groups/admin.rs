//! ListGroups, DescribeGroups and DeleteGroups.

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use strata_catalog::acls::{Operation, ResourceType};
use strata_proto::consumer_protocol::{Assignment, PROTOCOL_TYPE};
use strata_proto::v1::{self, strata_server::Strata};
use strata_proto::{Coded, ErrorCode};
use strata_proxy::ProxyError;

use super::{settled, str_bytes, text};
use crate::codes;
use crate::handlers::{Call, answer};

/// The first ListGroups version that reports (and filters by) group state.
const LIST_STATES_VERSION: i16 = 4;
/// Kafka's state of a group that does not exist.
const DEAD: &str = "Dead";

pub(crate) async fn list(
    ctx: &Call<'_>,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut listed = match settled(
        answer(
            ctx.service
                .list_groups(ctx.request(v1::ListGroupsRequest {}))
                .await,
        ),
        |r: &v1::ListGroupsResponse| r.error.as_ref(),
    ) {
        Ok(listed) => listed,
        Err(error) => return ListGroupsResponse::default().with_error_code(error),
    };
    for g in &mut listed.groups {
        if g.members > 0
            && evict_expired(ctx, &g.group).await
            && let Some(state) = describe_state(ctx, &g.group).await
        {
            g.state = state;
        }
    }
    let with_states = version >= LIST_STATES_VERSION;
    let groups = listed
        .groups
        .into_iter()
        .filter(|g| {
            !with_states
                || request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&g.state))
        })
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if with_states {
                listed.with_group_state(str_bytes(g.state))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// Evicts the group's members whose session ended (best effort: a failure leaves the view as
/// the store has it); `true` if some were.
async fn evict_expired(ctx: &Call<'_>, group: &str) -> bool {
    match ctx.service.groups().evict_expired(group).await {
        Ok(evicted) => evicted,
        Err(e) => {
            tracing::debug!(group = %group, error = %e, "cannot evict expired members");
            false
        }
    }
}

/// The group's state now, if it can be read.
async fn describe_state(ctx: &Call<'_>, group: &str) -> Option<String> {
    let call = v1::DescribeGroupRequest {
        group: group.to_owned(),
    };
    match answer(ctx.service.describe_group(ctx.request(call)).await) {
        Ok(v1::DescribeGroupResponse {
            error: None, state, ..
        }) => Some(state),
        _ => None,
    }
}

pub(crate) async fn describe(
    ctx: &Call<'_>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for id in request.groups {
        groups.push(describe_one(ctx, id).await);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// A group in Kafka's terms. A group that does not exist is "Dead" without an error, as Kafka
/// answers below DescribeGroups v6.
async fn describe_one(ctx: &Call<'_>, id: GroupId) -> DescribedGroup {
    let name = text(&id.0);
    let call = v1::DescribeGroupRequest {
        group: name.clone(),
    };
    // Kafka expires members on its own; here the view does it, so a group whose consumers
    // crashed shows as empty.
    evict_expired(ctx, &name).await;
    let result = match answer(ctx.service.describe_group(ctx.request(call)).await) {
        Ok(v1::DescribeGroupResponse { error: Some(e), .. }) | Err(e) => Err(e),
        Ok(described) => Ok(described),
    };
    let described = match result {
        Ok(described) => described,
        Err(e) if e.error_code() == Some(ErrorCode::UnknownGroup) => {
            return DescribedGroup::default()
                .with_group_id(id)
                .with_group_state(str_bytes(DEAD));
        }
        Err(e) => {
            return DescribedGroup::default()
                .with_group_id(id)
                .with_error_code(codes::group_code(Some(&e)));
        }
    };
    // Best effort: without it DescribeGroups still names every member and its assignment.
    let metadata = match ctx.service.groups().member_metadata(&name).await {
        Ok(metadata) => metadata,
        Err(e) => {
            tracing::debug!(group = %name, error = %e, "member metadata unavailable for DescribeGroups");
            BTreeMap::new()
        }
    };
    let consumer = described.protocol_type == PROTOCOL_TYPE;
    let members = described
        .members
        .into_iter()
        .map(|m| {
            // The service hands assignments over decoded; tools read them in the consumer
            // protocol's format, so they are encoded back into it.
            let assignment = if consumer {
                let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for tp in m.assignment {
                    if let Ok(p) = i32::try_from(tp.partition) {
                        partitions.entry(tp.topic).or_default().push(p);
                    }
                }
                Assignment {
                    partitions,
                    user_data: None,
                }
                .encode()
            } else {
                Vec::new()
            };
            DescribedGroupMember::default()
                .with_member_metadata(
                    metadata
                        .get(&m.member_id)
                        .cloned()
                        .unwrap_or_default()
                        .into(),
                )
                .with_member_id(str_bytes(m.member_id))
                .with_client_id(str_bytes(m.client_id))
                .with_client_host(str_bytes(m.client_host))
                .with_member_assignment(assignment.into())
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(id)
        .with_group_state(str_bytes(described.state))
        .with_protocol_type(str_bytes(described.protocol_type))
        .with_protocol_data(str_bytes(described.protocol))
        .with_members(members)
}

pub(crate) async fn delete(ctx: &Call<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let name = text(&id.0);
        let allowed = ctx
            .access
            .check(Operation::Delete, ResourceType::Group, &name)
            .await;
        let deleted = match allowed {
            Ok(()) => ctx.service.groups().delete(&name).await,
            Err(e) => Err(ProxyError::from(e).into()),
        };
        let error = match deleted {
            Ok(()) => codes::NONE,
            Err(e) => {
                tracing::debug!(group = %id.0, error = %e, "group not deleted");
                // The gRPC answer's code (GROUP_NOT_EMPTY, UNKNOWN_GROUP, ...) in Kafka's terms.
                codes::group_code(Some(&ProxyError::from(e).to_wire()))
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(error),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
