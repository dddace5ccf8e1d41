//! CPU accounting from Linux's `/proc`: how busy this process and the rest of the machine were.
//! On a shared machine every figure needs this beside it to be read at all.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// CPU seconds used so far.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    own_user: f64,
    own_system: f64,
    /// The whole machine, busy (neither idle nor waiting for I/O).
    machine_busy: f64,
    /// Taken by the hypervisor for other guests.
    steal: f64,
}

/// Cores busy on average between two samples; `None` where there is no `/proc`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CpuUse {
    /// This process: the load generator and its SDK clients (and, in the broker bench, the
    /// broker it measures).
    pub bench_cores: Option<f64>,
    /// `bench_cores` in user mode.
    pub bench_user_cores: Option<f64>,
    /// `bench_cores` in the kernel: syscalls, copying, fsync.
    pub bench_system_cores: Option<f64>,
    /// Everything else: the Strata servers, etcd, the S3 server, the kernel's writeback
    /// threads, and other users of a shared machine.
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
        // The command name (field 2) is in parentheses and may hold spaces; field 3 follows.
        let own: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let own_ticks = |field: usize| own.get(field - 3)?.parse::<f64>().ok();
        let all = std::fs::read_to_string("/proc/stat").ok()?;
        // "cpu user nice system idle iowait irq softirq steal ..."
        let all: Vec<f64> = all
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let busy: f64 = [0, 1, 2, 5, 6].iter().filter_map(|i| all.get(*i)).sum();
        Some(Self {
            at,
            own_user: own_ticks(14)? / TICKS_PER_S,
            own_system: own_ticks(15)? / TICKS_PER_S,
            machine_busy: busy / TICKS_PER_S,
            steal: all.get(7).copied().unwrap_or(0.0) / TICKS_PER_S,
        })
    }

    pub fn since(start: Option<Self>, end: Option<Self>) -> CpuUse {
        let (Some(a), Some(b)) = (start, end) else {
            return CpuUse::default();
        };
        let secs = (b.at - a.at).as_secs_f64().max(1e-6);
        let (user, system) = (b.own_user - a.own_user, b.own_system - a.own_system);
        CpuUse {
            bench_cores: Some((user + system) / secs),
            bench_user_cores: Some(user / secs),
            bench_system_cores: Some(system / secs),
            others_cores: Some(((b.machine_busy - a.machine_busy) - user - system).max(0.0) / secs),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_samples_no_figures() {
        let unknown = CpuSample::since(None, CpuSample::now());
        assert!(unknown.bench_cores.is_none() && unknown.others_cores.is_none());
    }

    #[test]
    fn own_use_splits_into_user_and_system() {
        let start = CpuSample::now();
        // Some user time to measure: the ticks are 10 ms apart.
        let mut x = 0u64;
        let spin_until = Instant::now() + std::time::Duration::from_millis(50);
        while Instant::now() < spin_until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let used = CpuSample::since(start, CpuSample::now());
        if let (Some(all), Some(user), Some(system)) = (
            used.bench_cores,
            used.bench_user_cores,
            used.bench_system_cores,
        ) {
            assert!((all - user - system).abs() < 1e-9);
            assert!(used.others_cores.is_some_and(|o| o >= 0.0));
        }
    }
}
