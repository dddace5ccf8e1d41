//! The admin client: topics, partitions, offsets and consumer groups.

use std::collections::BTreeMap;

use strata_proto::v1;

use crate::connection::Connection;
use crate::consumer::group::{offset_commit_request, partition_errors};
use crate::error::{Error, Result, check};
use crate::types::{Offset, TopicPartition};

/// A topic and where its partitions are served.
///
/// ```no_run
/// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
/// let topic = admin.describe_topic("orders").await?;
/// println!("{} has {} partitions", topic.name, topic.partitions.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Every partition, in order.
    pub partitions: Vec<PartitionInfo>,
    /// The swimlanes it declares (`ProducerRecord::with_lane`, `ConsumerBuilder::lane`).
    pub lanes: Vec<String>,
    /// The longest delay a record may ask for, in milliseconds; 0: delayed records are
    /// refused.
    pub max_delay_ms: i64,
    /// Parts per million of its messages whose path is traced (1_000_000: every message;
    /// 10_000: 1%); 0: tracing is off.
    pub trace_sample_ppm: u32,
}

/// One partition's owner.
///
/// ```no_run
/// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
/// for p in admin.describe_topic("orders").await?.partitions {
///     let owner = p.broker.as_deref().unwrap_or("(no live owner)");
///     println!("partition {} on {owner}, epoch {}", p.partition, p.epoch);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: u32,
    /// The broker that writes it; `None` while it has no live owner.
    pub broker: Option<String>,
    /// Bumped on every move; a stale owner's writes are refused by it.
    pub epoch: u64,
}

/// A consumer group in a listing.
///
/// ```no_run
/// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
/// for g in admin.list_groups().await? {
///     println!("{} {} ({} members)", g.group, g.state, g.members);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group's name.
    pub group: String,
    /// Empty, PreparingRebalance, CompletingRebalance or Stable.
    pub state: String,
    /// `consumer` for Kafka-style consumer groups.
    pub protocol_type: String,
    /// Members right now.
    pub members: u32,
}

/// One member of a group and its partitions.
///
/// ```no_run
/// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
/// for m in admin.describe_group("billing").await?.members {
///     println!("{} ({} at {}): {} partitions", m.member_id, m.client_id, m.client_host,
///         m.assignment.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The id the coordinator gave the member.
    pub member_id: String,
    /// The id the client chose for itself.
    pub client_id: String,
    /// The address its calls came from.
    pub client_host: String,
    /// The partitions it reads in the current generation.
    pub assignment: Vec<TopicPartition>,
    /// The swimlane it serves on topics with lanes; empty for the main lane.
    pub lane: String,
}

/// A partition's committed offset and how far behind the log end it is.
///
/// ```no_run
/// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
/// let total: i64 = admin.describe_group("billing").await?.offsets.iter().map(|o| o.lag).sum();
/// println!("billing is {total} records behind");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// -1 when nothing is committed.
    pub committed: i64,
    /// The partition's end: the offset the next record gets.
    pub high_watermark: i64,
    /// Records not yet committed by the group.
    pub lag: i64,
    /// The member it is assigned to, if any.
    pub member_id: Option<String>,
}

/// A group's members, assignment and lag.
///
/// ```no_run
/// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
/// let g = admin.describe_group("billing").await?;
/// println!("{} is {} in generation {} ({}), led by {}", g.group, g.state, g.generation,
///     g.protocol, g.leader);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group's name.
    pub group: String,
    /// Empty, PreparingRebalance, CompletingRebalance or Stable.
    pub state: String,
    /// Bumped by every completed rebalance.
    pub generation: i32,
    /// `consumer` for Kafka-style consumer groups.
    pub protocol_type: String,
    /// The assignor chosen for this generation (`range`, `roundrobin`).
    pub protocol: String,
    /// The member that computed the assignment.
    pub leader: String,
    /// Every member with its partitions.
    pub members: Vec<GroupMember>,
    /// Every assigned or committed partition with its lag.
    pub offsets: Vec<PartitionLag>,
    /// A broadcast group's members (state `Broadcast`), each with its own positions.
    pub broadcast_members: Vec<BroadcastMember>,
}

/// A member of a broadcast group: it reads every partition, with positions of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastMember {
    /// The name it consumes under (`ConsumerBuilder::broadcast`).
    pub member: String,
    /// When it last committed, milliseconds since the Unix epoch.
    pub committed_ms: i64,
    /// Its position and lag in every partition it committed.
    pub offsets: Vec<PartitionLag>,
}

/// Settings of a new topic; `None` keeps the server's default.
///
/// ```
/// use strata_client::admin::TopicSettings;
/// let settings = TopicSettings {
///     retention_bytes: Some(10 << 30),
///     segment_bytes: Some(64 << 20),
///     ..TopicSettings::default()
/// };
/// assert_eq!(settings.retention_ms, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSettings {
    /// Keep data this long (ms); -1 forever. Default 7 days.
    pub retention_ms: Option<i64>,
    /// Keep at most this many bytes per partition; -1 no limit (the default).
    pub retention_bytes: Option<i64>,
    /// Size compaction merges small objects into (default 128 MiB).
    pub segment_bytes: Option<u64>,
    /// Swimlanes the topic carries besides the main lane (none by default).
    pub lanes: Vec<String>,
    /// The longest delay a record may ask for (ms), at most 30 days and below `retention_ms`,
    /// on a topic without size-based retention. `None` or 0 (the default): delayed records are
    /// refused.
    pub max_delay_ms: Option<i64>,
    /// Parts per million of the topic's messages whose path is traced, at most 1_000_000
    /// (every message; 10_000 is 1%). `None` or 0 (the default): tracing is off. Tracing
    /// creates the internal topic `__strata_trace`, where the trace events go.
    pub trace_sample_ppm: Option<u32>,
}

/// Administers topics and inspects groups through any proxy.
///
/// ```no_run
/// # async fn example() -> strata_client::Result<()> {
/// let admin = strata_client::Admin::connect("127.0.0.1:7070").await?;
/// admin.create_topic("orders", 12).await?;
/// for topic in admin.list_topics().await? {
///     println!("{}: {} partitions", topic.name, topic.partitions.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    connection: Connection,
}

fn topic_info(t: v1::TopicMetadata) -> TopicInfo {
    TopicInfo {
        name: t.name,
        partitions: t
            .partitions
            .into_iter()
            .map(|p| PartitionInfo {
                partition: p.partition,
                broker: (!p.broker.is_empty()).then_some(p.broker),
                epoch: p.epoch,
            })
            .collect(),
        lanes: t.lanes,
        max_delay_ms: t.max_delay_ms,
        trace_sample_ppm: t.trace_sample_ppm,
    }
}

impl Admin {
    /// Connects to a proxy.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let admin = strata_client::Admin::connect("127.0.0.1:7070").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(server: &str) -> Result<Self> {
        Ok(Self::new(Connection::connect(server).await?))
    }

    /// An admin client over an existing connection.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = strata_client::Connection::connect("127.0.0.1:7070").await?;
    /// let admin = strata_client::Admin::new(connection);
    /// # Ok(()) }
    /// ```
    pub fn new(connection: Connection) -> Self {
        Self { connection }
    }

    /// Creates a topic with default settings; its partitions are assigned before this returns.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// let topic = admin.create_topic("orders", 12).await?;
    /// assert_eq!(topic.partitions.len(), 12);
    /// # Ok(()) }
    /// ```
    pub async fn create_topic(&self, name: &str, partitions: u32) -> Result<TopicInfo> {
        self.create_topic_with(name, partitions, TopicSettings::default())
            .await
    }

    /// Creates a topic with settings.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// use strata_client::admin::TopicSettings;
    /// let settings = TopicSettings { retention_ms: Some(3_600_000), ..Default::default() };
    /// admin.create_topic_with("clicks", 4, settings).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_topic_with(
        &self,
        name: &str,
        partitions: u32,
        settings: TopicSettings,
    ) -> Result<TopicInfo> {
        let answer = self
            .connection
            .grpc()
            .create_topic(v1::CreateTopicRequest {
                name: name.to_owned(),
                partitions,
                retention_ms: settings.retention_ms,
                retention_bytes: settings.retention_bytes,
                segment_bytes: settings.segment_bytes,
                lanes: settings.lanes,
                max_delay_ms: settings.max_delay_ms.unwrap_or(0),
                trace_sample_ppm: settings.trace_sample_ppm.unwrap_or(0),
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        answer.topic.map(topic_info).ok_or(Error::Closed)
    }

    /// Deletes a topic and, in the background, its data.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// admin.delete_topic("orders").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let answer = self
            .connection
            .grpc()
            .delete_topic(v1::DeleteTopicRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)
    }

    /// Grows a topic to `total` partitions (partitions never shrink).
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// admin.create_partitions("orders", 24).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_partitions(&self, topic: &str, total: u32) -> Result<TopicInfo> {
        let answer = self
            .connection
            .grpc()
            .create_partitions(v1::CreatePartitionsRequest {
                topic: topic.to_owned(),
                partitions: total,
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        answer.topic.map(topic_info).ok_or(Error::Closed)
    }

    /// Every topic.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// let names: Vec<String> = admin.list_topics().await?.into_iter().map(|t| t.name).collect();
    /// # Ok(()) }
    /// ```
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let answer = self
            .connection
            .grpc()
            .metadata(v1::MetadataRequest { topics: Vec::new() })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        Ok(answer.topics.into_iter().map(topic_info).collect())
    }

    /// One topic's partitions and owners; `UNKNOWN_TOPIC` if it does not exist.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// let topic = admin.describe_topic("orders").await?;
    /// # Ok(()) }
    /// ```
    pub async fn describe_topic(&self, name: &str) -> Result<TopicInfo> {
        let answer = self
            .connection
            .grpc()
            .metadata(v1::MetadataRequest {
                topics: vec![name.to_owned()],
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        let topic = answer.topics.into_iter().next().ok_or(Error::Closed)?;
        check(topic.error.clone())?;
        Ok(topic_info(topic))
    }

    /// The offset `at` names in a partition: earliest, latest (the high watermark), or the
    /// first at or after a timestamp.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// use strata_client::{Offset, TopicPartition};
    /// let end = admin.list_offset(&TopicPartition::new("orders", 0), Offset::Latest).await?;
    /// # Ok(()) }
    /// ```
    pub async fn list_offset(&self, tp: &TopicPartition, at: Offset) -> Result<i64> {
        crate::consumer::resolve(&self.connection, tp, at).await
    }

    /// Every consumer group.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// for g in admin.list_groups().await? {
    ///     println!("{} {} ({} members)", g.group, g.state, g.members);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let answer = self
            .connection
            .grpc()
            .list_groups(v1::ListGroupsRequest {})
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        Ok(answer
            .groups
            .into_iter()
            .map(|g| GroupListing {
                group: g.group,
                state: g.state,
                protocol_type: g.protocol_type,
                members: g.members,
            })
            .collect())
    }

    /// Deletes a consumer group: its state and committed offsets (Kafka's
    /// `deleteConsumerGroups`). Refused with `GROUP_NOT_EMPTY` while the group has live
    /// members, `UNKNOWN_GROUP` when it has nothing to delete.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// admin.delete_group("old-billing").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let answer = self
            .connection
            .grpc()
            .delete_group(v1::DeleteGroupRequest {
                group: group.to_owned(),
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)
    }

    /// Sets a group's committed offsets from outside the group (Kafka's
    /// `alterConsumerGroupOffsets`): each is the next offset its partition's consumers read.
    /// Refused while the group has live members (they commit their own positions), and per
    /// partition for an offset outside the log.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// use std::collections::BTreeMap;
    /// use strata_client::TopicPartition;
    /// admin.alter_group_offsets("billing", &BTreeMap::from([(TopicPartition::new("orders", 0), 0)])).await?;
    /// # Ok(()) }
    /// ```
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let answer = self
            .connection
            .grpc()
            .offset_commit(offset_commit_request(group, -1, "", offsets))
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        partition_errors(answer.partitions)
    }

    /// A group's members, their partitions, and committed offsets with lag.
    ///
    /// ```no_run
    /// # async fn example(admin: &strata_client::Admin) -> strata_client::Result<()> {
    /// let g = admin.describe_group("billing").await?;
    /// let total_lag: i64 = g.offsets.iter().map(|o| o.lag).sum();
    /// # Ok(()) }
    /// ```
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let d = self
            .connection
            .grpc()
            .describe_group(v1::DescribeGroupRequest {
                group: group.to_owned(),
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(d.error)?;
        Ok(GroupDescription {
            group: d.group,
            state: d.state,
            generation: d.generation,
            protocol_type: d.protocol_type,
            protocol: d.protocol,
            leader: d.leader,
            members: d
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    lane: m.lane,
                    assignment: m
                        .assignment
                        .into_iter()
                        .map(|tp| TopicPartition::new(tp.topic, tp.partition))
                        .collect(),
                })
                .collect(),
            offsets: d.offsets.into_iter().map(partition_lag).collect(),
            broadcast_members: d
                .broadcast_members
                .into_iter()
                .map(|m| BroadcastMember {
                    member: m.member,
                    committed_ms: m.committed_ms,
                    offsets: m.offsets.into_iter().map(partition_lag).collect(),
                })
                .collect(),
        })
    }
}

fn partition_lag(o: v1::PartitionLag) -> PartitionLag {
    PartitionLag {
        partition: TopicPartition::new(o.topic, o.partition),
        committed: o.committed,
        high_watermark: o.high_watermark,
        lag: o.lag,
        member_id: (!o.member_id.is_empty()).then_some(o.member_id),
    }
}
