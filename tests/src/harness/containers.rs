//! A Strata cluster of containers of the locally built image `strata-test:dev` (strata, etcd
//! and s3s-fs; `scripts/image.sh` builds it), driven with `testcontainers` and its `bollard`
//! client, on three docker networks of its own:
//!
//! - `meta`: etcd, controllers, brokers, proxies;
//! - `store`: the storage nodes, brokers, proxies;
//! - `front`: controllers, brokers, proxies (proxies forward produces to brokers there; the
//!   admin API asks brokers their partitions' states there).
//!
//! Cutting a broker off etcd disconnects it from `meta`; off storage, from `store`. Its other
//! links stay. The test reaches etcd, the storage nodes, the controllers and the proxies
//! through ports published on 127.0.0.1 only. Every container and network carries the labels
//! `org.strata.fault-test` and `org.strata.fault-test.pid`; the next run removes those of a
//! test process that died without cleaning up. Logs of every container are saved to the log
//! directory when the cluster drops.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strata_meta::MetaStore;
use strata_meta::schema::{self, BrokerInfo};
use strata_storage::{NodePool, PoolConfig};
use strata_testkit::reserved_port;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, PortBinding,
};
use testcontainers::bollard::query_parameters::{
    KillContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::time::Instant;

use super::log_dir;
use super::ops::{CLUSTER, Cluster, Link};

/// The image every container runs; `STRATA_TEST_IMAGE` (`name:tag`) overrides it.
pub fn image() -> (String, String) {
    let full = std::env::var("STRATA_TEST_IMAGE").unwrap_or_else(|_| "strata-test:dev".into());
    match full.rsplit_once(':') {
        Some((name, tag)) => (name.to_owned(), tag.to_owned()),
        None => (full, "latest".into()),
    }
}

const LABEL: &str = "org.strata.fault-test";
const LABEL_PID: &str = "org.strata.fault-test.pid";
const ACCESS_KEY: &str = "strata-test";
const SECRET_KEY: &str = "strata-test-secret";

/// Why container tests cannot run here.
#[derive(Debug, Clone)]
pub enum Unavailable {
    /// No Docker engine answers.
    Engine(String),
    /// The engine answers but the image is missing.
    Image(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Engine(why) | Self::Image(why) => f.write_str(why),
        }
    }
}

async fn docker() -> anyhow::Result<Docker> {
    let docker = testcontainers::core::client::docker_client_instance().await?;
    // The engine here may be old (20.10 speaks API 1.41); speak its version.
    Ok(docker.negotiate_version().await?)
}

/// Whether a Docker engine answers and has the image.
pub async fn docker_status() -> Result<(), Unavailable> {
    let docker = match tokio::time::timeout(Duration::from_secs(10), docker()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            return Err(Unavailable::Engine(format!(
                "no Docker engine reachable ({e:#})"
            )));
        }
        Err(_) => {
            return Err(Unavailable::Engine(
                "the Docker engine did not answer within 10 s".into(),
            ));
        }
    };
    if let Err(e) = docker.ping().await {
        return Err(Unavailable::Engine(format!(
            "the Docker engine does not answer a ping ({e})"
        )));
    }
    let (name, tag) = image();
    if docker
        .inspect_image(&format!("{name}:{tag}"))
        .await
        .is_err()
    {
        return Err(Unavailable::Image(format!(
            "the image {name}:{tag} is not built; build it with `scripts/image.sh` \
             (`STRATA_BIN=target/debug/strata scripts/image.sh` packages the debug binary \
             in about 30 s once the base images exist)"
        )));
    }
    Ok(())
}

/// Removes containers and networks of fault-test processes that no longer exist.
async fn remove_stale(docker: &Docker) {
    let dead = |labels: Option<&HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(LABEL_PID))
            .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    let filters = HashMap::from([("label".to_owned(), vec![LABEL.to_owned()])]);
    if let Ok(containers) = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
    {
        for c in containers {
            if dead(c.labels.as_ref())
                && let Some(id) = c.id
            {
                tracing::info!(container = %id, "removing a container left by a dead test run");
                let _ = docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptions {
                            force: true,
                            v: true,
                            ..Default::default()
                        }),
                    )
                    .await;
            }
        }
    }
    if let Ok(networks) = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
    {
        for n in networks {
            if dead(n.labels.as_ref())
                && let Some(name) = n.name
            {
                tracing::info!(network = %name, "removing a network left by a dead test run");
                let _ = docker.remove_network(&name).await;
            }
        }
    }
}

/// What a container runs, and on which networks (it starts on the first; the others are
/// connected right after, and its command waits for them).
#[derive(Debug, Clone)]
struct Launch {
    entrypoint: &'static str,
    cmd: Vec<String>,
    networks: Vec<String>,
}

/// One container of the cluster.
struct Node {
    id: String,
    /// Container name, also its host name on the networks.
    name: String,
    container: Option<ContainerAsync<GenericImage>>,
    /// Host port by container port.
    ports: BTreeMap<u16, u16>,
    running: bool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("running", &self.running)
            .finish()
    }
}

impl Node {
    fn port(&self, container_port: u16) -> u16 {
        self.ports.get(&container_port).copied().unwrap_or_default()
    }

    fn container(&self) -> anyhow::Result<&ContainerAsync<GenericImage>> {
        self.container
            .as_ref()
            .with_context(|| format!("{} has no container", self.id))
    }
}

/// A cluster of containers; containers and networks are removed when it drops.
#[derive(Debug)]
pub struct ContainerCluster {
    docker: Docker,
    prefix: String,
    logs: PathBuf,
    broker_args: Vec<String>,
    meta_net: String,
    store_net: String,
    front_net: String,
    etcd: Node,
    s3: Vec<Node>,
    controllers: BTreeMap<String, Node>,
    brokers: BTreeMap<String, Node>,
    proxies: Vec<Node>,
    /// Set once etcd and the storage nodes answer.
    meta: Option<Arc<dyn MetaStore>>,
    pool: Option<Arc<NodePool>>,
    http: reqwest::Client,
}

impl ContainerCluster {
    /// etcd, three storage nodes (two copies of every object), two controllers, three brokers
    /// (with `broker_args` added) and two proxies.
    pub async fn start(name: &str, broker_args: Vec<String>) -> anyhow::Result<Self> {
        let docker = docker().await?;
        remove_stale(&docker).await;
        let logs = log_dir(&format!("{name}-containers"))?;
        eprintln!(
            "[{name}] container logs (saved when the cluster stops): {}",
            logs.display()
        );
        let prefix = format!("stf{:06x}", rand::random::<u32>() & 0xff_ffff);
        let mut networks = Vec::new();
        for kind in ["meta", "store", "front"] {
            let network = format!("{prefix}-{kind}");
            docker
                .create_network(NetworkCreateRequest {
                    name: network.clone(),
                    driver: Some("bridge".into()),
                    labels: Some(labels()),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("creating docker network {network}"))?;
            networks.push(network);
        }
        let placeholder = |id: &str| Node {
            id: id.to_owned(),
            name: format!("{prefix}-{id}"),
            container: None,
            ports: BTreeMap::new(),
            running: false,
        };
        // The struct owns the networks from here on, so a failure below still removes
        // everything.
        let mut cluster = Self {
            meta: None,
            pool: None,
            docker,
            logs,
            broker_args,
            meta_net: networks[0].clone(),
            store_net: networks[1].clone(),
            front_net: networks[2].clone(),
            etcd: placeholder("etcd"),
            s3: Vec::new(),
            controllers: BTreeMap::new(),
            brokers: BTreeMap::new(),
            proxies: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()?,
            prefix: prefix.clone(),
        };
        let started = Instant::now();
        cluster.start_all().await?;
        eprintln!(
            "[{name}] 11 containers up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(cluster)
    }

    /// Starts every container, each tier's containers at once: etcd and the storage nodes,
    /// then the controllers, the brokers, the proxies.
    async fn start_all(&mut self) -> anyhow::Result<()> {
        use futures::future::{join_all, try_join_all};
        self.etcd.ports.insert(2379, reserved_port());
        for i in 1..=3 {
            let node = self.new_node(&format!("n{i}"), &[9000]);
            self.s3.push(node);
        }
        let (etcd, storage) = (self.etcd_launch(), self.storage_launch());
        let (etcd, nodes) = tokio::join!(
            self.create(&self.etcd, &etcd),
            join_all(self.s3.iter().map(|n| self.create(n, &storage)))
        );
        self.etcd.container = Some(etcd?);
        self.etcd.running = true;
        for (node, container) in self.s3.iter_mut().zip(nodes) {
            node.container = Some(container?);
            node.running = true;
        }
        let url = format!("etcd://127.0.0.1:{}", self.etcd.port(2379));
        let (meta, _) = tokio::try_join!(
            self.wait_meta(&url),
            try_join_all((0..self.s3.len()).map(|i| self.wait_storage(i)))
        )?;
        self.meta = Some(meta);
        let specs = (0..self.s3.len())
            .map(|i| {
                format!(
                    "n{}=s3://strata?endpoint=http://127.0.0.1:{}&region=us-east-1\
                     &access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}",
                    i + 1,
                    self.s3[i].port(9000)
                )
                .parse()
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.pool = Some(Arc::new(NodePool::open(&PoolConfig::new(specs, 2))?));

        for i in 1..=2 {
            let id = format!("c{i}");
            let node = self.new_node(&id, &[7080]);
            self.controllers.insert(id, node);
        }
        let launches: Vec<Launch> = self
            .controllers
            .keys()
            .map(|id| self.controller_launch(id))
            .collect();
        let created = join_all(
            self.controllers
                .values()
                .zip(&launches)
                .map(|(n, l)| self.create(n, l)),
        )
        .await;
        for (node, container) in self.controllers.values_mut().zip(created) {
            node.container = Some(container?);
            node.running = true;
        }
        let this = &*self;
        try_join_all(this.controllers.values().map(|n| async move {
            let url = format!("http://127.0.0.1:{}/readyz", n.port(7080));
            this.wait_http(n, &url, true).await
        }))
        .await?;

        let since = now_ms();
        for i in 1..=3 {
            let id = format!("b{i}");
            let node = self.new_node(&id, &[7072]);
            self.brokers.insert(id, node);
        }
        let launches: Vec<Launch> = self
            .brokers
            .values()
            .map(|n| self.broker_launch(n))
            .collect();
        let created = join_all(
            self.brokers
                .values()
                .zip(&launches)
                .map(|(n, l)| self.create(n, l)),
        )
        .await;
        for (node, container) in self.brokers.values_mut().zip(created) {
            node.container = Some(container?);
            node.running = true;
        }
        try_join_all(
            self.brokers
                .keys()
                .map(|id| self.wait_registered(id, since)),
        )
        .await?;

        for i in 1..=2 {
            let node = self.new_node(&format!("p{i}"), &[7070, 7073]);
            self.proxies.push(node);
        }
        let proxy = self.proxy_launch();
        let created = join_all(self.proxies.iter().map(|n| self.create(n, &proxy))).await;
        for (node, container) in self.proxies.iter_mut().zip(created) {
            node.container = Some(container?);
            node.running = true;
        }
        let this = &*self;
        try_join_all(this.proxies.iter().map(|n| async move {
            let url = format!("http://127.0.0.1:{}/readyz", n.port(7073));
            this.wait_http(n, &url, true).await
        }))
        .await?;
        Ok(())
    }

    /// A node named after `id`, with host ports reserved for `ports`.
    fn new_node(&self, id: &str, ports: &[u16]) -> Node {
        Node {
            id: id.to_owned(),
            name: self.node_name(id),
            container: None,
            ports: ports.iter().map(|p| (*p, reserved_port())).collect(),
            running: false,
        }
    }

    fn etcd_launch(&self) -> Launch {
        let name = &self.etcd.name;
        Launch {
            entrypoint: "etcd",
            cmd: vec![
                "--name=etcd".to_owned(),
                "--data-dir=/var/lib/strata/etcd".into(),
                "--listen-client-urls=http://0.0.0.0:2379".into(),
                format!("--advertise-client-urls=http://{name}:2379"),
                "--listen-peer-urls=http://127.0.0.1:2380".into(),
                "--initial-advertise-peer-urls=http://127.0.0.1:2380".into(),
                "--initial-cluster=etcd=http://127.0.0.1:2380".into(),
                "--log-level=warn".into(),
                format!("--max-txn-ops={}", strata_testkit::ETCD_MAX_TXN_OPS),
            ],
            networks: vec![self.meta_net.clone()],
        }
    }

    fn storage_launch(&self) -> Launch {
        Launch {
            entrypoint: "sh",
            cmd: vec![
                "-c".to_owned(),
                format!(
                    "mkdir -p /var/lib/strata/s3/strata && exec s3s-fs --host 0.0.0.0 --port 9000 \
                     --access-key {ACCESS_KEY} --secret-key {SECRET_KEY} /var/lib/strata/s3"
                ),
            ],
            networks: vec![self.store_net.clone()],
        }
    }

    fn controller_launch(&self, id: &str) -> Launch {
        let etcd = self.etcd.name.clone();
        let command = format!(
            "strata controller --cluster {CLUSTER} --meta etcd://{etcd}:2379 --id {id} \
             --admin-addr 0.0.0.0:7080 --election-ttl-secs 2"
        );
        Launch {
            entrypoint: "sh",
            cmd: self.after_networks(std::slice::from_ref(&etcd), &command),
            networks: vec![self.front_net.clone(), self.meta_net.clone()],
        }
    }

    fn broker_launch(&self, node: &Node) -> Launch {
        let etcd = self.etcd.name.clone();
        let command = format!(
            "strata broker --cluster {CLUSTER} --meta etcd://{etcd}:2379 --id {} \
             --listen 0.0.0.0:7071 --http-addr 0.0.0.0:7072 --advertised-addr {}:7071 \
             --lease-ttl-secs 2{} {}",
            node.id,
            node.name,
            self.storage_flags(),
            self.broker_args.join(" ")
        );
        Launch {
            entrypoint: "sh",
            cmd: self.after_networks(&[etcd, self.node_name("n1")], &command),
            networks: vec![
                self.front_net.clone(),
                self.meta_net.clone(),
                self.store_net.clone(),
            ],
        }
    }

    fn proxy_launch(&self) -> Launch {
        let etcd = self.etcd.name.clone();
        let command = format!(
            "strata proxy --cluster {CLUSTER} --meta etcd://{etcd}:2379 --listen 0.0.0.0:7070 \
             --http-addr 0.0.0.0:7073{}",
            self.storage_flags()
        );
        Launch {
            entrypoint: "sh",
            cmd: self.after_networks(&[etcd, self.node_name("n1")], &command),
            networks: vec![
                self.front_net.clone(),
                self.meta_net.clone(),
                self.store_net.clone(),
            ],
        }
    }

    fn node_name(&self, id: &str) -> String {
        format!("{}-{id}", self.prefix)
    }

    fn storage_flags(&self) -> String {
        let mut flags = String::new();
        for i in 1..=self.s3.len() {
            flags.push_str(&format!(
                " --storage-node 'n{i}=s3://strata?endpoint=http://{}:9000&region=us-east-1\
                 &access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}'",
                self.node_name(&format!("n{i}"))
            ));
        }
        flags.push_str(" --storage-replicas 2");
        flags
    }

    /// A shell line that waits until the names resolve (the container's other networks are
    /// connected right after it starts), then runs `command`.
    fn after_networks(&self, wait_for: &[String], command: &str) -> Vec<String> {
        let checks: Vec<String> = wait_for
            .iter()
            .map(|n| format!("getent hosts {n} >/dev/null"))
            .collect();
        vec![
            "-c".into(),
            format!(
                "n=0; until {}; do n=$((n+1)); [ $n -gt 300 ] && echo 'networks not connected' && exit 1; sleep 0.1; done; exec {command}",
                checks.join(" && ")
            ),
        ]
    }

    /// Creates and starts a container as `launch` says.
    async fn create(
        &self,
        node: &Node,
        launch: &Launch,
    ) -> anyhow::Result<ContainerAsync<GenericImage>> {
        let (image_name, tag) = image();
        let mut image = GenericImage::new(image_name, tag)
            .with_entrypoint(launch.entrypoint)
            .with_wait_for(WaitFor::Nothing);
        for port in node.ports.keys() {
            image = image.with_exposed_port(port.tcp());
        }
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = node
            .ports
            .iter()
            .map(|(container, host)| {
                (
                    format!("{container}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(host.to_string()),
                    }]),
                )
            })
            .collect();
        let mut request = image
            .with_cmd(launch.cmd.clone())
            .with_container_name(node.name.clone())
            .with_hostname(node.name.clone())
            .with_network(launch.networks[0].clone())
            .with_env_var("STRATA_LOG", "info")
            .with_env_var(
                "STRATA_META_MAX_TXN_OPS",
                strata_testkit::ETCD_MAX_TXN_OPS.to_string(),
            )
            .with_env_var("NO_COLOR", "1")
            .with_env_var("RUST_LOG", "warn")
            .with_startup_timeout(Duration::from_secs(60))
            .with_host_config_modifier(move |config| {
                config.port_bindings = Some(bindings.clone());
                // Reaps children and forwards signals, whatever runs as the entrypoint.
                config.init = Some(true);
            });
        for (k, v) in labels() {
            request = request.with_label(k, v);
        }
        let container = request
            .start()
            .await
            .with_context(|| format!("starting container {}", node.name))?;
        for network in &launch.networks[1..] {
            self.connect(network, &node.name).await?;
        }
        Ok(container)
    }

    async fn connect(&self, network: &str, container: &str) -> anyhow::Result<()> {
        self.docker
            .connect_network(
                network,
                NetworkConnectRequest {
                    container: container.to_owned(),
                    endpoint_config: None,
                },
            )
            .await
            .with_context(|| format!("connecting {container} to {network}"))
    }

    async fn disconnect(&self, network: &str, container: &str) -> anyhow::Result<()> {
        self.docker
            .disconnect_network(
                network,
                NetworkDisconnectRequest {
                    container: container.to_owned(),
                    force: Some(true),
                },
            )
            .await
            .with_context(|| format!("disconnecting {container} from {network}"))
    }

    async fn kill(&self, name: &str) -> anyhow::Result<()> {
        self.docker
            .kill_container(
                name,
                Some(KillContainerOptions {
                    signal: "SIGKILL".into(),
                }),
            )
            .await
            .with_context(|| format!("docker kill {name}"))?;
        // docker kill returns once the signal is sent; wait for the container to be gone.
        for _ in 0..100 {
            let running = self
                .docker
                .inspect_container(name, None)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.running)
                .unwrap_or(false);
            if !running {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{name} still runs 5 s after docker kill")
    }

    /// Waits until etcd answers through its published port; a client for it.
    async fn wait_meta(&self, url: &str) -> anyhow::Result<Arc<dyn MetaStore>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Ok(meta)) =
                tokio::time::timeout(Duration::from_secs(3), strata_meta::open(url)).await
                && let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(3), meta.get("/strata")).await
            {
                return Ok(meta);
            }
            if Instant::now() >= deadline {
                bail!(
                    "etcd did not answer on {url} within 30 s; logs in {}",
                    self.logs.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `url` answers HTTP (any status when `ok_only` is false), starting the
    /// container again if it exits meanwhile.
    async fn wait_http(&self, node: &Node, url: &str, ok_only: bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut restarts = 0;
        loop {
            if let Ok(response) = self.http.get(url).send().await
                && (!ok_only || response.status().is_success())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer {url} within 60 s; logs in {}",
                    node.id,
                    self.logs.display()
                );
            }
            self.revive(node, &mut restarts).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts a container again if its process exited while starting (a role gives up when
    /// etcd does not answer within 5 s, which a busy 2-core machine can cause), at most three
    /// times.
    async fn revive(&self, node: &Node, restarts: &mut u32) -> anyhow::Result<()> {
        let container = node.container()?;
        if container.is_running().await.unwrap_or(true) {
            return Ok(());
        }
        if *restarts >= 3 {
            bail!(
                "{} exited three times while starting; logs in {}",
                node.id,
                self.logs.display()
            );
        }
        *restarts += 1;
        tracing::warn!(container = %node.name, "exited while starting; starting it again");
        container.start().await?;
        Ok(())
    }

    async fn wait_storage(&self, index: usize) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/", self.s3[index].port(9000));
        self.wait_http(&self.s3[index], &url, false).await
    }

    /// Waits until broker `id` registered after `since_ms` (a stale registration of a killed
    /// incarnation lingers until its lease ends).
    async fn wait_registered(&self, id: &str, since_ms: i64) -> anyhow::Result<()> {
        let key = self.keys().broker(id);
        let node = self.broker_node(id)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut restarts = 0;
        loop {
            if let Ok(Some(kv)) = self.meta().get(&key).await
                && let Ok(info) = schema::decode::<BrokerInfo>(&key, &kv.value)
                && info.started_ms >= since_ms
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "broker {id} did not register within 60 s; logs in {}",
                    self.logs.display()
                );
            }
            self.revive(node, &mut restarts).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn broker_node(&self, id: &str) -> anyhow::Result<&Node> {
        self.brokers
            .get(id)
            .with_context(|| format!("no broker {id}"))
    }

    fn proxy_node(&self, index: usize) -> anyhow::Result<&Node> {
        self.proxies
            .get(index)
            .with_context(|| format!("no proxy {index}"))
    }

    /// Saves every container's log (all its runs) to the log directory.
    pub fn save_logs(&self) {
        let nodes = std::iter::once(&self.etcd)
            .chain(&self.s3)
            .chain(self.controllers.values())
            .chain(self.brokers.values())
            .chain(&self.proxies);
        for node in nodes {
            if node.container.is_none() {
                continue;
            }
            let Ok(file) = std::fs::File::create(self.logs.join(format!("{}.log", node.id))) else {
                continue;
            };
            let Ok(err) = file.try_clone() else { continue };
            let _ = std::process::Command::new("docker")
                .args(["logs", &node.name])
                .stdout(file)
                .stderr(err)
                .status();
        }
    }
}

fn labels() -> HashMap<String, String> {
    HashMap::from([
        (LABEL.to_owned(), "1".to_owned()),
        (LABEL_PID.to_owned(), std::process::id().to_string()),
    ])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Cluster for ContainerCluster {
    fn mode(&self) -> &'static str {
        "container"
    }

    fn proxies(&self) -> Vec<String> {
        self.proxies
            .iter()
            .map(|p| format!("127.0.0.1:{}", p.port(7070)))
            .collect()
    }

    fn admin_urls(&self) -> Vec<String> {
        self.controllers
            .values()
            .map(|c| format!("http://127.0.0.1:{}", c.port(7080)))
            .collect()
    }

    fn meta(&self) -> Arc<dyn MetaStore> {
        self.meta
            .clone()
            .expect("the cluster has started (etcd answered)")
    }

    fn storage(&self) -> Arc<NodePool> {
        self.pool
            .clone()
            .expect("the cluster has started (storage answered)")
    }

    fn logs(&self) -> String {
        self.logs.display().to_string()
    }

    fn brokers(&self) -> Vec<String> {
        self.brokers
            .values()
            .filter(|b| b.running)
            .map(|b| b.id.clone())
            .collect()
    }

    fn broker_http_urls(&self) -> Vec<String> {
        self.brokers
            .values()
            .filter(|b| b.running)
            .map(|b| format!("http://127.0.0.1:{}", b.port(7072)))
            .collect()
    }

    fn controllers(&self) -> Vec<String> {
        self.controllers
            .values()
            .filter(|c| c.running)
            .map(|c| c.id.clone())
            .collect()
    }

    fn storage_nodes(&self) -> usize {
        self.s3.len()
    }

    async fn kill_broker(&mut self, id: &str) -> anyhow::Result<()> {
        let name = self.broker_node(id)?.name.clone();
        self.kill(&name).await?;
        if let Some(b) = self.brokers.get_mut(id) {
            b.running = false;
        }
        Ok(())
    }

    async fn pause_broker(&mut self, id: &str) -> anyhow::Result<()> {
        self.broker_node(id)?.container()?.pause().await?;
        Ok(())
    }

    async fn resume_broker(&mut self, id: &str) -> anyhow::Result<()> {
        self.broker_node(id)?.container()?.unpause().await?;
        Ok(())
    }

    async fn stop_broker(&mut self, id: &str) -> anyhow::Result<()> {
        let exit = stop_container(self.broker_node(id)?).await?;
        if let Some(b) = self.brokers.get_mut(id) {
            b.running = false;
        }
        clean_exit(exit, &format!("broker {id}"))
    }

    async fn start_broker(&mut self, id: &str) -> anyhow::Result<()> {
        let since = now_ms();
        if let Some(node) = self.brokers.get(id) {
            if node.running {
                bail!("broker {id} is already running");
            }
            node.container()?.start().await?;
        } else {
            let mut node = self.new_node(id, &[7072]);
            let launch = self.broker_launch(&node);
            node.container = Some(self.create(&node, &launch).await?);
            self.brokers.insert(id.to_owned(), node);
        }
        if let Some(b) = self.brokers.get_mut(id) {
            b.running = true;
        }
        self.wait_registered(id, since).await
    }

    async fn kill_storage(&mut self, index: usize) -> anyhow::Result<()> {
        let name = self
            .s3
            .get(index)
            .context("no such storage node")?
            .name
            .clone();
        self.kill(&name).await?;
        self.s3[index].running = false;
        Ok(())
    }

    async fn start_storage(&mut self, index: usize) -> anyhow::Result<()> {
        let node = self.s3.get(index).context("no such storage node")?;
        node.container()?.start().await?;
        self.s3[index].running = true;
        self.wait_storage(index).await
    }

    async fn restart_etcd(&mut self, down: Duration) -> anyhow::Result<()> {
        let name = self.etcd.name.clone();
        self.kill(&name).await?;
        tokio::time::sleep(down).await;
        self.etcd.container()?.start().await?;
        let url = format!("etcd://127.0.0.1:{}", self.etcd.port(2379));
        // The old client reconnects by itself; a fresh one proves etcd answers.
        self.wait_meta(&url).await.map(drop)
    }

    async fn kill_proxy(&mut self, index: usize) -> anyhow::Result<()> {
        let name = self.proxy_node(index)?.name.clone();
        self.kill(&name).await?;
        self.proxies[index].running = false;
        Ok(())
    }

    async fn stop_proxy(&mut self, index: usize) -> anyhow::Result<()> {
        let exit = stop_container(self.proxy_node(index)?).await?;
        self.proxies[index].running = false;
        clean_exit(exit, &format!("proxy {index}"))
    }

    async fn start_proxy(&mut self, index: usize) -> anyhow::Result<()> {
        let node = self.proxy_node(index)?;
        node.container()?.start().await?;
        let url = format!("http://127.0.0.1:{}/readyz", node.port(7073));
        self.wait_http(node, &url, true).await?;
        self.proxies[index].running = true;
        Ok(())
    }

    async fn kill_controller(&mut self, id: &str) -> anyhow::Result<()> {
        let name = self
            .controllers
            .get(id)
            .with_context(|| format!("no controller {id}"))?
            .name
            .clone();
        self.kill(&name).await?;
        if let Some(c) = self.controllers.get_mut(id) {
            c.running = false;
        }
        Ok(())
    }

    async fn start_controller(&mut self, id: &str) -> anyhow::Result<()> {
        if let Some(node) = self.controllers.get(id) {
            node.container()?.start().await?;
        } else {
            let mut node = self.new_node(id, &[7080]);
            let launch = self.controller_launch(id);
            node.container = Some(self.create(&node, &launch).await?);
            self.controllers.insert(id.to_owned(), node);
        }
        let node = self.controllers.get_mut(id).context("just inserted")?;
        node.running = true;
        let node = self.controllers.get(id).context("just inserted")?;
        let url = format!("http://127.0.0.1:{}/readyz", node.port(7080));
        self.wait_http(node, &url, true).await
    }

    fn can_cut(&self) -> Result<(), String> {
        Ok(())
    }

    async fn cut(&mut self, broker: &str, link: Link) -> anyhow::Result<()> {
        let name = self.broker_node(broker)?.name.clone();
        let network = match link {
            Link::Meta => self.meta_net.clone(),
            Link::Storage => self.store_net.clone(),
        };
        self.disconnect(&network, &name).await
    }

    async fn heal(&mut self, broker: &str, link: Link) -> anyhow::Result<()> {
        let name = self.broker_node(broker)?.name.clone();
        let network = match link {
            Link::Meta => self.meta_net.clone(),
            Link::Storage => self.store_net.clone(),
        };
        self.connect(&network, &name).await
    }
}

impl Drop for ContainerCluster {
    fn drop(&mut self) {
        self.save_logs();
        if std::thread::panicking() {
            eprintln!(
                "the test failed; every container's log is in {}",
                self.logs.display()
            );
        }
        // Containers first, then the networks they were on. The engine removes containers
        // one at a time (about a second each here), so all removals run at once, before
        // testcontainers removes them one by one as their handles drop (finding them gone).
        let names: Vec<String> = std::iter::once(&self.etcd)
            .chain(&self.s3)
            .chain(self.controllers.values())
            .chain(self.brokers.values())
            .chain(&self.proxies)
            .filter(|n| n.container.is_some())
            .map(|n| n.name.clone())
            .collect();
        let removals: Vec<_> = names
            .iter()
            .filter_map(|name| {
                std::process::Command::new("docker")
                    .args(["rm", "--force", "--volumes", name])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .ok()
            })
            .collect();
        for mut removal in removals {
            let _ = removal.wait();
        }
        let nodes = std::iter::once(&mut self.etcd)
            .chain(self.s3.iter_mut())
            .chain(self.controllers.values_mut())
            .chain(self.brokers.values_mut())
            .chain(self.proxies.iter_mut());
        for node in nodes {
            drop(node.container.take());
        }
        for network in [&self.meta_net, &self.store_net, &self.front_net] {
            let _ = std::process::Command::new("docker")
                .args(["network", "rm", network])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// `docker stop` with 30 s before SIGKILL (a broker bounds its own graceful stop at 20 s);
/// the container's exit code.
async fn stop_container(node: &Node) -> anyhow::Result<Option<i64>> {
    node.container()?.stop_with_timeout(Some(30)).await?;
    Ok(node.container()?.exit_code().await?)
}

/// An error naming `what` unless it exited cleanly on SIGTERM.
fn clean_exit(exit: Option<i64>, what: &str) -> anyhow::Result<()> {
    match exit {
        Some(0) | None => Ok(()),
        Some(code) => bail!("{what} exited with {code} on SIGTERM"),
    }
}
