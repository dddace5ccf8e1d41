//! What belongs to one run of a test executable: where the `strata` binary and the log
//! folders are, and the marker that lets a later run clean up after a run killed by a signal.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Environment marker on every `strata` process a test starts, naming the test process that
/// owns it, so a later run can find processes orphaned by a test killed with a signal.
pub const OWNER_ENV: &str = "STRATA_TEST_OWNER";

/// The [`OWNER_ENV`] marker naming this process, as environment for a child.
pub fn owner_env() -> Vec<(String, String)> {
    vec![(OWNER_ENV.to_owned(), std::process::id().to_string())]
}

/// Kills, by pid, processes left by a test that died without cleaning up (a test killed by a
/// signal never runs its drop guards): they carry [`OWNER_ENV`] naming a process that no
/// longer exists.
pub fn reap_orphans() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let marker = format!("{OWNER_ENV}=");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let owner = environ
            .split(|b| *b == 0)
            .filter_map(|var| std::str::from_utf8(var).ok())
            .find_map(|var| var.strip_prefix(&marker).map(str::to_owned));
        if let Some(owner) = owner
            && owner != std::process::id().to_string()
            && !Path::new(&format!("/proc/{owner}")).exists()
        {
            tracing::info!(pid, owner, "killing a process left by a dead test");
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

/// The `strata` binary for tests of crates other than `strata` itself (which have
/// `CARGO_BIN_EXE_strata`): `STRATA_TEST_BIN` if set, else the one cargo built next to this
/// test executable (`target/<profile>/deps/x` → `target/<profile>/strata`). A test must never
/// run cargo itself: the build lock is held while tests run.
pub fn strata_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("STRATA_TEST_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("STRATA_TEST_BIN={} is not a file", path.display());
    }
    let binary = profile_dir()?.join("strata");
    if binary.is_file() {
        return Ok(binary);
    }
    bail!(
        "no strata binary at {}: run `cargo build -p strata` first (`cargo test --workspace` \
         builds it), or point STRATA_TEST_BIN at one",
        binary.display()
    )
}

/// `target/tmp` of the running test executable, where cargo's `CARGO_TARGET_TMPDIR` points.
pub fn target_tmp_dir() -> anyhow::Result<PathBuf> {
    let profile = profile_dir()?;
    let target = profile.parent().context("target/<profile> has no parent")?;
    Ok(target.join("tmp"))
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

/// A new folder for one run's logs, `<parent>/<name>-<unix ms>`: runs never mix their logs,
/// and a failed run's stay for reading.
pub fn log_dir(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let dir = parent.join(format!("{name}-{stamp}"));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_dir_is_named_after_the_run_and_created() {
        let parent = tempfile::tempdir().unwrap();
        let dir = log_dir(&parent.path().join("test-logs"), "kill9").unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            dir.parent(),
            Some(parent.path().join("test-logs").as_path())
        );
        let name = dir.file_name().unwrap().to_str().unwrap();
        let stamp = name.strip_prefix("kill9-").unwrap();
        assert!(stamp.parse::<u128>().is_ok(), "{name}");
    }

    #[test]
    fn the_owner_marker_names_this_process() {
        assert_eq!(
            owner_env(),
            [(OWNER_ENV.to_owned(), std::process::id().to_string())]
        );
    }
}
