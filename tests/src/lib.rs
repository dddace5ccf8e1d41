//! Helpers of the workspace integration tests.
//!
//! - [`InProcess`] runs a whole Strata (`strata standalone`) inside the test process, for SDK
//!   tests that need a real server but no process control.

mod inprocess;

pub use inprocess::InProcess;
