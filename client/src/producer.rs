//! The producer: batches records per partition and sends them to a proxy, in order, with
//! retries that never store a record twice.
//!
//! How it works:
//! - `enqueue` picks the partition (explicit, by key, or by the [`Partitioner`]), waits for
//!   room in `buffer_memory`, and appends the record to that partition's open batch.
//! - A background task seals a batch when it reaches `batch_size` or after `linger`, and sends
//!   each partition's sealed batches (up to five per request) with at most one request in
//!   flight per partition, so order within a partition holds through retries. Partitions are
//!   sent concurrently.
//! - With idempotence (the default) every batch carries a producer id, epoch and sequence; a
//!   retry resends the identical bytes and the broker answers with the original offsets.
//! - Retriable failures (transport, `NOT_LEADER`, `UNAVAILABLE`, `THROTTLED`, `CONFLICT`) back
//!   off exponentially until `delivery_timeout`; other failures fail the batch's records at
//!   once. Either way only the affected records' futures fail; the partition moves on to a new
//!   producer epoch so the sequence gap does not block the records after them.

mod accumulator;
mod metadata;
mod sender;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use strata_clock::Clock;

use bytes::Bytes;
use strata_format::{Compression, Record};
use strata_proto::ErrorCode;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::accumulator::{BATCH_OVERHEAD, MAX_REQUEST_BYTES, Waiter, record_size};
use self::sender::Shared;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::partitioner::{Partitioner, partition_for_key};
use crate::types::Ack;

/// A record to send.
///
/// ```
/// use strata_client::ProducerRecord;
///
/// let record = ProducerRecord::new("orders", "order #1 paid")
///     .with_key("customer-7")
///     .with_header("source", "web")
///     .with_timestamp(1_700_000_000_000);
/// assert_eq!(record.topic, "orders");
/// assert_eq!(record.partition, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic to write to.
    pub topic: String,
    /// `None`: by key if there is one, else the producer's [`Partitioner`].
    pub partition: Option<u32>,
    /// Records with the same key go to the same partition (Kafka's murmur2).
    pub key: Option<Bytes>,
    /// The payload; `None` is a null value (a tombstone, in Kafka's terms).
    pub value: Option<Bytes>,
    /// Header keys should be distinct: the batch codec keeps the last value of a repeated key.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the Unix epoch; `None`: the time of `send`/`enqueue`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("logs", b"started".to_vec());
    /// assert_eq!(record.value.as_deref(), Some(&b"started"[..]));
    /// ```
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key: records with the same key go to the same partition (Kafka's murmur2).
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "paid").with_key("customer-7");
    /// assert_eq!(record.key.as_deref(), Some(&b"customer-7"[..]));
    /// ```
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sends to this partition, whatever the key says.
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "paid").with_partition(3);
    /// assert_eq!(record.partition, Some(3));
    /// ```
    pub fn with_partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "paid").with_header("trace", "abc");
    /// assert_eq!(record.headers[0].0, "trace");
    /// ```
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    /// Puts the record on a swimlane the topic declares (`strata topic alter T --add-lane L`):
    /// only that lane's consumers receive it, never the main lane's. The lane travels in the
    /// `strata-lane` header, which Kafka producers can set too; sending to a lane the topic
    /// does not declare fails.
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "test order").with_lane("test-alice");
    /// assert_eq!(record.headers[0], ("strata-lane".into(), Some("test-alice".into())));
    /// ```
    pub fn with_lane(mut self, lane: impl Into<String>) -> Self {
        let header = strata_format::lanes::LANE_HEADER;
        self.headers.retain(|(k, _)| k != header);
        self.headers
            .push((header.to_owned(), Some(Bytes::from(lane.into()))));
        self
    }

    /// Tags the record, for consumers that subscribe by tag (`Consumer::builder(..).tags(..)`).
    /// The tags travel in the `strata-tags` header, which Kafka producers can set too. A tag
    /// is 1 to 128 letters, digits, `.`, `_` or `-`; sending a record with another fails.
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "paid").with_tags(["eu", "card"]);
    /// assert_eq!(record.headers[0], ("strata-tags".into(), Some("eu,card".into())));
    /// ```
    pub fn with_tags<T: AsRef<str>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        let joined: Vec<String> = tags.into_iter().map(|t| t.as_ref().to_owned()).collect();
        self.headers
            .retain(|(k, _)| k != strata_format::tags::TAGS_HEADER);
        self.headers.push((
            strata_format::tags::TAGS_HEADER.to_owned(),
            Some(Bytes::from(joined.join(","))),
        ));
        self
    }

    /// Delivers the record `delay` after its timestamp instead of at once: it is stored
    /// durably now and consumers see it only then. The topic must accept delays at least this
    /// long (`strata topic create T --max-delay 1h`). The delay travels in the
    /// `strata-delay-ms` header, which Kafka producers can set too.
    ///
    /// ```
    /// use std::time::Duration;
    /// let record = strata_client::ProducerRecord::new("orders", "remind").with_delay(Duration::from_secs(30));
    /// assert_eq!(record.headers[0], ("strata-delay-ms".into(), Some("30000".into())));
    /// ```
    pub fn with_delay(self, delay: std::time::Duration) -> Self {
        let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        self.with_delay_header(strata_format::delay::DELAY_MS_HEADER, ms)
    }

    /// Delivers the record at `deliver_at_ms` (milliseconds since the Unix epoch), a scheduled
    /// message: header `strata-deliver-at`.
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "open").with_deliver_at(1_900_000_000_000);
    /// assert_eq!(record.headers[0], ("strata-deliver-at".into(), Some("1900000000000".into())));
    /// ```
    pub fn with_deliver_at(self, deliver_at_ms: i64) -> Self {
        self.with_delay_header(strata_format::delay::DELIVER_AT_HEADER, deliver_at_ms)
    }

    /// Delivers the record after RocketMQ delay level `level`, 1 to 18 (1 s, 5 s, 10 s, 30 s,
    /// 1 to 10 min, 20 min, 30 min, 1 h, 2 h): header `strata-delay-level`.
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "retry").with_delay_level(3);
    /// assert_eq!(record.headers[0], ("strata-delay-level".into(), Some("3".into())));
    /// ```
    pub fn with_delay_level(self, level: u8) -> Self {
        self.with_delay_header(strata_format::delay::DELAY_LEVEL_HEADER, i64::from(level))
    }

    /// One delay request per record: a new one replaces any earlier.
    fn with_delay_header(mut self, header: &str, value: i64) -> Self {
        use strata_format::delay::{DELAY_LEVEL_HEADER, DELAY_MS_HEADER, DELIVER_AT_HEADER};
        self.headers.retain(|(k, _)| {
            ![DELAY_MS_HEADER, DELIVER_AT_HEADER, DELAY_LEVEL_HEADER].contains(&k.as_str())
        });
        self.headers
            .push((header.to_owned(), Some(Bytes::from(value.to_string()))));
        self
    }

    /// Sets the record's timestamp (milliseconds since the Unix epoch).
    ///
    /// ```
    /// let record = strata_client::ProducerRecord::new("orders", "paid").with_timestamp(42);
    /// assert_eq!(record.timestamp, Some(42));
    /// ```
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// Where an acknowledged record was stored.
///
/// ```no_run
/// # async fn example(producer: strata_client::Producer) -> strata_client::Result<()> {
/// let stored = producer.send(strata_client::ProducerRecord::new("orders", "paid")).await?;
/// println!("{}/{} at offset {}", stored.topic, stored.partition, stored.offset);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic the record was written to.
    pub topic: String,
    /// The partition it was written to.
    pub partition: u32,
    /// -1 with [`Ack::None`], which returns no offsets.
    pub offset: i64,
    /// The record's timestamp (milliseconds since the Unix epoch).
    pub timestamp: i64,
}

/// Producer settings. Defaults in brackets.
///
/// ```
/// use std::time::Duration;
/// use strata_client::{Ack, Compression, ProducerConfig};
///
/// let config = ProducerConfig {
///     linger: Duration::from_millis(20),
///     compression: Compression::Zstd,
///     acks: Ack::Buffered,
///     ..ProducerConfig::default()
/// };
/// assert_eq!(config.batch_size, 256 << 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// How long a partition's first record waits for others to share its batch [5 ms].
    pub linger: Duration,
    /// Bytes per partition batch at which it is sent without waiting for `linger` [256 KiB].
    /// While the partition's previous request is still in flight the batch keeps growing, up
    /// to `max_request_size`, so a backlog leaves in few large batches. 0 sends every record
    /// in a batch of its own when the partition is idle.
    pub batch_size: usize,
    /// Codec of every batch [none].
    pub compression: Compression,
    /// Where records without a key or partition go [`Partitioner::Default`: sticky].
    pub partitioner: Partitioner,
    /// When the server acknowledges [`Ack::Durable`].
    pub acks: Ack,
    /// Producer id and sequence numbers on every batch, so retries never store a record
    /// twice [true]. Without it a retry after a lost answer may store a batch again.
    pub idempotence: bool,
    /// Longest time a record may take from `enqueue` to its acknowledgement, retries included;
    /// at least `linger + request_timeout` [120 s]. A record that fails this way after being
    /// sent may still have been stored.
    pub delivery_timeout: Duration,
    /// Pause before the first retry, doubling with each further one [100 ms].
    pub retry_backoff: Duration,
    /// Longest pause between retries [1 s].
    pub retry_backoff_max: Duration,
    /// Bytes of records buffered or in flight; `enqueue` waits for room [32 MiB].
    pub buffer_memory: usize,
    /// How long `enqueue` waits for metadata and buffer room before failing with
    /// [`Error::BufferFull`] (or [`Error::Timeout`] for metadata) [60 s].
    pub max_block: Duration,
    /// Largest encoded batch, and so the largest record (with batch framing); larger records
    /// are refused with `MESSAGE_TOO_LARGE` before sending [1 MiB, the broker's default
    /// limit; at most 16 MiB].
    pub max_request_size: usize,
    /// How long one produce or metadata call may take [30 s].
    pub request_timeout: Duration,
    /// How often partition counts are refreshed, so new partitions get records [30 s].
    pub metadata_max_age: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_size: 256 << 10,
            compression: Compression::None,
            partitioner: Partitioner::Default,
            acks: Ack::Durable,
            idempotence: true,
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            buffer_memory: 32 << 20,
            max_block: Duration::from_secs(60),
            max_request_size: 1 << 20,
            request_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(30),
        }
    }
}

impl ProducerConfig {
    /// Smallest useful `max_request_size`: a batch header and a small record.
    const MIN_REQUEST_SIZE: usize = BATCH_OVERHEAD + 64;

    /// Why the settings cannot work, if they cannot.
    fn check(&self) -> std::result::Result<(), String> {
        if self.max_request_size < Self::MIN_REQUEST_SIZE
            || self.max_request_size > MAX_REQUEST_BYTES
        {
            return Err(format!(
                "max_request_size = {} is outside {}..={MAX_REQUEST_BYTES} bytes",
                self.max_request_size,
                Self::MIN_REQUEST_SIZE
            ));
        }
        if self.buffer_memory == 0 || self.buffer_memory > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(format!(
                "buffer_memory = {} must be positive and reasonable",
                self.buffer_memory
            ));
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(format!(
                "retry_backoff_max ({:?}) is below retry_backoff ({:?})",
                self.retry_backoff_max, self.retry_backoff
            ));
        }
        if self.delivery_timeout < self.linger + self.request_timeout {
            return Err(format!(
                "delivery_timeout ({:?}) must be at least linger + request_timeout ({:?}), \
                 or records would expire while their first request is still running",
                self.delivery_timeout,
                self.linger + self.request_timeout
            ));
        }
        Ok(())
    }
}

/// Builds a [`Producer`]; one setter per [`ProducerConfig`] field.
///
/// ```no_run
/// use std::time::Duration;
/// use strata_client::{Compression, Producer};
///
/// # async fn example() -> strata_client::Result<()> {
/// let producer = Producer::builder("127.0.0.1:7070")
///     .linger(Duration::from_millis(10))
///     .compression(Compression::Lz4)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ProducerBuilder {
    server: String,
    config: ProducerConfig,
    options: crate::ConnectOptions,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.config.$name = $name;
            self
        }
    };
}

impl ProducerBuilder {
    setter!(
        /// See [`ProducerConfig::linger`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .linger(std::time::Duration::ZERO);
        /// ```
        linger: Duration
    );
    setter!(
        /// See [`ProducerConfig::batch_size`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070").batch_size(64 << 10);
        /// ```
        batch_size: usize
    );
    setter!(
        /// See [`ProducerConfig::compression`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .compression(strata_client::Compression::Zstd);
        /// ```
        compression: Compression
    );
    setter!(
        /// See [`ProducerConfig::partitioner`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .partitioner(strata_client::Partitioner::RoundRobin);
        /// ```
        partitioner: Partitioner
    );
    setter!(
        /// See [`ProducerConfig::acks`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .acks(strata_client::Ack::Buffered);
        /// ```
        acks: Ack
    );
    setter!(
        /// See [`ProducerConfig::idempotence`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070").idempotence(false);
        /// ```
        idempotence: bool
    );
    setter!(
        /// See [`ProducerConfig::delivery_timeout`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .delivery_timeout(std::time::Duration::from_secs(60));
        /// ```
        delivery_timeout: Duration
    );
    setter!(
        /// See [`ProducerConfig::retry_backoff`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .retry_backoff(std::time::Duration::from_millis(50));
        /// ```
        retry_backoff: Duration
    );
    setter!(
        /// See [`ProducerConfig::retry_backoff_max`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .retry_backoff_max(std::time::Duration::from_secs(5));
        /// ```
        retry_backoff_max: Duration
    );
    setter!(
        /// See [`ProducerConfig::buffer_memory`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070").buffer_memory(64 << 20);
        /// ```
        buffer_memory: usize
    );
    setter!(
        /// See [`ProducerConfig::max_block`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .max_block(std::time::Duration::from_secs(1));
        /// ```
        max_block: Duration
    );
    setter!(
        /// See [`ProducerConfig::max_request_size`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .max_request_size(512 << 10);
        /// ```
        max_request_size: usize
    );
    setter!(
        /// See [`ProducerConfig::request_timeout`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .request_timeout(std::time::Duration::from_secs(10));
        /// ```
        request_timeout: Duration
    );
    setter!(
        /// See [`ProducerConfig::metadata_max_age`].
        ///
        /// ```
        /// let builder = strata_client::Producer::builder("127.0.0.1:7070")
        ///     .metadata_max_age(std::time::Duration::from_secs(5));
        /// ```
        metadata_max_age: Duration
    );

    /// Replaces every setting at once.
    ///
    /// ```
    /// use strata_client::{Producer, ProducerConfig};
    ///
    /// let builder = Producer::builder("127.0.0.1:7070").config(ProducerConfig {
    ///     idempotence: false,
    ///     ..ProducerConfig::default()
    /// });
    /// ```
    pub fn config(mut self, config: ProducerConfig) -> Self {
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

    /// Checks the settings and connects, failing fast when no proxy answers.
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let producer = strata_client::Producer::builder("127.0.0.1:7070").build().await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(self) -> Result<Producer> {
        self.config.check().map_err(Error::InvalidConfig)?;
        let connection = Connection::connect_with(&self.server, self.options).await?;
        Ok(Producer::new(connection, self.config))
    }
}

/// Sends records to Strata: batched per partition, in order within a partition, retried
/// without duplicates. Cheap to clone; clones share one buffer and one background task,
/// which stops when the last clone is dropped or any clone is [closed](Producer::close).
///
/// ```no_run
/// use strata_client::{Producer, ProducerRecord};
///
/// # async fn example() -> strata_client::Result<()> {
/// let producer = Producer::builder("127.0.0.1:7070").build().await?;
/// // One at a time: waits for each acknowledgement.
/// producer.send(ProducerRecord::new("orders", "first")).await?;
/// // Many at once: enqueue returns as soon as the record is buffered.
/// let mut acks = Vec::new();
/// for i in 0..1000 {
///     acks.push(producer.enqueue(ProducerRecord::new("orders", format!("order {i}"))).await?);
/// }
/// for ack in acks {
///     ack.await?;
/// }
/// producer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    driver: Mutex<Option<JoinHandle<()>>>,
    /// Why the configuration cannot work; every call reports it.
    invalid: Option<String>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        if let Some(driver) = self
            .driver
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            driver.abort();
        }
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("server", &self.inner.shared.connection.server())
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    strata_clock::SystemClock.unix_millis()
}

impl Producer {
    /// A builder for a producer talking to `server` (`host:port`).
    ///
    /// ```no_run
    /// # async fn example() -> strata_client::Result<()> {
    /// let producer = strata_client::Producer::builder("127.0.0.1:7070").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(server: &str) -> ProducerBuilder {
        ProducerBuilder {
            server: server.to_owned(),
            config: ProducerConfig::default(),
            options: Default::default(),
        }
    }

    /// A producer on an existing connection (shared with other clients). Invalid settings
    /// are reported by every call as [`Error::InvalidConfig`]; the background task starts
    /// with the first record.
    ///
    /// ```no_run
    /// use strata_client::{Connection, Producer, ProducerConfig};
    ///
    /// # async fn example() -> strata_client::Result<()> {
    /// let connection = Connection::connect("127.0.0.1:7070").await?;
    /// let producer = Producer::new(connection.clone(), ProducerConfig::default());
    /// # Ok(()) }
    /// ```
    pub fn new(connection: Connection, config: ProducerConfig) -> Self {
        let invalid = config.check().err();
        Self {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::new(connection, config)),
                driver: Mutex::new(None),
                invalid,
            }),
        }
    }

    fn usable(&self) -> Result<()> {
        if let Some(why) = &self.inner.invalid {
            return Err(Error::InvalidConfig(why.clone()));
        }
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn start(&self) -> Result<()> {
        let mut driver = self
            .inner
            .driver
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if driver.is_none() {
            let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                Error::InvalidConfig("the producer needs a Tokio runtime; use it inside one".into())
            })?;
            *driver = Some(runtime.spawn(sender::run(Arc::clone(&self.inner.shared))));
        }
        Ok(())
    }

    /// Sends a record and waits for its acknowledgement.
    ///
    /// With the default `linger` each call takes at least 5 ms; to send many records fast,
    /// use [`enqueue`](Self::enqueue) and await the acknowledgements later.
    ///
    /// ```no_run
    /// # async fn example(producer: strata_client::Producer) -> strata_client::Result<()> {
    /// use strata_client::ProducerRecord;
    ///
    /// let stored = producer
    ///     .send(ProducerRecord::new("orders", "paid").with_key("customer-7"))
    ///     .await?;
    /// assert!(stored.offset >= 0);
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.enqueue(record).await?.await
    }

    /// Buffers a record and returns a future of its acknowledgement, waiting only for buffer
    /// room (up to `max_block`). Records of one partition are stored in the order they were
    /// enqueued.
    ///
    /// Fails at once with `UNKNOWN_TOPIC`, `UNKNOWN_PARTITION` (explicit partition out of
    /// range), `MESSAGE_TOO_LARGE` (record above `max_request_size`),
    /// [`Error::BufferFull`] or [`Error::Closed`]; everything after buffering is reported by
    /// the returned future.
    ///
    /// ```no_run
    /// # async fn example(producer: strata_client::Producer) -> strata_client::Result<()> {
    /// use strata_client::ProducerRecord;
    ///
    /// let ack = producer.enqueue(ProducerRecord::new("orders", "paid")).await?;
    /// // ... enqueue more ...
    /// let stored = ack.await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.usable()?;
        let shared = &self.inner.shared;
        let config = &shared.config;
        let ProducerRecord {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        } = record;
        for tag in strata_format::tags::tags_of(&headers) {
            strata_format::tags::check_tag(tag).map_err(|reason| {
                Error::InvalidConfig(format!("the record's tags cannot be sent: {reason}"))
            })?;
        }
        let timestamp = timestamp.unwrap_or_else(now_ms);
        let record = Record {
            offset: 0,
            timestamp,
            key,
            value,
            headers,
        };
        let size = record_size(&record);
        if BATCH_OVERHEAD + size > config.max_request_size {
            return Err(Error::Server {
                code: ErrorCode::MessageTooLarge,
                message: format!(
                    "a record of up to {size} bytes does not fit in a batch of max_request_size \
                     = {} bytes; refused before sending (split it, or raise max_request_size \
                     and the broker's max batch size)",
                    config.max_request_size
                ),
            });
        }
        if size > config.buffer_memory {
            return Err(Error::InvalidConfig(format!(
                "a record of up to {size} bytes can never fit in buffer_memory = {} bytes; \
                 raise buffer_memory",
                config.buffer_memory
            )));
        }
        let deadline = Instant::now() + config.max_block;
        let partitions = tokio::time::timeout_at(deadline, shared.metadata.partitions(&topic))
            .await
            .map_err(|_| {
                Error::Timeout(
                    config.max_block,
                    format!("waiting for the partitions of topic `{topic}`"),
                )
            })??;
        if let Some(lane) = strata_format::lanes::lane_of(&record.headers) {
            self.check_lane(&topic, lane, deadline).await?;
        }
        if strata_format::delay::is_delayed(&record.headers) {
            self.check_delay(&topic, &record, deadline).await?;
        }
        let (target, partitions) = match (partition, &record.key) {
            (Some(p), _) => {
                let partitions = self
                    .check_partition(&topic, p, partitions, deadline)
                    .await?;
                (Some(p), partitions)
            }
            (None, Some(key)) => (Some(partition_for_key(key, partitions)), partitions),
            (None, None) => (None, partitions),
        };
        let wanted = u32::try_from(size).unwrap_or(u32::MAX);
        let memory = match tokio::time::timeout_at(
            deadline,
            Arc::clone(&shared.memory).acquire_many_owned(wanted),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Error::Closed),
            Err(_) => {
                tracing::debug!(topic = %topic, bytes = size, "buffer full for max_block");
                return Err(Error::BufferFull(config.buffer_memory));
            }
        };
        self.start()?;
        let (tx, rx) = oneshot::channel();
        let appended = {
            let mut accumulator = shared.accumulator();
            // Checked under the lock `close` takes, so nothing joins a batch after its flush.
            if shared.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            accumulator.append(
                &topic,
                partitions,
                target,
                record,
                Waiter { tx, timestamp },
                size,
                memory,
                Instant::now(),
            )
        };
        if appended.wake {
            shared.wake.notify_one();
        }
        Ok(DeliveryFuture { rx })
    }

    /// The partition count, after one fresh lookup if `partition` is past the cached one (the
    /// topic may have grown).
    async fn check_partition(
        &self,
        topic: &str,
        partition: u32,
        partitions: u32,
        deadline: Instant,
    ) -> Result<u32> {
        if partition < partitions {
            return Ok(partitions);
        }
        let metadata = &self.inner.shared.metadata;
        let partitions = match tokio::time::timeout_at(deadline, metadata.refresh(topic)).await {
            Ok(Ok(fresh)) => fresh,
            Ok(Err(e)) if !e.is_retriable() => return Err(e),
            // The lookup could not be made: judge by the count we have.
            Ok(Err(_)) | Err(_) => partitions,
        };
        if partition < partitions {
            return Ok(partitions);
        }
        Err(Error::Server {
            code: ErrorCode::UnknownPartition,
            message: format!(
                "topic `{topic}` has {partitions} partitions (0..={}); partition {partition} \
                 does not exist",
                partitions.saturating_sub(1)
            ),
        })
    }

    /// Sends everything buffered now, without waiting for `linger`, and waits until every
    /// record enqueued before the call is acknowledged or failed. Failures are reported by
    /// the records' own futures, not here.
    ///
    /// ```no_run
    /// # async fn example(producer: strata_client::Producer) -> strata_client::Result<()> {
    /// use strata_client::ProducerRecord;
    ///
    /// for i in 0..100 {
    ///     // Not awaiting the acknowledgements: flush waits for them all.
    ///     let _ack = producer.enqueue(ProducerRecord::new("orders", format!("{i}"))).await?;
    /// }
    /// producer.flush().await?;
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        self.usable()?;
        self.flush_all().await
    }

    async fn flush_all(&self) -> Result<()> {
        let shared = &self.inner.shared;
        let mark = {
            let mut accumulator = shared.accumulator();
            accumulator.seal_all();
            shared.tracker.mark()
        };
        shared.wake.notify_one();
        loop {
            let finished = shared.tracker.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if shared.tracker.finished_before(mark) {
                return Ok(());
            }
            tokio::select! {
                () = finished => {}
                () = shared.cancel.cancelled() => return Err(Error::Closed),
            }
        }
    }

    /// Flushes, then stops the background task. Every clone of this producer is closed:
    /// later calls fail with [`Error::Closed`].
    ///
    /// ```no_run
    /// # async fn example(producer: strata_client::Producer) -> strata_client::Result<()> {
    /// producer.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(self) -> Result<()> {
        if self.inner.invalid.is_some() {
            return Ok(());
        }
        let shared = &self.inner.shared;
        {
            let _accumulator = shared.accumulator();
            if shared.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
        }
        let flushed = self.flush_all().await;
        shared.cancel.cancel();
        shared.memory.close();
        let driver = self
            .inner
            .driver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(driver) = driver
            && let Err(e) = driver.await
            && e.is_panic()
        {
            tracing::error!(error = %e, "producer sender panicked");
        }
        shared.accumulator().clear();
        flushed
    }

    /// Refuses a record for a lane the topic does not declare, before it is buffered: the
    /// proxy would refuse its whole batch. A lane missing from the cached metadata is looked
    /// up once more, since it may have been declared since.
    async fn check_lane(&self, topic: &str, lane: &str, deadline: Instant) -> Result<()> {
        strata_format::lanes::check_lane(lane)
            .map_err(|e| Error::InvalidConfig(format!("the record's lane cannot be sent: {e}")))?;
        let metadata = &self.inner.shared.metadata;
        let declared = |lanes: &[String]| lanes.iter().any(|l| l == lane);
        if declared(&metadata.lanes(topic)) {
            return Ok(());
        }
        let _ = tokio::time::timeout_at(deadline, metadata.refresh(topic)).await;
        let lanes = metadata.lanes(topic);
        if declared(&lanes) {
            return Ok(());
        }
        Err(Error::Server {
            code: ErrorCode::InvalidArgument,
            message: format!(
                "lane `{lane}` is not a lane of topic `{topic}` (it declares {}); declare it \
                 with `strata topic alter {topic} --add-lane {lane}`",
                if lanes.is_empty() {
                    "none".to_owned()
                } else {
                    lanes.join(", ")
                }
            ),
        })
    }

    /// Refuses a delayed record the topic would refuse, before it is buffered: a bad delay
    /// header, a topic that takes no delays, or a delay beyond its maximum. A maximum that
    /// is too low in the cached metadata is looked up once more, since it may have been raised.
    async fn check_delay(&self, topic: &str, record: &Record, deadline: Instant) -> Result<()> {
        let refused = |e: strata_format::delay::DelayError| Error::Server {
            code: ErrorCode::InvalidArgument,
            message: e.to_string(),
        };
        let metadata = &self.inner.shared.metadata;
        let now = now_ms();
        let check = |max: Option<i64>| {
            strata_format::delay::check_record(record, topic, max.unwrap_or(0), now)
        };
        if check(metadata.max_delay_ms(topic)).is_ok() {
            return Ok(());
        }
        let _ = tokio::time::timeout_at(deadline, metadata.refresh(topic)).await;
        check(metadata.max_delay_ms(topic))
            .map(|_| ())
            .map_err(refused)
    }

    /// The topic's partition count (cached for `metadata_max_age`).
    ///
    /// ```no_run
    /// # async fn example(producer: strata_client::Producer) -> strata_client::Result<()> {
    /// let partitions = producer.partitions("orders").await?;
    /// # Ok(()) }
    /// ```
    pub async fn partitions(&self, topic: &str) -> Result<u32> {
        self.usable()?;
        self.inner.shared.metadata.partitions(topic).await
    }
}

/// The acknowledgement of one record: resolves to where it was stored, or why it was not.
/// Dropping it does not cancel the record (fire and forget, then [`Producer::flush`], is fine).
///
/// ```no_run
/// # async fn example(producer: strata_client::Producer) -> strata_client::Result<()> {
/// let ack: strata_client::DeliveryFuture = producer
///     .enqueue(strata_client::ProducerRecord::new("orders", "paid"))
///     .await?;
/// let stored = ack.await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The sender is dropped without an answer only when the producer shut down.
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(Error::Closed)))
    }
}

#[cfg(test)]
mod tests;
