//! The consumer: reads partitions it is assigned (by itself, or by its group), tracks its
//! position in each, and commits positions to its group.

mod assignor;
mod fetcher;
pub(crate) mod group;
mod retry;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use strata_format::lanes::LaneFilter;
use strata_format::select::Selector;
use strata_proto::v1;
use tokio::task::JoinSet;

pub use assignor::Assignor;
use fetcher::{FetchSettings, Fetched, Fetchers, resolve_offset};
use group::Membership;
pub use retry::{Nacked, RetryPolicy};

use crate::connection::Connection;
use crate::error::{Error, Result, check};
use crate::types::{Offset, TopicPartition};

/// A record as the consumer hands it out.
///
/// ```no_run
/// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
/// for record in consumer.poll(std::time::Duration::from_secs(1)).await? {
///     let text = record.value.as_deref().map(String::from_utf8_lossy);
///     println!("{}/{}@{} key={:?} value={text:?}", record.topic, record.partition,
///         record.offset, record.key);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic it was read from.
    pub topic: String,
    /// The partition it was read from.
    pub partition: u32,
    /// Its position in the partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch, as the producer set it.
    pub timestamp: i64,
    /// The key the producer set, if any.
    pub key: Option<Bytes>,
    /// The payload (`None` for a null value).
    pub value: Option<Bytes>,
    /// Headers in the order the producer wrote them.
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl ConsumerRecord {
    /// The partition the record came from.
    ///
    /// ```
    /// # let record = strata_client::ConsumerRecord { topic: "t".into(), partition: 2, offset: 0,
    /// #     timestamp: 0, key: None, value: None, headers: vec![] };
    /// assert_eq!(record.topic_partition().to_string(), "t/2");
    /// ```
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

/// Consumer settings. `Default` gives Kafka's defaults where they apply.
///
/// ```
/// use std::time::Duration;
/// use strata_client::{ConsumerConfig, Offset};
/// let config = ConsumerConfig {
///     group: Some("billing".into()),
///     auto_offset_reset: Offset::Earliest,
///     session_timeout: Duration::from_secs(30),
///     heartbeat_interval: Duration::from_secs(5),
///     ..ConsumerConfig::default()
/// };
/// let builder = strata_client::Consumer::builder("127.0.0.1:7070").config(config);
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The consumer group; needed for `subscribe` and for committing.
    pub group: Option<String>,
    /// Names this client in group descriptions.
    pub client_id: String,
    /// Where to start a partition that has no committed offset, and where to go when the
    /// position fell out of the log: `Earliest` or `Latest` (the default, as in Kafka).
    pub auto_offset_reset: Offset,
    /// Commit positions every `auto_commit_interval` from `poll`, before a rebalance and on
    /// `close` (default on).
    pub enable_auto_commit: bool,
    /// How often `poll` commits when auto-commit is on (5 s).
    pub auto_commit_interval: Duration,
    /// The group removes this consumer when it sends no heartbeat for this long (10 s).
    pub session_timeout: Duration,
    /// Between heartbeats (3 s); keep it below a third of the session timeout.
    pub heartbeat_interval: Duration,
    /// How long a rebalance waits for members to rejoin (30 s).
    pub rebalance_timeout: Duration,
    /// Assignors offered to the group, preferred first (range, then roundrobin).
    pub assignors: Vec<Assignor>,
    /// Bytes per fetch of one partition (1 MiB).
    pub fetch_max_bytes: u32,
    /// How long a fetch waits for new data (500 ms).
    pub fetch_max_wait: Duration,
    /// Most records one `poll` returns (500).
    pub max_poll_records: usize,
    /// How often the group leader checks subscribed topics for new partitions (5 s).
    pub metadata_max_age: Duration,
    /// Pause before retrying a failed group call (100 ms).
    pub retry_backoff: Duration,
    /// Which records to receive by their tags: `*` (every record) or tags joined by `||`
    /// (`TagA || TagB`). The proxy leaves the others out before they are sent; the position
    /// and the committed offsets move past them all the same.
    pub tags: String,
    /// A SQL-92 condition on record headers, RocketMQ's property filter
    /// (`region = 'eu' AND amount > 100`); empty for none. Taken records pass both this and
    /// `tags`; the others are left out at the proxy, as with tags.
    pub filter: String,
    /// The swimlane this consumer serves on topics that declare lanes; empty for the main
    /// lane, whose consumers never receive lane records. A lane a topic does not declare is
    /// refused by every fetch of that topic.
    pub lane: String,
    /// With `lane`: also receive the main lane's records (a tester's service that handles
    /// production traffic it has no test version of).
    pub lane_with_main: bool,
    /// Consume in broadcast mode as this member of `group`: every partition of the subscribed
    /// topics, with positions of this member's own, kept under its name so they survive its
    /// restarts (RocketMQ's `BROADCASTING`). `None`: clustering, the partitions shared out
    /// among the group's members.
    pub broadcast: Option<String>,
    /// Retries of the records this group's consumers fail ([`Consumer::nack`]): the
    /// subscription then includes the group's retry topic. `None`: no retries.
    pub retry: Option<RetryPolicy>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            group: None,
            client_id: "strata-consumer".into(),
            auto_offset_reset: Offset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(3),
            rebalance_timeout: Duration::from_secs(30),
            assignors: vec![Assignor::Range, Assignor::RoundRobin],
            fetch_max_bytes: 1 << 20,
            fetch_max_wait: Duration::from_millis(500),
            max_poll_records: 500,
            metadata_max_age: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(100),
            tags: "*".into(),
            filter: String::new(),
            lane: String::new(),
            lane_with_main: false,
            broadcast: None,
            retry: None,
        }
    }
}

impl ConsumerConfig {
    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidConfig(m.to_owned()));
        if !matches!(self.auto_offset_reset, Offset::Earliest | Offset::Latest) {
            return bad("auto_offset_reset must be Offset::Earliest or Offset::Latest");
        }
        if self.assignors.is_empty() {
            return bad("assignors is empty; offer at least one (Assignor::Range)");
        }
        if self.heartbeat_interval >= self.session_timeout {
            return bad(
                "heartbeat_interval must be shorter than session_timeout (a third of it is usual)",
            );
        }
        if self.max_poll_records == 0 {
            return bad("max_poll_records must be at least 1");
        }
        if self.group.as_deref() == Some("") {
            return bad("group is empty; use None for a consumer without a group");
        }
        if let Some(member) = &self.broadcast {
            if self.group.is_none() {
                return bad(
                    "broadcast needs a group: its members' positions are kept under the group",
                );
            }
            strata_format::tags::check_word("broadcast member", member, 249)
                .map_err(Error::InvalidConfig)?;
            if member == "." || member == ".." {
                return bad("a broadcast member cannot be named `.` or `..`");
            }
        }
        if let Some(policy) = &self.retry {
            if self.group.is_none() || self.broadcast.is_some() {
                return bad(
                    "retries need a clustering group: its retry topic is shared by its members",
                );
            }
            policy.validate()?;
        }
        self.selector()?;
        Ok(())
    }

    /// What this consumer takes. The proxy applies it; the consumer checks again, which
    /// covers a lane consumer too (a main-lane one cannot tell here whether a topic has
    /// lanes).
    fn selector(&self) -> Result<Selector> {
        let selector = Selector::parse(&self.tags, &self.filter)
            .map_err(|e| Error::InvalidConfig(e.to_string()))?;
        let lane = self.lane.trim();
        if lane.is_empty() {
            if self.lane_with_main {
                return Err(Error::InvalidConfig(
                    "lane_with_main is set without a lane; name the lane to serve".into(),
                ));
            }
            return Ok(selector);
        }
        strata_format::lanes::check_lane(lane).map_err(|e| Error::InvalidConfig(e.to_string()))?;
        Ok(selector.on_lanes(LaneFilter::Lane {
            name: lane.to_owned(),
            with_main: self.lane_with_main,
        }))
    }
}

/// Builds a [`Consumer`].
///
/// ```no_run
/// # async fn example() -> strata_client::Result<()> {
/// use strata_client::{Consumer, Offset};
/// let consumer = Consumer::builder("127.0.0.1:7070")
///     .group("audit")
///     .auto_offset_reset(Offset::Earliest)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ConsumerBuilder {
    server: String,
    config: ConsumerConfig,
    options: crate::ConnectOptions,
}

impl ConsumerBuilder {
    /// Joins (or commits for) this group.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .group("billing");
    /// ```
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.config.group = Some(group.into());
        self
    }
    /// Names this client in group descriptions.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .client_id("billing-7");
    /// ```
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = id.into();
        self
    }
    /// Where partitions without a committed offset start: `Earliest` or `Latest`.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .auto_offset_reset(strata_client::Offset::Earliest);
    /// ```
    pub fn auto_offset_reset(mut self, reset: Offset) -> Self {
        self.config.auto_offset_reset = reset;
        self
    }
    /// Commit positions from `poll`, before rebalances and on `close`.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .enable_auto_commit(false);
    /// ```
    pub fn enable_auto_commit(mut self, on: bool) -> Self {
        self.config.enable_auto_commit = on;
        self
    }
    /// How often auto-commit commits.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .auto_commit_interval(std::time::Duration::from_secs(1));
    /// ```
    pub fn auto_commit_interval(mut self, every: Duration) -> Self {
        self.config.auto_commit_interval = every;
        self
    }
    /// How long the group waits for a heartbeat before removing this consumer.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .session_timeout(std::time::Duration::from_secs(30));
    /// ```
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.config.session_timeout = timeout;
        self
    }
    /// Time between heartbeats (below a third of the session timeout).
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .heartbeat_interval(std::time::Duration::from_secs(5));
    /// ```
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.config.heartbeat_interval = every;
        self
    }
    /// How long a rebalance waits for members to rejoin.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .rebalance_timeout(std::time::Duration::from_secs(60));
    /// ```
    pub fn rebalance_timeout(mut self, timeout: Duration) -> Self {
        self.config.rebalance_timeout = timeout;
        self
    }
    /// Assignors offered to the group, preferred first.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .assignors(vec![strata_client::Assignor::RoundRobin]);
    /// ```
    pub fn assignors(mut self, assignors: Vec<Assignor>) -> Self {
        self.config.assignors = assignors;
        self
    }
    /// Most records one `poll` returns.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .max_poll_records(100);
    /// ```
    pub fn max_poll_records(mut self, n: usize) -> Self {
        self.config.max_poll_records = n;
        self
    }
    /// How long a fetch waits on the server for new records.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .fetch_max_wait(std::time::Duration::from_millis(100));
    /// ```
    pub fn fetch_max_wait(mut self, wait: Duration) -> Self {
        self.config.fetch_max_wait = wait;
        self
    }
    /// Receives only the records carrying one of some tags (`"TagA || TagB"`), or every
    /// record (`"*"`, the default). A tag expression that does not parse fails `build`.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070").tags("paid || refunded");
    /// ```
    pub fn tags(mut self, expression: impl Into<String>) -> Self {
        self.config.tags = expression.into();
        self
    }
    /// Receives only the records whose headers satisfy a SQL-92 condition, as RocketMQ's
    /// `MessageSelector.bySql`: `=`, `<>`, `<`, `<=`, `>`, `>=`, `[NOT] BETWEEN`, `[NOT] IN`,
    /// `IS [NOT] NULL`, `AND`, `OR`, `NOT`. A record without a header the condition needs is
    /// not taken. A condition that does not parse fails `build`.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .filter("region IN ('eu', 'uk') AND amount > 100");
    /// ```
    pub fn filter(mut self, condition: impl Into<String>) -> Self {
        self.config.filter = condition.into();
        self
    }
    /// Serves a swimlane: on topics that declare it, receives that lane's records only (and
    /// the main lane's with [`lane_with_main`](Self::lane_with_main)). Consumers without a
    /// lane never receive lane records.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .group("billing-alice")
    ///     .lane("test-alice");
    /// ```
    pub fn lane(mut self, lane: impl Into<String>) -> Self {
        self.config.lane = lane.into();
        self
    }
    /// With a lane: also receive the main lane's records.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .lane("test-alice")
    ///     .lane_with_main(true);
    /// ```
    pub fn lane_with_main(mut self, with_main: bool) -> Self {
        self.config.lane_with_main = with_main;
        self
    }
    /// Consumes in broadcast mode as `member` of the group: `subscribe` reads every partition
    /// of its topics, whatever other members do, and commits positions of this member's own,
    /// which its next run under the same name starts from.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .group("cache-invalidation")
    ///     .broadcast("node-1");
    /// ```
    pub fn broadcast(mut self, member: impl Into<String>) -> Self {
        self.config.broadcast = Some(member.into());
        self
    }
    /// Retries failed records ([`Consumer::nack`]) on `policy`: the group's subscription
    /// also reads its retry topic, where nacked records come back.
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070")
    ///     .group("billing")
    ///     .retries(strata_client::RetryPolicy::default());
    /// ```
    pub fn retries(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = Some(policy);
        self
    }
    /// Replaces every setting.
    ///
    /// ```
    /// let config = strata_client::ConsumerConfig {
    ///     max_poll_records: 50,
    ///     ..Default::default()
    /// };
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070").config(config);
    /// ```
    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.config = config;
        self
    }

    /// Connects over TLS with `tls` (see [`crate::Tls`]).
    pub fn tls(mut self, tls: crate::Tls) -> Self {
        self.options = self.options.tls(tls);
        self
    }

    /// TLS and credentials together, replacing any set by [`Self::tls`] or [`Self::token`].
    pub fn connect_options(mut self, options: crate::ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// Sends `token` with every call (see [`crate::Token`]).
    pub fn token(mut self, token: crate::Token) -> Self {
        self.options = self.options.token(token);
        self
    }

    /// Connects to the proxy; fails with [`Error::Connect`] when none answers, or with
    /// [`Error::InvalidConfig`] naming a setting that cannot work.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let consumer = strata_client::Consumer::builder("127.0.0.1:7070").build().await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<Consumer> {
        let connection = Connection::connect_with(&self.server, self.options).await?;
        Consumer::new(connection, self.config)
    }
}

/// What the consumer is reading.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Idle,
    /// Partitions chosen with `assign`.
    Assigned,
    /// Topics subscribed through the group.
    Subscribed(Vec<String>),
    /// Every partition of these topics, as a member of a broadcast group.
    Broadcast(Vec<String>),
}

/// Reads records from Strata, Kafka-style: `assign` partitions or `subscribe` to topics with
/// a group, then `poll`.
///
/// ```no_run
/// # async fn example() -> strata_client::Result<()> {
/// use std::time::Duration;
/// use strata_client::{Consumer, Offset};
/// let mut consumer = Consumer::builder("127.0.0.1:7070")
///     .group("audit")
///     .auto_offset_reset(Offset::Earliest)
///     .build()
///     .await?;
/// consumer.subscribe(&["orders"]).await?;
/// loop {
///     for record in consumer.poll(Duration::from_millis(500)).await? {
///         println!("{}/{}@{}", record.topic, record.partition, record.offset);
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Consumer {
    connection: Connection,
    config: ConsumerConfig,
    mode: Mode,
    /// Assigned partitions and the next offset to hand out (`None`: not resolved yet).
    positions: BTreeMap<TopicPartition, Option<i64>>,
    fetchers: Fetchers,
    /// Fetched records not yet handed out.
    pending: VecDeque<Fetched>,
    membership: Option<Membership>,
    last_commit: Instant,
    async_commits: JoinSet<()>,
    /// When a broadcast member last looked for new partitions.
    partitions_checked: Option<Instant>,
}

impl Consumer {
    /// A builder connecting to `server` (`host:port`).
    ///
    /// ```
    /// let builder = strata_client::Consumer::builder("127.0.0.1:7070").group("audit");
    /// ```
    pub fn builder(server: &str) -> ConsumerBuilder {
        ConsumerBuilder {
            server: server.to_owned(),
            config: ConsumerConfig::default(),
            options: Default::default(),
        }
    }

    /// A consumer over an existing connection.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// use strata_client::{Connection, Consumer, ConsumerConfig};
    /// let connection = Connection::connect("127.0.0.1:7070").await?;
    /// let consumer = Consumer::new(connection, ConsumerConfig::default())?;
    /// # Ok(()) }
    /// ```
    pub fn new(connection: Connection, config: ConsumerConfig) -> Result<Self> {
        config.validate()?;
        let selector = config.selector()?;
        let fetchers = Fetchers::new(
            connection.clone(),
            FetchSettings {
                max_bytes: config.fetch_max_bytes,
                max_wait: config.fetch_max_wait,
                reset: config.auto_offset_reset,
                // `*` asks for everything, which an empty expression says to older proxies too.
                tags: if config.tags.trim() == "*" {
                    String::new()
                } else {
                    config.tags.trim().to_owned()
                },
                filter: config.filter.trim().to_owned(),
                lane: config.lane.trim().to_owned(),
                lane_with_main: config.lane_with_main,
                selector,
                group: config.group.clone().unwrap_or_default(),
            },
        );
        let membership = config
            .group
            .clone()
            .map(|group| Membership::new(group, config.broadcast.clone()));
        Ok(Self {
            connection,
            config,
            mode: Mode::Idle,
            positions: BTreeMap::new(),
            fetchers,
            pending: VecDeque::new(),
            membership,
            last_commit: Instant::now(),
            async_commits: JoinSet::new(),
            partitions_checked: None,
        })
    }

    /// Reads exactly these partitions, outside group management (no rebalancing). Positions
    /// start at the group's committed offsets when there is a group, else at
    /// `auto_offset_reset`.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// use strata_client::TopicPartition;
    /// consumer.assign(vec![TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        if let Mode::Subscribed(_) | Mode::Broadcast(_) = self.mode {
            self.unsubscribe().await?;
        }
        self.revoke_all();
        self.mode = Mode::Assigned;
        for tp in partitions {
            self.positions.insert(tp, None);
        }
        Ok(())
    }

    /// Reads `topics` as a member of the consumer group: the group's leader splits their
    /// partitions among the members, and reassigns them when members come and go.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// consumer.subscribe(&["orders", "refunds"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        if self.membership.is_none() {
            return Err(Error::InvalidConfig(
                "subscribe needs a consumer group; set one with .group(\"name\") or use assign"
                    .into(),
            ));
        }
        if topics.is_empty() {
            return Err(Error::InvalidConfig(
                "subscribe needs at least one topic".into(),
            ));
        }
        let mut topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        if let (Some(group), Some(_)) = (&self.config.group, &self.config.retry) {
            let retry_topic = self.retry_topic(group).await?;
            if !topics.contains(&retry_topic) {
                topics.push(retry_topic);
            }
        }
        if self.config.broadcast.is_some() {
            if self.mode != Mode::Broadcast(topics.clone()) {
                self.commit_before_revoke().await;
                self.revoke_all();
                self.mode = Mode::Broadcast(topics);
                self.partitions_checked = None;
            }
            return Ok(());
        }
        if self.mode != Mode::Subscribed(topics.clone()) {
            self.revoke_all();
            self.mode = Mode::Subscribed(topics);
            if let Some(m) = &self.membership {
                m.signals.rejoin.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Stops reading and leaves the group.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// consumer.unsubscribe().await?;
    /// # Ok(()) }
    /// ```
    pub async fn unsubscribe(&mut self) -> Result<()> {
        self.commit_before_revoke().await;
        self.revoke_all();
        self.mode = Mode::Idle;
        if let Some(m) = &mut self.membership {
            m.leave(&self.connection).await?;
        }
        Ok(())
    }

    /// Changes how many records one `poll` returns at most (at least 1).
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// consumer.set_max_poll_records(10);
    /// # Ok(()) }
    /// ```
    pub fn set_max_poll_records(&mut self, n: usize) {
        self.config.max_poll_records = n.max(1);
    }

    /// The partitions currently assigned to this consumer.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// for tp in consumer.assignment() {
    ///     println!("reading {tp}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    /// The next offset `poll` will hand out for `tp`, once known.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// let tp = strata_client::TopicPartition::new("orders", 0);
    /// if let Some(next) = consumer.position(&tp) {
    ///     println!("{tp} continues at {next}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied().flatten()
    }

    /// The member id the group gave this consumer (empty before joining).
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// println!("member {} of generation {}", consumer.member_id(), consumer.generation());
    /// # Ok(()) }
    /// ```
    pub fn member_id(&self) -> &str {
        self.membership
            .as_ref()
            .map_or("", |m| m.member_id.as_str())
    }

    /// The group generation this consumer belongs to (-1 before joining).
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// if consumer.generation() < 0 {
    ///     println!("not joined yet; poll joins");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn generation(&self) -> i32 {
        self.membership.as_ref().map_or(-1, |m| m.generation)
    }

    /// Moves the position of an assigned partition: to an offset, the earliest or latest
    /// record, or the first record at or after a timestamp.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// use strata_client::{Offset, TopicPartition};
    /// consumer.seek(&TopicPartition::new("orders", 0), Offset::Timestamp(1_700_000_000_000)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn seek(&mut self, tp: &TopicPartition, to: Offset) -> Result<()> {
        if !self.positions.contains_key(tp) {
            return Err(Error::InvalidConfig(format!(
                "{tp} is not assigned to this consumer; assign or subscribe first"
            )));
        }
        let offset = resolve_offset(&self.connection, tp, to).await?;
        if offset < 0 {
            return Err(Error::InvalidConfig(format!(
                "cannot seek {tp} to offset {offset}: offsets are ≥ 0"
            )));
        }
        self.pending.retain(|f| &f.tp != tp);
        self.positions.insert(tp.clone(), Some(offset));
        self.fetchers.start(tp.clone(), offset);
        Ok(())
    }

    /// Waits up to `timeout` for records and returns what arrived (at most
    /// `max_poll_records`), in offset order within each partition. Group work — joining,
    /// rebalancing, auto-commit — happens here too.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// let records = consumer.poll(std::time::Duration::from_millis(500)).await?;
    /// println!("{} records", records.len());
    /// # Ok(()) }
    /// ```
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        self.maybe_join().await?;
        self.add_broadcast_partitions().await?;
        // Without a group there is nowhere to commit to; `assign` alone tracks positions
        // in memory only.
        if self.config.enable_auto_commit
            && self.config.group.is_some()
            && self.last_commit.elapsed() >= self.config.auto_commit_interval
        {
            self.last_commit = Instant::now();
            if let Err(e) = self.commit_sync().await {
                tracing::warn!(error = %e, "auto-commit failed");
            }
        }
        self.start_fetchers().await?;
        let mut out = Vec::new();
        loop {
            self.drain_pending(&mut out)?;
            if !out.is_empty() || self.rejoin_signalled() {
                return Ok(out);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            let wake = self.membership.as_ref().map(|m| m.signals.clone());
            let next = match wake {
                Some(signals) => tokio::select! {
                    fetched = self.fetchers.recv(left) => fetched,
                    () = signals.wake.notified() => None,
                },
                None => self.fetchers.recv(left).await,
            };
            if let Some(fetched) = next {
                self.pending.push_back(fetched);
                // Every partition's answer that has arrived goes out in this poll, not one
                // answer per poll: a consumer of many partitions would fall behind otherwise.
                // Bounded as the fetchers' queue is, which holds the fetchers back.
                while self.pending.len() < fetcher::QUEUED_FETCHES
                    && let Some(more) = self.fetchers.try_recv()
                {
                    self.pending.push_back(more);
                }
            }
        }
    }

    fn rejoin_signalled(&self) -> bool {
        matches!(self.mode, Mode::Subscribed(_))
            && self.membership.as_ref().is_some_and(Membership::needs_join)
    }

    /// Hands out pending records, up to `max_poll_records`, advancing positions.
    fn drain_pending(&mut self, out: &mut Vec<ConsumerRecord>) -> Result<()> {
        while out.len() < self.config.max_poll_records {
            let Some(mut fetched) = self.pending.pop_front() else {
                return Ok(());
            };
            if !self.fetchers.is_current(&fetched) {
                continue;
            }
            let records = match &mut fetched.records {
                Ok(records) => records,
                Err(_) => {
                    let tp = fetched.tp.clone();
                    self.fetchers.stop(&tp);
                    self.positions.insert(tp.clone(), None);
                    return Err(fetched.records.err().unwrap_or(Error::Closed));
                }
            };
            let Some(Some(position)) = self.positions.get(&fetched.tp).copied() else {
                continue;
            };
            records.retain(|r| r.offset >= position);
            let room = self.config.max_poll_records - out.len();
            let rest = if records.len() > room {
                records.split_off(room)
            } else {
                Vec::new()
            };
            // Handed out whole, the fetch moves the position past what the proxy left out
            // too, so commits and lag count filtered records as consumed.
            let next = if rest.is_empty() {
                Some(fetched.next_offset)
            } else {
                records.last().map(|last| last.offset + 1)
            };
            if let Some(next) = next.filter(|n| *n > position) {
                self.positions.insert(fetched.tp.clone(), Some(next));
            }
            out.append(records);
            if !rest.is_empty() {
                fetched.records = Ok(rest);
                self.pending.push_front(fetched);
            }
        }
        Ok(())
    }

    /// A broadcast member reads every partition: the topics' partitions are looked up at the
    /// first poll, and again every `metadata_max_age` for partitions added since.
    async fn add_broadcast_partitions(&mut self) -> Result<()> {
        let Mode::Broadcast(topics) = &self.mode else {
            return Ok(());
        };
        if self
            .partitions_checked
            .is_some_and(|at| at.elapsed() < self.config.metadata_max_age)
        {
            return Ok(());
        }
        let counts = group::partition_counts(&self.connection, topics.clone()).await?;
        if let Some(missing) = topics.iter().find(|t| !counts.contains_key(*t)) {
            return Err(Error::Server {
                code: strata_proto::ErrorCode::UnknownTopic,
                message: format!(
                    "topic `{missing}` does not exist; a broadcast member reads existing topics"
                ),
            });
        }
        self.partitions_checked = Some(Instant::now());
        for (topic, count) in counts {
            for partition in 0..count {
                self.positions
                    .entry(TopicPartition::new(topic.clone(), partition))
                    .or_insert(None);
            }
        }
        Ok(())
    }

    /// Joins the group when subscribed and a (re)join is due.
    async fn maybe_join(&mut self) -> Result<()> {
        let Mode::Subscribed(topics) = self.mode.clone() else {
            return Ok(());
        };
        if !self.rejoin_signalled() {
            return Ok(());
        }
        // Eager rebalancing: commit what we consumed, give everything up, take the new share.
        self.commit_before_revoke().await;
        self.revoke_all();
        let Some(membership) = &mut self.membership else {
            return Ok(());
        };
        let assignment = membership
            .join(&self.connection, &self.config, &topics)
            .await?;
        for tp in assignment {
            self.positions.insert(tp, None);
        }
        Ok(())
    }

    /// Resolves unknown positions (committed offset, else the reset policy) and starts a
    /// fetcher for every assigned partition without one.
    async fn start_fetchers(&mut self) -> Result<()> {
        let unknown: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if !unknown.is_empty() {
            let committed = self.committed(&unknown).await?;
            for tp in unknown {
                let offset = match committed.get(&tp) {
                    Some(&offset) if offset >= 0 => offset,
                    _ => {
                        resolve_offset(&self.connection, &tp, self.config.auto_offset_reset).await?
                    }
                };
                self.positions.insert(tp, Some(offset));
            }
        }
        let idle: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .filter(|(tp, _)| !self.fetchers.is_running(tp))
            .filter_map(|(tp, p)| p.map(|p| (tp.clone(), p)))
            .collect();
        for (tp, offset) in idle {
            self.fetchers.start(tp, offset);
        }
        Ok(())
    }

    /// The group's committed offsets of `partitions` (empty without a group).
    ///
    /// ```no_run
    /// # async fn example(consumer: &strata_client::Consumer) -> strata_client::Result<()> {
    /// use strata_client::TopicPartition;
    /// let committed = consumer.committed(&[TopicPartition::new("orders", 0)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let Some(group) = &self.config.group else {
            return Ok(BTreeMap::new());
        };
        let answer = self
            .connection
            .grpc()
            .offset_fetch(v1::OffsetFetchRequest {
                group: group.clone(),
                partitions: partitions.iter().cloned().map(Into::into).collect(),
                broadcast_member: self.config.broadcast.clone().unwrap_or_default(),
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        Ok(answer
            .offsets
            .into_iter()
            .filter(|o| o.offset >= 0)
            .map(|o| (TopicPartition::new(o.topic, o.partition), o.offset))
            .collect())
    }

    /// The positions worth committing: every assigned partition with a known position.
    fn consumed(&self) -> BTreeMap<TopicPartition, i64> {
        self.positions
            .iter()
            .filter_map(|(tp, p)| p.map(|p| (tp.clone(), p)))
            .collect()
    }

    /// Commits the current positions and waits for the answer.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// let records = consumer.poll(std::time::Duration::from_secs(1)).await?;
    /// // ... process the records, then:
    /// consumer.commit_sync().await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit_sync(&mut self) -> Result<()> {
        let offsets = self.consumed();
        self.commit_offsets(&offsets).await
    }

    /// Commits the current positions in the background; failures are logged (and a stale
    /// membership makes the next `poll` rejoin).
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// consumer.poll(std::time::Duration::from_secs(1)).await?;
    /// consumer.commit_async()?;
    /// # Ok(()) }
    /// ```
    pub fn commit_async(&mut self) -> Result<()> {
        let Some(membership) = &self.membership else {
            return Err(no_group());
        };
        let offsets = self.consumed();
        if offsets.is_empty() {
            return Ok(());
        }
        let request = membership.commit_request(&offsets);
        let (connection, signals) = (self.connection.clone(), membership.signals.clone());
        while self.async_commits.try_join_next().is_some() {}
        self.async_commits.spawn(async move {
            if let Err(e) = group::commit_request(&connection, request, &signals).await {
                tracing::warn!(error = %e, "asynchronous commit failed");
            }
        });
        Ok(())
    }

    /// Commits these offsets (the next offset to read of each partition).
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// use std::collections::BTreeMap;
    /// use strata_client::TopicPartition;
    /// consumer.commit_offsets(&BTreeMap::from([(TopicPartition::new("orders", 0), 42)])).await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let Some(membership) = &self.membership else {
            return Err(no_group());
        };
        membership.commit(&self.connection, offsets).await
    }

    async fn commit_before_revoke(&mut self) {
        if self.config.enable_auto_commit
            && self.membership.is_some()
            && !self.positions.is_empty()
            && let Err(e) = self.commit_sync().await
        {
            tracing::warn!(error = %e, "commit before giving partitions up failed");
        }
    }

    fn revoke_all(&mut self) {
        self.fetchers.stop_all();
        self.pending.clear();
        self.positions.clear();
    }

    /// Commits (with auto-commit on), leaves the group and stops every background task.
    ///
    /// ```no_run
    /// # async fn example(consumer: strata_client::Consumer) -> strata_client::Result<()> {
    /// consumer.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(mut self) -> Result<()> {
        self.commit_before_revoke().await;
        while self.async_commits.join_next().await.is_some() {}
        self.revoke_all();
        if let Some(m) = &mut self.membership {
            m.leave(&self.connection).await?;
        }
        Ok(())
    }
}

/// The offset `at` names in `tp` (shared with [`crate::Admin::list_offset`]).
pub(crate) async fn resolve(
    connection: &Connection,
    tp: &TopicPartition,
    at: Offset,
) -> Result<i64> {
    resolve_offset(connection, tp, at).await
}

fn no_group() -> Error {
    Error::InvalidConfig("committing needs a consumer group; set one with .group(\"name\")".into())
}
