//! Small value types shared by the producer, the consumer and the admin client.

use std::fmt;

use strata_proto::v1;

/// One partition of one topic.
///
/// ```
/// use strata_client::TopicPartition;
/// let mut tps = vec![TopicPartition::new("b", 0), TopicPartition::new("a", 1)];
/// tps.sort();
/// assert_eq!(tps[0].topic, "a");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition number.
    pub partition: u32,
}

impl TopicPartition {
    /// ```
    /// let tp = strata_client::TopicPartition::new("orders", 3);
    /// assert_eq!(tp.to_string(), "orders/3");
    /// ```
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

impl From<TopicPartition> for v1::TopicPartition {
    fn from(tp: TopicPartition) -> Self {
        Self {
            topic: tp.topic,
            partition: tp.partition,
        }
    }
}

/// When the server acknowledges a produce (Kafka's `acks`).
///
/// ```
/// use strata_client::Ack;
/// assert_eq!("all".parse::<Ack>(), Ok(Ack::Durable));
/// assert_eq!("1".parse::<Ack>(), Ok(Ack::Buffered));
/// assert!("sometimes".parse::<Ack>().is_err());
/// let builder = strata_client::Producer::builder("127.0.0.1:7070").acks(Ack::Buffered);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ack {
    /// After the data is in storage and committed (Kafka's `acks=all`). The default.
    #[default]
    Durable,
    /// After the data is in the owning broker's buffer (Kafka's `acks=1`): lost if that
    /// broker crashes before its next flush.
    Buffered,
    /// As soon as the proxy accepted it (Kafka's `acks=0`); no offset is returned.
    None,
}

impl Ack {
    pub(crate) fn to_wire(self) -> v1::Ack {
        match self {
            Self::Durable => v1::Ack::Durable,
            Self::Buffered => v1::Ack::Buffered,
            Self::None => v1::Ack::None,
        }
    }
}

impl std::str::FromStr for Ack {
    type Err = String;

    /// `durable` (or `all`, `-1`), `buffered` (or `1`), `none` (or `0`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "durable" | "all" | "-1" => Ok(Self::Durable),
            "buffered" | "1" => Ok(Self::Buffered),
            "none" | "0" => Ok(Self::None),
            other => Err(format!(
                "unknown ack mode `{other}`; use durable, buffered or none"
            )),
        }
    }
}

/// Where a consumer starts reading a partition.
///
/// ```no_run
/// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
/// use strata_client::{Offset, TopicPartition};
/// let tp = TopicPartition::new("orders", 0);
/// consumer.seek(&tp, Offset::Earliest).await?;
/// consumer.seek(&tp, Offset::At(1_000)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The oldest record still stored.
    Earliest,
    /// The next record to be written (only new records are read).
    Latest,
    /// This exact offset.
    At(i64),
    /// The first record with a timestamp (ms since the Unix epoch) at or after this one.
    Timestamp(i64),
}
