//! `strata bench`: throughput, latency, scaling and elasticity of a running Strata (standalone
//! or a cluster), with baselines measured in the same run so every figure can be read as a
//! ratio on a shared, noisy machine. Prints a table, writes JSON, optionally an SVG chart.
//! `scripts/bench.sh` starts the servers and runs it; docs/benchmarks.md explains the figures.

mod admin;
mod baseline;
mod chart;
mod elastic;
mod load;
mod report;
mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use strata_client::{Ack, Partitioner};

use self::admin::AdminApi;
use self::load::LoadSpec;
use self::report::{Baselines, Machine, Point, Results, Settings};
use self::stats::{CpuSample, Percentiles, Progress, load_average};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// Disk with fsync, loopback TCP, CRC-32C, the storage server's PUT/GET, metadata txns.
    Baselines,
    /// Produce throughput and ack latency per message size, partition count and ack mode,
    /// with end-to-end latency on the durable latency runs.
    Produce,
    /// Consume throughput from storage (cold) and from the proxy's cache.
    Consume,
    /// Partition moves through the admin API (needs 2+ brokers and --meta).
    Move,
    /// A broker killed with -9 (needs 2+ brokers, --meta, --kill-command, --start-command).
    Kill,
    /// Every broker restarted in turn under load (needs --stop-command, --start-command).
    Rolling,
}

/// Settings of `strata bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Proxy address of the Strata to measure.
    #[arg(long, env = "STRATA_SERVER", default_value = "127.0.0.1:7070")]
    pub server: String,

    /// Admin API address of any controller (topics, partition owners, moves).
    #[arg(long, env = "STRATA_ADMIN", default_value = "127.0.0.1:7080")]
    pub admin: String,

    /// What to measure, comma-separated: baselines, produce, consume, move, kill, rolling.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baselines,produce,consume"
    )]
    pub what: Vec<Suite>,

    /// A short run (about a minute): 1 KiB messages, 1/10/1,000 partitions, durable and
    /// buffered acks, 0.5 s warm-up + 2 s per run, 2 elasticity trials. Flags given
    /// explicitly still win.
    #[arg(long)]
    pub quick: bool,

    /// Message sizes in bytes, comma-separated (at least 8; default 100,1024,16384).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,

    /// Partition counts, comma-separated; one topic per count and size (default 1,10,100,1000).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<u32>,

    /// Ack modes, comma-separated: durable, buffered, none (default all three).
    #[arg(long, value_delimiter = ',')]
    pub acks: Vec<String>,

    /// Seconds of load before each measured window (default 1; --quick 0.5).
    #[arg(long)]
    pub warmup_secs: Option<f64>,

    /// Seconds measured per run (default 3; --quick 2).
    #[arg(long)]
    pub measure_secs: Option<f64>,

    /// The latency runs send at this fraction of the same point's maximum rate.
    #[arg(long, default_value_t = 0.5)]
    pub latency_load: f64,

    /// Producer linger (ms) of the maximum-throughput runs (the SDK's default is 5).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,

    /// Producer linger (ms) of the latency runs: 0 sends as soon as a partition is idle, so
    /// the latency is the server's, not the client's batching.
    #[arg(long, default_value_t = 0)]
    pub latency_linger_ms: u64,

    /// How records without a key spread: round-robin (every partition gets records, the
    /// worst case for many partitions) or sticky (a batch to one partition, then the next).
    #[arg(long, default_value = "round-robin")]
    pub partitioner: String,

    /// Name of this run's storage in the table, JSON and chart (default: s3 for an s3://
    /// --storage-node, else file).
    #[arg(long)]
    pub label: Option<String>,

    /// Directory the storage writes to, for the fsync'd sequential write baseline (the
    /// file:// node's directory, or the S3 server's root).
    #[arg(long)]
    pub storage_dir: Option<PathBuf>,

    /// The storage node the brokers use (same form as `strata broker --storage-node`), for
    /// the PUT/GET baseline and for listing a moved partition's objects. Probe objects go
    /// under bench-probe/ and are deleted.
    #[arg(long)]
    pub storage_node: Option<String>,

    /// HTTP addresses of the brokers (host:port, comma-separated): their /metrics give
    /// flushes, PUTs and transactions per second at each point.
    #[arg(long, value_delimiter = ',')]
    pub broker_http: Vec<String>,

    /// Metadata store of the cluster (etcd://host:port): the commit-transaction baseline,
    /// and the exact offset a new owner continues from in the move and kill measurements.
    #[arg(long, env = "STRATA_META")]
    pub meta: Option<String>,

    /// Cluster name (the metadata keyspace the brokers use).
    #[arg(long, env = "STRATA_CLUSTER", default_value = "default")]
    pub cluster: String,

    /// Shell command that kills a broker with -9; `{broker}` is replaced by its id.
    #[arg(long)]
    pub kill_command: Option<String>,

    /// Shell command that starts a broker again; `{broker}` is replaced by its id.
    #[arg(long)]
    pub start_command: Option<String>,

    /// Shell command that stops a broker gracefully (SIGTERM) and waits for it to exit;
    /// `{broker}` is replaced by its id.
    #[arg(long)]
    pub stop_command: Option<String>,

    /// Repetitions of the move and kill measurements (default 5; --quick 2).
    #[arg(long)]
    pub trials: Option<usize>,

    /// Records per second of the rolling-restart load.
    #[arg(long, default_value_t = 5000.0)]
    pub rolling_rate: f64,

    /// Megabytes read back per consume measurement (kept under the proxy's cache size so the
    /// second pass can be served from it; default 128, --quick 32).
    #[arg(long)]
    pub consume_mb: Option<u64>,

    /// Where the results go as JSON.
    #[arg(long, default_value = "bench-results.json")]
    pub json: PathBuf,

    /// Also write an SVG chart of throughput and p99 against message size and partitions.
    #[arg(long)]
    pub chart: Option<PathBuf>,

    /// Measure nothing: draw --chart from these JSON results (one line per storage and ack
    /// mode; repeat or comma-separate to overlay runs).
    #[arg(long, value_delimiter = ',', requires = "chart")]
    pub chart_from: Vec<PathBuf>,

    /// Prefix of the topics the bench creates.
    #[arg(long, default_value = "bench")]
    pub topic_prefix: String,
}

fn parse_ack(s: &str) -> anyhow::Result<Ack> {
    s.parse()
        .map_err(|e: String| anyhow::anyhow!("--acks: {e}"))
}

/// The settings with the defaults (or --quick's) filled in.
struct Plan {
    sizes: Vec<usize>,
    partitions: Vec<u32>,
    acks: Vec<Ack>,
    warmup: Duration,
    measure: Duration,
    trials: usize,
    consume_bytes: u64,
    partitioner: Partitioner,
    label: String,
    storage_kind: String,
}

impl Plan {
    fn new(args: &BenchArgs) -> anyhow::Result<Self> {
        let q = args.quick;
        let sizes = if args.sizes.is_empty() {
            if q {
                vec![1024]
            } else {
                vec![100, 1024, 16384]
            }
        } else {
            args.sizes.clone()
        };
        if let Some(bad) = sizes
            .iter()
            .find(|s| **s < load::STAMP_BYTES || **s > 512 << 10)
        {
            bail!("--sizes: {bad} is outside 8..=524288 bytes (values carry an 8-byte send time)");
        }
        let partitions = if args.partitions.is_empty() {
            if q {
                vec![1, 10, 1000]
            } else {
                vec![1, 10, 100, 1000]
            }
        } else {
            args.partitions.clone()
        };
        if partitions.contains(&0) {
            bail!("--partitions: a topic needs at least 1 partition");
        }
        let acks = if args.acks.is_empty() {
            if q {
                vec![Ack::Durable, Ack::Buffered]
            } else {
                vec![Ack::Durable, Ack::Buffered, Ack::None]
            }
        } else {
            args.acks
                .iter()
                .map(|a| parse_ack(a))
                .collect::<anyhow::Result<_>>()?
        };
        let secs =
            |v: Option<f64>, full: f64, quick: f64, flag: &str| -> anyhow::Result<Duration> {
                let s = v.unwrap_or(if q { quick } else { full });
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
            sizes,
            partitions,
            acks,
            warmup: secs(args.warmup_secs, 1.0, 0.5, "--warmup-secs")?,
            measure,
            trials: args.trials.unwrap_or(if q { 2 } else { 5 }).max(1),
            consume_bytes: args.consume_mb.unwrap_or(if q { 32 } else { 128 }).max(1) * 1_000_000,
            partitioner,
            label: args
                .label
                .clone()
                .unwrap_or_else(|| storage_kind.to_owned()),
            storage_kind: storage_kind.to_owned(),
        })
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.chart_from.is_empty() {
        return chart_only(&args);
    }
    let plan = Plan::new(&args)?;
    let started = Instant::now();
    let cpu_start = CpuSample::now();
    let mut progress = Progress::new();
    let mut results = Results {
        label: plan.label.clone(),
        storage_kind: plan.storage_kind.clone(),
        started_unix_ms: strata_storage::clock::unix_millis(),
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_avg_1m_start: load_average(),
            ..Machine::default()
        },
        settings: Settings {
            server: args.server.clone(),
            sizes: plan.sizes.clone(),
            partitions: plan.partitions.clone(),
            acks: plan
                .acks
                .iter()
                .map(|a| load::ack_name(*a).to_owned())
                .collect(),
            warmup_s: plan.warmup.as_secs_f64(),
            measure_s: plan.measure.as_secs_f64(),
            latency_load: args.latency_load,
            producer_linger_ms: args.linger_ms,
            partitioner: args.partitioner.clone(),
            quick: args.quick,
        },
        ..Results::default()
    };
    let admin = AdminApi::new(&args.admin);
    let wants = |s: Suite| args.what.contains(&s);
    let needs_server = args.what.iter().any(|s| *s != Suite::Baselines);
    if needs_server {
        progress.update("waiting for a registered broker");
        admin.wait_for_brokers(1, Duration::from_secs(30)).await?;
    }

    if wants(Suite::Baselines) {
        results.baselines = baselines(&args, &plan, &mut progress, &mut results.failures).await;
    }
    // Elasticity first: every broker (re)start rebalances all partitions of the cluster, and
    // after the produce suite that is thousands (1,113 moves in one run), which is then what
    // a kill or restart would measure.
    if wants(Suite::Move) || wants(Suite::Kill) || wants(Suite::Rolling) {
        elasticity(&args, &plan, &admin, &mut progress, &mut results).await;
    }
    if wants(Suite::Produce) || wants(Suite::Consume) {
        produce_and_consume(&args, &plan, &admin, &mut progress, &mut results).await;
    }
    if wants(Suite::Baselines)
        && let Some(dir) = args.storage_dir.clone()
    {
        progress.update("baseline: disk again, after the load");
        let rounds = if args.quick { 3 } else { 5 };
        match tokio::task::spawn_blocking(move || baseline::disk(&dir, rounds)).await {
            Ok(Ok(d)) => results.baselines.disk_after = Some(d),
            Ok(Err(e)) => results.failures.push(format!("disk baseline after: {e:#}")),
            Err(e) => results.failures.push(format!("disk baseline after: {e}")),
        }
    }

    let (base, name) = if plan.storage_kind == "s3" {
        (
            results
                .baselines
                .storage
                .as_ref()
                .map(|s| s.parallel_put_mb_s),
            "the S3 server's parallel PUT throughput (16 × 1 MiB at a time)".to_owned(),
        )
    } else {
        (
            results.baselines.disk_mb_s(),
            "fsync'd sequential write of the storage directory (mean of before and after)"
                .to_owned(),
        )
    };
    results.write_baseline_mb_s = base;
    results.write_baseline = name;
    for p in &mut results.points {
        p.write_ratio = base.map(|b| p.max.mb_per_s / b);
    }
    results.machine.load_avg_1m_end = load_average();
    results.machine.cpu = CpuSample::since(cpu_start, CpuSample::now());
    results.duration_s = started.elapsed().as_secs_f64();
    results.judge();

    progress.done(&format!("finished in {:.0} s", results.duration_s));
    println!("{}{}", results.header(), results.table());
    let json = serde_json::to_string_pretty(&results)?;
    std::fs::write(&args.json, json)
        .with_context(|| format!("cannot write {}", args.json.display()))?;
    eprintln!("wrote {}", args.json.display());
    if let Some(path) = &args.chart {
        std::fs::write(path, chart::render(std::slice::from_ref(&results)))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if !results.failures.is_empty() {
        bail!(
            "{} steps failed (listed above; the other figures are valid)",
            results.failures.len()
        );
    }
    Ok(())
}

fn chart_only(args: &BenchArgs) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for path in &args.chart_from {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let run: Results = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a strata bench result (JSON written by --json)",
                path.display()
            )
        })?;
        runs.push(run);
    }
    let Some(path) = &args.chart else {
        bail!("--chart-from needs --chart PATH for the SVG");
    };
    std::fs::write(path, chart::render(&runs))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

async fn baselines(
    args: &BenchArgs,
    plan: &Plan,
    progress: &mut Progress,
    failures: &mut Vec<String>,
) -> Baselines {
    let q = args.quick;
    let mut b = Baselines::default();
    if let Some(dir) = args.storage_dir.clone() {
        progress.update(&format!(
            "baseline: fsync'd sequential write of {}",
            dir.display()
        ));
        let rounds = if q { 3 } else { 5 };
        match tokio::task::spawn_blocking(move || baseline::disk(&dir, rounds)).await {
            Ok(Ok(d)) => b.disk_before = Some(d),
            Ok(Err(e)) => failures.push(format!("disk baseline: {e:#}")),
            Err(e) => failures.push(format!("disk baseline: {e}")),
        }
    }
    progress.update("baseline: loopback TCP");
    let time = Duration::from_millis(if q { 500 } else { 1500 });
    match tokio::task::spawn_blocking(move || baseline::loopback_tcp(time)).await {
        Ok(Ok(mb)) => b.loopback_tcp_mb_s = Some(mb),
        Ok(Err(e)) => failures.push(format!("loopback TCP baseline: {e:#}")),
        Err(e) => failures.push(format!("loopback TCP baseline: {e}")),
    }
    progress.update("baseline: CRC-32C");
    let time = Duration::from_millis(if q { 300 } else { 1000 });
    match tokio::task::spawn_blocking(move || baseline::crc32c(time)).await {
        Ok(mb) => b.crc32c_mb_s = Some(mb),
        Err(e) => failures.push(format!("CRC-32C baseline: {e}")),
    }
    if let Some(url) = &args.storage_node {
        progress.update(&format!("baseline: storage PUT/GET of {}", plan.label));
        let time = Duration::from_secs(if q { 1 } else { 3 });
        match baseline::storage(url, time).await {
            Ok(s) => b.storage = Some(s),
            Err(e) => failures.push(format!("storage baseline: {e:#}")),
        }
    }
    if let Some(url) = &args.meta {
        progress.update("baseline: metadata store transactions");
        match baseline::meta(url, &args.cluster).await {
            Ok(m) => b.meta = Some(m),
            Err(e) => failures.push(format!("metadata baseline: {e:#}")),
        }
    }
    if args.what.iter().any(|s| *s != Suite::Baselines) {
        progress.update("baseline: proxy round trip");
        match proxy_rtt(&args.server).await {
            Ok(p) => b.proxy_rpc = Some(p),
            Err(e) => failures.push(format!("proxy round trip: {e:#}")),
        }
    }
    progress.done(&format!(
        "baselines: disk {} MB/s, loopback TCP {} MB/s, CRC-32C {} MB/s, storage parallel PUT {} MB/s",
        stats::fmt_opt(b.disk_before.as_ref().map(|d| d.fsync_mb_s), 1),
        stats::fmt_opt(b.loopback_tcp_mb_s, 0),
        stats::fmt_opt(b.crc32c_mb_s, 0),
        stats::fmt_opt(b.storage.as_ref().map(|s| s.parallel_put_mb_s), 1),
    ));
    b
}

/// One Metadata call at a time to the proxy: the gRPC round trip under every produce.
async fn proxy_rtt(server: &str) -> anyhow::Result<Percentiles> {
    let connection = strata_client::Connection::connect(server).await?;
    let mut grpc = connection.grpc();
    let mut took = Vec::with_capacity(200);
    for i in 0..=200 {
        let started = Instant::now();
        grpc.metadata(strata_proto::v1::MetadataRequest {
            topics: vec!["bench-rtt-probe".into()],
        })
        .await?;
        if i > 0 {
            took.push(started.elapsed());
        }
    }
    Ok(Percentiles::from_durations(&took))
}

async fn produce_and_consume(
    args: &BenchArgs,
    plan: &Plan,
    admin: &AdminApi,
    progress: &mut Progress,
    results: &mut Results,
) {
    let total = plan.partitions.len() * plan.sizes.len();
    let mut cell = 0;
    let nonce = rand::random::<u32>() >> 8;
    for &partitions in &plan.partitions {
        for &size in &plan.sizes {
            cell += 1;
            let topic = format!("{}-{size}b-{partitions}p-{nonce:06x}", args.topic_prefix);
            progress.update(&format!("[{cell}/{total}] creating {topic}"));
            let created = async {
                admin.create_topic(&topic, partitions).await?;
                admin
                    .wait_writable(&topic, Duration::from_secs(120))
                    .await?;
                load::wait_known(&args.server, &topic).await
            };
            if let Err(e) = created.await {
                results.failures.push(format!("topic {topic}: {e:#}"));
                continue;
            }
            let mut cell_points = Vec::new();
            let mut consumed = false;
            for &ack in &plan.acks {
                let name = load::ack_name(ack);
                if !args.what.contains(&Suite::Produce) && consumed {
                    break;
                }
                let spec = LoadSpec {
                    server: args.server.clone(),
                    topic: topic.clone(),
                    partitions,
                    size,
                    ack,
                    rate: None,
                    warmup: plan.warmup,
                    measure: plan.measure,
                    linger: Duration::from_millis(args.linger_ms),
                    partitioner: plan.partitioner,
                    e2e: false,
                    label: format!("[{cell}/{total}] {size} B × {partitions}p {name} max"),
                };
                match load::run(&spec, &args.broker_http, progress).await {
                    Ok(r) => {
                        progress.done(&format!(
                            "[{cell}/{total}] {size} B × {partitions}p {name}: max {:.1} MB/s ({:.0} msgs/s), p99 {} ms, errors {}",
                            r.mb_per_s,
                            r.msgs_per_s,
                            stats::fmt_opt(r.ack.p99_ms, 1),
                            r.errors
                        ));
                        cell_points.push(Point {
                            size,
                            partitions,
                            ack: name.to_owned(),
                            max: r,
                            ..Point::default()
                        });
                    }
                    Err(e) => results.failures.push(format!("{} : {e:#}", spec.label)),
                }
                if args.what.contains(&Suite::Consume) && !consumed {
                    consumed = true;
                    match load::consume(
                        &args.server,
                        &topic,
                        partitions,
                        size,
                        plan.consume_bytes,
                        progress,
                    )
                    .await
                    {
                        Ok(c) => {
                            progress.done(&format!(
                                "[{cell}/{total}] {size} B × {partitions}p consume: cold {:.1} MB/s, cached {:.1} MB/s",
                                c.cold.mb_per_s, c.cached.mb_per_s
                            ));
                            results.consume.push(c);
                        }
                        Err(e) => results.failures.push(format!("consume {topic}: {e:#}")),
                    }
                }
            }
            if args.what.contains(&Suite::Produce) {
                for point in &mut cell_points {
                    let ack = parse_ack(&point.ack).unwrap_or_default();
                    if point.max.msgs_per_s <= 0.0 {
                        continue;
                    }
                    let spec = LoadSpec {
                        server: args.server.clone(),
                        topic: topic.clone(),
                        partitions,
                        size,
                        ack,
                        rate: Some(point.max.msgs_per_s * args.latency_load),
                        warmup: plan.warmup,
                        measure: plan.measure,
                        linger: Duration::from_millis(args.latency_linger_ms),
                        partitioner: plan.partitioner,
                        e2e: ack == Ack::Durable,
                        label: format!(
                            "[{cell}/{total}] {size} B × {partitions}p {} at {:.0}%",
                            point.ack,
                            args.latency_load * 100.0
                        ),
                    };
                    match load::run(&spec, &args.broker_http, progress).await {
                        Ok(r) => {
                            progress.done(&format!(
                                "{}: {:.1} MB/s, ack p50 {} p99 {} ms{}",
                                spec.label,
                                r.mb_per_s,
                                stats::fmt_opt(r.ack.p50_ms, 2),
                                stats::fmt_opt(r.ack.p99_ms, 2),
                                r.e2e.map_or(String::new(), |e| format!(
                                    ", end-to-end p50 {} p99 {} ms",
                                    stats::fmt_opt(e.p50_ms, 2),
                                    stats::fmt_opt(e.p99_ms, 2)
                                ))
                            ));
                            point.at_load = Some(r);
                        }
                        Err(e) => results.failures.push(format!("{}: {e:#}", spec.label)),
                    }
                }
                results.points.extend(cell_points);
            }
        }
    }
}

async fn elasticity(
    args: &BenchArgs,
    plan: &Plan,
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
        let keys = strata_meta::schema::Keyspace::new(&args.cluster)?;
        anyhow::Ok((meta, keys))
    };
    let (meta, keys) = match opened.await {
        Ok(x) => x,
        Err(e) => {
            results.failures.push(format!("elasticity: {e:#}"));
            return;
        }
    };
    let settings = elastic::ElasticSettings {
        server: args.server.clone(),
        admin: admin.clone(),
        meta,
        keys,
        storage_node: args.storage_node.clone(),
        brokers_http: args.broker_http.clone(),
        kill_command: args.kill_command.clone(),
        start_command: args.start_command.clone(),
        stop_command: args.stop_command.clone(),
        trials: plan.trials,
        rolling_rate: args.rolling_rate,
        size: 1024,
        topic_prefix: args.topic_prefix.clone(),
    };
    if args.what.contains(&Suite::Move) {
        match elastic::partition_move(&settings, progress).await {
            Ok(m) => results.partition_move = Some(m),
            Err(e) => results.failures.push(format!("partition move: {e:#}")),
        }
    }
    if args.what.contains(&Suite::Kill) {
        match elastic::broker_kill(&settings, progress).await {
            Ok(k) => results.broker_kill = Some(k),
            Err(e) => results.failures.push(format!("broker kill: {e:#}")),
        }
    }
    if args.what.contains(&Suite::Rolling) {
        match elastic::rolling_restart(&settings, progress).await {
            Ok(r) => results.rolling_restart = Some(r),
            Err(e) => results.failures.push(format!("rolling restart: {e:#}")),
        }
    }
}
