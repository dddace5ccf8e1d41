//! Time and randomness, injected so that tests and simulations can control them.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng, rngs::StdRng};

/// A source of monotonic time.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> Instant;
}

/// The operating system's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().expect("clock mutex poisoned") += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock().expect("clock mutex poisoned")
    }
}

/// Milliseconds since the Unix epoch, for record timestamps.
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A source of random numbers.
pub trait RandomSource: Send + Sync + Debug {
    fn next_u64(&self) -> u64;

    /// A uniformly random index below `n` (`n` > 0).
    fn below(&self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Randomness from the operating system's thread-local generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn next_u64(&self) -> u64 {
        rand::rng().random()
    }
}

/// A reproducible generator for tests and simulations.
#[derive(Debug)]
pub struct SeededRandom(Mutex<StdRng>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl RandomSource for SeededRandom {
    fn next_u64(&self) -> u64 {
        self.0.lock().expect("rng mutex poisoned").random()
    }
}

/// Shuffles `items` in place (Fisher–Yates) with randomness from `rng`.
pub fn shuffle<T>(rng: &dyn RandomSource, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}
