//! Topic administration for Kafka admin clients: create, delete and grow topics, read and
//! change their settings, describe the cluster.
//!
//! Creation, deletion and growth go through the proxy's service like every other handler;
//! settings and validate-only checks go to the catalog the service administers through, so
//! no rule about topics lives in this crate.

mod alter;
mod cluster;
mod configs;
mod topics;

pub(super) use alter::{alter_configs, incremental_alter_configs};
pub(super) use cluster::describe_cluster;
pub(super) use configs::describe_configs;
pub(super) use topics::{create_partitions, create_topics, delete_topics};

use kafka_protocol::protocol::StrBytes;
use strata_catalog::CatalogError;
use strata_proto::v1;
use strata_proto::{Coded, ErrorCode};

use crate::codes;

/// Kafka's resource types (DescribeConfigs, AlterConfigs).
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// A Kafka code and message for one refused item of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub code: i16,
    pub message: String,
}

impl Refusal {
    pub fn new(code: i16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A catalog error, with `invalid_argument` as the code of a refused argument (it depends
    /// on what was being checked: partitions, settings).
    pub fn of_catalog(e: &CatalogError, invalid_argument: i16) -> Self {
        let code = match e {
            CatalogError::InvalidName(_) => codes::INVALID_TOPIC_EXCEPTION,
            CatalogError::InvalidArgument(_) => invalid_argument,
            other => codes::kafka_code(other.code()),
        };
        Self::new(code, e.to_string())
    }

    /// A service error, as [`Refusal::of_catalog`] does for the catalog's.
    pub fn of_service(e: &v1::Error, invalid_argument: i16) -> Self {
        let code = match e.error_code() {
            Some(ErrorCode::InvalidArgument) => invalid_argument,
            Some(code) => codes::kafka_code(code),
            None => codes::UNKNOWN_SERVER_ERROR,
        };
        Self::new(code, e.message.clone())
    }
}

/// `(error_code, error_message)` of an outcome, as responses carry them.
fn outcome(result: &Result<(), Refusal>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (codes::NONE, None),
        Err(r) => (r.code, Some(StrBytes::from_string(r.message.clone()))),
    }
}
