//! One broker's write path with file storage: throughput and produce-ack latency of 1 KiB
//! messages for each ack mode and for 1 to 1,000 partitions, with the metadata transactions
//! and object PUTs per second that each point costs.
//!
//! Everything runs in this process: an `EmbeddedStore` (which fsyncs its log, as etcd would)
//! and one `file://` storage node with fsync on, both in a fresh folder per point under one
//! temporary directory (several GB by the end; removed when the run ends). The flush loop is the
//! bench's own copy of `Broker::run_flusher`, so that it can add up the `FlushStats` of every
//! cycle.
//!
//! Run with `cargo bench -p strata-bench --bench broker [-- NAME…]` (only points whose name
//! contains a NAME). Progress goes to stderr, the table to stdout, and the same results as JSON
//! to `target/bench-broker.json`. See docs/benchmarks.md for what each figure means.

// A benchmark measures real elapsed time and writes real random payloads: the clock rule
// of clippy.toml is for code whose time tests must control.
#![allow(clippy::disallowed_methods)]

mod flush;
mod points;
mod report;
mod setup;
mod stages;

use std::time::Duration;

use strata_bench::baseline::disk_off_runtime;
use strata_bench::stats::{CpuSample, Progress, fmt_opt};

use self::points::{POINTS, run_point};
use self::report::{FsyncBaseline, Machine, Report, Settings};

const TOPIC: &str = "bench";
const VALUE_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
/// Long enough for the first write to every partition (which creates its object folder) to fall
/// before the window at 1,000 partitions; a running broker has those folders already.
const WARMUP: Duration = Duration::from_secs(1);
/// Buffered acks flush in cycles of more than half a second; a 5 s window holds several.
const MEASURE: Duration = Duration::from_secs(5);
/// Timed rounds of the fsync baseline.
const FSYNC_ROUNDS: usize = 5;

const USAGE: &str = "\
cargo bench -p strata-bench --bench broker [-- NAME...]

One broker's write path in this process, on file storage with fsync: msgs/s, MB/s and ack
latency per ack mode and partition count, with metadata transactions and PUTs per second.
Runs every point, or only those whose name contains one of the NAMEs:";

fn main() -> anyhow::Result<()> {
    // cargo adds `--bench`, which is not a filter.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        for point in POINTS {
            println!("  {}", point.name);
        }
        println!("See docs/benchmarks.md for what each figure means.");
        return Ok(());
    }
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    // Two workers, as the two cores of the machine the figures in docs/benchmarks.md come from;
    // fsyncs run on tokio's blocking pool either way.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(&filters))
}

async fn run(filters: &[String]) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu_start = CpuSample::now();
    let mut progress = Progress::new();
    let root = tempfile::Builder::new().prefix("strata-bench-").tempdir()?;
    progress.done(&format!(
        "broker bench: {cores} cores, temp dir {}",
        root.path().display()
    ));
    let batches = setup::encoded_batches()?;

    let before = disk_off_runtime(root.path().to_path_buf(), FSYNC_ROUNDS).await?;
    progress.done(&format!(
        "fsync baseline: {:.1} MB/s (4 MiB writes + fdatasync); 4 KiB append + fdatasync {:.2} ms",
        before.fsync_mb_s, before.small_fsync_ms
    ));
    let stages = stages::probe(root.path(), &batches[0]).await?;
    progress.done(&stages.describe());

    let selected = POINTS
        .into_iter()
        .filter(|p| filters.is_empty() || filters.iter().any(|f| p.name.contains(f.as_str())));
    let mut outcomes = Vec::with_capacity(POINTS.len());
    for point in selected {
        let outcome = run_point(root.path(), point, &batches, &mut progress).await?;
        progress.done(&format!(
            "{}: setup {:.1} s, {:.0} msgs/s, {:.1} MB/s, p50 {} ms, p99 {} ms, {:.1} txns/s, {:.1} PUTs/s, {:.1} flushes/s of {} ms{}",
            point.name,
            outcome.setup_s,
            outcome.msgs_per_s,
            outcome.mb_per_s,
            fmt_opt(outcome.latency.p50_ms, 3),
            fmt_opt(outcome.latency.p99_ms, 3),
            outcome.flush.txns_per_s,
            outcome.flush.puts_per_s,
            outcome.flush.flushes_per_s,
            fmt_opt(outcome.flush.flush_ms_mean, 2),
            match &outcome.first_error {
                Some(e) => format!(", {} errors (first: {e})", outcome.errors),
                None => String::new(),
            },
        ));
        outcomes.push(outcome);
    }

    let after = disk_off_runtime(root.path().to_path_buf(), FSYNC_ROUNDS).await?;
    let baseline = FsyncBaseline::new(before, after);
    progress.done(&format!(
        "fsync baseline after the points: {:.1} MB/s; ratios use the mean, {} MB/s",
        baseline.after.fsync_mb_s,
        fmt_opt(baseline.fsync_mb_s, 1)
    ));
    for outcome in &mut outcomes {
        outcome.mb_per_s_over_fsync = baseline.fsync_mb_s.map(|b| outcome.mb_per_s / b);
    }
    let report = Report {
        machine: Machine {
            cores,
            cpu: CpuSample::since(cpu_start, CpuSample::now()),
        },
        settings: Settings::of_this_build(),
        baseline,
        stages,
        points: outcomes,
    };
    print!("{}", report.text());
    let path = report.write_json()?;
    progress.done(&format!(
        "wrote {}; removing {}",
        path.display(),
        root.path().display()
    ));
    root.close()?;
    Ok(())
}
