//! The control plane: leader election, broker membership, partition assignment and the admin
//! REST API.
//!
//! - [`Controller`] campaigns for leadership; the active one keeps every partition assigned to
//!   a live, undrained broker, balanced with the fewest moves, bumping the epoch of each
//!   partition it moves in the same transaction that moves it. The planning and the writes
//!   are `strata_catalog`'s, shared with the proxies.
//! - [`api`] serves the operator's levers (`strata_catalog::Admin`) over HTTP, asking each
//!   partition's owner for its state over gRPC (the catalog itself never calls a broker). Any
//!   controller, active or standby, serves the API: every write is a compare-and-swap on the
//!   metadata it read.

pub mod api;
mod error;
mod lag;
mod liveness;
pub mod metrics;
mod probe;
mod reconcile;

pub use error::{ControllerError, Result};
pub use reconcile::{Controller, ControllerConfig, ProbeConfig};
