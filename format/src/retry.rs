//! Consumer retries and dead letters (RocketMQ's `%RETRY%group` and `%DLQ%group`).
//!
//! A group's consumer that fails a record *nacks* it: the record goes to the group's retry
//! topic ([`retry_topic`]) as a delayed record ([`crate::delay`]) due after a backoff, and comes
//! back to the group from there. After `max_retries` attempts it goes to the group's
//! dead-letter topic ([`dead_letter_topic`]) instead. Both carry the record's key, value and
//! headers, plus headers naming where it first came from, the attempt and the last error.

use bytes::Bytes;

use crate::batch::codec::Record;
use crate::delay;

/// Retry topics are named this plus the group: `__retry.billing`.
pub const RETRY_TOPIC_PREFIX: &str = "__retry.";
/// Dead-letter topics are named this plus the group: `__dlq.billing`.
pub const DEAD_LETTER_TOPIC_PREFIX: &str = "__dlq.";

/// The topic the record was first read from.
pub const ORIGIN_TOPIC_HEADER: &str = "strata-origin-topic";
/// Its partition there.
pub const ORIGIN_PARTITION_HEADER: &str = "strata-origin-partition";
/// Its offset there.
pub const ORIGIN_OFFSET_HEADER: &str = "strata-origin-offset";
/// How many times it failed: 1 on the first retry; on a dead letter, every attempt.
pub const ATTEMPT_HEADER: &str = "strata-retry-attempt";
/// The error the last failure reported.
pub const LAST_ERROR_HEADER: &str = "strata-last-error";

/// RocketMQ's retry schedule, its delay levels 3 to 18: 10 s, 30 s, 1 to 10 min, 20 min,
/// 30 min, 1 h, 2 h; the last repeats for further attempts.
pub const DEFAULT_BACKOFF_MS: [i64; 16] = [
    10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000, 480_000, 540_000,
    600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];
/// RocketMQ's default `maxReconsumeTimes`.
pub const DEFAULT_MAX_RETRIES: u32 = 16;
/// The longest backoff a retry may ask for: the retry topic's maximum delay.
pub const MAX_BACKOFF_MS: i64 = 7_200_000;
/// Bytes of the last error kept on a record.
pub const MAX_ERROR_BYTES: usize = 1024;

/// The retry topic of `group`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_TOPIC_PREFIX}{group}")
}

/// The dead-letter topic of `group`.
pub fn dead_letter_topic(group: &str) -> String {
    format!("{DEAD_LETTER_TOPIC_PREFIX}{group}")
}

/// Whether `topic` is a group's retry or dead-letter topic, which only nacks write.
pub fn is_reserved(topic: &str) -> bool {
    topic.starts_with(RETRY_TOPIC_PREFIX) || topic.starts_with(DEAD_LETTER_TOPIC_PREFIX)
}

/// Where a record was first read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
}

fn header<'a>(headers: &'a [(String, Option<Bytes>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok())
}

/// The origin a retried record names, if it names one.
pub fn origin_of(headers: &[(String, Option<Bytes>)]) -> Option<Origin> {
    Some(Origin {
        topic: header(headers, ORIGIN_TOPIC_HEADER)?.to_owned(),
        partition: header(headers, ORIGIN_PARTITION_HEADER)?.parse().ok()?,
        offset: header(headers, ORIGIN_OFFSET_HEADER)?.parse().ok()?,
    })
}

/// How many times a record has failed so far (0 for one read from its own topic).
pub fn attempt_of(headers: &[(String, Option<Bytes>)]) -> u32 {
    header(headers, ATTEMPT_HEADER)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

/// The backoff before retry `attempt` (1 for the first) on `schedule`, whose last entry
/// repeats.
pub fn backoff_ms(schedule: &[i64], attempt: u32) -> i64 {
    let i = (attempt.max(1) as usize - 1).min(schedule.len().saturating_sub(1));
    schedule.get(i).copied().unwrap_or(DEFAULT_BACKOFF_MS[0])
}

fn is_bookkeeping(name: &str) -> bool {
    matches!(
        name,
        ORIGIN_TOPIC_HEADER
            | ORIGIN_PARTITION_HEADER
            | ORIGIN_OFFSET_HEADER
            | ATTEMPT_HEADER
            | LAST_ERROR_HEADER
            | delay::DELIVER_AT_HEADER
            | delay::DELAY_MS_HEADER
            | delay::DELAY_LEVEL_HEADER
            | delay::DELAYED_FROM_HEADER
    )
}

/// The record as its application wrote it: without the headers retries and delays add.
pub fn strip_bookkeeping(headers: Vec<(String, Option<Bytes>)>) -> Vec<(String, Option<Bytes>)> {
    headers
        .into_iter()
        .filter(|(name, _)| !is_bookkeeping(name))
        .collect()
}

fn truncated(error: &str) -> String {
    let mut end = error.len().min(MAX_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].to_owned()
}

fn with_bookkeeping(
    record: Record,
    origin: &Origin,
    attempt: u32,
    error: &str,
    now_ms: i64,
) -> Record {
    let mut headers = strip_bookkeeping(record.headers);
    let text = |s: String| Some(Bytes::from(s));
    headers.extend([
        (ORIGIN_TOPIC_HEADER.to_owned(), text(origin.topic.clone())),
        (
            ORIGIN_PARTITION_HEADER.to_owned(),
            text(origin.partition.to_string()),
        ),
        (
            ORIGIN_OFFSET_HEADER.to_owned(),
            text(origin.offset.to_string()),
        ),
        (ATTEMPT_HEADER.to_owned(), text(attempt.to_string())),
        (LAST_ERROR_HEADER.to_owned(), text(truncated(error))),
    ]);
    Record {
        offset: 0,
        timestamp: now_ms,
        key: record.key,
        value: record.value,
        headers,
    }
}

/// The record to write to the retry topic for failure `attempt` of `record`, due `delay_ms`
/// after `now_ms`.
pub fn retry_record(
    record: Record,
    origin: &Origin,
    attempt: u32,
    error: &str,
    delay_ms: i64,
    now_ms: i64,
) -> Record {
    let mut retry = with_bookkeeping(record, origin, attempt, error, now_ms);
    retry.headers.push((
        delay::DELAY_MS_HEADER.to_owned(),
        Some(Bytes::from(delay_ms.to_string())),
    ));
    retry
}

/// The record to write to the dead-letter topic after its last failed `attempts`.
pub fn dead_letter(
    record: Record,
    origin: &Origin,
    attempts: u32,
    error: &str,
    now_ms: i64,
) -> Record {
    with_bookkeeping(record, origin, attempts, error, now_ms)
}

/// A dead letter as its application wrote it, for sending back to its origin.
pub fn replayed(record: Record) -> Record {
    Record {
        headers: strip_bookkeeping(record.headers),
        ..record
    }
}

#[cfg(test)]
mod tests;
