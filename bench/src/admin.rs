//! The admin calls the bench makes: topics, partition owners, brokers and moves through the
//! controller's REST API, and whether the proxy knows a topic yet.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct AdminApi {
    base: String,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PartitionInfo {
    pub partition: u32,
    pub broker: Option<String>,
    pub epoch: u64,
    pub state: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BrokerInfo {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Move {
    pub epoch: u64,
}

impl AdminApi {
    /// The admin API at `addr`, with the run's credentials (see [`crate::credentials`]).
    pub fn new(addr: &str) -> Self {
        let (http, tls) = crate::credentials::admin_http();
        let base = if addr.contains("://") {
            addr.trim_end_matches('/').to_owned()
        } else if tls {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        };
        Self { base, http }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the admin API at {}; is a controller (or `strata standalone`) running? pass --admin",
                self.base
            )
        })?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = value["error"]["code"].as_str().unwrap_or("ERROR");
            let message = value["error"]["message"].as_str().unwrap_or(&text);
            bail!("admin API {path}: {code}: {message}");
        }
        Ok(value)
    }

    pub async fn brokers(&self) -> anyhow::Result<Vec<BrokerInfo>> {
        let v = self.call(reqwest::Method::GET, "/v1/brokers", None).await?;
        serde_json::from_value(v).context("unexpected /v1/brokers answer")
    }

    /// Waits until at least `n` brokers are registered.
    pub async fn wait_for_brokers(&self, n: usize, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            match self.brokers().await {
                Ok(b) if b.len() >= n => return Ok(()),
                Ok(b) if Instant::now() >= deadline => {
                    bail!("{} brokers registered after {limit:?}; need {n}", b.len())
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Creates a topic; returns its incarnation id (objects live under `{topic}-{id:016x}`).
    pub async fn create_topic(&self, name: &str, partitions: u32) -> anyhow::Result<u64> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/v1/topics",
                Some(json!({ "name": name, "partitions": partitions })),
            )
            .await?;
        v["id"]
            .as_u64()
            .with_context(|| format!("topic {name} created, but its answer has no id: {v}"))
    }

    pub async fn delete_topic(&self, name: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, &format!("/v1/topics/{name}"), None)
            .await
            .map(|_| ())
    }

    pub async fn partitions(&self, topic: &str) -> anyhow::Result<Vec<PartitionInfo>> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/partitions?topic={topic}"),
                None,
            )
            .await?;
        serde_json::from_value(v).context("unexpected /v1/partitions answer")
    }

    /// Waits until every partition of `topic` is in state Write at its owner.
    pub async fn wait_writable(&self, topic: &str, limit: Duration) -> anyhow::Result<()> {
        wait_until(limit, Duration::from_millis(200), async || {
            let parts = self.partitions(topic).await?;
            let waiting = parts.iter().filter(|p| p.state != "Write").count();
            Ok((waiting > 0 || parts.is_empty())
                .then(|| format!("{waiting} partitions of {topic} are still not writable")))
        })
        .await
    }

    /// Creates a topic and waits until every partition is writable and the proxy routes to it;
    /// returns its incarnation id.
    pub async fn create_ready_topic(
        &self,
        server: &str,
        name: &str,
        partitions: u32,
        limit: Duration,
    ) -> anyhow::Result<u64> {
        let id = self.create_topic(name, partitions).await?;
        self.wait_writable(name, limit).await?;
        wait_known(server, name).await?;
        Ok(id)
    }

    pub async fn owner(&self, topic: &str, partition: u32) -> anyhow::Result<String> {
        self.partitions(topic)
            .await?
            .into_iter()
            .find(|x| x.partition == partition)
            .and_then(|x| x.broker)
            .with_context(|| format!("{topic}/{partition} has no owner"))
    }

    /// Waits until `broker` serves `partition` at `epoch` or later.
    pub async fn wait_owner(
        &self,
        topic: &str,
        partition: u32,
        broker: &str,
        epoch: u64,
        limit: Duration,
    ) -> anyhow::Result<()> {
        wait_until(limit, Duration::from_millis(50), async || {
            let parts = self.partitions(topic).await?;
            let serving = parts.iter().any(|x| {
                x.partition == partition
                    && x.broker.as_deref() == Some(broker)
                    && x.epoch >= epoch
                    && x.state == "Write"
            });
            Ok((!serving).then(|| format!("{topic}/{partition} is not writable at {broker}")))
        })
        .await
    }

    /// Waits until `n` brokers are registered and every partition of `topic` is spread evenly
    /// and writable (after a restart the controller gives the returning broker its share back).
    pub async fn wait_balanced(
        &self,
        topic: &str,
        n: usize,
        limit: Duration,
    ) -> anyhow::Result<()> {
        wait_until(limit, Duration::from_millis(200), async || {
            let brokers = self.brokers().await.unwrap_or_default();
            let parts = self.partitions(topic).await.unwrap_or_default();
            let mut per: HashMap<String, usize> = HashMap::new();
            for p in &parts {
                if let Some(b) = &p.broker {
                    *per.entry(b.clone()).or_default() += 1;
                }
            }
            let floor = parts.len() / n.max(1);
            let balanced = brokers.len() >= n
                && brokers
                    .iter()
                    .all(|b| per.get(&b.id).copied().unwrap_or(0) >= floor)
                && !parts.is_empty()
                && parts.iter().all(|p| p.state == "Write");
            Ok((!balanced).then(|| format!("{topic} is not balanced over {n} brokers ({per:?})")))
        })
        .await
    }

    pub async fn reassign(
        &self,
        topic: &str,
        partition: u32,
        broker: &str,
    ) -> anyhow::Result<Move> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/v1/reassignments",
                Some(json!({ "topic": topic, "partition": partition, "broker": broker })),
            )
            .await?;
        let first = v["moves"]
            .get(0)
            .cloned()
            .with_context(|| format!("the reassignment answer lists no move: {v}"))?;
        serde_json::from_value(first).context("unexpected move in the reassignment answer")
    }
}

/// Asks `still_waiting_for` every `every` until it answers `None`; after `limit`, fails with
/// what it was still waiting for.
async fn wait_until(
    limit: Duration,
    every: Duration,
    mut still_waiting_for: impl AsyncFnMut() -> anyhow::Result<Option<String>>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match still_waiting_for().await? {
            None => return Ok(()),
            Some(what) if Instant::now() >= deadline => bail!("{what} after {limit:?}"),
            Some(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Waits until the proxy serves `topic` (its routing table follows the metadata store a
/// moment after a topic is created).
async fn wait_known(server: &str, topic: &str) -> anyhow::Result<()> {
    let admin = strata_client::Admin::new(crate::credentials::connect(server).await?);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match admin.describe_topic(topic).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e)
                    .with_context(|| format!("the proxy does not know {topic} after 30 s"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
