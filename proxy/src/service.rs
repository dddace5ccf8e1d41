//! The gRPC `strata.v1.Strata` service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use strata_catalog::admin::lanes_named;
use strata_format::RecordBatch;
use strata_format::lanes::LaneFilter;
use strata_format::select::{Filtered, Selector, filter_batch};

use crate::metrics::{LaneLabel, MAIN_LANE};
use strata_log::LogReader;
use strata_proto::v1::{self, strata_server};
use strata_proto::{Coded, ErrorCode};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use strata_catalog::acls::{Authorizer, Operation, ResourceType};

use self::access::{TopicDecisions, check, group_check, visible_groups};
use crate::ProxyError;
use crate::checkpoints::CheckpointWatch;
use crate::groups::GroupCoordinator;
use crate::metrics::ProxyMetrics;
use crate::routes::Routes;

mod access;
mod admin;
mod dead_letters;
mod produce;
mod retry;
mod trace;
mod writer;

pub use trace::{Delivery, DeliveryTracedByCaller, kafka_client};

/// How long a produce keeps retrying a partition that has no reachable owner. Below the SDK's
/// default request timeout (30 s), so the client hears the outcome before it gives up and
/// resends; a shorter deadline the client sets itself (`grpc-timeout`) wins.
const PRODUCE_DEADLINE: Duration = Duration::from_secs(20);
/// Longest accepted long-poll wait.
const MAX_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_FETCH_BYTES: u64 = 1 << 20;

/// Serves clients: produce routing, reads from storage, metadata.
#[derive(Debug, Clone)]
pub struct ProxyService {
    routes: Arc<Routes>,
    checkpoints: Arc<CheckpointWatch>,
    reader: LogReader,
    groups: GroupCoordinator,
    admin: strata_catalog::Admin,
    metrics: Arc<ProxyMetrics>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// How brokers are dialled: over TLS with the cluster's trust, or plaintext.
    broker_tls: Option<strata_tls::ClientTls>,
    /// The rules for gRPC callers (Kafka requests bring their listener's own).
    authorizer: Arc<Authorizer>,
    /// Batches nacks decoded lately ([`retry`]).
    nacked_batches: Arc<retry::DecodedBatches>,
    /// The proxy's own writers ([`writer`]).
    writers: Arc<writer::Writers>,
    /// How this proxy is named in message traces.
    name: Arc<str>,
    tracer: trace::Tracer,
}

fn error(code: ErrorCode, message: impl Into<String>) -> v1::Error {
    v1::Error::new(code, message)
}

fn retriable(e: &v1::Error) -> bool {
    e.error_code().is_some_and(ErrorCode::is_retriable)
}

impl ProxyService {
    pub fn new(
        routes: Arc<Routes>,
        checkpoints: Arc<CheckpointWatch>,
        reader: LogReader,
        groups: GroupCoordinator,
        admin: strata_catalog::Admin,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        // Until told otherwise, no rules are enforced: as with authentication off.
        let authorizer = Arc::new(Authorizer::new(
            admin.clone(),
            false,
            Vec::new(),
            groups.clock().clone(),
        ));
        Self {
            routes,
            checkpoints,
            reader,
            groups,
            admin,
            metrics,
            channels: Arc::default(),
            broker_tls: None,
            authorizer,
            nacked_batches: Arc::default(),
            writers: Arc::default(),
            name: Arc::from("proxy"),
            tracer: trace::Tracer::default(),
        }
    }

    /// Names this proxy in message traces (its advertised address, say).
    pub fn with_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Judges gRPC callers by `authorizer` (enforced when `[security] authenticate` is on).
    pub fn with_authorizer(mut self, authorizer: Arc<Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// Dials brokers over TLS with `tls` (the process's own pair, the cluster's CA).
    pub fn with_broker_tls(mut self, tls: Option<strata_tls::ClientTls>) -> Self {
        self.broker_tls = tls;
        self
    }

    /// The routing table the service follows (topics, partition counts, owners).
    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// The catalog this service administers topics through, for the Kafka listener's admin
    /// APIs that have no gRPC call (topic settings, validate-only checks).
    pub fn admin(&self) -> &strata_catalog::Admin {
        &self.admin
    }

    /// The group coordinator behind the group calls, for callers that need an operation the
    /// gRPC service does not offer (Kafka's DeleteGroups).
    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    /// The process's clock, as injected into the group coordinator.
    /// The rights of `principal` under this proxy's rules (for callers that come through
    /// another door than gRPC, such as the REST routes).
    pub fn access_for(&self, principal: Option<String>) -> strata_catalog::acls::Access {
        strata_catalog::acls::Access::new(principal, self.authorizer.clone())
    }

    pub fn clock(&self) -> &Arc<dyn strata_clock::Clock> {
        self.groups.clock()
    }

    pub fn into_server(self) -> strata_server::StrataServer<Self> {
        strata_server::StrataServer::new(self).max_decoding_message_size(64 << 20)
    }

    async fn fetch_once(
        &self,
        r: &v1::FetchRequest,
        filter: &Selector,
    ) -> Result<v1::FetchResponse, v1::Error> {
        let max_bytes = if r.max_bytes == 0 {
            DEFAULT_FETCH_BYTES
        } else {
            u64::from(r.max_bytes)
        };
        let result = self
            .reader
            .read(&r.topic, r.partition, r.offset, max_bytes)
            .await
            .map_err(|e| e.to_wire())?;
        let next_offset = result
            .batches
            .last()
            .map_or(r.offset, RecordBatch::next_offset)
            .max(r.offset);
        let batches = if filter.is_all() {
            result.batches.iter().map(RecordBatch::to_bytes).collect()
        } else {
            self.filter(&r.topic, &result.batches, filter)?
        };
        Ok(v1::FetchResponse {
            batches,
            high_watermark: result.high_watermark,
            log_start: result.log_start,
            error: None,
            next_offset,
        })
    }

    /// The records of `batches` that `filter` takes, as batches at their own offsets.
    fn filter(
        &self,
        topic: &str,
        batches: &[RecordBatch],
        filter: &Selector,
    ) -> Result<Vec<Bytes>, v1::Error> {
        let mut out = Vec::with_capacity(batches.len());
        let mut delivered = 0;
        for batch in batches {
            let kept = match filter_batch(batch, filter) {
                Ok(Filtered::Whole(b) | Filtered::Part(b)) => Some(b),
                Ok(Filtered::Nothing) => None,
                Err(e) => {
                    return Err(error(
                        ErrorCode::CorruptMessage,
                        format!(
                            "the stored batch at offset {} cannot be filtered: {e}",
                            batch.base_offset()
                        ),
                    ));
                }
            };
            let (sent_bytes, sent_records) = kept
                .as_ref()
                .map_or((0, 0), |b| (b.len() as u64, b.record_count() as u64));
            self.metrics
                .filtered_records
                .inc_by((batch.record_count() as u64).saturating_sub(sent_records));
            self.metrics
                .filtered_bytes
                .inc_by((batch.len() as u64).saturating_sub(sent_bytes));
            delivered += sent_records;
            out.extend(kept.map(|b| b.to_bytes()));
        }
        if let Some(lanes) = &filter.lanes {
            self.metrics
                .lane_records
                .get_or_create(&LaneLabel {
                    topic: topic.to_owned(),
                    lane: lanes.lane().unwrap_or(MAIN_LANE).to_owned(),
                    direction: "delivered",
                })
                .inc_by(delivered);
        }
        Ok(out)
    }

    /// The consumer's selector on this topic's lanes and delays: delayed originals are left
    /// out on topics that accept delays; main-lane consumers of a topic with lanes take only
    /// main-lane records, and a lane must be one the topic declares.
    fn on_topic(&self, r: &v1::FetchRequest, selector: Selector) -> Result<Selector, v1::Error> {
        let selector = if self.routes.filters_delays(&r.topic) {
            selector.hiding_delayed()
        } else {
            selector
        };
        let lanes = self.routes.declared_lanes(&r.topic);
        let lane = r.lane.trim();
        if lane.is_empty() {
            return Ok(if lanes.is_none() {
                selector
            } else {
                selector.on_lanes(LaneFilter::Main)
            });
        }
        let lanes = lanes.unwrap_or_else(|| Arc::from([]));
        if !lanes.iter().any(|l| l == lane) {
            let asked = format!("lane `{lane}` was asked for");
            return Err(unknown_lane(&asked, &r.topic, lane, &lanes));
        }
        Ok(selector.on_lanes(LaneFilter::Lane {
            name: lane.to_owned(),
            with_main: r.lane_with_main,
        }))
    }

    /// A fetch that waits for the partition's next commit when nothing is there yet.
    async fn long_poll(&self, r: v1::FetchRequest, filter: Selector) -> v1::FetchResponse {
        self.routes.refresh_if_unknown(&r.topic).await;
        if let Err((code, message)) = self.routes.route(&r.topic, r.partition) {
            return failed_fetch(error(code, message));
        }
        let deadline =
            Instant::now() + Duration::from_millis(u64::from(r.max_wait_ms)).min(MAX_WAIT);
        let notifier = self.checkpoints.notifier(&r.topic, r.partition);
        loop {
            let notified = notifier.notified();
            // The topic's lanes and delays as they are now, at every pass: a lane declared
            // during a long poll must be left out of a main-lane consumer's next read.
            let answer = match self.on_topic(&r, filter.clone()) {
                Ok(selector) => {
                    let answer = self.fetch_once(&r, &selector).await;
                    if let (Some(lanes), Ok(a)) = (&selector.lanes, &answer) {
                        let lane = lanes.lane().unwrap_or(MAIN_LANE);
                        let lag = a.high_watermark - a.next_offset;
                        self.metrics.lane_lag(&r.topic, lane, r.partition, lag);
                    }
                    answer
                }
                Err(e) => Err(e),
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => return failed_fetch(e),
            };
            let now = Instant::now();
            // Records read and all filtered out are progress too: the consumer moves past them.
            if !answer.batches.is_empty() || answer.next_offset > r.offset || now >= deadline {
                return answer;
            }
            // Woken by the partition's next commit; the bound guards against a missed wake-up.
            let _ =
                tokio::time::timeout((deadline - now).min(Duration::from_millis(500)), notified)
                    .await;
        }
    }
}

/// The refusal of a lane topic `topic` does not declare: `what` happened, and how to declare
/// the lane.
pub(crate) fn unknown_lane(what: &str, topic: &str, lane: &str, declared: &[String]) -> v1::Error {
    let has = if declared.is_empty() {
        "it declares no lanes".to_owned()
    } else {
        format!("it has {}", lanes_named(declared))
    };
    error(
        ErrorCode::InvalidArgument,
        format!(
            "{what}, but topic `{topic}` does not declare it ({has}); declare it with `strata topic alter {topic} --add-lane {lane}`, or leave the lane out for the main lane"
        ),
    )
}

/// Answers that carry a Strata error, so the metrics can count failures of every call alike.
trait WithError: Default {
    fn error(&self) -> Option<&v1::Error>;
    fn set_error(&mut self, error: v1::Error);
}

macro_rules! with_error {
    ($($t:ty),*) => {$(impl WithError for $t {
        fn error(&self) -> Option<&v1::Error> {
            self.error.as_ref()
        }
        fn set_error(&mut self, error: v1::Error) {
            self.error = Some(error);
        }
    })*};
}

with_error!(
    v1::ListOffsetsResponse,
    v1::CreateTopicResponse,
    v1::DeleteTopicResponse,
    v1::CreatePartitionsResponse,
    v1::JoinGroupResponse,
    v1::SyncGroupResponse,
    v1::HeartbeatResponse,
    v1::LeaveGroupResponse,
    v1::OffsetCommitResponse,
    v1::OffsetFetchResponse,
    v1::ListGroupsResponse,
    v1::DescribeGroupResponse,
    v1::DeleteGroupResponse,
    v1::PrepareRetriesResponse,
    v1::NackResponse,
    v1::ListDeadLettersResponse,
    v1::ReplayDeadLettersResponse,
    v1::TraceResponse
);

impl ProxyService {
    /// Answers with `result`, or with an otherwise empty answer carrying its error.
    fn answer_result<T: WithError>(
        &self,
        rpc: &'static str,
        result: crate::error::Result<T>,
    ) -> Result<Response<T>, Status> {
        let answer = result.unwrap_or_else(|e| {
            let mut failed = T::default();
            failed.set_error(e.to_wire());
            failed
        });
        self.answer(rpc, answer)
    }

    /// Counts the call and wraps the answer.
    fn answer<T: WithError>(&self, rpc: &'static str, answer: T) -> Result<Response<T>, Status> {
        self.metrics.record(rpc, answer.error());
        Ok(Response::new(answer))
    }
}

/// The deadline a gRPC client sent (`grpc-timeout`: digits and a unit of H, M, S, m, u, n).
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Who made a call, as message traces name them: the principal, else the peer's address.
fn client_of<T>(request: &Request<T>, access: &strata_catalog::acls::Access) -> String {
    // Only the Kafka listener's in-process calls arrive with their access decided.
    let kafka = request
        .extensions()
        .get::<strata_catalog::acls::Access>()
        .is_some();
    let peer = request
        .extensions()
        .get::<strata_tls::Peer>()
        .map(|p| p.addr)
        .or_else(|| request.remote_addr());
    match (access.principal(), peer) {
        _ if kafka => trace::kafka_client(access.principal()),
        (Some(p), _) => p.to_owned(),
        (None, Some(addr)) => addr.to_string(),
        (None, None) => "an anonymous client".to_owned(),
    }
}

fn failed_fetch(e: v1::Error) -> v1::FetchResponse {
    v1::FetchResponse {
        batches: Vec::new(),
        high_watermark: -1,
        log_start: -1,
        error: Some(e),
        next_offset: 0,
    }
}

#[tonic::async_trait]
impl strata_server::Strata for ProxyService {
    async fn produce(
        &self,
        request: Request<v1::ProduceRequest>,
    ) -> Result<Response<v1::ProduceResponse>, Status> {
        // Answer a little before the client's own deadline, so it hears what happened.
        let budget = grpc_timeout(request.metadata())
            .map_or(PRODUCE_DEADLINE, |t| t.mul_f64(0.9).min(PRODUCE_DEADLINE));
        let received = (Instant::now(), self.clock().unix_millis());
        let deadline = received.0 + budget;
        let access = self.access(&request);
        let client = client_of(&request, &access);
        let request = request.into_inner();
        if v1::Ack::try_from(request.ack).is_err() {
            return Err(strata_proto::status(
                ErrorCode::InvalidArgument,
                format!("unknown ack mode {}", request.ack),
            ));
        }
        self.metrics.produced_bytes.inc_by(
            request
                .partitions
                .iter()
                .flat_map(|p| &p.batches)
                .map(|b| b.len() as u64)
                .sum(),
        );
        let traced = self.traced_produce(&request.partitions);
        let partitions = self
            .forward_permitted(&access, request.ack, request.partitions, deadline)
            .await;
        if !traced.is_empty() {
            self.trace_produced(traced, &partitions, received, &client);
        }
        let first_error = partitions
            .iter()
            .flat_map(|p| &p.batches)
            .find_map(|b| b.error.as_ref());
        self.metrics.record("Produce", first_error);
        Ok(Response::new(v1::ProduceResponse { partitions }))
    }

    async fn fetch(
        &self,
        request: Request<v1::FetchRequest>,
    ) -> Result<Response<v1::FetchResponse>, Status> {
        let access = self.access(&request);
        let client = client_of(&request, &access);
        let traced_by_caller = request
            .extensions()
            .get::<trace::DeliveryTracedByCaller>()
            .is_some();
        let request = request.into_inner();
        let filter = Selector::parse(&request.tags, &request.filter).map_err(|e| e.to_wire());
        let allowed = check(
            &access,
            Operation::Read,
            ResourceType::Topic,
            &request.topic,
        )
        .await;
        let answer = match allowed.and(filter) {
            Ok(filter) => self.long_poll(request.clone(), filter).await,
            Err(e) => failed_fetch(e),
        };
        if !traced_by_caller {
            let delivery = trace::Delivery {
                topic: &request.topic,
                partition: request.partition,
                from: request.offset,
                batches: &answer.batches,
                group: (!request.group.is_empty()).then_some(request.group.as_str()),
                principal: access.principal(),
                selected: !request.tags.is_empty() || !request.filter.is_empty(),
            };
            self.trace_delivery(delivery, &client);
        }
        self.metrics.record("Fetch", answer.error.as_ref());
        self.metrics
            .fetched_bytes
            .inc_by(answer.batches.iter().map(|b| b.len() as u64).sum());
        Ok(Response::new(answer))
    }

    async fn metadata(
        &self,
        request: Request<v1::MetadataRequest>,
    ) -> Result<Response<v1::MetadataResponse>, Status> {
        let access = self.access(&request);
        let wanted = request.into_inner().topics;
        for topic in &wanted {
            self.routes.refresh_if_unknown(topic).await;
        }
        let listing = wanted.is_empty();
        let names: Vec<String> = if listing {
            self.routes.topics().into_iter().map(|(t, _)| t).collect()
        } else {
            wanted
        };
        let mut decisions = TopicDecisions::new(&access, Operation::Describe);
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            match decisions.refusal(&name).await {
                None => topics.push(self.topic_metadata(name)),
                // A listing leaves out what the caller may not see; a named topic is refused
                // whether or not it exists, so refusals do not tell which topics exist.
                Some(_) if listing => {}
                Some(refusal) => topics.push(v1::TopicMetadata {
                    name,
                    partitions: Vec::new(),
                    error: Some(refusal),
                    ..Default::default()
                }),
            }
        }
        Ok(Response::new(v1::MetadataResponse { topics }))
    }

    async fn list_offsets(
        &self,
        request: Request<v1::ListOffsetsRequest>,
    ) -> Result<Response<v1::ListOffsetsResponse>, Status> {
        let access = self.access(&request);
        let r = request.into_inner();
        let fail = |e: v1::Error| {
            self.answer(
                "ListOffsets",
                v1::ListOffsetsResponse {
                    offset: -1,
                    error: Some(e),
                },
            )
        };
        if let Err(e) = check(&access, Operation::Describe, ResourceType::Topic, &r.topic).await {
            return fail(e);
        }
        if let Err((code, message)) = self.routes.route(&r.topic, r.partition) {
            return fail(error(code, message));
        }
        let offset = match r.timestamp {
            -2 => self.reader.log_start(&r.topic, r.partition).await.map(Some),
            -1 => self
                .reader
                .high_watermark(&r.topic, r.partition)
                .await
                .map(Some),
            ts if ts >= 0 => {
                self.reader
                    .offset_for_timestamp(&r.topic, r.partition, ts)
                    .await
            }
            other => {
                return fail(error(
                    ErrorCode::InvalidArgument,
                    format!("timestamp {other}: use -2 (earliest), -1 (latest) or milliseconds"),
                ));
            }
        };
        match offset {
            Ok(offset) => self.answer(
                "ListOffsets",
                v1::ListOffsetsResponse {
                    offset: offset.unwrap_or(-1),
                    error: None,
                },
            ),
            Err(e) => fail(e.to_wire()),
        }
    }
    async fn create_topic(
        &self,
        request: Request<v1::CreateTopicRequest>,
    ) -> Result<Response<v1::CreateTopicResponse>, Status> {
        let access = self.access(&request);
        self.answer(
            "CreateTopic",
            self.create_topic_call(&access, request.into_inner()).await,
        )
    }

    async fn delete_topic(
        &self,
        request: Request<v1::DeleteTopicRequest>,
    ) -> Result<Response<v1::DeleteTopicResponse>, Status> {
        let access = self.access(&request);
        self.answer(
            "DeleteTopic",
            self.delete_topic_call(&access, request.into_inner()).await,
        )
    }

    async fn create_partitions(
        &self,
        request: Request<v1::CreatePartitionsRequest>,
    ) -> Result<Response<v1::CreatePartitionsResponse>, Status> {
        let access = self.access(&request);
        self.answer(
            "CreatePartitions",
            self.create_partitions_call(&access, request.into_inner())
                .await,
        )
    }

    async fn join_group(
        &self,
        request: Request<v1::JoinGroupRequest>,
    ) -> Result<Response<v1::JoinGroupResponse>, Status> {
        let host = request
            .extensions()
            .get::<strata_tls::Peer>()
            .map(|p| p.addr)
            .or_else(|| request.remote_addr())
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let access = self.access(&request);
        let r = request.into_inner();
        let joined = match check(&access, Operation::Read, ResourceType::Group, &r.group).await {
            Ok(()) => self.groups.join(&r, &host).await.map_err(|e| e.to_wire()),
            Err(e) => Err(e),
        };
        self.answer(
            "JoinGroup",
            match joined {
                Ok(answer) => answer,
                Err(e) => v1::JoinGroupResponse {
                    error: Some(e),
                    member_id: r.member_id,
                    ..Default::default()
                },
            },
        )
    }

    async fn sync_group(
        &self,
        request: Request<v1::SyncGroupRequest>,
    ) -> Result<Response<v1::SyncGroupResponse>, Status> {
        let access = self.access(&request);
        let r = request.into_inner();
        let result = match group_check(&access, Operation::Read, &r.group).await {
            Ok(()) => self.groups.sync(&r).await,
            Err(e) => Err(e),
        };
        self.answer_result("SyncGroup", result)
    }

    async fn heartbeat(
        &self,
        request: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::HeartbeatResponse>, Status> {
        let access = self.access(&request);
        let r = request.into_inner();
        let result = match group_check(&access, Operation::Read, &r.group).await {
            Ok(()) => self.groups.heartbeat(&r).await,
            Err(e) => Err(e),
        };
        self.answer_result("Heartbeat", result.map(|()| Default::default()))
    }

    async fn leave_group(
        &self,
        request: Request<v1::LeaveGroupRequest>,
    ) -> Result<Response<v1::LeaveGroupResponse>, Status> {
        let access = self.access(&request);
        let r = request.into_inner();
        let result = match group_check(&access, Operation::Read, &r.group).await {
            Ok(()) => self.groups.leave(&r).await,
            Err(e) => Err(e),
        };
        self.answer_result("LeaveGroup", result.map(|()| Default::default()))
    }

    async fn offset_commit(
        &self,
        request: Request<v1::OffsetCommitRequest>,
    ) -> Result<Response<v1::OffsetCommitResponse>, Status> {
        let access = self.access(&request);
        let r = request.into_inner();
        let result = match self.commit_check(&access, &r).await {
            Ok(()) => {
                let before = self.positions_before(&r, access.principal()).await;
                let result = self.groups.commit(&r).await;
                if let (Some(before), Ok(refused)) = (before, &result) {
                    self.trace_group_committed(&r, before, refused);
                }
                result
            }
            Err(e) => Err(e),
        };
        self.answer_result(
            "OffsetCommit",
            result.map(|partitions| v1::OffsetCommitResponse {
                error: None,
                partitions,
            }),
        )
    }

    async fn offset_fetch(
        &self,
        request: Request<v1::OffsetFetchRequest>,
    ) -> Result<Response<v1::OffsetFetchResponse>, Status> {
        let access = self.access(&request);
        let r = request.into_inner();
        let result = match group_check(&access, Operation::Describe, &r.group).await {
            Ok(()) => self.groups.fetch_offsets(&r).await,
            Err(e) => Err(e),
        };
        self.answer_result(
            "OffsetFetch",
            result.map(|offsets| v1::OffsetFetchResponse {
                error: None,
                offsets,
            }),
        )
    }

    async fn list_groups(
        &self,
        request: Request<v1::ListGroupsRequest>,
    ) -> Result<Response<v1::ListGroupsResponse>, Status> {
        let access = self.access(&request);
        let result = match self.groups.list().await {
            Ok(groups) => visible_groups(&access, groups).await,
            Err(e) => Err(e),
        };
        self.answer_result(
            "ListGroups",
            result.map(|groups| v1::ListGroupsResponse {
                error: None,
                groups,
            }),
        )
    }

    async fn describe_group(
        &self,
        request: Request<v1::DescribeGroupRequest>,
    ) -> Result<Response<v1::DescribeGroupResponse>, Status> {
        let access = self.access(&request);
        let group = request.into_inner().group;
        let result = match group_check(&access, Operation::Describe, &group).await {
            Ok(()) => self.groups.describe(&group).await,
            Err(e) => Err(e),
        };
        self.answer_result("DescribeGroup", result)
    }

    async fn delete_group(
        &self,
        request: Request<v1::DeleteGroupRequest>,
    ) -> Result<Response<v1::DeleteGroupResponse>, Status> {
        let access = self.access(&request);
        let group = request.into_inner().group;
        let result = match group_check(&access, Operation::Delete, &group).await {
            Ok(()) => self
                .groups
                .delete(&group)
                .await
                .map(|()| v1::DeleteGroupResponse::default())
                .map_err(ProxyError::from),
            Err(e) => Err(e),
        };
        self.answer_result("DeleteGroup", result)
    }

    async fn prepare_retries(
        &self,
        request: Request<v1::PrepareRetriesRequest>,
    ) -> Result<Response<v1::PrepareRetriesResponse>, Status> {
        let access = self.access(&request);
        let group = request.into_inner().group;
        let answer = self
            .prepare_retries_call(&access, &group)
            .await
            .unwrap_or_else(|e| v1::PrepareRetriesResponse {
                error: Some(e),
                ..Default::default()
            });
        self.answer("PrepareRetries", answer)
    }

    async fn nack(
        &self,
        request: Request<v1::NackRequest>,
    ) -> Result<Response<v1::NackResponse>, Status> {
        let access = self.access(&request);
        let answer = self
            .nack_call(&access, request.into_inner())
            .await
            .unwrap_or_else(|e| v1::NackResponse {
                error: Some(e),
                ..Default::default()
            });
        self.answer("Nack", answer)
    }

    async fn trace(
        &self,
        request: Request<v1::TraceRequest>,
    ) -> Result<Response<v1::TraceResponse>, Status> {
        let access = self.access(&request);
        let answer = self
            .trace_call(&access, request.into_inner())
            .await
            .unwrap_or_else(|e| v1::TraceResponse {
                error: Some(e),
                ..Default::default()
            });
        self.answer("Trace", answer)
    }

    async fn list_dead_letters(
        &self,
        request: Request<v1::ListDeadLettersRequest>,
    ) -> Result<Response<v1::ListDeadLettersResponse>, Status> {
        let access = self.access(&request);
        let answer = self
            .list_dead_letters_call(&access, request.into_inner())
            .await
            .unwrap_or_else(|e| v1::ListDeadLettersResponse {
                error: Some(e),
                ..Default::default()
            });
        self.answer("ListDeadLetters", answer)
    }

    async fn replay_dead_letters(
        &self,
        request: Request<v1::ReplayDeadLettersRequest>,
    ) -> Result<Response<v1::ReplayDeadLettersResponse>, Status> {
        let access = self.access(&request);
        let answer = self
            .replay_dead_letters_call(&access, request.into_inner())
            .await
            .unwrap_or_else(|e| v1::ReplayDeadLettersResponse {
                error: Some(e),
                ..Default::default()
            });
        self.answer("ReplayDeadLetters", answer)
    }
}
