//! Forwarding produces to the brokers that own the partitions.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use futures::future::join_all;
use strata_proto::ErrorCode;
use strata_proto::v1::{self, broker_client::BrokerClient};
use tonic::transport::Channel;

use strata_catalog::acls::{Access, Operation};
use strata_format::delay;
use strata_format::lanes::{LANE_HEADER, lane_of};
use strata_format::{Record, RecordBatch, decode_batch};
use strata_proto::Coded as _;

use crate::metrics::{LaneLabel, MAIN_LANE};

use super::access::TopicDecisions;
use super::{ProxyService, error, retriable, unknown_lane};

/// How long one broker call may take before the proxy counts the broker as unreachable.
const BROKER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl ProxyService {
    /// Forwards the partitions of a produce the caller may write to; the others are answered
    /// with the refusal, in the order asked.
    pub(super) async fn forward_permitted(
        &self,
        access: &Access,
        ack: i32,
        partitions: Vec<v1::PartitionBatches>,
        deadline: Instant,
    ) -> Vec<v1::PartitionResult> {
        let mut decisions = TopicDecisions::new(access, Operation::Write);
        let mut refusals = Vec::with_capacity(partitions.len());
        let mut permitted = Vec::with_capacity(partitions.len());
        for p in partitions {
            // A topic this proxy has not learnt of yet may have lanes to check.
            self.routes.refresh_if_unknown(&p.topic).await;
            let refusal = match decisions.refusal(&p.topic).await {
                None if strata_format::retry::is_reserved(&p.topic) => Some(reserved(&p.topic)),
                None if p.topic == crate::trace::TRACE_TOPIC => Some(trace_topic()),
                None => self.record_refusal(&p),
                refusal => refusal,
            };
            match refusal {
                None => {
                    refusals.push(None);
                    permitted.push(p);
                }
                Some(refusal) => refusals.push(Some(v1::PartitionResult {
                    batches: vec![
                        v1::BatchResult {
                            base_offset: -1,
                            error: Some(refusal),
                            store_times: None,
                        };
                        p.batches.len()
                    ],
                    topic: p.topic,
                    partition: p.partition,
                })),
            }
        }
        let mut forwarded = if permitted.is_empty() {
            Vec::new()
        } else {
            self.forward_all(ack, permitted, deadline).await
        }
        .into_iter();
        refusals
            .into_iter()
            .map(|refused| refused.or_else(|| forwarded.next()).unwrap_or_default())
            .collect()
    }

    /// On a topic whose records the proxy reads (one with lanes, or accepting delays), why
    /// these batches are refused: a batch cannot be decoded, a record asks for a delay the
    /// topic does not allow, or names a lane the topic does not declare, which no consumer
    /// could ever be given. Otherwise counts the records per lane. Costs a decode of every
    /// batch, on such topics only.
    fn record_refusal(&self, p: &v1::PartitionBatches) -> Option<v1::Error> {
        let lanes = self.routes.declared_lanes(&p.topic);
        let delays = self.routes.filters_delays(&p.topic);
        if lanes.is_none() && !delays {
            return None;
        }
        let mut decoded: Vec<Vec<Record>> = Vec::with_capacity(p.batches.len());
        for bytes in &p.batches {
            // Stored, a batch that cannot be read would fail every fetch of the partition,
            // since on such a topic every reader's fetch decodes it.
            match RecordBatch::parse(bytes.clone()).and_then(|batch| decode_batch(&batch)) {
                Ok(records) => decoded.push(records),
                Err(e) => {
                    return Some(error(
                        ErrorCode::CorruptMessage,
                        format!(
                            "a batch for topic `{}` cannot be read, and a topic with lanes or delays reads every record: {e}",
                            p.topic
                        ),
                    ));
                }
            }
        }
        if delays {
            let max_delay_ms = self.routes.max_delay_ms(&p.topic).unwrap_or(0);
            let now_ms = self.clock().unix_millis();
            for record in decoded.iter().flatten() {
                if let Err(e) = delay::check_record(record, &p.topic, max_delay_ms, now_ms) {
                    return Some(e.to_wire());
                }
            }
        }
        let lanes = lanes?;
        let mut counts: HashMap<Option<&str>, u64> = HashMap::new();
        for record in decoded.iter().flatten() {
            let lane = lane_of(&record.headers);
            if let Some(lane) = lane.filter(|l| !lanes.iter().any(|d| d == l)) {
                let what = format!("a record names lane `{lane}` in its {LANE_HEADER} header");
                return Some(unknown_lane(&what, &p.topic, lane, &lanes));
            }
            *counts.entry(lane).or_default() += 1;
        }
        for (lane, n) in counts {
            self.metrics
                .lane_records
                .get_or_create(&LaneLabel {
                    topic: p.topic.clone(),
                    lane: lane.unwrap_or(MAIN_LANE).to_owned(),
                    direction: "produced",
                })
                .inc_by(n);
        }
        None
    }

    /// Forwards a produce: first one request per owning broker carrying all of its
    /// partitions (fewer calls when a client writes many partitions at once), then, for the
    /// batches that got a retriable answer or none, the per-partition retry loop of
    /// [`Self::forward`].
    pub(super) async fn forward_all(
        &self,
        ack: i32,
        partitions: Vec<v1::PartitionBatches>,
        deadline: Instant,
    ) -> Vec<v1::PartitionResult> {
        if partitions.len() == 1 {
            let p = partitions.into_iter().next().expect("one partition");
            return vec![self.forward(ack, p, deadline).await];
        }
        let mut by_owner: HashMap<String, Vec<usize>> = HashMap::new();
        let mut epochs = vec![0; partitions.len()];
        for (i, p) in partitions.iter().enumerate() {
            if let Ok(Some(route)) = self.routes.route(&p.topic, p.partition)
                && let Some(addr) = route.addr
            {
                epochs[i] = route.epoch;
                by_owner.entry(addr).or_default().push(i);
            }
        }
        let mut results: Vec<Vec<Option<v1::BatchResult>>> = partitions
            .iter()
            .map(|p| vec![None; p.batches.len()])
            .collect();
        let first_tries = join_all(by_owner.into_iter().map(|(addr, members)| {
            let request = v1::ProduceRequest {
                ack,
                partitions: members
                    .iter()
                    .map(|&i| v1::PartitionBatches {
                        leader_epoch: epochs[i],
                        ..partitions[i].clone()
                    })
                    .collect(),
            };
            async move { (members, self.call_broker(&addr, request).await) }
        }))
        .await;
        for (members, answer) in first_tries {
            let Some(answer) = answer else { continue };
            let mut answered: HashMap<(String, u32), Vec<v1::BatchResult>> = answer
                .partitions
                .into_iter()
                .map(|r| ((r.topic, r.partition), r.batches))
                .collect();
            for i in members {
                let key = (partitions[i].topic.clone(), partitions[i].partition);
                let Some(batches) = answered.remove(&key) else {
                    continue;
                };
                for (slot, batch) in results[i].iter_mut().zip(batches) {
                    if !batch.error.as_ref().is_some_and(retriable) {
                        *slot = Some(batch);
                    }
                }
            }
        }
        join_all(partitions.into_iter().enumerate().map(|(i, p)| {
            let done = std::mem::take(&mut results[i]);
            async move {
                if done.iter().all(Option::is_some) {
                    return v1::PartitionResult {
                        topic: p.topic,
                        partition: p.partition,
                        batches: done.into_iter().flatten().collect(),
                    };
                }
                self.metrics.produce_retries.inc();
                let pending: Vec<usize> = (0..done.len()).filter(|b| done[*b].is_none()).collect();
                let retry = v1::PartitionBatches {
                    batches: pending.iter().map(|b| p.batches[*b].clone()).collect(),
                    ..p.clone()
                };
                let mut retried = self.forward(ack, retry, deadline).await.batches.into_iter();
                let batches = done
                    .into_iter()
                    .map(|d| d.or_else(|| retried.next()).unwrap_or_default())
                    .collect();
                v1::PartitionResult {
                    topic: p.topic,
                    partition: p.partition,
                    batches,
                }
            }
        }))
        .await
    }

    /// One call to a broker; `None` when it failed, did not answer in time, or one of the
    /// partitions moved while it waited (the batches are retried at the new owner).
    async fn call_broker(
        &self,
        addr: &str,
        request: v1::ProduceRequest,
    ) -> Option<v1::ProduceResponse> {
        let channel = self.channel(addr).ok()?;
        let routed: Vec<(String, u32, u64)> = request
            .partitions
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.leader_epoch))
            .collect();
        let mut client = BrokerClient::new(channel);
        let call = tokio::time::timeout(BROKER_CALL_TIMEOUT, client.produce(request));
        tokio::select! {
            answer = call => match answer {
                Ok(Ok(response)) => Some(response.into_inner()),
                Ok(Err(_)) | Err(_) => {
                    self.forget(addr);
                    None
                }
            },
            () = self.routes.moved(&routed) => None,
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, v1::Error> {
        let mut channels = self.channels.lock().expect("channel cache poisoned");
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = strata_tls::ClientTls::endpoint(addr, self.broker_tls.as_ref())
            .map_err(|e| {
                error(
                    ErrorCode::Internal,
                    format!("bad broker address {addr}: {e}"),
                )
            })?
            .connect_timeout(Duration::from_secs(2));
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    fn forget(&self, addr: &str) {
        self.channels
            .lock()
            .expect("channel cache poisoned")
            .remove(addr);
    }

    /// Sends one partition's batches to its owner, retrying the retriable failures (in order)
    /// until they succeed or the deadline passes.
    pub(super) async fn forward(
        &self,
        ack: i32,
        p: v1::PartitionBatches,
        deadline: Instant,
    ) -> v1::PartitionResult {
        let mut results: Vec<Option<v1::BatchResult>> = vec![None; p.batches.len()];
        let mut last = error(ErrorCode::Unavailable, "no attempt made");
        loop {
            let pending: Vec<usize> = (0..results.len())
                .filter(|i| results[*i].is_none())
                .collect();
            if pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            let route = match self.routes.route(&p.topic, p.partition) {
                Err((code, message)) => {
                    last = error(code, message);
                    break;
                }
                Ok(Some(route)) if route.addr.is_some() => route,
                Ok(_) => {
                    last = error(
                        ErrorCode::Unavailable,
                        format!("{}/{} has no live owner yet", p.topic, p.partition),
                    );
                    self.routes.changed(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let addr = route.addr.clone().unwrap_or_default();
            let channel = match self.channel(&addr) {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    break;
                }
            };
            let request = v1::ProduceRequest {
                ack,
                partitions: vec![v1::PartitionBatches {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    batches: pending.iter().map(|i| p.batches[*i].clone()).collect(),
                    leader_epoch: route.epoch,
                }],
            };
            let routed = [(p.topic.clone(), p.partition, route.epoch)];
            let mut client = BrokerClient::new(channel);
            let call = tokio::time::timeout(BROKER_CALL_TIMEOUT, client.produce(request));
            let answer = tokio::select! {
                answer = call => answer,
                () = self.routes.moved(&routed) => {
                    // The owner changed while the call waited (a paused or partitioned old
                    // owner may never answer): retry at the new one now.
                    last = error(
                        ErrorCode::NotLeader,
                        format!("{}/{} moved while broker {} held the request", p.topic, p.partition, route.broker),
                    );
                    self.metrics.produce_retries.inc();
                    continue;
                }
            };
            match answer {
                Ok(Ok(response)) => {
                    let batches = response
                        .into_inner()
                        .partitions
                        .into_iter()
                        .next()
                        .map(|r| r.batches)
                        .unwrap_or_default();
                    let mut retry = false;
                    for (i, result) in pending.iter().zip(batches) {
                        match &result.error {
                            Some(e) if retriable(e) => {
                                last = e.clone();
                                retry = true;
                            }
                            _ => results[*i] = Some(result),
                        }
                    }
                    if retry {
                        self.metrics.produce_retries.inc();
                        self.routes.changed(Duration::from_millis(100)).await;
                    }
                }
                Ok(Err(status)) => {
                    last = error(
                        ErrorCode::Unavailable,
                        format!("broker {} at {addr}: {}", route.broker, status.message()),
                    );
                    self.forget(&addr);
                    self.routes.changed(Duration::from_millis(200)).await;
                }
                Err(_) => {
                    last = error(
                        ErrorCode::Unavailable,
                        format!(
                            "broker {} at {addr} did not answer in {BROKER_CALL_TIMEOUT:?}",
                            route.broker
                        ),
                    );
                    self.forget(&addr);
                }
            }
        }
        let batches = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| v1::BatchResult {
                    base_offset: -1,
                    error: Some(last.clone()),
                    store_times: None,
                })
            })
            .collect();
        v1::PartitionResult {
            topic: p.topic,
            partition: p.partition,
            batches,
        }
    }
}

/// The refusal of a produce to the trace topic: its events would show in others' traces.
fn trace_topic() -> v1::Error {
    error(
        ErrorCode::InvalidArgument,
        format!(
            "topic `{}` holds message-trace events, which only proxies write; turn tracing on for a topic with `strata topic alter TOPIC --trace-sample 1%`",
            crate::trace::TRACE_TOPIC
        ),
    )
}

/// The refusal of a produce to a group's retry or dead-letter topic, which only nacks write:
/// a record written there directly would look like a retry nobody asked for.
fn reserved(topic: &str) -> v1::Error {
    error(
        ErrorCode::InvalidArgument,
        format!(
            "topic `{topic}` is a consumer group's retry or dead-letter topic: records reach it by a nack (Consumer::nack, `strata nack`), not by produce"
        ),
    )
}
