//! Consumer group values: membership and generation in one key per group, committed offsets
//! in one key per partition.
//!
//! The shapes follow Kafka's group coordinator (generation, leader, protocol type and name,
//! opaque member metadata and assignments), so a Kafka wire-protocol listener can serve the
//! same groups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a group is in its rebalance cycle (Kafka's group states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GroupPhase {
    /// No members; committed offsets are kept.
    #[default]
    Empty,
    /// Waiting for every member to rejoin.
    PreparingRebalance,
    /// Every member rejoined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl GroupPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
        }
    }
}

/// A protocol a member supports: an assignor name and the member's metadata for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProtocol {
    pub name: String,
    #[serde(with = "base64_bytes")]
    pub metadata: Vec<u8>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub client_id: String,
    pub client_host: String,
    /// The lease its liveness key is on; heartbeats renew it.
    pub lease: i64,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub protocols: Vec<GroupProtocol>,
    /// Rejoined during the current rebalance.
    pub joined: bool,
    /// Its share of the current generation's assignment (protocol-specific bytes).
    #[serde(with = "base64_bytes")]
    pub assignment: Vec<u8>,
    /// The swimlane it serves on topics with lanes; empty for the main lane.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lane: String,
}

/// A group's membership, generation and rebalance progress (`groups/{g}/state`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupState {
    /// Bumped each time a rebalance completes; stale members are refused by it.
    pub generation: i32,
    pub phase: GroupPhase,
    pub protocol_type: String,
    /// The protocol (assignor) chosen for the current generation.
    pub protocol: String,
    pub leader: String,
    /// When the current rebalance stops waiting for members that have not rejoined (ms since
    /// the Unix epoch).
    pub rebalance_deadline_ms: i64,
    /// A rebalance of a group that was empty does not complete before this time, so members
    /// starting together land in one generation instead of one rebalance each (Kafka's
    /// `group.initial.rebalance.delay.ms`).
    #[serde(default)]
    pub hold_until_ms: i64,
    pub members: BTreeMap<String, GroupMember>,
}

/// A committed offset (`groups/{g}/offsets/{topic}/{p}`): the next offset the group reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    #[serde(default)]
    pub metadata: String,
    /// The generation that committed it (-1 for a consumer outside group management).
    pub generation: i32,
    pub member: String,
    pub committed_ms: i64,
}

/// Opaque bytes as base64 text, so values stay readable JSON.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_state_round_trips_through_json() {
        let mut state = GroupState {
            generation: 3,
            phase: GroupPhase::Stable,
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            leader: "m1".into(),
            ..GroupState::default()
        };
        state.members.insert(
            "m1".into(),
            GroupMember {
                client_id: "c".into(),
                client_host: "127.0.0.1".into(),
                lease: 7,
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                protocols: vec![GroupProtocol {
                    name: "range".into(),
                    metadata: vec![0, 1, 255],
                }],
                joined: true,
                assignment: vec![9; 40],
                lane: "test-alice".into(),
            },
        );
        let bytes = crate::schema::encode(&state);
        let back: GroupState = crate::schema::decode("k", &bytes).unwrap();
        assert_eq!(back, state);
    }
}

#[cfg(test)]
mod broadcast_keys {
    use crate::schema::Keyspace;

    #[test]
    fn broadcast_offset_keys_name_their_member_topic_and_partition() {
        let keys = Keyspace::new("c").unwrap();
        let key = keys.group_broadcast_offset("g", "node-1", "orders.eu", 7);
        assert_eq!(key, "/strata/c/groups/g/broadcast/node-1/orders.eu/7");
        assert_eq!(
            keys.broadcast_offset_of("g", &key),
            Some(("node-1".into(), "orders.eu".into(), 7))
        );
        assert_eq!(keys.broadcast_offset_of("g2", &key), None);
        let marker = keys.group_broadcasting("g");
        assert_eq!(keys.group_of_broadcasting(&marker), Some("g"));
        assert_eq!(
            keys.offset_partition_of("g", &key),
            None,
            "not a clustering offset"
        );
    }
}
