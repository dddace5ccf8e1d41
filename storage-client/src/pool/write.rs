//! Writing an object's R copies: random placement over zones, switching nodes on failure,
//! and hedging a copy that runs longer than its node usually takes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::time::Instant;

use super::{Node, NodePool, Op, Placement, sleep_until, with_timeout};
use crate::error::{Result, StorageError};

/// One copy's attempt, finished.
struct Landed {
    node: usize,
    hedge: bool,
    took: Duration,
    result: Result<()>,
}

/// A copy being written, and when to hedge it (`None`: not to be hedged, or hedged already).
struct Copying {
    node: usize,
    hedge_at: Option<Instant>,
}

/// The state of one object's write.
struct Write<'a> {
    pool: &'a NodePool,
    path: &'a Path,
    payload: PutPayload,
    tried: HashSet<usize>,
    running: Vec<Copying>,
    written: Vec<usize>,
    failures: Vec<String>,
    inflight: FuturesUnordered<BoxFuture<'static, Landed>>,
}

impl<'a> Write<'a> {
    /// Nodes that hold a copy or are writing one.
    fn holding(&self) -> Vec<usize> {
        self.written
            .iter()
            .copied()
            .chain(self.running.iter().map(|r| r.node))
            .collect()
    }

    fn start(&mut self, node: usize, hedge: bool) {
        let pool = self.pool;
        self.tried.insert(node);
        if hedge {
            pool.metrics.request(Op::Put);
        } else {
            pool.sent(Op::Put);
        }
        let hedge_at = (pool.hedging.is_on() && !hedge)
            .then(|| Instant::now() + pool.hedging.delay(pool.nodes[node].p99(Op::Put)));
        self.running.push(Copying { node, hedge_at });
        let (store, path, payload) = (
            pool.nodes[node].store.clone(),
            self.path.clone(),
            self.payload.clone(),
        );
        let timeout = pool.request_timeout;
        let in_flight = pool.nodes[node].begin();
        self.inflight.push(
            async move {
                let _in_flight = in_flight;
                let started = Instant::now();
                let result = with_timeout(timeout, async {
                    store.put(&path, payload).await?;
                    Ok(())
                })
                .await;
                Landed {
                    node,
                    hedge,
                    took: started.elapsed(),
                    result,
                }
            }
            .boxed(),
        );
    }

    fn landed(&mut self, landed: Landed) {
        let pool = self.pool;
        self.running.retain(|r| r.node != landed.node);
        pool.note(
            landed.node,
            Op::Put,
            landed.took,
            landed.result.as_ref().map(|_| ()),
        );
        match landed.result {
            Ok(()) => {
                if landed.hedge {
                    pool.metrics.hedge_won(Op::Put);
                }
                self.written.push(landed.node);
            }
            Err(e) => {
                self.failures
                    .push(format!("{}: {e}", pool.nodes[landed.node].id));
                if self.written.len() + self.running.len() < pool.replicas
                    && let Some(next) = pool.pick(&self.tried, &self.holding(), false)
                {
                    tracing::info!(failed = %pool.nodes[landed.node].id, replacement = %pool.nodes[next].id, path = %self.path, "switching storage node");
                    self.start(next, false);
                }
            }
        }
    }

    /// Starts a spare copy for every running copy whose time has come, while the budget lasts.
    fn hedge_due(&mut self, now: Instant) {
        let pool = self.pool;
        let due: Vec<usize> = self
            .running
            .iter_mut()
            .filter(|r| r.hedge_at.is_some_and(|t| t <= now))
            .map(|r| {
                r.hedge_at = None;
                r.node
            })
            .collect();
        for slow in due {
            let Some(spare) = pool.pick(&self.tried, &self.holding(), true) else {
                return;
            };
            if !pool.take_hedge(Op::Put) {
                return;
            }
            tracing::debug!(slow = %pool.nodes[slow].id, spare = %pool.nodes[spare].id, path = %self.path, "hedging a slow storage write");
            pool.metrics.hedge(Op::Put);
            self.start(spare, true);
        }
    }

    fn next_hedge(&self) -> Option<Instant> {
        self.running.iter().filter_map(|r| r.hedge_at).min()
    }
}

impl NodePool {
    /// Writes `payload` to `replicas` nodes and returns where it went.
    pub async fn put(&self, path: &Path, payload: PutPayload) -> Result<Placement> {
        let mut w = Write {
            pool: self,
            path,
            payload,
            tried: HashSet::new(),
            running: Vec::new(),
            written: Vec::new(),
            failures: Vec::new(),
            inflight: FuturesUnordered::new(),
        };
        for _ in 0..self.replicas {
            if let Some(i) = self.pick(&w.tried, &w.holding(), false) {
                w.start(i, false);
            }
        }
        while w.written.len() < self.replicas && !w.inflight.is_empty() {
            let next_hedge = w.next_hedge();
            tokio::select! {
                // A request that lands as its hedge falls due needs no hedge.
                biased;
                Some(landed) = w.inflight.next() => w.landed(landed),
                () = sleep_until(next_hedge) => w.hedge_due(Instant::now()),
            }
        }
        if w.written.len() < self.replicas {
            // Copies that did land are orphans now; removing them is best effort, GC catches the rest.
            for &i in &w.written {
                let store = &self.nodes[i].store;
                let _ = with_timeout(self.request_timeout, async {
                    Ok(store.delete(path).await?)
                })
                .await;
            }
            let healthy = (0..self.nodes.len())
                .filter(|&i| self.is_healthy(i))
                .count();
            return Err(StorageError::InsufficientNodes {
                required: self.replicas,
                healthy,
                total: self.nodes.len(),
                failures: w.failures.join("; "),
            });
        }
        if !w.inflight.is_empty() {
            self.delete_losers(path.clone(), std::mem::take(&mut w.inflight));
        }
        self.check_zone_spread(&w.written, path);
        Ok(Placement {
            nodes: w
                .written
                .into_iter()
                .map(|i| self.nodes[i].id.clone())
                .collect(),
        })
    }

    /// Lets the copies still running after a write was decided finish, in a task the pool owns,
    /// and deletes each that landed: it is on a node the placement does not name. Their
    /// outcomes still count for their nodes' health and latency.
    fn delete_losers(&self, path: Path, mut losers: FuturesUnordered<BoxFuture<'static, Landed>>) {
        let nodes: Vec<Arc<Node>> = self.nodes.clone();
        let (clock, backoff, timeout, metrics) = (
            self.clock.clone(),
            self.backoff,
            self.request_timeout,
            self.metrics.clone(),
        );
        let mut cleanup = self.cleanup.lock().expect("cleanup mutex poisoned");
        while cleanup.try_join_next().is_some() {}
        cleanup.spawn(async move {
            while let Some(landed) = losers.next().await {
                let node = &nodes[landed.node];
                let outcome = landed.result.as_ref().map(|_| ());
                node.note(Op::Put, landed.took, outcome, clock.now(), backoff);
                if landed.result.is_ok() {
                    let store: &Arc<dyn ObjectStore> = &node.store;
                    match with_timeout(timeout, async { Ok(store.delete(&path).await?) }).await {
                        Ok(()) => {
                            metrics.hedge_copies_deleted.inc();
                        }
                        // The orphan sweep removes it later: no committed record names this copy.
                        Err(e) => {
                            tracing::debug!(node = %node.id, %path, error = %e, "could not delete a hedged write's spare copy");
                        }
                    }
                }
            }
        });
    }
}
