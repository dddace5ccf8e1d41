//! Swimlanes (BMQ's 泳道): test traffic on a production topic, kept apart by lane.
//!
//! A record's lane travels in its [`LANE_HEADER`] header; a record without one is on the main
//! lane. A topic declares the lanes it carries; on such a topic the proxy gives each consumer
//! only its lane ([`LaneFilter`]): main-lane consumers never see lane records, and a lane's
//! consumers see that lane's records, and the main lane's too when they ask for it (a tester's
//! service that should also handle the production traffic it has no test version of).

use bytes::Bytes;
use strata_proto::{Coded, ErrorCode};

use crate::tags::check_word;

/// The header holding a record's lane.
pub const LANE_HEADER: &str = "strata-lane";

/// How the main lane is named where a name must be shown (metric labels, `group describe`):
/// parentheses are not allowed in lane names, so no lane can be called this.
pub const MAIN_LANE: &str = "(main)";

/// The longest lane name.
pub const MAX_LANE_LEN: usize = 64;

/// Most lanes one topic declares.
pub const MAX_LANES: usize = 64;

/// A lane name that is not well formed, or a list of them that is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{reason}; a lane is 1 to 64 letters, digits, `.`, `_` or `-`, and a topic declares at \
     most 64"
)]
pub struct LaneError {
    pub reason: String,
}

impl Coded for LaneError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

/// Checks one lane name.
pub fn check_lane(lane: &str) -> Result<(), LaneError> {
    check_word("lane", lane, MAX_LANE_LEN).map_err(|reason| LaneError { reason })
}

/// Checks the lanes a topic declares: each well formed, none twice, at most [`MAX_LANES`].
pub fn check_lanes(lanes: &[String]) -> Result<(), LaneError> {
    if lanes.len() > MAX_LANES {
        return Err(LaneError {
            reason: format!("{} lanes are declared", lanes.len()),
        });
    }
    for (i, lane) in lanes.iter().enumerate() {
        check_lane(lane)?;
        if lanes[..i].contains(lane) {
            return Err(LaneError {
                reason: format!("lane `{lane}` is declared twice"),
            });
        }
    }
    Ok(())
}

/// The lane of a record with `headers`; `None` for the main lane (no header, or an empty one).
pub fn lane_of(headers: &[(String, Option<Bytes>)]) -> Option<&str> {
    headers
        .iter()
        .find(|(name, _)| name == LANE_HEADER)
        .and_then(|(_, value)| std::str::from_utf8(value.as_deref()?).ok())
        .map(str::trim)
        .filter(|lane| !lane.is_empty())
}

/// Which lanes a consumer of a topic with lanes receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneFilter {
    /// Records without a lane only.
    Main,
    /// Records of this lane, and of the main lane when `with_main`.
    Lane { name: String, with_main: bool },
}

impl LaneFilter {
    /// Whether a record with `headers` is taken.
    pub fn matches(&self, headers: &[(String, Option<Bytes>)]) -> bool {
        match (self, lane_of(headers)) {
            (Self::Main, lane) => lane.is_none(),
            (Self::Lane { with_main, .. }, None) => *with_main,
            (Self::Lane { name, .. }, Some(lane)) => lane == name,
        }
    }

    /// The lane served, `None` for the main lane.
    pub fn lane(&self) -> Option<&str> {
        match self {
            Self::Main => None,
            Self::Lane { name, .. } => Some(name),
        }
    }
}

#[cfg(test)]
mod tests;
