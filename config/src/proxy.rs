//! `[proxy]`: the settings of the proxy role.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `[proxy]`: the clients' front door and its read cache.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Stable name; unset, `$HOSTNAME` (else `proxy`) and the Kafka port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub listen: SocketAddr,
    pub http_addr: SocketAddr,
    /// 0 turns the cache off.
    pub cache_bytes: u64,
    pub cache_max_object_bytes: u64,
    pub max_concurrent_streams: u32,
    /// The proxy's registration (what Kafka clients see as a broker) ends this long after
    /// the proxy stops renewing it.
    pub lease_ttl_secs: u64,
    pub kafka: KafkaSection,
}

/// `[proxy.kafka]`: the Kafka wire-protocol listener every proxy runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    pub listen: SocketAddr,
    /// `host:port` Kafka clients are told to dial; unset, `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_addr: Option<String>,
    /// Rack (availability zone) reported to rack-aware clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    pub max_request_bytes: u64,
    pub auto_create_topics: bool,
    pub default_partitions: u32,
    /// SASL mechanisms offered (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`); empty: no SASL.
    pub sasl_mechanisms: Vec<String>,
}
