//! Balanced partition assignment with the fewest moves.
//!
//! Given every partition's current owner and the brokers that may own partitions, compute an
//! assignment where per-broker counts differ by at most one, and as few partitions as possible
//! change owner:
//!
//! 1. Partitions on ineligible (dead or drained) brokers, or unassigned, must move.
//! 2. With `n` partitions over `b` brokers, every broker gets `n / b`, and `n % b` of them one
//!    more. The brokers that already hold the most keep the extra slots, which minimises moves.
//! 3. Brokers above their target give up their excess; everything that must move goes to the
//!    least loaded brokers, preferring one with the fewest partitions of the same topic so a
//!    topic's partitions spread out.

use std::collections::{BTreeMap, BTreeSet};

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub topic: String,
    pub partition: u32,
}

impl PartitionKey {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Computes the new owner of every partition. Returns an empty map when no broker is eligible
/// (nothing can be assigned; the caller leaves assignments as they are).
pub fn rebalance(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
) -> BTreeMap<PartitionKey, String> {
    assign(current, eligible, true)
}

/// Gives every partition without an eligible owner to the least loaded broker and leaves every
/// other partition where it is, even if the result is uneven (an operator's manual move stays
/// put until brokers join or leave, or a rebalance is asked for).
pub fn place_homeless(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
) -> BTreeMap<PartitionKey, String> {
    assign(current, eligible, false)
}

fn assign(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
    shed_excess: bool,
) -> BTreeMap<PartitionKey, String> {
    if eligible.is_empty() {
        return BTreeMap::new();
    }
    let mut owned: BTreeMap<&str, Vec<&PartitionKey>> =
        eligible.iter().map(|b| (b.as_str(), Vec::new())).collect();
    let mut homeless: Vec<&PartitionKey> = Vec::new();
    for (partition, owner) in current {
        match owner.as_deref().and_then(|o| owned.get_mut(o)) {
            Some(list) => list.push(partition),
            None => homeless.push(partition),
        }
    }

    // Targets: the most loaded brokers keep the `extra` slots (ties broken by name).
    let (base, extra) = (
        current.len() / eligible.len(),
        current.len() % eligible.len(),
    );
    let mut by_load: Vec<&str> = owned.keys().copied().collect();
    by_load.sort_by_key(|b| (std::cmp::Reverse(owned[b].len()), *b));
    let target: BTreeMap<&str, usize> = by_load
        .iter()
        .enumerate()
        .map(|(i, b)| (*b, base + usize::from(i < extra)))
        .collect();

    // Overloaded brokers shed their highest-numbered partitions (a stable, predictable choice).
    for (broker, list) in owned.iter_mut().filter(|_| shed_excess) {
        let keep = target[broker];
        if list.len() > keep {
            list.sort();
            homeless.extend(list.drain(keep..));
        }
    }

    homeless.sort();
    for partition in homeless {
        let topic_count =
            |list: &Vec<&PartitionKey>| list.iter().filter(|p| p.topic == partition.topic).count();
        let broker = owned
            .iter()
            .filter(|(b, list)| !shed_excess || list.len() < target[*b])
            .min_by_key(|(b, list)| (list.len(), topic_count(list), **b))
            .map(|(b, _)| *b)
            .expect("targets add up to the number of partitions");
        owned
            .get_mut(broker)
            .expect("broker exists")
            .push(partition);
    }

    owned
        .into_iter()
        .flat_map(|(broker, list)| {
            list.into_iter()
                .map(move |p| (p.clone(), broker.to_owned()))
        })
        .collect()
}

/// The least number of partitions that must change owner to reach a balanced assignment.
pub fn minimum_moves(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
) -> usize {
    if eligible.is_empty() {
        return 0;
    }
    let mut loads: Vec<usize> = eligible
        .iter()
        .map(|b| {
            current
                .values()
                .filter(|o| o.as_deref() == Some(b.as_str()))
                .count()
        })
        .collect();
    let homeless = current.len() - loads.iter().sum::<usize>();
    loads.sort_unstable_by(|a, b| b.cmp(a));
    let (base, extra) = (
        current.len() / eligible.len(),
        current.len() % eligible.len(),
    );
    homeless
        + loads
            .iter()
            .enumerate()
            .map(|(i, load)| load.saturating_sub(base + usize::from(i < extra)))
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn brokers(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn check(
        current: &BTreeMap<PartitionKey, Option<String>>,
        eligible: &BTreeSet<String>,
    ) -> BTreeMap<PartitionKey, String> {
        let next = rebalance(current, eligible);
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
        let next = place_homeless(&current, &brokers(&["a", "b"]));
        assert_eq!(next[&PartitionKey::new("t", 4)], "a");
        assert_eq!(next.values().filter(|b| *b == "b").count(), 3);
    }

    #[test]
    fn no_eligible_broker_assigns_nothing() {
        let current = BTreeMap::from([(PartitionKey::new("t", 0), Some("a".to_string()))]);
        assert!(rebalance(&current, &BTreeSet::new()).is_empty());
    }

    proptest! {
        #[test]
        fn always_balanced_with_fewest_moves(
            owners in proptest::collection::vec(proptest::option::of(0usize..8), 0..120),
            alive in proptest::collection::btree_set(0usize..8, 1..8),
        ) {
            let current = owners
                .iter()
                .enumerate()
                .map(|(i, o)| (PartitionKey::new(format!("t{}", i % 3), i as u32), o.map(|b| format!("b{b}"))))
                .collect();
            let eligible = alive.iter().map(|b| format!("b{b}")).collect();
            check(&current, &eligible);
        }
    }
}
