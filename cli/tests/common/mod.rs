//! Shared harness of the process-level tests: real etcd, `strata` processes on loopback with
//! their logs kept under `target/test-logs/`, and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_testkit::{ChildGuard, EtcdServer, free_port, wait_for_tcp};

pub const CLUSTER: &str = "test";

/// A `strata` process with its role, id and address.
pub struct Proc {
    pub id: String,
    pub addr: String,
    /// The broker's HTTP endpoint (health, metrics); empty for other roles.
    pub http: String,
    pub process: ChildGuard,
}

impl Proc {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.process.pid().expect("process is running").to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

/// etcd plus a directory for logs and shared storage.
pub struct Cluster {
    pub etcd: EtcdServer,
    pub meta_url: String,
    pub meta: Arc<dyn MetaStore>,
    pub keys: Keyspace,
    pub logs: PathBuf,
    pub data: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(test: &str) -> Self {
        let etcd = EtcdServer::start().expect("real etcd must start");
        let meta_url = etcd.endpoint().replace("http://", "etcd://");
        let meta = strata_meta::open(&meta_url).await.unwrap();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let logs = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("test-logs")
            .join(format!("{test}-{stamp}"));
        std::fs::create_dir_all(&logs).unwrap();
        eprintln!("process logs: {}", logs.display());
        Self {
            etcd,
            meta_url,
            meta,
            keys: Keyspace::new(CLUSTER).unwrap(),
            logs,
            data: tempfile::tempdir().unwrap(),
        }
    }

    fn spawn(&self, id: &str, args: &[String], port: u16) -> Proc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
        command
            .args(args)
            .env("STRATA_LOG", "info,strata_broker=debug");
        let process = ChildGuard::spawn(id, command, self.logs.join(format!("{id}.log"))).unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_for_tcp(addr.parse().unwrap(), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{id} did not start: {e}\n{}", process.log_tail(30)));
        Proc {
            id: id.into(),
            addr,
            http: String::new(),
            process,
        }
    }

    pub fn controller(&self, id: &str) -> Proc {
        let port = free_port();
        let args = [
            "controller",
            "--cluster",
            CLUSTER,
            "--meta",
            &self.meta_url,
            "--id",
            id,
        ]
        .map(String::from)
        .into_iter()
        .chain([
            "--admin-addr".into(),
            format!("127.0.0.1:{port}"),
            "--election-ttl-secs".into(),
            "2".into(),
        ])
        .collect::<Vec<_>>();
        self.spawn(id, &args, port)
    }

    pub fn storage_url(&self) -> String {
        format!("file://{}", self.data.path().join("node").display())
    }

    pub fn broker(&self, id: &str) -> Proc {
        self.broker_on(id, free_port())
    }

    /// A broker on a given port (a restart keeps its address).
    pub fn broker_on(&self, id: &str, port: u16) -> Proc {
        self.broker_with(id, port, &[])
    }

    /// A broker with extra flags.
    pub fn broker_with(&self, id: &str, port: u16, extra: &[&str]) -> Proc {
        let http = format!("127.0.0.1:{}", free_port());
        let args = [
            "broker",
            "--cluster",
            CLUSTER,
            "--meta",
            &self.meta_url,
            "--id",
            id,
        ]
        .map(String::from)
        .into_iter()
        .chain([
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--storage-node".into(),
            format!("n1={}", self.storage_url()),
            "--lease-ttl-secs".into(),
            "2".into(),
            "--http-addr".into(),
            http.clone(),
        ])
        .chain(extra.iter().map(|s| s.to_string()))
        .collect::<Vec<_>>();
        let mut proc = self.spawn(id, &args, port);
        proc.http = format!("http://{http}");
        proc
    }

    /// A proxy reading the brokers' storage.
    pub fn proxy(&self, id: &str) -> Proc {
        let port = free_port();
        let args = ["proxy", "--cluster", CLUSTER, "--meta", &self.meta_url]
            .map(String::from)
            .into_iter()
            .chain([
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--http-addr".into(),
                format!("127.0.0.1:{}", free_port()),
                "--storage-node".into(),
                format!("n1={}", self.storage_url()),
            ])
            .collect::<Vec<_>>();
        self.spawn(id, &args, port)
    }

    /// A node pool over the brokers' storage, for reading the log from the test.
    pub fn pool(&self) -> Arc<strata_storage::NodePool> {
        let spec = format!("n1={}", self.storage_url()).parse().unwrap();
        Arc::new(
            strata_storage::NodePool::open(&strata_storage::PoolConfig::new(vec![spec], 1))
                .unwrap(),
        )
    }
}

/// `strata standalone` as a process on free ports.
pub struct Standalone {
    pub dir: std::path::PathBuf,
    pub proxy: String,
    pub admin: String,
    pub ports: [u16; 5],
}

impl Standalone {
    pub fn new(dir: std::path::PathBuf) -> Self {
        let ports = [
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        ];
        Self {
            dir,
            proxy: format!("127.0.0.1:{}", ports[0]),
            admin: format!("127.0.0.1:{}", ports[1]),
            ports,
        }
    }

    pub fn start(&self, log: &str) -> ChildGuard {
        let [proxy, admin, broker, http, proxy_http] = self.ports;
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
        command
            .arg("standalone")
            .arg("--data-dir")
            .arg(&self.dir)
            .args([
                "--proxy-addr",
                &format!("127.0.0.1:{proxy}"),
                "--admin-addr",
                &format!("127.0.0.1:{admin}"),
            ])
            .args([
                "--broker-addr",
                &format!("127.0.0.1:{broker}"),
                "--broker-http-addr",
                &format!("127.0.0.1:{http}"),
                "--proxy-http-addr",
                &format!("127.0.0.1:{proxy_http}"),
            ]);
        let process =
            ChildGuard::spawn("standalone", command, self.dir.with_extension(log)).unwrap();
        for port in self.ports {
            wait_for_tcp(
                format!("127.0.0.1:{port}").parse().unwrap(),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|e| panic!("standalone did not start: {e}\n{}", process.log_tail(30)));
        }
        process
    }

    pub fn strata(&self, args: &[&str], stdin: Option<String>) -> (bool, String, String) {
        run_cli(
            args,
            &[
                ("STRATA_SERVER", &self.proxy),
                ("STRATA_ADMIN", &self.admin),
            ],
            stdin,
        )
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends an admin request and returns the status and JSON answer.
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Runs a `strata` user command with `envs` and `stdin`; returns success, stdout and stderr.
pub fn run_cli(
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<String>,
) -> (bool, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        if let Some(text) = stdin {
            let _ = input.write_all(text.as_bytes());
        }
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}
