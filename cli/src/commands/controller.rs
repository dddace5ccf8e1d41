use std::sync::Arc;

use anyhow::Context;
use strata_catalog::Admin;
use strata_controller::api::{self, ApiState};
use strata_controller::metrics::Metrics;
use strata_controller::{Controller, ControllerConfig};
use strata_meta::schema::Keyspace;
use strata_meta::{Election, MetaStore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ControllerSection, SecuritySection};

pub async fn run(config: Config) -> anyhow::Result<()> {
    let (meta, keys) = super::open_meta(&config).await?;
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let tls = super::ProcessTls::from_config(&config)?;
    let settings = (&config.controller, &config.security);
    spawn(&mut tasks, &cancel, meta, keys, settings, &tls).await?;
    super::run_until_stopped(tasks, cancel, "controller").await
}

/// Starts the controller and its admin API as tasks of `tasks`.
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    (settings, security): (&ControllerSection, &SecuritySection),
    tls: &super::ProcessTls,
) -> anyhow::Result<()> {
    let admin_addr = settings.admin_addr;
    let controller_config = ControllerConfig::from(settings);
    let metrics = Arc::new(Metrics {
        tls: tls.server.clone(),
        ..Metrics::default()
    });
    let state = ApiState {
        admin: Admin::new(meta.clone(), keys.clone()),
        meta: meta.clone(),
        metrics: metrics.clone(),
        election: Election::new(
            meta.clone(),
            &keys.controller(),
            controller_config.election_ttl,
        ),
        brokers: api::BrokerStatus::new(tls.dial.clone()),
        auth: super::authenticator(Admin::new(meta.clone(), keys.clone()), security),
        authorizer: super::authorizer(Admin::new(meta.clone(), keys.clone()), security),
        clock: Arc::new(strata_clock::SystemClock),
    };
    let listener = strata_tls::HttpListener(
        tls.bind(
            admin_addr,
            strata_tls::Alpn::Http,
            "the admin API",
            "--admin-addr",
        )
        .await?,
    );
    tracing::info!(%admin_addr, cluster = %keys.root(), id = %controller_config.id, "controller starting");
    let http_cancel = cancel.clone();
    tasks.spawn(async move {
        let app = api::router(state).into_make_service_with_connect_info::<strata_tls::Peer>();
        axum::serve(listener, app)
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
