//! Tags on records and the expressions consumers subscribe with, as RocketMQ has them.
//!
//! A record's tags travel in its [`TAGS_HEADER`] header, names separated by commas, so Kafka
//! producers can set them too. A consumer subscribes with `*` (everything, tagged or not) or
//! tags joined by `||` (a record carrying any of them). The proxy drops the records a
//! consumer's expression does not take before they leave it ([`crate::select`]), keeping the
//! offsets of the rest, so positions, commits and lag count every record.

use std::collections::BTreeSet;

use bytes::Bytes;
use strata_proto::{Coded, ErrorCode};

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
    check_word("tag", tag, MAX_TAG_LEN)
}

/// Checks a name that travels in a header beside others (a tag, a lane): 1 to `max` bytes of
/// letters, digits, `.`, `_` and `-`, so separators and operators can never be part of one.
pub fn check_word(kind: &str, word: &str, max: usize) -> std::result::Result<(), String> {
    if word.is_empty() {
        return Err(format!("a {kind} is empty"));
    }
    if word.len() > max {
        let start: String = word.chars().take(16).collect();
        return Err(format!("{kind} `{start}…` is longer than {max} bytes"));
    }
    match word
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!("{kind} `{word}` holds `{c}`")),
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

#[cfg(test)]
pub(crate) mod tests;
