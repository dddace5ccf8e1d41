//! Runs programs the tests drive (the `strata` CLI, Kafka clients) to their end, each bound
//! in time, and reads the servers' metrics pages.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The Prometheus page of an HTTP endpoint at `addr` (`host:port`, plain HTTP).
pub async fn metrics(addr: impl std::fmt::Display) -> anyhow::Result<String> {
    let url = format!("http://{addr}/metrics");
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    Ok(response.text().await?)
}

/// The values of `name`'s samples on a Prometheus `page` whose labels include all of
/// `labels` (each written as on the page: `outcome="written"`), in page order.
pub fn samples(page: &str, name: &str, labels: &[&str]) -> Vec<f64> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// Runs the `strata` binary the tests use (`STRATA_BIN`, else `target/debug/strata`) with
/// `args`: its stdout, or an error with the tail of its stderr.
pub async fn strata(
    args: &[&str],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let binary = strata_testkit::strata_binary()?;
    strata_with(&binary, args, stdin, timeout).await
}

/// [`strata`] with the binary at `binary`.
pub async fn strata_with(
    binary: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env("STRATA_LOG", "warn")
        .kill_on_drop(true);
    run(command, stdin, timeout, "strata").await
}

/// Runs `command` to its end, at most `timeout` (then it is killed and this fails); its
/// stdout. A non-zero exit fails with stderr's tail.
pub async fn run(
    mut command: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<String> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).await?;
        pipe.shutdown().await?;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("{what} did not finish within {timeout:?}; killed"))??;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        bail!(
            "{what} exited with {}:\n{}\nstdout: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            stdout.chars().take(2000).collect::<String>()
        );
    }
    Ok(stdout)
}
