//! Strata's settings, and the one place their defaults live.
//!
//! `strata.toml` beside this crate is the commented file users read; it is built in here and
//! parsed as the defaults. The binary lays a user's file over it, then flags; the role
//! libraries' `Default`s read it too. So no number is written twice, and the documented
//! defaults are the code's by construction. Every section is one type, with every setting
//! required: a setting missing from `strata.toml` fails its tests, and an unknown one is
//! refused.

mod broker;
mod controller;
mod proxy;
mod storage;
mod tls;

use std::path::PathBuf;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

pub use broker::{BrokerSection, MaintenanceSection};
pub use controller::ControllerSection;
pub use proxy::{KafkaSection, ProxySection};
pub use storage::StorageSection;
pub use tls::{ClientAuth, PrincipalRule, TlsSection};

/// `config/strata.toml` as shipped.
pub const SHIPPED: &str = include_str!("../strata.toml");

/// Every setting of every role, in the layout of `strata.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// All metadata lives under `/strata/{cluster}/`.
    pub cluster: String,
    /// The availability zone (machine room) this process runs in; `None` when zones are not used.
    pub zone: Option<String>,
    pub meta: MetaSection,
    pub controller: ControllerSection,
    pub broker: BrokerSection,
    pub proxy: ProxySection,
    pub storage: StorageSection,
    pub tls: TlsSection,
    pub security: SecuritySection,
    pub standalone: StandaloneSection,
}

/// `[meta]`: where the decisions live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSection {
    /// `etcd://host:port[,host:port...]` or `embedded:///path/to/dir`.
    pub url: String,
    /// The most compares, or operations per branch, of one transaction: etcd's
    /// `--max-txn-ops`, which a flush's commits are sized by.
    pub max_txn_ops: usize,
    /// PEM bundle of the CA etcd's certificate chains to; set, etcd is dialled over TLS.
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key presented to etcd (its `--client-cert-auth`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `[security]`: who may do what, across listeners.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    /// Principals (`User:name`) allowed everything, such as managing users and tokens.
    pub super_users: Vec<String>,
    /// gRPC and REST callers must bring a bearer token or a client certificate, and brokers
    /// admit only [`Self::cluster_principals`]. Needs `[tls]`.
    pub authenticate: bool,
    /// The principals of the cluster's own proxies and controllers, the only callers brokers
    /// admit when authenticating; empty: the principal of the process's own certificate.
    pub cluster_principals: Vec<String>,
}

/// `[standalone]`: what only `strata standalone` reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StandaloneSection {
    /// Holds the embedded metadata store and the file storage.
    pub data_dir: PathBuf,
}

static SHIPPED_CONFIG: LazyLock<Config> = LazyLock::new(|| {
    toml::from_str(SHIPPED).expect("the built-in strata.toml is a complete config (tested)")
});

impl Config {
    /// The defaults: `strata.toml` as built in.
    pub fn shipped() -> &'static Config {
        &SHIPPED_CONFIG
    }

    /// The defaults with `overrides` (a user's file) laid over them: a table merges into the
    /// table of the same name, key by key, and any other value replaces the default. Settings
    /// the defaults do not know are refused.
    pub fn with_overrides(overrides: toml::Table) -> Result<Self, toml::de::Error> {
        let mut table: toml::Table = SHIPPED
            .parse()
            .expect("the built-in strata.toml is valid TOML (tested)");
        merge(&mut table, overrides);
        table.try_into()
    }

    /// These settings as a config file (what `--print-config` shows); it reads back as them.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("every setting has a TOML form")
    }
}

fn merge(base: &mut toml::Table, overrides: toml::Table) {
    for (key, value) in overrides {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(overrides)) => {
                merge(base, overrides)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests;
