//! Retries and dead letters: a group's consumer nacks a record it failed, and the proxy
//! writes it to the group's retry topic as a delayed record, or after its last attempt to the
//! group's dead-letter topic (`strata_format::retry`).
//!
//! The proxy reads the nacked record from the log itself rather than taking it from the
//! consumer, so what is retried is what was stored, and a nack costs the client no upload.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use strata_catalog::acls::{Access, Operation, ResourceType};
use strata_catalog::admin::NewTopic;
use strata_format::retry::{self, Origin};
use strata_format::{Record, decode_batch};
use strata_proto::{Coded as _, ErrorCode, v1};

use super::{ProxyService, error};

type Refusal = v1::Error;

fn invalid(message: String) -> Refusal {
    error(ErrorCode::InvalidArgument, message)
}

/// Batches nacks decoded lately. A consumer nacks records of a batch it read one after
/// another, and decoding a whole batch (a compressed one holds hundreds of records) for each
/// was most of a nack's cost.
#[derive(Debug, Default)]
pub(super) struct DecodedBatches(Mutex<VecDeque<(BatchKey, Arc<[Record]>)>>);

/// A stored batch: its partition and base offset, and its size and newest timestamp, so a
/// topic deleted and created again under its name is not mistaken for the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BatchKey {
    topic: String,
    partition: u32,
    base_offset: i64,
    len: usize,
    max_timestamp: i64,
}

/// Decoded batches kept; their records' bytes share the batches' buffers.
const DECODED_BATCHES: usize = 16;

impl DecodedBatches {
    fn get(&self, key: &BatchKey) -> Option<Arc<[Record]>> {
        let batches = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        batches
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, records)| records.clone())
    }

    fn put(&self, key: BatchKey, records: Arc<[Record]>) {
        let mut batches = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if batches.len() >= DECODED_BATCHES {
            batches.pop_front();
        }
        batches.push_back((key, records));
    }
}

impl ProxyService {
    /// PrepareRetries: the group's retry topic, created when missing.
    pub(super) async fn prepare_retries_call(
        &self,
        access: &Access,
        group: &str,
    ) -> Result<v1::PrepareRetriesResponse, Refusal> {
        self.check_group(access, group).await?;
        let retry_topic = self.ensure_reserved(&retry::retry_topic(group)).await?;
        Ok(v1::PrepareRetriesResponse {
            error: None,
            retry_topic,
            dead_letter_topic: retry::dead_letter_topic(group),
        })
    }

    /// A group named too long for its retry topics is refused, then as any group read.
    async fn check_group(&self, access: &Access, group: &str) -> Result<(), Refusal> {
        let longest = 249
            - retry::DEAD_LETTER_TOPIC_PREFIX
                .len()
                .max(retry::RETRY_TOPIC_PREFIX.len());
        if group.len() > longest {
            return Err(invalid(format!(
                "group names of more than {longest} characters cannot have retry topics (topic names end at 249); use a shorter group name"
            )));
        }
        self.check_named_group(access, group, Operation::Read).await
    }

    /// Creates a retry topic (delays up to the longest backoff) or a dead-letter topic when
    /// it does not exist yet; its name.
    async fn ensure_reserved(&self, topic: &str) -> Result<String, Refusal> {
        self.routes.refresh_if_unknown(topic).await;
        if self.routes.max_delay_ms(topic).is_some() {
            return Ok(topic.to_owned());
        }
        let is_retry = topic.starts_with(retry::RETRY_TOPIC_PREFIX);
        let new = NewTopic {
            name: topic.to_owned(),
            partitions: 1,
            max_delay_ms: is_retry.then_some(retry::MAX_BACKOFF_MS),
            ..NewTopic::default()
        };
        match self.admin.create_reserved_topic(new).await {
            Ok(_) => tracing::info!(%topic, "created a group's retry or dead-letter topic"),
            Err(strata_catalog::CatalogError::TopicExists(_)) => {}
            Err(e) => return Err(e.to_wire()),
        }
        let _ = self.routes.reload().await;
        Ok(topic.to_owned())
    }

    /// Nack: writes the record at (topic, partition, offset) to the group's retry topic, or
    /// its dead-letter topic after `max_retries` attempts, durably.
    pub(super) async fn nack_call(
        &self,
        access: &Access,
        r: v1::NackRequest,
    ) -> Result<v1::NackResponse, Refusal> {
        self.check_group(access, &r.group).await?;
        access
            .check(Operation::Read, ResourceType::Topic, &r.topic)
            .await
            .map_err(|e| e.to_wire())?;
        let own_retry_topic = retry::retry_topic(&r.group);
        if r.topic == crate::trace::TRACE_TOPIC {
            return Err(invalid(format!(
                "`{}` holds message-trace events, which are not consumed and cannot be retried",
                r.topic
            )));
        }
        if retry::is_reserved(&r.topic) && r.topic != own_retry_topic {
            return Err(invalid(format!(
                "`{}` is not a topic group `{}` reads records to retry from; nack records of its subscribed topics or of `{own_retry_topic}`",
                r.topic, r.group
            )));
        }
        if !(0..=retry::MAX_BACKOFF_MS).contains(&r.delay_ms) {
            return Err(invalid(format!(
                "delay_ms {} is outside 0 (the default schedule) to {} (2 hours, the retry topic's maximum delay)",
                r.delay_ms,
                retry::MAX_BACKOFF_MS
            )));
        }
        let record = self.stored_record(&r.topic, r.partition, r.offset).await?;
        let origin = if r.topic == own_retry_topic {
            retry::origin_of(&record.headers).ok_or_else(|| {
                invalid(format!(
                    "the record at {}/{}@{} names no origin; it was not written by a nack",
                    r.topic, r.partition, r.offset
                ))
            })?
        } else {
            Origin {
                topic: r.topic.clone(),
                partition: r.partition,
                offset: r.offset,
            }
        };
        let attempt = retry::attempt_of(&record.headers) + 1;
        let max_retries = match r.max_retries {
            0 => retry::DEFAULT_MAX_RETRIES,
            n => n,
        };
        let now = self.clock().unix_millis();
        let dead = attempt > max_retries;
        let (topic, written, due_ms) = if dead {
            let topic = self
                .ensure_reserved(&retry::dead_letter_topic(&r.group))
                .await?;
            (
                topic,
                retry::dead_letter(record, &origin, attempt - 1, &r.error, now),
                0,
            )
        } else {
            let topic = self.ensure_reserved(&own_retry_topic).await?;
            let delay = match r.delay_ms {
                0 => retry::backoff_ms(&retry::DEFAULT_BACKOFF_MS, attempt),
                ms => ms,
            };
            let record = retry::retry_record(record, &origin, attempt, &r.error, delay, now);
            (topic, record, now + delay)
        };
        let offset = self.write_own(&topic, 0, written).await?;
        tracing::debug!(group = %r.group, origin = %origin.topic, partition = origin.partition, offset = origin.offset,
            attempt, dead, to = %topic, "record nacked");
        Ok(v1::NackResponse {
            error: None,
            topic,
            offset,
            attempt: if dead { attempt - 1 } else { attempt },
            dead_lettered: dead,
            due_ms,
        })
    }

    /// The stored record at `offset`.
    async fn stored_record(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
    ) -> Result<Record, Refusal> {
        self.routes.refresh_if_unknown(topic).await;
        self.routes
            .route(topic, partition)
            .map_err(|(code, message)| error(code, message))?;
        let read = self
            .reader
            .read(topic, partition, offset, 1)
            .await
            .map_err(|e| e.to_wire())?;
        let missing = || {
            error(
                ErrorCode::OffsetOutOfRange,
                format!(
                    "no record at {topic}/{partition}@{offset} (log {}..{}); nack a record the consumer read",
                    read.log_start, read.high_watermark
                ),
            )
        };
        let batch = read.batches.first().ok_or_else(missing)?;
        let key = BatchKey {
            topic: topic.to_owned(),
            partition,
            base_offset: batch.base_offset(),
            len: batch.len(),
            max_timestamp: batch.max_timestamp(),
        };
        let records = match self.nacked_batches.get(&key) {
            Some(records) => records,
            None => {
                let records: Arc<[Record]> = decode_batch(batch)
                    .map_err(|e| error(ErrorCode::CorruptMessage, e.to_string()))?
                    .into();
                self.nacked_batches.put(key, records.clone());
                records
            }
        };
        records
            .iter()
            .find(|record| record.offset == offset)
            .cloned()
            .ok_or_else(missing)
    }
}
