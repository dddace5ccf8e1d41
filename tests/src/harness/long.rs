//! The long form: random faults, one after another, on one cluster under one continuous
//! load, for a set time; then the whole log is checked once and a table of figures printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::checker::Verdict;
use super::ops::Cluster;
use super::scenarios::{Run, Scenario, check_cluster};
use super::snapshot::{Copied, Snapshot, copied};
use super::workload::LoadConfig;

/// Settings of a long run.
#[derive(Debug, Clone)]
pub struct LongConfig {
    pub duration: Duration,
    pub seed: u64,
    /// Scenarios to draw from (those needing cuts are dropped where cuts are impossible).
    pub scenarios: Vec<Scenario>,
    /// Load between two faults, drawn from this range.
    pub pause: (Duration, Duration),
}

/// Figures of one kind of fault.
#[derive(Debug, Clone, Default)]
pub struct KindFigures {
    pub count: u64,
    /// Longest gap in acknowledgements of a partition between the fault and the end of its
    /// recovery.
    pub max_unwritable: Duration,
    pub total_unwritable: Duration,
    pub copied: Copied,
}

/// What a long run found.
#[derive(Debug, Clone)]
pub struct LongReport {
    pub mode: &'static str,
    pub seed: u64,
    pub elapsed: Duration,
    pub verdict: Verdict,
    pub kinds: BTreeMap<&'static str, KindFigures>,
    pub liveness_failures: Vec<String>,
    pub known_issues: Vec<String>,
    pub errors: Vec<String>,
    pub quiet_new_bytes: u64,
    pub quiet_measured: usize,
    pub quiet_skipped: u32,
    pub catch_up: Option<Duration>,
    pub segments: usize,
    pub holes: Vec<String>,
    pub skipped: Vec<String>,
    pub logs: String,
}

impl LongReport {
    pub fn faults(&self) -> u64 {
        self.kinds.values().map(|k| k.count).sum()
    }

    pub fn copied_bytes(&self) -> u64 {
        self.kinds.values().map(|k| k.copied.bytes).sum()
    }

    /// Everything that is wrong; empty when the run is good.
    pub fn problems(&self) -> Vec<String> {
        let mut out = super::scenarios::safety_and_liveness(
            &self.verdict,
            &self.liveness_failures,
            &self.holes,
        );
        out.extend(self.errors.iter().cloned());
        let rewritten: u64 = self
            .kinds
            .values()
            .map(|k| k.copied.records_rewritten)
            .sum();
        if self.copied_bytes() > 0 || rewritten > 0 || self.quiet_new_bytes > 0 {
            out.push(format!(
                "moves copied data: {} bytes, {rewritten} records rewritten, {} bytes in quiet moves",
                self.copied_bytes(),
                self.quiet_new_bytes
            ));
        }
        if self.catch_up.is_none() {
            out.push("the group's consumers did not catch up within 120 s".into());
        }
        out
    }

    /// The table of figures, as Markdown.
    pub fn table(&self) -> String {
        let v = &self.verdict;
        let mut t = String::new();
        let max_unwritable = self
            .kinds
            .values()
            .map(|k| k.max_unwritable)
            .max()
            .unwrap_or_default()
            .max(v.max_unwritable);
        let _ = writeln!(t, "| figure | value |\n|---|---|");
        let _ = writeln!(t, "| mode | {} (seed {}) |", self.mode, self.seed);
        let _ = writeln!(
            t,
            "| duration | {:.1} min |",
            self.elapsed.as_secs_f64() / 60.0
        );
        let _ = writeln!(
            t,
            "| ops (acknowledged produces + records handed to the group) | {} |",
            v.acked + v.read + v.redelivered
        );
        let _ = writeln!(t, "| faults injected | {} |", self.faults());
        let _ = writeln!(
            t,
            "| messages sent / acknowledged / failed | {} / {} / {} |",
            v.sent, v.acked, v.failed
        );
        let _ = writeln!(t, "| records read back | {} |", v.read);
        let _ = writeln!(t, "| **lost** | **{}** |", v.lost);
        let _ = writeln!(t, "| **duplicated** | **{}** |", v.duplicated);
        let _ = writeln!(t, "| **reordered** | **{}** |", v.reordered);
        let _ = writeln!(
            t,
            "| misplaced / foreign / offset gaps | {} / {} / {} |",
            v.misplaced, v.foreign, v.offset_gaps
        );
        let _ = writeln!(t, "| unacknowledged but present | {} |", v.unacked_present);
        let _ = writeln!(
            t,
            "| **max unwritable (s)** | **{:.2}** |",
            max_unwritable.as_secs_f64()
        );
        let _ = writeln!(
            t,
            "| **bytes copied by moves** | **{}** (quiet moves: {} bytes in {} measured, {} not \
             measured: a node could not be listed) |",
            self.copied_bytes(),
            self.quiet_new_bytes,
            self.quiet_measured,
            self.quiet_skipped
        );
        let _ = writeln!(
            t,
            "| group: missing / redelivered / mismatched | {} / {} / {} |",
            v.group_missing, v.redelivered, v.delivery_mismatches
        );
        let _ = writeln!(
            t,
            "| consumer errors (polls, commits; retried) | {} |",
            v.consumer_errors
        );
        let _ = writeln!(t, "| segment records at the end | {} |", self.segments);
        let _ = writeln!(
            t,
            "| liveness failures (> 30 s) | {} |",
            self.liveness_failures.len()
        );
        let _ = writeln!(
            t,
            "\n| fault | count | max unwritable (s) | mean unwritable (s) | bytes copied |\n|---|---|---|---|---|"
        );
        for (kind, k) in &self.kinds {
            let mean = if k.count == 0 {
                0.0
            } else {
                k.total_unwritable.as_secs_f64() / k.count as f64
            };
            let _ = writeln!(
                t,
                "| {kind} | {} | {:.2} | {:.2} | {} |",
                k.count,
                k.max_unwritable.as_secs_f64(),
                mean,
                k.copied.bytes
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for k in &self.known_issues {
            if let Some((_, issue)) = k.split_once("(known issue: ")
                && seen.insert(issue.to_owned())
            {
                let _ = writeln!(t, "\nKnown issue: {}", issue.trim_end_matches(')'));
            }
        }
        for s in &self.skipped {
            let _ = writeln!(t, "\nSkipped: {s}");
        }
        t
    }
}

/// Runs random faults on `cluster` under `config` for `long.duration`, then checks.
pub async fn long_run<C: Cluster>(
    cluster: &mut C,
    config: LoadConfig,
    long: LongConfig,
) -> anyhow::Result<LongReport> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(long.seed);
    let mut skipped = Vec::new();
    let mut scenarios: Vec<Scenario> = long.scenarios.clone();
    if let Err(why) = cluster.can_cut() {
        anyhow::ensure!(
            !crate::prerequisite::in_ci(),
            "the partition scenarios cannot run: {why}. Under CI=true a missing prerequisite \
             fails the run instead of leaving them out"
        );
        skipped.push(format!("partition scenarios: {why}"));
        scenarios.retain(|s| !s.needs_cut());
    }
    if cluster.zones().is_empty() && scenarios.iter().any(|s| Scenario::ZONED.contains(s)) {
        skipped.push("zone outages: this cluster has no zones".into());
        scenarios.retain(|s| !Scenario::ZONED.contains(s));
    }
    let mut run = Run::start(cluster, config, format!("long:{}", cluster.mode())).await?;
    let mut kinds: BTreeMap<&'static str, KindFigures> = BTreeMap::new();
    let mut errors = Vec::new();
    let deadline = started + long.duration;
    let mut n = 0;
    while Instant::now() < deadline {
        let rest = long.pause.0
            + Duration::from_millis(
                rng.random_range(0..=(long.pause.1 - long.pause.0).as_millis() as u64),
            );
        tokio::time::sleep(rest).await;
        if Instant::now() >= deadline {
            break;
        }
        let scenario = scenarios[rng.random_range(0..scenarios.len())];
        n += 1;
        let before = Snapshot::take(cluster.meta().as_ref(), &cluster.keys(), None).await?;
        let from = Instant::now();
        let result = scenario.apply(cluster, &mut run).await;
        let to = Instant::now();
        let after = Snapshot::take(cluster.meta().as_ref(), &cluster.keys(), None).await?;
        let moved = copied(&before, &after);
        let (gap, partition, _) = run
            .load
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .longest_gap(from, to + Duration::from_millis(500));
        let figures = kinds.entry(scenario.name()).or_default();
        figures.count += 1;
        figures.max_unwritable = figures.max_unwritable.max(gap);
        figures.total_unwritable += gap;
        figures.copied += moved;
        let (acked, failed, _) = run
            .load
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .counts();
        eprintln!(
            "[long {:>5.1} min] fault {n}: {} — unwritable {:.2} s (partition {partition}), {} bytes copied; {acked} acknowledged, {failed} failed so far",
            started.elapsed().as_secs_f64() / 60.0,
            scenario.name(),
            gap.as_secs_f64(),
            moved.bytes
        );
        if let Err(e) = result {
            // The cluster may not be whole any more: stop injecting, still check the log.
            let message = format!("fault {n} ({}) did not recover: {e:#}", scenario.name());
            eprintln!("[long] {message}");
            errors.push(message);
            break;
        }
    }
    let catch_up = run.load.stop(Duration::from_secs(120)).await?;
    let final_snapshot = Snapshot::take(cluster.meta().as_ref(), &cluster.keys(), None).await?;
    let (verdict, _) = check_cluster(cluster, &run.load).await?;
    Ok(LongReport {
        mode: cluster.mode(),
        seed: long.seed,
        elapsed: started.elapsed(),
        verdict,
        kinds,
        liveness_failures: run.liveness_failures.clone(),
        known_issues: run.known_issues.clone(),
        errors,
        quiet_new_bytes: run.quiet.iter().map(|q| q.new_bytes).sum(),
        quiet_measured: run.quiet.len(),
        quiet_skipped: run.quiet_skipped,
        catch_up,
        segments: final_snapshot.segments.len(),
        holes: final_snapshot.holes(),
        skipped,
        logs: cluster.logs(),
    })
}
