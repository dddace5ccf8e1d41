//! Leader election on `{prefix}/leader`, built on the trait alone.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use strata_proto::Coded;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Compare, CompareOp, LeaseId, LeaseKeeper, MetaError, MetaStore, Revision, Txn, TxnOp,
    WatchEvent,
};

/// Pause after a failed watch or store call before trying again.
const RETRY: Duration = Duration::from_millis(500);

/// An election among candidates sharing a key prefix.
///
/// The leader is whoever created `{prefix}/leader`; the key is attached to the leader's lease,
/// so it disappears when the leader resigns, dies, or loses contact with the store for a TTL.
/// Candidates wait on a watch of the key and race to create it when it is deleted; the store's
/// create-if-absent transaction lets exactly one of them win.
#[derive(Debug, Clone)]
pub struct Election {
    store: Arc<dyn MetaStore>,
    key: String,
    ttl: Duration,
}

/// Who leads, as stored in the leader key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// What the leader put in the key (its id or address).
    pub value: Bytes,
    /// The create revision of the leader key: a term number, larger for every new leader.
    pub revision: Revision,
    /// The leader's lease.
    pub lease: Option<LeaseId>,
}

impl Election {
    /// An election on `{prefix}/leader` whose leaders hold leases of `ttl`.
    pub fn new(store: Arc<dyn MetaStore>, prefix: &str, ttl: Duration) -> Election {
        let key = format!("{}/leader", prefix.trim_end_matches('/'));
        Election { store, key, ttl }
    }

    /// The leader key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The current leader, if any. To follow changes, watch [`key`](Self::key).
    pub async fn leader(&self) -> Result<Option<LeaderInfo>, MetaError> {
        Ok(self.store.get(&self.key).await?.map(|kv| LeaderInfo {
            value: kv.value,
            revision: kv.create_revision,
            lease: kv.lease,
        }))
    }

    /// Waits until this candidate leads, with `value` in the leader key.
    ///
    /// Retries transient store errors itself; returns only on success or a non-retriable
    /// error. Dropping the future gives up the candidacy; a lease granted for an attempt in
    /// flight then ends after one TTL.
    pub async fn campaign(&self, value: impl Into<Bytes>) -> Result<Leadership, MetaError> {
        let value = value.into();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.try_once(&value).await {
                Ok(Ok(leadership)) => return Ok(leadership),
                Ok(Err(seen)) => {
                    backoff = Duration::from_millis(100);
                    self.wait_for_vacancy(seen + 1).await;
                }
                Err(e) if e.is_retriable() => {
                    tracing::warn!(key = %self.key, error = %e, "campaign attempt failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.ttl);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt: `Ok(Ok(_))` if won, `Ok(Err(rev))` if someone else holds the key, last
    /// changed at `rev`.
    async fn try_once(&self, value: &Bytes) -> Result<Result<Leadership, Revision>, MetaError> {
        // Standbys mostly find the key taken; check before paying for a lease.
        if let Some(kv) = self.store.get(&self.key).await? {
            return Ok(Err(kv.mod_revision));
        }
        let keeper = LeaseKeeper::start(self.store.clone(), self.ttl).await?;
        let txn = Txn::new()
            .when([Compare::absent(&self.key)])
            .and_then([TxnOp::put_with_lease(
                &self.key,
                value.clone(),
                keeper.lease_id(),
            )])
            .or_else([TxnOp::get(&self.key)]);
        let result = match self.store.txn(txn).await {
            Ok(result) => result,
            Err(e) => {
                let _ = keeper.shutdown().await;
                return Err(e);
            }
        };
        if result.succeeded {
            tracing::info!(key = %self.key, term = result.revision, "won leadership");
            let leadership = Leadership::start(
                self.store.clone(),
                self.key.clone(),
                value.clone(),
                result.revision,
                keeper,
            );
            return Ok(Ok(leadership));
        }
        let _ = keeper.shutdown().await;
        let seen = result
            .gets
            .into_iter()
            .flatten()
            .next()
            .map_or(result.revision, |kv| kv.mod_revision);
        Ok(Err(seen))
    }

    /// Returns once the leader key is deleted at or after revision `from`, or the watch fails
    /// (the caller then looks at the key again).
    async fn wait_for_vacancy(&self, from: Revision) {
        let mut events = match self.store.watch_prefix(&self.key, Some(from)).await {
            Ok(events) => events,
            Err(e) => {
                tracing::debug!(key = %self.key, error = %e, "cannot watch the leader key");
                tokio::time::sleep(RETRY).await;
                return;
            }
        };
        while let Some(event) = events.next().await {
            match event {
                Ok(WatchEvent::Delete { key, .. }) if key == self.key => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(key = %self.key, error = %e, "leader key watch ended");
                    tokio::time::sleep(RETRY).await;
                    return;
                }
            }
        }
    }
}

/// Held by the leader. Its task watches the leader key and the lease and reports the end of
/// the term through [`lost`](Self::lost): the key was deleted or replaced, or the lease ended.
///
/// Learning about a loss takes a moment, so a leader should also guard its writes with
/// [`fence`](Self::fence), which fails them once another term has begun.
/// Dropping a `Leadership` without [`resign`](Self::resign) behaves like a crash: the key goes
/// away when the lease runs out.
#[derive(Debug)]
pub struct Leadership {
    store: Arc<dyn MetaStore>,
    key: String,
    value: Bytes,
    revision: Revision,
    lease: LeaseId,
    keeper: Option<LeaseKeeper>,
    lost: CancellationToken,
    stop: CancellationToken,
    monitor: Option<JoinHandle<()>>,
}

impl Leadership {
    fn start(
        store: Arc<dyn MetaStore>,
        key: String,
        value: Bytes,
        revision: Revision,
        keeper: LeaseKeeper,
    ) -> Leadership {
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let monitor = tokio::spawn(monitor(
            store.clone(),
            key.clone(),
            revision,
            keeper.lost_token(),
            lost.clone(),
            stop.clone(),
        ));
        let lease = keeper.lease_id();
        Leadership {
            store,
            key,
            value,
            revision,
            lease,
            keeper: Some(keeper),
            lost,
            stop,
            monitor: Some(monitor),
        }
    }

    /// The term: the create revision of the leader key.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The value this leader stored.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// The leader key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lease the leader key is attached to.
    pub fn lease_id(&self) -> LeaseId {
        self.lease
    }

    /// A compare that holds only while this term lasts; add it to a transaction to make the
    /// write fail if leadership has moved on.
    pub fn fence(&self) -> Compare {
        Compare::create_revision(&self.key, CompareOp::Equal, self.revision)
    }

    /// Whether the term has ended.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Completes when the term ends (not after [`resign`](Self::resign)).
    pub async fn lost(&self) {
        self.lost.cancelled().await;
    }

    /// A token cancelled when the term ends; cancelling it does not affect the leadership.
    pub fn lost_token(&self) -> CancellationToken {
        self.lost.child_token()
    }

    /// Steps down: deletes the leader key (if it is still this term's) and revokes the lease,
    /// so another candidate can win at once.
    pub async fn resign(mut self) -> Result<(), MetaError> {
        self.stop.cancel();
        if let Some(monitor) = self.monitor.take() {
            let _ = monitor.await;
        }
        let txn = Txn::new()
            .when([self.fence()])
            .and_then([TxnOp::delete(&self.key)]);
        let deleted = self.store.txn(txn).await;
        let revoked = match self.keeper.take() {
            Some(keeper) => keeper.shutdown().await,
            None => Ok(()),
        };
        tracing::info!(key = %self.key, term = self.revision, "resigned leadership");
        deleted.and(revoked)
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(monitor) = self.monitor.take() {
            monitor.abort();
        }
    }
}

async fn monitor(
    store: Arc<dyn MetaStore>,
    key: String,
    term: Revision,
    lease_lost: CancellationToken,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let mut from = term + 1;
    let mut recheck = false;
    let reason = 'term: loop {
        if recheck {
            // Something ended the last watch. Pause so a failing store is not hammered, then
            // look at the key itself: a delete may have happened while nobody watched.
            let checked = tokio::select! {
                () = stop.cancelled() => return,
                () = lease_lost.cancelled() => break "lease lost",
                checked = async {
                    tokio::time::sleep(RETRY / 5).await;
                    still_leader(store.as_ref(), &key, term).await
                } => checked,
            };
            match checked {
                Ok(Some(read_at)) => from = read_at + 1,
                Ok(None) => break "leader key deleted or replaced",
                Err(e) => {
                    // The lease keeper declares the loss if the store stays unreachable.
                    tracing::debug!(%key, error = %e, "cannot check the leader key");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = lease_lost.cancelled() => break "lease lost",
                        () = tokio::time::sleep(RETRY) => continue,
                    }
                }
            }
        }
        recheck = true;
        let mut events = tokio::select! {
            () = stop.cancelled() => return,
            () = lease_lost.cancelled() => break "lease lost",
            watch = store.watch_prefix(&key, Some(from)) => match watch {
                Ok(events) => events,
                Err(e) => {
                    tracing::debug!(%key, error = %e, "cannot watch the leader key");
                    continue;
                }
            },
        };
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                () = lease_lost.cancelled() => break 'term "lease lost",
                event = events.next() => event,
            };
            match event {
                Some(Ok(WatchEvent::Delete { key: k, .. })) if k == key => {
                    break 'term "leader key deleted";
                }
                Some(Ok(WatchEvent::Put(kv))) if kv.key == key && kv.create_revision != term => {
                    break 'term "leader key replaced";
                }
                Some(Ok(event)) => from = event.revision() + 1,
                Some(Err(e)) => {
                    tracing::debug!(%key, error = %e, "leader key watch ended");
                    continue 'term;
                }
                None => continue 'term,
            }
        }
    };
    tracing::warn!(%key, term, reason, "leadership lost");
    lost.cancel();
}

/// `Some(read revision)` if the key still belongs to `term`.
async fn still_leader(
    store: &dyn MetaStore,
    key: &str,
    term: Revision,
) -> Result<Option<Revision>, MetaError> {
    let (kvs, read_at) = store.range(key).await?;
    let ours = kvs
        .iter()
        .any(|kv| kv.key == key && kv.create_revision == term);
    Ok(ours.then_some(read_at))
}
