//! What a consumer selects from a partition, and the cutting of stored batches down to it.
//!
//! A [`Selector`] joins the consumer's tag expression ([`crate::tags`]), its SQL-92 property
//! filter ([`crate::properties`]) and, on a topic with lanes, its lane ([`crate::lanes`]): a
//! record is taken when all of them take it. The proxy applies it per
//! fetch with [`filter_batch`], so records a consumer does not take never leave the proxy, and
//! the ones it does keep their offsets.

use bytes::Bytes;

use crate::batch::codec::{Compression, Record, decode_batch, encode_records_at};
use crate::lanes::LaneFilter;
use crate::properties::{PropertyFilter, PropertyFilterError};
use crate::tags::{TagError, TagFilter};
use crate::{RecordBatch, Result};

/// Which records of a partition a consumer takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub tags: TagFilter,
    /// `None`: no condition on properties.
    pub properties: Option<PropertyFilter>,
    /// `None`: the topic has no lanes, and the lane header means nothing.
    pub lanes: Option<LaneFilter>,
    /// On a topic that accepts delays: leave out the delayed originals
    /// ([`crate::delay::is_delayed`]), which consumers read as copies once due.
    pub hide_delayed: bool,
}

/// Either half of a selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error(transparent)]
    Tags(#[from] TagError),
    #[error(transparent)]
    Properties(#[from] PropertyFilterError),
}

impl strata_proto::Coded for SelectorError {
    fn code(&self) -> strata_proto::ErrorCode {
        strata_proto::ErrorCode::InvalidArgument
    }
}

impl Selector {
    /// Every record.
    pub const ALL: Self = Self {
        tags: TagFilter::All,
        properties: None,
        lanes: None,
        hide_delayed: false,
    };

    /// From a fetch's fields: a tag expression (empty: `*`) and a property filter (empty:
    /// none).
    pub fn parse(tags: &str, properties: &str) -> std::result::Result<Self, SelectorError> {
        let tags = match tags.trim() {
            "" => TagFilter::All,
            expression => TagFilter::parse(expression)?,
        };
        let properties = match properties.trim() {
            "" => None,
            condition => Some(PropertyFilter::parse(condition)?),
        };
        Ok(Self {
            tags,
            properties,
            lanes: None,
            hide_delayed: false,
        })
    }

    /// The same, on a topic with lanes: only the records of `lanes` are taken.
    pub fn on_lanes(self, lanes: LaneFilter) -> Self {
        Self {
            lanes: Some(lanes),
            ..self
        }
    }

    /// The same, on a topic that accepts delays: delayed originals are left out.
    pub fn hiding_delayed(self) -> Self {
        Self {
            hide_delayed: true,
            ..self
        }
    }

    pub fn is_all(&self) -> bool {
        self.tags.is_all()
            && self.properties.is_none()
            && self.lanes.is_none()
            && !self.hide_delayed
    }

    /// The codec a batch in `compression` that lost records goes out in. A selector of lanes
    /// and delays alone is what Kafka consumers read with, and Fetch before v10 cannot carry zstd, so
    /// such batches keep their codec; tags and property filters are for Strata's own
    /// readers, which take [`reencoding`]'s faster choice.
    pub fn codec_for(&self, compression: Compression) -> Compression {
        if self.tags.is_all() && self.properties.is_none() {
            compression
        } else {
            reencoding(compression)
        }
    }

    /// Whether a record with `headers` is taken.
    pub fn matches(&self, headers: &[(String, Option<Bytes>)]) -> bool {
        self.tags.matches(headers)
            && self.properties.as_ref().is_none_or(|p| p.matches(headers))
            && self.lanes.as_ref().is_none_or(|l| l.matches(headers))
            && !(self.hide_delayed && crate::delay::is_delayed(headers))
    }
}

impl From<TagFilter> for Selector {
    fn from(tags: TagFilter) -> Self {
        Self {
            tags,
            properties: None,
            lanes: None,
            hide_delayed: false,
        }
    }
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

/// The records of `batch` that `filter` selects.
pub fn filter_batch(batch: &RecordBatch, filter: &Selector) -> Result<Filtered> {
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
            filter.codec_for(batch.compression()),
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
