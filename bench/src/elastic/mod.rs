//! Elasticity: a partition move through the admin API, a broker killed with -9, and a rolling
//! restart of every broker, each under load. How "writable again" is timed exactly is in
//! [`claims`].

mod claims;
mod closed_loop;
mod kill;
mod moves;
mod rolling;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;

pub use self::kill::KillResult;
pub use self::moves::MoveResult;
pub use self::rolling::RollingResult;
use crate::admin::AdminApi;
use crate::args::{BenchArgs, Suite};
use crate::report::{Results, or_failure};
use crate::stats::Progress;

/// Every elasticity measurement writes 1 KiB records, the size the goals are stated in.
const SIZE: usize = 1024;

/// What the elasticity runs need besides the flags.
struct ElasticSettings<'a> {
    args: &'a BenchArgs,
    admin: &'a AdminApi,
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    trials: usize,
}

/// The move, kill and rolling measurements `args` asks for; each that fails is listed in the
/// results' failures and the others run all the same.
pub(crate) async fn run(
    args: &BenchArgs,
    trials: usize,
    admin: &AdminApi,
    progress: &mut Progress,
    results: &mut Results,
) {
    let opened = async {
        let url = args
            .meta
            .as_deref()
            .context("the move, kill and rolling measurements need --meta etcd://HOST:PORT")?;
        let meta = strata_meta::open(url)
            .await
            .with_context(|| format!("cannot open metadata store {url}"))?;
        let keys = Keyspace::new(&args.cluster)?;
        anyhow::Ok((meta, keys))
    };
    let (meta, keys) = match opened.await {
        Ok(opened) => opened,
        Err(e) => {
            results.failures.push(format!("elasticity: {e:#}"));
            return;
        }
    };
    let s = ElasticSettings {
        args,
        admin,
        meta,
        keys,
        trials,
    };
    let failures = &mut results.failures;
    if args.what.contains(&Suite::Move) {
        let moved = moves::partition_move(&s, progress).await;
        results.partition_move = or_failure(failures, "partition move", moved);
    }
    if args.what.contains(&Suite::Kill) {
        let killed = kill::broker_kill(&s, progress).await;
        results.broker_kill = or_failure(failures, "broker kill", killed);
    }
    if args.what.contains(&Suite::Rolling) {
        let restarted = rolling::rolling_restart(&s, progress).await;
        results.rolling_restart = or_failure(failures, "rolling restart", restarted);
    }
}

impl ElasticSettings<'_> {
    /// The registered brokers; `what` needs two or more.
    async fn brokers_for(&self, what: &str) -> anyhow::Result<Vec<String>> {
        let brokers: Vec<String> = self
            .admin
            .brokers()
            .await?
            .into_iter()
            .map(|b| b.id)
            .collect();
        if brokers.len() < 2 {
            bail!(
                "{what} needs at least 2 brokers; {} registered",
                brokers.len()
            );
        }
        Ok(brokers)
    }

    /// A new topic for one measurement, ready to write; (name, incarnation id).
    async fn new_topic(&self, kind: &str, partitions: u32) -> anyhow::Result<(String, u64)> {
        let topic = format!(
            "{}-{kind}-{:06x}",
            self.args.topic_prefix,
            rand::random::<u32>() >> 8
        );
        let id = self
            .admin
            .create_ready_topic(
                &self.args.server,
                &topic,
                partitions,
                Duration::from_secs(30),
            )
            .await?;
        Ok((topic, id))
    }
}

/// A broker other than `owner` to move a partition to.
fn other_broker(brokers: &[String], owner: &str) -> String {
    brokers
        .iter()
        .find(|b| *b != owner)
        .cloned()
        .unwrap_or_default()
}

/// Runs a user-given shell command with `{broker}` replaced.
async fn hook(template: &Option<String>, what: &str, broker: &str) -> anyhow::Result<()> {
    let Some(template) = template else {
        bail!("--{what}-command is needed for this measurement");
    };
    let command = template.replace("{broker}", broker);
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("`{command}` did not finish in 60 s"))??;
    if !output.status.success() {
        bail!(
            "`{command}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
