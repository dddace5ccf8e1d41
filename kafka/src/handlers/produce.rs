//! Produce and InitProducerId.
//!
//! A Kafka producer's record batches are forwarded as they are, through the same routing and
//! retries as a gRPC produce; acks 0 / 1 / all become none / buffered / durable. Idempotent
//! producers get their ids here and their deduplication from the broker, which remembers each
//! producer's recent sequences per partition.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use strata_proto::ErrorCode;
use strata_proto::v1::{self, strata_server::Strata};
use tonic::Request;

use super::{Context, answer};
use crate::codes;

/// The batches of one partition's `records` field, split without copying. Kafka clients send
/// one batch per partition, but the field may hold several back to back.
pub(crate) fn split_batches(mut records: Bytes) -> Result<Vec<Bytes>, String> {
    const LENGTH_END: usize = 12; // baseOffset (8) + batchLength (4)
    let mut batches = Vec::new();
    while !records.is_empty() {
        if records.len() < LENGTH_END {
            return Err(format!(
                "{} bytes left after the last whole batch",
                records.len()
            ));
        }
        let length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(LENGTH_END))
            .filter(|t| *t <= records.len())
            .ok_or_else(|| {
                format!(
                    "batch length {length} does not fit in the {} bytes sent",
                    records.len()
                )
            })?;
        batches.push(records.split_to(total));
    }
    Ok(batches)
}

fn ack_of(acks: i16) -> Option<v1::Ack> {
    match acks {
        0 => Some(v1::Ack::None),
        1 => Some(v1::Ack::Buffered),
        -1 => Some(v1::Ack::Durable),
        _ => None,
    }
}

fn partition_error(index: i32, code: i16, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message)))
}

/// `None` for acks=0, which Kafka never answers.
pub(super) async fn handle(ctx: &Context, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    let Some(ack) = ack_of(acks) else {
        let responses = request
            .topic_data
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partition_data
                    .iter()
                    .map(|p| {
                        partition_error(
                            p.index,
                            codes::INVALID_REQUEST,
                            format!("acks must be 0, 1 or -1, not {acks}"),
                        )
                    })
                    .collect();
                TopicProduceResponse::default()
                    .with_name(t.name)
                    .with_partition_responses(partitions)
            })
            .collect();
        return Some(ProduceResponse::default().with_responses(responses));
    };
    // Partitions that cannot be sent (bad index, unparsable records) are answered directly;
    // the rest go to the service in one call.
    let mut answered: Vec<(String, PartitionProduceResponse)> = Vec::new();
    let mut forwarded = Vec::new();
    for topic in &request.topic_data {
        let name = topic.name.0.to_string();
        // A client may produce right after a topic was created elsewhere, before this proxy's
        // watch has seen it.
        ctx.service.routes().refresh_if_unknown(&name).await;
        for p in &topic.partition_data {
            let Ok(partition) = u32::try_from(p.index) else {
                answered.push((
                    name.clone(),
                    partition_error(
                        p.index,
                        codes::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("partition {} does not exist", p.index),
                    ),
                ));
                continue;
            };
            match split_batches(p.records.clone().unwrap_or_default()) {
                Ok(batches) if !batches.is_empty() => forwarded.push(v1::PartitionBatches {
                    topic: name.clone(),
                    partition,
                    batches,
                    leader_epoch: 0,
                }),
                Ok(_) => answered.push((
                    name.clone(),
                    partition_error(
                        p.index,
                        codes::CORRUPT_MESSAGE,
                        "no record batch sent".into(),
                    ),
                )),
                Err(why) => answered.push((
                    name.clone(),
                    partition_error(p.index, codes::CORRUPT_MESSAGE, why),
                )),
            }
        }
    }
    let sent: Vec<(String, u32)> = forwarded
        .iter()
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    let mut call = Request::new(v1::ProduceRequest {
        ack: ack as i32,
        partitions: forwarded,
    });
    // The client's own timeout, as a gRPC deadline, so the service answers before it gives up.
    if request.timeout_ms > 0
        && let Ok(value) = format!("{}m", request.timeout_ms).parse()
    {
        call.metadata_mut().insert("grpc-timeout", value);
    }
    let results = answer(ctx.service.produce(call).await);
    match results {
        Ok(response) => {
            for r in response.partitions {
                answered.push((r.topic.clone(), partition_result(&r)));
            }
        }
        Err(e) => {
            let (code, message) = codes::of(Some(&e));
            for (topic, partition) in sent {
                answered.push((
                    topic,
                    partition_error(partition as i32, code, message.clone().unwrap_or_default()),
                ));
            }
        }
    }
    if acks == 0 {
        return None;
    }
    // Answers grouped by topic, in the order the request named the topics.
    let responses = request
        .topic_data
        .iter()
        .map(|t| {
            let partitions = answered
                .iter()
                .filter(|(topic, _)| topic.as_str() == t.name.0.as_str())
                .map(|(_, r)| r.clone())
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    Some(ProduceResponse::default().with_responses(responses))
}

/// One partition's answer: the first batch's base offset, or the first error.
fn partition_result(r: &v1::PartitionResult) -> PartitionProduceResponse {
    let index = r.partition as i32;
    if let Some(e) = r.batches.iter().find_map(|b| b.error.as_ref()) {
        let (code, message) = codes::of(Some(e));
        return partition_error(index, code, message.unwrap_or_default());
    }
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(r.batches.first().map_or(-1, |b| b.base_offset))
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

pub(super) async fn init_producer_id(
    ctx: &Context,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.0.is_empty())
    {
        // Transactions are not built; clients that need them stop here, before sending any
        // transactional data.
        return failed(codes::INVALID_REQUEST);
    }
    // KIP-360: a producer that asks with its current id and epoch gets the next epoch of the same
    // id; the broker treats a higher epoch as a new session and restarts its sequences.
    if request.producer_id.0 >= 0 && request.producer_epoch >= 0 {
        let epoch = request
            .producer_epoch
            .checked_add(1)
            .filter(|e| *e < i16::MAX);
        if let Some(epoch) = epoch {
            return InitProducerIdResponse::default()
                .with_producer_id(request.producer_id)
                .with_producer_epoch(epoch);
        }
    }
    match ctx.cluster.next_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            let code = if strata_proto::Coded::code(&e) == ErrorCode::Unavailable {
                codes::COORDINATOR_NOT_AVAILABLE
            } else {
                codes::UNKNOWN_SERVER_ERROR
            };
            failed(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[8..12].copy_from_slice(&((len - 12) as i32).to_be_bytes());
        b
    }

    #[test]
    fn records_split_into_whole_batches_and_a_torn_tail_is_refused() {
        let mut two = batch(70);
        two.extend(batch(90));
        let split = split_batches(Bytes::from(two.clone())).unwrap();
        assert_eq!(split.iter().map(Bytes::len).collect::<Vec<_>>(), [70, 90]);
        two.truncate(100);
        assert!(split_batches(Bytes::from(two)).is_err());
        let mut lying = batch(70);
        lying[8..12].copy_from_slice(&i32::MIN.to_be_bytes());
        assert!(split_batches(Bytes::from(lying)).is_err());
    }
}
