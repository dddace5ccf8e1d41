//! The embedded backend: etcd's data model in one process, persisted in a directory.
//!
//! Writes are decided against the in-memory state, appended to the log and fsynced, and only
//! then applied, so nothing a caller has seen can be lost by a crash. `docs/meta.md` describes
//! the files and the recovery rules.

mod codec;
mod files;
mod state;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::codec::{Mutation, Record};
use self::files::{DirLock, Wal};
use self::state::State;
use crate::txn::{validate_delete_prefix, validate_key};
use crate::{
    DEFAULT_MAX_TXN_OPS, KeyValue, LeaseId, MetaError, MetaStore, Revision, Txn, TxnOp, TxnResult,
    WatchStream, check_max_txn_ops, ttl_seconds,
};

/// Tuning of [`EmbeddedStore`].
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How many recent events are kept for watches to resume from; a watch that starts (or
    /// falls) further back gets [`MetaError::Compacted`]. At least 1.
    pub history_events: usize,
    /// When the log grows past this many bytes, the state is written to a snapshot and the log
    /// starts over, so recovery reads at most about this much log.
    pub snapshot_log_bytes: u64,
    /// The most compares, or operations per branch, of one transaction, as etcd's
    /// `--max-txn-ops`; within `DEFAULT_MAX_TXN_OPS..=MAX_TXN_OPS_CEILING`.
    pub max_txn_ops: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            history_events: 10_000,
            snapshot_log_bytes: 8 * 1024 * 1024,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
        }
    }
}

/// A [`MetaStore`] for a single process (`strata standalone`), persisted in a directory that
/// only one store may have open at a time.
///
/// Leases do not survive a restart: opening the store deletes every key attached to a lease,
/// as etcd would once their TTLs ran out while everyone was down.
#[derive(Debug)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    expiry_stop: CancellationToken,
    expiry_task: JoinHandle<()>,
    max_txn_ops: usize,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    snapshot_log_bytes: u64,
    /// Serializes writers; taken before `state`. Held across the fsync so the log order is
    /// the revision order, while readers only wait for `state`.
    writer: Mutex<Writer>,
    state: Mutex<State>,
    /// The current revision, for watches to wait on.
    revision: tokio::sync::watch::Sender<Revision>,
    /// Wakes the expiry task when a lease with an earlier deadline appears.
    lease_granted: Arc<Notify>,
    _lock: DirLock,
}

#[derive(Debug)]
struct Writer {
    wal: Wal,
    next_snapshot_at: u64,
}

impl EmbeddedStore {
    /// Opens the store in `dir` (created if missing), replaying its snapshot and log.
    ///
    /// Fails with [`MetaError::Locked`] if the directory is in use and [`MetaError::Corrupt`]
    /// if a file is damaged anywhere but in a torn last log record, which is dropped.
    pub async fn open(
        dir: impl Into<PathBuf>,
        options: EmbeddedOptions,
    ) -> Result<EmbeddedStore, MetaError> {
        let dir = dir.into();
        let max_txn_ops = check_max_txn_ops(options.max_txn_ops)?;
        let inner = tokio::task::spawn_blocking(move || Inner::recover(dir, options))
            .await
            .map_err(|e| MetaError::Backend(format!("embedded store recovery panicked: {e}")))??;
        let inner = Arc::new(inner);
        let expiry_stop = CancellationToken::new();
        let expiry_task = tokio::spawn(expire_leases(
            Arc::downgrade(&inner),
            inner.lease_granted.clone(),
            expiry_stop.clone(),
        ));
        Ok(EmbeddedStore {
            inner,
            expiry_stop,
            expiry_task,
            max_txn_ops,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs a write on the blocking pool: it waits for an fsync.
    async fn write<T: Send + 'static>(
        &self,
        decide: impl FnOnce(&mut State) -> Result<(T, Vec<Mutation>), MetaError> + Send + 'static,
    ) -> Result<(T, Revision), MetaError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.commit(decide))
            .await
            .map_err(|e| MetaError::Backend(format!("embedded store write panicked: {e}")))?
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.expiry_stop.cancel();
        self.expiry_task.abort();
    }
}

impl Inner {
    fn recover(dir: PathBuf, options: EmbeddedOptions) -> Result<Inner, MetaError> {
        std::fs::create_dir_all(&dir).map_err(|e| MetaError::io("create directory", &dir, e))?;
        let lock = DirLock::acquire(&dir)?;
        files::remove_temporaries(&dir)?;
        let history = options.history_events;
        let (mut state, snapshot_revision) = match files::read_snapshot(&dir)? {
            Some((revision, kvs)) => (
                State::from_snapshot(revision, kvs, history, revision + 1),
                revision,
            ),
            None => (State::new(history), 0),
        };
        let (mut wal, records) = Wal::open(&dir)?;
        let replayed = records.len();
        for record in records {
            // A crash between writing a snapshot and resetting the log leaves records the
            // snapshot already holds.
            if record.revision <= snapshot_revision {
                continue;
            }
            state
                .apply(record)
                .map_err(|detail| MetaError::corrupt(dir.join(files::WAL_FILE), detail))?;
        }
        let expired = state.leased_keys();
        if !expired.is_empty() {
            tracing::info!(
                keys = expired.len(),
                "deleting keys of leases from before the restart; leases do not survive it"
            );
            let record = Record {
                revision: state.revision() + 1,
                mutations: expired,
            };
            wal.append(&record)?;
            state.apply(record).map_err(MetaError::Backend)?;
        }
        tracing::info!(
            dir = %dir.display(), revision = state.revision(), keys = state.len(),
            replayed_records = replayed, "opened embedded metadata store"
        );
        let next_snapshot_at = wal.len().max(1) + options.snapshot_log_bytes;
        let revision = tokio::sync::watch::Sender::new(state.revision());
        Ok(Inner {
            dir,
            snapshot_log_bytes: options.snapshot_log_bytes,
            writer: Mutex::new(Writer {
                wal,
                next_snapshot_at,
            }),
            state: Mutex::new(state),
            revision,
            lease_granted: Arc::new(Notify::new()),
            _lock: lock,
        })
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, MetaError> {
        self.state.lock().map_err(|_| poisoned())
    }

    /// Decide, log, apply. `decide` sees the state under the lock and returns its answer plus
    /// the mutations to commit; an empty list commits nothing and keeps the revision.
    fn commit<T>(
        &self,
        decide: impl FnOnce(&mut State) -> Result<(T, Vec<Mutation>), MetaError>,
    ) -> Result<(T, Revision), MetaError> {
        let mut writer = self.writer.lock().map_err(|_| poisoned())?;
        writer.wal.check_writable()?;
        let (answer, mutations, revision) = {
            let mut state = self.state()?;
            let (answer, mutations) = decide(&mut state)?;
            (answer, mutations, state.revision())
        };
        if mutations.is_empty() {
            return Ok((answer, revision));
        }
        let record = Record {
            revision: revision + 1,
            mutations,
        };
        writer.wal.append(&record)?;
        let mut state = self.state()?;
        if let Err(detail) = state.apply(record) {
            writer.wal.fail(detail.clone());
            return Err(MetaError::Backend(detail));
        }
        let revision = state.revision();
        self.revision.send_replace(revision);
        if writer.wal.len() >= writer.next_snapshot_at {
            let snapshot = codec::encode_snapshot(revision, state.len(), state.kvs());
            drop(state);
            self.snapshot(&mut writer, &snapshot, revision);
        }
        Ok((answer, revision))
    }

    fn snapshot(&self, writer: &mut Writer, snapshot: &[u8], revision: Revision) {
        let log_bytes = writer.wal.len();
        match files::write_snapshot(&self.dir, snapshot).and_then(|()| writer.wal.reset()) {
            Ok(()) => {
                tracing::info!(
                    revision,
                    snapshot_bytes = snapshot.len(),
                    log_bytes,
                    "wrote metadata snapshot"
                );
                writer.next_snapshot_at = writer.wal.len() + self.snapshot_log_bytes;
            }
            Err(e) => {
                // The log still holds everything; try again after it has grown some more.
                tracing::warn!(error = %e, revision, "metadata snapshot failed");
                writer.next_snapshot_at = log_bytes + self.snapshot_log_bytes;
            }
        }
    }

    fn expire_due(&self) -> Result<(), MetaError> {
        let ((), revision) = self.commit(|state| {
            let (leases, deletes) = state.expire(Instant::now());
            for lease in &leases {
                tracing::info!(lease = %format!("{lease:x}"), "lease expired");
            }
            Ok(((), deletes))
        })?;
        tracing::trace!(revision, "lease expiry pass done");
        Ok(())
    }
}

fn poisoned() -> MetaError {
    MetaError::Backend("embedded store state poisoned by an earlier panic; reopen the store".into())
}

/// Ends leases when their deadlines pass. Holds only a weak reference, so it never keeps a
/// dropped store (and its directory lock) alive; the store also cancels it on drop.
async fn expire_leases(inner: Weak<Inner>, granted: Arc<Notify>, stop: CancellationToken) {
    loop {
        let notified = granted.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let deadline = match inner.upgrade() {
            Some(inner) => match inner.state() {
                Ok(state) => state.next_deadline(),
                Err(_) => return,
            },
            None => return,
        };
        let sleep = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = &mut notified => continue,
            () = sleep => {}
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        match tokio::task::spawn_blocking(move || strong.expire_due()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "lease expiry failed");
                // Do not spin on a store that refuses writes.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "lease expiry panicked");
                return;
            }
        }
    }
}

#[async_trait]
impl MetaStore for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, MetaError> {
        validate_key(key)?;
        Ok(self.inner.state()?.get(key))
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        let state = self.inner.state()?;
        Ok((state.range(prefix), state.revision()))
    }

    async fn range_from(
        &self,
        prefix: &str,
        from: &str,
    ) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        let state = self.inner.state()?;
        Ok((state.range_from(prefix, from), state.revision()))
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<Revision, MetaError> {
        let op = TxnOp::Put {
            key: key.into(),
            value,
            lease,
        };
        Ok(self.txn(Txn::new().and_then([op])).await?.revision)
    }

    async fn delete(&self, key: &str) -> Result<bool, MetaError> {
        validate_key(key)?;
        let txn = Txn::new().and_then([TxnOp::delete(key)]);
        let (deleted, _) = self
            .write(move |state| evaluate(state, &txn).map(|(e, m)| (e.1, m)))
            .await?;
        Ok(deleted > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, MetaError> {
        validate_delete_prefix(prefix)?;
        let txn = Txn::new().and_then([TxnOp::delete_prefix(prefix)]);
        let (deleted, _) = self
            .write(move |state| evaluate(state, &txn).map(|(e, m)| (e.1, m)))
            .await?;
        Ok(deleted)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, MetaError> {
        txn.validate(self.max_txn_ops)?;
        let ((succeeded, _, gets), revision) =
            self.write(move |state| evaluate(state, &txn)).await?;
        Ok(TxnResult {
            succeeded,
            revision,
            gets,
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, MetaError> {
        let ttl = Duration::from_secs(ttl_seconds(ttl)?.unsigned_abs());
        let lease = self.inner.state()?.grant(ttl, Instant::now());
        self.inner.lease_granted.notify_one();
        Ok(lease)
    }

    async fn keep_alive_once(&self, lease: LeaseId) -> Result<(), MetaError> {
        self.inner.state()?.keep_alive(lease, Instant::now())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), MetaError> {
        self.write(move |state| Ok(((), state.revoke(lease)?)))
            .await?;
        Ok(())
    }

    fn max_txn_ops(&self) -> usize {
        self.max_txn_ops
    }

    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<Revision>,
    ) -> Result<WatchStream, MetaError> {
        watch::watch(&self.inner, prefix, start_revision)
    }
}

type Evaluation = ((bool, u64, Vec<Option<KeyValue>>), Vec<Mutation>);

fn evaluate(state: &mut State, txn: &Txn) -> Result<Evaluation, MetaError> {
    let e = state.evaluate(txn, Instant::now())?;
    Ok(((e.succeeded, e.deleted, e.gets), e.mutations))
}
