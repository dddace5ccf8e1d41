//! A pool of storage nodes with random replica placement and failover.
//!
//! Every object goes to `replicas` nodes chosen at random among the healthy ones, so the
//! segments of one partition scatter over the whole pool and no node is hot (BMQ). The copies
//! are written in parallel; a node that fails is replaced by another random node and the
//! object is written there ("switch node"), and the failed node sits out a backoff. The nodes
//! that hold the object are returned as a [`Placement`] for the caller to record. Reads try
//! the replicas in random order, healthy nodes first.

mod health;

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use strata_config::{Config, StorageSection};

pub use health::Backoff;
use health::Health;

use crate::backend::{self, BackendOptions};
use crate::error::{Result, StorageError};
use crate::segment::RangeRead;
use strata_clock::{Clock, RandomSource, SystemClock, ThreadRandom, shuffle};

/// Stable name of a storage node, recorded in placements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A configured node: `name=url`, or a bare URL whose name is the URL without its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub id: NodeId,
    pub url: String,
}

impl FromStr for NodeSpec {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self> {
        let (id, url) = match s.split_once('=') {
            Some((name, url)) if !name.contains(':') && !name.contains('/') => {
                (name.trim().to_owned(), url.trim().to_owned())
            }
            _ => (
                s.split('?').next().unwrap_or(s).to_owned(),
                s.trim().to_owned(),
            ),
        };
        if id.is_empty() || url.is_empty() {
            return Err(StorageError::InvalidUrl {
                url: backend::redact(s),
                reason: "a storage node is `name=url` or a URL".into(),
            });
        }
        Ok(Self {
            id: NodeId(id),
            url,
        })
    }
}

/// Where an object's copies live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub nodes: Vec<NodeId>,
}

/// Settings of a node pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub nodes: Vec<NodeSpec>,
    pub replicas: usize,
    pub backoff: Backoff,
    /// A node that takes longer than this for one request is treated as failed.
    pub request_timeout: Duration,
    pub backend: BackendOptions,
}

impl PoolConfig {
    /// `replicas` copies on `nodes`, and the shipped `[storage]` settings otherwise.
    pub fn new(nodes: Vec<NodeSpec>, replicas: usize) -> Self {
        Self {
            replicas,
            ..Self::from_section(nodes, &Config::shipped().storage)
        }
    }

    /// The pool `s` describes, on `nodes` (its `nodes` parsed by the caller).
    pub fn from_section(nodes: Vec<NodeSpec>, s: &StorageSection) -> Self {
        Self {
            nodes,
            replicas: s.replicas,
            backoff: Backoff::from(s),
            request_timeout: Duration::from_millis(s.request_timeout_ms),
            backend: BackendOptions::from(s),
        }
    }
}

#[derive(Debug)]
struct Node {
    id: NodeId,
    store: Arc<dyn ObjectStore>,
    health: Mutex<Health>,
}

/// The health of one node, for metrics and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub healthy: bool,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
}

/// A set of object stores used as one replicated store.
#[derive(Debug)]
pub struct NodePool {
    nodes: Vec<Node>,
    replicas: usize,
    backoff: Backoff,
    request_timeout: Duration,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
}

impl NodePool {
    /// Opens every node's store by URL, with the system clock and randomness.
    pub fn open(config: &PoolConfig) -> Result<Self> {
        let stores = config
            .nodes
            .iter()
            .map(|spec| Ok((spec.id.clone(), backend::open(&spec.url, config.backend)?)))
            .collect::<Result<Vec<_>>>()?;
        Self::from_stores(
            stores,
            config,
            Arc::new(SystemClock),
            Arc::new(ThreadRandom),
        )
    }

    /// Builds a pool over stores opened elsewhere (fault-injecting wrappers in tests).
    pub fn from_stores(
        stores: Vec<(NodeId, Arc<dyn ObjectStore>)>,
        config: &PoolConfig,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self> {
        let invalid = |reason: String| StorageError::InvalidUrl {
            url: "storage.nodes".into(),
            reason,
        };
        if config.replicas == 0 || config.replicas > stores.len() {
            return Err(invalid(format!(
                "storage.replicas is {} but {} nodes are configured; use 1..={}",
                config.replicas,
                stores.len(),
                stores.len()
            )));
        }
        let mut seen = HashSet::new();
        for (id, _) in &stores {
            if !seen.insert(id.clone()) {
                return Err(invalid(format!(
                    "node name `{id}` appears twice; name nodes with name=url"
                )));
            }
        }
        Ok(Self {
            nodes: stores
                .into_iter()
                .map(|(id, store)| Node {
                    id,
                    store,
                    health: Mutex::new(Health::default()),
                })
                .collect(),
            replicas: config.replicas,
            backoff: config.backoff,
            request_timeout: config.request_timeout,
            clock,
            rng,
        })
    }

    /// How long one request to a node may take before the node counts as failed.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The store behind a node, for listing (garbage collection).
    pub fn store(&self, id: &NodeId) -> Option<Arc<dyn ObjectStore>> {
        self.index_of(id).map(|i| self.nodes[i].store.clone())
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    pub fn status(&self) -> Vec<NodeStatus> {
        let now = self.clock.now();
        self.nodes
            .iter()
            .map(|n| {
                let h = n.health.lock().expect("health mutex poisoned");
                NodeStatus {
                    id: n.id.clone(),
                    healthy: h.is_healthy(now),
                    consecutive_failures: h.consecutive_failures(),
                    last_error: h.last_error().map(str::to_owned),
                }
            })
            .collect()
    }

    fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| &n.id == id)
    }

    fn is_healthy(&self, i: usize) -> bool {
        self.nodes[i]
            .health
            .lock()
            .expect("health mutex poisoned")
            .is_healthy(self.clock.now())
    }

    fn record(&self, i: usize, outcome: Result<(), &StorageError>) {
        let mut health = self.nodes[i].health.lock().expect("health mutex poisoned");
        match outcome {
            Ok(()) => health.record_success(),
            Err(e) => {
                tracing::warn!(node = %self.nodes[i].id, error = %e, "storage node failed a request");
                health.record_failure(self.clock.now(), self.backoff, e.to_string());
            }
        }
    }

    /// Untried nodes in the order to try them: healthy ones at random, then the ones sitting
    /// out a backoff, also at random, as a last resort.
    fn candidates(&self, tried: &HashSet<usize>) -> Vec<usize> {
        let (mut healthy, mut resting): (Vec<usize>, Vec<usize>) = (0..self.nodes.len())
            .filter(|i| !tried.contains(i))
            .partition(|&i| self.is_healthy(i));
        shuffle(self.rng.as_ref(), &mut healthy);
        shuffle(self.rng.as_ref(), &mut resting);
        healthy.extend(resting);
        healthy
    }

    async fn timed<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.request_timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Backend(object_store::Error::Generic {
                store: "node pool",
                source: format!("request timed out after {:?}", self.request_timeout).into(),
            })),
        }
    }

    /// Writes `payload` to `replicas` nodes and returns where it went.
    pub async fn put(&self, path: &Path, payload: PutPayload) -> Result<Placement> {
        let mut tried = HashSet::new();
        let mut queue = self.candidates(&tried).into_iter();
        let mut failures = Vec::new();
        let mut written = Vec::new();
        let mut inflight = FuturesUnordered::new();
        let put_on = |i: usize| {
            let payload = payload.clone();
            async move {
                let result = self
                    .timed(async { Ok(self.nodes[i].store.put(path, payload).await?) })
                    .await;
                (i, result.map(|_| ()))
            }
        };
        for i in queue.by_ref().take(self.replicas) {
            tried.insert(i);
            inflight.push(put_on(i));
        }
        while let Some((i, result)) = inflight.next().await {
            self.record(i, result.as_ref().map(|_| ()));
            match result {
                Ok(()) => written.push(i),
                Err(e) => {
                    failures.push(format!("{}: {e}", self.nodes[i].id));
                    if let Some(next) = queue.next() {
                        tracing::info!(failed = %self.nodes[i].id, replacement = %self.nodes[next].id, %path, "switching storage node");
                        tried.insert(next);
                        inflight.push(put_on(next));
                    }
                }
            }
        }
        if written.len() < self.replicas {
            // Copies that did land are orphans now; removing them is best effort, GC catches the rest.
            for &i in &written {
                let _ = self
                    .timed(async { Ok(self.nodes[i].store.delete(path).await?) })
                    .await;
            }
            let healthy = (0..self.nodes.len())
                .filter(|&i| self.is_healthy(i))
                .count();
            return Err(StorageError::InsufficientNodes {
                required: self.replicas,
                healthy,
                total: self.nodes.len(),
                failures: failures.join("; "),
            });
        }
        Ok(Placement {
            nodes: written
                .into_iter()
                .map(|i| self.nodes[i].id.clone())
                .collect(),
        })
    }

    /// Replica indexes of a placement in read order: healthy first, each group shuffled.
    fn read_order(&self, placement: &Placement) -> Result<Vec<usize>> {
        let mut indexes = placement
            .nodes
            .iter()
            .map(|id| {
                self.index_of(id)
                    .ok_or_else(|| StorageError::UnknownNode(id.0.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        shuffle(self.rng.as_ref(), &mut indexes);
        indexes.sort_by_key(|&i| !self.is_healthy(i));
        Ok(indexes)
    }

    /// Runs a read against the replicas in turn until one succeeds.
    async fn read_any<T, F, Fut>(&self, placement: &Placement, path: &Path, read: F) -> Result<T>
    where
        F: Fn(Arc<dyn ObjectStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let order = self.read_order(placement)?;
        let mut failures = Vec::new();
        let mut all_missing = true;
        for &i in &order {
            match self.timed(read(self.nodes[i].store.clone())).await {
                Ok(value) => {
                    self.record(i, Ok(()));
                    return Ok(value);
                }
                Err(e) => {
                    if !matches!(e, StorageError::NotFound(_)) {
                        all_missing = false;
                        self.record(i, Err(&e));
                    }
                    failures.push(format!("{}: {e}", self.nodes[i].id));
                }
            }
        }
        if all_missing {
            return Err(StorageError::NotFound(path.to_string()));
        }
        Err(StorageError::AllReplicasFailed {
            key: path.to_string(),
            tried: order.len(),
            failures: failures.join("; "),
        })
    }

    /// Reads a whole object from any replica.
    pub async fn get(&self, placement: &Placement, path: &Path) -> Result<Bytes> {
        self.read_any(placement, path, |store| async move {
            Ok(store.get(path).await?.bytes().await?)
        })
        .await
    }

    /// Reads a byte range from any replica.
    pub async fn get_range(
        &self,
        placement: &Placement,
        path: &Path,
        range: Range<u64>,
    ) -> Result<Bytes> {
        self.read_any(placement, path, |store| {
            let range = range.clone();
            async move { Ok(store.get_range(path, range).await?) }
        })
        .await
    }

    /// Deletes every copy; copies already gone count as deleted.
    pub async fn delete(&self, placement: &Placement, path: &Path) -> Result<()> {
        let mut failures = Vec::new();
        for id in &placement.nodes {
            let i = self
                .index_of(id)
                .ok_or_else(|| StorageError::UnknownNode(id.0.clone()))?;
            match self
                .timed(async { Ok(self.nodes[i].store.delete(path).await?) })
                .await
            {
                Ok(()) | Err(StorageError::NotFound(_)) => {}
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(StorageError::AllReplicasFailed {
                key: path.to_string(),
                tried: placement.nodes.len(),
                failures: failures.join("; "),
            })
        }
    }

    /// A handle for ranged reads of one placed object (e.g. by a [`crate::SegmentReader`]).
    pub fn object(&self, placement: Placement, path: Path) -> PoolObject<'_> {
        PoolObject {
            pool: self,
            placement,
            path,
        }
    }
}

/// One object in the pool, readable from whichever replica answers.
#[derive(Debug, Clone)]
pub struct PoolObject<'a> {
    pool: &'a NodePool,
    placement: Placement,
    path: Path,
}

#[async_trait]
impl RangeRead for PoolObject<'_> {
    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        self.pool
            .get_range(&self.placement, &self.path, range)
            .await
    }

    async fn read_tail(&self, len: u64) -> Result<(Bytes, u64)> {
        let path = &self.path;
        self.pool
            .read_any(&self.placement, path, |store| async move {
                let options = GetOptions {
                    range: Some(GetRange::Suffix(len)),
                    ..Default::default()
                };
                let result = store.get_opts(path, options).await?;
                let size = result.meta.size;
                Ok((result.bytes().await?, size))
            })
            .await
    }
}
