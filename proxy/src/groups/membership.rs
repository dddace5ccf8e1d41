//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: the rebalance protocol.

use std::time::Duration;

use tokio::time::Instant;

use strata_meta::schema::{GroupMember, GroupPhase, GroupProtocol, GroupState};
use strata_meta::{MetaError, TxnOp};
use strata_proto::{ErrorCode, v1};

use super::{
    GroupCoordinator, Loaded, MAX_REBALANCE_MS, MAX_SESSION_MS, MIN_SESSION_MS, complete_rebalance,
    illegal_generation, member_at, rebalancing, remove_members, start_rebalance, unknown_member,
    validate_group,
};
use crate::error::{ProxyError, Result};

/// How often a waiting call re-checks the group even without a change (to evict members
/// whose session ended, and to notice the rebalance deadline).
const RECHECK: Duration = Duration::from_millis(500);

/// What a join asks for, validated.
struct Joining<'r> {
    request: &'r v1::JoinGroupRequest,
    member_id: String,
    /// Set for a new member: the lease its liveness key goes on.
    new_lease: Option<i64>,
    protocols: Vec<GroupProtocol>,
    session_timeout_ms: u32,
    rebalance_timeout_ms: u32,
    client_host: String,
}

fn join_response(state: &GroupState, member_id: &str) -> v1::JoinGroupResponse {
    let members = if state.leader == member_id {
        state
            .members
            .iter()
            .map(|(id, m)| v1::JoinGroupMember {
                member_id: id.clone(),
                metadata: m
                    .protocols
                    .iter()
                    .find(|p| p.name == state.protocol)
                    .map(|p| p.metadata.clone().into())
                    .unwrap_or_default(),
            })
            .collect()
    } else {
        Vec::new()
    };
    v1::JoinGroupResponse {
        error: None,
        generation: state.generation,
        protocol: state.protocol.clone(),
        leader: state.leader.clone(),
        member_id: member_id.to_owned(),
        members,
    }
}

impl GroupCoordinator {
    /// Kafka's JoinGroup: registers the member (a new one gets an id), starts a rebalance when
    /// one is needed, and waits until every member has rejoined or the rebalance deadline
    /// passes. The leader's answer lists every member's metadata.
    pub async fn join(
        &self,
        request: &v1::JoinGroupRequest,
        client_host: &str,
    ) -> Result<v1::JoinGroupResponse> {
        validate_group(&request.group)?;
        let invalid = |m: String| ProxyError::refused(ErrorCode::InvalidArgument, m);
        if request.protocol_type.is_empty() {
            return Err(invalid(
                "protocol_type is empty; Kafka-style consumers use \"consumer\"".into(),
            ));
        }
        if request.protocols.is_empty() {
            return Err(invalid(
                "no protocols (assignors) given; a member must offer at least one".into(),
            ));
        }
        let lane = request.lane.trim();
        if !lane.is_empty() {
            strata_format::lanes::check_lane(lane).map_err(|e| invalid(e.to_string()))?;
        }
        if self.is_broadcasting(&request.group).await? {
            return Err(super::broadcast_mode(&request.group));
        }
        let session = request.session_timeout_ms;
        if !(MIN_SESSION_MS..=MAX_SESSION_MS).contains(&session) {
            return Err(invalid(format!(
                "session_timeout_ms {session} is outside [{MIN_SESSION_MS}, {MAX_SESSION_MS}]"
            )));
        }
        let rebalance = match request.rebalance_timeout_ms {
            0 => session,
            ms => ms.min(MAX_REBALANCE_MS),
        };
        let new_lease = if request.member_id.is_empty() {
            Some(
                self.meta
                    .grant_lease(Duration::from_millis(u64::from(session)))
                    .await?,
            )
        } else {
            None
        };
        let joining = Joining {
            request,
            member_id: if request.member_id.is_empty() {
                self.new_member_id(&request.client_id)
            } else {
                request.member_id.clone()
            },
            new_lease,
            protocols: request
                .protocols
                .iter()
                .map(|p| GroupProtocol {
                    name: p.name.clone(),
                    metadata: p.metadata.to_vec(),
                })
                .collect(),
            session_timeout_ms: session,
            rebalance_timeout_ms: rebalance,
            client_host: client_host.to_owned(),
        };
        let result = self.join_and_wait(&joining).await;
        if result.is_err()
            && let Some(lease) = new_lease
        {
            // The member never learns its id: end its session now rather than at timeout.
            self.revoke(vec![lease]).await;
        }
        result
    }

    async fn join_and_wait(&self, j: &Joining<'_>) -> Result<v1::JoinGroupResponse> {
        let group = &j.request.group;
        let joined_generation = match self.register(j).await? {
            Registered::Answered(response) => return Ok(response),
            Registered::Waiting(generation) => generation,
        };
        let give_up = Instant::now()
            + Duration::from_millis(u64::from(j.rebalance_timeout_ms))
            + Duration::from_secs(5);
        let mut renewed = Instant::now();
        loop {
            let Loaded {
                mut state,
                revision,
            } = self.load(group).await?;
            let Some(me) = state.members.get(&j.member_id) else {
                return Err(ProxyError::refused(
                    ErrorCode::UnknownMember,
                    format!(
                        "member `{}` was removed from group `{group}` while it rebalanced (it did not rejoin in time); join again",
                        j.member_id
                    ),
                ));
            };
            if renewed.elapsed() >= Duration::from_secs(1) {
                // A member blocked in JoinGroup is alive even though it sends no heartbeat;
                // the rebalance may wait longer than its session timeout.
                let _ = self.meta.keep_alive_once(me.lease).await;
                renewed = Instant::now();
            }
            match state.phase {
                GroupPhase::CompletingRebalance | GroupPhase::Stable
                    if state.generation > joined_generation =>
                {
                    return Ok(join_response(&state, &j.member_id));
                }
                GroupPhase::PreparingRebalance => {
                    let now = self.clock.unix_millis();
                    let mut revoke = Vec::new();
                    let mut changed = false;
                    if !me.joined {
                        // A newer rebalance started after we joined the last one.
                        if let Some(me) = state.members.get_mut(&j.member_id) {
                            me.joined = true;
                        }
                        changed = true;
                    }
                    let dead = self.dead_members(group, &state, Some(&j.member_id)).await?;
                    if !dead.is_empty() {
                        tracing::info!(group = %group, members = ?dead, "evicting members whose session ended");
                        revoke.extend(remove_members(&mut state, &dead));
                        changed = true;
                    }
                    if now >= state.rebalance_deadline_ms {
                        let late: Vec<String> = state
                            .members
                            .iter()
                            .filter(|(_, m)| !m.joined)
                            .map(|(id, _)| id.clone())
                            .collect();
                        if !late.is_empty() {
                            tracing::info!(group = %group, members = ?late, "removing members that did not rejoin before the rebalance deadline");
                            revoke.extend(remove_members(&mut state, &late));
                            changed = true;
                        }
                    }
                    if state.members.values().all(|m| m.joined) && now >= state.hold_until_ms {
                        complete_rebalance(&mut state);
                        tracing::info!(group = %group, generation = state.generation, members = state.members.len(), leader = %state.leader, "rebalance complete");
                        changed = true;
                    }
                    if changed {
                        if self.save(group, revision, &state, Vec::new()).await? {
                            self.revoke(revoke).await;
                        }
                        continue;
                    }
                    let until = if state.members.values().all(|m| m.joined) {
                        state.hold_until_ms
                    } else {
                        state.rebalance_deadline_ms
                    };
                    let left = (until - now).max(1) as u64;
                    self.wait_change(group, revision, RECHECK.min(Duration::from_millis(left)))
                        .await;
                }
                GroupPhase::CompletingRebalance | GroupPhase::Stable => {
                    return Ok(join_response(&state, &j.member_id));
                }
                GroupPhase::Empty => return Err(unknown_member(group, &j.member_id)),
            }
            if Instant::now() >= give_up {
                return Err(rebalancing(group));
            }
        }
    }

    /// Adds or updates the member; starts a rebalance when its arrival or change needs one.
    async fn register(&self, j: &Joining<'_>) -> Result<Registered> {
        let group = &j.request.group;
        loop {
            let Loaded {
                mut state,
                revision,
            } = self.load(group).await?;
            let now = self.clock.unix_millis();
            let dead = self.dead_members(group, &state, Some(&j.member_id)).await?;
            let revoke = remove_members(&mut state, &dead);
            let others = state.members.iter().filter(|(id, _)| **id != j.member_id);
            if others.clone().next().is_some() {
                if state.protocol_type != j.request.protocol_type {
                    return Err(ProxyError::refused(
                        ErrorCode::InvalidArgument,
                        format!(
                            "group `{group}` has protocol type `{}`, not `{}`",
                            state.protocol_type, j.request.protocol_type
                        ),
                    ));
                }
                let common = j.protocols.iter().any(|p| {
                    others
                        .clone()
                        .all(|(_, m)| m.protocols.iter().any(|q| q.name == p.name))
                });
                // Members share positions: one serving another lane would commit past records
                // the others have not read.
                let lane = j.request.lane.trim();
                if let Some((_, other)) = others.clone().find(|(_, m)| m.lane != lane) {
                    let name = |l: &str| {
                        if l.is_empty() {
                            "the main lane".to_owned()
                        } else {
                            format!("lane `{l}`")
                        }
                    };
                    return Err(ProxyError::refused(
                        ErrorCode::InvalidArgument,
                        format!(
                            "group `{group}` serves {}, and a member of {} cannot join it: the members of a group share its positions; use a group per lane",
                            name(&other.lane),
                            name(lane)
                        ),
                    ));
                }
                if !common {
                    return Err(ProxyError::refused(
                        ErrorCode::InvalidArgument,
                        format!(
                            "none of the assignors offered ({}) is supported by every member of group `{group}`",
                            j.protocols
                                .iter()
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            let existing = state.members.get(&j.member_id).cloned();
            let lease = match (&existing, j.new_lease) {
                (_, Some(lease)) => lease,
                (Some(m), None) => m.lease,
                (None, None) => return Err(unknown_member(group, &j.member_id)),
            };
            if let Some(m) = &existing
                && dead.is_empty()
                && state.phase == GroupPhase::Stable
                && m.protocols == j.protocols
                && m.lane == j.request.lane.trim()
                && state.leader != j.member_id
            {
                // Nothing changed for the group: answer with the current generation, as
                // Kafka does, instead of disturbing every member.
                let _ = self.meta.keep_alive_once(lease).await;
                return Ok(Registered::Answered(join_response(&state, &j.member_id)));
            }
            state.protocol_type = j.request.protocol_type.clone();
            state.members.insert(
                j.member_id.clone(),
                GroupMember {
                    client_id: j.request.client_id.clone(),
                    client_host: j.client_host.clone(),
                    lease,
                    session_timeout_ms: j.session_timeout_ms,
                    rebalance_timeout_ms: j.rebalance_timeout_ms,
                    protocols: j.protocols.clone(),
                    joined: true,
                    assignment: Vec::new(),
                    lane: j.request.lane.trim().to_owned(),
                },
            );
            start_rebalance(&mut state, now);
            if let Some(me) = state.members.get_mut(&j.member_id) {
                me.joined = true;
            }
            let extra = match j.new_lease {
                Some(lease) => vec![TxnOp::put_with_lease(
                    self.keys.group_member_live(group, &j.member_id),
                    bytes::Bytes::new(),
                    lease,
                )],
                None => Vec::new(),
            };
            if self.save(group, revision, &state, extra).await? {
                self.revoke(revoke).await;
                if existing.is_none() {
                    tracing::info!(group = %group, member = %j.member_id, "member joined");
                }
                return Ok(Registered::Waiting(state.generation));
            }
        }
    }

    /// Kafka's SyncGroup: the leader stores the assignment; every member waits for it and gets
    /// its own share.
    pub async fn sync(&self, request: &v1::SyncGroupRequest) -> Result<v1::SyncGroupResponse> {
        let group = &request.group;
        validate_group(group)?;
        let mut give_up = None;
        loop {
            let Loaded {
                mut state,
                revision,
            } = self.load(group).await?;
            let me = member_at(&state, group, &request.member_id, request.generation)?;
            let give_up = match give_up {
                Some(at) => at,
                None => {
                    // A member blocked here sends no heartbeats; this call counts as one.
                    let _ = self.meta.keep_alive_once(me.lease).await;
                    let at =
                        Instant::now() + Duration::from_millis(u64::from(me.session_timeout_ms));
                    give_up = Some(at);
                    at
                }
            };
            match state.phase {
                GroupPhase::Stable => {
                    return Ok(v1::SyncGroupResponse {
                        error: None,
                        assignment: me.assignment.clone().into(),
                        protocol: state.protocol.clone(),
                    });
                }
                GroupPhase::PreparingRebalance => return Err(rebalancing(group)),
                GroupPhase::Empty => return Err(unknown_member(group, &request.member_id)),
                GroupPhase::CompletingRebalance if request.member_id == state.leader => {
                    for a in &request.assignments {
                        match state.members.get_mut(&a.member_id) {
                            Some(m) => m.assignment = a.assignment.to_vec(),
                            None => {
                                tracing::warn!(group = %group, member = %a.member_id, "leader assigned to an unknown member; ignored")
                            }
                        }
                    }
                    state.phase = GroupPhase::Stable;
                    if self.save(group, revision, &state, Vec::new()).await? {
                        tracing::info!(group = %group, generation = state.generation, "assignment stored");
                    }
                }
                GroupPhase::CompletingRebalance => {
                    if Instant::now() >= give_up {
                        return Err(rebalancing(group));
                    }
                    self.wait_change(group, revision, RECHECK).await;
                }
            }
        }
    }

    /// Kafka's Heartbeat: renews the member's session, evicts members whose session ended,
    /// and tells the member when it must rejoin.
    pub async fn heartbeat(&self, request: &v1::HeartbeatRequest) -> Result<()> {
        let group = &request.group;
        validate_group(group)?;
        for _ in 0..5 {
            let Loaded {
                mut state,
                revision,
            } = self.load(group).await?;
            let Some(me) = state.members.get(&request.member_id) else {
                return Err(unknown_member(group, &request.member_id));
            };
            let mut gone = match self.meta.keep_alive_once(me.lease).await {
                Ok(()) => Vec::new(),
                Err(MetaError::LeaseNotFound { .. }) => vec![request.member_id.clone()],
                Err(e) => return Err(e.into()),
            };
            let me_expired = !gone.is_empty();
            gone.extend(
                self.dead_members(group, &state, Some(&request.member_id))
                    .await?,
            );
            if !gone.is_empty() {
                tracing::info!(group = %group, members = ?gone, "evicting members whose session ended");
                let revoke = remove_members(&mut state, &gone);
                start_rebalance(&mut state, self.clock.unix_millis());
                if !self.save(group, revision, &state, Vec::new()).await? {
                    continue;
                }
                self.revoke(revoke).await;
                if me_expired {
                    return Err(unknown_member(group, &request.member_id));
                }
            }
            if state.generation != request.generation {
                return Err(illegal_generation(
                    group,
                    request.generation,
                    state.generation,
                ));
            }
            return match state.phase {
                GroupPhase::PreparingRebalance => Err(rebalancing(group)),
                _ => Ok(()),
            };
        }
        Err(ProxyError::refused(
            ErrorCode::Conflict,
            format!("group `{group}` changed five times during one heartbeat; retry"),
        ))
    }

    /// Kafka's LeaveGroup: removes the member at once (no waiting for its session to end) and
    /// rebalances the others.
    pub async fn leave(&self, request: &v1::LeaveGroupRequest) -> Result<()> {
        let group = &request.group;
        validate_group(group)?;
        loop {
            let Loaded {
                mut state,
                revision,
            } = self.load(group).await?;
            if !state.members.contains_key(&request.member_id) {
                return Err(unknown_member(group, &request.member_id));
            }
            let revoke = remove_members(&mut state, std::slice::from_ref(&request.member_id));
            start_rebalance(&mut state, self.clock.unix_millis());
            if self.save(group, revision, &state, Vec::new()).await? {
                self.revoke(revoke).await;
                tracing::info!(group = %group, member = %request.member_id, "member left");
                return Ok(());
            }
        }
    }
}

enum Registered {
    /// Nothing changed: the current generation was answered at once.
    Answered(v1::JoinGroupResponse),
    /// Joined (or started) the rebalance begun at this generation.
    Waiting(i32),
}
