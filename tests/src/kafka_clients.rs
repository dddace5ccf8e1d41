//! Real Kafka clients against Strata's Kafka listener: the backends they run against (a
//! `strata standalone` process, or a process cluster on real etcd) and the client programs
//! (`kcat`, the Python programs of `tests/kafka/`, the `strata` CLI), each run with a bound
//! on its time.
//!
//! The clients are found as `scripts/setup.sh` installs them: `kcat` on `PATH`, Python with
//! confluent-kafka and kafka-python at `STRATA_KAFKA_PYTHON` (default
//! `target/kafka-venv/bin/python`). A missing one fails the test under `CI=true`, and is a
//! printed skip otherwise ([`KafkaClients::find`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::run;
use serde_json::Value;
use strata_client::Admin;
use strata_testkit::{
    EtcdOptions, EtcdServer, Placement, StrataCluster, StrataServer, find_binary, owner_env,
    reap_orphans, strata_binary,
};
use tokio::process::{Child, Command};

use crate::harness::ops::AdminApi;

/// What a test that needs the Kafka clients runs them with.
#[derive(Debug, Clone)]
pub struct KafkaClients {
    pub python: PathBuf,
    pub kcat: PathBuf,
    /// `tests/kafka`, the Python programs.
    pub scripts: PathBuf,
    pub strata: PathBuf,
}

/// The workspace's root folder.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

impl KafkaClients {
    /// The clients, or `None` (with a printed skip line) when one is missing outside CI. In
    /// CI a missing client fails `test`, naming it and the command that installs it.
    pub fn find(test: &str) -> Option<Self> {
        match Self::locate() {
            Ok(clients) => Some(clients),
            Err(why) => {
                crate::prerequisite::missing(
                    test,
                    format!("{why:#}"),
                    "run `scripts/setup.sh` (it installs kcat and the venv)",
                );
                None
            }
        }
    }

    fn locate() -> anyhow::Result<Self> {
        let python = std::env::var_os("STRATA_KAFKA_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target/kafka-venv/bin/python"));
        let imports = std::process::Command::new(&python)
            .args(["-c", "import confluent_kafka, kafka"])
            .output()
            .with_context(|| {
                format!(
                    "no Python with the Kafka clients at {} (STRATA_KAFKA_PYTHON)",
                    python.display()
                )
            })?;
        if !imports.status.success() {
            bail!(
                "{} cannot import confluent_kafka and kafka: {}",
                python.display(),
                String::from_utf8_lossy(&imports.stderr).trim()
            );
        }
        let kcat = find_binary("kcat").context("kcat (Debian package kcat) is missing")?;
        Ok(Self {
            python,
            kcat,
            scripts: workspace().join("tests/kafka"),
            strata: strata_binary()?,
        })
    }

    /// A Python program of `tests/kafka` with its arguments, not yet started.
    pub fn python(&self, script: &str, args: &[String]) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(self.scripts.join(script))
            .args(args)
            .current_dir(&self.scripts)
            .env("PYTHONUNBUFFERED", "1")
            .kill_on_drop(true);
        command
    }

    /// Runs a Python program to its end (at most `timeout`) and returns the JSON summary it
    /// printed last.
    pub async fn python_json(
        &self,
        script: &str,
        args: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let out = run(self.python(script, args), None, timeout, script).await?;
        let last = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .with_context(|| format!("{script} printed no JSON summary:\n{out}"))?;
        serde_json::from_str(last).with_context(|| format!("{script}: not JSON: {last}"))
    }

    /// Runs `kcat` with `args`, feeding `stdin`, for at most `timeout`; its stdout.
    pub async fn kcat(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let mut command = Command::new(&self.kcat);
        command.args(args).kill_on_drop(true);
        run(command, stdin, timeout, "kcat").await
    }

    /// Runs the `strata` CLI with `args`, feeding `stdin`, for at most `timeout`; its stdout.
    pub async fn strata(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        crate::cli::strata_with(&self.strata, args, stdin, timeout).await
    }
}

/// Starts a long-running client whose stdout is read line by line (a group member). Its
/// stdin is a pipe the caller holds: closing it is how a member is told to leave.
pub fn spawn_lines(mut command: Command) -> anyhow::Result<Child> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command.spawn().context("cannot start the client")
}

/// Which Strata the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// One `strata standalone` process.
    Standalone,
    /// Real etcd, a controller, two brokers and two proxies, each a process.
    Cluster,
}

impl BackendKind {
    pub const ALL: [BackendKind; 2] = [BackendKind::Standalone, BackendKind::Cluster];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Standalone => "standalone",
            BackendKind::Cluster => "cluster",
        }
    }
}

/// A running Strata for Kafka clients; its processes are killed when it drops.
#[derive(Debug)]
pub struct Backend {
    pub kind: BackendKind,
    /// By id: `standalone`, or `c1`, `b1`, `b2`, `p1`, `p2`.
    servers: BTreeMap<String, StrataServer>,
    logs: PathBuf,
    /// Dropped after the servers (fields drop in order).
    _etcd: Option<EtcdServer>,
    _data: tempfile::TempDir,
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    // Starting a process waits for its ports with std::thread::sleep.
    tokio::task::block_in_place(f)
}

impl Backend {
    /// Starts a backend of `kind`; `name` names its log folder.
    pub async fn start(kind: BackendKind, name: &str) -> anyhow::Result<Self> {
        let binary = strata_binary()?;
        reap_orphans();
        let logs = crate::harness::log_dir(&format!("kafka-{name}-{}", kind.name()))?;
        eprintln!("[{name}/{}] process logs: {}", kind.name(), logs.display());
        let data = tempfile::Builder::new().prefix("strata-kafka-").tempdir()?;
        let mut servers = BTreeMap::new();
        let etcd = match kind {
            BackendKind::Standalone => {
                let server = blocking(|| StrataServer::standalone(&binary, data.path(), &logs))?;
                servers.insert("standalone".to_owned(), server);
                None
            }
            BackendKind::Cluster => {
                let etcd = blocking(|| {
                    EtcdServer::start_with(EtcdOptions {
                        host: std::net::Ipv4Addr::LOCALHOST.into(),
                        log: Some(logs.join("etcd.log")),
                        restartable: false,
                        env: owner_env(),
                    })
                })?;
                let storage = data.path().join("objects");
                std::fs::create_dir_all(&storage)?;
                let cluster = StrataCluster::new(
                    &binary,
                    &logs,
                    "kafka",
                    &format!("etcd://{}", etcd.client_addr()),
                )
                .with_storage(&[format!("n1=file://{}", storage.display())], 1);
                servers.insert("c1".to_owned(), blocking(|| cluster.controller("c1"))?);
                for id in ["b1", "b2"] {
                    let broker = blocking(|| cluster.broker(id, &Placement::loopback(), &[]))?;
                    servers.insert(id.to_owned(), broker);
                }
                for id in ["p1", "p2"] {
                    servers.insert(id.to_owned(), blocking(|| cluster.proxy(id))?);
                }
                Some(etcd)
            }
        };
        let backend = Self {
            kind,
            servers,
            logs,
            _etcd: etcd,
            _data: data,
        };
        backend.wait_brokers().await?;
        Ok(backend)
    }

    /// The proxies (or the standalone server): what Kafka clients and the SDK connect to.
    fn proxies(&self) -> impl Iterator<Item = &StrataServer> {
        self.servers
            .iter()
            .filter(|(id, _)| id.starts_with('p') || *id == "standalone")
            .map(|(_, s)| s)
    }

    /// The Kafka addresses of every proxy.
    pub fn kafka_addrs(&self) -> Vec<SocketAddr> {
        self.proxies()
            .filter_map(StrataServer::kafka_addr)
            .collect()
    }

    /// `bootstrap.servers`: every proxy's Kafka address.
    pub fn bootstrap(&self) -> String {
        self.kafka_addrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The gRPC address of the first proxy, for the SDK and the CLI.
    pub fn grpc(&self) -> String {
        self.proxies()
            .next()
            .expect("a backend has a proxy")
            .addr()
            .to_string()
    }

    /// The admin REST API's address (`host:port`).
    pub fn admin_addr(&self) -> String {
        match self.kind {
            BackendKind::Standalone => self.servers["standalone"]
                .listener("--admin-addr")
                .expect("standalone has an admin API")
                .to_string(),
            BackendKind::Cluster => self.servers["c1"].addr().to_string(),
        }
    }

    pub fn admin_api(&self) -> AdminApi {
        AdminApi::new(vec![format!("http://{}", self.admin_addr())])
    }

    /// The ids of the brokers (none for standalone, whose broker is built in).
    pub fn brokers(&self) -> Vec<String> {
        self.servers
            .keys()
            .filter(|id| id.starts_with('b'))
            .cloned()
            .collect()
    }

    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// `kill -9` of one process by id (`b1`, `p2`, ...).
    pub fn kill(&mut self, id: &str) -> anyhow::Result<()> {
        let server = self
            .servers
            .get_mut(id)
            .with_context(|| format!("no server {id}"))?;
        blocking(|| server.kill());
        Ok(())
    }

    /// Starts a killed process again, on the same addresses.
    pub fn restart(&mut self, id: &str) -> anyhow::Result<()> {
        let server = self
            .servers
            .get_mut(id)
            .with_context(|| format!("no server {id}"))?;
        blocking(|| server.start())
    }

    async fn wait_brokers(&self) -> anyhow::Result<()> {
        let want = self.brokers().len();
        let api = self.admin_api();
        let mut last = String::new();
        for _ in 0..150 {
            match api.brokers().await {
                Ok(brokers) if brokers.len() >= want => return Ok(()),
                Ok(brokers) => last = format!("{} of {want} brokers", brokers.len()),
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "the backend was not ready within 15 s ({last}); logs in {}",
            self.logs.display()
        )
    }

    /// Creates `topic` through the SDK and waits until every partition is writable.
    pub async fn create_topic(&self, topic: &str, partitions: u32) -> anyhow::Result<()> {
        Admin::connect(&self.grpc())
            .await?
            .create_topic(topic, partitions)
            .await
            .with_context(|| format!("cannot create {topic}"))?;
        self.admin_api()
            .wait_owned(topic, Duration::from_secs(30), |_| true)
            .await?;
        Ok(())
    }
}
