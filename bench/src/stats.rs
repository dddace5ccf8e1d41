//! Percentiles, CPU accounting from `/proc`, and the progress line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub const MB: f64 = 1_000_000.0;

/// Latency percentiles in milliseconds; `None` without samples.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Percentiles {
    /// From latencies in microseconds (sorted in place).
    pub fn from_us(samples: &mut [u32]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            Some(f64::from(samples[rank - 1]) / 1e3)
        };
        Self {
            samples: samples.len() as u64,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }

    pub fn from_durations(samples: &[Duration]) -> Self {
        let mut us: Vec<u32> = samples
            .iter()
            .map(|d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX))
            .collect();
        Self::from_us(&mut us)
    }
}

/// Microseconds of `d`, saturating (an ack latency never comes near 71 minutes).
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// `12.3` or `-` for a missing figure.
pub fn fmt_opt(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".into(),
    }
}

/// CPU seconds used so far, from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    own: f64,
    machine_busy: f64,
    steal: f64,
}

/// Cores busy on average between two samples.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CpuUse {
    /// This bench process (the load generator and its SDK clients).
    pub bench_cores: Option<f64>,
    /// Everything else: the Strata servers, etcd, the S3 server, and other users of a shared
    /// machine.
    pub others_cores: Option<f64>,
    pub steal_cores: Option<f64>,
}

impl CpuSample {
    /// `None` where there is no Linux `/proc`.
    pub fn now() -> Option<Self> {
        // Linux reports both files in USER_HZ ticks, which is 100 on every architecture.
        const TICKS_PER_S: f64 = 100.0;
        let at = Instant::now();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let own: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| own.get(n - 3)?.parse::<f64>().ok();
        let all = std::fs::read_to_string("/proc/stat").ok()?;
        let all: Vec<f64> = all
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal
        let busy: f64 = [0, 1, 2, 5, 6].iter().filter_map(|i| all.get(*i)).sum();
        Some(Self {
            at,
            own: (field(14)? + field(15)?) / TICKS_PER_S,
            machine_busy: busy / TICKS_PER_S,
            steal: all.get(7).copied().unwrap_or(0.0) / TICKS_PER_S,
        })
    }

    pub fn since(start: Option<Self>, end: Option<Self>) -> CpuUse {
        let (Some(a), Some(b)) = (start, end) else {
            return CpuUse::default();
        };
        let secs = (b.at - a.at).as_secs_f64().max(1e-6);
        let own = b.own - a.own;
        CpuUse {
            bench_cores: Some(own / secs),
            others_cores: Some(((b.machine_busy - a.machine_busy) - own).max(0.0) / secs),
            steal_cores: Some((b.steal - a.steal) / secs),
        }
    }
}

/// The 1-minute load average, as `uptime` shows it.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One progress line on stderr: rewritten in place on a terminal, else printed at most every
/// few seconds so logs stay short.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    last: Option<Instant>,
    width: usize,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            last: None,
            width: 0,
        }
    }

    /// Shows `line` now if enough time passed since the last one.
    pub fn update(&mut self, line: &str) {
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(3)
        };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        if self.tty {
            let pad = self.width.saturating_sub(line.chars().count());
            let _ = write!(err, "\r{line}{}", " ".repeat(pad));
            self.width = line.chars().count();
        } else {
            let _ = writeln!(err, "  … {line}");
        }
        let _ = err.flush();
    }

    /// A line that stays (a finished step).
    pub fn done(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty && self.width > 0 {
            let pad = self.width.saturating_sub(line.chars().count());
            let _ = writeln!(err, "\r{line}{}", " ".repeat(pad));
        } else {
            let _ = writeln!(err, "{line}");
        }
        self.width = 0;
        self.last = None;
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
        assert!(Percentiles::from_us(&mut []).p50_ms.is_none());
    }
}
