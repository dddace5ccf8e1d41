//! `strata bench`: throughput and latency of a running Strata (issue 8; being built).

use clap::Args;

/// Settings of `strata bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Proxy address of the Strata to measure.
    #[arg(long, env = "STRATA_SERVER", default_value = "127.0.0.1:7070")]
    pub server: String,
}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("strata bench is not built yet (issue 8)")
}
