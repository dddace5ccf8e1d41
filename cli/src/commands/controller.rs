use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use strata_catalog::Admin;
use strata_controller::api::{self, ApiState};
use strata_controller::metrics::Metrics;
use strata_controller::{Controller, ControllerConfig};
use strata_meta::schema::Keyspace;
use strata_meta::{Election, MetaStore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::ControllerArgs;
use crate::config::{self, FileConfig};

pub async fn run(args: ControllerArgs, file: FileConfig) -> anyhow::Result<()> {
    let (cluster, meta_url) = args.common.resolve(&file);
    let admin_addr = match args.admin_addr.or(file.controller.admin_addr) {
        Some(addr) => addr,
        None => config::DEFAULT_ADMIN_ADDR.parse()?,
    };
    let ttl = args
        .election_ttl_secs
        .or(file.controller.election_ttl_secs)
        .unwrap_or(config::DEFAULT_ELECTION_TTL_SECS);
    let probe_ms = args
        .broker_probe_ms
        .or(file.controller.broker_probe_ms)
        .unwrap_or(config::DEFAULT_BROKER_PROBE_MS);
    let mut controller_config = ControllerConfig {
        election_ttl: Duration::from_secs(ttl.max(1)),
        probe: strata_controller::ProbeConfig {
            interval: Duration::from_millis(probe_ms),
            ..Default::default()
        },
        ..Default::default()
    };
    if let Some(id) = args.id.or(file.controller.id) {
        controller_config.id = id;
    }

    let keys = Keyspace::new(&cluster)?;
    let meta = strata_meta::open(&meta_url)
        .await
        .with_context(|| format!("cannot open metadata store {meta_url}"))?;
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    spawn(
        &mut tasks,
        &cancel,
        meta,
        keys,
        admin_addr,
        controller_config,
    )
    .await?;
    super::run_until_stopped(tasks, cancel, "controller").await
}

/// Starts the controller and its admin API as tasks of `tasks`.
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    admin_addr: std::net::SocketAddr,
    controller_config: ControllerConfig,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let state = ApiState {
        admin: Admin::new(meta.clone(), keys.clone()),
        meta: meta.clone(),
        metrics: metrics.clone(),
        election: Election::new(
            meta.clone(),
            &keys.controller(),
            controller_config.election_ttl,
        ),
    };
    let listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| {
            format!("cannot listen on {admin_addr} for the admin API; pass --admin-addr")
        })?;
    tracing::info!(%admin_addr, cluster = %keys.root(), id = %controller_config.id, "controller starting");
    let http_cancel = cancel.clone();
    tasks.spawn(async move {
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(http_cancel.cancelled_owned())
            .await
            .context("admin API server failed")
    });
    let controller = Controller::new(meta, keys, controller_config, metrics);
    let run_cancel = cancel.clone();
    tasks.spawn(async move {
        controller
            .run(run_cancel)
            .await
            .context("controller failed")
    });
    Ok(())
}
