//! The flags of `strata bench`. The CLI's `bench` subcommand parses straight into
//! [`BenchArgs`], so `strata bench --help` is written here.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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

    /// PEM CA bundle of a cluster with TLS; turns TLS on for the proxies and the admin API.
    #[arg(long, env = "STRATA_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// PEM client certificate, for clusters that require one; with --tls-key.
    #[arg(long, env = "STRATA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "STRATA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Bearer token, for clusters that authenticate callers.
    #[arg(
        long,
        env = "STRATA_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,

    /// File holding the bearer token, instead of --token.
    #[arg(long, env = "STRATA_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,

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
