//! A group's dead letters: listed, and replayed to where they came from. Served to gRPC
//! callers and, through the proxy's HTTP endpoint, to REST callers.

use strata_catalog::acls::{Access, Operation, ResourceType};
use strata_format::retry::{self, LAST_ERROR_HEADER};
use strata_format::{Record, RecordBatch, decode_batch};
use strata_proto::{Coded as _, ErrorCode, v1};

use super::{ProxyService, error};

/// Dead letters one listing returns unless asked for fewer.
const DEFAULT_MAX_LETTERS: usize = 1_000;
/// Bytes per read of the dead-letter topic.
const READ_BYTES: u64 = 1 << 20;

type Refusal = v1::Error;

impl ProxyService {
    /// ListDeadLetters: up to `max` dead letters from `from_offset` on, oldest first.
    pub async fn list_dead_letters_call(
        &self,
        access: &Access,
        r: v1::ListDeadLettersRequest,
    ) -> Result<v1::ListDeadLettersResponse, Refusal> {
        self.check_named_group(access, &r.group, Operation::Describe)
            .await?;
        let max = match r.max {
            0 => DEFAULT_MAX_LETTERS,
            n => n as usize,
        };
        let (letters, next_offset) = self.read_letters(&r.group, r.from_offset, max).await?;
        Ok(v1::ListDeadLettersResponse {
            error: None,
            letters: letters.into_iter().map(dead_letter_view).collect(),
            next_offset,
        })
    }

    /// ReplayDeadLetters: writes each chosen dead letter to its origin's topic and partition,
    /// without the bookkeeping headers, durably and in order.
    pub async fn replay_dead_letters_call(
        &self,
        access: &Access,
        r: v1::ReplayDeadLettersRequest,
    ) -> Result<v1::ReplayDeadLettersResponse, Refusal> {
        self.check_named_group(access, &r.group, Operation::Read)
            .await?;
        let from = r.offsets.iter().copied().min().unwrap_or(r.from_offset);
        let (letters, _) = self.read_letters(&r.group, from, usize::MAX).await?;
        let chosen: Vec<Record> = letters
            .into_iter()
            .filter(|l| r.offsets.is_empty() || r.offsets.contains(&l.offset))
            .collect();
        if let Some(missing) = r
            .offsets
            .iter()
            .find(|o| !chosen.iter().any(|l| l.offset == **o))
        {
            return Err(error(
                ErrorCode::OffsetOutOfRange,
                format!("group `{}` has no dead letter at offset {missing}", r.group),
            ));
        }
        let mut replayed = Vec::with_capacity(chosen.len());
        for letter in chosen {
            let at = letter.offset;
            let origin = retry::origin_of(&letter.headers).ok_or_else(|| {
                error(
                    ErrorCode::CorruptMessage,
                    format!("the dead letter at {at} names no origin to replay to"),
                )
            })?;
            access
                .check(Operation::Write, ResourceType::Topic, &origin.topic)
                .await
                .map_err(|e| e.to_wire())?;
            let offset = self
                .write_own(&origin.topic, origin.partition, retry::replayed(letter))
                .await
                .map_err(|e| {
                    error(
                        e.error_code().unwrap_or(ErrorCode::Internal),
                        format!(
                            "replaying the dead letter at {at} to {}/{} failed after {} were replayed: {}",
                            origin.topic,
                            origin.partition,
                            replayed.len(),
                            e.message
                        ),
                    )
                })?;
            replayed.push(v1::Replayed {
                dead_letter_offset: at,
                topic: origin.topic,
                partition: origin.partition,
                offset,
            });
        }
        Ok(v1::ReplayDeadLettersResponse {
            error: None,
            replayed,
        })
    }

    /// Refuses a malformed group name, then a caller without `operation` on the group.
    pub(super) async fn check_named_group(
        &self,
        access: &Access,
        group: &str,
        operation: Operation,
    ) -> Result<(), Refusal> {
        strata_meta::schema::validate_name("group", group)
            .map_err(|e| error(ErrorCode::InvalidArgument, e.to_string()))?;
        access
            .check(operation, ResourceType::Group, group)
            .await
            .map_err(|e| e.to_wire())
    }

    /// Dead letters of `group` from `from` on, at most `max`, and the offset after the last
    /// one read. A group that never dead-lettered anything has none.
    async fn read_letters(
        &self,
        group: &str,
        from: i64,
        max: usize,
    ) -> Result<(Vec<Record>, i64), Refusal> {
        let topic = retry::dead_letter_topic(group);
        self.routes.refresh_if_unknown(&topic).await;
        if self.routes.max_delay_ms(&topic).is_none() {
            return Ok((Vec::new(), 0));
        }
        let mut letters = Vec::new();
        let mut offset = from.max(0);
        while letters.len() < max {
            let read = self
                .reader
                .read(&topic, 0, offset, READ_BYTES)
                .await
                .map_err(|e| e.to_wire())?;
            offset = offset.max(read.log_start);
            let Some(last) = read.batches.last() else {
                break;
            };
            let end = RecordBatch::next_offset(last);
            for batch in &read.batches {
                let records = decode_batch(batch)
                    .map_err(|e| error(ErrorCode::CorruptMessage, e.to_string()))?;
                letters.extend(records.into_iter().filter(|r| r.offset >= offset));
            }
            offset = end;
        }
        letters.truncate(max);
        let next = letters.last().map_or(offset, |l| l.offset + 1);
        Ok((letters, next))
    }
}

fn dead_letter_view(r: Record) -> v1::DeadLetter {
    let origin = retry::origin_of(&r.headers);
    let last_error = r
        .headers
        .iter()
        .find(|(k, _)| k == LAST_ERROR_HEADER)
        .and_then(|(_, v)| v.as_deref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    v1::DeadLetter {
        offset: r.offset,
        timestamp: r.timestamp,
        origin_topic: origin.as_ref().map(|o| o.topic.clone()).unwrap_or_default(),
        origin_partition: origin.as_ref().map_or(0, |o| o.partition),
        origin_offset: origin.as_ref().map_or(-1, |o| o.offset),
        attempts: retry::attempt_of(&r.headers),
        last_error,
        key: r.key,
        value: r.value,
        headers: r
            .headers
            .into_iter()
            .map(|(key, value)| v1::RecordHeader { key, value })
            .collect(),
    }
}
