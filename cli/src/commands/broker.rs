use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use std::net::SocketAddr;
use strata_broker::{Broker, BrokerConfig, BrokerService, Limits, NodeConfig};
use strata_meta::schema::Keyspace;
use strata_storage::NodePool;
use strata_storage::backend::BackendOptions;
use strata_storage::pool::{NodeSpec, PoolConfig};

use strata_meta::MetaStore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{BrokerArgs, StorageArgs};
use crate::config::{self, FileConfig, StorageSection};

/// The node pool from flags, then the file.
pub fn open_pool(args: &StorageArgs, file: &StorageSection) -> anyhow::Result<NodePool> {
    let nodes = if args.storage_nodes.is_empty() {
        file.nodes.clone().unwrap_or_default()
    } else {
        args.storage_nodes.clone()
    };
    if nodes.is_empty() {
        bail!(
            "no storage configured: pass --storage-node file:///var/lib/strata/data (or s3://...), or set [storage] nodes"
        );
    }
    let specs = nodes
        .iter()
        .map(|n| n.parse::<NodeSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut pool = PoolConfig::new(
        specs,
        args.storage_replicas
            .or(file.replicas)
            .unwrap_or(config::DEFAULT_REPLICAS),
    );
    pool.backend = BackendOptions {
        fsync: !args.no_fsync && file.fsync.unwrap_or(true),
    };
    Ok(NodePool::open(&pool)?)
}

pub async fn run(args: BrokerArgs, file: FileConfig) -> anyhow::Result<()> {
    let (cluster, meta_url) = args.common.resolve(&file);
    let id = args
        .id
        .or(file.broker.id)
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| format!("broker-{}", std::process::id()));
    strata_meta::schema::validate_name("broker", &id)?;
    let listen = match args.listen.or(file.broker.listen) {
        Some(addr) => addr,
        None => config::DEFAULT_BROKER_ADDR.parse()?,
    };
    let http_addr = match args.http_addr.or(file.broker.http_addr) {
        Some(addr) => addr,
        None => config::DEFAULT_BROKER_HTTP_ADDR.parse()?,
    };
    let advertised_addr = args
        .advertised_addr
        .or(file.broker.advertised_addr)
        .unwrap_or_else(|| listen.to_string());
    let lease_ttl = Duration::from_secs(
        args.lease_ttl_secs
            .or(file.broker.lease_ttl_secs)
            .unwrap_or(config::DEFAULT_LEASE_TTL_SECS)
            .max(1),
    );
    let linger = Duration::from_millis(
        args.linger_ms
            .or(file.broker.linger_ms)
            .unwrap_or(config::DEFAULT_LINGER_MS),
    );
    let defaults = Limits::default();
    let limits = Limits {
        max_batch_bytes: file
            .broker
            .max_batch_bytes
            .unwrap_or(defaults.max_batch_bytes),
        max_buffer_bytes: file
            .broker
            .max_buffer_bytes
            .unwrap_or(defaults.max_buffer_bytes),
        ..defaults
    };

    let pool = Arc::new(open_pool(&args.storage, &file.storage)?);
    let keys = Keyspace::new(&cluster)?;
    let meta = strata_meta::open(&meta_url)
        .await
        .with_context(|| format!("cannot open metadata store {meta_url}"))?;
    let settings = BrokerSettings {
        id,
        listen,
        http_addr,
        advertised_addr,
        lease_ttl,
        linger,
        limits,
    };
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    spawn(&mut tasks, &cancel, meta, keys, pool, settings).await?;
    super::run_until_stopped(tasks, cancel, "broker").await
}

/// Resolved settings of the broker role.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub id: String,
    pub listen: SocketAddr,
    pub http_addr: SocketAddr,
    pub advertised_addr: String,
    pub lease_ttl: Duration,
    pub linger: Duration,
    pub limits: Limits,
}

/// Starts a broker (gRPC service, HTTP endpoint, membership with flusher and maintenance) as
/// tasks of `tasks`.
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    pool: Arc<NodePool>,
    s: BrokerSettings,
) -> anyhow::Result<()> {
    let mut config = BrokerConfig::new(&s.id);
    config.limits = s.limits;
    config.flush.linger = s.linger;
    let storage_stall_limit = pool.request_timeout() + 2 * s.lease_ttl;
    let broker = Broker::new(config, meta, keys, pool);
    let listen = s.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen} for the broker service; pass --listen")
        })?;
    let http_addr = s.http_addr;
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| {
            format!("cannot listen on {http_addr} for the broker's HTTP endpoint; pass --http-addr")
        })?;
    tracing::info!(%listen, advertised_addr = %s.advertised_addr, id = %s.id, "broker starting");
    let service = BrokerService::new(broker.clone()).into_server();
    let router = tonic::transport::Server::builder().add_service(service);
    // The servers outlive the member task: during a graceful stop the broker keeps accepting
    // connections (refusing writes as not ready) until it has flushed, committed and left,
    // so the controller never mistakes a draining broker for a dead one (a refused
    // connection is how it spots a crashed broker before its lease runs out).
    let servers = CancellationToken::new();
    super::spawn_grpc(tasks, &servers, listener, router, "broker");
    let http_stop = servers.clone();
    let http = strata_broker::http::router(broker.clone());
    tasks.spawn(async move {
        axum::serve(http_listener, http)
            .with_graceful_shutdown(http_stop.cancelled_owned())
            .await
            .context("broker HTTP endpoint failed")
    });
    let member_cancel = cancel.clone();
    let node = NodeConfig {
        advertised_addr: s.advertised_addr,
        lease_ttl: s.lease_ttl,
        shutdown_timeout: Duration::from_secs(20),
        storage_stall_limit,
    };
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
