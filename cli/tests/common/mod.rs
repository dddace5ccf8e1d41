//! What the process-level tests of the CLI share beyond `strata-testkit`'s process harness: a
//! real etcd with a metadata client, the brokers' storage, `strata` user commands, and polling
//! with a deadline. Process logs go to `target/tmp/test-logs/<test>-<unix ms>/`.

// Test harnesses wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_testkit::{EtcdServer, Placement, StrataCluster, StrataServer, log_dir, reap_orphans};

pub const CLUSTER: &str = "test";

const BINARY: &str = env!("CARGO_BIN_EXE_strata");

/// A new log folder for one test's processes, printed so a failure can be read.
fn test_logs(test: &str) -> PathBuf {
    let logs = log_dir(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-logs"),
        test,
    )
    .unwrap();
    eprintln!("process logs: {}", logs.display());
    logs
}

/// etcd, the `strata` processes of one cluster, and a directory for shared storage.
pub struct Cluster {
    pub etcd: EtcdServer,
    pub meta: Arc<dyn MetaStore>,
    pub keys: Keyspace,
    pub strata: StrataCluster,
    pub data: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(test: &str) -> Self {
        reap_orphans();
        let etcd = EtcdServer::start().expect("real etcd must start");
        let meta_url = etcd.endpoint().replace("http://", "etcd://");
        let meta = strata_meta::open(&meta_url).await.unwrap();
        let data = tempfile::tempdir().unwrap();
        let storage = format!("n1={}", storage_url(data.path()));
        let strata = StrataCluster::new(BINARY, test_logs(test), CLUSTER, &meta_url)
            .with_storage(&[storage], 1)
            .with_log_filter("info,strata_broker=debug");
        Self {
            etcd,
            meta,
            keys: Keyspace::new(CLUSTER).unwrap(),
            strata,
            data,
        }
    }

    pub fn controller(&self, id: &str) -> StrataServer {
        self.strata.controller(id).unwrap()
    }

    pub fn broker(&self, id: &str) -> StrataServer {
        self.broker_with(id, &[])
    }

    /// A broker with extra flags.
    pub fn broker_with(&self, id: &str, extra: &[&str]) -> StrataServer {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        self.strata
            .broker(id, &Placement::loopback(), &extra)
            .unwrap()
    }

    /// A proxy reading the brokers' storage.
    pub fn proxy(&self, id: &str) -> StrataServer {
        self.strata.proxy(id).unwrap()
    }

    /// Waits up to 15 s until exactly `count` brokers are registered.
    pub async fn wait_for_brokers(&self, count: usize) {
        eventually(
            &format!("{count} brokers registered"),
            Duration::from_secs(15),
            || async {
                let (brokers, _) = self.meta.range(&self.keys.brokers()).await.ok()?;
                (brokers.len() == count).then_some(())
            },
        )
        .await;
    }

    /// A node pool over the brokers' storage, for reading the log from the test.
    pub fn pool(&self) -> Arc<strata_storage::NodePool> {
        let spec = format!("n1={}", storage_url(self.data.path()))
            .parse()
            .unwrap();
        Arc::new(
            strata_storage::NodePool::open(&strata_storage::PoolConfig::new(vec![spec], 1))
                .unwrap(),
        )
    }
}

/// The one storage node of a [`Cluster`], a folder under its data directory.
fn storage_url(data: &Path) -> String {
    format!("file://{}", data.join("node").display())
}

/// `strata standalone` as a process, and user commands against it.
pub struct Standalone {
    pub server: StrataServer,
    /// The proxy's and the admin API's addresses.
    pub proxy: String,
    pub admin: String,
}

impl Standalone {
    pub fn start(test: &str, dir: &Path) -> Self {
        let server = StrataServer::standalone(BINARY, dir, &test_logs(test)).unwrap();
        let admin = server.listener("--admin-addr").unwrap().to_string();
        Self {
            proxy: server.addr().to_string(),
            admin,
            server,
        }
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
    let (code, out, err) = run_cli_code(args, envs, stdin);
    (code == Some(0), out, err)
}

/// [`run_cli`], with the exit code (`None` when a signal ended the process).
pub fn run_cli_code(
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<String>,
) -> (Option<i32>, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = Command::new(BINARY);
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
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}
