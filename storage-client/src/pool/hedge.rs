//! Hedged requests: a request still running after its node's usual latency is started again
//! on another node, within a budget earned by the requests themselves.

use std::time::Duration;

use strata_config::{Config, StorageSection};

/// A request is hedged once it has run this many times its node's p99.
const P99_TIMES: u32 = 2;

/// When to hedge, and how much at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hedging {
    /// No request is hedged before it has run this long, however fast its node usually is.
    pub floor: Duration,
    /// Hedges earned per 100 requests of a kind (writes or reads): the share of extra
    /// requests hedging may add over time.
    pub budget_percent: u32,
    /// Hedges that may start at once beyond that share (the budget starts full), so the
    /// requests in flight to a node that just died are all hedged.
    pub budget_burst: u32,
}

impl Hedging {
    pub const OFF: Self = Self {
        floor: Duration::ZERO,
        budget_percent: 0,
        budget_burst: 0,
    };

    pub fn is_on(&self) -> bool {
        self.budget_percent > 0 || self.budget_burst > 0
    }

    /// How long a request to a node whose recent p99 is `p99` runs before it is hedged: twice
    /// that p99, and at least the floor. Twice, because at saturation latencies climb past
    /// every recent p99 (queues grow, objects get bigger): hedging at the p99 itself added a
    /// fifth more PUTs there and cost a third of the throughput (docs/reliability.md), while a
    /// request to a vanished node is caught at any finite threshold.
    pub(super) fn delay(&self, p99: Option<Duration>) -> Duration {
        p99.map_or(self.floor, |p99| (P99_TIMES * p99).max(self.floor))
    }
}

impl From<&StorageSection> for Hedging {
    fn from(s: &StorageSection) -> Self {
        Self {
            floor: Duration::from_millis(s.hedge_floor_ms),
            budget_percent: s.hedge_budget_percent,
            budget_burst: s.hedge_budget_burst,
        }
    }
}

/// The shipped `[storage]` settings.
impl Default for Hedging {
    fn default() -> Self {
        Self::from(&Config::shipped().storage)
    }
}

/// Hedges available: every request earns `budget_percent / 100` of one, up to
/// `max(budget_burst, 1)` saved; it starts full. So over any stretch of time hedges stay
/// within `budget_percent` of the requests plus one burst, at any load: a fixed number per
/// second would be most of a quiet broker's writes and too few for a busy one's.
#[derive(Debug, Default)]
pub(super) struct Budget {
    tokens: f64,
    started: bool,
}

impl Budget {
    fn capacity(h: &Hedging) -> f64 {
        f64::from(h.budget_burst.max(1))
    }

    fn fill(&mut self, h: &Hedging) {
        if !self.started {
            self.started = true;
            self.tokens = f64::from(h.budget_burst);
        }
    }

    /// A request was sent: it earns its share of a hedge.
    pub(super) fn earn(&mut self, h: &Hedging) {
        self.fill(h);
        self.tokens = (self.tokens + f64::from(h.budget_percent) / 100.0).min(Self::capacity(h));
    }

    /// Takes one hedge if one is available.
    pub(super) fn try_take(&mut self, h: &Hedging) -> bool {
        self.fill(h);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hedging(budget_percent: u32, budget_burst: u32) -> Hedging {
        Hedging {
            floor: Duration::from_millis(100),
            budget_percent,
            budget_burst,
        }
    }

    #[test]
    fn the_budget_starts_with_a_burst_and_earns_a_share_of_requests() {
        let h = hedging(5, 3);
        let mut b = Budget::default();
        assert_eq!((0..10).filter(|_| b.try_take(&h)).count(), 3, "the burst");
        // 5 per 100 requests from then on, whatever the time.
        let mut hedges = 0;
        for _ in 0..1000 {
            b.earn(&h);
            hedges += usize::from(b.try_take(&h));
        }
        assert_eq!(hedges, 50);
        // Savings stop at the burst.
        for _ in 0..10_000 {
            b.earn(&h);
        }
        assert_eq!((0..10).filter(|_| b.try_take(&h)).count(), 3);
    }

    #[test]
    fn without_a_burst_one_hedge_can_still_be_saved() {
        let h = hedging(50, 0);
        let mut b = Budget::default();
        assert!(!b.try_take(&h));
        b.earn(&h);
        b.earn(&h);
        assert!(b.try_take(&h));
        assert!(!Hedging::OFF.is_on() && h.is_on());
    }

    #[test]
    fn the_delay_is_twice_the_node_p99_but_never_below_the_floor() {
        let h = hedging(5, 10);
        assert_eq!(h.delay(None), Duration::from_millis(100));
        assert_eq!(
            h.delay(Some(Duration::from_millis(30))),
            Duration::from_millis(100)
        );
        assert_eq!(
            h.delay(Some(Duration::from_millis(450))),
            Duration::from_millis(900)
        );
    }
}
