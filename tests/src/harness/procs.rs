//! A Strata cluster of OS processes on this machine: real etcd, a pool of `s3s-fs` storage
//! nodes, controllers, brokers and proxies, each with its own log file, on reserved ports so
//! any of them can be killed and started again on the same address. Brokers can run in
//! network namespaces of their own (see [`super::netns`]) so a test can cut them off etcd or
//! off storage.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strata_meta::MetaStore;
use strata_storage::{NodePool, PoolConfig};
use strata_testkit::{ChildGuard, EtcdOptions, EtcdServer, S3Options, S3Server, reserved_port};

use super::bin::{log_dir, strata_binary};
use super::netns::Net;
use super::ops::{CLUSTER, Cluster, Link};

/// Environment marker on every process a cluster starts, naming the test process that owns
/// it, so a later run can find processes orphaned by a test killed with a signal.
pub const OWNER_ENV: &str = "STRATA_FAULT_OWNER";

fn owner_env() -> Vec<(String, String)> {
    vec![(OWNER_ENV.to_owned(), std::process::id().to_string())]
}

/// Kills, by pid, cluster processes left by a fault test that died without cleaning up (a
/// test killed by a signal never runs its drop guards): they carry [`OWNER_ENV`] naming a
/// process that no longer exists.
pub fn reap_orphans() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let marker = format!("{OWNER_ENV}=");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let owner = environ
            .split(|b| *b == 0)
            .filter_map(|var| std::str::from_utf8(var).ok())
            .find_map(|var| var.strip_prefix(&marker).map(str::to_owned));
        if let Some(owner) = owner
            && owner != std::process::id().to_string()
            && !std::path::Path::new(&format!("/proc/{owner}")).exists()
        {
            tracing::info!(pid, owner, "killing a process left by a dead fault test");
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

/// The shape of a process cluster.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Names the log directory.
    pub name: String,
    pub brokers: usize,
    pub controllers: usize,
    pub proxies: usize,
    /// `s3s-fs` servers in the storage pool.
    pub storage_nodes: usize,
    /// Copies of every object.
    pub replicas: usize,
    /// Run every broker in a network namespace of its own, so it can be cut off.
    pub isolate_brokers: bool,
    pub lease_ttl_secs: u64,
    pub election_ttl_secs: u64,
    /// More flags for every broker (e.g. `--linger-ms 500`).
    pub broker_args: Vec<String>,
}

impl Spec {
    /// Three brokers, two controllers, two proxies, three storage nodes with two copies each.
    pub fn standard(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            brokers: 3,
            controllers: 2,
            proxies: 2,
            storage_nodes: 3,
            replicas: 2,
            isolate_brokers: false,
            lease_ttl_secs: 2,
            election_ttl_secs: 2,
            broker_args: Vec::new(),
        }
    }
}

/// One `strata` process: how to start it, and the running process if any.
#[derive(Debug)]
struct Role {
    id: String,
    args: Vec<String>,
    /// The address to wait for after a start.
    addr: SocketAddr,
    namespace: Option<String>,
    process: Option<ChildGuard>,
}

impl Role {
    /// The running process, taken out to be killed or stopped.
    fn take_process(&mut self, kind: &str) -> anyhow::Result<ChildGuard> {
        self.process
            .take()
            .with_context(|| format!("{kind} {} is not running", self.id))
    }
}

/// A cluster of processes; everything is killed and cleaned up when it drops.
#[derive(Debug)]
pub struct ProcessCluster {
    spec: Spec,
    binary: PathBuf,
    logs: PathBuf,
    meta_url: String,
    node_specs: Vec<String>,
    meta: Arc<dyn MetaStore>,
    pool: Arc<NodePool>,
    controllers: BTreeMap<String, Role>,
    brokers: BTreeMap<String, Role>,
    proxies: Vec<Role>,
    s3: Vec<S3Server>,
    etcd: EtcdServer,
    /// Last: the namespaces go after every process in them has been killed.
    net: Option<Net>,
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    // Starting a process waits for its port with std::thread::sleep; keep the runtime's
    // other tasks (the load) running meanwhile.
    tokio::task::block_in_place(f)
}

impl ProcessCluster {
    /// Starts etcd, the storage nodes, the controllers, the brokers and the proxies, and waits
    /// until every broker is registered.
    pub async fn start(spec: Spec) -> anyhow::Result<Self> {
        let started = std::time::Instant::now();
        let binary = strata_binary()?;
        reap_orphans();
        let logs = log_dir(&spec.name)?;
        eprintln!("[{}] process logs: {}", spec.name, logs.display());
        let mut net = if spec.isolate_brokers {
            Some(Net::create().context("isolated brokers need network namespaces")?)
        } else {
            None
        };
        let mut host = || -> anyhow::Result<IpAddr> {
            Ok(match net.as_mut() {
                Some(net) => IpAddr::V4(net.service_ip()?),
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            })
        };
        let etcd = blocking(|| {
            EtcdServer::start_with(EtcdOptions {
                host: host()?,
                log: Some(logs.join("etcd.log")),
                restartable: true,
                env: owner_env(),
            })
        })?;
        let meta_url = format!("etcd://{}", etcd.client_addr());
        let mut s3 = Vec::new();
        let mut node_specs = Vec::new();
        for i in 1..=spec.storage_nodes {
            let server = blocking(|| {
                S3Server::start_with(S3Options {
                    host: host()?,
                    log: Some(logs.join(format!("s3-n{i}.log"))),
                    restartable: true,
                    env: owner_env(),
                })
            })?;
            server.create_bucket("strata")?;
            node_specs.push(format!("n{i}={}", server.url("strata")));
            s3.push(server);
        }
        let meta = strata_meta::open(&meta_url).await?;
        let pool = Arc::new(NodePool::open(&PoolConfig::new(
            node_specs
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<_>, _>>()?,
            spec.replicas,
        ))?);
        let mut cluster = Self {
            spec,
            binary,
            logs,
            meta_url,
            node_specs,
            meta,
            pool,
            controllers: BTreeMap::new(),
            brokers: BTreeMap::new(),
            proxies: Vec::new(),
            s3,
            etcd,
            net,
        };
        for i in 1..=cluster.spec.controllers {
            cluster.start_controller(&format!("c{i}")).await?;
        }
        for i in 1..=cluster.spec.brokers {
            cluster.start_broker(&format!("b{i}")).await?;
        }
        for i in 1..=cluster.spec.proxies {
            let role = cluster.proxy_role(&format!("p{i}"));
            cluster.proxies.push(role);
            let index = cluster.proxies.len() - 1;
            let (binary, logs) = (cluster.binary.clone(), cluster.logs.clone());
            blocking(|| spawn(&binary, &logs, &mut cluster.proxies[index]))?;
        }
        cluster.wait_registered().await?;
        eprintln!(
            "[{}] cluster up in {:.1} s",
            cluster.spec.name,
            started.elapsed().as_secs_f64()
        );
        Ok(cluster)
    }

    async fn wait_registered(&self) -> anyhow::Result<()> {
        let want = self.brokers.len();
        for _ in 0..150 {
            let (kvs, _) = self.meta.range(&self.keys().brokers()).await?;
            if kvs.len() >= want {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{want} brokers did not register within 15 s; logs in {}",
            self.logs.display()
        )
    }

    fn storage_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for node in &self.node_specs {
            args.push("--storage-node".to_owned());
            args.push(node.clone());
        }
        args.push("--storage-replicas".into());
        args.push(self.spec.replicas.to_string());
        args
    }

    fn proxy_role(&self, id: &str) -> Role {
        let addr = SocketAddr::from(([127, 0, 0, 1], reserved_port()));
        let http = SocketAddr::from(([127, 0, 0, 1], reserved_port()));
        let mut args: Vec<String> = [
            "proxy",
            "--cluster",
            CLUSTER,
            "--meta",
            &self.meta_url,
            "--listen",
            &addr.to_string(),
            "--http-addr",
            &http.to_string(),
        ]
        .map(String::from)
        .into();
        args.extend(self.storage_args());
        Role {
            id: id.to_owned(),
            args,
            addr,
            namespace: None,
            process: None,
        }
    }

    fn broker_role(&mut self, id: &str) -> anyhow::Result<Role> {
        let (namespace, ip) = match self.net.as_mut() {
            Some(net) => {
                let (ns, ip) = net.namespace()?;
                (Some(ns), IpAddr::V4(ip))
            }
            None => (None, IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        let addr = SocketAddr::new(ip, reserved_port());
        let http = SocketAddr::new(ip, reserved_port());
        let mut args: Vec<String> = [
            "broker",
            "--cluster",
            CLUSTER,
            "--meta",
            &self.meta_url,
            "--id",
            id,
            "--listen",
            &addr.to_string(),
            "--http-addr",
            &http.to_string(),
            "--lease-ttl-secs",
            &self.spec.lease_ttl_secs.to_string(),
        ]
        .map(String::from)
        .into();
        args.extend(self.storage_args());
        args.extend(self.spec.broker_args.iter().cloned());
        Ok(Role {
            id: id.to_owned(),
            args,
            addr,
            namespace,
            process: None,
        })
    }

    fn controller_role(&self, id: &str) -> Role {
        let addr = SocketAddr::from(([127, 0, 0, 1], reserved_port()));
        let args: Vec<String> = [
            "controller",
            "--cluster",
            CLUSTER,
            "--meta",
            &self.meta_url,
            "--id",
            id,
            "--admin-addr",
            &addr.to_string(),
            "--election-ttl-secs",
            &self.spec.election_ttl_secs.to_string(),
        ]
        .map(String::from)
        .into();
        Role {
            id: id.to_owned(),
            args,
            addr,
            namespace: None,
            process: None,
        }
    }

    fn broker(&mut self, id: &str) -> anyhow::Result<&mut Role> {
        self.brokers
            .get_mut(id)
            .with_context(|| format!("no broker {id}"))
    }

    fn running_broker(&mut self, id: &str) -> anyhow::Result<&mut ChildGuard> {
        self.broker(id)?
            .process
            .as_mut()
            .with_context(|| format!("broker {id} is not running"))
    }

    /// The address of etcd or of the storage nodes, as a namespaced broker sees them.
    fn peers(&self, link: Link) -> Vec<Ipv4Addr> {
        let ip = |addr: SocketAddr| match addr.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        };
        match link {
            Link::Meta => ip(self.etcd.client_addr()).into_iter().collect(),
            Link::Storage => self.s3.iter().filter_map(|s| ip(s.addr())).collect(),
        }
    }

    /// The storage node servers, e.g. to look at their files.
    pub fn s3(&self) -> &[S3Server] {
        &self.s3
    }

    /// The address a broker listens on.
    pub fn broker_addr(&self, id: &str) -> Option<SocketAddr> {
        self.brokers.get(id).map(|r| r.addr)
    }

    /// The log file of a process (`b1`, `c2`, `p1`, `etcd`, `s3-n1`).
    pub fn log_of(&self, id: &str) -> PathBuf {
        self.logs.join(format!("{id}.log"))
    }
}

/// Starts a role's process and waits for its port.
fn spawn(binary: &std::path::Path, logs: &std::path::Path, role: &mut Role) -> anyhow::Result<()> {
    let mut last = None;
    // A reserved port may be in use by a stranger for a moment (a client's TIME_WAIT, another
    // test); a few attempts ride that out.
    for _ in 0..5 {
        let mut command = match &role.namespace {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .args(&role.args)
            .env("STRATA_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(owner_env());
        let mut process =
            ChildGuard::spawn(&role.id, command, logs.join(format!("{}.log", role.id)))?;
        tracing::debug!(role = %role.id, pid = process.pid(), "started");
        match process.wait_for_tcp(role.addr, Duration::from_secs(30)) {
            Ok(()) => {
                role.process = Some(process);
                return Ok(());
            }
            Err(e) => {
                process.kill();
                last = Some(e);
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    Err(last.expect("at least one attempt ran"))
}

impl Cluster for ProcessCluster {
    fn mode(&self) -> &'static str {
        "process"
    }

    fn proxies(&self) -> Vec<String> {
        self.proxies.iter().map(|p| p.addr.to_string()).collect()
    }

    fn admin_urls(&self) -> Vec<String> {
        self.controllers
            .values()
            .map(|c| format!("http://{}", c.addr))
            .collect()
    }

    fn meta(&self) -> Arc<dyn MetaStore> {
        self.meta.clone()
    }

    fn storage(&self) -> Arc<NodePool> {
        self.pool.clone()
    }

    fn logs(&self) -> String {
        self.logs.display().to_string()
    }

    fn brokers(&self) -> Vec<String> {
        self.brokers
            .values()
            .filter(|r| r.process.is_some())
            .map(|r| r.id.clone())
            .collect()
    }

    fn controllers(&self) -> Vec<String> {
        self.controllers
            .values()
            .filter(|r| r.process.is_some())
            .map(|r| r.id.clone())
            .collect()
    }

    fn storage_nodes(&self) -> usize {
        self.s3.len()
    }

    async fn kill_broker(&mut self, id: &str) -> anyhow::Result<()> {
        let mut process = self.broker(id)?.take_process("broker")?;
        blocking(|| process.kill());
        Ok(())
    }

    async fn pause_broker(&mut self, id: &str) -> anyhow::Result<()> {
        self.running_broker(id)?.signal("STOP")
    }

    async fn resume_broker(&mut self, id: &str) -> anyhow::Result<()> {
        self.running_broker(id)?.signal("CONT")
    }

    async fn stop_broker(&mut self, id: &str) -> anyhow::Result<()> {
        let mut process = self.broker(id)?.take_process("broker")?;
        // The broker's own bound on a graceful stop is 20 s.
        let status = blocking(|| process.terminate(Duration::from_secs(30)));
        match status {
            Some(status) if status.success() => Ok(()),
            Some(status) => bail!("broker {id} exited with {status} on SIGTERM"),
            None => bail!("broker {id} did not stop within 30 s of SIGTERM; killed"),
        }
    }

    async fn start_broker(&mut self, id: &str) -> anyhow::Result<()> {
        if !self.brokers.contains_key(id) {
            let role = self.broker_role(id)?;
            self.brokers.insert(id.to_owned(), role);
        }
        let (binary, logs) = (self.binary.clone(), self.logs.clone());
        let role = self.broker(id)?;
        if role.process.is_some() {
            bail!("broker {id} is already running");
        }
        blocking(|| spawn(&binary, &logs, role))
    }

    async fn kill_storage(&mut self, index: usize) -> anyhow::Result<()> {
        let server = self.s3.get_mut(index).context("no such storage node")?;
        blocking(|| server.kill());
        Ok(())
    }

    async fn start_storage(&mut self, index: usize) -> anyhow::Result<()> {
        let server = self.s3.get_mut(index).context("no such storage node")?;
        blocking(|| server.restart())
    }

    async fn restart_etcd(&mut self, down: Duration) -> anyhow::Result<()> {
        blocking(|| self.etcd.kill());
        tokio::time::sleep(down).await;
        blocking(|| self.etcd.restart())
    }

    async fn kill_controller(&mut self, id: &str) -> anyhow::Result<()> {
        let mut process = self
            .controllers
            .get_mut(id)
            .with_context(|| format!("no controller {id}"))?
            .take_process("controller")?;
        blocking(|| process.kill());
        Ok(())
    }

    async fn start_controller(&mut self, id: &str) -> anyhow::Result<()> {
        if !self.controllers.contains_key(id) {
            let role = self.controller_role(id);
            self.controllers.insert(id.to_owned(), role);
        }
        let (binary, logs) = (self.binary.clone(), self.logs.clone());
        let role = self
            .controllers
            .get_mut(id)
            .with_context(|| format!("no controller {id}"))?;
        if role.process.is_some() {
            bail!("controller {id} is already running");
        }
        blocking(|| spawn(&binary, &logs, role))
    }

    fn can_cut(&self) -> Result<(), String> {
        if self.net.is_some() {
            Ok(())
        } else {
            Net::available()?;
            Err("this cluster was started without isolated brokers (Spec::isolate_brokers)".into())
        }
    }

    async fn cut(&mut self, broker: &str, link: Link) -> anyhow::Result<()> {
        let peers = self.peers(link);
        let ns = self.broker(broker)?.namespace.clone();
        let (Some(net), Some(ns)) = (self.net.as_ref(), ns) else {
            bail!(
                "broker {broker} is not in a network namespace; start the cluster with isolate_brokers"
            );
        };
        for peer in peers {
            net.cut(&ns, peer)?;
        }
        Ok(())
    }

    async fn heal(&mut self, broker: &str, link: Link) -> anyhow::Result<()> {
        let peers = self.peers(link);
        let ns = self.broker(broker)?.namespace.clone();
        let (Some(net), Some(ns)) = (self.net.as_ref(), ns) else {
            bail!("broker {broker} is not in a network namespace");
        };
        for peer in peers {
            net.heal(&ns, peer)?;
        }
        Ok(())
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        // Paused processes are killed all the same (SIGKILL needs no SIGCONT).
        for role in self
            .proxies
            .iter_mut()
            .chain(self.brokers.values_mut())
            .chain(self.controllers.values_mut())
        {
            if let Some(mut p) = role.process.take() {
                p.kill();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "[{}] the test failed; every process's log is in {}",
                self.spec.name,
                self.logs.display()
            );
        }
    }
}
