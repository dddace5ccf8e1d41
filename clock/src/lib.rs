//! Time and randomness, injected so that tests and simulations can control them.
//!
//! Everything in Strata that needs the time of day, a monotonic instant or a random number
//! takes it from a [`Clock`] or a [`RandomSource`]; `clippy.toml` refuses direct calls of
//! `SystemTime::now`, `Instant::now`, `rand::random` and `rand::rng` elsewhere. Async code
//! that only measures timeouts may use `tokio::time::Instant`, which paused tests control.

// The one sanctioned home of the calls the workspace's clippy.toml disallows.
#![allow(clippy::disallowed_methods)]

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng, rngs::StdRng};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic time, for timeouts, backoffs and elapsed times.
    fn now(&self) -> Instant;
    /// Milliseconds since the Unix epoch, for timestamps that are stored or sent.
    fn unix_millis(&self) -> i64;
}

/// The operating system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that moves only when told to; both of its times move together.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_unix_ms: i64,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// A clock standing at the system's time now.
    pub fn new() -> Self {
        Self::at_unix_millis(SystemClock.unix_millis())
    }

    /// A clock whose wall time starts at `unix_ms`.
    pub fn at_unix_millis(unix_ms: i64) -> Self {
        Self {
            start: Instant::now(),
            start_unix_ms: unix_ms,
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().expect("clock mutex poisoned") += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().expect("clock mutex poisoned")
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn unix_millis(&self) -> i64 {
        self.start_unix_ms + self.elapsed().as_millis() as i64
    }
}

/// A source of random numbers.
pub trait RandomSource: Send + Sync + Debug {
    fn next_u64(&self) -> u64;

    /// A uniformly random number in `[0, 1)`.
    fn next_f64(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

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

/// `N` bytes from the operating system's random source, for secrets: salts, nonces, tokens.
/// Deliberately not a [`RandomSource`]: a secret must not be predictable, in tests or not.
pub fn secret_bytes<const N: usize>() -> [u8; N] {
    use rand::TryRngCore as _;
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source is readable");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_times_together_and_only_when_told() {
        let clock = ManualClock::at_unix_millis(1_000);
        let (start, wall) = (clock.now(), clock.unix_millis());
        assert_eq!((clock.now(), clock.unix_millis()), (start, wall));
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now() - start, Duration::from_millis(250));
        assert_eq!(clock.unix_millis(), 1_250);
    }

    #[test]
    fn a_seeded_source_repeats_and_shuffles_within_bounds() {
        let (a, b) = (SeededRandom::new(7), SeededRandom::new(7));
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        let mut items: Vec<u32> = (0..50).collect();
        shuffle(&a, &mut items);
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
        assert!((0..100).all(|_| a.below(3) < 3));
    }
}
