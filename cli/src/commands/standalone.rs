//! Everything in one process: controller, broker and proxy on their usual ports, with an
//! embedded metadata store and file storage under the data directory (see the standalone
//! [`RoleFlags`](crate::config::RoleFlags) for how its settings differ). Data survives a
//! restart.

use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    spawn(&mut tasks, &cancel, &config).await?;
    eprintln!(
        "strata standalone: proxy {} · Kafka {} · admin http://{} · data in {}\n  try: strata topic create t --partitions 4 && seq 1 1000 | strata produce t && strata consume t --from-beginning --max-messages 1000",
        config.proxy.listen,
        config.proxy.kafka.listen,
        config.controller.admin_addr,
        config.standalone.data_dir.display()
    );
    super::run_until_stopped(tasks, cancel, "standalone").await
}

/// Starts every role as tasks of `tasks`, stopped by `cancel`, with `config` as the
/// standalone flags left it ([`crate::config::resolve`]).
///
/// Tests use this to run a whole Strata in-process; cancel `cancel` and drain `tasks` to stop
/// it gracefully.
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    config: &Config,
) -> anyhow::Result<()> {
    let dir = &config.standalone.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let (meta, keys) = super::open_meta(config).await?;
    let pool = Arc::new(super::broker::open_pool(config)?);
    let tls = super::ProcessTls::from_config(config)?;
    super::controller::spawn(
        tasks,
        cancel,
        meta.clone(),
        keys.clone(),
        (&config.controller, &config.security),
        &tls,
    )
    .await?;
    super::broker::spawn(
        tasks,
        cancel,
        meta.clone(),
        keys.clone(),
        pool.clone(),
        &config.broker,
        config.zone.as_deref(),
        &tls,
    )
    .await?;
    let settings = (&config.proxy, &config.security);
    super::proxy::spawn(tasks, cancel, meta, keys, pool, settings, &tls).await
}
