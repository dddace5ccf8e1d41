//! Tags on records and the expressions consumers subscribe with, as RocketMQ has them.
//!
//! A record's tags travel in its [`TAGS_HEADER`] header, names separated by commas, so Kafka
//! producers can set them too. A consumer subscribes with `*` (everything, tagged or not) or
//! tags joined by `||` (a record carrying any of them). The proxy drops the records a
//! consumer's expression does not take before they leave it ([`filter_batch`]), keeping the
//! offsets of the rest, so positions, commits and lag count every record.

use std::collections::BTreeSet;

use bytes::Bytes;
use strata_proto::{Coded, ErrorCode};

use crate::batch::codec::{Compression, Record, decode_batch, encode_records_at};
use crate::{RecordBatch, Result};

/// The header holding a record's tags: `TagA` or `TagA,TagB`.
pub const TAGS_HEADER: &str = "strata-tags";

/// The longest tag name.
pub const MAX_TAG_LEN: usize = 128;

/// What a consumer takes: everything, or the records carrying one of some tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    All,
    AnyOf(BTreeSet<String>),
}

/// A tag or an expression that is not well formed, with what is wrong and how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tag expression `{expression}` does not parse: {reason}; write `*` for every record, or tags \
     joined by `||` such as `TagA || TagB` (a tag is 1 to 128 letters, digits, `.`, `_` or `-`)"
)]
pub struct TagError {
    pub expression: String,
    pub reason: String,
}

impl Coded for TagError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

/// Checks one tag name.
pub fn check_tag(tag: &str) -> std::result::Result<(), String> {
    if tag.is_empty() {
        return Err("a tag is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        let start: String = tag.chars().take(16).collect();
        return Err(format!("tag `{start}…` is longer than {MAX_TAG_LEN} bytes"));
    }
    match tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!("tag `{tag}` holds `{c}`")),
        None => Ok(()),
    }
}

impl TagFilter {
    /// Parses `*` or `TagA || TagB || ...` (spaces around tags are ignored).
    pub fn parse(expression: &str) -> std::result::Result<Self, TagError> {
        let fail = |reason: String| TagError {
            expression: expression.to_owned(),
            reason,
        };
        let trimmed = expression.trim();
        if trimmed == "*" {
            return Ok(Self::All);
        }
        if trimmed.is_empty() {
            return Err(fail("it is empty".into()));
        }
        let mut tags = BTreeSet::new();
        for (i, part) in trimmed.split("||").enumerate() {
            let tag = part.trim();
            if tag == "*" {
                return Err(fail("`*` stands alone, not beside tags".into()));
            }
            if tag.is_empty() {
                return Err(fail(format!("term {} between `||` is empty", i + 1)));
            }
            check_tag(tag).map_err(fail)?;
            tags.insert(tag.to_owned());
        }
        Ok(Self::AnyOf(tags))
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }

    /// Whether a record with `headers` is taken.
    pub fn matches(&self, headers: &[(String, Option<Bytes>)]) -> bool {
        let Self::AnyOf(wanted) = self else {
            return true;
        };
        tags_of(headers).any(|tag| wanted.contains(tag))
    }
}

impl std::fmt::Display for TagFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::AnyOf(tags) => {
                let joined: Vec<&str> = tags.iter().map(String::as_str).collect();
                f.write_str(&joined.join(" || "))
            }
        }
    }
}

/// The tags a record carries in its [`TAGS_HEADER`] header.
pub fn tags_of(headers: &[(String, Option<Bytes>)]) -> impl Iterator<Item = &str> {
    headers
        .iter()
        .filter(|(name, _)| name == TAGS_HEADER)
        .filter_map(|(_, value)| std::str::from_utf8(value.as_deref()?).ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
}

/// The header value for `tags`, each checked.
pub fn tags_header(tags: &[String]) -> std::result::Result<Bytes, TagError> {
    for tag in tags {
        check_tag(tag).map_err(|reason| TagError {
            expression: tags.join(","),
            reason,
        })?;
    }
    Ok(Bytes::from(tags.join(",")))
}

/// What filtering one batch left.
#[derive(Debug)]
pub enum Filtered {
    /// Every record is taken: the batch as it was, not re-encoded.
    Whole(RecordBatch),
    /// Some are taken: a new batch of those records at their own offsets, with the original's
    /// producer fields, in the codec [`reencoding`] picks.
    Part(RecordBatch),
    /// None is taken.
    Nothing,
}

/// The records of `batch` that `filter` takes.
pub fn filter_batch(batch: &RecordBatch, filter: &TagFilter) -> Result<Filtered> {
    if filter.is_all() {
        return Ok(Filtered::Whole(batch.clone()));
    }
    let records = decode_batch(batch)?;
    let total = records.len();
    let kept: Vec<Record> = records
        .into_iter()
        .filter(|r| filter.matches(&r.headers))
        .collect();
    Ok(if kept.is_empty() {
        Filtered::Nothing
    } else if kept.len() == total {
        Filtered::Whole(batch.clone())
    } else {
        Filtered::Part(encode_records_at(
            &kept,
            batch,
            reencoding(batch.compression()),
        )?)
    })
}

/// The codec a batch that lost records goes out in: its own, but for gzip and LZ4, whose
/// encoders in the record codec run at about 50 MB/s (gzip level 6, LZ4-HC): those become
/// zstd (level 3, several times faster, at least as small), which every reader of Strata's
/// batches decodes.
pub fn reencoding(compression: Compression) -> Compression {
    match compression {
        Compression::Gzip | Compression::Lz4 => Compression::Zstd,
        other => other,
    }
}

#[cfg(test)]
mod tests;
