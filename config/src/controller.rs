//! `[controller]`: the settings of the controller role.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[controller]`: leader election, partition assignment and the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSection {
    pub admin_addr: SocketAddr,
    /// Name in the leader election; `None`: `controller-{pid}`.
    pub id: Option<String>,
    pub election_ttl_secs: u64,
    pub resync_interval_secs: u64,
    /// 0 turns probing off.
    pub broker_probe_ms: u64,
    pub broker_probe_refusals: u32,
}
