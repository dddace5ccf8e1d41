//! Reading an object from any of its replicas: the nearest healthy one first, the next one
//! at once when a read fails, and a hedge when a read runs longer than its node usually takes.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::time::Instant;

use super::sleep_until;
use super::{NodePool, Op, Placement, with_timeout};
use crate::error::{Result, StorageError};
use crate::segment::RangeRead;

impl NodePool {
    /// Runs `read` against the replicas until one succeeds.
    async fn read_any<T, F, Fut>(&self, placement: &Placement, path: &Path, read: F) -> Result<T>
    where
        F: Fn(Arc<dyn ObjectStore>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let order = self.read_order(placement)?;
        let mut untried = order.iter().copied().peekable();
        let mut inflight = FuturesUnordered::new();
        let mut failures = Vec::new();
        let mut all_missing = true;
        let first = order.first().copied();
        let mut hedge_at = None;
        let start = |i: usize, hedge: bool, inflight: &mut FuturesUnordered<_>| {
            if hedge {
                self.metrics.request(Op::Get);
            } else {
                self.sent(Op::Get);
            }
            let fut = read(self.nodes[i].store.clone());
            let timeout = self.request_timeout;
            let in_flight = self.nodes[i].begin();
            inflight.push(async move {
                let _in_flight = in_flight;
                let started = Instant::now();
                let result = with_timeout(timeout, fut).await;
                (i, started.elapsed(), result)
            });
            (self.hedging.is_on())
                .then(|| Instant::now() + self.hedging.delay(self.nodes[i].p99(Op::Get)))
        };
        if let Some(i) = untried.next() {
            hedge_at = start(i, false, &mut inflight);
        }
        while !inflight.is_empty() {
            tokio::select! {
                // A request that lands as its hedge falls due needs no hedge.
                biased;
                Some((i, took, result)) = inflight.next() => match result {
                    Ok(value) => {
                        self.note(i, Op::Get, took, Ok(()));
                        if Some(i) != first {
                            self.metrics.hedge_won(Op::Get);
                        }
                        return Ok(value);
                    }
                    Err(e) => {
                        // A missing copy may have been removed on purpose: not the node's fault.
                        if !matches!(e, StorageError::NotFound(_)) {
                            all_missing = false;
                            self.note(i, Op::Get, took, Err(&e));
                        }
                        failures.push(format!("{}: {e}", self.nodes[i].id));
                        if let Some(next) = untried.next() {
                            hedge_at = start(next, false, &mut inflight);
                        }
                    }
                },
                () = sleep_until(hedge_at) => {
                    hedge_at = None;
                    let spare = untried.next_if(|&i| self.is_healthy(i));
                    if let Some(spare) = spare
                        && self.take_hedge(Op::Get)
                    {
                        tracing::debug!(spare = %self.nodes[spare].id, %path, "hedging a slow storage read");
                        self.metrics.hedge(Op::Get);
                        hedge_at = start(spare, true, &mut inflight);
                    }
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
