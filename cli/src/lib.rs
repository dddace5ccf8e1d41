//! The `strata` binary's code as a library, so integration tests (and embedders) can run a
//! whole Strata in-process: see [`commands::standalone::spawn`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod memory;
pub mod report;
