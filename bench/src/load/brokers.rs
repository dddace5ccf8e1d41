//! The brokers' own counters, from their `/metrics`: what each point cost them in flushes,
//! PUTs and commit transactions, and whether a run left data in their buffers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stats::MB;

/// Per second over a measured window, summed over every broker.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct BrokerRates {
    pub flushes_per_s: f64,
    pub puts_per_s: f64,
    pub txns_per_s: f64,
    pub segment_mb_per_s: f64,
    /// Mean object size: how much each PUT carried.
    pub bytes_per_put: f64,
    /// Copies the brokers' storage pools started again on another node (hedged), as a
    /// percentage of every copy they wrote (flushes and compaction alike).
    #[serde(default)]
    pub hedged_put_pct: f64,
}

/// Counter totals summed over every broker, at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrokerCounters {
    pub flushes: f64,
    pub puts: f64,
    pub txns: f64,
    pub segment_bytes: f64,
    pub storage_puts: f64,
    pub hedged_puts: f64,
}

impl BrokerCounters {
    /// `None` when there are no brokers to ask or one of them does not answer.
    pub async fn scrape(http: &reqwest::Client, addrs: &[String]) -> Option<Self> {
        let mut sum = Self::default();
        for text in metrics(http, addrs).await? {
            for (name, value) in samples(&text) {
                let counter = match name {
                    "strata_broker_flushes_total" => &mut sum.flushes,
                    "strata_broker_flush_objects_total" => &mut sum.puts,
                    "strata_broker_commit_txns_total" => &mut sum.txns,
                    "strata_broker_segment_bytes_total" => &mut sum.segment_bytes,
                    r#"strata_broker_storage_requests_total{op="put"}"# => &mut sum.storage_puts,
                    r#"strata_broker_storage_hedges_total{op="put"}"# => &mut sum.hedged_puts,
                    _ => continue,
                };
                *counter += value;
            }
        }
        Some(sum)
    }

    /// The rates between two scrapes `secs` apart.
    pub fn rates(before: Option<Self>, after: Option<Self>, secs: f64) -> Option<BrokerRates> {
        let (a, b) = (before?, after?);
        let per_s = |x: f64, y: f64| (y - x).max(0.0) / secs;
        let puts = per_s(a.puts, b.puts);
        let bytes = per_s(a.segment_bytes, b.segment_bytes);
        let copies = per_s(a.storage_puts, b.storage_puts);
        let hedged = per_s(a.hedged_puts, b.hedged_puts);
        Some(BrokerRates {
            flushes_per_s: per_s(a.flushes, b.flushes),
            puts_per_s: puts,
            txns_per_s: per_s(a.txns, b.txns),
            segment_mb_per_s: bytes / MB,
            bytes_per_put: if puts > 0.0 { bytes / puts } else { 0.0 },
            hedged_put_pct: if copies > 0.0 {
                100.0 * hedged / copies
            } else {
                0.0
            },
        })
    }
}

/// Bytes waiting in every broker's buffers.
pub async fn buffered_bytes(http: &reqwest::Client, addrs: &[String]) -> Option<f64> {
    let texts = metrics(http, addrs).await?;
    Some(
        texts
            .iter()
            .flat_map(|text| samples(text))
            .filter(|(name, _)| *name == "strata_broker_buffered_bytes")
            .map(|(_, value)| value)
            .sum(),
    )
}

/// Waits until no broker has written to storage for `quiet` (scraped every half second), at
/// most `limit`: after a produce run the brokers compact what they flushed, and a read measured
/// while they do measures their copy as well. Returns the time waited and whether the brokers
/// went quiet; `None` when there are no brokers to ask.
pub async fn wait_for_quiet_storage(
    http: &reqwest::Client,
    addrs: &[String],
    quiet: Duration,
    limit: Duration,
) -> Option<(Duration, bool)> {
    let started = tokio::time::Instant::now();
    let mut last = BrokerCounters::scrape(http, addrs).await?.storage_puts;
    let mut still_since = started;
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = BrokerCounters::scrape(http, addrs).await?.storage_puts;
        if now != last {
            last = now;
            still_since = tokio::time::Instant::now();
        } else if still_since.elapsed() >= quiet {
            return Some((started.elapsed(), true));
        }
    }
    Some((started.elapsed(), false))
}

/// Every broker's `/metrics` page; `None` when there are none or one does not answer.
async fn metrics(http: &reqwest::Client, addrs: &[String]) -> Option<Vec<String>> {
    if addrs.is_empty() {
        return None;
    }
    let mut texts = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let response = http
            .get(format!("http://{addr}/metrics"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        texts.push(response.text().await.ok()?);
    }
    Some(texts)
}

/// `(name, value)` of each sample in a Prometheus text page; a labelled sample's name keeps
/// its labels, so it never matches a bare counter name.
fn samples(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines().filter_map(|line| {
        let (name, value) = line.split_once(' ')?;
        Some((name, value.trim().parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_skip_comments() {
        let page = "# TYPE strata_broker_flushes_total counter\n\
                    strata_broker_flushes_total 12\n\
                    strata_broker_buffered_bytes 4096\n\
                    strata_broker_partitions{state=\"Write\"} 3\n";
        let found: Vec<(&str, f64)> = samples(page).collect();
        assert_eq!(
            found,
            [
                ("strata_broker_flushes_total", 12.0),
                ("strata_broker_buffered_bytes", 4096.0),
                ("strata_broker_partitions{state=\"Write\"}", 3.0),
            ]
        );
    }

    #[test]
    fn rates_divide_the_difference_by_the_window() {
        let before = BrokerCounters {
            flushes: 10.0,
            puts: 100.0,
            txns: 5.0,
            segment_bytes: 1e6,
            storage_puts: 200.0,
            hedged_puts: 1.0,
        };
        let after = BrokerCounters {
            flushes: 30.0,
            puts: 300.0,
            txns: 15.0,
            segment_bytes: 5e6,
            storage_puts: 600.0,
            hedged_puts: 5.0,
        };
        let rates = BrokerCounters::rates(Some(before), Some(after), 2.0).unwrap();
        assert_eq!(rates.flushes_per_s, 10.0);
        assert_eq!(rates.puts_per_s, 100.0);
        assert_eq!(rates.txns_per_s, 5.0);
        assert_eq!(rates.segment_mb_per_s, 2.0);
        assert_eq!(rates.bytes_per_put, 20_000.0);
        assert_eq!(rates.hedged_put_pct, 1.0);
        assert!(BrokerCounters::rates(None, Some(after), 2.0).is_none());
    }
}
