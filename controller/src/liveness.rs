//! Spots crashed brokers before their leases run out.
//!
//! A broker's registration lives on a lease (a few seconds); that alone bounds how long a
//! crashed broker's partitions stay unwritable. A crashed process is usually visible much
//! sooner: its port refuses connections (the kernel answers with a reset). The active
//! controller connects to every registered broker a few times a second, and when one refuses
//! connections on consecutive probes it ends that broker's lease, which deletes the
//! registration and moves its partitions at once.
//!
//! Only a refusal counts — never a timeout — so a broker that is slow, paused or cut off by the
//! network is left to its lease as before. Ending a lease wrongly costs a move, never data:
//! every commit is fenced by the partition epoch. Brokers keep their listener open until they
//! have left the cluster, so a graceful stop is never mistaken for a crash.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use strata_config::{Config, ControllerSection};
use strata_meta::MetaStore;
use strata_meta::schema::{self, BrokerInfo, Keyspace};

/// How often and how strictly the controller probes.
#[derive(Debug, Clone, Copy)]
pub struct ProbeConfig {
    /// Between two rounds of probes; zero turns probing off.
    pub interval: Duration,
    /// Consecutive refused connections after which a broker counts as dead.
    pub refusals: u32,
}

impl From<&ControllerSection> for ProbeConfig {
    fn from(s: &ControllerSection) -> Self {
        Self {
            interval: Duration::from_millis(s.broker_probe_ms),
            refusals: s.broker_probe_refusals,
        }
    }
}

/// The shipped `[controller]` settings.
impl Default for ProbeConfig {
    fn default() -> Self {
        Self::from(&Config::shipped().controller)
    }
}

enum Probe {
    Answered,
    Refused,
    /// Timed out or failed otherwise: no conclusion.
    Unknown,
}

async fn probe(addr: &str, timeout: Duration) -> Probe {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Probe::Answered,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        _ => Probe::Unknown,
    }
}

/// Probes every registered broker until the future is dropped (when leadership ends).
pub(crate) async fn run(meta: Arc<dyn MetaStore>, keys: Keyspace, config: ProbeConfig) {
    if config.interval.is_zero() {
        return std::future::pending().await;
    }
    // Refusals in a row, per broker registration (its lease), so a restarted broker on the
    // same id starts from zero.
    let mut refused: HashMap<i64, u32> = HashMap::new();
    loop {
        tokio::time::sleep(config.interval).await;
        let Ok((kvs, _)) = meta.range(&keys.brokers()).await else {
            continue;
        };
        let brokers: Vec<(BrokerInfo, i64)> = kvs
            .iter()
            .filter_map(|kv| {
                let info = schema::decode::<BrokerInfo>(&kv.key, &kv.value).ok()?;
                Some((info, kv.lease?))
            })
            .collect();
        let answers = join_all(
            brokers
                .iter()
                .map(|(info, _)| probe(&info.addr, config.interval)),
        )
        .await;
        let mut seen = HashMap::new();
        for ((info, lease), answer) in brokers.into_iter().zip(answers) {
            let count = match answer {
                Probe::Refused => refused.get(&lease).copied().unwrap_or(0) + 1,
                Probe::Answered => 0,
                Probe::Unknown => refused.get(&lease).copied().unwrap_or(0),
            };
            if count >= config.refusals {
                tracing::warn!(broker = %info.id, addr = %info.addr, refusals = count, "broker refuses connections; ending its lease so its partitions move now");
                if let Err(e) = meta.revoke_lease(lease).await {
                    tracing::warn!(broker = %info.id, error = %e, "ending a dead broker's lease failed; it will expire");
                }
                continue;
            }
            seen.insert(lease, count);
        }
        refused = seen;
    }
}
