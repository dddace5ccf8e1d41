//! Message trace on the proxy ([`crate::trace`]): the events of traced messages as they are
//! produced, delivered and committed by groups, and the query that rebuilds a message's path.
//!
//! Events are written like the proxy's other writes ([`super::writer`]), grouped per trace
//! partition, without holding up the call that caused them. At most [`MAX_PENDING_EVENTS`]
//! wait at once; past that, events are dropped and counted, so tracing never slows a
//! produce down for long or holds unbounded memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use strata_format::batch::offsets_of;
use strata_format::{Record, RecordBatch, decode_batch};
use strata_proto::{Coded as _, ErrorCode, v1};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use strata_catalog::acls::{Access, Operation, ResourceType};

use super::access::check;
use super::{ProxyService, error};
use crate::trace::{
    PPM, StoreSteps, TRACE_TOPIC, TraceEvent, message_id, path, sampled, sampled_in,
    trace_partition,
};

/// Trace events queued and not yet written, at most.
pub(super) const MAX_PENDING_EVENTS: usize = 10_000;
/// A commit that moves a group's position on a partition further than this records only the
/// last this many offsets' traced messages: finding them costs a hash per offset, in the
/// commit's call.
const MAX_COMMIT_SPAN: i64 = 100_000;
/// How far before a message's timestamp its trace is looked for: events carry the proxies'
/// clock, the message may carry its producer's.
const CLOCK_SLACK_MS: i64 = 5 * 60 * 1000;
/// How long after a message its steps are looked for, unless the query says.
const DEFAULT_WITHIN: Duration = Duration::from_secs(3600);
/// Bytes of the trace partition one query reads at most.
const MAX_SCAN_BYTES: u64 = 256 << 20;
const SCAN_STEP_BYTES: u64 = 4 << 20;

/// Group positions this proxy remembers, at most: past that it forgets them all and reads
/// them from the metadata store again.
const MAX_REMEMBERED_POSITIONS: usize = 100_000;

/// A group's position on a partition, as `(group or broadcast member, topic, partition)`.
type PositionKey = (String, String, u32);

/// The bound on queued trace events, and the positions groups committed through this proxy.
#[derive(Debug, Clone)]
pub(super) struct Tracer {
    pending: Arc<Semaphore>,
    /// Where each group last committed through this proxy on traced topics: a group's
    /// commits come through the proxy its consumer talks to, so this spares a read of the
    /// metadata store per commit. Another proxy's commit in between only makes the next
    /// commit here record a few messages as committed twice.
    positions: Arc<Mutex<HashMap<PositionKey, i64>>>,
    /// Where a clustering group's consumer has been reading through this proxy without a
    /// break (the SDK names its group in fetches): what the group's first commit moved past.
    first_reads: Arc<Mutex<HashMap<PositionKey, FirstRead>>>,
}

/// A stretch a group's consumer read without a break, from `from` up to `next`, and who read
/// it: only a commit by the same principal counts it, so nobody can plant one for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FirstRead {
    principal: Option<String>,
    from: i64,
    next: i64,
}

impl Default for Tracer {
    fn default() -> Self {
        Self {
            pending: Arc::new(Semaphore::new(MAX_PENDING_EVENTS)),
            positions: Arc::default(),
            first_reads: Arc::default(),
        }
    }
}

impl Tracer {
    fn positions(&self) -> std::sync::MutexGuard<'_, HashMap<PositionKey, i64>> {
        self.positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn first_reads(&self) -> std::sync::MutexGuard<'_, HashMap<PositionKey, FirstRead>> {
        self.first_reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Remembers `at` under `key` in `map`, forgetting everything once it holds too much.
fn remember<T>(map: &mut HashMap<PositionKey, T>, key: PositionKey, at: T) {
    if map.len() >= MAX_REMEMBERED_POSITIONS && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, at);
}

/// Where `r` moves the position of `o`'s partition.
fn committing(r: &v1::OffsetCommitRequest, o: &v1::PartitionOffset) -> i64 {
    r.offsets
        .iter()
        .find(|c| c.topic == o.topic && c.partition == o.partition)
        .map_or(-1, |c| c.offset)
}

/// Whose positions a commit moves: its group's, or a broadcast member's own.
fn committer(r: &v1::OffsetCommitRequest) -> String {
    if r.broadcast_member.is_empty() {
        r.group.clone()
    } else {
        format!("{}\n{}", r.group, r.broadcast_member)
    }
}

/// What a consumer was handed from one partition.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub topic: &'a str,
    pub partition: u32,
    /// The offset the consumer asked for.
    pub from: i64,
    /// The batches sent, as sent.
    pub batches: &'a [Bytes],
    pub group: Option<&'a str>,
    /// Who fetched (`User:name`), when known.
    pub principal: Option<&'a str>,
    /// The consumer's own selector (tags, a property filter) may have left records out.
    pub selected: bool,
}

/// Set on a fetch whose caller traces what it sends itself (the Kafka listener, which may
/// send less than the fetch read).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryTracedByCaller;

/// How message traces name a Kafka client: by its principal, when it logged in.
pub fn kafka_client(principal: Option<&str>) -> String {
    match principal {
        Some(p) => format!("Kafka client {p}"),
        None => "a Kafka client".to_owned(),
    }
}

/// The batches of one partition of a produce that may hold traced messages.
pub(super) struct TracedProduce {
    /// The partition's place in the request.
    index: usize,
    ppm: u32,
    /// Records per batch.
    counts: Vec<i64>,
}

impl ProxyService {
    /// Writes `event` of message `id` to the trace topic, without waiting.
    fn trace(&self, id: String, event: TraceEvent) {
        let outcome = |o: &'static str| self.metrics.trace_event(o);
        let Ok(partitions) = self.routes.partitions(TRACE_TOPIC) else {
            outcome("dropped");
            return;
        };
        let Ok(permit) = self.tracer.pending.clone().try_acquire_owned() else {
            outcome("dropped");
            return;
        };
        let value = match serde_json::to_vec(&event) {
            Ok(v) => v,
            Err(_) => return outcome("dropped"),
        };
        let record = Record {
            offset: 0,
            timestamp: event.at_ms(),
            key: Some(Bytes::from(id.clone().into_bytes())),
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
        };
        let metrics = self.metrics.clone();
        let reply = Box::new(move |written: Result<i64, v1::Error>| {
            drop(permit);
            metrics.trace_event(if written.is_ok() { "written" } else { "failed" });
        });
        self.queue_own(TRACE_TOPIC, trace_partition(&id, partitions), record, reply);
    }

    /// The partitions of a produce whose topics trace, with their batches' record counts.
    pub(super) fn traced_produce(&self, partitions: &[v1::PartitionBatches]) -> Vec<TracedProduce> {
        partitions
            .iter()
            .enumerate()
            .filter_map(|(index, p)| {
                let ppm = self.routes.trace_sample_ppm(&p.topic);
                (ppm > 0).then(|| TracedProduce {
                    index,
                    ppm,
                    // From the headers: the broker checks the batches.
                    counts: p
                        .batches
                        .iter()
                        .map(|b| offsets_of(b).map_or(0, |(base, next)| next - base))
                        .collect(),
                })
            })
            .collect()
    }

    /// Traces the messages of a produce that were taken: one event per traced message.
    pub(super) fn trace_produced(
        &self,
        traced: Vec<TracedProduce>,
        results: &[v1::PartitionResult],
        received: (Instant, i64),
        client: &str,
    ) {
        let (received_at, received_ms) = received;
        let round_trip = received_at.elapsed();
        let round_trip_us = round_trip.as_micros().try_into().unwrap_or(u64::MAX);
        for t in traced {
            let Some(result) = results.get(t.index) else {
                continue;
            };
            let broker = self
                .routes
                .route(&result.topic, result.partition)
                .ok()
                .flatten()
                .map(|r| format!("broker {}", r.broker));
            for (batch, count) in result.batches.iter().zip(&t.counts) {
                if batch.error.is_some() || batch.base_offset < 0 {
                    continue;
                }
                let end = batch.base_offset + count;
                for offset in sampled_in(
                    &result.topic,
                    result.partition,
                    batch.base_offset,
                    end,
                    t.ppm,
                ) {
                    let event = TraceEvent::Produced {
                        received_ms,
                        proxy: self.name.to_string(),
                        client: client.to_owned(),
                        broker: broker.clone(),
                        store: batch
                            .store_times
                            .as_ref()
                            .map(|s| StoreSteps::place(s, round_trip_us)),
                        acked_us: round_trip_us,
                    };
                    self.trace(message_id(&result.topic, result.partition, offset), event);
                }
            }
        }
    }

    /// Traces the messages handed to a consumer: those of `d.batches` from `d.from` on (a
    /// stored batch may start before the offset asked for, and the client skips those). On a
    /// topic whose reads leave records out (lanes, delays, or the consumer's own selector),
    /// the batches are decoded to name only the records sent.
    pub fn trace_delivery(&self, d: Delivery<'_>, client: &str) {
        let ppm = self.routes.trace_sample_ppm(d.topic);
        if ppm == 0 || d.batches.is_empty() || self.tracer.pending.available_permits() == 0 {
            return;
        }
        let sparse = d.selected
            || self.routes.declared_lanes(d.topic).is_some()
            || self.routes.filters_delays(d.topic);
        if let (Some(group), Some((_, next))) =
            (d.group, d.batches.last().and_then(|b| offsets_of(b)))
        {
            let key = (group.to_owned(), d.topic.to_owned(), d.partition);
            let mut first = self.tracer.first_reads();
            match first.get_mut(&key) {
                // Reading on where it left off: the stretch grows.
                Some(read) if read.next == d.from && read.principal.as_deref() == d.principal => {
                    read.next = next;
                }
                // A seek, a reset, another reader: the stretch starts again here.
                _ => {
                    let read = FirstRead {
                        principal: d.principal.map(str::to_owned),
                        from: d.from,
                        next,
                    };
                    remember(&mut first, key, read);
                }
            }
        }
        let at_ms = self.clock().unix_millis();
        for bytes in d.batches {
            // The headers of batches this proxy read and checked; decoded only when records
            // may have been left out and a traced one is in range.
            let Some((base, next)) = offsets_of(bytes) else {
                continue;
            };
            let mut offsets = sampled_in(d.topic, d.partition, base.max(d.from), next, ppm);
            if sparse && !offsets.is_empty() {
                let sent: Vec<i64> = RecordBatch::parse_sparse(bytes.clone())
                    .and_then(|batch| decode_batch(&batch))
                    .map(|records| records.iter().map(|rec| rec.offset).collect())
                    .unwrap_or_default();
                offsets.retain(|o| sent.binary_search(o).is_ok());
            }
            for offset in offsets {
                let event = TraceEvent::Delivered {
                    at_ms,
                    proxy: self.name.to_string(),
                    client: client.to_owned(),
                    group: d.group.map(str::to_owned),
                };
                self.trace(message_id(d.topic, d.partition, offset), event);
            }
        }
    }

    /// The positions a commit is about to move, on topics that trace: where each stood, as
    /// this proxy remembers it or else as the metadata store has it.
    pub(super) async fn positions_before(
        &self,
        r: &v1::OffsetCommitRequest,
        principal: Option<&str>,
    ) -> Option<HashMap<(String, u32), i64>> {
        let who = committer(r);
        let mut before = HashMap::new();
        let mut unknown = Vec::new();
        {
            let remembered = self.tracer.positions();
            for o in r
                .offsets
                .iter()
                .filter(|o| self.routes.trace_sample_ppm(&o.topic) > 0)
            {
                match remembered.get(&(who.clone(), o.topic.clone(), o.partition)) {
                    // A position behind the one remembered was reset elsewhere meanwhile
                    // (or is being reset now): the store knows where it stood.
                    Some(at) if *at <= o.offset => {
                        before.insert((o.topic.clone(), o.partition), *at);
                    }
                    _ => unknown.push(v1::TopicPartition {
                        topic: o.topic.clone(),
                        partition: o.partition,
                    }),
                }
            }
        }
        if !unknown.is_empty() {
            let stored = self
                .groups
                .fetch_offsets(&v1::OffsetFetchRequest {
                    group: r.group.clone(),
                    partitions: unknown,
                    broadcast_member: r.broadcast_member.clone(),
                })
                .await
                .ok()?;
            let first = self.tracer.first_reads();
            before.extend(stored.into_iter().map(|o| {
                // No position yet: the first commit moved past the stretch its consumer read
                // through this proxy, if it read one up to where it commits. A broadcast
                // member's fetches do not name it, so its first commit records nothing.
                let key = (r.group.clone(), o.topic.clone(), o.partition);
                let at = match first.get(&key) {
                    _ if o.offset >= 0 => o.offset,
                    Some(read)
                        if r.broadcast_member.is_empty()
                            && read.principal.as_deref() == principal
                            && (read.from..=read.next).contains(&committing(r, &o)) =>
                    {
                        read.from
                    }
                    _ => -1,
                };
                ((o.topic, o.partition), at)
            }));
        }
        (!before.is_empty()).then_some(before)
    }

    /// Traces the messages a group's commit moved past: those between where each position
    /// stood (`before`) and where it stands now.
    pub(super) fn trace_group_committed(
        &self,
        r: &v1::OffsetCommitRequest,
        before: HashMap<(String, u32), i64>,
        refused: &[v1::PartitionError],
    ) {
        let at_ms = self.clock().unix_millis();
        let member = if r.broadcast_member.is_empty() {
            r.member_id.clone()
        } else {
            r.broadcast_member.clone()
        };
        for o in &r.offsets {
            let key = (o.topic.clone(), o.partition);
            let committed = refused
                .iter()
                .all(|e| e.error.is_none() || (e.topic.as_str(), e.partition) != (&key.0, key.1));
            let Some(from) = before.get(&key).copied() else {
                continue;
            };
            if !committed {
                continue;
            }
            remember(
                &mut self.tracer.positions(),
                (committer(r), key.0.clone(), key.1),
                o.offset,
            );
            if r.broadcast_member.is_empty() {
                self.tracer
                    .first_reads()
                    .remove(&(r.group.clone(), key.0.clone(), key.1));
            }
            // A group's first position, with no fetch of its consumer seen, says nothing of
            // what it read: a consumer that starts at the end, or seeks, commits past
            // messages it never had.
            if from < 0 || self.tracer.pending.available_permits() == 0 {
                continue;
            }
            let from = from.max(o.offset - MAX_COMMIT_SPAN);
            let ppm = self.routes.trace_sample_ppm(&o.topic);
            for offset in sampled_in(&o.topic, o.partition, from, o.offset, ppm) {
                let event = TraceEvent::GroupCommitted {
                    at_ms,
                    proxy: self.name.to_string(),
                    group: r.group.clone(),
                    member: member.clone(),
                };
                self.trace(message_id(&o.topic, o.partition, offset), event);
            }
        }
    }

    /// The path of one message, for a caller who may read its topic (gRPC and REST alike).
    pub async fn trace_call(
        &self,
        access: &Access,
        r: v1::TraceRequest,
    ) -> Result<v1::TraceResponse, v1::Error> {
        check(access, Operation::Read, ResourceType::Topic, &r.topic).await?;
        self.trace_path(&r).await
    }

    /// The path of one message, from its trace events.
    async fn trace_path(&self, r: &v1::TraceRequest) -> Result<v1::TraceResponse, v1::Error> {
        self.routes
            .route(&r.topic, r.partition)
            .map_err(|(code, message)| error(code, message))?;
        let id = message_id(&r.topic, r.partition, r.offset);
        let ppm = self.routes.trace_sample_ppm(&r.topic);
        let not_traced = || {
            let why = if ppm == 0 {
                format!(
                    "topic `{}` traces no messages now; turn tracing on with `strata topic alter {} --trace-sample 1%`",
                    r.topic, r.topic
                )
            } else if sampled(&r.topic, r.partition, r.offset, ppm) {
                "it is traced at the topic's rate, but its steps were not found: written before tracing was on, past the search's window (`within_ms`), with a timestamp its producer set far from when it was written, or dropped under load (strata_proxy_trace_events_total{outcome=\"dropped\"})".to_owned()
            } else {
                format!(
                    "the topic traces {} of its messages and this one is not among them",
                    rate_named(ppm)
                )
            };
            error(
                ErrorCode::NotFound,
                format!("no trace of message {id}: {why}"),
            )
        };
        let partitions = self
            .routes
            .partitions(TRACE_TOPIC)
            .map_err(|_| not_traced())?;
        let written_ms = self.message_time(r).await?;
        let trace_partition = trace_partition(&id, partitions);
        let within = if r.within_ms > 0 {
            Duration::from_millis(r.within_ms as u64)
        } else {
            DEFAULT_WITHIN
        };
        let until_ms = written_ms.saturating_add(within.as_millis() as i64);
        let from_ms = written_ms.saturating_sub(CLOCK_SLACK_MS).max(0);
        let Some(mut at) = self
            .reader
            .offset_for_timestamp(TRACE_TOPIC, trace_partition, from_ms)
            .await
            .map_err(|e| e.to_wire())?
        else {
            return Err(not_traced());
        };
        let (mut events, mut scanned, mut read) = (Vec::new(), 0, 0);
        let mut truncated = false;
        'scan: loop {
            let result = self
                .reader
                .read(TRACE_TOPIC, trace_partition, at, SCAN_STEP_BYTES)
                .await
                .map_err(|e| e.to_wire())?;
            if result.batches.is_empty() {
                break;
            }
            for batch in &result.batches {
                if batch.base_timestamp() > until_ms {
                    break 'scan;
                }
                read += batch.len() as u64;
                at = batch.next_offset();
                let records = decode_batch(batch).map_err(|e| {
                    error(
                        ErrorCode::CorruptMessage,
                        format!(
                            "trace batch at {TRACE_TOPIC}/{trace_partition}/{}: {e}",
                            batch.base_offset()
                        ),
                    )
                })?;
                scanned += records.len() as u64;
                events.extend(
                    records
                        .iter()
                        .filter(|rec| rec.key.as_deref() == Some(id.as_bytes()))
                        .filter_map(|rec| {
                            serde_json::from_slice::<TraceEvent>(rec.value.as_deref()?).ok()
                        }),
                );
            }
            if read >= MAX_SCAN_BYTES {
                truncated = at < result.high_watermark;
                break;
            }
        }
        if events.is_empty() {
            return Err(not_traced());
        }
        Ok(v1::TraceResponse {
            error: None,
            message_id: id,
            steps: path(&events),
            scanned,
            truncated,
        })
    }

    /// When the message was written, by its batch's timestamp; a typed error for a message
    /// that is not in the log.
    async fn message_time(&self, r: &v1::TraceRequest) -> Result<i64, v1::Error> {
        let result = self
            .reader
            .read(&r.topic, r.partition, r.offset, 1)
            .await
            .map_err(|e| e.to_wire())?;
        result
            .batches
            .iter()
            .find(|b| b.base_offset() <= r.offset && r.offset < b.next_offset())
            .map(RecordBatch::base_timestamp)
            .ok_or_else(|| {
                error(
                    ErrorCode::OffsetOutOfRange,
                    format!(
                        "{}/{} holds offsets {}..{}; {} is not among them",
                        r.topic, r.partition, result.log_start, result.high_watermark, r.offset
                    ),
                )
            })
    }
}

/// A sampling rate for people: `1%`, `0.01%`.
fn rate_named(ppm: u32) -> String {
    format!("{}%", f64::from(ppm) * 100.0 / f64::from(PPM))
}
