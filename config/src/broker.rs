//! `[broker]` and `[broker.maintenance]`: the settings of the broker role.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[broker]`: the write path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// `None`: `$HOSTNAME`, else `broker-{pid}`.
    pub id: Option<String>,
    pub listen: SocketAddr,
    pub http_addr: SocketAddr,
    /// `None`: the listen address.
    pub advertised_addr: Option<String>,
    pub lease_ttl_secs: u64,
    pub shutdown_timeout_secs: u64,
    pub linger_ms: u64,
    pub flush_bytes: usize,
    pub max_batch_bytes: usize,
    pub max_buffer_bytes: usize,
    pub buffer_wait_ms: u64,
    /// Most bytes of pending delayed records' bodies the broker holds; the others are read
    /// back from the log when due.
    pub delay_memory_bytes: usize,
    pub maintenance: MaintenanceSection,
}

/// `[broker.maintenance]`: compaction, retention and garbage collection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSection {
    pub interval_ms: u64,
    pub gc_grace_ms: u64,
    /// 0 never sweeps.
    pub orphan_sweep_every: u32,
    /// Most bytes one compaction holds in memory (a merge is cut to fit).
    pub compaction_memory_bytes: u64,
}
