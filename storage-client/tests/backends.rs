//! One storage scenario, run against every backend: `memory://`, `file://` and a real
//! S3-protocol server (`s3s-fs`) on loopback.

#![allow(clippy::unwrap_used)]

// The format crate's test builders (see tests/segment.rs).
#[path = "../../format/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_clock::{SeededRandom, SystemClock};
use strata_format::{SegmentBuilder, decode_batch};
use strata_storage::backend::{self, BackendOptions};
use strata_storage::pool::{Hedging, NodeSpec, PoolConfig};
use strata_storage::{NodePool, SegmentReader, StorageError};
use strata_testkit::S3Server;
use strata_testkit::fault::{Faults, FaultyStore};

/// Writes segments through a two-replica pool over three nodes of the backend, then reads them
/// back by offset and timestamp, counting GETs, and deletes them.
async fn scenario(urls: [String; 3]) {
    let faults: Vec<Arc<Faults>> = (0..3).map(|_| Faults::new()).collect();
    let stores = urls
        .iter()
        .zip(&faults)
        .enumerate()
        .map(|(i, (url, f))| {
            let inner = backend::open(url, BackendOptions::default()).unwrap();
            let store: Arc<dyn ObjectStore> = Arc::new(FaultyStore::new(inner, f.clone()));
            (strata_storage::NodeId(format!("n{i}")), store)
        })
        .collect();
    let mut config = PoolConfig::new(Vec::new(), 2);
    // The request counts below are exact: a slow fsync must not add a hedged copy.
    config.hedging = Hedging::OFF;
    let pool = NodePool::from_stores(
        stores,
        &config,
        Arc::new(SystemClock),
        Arc::new(SeededRandom::new(7)),
    )
    .unwrap();

    let mut written = Vec::new();
    for s in 0..6i64 {
        let batches = common::batches(s * 1000, 100, 10, |b| s * 100_000 + b as i64 * 10);
        let mut builder = SegmentBuilder::default();
        for b in &batches {
            builder.append(b).unwrap();
        }
        let segment = builder.finish().unwrap();
        let path = Path::from(format!("topic/0/{:020}.seg", s * 1000));
        let placement = pool
            .put(&path, segment.chunks.iter().cloned().collect())
            .await
            .unwrap();
        assert_eq!(placement.nodes.len(), 2);
        assert_ne!(placement.nodes[0], placement.nodes[1]);
        written.push((path, placement, segment.meta));
    }
    // Random placement spreads six objects × two copies over all three nodes.
    let puts: Vec<u64> = faults.iter().map(|f| f.counts().puts).collect();
    assert_eq!(puts.iter().sum::<u64>(), 12);
    assert!(
        puts.iter().all(|&p| p > 0),
        "every node holds some copies: {puts:?}"
    );

    let gets_before: u64 = faults.iter().map(|f| f.counts().gets).sum();
    for (path, placement, meta) in &written {
        let object = pool.object(placement.clone(), path.clone());
        let reader = SegmentReader::open(object, meta).await.unwrap();
        let target = meta.base_offset + 555;
        let batches = reader.read_from(target, 1).await.unwrap();
        let records = decode_batch(&batches[0]).unwrap();
        assert!(records.iter().any(|r| r.offset == target));
        // Batch 55 of this segment starts at offset base+550 with timestamp base_ts+550.
        let ts = meta.min_timestamp + 550;
        assert_eq!(
            reader.offset_for_timestamp(ts).await.unwrap(),
            Some(meta.base_offset + 550)
        );
    }
    let gets_after: u64 = faults.iter().map(|f| f.counts().gets).sum();
    assert_eq!(
        gets_after - gets_before,
        6 * 3,
        "footer + one GET per lookup, per segment"
    );

    for (path, placement, _) in &written {
        pool.delete(placement, path).await.unwrap();
        assert!(matches!(
            pool.get(placement, path).await,
            Err(StorageError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn memory_backend() {
    scenario([
        "memory://backends-a".into(),
        "memory://backends-b".into(),
        "memory://backends-c".into(),
    ])
    .await;
}

#[tokio::test]
async fn file_backend() {
    let dir = tempfile::tempdir().unwrap();
    let url = |n: &str| format!("file://{}", dir.path().join(n).display());
    scenario([url("a"), url("b"), url("c")]).await;
}

#[tokio::test]
async fn s3_backend() {
    let server = S3Server::start().expect("the S3-protocol test server must start");
    for bucket in ["node-a", "node-b", "node-c"] {
        server.create_bucket(bucket).unwrap();
    }
    // The third node under a prefix, its secret from a file as a mounted Kubernetes Secret
    // gives it (with a line end).
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret_access_key");
    let plain_c = server.url("node-c");
    let (head, secret) = plain_c.split_once("&secret_access_key=").unwrap();
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let from_file = format!(
        "{}&secret_access_key_file={}",
        head.replacen("s3://node-c", "s3://node-c/with/prefix", 1),
        secret_file.display()
    );
    assert!(!from_file.contains(secret));
    scenario([server.url("node-a"), server.url("node-b"), from_file]).await;
}

#[tokio::test]
async fn memory_urls_share_one_store_per_name() {
    let a = backend::open("memory://shared", BackendOptions::default()).unwrap();
    let b = backend::open("memory://shared", BackendOptions::default()).unwrap();
    a.put(&Path::from("k"), "v".into()).await.unwrap();
    assert_eq!(
        b.get(&Path::from("k"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        "v"
    );
}

#[test]
fn bad_urls_name_the_problem() {
    for (url, needle) in [
        ("ftp://x", "scheme `ftp`"),
        ("not a url", "expected e.g."),
        ("s3://bucket?colour=blue", "unknown parameter `colour`"),
        (
            "s3://bucket?secret_access_key_file=/nonexistent/key",
            "cannot read secret_access_key_file",
        ),
        ("memory://", "name"),
    ] {
        let err = backend::open(url, BackendOptions::default()).unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidUrl { .. }),
            "{url}: {err}"
        );
        assert!(
            err.to_string().contains(needle),
            "{url}: `{err}` should mention `{needle}`"
        );
    }
    let err = backend::open(
        "s3://b?endpoint=http://h&secret_access_key=hunter2&colour=1",
        BackendOptions::default(),
    )
    .unwrap_err();
    assert!(
        !err.to_string().contains("hunter2"),
        "secrets are redacted: {err}"
    );
}

#[test]
fn node_specs_parse_names_and_urls() {
    let named: NodeSpec = "n1=s3://bucket?endpoint=http://h:1".parse().unwrap();
    assert_eq!(named.id.0, "n1");
    assert_eq!(named.url, "s3://bucket?endpoint=http://h:1");
    let bare: NodeSpec = "s3://bucket/p?secret_access_key=x".parse().unwrap();
    assert_eq!(bare.id.0, "s3://bucket/p");
}

#[tokio::test]
async fn pool_opens_nodes_by_url_and_rejects_bad_replica_counts() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<NodeSpec> = ["x", "y"]
        .iter()
        .map(|n| {
            format!("{n}=file://{}", dir.path().join(n).display())
                .parse()
                .unwrap()
        })
        .collect();
    let pool = NodePool::open(&PoolConfig::new(nodes.clone(), 2)).unwrap();
    let placement = pool.put(&Path::from("o"), "data".into()).await.unwrap();
    assert_eq!(placement.nodes.len(), 2);
    assert!(dir.path().join("x/o").is_file() && dir.path().join("y/o").is_file());
    let err = NodePool::open(&PoolConfig::new(nodes, 3)).unwrap_err();
    assert!(err.to_string().contains("storage.replicas is 3"), "{err}");
}
