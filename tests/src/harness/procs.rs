//! A Strata cluster of OS processes on this machine: real etcd, a pool of `s3s-fs` storage
//! nodes, controllers, brokers and proxies, each with its own log file, on reserved ports so
//! any of them can be killed and started again on the same address. The `strata` processes
//! are `strata-testkit`'s ([`StrataCluster`]); this module adds what the fault scenarios need
//! around them: brokers in network namespaces of their own (see [`super::netns`]) so a test
//! can cut them off etcd or off storage, and the [`Cluster`] operations.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strata_meta::MetaStore;
use strata_storage::{NodePool, PoolConfig};
use strata_testkit::{
    EtcdOptions, EtcdServer, Placement, S3Options, S3Server, StrataCluster, StrataServer,
    owner_env, reap_orphans, strata_binary,
};

use super::netns::Net;
use super::ops::{CLUSTER, Cluster, Link, ZoneMembers};

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
    /// Availability zones; 0 for none. Storage node `n{i}`, broker `b{i}` and proxy `p{i}`
    /// are in zone `(i - 1) % zones` (named by [`zone_name`]).
    pub zones: usize,
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
            zones: 0,
        }
    }

    /// [`Spec::standard`] over 3 zones: 6 storage nodes (2 a zone, 2 copies of every object),
    /// a broker in each zone, the two proxies in the first two zones.
    pub fn zoned(name: &str) -> Self {
        Self {
            storage_nodes: 6,
            zones: 3,
            ..Self::standard(name)
        }
    }

    /// The zone of the `ordinal`-th (from 1) storage node, broker or proxy.
    pub fn zone_of(&self, ordinal: usize) -> Option<String> {
        (self.zones > 0).then(|| zone_name((ordinal.max(1) - 1) % self.zones))
    }

    /// `--zone` for the member whose id ends in its ordinal (`b2`, `p1`), if zoned.
    fn zone_args(&self, id: &str) -> Vec<String> {
        let ordinal = id[1..].parse().unwrap_or(1);
        self.zone_of(ordinal)
            .map(|zone| vec!["--zone".to_owned(), zone])
            .unwrap_or_default()
    }
}

/// `zone-a`, `zone-b`, ...
pub fn zone_name(index: usize) -> String {
    format!("zone-{}", char::from(b'a' + (index % 26) as u8))
}

/// A broker and the namespace it runs in, when it is isolated.
#[derive(Debug)]
struct Broker {
    server: StrataServer,
    namespace: Option<String>,
}

/// A cluster of processes; everything is killed and cleaned up when it drops.
#[derive(Debug)]
pub struct ProcessCluster {
    spec: Spec,
    strata: StrataCluster,
    meta: Arc<dyn MetaStore>,
    pool: Arc<NodePool>,
    controllers: BTreeMap<String, StrataServer>,
    brokers: BTreeMap<String, Broker>,
    proxies: Vec<StrataServer>,
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
        let logs = super::log_dir(&spec.name)?;
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
            let name = match spec.zone_of(i) {
                Some(zone) => format!("n{i}@{zone}"),
                None => format!("n{i}"),
            };
            node_specs.push(format!("{name}={}", server.url("strata")));
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
        let strata = StrataCluster::new(binary, logs, CLUSTER, &meta_url)
            .with_storage(&node_specs, spec.replicas)
            .with_lease_ttl_secs(spec.lease_ttl_secs)
            .with_election_ttl_secs(spec.election_ttl_secs);
        let mut cluster = Self {
            spec,
            strata,
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
            let id = format!("p{i}");
            let args = cluster.spec.zone_args(&id);
            let proxy = blocking(|| cluster.strata.proxy_with(&id, &args))?;
            cluster.proxies.push(proxy);
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
            self.strata.logs().display()
        )
    }

    /// Starts a new broker, in a namespace of its own when the cluster isolates brokers.
    fn new_broker(&mut self, id: &str) -> anyhow::Result<Broker> {
        let (placement, namespace) = match self.net.as_mut() {
            Some(net) => {
                let (namespace, ip) = net.namespace()?;
                let placement = Placement::in_namespace(&namespace, IpAddr::V4(ip));
                (placement, Some(namespace))
            }
            None => (Placement::loopback(), None),
        };
        let mut args = self.spec.broker_args.clone();
        args.extend(self.spec.zone_args(id));
        let server = blocking(|| self.strata.broker(id, &placement, &args))?;
        Ok(Broker { server, namespace })
    }

    fn broker(&mut self, id: &str) -> anyhow::Result<&mut Broker> {
        self.brokers
            .get_mut(id)
            .with_context(|| format!("no broker {id}"))
    }

    fn running_broker(&mut self, id: &str) -> anyhow::Result<&mut StrataServer> {
        let server = &mut self.broker(id)?.server;
        if !server.is_started() {
            bail!("broker {id} is not running");
        }
        Ok(server)
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

    /// Cuts or heals a broker's link, in the broker's network namespace.
    fn set_link(&mut self, broker: &str, link: Link, up: bool) -> anyhow::Result<()> {
        let peers = self.peers(link);
        let namespace = self.broker(broker)?.namespace.clone();
        let (Some(net), Some(namespace)) = (self.net.as_ref(), namespace) else {
            bail!(
                "broker {broker} is not in a network namespace; start the cluster with isolate_brokers"
            );
        };
        for peer in peers {
            if up {
                net.heal(&namespace, peer)?;
            } else {
                net.cut(&namespace, peer)?;
            }
        }
        Ok(())
    }

    /// The storage node servers, e.g. to look at their files.
    pub fn s3(&self) -> &[S3Server] {
        &self.s3
    }

    /// The address a broker listens on.
    pub fn broker_addr(&self, id: &str) -> Option<SocketAddr> {
        self.brokers.get(id).map(|b| b.server.addr())
    }

    /// The Kafka wire-protocol addresses of the proxies, in start order.
    pub fn kafka_addrs(&self) -> Vec<SocketAddr> {
        self.proxies
            .iter()
            .filter_map(StrataServer::kafka_addr)
            .collect()
    }

    /// `host:port` of each proxy's HTTP endpoint (`/metrics`), in start order.
    pub fn proxy_http_addrs(&self) -> Vec<SocketAddr> {
        self.proxies
            .iter()
            .filter_map(|p| p.listener("--http-addr"))
            .collect()
    }

    fn proxy_mut(&mut self, index: usize) -> anyhow::Result<&mut StrataServer> {
        self.proxies
            .get_mut(index)
            .ok_or_else(|| anyhow::anyhow!("no proxy {index}"))
    }

    /// The log file of a process (`b1`, `c2`, `p1`, `etcd`, `s3-n1`).
    pub fn log_of(&self, id: &str) -> PathBuf {
        self.strata.log_of(id)
    }
}

impl Cluster for ProcessCluster {
    fn mode(&self) -> &'static str {
        "process"
    }

    fn proxies(&self) -> Vec<String> {
        self.proxies.iter().map(|p| p.addr().to_string()).collect()
    }

    fn admin_urls(&self) -> Vec<String> {
        self.controllers.values().map(StrataServer::url).collect()
    }

    fn meta(&self) -> Arc<dyn MetaStore> {
        self.meta.clone()
    }

    fn storage(&self) -> Arc<NodePool> {
        self.pool.clone()
    }

    fn logs(&self) -> String {
        self.strata.logs().display().to_string()
    }

    fn brokers(&self) -> Vec<String> {
        self.brokers
            .values()
            .filter(|b| b.server.is_started())
            .map(|b| b.server.id().to_owned())
            .collect()
    }

    fn zones(&self) -> Vec<String> {
        (0..self.spec.zones).map(zone_name).collect()
    }

    fn zone_members(&self, zone: &str) -> ZoneMembers {
        let in_zone = |ordinal: usize| self.spec.zone_of(ordinal).as_deref() == Some(zone);
        ZoneMembers {
            storage: (0..self.s3.len()).filter(|i| in_zone(i + 1)).collect(),
            brokers: self
                .brokers
                .iter()
                .filter(|(id, b)| b.server.is_started() && id[1..].parse().is_ok_and(in_zone))
                .map(|(id, _)| id.clone())
                .collect(),
        }
    }

    fn broker_http_urls(&self) -> Vec<String> {
        self.brokers
            .values()
            .filter(|b| b.server.is_started())
            .filter_map(|b| b.server.http_url())
            .collect()
    }

    fn controllers(&self) -> Vec<String> {
        self.controllers
            .values()
            .filter(|c| c.is_started())
            .map(|c| c.id().to_owned())
            .collect()
    }

    fn storage_nodes(&self) -> usize {
        self.s3.len()
    }

    async fn kill_proxy(&mut self, index: usize) -> anyhow::Result<()> {
        let proxy = self.proxy_mut(index)?;
        blocking(|| proxy.kill());
        Ok(())
    }

    async fn stop_proxy(&mut self, index: usize) -> anyhow::Result<()> {
        stop_gracefully(self.proxy_mut(index)?, &format!("proxy {index}"))
    }

    async fn start_proxy(&mut self, index: usize) -> anyhow::Result<()> {
        let proxy = self.proxy_mut(index)?;
        blocking(|| proxy.start())
    }

    async fn kill_broker(&mut self, id: &str) -> anyhow::Result<()> {
        let broker = self.running_broker(id)?;
        blocking(|| broker.kill());
        Ok(())
    }

    async fn pause_broker(&mut self, id: &str) -> anyhow::Result<()> {
        self.running_broker(id)?.pause()
    }

    async fn resume_broker(&mut self, id: &str) -> anyhow::Result<()> {
        self.running_broker(id)?.resume()
    }

    async fn stop_broker(&mut self, id: &str) -> anyhow::Result<()> {
        stop_gracefully(self.running_broker(id)?, &format!("broker {id}"))
    }

    async fn start_broker(&mut self, id: &str) -> anyhow::Result<()> {
        match self.brokers.get_mut(id) {
            Some(broker) => blocking(|| broker.server.start()),
            None => {
                let broker = self.new_broker(id)?;
                self.brokers.insert(id.to_owned(), broker);
                Ok(())
            }
        }
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
        let controller = self
            .controllers
            .get_mut(id)
            .filter(|c| c.is_started())
            .with_context(|| format!("controller {id} is not running"))?;
        blocking(|| controller.kill());
        Ok(())
    }

    async fn start_controller(&mut self, id: &str) -> anyhow::Result<()> {
        match self.controllers.get_mut(id) {
            Some(controller) => blocking(|| controller.start()),
            None => {
                let controller = blocking(|| self.strata.controller(id))?;
                self.controllers.insert(id.to_owned(), controller);
                Ok(())
            }
        }
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
        self.set_link(broker, link, false)
    }

    async fn heal(&mut self, broker: &str, link: Link) -> anyhow::Result<()> {
        self.set_link(broker, link, true)
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        // Before etcd, the storage nodes and the namespaces go.
        for server in self
            .proxies
            .iter_mut()
            .chain(self.brokers.values_mut().map(|b| &mut b.server))
            .chain(self.controllers.values_mut())
        {
            server.kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "[{}] the test failed; every process's log is in {}",
                self.spec.name,
                self.strata.logs().display()
            );
        }
    }
}

/// SIGTERM and wait for a clean exit; a broker bounds its own graceful stop at 20 s.
fn stop_gracefully(server: &mut StrataServer, what: &str) -> anyhow::Result<()> {
    let status = blocking(|| server.terminate(Duration::from_secs(30)))?;
    if !status.success() {
        bail!("{what} exited with {status} on SIGTERM");
    }
    Ok(())
}
