//! Acknowledgements as they arrive, cut into windows afterwards.

use std::ops::Range;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use strata_client::DeliveryFuture;
use tokio::sync::mpsc;

use crate::stats::{Percentiles, micros};

/// Every acknowledgement and failure of a run, timed from the run's start.
#[derive(Debug, Default)]
pub struct AckLog {
    /// (acknowledged at, µs since the run started; latency µs; offset)
    pub acks: Vec<(u64, u32, i64)>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// When each error arrived, µs since the run started.
    pub error_times: Vec<u64>,
}

impl AckLog {
    /// Latency of the records acknowledged within `window` (from the run's start).
    pub fn latency_within(&self, window: Range<Duration>) -> Percentiles {
        let window = us(window.start)..us(window.end);
        let mut latencies: Vec<u32> = self
            .acks
            .iter()
            .filter(|(at, _, _)| window.contains(at))
            .map(|(_, latency, _)| *latency)
            .collect();
        Percentiles::from_us(&mut latencies)
    }

    /// Records that failed within `window` (from the run's start).
    pub fn errors_within(&self, window: Range<Duration>) -> u64 {
        let window = us(window.start)..us(window.end);
        self.error_times
            .iter()
            .filter(|at| window.contains(at))
            .count() as u64
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Awaits every acknowledgement it is handed, noting when it came.
pub async fn collect(
    started: Instant,
    mut rx: mpsc::UnboundedReceiver<(Instant, DeliveryFuture)>,
) -> AckLog {
    let mut log = AckLog::default();
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            next = rx.recv(), if open => match next {
                Some((at, ack)) => pending.push(async move { (at, ack.await) }),
                None => open = false,
            },
            Some((at, answer)) = pending.next(), if !pending.is_empty() => {
                let now = Instant::now();
                let since = us(now - started);
                match answer {
                    Ok(meta) => log.acks.push((since, micros(now - at), meta.offset)),
                    Err(e) => {
                        log.errors += 1;
                        log.error_times.push(since);
                        log.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_hold_their_start_but_not_their_end() {
        let log = AckLog {
            acks: vec![(500, 10, 0), (1_000, 20, 1), (1_500, 30, 2), (2_000, 40, 3)],
            errors: 2,
            first_error: None,
            error_times: vec![999, 1_000],
        };
        let window = Duration::from_millis(1)..Duration::from_millis(2);
        let latency = log.latency_within(window.clone());
        assert_eq!((latency.samples, latency.max_ms), (2, Some(0.03)));
        assert_eq!(log.errors_within(window), 1);
        assert_eq!(log.latency_within(Duration::ZERO..Duration::MAX).samples, 4);
    }
}
