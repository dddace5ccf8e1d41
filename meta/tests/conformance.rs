//! One suite of scenarios, run against both backends: the embedded store in a temporary
//! directory and a real etcd started by `strata_testkit` (the etcd half fails, never skips,
//! when etcd is missing).

// Test helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use strata_meta::{
    Compare, CompareOp, Election, EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore,
    Leadership, LeaseKeeper, MetaError, MetaStore, Revision, Txn, TxnOp, WatchEvent, WatchStream,
};
use strata_proto::Coded;
use strata_testkit::EtcdServer;
use tokio::time::{Instant, timeout};

/// etcd's minimum lease TTL with default flags.
const TTL: Duration = Duration::from_secs(2);
/// History the embedded harness keeps, small so a scenario can outrun it.
const HISTORY: usize = 64;
/// No scenario may take longer than this.
const SCENARIO_LIMIT: Duration = Duration::from_secs(45);

struct Harness {
    store: Arc<dyn MetaStore>,
    etcd: Option<(EtcdServer, EtcdStore)>,
    _dir: Option<tempfile::TempDir>,
}

fn etcd_options() -> EtcdOptions {
    EtcdOptions {
        request_timeout: Duration::from_secs(3),
        ..EtcdOptions::default()
    }
}

impl Harness {
    async fn embedded() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history_events: HISTORY,
            ..EmbeddedOptions::default()
        };
        let store = EmbeddedStore::open(dir.path().join("meta"), options)
            .await
            .unwrap();
        Harness {
            store: Arc::new(store),
            etcd: None,
            _dir: Some(dir),
        }
    }

    async fn etcd() -> Harness {
        let server = EtcdServer::start()
            .expect("the etcd half of the suite needs a real etcd; run scripts/setup.sh");
        let store = EtcdStore::connect(&[server.endpoint()], etcd_options())
            .await
            .unwrap();
        Harness {
            store: Arc::new(store.clone()),
            etcd: Some((server, store)),
            _dir: None,
        }
    }

    /// Another client, as another process would have: a new connection on etcd, the same
    /// store for the embedded backend (which only one process can open).
    async fn client(&self) -> Arc<dyn MetaStore> {
        match &self.etcd {
            Some((server, _)) => Arc::new(
                EtcdStore::connect(&[server.endpoint()], etcd_options())
                    .await
                    .unwrap(),
            ),
            None => self.store.clone(),
        }
    }

    /// Makes the history up to `revision` unavailable to new watches.
    async fn compact(&self, revision: Revision) {
        match &self.etcd {
            Some((_, store)) => {
                let options = etcd_client::CompactionOptions::new().with_physical();
                store
                    .client()
                    .clone()
                    .compact(revision, Some(options))
                    .await
                    .unwrap();
            }
            None => {
                for i in 0..HISTORY + 1 {
                    self.store
                        .put(&format!("/scratch/{i}"), Bytes::new(), None)
                        .await
                        .unwrap();
                }
            }
        }
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn bounded<F: Future>(scenario: F) -> F::Output {
    init_tracing();
    timeout(SCENARIO_LIMIT, scenario)
        .await
        .expect("scenario exceeded its time limit")
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let h = super::Harness::embedded().await;
                    super::bounded(super::$scenario(&h)).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let h = super::Harness::etcd().await;
                    super::bounded(super::$scenario(&h)).await;
                }
            )*
        }
    };
}

conformance!(
    put_get_delete_track_revisions_and_versions,
    range_is_sorted_and_respects_prefix_boundaries,
    range_from_reads_the_tail_of_a_prefix,
    txn_compares_choose_the_branch,
    txn_is_atomic_and_validated,
    lease_keeps_keys_while_renewed_and_expires_after_ttl,
    revoking_a_lease_deletes_its_keys,
    lease_keeper_renews_reports_loss_and_revokes,
    watch_sees_puts_and_deletes_in_order,
    watch_resumes_from_a_revision,
    watch_from_compacted_history_fails,
    election_has_one_leader_and_fails_over,
    leader_learns_it_lost,
);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn current_revision(store: &dyn MetaStore) -> Revision {
    store.range("/nothing-here/").await.unwrap().1
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn next_event(events: &mut WatchStream) -> WatchEvent {
    timeout(Duration::from_secs(5), events.next())
        .await
        .expect("no watch event within 5s")
        .expect("watch stream ended")
        .expect("watch stream failed")
}

async fn put_get_delete_track_revisions_and_versions(h: &Harness) {
    let s = h.store.as_ref();
    let r1 = s.put("/t/kv/a", b("1"), None).await.unwrap();
    let a = s.get("/t/kv/a").await.unwrap().unwrap();
    assert_eq!(
        (
            a.value.as_ref(),
            a.create_revision,
            a.mod_revision,
            a.version
        ),
        (&b"1"[..], r1, r1, 1)
    );
    assert_eq!(a.lease, None);

    let r2 = s.put("/t/kv/a", b("2"), None).await.unwrap();
    assert_eq!(r2, r1 + 1);
    let a = s.get("/t/kv/a").await.unwrap().unwrap();
    assert_eq!(
        (
            a.value.as_ref(),
            a.create_revision,
            a.mod_revision,
            a.version
        ),
        (&b"2"[..], r1, r2, 2)
    );

    let r3 = s.put("/t/kv/b", b("x"), None).await.unwrap();
    assert_eq!(r3, r2 + 1);
    assert!(s.delete("/t/kv/a").await.unwrap());
    assert_eq!(current_revision(s).await, r3 + 1);
    assert_eq!(s.get("/t/kv/a").await.unwrap(), None);

    // Deleting nothing does not move the revision.
    assert!(!s.delete("/t/kv/a").await.unwrap());
    assert_eq!(current_revision(s).await, r3 + 1);

    // A re-created key starts a new life.
    let r5 = s.put("/t/kv/a", b("3"), None).await.unwrap();
    let a = s.get("/t/kv/a").await.unwrap().unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (r5, r5, 1));

    assert!(matches!(
        s.put("", b("x"), None).await,
        Err(MetaError::InvalidArgument(_))
    ));
    assert!(matches!(
        s.get("").await,
        Err(MetaError::InvalidArgument(_))
    ));
    let too_big = Bytes::from(vec![0u8; strata_meta::MAX_REQUEST_BYTES + 1]);
    assert!(matches!(
        s.put("/t/kv/big", too_big, None).await,
        Err(MetaError::InvalidArgument(_))
    ));
}

async fn range_is_sorted_and_respects_prefix_boundaries(h: &Harness) {
    let s = h.store.as_ref();
    for key in [
        "/t/r/a/2",
        "/t/r/a/10",
        "/t/r/b",
        "/t/r/a/1",
        "/t/r/a/1/x",
        "/t/r/ab",
    ] {
        s.put(key, b(key), None).await.unwrap();
    }
    let last = s.put("/t/r/a/3", b("3"), None).await.unwrap();
    let keys =
        |kvs: Vec<strata_meta::KeyValue>| kvs.into_iter().map(|kv| kv.key).collect::<Vec<_>>();

    let (kvs, revision) = s.range("/t/r/a/").await.unwrap();
    assert_eq!(revision, last);
    assert_eq!(
        keys(kvs),
        [
            "/t/r/a/1",
            "/t/r/a/1/x",
            "/t/r/a/10",
            "/t/r/a/2",
            "/t/r/a/3"
        ]
    );
    // `a/1` is a byte prefix of `a/10`; a trailing slash selects only the children.
    assert_eq!(
        keys(s.range("/t/r/a/1").await.unwrap().0),
        ["/t/r/a/1", "/t/r/a/1/x", "/t/r/a/10"]
    );
    assert_eq!(keys(s.range("/t/r/a/1/").await.unwrap().0), ["/t/r/a/1/x"]);
    assert_eq!(keys(s.range("/t/r/a").await.unwrap().0).len(), 6);
    assert!(s.range("/t/r/zzz").await.unwrap().0.is_empty());
    assert_eq!(s.range("").await.unwrap().0.len(), 7);

    assert_eq!(s.delete_prefix("/t/r/a/1/").await.unwrap(), 1);
    assert_eq!(s.delete_prefix("/t/r/a/").await.unwrap(), 4);
    assert_eq!(s.delete_prefix("/t/r/a/").await.unwrap(), 0);
    assert_eq!(
        keys(s.range("/t/r/").await.unwrap().0),
        ["/t/r/ab", "/t/r/b"]
    );
    assert!(matches!(
        s.delete_prefix("").await,
        Err(MetaError::InvalidArgument(_))
    ));
}

async fn range_from_reads_the_tail_of_a_prefix(h: &Harness) {
    let s = h.store.as_ref();
    // Zero-padded numbers sort like segment keys; `/t/f/seg0` and `/t/f/sef` sit just
    // outside the prefix on either side.
    for key in [
        "/t/f/sef",
        "/t/f/seg/003",
        "/t/f/seg/001",
        "/t/f/seg/010",
        "/t/f/seg0",
    ] {
        s.put(key, b(key), None).await.unwrap();
    }
    let last = s.put("/t/f/seg/007", b("7"), None).await.unwrap();
    async fn tail(s: &dyn MetaStore, prefix: &str, from: &str, revision: Revision) -> Vec<String> {
        let (kvs, read_at) = s.range_from(prefix, from).await.unwrap();
        assert_eq!(read_at, revision);
        kvs.into_iter().map(|kv| kv.key).collect()
    }
    let keys = |prefix: &'static str, from: &'static str| tail(s, prefix, from, last);
    assert_eq!(
        keys("/t/f/seg/", "/t/f/seg/003").await,
        ["/t/f/seg/003", "/t/f/seg/007", "/t/f/seg/010"]
    );
    // A start between keys begins at the next one; one past the last finds nothing.
    assert_eq!(
        keys("/t/f/seg/", "/t/f/seg/004").await,
        ["/t/f/seg/007", "/t/f/seg/010"]
    );
    assert!(keys("/t/f/seg/", "/t/f/seg/011").await.is_empty());
    // A start before the prefix reads the whole prefix, never the keys before it.
    assert_eq!(keys("/t/f/seg/", "/t/a").await.len(), 4);
    assert_eq!(
        keys("/t/f/seg/", "").await,
        keys("/t/f/seg/", "/t/f/seg/").await
    );
    // A start past the prefix's end finds nothing, not the keys after the prefix.
    assert!(keys("/t/f/seg/", "/t/f/seh").await.is_empty());
    // An empty prefix is every key from `from` on.
    assert_eq!(
        keys("", "/t/f/seg/010").await,
        ["/t/f/seg/010", "/t/f/seg0"]
    );
}

async fn txn_compares_choose_the_branch(h: &Harness) {
    let s = h.store.as_ref();
    let k = "/t/txn/k";
    let create = || {
        Txn::new()
            .when([Compare::absent(k)])
            .and_then([TxnOp::put(k, b("v1"))])
            .or_else([TxnOp::get(k)])
    };
    let first = s.txn(create()).await.unwrap();
    assert!(first.succeeded);
    assert!(first.gets.is_empty());
    let second = s.txn(create()).await.unwrap();
    assert!(!second.succeeded);
    assert_eq!(
        second.revision, first.revision,
        "a read-only branch writes nothing"
    );
    let kv = second.gets[0].clone().unwrap();
    assert_eq!(
        (kv.value.as_ref(), kv.mod_revision),
        (&b"v1"[..], first.revision)
    );

    // Compare on the value; a get after a put in the same branch sees the put.
    let swap = s
        .txn(
            Txn::new()
                .when([Compare::value_eq(k, b("v1"))])
                .and_then([TxnOp::put(k, b("v2")), TxnOp::get(k)]),
        )
        .await
        .unwrap();
    assert!(swap.succeeded);
    let kv = swap.gets[0].clone().unwrap();
    assert_eq!(
        (kv.value.as_ref(), kv.mod_revision, kv.version),
        (&b"v2"[..], swap.revision, 2)
    );

    // A stale mod revision fails and runs the failure branch.
    let stale = s
        .txn(
            Txn::new()
                .when([Compare::mod_revision(k, CompareOp::Equal, first.revision)])
                .and_then([TxnOp::put(k, b("lost"))])
                .or_else([TxnOp::put("/t/txn/conflicts", b("1")), TxnOp::get(k)]),
        )
        .await
        .unwrap();
    assert!(!stale.succeeded);
    assert_eq!(stale.revision, swap.revision + 1);
    assert_eq!(stale.gets[0].as_ref().unwrap().value, b("v2"));
    assert_eq!(
        s.get("/t/txn/conflicts")
            .await
            .unwrap()
            .unwrap()
            .mod_revision,
        stale.revision
    );

    let holds = |c: Compare| async move { s.txn(Txn::new().when([c])).await.unwrap().succeeded };
    assert!(holds(Compare::mod_revision(k, CompareOp::Equal, swap.revision)).await);
    assert!(holds(Compare::mod_revision(k, CompareOp::Less, swap.revision + 1)).await);
    assert!(
        holds(Compare::create_revision(
            k,
            CompareOp::Equal,
            first.revision
        ))
        .await
    );
    assert!(holds(Compare::version(k, CompareOp::Greater, 1)).await);
    assert!(holds(Compare::value(k, CompareOp::Greater, b("v1"))).await);
    assert!(holds(Compare::value(k, CompareOp::NotEqual, b("v1"))).await);
    assert!(holds(Compare::exists(k)).await);
    assert!(!holds(Compare::absent(k)).await);
    // A missing key fails every value compare, even "not equal".
    assert!(
        !holds(Compare::value(
            "/t/txn/missing",
            CompareOp::NotEqual,
            b("x")
        ))
        .await
    );
    assert!(holds(Compare::version("/t/txn/missing", CompareOp::Equal, 0)).await);
    assert!(holds(Compare::absent("/t/txn/missing")).await);
}

async fn txn_is_atomic_and_validated(h: &Harness) {
    let s = h.store.as_ref();
    s.put("/t/atomic/old/1", b("1"), None).await.unwrap();
    s.put("/t/atomic/old/2", b("2"), None).await.unwrap();
    s.put("/t/atomic/z", b("z"), None).await.unwrap();
    let mut events = s.watch_prefix("/t/atomic/", None).await.unwrap();
    let result = s
        .txn(Txn::new().and_then([
            TxnOp::put("/t/atomic/x", b("x")),
            TxnOp::put("/t/atomic/y", b("y")),
            TxnOp::delete("/t/atomic/z"),
            TxnOp::delete_prefix("/t/atomic/old/"),
            TxnOp::get("/t/atomic/z"),
        ]))
        .await
        .unwrap();
    assert!(result.succeeded);
    assert_eq!(result.gets, vec![None]);
    let (kvs, revision) = s.range("/t/atomic/").await.unwrap();
    assert_eq!(revision, result.revision);
    assert_eq!(
        kvs.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        ["/t/atomic/x", "/t/atomic/y"]
    );
    assert!(kvs.iter().all(|kv| kv.mod_revision == result.revision));
    // Five changes, one revision.
    for _ in 0..5 {
        assert_eq!(next_event(&mut events).await.revision(), result.revision);
    }

    // Refused transactions change nothing.
    let duplicate = Txn::new().and_then([
        TxnOp::put("/t/atomic/d", b("1")),
        TxnOp::put("/t/atomic/d", b("2")),
    ]);
    assert!(matches!(
        s.txn(duplicate).await,
        Err(MetaError::InvalidArgument(_))
    ));
    let put_in_deleted = Txn::new().and_then([
        TxnOp::delete_prefix("/t/atomic/"),
        TxnOp::put("/t/atomic/x", b("again")),
    ]);
    assert!(matches!(
        s.txn(put_in_deleted).await,
        Err(MetaError::InvalidArgument(_))
    ));
    let too_many =
        Txn::new().and_then((0..=s.max_txn_ops()).map(|i| TxnOp::get(format!("/t/atomic/{i}"))));
    assert!(matches!(
        s.txn(too_many).await,
        Err(MetaError::InvalidArgument(_))
    ));
    let lease = s.grant_lease(TTL).await.unwrap();
    s.revoke_lease(lease).await.unwrap();
    let dead_lease = Txn::new().and_then([
        TxnOp::put("/t/atomic/first", b("1")),
        TxnOp::put_with_lease("/t/atomic/leased", b("1"), lease),
    ]);
    assert!(matches!(
        s.txn(dead_lease).await,
        Err(MetaError::LeaseNotFound { .. })
    ));
    assert_eq!(s.range("/t/atomic/").await.unwrap(), (kvs, revision));
}

async fn lease_keeps_keys_while_renewed_and_expires_after_ttl(h: &Harness) {
    let s = h.store.as_ref();
    let lease = s.grant_lease(TTL).await.unwrap();
    s.put("/t/lease/k", b("v"), Some(lease)).await.unwrap();
    assert_eq!(
        s.get("/t/lease/k").await.unwrap().unwrap().lease,
        Some(lease)
    );

    // Renewed for well over two TTLs, the key stays.
    let renewing_until = Instant::now() + TTL * 2 + Duration::from_millis(500);
    while Instant::now() < renewing_until {
        s.keep_alive_once(lease).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(s.get("/t/lease/k").await.unwrap().is_some());

    // Left alone, it goes after about one TTL (etcd checks expiry every 500 ms).
    let stopped = Instant::now();
    eventually(
        TTL + Duration::from_secs(3),
        "leased key deleted",
        || async { s.get("/t/lease/k").await.unwrap().is_none() },
    )
    .await;
    assert!(
        stopped.elapsed() >= TTL - Duration::from_millis(600),
        "expired too early"
    );
    assert!(matches!(
        s.keep_alive_once(lease).await,
        Err(MetaError::LeaseNotFound { .. })
    ));
    assert!(matches!(
        s.put("/t/lease/k", b("v"), Some(lease)).await,
        Err(MetaError::LeaseNotFound { .. })
    ));
    assert!(matches!(
        s.grant_lease(Duration::ZERO).await,
        Err(MetaError::InvalidArgument(_))
    ));
}

async fn revoking_a_lease_deletes_its_keys(h: &Harness) {
    let s = h.store.as_ref();
    let lease = s.grant_lease(Duration::from_secs(30)).await.unwrap();
    s.put("/t/revoke/a", b("1"), Some(lease)).await.unwrap();
    s.put("/t/revoke/b", b("2"), Some(lease)).await.unwrap();
    s.put("/t/revoke/c", b("3"), None).await.unwrap();
    // Re-putting without a lease detaches the key.
    s.put("/t/revoke/d", b("4"), Some(lease)).await.unwrap();
    s.put("/t/revoke/d", b("5"), None).await.unwrap();
    let before = current_revision(s).await;
    s.revoke_lease(lease).await.unwrap();
    let (kvs, revision) = s.range("/t/revoke/").await.unwrap();
    assert_eq!(
        kvs.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        ["/t/revoke/c", "/t/revoke/d"]
    );
    assert_eq!(
        revision,
        before + 1,
        "one revision deletes all keys of the lease"
    );
    assert!(matches!(
        s.revoke_lease(lease).await,
        Err(MetaError::LeaseNotFound { .. })
    ));
    assert!(matches!(
        s.keep_alive_once(lease).await,
        Err(MetaError::LeaseNotFound { .. })
    ));
}

async fn lease_keeper_renews_reports_loss_and_revokes(h: &Harness) {
    let s = h.store.clone();
    let kept = LeaseKeeper::start(s.clone(), TTL).await.unwrap();
    let shut = LeaseKeeper::start(s.clone(), TTL).await.unwrap();
    let dropped = LeaseKeeper::start(s.clone(), TTL).await.unwrap();
    s.put("/t/keeper/kept", b("1"), Some(kept.lease_id()))
        .await
        .unwrap();
    s.put("/t/keeper/shut", b("1"), Some(shut.lease_id()))
        .await
        .unwrap();
    s.put("/t/keeper/dropped", b("1"), Some(dropped.lease_id()))
        .await
        .unwrap();

    tokio::time::sleep(TTL * 2 + Duration::from_millis(500)).await;
    assert_eq!(
        s.range("/t/keeper/").await.unwrap().0.len(),
        3,
        "keepers keep their keys"
    );
    assert!(!kept.is_lost());

    shut.shutdown().await.unwrap();
    assert!(
        s.get("/t/keeper/shut").await.unwrap().is_none(),
        "shutdown revokes at once"
    );

    drop(dropped);
    let lost = kept.lost_token();
    s.revoke_lease(kept.lease_id()).await.unwrap();
    timeout(TTL + Duration::from_secs(1), lost.cancelled())
        .await
        .expect("the keeper reports a revoked lease as lost");
    assert!(kept.is_lost());
    kept.shutdown().await.unwrap();

    eventually(
        TTL + Duration::from_secs(3),
        "key of a dropped keeper expires",
        || async { s.get("/t/keeper/dropped").await.unwrap().is_none() },
    )
    .await;
}

async fn watch_sees_puts_and_deletes_in_order(h: &Harness) {
    let s = h.store.as_ref();
    s.put("/t/watch/before", b("0"), None).await.unwrap();
    let mut events = s.watch_prefix("/t/watch/", None).await.unwrap();
    let r1 = s.put("/t/watch/a", b("1"), None).await.unwrap();
    s.put("/t/other/a", b("x"), None).await.unwrap();
    let r2 = s.put("/t/watch/a", b("2"), None).await.unwrap();
    s.delete("/t/watch/before").await.unwrap();
    let r3 = current_revision(s).await;
    let lease = s.grant_lease(TTL).await.unwrap();
    let r4 = s.put("/t/watch/leased", b("l"), Some(lease)).await.unwrap();
    s.revoke_lease(lease).await.unwrap();

    match next_event(&mut events).await {
        WatchEvent::Put(kv) => {
            assert_eq!(
                (
                    kv.key.as_str(),
                    kv.value.as_ref(),
                    kv.mod_revision,
                    kv.version
                ),
                ("/t/watch/a", &b"1"[..], r1, 1)
            );
        }
        other => panic!("expected a put, got {other:?}"),
    }
    match next_event(&mut events).await {
        WatchEvent::Put(kv) => assert_eq!(
            (kv.mod_revision, kv.create_revision, kv.version),
            (r2, r1, 2)
        ),
        other => panic!("expected a put, got {other:?}"),
    }
    assert_eq!(
        next_event(&mut events).await,
        WatchEvent::Delete {
            key: "/t/watch/before".into(),
            mod_revision: r3
        }
    );
    let leased = next_event(&mut events).await;
    assert_eq!((leased.key(), leased.revision()), ("/t/watch/leased", r4));
    assert_eq!(
        next_event(&mut events).await,
        WatchEvent::Delete {
            key: "/t/watch/leased".into(),
            mod_revision: r4 + 1
        }
    );
    // Nothing else is pending.
    assert!(
        timeout(Duration::from_millis(300), events.next())
            .await
            .is_err()
    );
}

async fn watch_resumes_from_a_revision(h: &Harness) {
    let s = h.store.as_ref();
    let r1 = s.put("/t/resume/1", b("1"), None).await.unwrap();
    let r2 = s.put("/t/resume/2", b("2"), None).await.unwrap();
    s.put("/t/elsewhere", b("x"), None).await.unwrap();
    let r3 = s.put("/t/resume/1", b("1b"), None).await.unwrap();
    s.delete("/t/resume/2").await.unwrap();
    let r4 = current_revision(s).await;

    // The start revision is inclusive, as in etcd.
    let mut events = s.watch_prefix("/t/resume/", Some(r2)).await.unwrap();
    let replayed: Vec<_> = [
        next_event(&mut events).await,
        next_event(&mut events).await,
        next_event(&mut events).await,
    ]
    .iter()
    .map(|e| (e.key().to_owned(), e.revision()))
    .collect();
    assert_eq!(
        replayed,
        [
            ("/t/resume/2".into(), r2),
            ("/t/resume/1".into(), r3),
            ("/t/resume/2".into(), r4)
        ]
    );
    // Then it goes on live.
    let r5 = s.put("/t/resume/3", b("3"), None).await.unwrap();
    assert_eq!(next_event(&mut events).await.revision(), r5);

    let mut all = s.watch_prefix("/t/resume/", Some(r1)).await.unwrap();
    assert_eq!(next_event(&mut all).await.revision(), r1);
    // A start in the future waits for it.
    let mut future = s.watch_prefix("/t/resume/", Some(r5 + 2)).await.unwrap();
    s.put("/t/resume/4", b("4"), None).await.unwrap();
    let r7 = s.put("/t/resume/5", b("5"), None).await.unwrap();
    assert_eq!(next_event(&mut future).await.revision(), r7);
    assert!(matches!(
        s.watch_prefix("/t/resume/", Some(0)).await,
        Err(MetaError::InvalidArgument(_))
    ));
}

async fn watch_from_compacted_history_fails(h: &Harness) {
    let s = h.store.as_ref();
    let first = s.put("/t/compact/a", b("1"), None).await.unwrap();
    for i in 0..5 {
        s.put("/t/compact/a", b(&i.to_string()), None)
            .await
            .unwrap();
    }
    let cut = current_revision(s).await;
    h.compact(cut).await;
    match s.watch_prefix("/t/compact/", Some(first)).await {
        Err(MetaError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, first);
            assert!(
                compacted > first,
                "compacted {compacted} must be past {first}"
            );
            // From the revision the error names, watching works again.
            assert!(s.watch_prefix("/t/compact/", Some(compacted)).await.is_ok());
            let mut events = s.watch_prefix("/t/compact/", None).await.unwrap();
            let r = s.put("/t/compact/b", b("after"), None).await.unwrap();
            assert_eq!(next_event(&mut events).await.revision(), r);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    let err = s
        .watch_prefix("/t/compact/", Some(first))
        .await
        .unwrap_err();
    assert!(!err.is_retriable());
}

struct Candidates {
    wins: tokio::sync::mpsc::UnboundedReceiver<(usize, Leadership)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Candidates {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn recv(c: &mut Candidates, limit: Duration) -> Option<(usize, Leadership)> {
    timeout(limit, c.wins.recv()).await.ok().flatten()
}

async fn start_candidates(h: &Harness, prefix: &str, count: usize) -> Candidates {
    let (tx, wins) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..count {
        let election = Election::new(h.client().await, prefix, TTL);
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let leadership = election.campaign(format!("candidate-{i}")).await.unwrap();
            let _ = tx.send((i, leadership));
        }));
    }
    Candidates { wins, tasks }
}

async fn election_has_one_leader_and_fails_over(h: &Harness) {
    let prefix = "/t/election";
    let observer = Election::new(h.store.clone(), prefix, TTL);
    // Every term seen in the leader key, to check that terms only move forward.
    let terms = Arc::new(std::sync::Mutex::new(Vec::<(Revision, Bytes)>::new()));
    let watcher = {
        let (observer, terms) = (observer.clone(), terms.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(Some(leader)) = observer.leader().await {
                    let mut terms = terms.lock().unwrap();
                    if terms.last().map(|t| t.0) != Some(leader.revision) {
                        terms.push((leader.revision, leader.value));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut candidates = start_candidates(h, prefix, 3).await;

    let (first, l1) = recv(&mut candidates, Duration::from_secs(10))
        .await
        .expect("a first leader");
    let leader = observer.leader().await.unwrap().unwrap();
    assert_eq!(
        (leader.value, leader.revision),
        (b(&format!("candidate-{first}")), l1.revision())
    );
    assert!(
        recv(&mut candidates, Duration::from_millis(1500))
            .await
            .is_none(),
        "two leaders at once"
    );

    // The leader's process dies: its lease runs out and someone else takes over.
    let died = Instant::now();
    drop(l1);
    let (second, l2) = recv(&mut candidates, TTL + Duration::from_secs(5))
        .await
        .expect("a second leader");
    assert!(
        died.elapsed() < TTL + Duration::from_secs(4),
        "failover took {:?}",
        died.elapsed()
    );
    assert_ne!(second, first);
    let leader = observer.leader().await.unwrap().unwrap();
    assert_eq!(
        (leader.value, leader.revision),
        (b(&format!("candidate-{second}")), l2.revision())
    );
    assert!(
        recv(&mut candidates, Duration::from_millis(500))
            .await
            .is_none(),
        "two leaders at once"
    );

    // A resignation hands over at once.
    l2.resign().await.unwrap();
    let (third, l3) = recv(&mut candidates, Duration::from_secs(3))
        .await
        .expect("a third leader");
    assert!(third != first && third != second);
    assert!(l3.revision() > leader.revision);
    tokio::time::sleep(Duration::from_millis(100)).await;
    l3.resign().await.unwrap();
    assert_eq!(observer.leader().await.unwrap(), None);

    watcher.abort();
    let terms = terms.lock().unwrap().clone();
    let values: Vec<_> = terms.iter().map(|t| t.1.clone()).collect();
    assert_eq!(
        values,
        [first, second, third].map(|i| b(&format!("candidate-{i}"))),
        "the leader key held each leader in turn, one at a time"
    );
    assert!(
        terms.windows(2).all(|w| w[0].0 < w[1].0),
        "terms only increase: {terms:?}"
    );
}

async fn leader_learns_it_lost(h: &Harness) {
    let s = h.store.clone();
    let election = Election::new(s.clone(), "/t/lost/", TTL);
    assert_eq!(election.key(), "/t/lost/leader");
    let l1 = timeout(Duration::from_secs(5), election.campaign("a"))
        .await
        .unwrap()
        .unwrap();
    let fenced = |l: &Leadership| {
        Txn::new()
            .when([l.fence()])
            .and_then([TxnOp::put("/t/lost/data", b("x"))])
    };
    assert!(s.txn(fenced(&l1)).await.unwrap().succeeded);

    // Someone deletes the key behind the leader's back.
    s.delete(election.key()).await.unwrap();
    timeout(Duration::from_secs(3), l1.lost())
        .await
        .expect("leader notices its key is gone");
    assert!(
        !s.txn(fenced(&l1)).await.unwrap().succeeded,
        "the fence stops a deposed leader"
    );
    l1.resign().await.unwrap();

    // The lease ends under the leader.
    let l2 = timeout(Duration::from_secs(5), election.campaign("b"))
        .await
        .unwrap()
        .unwrap();
    assert!(!l2.is_lost());
    s.revoke_lease(l2.lease_id()).await.unwrap();
    timeout(Duration::from_secs(3), l2.lost())
        .await
        .expect("leader notices its lease is gone");
    assert_eq!(election.leader().await.unwrap(), None);
}

mod embedded_only {
    use super::*;

    #[tokio::test]
    async fn closing_the_store_ends_its_watches() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap();
        let mut events = store.watch_prefix("/", None).await.unwrap();
        drop(store);
        let end = timeout(Duration::from_secs(2), events.next())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(end, Err(MetaError::Unavailable { .. })), "{end:?}");
        assert!(events.next().await.is_none(), "one error ends the stream");
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_the_history_gets_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history_events: 8,
            ..EmbeddedOptions::default()
        };
        let store = EmbeddedStore::open(dir.path(), options).await.unwrap();
        let mut events = store.watch_prefix("/", None).await.unwrap();
        for i in 0..20 {
            store.put(&format!("/k/{i}"), b("v"), None).await.unwrap();
        }
        // Nobody read the stream while 20 events went by: the first ones are gone.
        let result = timeout(Duration::from_secs(2), events.next())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(result, Err(MetaError::Compacted { requested: 2, .. })),
            "{result:?}"
        );
    }
}

mod etcd_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_etcd_outage_is_reported_as_unavailable() {
        bounded(async {
            let mut server = EtcdServer::start().expect("etcd must be installed");
            let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
            let by_url = strata_meta::open(&url).await.unwrap();
            by_url.put("/t/outage/k", b("v"), None).await.unwrap();
            let store = EtcdStore::connect(&[server.endpoint()], etcd_options())
                .await
                .unwrap();
            let mut events = store.watch_prefix("/t/outage/", None).await.unwrap();

            server.process().kill();
            let end = timeout(Duration::from_secs(15), events.next())
                .await
                .expect("a broken watch must report it")
                .expect("an error item before the end");
            let err = end.expect_err("no events after the kill");
            assert!(err.is_retriable(), "{err:?}");
            assert!(events.next().await.is_none());

            let err = timeout(Duration::from_secs(10), store.get("/t/outage/k"))
                .await
                .expect("requests time out instead of hanging")
                .unwrap_err();
            assert!(matches!(err, MetaError::Unavailable { .. }), "{err:?}");
            let err = EtcdStore::connect(&[server.endpoint()], etcd_options())
                .await
                .unwrap_err();
            assert!(err.is_retriable(), "{err:?}");
        })
        .await;
    }
}

/// A store configured for more operations per transaction than etcd's default takes
/// transactions that large and no larger; an etcd that allows fewer is found at connect.
mod txn_limits {
    use super::*;

    fn reads(n: usize) -> Txn {
        Txn::new().and_then((0..n).map(|i| TxnOp::get(format!("/t/limits/{i}"))))
    }

    async fn takes_exactly(store: &dyn MetaStore, limit: usize) {
        assert_eq!(store.max_txn_ops(), limit);
        let result = store.txn(reads(limit)).await.unwrap();
        assert!(result.succeeded);
        assert_eq!(result.gets.len(), limit);
        let err = store.txn(reads(limit + 1)).await.unwrap_err();
        assert!(
            matches!(&err, MetaError::InvalidArgument(m) if m.contains(&limit.to_string())),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_started_with_a_higher_limit_takes_transactions_that_large() {
        bounded(async {
            let server = EtcdServer::start().expect("etcd must be installed");
            let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
            let limit = strata_testkit::ETCD_MAX_TXN_OPS;
            takes_exactly(
                strata_meta::open_with(&url, limit, None)
                    .await
                    .unwrap()
                    .as_ref(),
                limit,
            )
            .await;
            takes_exactly(strata_meta::open(&url).await.unwrap().as_ref(), 128).await;

            let err = strata_meta::open_with(&url, 2 * limit, None)
                .await
                .unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(&format!("--max-txn-ops={}", 2 * limit))
                    && message.contains("STRATA_META_MAX_TXN_OPS"),
                "the error names both fixes: {message}"
            );
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_store_enforces_its_configured_limit() {
        bounded(async {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("embedded://{}", dir.path().join("meta").display());
            let store = strata_meta::open_with(&url, 1024, None).await.unwrap();
            takes_exactly(store.as_ref(), 1024).await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_limit_outside_the_range_is_refused_before_connecting() {
        for limit in [0, 127, strata_meta::MAX_TXN_OPS_CEILING + 1] {
            // Nothing listens on port 1: the limit is checked first.
            let err = strata_meta::open_with("etcd://127.0.0.1:1", limit, None)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, MetaError::InvalidArgument(m) if m.contains("max_txn_ops")),
                "{limit}: {err:?}"
            );
        }
    }
}
