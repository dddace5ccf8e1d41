//! Helpers of the workspace integration tests.
//!
//! - [`InProcess`] runs a whole Strata (`strata standalone`) inside the test process, for SDK
//!   tests that need a real server but no process control.
//! - [`kafka_wire`] speaks the Kafka protocol byte by byte, for tests of the Kafka listener that
//!   need exact control of what is sent (versions, bad frames).
//! - [`harness`] runs Strata clusters as processes or containers and breaks them on purpose:
//!   the fault tests (`tests/faults.rs`, `tests/containers.rs`, `scripts/faults.sh`).
//! - [`kafka_clients`] runs real Kafka clients (kcat, confluent-kafka, kafka-python) against
//!   a standalone server or a process cluster (`tests/kafka_clients.rs`, `tests/kafka_faults.rs`).
//! - [`cli`] runs the `strata` CLI (and other programs) to their end, bound in time.
//! - [`prerequisite`] is what every test does when something it needs is missing: skip with
//!   the reason outside CI, fail under `CI=true`.
//! - [`secured`] starts a standalone with TLS, authentication and SASL as the security tests
//!   ask, with a throwaway CA, and builds the credential flags of the CLI and kcat.
//! - [`measure`] reads a server's CPU time and memory, and takes quantiles, for benchmarks.
//! - [`selecting`] reads what consumers that select records (tags, property filters, lanes)
//!   are given, and asks the proxy directly.

// Test harnesses wait on real time against real servers.
#![allow(clippy::disallowed_methods)]

pub mod cli;
pub mod harness;
mod inprocess;
pub mod kafka_clients;
pub mod kafka_wire;
pub mod measure;
pub mod prerequisite;
pub mod secured;
pub mod selecting;

pub use inprocess::InProcess;
