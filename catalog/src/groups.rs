//! Consumer groups as operators see them: members, their partitions, committed offsets and
//! lag. Read-only: the group coordinator (in every proxy) owns the writes. The proxy's
//! DescribeGroup serves this same view, so the REST API and `strata group describe` agree.

use std::collections::BTreeMap;

use futures::future::join_all;
use serde::Serialize;
use strata_meta::schema::{self, CommittedOffset, GroupState};
use strata_proto::consumer_protocol::{Assignment, PROTOCOL_TYPE};

use crate::admin::Admin;
use crate::error::{CatalogError, Result};

/// A group in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSummary {
    pub group: String,
    /// Empty, PreparingRebalance, CompletingRebalance or Stable.
    pub state: String,
    pub protocol_type: String,
    pub members: u32,
}

/// A partition of a member's assignment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AssignedPartition {
    pub topic: String,
    pub partition: u32,
}

/// A member and its partitions (decoded for `consumer` groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub assignment: Vec<AssignedPartition>,
    /// The swimlane it serves; empty for the main lane.
    pub lane: String,
}

/// A partition's committed offset (-1: none) and lag behind its high watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetView {
    pub topic: String,
    pub partition: u32,
    pub committed: i64,
    pub high_watermark: i64,
    pub lag: i64,
    pub member_id: Option<String>,
}

/// A member of a broadcast group, which reads every partition with positions of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BroadcastMemberView {
    pub member: String,
    /// When it last committed (milliseconds since the Unix epoch).
    pub committed_ms: i64,
    pub offsets: Vec<OffsetView>,
}

/// A whole group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    pub group: String,
    pub state: String,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub members: Vec<MemberView>,
    pub offsets: Vec<OffsetView>,
    /// Empty unless the group consumes in broadcast mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub broadcast_members: Vec<BroadcastMemberView>,
}

/// The state a broadcast group shows: it has no generations or rebalances.
pub const BROADCAST: &str = "Broadcast";

impl Admin {
    /// Every group that has state (members now or at some point), and every broadcast group.
    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>> {
        let (kvs, _) = self.meta().range(&self.keys().groups()).await?;
        // A broadcast group that was once clustering keeps its old state key: listed once,
        // as what it is now.
        let broadcasting: std::collections::BTreeSet<&str> = kvs
            .iter()
            .filter_map(|kv| self.keys().group_of_broadcasting(&kv.key))
            .collect();
        let mut groups = Vec::new();
        for kv in &kvs {
            if let Some(group) = self.keys().group_of_broadcasting(&kv.key) {
                let members = self.broadcast_positions(group).await?.len() as u32;
                groups.push(GroupSummary {
                    group: group.to_owned(),
                    state: BROADCAST.to_owned(),
                    protocol_type: PROTOCOL_TYPE.to_owned(),
                    members,
                });
                continue;
            }
            let Some(group) = self
                .keys()
                .group_of_state(&kv.key)
                .filter(|g| !broadcasting.contains(g))
            else {
                continue;
            };
            let state: GroupState = schema::decode(&kv.key, &kv.value)?;
            groups.push(GroupSummary {
                group: group.to_owned(),
                state: state.phase.as_str().to_owned(),
                protocol_type: state.protocol_type,
                members: state.members.len() as u32,
            });
        }
        Ok(groups)
    }

    /// Every committed offset of a group.
    pub async fn committed_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<(String, u32), CommittedOffset>> {
        schema::validate_name("group", group)?;
        let (kvs, _) = self.meta().range(&self.keys().group_offsets(group)).await?;
        let mut all = BTreeMap::new();
        for kv in kvs {
            if let Some(tp) = self.keys().offset_partition_of(group, &kv.key) {
                all.insert(tp, schema::decode::<CommittedOffset>(&kv.key, &kv.value)?);
            }
        }
        Ok(all)
    }

    /// Every position of a broadcast group's members, by member.
    pub async fn broadcast_positions(
        &self,
        group: &str,
    ) -> Result<BTreeMap<String, BTreeMap<(String, u32), CommittedOffset>>> {
        schema::validate_name("group", group)?;
        let prefix = self.keys().group_broadcast_offsets(group);
        let (kvs, _) = self.meta().range(&prefix).await?;
        let mut all: BTreeMap<String, BTreeMap<_, _>> = BTreeMap::new();
        for kv in kvs {
            if let Some((member, topic, p)) = self.keys().broadcast_offset_of(group, &kv.key) {
                let offset = schema::decode::<CommittedOffset>(&kv.key, &kv.value)?;
                all.entry(member).or_default().insert((topic, p), offset);
            }
        }
        Ok(all)
    }

    /// One broadcast member's positions.
    pub async fn broadcast_member_positions(
        &self,
        group: &str,
        member: &str,
    ) -> Result<BTreeMap<(String, u32), CommittedOffset>> {
        schema::validate_name("group", group)?;
        schema::validate_name("broadcast member", member)?;
        let prefix = format!("{}{member}/", self.keys().group_broadcast_offsets(group));
        let (kvs, _) = self.meta().range(&prefix).await?;
        let mut positions = BTreeMap::new();
        for kv in kvs {
            if let Some((_, topic, p)) = self.keys().broadcast_offset_of(group, &kv.key) {
                positions.insert((topic, p), schema::decode(&kv.key, &kv.value)?);
            }
        }
        Ok(positions)
    }

    /// Each broadcast member's positions with their lag.
    async fn broadcast_members(&self, group: &str) -> Result<Vec<BroadcastMemberView>> {
        let mut members = Vec::new();
        for (member, positions) in self.broadcast_positions(group).await? {
            let committed_ms = positions
                .values()
                .map(|c| c.committed_ms)
                .max()
                .unwrap_or(0);
            let offsets = self
                .lags(
                    positions
                        .into_iter()
                        .map(|(tp, c)| (tp, c.offset))
                        .collect(),
                    &BTreeMap::new(),
                )
                .await;
            members.push(BroadcastMemberView {
                member,
                committed_ms,
                offsets,
            });
        }
        Ok(members)
    }

    /// Each partition's committed offset with its high watermark and lag.
    async fn lags(
        &self,
        partitions: BTreeMap<(String, u32), i64>,
        owners: &BTreeMap<(String, u32), String>,
    ) -> Vec<OffsetView> {
        let watermarks = join_all(
            partitions
                .keys()
                .map(|(topic, p)| self.high_watermark(topic, *p)),
        )
        .await;
        partitions
            .into_iter()
            .zip(watermarks)
            .map(|(((topic, partition), committed), hwm)| {
                let high_watermark = hwm.unwrap_or(-1);
                // Nothing committed yet: the whole log is still to be read.
                let lag = (high_watermark - committed.max(0)).max(0);
                OffsetView {
                    member_id: owners.get(&(topic.clone(), partition)).cloned(),
                    topic,
                    partition,
                    committed,
                    high_watermark,
                    lag,
                }
            })
            .collect()
    }

    /// Members with their assignment, and every assigned or committed partition with its lag;
    /// for a broadcast group, each member's positions.
    pub async fn describe_group(&self, group: &str) -> Result<GroupView> {
        schema::validate_name("group", group)?;
        let key = self.keys().group_state(group);
        let state = match self.meta().get(&key).await? {
            Some(kv) => Some(schema::decode::<GroupState>(&key, &kv.value)?),
            None => None,
        };
        let committed = self.committed_offsets(group).await?;
        let broadcasting = self
            .meta()
            .get(&self.keys().group_broadcasting(group))
            .await?
            .is_some();
        if broadcasting {
            return Ok(GroupView {
                group: group.to_owned(),
                state: BROADCAST.to_owned(),
                generation: -1,
                protocol_type: PROTOCOL_TYPE.to_owned(),
                protocol: String::new(),
                leader: String::new(),
                members: Vec::new(),
                offsets: Vec::new(),
                broadcast_members: self.broadcast_members(group).await?,
            });
        }
        let Some(state) = state.or_else(|| (!committed.is_empty()).then(GroupState::default))
        else {
            return Err(CatalogError::UnknownGroup(group.to_owned()));
        };
        let mut owners: BTreeMap<(String, u32), String> = BTreeMap::new();
        let members = state
            .members
            .iter()
            .map(|(id, m)| {
                let assignment = if state.protocol_type == PROTOCOL_TYPE {
                    Assignment::decode(&m.assignment).unwrap_or_default()
                } else {
                    Assignment::default()
                };
                let mut partitions = Vec::new();
                for (topic, ps) in assignment.partitions {
                    for p in ps.into_iter().filter_map(|p| u32::try_from(p).ok()) {
                        owners.insert((topic.clone(), p), id.clone());
                        partitions.push(AssignedPartition {
                            topic: topic.clone(),
                            partition: p,
                        });
                    }
                }
                partitions.sort();
                MemberView {
                    member_id: id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment: partitions,
                    lane: m.lane.clone(),
                }
            })
            .collect();
        let mut partitions: BTreeMap<(String, u32), i64> =
            owners.keys().map(|tp| (tp.clone(), -1)).collect();
        for (tp, c) in committed {
            partitions.insert(tp, c.offset);
        }
        let offsets = self.lags(partitions, &owners).await;
        Ok(GroupView {
            group: group.to_owned(),
            state: state.phase.as_str().to_owned(),
            generation: state.generation,
            protocol_type: state.protocol_type,
            protocol: state.protocol,
            leader: state.leader,
            members,
            offsets,
            broadcast_members: Vec::new(),
        })
    }
}
