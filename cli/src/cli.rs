//! Command-line interface: every flag also reads an environment variable `STRATA_...`, and
//! settings not given either way come from the optional TOML file, then from the defaults in
//! `config/strata.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: a message broker whose brokers hold no data"
)]
pub struct Cli {
    /// TOML configuration file (see config/strata.toml for every setting).
    #[arg(long, global = true, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a controller: leader election, partition assignment and the admin REST API.
    Controller(ControllerArgs),
}

/// Settings every server role shares.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Cluster name; all keys live under /strata/{cluster}/.
    #[arg(long, env = "STRATA_CLUSTER")]
    pub cluster: Option<String>,

    /// Metadata store: etcd://host:port[,host:port] or embedded:///path/to/dir.
    #[arg(long, env = "STRATA_META")]
    pub meta: Option<String>,
}

#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Address of the admin REST API.
    #[arg(long, env = "STRATA_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// This controller's name in the election (default: controller-{pid}).
    #[arg(long, env = "STRATA_CONTROLLER_ID")]
    pub id: Option<String>,

    /// Seconds a dead active controller keeps its leadership before a standby takes over.
    #[arg(long, env = "STRATA_ELECTION_TTL_SECS")]
    pub election_ttl_secs: Option<u64>,
}
