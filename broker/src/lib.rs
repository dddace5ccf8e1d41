//! The broker's write path. A broker owns the partitions the controller assigns it and holds
//! nothing that cannot be lost: every byte it accepts goes to the storage node pool, every
//! commit to the metadata store.
//!
//! - [`Partition`]: the state machine `Start → Recover → Write → (Closing → Closed) | Fenced`,
//!   dense offsets, a bounded buffer with back-pressure, idempotent-producer dedup.
//! - [`Broker`]: the partitions of this broker and the produce path into their buffers.
//! - [`Flusher`]: turns each partition's buffer into one segment object per cycle and commits
//!   all of them together through the log's write protocol (`strata_log::write`), each under
//!   its partition's claim, so a broker that lost a partition can never commit to it again.
//! - [`Maintainer`]: compaction, retention and garbage collection, under the same guard.
//! - [`DelayWorker`]: delivers the delayed records of the partitions it writes when they are
//!   due, as copies appended to the same partitions.

mod broker;
mod delays;
mod error;
mod flush;
pub mod http;
mod maintenance;
pub mod metrics;
mod node;
pub mod partition;
mod service;
mod stall;
mod table;

pub use broker::{Broker, BrokerConfig};
pub use delays::DelayWorker;
pub use error::{BrokerError, Result};
pub use flush::{FlushConfig, FlushStats, Flusher};
pub use maintenance::{Maintainer, MaintenanceConfig, MaintenanceStats};
pub use node::NodeConfig;
pub use partition::{Ack, Limits, Partition, PartitionState, StoreTimes};
pub use service::BrokerService;
pub use strata_log::partitions_per_txn;
