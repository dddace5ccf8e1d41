//! A server role's settings, in three layers, each replacing only the settings it names:
//!
//! 1. the defaults: `config/strata.toml` as built in ([`Config::shipped`]);
//! 2. the user's file (`--config`, `STRATA_CONFIG`), refused whole if it names an unknown
//!    setting;
//! 3. environment variables and flags (clap reads both; a flag wins over its variable).

use std::path::Path;

use anyhow::Context;

pub use strata_config::{
    BrokerSection, Config, ControllerSection, MaintenanceSection, MetaSection, ProxySection,
    SecuritySection, StandaloneSection, StorageSection,
};

use crate::cli::{
    BrokerArgs, CommonArgs, ControllerArgs, KafkaArgs, ProxyArgs, SecurityArgs, StandaloneArgs,
    StorageArgs, TlsArgs,
};
use strata_config::{ClientAuth, PrincipalRule, TlsSection};

/// The flags of a server role.
pub trait RoleFlags {
    /// Replaces every setting whose flag (or environment variable) is given.
    fn overlay(&self, config: &mut Config) -> anyhow::Result<()>;

    /// Asked to print the settings instead of running.
    fn print_config(&self) -> bool;
}

/// The settings a role started with `flags` and the config file at `file` runs with.
pub fn resolve(file: Option<&Path>, flags: &impl RoleFlags) -> anyhow::Result<Config> {
    let mut config = load(file)?;
    flags.overlay(&mut config)?;
    // An empty zone (the Helm chart's, on a node without a zone label) is no zone.
    config.zone = config.zone.take().filter(|z| !z.is_empty());
    if let Some(zone) = &config.zone
        && !strata_storage::pool::is_valid_zone(zone)
    {
        anyhow::bail!(
            "zone `{zone}` is not a zone name: use letters, digits, `-`, `_` and `.` (--zone, STRATA_ZONE)"
        );
    }
    // Kafka's rack is the zone, unless set apart.
    if config.proxy.kafka.rack.is_none() {
        config.proxy.kafka.rack.clone_from(&config.zone);
    }
    Ok(config)
}

/// The defaults with the settings of the file at `path`, if any, over them.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        return Ok(Config::shipped().clone());
    };
    let invalid = || {
        format!(
            "config file {} is not valid; compare it with config/strata.toml",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let settings = text.parse::<toml::Table>().with_context(invalid)?;
    Config::with_overrides(settings).with_context(invalid)
}

/// `setting` takes the flag's value when the flag is given; optional settings take it too.
fn set<T: Clone, S: From<T>>(setting: &mut S, flag: &Option<T>) {
    if let Some(value) = flag {
        *setting = S::from(value.clone());
    }
}

impl CommonArgs {
    fn overlay(&self, config: &mut Config) {
        set(&mut config.cluster, &self.cluster);
        if self.zone.is_some() {
            config.zone.clone_from(&self.zone);
        }
        set(&mut config.meta.url, &self.meta);
        set(&mut config.meta.max_txn_ops, &self.meta_max_txn_ops);
        set_optional(&mut config.meta.ca, &self.meta_ca);
        set_optional(&mut config.meta.cert, &self.meta_cert);
        set_optional(&mut config.meta.key, &self.meta_key);
        self.tls.overlay(&mut config.tls);
        self.security.overlay(&mut config.security);
    }
}

/// An optional setting takes the flag's value when the flag is given.
fn set_optional<T: Clone>(setting: &mut Option<T>, flag: &Option<T>) {
    if flag.is_some() {
        setting.clone_from(flag);
    }
}

impl SecurityArgs {
    fn overlay(&self, security: &mut SecuritySection) {
        if !self.super_users.is_empty() {
            security.super_users.clone_from(&self.super_users);
        }
        set(&mut security.authenticate, &self.authenticate);
        if !self.cluster_principals.is_empty() {
            security
                .cluster_principals
                .clone_from(&self.cluster_principals);
        }
    }
}

impl TlsArgs {
    fn overlay(&self, tls: &mut TlsSection) {
        set_optional(&mut tls.cert, &self.tls_cert);
        set_optional(&mut tls.key, &self.tls_key);
        set_optional(&mut tls.ca, &self.tls_ca);
        // clap admits only the values below.
        match self.tls_client_auth.as_deref() {
            Some("optional") => tls.client_auth = ClientAuth::Optional,
            Some("required") => tls.client_auth = ClientAuth::Required,
            Some(_) => tls.client_auth = ClientAuth::None,
            None => {}
        }
        match self.tls_principal.as_deref() {
            Some("san") => tls.principal = PrincipalRule::San,
            Some(_) => tls.principal = PrincipalRule::Cn,
            None => {}
        }
        set(&mut tls.http, &self.tls_http);
    }
}

impl StorageArgs {
    fn overlay(&self, storage: &mut StorageSection) {
        if !self.storage_nodes.is_empty() {
            storage.nodes = Some(self.storage_nodes.clone());
        }
        set(&mut storage.replicas, &self.storage_replicas);
        // A switch can only turn fsync off; the file turns it back on.
        if self.no_fsync {
            storage.fsync = false;
        }
        set(
            &mut storage.request_timeout_ms,
            &self.storage_request_timeout_ms,
        );
        set(&mut storage.hedge_floor_ms, &self.storage_hedge_floor_ms);
        set(
            &mut storage.hedge_budget_percent,
            &self.storage_hedge_budget_percent,
        );
        set(
            &mut storage.hedge_budget_burst,
            &self.storage_hedge_budget_burst,
        );
    }
}

impl RoleFlags for ControllerArgs {
    fn overlay(&self, config: &mut Config) -> anyhow::Result<()> {
        self.common.overlay(config);
        let c = &mut config.controller;
        set(&mut c.admin_addr, &self.admin_addr);
        set(&mut c.id, &self.id);
        set(&mut c.election_ttl_secs, &self.election_ttl_secs);
        set(&mut c.broker_probe_ms, &self.broker_probe_ms);
        Ok(())
    }

    fn print_config(&self) -> bool {
        self.common.print_config
    }
}

impl RoleFlags for BrokerArgs {
    fn overlay(&self, config: &mut Config) -> anyhow::Result<()> {
        self.common.overlay(config);
        self.storage.overlay(&mut config.storage);
        let b = &mut config.broker;
        set(&mut b.id, &self.id);
        set(&mut b.listen, &self.listen);
        set(&mut b.http_addr, &self.http_addr);
        set(&mut b.advertised_addr, &self.advertised_addr);
        set(&mut b.lease_ttl_secs, &self.lease_ttl_secs);
        set(&mut b.shutdown_timeout_secs, &self.shutdown_timeout_secs);
        set(&mut b.linger_ms, &self.linger_ms);
        set(&mut b.flush_bytes, &self.flush_bytes);
        set(&mut b.max_batch_bytes, &self.max_batch_bytes);
        set(&mut b.max_buffer_bytes, &self.max_buffer_bytes);
        set(&mut b.buffer_wait_ms, &self.buffer_wait_ms);
        set(&mut b.delay_memory_bytes, &self.delay_memory_bytes);
        let m = &mut b.maintenance;
        set(&mut m.interval_ms, &self.maintenance_interval_ms);
        set(&mut m.gc_grace_ms, &self.gc_grace_ms);
        set(&mut m.orphan_sweep_every, &self.orphan_sweep_every);
        set(
            &mut m.compaction_memory_bytes,
            &self.compaction_memory_bytes,
        );
        Ok(())
    }

    fn print_config(&self) -> bool {
        self.common.print_config
    }
}

impl RoleFlags for ProxyArgs {
    fn overlay(&self, config: &mut Config) -> anyhow::Result<()> {
        self.common.overlay(config);
        self.storage.overlay(&mut config.storage);
        let p = &mut config.proxy;
        set(&mut p.listen, &self.listen);
        set(&mut p.http_addr, &self.http_addr);
        set(&mut p.cache_bytes, &self.cache_bytes);
        set(&mut p.lease_ttl_secs, &self.lease_ttl_secs);
        if self.id.is_some() {
            p.id.clone_from(&self.id);
        }
        self.kafka.overlay(&mut p.kafka);
        Ok(())
    }

    fn print_config(&self) -> bool {
        self.common.print_config
    }
}

impl KafkaArgs {
    fn overlay(&self, k: &mut strata_config::KafkaSection) {
        set(&mut k.listen, &self.kafka_addr);
        if self.kafka_advertised_addr.is_some() {
            k.advertised_addr.clone_from(&self.kafka_advertised_addr);
        }
        if self.kafka_rack.is_some() {
            k.rack.clone_from(&self.kafka_rack);
        }
        set(&mut k.max_request_bytes, &self.kafka_max_request_bytes);
        set(&mut k.auto_create_topics, &self.auto_create_topics);
        set(&mut k.default_partitions, &self.default_partitions);
        if !self.kafka_sasl_mechanisms.is_empty() {
            k.sasl_mechanisms = self
                .kafka_sasl_mechanisms
                .iter()
                .filter(|m| !m.eq_ignore_ascii_case("none") && !m.is_empty())
                .cloned()
                .collect();
        }
    }
}

/// Standalone keeps everything in its data directory: the metadata store and the one
/// storage node are always there, and its controller and broker have fixed names, so a
/// restart finds its partitions where it left them.
impl RoleFlags for StandaloneArgs {
    fn overlay(&self, config: &mut Config) -> anyhow::Result<()> {
        set(&mut config.standalone.data_dir, &self.data_dir);
        set(&mut config.proxy.listen, &self.proxy_addr);
        set(&mut config.proxy.http_addr, &self.proxy_http_addr);
        set(&mut config.controller.admin_addr, &self.admin_addr);
        set(&mut config.broker.listen, &self.broker_addr);
        set(&mut config.broker.http_addr, &self.broker_http_addr);
        self.kafka.overlay(&mut config.proxy.kafka);
        self.tls.overlay(&mut config.tls);
        self.security.overlay(&mut config.security);

        let dir = std::path::absolute(&config.standalone.data_dir)
            .context("cannot resolve the data directory")?;
        config.meta.url = format!("embedded://{}", dir.join("meta").display());
        config.storage.nodes = Some(vec![format!("local=file://{}", dir.join("data").display())]);
        config.storage.replicas = 1;
        config.standalone.data_dir = dir;
        config.controller.id = Some("standalone".into());
        config.broker.id = Some("standalone".into());
        config.proxy.id = Some("standalone".into());
        Ok(())
    }

    fn print_config(&self) -> bool {
        self.print_config
    }
}

#[cfg(test)]
mod tests;
