//! ListGroups and DescribeGroup: what `strata group list|describe` shows.

use std::collections::BTreeMap;

use futures::future::join_all;
use strata_meta::schema::{self, GroupState};
use strata_proto::consumer_protocol::{Assignment, PROTOCOL_TYPE};
use strata_proto::{ErrorCode, v1};

use super::{GroupCoordinator, Loaded, validate_group};
use crate::error::{ProxyError, Result};

impl GroupCoordinator {
    /// Every group that has state (members now or at some point).
    pub async fn list(&self) -> Result<Vec<v1::GroupListing>> {
        let (kvs, _) = self.meta.range(&self.keys.groups()).await?;
        let mut groups = Vec::new();
        for kv in kvs {
            let Some(group) = self.keys.group_of_state(&kv.key) else {
                continue;
            };
            let state: GroupState = schema::decode(&kv.key, &kv.value)?;
            groups.push(v1::GroupListing {
                group: group.to_owned(),
                state: state.phase.as_str().to_owned(),
                protocol_type: state.protocol_type,
                members: state.members.len() as u32,
            });
        }
        Ok(groups)
    }

    /// Members with their assignment, and every committed partition with its lag.
    pub async fn describe(&self, group: &str) -> Result<v1::DescribeGroupResponse> {
        validate_group(group)?;
        let Loaded { state, revision } = self.load(group).await?;
        let committed = self.committed(group).await?;
        if revision == 0 && committed.is_empty() {
            return Err(ProxyError::refused(
                ErrorCode::UnknownGroup,
                format!("group `{group}` does not exist (no member ever joined it or committed)"),
            ));
        }
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
                let mut tps = Vec::new();
                for (topic, partitions) in assignment.partitions {
                    for p in partitions {
                        let Ok(p) = u32::try_from(p) else { continue };
                        owners.insert((topic.clone(), p), id.clone());
                        tps.push(v1::TopicPartition {
                            topic: topic.clone(),
                            partition: p,
                        });
                    }
                }
                v1::GroupMemberDescription {
                    member_id: id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment: tps,
                }
            })
            .collect();
        // Partitions that are assigned or committed, each with its lag.
        let mut partitions: BTreeMap<(String, u32), i64> =
            owners.keys().map(|tp| (tp.clone(), -1)).collect();
        for (tp, c) in committed {
            partitions.insert(tp, c.offset);
        }
        let watermarks = join_all(
            partitions
                .keys()
                .map(|(topic, p)| self.reader.high_watermark(topic, *p)),
        )
        .await;
        let offsets = partitions
            .into_iter()
            .zip(watermarks)
            .map(|(((topic, partition), committed), hwm)| {
                let high_watermark = hwm.unwrap_or(-1);
                let lag = if committed >= 0 && high_watermark >= 0 {
                    (high_watermark - committed).max(0)
                } else {
                    high_watermark.max(0)
                };
                v1::PartitionLag {
                    member_id: owners
                        .get(&(topic.clone(), partition))
                        .cloned()
                        .unwrap_or_default(),
                    topic,
                    partition,
                    committed,
                    high_watermark,
                    lag,
                }
            })
            .collect();
        Ok(v1::DescribeGroupResponse {
            error: None,
            group: group.to_owned(),
            state: state.phase.as_str().to_owned(),
            generation: state.generation,
            protocol_type: state.protocol_type,
            protocol: state.protocol,
            leader: state.leader,
            members,
            offsets,
        })
    }
}
