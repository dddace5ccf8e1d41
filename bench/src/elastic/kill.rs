//! A broker killed with -9: how long until each of its partitions is writable again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::claims::{claims, revision};
use super::closed_loop::ClosedLoop;
use super::{ElasticSettings, SIZE, hook};
use crate::stats::{Progress, fmt_opt};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KillResult {
    /// kill -9 → the first produce acknowledged by a new owner, per partition of the killed
    /// broker, per trial; seconds.
    pub unwritable_s: Vec<Vec<f64>>,
    /// The worst partition of each trial.
    pub worst_s: Vec<f64>,
    pub worst_max_s: Option<f64>,
    pub lease_ttl_note: String,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// kill -9 of the broker owning partition 0, with a closed-loop sender on every partition;
/// the killed broker is started again (and gets its share back) before the next trial.
pub async fn broker_kill(
    s: &ElasticSettings<'_>,
    progress: &mut Progress,
) -> anyhow::Result<KillResult> {
    let n = s.brokers_for("a broker kill").await?.len();
    let partitions = (n * 2) as u32;
    let (topic, _) = s.new_topic("kill", partitions).await?;
    let mut result = KillResult {
        lease_ttl_note: "brokers run with the lease TTL the cluster was started with (scripts/bench.sh: --lease-ttl-secs 2)".into(),
        ..KillResult::default()
    };
    let all: Vec<u32> = (0..partitions).collect();
    let load = ClosedLoop::start(&s.args.server, &topic, &all, SIZE).await?;
    for trial in 1..=s.trials {
        s.admin
            .wait_balanced(&topic, n, Duration::from_secs(60))
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (victim, per) = kill_owner_of_partition_0(s, &topic, &load, trial, progress).await?;
        let worst = per.last().copied();
        result.worst_s.push(worst.unwrap_or(f64::NAN));
        progress.done(&format!(
            "kill: trial {trial}: {victim}'s {} partitions writable again after {} s (worst)",
            per.len(),
            fmt_opt(worst, 2)
        ));
        result.unwritable_s.push(per);
        progress.update(&format!("kill: restarting {victim}"));
        hook(&s.args.start_command, "start", &victim).await?;
        s.admin.wait_for_brokers(n, Duration::from_secs(30)).await?;
    }
    s.admin
        .wait_balanced(&topic, n, Duration::from_secs(60))
        .await?;
    (result.errors, result.first_error) = load.stop().await;
    result.worst_max_s = result.worst_s.iter().copied().max_by(f64::total_cmp);
    let _ = s.admin.delete_topic(&topic).await;
    Ok(result)
}

/// Kills the owner of partition 0; returns it and, sorted, the seconds until each of its
/// partitions was acknowledged by a new owner.
async fn kill_owner_of_partition_0(
    s: &ElasticSettings<'_>,
    topic: &str,
    load: &ClosedLoop,
    trial: usize,
    progress: &mut Progress,
) -> anyhow::Result<(String, Vec<f64>)> {
    let parts = s.admin.partitions(topic).await?;
    let victim = parts[0]
        .broker
        .clone()
        .context("partition 0 has no owner")?;
    let old_epochs: BTreeMap<u32, u64> = parts
        .iter()
        .filter(|p| p.broker.as_deref() == Some(victim.as_str()))
        .map(|p| (p.partition, p.epoch))
        .collect();
    progress.update(&format!(
        "kill: trial {trial}/{}: kill -9 {victim} ({} partitions)",
        s.trials,
        old_epochs.len()
    ));
    let rev = revision(s.meta.as_ref(), &s.keys).await?;
    let killed = Instant::now();
    hook(&s.args.kill_command, "kill", &victim).await?;
    let limit = Duration::from_secs(30);
    let claimed = claims(s.meta.as_ref(), &s.keys, topic, &old_epochs, rev, limit).await?;
    let mut per = Vec::with_capacity(claimed.len());
    for (p, claim) in &claimed {
        let first = load.first_ack(*p, claim.from_offset, killed, limit).await?;
        per.push((first - killed).as_secs_f64());
    }
    per.sort_by(f64::total_cmp);
    Ok((victim, per))
}
