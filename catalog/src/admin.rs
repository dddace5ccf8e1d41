//! The operator's levers, independent of HTTP: the controller's REST API, the proxy's gRPC
//! admin calls and the CLI all call these.
//!
//! Every write is a compare-and-swap on what was read, so two operators (or an operator and
//! the active controller) acting at once cannot corrupt an assignment: one of them gets
//! `Conflict` and retries.

mod brokers;
mod partitions;
mod topics;

use std::sync::Arc;
use strata_clock::Clock;

use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;

pub use self::brokers::BrokerView;
pub use self::partitions::{OwnerStates, PartitionView, ReportedStates, Unreported};
pub use self::topics::{
    MAX_DELAY_MS, MAX_PARTITIONS, MAX_TRACE_SAMPLE_PPM, MIN_SEGMENT_BYTES, NewTopic,
    TRACE_TOPIC_PARTITIONS, TRACE_TOPIC_RETENTION_MS, TopicConfigChange, TopicDescription,
    TopicView, lanes_named,
};
use crate::error::Result;
use crate::state::ClusterState;
pub use strata_format::lanes::MAX_LANES;
pub use strata_format::trace::TRACE_TOPIC;

fn now_ms() -> i64 {
    strata_clock::SystemClock.unix_millis()
}

/// Admin operations over one cluster's metadata.
#[derive(Debug, Clone)]
pub struct Admin {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
}

impl Admin {
    pub fn new(meta: Arc<dyn MetaStore>, keys: Keyspace) -> Self {
        Self { meta, keys }
    }

    /// The metadata store this admin works on.
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    async fn state(&self) -> Result<ClusterState> {
        ClusterState::load(self.meta.as_ref(), &self.keys).await
    }
}
