//! The keyspace under `/strata/{cluster}/` and the JSON values kept there.
//!
//! Every component that reads or writes metadata goes through [`Keyspace`], so the layout in
//! `docs/design.md` has exactly one implementation.

use serde::{Deserialize, Serialize};
use strata_proto::{Coded, ErrorCode};

mod groups;

pub use groups::{CommittedOffset, GroupMember, GroupPhase, GroupProtocol, GroupState};

/// Last segment of a checkpoint's key (the shared keyspace's name for it).
const CHECKPOINT_KEY: &str = "commit";

/// Builds and parses the keys of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    root: String,
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name `{name}`: {reason}")]
pub struct InvalidName {
    pub kind: &'static str,
    pub name: String,
    pub reason: &'static str,
}

impl Coded for InvalidName {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

/// Names that become key segments: 1–249 characters of `[A-Za-z0-9._-]`, as Kafka allows for
/// topics, and never `.` or `..`.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), InvalidName> {
    let fail = |reason| {
        Err(InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 249 {
        return fail("use 1 to 249 characters");
    }
    if name == "." || name == ".." {
        return fail("`.` and `..` are reserved");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return fail("use only letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

impl Keyspace {
    /// The keyspace of cluster `cluster`.
    pub fn new(cluster: &str) -> Result<Self, InvalidName> {
        validate_name("cluster", cluster)?;
        Ok(Self {
            root: format!("/strata/{cluster}"),
        })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// Prefix of broker registrations (`brokers/{id}` → [`BrokerInfo`], on the broker's lease).
    pub fn brokers(&self) -> String {
        format!("{}/brokers/", self.root)
    }
    pub fn broker(&self, id: &str) -> String {
        format!("{}{id}", self.brokers())
    }
    pub fn broker_id_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.root.as_str())?
            .strip_prefix("/brokers/")
    }

    /// Prefix of the controller election.
    pub fn controller(&self) -> String {
        format!("{}/controller", self.root)
    }

    /// Prefix of drained brokers (`drain/{id}` → [`Drain`]); drained brokers get no partitions.
    pub fn drains(&self) -> String {
        format!("{}/drain/", self.root)
    }
    pub fn drain(&self, broker: &str) -> String {
        format!("{}{broker}", self.drains())
    }

    /// Prefix of topic definitions (`topics/{topic}` → [`TopicConfig`]).
    pub fn topics(&self) -> String {
        format!("{}/topics/", self.root)
    }
    pub fn topic(&self, topic: &str) -> String {
        format!("{}{topic}", self.topics())
    }
    pub fn topic_name_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.root.as_str())?
            .strip_prefix("/topics/")
    }

    /// Prefix of every assignment (`assign/{topic}/{p}` → [`Assignment`]).
    pub fn assignments(&self) -> String {
        format!("{}/assign/", self.root)
    }
    pub fn topic_assignments(&self, topic: &str) -> String {
        format!("{}{topic}/", self.assignments())
    }
    pub fn assignment(&self, topic: &str, partition: u32) -> String {
        format!("{}{partition}", self.topic_assignments(topic))
    }
    /// `(topic, partition)` of an assignment key.
    pub fn partition_of(&self, key: &str) -> Option<(String, u32)> {
        let rest = key
            .strip_prefix(self.root.as_str())?
            .strip_prefix("/assign/")?;
        let (topic, partition) = rest.rsplit_once('/')?;
        Some((topic.to_owned(), partition.parse().ok()?))
    }

    /// Prefix of every partition's log metadata, for sweeps over the whole cluster.
    pub fn logs(&self) -> String {
        format!("{}/log/", self.root)
    }
    /// Whether a key under [`Keyspace::logs`] is a segment record.
    pub fn is_segment_key(&self, key: &str) -> bool {
        key.rsplit_once("/seg/").is_some_and(|(_, offset)| {
            offset.len() == 20 && offset.bytes().all(|b| b.is_ascii_digit())
        })
    }

    /// Prefix of a topic's log metadata (checkpoints and segment lists of all its partitions).
    pub fn topic_log(&self, topic: &str) -> String {
        format!("{}/log/{topic}/", self.root)
    }
    /// Prefix of one partition's log metadata.
    pub fn log(&self, topic: &str, partition: u32) -> String {
        format!("{}{partition}/", self.topic_log(topic))
    }
    /// The partition's checkpoint (`log/{topic}/{p}/commit` → [`Checkpoint`]). The key keeps
    /// the shared keyspace's name; everywhere in code it is the checkpoint.
    pub fn checkpoint(&self, topic: &str, partition: u32) -> String {
        format!("{}{CHECKPOINT_KEY}", self.log(topic, partition))
    }
    /// The partition a checkpoint key belongs to.
    pub fn partition_of_checkpoint<'k>(&self, key: &'k str) -> Option<(&'k str, u32)> {
        let rest = key
            .strip_prefix(self.root())?
            .strip_prefix("/log/")?
            .strip_suffix(CHECKPOINT_KEY)?
            .strip_suffix('/')?;
        let (topic, partition) = rest.rsplit_once('/')?;
        Some((topic, partition.parse().ok()?))
    }
    /// The partition a segment record's key belongs to.
    pub fn partition_of_segment<'k>(&self, key: &'k str) -> Option<(&'k str, u32)> {
        if !self.is_segment_key(key) {
            return None;
        }
        let (log, _) = key
            .strip_prefix(self.root())?
            .strip_prefix("/log/")?
            .rsplit_once("/seg/")?;
        let (topic, partition) = log.rsplit_once('/')?;
        Some((topic, partition.parse().ok()?))
    }
    /// Prefix of the partition's segment records.
    pub fn segments(&self, topic: &str, partition: u32) -> String {
        format!("{}seg/", self.log(topic, partition))
    }
    /// One segment record; zero-padded so keys sort by offset.
    pub fn segment(&self, topic: &str, partition: u32, base_offset: i64) -> String {
        format!("{}{base_offset:020}", self.segments(topic, partition))
    }

    /// Idempotent-producer state of a partition, committed with its log.
    pub fn producers(&self, topic: &str, partition: u32) -> String {
        format!("{}producers", self.log(topic, partition))
    }
    /// Where the partition's delayed-message scheduler resumes ([`DelayMark`]).
    pub fn delays(&self, topic: &str, partition: u32) -> String {
        format!("{}delays", self.log(topic, partition))
    }
    /// Prefix of a partition's garbage-collection records (objects to delete after a grace).
    pub fn gc_records(&self, topic: &str, partition: u32) -> String {
        format!("{}gc/", self.log(topic, partition))
    }

    /// Prefix of consumer group state.
    pub fn groups(&self) -> String {
        format!("{}/groups/", self.root)
    }
    /// Prefix of everything of one group.
    pub fn group(&self, group: &str) -> String {
        format!("{}{group}/", self.groups())
    }
    /// The group's membership and generation (`groups/{g}/state` → [`GroupState`]).
    pub fn group_state(&self, group: &str) -> String {
        format!("{}state", self.group(group))
    }
    /// The group name of a `groups/{g}/state` key.
    pub fn group_of_state<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.root.as_str())?
            .strip_prefix("/groups/")?
            .strip_suffix("/state")
    }
    /// Prefix of the group's liveness keys, one per member, each on the member's lease: a
    /// member whose key is gone missed its session timeout.
    pub fn group_live(&self, group: &str) -> String {
        format!("{}live/", self.group(group))
    }
    pub fn group_member_live(&self, group: &str, member: &str) -> String {
        format!("{}{member}", self.group_live(group))
    }
    /// Prefix of the group's committed offsets.
    pub fn group_offsets(&self, group: &str) -> String {
        format!("{}offsets/", self.group(group))
    }
    /// One committed offset (`groups/{g}/offsets/{topic}/{p}` → [`CommittedOffset`]).
    pub fn group_offset(&self, group: &str, topic: &str, partition: u32) -> String {
        format!("{}{topic}/{partition}", self.group_offsets(group))
    }
    /// Present when the group consumes in broadcast mode (`groups/{g}/broadcasting`): every
    /// member reads every partition, with positions of its own. Such a group takes no
    /// clustering members.
    pub fn group_broadcasting(&self, group: &str) -> String {
        format!("{}broadcasting", self.group(group))
    }
    /// The group name of a `groups/{g}/broadcasting` key.
    pub fn group_of_broadcasting<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.root.as_str())?
            .strip_prefix("/groups/")?
            .strip_suffix("/broadcasting")
    }
    /// Prefix of the positions of a broadcast group's members.
    pub fn group_broadcast_offsets(&self, group: &str) -> String {
        format!("{}broadcast/", self.group(group))
    }
    /// A broadcast member's committed offset (`groups/{g}/broadcast/{member}/{topic}/{p}` →
    /// [`CommittedOffset`]).
    pub fn group_broadcast_offset(
        &self,
        group: &str,
        member: &str,
        topic: &str,
        partition: u32,
    ) -> String {
        format!(
            "{}{member}/{topic}/{partition}",
            self.group_broadcast_offsets(group)
        )
    }
    /// The member, topic and partition of a broadcast member's offset key.
    pub fn broadcast_offset_of(&self, group: &str, key: &str) -> Option<(String, String, u32)> {
        let rest = key.strip_prefix(&self.group_broadcast_offsets(group))?;
        let (member, tp) = rest.split_once('/')?;
        let (topic, partition) = tp.rsplit_once('/')?;
        Some((member.to_owned(), topic.to_owned(), partition.parse().ok()?))
    }
    /// Prefix of the live proxies (`proxies/{id}` → [`ProxyInfo`], on the proxy's lease).
    pub fn proxies(&self) -> String {
        format!("{}/proxies/", self.root)
    }
    pub fn proxy(&self, id: &str) -> String {
        format!("{}{id}", self.proxies())
    }
    /// Prefix of the users of SASL (`users/{name}` → `UserRecord` of strata-catalog): SCRAM
    /// credentials, never passwords.
    pub fn users(&self) -> String {
        format!("{}/users/", self.root)
    }
    pub fn user(&self, name: &str) -> String {
        format!("{}{name}", self.users())
    }
    /// Prefix of the access rules (`acls/{id}` → `AclRule` of strata-catalog; the id is a
    /// hash of the rule, so a rule added twice is one key).
    pub fn acls(&self) -> String {
        format!("{}/acls/", self.root)
    }
    pub fn acl(&self, id: &str) -> String {
        format!("{}{id}", self.acls())
    }
    /// Prefix of the bearer tokens of the gRPC and REST APIs (`tokens/{id}` → `TokenRecord` of
    /// strata-catalog): a SHA-256 of each secret, never the secret.
    pub fn tokens(&self) -> String {
        format!("{}/tokens/", self.root)
    }
    pub fn token(&self, id: &str) -> String {
        format!("{}{id}", self.tokens())
    }
    /// The Kafka node id a proxy id got the first time it registered (`kafka/nodes/{id}` → i32):
    /// Kafka clients key connections by node id, so a restarted proxy keeps its own.
    pub fn kafka_node(&self, proxy: &str) -> String {
        format!("{}/kafka/nodes/{proxy}", self.root)
    }
    /// The next unused Kafka node id (an i32 counter).
    pub fn kafka_next_node(&self) -> String {
        format!("{}/kafka/next_node", self.root)
    }
    /// The first producer id not yet handed to a proxy (an i64 counter; proxies take blocks).
    pub fn kafka_next_producer_id(&self) -> String {
        format!("{}/kafka/next_producer_id", self.root)
    }
    /// `(topic, partition)` of a committed-offset key of `group`.
    pub fn offset_partition_of(&self, group: &str, key: &str) -> Option<(String, u32)> {
        let rest = key.strip_prefix(&self.group_offsets(group))?;
        let (topic, partition) = rest.rsplit_once('/')?;
        Some((topic.to_owned(), partition.parse().ok()?))
    }
}

/// A live broker, registered under its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: String,
    /// Address its gRPC service answers on, as clients and proxies should dial it.
    pub addr: String,
    pub started_ms: i64,
    /// Availability zone (`--zone`); empty for none. The controller spreads a topic's
    /// partitions over zones.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub zone: String,
}

/// A live proxy, registered under its lease: Kafka clients see the live proxies as the
/// cluster's brokers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyInfo {
    pub id: String,
    /// The Kafka node id (stable per proxy id).
    pub node_id: i32,
    /// `host:port` Kafka clients dial.
    pub kafka_addr: String,
    /// Rack (availability zone) for rack-aware clients; empty for none.
    #[serde(default)]
    pub rack: String,
    pub started_ms: i64,
}

/// An operator's request that a broker hold no partitions (for a rolling restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub requested_ms: i64,
}

/// A topic and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Random id of this incarnation of the topic, so metadata of a deleted topic can never
    /// be mistaken for a new topic of the same name.
    pub id: u64,
    pub partitions: u32,
    /// Delete segments older than this; -1 keeps them forever.
    pub retention_ms: i64,
    /// Delete the oldest segments while a partition holds more than this; -1 for no limit.
    pub retention_bytes: i64,
    /// Compaction merges small flushed objects into segments of about this size.
    pub segment_bytes: u64,
    pub created_ms: i64,
    /// The swimlanes the topic carries besides the main lane (`strata_format::lanes`); empty:
    /// none, and consumers are not filtered by lane.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<String>,
    /// Set when the topic first declares a lane and never cleared: its log may hold lane
    /// records from then on, which main-lane consumers must not see even after the last lane
    /// is removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lane_filtering: bool,
    /// The longest delay a record of this topic may ask for (`strata_format::delay`); 0: delayed
    /// records are refused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_delay_ms: i64,
    /// Set when the topic first accepts delays and never cleared: its log may hold delayed
    /// records from then on, which consumers must not see and the partitions' owners must
    /// deliver, even after delays are turned off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delay_filtering: bool,
    /// Parts per million of the topic's messages whose path is traced (message-trace events go
    /// to the internal topic `__strata_trace`): 0, the default, traces none; 1_000_000 every
    /// message; 10_000 one in a hundred. May change at any time.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub trace_sample_ppm: u32,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Where a partition's delayed-message scheduler starts reading on recovery: every delayed
/// record below `low` has been delivered (`log/{topic}/{p}/delays`). Written by the
/// partition's owner; a lower value only costs a longer scan, so it needs no fencing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayMark {
    /// The topic incarnation the mark is for: a mark left by a deleted topic of the same
    /// name is ignored.
    pub topic_id: u64,
    pub low: i64,
}

/// Defaults of new topics, as in Kafka: keep a week, no size limit, 128 MiB segments.
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
pub const DEFAULT_SEGMENT_BYTES: u64 = 128 << 20;
/// -1: no size limit.
pub const DEFAULT_RETENTION_BYTES: i64 = -1;

/// Which broker owns a partition, and since which epoch. The controller bumps `epoch` on every
/// change; a broker's commits compare it, so a former owner can never commit again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub broker: String,
    pub epoch: u64,
    pub topic_id: u64,
}

/// A partition's checkpoint: the last committed state of its log. Consumers see offsets below
/// `next_offset` (the high watermark); `epoch` is the owner's assignment epoch at commit time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub epoch: u64,
    pub next_offset: i64,
    pub broker: String,
    pub committed_ms: i64,
}

/// Encodes a value for storage.
pub fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(value).expect("schema values always serialize"))
}

/// A stored value that does not parse as what its key promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata value at {key} is not valid: {detail}; fix or delete the key")]
pub struct BadValue {
    pub key: String,
    pub detail: String,
}

/// Corrupt metadata: a retry reads the same bytes, and the client cannot fix them.
impl Coded for BadValue {
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

/// Decodes a stored value, naming the key when it does not parse.
pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T, BadValue> {
    serde_json::from_slice(value).map_err(|e| BadValue {
        key: key.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_metadata_is_internal_and_not_retriable() {
        let e = decode::<Checkpoint>("/strata/c/log/t/0/commit", b"{not json").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(!e.is_retriable());
    }

    #[test]
    fn a_refused_name_is_invalid_argument() {
        let e = validate_name("topic", "a/b").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn keys_round_trip() {
        let ks = Keyspace::new("prod").unwrap();
        assert_eq!(ks.assignment("orders", 7), "/strata/prod/assign/orders/7");
        assert_eq!(
            ks.partition_of(&ks.assignment("a.b-c", 12)),
            Some(("a.b-c".into(), 12))
        );
        assert_eq!(ks.broker_id_of(&ks.broker("b1")), Some("b1"));
        assert_eq!(ks.topic_name_of(&ks.topic("t")), Some("t"));
        assert_eq!(
            ks.segment("t", 0, 42),
            "/strata/prod/log/t/0/seg/00000000000000000042"
        );
        assert_eq!(ks.checkpoint("t", 1), "/strata/prod/log/t/1/commit");
        assert_eq!(
            ks.partition_of_checkpoint(&ks.checkpoint("a.b-c", 12)),
            Some(("a.b-c", 12))
        );
        assert_eq!(ks.partition_of_checkpoint(&ks.segment("t", 1, 0)), None);
        assert_eq!(
            ks.partition_of_segment(&ks.segment("a.b-c", 7, 42)),
            Some(("a.b-c", 7))
        );
        assert_eq!(ks.partition_of_segment(&ks.checkpoint("t", 1)), None);
        // A topic's prefix never matches another topic that merely starts with its name.
        assert!(
            !ks.assignment("ab", 0)
                .starts_with(&ks.topic_assignments("a"))
        );
    }

    #[test]
    fn names_are_checked() {
        for good in ["t", "a.b_c-1", &"x".repeat(249)] {
            assert!(validate_name("topic", good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "..", "sp ace", &"x".repeat(250), "ünï"] {
            let err = validate_name("topic", bad).unwrap_err();
            assert!(err.to_string().contains("invalid topic name"), "{err}");
        }
    }
}
