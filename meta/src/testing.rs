//! Both metadata backends, opened for a test, so one scenario runs against each.

#![allow(clippy::expect_used)]

use std::sync::Arc;

use crate::{EmbeddedOptions, EmbeddedStore, MetaStore};

/// The embedded store in a new temporary directory, kept as long as the directory.
pub async fn embedded() -> (tempfile::TempDir, Arc<dyn MetaStore>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
        .await
        .expect("the embedded store opens in a new directory");
    (dir, Arc::new(store))
}

/// A real etcd, started for the test and stopped when the server is dropped.
pub async fn etcd() -> (strata_testkit::EtcdServer, Arc<dyn MetaStore>) {
    let etcd = strata_testkit::EtcdServer::start().expect("real etcd must start");
    let meta = crate::open(&etcd.endpoint().replace("http://", "etcd://"))
        .await
        .expect("the etcd just started answers");
    (etcd, meta)
}
