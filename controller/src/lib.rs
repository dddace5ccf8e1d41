//! The control plane: leader election, broker membership, partition assignment and the admin
//! REST API.
//!
//! - [`Controller`] campaigns for leadership; the active one keeps every partition assigned to
//!   a live, undrained broker, balanced with the fewest moves, bumping the epoch of each
//!   partition it moves in the same transaction that moves it.
//! - [`Admin`] holds the operator's levers (topics, reassignment, drain); [`api`] serves them
//!   over HTTP. Any controller, active or standby, serves the API: every write is a
//!   compare-and-swap on the metadata it read.

pub mod admin;
pub mod api;
pub mod balance;
mod error;
pub mod groups;
mod liveness;
pub mod metrics;
mod probe;
mod reconcile;
pub mod state;

pub use admin::Admin;
pub use error::{ControllerError, Result};
pub use reconcile::{Controller, ControllerConfig, ProbeConfig};
