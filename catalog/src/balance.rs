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
//!    least loaded brokers, preferring one whose zone holds the fewest partitions of the same
//!    topic, then one that does itself, so a topic's partitions spread over zones and brokers
//!    (a zone outage then takes as few of any topic's partitions as it can). A broker without
//!    a zone counts as a zone of its own.

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

/// The availability zone of each broker that has one.
pub type Zones = BTreeMap<String, String>;

/// Computes the new owner of every partition. Returns an empty map when no broker is eligible
/// (nothing can be assigned; the caller leaves assignments as they are).
pub fn rebalance(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
    zones: &Zones,
) -> BTreeMap<PartitionKey, String> {
    assign(current, eligible, zones, true)
}

/// Gives every partition without an eligible owner to the least loaded broker and leaves every
/// other partition where it is, even if the result is uneven (an operator's manual move stays
/// put until brokers join or leave, or a rebalance is asked for).
pub fn place_homeless(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
    zones: &Zones,
) -> BTreeMap<PartitionKey, String> {
    assign(current, eligible, zones, false)
}

fn assign(
    current: &BTreeMap<PartitionKey, Option<String>>,
    eligible: &BTreeSet<String>,
    zones: &Zones,
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

    // Targets: the most loaded brokers keep the `extra` slots. Among equally loaded ones the
    // slots go round the zones (the first broker of each zone, then the second, ...; by name
    // within a zone), so a topic with fewer partitions than brokers is not all in one zone.
    let zone_of = |b: &str| -> String { zones.get(b).cloned().unwrap_or_else(|| b.to_owned()) };
    let (base, extra) = (
        current.len() / eligible.len(),
        current.len() % eligible.len(),
    );
    let mut seen: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let rank: BTreeMap<&str, usize> = owned
        .iter()
        .map(|(b, list)| {
            let n = seen.entry((list.len(), zone_of(b))).or_default();
            *n += 1;
            (*b, *n)
        })
        .collect();
    let mut by_load: Vec<&str> = owned.keys().copied().collect();
    by_load.sort_by_key(|b| (std::cmp::Reverse(owned[b].len()), rank[b], *b));
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
        let mut in_zone: BTreeMap<String, usize> = BTreeMap::new();
        for (b, list) in &owned {
            *in_zone.entry(zone_of(b)).or_default() += topic_count(list);
        }
        let broker = owned
            .iter()
            .filter(|(b, list)| !shed_excess || list.len() < target[*b])
            .min_by_key(|(b, list)| (list.len(), in_zone[&zone_of(b)], topic_count(list), **b))
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
