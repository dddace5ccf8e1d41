//! The reconcile loop, in process, on both metadata backends: the embedded store and a real
//! etcd. What the admin operations do on their own is tested in `strata-catalog`.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_catalog::admin::NewTopic;
use strata_catalog::{Admin, Unreported};
use strata_controller::metrics::Metrics;
use strata_controller::{Controller, ControllerConfig, ProbeConfig};
use strata_meta::MetaStore;
use strata_meta::schema::{self, BrokerInfo, Keyspace};
use tokio_util::sync::CancellationToken;

/// How many partitions of `topic` each broker owns.
async fn load_of(admin: &Admin, topic: &str, broker: &str) -> usize {
    admin
        .list_partitions(Some(topic), &Unreported)
        .await
        .unwrap()
        .iter()
        .filter(|p| p.broker.as_deref() == Some(broker))
        .count()
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn register(meta: &dyn MetaStore, keys: &Keyspace, id: &str) {
    let info = BrokerInfo {
        id: id.into(),
        addr: format!("{id}:7071"),
        started_ms: 0,
        zone: String::new(),
    };
    meta.put(&keys.broker(id), schema::encode(&info), None)
        .await
        .unwrap();
}

async fn scenario(meta: Arc<dyn MetaStore>) {
    let keys = Keyspace::new("reconcile-test").unwrap();
    let admin = Admin::new(meta.clone(), keys.clone());
    for id in ["b1", "b2", "b3"] {
        register(meta.as_ref(), &keys, id).await;
    }
    let metrics = Arc::new(Metrics::default());
    let config = ControllerConfig {
        id: "c".into(),
        election_ttl: Duration::from_secs(2),
        resync_interval: Duration::from_secs(1),
        // The brokers here are registrations without processes: nothing to probe.
        probe: ProbeConfig {
            interval: Duration::ZERO,
            ..Default::default()
        },
    };
    let controller = Controller::new(meta.clone(), keys.clone(), config, metrics.clone());
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { controller.run(cancel).await }
    });
    admin
        .create_topic(NewTopic {
            name: "t".into(),
            partitions: 9,
            ..Default::default()
        })
        .await
        .unwrap();
    admin.drain("b1").await.unwrap();

    // A new broker: the running controller gives it its share (9 over b2..b4: three), and
    // the drained broker stays empty through the rebalance.
    register(meta.as_ref(), &keys, "b4").await;
    wait_for("b4 to get partitions", || async {
        load_of(&admin, "t", "b4").await == 3
    })
    .await;
    assert_eq!(load_of(&admin, "t", "b1").await, 0);
    assert!(metrics.render().contains("strata_controller_is_leader 1"));

    cancel.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_scenario_on_embedded_store() {
    let (_dir, meta) = strata_meta::testing::embedded().await;
    scenario(meta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_scenario_on_etcd() {
    let (_etcd, meta) = strata_meta::testing::etcd().await;
    scenario(meta).await;
}
