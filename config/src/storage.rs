//! `[storage]`: the node pool that brokers and proxies share.

use serde::{Deserialize, Serialize};

/// `[storage]`: the pool of object stores every byte lives in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `name=url` or a URL each; no default, brokers and proxies refuse to start without.
    pub nodes: Option<Vec<String>>,
    pub replicas: usize,
    pub fsync: bool,
    pub request_timeout_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}
