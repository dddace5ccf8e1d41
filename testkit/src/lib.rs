//! Test-only helpers that start the real components Strata's tests run against: an `etcd`
//! server and an S3-protocol server (`s3s-fs`), each on loopback with a private data directory,
//! and the `strata` server processes themselves ([`StrataCluster`], [`StrataServer`]).
//!
//! Nothing here is a mock. When a binary is missing the helpers fail with a message that names
//! the script installing it (`scripts/setup.sh`), because a skipped real component would let a
//! broken feature pass.
//!
//! [`fault`] wraps a real object store to fail, stall and count its requests on command.

// Test harnesses wait on real time against real servers.
#![allow(clippy::disallowed_methods)]

mod etcd;
pub mod fault;
mod process;
mod s3;
mod strata;
mod test_run;

pub use etcd::{EtcdOptions, EtcdServer, EtcdTlsFiles, MAX_TXN_OPS as ETCD_MAX_TXN_OPS};
pub use process::{ChildGuard, ServerOptions, find_binary, free_port, reserved_port, wait_for_tcp};
pub use s3::{S3Options, S3Server};
pub use strata::{Placement, StrataCluster, StrataServer};
pub use test_run::{OWNER_ENV, log_dir, owner_env, reap_orphans, strata_binary, target_tmp_dir};
