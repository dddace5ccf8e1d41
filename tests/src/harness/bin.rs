//! Where the `strata` binary and the per-run log directories are.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// The `strata` binary the process-mode harness runs: `STRATA_TEST_BIN` if set, else the one
/// cargo built next to this test executable (`target/<profile>/deps/x` →
/// `target/<profile>/strata`). Tests of this crate cannot use `CARGO_BIN_EXE_strata` (it
/// belongs to another package), and must never run cargo themselves (the build lock is held
/// while tests run).
pub fn strata_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_TEST_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("STRATA_TEST_BIN={} is not a file", path.display());
    }
    let profile_dir = profile_dir()?;
    let binary = profile_dir.join("strata");
    if binary.is_file() {
        return Ok(binary);
    }
    bail!(
        "no strata binary at {}: run `cargo build -p strata` first (`cargo test --workspace` \
         builds it), or point STRATA_TEST_BIN at one",
        binary.display()
    )
}

/// `target/<profile>` of the running test executable.
fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the test executable")?;
    let deps = exe
        .parent()
        .context("the test executable has no parent directory")?;
    // Test executables live in target/<profile>/deps; examples and others one level up.
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

/// A new directory for one run's process logs: `target/tmp/fault-logs/<name>-<unix ms>`
/// (`STRATA_FAULT_LOGS` moves the parent).
pub fn log_dir(name: &str) -> anyhow::Result<PathBuf> {
    let parent = match std::env::var_os("STRATA_FAULT_LOGS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let target = profile_dir()?
                .parent()
                .map(std::path::Path::to_path_buf)
                .context("target/<profile> has no parent")?;
            target.join("tmp").join("fault-logs")
        }
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let dir = parent.join(format!("{name}-{stamp}"));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    Ok(dir)
}
