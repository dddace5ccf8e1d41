//! The cluster's catalog: topics, partition assignments, consumer groups as operators see
//! them, and balancing.
//!
//! Controllers and proxies both read and write it, so it lives below them and neither depends
//! on the other. It talks to the metadata store only: anything that needs a broker's own
//! answer (such as the state of its partitions) comes in through a seam the caller fills, like
//! [`OwnerStates`].
//!
//! - [`Admin`] holds the operator's levers (topics, reassignment, drain, rebalance) and the
//!   read-only groups view. Every write is a compare-and-swap on the metadata it read, so any
//!   process may use it without being the active controller.
//! - [`state`] reads a snapshot of the cluster, plans assignment changes and writes them;
//!   [`balance`] decides who owns what with the fewest moves.

pub mod acls;
pub mod admin;
pub mod auth;
pub mod balance;
mod error;
pub mod groups;
pub mod state;
pub mod tokens;
pub mod users;

pub use admin::{Admin, OwnerStates, ReportedStates, Unreported};
pub use error::{CatalogError, Result};
