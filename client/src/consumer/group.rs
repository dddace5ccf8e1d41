//! Group membership: join, sync, heartbeats and commits (Kafka's eager rebalance protocol,
//! with the assignment computed by the leader member).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use strata_proto::consumer_protocol::{Assignment, PROTOCOL_TYPE, Subscription};
use strata_proto::{ErrorCode, v1};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Assignor, ConsumerConfig};
use crate::connection::Connection;
use crate::error::{Error, Result, check};
use crate::types::TopicPartition;

/// Joins that fail with a retriable answer are tried this many times per poll.
const JOIN_ATTEMPTS: usize = 10;

/// What the heartbeat task tells the consumer.
#[derive(Debug, Default)]
pub(super) struct Signals {
    /// The group is rebalancing (or our generation is stale): rejoin at the next poll.
    pub rejoin: AtomicBool,
    /// The coordinator forgot us (session expired): rejoin as a new member.
    pub forget_member: AtomicBool,
    /// Wakes a waiting poll.
    pub wake: Notify,
}

impl Signals {
    fn raise(&self, forget: bool) {
        if forget {
            self.forget_member.store(true, Ordering::SeqCst);
        }
        self.rejoin.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }
}

#[derive(Debug)]
pub(super) struct Membership {
    pub group: String,
    /// Set for a member of a broadcast group: the name its positions are kept under.
    pub broadcast: Option<String>,
    pub member_id: String,
    /// -1 until the first join completes.
    pub generation: i32,
    pub signals: Arc<Signals>,
    heartbeat: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Membership {
    pub fn new(group: String, broadcast: Option<String>) -> Self {
        Self {
            group,
            broadcast,
            member_id: String::new(),
            generation: -1,
            signals: Arc::default(),
            heartbeat: None,
        }
    }

    pub fn needs_join(&self) -> bool {
        self.generation < 0 || self.signals.rejoin.load(Ordering::SeqCst)
    }

    fn stop_heartbeat(&mut self) {
        if let Some((cancel, task)) = self.heartbeat.take() {
            cancel.cancel();
            task.abort();
        }
    }

    /// Joins (or rejoins) the group and returns this member's assignment.
    pub async fn join(
        &mut self,
        connection: &Connection,
        config: &ConsumerConfig,
        topics: &[String],
    ) -> Result<Vec<TopicPartition>> {
        // The coordinator keeps our session alive while we wait in JoinGroup.
        self.stop_heartbeat();
        if self.signals.forget_member.swap(false, Ordering::SeqCst) {
            self.member_id.clear();
        }
        self.signals.rejoin.store(false, Ordering::SeqCst);
        let mut last = None;
        for _ in 0..JOIN_ATTEMPTS {
            match self.join_once(connection, config, topics).await {
                Ok((assignment, counts)) => {
                    self.start_heartbeat(connection, config, topics, counts);
                    return Ok(assignment);
                }
                Err(e) => {
                    match e.code() {
                        Some(ErrorCode::UnknownMember) => self.member_id.clear(),
                        Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => {}
                        _ if e.is_retriable() => {
                            tokio::time::sleep(config.retry_backoff).await;
                        }
                        _ => return Err(e),
                    }
                    tracing::debug!(group = %self.group, error = %e, "joining again");
                    last = Some(e);
                }
            }
        }
        self.signals.rejoin.store(true, Ordering::SeqCst);
        Err(last.unwrap_or(Error::Closed))
    }

    /// One JoinGroup + SyncGroup round. Returns the assignment and, for the leader, the
    /// partition counts it assigned from (to notice when they change).
    async fn join_once(
        &mut self,
        connection: &Connection,
        config: &ConsumerConfig,
        topics: &[String],
    ) -> Result<(Vec<TopicPartition>, Option<BTreeMap<String, u32>>)> {
        let subscription = Subscription {
            topics: topics.to_vec(),
            generation: self.generation,
            ..Subscription::default()
        }
        .encode();
        let request = v1::JoinGroupRequest {
            group: self.group.clone(),
            member_id: self.member_id.clone(),
            client_id: config.client_id.clone(),
            session_timeout_ms: config.session_timeout.as_millis() as u32,
            rebalance_timeout_ms: config.rebalance_timeout.as_millis() as u32,
            protocol_type: PROTOCOL_TYPE.into(),
            protocols: config
                .assignors
                .iter()
                .map(|a| v1::GroupProtocol {
                    name: a.name().into(),
                    metadata: subscription.clone().into(),
                })
                .collect(),
            lane: config.lane.trim().to_owned(),
        };
        let mut call = tonic::Request::new(request);
        call.set_timeout(config.rebalance_timeout + Duration::from_secs(10));
        let joined = connection
            .grpc()
            .join_group(call)
            .await
            .map_err(|s| connection.call_error(s))?
            .into_inner();
        if !joined.member_id.is_empty() {
            self.member_id = joined.member_id.clone();
        }
        check(joined.error.clone())?;
        self.generation = joined.generation;
        let mut counts = None;
        let assignments = if joined.leader == self.member_id {
            let (assignments, used) = lead(connection, &joined).await?;
            counts = Some(used);
            assignments
        } else {
            Vec::new()
        };
        let mut call = tonic::Request::new(v1::SyncGroupRequest {
            group: self.group.clone(),
            generation: self.generation,
            member_id: self.member_id.clone(),
            assignments,
        });
        call.set_timeout(config.session_timeout + Duration::from_secs(10));
        let synced = connection
            .grpc()
            .sync_group(call)
            .await
            .map_err(|s| connection.call_error(s))?
            .into_inner();
        check(synced.error)?;
        let assignment = if synced.assignment.is_empty() {
            Assignment::default()
        } else {
            Assignment::decode(&synced.assignment).map_err(|e| Error::Server {
                code: ErrorCode::Internal,
                message: format!("the group leader sent an unreadable assignment: {e}"),
            })?
        };
        let mut partitions = Vec::new();
        for (topic, ps) in assignment.partitions {
            for p in ps {
                if let Ok(p) = u32::try_from(p) {
                    partitions.push(TopicPartition::new(topic.clone(), p));
                }
            }
        }
        partitions.sort();
        tracing::info!(group = %self.group, member = %self.member_id, generation = self.generation, partitions = partitions.len(), "joined group");
        Ok((partitions, counts))
    }

    fn start_heartbeat(
        &mut self,
        connection: &Connection,
        config: &ConsumerConfig,
        topics: &[String],
        counts: Option<BTreeMap<String, u32>>,
    ) {
        let cancel = CancellationToken::new();
        let beat = Heartbeat {
            connection: connection.clone(),
            request: v1::HeartbeatRequest {
                group: self.group.clone(),
                generation: self.generation,
                member_id: self.member_id.clone(),
            },
            interval: config.heartbeat_interval,
            metadata_max_age: config.metadata_max_age,
            topics: topics.to_vec(),
            counts,
            signals: self.signals.clone(),
        };
        let token = cancel.clone();
        let task = tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = beat.run() => {}
            }
        });
        self.heartbeat = Some((cancel, task));
    }

    /// Commits offsets as this member (or, before the first join, as a consumer outside group
    /// management).
    pub async fn commit(
        &self,
        connection: &Connection,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        commit_request(connection, self.commit_request(offsets), &self.signals).await
    }

    /// An OffsetCommit of `offsets` as this member.
    pub fn commit_request(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> v1::OffsetCommitRequest {
        let mut request =
            offset_commit_request(&self.group, self.generation, &self.member_id, offsets);
        request.broadcast_member = self.broadcast.clone().unwrap_or_default();
        request
    }

    /// Leaves the group so the others rebalance at once instead of after our session times out.
    pub async fn leave(&mut self, connection: &Connection) -> Result<()> {
        self.stop_heartbeat();
        if self.member_id.is_empty() {
            return Ok(());
        }
        let answer = connection
            .grpc()
            .leave_group(v1::LeaveGroupRequest {
                group: self.group.clone(),
                member_id: std::mem::take(&mut self.member_id),
            })
            .await
            .map_err(|s| connection.call_error(s))?
            .into_inner();
        self.generation = -1;
        match check(answer.error) {
            Err(e) if e.code() == Some(ErrorCode::UnknownMember) => Ok(()),
            other => other,
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// Attempts of a commit whose proxy could not be reached: the connection moves to another
/// proxy on the first failure, so the second attempt normally lands.
const COMMIT_ATTEMPTS: u32 = 3;
const COMMIT_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Sends an OffsetCommit; a stale membership raises the rejoin signal. A commit is the same
/// write however often it is sent, so one that never reached a proxy (stopped, killed) is
/// sent again rather than failed to the caller.
pub(super) async fn commit_request(
    connection: &Connection,
    request: v1::OffsetCommitRequest,
    signals: &Signals,
) -> Result<()> {
    let mut attempt = 1;
    let answer = loop {
        match connection.grpc().offset_commit(request.clone()).await {
            Ok(answer) => break answer.into_inner(),
            Err(status) => {
                let e = connection.call_error(status);
                let unreachable = matches!(e, Error::Connect { .. } | Error::Transport(_));
                if !(unreachable && e.is_retriable()) || attempt == COMMIT_ATTEMPTS {
                    return Err(e);
                }
                tracing::debug!(group = %request.group, error = %e, "commit did not reach a proxy; sending it again");
                attempt += 1;
                tokio::time::sleep(COMMIT_RETRY_PAUSE).await;
            }
        }
    };
    if let Err(e) = check(answer.error) {
        match e.code() {
            Some(ErrorCode::UnknownMember) => signals.raise(true),
            Some(ErrorCode::IllegalGeneration | ErrorCode::RebalanceInProgress) => {
                signals.raise(false)
            }
            _ => {}
        }
        return Err(e);
    }
    partition_errors(answer.partitions)
}

/// An OffsetCommit of `offsets` as `member_id` in `generation` (-1 and no member: from outside
/// the group).
pub(crate) fn offset_commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> v1::OffsetCommitRequest {
    v1::OffsetCommitRequest {
        broadcast_member: String::new(),
        group: group.to_owned(),
        generation,
        member_id: member_id.to_owned(),
        offsets: offsets
            .iter()
            .map(|(tp, offset)| v1::PartitionOffset {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: *offset,
                metadata: String::new(),
            })
            .collect(),
    }
}

/// The first partition an OffsetCommit refused, as an error naming it.
pub(crate) fn partition_errors(partitions: Vec<v1::PartitionError>) -> Result<()> {
    for p in partitions {
        if let Some(e) = p.error {
            return Err(match Error::from_wire(&e) {
                Error::Server { code, message } => Error::Server {
                    code,
                    message: format!("{}/{}: {message}", p.topic, p.partition),
                },
                other => other,
            });
        }
    }
    Ok(())
}

/// The leader's part of a rebalance: read every member's subscription, look up partition
/// counts, run the chosen assignor.
async fn lead(
    connection: &Connection,
    joined: &v1::JoinGroupResponse,
) -> Result<(Vec<v1::MemberAssignment>, BTreeMap<String, u32>)> {
    let assignor = Assignor::from_name(&joined.protocol).ok_or_else(|| Error::Server {
        code: ErrorCode::InvalidArgument,
        message: format!(
            "the group chose assignor `{}`, which this client does not know",
            joined.protocol
        ),
    })?;
    let mut members = BTreeMap::new();
    for m in &joined.members {
        let subscription = Subscription::decode(&m.metadata).map_err(|e| Error::Server {
            code: ErrorCode::InvalidArgument,
            message: format!(
                "member `{}` sent an unreadable subscription: {e}",
                m.member_id
            ),
        })?;
        members.insert(m.member_id.clone(), subscription.topics);
    }
    let wanted: BTreeSet<String> = members.values().flatten().cloned().collect();
    let counts = partition_counts(connection, wanted.into_iter().collect()).await?;
    let plan = assignor.assign(&counts, &members);
    tracing::info!(group_leader = %joined.member_id, assignor = assignor.name(), members = members.len(), "assigning partitions");
    Ok((
        plan.into_iter()
            .map(|(member_id, partitions)| v1::MemberAssignment {
                member_id,
                assignment: Assignment {
                    partitions,
                    user_data: None,
                }
                .encode()
                .into(),
            })
            .collect(),
        counts,
    ))
}

/// Partition counts of the topics that exist among `topics`.
pub(super) async fn partition_counts(
    connection: &Connection,
    topics: Vec<String>,
) -> Result<BTreeMap<String, u32>> {
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let answer = connection
        .grpc()
        .metadata(v1::MetadataRequest { topics })
        .await
        .map_err(|s| connection.call_error(s))?
        .into_inner();
    Ok(answer
        .topics
        .into_iter()
        .filter(|t| t.error.is_none())
        .map(|t| (t.name, t.partitions.len() as u32))
        .collect())
}

struct Heartbeat {
    connection: Connection,
    request: v1::HeartbeatRequest,
    interval: Duration,
    metadata_max_age: Duration,
    topics: Vec<String>,
    /// Set on the leader: the partition counts it assigned from.
    counts: Option<BTreeMap<String, u32>>,
    signals: Arc<Signals>,
}

impl Heartbeat {
    async fn run(self) {
        let mut checked = Instant::now();
        loop {
            tokio::time::sleep(self.interval).await;
            let answer = self
                .connection
                .grpc()
                .heartbeat(self.request.clone())
                .await
                .map_err(|s| self.connection.call_error(s))
                .and_then(|a| check(a.into_inner().error));
            match answer {
                Ok(()) => {}
                Err(e) => match e.code() {
                    Some(ErrorCode::UnknownMember) => {
                        self.signals.raise(true);
                        return;
                    }
                    Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => {
                        self.signals.raise(false);
                        return;
                    }
                    _ => {
                        tracing::warn!(group = %self.request.group, error = %e, "heartbeat failed")
                    }
                },
            }
            // The leader notices partitions added to a subscribed topic and rebalances.
            if let Some(counts) = &self.counts
                && checked.elapsed() >= self.metadata_max_age
            {
                checked = Instant::now();
                if let Ok(now) = partition_counts(&self.connection, self.topics.clone()).await
                    && &now != counts
                {
                    tracing::info!(group = %self.request.group, "partition counts changed; rebalancing");
                    self.signals.raise(false);
                    return;
                }
            }
        }
    }
}
