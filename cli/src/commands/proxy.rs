use std::sync::Arc;

use anyhow::Context;
use std::sync::atomic::{AtomicBool, Ordering};

use strata_log::{CacheConfig, LogReader, ReadCache};
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_proxy::{CheckpointWatch, GroupCoordinator, ProxyMetrics, ProxyService, Routes};
use strata_storage::NodePool;
use strata_tls::Alpn;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ProxySection};
use strata_config::SecuritySection;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let pool = Arc::new(super::broker::open_pool(&config)?);
    let (meta, keys) = super::open_meta(&config).await?;
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let tls = super::ProcessTls::from_config(&config)?;
    let settings = (&config.proxy, &config.security);
    spawn(&mut tasks, &cancel, meta, keys, pool, settings, &tls).await?;
    super::run_until_stopped(tasks, cancel, "proxy").await
}

/// Starts a proxy (routing table, commit notifications, gRPC service, HTTP endpoint) as tasks
/// of `tasks`.
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    pool: Arc<NodePool>,
    (settings, security): (&ProxySection, &SecuritySection),
    tls: &super::ProcessTls,
) -> anyhow::Result<()> {
    let cache_config = CacheConfig::from(settings);
    let routes = Routes::new(meta.clone(), keys.clone());
    routes
        .reload()
        .await
        .context("cannot read the routing table from the metadata store")?;
    let cache = (cache_config.capacity_bytes > 0).then(|| Arc::new(ReadCache::new(cache_config)));
    let mut reader = LogReader::new(meta.clone(), keys.clone(), pool.clone());
    if let Some(cache) = &cache {
        reader = reader.with_cache(cache.clone());
    }
    let checkpoints = CheckpointWatch::prefetching(meta.clone(), keys.clone(), reader.clone());
    let groups = GroupCoordinator::new(meta.clone(), keys.clone(), routes.clone(), reader.clone());
    let admin = strata_catalog::Admin::new(meta.clone(), keys.clone());
    let admin_for_auth = admin.clone();
    let listen = settings.listen;
    let listener = tls
        .bind(listen, Alpn::Grpc, "the proxy", "--listen")
        .await?;
    let kafka_addr = settings.kafka.listen;
    let kafka_listener = tls
        .bind(kafka_addr, Alpn::None, "Kafka clients", "--kafka-addr")
        .await?;
    let http_addr = settings.http_addr;
    let http_listener = tls
        .bind_health(http_addr, "the proxy's HTTP endpoint", "--http-addr")
        .await?;
    tracing::info!(%listen, %kafka_addr, %http_addr, cache_bytes = cache_config.capacity_bytes, "proxy starting");
    let (follower, token) = (routes.clone(), cancel.clone());
    tasks.spawn(async move {
        follower.follow(token).await;
        Ok(())
    });
    let (follower, token) = (checkpoints.clone(), cancel.clone());
    tasks.spawn(async move {
        follower.follow(token).await;
        Ok(())
    });
    let metrics = Arc::new(ProxyMetrics::default());
    let kafka_metrics = Arc::new(strata_kafka::KafkaMetrics::default());
    let ready = Arc::new(AtomicBool::new(true));
    let mut extra: Vec<Arc<dyn strata_proxy::MetricsSource>> = vec![kafka_metrics.clone(), pool];
    if let Some(server) = &tls.server {
        extra.push(server.clone());
    }
    let health = strata_proxy::http::Health {
        ready: ready.clone(),
        metrics: metrics.clone(),
        cache,
        extra,
    };
    let cluster_id = keys.root().trim_start_matches('/').replace('/', "-");
    let service = ProxyService::new(routes, checkpoints, reader, groups, admin, metrics)
        .with_broker_tls(tls.dial.clone())
        .with_authorizer(super::authorizer(admin_for_auth.clone(), security))
        .with_name(trace_name(listen));
    spawn_kafka(
        tasks,
        cancel,
        meta,
        keys,
        service.clone(),
        (settings, security),
        kafka_listener,
        kafka_metrics,
        cluster_id,
    )
    .await?;
    let auth = super::authenticator(admin_for_auth, security);
    let records = strata_proxy::http::RecordApi {
        service: service.clone(),
        auth: auth.clone(),
    };
    let http_cancel = cancel.clone();
    tasks.spawn(async move {
        let app = strata_proxy::http::router_with(health, Some(records))
            .into_make_service_with_connect_info::<strata_tls::Peer>();
        axum::serve(http_listener, app)
            .with_graceful_shutdown(async move {
                http_cancel.cancelled().await;
                ready.store(false, Ordering::SeqCst);
            })
            .await
            .context("proxy HTTP endpoint failed")
    });
    let service = strata_proxy::auth::Authenticate::new(service.into_server(), auth);
    // A consumer long-polls every partition it reads on one HTTP/2 connection; hyper's default
    // of 200 streams would queue the rest of a 1,000-partition consumer behind the waits.
    let router = tonic::transport::Server::builder()
        .max_concurrent_streams(settings.max_concurrent_streams)
        // Produce requests of a megabyte on many streams: the window grows past h2's 64 KiB
        // to what the connection carries, as the SDK's does for fetch answers.
        .http2_adaptive_window(Some(true))
        .add_service(service);
    super::spawn_grpc(tasks, cancel, listener, router, "proxy");
    Ok(())
}

/// The proxy's id: `[proxy] id`, else the host's name (a pod's name in Kubernetes) and the
/// Kafka port, so proxies sharing a host differ and each keeps its id across restarts.
fn proxy_id(settings: &ProxySection) -> anyhow::Result<String> {
    let id = settings.id.clone().unwrap_or_else(|| {
        let host = super::host_name().unwrap_or_else(|| "proxy".into());
        format!("{host}-{}", settings.kafka.listen.port())
    });
    strata_meta::schema::validate_name("proxy", &id)?;
    Ok(id)
}

/// What Kafka clients are told to dial: the configured address, else the listen address; a
/// listener on every interface (0.0.0.0) cannot be dialled, so the host's name stands in.
fn kafka_advertised_addr(kafka: &strata_config::KafkaSection) -> String {
    if let Some(addr) = &kafka.advertised_addr {
        return addr.clone();
    }
    if !kafka.listen.ip().is_unspecified() {
        return kafka.listen.to_string();
    }
    let host = super::host_name().unwrap_or_else(|| "localhost".into());
    tracing::warn!(
        listen = %kafka.listen,
        advertised = %format!("{host}:{}", kafka.listen.port()),
        "the Kafka listener listens on every interface; advertising the host name. Set --kafka-advertised-addr to the address clients reach this proxy by"
    );
    format!("{host}:{}", kafka.listen.port())
}

/// The SASL mechanisms of `[proxy.kafka] sasl_mechanisms`, refusing names it does not know.
fn sasl_mechanisms(
    kafka: &strata_config::KafkaSection,
) -> anyhow::Result<Vec<strata_kafka::Mechanism>> {
    kafka
        .sasl_mechanisms
        .iter()
        .map(|name| {
            strata_kafka::Mechanism::parse(name).with_context(|| {
                format!(
                    "unknown SASL mechanism `{name}` in [proxy.kafka] sasl_mechanisms; use {}",
                    strata_kafka::Mechanism::NAMES
                )
            })
        })
        .collect()
}

/// Registers the proxy for Kafka clients and starts its Kafka listener.
#[allow(clippy::too_many_arguments)]
async fn spawn_kafka(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    service: ProxyService,
    (settings, security): (&ProxySection, &SecuritySection),
    listener: strata_tls::Incoming,
    metrics: Arc<strata_kafka::KafkaMetrics>,
    cluster_id: String,
) -> anyhow::Result<()> {
    let kafka = &settings.kafka;
    let config = strata_kafka::ClusterConfig {
        proxy_id: proxy_id(settings)?,
        advertised_addr: kafka_advertised_addr(kafka),
        rack: kafka.rack.clone().unwrap_or_default(),
        lease_ttl: std::time::Duration::from_secs(settings.lease_ttl_secs.max(1)),
        cluster_id,
    };
    let cluster = strata_kafka::Cluster::new(meta, keys, config)
        .await
        .context("cannot register the proxy for Kafka clients")?;
    let (registered, token) = (cluster.clone(), cancel.clone());
    tasks.spawn(async move {
        registered.run(token).await;
        Ok(())
    });
    let server = strata_kafka::KafkaServer::new(
        service,
        cluster,
        strata_kafka::ServerConfig {
            max_request_bytes: usize::try_from(kafka.max_request_bytes).unwrap_or(usize::MAX),
            auto_create_topics: kafka.auto_create_topics,
            default_partitions: kafka.default_partitions.max(1),
            sasl: sasl_mechanisms(kafka)?,
            super_users: security.super_users.clone(),
        },
        metrics,
    );
    let token = cancel.clone();
    tasks.spawn(async move {
        server.serve(listener, token).await;
        Ok(())
    });
    Ok(())
}

/// How this proxy is named in message traces: its listening address, with the host's name
/// (the pod's, on Kubernetes) when it listens on every interface.
fn trace_name(listen: std::net::SocketAddr) -> String {
    match std::env::var("HOSTNAME") {
        Ok(host) if listen.ip().is_unspecified() && !host.is_empty() => {
            format!("{host}:{}", listen.port())
        }
        _ => listen.to_string(),
    }
}
