//! The figures both benchmarks compute the same way (`strata bench` and the in-process broker
//! bench): percentiles and medians, CPU use from `/proc`, the load average, the progress line
//! on stderr, and how numbers are printed.

mod cpu;
mod progress;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::cpu::{CpuSample, CpuUse, load_average};
pub use self::progress::Progress;

/// Every MB in the tables and JSON is 10^6 bytes, as disk and network vendors count.
pub const MB: f64 = 1_000_000.0;

/// Latency percentiles in milliseconds; `None` without samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Percentiles {
    /// From latencies in microseconds (sorted in place); `u32` keeps millions of samples small.
    pub fn from_us(samples: &mut [u32]) -> Self {
        Self::from_samples(samples, |us| f64::from(us) / 1e3)
    }

    /// From latencies in nanoseconds (sorted in place), for acks that take about a microsecond.
    pub fn from_ns(samples: &mut [u64]) -> Self {
        Self::from_samples(samples, |ns| ns as f64 / 1e6)
    }

    pub fn from_durations(samples: &[Duration]) -> Self {
        let mut us: Vec<u32> = samples.iter().copied().map(micros).collect();
        Self::from_us(&mut us)
    }

    fn from_samples<T: Ord + Copy>(samples: &mut [T], to_ms: impl Fn(T) -> f64) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| Some(to_ms(samples[nearest_rank(samples.len(), q)]));
        Self {
            samples: samples.len() as u64,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }
}

/// Index of quantile `q` among `n` sorted samples by the nearest-rank method: a real sample,
/// never an interpolation, so a p99 is a latency some request actually saw.
fn nearest_rank(n: usize, q: f64) -> usize {
    ((q * n as f64).ceil() as usize).clamp(1, n) - 1
}

/// The middle of `values` (the upper middle of an even count), sorting them in place.
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The median of `samples`, in milliseconds.
pub fn median_ms(samples: &[Duration]) -> Option<f64> {
    median(&mut samples.iter().copied().map(millis).collect::<Vec<_>>())
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Microseconds of `d`, saturating (an ack latency never comes near 71 minutes).
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// `12.3`, or `-` for a figure that is missing or not a number.
pub fn fmt_opt(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".into(),
    }
}

/// `1.20, 0.46`: a list of figures in one line.
pub fn fmt_list(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `100 B`, `1 KiB`, `16 KiB`: message and object sizes as the tables and charts name them.
pub fn size_name(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_rank_at_or_above() {
        let mut samples: Vec<u32> = (1..=1000).rev().collect();
        let p = Percentiles::from_us(&mut samples);
        assert_eq!(p.samples, 1000);
        assert_eq!(p.p50_ms, Some(0.5));
        assert_eq!(p.p99_ms, Some(0.99));
        assert_eq!(p.p999_ms, Some(0.999));
        assert_eq!(p.max_ms, Some(1.0));
    }

    #[test]
    fn percentiles_of_few_samples_are_real_samples() {
        let mut samples = [30_u32, 10, 20];
        let p = Percentiles::from_us(&mut samples);
        assert_eq!(p.p50_ms, Some(0.02));
        assert_eq!(p.p99_ms, Some(0.03));
        assert_eq!(p.max_ms, Some(0.03));
        let one = Percentiles::from_us(&mut [7]);
        assert_eq!((one.p50_ms, one.p999_ms), (Some(0.007), Some(0.007)));
    }

    #[test]
    fn no_samples_no_percentiles() {
        let p = Percentiles::from_us(&mut []);
        assert_eq!(p, Percentiles::default());
        assert!(Percentiles::from_ns(&mut []).p50_ms.is_none());
        assert!(Percentiles::from_durations(&[]).max_ms.is_none());
    }

    #[test]
    fn units_agree() {
        let mut ns = [1_500_u64, 2_500_000];
        let p = Percentiles::from_ns(&mut ns);
        assert_eq!((p.p50_ms, p.max_ms), (Some(0.0015), Some(2.5)));
        let d = Percentiles::from_durations(&[Duration::from_millis(3), Duration::from_micros(1)]);
        assert_eq!((d.p50_ms, d.max_ms), (Some(0.001), Some(3.0)));
        assert_eq!(micros(Duration::from_secs(100_000)), u32::MAX);
    }

    #[test]
    fn median_takes_the_upper_middle() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(median(&mut []), None);
        let samples = [5, 1, 3].map(Duration::from_millis);
        assert_eq!(median_ms(&samples), Some(3.0));
    }

    #[test]
    fn numbers_print_as_the_tables_show_them() {
        assert_eq!(fmt_opt(Some(12.345), 1), "12.3");
        assert_eq!(fmt_opt(Some(f64::NAN), 2), "-");
        assert_eq!(fmt_opt(None, 0), "-");
        assert_eq!(fmt_list(&[1.204, 0.456], 2), "1.20, 0.46");
        assert_eq!(fmt_list(&[], 1), "");
        assert_eq!(size_name(100), "100 B");
        assert_eq!(size_name(1024), "1 KiB");
        assert_eq!(size_name(16384), "16 KiB");
        assert_eq!(size_name(1500), "1500 B");
    }
}
