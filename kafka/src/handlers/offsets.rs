//! ListOffsets and OffsetForLeaderEpoch.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use strata_proto::v1::{self, strata_server::Strata};

use super::metadata::NO_EPOCH;
use super::{Call, answer};
use crate::codes;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// The offset of the record with the largest timestamp (KIP-734).
const MAX_TIMESTAMP: i64 = -3;
/// The earliest offset in local (non-tiered) storage (KIP-405): all of a Strata log is one tier.
const EARLIEST_LOCAL: i64 = -4;

/// `(offset, error)` for one partition and one timestamp query of the service.
async fn offset(ctx: &Call<'_>, topic: &str, partition: i32, timestamp: i64) -> (i64, i16) {
    let Ok(partition) = u32::try_from(partition) else {
        return (-1, codes::UNKNOWN_TOPIC_OR_PARTITION);
    };
    let request = v1::ListOffsetsRequest {
        topic: topic.to_owned(),
        partition,
        timestamp,
    };
    match answer(ctx.service.list_offsets(ctx.request(request)).await) {
        Ok(v1::ListOffsetsResponse {
            error: None,
            offset,
        }) => (offset, codes::NONE),
        Ok(v1::ListOffsetsResponse { error: Some(e), .. }) | Err(e) => (-1, codes::of(Some(&e)).0),
    }
}

pub(super) async fn list(ctx: &Call<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let name = t.name.0.to_string();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let (offset, error) = match p.timestamp {
                LATEST | EARLIEST => offset(ctx, &name, p.partition_index, p.timestamp).await,
                EARLIEST_LOCAL => offset(ctx, &name, p.partition_index, EARLIEST).await,
                // Records are appended in time order by almost every producer, so the newest
                // record stands for the one with the largest timestamp (documented).
                MAX_TIMESTAMP => {
                    let (end, error) = offset(ctx, &name, p.partition_index, LATEST).await;
                    (if end > 0 { end - 1 } else { -1 }, error)
                }
                ts if ts >= 0 => offset(ctx, &name, p.partition_index, ts).await,
                _ => (-1, codes::INVALID_REQUEST),
            };
            partitions.push(
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error)
                    .with_timestamp(-1)
                    .with_offset(offset)
                    .with_leader_epoch(NO_EPOCH),
            );
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// A Strata log is never truncated when its owner changes, so the end of any epoch a client
/// asks about is the current end of the log: the client's position is always valid.
pub(super) async fn for_leader_epoch(
    ctx: &Call<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let name = t.topic.0.to_string();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let (end, error) = offset(ctx, &name, p.partition, LATEST).await;
            partitions.push(
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(error)
                    .with_leader_epoch(p.leader_epoch)
                    .with_end_offset(end),
            );
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
