//! Recent request latencies of one node: the threshold a hedge compares a request with.

use std::collections::VecDeque;
use std::time::Duration;

/// Requests remembered per node and kind: the p99 follows a node that slows down within a
/// few hundred requests, and one outlier moves it by at most one rank.
const WINDOW: usize = 200;

/// Below this many samples a node has no p99 yet and the floor alone decides.
const MIN_SAMPLES: usize = 20;

/// The last [`WINDOW`] latencies of successful requests of one kind to one node.
#[derive(Debug, Default)]
pub(super) struct Latencies {
    samples: VecDeque<Duration>,
}

impl Latencies {
    pub(super) fn record(&mut self, took: Duration) {
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(took);
    }

    /// The 99th percentile of the remembered latencies, once there are enough of them.
    pub(super) fn p99(&self) -> Option<Duration> {
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        let rank = (sorted.len() * 99).div_ceil(100) - 1;
        Some(*sorted.select_nth_unstable(rank).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_needs_enough_samples_and_forgets_old_ones() {
        let mut l = Latencies::default();
        for _ in 0..MIN_SAMPLES - 1 {
            l.record(Duration::from_millis(5));
        }
        assert_eq!(l.p99(), None);
        l.record(Duration::from_millis(5));
        assert_eq!(l.p99(), Some(Duration::from_millis(5)));
        // 1 slow request in 100 is the p99's own tail: it stays below it.
        for i in 0..WINDOW {
            let ms = if i % 100 == 0 {
                900
            } else {
                10 + (i % 7) as u64
            };
            l.record(Duration::from_millis(ms));
        }
        let p99 = l.p99().unwrap();
        assert!(
            p99 >= Duration::from_millis(16) && p99 < Duration::from_millis(900),
            "{p99:?}"
        );
        // A node that became slow: after a window of slow requests the old figures are gone.
        for _ in 0..WINDOW {
            l.record(Duration::from_millis(400));
        }
        assert_eq!(l.p99(), Some(Duration::from_millis(400)));
    }
}
