//! Message trace: which messages are traced, the events written for them, and the path a
//! query rebuilds from those events.
//!
//! A topic traces `trace_sample_ppm` parts per million of its messages. Which ones is a pure
//! function of the message's place ([`sampled`]): the proxy that takes the produce, the one
//! that delivers the message and the one that commits a group past it decide alike without
//! telling each other. Each writes one [`TraceEvent`] per traced message to the internal
//! topic [`TRACE_TOPIC`], keyed by the message id, on the partition the id hashes to
//! ([`trace_partition`]), so a query reads one partition from the message's time on.

use serde::{Deserialize, Serialize};
use strata_proto::v1;

pub use strata_format::trace::TRACE_TOPIC;

/// Parts per million: the unit of a topic's sampling rate.
pub const PPM: u32 = 1_000_000;

/// Whether the message at `offset` of `topic`/`partition` is traced at `ppm`.
pub fn sampled(topic: &str, partition: u32, offset: i64, ppm: u32) -> bool {
    if ppm == 0 {
        return false;
    }
    picked(seed(topic, partition), offset, ppm)
}

fn seed(topic: &str, partition: u32) -> u64 {
    u64::from(crc32c::crc32c(topic.as_bytes())) << 32 | u64::from(partition)
}

fn picked(seed: u64, offset: i64, ppm: u32) -> bool {
    ppm >= PPM || mix(seed ^ (offset as u64).rotate_left(17)) % u64::from(PPM) < u64::from(ppm)
}

/// SplitMix64's finaliser: neighbouring offsets land far apart, so a rate of 1% picks about
/// one message in a hundred of any stretch of the log.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The offsets of `[from, to)` traced at `ppm`.
pub fn sampled_in(topic: &str, partition: u32, from: i64, to: i64, ppm: u32) -> Vec<i64> {
    if ppm == 0 {
        return Vec::new();
    }
    let seed = seed(topic, partition);
    (from..to).filter(|o| picked(seed, *o, ppm)).collect()
}

/// A message's id, `topic/partition/offset`: what `strata trace` takes. Topic names cannot
/// hold a `/`, so the id splits back unambiguously.
pub fn message_id(topic: &str, partition: u32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

/// The trace topic's partition that holds the events of message `id`.
pub fn trace_partition(id: &str, partitions: u32) -> u32 {
    crc32c::crc32c(id.as_bytes()) % partitions.max(1)
}

/// Where a produced message spent its time, in microseconds after the proxy received it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSteps {
    pub buffered_us: u64,
    pub flush_started_us: u64,
    pub written_us: u64,
    pub committed_us: u64,
}

impl StoreSteps {
    /// Places the broker's durations (on its own clock) inside the proxy's round trip of
    /// `round_trip_us`: the broker's part is centred in it, so network time is split evenly
    /// and the steps keep their order whatever the two hosts' clocks say.
    /// Steps the broker reports longer than the round trip (a resent batch's unit, written
    /// before this call) are cut at its end.
    pub fn place(times: &v1::StoreTimes, round_trip_us: u64) -> Self {
        let on_broker = times.buffered_us + times.put_us + times.commit_us;
        let arrived = round_trip_us.saturating_sub(on_broker) / 2;
        let within = |us: u64| us.min(round_trip_us);
        let flush_started = arrived + times.buffered_us;
        let written = flush_started + times.put_us;
        Self {
            buffered_us: within(arrived),
            flush_started_us: within(flush_started),
            written_us: within(written),
            committed_us: within(written + times.commit_us),
        }
    }
}

/// One step of a traced message, as written to the trace topic (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A proxy took the produce, a broker stored it, the proxy acknowledged it.
    Produced {
        /// When the proxy received the produce (milliseconds since the Unix epoch).
        received_ms: i64,
        proxy: String,
        client: String,
        /// The broker that stored it, when the answer said.
        broker: Option<String>,
        /// Only for produces acknowledged once durable.
        store: Option<StoreSteps>,
        acked_us: u64,
    },
    /// A proxy handed the message to a consumer.
    Delivered {
        at_ms: i64,
        proxy: String,
        client: String,
        /// The consumer's group, when the consumer said (the SDK does; a Kafka fetch does not).
        group: Option<String>,
    },
    /// A group committed a position past the message.
    GroupCommitted {
        at_ms: i64,
        proxy: String,
        group: String,
        member: String,
    },
}

impl TraceEvent {
    /// When the event began (milliseconds since the Unix epoch): the trace record's timestamp.
    pub fn at_ms(&self) -> i64 {
        match self {
            Self::Produced { received_ms, .. } => *received_ms,
            Self::Delivered { at_ms, .. } | Self::GroupCommitted { at_ms, .. } => *at_ms,
        }
    }

    /// The steps this event stands for, in order.
    pub fn steps(&self) -> Vec<v1::TraceStep> {
        let step = |name: &str, at_us: i64, by: String, detail: String| v1::TraceStep {
            step: name.to_owned(),
            at_us,
            by,
            detail,
        };
        match self {
            Self::Produced {
                received_ms,
                proxy,
                client,
                broker,
                store,
                acked_us,
            } => {
                let start = received_ms * 1000;
                let at = |us: u64| start + us as i64;
                let broker = broker.clone().unwrap_or_else(|| "broker".into());
                let mut steps = vec![step(
                    "received",
                    start,
                    format!("proxy {proxy}"),
                    format!("from {client}"),
                )];
                if let Some(s) = store {
                    steps.extend([
                        step("buffered", at(s.buffered_us), broker.clone(), String::new()),
                        step(
                            "flush_started",
                            at(s.flush_started_us),
                            broker.clone(),
                            String::new(),
                        ),
                        step(
                            "written",
                            at(s.written_us),
                            broker.clone(),
                            "flush object in storage".into(),
                        ),
                        step(
                            "committed",
                            at(s.committed_us),
                            broker,
                            "in the metadata store".into(),
                        ),
                    ]);
                }
                steps.push(step(
                    "acked",
                    at(*acked_us),
                    format!("proxy {proxy}"),
                    format!("to {client}"),
                ));
                steps
            }
            Self::Delivered {
                at_ms,
                proxy,
                client,
                group,
            } => vec![step(
                "delivered",
                at_ms * 1000,
                format!("proxy {proxy}"),
                match group {
                    Some(g) => format!("to {client} of group {g}"),
                    None => format!("to {client}"),
                },
            )],
            Self::GroupCommitted {
                at_ms,
                proxy,
                group,
                member,
            } => vec![step(
                "group_committed",
                at_ms * 1000,
                format!("proxy {proxy}"),
                if member.is_empty() {
                    format!("group {group}")
                } else {
                    format!("group {group}, member {member}")
                },
            )],
        }
    }
}

/// The steps of `events` in time order (a stable sort: a produce's own steps keep theirs).
pub fn path(events: &[TraceEvent]) -> Vec<v1::TraceStep> {
    let mut steps: Vec<v1::TraceStep> = events.iter().flat_map(TraceEvent::steps).collect();
    steps.sort_by_key(|s| s.at_us);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_takes_about_the_rate_and_everyone_agrees() {
        let taken = sampled_in("orders", 3, 0, 200_000, 10_000).len();
        assert!(
            (1_600..=2_400).contains(&taken),
            "1% of 200,000 took {taken}"
        );
        assert_eq!(
            sampled_in("orders", 3, 0, 1_000, 10_000),
            sampled_in("orders", 3, 0, 1_000, 10_000)
        );
        assert!(sampled_in("orders", 3, 0, 1_000, 0).is_empty());
        assert_eq!(sampled_in("orders", 3, 0, 1_000, PPM).len(), 1_000);
        assert_ne!(
            sampled_in("orders", 3, 0, 10_000, 10_000),
            sampled_in("orders", 4, 0, 10_000, 10_000),
            "partitions sample different offsets"
        );
    }

    #[test]
    fn store_steps_fit_inside_the_round_trip_in_order() {
        let times = v1::StoreTimes {
            buffered_us: 1_000,
            put_us: 5_000,
            commit_us: 2_000,
        };
        let s = StoreSteps::place(&times, 10_000);
        assert_eq!(s.buffered_us, 1_000);
        assert_eq!(s.flush_started_us, 2_000);
        assert_eq!(s.written_us, 7_000);
        assert_eq!(s.committed_us, 9_000);
        // Broker times longer than the round trip (a resent batch's earlier unit) still end
        // within it, in order.
        let s = StoreSteps::place(&times, 4_000);
        let steps = [
            s.buffered_us,
            s.flush_started_us,
            s.written_us,
            s.committed_us,
        ];
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{s:?}");
        assert_eq!(s.committed_us, 4_000, "cut at the acknowledgement");
    }

    #[test]
    fn a_path_orders_the_steps_of_all_events() {
        let produced = TraceEvent::Produced {
            received_ms: 1_000,
            proxy: "p".into(),
            client: "c".into(),
            broker: Some("b".into()),
            store: Some(StoreSteps {
                buffered_us: 10,
                flush_started_us: 20,
                written_us: 30,
                committed_us: 40,
            }),
            acked_us: 50,
        };
        let committed = TraceEvent::GroupCommitted {
            at_ms: 3,
            proxy: "p".into(),
            group: "g".into(),
            member: String::new(),
        };
        let delivered = TraceEvent::Delivered {
            at_ms: 2,
            proxy: "p".into(),
            client: "c".into(),
            group: Some("g".into()),
        };
        let json = serde_json::to_string(&produced).unwrap();
        assert!(json.contains(r#""step":"produced""#), "{json}");
        assert_eq!(serde_json::from_str::<TraceEvent>(&json).unwrap(), produced);
        let names: Vec<String> = path(&[committed, delivered, produced])
            .into_iter()
            .map(|s| s.step)
            .collect();
        assert_eq!(
            names,
            [
                "delivered",
                "group_committed",
                "received",
                "buffered",
                "flush_started",
                "written",
                "committed",
                "acked"
            ]
        );
    }
}
