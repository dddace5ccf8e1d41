//! Delayed and scheduled messages (RocketMQ's delay levels and timer messages).
//!
//! A producer asks for a later delivery with one header on the record:
//! - [`DELIVER_AT_HEADER`]: an absolute time, milliseconds since the Unix epoch;
//! - [`DELAY_MS_HEADER`]: milliseconds after the record's timestamp;
//! - [`DELAY_LEVEL_HEADER`]: one of RocketMQ's 18 levels ([`DELAY_LEVELS_MS`]), also after the
//!   record's timestamp.
//!
//! The record is stored at once, at its own offset, where consumers never see it (the
//! *original*). When its time comes the partition's owner appends a *copy*: the same key,
//! value and headers, minus the request header, plus [`DELAYED_FROM_HEADER`] naming the
//! original's offset, and timestamped with the delivery time. The copy is what consumers read.
//! Relative delays count from the record's own timestamp, so the stored record alone says
//! when it is due, however often the partition is recovered.

use bytes::Bytes;
use strata_proto::{Coded, ErrorCode};

use crate::batch::codec::Record;

/// Deliver at this time: decimal milliseconds since the Unix epoch.
pub const DELIVER_AT_HEADER: &str = "strata-deliver-at";
/// Deliver this many milliseconds (decimal) after the record's timestamp.
pub const DELAY_MS_HEADER: &str = "strata-delay-ms";
/// Deliver after RocketMQ delay level 1 to 18 (see [`DELAY_LEVELS_MS`]).
pub const DELAY_LEVEL_HEADER: &str = "strata-delay-level";
/// On a delivered copy: the offset of the original it was made from.
pub const DELAYED_FROM_HEADER: &str = "strata-delayed-from";

/// RocketMQ's `messageDelayLevel` default, `1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m
/// 30m 1h 2h`: level `n` is entry `n - 1`.
pub const DELAY_LEVELS_MS: [i64; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

/// A delay request that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelayError {
    #[error("header `{header}` is `{value}`: {expected}")]
    Malformed {
        header: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "the record sets more than one of `{DELIVER_AT_HEADER}`, `{DELAY_MS_HEADER}` and \
         `{DELAY_LEVEL_HEADER}`; set one"
    )]
    Ambiguous,
    #[error(
        "the record asks for delivery {asked_ms} ms from now, beyond topic `{topic}`'s maximum \
         delay of {max_ms} ms; deliver sooner, or raise the topic's max_delay_ms"
    )]
    TooLate {
        topic: String,
        asked_ms: i64,
        max_ms: i64,
    },
    #[error(
        "topic `{topic}` does not accept delayed records (its max_delay_ms is 0); drop the \
         delay header or set max_delay_ms on the topic"
    )]
    NotAccepted { topic: String },
    #[error(
        "the record sets `{DELAYED_FROM_HEADER}`, which only the copies the cluster delivers \
         carry; drop it (a record forwarded from a consumer keeps it)"
    )]
    ReservedHeader,
}

impl Coded for DelayError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

/// Whether a record with `headers` asks for a delay (an original, hidden from consumers).
pub fn is_delayed(headers: &[(String, Option<Bytes>)]) -> bool {
    headers.iter().any(|(name, _)| is_request_header(name))
}

fn is_request_header(name: &str) -> bool {
    matches!(
        name,
        DELIVER_AT_HEADER | DELAY_MS_HEADER | DELAY_LEVEL_HEADER
    )
}

/// When `record` is due, in milliseconds since the Unix epoch; `None` when it asks for no
/// delay.
pub fn due_time(record: &Record) -> Result<Option<i64>, DelayError> {
    let mut due = None;
    for (name, value) in &record.headers {
        let header = match name.as_str() {
            DELIVER_AT_HEADER => DELIVER_AT_HEADER,
            DELAY_MS_HEADER => DELAY_MS_HEADER,
            DELAY_LEVEL_HEADER => DELAY_LEVEL_HEADER,
            _ => continue,
        };
        if due.is_some() {
            return Err(DelayError::Ambiguous);
        }
        let text = value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .unwrap_or_default();
        let number = text.parse::<i64>().ok().filter(|n| *n >= 0);
        let malformed = |expected| DelayError::Malformed {
            header,
            value: text.chars().take(64).collect(),
            expected,
        };
        due = Some(match header {
            DELIVER_AT_HEADER => {
                number.ok_or_else(|| malformed("a time in milliseconds since the Unix epoch"))?
            }
            DELAY_MS_HEADER => record.timestamp.saturating_add(
                number.ok_or_else(|| malformed("a delay in milliseconds, 0 or more"))?,
            ),
            _ => {
                let level = number
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| (1..=DELAY_LEVELS_MS.len()).contains(n))
                    .ok_or_else(|| malformed("a delay level from 1 to 18"))?;
                record.timestamp.saturating_add(DELAY_LEVELS_MS[level - 1])
            }
        });
    }
    Ok(due)
}

/// Checks a produced record on `topic`, which accepts delays, against the topic's maximum
/// delay at `now_ms`: the record's due time, `None` when it asks for none. A record may not
/// pass itself off as a delivered copy: it would settle another record's delivery.
pub fn check_record(
    record: &Record,
    topic: &str,
    max_delay_ms: i64,
    now_ms: i64,
) -> Result<Option<i64>, DelayError> {
    if record.headers.iter().any(|(k, _)| k == DELAYED_FROM_HEADER) {
        return Err(DelayError::ReservedHeader);
    }
    let Some(due) = due_time(record)? else {
        return Ok(None);
    };
    if max_delay_ms <= 0 {
        return Err(DelayError::NotAccepted {
            topic: topic.to_owned(),
        });
    }
    let asked_ms = due.saturating_sub(now_ms);
    if asked_ms > max_delay_ms {
        return Err(DelayError::TooLate {
            topic: topic.to_owned(),
            asked_ms,
            max_ms: max_delay_ms,
        });
    }
    Ok(Some(due))
}

/// The copy of `original` (stored at `offset`) that consumers read, delivered at `due_ms`.
pub fn delivered_copy(original: Record, offset: i64, due_ms: i64) -> Record {
    let mut headers: Vec<(String, Option<Bytes>)> = original
        .headers
        .into_iter()
        .filter(|(name, _)| !is_request_header(name) && name != DELAYED_FROM_HEADER)
        .collect();
    headers.push((
        DELAYED_FROM_HEADER.to_owned(),
        Some(Bytes::from(offset.to_string())),
    ));
    Record {
        offset: 0,
        timestamp: due_ms,
        key: original.key,
        value: original.value,
        headers,
    }
}

/// The original a delivered copy with `headers` was made from.
pub fn delayed_from(headers: &[(String, Option<Bytes>)]) -> Option<i64> {
    headers
        .iter()
        .find(|(name, _)| name == DELAYED_FROM_HEADER)
        .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok()?.parse().ok())
}

#[cfg(test)]
mod tests;
