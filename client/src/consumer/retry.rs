//! Retries and dead letters for a group's consumer: [`Consumer::nack`] sends a record it
//! failed to the group's retry topic, which the consumer also reads, so the record comes back
//! after a backoff; after `max_retries` attempts it goes to the group's dead-letter topic.

use std::time::Duration;

use strata_format::retry::{self, Origin};
use strata_proto::v1;

use super::{Consumer, ConsumerRecord};
use crate::error::{Error, Result, check};

/// How a group retries the records its consumers fail.
///
/// ```
/// use std::time::Duration;
/// let quick = strata_client::RetryPolicy {
///     max_retries: 3,
///     backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
/// };
/// assert_eq!(quick.backoff_for(3), Duration::from_secs(5), "the last step repeats");
/// assert_eq!(strata_client::RetryPolicy::default().max_retries, 16);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failures after which a record goes to the dead-letter topic instead (16, as RocketMQ).
    pub max_retries: u32,
    /// The wait before each retry, the last repeating; at most 2 hours each. The default is
    /// RocketMQ's: 10 s, 30 s, 1 to 10 min, 20 min, 30 min, 1 h, 2 h.
    pub backoff: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: retry::DEFAULT_MAX_RETRIES,
            backoff: retry::DEFAULT_BACKOFF_MS
                .iter()
                .map(|ms| Duration::from_millis(*ms as u64))
                .collect(),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry `attempt` (1 for the first).
    pub fn backoff_for(&self, attempt: u32) -> Duration {
        let i = (attempt.max(1) as usize - 1).min(self.backoff.len().saturating_sub(1));
        self.backoff.get(i).copied().unwrap_or(Duration::ZERO)
    }

    pub(super) fn validate(&self) -> Result<()> {
        let longest = Duration::from_millis(retry::MAX_BACKOFF_MS as u64);
        if self.max_retries == 0 {
            return Err(Error::InvalidConfig(
                "max_retries must be at least 1; without retries, do not set a retry policy".into(),
            ));
        }
        if self.backoff.is_empty() || self.backoff.iter().any(|b| b.is_zero() || *b > longest) {
            return Err(Error::InvalidConfig(
                "retry backoff needs at least one step, each from 1 ms to 2 hours (the retry topic's longest delay)".into(),
            ));
        }
        Ok(())
    }
}

/// Where a nacked record went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nacked {
    /// The group's retry topic, or its dead-letter topic.
    pub topic: String,
    /// Its offset there.
    pub offset: i64,
    /// Its failures so far, this one included.
    pub attempt: u32,
    /// Whether it went to the dead-letter topic.
    pub dead_lettered: bool,
    /// When it comes back (milliseconds since the Unix epoch); 0 for a dead letter.
    pub due_ms: i64,
}

impl ConsumerRecord {
    /// How many times this record failed before (0 unless it came from a retry topic).
    ///
    /// ```
    /// # let record = strata_client::ConsumerRecord { topic: "t".into(), partition: 0, offset: 0,
    /// #     timestamp: 0, key: None, value: None,
    /// #     headers: vec![("strata-retry-attempt".into(), Some("2".into()))] };
    /// assert_eq!(record.attempt(), 2);
    /// ```
    pub fn attempt(&self) -> u32 {
        retry::attempt_of(&self.headers)
    }

    /// Where a retried record was first read: its topic, partition and offset there. `None`
    /// for a record read from its own topic.
    pub fn origin(&self) -> Option<(String, u32, i64)> {
        retry::origin_of(&self.headers).map(|o: Origin| (o.topic, o.partition, o.offset))
    }
}

impl Consumer {
    /// Reports that processing `record` failed with `error`: the record goes to the group's
    /// retry topic and comes back to the group after the policy's backoff for its attempt, or
    /// after `max_retries` to the group's dead-letter topic. Returns once it is stored, so
    /// committing past `record` afterwards loses nothing: a poison record blocks nothing.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut strata_client::Consumer) -> strata_client::Result<()> {
    /// # fn handle(_: &strata_client::ConsumerRecord) -> Result<(), String> { Ok(()) }
    /// for record in consumer.poll(std::time::Duration::from_secs(1)).await? {
    ///     if let Err(e) = handle(&record) {
    ///         consumer.nack(&record, &e).await?;
    ///     }
    /// }
    /// consumer.commit_sync().await?;
    /// # Ok(()) }
    /// ```
    pub async fn nack(&self, record: &ConsumerRecord, error: &str) -> Result<Nacked> {
        let (Some(group), Some(policy)) = (&self.config.group, &self.config.retry) else {
            return Err(Error::InvalidConfig(
                "nack needs a consumer group with a retry policy; set .group(..) and .retries(RetryPolicy::default())".into(),
            ));
        };
        let attempt = record.attempt() + 1;
        let answer = self
            .connection
            .grpc()
            .nack(v1::NackRequest {
                group: group.clone(),
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                error: error.to_owned(),
                delay_ms: i64::try_from(policy.backoff_for(attempt).as_millis())
                    .unwrap_or(i64::MAX),
                max_retries: policy.max_retries,
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        Ok(Nacked {
            topic: answer.topic,
            offset: answer.offset,
            attempt: answer.attempt,
            dead_lettered: answer.dead_lettered,
            due_ms: answer.due_ms,
        })
    }

    /// The group's retry topic, created when missing, for the subscription to include.
    pub(super) async fn retry_topic(&self, group: &str) -> Result<String> {
        let answer = self
            .connection
            .grpc()
            .prepare_retries(v1::PrepareRetriesRequest {
                group: group.to_owned(),
            })
            .await
            .map_err(|s| self.connection.call_error(s))?
            .into_inner();
        check(answer.error)?;
        Ok(answer.retry_topic)
    }
}
