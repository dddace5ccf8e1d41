//! One run's settings with the defaults of a full or a `--quick` run filled in, and checked
//! before anything is measured.

use std::time::Duration;

use anyhow::bail;
use strata_client::{Ack, Partitioner};

use crate::args::BenchArgs;
use crate::load::STAMP_BYTES;

/// The largest message size a run accepts: a record must fit one produce request.
const MAX_SIZE: usize = 512 << 10;

#[derive(Debug)]
pub struct Plan {
    pub quick: bool,
    pub sizes: Vec<usize>,
    pub partitions: Vec<u32>,
    pub acks: Vec<Ack>,
    pub warmup: Duration,
    pub measure: Duration,
    pub trials: usize,
    pub consume_bytes: u64,
    pub partitioner: Partitioner,
    /// The storage's name in the table, JSON and chart.
    pub label: String,
    /// `file` or `s3`: which write baseline the ratios divide by.
    pub storage_kind: String,
}

impl Plan {
    pub fn new(args: &BenchArgs) -> anyhow::Result<Self> {
        let quick = args.quick;
        let sizes = given_or(
            &args.sizes,
            by_length(quick, &[100, 1024, 16384][..], &[1024]),
        );
        if let Some(bad) = sizes.iter().find(|s| !(STAMP_BYTES..=MAX_SIZE).contains(s)) {
            bail!(
                "--sizes: {bad} is outside {STAMP_BYTES}..={MAX_SIZE} bytes (values carry an \
                 {STAMP_BYTES}-byte send time)"
            );
        }
        let partitions = given_or(
            &args.partitions,
            by_length(quick, &[1, 10, 100, 1000][..], &[1, 10, 1000]),
        );
        if partitions.contains(&0) {
            bail!("--partitions: a topic needs at least 1 partition");
        }
        let acks = if args.acks.is_empty() {
            let all = [Ack::Durable, Ack::Buffered, Ack::None];
            by_length(quick, &all[..], &all[..2]).to_vec()
        } else {
            args.acks
                .iter()
                .map(|a| parse_ack(a))
                .collect::<anyhow::Result<_>>()?
        };
        let secs = |given: Option<f64>, full: f64, short: f64, flag: &str| {
            let s = given.unwrap_or(by_length(quick, full, short));
            Duration::try_from_secs_f64(s)
                .map_err(|_| anyhow::anyhow!("{flag}: {s} is not a number of seconds"))
        };
        let measure = secs(args.measure_secs, 3.0, 2.0, "--measure-secs")?;
        if measure.is_zero() {
            bail!("--measure-secs must be positive");
        }
        if !(args.latency_load > 0.0 && args.latency_load <= 1.0) {
            bail!("--latency-load must be in (0, 1]");
        }
        let partitioner = match args.partitioner.as_str() {
            "round-robin" | "roundrobin" => Partitioner::RoundRobin,
            "sticky" | "default" => Partitioner::Default,
            other => bail!("--partitioner {other}: use round-robin or sticky"),
        };
        let storage_kind = match &args.storage_node {
            Some(url) if url.contains("s3://") => "s3",
            _ => "file",
        };
        Ok(Self {
            quick,
            sizes,
            partitions,
            acks,
            warmup: secs(args.warmup_secs, 1.0, 0.5, "--warmup-secs")?,
            measure,
            trials: args.trials.unwrap_or(by_length(quick, 5, 2)).max(1),
            consume_bytes: args.consume_mb.unwrap_or(by_length(quick, 128, 32)).max(1) * 1_000_000,
            partitioner,
            label: args
                .label
                .clone()
                .unwrap_or_else(|| storage_kind.to_owned()),
            storage_kind: storage_kind.to_owned(),
        })
    }

    /// `full`, or `quick` in a `--quick` run: how long or how often a baseline measures.
    pub fn by_length<T>(&self, full: T, quick: T) -> T {
        by_length(self.quick, full, quick)
    }
}

fn by_length<T>(quick: bool, full: T, short: T) -> T {
    if quick { short } else { full }
}

/// The values of a flag, or `default` when it was not given.
fn given_or<T: Clone>(given: &[T], default: &[T]) -> Vec<T> {
    if given.is_empty() { default } else { given }.to_vec()
}

pub fn parse_ack(s: &str) -> anyhow::Result<Ack> {
    s.parse()
        .map_err(|e: String| anyhow::anyhow!("--acks: {e}"))
}

pub fn ack_name(ack: Ack) -> &'static str {
    match ack {
        Ack::Durable => "durable",
        Ack::Buffered => "buffered",
        Ack::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn plan(flags: &[&str]) -> anyhow::Result<Plan> {
        let args = Command::try_parse_from(std::iter::once("bench").chain(flags.iter().copied()))?;
        Plan::new(&args.bench)
    }

    #[test]
    fn quick_runs_shrink_the_matrix_but_given_flags_win() {
        let full = plan(&[]).unwrap();
        assert_eq!(full.sizes, [100, 1024, 16384]);
        assert_eq!(full.partitions, [1, 10, 100, 1000]);
        assert_eq!(full.acks.len(), 3);
        assert_eq!(full.measure, Duration::from_secs(3));
        let quick = plan(&["--quick"]).unwrap();
        assert_eq!(quick.sizes, [1024]);
        assert_eq!(quick.acks, [Ack::Durable, Ack::Buffered]);
        assert_eq!((quick.trials, quick.consume_bytes), (2, 32_000_000));
        let given = plan(&["--quick", "--sizes", "100,200", "--acks", "none"]).unwrap();
        assert_eq!(given.sizes, [100, 200]);
        assert_eq!(given.acks, [Ack::None]);
    }

    #[test]
    fn the_storage_names_the_write_baseline() {
        let s3 = plan(&[
            "--storage-node",
            "s3://bucket?endpoint=http://127.0.0.1:9000",
        ])
        .unwrap();
        assert_eq!((s3.label.as_str(), s3.storage_kind.as_str()), ("s3", "s3"));
        let labelled = plan(&["--label", "standalone"]).unwrap();
        assert_eq!(
            (labelled.label.as_str(), labelled.storage_kind.as_str()),
            ("standalone", "file")
        );
    }

    #[test]
    fn bad_settings_are_refused_before_measuring() {
        for flags in [
            &["--sizes", "4"][..],
            &["--partitions", "0"],
            &["--acks", "sometimes"],
            &["--measure-secs", "0"],
            &["--latency-load", "1.5"],
            &["--partitioner", "random"],
        ] {
            assert!(plan(flags).is_err(), "{flags:?}");
        }
    }
}
