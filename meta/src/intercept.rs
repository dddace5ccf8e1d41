//! A store that hands every transaction and every range read to a hook before (or instead of)
//! the real store, for tests that need a transaction to lose its answer or another writer to
//! slip in between two reads or a read and a write. Built only with the `test-util` feature,
//! like tokio's.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{KeyValue, LeaseId, MetaError, MetaStore, Revision, Txn, TxnResult, WatchStream};

/// Decides what happens to each transaction and range read; `inner` is the real store. Both
/// pass straight on unless a hook says otherwise.
#[async_trait]
pub trait Hook: Send + Sync + std::fmt::Debug + 'static {
    async fn txn(&self, inner: &dyn MetaStore, txn: Txn) -> Result<TxnResult, MetaError> {
        inner.txn(txn).await
    }

    async fn range(
        &self,
        inner: &dyn MetaStore,
        prefix: &str,
    ) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        inner.range(prefix).await
    }
}

/// `inner` with every transaction and range read going through `hook`; everything else
/// passes straight on.
#[derive(Debug)]
pub struct Intercepted<H> {
    pub inner: Arc<dyn MetaStore>,
    pub hook: H,
}

#[async_trait]
impl<H: Hook> MetaStore for Intercepted<H> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, MetaError> {
        self.inner.get(key).await
    }
    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        self.hook.range(self.inner.as_ref(), prefix).await
    }
    async fn range_from(
        &self,
        prefix: &str,
        from: &str,
    ) -> Result<(Vec<KeyValue>, Revision), MetaError> {
        self.inner.range_from(prefix, from).await
    }
    async fn put(
        &self,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<Revision, MetaError> {
        self.inner.put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> Result<bool, MetaError> {
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, MetaError> {
        self.inner.delete_prefix(prefix).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult, MetaError> {
        self.hook.txn(self.inner.as_ref(), txn).await
    }
    fn max_txn_ops(&self) -> usize {
        self.inner.max_txn_ops()
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, MetaError> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive_once(&self, lease: LeaseId) -> Result<(), MetaError> {
        self.inner.keep_alive_once(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), MetaError> {
        self.inner.revoke_lease(lease).await
    }
    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<Revision>,
    ) -> Result<WatchStream, MetaError> {
        self.inner.watch_prefix(prefix, start_revision).await
    }
}
