//! Everything in one process: embedded metadata, controller, broker and proxy on the default
//! ports, with file storage under the data directory. Data survives a restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use strata_broker::Limits;
use strata_controller::ControllerConfig;
use strata_meta::schema::Keyspace;
use strata_storage::NodePool;
use strata_storage::pool::{NodeSpec, PoolConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::broker::BrokerSettings;
use crate::cli::StandaloneArgs;
use crate::config::{self, FileConfig};

pub async fn run(args: StandaloneArgs, file: FileConfig) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let dir = spawn(&mut tasks, &cancel, &args, &file).await?;
    eprintln!(
        "strata standalone: proxy {} · admin http://{} · data in {}\n  try: strata topic create t --partitions 4 && seq 1 1000 | strata produce t && strata consume t --from-beginning --max-messages 1000",
        args.proxy_addr,
        args.admin_addr,
        dir.display()
    );
    super::run_until_stopped(tasks, cancel, "standalone").await
}

/// Starts every role as tasks of `tasks`, stopped by `cancel`; returns the data directory.
///
/// Tests use this to run a whole Strata in-process; cancel `cancel` and drain `tasks` to stop
/// it gracefully.
pub async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
    args: &StandaloneArgs,
    file: &FileConfig,
) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::path::absolute(&args.data_dir).context("cannot resolve --data-dir")?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let cluster = file
        .cluster
        .clone()
        .unwrap_or_else(|| config::DEFAULT_CLUSTER.into());
    let keys = Keyspace::new(&cluster)?;
    let meta_url = format!("embedded://{}", dir.join("meta").display());
    let meta = strata_meta::open(&meta_url)
        .await
        .with_context(|| format!("cannot open the metadata store in {}", dir.display()))?;
    let node: NodeSpec = format!("local=file://{}", dir.join("data").display()).parse()?;
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![node], 1))?);

    let controller = ControllerConfig {
        id: "standalone".into(),
        election_ttl: Duration::from_secs(2),
        ..Default::default()
    };
    super::controller::spawn(
        tasks,
        cancel,
        meta.clone(),
        keys.clone(),
        args.admin_addr,
        controller,
    )
    .await?;
    let broker = BrokerSettings {
        id: "standalone".into(),
        listen: args.broker_addr,
        http_addr: args.broker_http_addr,
        advertised_addr: args.broker_addr.to_string(),
        lease_ttl: Duration::from_secs(config::DEFAULT_LEASE_TTL_SECS),
        linger: Duration::from_millis(config::DEFAULT_LINGER_MS),
        limits: Limits::default(),
    };
    super::broker::spawn(
        tasks,
        cancel,
        meta.clone(),
        keys.clone(),
        pool.clone(),
        broker,
    )
    .await?;
    let proxy = super::proxy::ProxySettings {
        listen: args.proxy_addr,
        http_addr: args.proxy_http_addr,
        cache: strata_log::CacheConfig {
            capacity_bytes: file
                .proxy
                .cache_bytes
                .unwrap_or(config::DEFAULT_PROXY_CACHE_BYTES),
            ..strata_log::CacheConfig::default()
        },
    };
    super::proxy::spawn(tasks, cancel, meta, keys, pool, proxy).await?;
    Ok(dir)
}
