use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strata_broker::{Broker, BrokerConfig, BrokerService, NodeConfig};
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_storage::NodePool;
use strata_storage::pool::{NodeSpec, PoolConfig};
use strata_tls::Alpn;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{BrokerSection, Config};

/// The node pool `[storage]` describes, read from `zone` first.
pub fn open_pool(config: &Config) -> anyhow::Result<NodePool> {
    let settings = &config.storage;
    let nodes = settings.nodes.as_deref().unwrap_or_default();
    if nodes.is_empty() {
        bail!(
            "no storage configured: pass --storage-node file:///var/lib/strata/data (or s3://...), or set [storage] nodes"
        );
    }
    let specs = nodes
        .iter()
        .map(|n| n.parse::<NodeSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut pool_config = PoolConfig::from_section(specs, settings);
    pool_config.local_zone.clone_from(&config.zone);
    Ok(NodePool::open(&pool_config)?)
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let pool = Arc::new(open_pool(&config)?);
    let (meta, keys) = super::open_meta(&config).await?;
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let zone = config.zone.as_deref();
    let tls = super::ProcessTls::from_config(&config)?;
    spawn(
        &mut tasks,
        &cancel,
        meta,
        keys,
        pool,
        &config.broker,
        zone,
        &tls,
    )
    .await?;
    super::run_until_stopped(tasks, cancel, "broker").await
}

/// `[broker] id`, else the host's name (a pod's name in Kubernetes), else one per process.
fn broker_id(settings: &BrokerSection) -> anyhow::Result<String> {
    let id = settings
        .id
        .clone()
        .or_else(super::host_name)
        .unwrap_or_else(|| format!("broker-{}", std::process::id()));
    strata_meta::schema::validate_name("broker", &id)?;
    Ok(id)
}

/// Membership settings of a broker whose storage requests time out after
/// `storage_request_timeout`.
fn node_config(
    settings: &BrokerSection,
    zone: Option<&str>,
    storage_request_timeout: Duration,
) -> NodeConfig {
    // A zero lease would expire before its first renewal.
    let lease_ttl = Duration::from_secs(settings.lease_ttl_secs.max(1));
    NodeConfig {
        advertised_addr: settings
            .advertised_addr
            .clone()
            .unwrap_or_else(|| settings.listen.to_string()),
        lease_ttl,
        shutdown_timeout: Duration::from_secs(settings.shutdown_timeout_secs),
        storage_stall_limit: storage_request_timeout + 2 * lease_ttl,
        zone: zone.map(str::to_owned),
    }
}

/// Starts a broker (gRPC service, HTTP endpoint, membership with flusher and maintenance) as
/// tasks of `tasks`.
#[allow(clippy::too_many_arguments)]
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    pool: Arc<NodePool>,
    settings: &BrokerSection,
    zone: Option<&str>,
    tls: &super::ProcessTls,
) -> anyhow::Result<()> {
    let id = broker_id(settings)?;
    let node = node_config(settings, zone, pool.request_timeout());
    let broker = Broker::new(BrokerConfig::from_section(&id, settings), meta, keys, pool);
    let listen = settings.listen;
    let listener = tls
        .bind(listen, Alpn::Grpc, "the broker service", "--listen")
        .await?;
    let http_addr = settings.http_addr;
    let http_listener = tls
        .bind_health(http_addr, "the broker's HTTP endpoint", "--http-addr")
        .await?;
    tracing::info!(%listen, advertised_addr = %node.advertised_addr, %id, "broker starting");
    let service = tonic::service::interceptor::InterceptedService::new(
        BrokerService::new(broker.clone()).into_server(),
        strata_tls::AdmitOnly::new(tls.cluster_principals.clone()),
    );
    let router = tonic::transport::Server::builder().add_service(service);
    // The servers outlive the member task: during a graceful stop the broker keeps accepting
    // connections (refusing writes as not ready) until it has flushed, committed and left,
    // so the controller never mistakes a draining broker for a dead one (a refused
    // connection is how it spots a crashed broker before its lease runs out).
    let servers = CancellationToken::new();
    super::spawn_grpc(tasks, &servers, listener, router, "broker");
    let http_stop = servers.clone();
    let http = strata_broker::http::router(broker.clone(), tls.server.clone());
    tasks.spawn(async move {
        axum::serve(http_listener, http)
            .with_graceful_shutdown(http_stop.cancelled_owned())
            .await
            .context("broker HTTP endpoint failed")
    });
    let member_cancel = cancel.clone();
    tasks.spawn(async move {
        let result = broker
            .run_member(node, member_cancel)
            .await
            .context("broker failed");
        servers.cancel();
        result
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What a user's file says about flushing, limits, maintenance and shutdown is what the
    /// broker gets.
    #[test]
    fn the_files_broker_settings_reach_the_broker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "[broker]\nshutdown_timeout_secs = 3\nlease_ttl_secs = 4\nflush_bytes = 1024\n\
             buffer_wait_ms = 250\n\
             [broker.maintenance]\ninterval_ms = 1500\ngc_grace_ms = 2500\norphan_sweep_every = 0\n",
        )
        .unwrap();
        let settings = crate::config::load(Some(&path)).unwrap().broker;

        let broker = BrokerConfig::from_section("b1", &settings);
        assert_eq!(broker.maintenance.interval, Duration::from_millis(1500));
        assert_eq!(broker.maintenance.gc_grace, Duration::from_millis(2500));
        assert_eq!(broker.maintenance.orphan_sweep_every, 0);
        assert_eq!(broker.flush.flush_bytes, 1024);
        assert_eq!(broker.limits.buffer_wait, Duration::from_millis(250));

        let node = node_config(&settings, Some("zone-b"), Duration::from_secs(10));
        assert_eq!(node.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(node.lease_ttl, Duration::from_secs(4));
        assert_eq!(node.storage_stall_limit, Duration::from_secs(18));
        assert_eq!(node.advertised_addr, "127.0.0.1:7071", "the listen address");
        assert_eq!(node.zone.as_deref(), Some("zone-b"));
    }
}
