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
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strata_proto::ErrorCode;
use strata_proto::v1::{self, strata_server::Strata};

use strata_catalog::acls::{Access, CLUSTER_NAME, Operation, ResourceType};

use super::{Call, answer};
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

/// A Produce request taken apart: the partitions answered at once (a bad index, unparsable
/// records, an unknown ack mode) and the batches to forward, which [`forward`] answers.
#[derive(Debug)]
pub(crate) struct Prepared {
    acks: i16,
    timeout_ms: i32,
    topics: Vec<TopicName>,
    answered: Vec<(String, PartitionProduceResponse)>,
    sent: Vec<Sent>,
}

/// One partition's batches to forward, and its answer once forwarded.
#[derive(Debug)]
struct Sent {
    topic: String,
    partition: u32,
    batches: Vec<Bytes>,
}

impl Prepared {
    /// The answer, once [`forward`] has run; `None` for acks=0, which Kafka never answers.
    pub fn response(self) -> Option<ProduceResponse> {
        if self.acks == 0 {
            return None;
        }
        // Answers grouped by topic, in the order the request named the topics.
        let responses = self
            .topics
            .iter()
            .map(|name| {
                let partitions = self
                    .answered
                    .iter()
                    .filter(|(topic, _)| topic.as_str() == name.0.as_str())
                    .map(|(_, r)| r.clone())
                    .collect();
                TopicProduceResponse::default()
                    .with_name(name.clone())
                    .with_partition_responses(partitions)
            })
            .collect();
        Some(ProduceResponse::default().with_responses(responses))
    }
}

pub(crate) async fn prepare(ctx: &Call<'_>, request: ProduceRequest) -> Prepared {
    let acks = request.acks;
    let mut prepared = Prepared {
        acks,
        timeout_ms: request.timeout_ms,
        topics: request.topic_data.iter().map(|t| t.name.clone()).collect(),
        answered: Vec::new(),
        sent: Vec::new(),
    };
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        // A client may produce right after a topic was created elsewhere, before this proxy's
        // watch has seen it.
        ctx.service.routes().refresh_if_unknown(&name).await;
        for p in topic.partition_data {
            let refused =
                |code, message: String| (name.clone(), partition_error(p.index, code, message));
            if ack_of(acks).is_none() {
                let why = format!("acks must be 0, 1 or -1, not {acks}");
                prepared.answered.push(refused(codes::INVALID_REQUEST, why));
                continue;
            }
            let Ok(partition) = u32::try_from(p.index) else {
                let why = format!("partition {} does not exist", p.index);
                prepared
                    .answered
                    .push(refused(codes::UNKNOWN_TOPIC_OR_PARTITION, why));
                continue;
            };
            match split_batches(p.records.clone().unwrap_or_default()) {
                Ok(batches) if !batches.is_empty() => prepared.sent.push(Sent {
                    topic: name.clone(),
                    partition,
                    batches,
                }),
                Ok(_) => prepared.answered.push(refused(
                    codes::CORRUPT_MESSAGE,
                    "no record batch sent".into(),
                )),
                Err(why) => prepared.answered.push(refused(codes::CORRUPT_MESSAGE, why)),
            }
        }
    }
    prepared
}

/// Forwards the batches of `requests` (produces of one connection, in the order it sent them,
/// all with the same acks) in one call of the service: one entry per partition holding its
/// batches in request order, so the owner appends them in that order, and the commit that
/// makes one durable makes the others durable too.
pub(crate) async fn forward(ctx: &Call<'_>, requests: &mut [Prepared]) {
    let Some(ack) = requests.first().and_then(|r| ack_of(r.acks)) else {
        return;
    };
    let mut merged: Vec<v1::PartitionBatches> = Vec::new();
    // For each forwarded partition of each request: (request, topic, partition, entry, first
    // batch in the entry, batch count).
    let mut slices = Vec::new();
    for (i, request) in requests.iter_mut().enumerate() {
        for sent in request.sent.drain(..) {
            let entry = match merged
                .iter()
                .position(|m| m.topic == sent.topic && m.partition == sent.partition)
            {
                Some(entry) => entry,
                None => {
                    merged.push(v1::PartitionBatches {
                        topic: sent.topic.clone(),
                        partition: sent.partition,
                        batches: Vec::new(),
                        leader_epoch: 0,
                    });
                    merged.len() - 1
                }
            };
            let first = merged[entry].batches.len();
            let count = sent.batches.len();
            merged[entry].batches.extend(sent.batches);
            slices.push((i, sent.topic, sent.partition, entry, first, count));
        }
    }
    if merged.is_empty() {
        return;
    }
    let timeout_ms = requests
        .iter()
        .map(|r| r.timeout_ms)
        .filter(|t| *t > 0)
        .min();
    let mut call = ctx.request(v1::ProduceRequest {
        ack: ack as i32,
        partitions: merged.clone(),
    });
    // The client's own timeout, as a gRPC deadline, so the service answers before it gives up.
    if let Some(value) = timeout_ms.and_then(|t| format!("{t}m").parse().ok()) {
        call.metadata_mut().insert("grpc-timeout", value);
    }
    let results = answer(ctx.service.produce(call).await);
    for (i, topic, partition, entry, first, count) in slices {
        let index = partition as i32;
        let answer = match &results {
            Ok(response) => {
                let wanted = &merged[entry];
                let batches = response
                    .partitions
                    .iter()
                    .find(|r| r.topic == wanted.topic && r.partition == wanted.partition)
                    .and_then(|r| r.batches.get(first..first + count));
                match batches {
                    Some(batches) => partition_result(index, batches),
                    None => partition_error(
                        index,
                        codes::UNKNOWN_SERVER_ERROR,
                        "the service answered without this partition's batches".into(),
                    ),
                }
            }
            Err(e) => {
                let (code, message) = codes::of(Some(e));
                partition_error(index, code, message.unwrap_or_default())
            }
        };
        requests[i].answered.push((topic, answer));
    }
}

/// One partition's answer: the first batch's base offset, or the first error.
fn partition_result(index: i32, batches: &[v1::BatchResult]) -> PartitionProduceResponse {
    if let Some(e) = batches.iter().find_map(|b| b.error.as_ref()) {
        let (code, message) = codes::of(Some(e));
        return partition_error(index, code, message.unwrap_or_default());
    }
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(batches.first().map_or(-1, |b| b.base_offset))
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

pub(super) async fn init_producer_id(
    ctx: &Call<'_>,
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
    match may_write_idempotently(&ctx.access).await {
        Ok(true) => {}
        Ok(false) => return failed(codes::CLUSTER_AUTHORIZATION_FAILED),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the ACL rules for a producer id");
            return failed(producer_id_code(&e));
        }
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
            failed(producer_id_code(&e))
        }
    }
}

/// The InitProducerId code of a failure to decide or allocate: an unavailable metadata store
/// is "coordinator not available", which producers retry.
fn producer_id_code(e: &impl strata_proto::Coded) -> i16 {
    if e.code() == ErrorCode::Unavailable {
        codes::COORDINATOR_NOT_AVAILABLE
    } else {
        codes::UNKNOWN_SERVER_ERROR
    }
}

/// An idempotent producer needs IdempotentWrite on the cluster, or Write on some topic
/// (KIP-679: a producer that may write anywhere may write idempotently). "Some topic" is
/// judged from the rules, as Kafka's `authorizeByResourceType` does, not from the topics that
/// exist now (see [`Access::may_write_some_topic`]).
async fn may_write_idempotently(access: &Access) -> strata_catalog::Result<bool> {
    Ok(access
        .allows(
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        )
        .await?
        || access.may_write_some_topic().await?)
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
