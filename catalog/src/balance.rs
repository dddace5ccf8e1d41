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
mod tests;
