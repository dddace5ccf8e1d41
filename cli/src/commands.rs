//! One module per subcommand.

mod acl;
mod admin_api;
mod broker;
mod brokers;
mod client_tls;
mod consume;
mod controller;
mod dlq;
mod group;
mod produce;
mod proxy;
mod reassign;
pub mod standalone;
mod tls;
mod token;
mod topic;
mod trace;
mod user;

pub use tls::ProcessTls;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;

use crate::cli::{Cli, Command};
use crate::config::{self, Config, RoleFlags};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = cli.config.as_deref();
    match cli.command {
        Command::Controller(args) => serve(file, &args, controller::run).await,
        Command::Broker(args) => serve(file, &args, broker::run).await,
        Command::Proxy(args) => serve(file, &args, proxy::run).await,
        Command::Standalone(args) => serve(file, &args, standalone::run).await,
        Command::Topic(command) => topic::run(command).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Group(command) => group::run(command).await,
        Command::Nack(args) => dlq::nack(args).await,
        Command::Dlq(command) => dlq::run(command).await,
        Command::Trace(args) => trace::run(args).await,
        Command::Reassign(args) => reassign::run(args).await,
        Command::Brokers(command) => brokers::run(command).await,
        Command::User(command) => user::run(command).await,
        Command::Token(command) => token::run(command).await,
        Command::Acl(command) => acl::run(command).await,
        Command::Bench(args) => strata_bench::run(*args).await,
    }
}

/// Prints a JSON document for `--format json`, pretty, with a final newline.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a server role with the settings its flags, the config `file` and the defaults give
/// (see [`config`]), or only prints them.
async fn serve<F>(
    file: Option<&Path>,
    flags: &impl RoleFlags,
    run: impl FnOnce(Config) -> F,
) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let config = config::resolve(file, flags)?;
    if flags.print_config() {
        print!("{}", config.to_toml());
        return Ok(());
    }
    run(config).await
}

/// The host's name (a pod's name in Kubernetes), which server roles take as their default id
/// and a proxy listening on every interface advertises.
pub fn host_name() -> Option<String> {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty())
}

/// The metadata store of `[meta]` and the keyspace of the cluster.
pub async fn open_meta(config: &Config) -> anyhow::Result<(Arc<dyn MetaStore>, Keyspace)> {
    let keys = Keyspace::new(&config.cluster)?;
    let url = &config.meta.url;
    let meta = strata_meta::open_with(url, config.meta.max_txn_ops, tls::etcd(config)?)
        .await
        .with_context(|| format!("cannot open metadata store {url}"))?;
    Ok((meta, keys))
}

/// Runs a server role's tasks until SIGTERM or Ctrl-C (or until one of them stops), then
/// cancels them all and waits for each to finish its own graceful shutdown.
pub async fn run_until_stopped(
    mut tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    cancel: tokio_util::sync::CancellationToken,
    role: &str,
) -> anyhow::Result<()> {
    tokio::select! {
        () = shutdown_signal() => tracing::info!(role, "shutting down"),
        Some(done) = tasks.join_next() => {
            cancel.cancel();
            done??;
            anyhow::bail!("a {role} task stopped unexpectedly");
        }
    }
    cancel.cancel();
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Who calls the gRPC and REST APIs, under `[security]`.
pub fn authenticator(
    admin: strata_catalog::Admin,
    security: &strata_config::SecuritySection,
) -> Arc<strata_catalog::auth::Authenticator> {
    Arc::new(strata_catalog::auth::Authenticator::new(
        admin,
        security.authenticate,
        Arc::new(strata_clock::SystemClock),
    ))
}

/// The ACL rules for the gRPC and REST APIs, enforced when `[security] authenticate` is on.
pub fn authorizer(
    admin: strata_catalog::Admin,
    security: &strata_config::SecuritySection,
) -> Arc<strata_catalog::acls::Authorizer> {
    Arc::new(strata_catalog::acls::Authorizer::new(
        admin,
        security.authenticate,
        security.super_users.clone(),
        Arc::new(strata_clock::SystemClock),
    ))
}

/// Serves a gRPC router on `incoming` as a task of `tasks` until `cancel` fires.
pub fn spawn_grpc(
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    cancel: &tokio_util::sync::CancellationToken,
    incoming: strata_tls::Incoming,
    router: tonic::transport::server::Router,
    what: &'static str,
) {
    let shutdown = cancel.clone().cancelled_owned();
    tasks.spawn(async move {
        use anyhow::Context as _;
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .with_context(|| format!("{what} gRPC server failed"))
    });
}

/// Resolves when the process is asked to stop (SIGTERM or Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the process");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
