//! Zones: copies of an object go to distinct zones when there are enough, a metric counts the
//! objects that could not, and reads go to the process's own zone first.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{Cluster, cluster_with, zoned};
use object_store::path::Path;
use strata_storage::pool::{Hedging, NodeSpec};

const ZONES: [&str; 6] = ["a", "a", "b", "b", "c", "c"];

fn zones_of(placement: &strata_storage::Placement) -> HashSet<&'static str> {
    placement
        .nodes
        .iter()
        .map(|id| ZONES[Cluster::index(id)])
        .collect()
}

#[tokio::test]
async fn copies_go_to_distinct_zones_while_the_zones_have_healthy_nodes() {
    let c = cluster_with(6, 2, 21, |config| {
        config.nodes = zoned(&ZONES);
        config.hedging = Hedging::OFF;
    });
    for i in 0..200 {
        let placement = c
            .pool
            .put(&Path::from(format!("z{i}")), "v".into())
            .await
            .unwrap();
        assert_eq!(zones_of(&placement).len(), 2, "{placement:?}");
    }
    // Still random within that rule: every node got a share.
    assert!(c.faults.iter().all(|f| f.counts().puts > 20));
    assert_eq!(c.metric("storage_placements_short_of_zones_total"), 0.0);

    // Zones a and b go dark: the copies can only go to c's two nodes, and the metric says so.
    for f in &c.faults[..4] {
        f.fail_all(true);
    }
    for i in 0..10 {
        let placement = c
            .pool
            .put(&Path::from(format!("y{i}")), "v".into())
            .await
            .unwrap();
        assert_eq!(zones_of(&placement), HashSet::from(["c"]));
    }
    assert_eq!(c.metric("storage_placements_short_of_zones_total"), 10.0);
}

#[tokio::test]
async fn reads_go_to_the_local_zone_first() {
    let c = cluster_with(6, 2, 22, |config| {
        config.nodes = zoned(&ZONES);
        config.local_zone = Some("b".into());
        config.hedging = Hedging::OFF;
    });
    let mut placements = Vec::new();
    for i in 0..60 {
        let path = Path::from(format!("r{i}"));
        placements.push((c.pool.put(&path, "v".into()).await.unwrap(), path));
    }
    for (placement, path) in &placements {
        for _ in 0..3 {
            c.pool.get(placement, path).await.unwrap();
        }
    }
    let in_b: u64 = c.faults[2..4].iter().map(|f| f.counts().gets).sum();
    let elsewhere: u64 = c.faults.iter().map(|f| f.counts().gets).sum::<u64>() - in_b;
    let with_copy_in_b = placements
        .iter()
        .filter(|(p, _)| zones_of(p).contains("b"))
        .count();
    assert!(with_copy_in_b > 0 && with_copy_in_b < placements.len());
    // Objects with a copy in b are read there, the others from a or c.
    assert_eq!(in_b, 3 * with_copy_in_b as u64);
    assert_eq!(elsewhere, 3 * (placements.len() - with_copy_in_b) as u64);
}

#[test]
fn a_node_spec_names_its_zone_with_at() {
    let spec: NodeSpec = "n1@eu-west-1a=s3://bucket?endpoint=http://h:1"
        .parse()
        .unwrap();
    assert_eq!(
        (spec.id.0.as_str(), spec.zone.as_deref()),
        ("n1", Some("eu-west-1a"))
    );
    assert_eq!(spec.url, "s3://bucket?endpoint=http://h:1");
    let plain: NodeSpec = "n2=file:///d".parse().unwrap();
    assert_eq!(plain.zone, None);
    for bad in ["n1@=file:///d", "n1@zone a=file:///d", "@a=file:///d"] {
        let err = bad.parse::<NodeSpec>().unwrap_err().to_string();
        assert!(err.contains("zone") || err.contains("name"), "{bad}: {err}");
    }
}
