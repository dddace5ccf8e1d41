use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, ServerOptions, find_binary, free_port, reserved_port, retry};

/// The `--max-txn-ops` every test etcd runs with, as the Helm chart and the Compose file ship
/// it; processes the harness starts are told the same (`STRATA_META_MAX_TXN_OPS`).
pub const MAX_TXN_OPS: usize = 1024;

/// Where and how to run an [`EtcdServer`]; the default is what [`EtcdServer::start`] does
/// (its log is `etcd.log` in the server's temporary directory).
pub type EtcdOptions = ServerOptions;

/// A real single-member `etcd` server on loopback with its own temporary data directory.
#[derive(Debug)]
pub struct EtcdServer {
    process: ChildGuard,
    client_addr: SocketAddr,
    peer_addr: SocketAddr,
    binary: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    /// A second client listener over TLS, and the flags that set it up.
    tls: Option<(SocketAddr, Vec<String>)>,
    dir: tempfile::TempDir,
}

/// The files of an etcd client listener over TLS that requires client certificates.
#[derive(Debug, Clone)]
pub struct EtcdTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// What client certificates must chain to.
    pub ca: PathBuf,
}

impl EtcdServer {
    /// Starts etcd and waits until it accepts client connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(EtcdOptions::default())
    }

    /// Starts etcd as `options` say and waits until it accepts client connections.
    pub fn start_with(options: EtcdOptions) -> anyhow::Result<Self> {
        let binary = find_binary("etcd")?;
        // Each attempt picks new ports.
        retry(5, Duration::ZERO, || {
            Self::try_start(&binary, &options, None)
        })
    }

    /// Starts etcd with a second client listener over TLS ([`EtcdServer::tls_endpoint`]) that
    /// requires a client certificate chaining to `files.ca`; the plaintext one stays for the
    /// harness's health checks.
    pub fn start_tls(files: &EtcdTlsFiles) -> anyhow::Result<Self> {
        let binary = find_binary("etcd")?;
        retry(5, Duration::ZERO, || {
            Self::try_start(&binary, &EtcdOptions::default(), Some(files))
        })
    }

    fn try_start(
        binary: &Path,
        options: &EtcdOptions,
        tls_files: Option<&EtcdTlsFiles>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("strata-etcd-").tempdir()?;
        let port = || {
            if options.restartable {
                reserved_port()
            } else {
                free_port()
            }
        };
        let client_addr = SocketAddr::new(options.host, port());
        let peer_addr = SocketAddr::new(options.host, port());
        let log = options
            .log
            .clone()
            .unwrap_or_else(|| dir.path().join("etcd.log"));
        let tls = tls_files.map(|files| {
            let addr = SocketAddr::new(options.host, port());
            let flags = vec![
                format!("--cert-file={}", files.cert.display()),
                format!("--key-file={}", files.key.display()),
                format!("--trusted-ca-file={}", files.ca.display()),
                "--client-cert-auth".to_owned(),
            ];
            (addr, flags)
        });
        let process = Self::spawn(
            binary,
            dir.path(),
            client_addr,
            peer_addr,
            &log,
            &options.env,
            tls.as_ref(),
        )?;
        Ok(Self {
            process,
            client_addr,
            peer_addr,
            binary: binary.to_owned(),
            log,
            env: options.env.clone(),
            tls,
            dir,
        })
    }

    fn spawn(
        binary: &Path,
        dir: &Path,
        client_addr: SocketAddr,
        peer_addr: SocketAddr,
        log: &Path,
        env: &[(String, String)],
        tls: Option<&(SocketAddr, Vec<String>)>,
    ) -> anyhow::Result<ChildGuard> {
        let mut client_url = format!("http://{client_addr}");
        if let Some((addr, _)) = tls {
            client_url.push_str(&format!(",https://{addr}"));
        }
        let peer_url = format!("http://{peer_addr}");
        let mut command = Command::new(binary);
        command
            .arg("--name=strata-test")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=strata-test={peer_url}"))
            .arg("--log-level=warn")
            .arg(format!("--max-txn-ops={MAX_TXN_OPS}"))
            .args(tls.map(|(_, flags)| flags.as_slice()).unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)));
        let mut process = ChildGuard::spawn("etcd", command, log.to_owned())?;
        process.wait_for_tcp(client_addr, Duration::from_secs(15))?;
        wait_healthy(&mut process, client_addr, Duration::from_secs(15))?;
        Ok(process)
    }

    /// The client endpoint, e.g. `http://127.0.0.1:23790`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    /// The TLS client endpoint of [`EtcdServer::start_tls`], e.g. `etcd://127.0.0.1:23791`.
    pub fn tls_endpoint(&self) -> Option<String> {
        self.tls.as_ref().map(|(addr, _)| format!("etcd://{addr}"))
    }

    /// The client address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The etcd process, to kill or pause it in fault tests.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    /// Kills etcd (SIGKILL); its data directory stays for [`EtcdServer::restart`].
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts etcd again on the same addresses and data directory (killing it first if it is
    /// still running), and waits until it accepts client connections. Binding the old ports
    /// can fail for a moment after a kill, so this retries for a few seconds.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = retry(10, Duration::from_millis(300), || {
            Self::spawn(
                &self.binary,
                self.dir.path(),
                self.client_addr,
                self.peer_addr,
                &self.log,
                &self.env,
                self.tls.as_ref(),
            )
        })?;
        Ok(())
    }
}

/// etcd accepts connections on its client port before it serves requests; a test that
/// connected then could fail with "connection refused" a moment later if the process died
/// starting up (a port taken after all). Waits until `/health` answers healthy and the
/// process still runs.
fn wait_healthy(
    process: &mut ChildGuard,
    addr: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let healthy = health(addr).is_ok_and(|body| body.contains("\"health\":\"true\""));
        process.ensure_running()?;
        if healthy {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "etcd on {addr} did not report healthy within {timeout:?}; log {}:\n{}",
                process.log_path().display(),
                process.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn health(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
