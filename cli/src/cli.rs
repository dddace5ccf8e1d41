//! Command-line interface. A server role's flags also read an environment variable
//! `STRATA_...`; a setting given neither way comes from the `--config` file, else from the
//! defaults in `config/strata.toml` (see [`crate::config`]). Flags have no defaults of their
//! own.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod acl;
mod retry;
mod trace;
mod user;

pub use acl::*;
pub use retry::*;
pub use trace::*;
pub use user::*;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: a message broker whose brokers hold no data",
    after_help = crate::report::EXIT_CODES_HELP
)]
pub struct Cli {
    /// TOML configuration file; settings it leaves out keep their defaults (config/strata.toml
    /// lists every setting with its default).
    #[arg(long, global = true, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,

    /// On failure, print the error's full chain and, with RUST_BACKTRACE set, its backtrace
    /// (also when STRATA_LOG asks for debug or trace).
    #[arg(long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a controller: leader election, partition assignment and the admin REST API.
    Controller(ControllerArgs),
    /// Run a broker: owns the partitions the controller assigns it and writes them to storage.
    Broker(BrokerArgs),
    /// Run a proxy: the clients' front door; routes produces, serves reads from storage.
    Proxy(ProxyArgs),
    /// Run everything in one process on the default ports, with data under --data-dir.
    Standalone(StandaloneArgs),
    /// Create, list, describe or delete topics (through the admin API).
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Send one message per line of standard input to a topic.
    Produce(ProduceArgs),
    /// Print a topic's messages, one per line.
    Consume(ConsumeArgs),
    /// List or describe consumer groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Send a record back to its group for a retry, as a consumer's nack does.
    Nack(NackArgs),
    /// List, show or replay a consumer group's dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Show one traced message's path: produce, store, deliveries and group commits, with
    /// the time each step took (on topics with `--trace-sample`).
    Trace(TraceArgs),
    /// Move a partition to another broker (no data is copied; takes about a second).
    Reassign(ReassignArgs),
    /// List brokers, or drain and undrain one (through the admin API). `strata broker` runs
    /// a broker.
    #[command(subcommand)]
    Brokers(BrokersCommand),
    /// Add, list or remove the users Kafka clients log in as with SASL (through the admin API).
    #[command(subcommand)]
    User(UserCommand),
    /// Make, list or revoke bearer tokens for the gRPC and REST APIs (through the admin API).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add, list or remove ACL rules: who may do what to which topics, groups, transactional
    /// ids and the cluster (through the admin API).
    #[command(subcommand)]
    Acl(AclCommand),
    /// Measure a running Strata: throughput, latency, scaling, failover; prints a table.
    Bench(Box<strata_bench::BenchArgs>),
}

/// Settings every server role shares.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Cluster name; all keys live under /strata/{cluster}/.
    #[arg(long, env = "STRATA_CLUSTER")]
    pub cluster: Option<String>,

    /// Availability zone of this process: brokers and proxies read from storage nodes of this
    /// zone first.
    #[arg(long, env = "STRATA_ZONE")]
    pub zone: Option<String>,

    /// Metadata store: etcd://host:port[,host:port] or embedded:///path/to/dir.
    #[arg(long, env = "STRATA_META")]
    pub meta: Option<String>,

    /// The most operations of one metadata transaction: etcd's --max-txn-ops (default 128).
    #[arg(long, env = "STRATA_META_MAX_TXN_OPS")]
    pub meta_max_txn_ops: Option<usize>,

    /// etcd over TLS: the CA bundle etcd's certificate chains to.
    #[arg(long, env = "STRATA_META_CA")]
    pub meta_ca: Option<PathBuf>,

    /// The client certificate presented to etcd (with --meta-key).
    #[arg(long, env = "STRATA_META_CERT")]
    pub meta_cert: Option<PathBuf>,

    /// The key of --meta-cert.
    #[arg(long, env = "STRATA_META_KEY")]
    pub meta_key: Option<PathBuf>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub security: SecurityArgs,

    /// Print the settings this role would run with (defaults, then the --config file, then
    /// environment and flags) as a config file, and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// `[tls]`: TLS on the process's listeners.
#[derive(Debug, Default, Args)]
pub struct TlsArgs {
    /// PEM certificate chain every listener presents; with --tls-key, turns TLS on.
    #[arg(long, env = "STRATA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "STRATA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// The cluster's CA bundle: trusted when dialling brokers, and what client certificates
    /// must chain to.
    #[arg(long, env = "STRATA_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificates (mTLS): none, optional or required.
    #[arg(long, env = "STRATA_TLS_CLIENT_AUTH", value_parser = ["none", "optional", "required"])]
    pub tls_client_auth: Option<String>,

    /// Which certificate name is the principal User:<name>: cn or san.
    #[arg(long, env = "STRATA_TLS_PRINCIPAL", value_parser = ["cn", "san"])]
    pub tls_principal: Option<String>,

    /// Also serve /healthz, /readyz and /metrics over TLS.
    #[arg(long, env = "STRATA_TLS_HTTP")]
    pub tls_http: Option<bool>,
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

    /// Milliseconds between connection probes of every broker: one that refuses connections
    /// twice in a row is treated as crashed at once (0 turns probing off).
    #[arg(long, env = "STRATA_BROKER_PROBE_MS")]
    pub broker_probe_ms: Option<u64>,
}

/// Where segment objects go.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// A storage node, `name=url`, `name@zone=url` or a URL (file:///dir,
    /// s3://bucket?endpoint=..., memory://name).
    /// Repeat for a pool of nodes.
    #[arg(
        long = "storage-node",
        env = "STRATA_STORAGE_NODES",
        value_delimiter = ','
    )]
    pub storage_nodes: Vec<String>,

    /// Copies of every object, on distinct nodes.
    #[arg(long, env = "STRATA_STORAGE_REPLICAS")]
    pub storage_replicas: Option<usize>,

    /// Do not fsync file:// writes. Acknowledged data can then be lost on power failure: for
    /// benchmarks only.
    #[arg(long, env = "STRATA_NO_FSYNC")]
    pub no_fsync: bool,

    /// Milliseconds one storage request may take before its node counts as failed.
    #[arg(long, env = "STRATA_STORAGE_REQUEST_TIMEOUT_MS")]
    pub storage_request_timeout_ms: Option<u64>,

    /// Least milliseconds before a slow storage request is started again on another node.
    #[arg(long, env = "STRATA_STORAGE_HEDGE_FLOOR_MS")]
    pub storage_hedge_floor_ms: Option<u64>,

    /// Hedged storage requests allowed per 100 requests, writes and reads apart.
    #[arg(long, env = "STRATA_STORAGE_HEDGE_BUDGET_PERCENT")]
    pub storage_hedge_budget_percent: Option<u32>,

    /// Hedged storage requests that may start at once beyond that share (both 0: off).
    #[arg(long, env = "STRATA_STORAGE_HEDGE_BUDGET_BURST")]
    pub storage_hedge_budget_burst: Option<u32>,
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// This broker's stable name (default: $HOSTNAME, else broker-{pid}).
    #[arg(long, env = "STRATA_BROKER_ID")]
    pub id: Option<String>,

    /// Address the broker's gRPC service listens on.
    #[arg(long, env = "STRATA_BROKER_ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address of the broker's HTTP endpoint: /healthz, /readyz, /metrics.
    #[arg(long, env = "STRATA_BROKER_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,

    /// Address others dial to reach this broker (default: the listen address).
    #[arg(long, env = "STRATA_BROKER_ADVERTISED_ADDR")]
    pub advertised_addr: Option<String>,

    /// Seconds without a lease renewal after which the broker counts as dead.
    #[arg(long, env = "STRATA_LEASE_TTL_SECS")]
    pub lease_ttl_secs: Option<u64>,

    /// Milliseconds between the starts of two flushes while flushes are in flight (a broker
    /// with none in flight flushes at once); more means fewer, larger objects.
    #[arg(long, env = "STRATA_LINGER_MS")]
    pub linger_ms: Option<u64>,

    /// Buffered bytes (all partitions) that start a flush without waiting for the linger.
    #[arg(long, env = "STRATA_FLUSH_BYTES")]
    pub flush_bytes: Option<usize>,

    /// Largest accepted record batch in bytes.
    #[arg(long, env = "STRATA_MAX_BATCH_BYTES")]
    pub max_batch_bytes: Option<usize>,

    /// Buffered bytes per partition above which producers wait.
    #[arg(long, env = "STRATA_MAX_BUFFER_BYTES")]
    pub max_buffer_bytes: Option<usize>,

    /// Milliseconds a producer waits for buffer space before it is told to retry (THROTTLED).
    #[arg(long, env = "STRATA_BUFFER_WAIT_MS")]
    pub buffer_wait_ms: Option<u64>,

    /// Bytes of pending delayed messages held in memory; the others are read back when due.
    #[arg(long, env = "STRATA_DELAY_MEMORY_BYTES")]
    pub delay_memory_bytes: Option<usize>,

    /// Seconds a stopping broker may spend flushing and committing its buffers.
    #[arg(long, env = "STRATA_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,

    /// Milliseconds between maintenance passes (compaction, retention, garbage collection).
    #[arg(long, env = "STRATA_MAINTENANCE_INTERVAL_MS")]
    pub maintenance_interval_ms: Option<u64>,

    /// Milliseconds an unreferenced object stays readable before it is deleted.
    #[arg(long, env = "STRATA_GC_GRACE_MS")]
    pub gc_grace_ms: Option<u64>,

    /// Sweep storage for orphaned objects every this many maintenance passes (0 never).
    #[arg(long, env = "STRATA_ORPHAN_SWEEP_EVERY")]
    pub orphan_sweep_every: Option<u32>,

    /// Most bytes one compaction holds in memory; merges are cut to fit.
    #[arg(long, env = "STRATA_COMPACTION_MEMORY_BYTES")]
    pub compaction_memory_bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// Address the proxy's gRPC service listens on.
    #[arg(long, env = "STRATA_PROXY_ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address of the proxy's HTTP endpoint: /healthz, /readyz, /metrics.
    #[arg(long, env = "STRATA_PROXY_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,

    /// Bytes of recently read segments the proxy keeps in memory (0 turns the cache off).
    #[arg(long, env = "STRATA_PROXY_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,

    /// The proxy's stable name (Kafka clients see it as a broker with a node id of its own).
    #[arg(long, env = "STRATA_PROXY_ID")]
    pub id: Option<String>,

    /// Seconds after the proxy stops renewing its registration before Kafka clients stop
    /// seeing it.
    #[arg(long, env = "STRATA_PROXY_LEASE_TTL_SECS")]
    pub lease_ttl_secs: Option<u64>,

    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// The Kafka wire-protocol listener of a proxy (`[proxy.kafka]`).
#[derive(Debug, Default, Args)]
pub struct KafkaArgs {
    /// Address the Kafka wire-protocol listener listens on.
    #[arg(long, env = "STRATA_KAFKA_ADDR")]
    pub kafka_addr: Option<SocketAddr>,

    /// host:port Kafka clients are told to connect to (for containers and Kubernetes).
    #[arg(long, env = "STRATA_KAFKA_ADVERTISED_ADDR")]
    pub kafka_advertised_addr: Option<String>,

    /// Rack (availability zone) reported to rack-aware Kafka clients.
    #[arg(long, env = "STRATA_KAFKA_RACK")]
    pub kafka_rack: Option<String>,

    /// Largest Kafka request accepted; a larger one closes its connection.
    #[arg(long, env = "STRATA_KAFKA_MAX_REQUEST_BYTES")]
    pub kafka_max_request_bytes: Option<u64>,

    /// Create topics Kafka clients ask for that do not exist.
    #[arg(long, env = "STRATA_AUTO_CREATE_TOPICS", num_args = 0..=1, default_missing_value = "true")]
    pub auto_create_topics: Option<bool>,

    /// Partitions of an auto-created topic.
    #[arg(long, env = "STRATA_DEFAULT_PARTITIONS")]
    pub default_partitions: Option<u32>,

    /// SASL mechanisms Kafka clients must log in with (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
    /// comma-separated; `none` for no SASL.
    #[arg(long, env = "STRATA_KAFKA_SASL_MECHANISMS", value_delimiter = ',')]
    pub kafka_sasl_mechanisms: Vec<String>,
}

/// `[security]`: who may call, and who may do everything.
#[derive(Debug, Default, Args)]
pub struct SecurityArgs {
    /// Principals allowed everything (User:name), comma-separated.
    #[arg(long, env = "STRATA_SUPER_USERS", value_delimiter = ',')]
    pub super_users: Vec<String>,

    /// gRPC and REST callers must bring a bearer token or a client certificate; brokers
    /// admit only the cluster's own processes.
    #[arg(long, env = "STRATA_AUTHENTICATE", num_args = 0..=1, default_missing_value = "true")]
    pub authenticate: Option<bool>,

    /// Principals of the cluster's proxies and controllers (User:name), comma-separated;
    /// default: this process's own certificate's.
    #[arg(long, env = "STRATA_CLUSTER_PRINCIPALS", value_delimiter = ',')]
    pub cluster_principals: Vec<String>,
}

/// Unset, each comes from its setting in the config: `[standalone] data_dir`, `[proxy] listen`,
/// and so on.
#[derive(Debug, Default, Args)]
pub struct StandaloneArgs {
    /// Where metadata and data live; kept across restarts.
    #[arg(long, env = "STRATA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The proxy's gRPC address: where producers and consumers connect.
    #[arg(long, env = "STRATA_PROXY_ADDR")]
    pub proxy_addr: Option<SocketAddr>,

    /// The proxy's HTTP endpoint: /healthz, /readyz, /metrics.
    #[arg(long, env = "STRATA_PROXY_HTTP_ADDR")]
    pub proxy_http_addr: Option<SocketAddr>,

    /// The admin REST API (topics, partitions, brokers, reassignment).
    #[arg(long, env = "STRATA_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,

    /// The broker's gRPC address (the proxy forwards produces there).
    #[arg(long, env = "STRATA_BROKER_ADDR")]
    pub broker_addr: Option<SocketAddr>,

    /// The broker's HTTP endpoint: /healthz, /readyz, /metrics.
    #[arg(long, env = "STRATA_BROKER_HTTP_ADDR")]
    pub broker_http_addr: Option<SocketAddr>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub security: SecurityArgs,

    /// Print the settings standalone would run with as a config file, and exit.
    #[arg(long)]
    pub print_config: bool,
}
