//! `[proxy]`: the settings of the proxy role.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[proxy]`: the clients' front door and its read cache.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    pub listen: SocketAddr,
    pub http_addr: SocketAddr,
    /// 0 turns the cache off.
    pub cache_bytes: u64,
    pub cache_max_object_bytes: u64,
    pub max_concurrent_streams: u32,
}
