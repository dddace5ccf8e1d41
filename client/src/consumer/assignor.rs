//! Partition assignors the group leader runs (Kafka's `range` and `roundrobin`).

use std::collections::{BTreeMap, BTreeSet};

/// How the group leader splits partitions among members.
///
/// ```
/// use strata_client::{Assignor, Consumer};
/// let builder = Consumer::builder("127.0.0.1:7070")
///     .group("billing")
///     .assignors(vec![Assignor::RoundRobin, Assignor::Range]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignor {
    /// Per topic, each member gets a contiguous range of partitions; the first members get
    /// one extra when the count does not divide evenly (Kafka's `range`).
    Range,
    /// All partitions of all subscribed topics, dealt to members in turn (Kafka's
    /// `roundrobin`).
    RoundRobin,
}

impl Assignor {
    /// The protocol name members announce, as Kafka names it.
    ///
    /// ```
    /// assert_eq!(strata_client::Assignor::RoundRobin.name(), "roundrobin");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::RoundRobin => "roundrobin",
        }
    }

    /// The assignor with protocol name `name`.
    ///
    /// ```
    /// use strata_client::Assignor;
    /// assert_eq!(Assignor::from_name("range"), Some(Assignor::Range));
    /// assert_eq!(Assignor::from_name("sticky"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "range" => Some(Self::Range),
            "roundrobin" => Some(Self::RoundRobin),
            _ => None,
        }
    }

    /// Splits the partitions of `topics` (name → partition count) among `members` (member id
    /// → subscribed topics). Every member appears in the answer, possibly with nothing.
    pub(crate) fn assign(
        self,
        topics: &BTreeMap<String, u32>,
        members: &BTreeMap<String, Vec<String>>,
    ) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
        let mut result: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
            .keys()
            .map(|m| (m.clone(), BTreeMap::new()))
            .collect();
        let subscribers = |topic: &str| -> Vec<&String> {
            members
                .iter()
                .filter(|(_, subscribed)| subscribed.iter().any(|t| t == topic))
                .map(|(m, _)| m)
                .collect()
        };
        match self {
            Self::Range => {
                for (topic, &count) in topics {
                    let who = subscribers(topic);
                    if who.is_empty() {
                        continue;
                    }
                    let n = who.len() as u32;
                    let (each, extra) = (count / n, count % n);
                    let mut next = 0u32;
                    for (i, member) in who.iter().enumerate() {
                        let take = each + u32::from((i as u32) < extra);
                        let share: Vec<i32> = (next..next + take).map(|p| p as i32).collect();
                        next += take;
                        if !share.is_empty() {
                            result
                                .entry((*member).clone())
                                .or_default()
                                .insert(topic.clone(), share);
                        }
                    }
                }
            }
            Self::RoundRobin => {
                let all: BTreeSet<&String> = members.keys().collect();
                let ring: Vec<&String> = all.into_iter().collect();
                let mut turn = 0usize;
                for (topic, &count) in topics {
                    for p in 0..count {
                        // The next member in the ring that subscribes to this topic.
                        for _ in 0..ring.len() {
                            let member = ring[turn % ring.len()];
                            turn += 1;
                            if members[member].iter().any(|t| t == topic) {
                                result
                                    .entry(member.clone())
                                    .or_default()
                                    .entry(topic.clone())
                                    .or_default()
                                    .push(p as i32);
                                break;
                            }
                        }
                    }
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(n: usize, topics: &[&str]) -> BTreeMap<String, Vec<String>> {
        (0..n)
            .map(|i| {
                (
                    format!("m{i}"),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn range_splits_twelve_partitions_four_each() {
        let topics = BTreeMap::from([("t".to_string(), 12)]);
        let out = Assignor::Range.assign(&topics, &members(3, &["t"]));
        assert_eq!(out["m0"]["t"], vec![0, 1, 2, 3]);
        assert_eq!(out["m1"]["t"], vec![4, 5, 6, 7]);
        assert_eq!(out["m2"]["t"], vec![8, 9, 10, 11]);
    }

    #[test]
    fn range_gives_the_first_members_the_remainder() {
        let topics = BTreeMap::from([("t".to_string(), 5)]);
        let out = Assignor::Range.assign(&topics, &members(2, &["t"]));
        assert_eq!(out["m0"]["t"], vec![0, 1, 2]);
        assert_eq!(out["m1"]["t"], vec![3, 4]);
    }

    #[test]
    fn roundrobin_deals_in_turn_and_skips_non_subscribers() {
        let topics = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 2)]);
        let mut m = members(2, &["a"]);
        m.get_mut("m1").unwrap().push("b".into());
        let out = Assignor::RoundRobin.assign(&topics, &m);
        assert_eq!(out["m0"]["a"], vec![0, 2]);
        assert_eq!(out["m1"]["a"], vec![1]);
        assert_eq!(out["m1"]["b"], vec![0, 1]);
        assert!(!out["m0"].contains_key("b"));
    }

    proptest! {
        /// Every partition goes to exactly one subscriber, and shares differ by at most one.
        #[test]
        fn assignments_are_complete_and_balanced(
            count in 0u32..200, n in 1usize..9, robin in any::<bool>()
        ) {
            let topics = BTreeMap::from([("t".to_string(), count)]);
            let assignor = if robin { Assignor::RoundRobin } else { Assignor::Range };
            let out = assignor.assign(&topics, &members(n, &["t"]));
            let mut seen: Vec<i32> = out.values().flat_map(|m| m.get("t").cloned().unwrap_or_default()).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..count as i32).collect::<Vec<_>>());
            let sizes: Vec<usize> = out.values().map(|m| m.get("t").map_or(0, Vec::len)).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }
}
