//! OffsetCommit and OffsetFetch.
//!
//! Commits from consumers outside group management (generation -1, no member id: `assign()`
//! instead of `subscribe()`) are Kafka's "simple" commits; the coordinator takes them while the
//! group has no members, as Kafka does, and fences them off a group that has members.

use std::collections::HashMap;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strata_proto::ErrorCode;
use strata_proto::v1::{self, strata_server::Strata};

use super::{settled, text};
use crate::codes;
use crate::handlers::metadata::NO_EPOCH;
use crate::handlers::{Call, answer};

/// The first OffsetFetch version with a top-level error code.
const FETCH_ERROR_VERSION: i16 = 2;
/// The first OffsetFetch version that asks about several groups at once.
const FETCH_GROUPS_VERSION: i16 = 8;

/// The code of one partition's commit: a malformed offset is the request's fault, not the
/// group name's (which is what the coordinator's INVALID_ARGUMENT means at the top level).
fn partition_code(error: Option<&v1::Error>) -> i16 {
    match error.and_then(v1::Error::error_code) {
        Some(ErrorCode::InvalidArgument) => codes::INVALID_REQUEST,
        _ => codes::group_code(error),
    }
}

/// The retention time of v2-v4 is ignored: committed offsets stay until the group is deleted.
pub(crate) async fn commit(ctx: &Call<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let offsets: Vec<v1::PartitionOffset> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().filter_map(|p| {
                Some(v1::PartitionOffset {
                    topic: text(&t.name.0),
                    partition: u32::try_from(p.partition_index).ok()?,
                    offset: p.committed_offset,
                    metadata: p.committed_metadata.as_ref().map(text).unwrap_or_default(),
                })
            })
        })
        .collect();
    let outcome: Result<HashMap<(String, u32), i16>, i16> = if offsets.is_empty() {
        Ok(HashMap::new())
    } else {
        let call = v1::OffsetCommitRequest {
            broadcast_member: String::new(),
            group: text(&request.group_id.0),
            generation: request.generation_id_or_member_epoch,
            member_id: text(&request.member_id),
            offsets,
        };
        settled(
            answer(ctx.service.offset_commit(ctx.request(call)).await),
            |r: &v1::OffsetCommitResponse| r.error.as_ref(),
        )
        .map(|r| {
            r.partitions
                .into_iter()
                .map(|p| ((p.topic, p.partition), partition_code(p.error.as_ref())))
                .collect()
        })
        .map_err(|error| {
            // Kafka refuses a commit from outside a group that has members as coming from an
            // unknown member; the coordinator says the generation (-1) is wrong. Same outcome,
            // Kafka's code.
            let simple = request.generation_id_or_member_epoch < 0 && request.member_id.is_empty();
            if simple && error == codes::ILLEGAL_GENERATION {
                codes::UNKNOWN_MEMBER_ID
            } else {
                error
            }
        })
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = text(&t.name.0);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = match (u32::try_from(p.partition_index), &outcome) {
                        (Err(_), _) => codes::UNKNOWN_TOPIC_OR_PARTITION,
                        (Ok(_), Err(error)) => *error,
                        (Ok(partition), Ok(results)) => results
                            .get(&(topic.clone(), partition))
                            .copied()
                            .unwrap_or(codes::UNKNOWN_SERVER_ERROR),
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One partition's committed offset in an OffsetFetch answer.
struct Committed {
    partition: i32,
    offset: i64,
    metadata: String,
    error: i16,
}

/// The group-level error and, by topic, the committed offsets of `wanted` (`None`: every
/// partition the group committed).
async fn fetch_group(
    ctx: &Call<'_>,
    group: &GroupId,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
) -> (i16, Vec<(TopicName, Vec<Committed>)>) {
    let partitions: Vec<v1::TopicPartition> = wanted
        .iter()
        .flatten()
        .flat_map(|(topic, ps)| {
            ps.iter().filter_map(|p| {
                Some(v1::TopicPartition {
                    topic: text(&topic.0),
                    partition: u32::try_from(*p).ok()?,
                })
            })
        })
        .collect();
    // The service reads an empty list as "every partition", which a list of nothing valid
    // must not turn into.
    let result = if wanted.is_some() && partitions.is_empty() {
        Ok(Vec::new())
    } else {
        let call = v1::OffsetFetchRequest {
            group: text(&group.0),
            partitions,
            broadcast_member: String::new(),
        };
        settled(
            answer(ctx.service.offset_fetch(ctx.request(call)).await),
            |r: &v1::OffsetFetchResponse| r.error.as_ref(),
        )
        .map(|r| r.offsets)
    };
    let (error, offsets) = match result {
        Ok(offsets) => (codes::NONE, offsets),
        Err(error) => (error, Vec::new()),
    };
    let Some(wanted) = wanted else {
        let mut by_topic: Vec<(TopicName, Vec<Committed>)> = Vec::new();
        // The service answers sorted by topic, so each topic's partitions are adjacent.
        for o in offsets {
            let entry = Committed {
                partition: i32::try_from(o.partition).unwrap_or(i32::MAX),
                offset: o.offset,
                metadata: o.metadata,
                error: codes::NONE,
            };
            match by_topic.last_mut() {
                Some((name, list)) if *name.0 == *o.topic => list.push(entry),
                _ => by_topic.push((TopicName(StrBytes::from_string(o.topic)), vec![entry])),
            }
        }
        return (error, by_topic);
    };
    let found: HashMap<(String, u32), (i64, String)> = offsets
        .into_iter()
        .map(|o| ((o.topic, o.partition), (o.offset, o.metadata)))
        .collect();
    let topics = wanted
        .into_iter()
        .map(|(topic, ps)| {
            let name = text(&topic.0);
            let list = ps
                .into_iter()
                .map(|p| {
                    let hit = u32::try_from(p)
                        .ok()
                        .and_then(|q| found.get(&(name.clone(), q)));
                    Committed {
                        partition: p,
                        offset: hit.map_or(-1, |(offset, _)| *offset),
                        metadata: hit.map(|(_, m)| m.clone()).unwrap_or_default(),
                        error,
                    }
                })
                .collect();
            (topic, list)
        })
        .collect();
    (error, topics)
}

pub(crate) async fn fetch_offsets(
    ctx: &Call<'_>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= FETCH_GROUPS_VERSION {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in request.groups {
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let (error, topics) = fetch_group(ctx, &g.group_id, wanted).await;
            let topics = topics
                .into_iter()
                .map(|(name, list)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(name)
                        .with_partitions(
                            list.into_iter()
                                .map(|c| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(c.partition)
                                        .with_committed_offset(c.offset)
                                        .with_committed_leader_epoch(NO_EPOCH)
                                        .with_metadata(Some(StrBytes::from_string(c.metadata)))
                                        .with_error_code(c.error)
                                })
                                .collect(),
                        )
                })
                .collect();
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_error_code(error)
                    .with_topics(topics),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let (error, topics) = fetch_group(ctx, &request.group_id, wanted).await;
    let topics = topics
        .into_iter()
        .map(|(name, list)| {
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    list.into_iter()
                        .map(|c| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(c.partition)
                                .with_committed_offset(c.offset)
                                .with_committed_leader_epoch(NO_EPOCH)
                                .with_metadata(Some(StrBytes::from_string(c.metadata)))
                                .with_error_code(c.error)
                        })
                        .collect(),
                )
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= FETCH_ERROR_VERSION {
        response.with_error_code(error)
    } else {
        response
    }
}
