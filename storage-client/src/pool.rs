//! A pool of storage nodes with random replica placement, zones, failover and hedging.
//!
//! Every object goes to `replicas` nodes chosen at random among the healthy ones, in distinct
//! zones when the nodes name theirs, so the segments of one partition scatter over the whole
//! pool and no node is hot (BMQ). The copies are written in parallel; a node that fails is
//! replaced by another random node and the object is written there ("switch node"), and the
//! failed node sits out a backoff. A copy that runs past twice its node's recent p99 is
//! started on a spare node too (hedged), and the first R copies to land win. The nodes that
//! hold the object are returned as a [`Placement`] for the caller to record. Reads try the
//! replicas healthy and same-zone first, and hedge the same way.

mod health;
mod hedge;
mod latency;
mod metrics;
mod placement;
mod read;
mod write;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use strata_config::{Config, StorageSection};
use tokio::task::JoinSet;

pub use health::Backoff;
use health::Health;
use hedge::Budget;
pub use hedge::Hedging;
use latency::Latencies;
use metrics::PoolMetrics;
pub use read::PoolObject;

use crate::backend::{self, BackendOptions};
use crate::error::{Result, StorageError};
use strata_clock::{Clock, RandomSource, SystemClock, ThreadRandom};

/// Stable name of a storage node, recorded in placements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A configured node: `name=url`, `name@zone=url`, or a bare URL whose name is the URL
/// without its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub id: NodeId,
    pub zone: Option<String>,
    pub url: String,
}

impl FromStr for NodeSpec {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: backend::redact(s),
            reason: reason.into(),
        };
        let (name, url) = match s.split_once('=') {
            Some((name, url)) if !name.contains(':') && !name.contains('/') => {
                (name.trim(), url.trim().to_owned())
            }
            _ => (s.split('?').next().unwrap_or(s), s.trim().to_owned()),
        };
        let (id, zone) = match name.split_once('@') {
            Some((id, zone)) => {
                if !is_valid_zone(zone) {
                    return Err(invalid(
                        "a zone is letters, digits, `-`, `_` and `.`, as in name@zone-a=url",
                    ));
                }
                (id.to_owned(), Some(zone.to_owned()))
            }
            None => (name.to_owned(), None),
        };
        if id.is_empty() || url.is_empty() {
            return Err(invalid(
                "a storage node is `name=url`, `name@zone=url` or a URL",
            ));
        }
        Ok(Self {
            id: NodeId(id),
            zone,
            url,
        })
    }
}

/// A zone name: letters, digits, `-`, `_` and `.`, not empty.
pub fn is_valid_zone(zone: &str) -> bool {
    !zone.is_empty()
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
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
    pub hedging: Hedging,
    /// The zone of the process using the pool: its replicas are read first.
    pub local_zone: Option<String>,
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
            hedging: Hedging::from(s),
            local_zone: None,
            backend: BackendOptions::from(s),
        }
    }
}

/// The two kinds of request whose latencies are tracked and hedged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Get,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
        }
    }
}

/// A node whose oldest running request has run this long, and four times its usual write
/// latency, is passed over for new requests until that request ends: it has most likely
/// vanished (a killed container, a cut link), and its failure only shows at the timeout.
const STUCK_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Node {
    id: NodeId,
    zone: Option<String>,
    store: Arc<dyn ObjectStore>,
    health: Mutex<Health>,
    /// Put and get latencies, by [`Op`].
    latencies: Mutex<[Latencies; 2]>,
    /// Requests running now, by id: when each started.
    running: Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    next_id: u64,
    started: BTreeMap<u64, tokio::time::Instant>,
}

/// A request running on a node, from when it is sent until it ends or is dropped.
struct InFlight {
    node: Arc<Node>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.node
            .running
            .lock()
            .expect("running mutex poisoned")
            .started
            .remove(&self.id);
    }
}

impl Node {
    fn begin(self: &Arc<Self>) -> InFlight {
        let mut running = self.running.lock().expect("running mutex poisoned");
        let id = running.next_id;
        running.next_id += 1;
        running.started.insert(id, tokio::time::Instant::now());
        InFlight {
            node: self.clone(),
            id,
        }
    }

    /// How long the oldest running request has run.
    fn oldest_running(&self) -> Option<Duration> {
        let running = self.running.lock().expect("running mutex poisoned");
        running.started.values().min().map(|t| t.elapsed())
    }

    fn p99(&self, op: Op) -> Option<Duration> {
        self.latencies.lock().expect("latency mutex poisoned")[op as usize].p99()
    }

    /// Records a finished request: its latency when it succeeded, and the node's health.
    fn note(
        &self,
        op: Op,
        took: Duration,
        outcome: Result<(), &StorageError>,
        now: Instant,
        backoff: Backoff,
    ) {
        if outcome.is_ok() {
            self.latencies.lock().expect("latency mutex poisoned")[op as usize].record(took);
        }
        let mut health = self.health.lock().expect("health mutex poisoned");
        match outcome {
            Ok(()) => health.record_success(),
            Err(e) => {
                tracing::warn!(node = %self.id, error = %e, "storage node failed a request");
                health.record_failure(now, backoff, e.to_string());
            }
        }
    }
}

/// The health of one node, for metrics and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub zone: Option<String>,
    pub healthy: bool,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
}

/// A set of object stores used as one replicated store.
#[derive(Debug)]
pub struct NodePool {
    nodes: Vec<Arc<Node>>,
    /// Distinct zones named by the nodes; 0 when none names one.
    zone_count: usize,
    replicas: usize,
    backoff: Backoff,
    request_timeout: Duration,
    hedging: Hedging,
    /// Hedge budgets by [`Op`].
    budgets: Mutex<[Budget; 2]>,
    local_zone: Option<String>,
    metrics: Arc<PoolMetrics>,
    /// Hedged writes' losing copies, finishing and being deleted; aborted with the pool.
    cleanup: Mutex<JoinSet<()>>,
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

    /// Builds a pool over stores opened elsewhere (fault-injecting wrappers in tests). A
    /// store's zone is that of the spec of the same name in `config.nodes`, if any.
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
        let zone_of = |id: &NodeId| {
            config
                .nodes
                .iter()
                .find(|spec| &spec.id == id)
                .and_then(|spec| spec.zone.clone())
        };
        let nodes: Vec<Arc<Node>> = stores
            .into_iter()
            .map(|(id, store)| {
                Arc::new(Node {
                    zone: zone_of(&id),
                    id,
                    store,
                    health: Mutex::new(Health::default()),
                    latencies: Mutex::default(),
                    running: Mutex::default(),
                })
            })
            .collect();
        let zone_count = nodes
            .iter()
            .filter_map(|n| n.zone.as_deref())
            .collect::<HashSet<_>>()
            .len();
        Ok(Self {
            nodes,
            zone_count,
            replicas: config.replicas,
            backoff: config.backoff,
            request_timeout: config.request_timeout,
            hedging: config.hedging,
            budgets: Mutex::default(),
            local_zone: config.local_zone.clone(),
            metrics: Arc::default(),
            cleanup: Mutex::new(JoinSet::new()),
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

    /// The zone a node named in its spec, if it is in the pool and named one.
    pub fn zone_of(&self, id: &NodeId) -> Option<&str> {
        self.index_of(id)
            .and_then(|i| self.nodes[i].zone.as_deref())
    }

    pub fn status(&self) -> Vec<NodeStatus> {
        let now = self.clock.now();
        self.nodes
            .iter()
            .map(|n| {
                let h = n.health.lock().expect("health mutex poisoned");
                NodeStatus {
                    id: n.id.clone(),
                    zone: n.zone.clone(),
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

    /// Not sitting out a backoff, and not stuck on a request (see [`STUCK_AFTER`]).
    fn is_healthy(&self, i: usize) -> bool {
        let node = &self.nodes[i];
        let rested = node
            .health
            .lock()
            .expect("health mutex poisoned")
            .is_healthy(self.clock.now());
        // A node's p99 is computed only for a request old enough to be stuck at all: most
        // calls see none running past the one-second floor.
        rested
            && node.oldest_running().is_none_or(|age| {
                age <= STUCK_AFTER || age <= 4 * self.hedging.delay(node.p99(Op::Put))
            })
    }

    fn note(&self, i: usize, op: Op, took: Duration, outcome: Result<(), &StorageError>) {
        self.nodes[i].note(op, took, outcome, self.clock.now(), self.backoff);
    }

    /// Counts a request of `op` (not a hedge): it earns its share of the hedging budget.
    fn sent(&self, op: Op) {
        self.metrics.request(op);
        self.budgets.lock().expect("budget mutex poisoned")[op as usize].earn(&self.hedging);
    }

    /// Takes a hedge of `op` from its budget, counting a refusal.
    fn take_hedge(&self, op: Op) -> bool {
        let taken = self.budgets.lock().expect("budget mutex poisoned")[op as usize]
            .try_take(&self.hedging);
        if !taken {
            self.metrics.over_budget(op);
        }
        taken
    }

    /// Deletes every copy; copies already gone count as deleted.
    pub async fn delete(&self, placement: &Placement, path: &Path) -> Result<()> {
        let mut failures = Vec::new();
        for id in &placement.nodes {
            let i = self
                .index_of(id)
                .ok_or_else(|| StorageError::UnknownNode(id.0.clone()))?;
            let store = &self.nodes[i].store;
            match with_timeout(self.request_timeout, async {
                Ok(store.delete(path).await?)
            })
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
}

/// Sleeps until `at`, or forever when there is nothing to wait for (no hedge due).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `fut`, failed as the node's failure when it runs longer than `timeout`.
async fn with_timeout<T>(timeout: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(StorageError::Backend(object_store::Error::Generic {
            store: "node pool",
            source: format!("request timed out after {timeout:?}").into(),
        })),
    }
}
