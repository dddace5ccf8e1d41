//! Balance and fewest moves, on hand-picked cases and on random ones.

use proptest::prelude::*;

use super::*;

fn brokers(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn check(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
) -> BTreeMap<PartitionKey, String> {
    check_in_zones(current, eligible, &Zones::new())
}

/// [`check`], with brokers in `zones`.
fn check_in_zones(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
    zones: &Zones,
) -> BTreeMap<PartitionKey, String> {
    let next = rebalance(current, eligible, zones);
    assert_eq!(next.len(), current.len(), "every partition is assigned");
    let mut counts: BTreeMap<&str, usize> = eligible.iter().map(|b| (b.as_str(), 0)).collect();
    for owner in next.values() {
        *counts
            .get_mut(owner.as_str())
            .expect("only eligible brokers own partitions") += 1;
    }
    let (min, max) = (
        counts.values().min().unwrap(),
        counts.values().max().unwrap(),
    );
    assert!(max - min <= 1, "balanced: {counts:?}");
    let moved = current
        .iter()
        .filter(|(p, o)| o.as_deref() != Some(next[*p].as_str()))
        .count();
    assert_eq!(moved, minimum_moves(current, eligible), "fewest moves");
    next
}

#[test]
fn fresh_topic_spreads_evenly() {
    let current = (0..12).map(|p| (PartitionKey::new("t", p), None)).collect();
    let next = check(&current, &brokers(&["a", "b", "c"]));
    assert_eq!(next.values().filter(|b| *b == "a").count(), 4);
}

#[test]
fn a_joining_broker_takes_only_its_share() {
    let abc = brokers(&["a", "b", "c"]);
    let current = (0..12).map(|p| (PartitionKey::new("t", p), None)).collect();
    let placed: BTreeMap<_, _> = check(&current, &abc)
        .into_iter()
        .map(|(p, b)| (p, Some(b)))
        .collect();
    let next = check(&placed, &brokers(&["a", "b", "c", "d"]));
    assert_eq!(next.values().filter(|b| *b == "d").count(), 3);
    let moved = placed
        .iter()
        .filter(|(p, o)| o.as_deref() != Some(next[*p].as_str()))
        .count();
    assert_eq!(moved, 3, "only the new broker's share moves");
}

#[test]
fn a_dead_brokers_partitions_are_spread() {
    let current = (0..9)
        .map(|p| {
            (
                PartitionKey::new("t", p),
                Some(["a", "b", "c"][p as usize % 3].to_string()),
            )
        })
        .collect();
    let next = check(&current, &brokers(&["a", "b"]));
    assert!(next.values().all(|b| b != "c"));
}

#[test]
fn topics_spread_across_brokers() {
    let current = (0..2)
        .flat_map(|t| (0..4).map(move |p| (PartitionKey::new(format!("t{t}"), p), None)))
        .collect();
    let next = check(&current, &brokers(&["a", "b"]));
    for topic in ["t0", "t1"] {
        let on_a = next
            .iter()
            .filter(|(p, b)| p.topic == topic && *b == "a")
            .count();
        assert_eq!(on_a, 2, "{topic} split 2/2");
    }
}

#[test]
fn homeless_placement_keeps_manual_moves() {
    // b holds three after an operator's move; only c's orphan moves, to the least loaded.
    let current: BTreeMap<_, _> = [("a", 0), ("b", 1), ("b", 2), ("b", 3), ("c", 4)]
        .into_iter()
        .map(|(b, p)| (PartitionKey::new("t", p), Some(b.to_string())))
        .collect();
    let next = place_homeless(&current, &brokers(&["a", "b"]), &Zones::new());
    assert_eq!(next[&PartitionKey::new("t", 4)], "a");
    assert_eq!(next.values().filter(|b| *b == "b").count(), 3);
}

#[test]
fn no_eligible_broker_assigns_nothing() {
    let current = BTreeMap::from([(PartitionKey::new("t", 0), Some("a".to_string()))]);
    assert!(rebalance(&current, &BTreeSet::new(), &Zones::new()).is_empty());
}

#[test]
fn a_topics_partitions_spread_over_zones_before_brokers() {
    // Zone x holds a1 and a2, zone y holds b1 and b2; each broker already has one partition of
    // another topic. By name alone t's two partitions would go to a1 and a2, both in x.
    let zones: Zones = [("a1", "x"), ("a2", "x"), ("b1", "y"), ("b2", "y")]
        .into_iter()
        .map(|(b, z)| (b.to_string(), z.to_string()))
        .collect();
    let mut current: BTreeMap<_, _> = ["a1", "a2", "b1", "b2"]
        .into_iter()
        .enumerate()
        .map(|(p, b)| (PartitionKey::new("other", p as u32), Some(b.to_string())))
        .collect();
    current.insert(PartitionKey::new("t", 0), None);
    current.insert(PartitionKey::new("t", 1), None);
    let eligible = brokers(&["a1", "a2", "b1", "b2"]);
    let next = check_in_zones(&current, &eligible, &zones);
    let t_zones: BTreeSet<&str> = (0..2)
        .map(|p| zones[&next[&PartitionKey::new("t", p)]].as_str())
        .collect();
    assert_eq!(t_zones, BTreeSet::from(["x", "y"]));
    // Without zones the same state puts both on zone x's brokers: the rule above is what
    // spread them.
    let plain = check(&current, &eligible);
    let plain_zones: BTreeSet<&str> = (0..2)
        .map(|p| zones[&plain[&PartitionKey::new("t", p)]].as_str())
        .collect();
    assert_eq!(plain_zones, BTreeSet::from(["x"]));
}

proptest! {
    #[test]
    fn always_balanced_with_fewest_moves(
        owners in proptest::collection::vec(proptest::option::of(0usize..8), 0..120),
        alive in proptest::collection::btree_set(0usize..8, 1..8),
        zone_count in 0usize..4,
    ) {
        let current = owners
            .iter()
            .enumerate()
            .map(|(i, o)| (PartitionKey::new(format!("t{}", i % 3), i as u32), o.map(|b| format!("b{b}"))))
            .collect();
        let eligible = alive.iter().map(|b| format!("b{b}")).collect();
        // Zones change which broker takes what, never the balance or the number of moves.
        let zones: Zones = (0..8)
            .filter(|_| zone_count > 0)
            .map(|b| (format!("b{b}"), format!("z{}", b % zone_count.max(1))))
            .collect();
        check_in_zones(&current, &eligible, &zones);
    }
}
