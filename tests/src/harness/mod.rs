//! The fault-test harness (issue 6): Strata clusters as OS processes ([`procs`]) or
//! containers ([`containers`]), load with an acknowledged-write checker ([`workload`],
//! [`checker`]), the bytes-copied measure ([`snapshot`]), the fault scenarios
//! ([`scenarios`]) and the long randomized run ([`long`]). `docs/reliability.md` explains it.

pub mod checker;
pub mod containers;
pub mod long;
pub mod netns;
pub mod ops;
pub mod procs;
pub mod scenarios;
pub mod snapshot;
pub mod workload;

/// A new directory for one run's process or container logs:
/// `target/tmp/fault-logs/<name>-<unix ms>` (`STRATA_FAULT_LOGS` moves the parent).
pub fn log_dir(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let parent = match std::env::var_os("STRATA_FAULT_LOGS") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => strata_testkit::target_tmp_dir()?.join("fault-logs"),
    };
    strata_testkit::log_dir(&parent, name)
}

/// Sends the harness's own logs (and the SDK's) to stderr: `STRATA_TEST_LOG` filters them
/// (default `warn,strata_integration_tests=info`). Safe to call more than once.
pub fn init_tracing() {
    let filter = std::env::var("STRATA_TEST_LOG")
        .unwrap_or_else(|_| "warn,strata_integration_tests=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
