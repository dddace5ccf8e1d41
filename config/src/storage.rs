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
    /// A request still running after twice its node's recent p99 latency, and at least this long,
    /// is started again on another node (hedged).
    pub hedge_floor_ms: u64,
    /// Hedges earned per 100 requests (writes and reads apart): the most extra requests
    /// hedging adds over time.
    pub hedge_budget_percent: u32,
    /// Hedges that may start at once beyond that share; both 0 turn hedging off.
    pub hedge_budget_burst: u32,
}
