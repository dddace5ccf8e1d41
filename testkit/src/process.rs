use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Ports this process has handed out, so two servers of one test binary (tests run
/// concurrently) never get the same one: the kernel can return a port it just gave out again
/// once the probe socket is closed.
fn handed_out() -> std::sync::MutexGuard<'static, std::collections::HashSet<u16>> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static TAKEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    TAKEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Asks the kernel for a loopback port that is free right now and that this process has not
/// handed out before.
///
/// The port is released before the caller binds it, so another process could take it in
/// between; callers that start servers retry on a bind failure.
pub fn free_port() -> u16 {
    let ephemeral = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("the loopback interface must allow binding an ephemeral port")
    };
    let mut port = ephemeral();
    for _ in 0..64 {
        if handed_out().insert(port) {
            break;
        }
        port = ephemeral();
    }
    port
}

/// Picks a loopback port below the kernel's ephemeral range (which starts at 32768 on Linux),
/// free right now and not handed out before by this process.
///
/// [`free_port`] returns an ephemeral port, which an outgoing connection may be using as its
/// local port by the time a server is *restarted* on it; a port outside that range can be
/// bound again after a kill. Servers that restart on their old address (etcd, storage nodes,
/// brokers) take their port from here.
pub fn reserved_port() -> u16 {
    const LOW: u32 = 20_000;
    const HIGH: u32 = 32_000;
    // Concurrent test processes start at different places, so they rarely probe the same port.
    let mut candidate = LOW + (std::process::id().wrapping_mul(7919) % (HIGH - LOW));
    for _ in 0..(HIGH - LOW) {
        candidate = if candidate + 1 >= HIGH {
            LOW
        } else {
            candidate + 1
        };
        let port = u16::try_from(candidate).expect("the range fits in u16");
        let mut taken = handed_out();
        if taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return port;
        }
    }
    // Every port of the range is in use: an ephemeral one is better than none.
    free_port()
}

/// Finds an executable on `PATH` or in `~/.cargo/bin`.
pub fn find_binary(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.push(PathBuf::from("/usr/bin"));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "`{name}` was not found on PATH or in ~/.cargo/bin; run `scripts/setup.sh` \
         (the README's test command does) to install the real components the tests use"
    )
}

/// Polls until a TCP connection to `addr` succeeds or `timeout` passes.
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("nothing accepted connections on {addr} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process that is killed when the guard drops, with its output kept in a log file so
/// a failing test can point at it.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    log: PathBuf,
    name: String,
}

impl ChildGuard {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, command: Command, log: PathBuf) -> anyhow::Result<Self> {
        let stderr = open_log(&log)?;
        let stdout = stderr.try_clone()?;
        Self::spawn_to(name, command, log, stdout, stderr)
    }

    /// Starts `command` with stdout written to `stdout` (for output the test reads) and stderr
    /// appended to `log`.
    pub fn spawn_with_stdout(
        name: &str,
        command: Command,
        log: PathBuf,
        stdout: &Path,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(stdout)
            .with_context(|| format!("cannot create {}", stdout.display()))?;
        let stderr = open_log(&log)?;
        Self::spawn_to(name, command, log, out, stderr)
    }

    fn spawn_to(
        name: &str,
        mut command: Command,
        log: PathBuf,
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> anyhow::Result<Self> {
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        Ok(Self {
            child: Some(child),
            log,
            name: name.to_owned(),
        })
    }

    /// Waits up to `timeout` for the process to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Where the process writes its output.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The OS process id, for signals such as SIGSTOP.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails if the process has already exited, quoting its log.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "{} exited early with {status}; log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(20)
            );
        }
        Ok(())
    }

    /// Polls until a TCP connection to `addr` succeeds, failing early (quoting the log) if the
    /// process exits meanwhile.
    pub fn wait_for_tcp(&mut self, addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            self.ensure_running()?;
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept connections on {addr} within {timeout:?}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running (a stopped, i.e. SIGSTOPped, process is running).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, ...) with `kill(1)`.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} is not running", self.name))?;
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .context("cannot run kill(1)")?;
        if !status.success() {
            bail!("kill -{signal} {pid} ({}) failed: {status}", self.name);
        }
        Ok(())
    }

    /// Asks the process to stop (SIGTERM, after SIGCONT in case it is paused) and waits up to
    /// `grace`; kills it if it is still running then. The exit status, if it exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if !self.is_running() {
            return self.child.take().and_then(|mut c| c.wait().ok());
        }
        let _ = self.signal("CONT");
        let _ = self.signal("TERM");
        let status = self.wait_exit(grace);
        if status.is_none() {
            tracing::warn!(process = %self.name, ?grace, "did not stop after SIGTERM; killing it");
            self.kill();
        }
        status
    }

    /// The process's name as given to [`ChildGuard::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where and how to run a test server ([`crate::EtcdServer`], [`crate::S3Server`]).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on [127.0.0.1].
    pub host: std::net::IpAddr,
    /// Log file [named after the server, in its temporary directory].
    pub log: Option<std::path::PathBuf>,
    /// Take ports outside the ephemeral range, so the server can be restarted on them after a
    /// kill (see [`crate::reserved_port`]) [false].
    pub restartable: bool,
    /// Extra environment of the process (e.g. a marker naming the test that owns it).
    pub env: Vec<(String, String)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            host: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            log: None,
            restartable: false,
            env: Vec::new(),
        }
    }
}

/// Appends to a log file, so a restarted process's log follows its previous one's.
fn open_log(log: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open log file {}", log.display()))
}

/// Tries `attempt` up to `attempts` times (at least once), `pause` apart; the last error if
/// none succeeded. A server started on a chosen port races every other process on the machine
/// for it (and a killed server's old port can stay busy for a moment), so servers are started
/// this way.
pub(crate) fn retry<T>(
    attempts: usize,
    pause: Duration,
    mut attempt: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    for _ in 1..attempts {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "trying again"),
        }
        std::thread::sleep(pause);
    }
    attempt()
}
