//! `strata` server processes for tests: controllers, brokers, proxies and standalone servers,
//! each with its flags and its log file in the run's log folder. Every address is a reserved
//! port (see [`crate::reserved_port`]), so a server can be killed, paused or stopped and
//! started again on the same addresses, as an operator restarts one.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::process::{ChildGuard, reserved_port, retry};
use crate::test_run::owner_env;

/// How long a started server may take to accept connections on all its addresses.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary, log folder and flags the `strata` processes of one cluster share; starts them.
#[derive(Debug, Clone)]
pub struct StrataCluster {
    binary: PathBuf,
    logs: PathBuf,
    name: String,
    meta_url: String,
    storage_args: Vec<String>,
    lease_ttl_secs: u64,
    election_ttl_secs: u64,
    log_filter: String,
}

impl StrataCluster {
    /// Processes of cluster `name` with metadata at `meta_url` (e.g. `etcd://127.0.0.1:2379`),
    /// running `binary` and logging to `<logs>/<id>.log`. Broker leases and controller
    /// elections last 2 s, so a test sees a failure handled within seconds.
    pub fn new(
        binary: impl Into<PathBuf>,
        logs: impl Into<PathBuf>,
        name: &str,
        meta_url: &str,
    ) -> Self {
        Self {
            binary: binary.into(),
            logs: logs.into(),
            name: name.to_owned(),
            meta_url: meta_url.to_owned(),
            storage_args: Vec::new(),
            lease_ttl_secs: 2,
            election_ttl_secs: 2,
            log_filter: "info".to_owned(),
        }
    }

    /// The storage pool of brokers and proxies: `name=url` node specs, `replicas` copies of
    /// every object.
    pub fn with_storage(mut self, nodes: &[String], replicas: usize) -> Self {
        self.storage_args = nodes
            .iter()
            .flat_map(|node| ["--storage-node".to_owned(), node.clone()])
            .chain(["--storage-replicas".to_owned(), replicas.to_string()])
            .collect();
        self
    }

    pub fn with_lease_ttl_secs(mut self, secs: u64) -> Self {
        self.lease_ttl_secs = secs;
        self
    }

    pub fn with_election_ttl_secs(mut self, secs: u64) -> Self {
        self.election_ttl_secs = secs;
        self
    }

    /// The servers' `STRATA_LOG` filter [info].
    pub fn with_log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_owned();
        self
    }

    /// The folder of every process's log.
    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// The log file of the process with this id.
    pub fn log_of(&self, id: &str) -> PathBuf {
        self.logs.join(format!("{id}.log"))
    }

    /// Starts a controller with its admin API as its address.
    pub fn controller(&self, id: &str) -> anyhow::Result<StrataServer> {
        self.controller_server(id).started()
    }

    /// Starts a broker with `extra_args` after the cluster's flags.
    pub fn broker(
        &self,
        id: &str,
        placement: &Placement,
        extra_args: &[String],
    ) -> anyhow::Result<StrataServer> {
        self.broker_server(id, placement, extra_args).started()
    }

    /// Starts a proxy.
    pub fn proxy(&self, id: &str) -> anyhow::Result<StrataServer> {
        self.proxy_with(id, &[])
    }

    /// Starts a proxy with `extra_args` after the cluster's flags.
    pub fn proxy_with(&self, id: &str, extra_args: &[String]) -> anyhow::Result<StrataServer> {
        let mut server = self.proxy_server(id);
        server.args(extra_args);
        server.started()
    }

    fn controller_server(&self, id: &str) -> StrataServer {
        let mut server = self.role("controller", id, &Placement::loopback());
        server.listen("--admin-addr");
        let election_ttl = self.election_ttl_secs.to_string();
        server.args(["--id", id, "--election-ttl-secs", &election_ttl]);
        server
    }

    fn broker_server(
        &self,
        id: &str,
        placement: &Placement,
        extra_args: &[String],
    ) -> StrataServer {
        let mut server = self.role("broker", id, placement);
        server.listen("--listen");
        server.listen("--http-addr");
        let lease_ttl = self.lease_ttl_secs.to_string();
        server.args(["--id", id, "--lease-ttl-secs", &lease_ttl]);
        server.args(&self.storage_args);
        server.args(extra_args);
        server
    }

    fn proxy_server(&self, id: &str) -> StrataServer {
        let mut server = self.role("proxy", id, &Placement::loopback());
        server.listen("--listen");
        server.listen("--http-addr");
        server.listen("--kafka-addr");
        let lease_ttl = self.lease_ttl_secs.to_string();
        server.args(["--id", id, "--lease-ttl-secs", &lease_ttl]);
        server.args(&self.storage_args);
        server
    }

    fn role(&self, role: &str, id: &str, placement: &Placement) -> StrataServer {
        let mut server = StrataServer::new(id, &self.binary, self.log_of(id), placement);
        server.args([role, "--cluster", &self.name, "--meta", &self.meta_url]);
        server.args(["--meta-max-txn-ops", &crate::etcd::MAX_TXN_OPS.to_string()]);
        server.log_filter.clone_from(&self.log_filter);
        server
    }
}

/// Where a server runs: on loopback, or in a network namespace on one of its addresses.
#[derive(Debug, Clone)]
pub struct Placement {
    host: IpAddr,
    namespace: Option<String>,
}

impl Placement {
    pub fn loopback() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            namespace: None,
        }
    }

    /// Run through `ip netns exec namespace`, listening on `host`, an address inside it.
    pub fn in_namespace(namespace: &str, host: IpAddr) -> Self {
        Self {
            host,
            namespace: Some(namespace.to_owned()),
        }
    }
}

/// One `strata` server: how to start it, and its process while it runs. Dropping it kills
/// the process.
#[derive(Debug)]
pub struct StrataServer {
    id: String,
    binary: PathBuf,
    args: Vec<OsString>,
    placement: Placement,
    /// Each listening address with the flag that sets it; the first is the server's address.
    listeners: Vec<(&'static str, SocketAddr)>,
    log: PathBuf,
    log_filter: String,
    process: Option<ChildGuard>,
}

impl StrataServer {
    /// Starts `strata standalone` on `data_dir`, logging to `<logs>/standalone.log`. Its
    /// address is the proxy's; [`StrataServer::listener`] has the others by flag.
    pub fn standalone(
        binary: impl Into<PathBuf>,
        data_dir: &Path,
        logs: &Path,
    ) -> anyhow::Result<Self> {
        Self::standalone_with(binary, data_dir, logs, &[])
    }

    /// [`StrataServer::standalone`] with `extra_args` (TLS settings, say) after the others.
    pub fn standalone_with(
        binary: impl Into<PathBuf>,
        data_dir: &Path,
        logs: &Path,
        extra_args: &[String],
    ) -> anyhow::Result<Self> {
        let binary = binary.into();
        let log = logs.join("standalone.log");
        let mut server = Self::new("standalone", &binary, log, &Placement::loopback());
        server.args(["standalone", "--data-dir"]);
        server.args([data_dir]);
        server.args(extra_args);
        for flag in [
            "--proxy-addr",
            "--admin-addr",
            "--broker-addr",
            "--broker-http-addr",
            "--proxy-http-addr",
            "--kafka-addr",
        ] {
            server.listen(flag);
        }
        server.started()
    }

    fn new(id: &str, binary: &Path, log: PathBuf, placement: &Placement) -> Self {
        Self {
            id: id.to_owned(),
            binary: binary.to_owned(),
            args: Vec::new(),
            placement: placement.clone(),
            listeners: Vec::new(),
            log,
            log_filter: "info".to_owned(),
            process: None,
        }
    }

    fn args<S: AsRef<OsStr>>(&mut self, args: impl IntoIterator<Item = S>) {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
    }

    /// Adds `flag` with a reserved address on the server's host.
    fn listen(&mut self, flag: &'static str) {
        let addr = SocketAddr::new(self.placement.host, reserved_port());
        self.args([flag.to_owned(), addr.to_string()]);
        self.listeners.push((flag, addr));
    }

    fn started(mut self) -> anyhow::Result<Self> {
        self.start()?;
        Ok(self)
    }

    /// Starts the process (again, after a kill or stop: same flags, addresses and log file)
    /// and waits until it accepts connections on every address.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("{} is already running", self.id);
        }
        // A reserved port may be in use by a stranger for a moment (a client's TIME_WAIT,
        // another test, this server's previous process not quite gone).
        let process = retry(5, Duration::from_millis(500), || self.spawn_and_wait())?;
        tracing::debug!(server = %self.id, pid = process.pid(), "started");
        self.process = Some(process);
        Ok(())
    }

    fn spawn_and_wait(&self) -> anyhow::Result<ChildGuard> {
        let mut command = match &self.placement.namespace {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace]).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        command
            .args(&self.args)
            .env("STRATA_LOG", &self.log_filter)
            .envs(owner_env());
        let mut process = ChildGuard::spawn(&self.id, command, self.log.clone())?;
        for (_, addr) in &self.listeners {
            process.wait_for_tcp(*addr, READY_TIMEOUT)?;
        }
        Ok(process)
    }

    /// Kills the process (SIGKILL, which needs no SIGCONT for a paused one), if it runs.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `INT`, ...).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        self.process
            .as_ref()
            .with_context(|| format!("{} is not running", self.id))?
            .signal(signal)
    }

    /// SIGSTOP: the process stays, frozen, as in a long GC pause.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// SIGCONT after [`StrataServer::pause`].
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    /// SIGTERM (after SIGCONT, in case it is paused), then waits up to `grace` for the exit.
    /// Fails if the process is not running, or is still running after `grace` (it is killed
    /// then).
    pub fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let mut process = self
            .process
            .take()
            .with_context(|| format!("{} is not running", self.id))?;
        process.terminate(grace).with_context(|| {
            format!(
                "{} did not stop within {grace:?} of SIGTERM; killed",
                self.id
            )
        })
    }

    /// Waits up to `timeout` for the process to exit by itself (e.g. after a signal); its
    /// status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = self.process.as_mut()?.wait_exit(timeout);
        if status.is_some() {
            self.process = None;
        }
        status
    }

    /// Whether the process was started and not killed or stopped since (a paused one, or
    /// one that exited by itself, counts).
    pub fn is_started(&self) -> bool {
        self.process.is_some()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The server's address: a controller's admin API, a broker's or proxy's gRPC service,
    /// a standalone server's proxy.
    pub fn addr(&self) -> SocketAddr {
        self.listeners[0].1
    }

    /// `http://` and [`StrataServer::addr`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The address given with `flag` (e.g. `--http-addr`, `--admin-addr`).
    pub fn listener(&self, flag: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, addr)| *addr)
    }

    /// The Kafka wire-protocol address of a proxy or standalone server.
    pub fn kafka_addr(&self) -> Option<SocketAddr> {
        self.listener("--kafka-addr")
    }

    /// The base URL of a broker's or proxy's HTTP endpoint (health, metrics).
    pub fn http_url(&self) -> Option<String> {
        self.listener("--http-addr").map(|a| format!("http://{a}"))
    }

    /// The OS process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ChildGuard::pid)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(binary: &str, logs: &Path) -> StrataCluster {
        StrataCluster::new(binary, logs, "kit", "etcd://127.0.0.1:1")
            .with_storage(&["n1=memory://".to_owned(), "n2=memory://".to_owned()], 2)
            .with_lease_ttl_secs(3)
    }

    fn flag<'a>(server: &'a StrataServer, name: &str) -> Vec<&'a str> {
        let args: Vec<&str> = server.args.iter().filter_map(|a| a.to_str()).collect();
        args.windows(2)
            .filter(|pair| pair[0] == name)
            .map(|pair| pair[1])
            .collect()
    }

    #[test]
    fn a_broker_gets_the_cluster_flags_then_its_own() {
        let logs = tempfile::tempdir().unwrap();
        let extra = ["--linger-ms".to_owned(), "100".to_owned()];
        let broker =
            cluster("strata", logs.path()).broker_server("b1", &Placement::loopback(), &extra);
        assert_eq!(broker.args[0], "broker");
        assert_eq!(flag(&broker, "--cluster"), ["kit"]);
        assert_eq!(flag(&broker, "--id"), ["b1"]);
        assert_eq!(flag(&broker, "--lease-ttl-secs"), ["3"]);
        assert_eq!(
            flag(&broker, "--storage-node"),
            ["n1=memory://", "n2=memory://"]
        );
        assert_eq!(flag(&broker, "--storage-replicas"), ["2"]);
        assert_eq!(
            broker.args[broker.args.len() - 2..],
            extra.map(OsString::from)
        );
        assert_eq!(flag(&broker, "--listen"), [broker.addr().to_string()]);
        let http = broker.listener("--http-addr").unwrap();
        assert_ne!(http, broker.addr());
        assert_eq!(broker.http_url(), Some(format!("http://{http}")));
        assert_eq!(broker.log_path(), logs.path().join("b1.log"));
        assert!(!broker.is_started());
    }

    #[test]
    fn a_controller_is_reached_at_its_admin_api() {
        let logs = tempfile::tempdir().unwrap();
        let controller = cluster("strata", logs.path()).controller_server("c1");
        assert_eq!(
            flag(&controller, "--admin-addr"),
            [controller.addr().to_string()]
        );
        assert_eq!(flag(&controller, "--election-ttl-secs"), ["2"]);
        assert!(flag(&controller, "--storage-node").is_empty());
        assert_eq!(controller.http_url(), None);
    }

    #[test]
    fn a_server_that_exits_at_once_fails_to_start_and_says_so() {
        let logs = tempfile::tempdir().unwrap();
        // `sh controller ...` exits at once: there is no script named `controller`.
        let error = cluster("/bin/sh", logs.path())
            .controller("c1")
            .unwrap_err()
            .to_string();
        assert!(error.contains("c1 exited early"), "{error}");
        assert!(std::fs::metadata(logs.path().join("c1.log")).unwrap().len() > 0);
    }

    #[test]
    fn signals_need_a_running_process() {
        let logs = tempfile::tempdir().unwrap();
        let mut proxy = cluster("strata", logs.path()).proxy_server("p1");
        assert!(proxy.pause().is_err());
        assert!(proxy.terminate(Duration::from_millis(10)).is_err());
        assert_eq!(proxy.wait_exit(Duration::from_millis(10)), None);
        proxy.kill();
        assert_eq!(proxy.pid(), None);
    }
}
