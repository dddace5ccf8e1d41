use std::time::{Duration, Instant};

use strata_config::{Config, StorageSection};

/// Failure tracking of one node: after a failure it sits out a backoff that doubles with every
/// consecutive failure; the first success after the backoff resets it.
#[derive(Debug, Default)]
pub(super) struct Health {
    consecutive_failures: u32,
    unhealthy_until: Option<Instant>,
    last_error: Option<String>,
}

/// Backoff bounds for unhealthy nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl From<&StorageSection> for Backoff {
    fn from(s: &StorageSection) -> Self {
        Self {
            initial: Duration::from_millis(s.backoff_initial_ms),
            max: Duration::from_millis(s.backoff_max_ms),
        }
    }
}

/// The shipped `[storage]` settings.
impl Default for Backoff {
    fn default() -> Self {
        Self::from(&Config::shipped().storage)
    }
}

impl Health {
    pub(super) fn is_healthy(&self, now: Instant) -> bool {
        self.unhealthy_until.is_none_or(|until| now >= until)
    }

    pub(super) fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.unhealthy_until = None;
    }

    pub(super) fn record_failure(&mut self, now: Instant, backoff: Backoff, error: String) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let exponent = self.consecutive_failures.saturating_sub(1).min(16);
        let wait = backoff
            .initial
            .saturating_mul(1 << exponent)
            .min(backoff.max);
        self.unhealthy_until = Some(now + wait);
        self.last_error = Some(error);
    }

    pub(super) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub(super) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}
