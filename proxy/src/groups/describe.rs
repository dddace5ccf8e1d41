//! ListGroups and DescribeGroup: the groups view of `strata_catalog`, so the REST API and
//! `strata group describe` show the same thing.

use std::collections::BTreeMap;

use strata_catalog::Admin;
use strata_proto::v1;

use super::{GroupCoordinator, Loaded, remove_members, start_rebalance, validate_group};
use crate::error::Result;

impl GroupCoordinator {
    pub(super) fn admin(&self) -> Admin {
        Admin::new(self.meta.clone(), self.keys.clone())
    }

    /// Every group that has state (members now or at some point).
    pub async fn list(&self) -> Result<Vec<v1::GroupListing>> {
        Ok(self
            .admin()
            .list_groups()
            .await?
            .into_iter()
            .map(|g| v1::GroupListing {
                group: g.group,
                state: g.state,
                protocol_type: g.protocol_type,
                members: g.members,
            })
            .collect())
    }

    /// Members with their assignment, and every assigned or committed partition with its lag.
    pub async fn describe(&self, group: &str) -> Result<v1::DescribeGroupResponse> {
        let g = self.admin().describe_group(group).await?;
        Ok(v1::DescribeGroupResponse {
            error: None,
            group: g.group,
            state: g.state,
            generation: g.generation,
            protocol_type: g.protocol_type,
            protocol: g.protocol,
            leader: g.leader,
            members: g
                .members
                .into_iter()
                .map(|m| v1::GroupMemberDescription {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    lane: m.lane,
                    assignment: m
                        .assignment
                        .into_iter()
                        .map(|p| v1::TopicPartition {
                            topic: p.topic,
                            partition: p.partition,
                        })
                        .collect(),
                })
                .collect(),
            offsets: g.offsets.into_iter().map(partition_lag).collect(),
            broadcast_members: g
                .broadcast_members
                .into_iter()
                .map(|m| v1::BroadcastMemberDescription {
                    member: m.member,
                    committed_ms: m.committed_ms,
                    offsets: m.offsets.into_iter().map(partition_lag).collect(),
                })
                .collect(),
        })
    }

    /// What each member sent for the protocol the group chose, by member id: Kafka's
    /// DescribeGroups relays it untouched. Empty for a group without state.
    pub async fn member_metadata(&self, group: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        validate_group(group)?;
        let state = self.load(group).await?.state;
        Ok(state
            .members
            .into_iter()
            .map(|(id, m)| {
                let metadata = m
                    .protocols
                    .into_iter()
                    .find(|p| p.name == state.protocol)
                    .map(|p| p.metadata)
                    .unwrap_or_default();
                (id, metadata)
            })
            .collect())
    }

    /// Removes members whose session ended, as the next group call would; `true` if some were.
    /// Views of a group (Kafka's DescribeGroups and ListGroups) call it first so a group whose
    /// consumers crashed shows as empty, as it does in Kafka, instead of keeping them until a
    /// member or a commit comes by.
    pub async fn evict_expired(&self, group: &str) -> Result<bool> {
        validate_group(group)?;
        // Bounded: each failed round means another call changed the group meanwhile, and that
        // call evicts too.
        for _ in 0..3 {
            let Loaded {
                mut state,
                revision,
            } = self.load(group).await?;
            let dead = self.dead_members(group, &state, None).await?;
            if dead.is_empty() {
                return Ok(false);
            }
            let revoke = remove_members(&mut state, &dead);
            start_rebalance(&mut state, self.clock.unix_millis());
            if self.save(group, revision, &state, Vec::new()).await? {
                tracing::info!(group = %group, members = ?dead, "evicting members whose session ended");
                self.revoke(revoke).await;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn partition_lag(o: strata_catalog::groups::OffsetView) -> v1::PartitionLag {
    v1::PartitionLag {
        topic: o.topic,
        partition: o.partition,
        committed: o.committed,
        high_watermark: o.high_watermark,
        lag: o.lag,
        member_id: o.member_id.unwrap_or_default(),
    }
}
