//! The optional TOML file. Its layout is `config/strata.toml`, which documents every setting
//! with its default; the helm chart's values mirror it.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub cluster: Option<String>,
    #[serde(default)]
    pub meta: MetaSection,
    #[serde(default)]
    pub controller: ControllerSection,
    #[serde(default)]
    pub broker: BrokerSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub proxy: ProxySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    pub listen: Option<std::net::SocketAddr>,
    pub http_addr: Option<std::net::SocketAddr>,
    pub cache_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    pub id: Option<String>,
    pub listen: Option<std::net::SocketAddr>,
    pub http_addr: Option<std::net::SocketAddr>,
    pub advertised_addr: Option<String>,
    pub lease_ttl_secs: Option<u64>,
    pub linger_ms: Option<u64>,
    pub max_batch_bytes: Option<usize>,
    pub max_buffer_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    pub nodes: Option<Vec<String>>,
    pub replicas: Option<usize>,
    pub fsync: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSection {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSection {
    pub admin_addr: Option<std::net::SocketAddr>,
    pub id: Option<String>,
    pub election_ttl_secs: Option<u64>,
    pub broker_probe_ms: Option<u64>,
}

pub const DEFAULT_CLUSTER: &str = "default";
pub const DEFAULT_META: &str = "etcd://127.0.0.1:2379";
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:7080";
pub const DEFAULT_ELECTION_TTL_SECS: u64 = 5;
pub const DEFAULT_BROKER_PROBE_MS: u64 = 250;
pub const DEFAULT_BROKER_ADDR: &str = "127.0.0.1:7071";
pub const DEFAULT_PROXY_ADDR: &str = "127.0.0.1:7070";
pub const DEFAULT_PROXY_HTTP_ADDR: &str = "127.0.0.1:7073";
pub const DEFAULT_PROXY_CACHE_BYTES: u64 = 256 << 20;
pub const DEFAULT_BROKER_HTTP_ADDR: &str = "127.0.0.1:7072";
pub const DEFAULT_LEASE_TTL_SECS: u64 = 5;
pub const DEFAULT_LINGER_MS: u64 = 5;
pub const DEFAULT_REPLICAS: usize = 1;

impl crate::cli::CommonArgs {
    /// Cluster name and metadata store URL: flag or environment, else the file, else default.
    pub fn resolve(&self, file: &FileConfig) -> (String, String) {
        let cluster = self
            .cluster
            .clone()
            .or_else(|| file.cluster.clone())
            .unwrap_or_else(|| DEFAULT_CLUSTER.into());
        let meta = self
            .meta
            .clone()
            .or_else(|| file.meta.url.clone())
            .unwrap_or_else(|| DEFAULT_META.into());
        (cluster, meta)
    }
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| {
            format!(
                "config file {} is not valid; compare it with config/strata.toml",
                path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped default config parses and says what the code's defaults say.
    #[test]
    fn shipped_config_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/strata.toml");
        let config = FileConfig::load(Some(&path)).unwrap();
        assert_eq!(config.cluster.as_deref(), Some(DEFAULT_CLUSTER));
        assert_eq!(config.meta.url.as_deref(), Some(DEFAULT_META));
        assert_eq!(
            config.controller.admin_addr,
            Some(DEFAULT_ADMIN_ADDR.parse().unwrap())
        );
        assert_eq!(
            config.controller.election_ttl_secs,
            Some(DEFAULT_ELECTION_TTL_SECS)
        );
        assert_eq!(
            config.controller.broker_probe_ms,
            Some(DEFAULT_BROKER_PROBE_MS)
        );
        assert_eq!(
            config.proxy.listen,
            Some(DEFAULT_PROXY_ADDR.parse().unwrap())
        );
        assert_eq!(
            config.proxy.http_addr,
            Some(DEFAULT_PROXY_HTTP_ADDR.parse().unwrap())
        );
        assert_eq!(config.proxy.cache_bytes, Some(DEFAULT_PROXY_CACHE_BYTES));
    }

    #[test]
    fn unknown_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[controller]\nadmin_adr = \"x\"\n").unwrap();
        let err = format!("{:#}", FileConfig::load(Some(&path)).unwrap_err());
        assert!(
            err.contains("admin_adr") && err.contains("config/strata.toml"),
            "{err}"
        );
    }
}
