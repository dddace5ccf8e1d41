use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use strata_log::LogReader;
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_proxy::{Commits, GroupCoordinator, ProxyService, Routes};
use strata_storage::NodePool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::ProxyArgs;
use crate::config::{self, FileConfig};

pub async fn run(args: ProxyArgs, file: FileConfig) -> anyhow::Result<()> {
    let (cluster, meta_url) = args.common.resolve(&file);
    let listen = match args.listen.or(file.proxy.listen) {
        Some(addr) => addr,
        None => config::DEFAULT_PROXY_ADDR.parse()?,
    };
    let pool = Arc::new(super::broker::open_pool(&args.storage, &file.storage)?);
    let keys = Keyspace::new(&cluster)?;
    let meta = strata_meta::open(&meta_url)
        .await
        .with_context(|| format!("cannot open metadata store {meta_url}"))?;
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    spawn(&mut tasks, &cancel, meta, keys, pool, listen).await?;
    super::run_until_stopped(tasks, cancel, "proxy").await
}

/// Starts a proxy (routing table, commit notifications, gRPC service) as tasks of `tasks`.
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    pool: Arc<NodePool>,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let routes = Routes::new(meta.clone(), keys.clone());
    routes
        .reload()
        .await
        .context("cannot read the routing table from the metadata store")?;
    let commits = Commits::new(meta.clone(), keys.clone());
    let reader = LogReader::new(meta.clone(), keys.clone(), pool);
    let groups = GroupCoordinator::new(meta.clone(), keys.clone(), routes.clone(), reader.clone());
    let admin = strata_controller::Admin::new(meta, keys);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the proxy; pass --listen"))?;
    tracing::info!(%listen, "proxy starting");
    let (follower, token) = (routes.clone(), cancel.clone());
    tasks.spawn(async move {
        follower.follow(token).await;
        Ok(())
    });
    let (follower, token) = (commits.clone(), cancel.clone());
    tasks.spawn(async move {
        follower.follow(token).await;
        Ok(())
    });
    let service = ProxyService::new(routes, commits, reader, groups, admin).into_server();
    let router = tonic::transport::Server::builder().add_service(service);
    super::spawn_grpc(tasks, cancel, listener, router, "proxy");
    Ok(())
}
