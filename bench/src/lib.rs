//! Strata's benchmark suite.
//!
//! [`run`] is `strata bench`: throughput, latency, scaling and elasticity of a running Strata
//! (standalone or a cluster), with baselines measured in the same run so every figure can be
//! read as a ratio on a shared, noisy machine. It prints a table, writes JSON, and optionally
//! an SVG chart. `scripts/bench.sh` starts the servers and runs it.
//!
//! `benches/broker/` is the in-process benchmark of one broker's write path
//! (`cargo bench -p strata-bench --bench broker`); it shares [`stats`] and the disk probe of
//! [`baseline`] with `strata bench`. docs/benchmarks.md explains every figure.

// A benchmark measures real elapsed time and writes real random payloads: the clock rule
// of clippy.toml is for code whose time tests must control.
#![allow(clippy::disallowed_methods)]

mod admin;
mod args;
pub mod baseline;
mod chart;
mod consume;
mod credentials;
mod elastic;
mod load;
mod plan;
mod produce;
mod report;
pub mod stats;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use self::admin::AdminApi;
pub use self::args::{BenchArgs, Suite};
use self::plan::{Plan, ack_name};
use self::report::{Machine, Results, Settings, or_failure};
use self::stats::{CpuSample, Progress, load_average};

/// `strata bench`: measures what `args` asks for, prints the table, writes the JSON (and the
/// chart); fails after writing them if any step failed.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.chart_from.is_empty() {
        return chart_only(&args);
    }
    let plan = Plan::new(&args)?;
    credentials::set(&args)?;
    let started = Instant::now();
    let cpu_start = CpuSample::now();
    let mut progress = Progress::new();
    let mut results = begin(&args, &plan);
    let admin = AdminApi::new(&args.admin);
    let wants = |s: Suite| args.what.contains(&s);
    if args.what.iter().any(|s| *s != Suite::Baselines) {
        progress.update("waiting for a registered broker");
        admin.wait_for_brokers(1, Duration::from_secs(30)).await?;
    }

    if wants(Suite::Baselines) {
        results.baselines =
            baseline::measure(&args, &plan, &mut progress, &mut results.failures).await;
    }
    // Elasticity first: every broker (re)start rebalances all partitions of the cluster, and
    // after the produce suite that is thousands (1,113 moves in one run), which is then what
    // a kill or restart would measure.
    if wants(Suite::Move) || wants(Suite::Kill) || wants(Suite::Rolling) {
        elastic::run(&args, plan.trials, &admin, &mut progress, &mut results).await;
    }
    if wants(Suite::Produce) || wants(Suite::Consume) {
        produce::run(&args, &plan, &admin, &mut progress, &mut results).await;
    }
    if wants(Suite::Baselines)
        && let Some(dir) = args.storage_dir.clone()
    {
        progress.update("baseline: disk again, after the load");
        let disk = baseline::disk_off_runtime(dir, plan.by_length(5, 3)).await;
        results.baselines.disk_after =
            or_failure(&mut results.failures, "disk baseline after", disk);
    }

    results.divide_by_write_baseline();
    results.machine.load_avg_1m_end = load_average();
    results.machine.cpu = CpuSample::since(cpu_start, CpuSample::now());
    results.duration_s = started.elapsed().as_secs_f64();
    results.judge();

    progress.done(&format!("finished in {:.0} s", results.duration_s));
    println!("{}{}", results.header(), results.table());
    let json = serde_json::to_string_pretty(&results)?;
    write(&args.json, json.as_bytes())?;
    if let Some(path) = &args.chart {
        write(
            path,
            chart::render(std::slice::from_ref(&results))?.as_bytes(),
        )?;
    }
    if !results.failures.is_empty() {
        bail!(
            "{} steps failed (listed above; the other figures are valid)",
            results.failures.len()
        );
    }
    Ok(())
}

/// The results document before anything is measured: the machine and the settings.
fn begin(args: &BenchArgs, plan: &Plan) -> Results {
    Results {
        label: plan.label.clone(),
        storage_kind: plan.storage_kind.clone(),
        started_unix_ms: strata_clock::Clock::unix_millis(&strata_clock::SystemClock),
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_avg_1m_start: load_average(),
            ..Machine::default()
        },
        settings: Settings {
            server: args.server.clone(),
            sizes: plan.sizes.clone(),
            partitions: plan.partitions.clone(),
            acks: plan.acks.iter().map(|a| ack_name(*a).to_owned()).collect(),
            warmup_s: plan.warmup.as_secs_f64(),
            measure_s: plan.measure.as_secs_f64(),
            latency_load: args.latency_load,
            producer_linger_ms: args.linger_ms,
            partitioner: args.partitioner.clone(),
            quick: args.quick,
        },
        ..Results::default()
    }
}

/// `--chart-from`: draws the chart of earlier runs and measures nothing.
fn chart_only(args: &BenchArgs) -> anyhow::Result<()> {
    let Some(path) = &args.chart else {
        bail!("--chart-from needs --chart PATH for the SVG");
    };
    let mut runs = Vec::new();
    for from in &args.chart_from {
        let text = std::fs::read_to_string(from)
            .with_context(|| format!("cannot read {}", from.display()))?;
        let run: Results = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a strata bench result (JSON written by --json)",
                from.display()
            )
        })?;
        runs.push(run);
    }
    write(path, chart::render(&runs)?.as_bytes())
}

fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
