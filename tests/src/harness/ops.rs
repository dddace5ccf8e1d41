//! What a fault scenario can do to a cluster, whichever way it runs (OS processes or
//! containers), and the admin REST calls scenarios use to watch it recover.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use strata_meta::MetaStore;
use strata_meta::schema::Keyspace;
use strata_storage::NodePool;

/// The cluster name every harness uses.
pub const CLUSTER: &str = "faults";

/// A network link of a broker that a partition can cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    /// Broker ↔ etcd.
    Meta,
    /// Broker ↔ every storage node.
    Storage,
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Meta => "etcd",
            Self::Storage => "storage",
        })
    }
}

/// A running Strata cluster the fault scenarios drive. Addresses are reachable from the test
/// process.
// The futures are awaited in place by the scenarios, never sent to other tasks, so the `Send`
// bound `async fn` in a public trait cannot promise is not needed.
#[allow(async_fn_in_trait)]
pub trait Cluster {
    /// `process` or `container`.
    fn mode(&self) -> &'static str;
    /// gRPC addresses (`host:port`) of the proxies.
    fn proxies(&self) -> Vec<String>;
    /// Admin REST base URLs (`http://host:port`) of every controller, running or not.
    fn admin_urls(&self) -> Vec<String>;
    /// A metadata-store client for checks.
    fn meta(&self) -> Arc<dyn MetaStore>;
    fn keys(&self) -> Keyspace {
        Keyspace::new(CLUSTER).expect("the cluster name is valid")
    }
    /// A node pool over every storage node, for listing objects.
    fn storage(&self) -> Arc<NodePool>;
    /// Where the logs are, for failure messages.
    fn logs(&self) -> String;
    /// Ids of brokers that have been started and not stopped (paused ones included).
    fn brokers(&self) -> Vec<String>;
    /// `http://host:port` of every running broker's HTTP endpoint (`/metrics`).
    fn broker_http_urls(&self) -> Vec<String>;
    /// The cluster's availability zones; empty when it has none.
    fn zones(&self) -> Vec<String> {
        Vec::new()
    }
    /// The storage nodes (by index) and brokers (started ones) in `zone`.
    fn zone_members(&self, _zone: &str) -> ZoneMembers {
        ZoneMembers::default()
    }
    /// Ids of controllers that are running.
    fn controllers(&self) -> Vec<String>;
    /// Number of storage nodes.
    fn storage_nodes(&self) -> usize;

    async fn kill_broker(&mut self, id: &str) -> anyhow::Result<()>;
    async fn pause_broker(&mut self, id: &str) -> anyhow::Result<()>;
    async fn resume_broker(&mut self, id: &str) -> anyhow::Result<()>;
    /// SIGTERM and wait for the exit (the broker flushes, commits and leaves).
    async fn stop_broker(&mut self, id: &str) -> anyhow::Result<()>;
    /// Starts a broker with this id: again on its old address, or a new one.
    async fn start_broker(&mut self, id: &str) -> anyhow::Result<()>;
    async fn kill_storage(&mut self, index: usize) -> anyhow::Result<()>;
    async fn start_storage(&mut self, index: usize) -> anyhow::Result<()>;
    /// Kills etcd, waits `down`, starts it again on the same data.
    async fn restart_etcd(&mut self, down: Duration) -> anyhow::Result<()>;
    async fn kill_controller(&mut self, id: &str) -> anyhow::Result<()>;
    /// kill -9 proxy `index` (start order).
    async fn kill_proxy(&mut self, index: usize) -> anyhow::Result<()>;
    /// SIGTERM proxy `index` and wait for its exit (it tells its clients to leave first).
    async fn stop_proxy(&mut self, index: usize) -> anyhow::Result<()>;
    /// Starts proxy `index` again on its address and waits until it is ready.
    async fn start_proxy(&mut self, index: usize) -> anyhow::Result<()>;
    async fn start_controller(&mut self, id: &str) -> anyhow::Result<()>;
    /// Whether [`Cluster::cut`] works here; the reason when not.
    fn can_cut(&self) -> Result<(), String>;
    /// Cuts a broker off etcd or off every storage node (the rest of its links stay).
    async fn cut(&mut self, broker: &str, link: Link) -> anyhow::Result<()>;
    async fn heal(&mut self, broker: &str, link: Link) -> anyhow::Result<()>;
}

/// What lives in one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneMembers {
    pub storage: Vec<usize>,
    pub brokers: Vec<String>,
}

/// What the running brokers' storage pools did, summed from their `/metrics` (counters
/// restart with a broker, so a run with restarts shows what the survivors did).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StorageCounts {
    pub puts: f64,
    pub hedged_puts: f64,
    pub hedged_puts_won: f64,
    pub gets: f64,
    pub hedged_gets: f64,
    /// Brokers that answered.
    pub brokers: usize,
}

impl StorageCounts {
    /// Scrapes every URL's `/metrics`; a broker that does not answer in 2 s (paused, dead) is
    /// left out.
    pub async fn scrape(urls: &[String]) -> Self {
        let http = reqwest::Client::new();
        let mut sum = Self::default();
        for url in urls {
            let page = async {
                http.get(format!("{url}/metrics"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await?
                    .text()
                    .await
            };
            let Ok(page) = page.await else { continue };
            sum.brokers += 1;
            for line in page.lines() {
                let Some((name, value)) = line.split_once(' ') else {
                    continue;
                };
                let Ok(value) = value.trim().parse::<f64>() else {
                    continue;
                };
                let counter = match name {
                    r#"strata_broker_storage_requests_total{op="put"}"# => &mut sum.puts,
                    r#"strata_broker_storage_hedges_total{op="put"}"# => &mut sum.hedged_puts,
                    r#"strata_broker_storage_hedges_won_total{op="put"}"# => {
                        &mut sum.hedged_puts_won
                    }
                    r#"strata_broker_storage_requests_total{op="get"}"# => &mut sum.gets,
                    r#"strata_broker_storage_hedges_total{op="get"}"# => &mut sum.hedged_gets,
                    _ => continue,
                };
                *counter += value;
            }
        }
        sum
    }
}

impl std::fmt::Display for StorageCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |part: f64, all: f64| if all > 0.0 { 100.0 * part / all } else { 0.0 };
        write!(
            f,
            "{:.0} PUTs, {:.0} hedged ({:.2}%, {:.0} won); {:.0} GETs, {:.0} hedged ({:.2}%) — {} brokers",
            self.puts,
            self.hedged_puts,
            pct(self.hedged_puts, self.puts),
            self.hedged_puts_won,
            self.gets,
            self.hedged_gets,
            pct(self.hedged_gets, self.gets),
            self.brokers
        )
    }
}

/// One partition as the admin API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct PartitionView {
    pub topic: String,
    pub partition: u32,
    pub broker: Option<String>,
    pub epoch: u64,
    pub high_watermark: i64,
    pub state: String,
}

/// One broker as the admin API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct BrokerView {
    pub id: String,
    #[serde(default)]
    pub zone: String,
    pub draining: bool,
    pub partitions: usize,
}

/// The admin REST API of whichever controller answers.
#[derive(Debug, Clone)]
pub struct AdminApi {
    urls: Vec<String>,
    http: reqwest::Client,
}

impl AdminApi {
    pub fn new(urls: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .expect("a plain HTTP client builds");
        Self { urls, http }
    }

    /// Sends a request to each controller in turn until one answers with a success.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut errors = Vec::new();
        for url in &self.urls {
            let mut request = self.http.request(method.clone(), format!("{url}{path}"));
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return response
                        .json()
                        .await
                        .with_context(|| format!("{method} {url}{path}: not JSON"));
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    errors.push(format!("{url}: {status} {text}"));
                }
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        bail!("{method} {path} failed on every controller: {errors:?}")
    }

    pub async fn partitions(&self, topic: &str) -> anyhow::Result<Vec<PartitionView>> {
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/partitions?topic={topic}"),
                None,
            )
            .await?;
        Ok(serde_json::from_value(value)?)
    }

    pub async fn brokers(&self) -> anyhow::Result<Vec<BrokerView>> {
        let value = self.call(reqwest::Method::GET, "/v1/brokers", None).await?;
        Ok(serde_json::from_value(value)?)
    }

    /// The active controller's id, asked of one controller.
    pub async fn leader_seen_by(&self, url: &str) -> anyhow::Result<Option<String>> {
        let value: serde_json::Value = self
            .http
            .get(format!("{url}/v1/controller"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(value["leader"].as_str().map(str::to_owned))
    }

    pub async fn drain(&self, broker: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/brokers/{broker}/drain"),
            None,
        )
        .await
        .map(drop)
    }

    pub async fn undrain(&self, broker: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/brokers/{broker}/drain"),
            None,
        )
        .await
        .map(drop)
    }

    pub async fn reassign(&self, topic: &str, partition: u32, broker: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            "/v1/reassignments",
            Some(serde_json::json!({"topic": topic, "partition": partition, "broker": broker})),
        )
        .await
        .map(drop)
    }

    /// Waits until every partition of `topic` is in `Write` on a broker `ok` accepts;
    /// returns the owners by partition.
    pub async fn wait_owned(
        &self,
        topic: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<PartitionView>> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.partitions(topic).await {
                Ok(parts)
                    if !parts.is_empty()
                        && parts.iter().all(|p| {
                            p.state == "Write" && p.broker.as_deref().is_some_and(&ok)
                        }) =>
                {
                    return Ok(parts);
                }
                Ok(parts) => parts
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}@{}",
                            p.partition,
                            p.broker.as_deref().unwrap_or("-"),
                            p.state
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "partitions of {topic} not all in Write on accepted brokers within {timeout:?}; last seen: {last}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
