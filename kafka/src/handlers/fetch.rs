//! Fetch: whole stored batches, long polling, byte limits.
//!
//! Each partition is read through the service's own fetch (storage reads, the read cache, the
//! commit watch). A fetch first reads every partition at once without waiting; if that found
//! fewer than `min_bytes`, it waits on all partitions that had nothing until one of them gets a
//! commit or `max_wait_ms` passes, and reads again. There are no transactions yet, so every
//! committed batch is stable: `read_committed` and `read_uncommitted` see the same data and the
//! last stable offset is the high watermark.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use strata_format::batch::{next_offset_of, skip_batch};
use strata_proto::v1::{self, strata_server::Strata};
use strata_proxy::{Delivery, DeliveryTracedByCaller, kafka_client};
use tokio::time::Instant;

use super::{Call, answer};
use crate::codes;

/// Longest wait a client may ask for (the proxy's long-poll bound).
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Bound on one response, whatever the client asks for: memory per connection stays bounded.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// One requested partition and what has been read for it so far.
struct Slot {
    topic_index: usize,
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: u32,
    answer: Option<v1::FetchResponse>,
}

impl Slot {
    fn bytes(&self) -> usize {
        self.answer
            .as_ref()
            .map_or(0, |a| a.batches.iter().map(Bytes::len).sum())
    }

    /// Whether the read found only records left out for this consumer.
    fn skipped(&self) -> bool {
        self.answer
            .as_ref()
            .is_some_and(|a| a.batches.is_empty() && a.next_offset > self.offset)
    }
}

async fn read(ctx: &Call<'_>, slot: &Slot, wait: Duration) -> v1::FetchResponse {
    let request = v1::FetchRequest {
        topic: slot.topic.clone(),
        partition: slot.partition as u32,
        offset: slot.offset,
        max_bytes: slot.max_bytes,
        max_wait_ms: wait.as_millis() as u32,
        ..Default::default()
    };
    // What is sent is traced once the response is cut to its size (below).
    let mut request = ctx.request(request);
    request.extensions_mut().insert(DeliveryTracedByCaller);
    answer(ctx.service.fetch(request).await).unwrap_or_else(|e| v1::FetchResponse {
        high_watermark: -1,
        log_start: -1,
        error: Some(e),
        ..Default::default()
    })
}

pub(super) async fn handle(ctx: &Call<'_>, request: FetchRequest) -> FetchResponse {
    let deadline =
        Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let min_bytes = request.min_bytes.max(1) as usize;
    let mut slots: Vec<Slot> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        for p in &topic.partitions {
            slots.push(Slot {
                topic_index,
                topic: topic.topic.0.to_string(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(1) as u32,
                answer: None,
            });
        }
    }
    // Partitions with a negative index cannot exist; answer them without asking.
    for slot in slots.iter_mut().filter(|s| s.partition < 0) {
        slot.answer = Some(v1::FetchResponse {
            error: Some(v1::Error::new(
                strata_proto::ErrorCode::UnknownPartition,
                format!("partition {} does not exist", slot.partition),
            )),
            high_watermark: -1,
            log_start: -1,
            ..Default::default()
        });
    }
    read_all(ctx, &mut slots, Duration::ZERO).await;
    loop {
        let total: usize = slots.iter().map(Slot::bytes).sum();
        let now = Instant::now();
        // A read whose records were all left out (another lane's) answers at once too: the
        // consumer must move past them, and asking again would read the same range.
        if total >= min_bytes || now >= deadline || slots.iter().any(Slot::skipped) {
            break;
        }
        // Wait on the partitions that can still get data; the first to get some wakes us.
        let waiting: Vec<usize> = (0..slots.len())
            .filter(|i| {
                let a = slots[*i].answer.as_ref();
                a.is_none_or(|a| a.error.is_none() && a.batches.is_empty())
            })
            .collect();
        if waiting.is_empty() {
            break;
        }
        let wait = deadline - now;
        let mut polls: FuturesUnordered<_> = waiting
            .iter()
            .map(|i| {
                let slot = &slots[*i];
                async move { (*i, read(ctx, slot, wait).await) }
            })
            .collect();
        let mut woke = Vec::new();
        while let Some((i, answer)) = polls.next().await {
            let got_data = !answer.batches.is_empty()
                || answer.error.is_some()
                || answer.next_offset > slots[i].offset;
            woke.push((i, answer));
            if got_data {
                break;
            }
        }
        drop(polls);
        for (i, answer) in woke {
            slots[i].answer = Some(answer);
        }
    }
    let mut sent = Vec::new();
    let response = response(
        &request,
        slots,
        request.max_bytes.max(1) as usize,
        &mut sent,
    );
    let client = kafka_client(ctx.access.principal());
    for (topic, partition, from, batches) in &sent {
        let delivery = Delivery {
            topic,
            partition: *partition,
            from: *from,
            batches,
            // A Kafka fetch names no group.
            group: None,
            principal: ctx.access.principal(),
            selected: false,
        };
        ctx.service.trace_delivery(delivery, &client);
    }
    response
}

async fn read_all(ctx: &Call<'_>, slots: &mut [Slot], wait: Duration) {
    let reads = futures::future::join_all(
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.answer.is_none())
            .map(|(i, slot)| async move { (i, read(ctx, slot, wait).await) }),
    )
    .await;
    for (i, answer) in reads {
        slots[i].answer = Some(answer);
    }
}

/// Assembles the answer, keeping to the response byte limit: batches are whole, and as in
/// Kafka the first batch goes out even if it alone is over the limit, so a consumer can never
/// be stuck behind a batch larger than its limit.
/// What each partition's answer sent (topic, partition, offset asked for, batches) goes to
/// `sent`, for message traces.
fn response(
    request: &FetchRequest,
    slots: Vec<Slot>,
    max_bytes: usize,
    sent: &mut Vec<(String, u32, i64, Vec<Bytes>)>,
) -> FetchResponse {
    let limit = max_bytes.min(MAX_RESPONSE_BYTES);
    let mut used = 0usize;
    let mut topics: Vec<FetchableTopicResponse> = request
        .topics
        .iter()
        .map(|t| FetchableTopicResponse::default().with_topic(t.topic.clone()))
        .collect();
    for slot in slots {
        let answer = slot.answer.unwrap_or_default();
        let (code, _) = codes::of(answer.error.as_ref());
        let mut records = BytesMut::new();
        let mut last = None;
        let mut whole = true;
        let mut kept = Vec::new();
        for batch in &answer.batches {
            if used > 0 && used + batch.len() > limit {
                whole = false;
                break;
            }
            used += batch.len();
            records.extend_from_slice(batch);
            kept.push(batch.clone());
            last = Some(batch);
        }
        if !kept.is_empty() {
            sent.push((slot.topic.clone(), slot.partition as u32, slot.offset, kept));
        }
        // Records left out at the end of what was read (a topic's other lanes): an empty batch
        // over them moves the consumer on, since Kafka's Fetch cannot say `next_offset`.
        let end = last.map_or(Some(slot.offset), |b| next_offset_of(b));
        if let Some(end) = end
            && whole
            && answer.error.is_none()
            && answer.next_offset > end
        {
            records.extend_from_slice(&skip_batch(end, answer.next_offset));
        }
        let data = PartitionData::default()
            .with_partition_index(slot.partition)
            .with_error_code(code)
            .with_high_watermark(answer.high_watermark)
            .with_last_stable_offset(answer.high_watermark)
            .with_log_start_offset(answer.log_start)
            .with_aborted_transactions(Some(Vec::new()))
            .with_records(Some(records.freeze()));
        topics[slot.topic_index].partitions.push(data);
    }
    FetchResponse::default().with_responses(topics)
}
