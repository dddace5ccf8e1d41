//! Strata's metadata store: one async trait, [`MetaStore`], with two backends.
//!
//! - [`EtcdStore`] talks to a real etcd cluster (`etcd://host:port[,host:port]`).
//! - [`EmbeddedStore`] keeps everything in one process, persisted in a directory
//!   (`embedded:///path/to/dir`), for `strata standalone`.
//!
//! Both follow etcd's data model: a global revision that every write bumps, per-key create and
//! mod revisions and a version, leases that delete their keys when they end, prefix watches that
//! can resume from a revision, and compare-and-swap transactions. [`LeaseKeeper`] and
//! [`Election`] are written against the trait only, so they behave the same on both.
//!
//! Keys are plain strings; callers pass full keys under `/strata/{cluster}/`. `docs/meta.md`
//! describes the semantics, the embedded file format and the election algorithm.

mod election;
mod embedded;
mod error;
mod etcd;
#[cfg(feature = "test-util")]
pub mod intercept;
mod lease;
pub mod schema;
#[cfg(feature = "test-util")]
pub mod testing;
mod txn;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use election::{Election, LeaderInfo, Leadership};
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use error::MetaError;
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls};
pub use lease::LeaseKeeper;
pub use txn::{
    Compare, CompareOp, CompareTarget, DEFAULT_MAX_TXN_OPS, MAX_REQUEST_BYTES, MAX_TXN_OPS_CEILING,
    Txn, TxnOp, TxnResult, check_max_txn_ops,
};
pub use watch::{WatchEvent, WatchStream};

/// The store-wide logical clock; every write that changes something bumps it by one.
pub type Revision = i64;

/// A lease handle; keys attached to a lease are deleted when it ends.
pub type LeaseId = i64;

/// A key with its value and history markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key.
    pub key: String,
    /// The value.
    pub value: Bytes,
    /// The revision that created the key (since it last did not exist).
    pub create_revision: Revision,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
    /// Writes since creation: 1 after the creating put.
    pub version: i64,
    /// The lease the key is attached to.
    pub lease: Option<LeaseId>,
}

/// The metadata store. All methods are safe to call concurrently.
///
/// Errors: [`MetaError::Unavailable`] for anything transient (retry),
/// [`MetaError::InvalidArgument`] for requests either backend refuses, and the specific
/// variants named on each method.
#[async_trait]
pub trait MetaStore: Send + Sync + std::fmt::Debug + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, MetaError>;

    /// Reads every key starting with `prefix` (all keys if it is empty), sorted by key bytes,
    /// with the store revision the read saw. `a/1` is a prefix of `a/10`: pass `a/1/` to get
    /// only the children of `a/1`.
    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), MetaError>;

    /// Like [`range`](Self::range), but only the keys that sort at or after `from`: the tail
    /// of a long, ordered list (segment records by offset) without reading its head.
    async fn range_from(
        &self,
        prefix: &str,
        from: &str,
    ) -> Result<(Vec<KeyValue>, Revision), MetaError>;

    /// Writes a key, attached to `lease` or to none; returns the new store revision.
    /// [`MetaError::LeaseNotFound`] if the lease has ended.
    async fn put(
        &self,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> Result<Revision, MetaError>;

    /// Deletes a key; `false` if it did not exist (the revision does not move then).
    async fn delete(&self, key: &str) -> Result<bool, MetaError>;

    /// Deletes every key under a non-empty `prefix`; returns how many were deleted.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, MetaError>;

    /// Runs a transaction atomically. See [`Txn::validate`] for the rules both backends apply.
    async fn txn(&self, txn: Txn) -> Result<TxnResult, MetaError>;

    /// The most compares, or operations per branch, one transaction may carry here
    /// ([`DEFAULT_MAX_TXN_OPS`] unless configured): callers that group many keys into one
    /// transaction size their groups by it.
    fn max_txn_ops(&self) -> usize;

    /// Grants a lease that ends `ttl` (rounded up to whole seconds) after its last keep-alive.
    /// etcd raises TTLs below its minimum (2 s with default flags).
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, MetaError>;

    /// Renews a lease for another TTL; [`MetaError::LeaseNotFound`] if it has already ended.
    async fn keep_alive_once(&self, lease: LeaseId) -> Result<(), MetaError>;

    /// Ends a lease now, deleting its keys; [`MetaError::LeaseNotFound`] if it already ended.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), MetaError>;

    /// Watches every key starting with `prefix`.
    ///
    /// With `start_revision: Some(r)` the stream first replays every change with revision
    /// `>= r` (etcd's semantics), then follows live changes; with `None` it carries changes
    /// after the call returns. Fails with [`MetaError::Compacted`] when the history from `r`
    /// is gone; the stream itself can also end with that error if a slow watcher falls behind
    /// the history.
    async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: Option<Revision>,
    ) -> Result<WatchStream, MetaError>;
}

/// Opens a store by URL.
///
/// - `etcd://host:port[,host:port...]` or `http://host:port[,host:port...]`: an etcd cluster,
///   with [`EtcdOptions::default`]. Fails with [`MetaError::Unavailable`] if no endpoint
///   answers.
/// - `embedded:///path/to/dir` (the part after `embedded://` is the directory path): the
///   embedded store with [`EmbeddedOptions::default`], creating the directory if needed.
pub async fn open(url: &str) -> Result<Arc<dyn MetaStore>, MetaError> {
    open_with(url, DEFAULT_MAX_TXN_OPS, None).await
}

/// [`open`], with the store's per-transaction limit (etcd's `--max-txn-ops`; see
/// [`MetaStore::max_txn_ops`]) set to `max_txn_ops` instead of the default, and etcd dialled
/// over TLS when `tls` is given (the embedded store has no connection to secure).
pub async fn open_with(
    url: &str,
    max_txn_ops: usize,
    tls: Option<EtcdTls>,
) -> Result<Arc<dyn MetaStore>, MetaError> {
    match parse_url(url)? {
        Target::Etcd(endpoints) => {
            let options = EtcdOptions {
                max_txn_ops,
                tls,
                ..EtcdOptions::default()
            };
            Ok(Arc::new(EtcdStore::connect(&endpoints, options).await?))
        }
        Target::Embedded(dir) => {
            let options = EmbeddedOptions {
                max_txn_ops,
                ..EmbeddedOptions::default()
            };
            Ok(Arc::new(EmbeddedStore::open(dir, options).await?))
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Target {
    Etcd(Vec<String>),
    Embedded(PathBuf),
}

fn parse_url(url: &str) -> Result<Target, MetaError> {
    let invalid = |reason: &str| MetaError::InvalidUrl {
        url: url.into(),
        reason: reason.into(),
    };
    if let Some(path) = url.strip_prefix("embedded://") {
        if path.is_empty() {
            return Err(invalid("no directory after embedded://"));
        }
        return Ok(Target::Embedded(PathBuf::from(path)));
    }
    let hosts = url
        .strip_prefix("etcd://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("unknown scheme"))?;
    let mut endpoints = Vec::new();
    for host in hosts.split(',') {
        let host = host
            .strip_prefix("http://")
            .unwrap_or(host)
            .trim_end_matches('/');
        let Some((name, port)) = host.rsplit_once(':') else {
            return Err(invalid(&format!("endpoint {host:?} has no port")));
        };
        if name.is_empty() || port.parse::<u16>().is_err() {
            return Err(invalid(&format!("endpoint {host:?} is not host:port")));
        }
        endpoints.push(format!("http://{host}"));
    }
    Ok(Target::Etcd(endpoints))
}

/// Lease TTLs travel as whole seconds (etcd's unit); round up so a lease never lives shorter
/// than asked.
pub(crate) fn ttl_seconds(ttl: Duration) -> Result<i64, MetaError> {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    if secs == 0 {
        return Err(MetaError::InvalidArgument(
            "lease ttl must be positive".into(),
        ));
    }
    i64::try_from(secs).map_err(|_| MetaError::InvalidArgument("lease ttl too large".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("etcd://127.0.0.1:2379,10.0.0.2:2379").unwrap(),
            Target::Etcd(vec![
                "http://127.0.0.1:2379".into(),
                "http://10.0.0.2:2379".into()
            ])
        );
        assert_eq!(
            parse_url("http://localhost:2379/").unwrap(),
            Target::Etcd(vec!["http://localhost:2379".into()])
        );
        assert_eq!(
            parse_url("embedded:///var/lib/strata/meta").unwrap(),
            Target::Embedded(PathBuf::from("/var/lib/strata/meta"))
        );
        for bad in [
            "s3://bucket",
            "etcd://nohost",
            "etcd://h:notaport",
            "embedded://",
            "",
            "x",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(matches!(err, MetaError::InvalidUrl { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("embedded:///path/to/dir"), "{err}");
        }
    }

    #[test]
    fn rounds_ttls_up() {
        assert_eq!(ttl_seconds(Duration::from_millis(1500)).unwrap(), 2);
        assert_eq!(ttl_seconds(Duration::from_secs(3)).unwrap(), 3);
        assert!(ttl_seconds(Duration::ZERO).is_err());
    }
}
