use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::process::{ChildGuard, ServerOptions, find_binary, free_port, reserved_port, retry};

const ACCESS_KEY: &str = "strata-test";
const SECRET_KEY: &str = "strata-test-secret";

/// Where and how to run an [`S3Server`]; the default is what [`S3Server::start`] does (its
/// log is `s3s-fs.log` in the server's temporary directory).
pub type S3Options = ServerOptions;

/// A real S3-protocol server (`s3s-fs`) on loopback, storing objects under a temporary root.
#[derive(Debug)]
pub struct S3Server {
    process: ChildGuard,
    addr: SocketAddr,
    root: PathBuf,
    binary: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` with access-key authentication and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(S3Options::default())
    }

    /// Starts `s3s-fs` as `options` say and waits until it accepts connections.
    pub fn start_with(options: S3Options) -> anyhow::Result<Self> {
        let binary = find_binary("s3s-fs")?;
        // Each attempt picks a new port.
        retry(5, Duration::ZERO, || Self::try_start(&binary, &options))
    }

    fn try_start(binary: &Path, options: &S3Options) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("strata-s3-").tempdir()?;
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root)?;
        let port = if options.restartable {
            reserved_port()
        } else {
            free_port()
        };
        let addr = SocketAddr::new(options.host, port);
        let log = options
            .log
            .clone()
            .unwrap_or_else(|| dir.path().join("s3s-fs.log"));
        let process = Self::spawn(binary, addr, &root, &log, &options.env)?;
        Ok(Self {
            process,
            addr,
            root,
            binary: binary.to_owned(),
            log,
            env: options.env.clone(),
            _dir: dir,
        })
    }

    fn spawn(
        binary: &Path,
        addr: SocketAddr,
        root: &Path,
        log: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<ChildGuard> {
        let mut command = Command::new(binary);
        command
            .args(["--host", &addr.ip().to_string()])
            .args(["--port", &addr.port().to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)));
        let mut process = ChildGuard::spawn("s3s-fs", command, log.to_owned())?;
        process.wait_for_tcp(addr, Duration::from_secs(15))?;
        Ok(process)
    }

    /// Creates a bucket (s3s-fs keeps each bucket as a directory under its root).
    pub fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.root.join(bucket))
            .with_context(|| format!("cannot create bucket directory for {bucket}"))
    }

    /// The server's HTTP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A Strata storage URL for `bucket` on this server, credentials included.
    pub fn url(&self, bucket: &str) -> String {
        format!(
            "s3://{bucket}?endpoint={}&region=us-east-1&access_key_id={ACCESS_KEY}\
             &secret_access_key={SECRET_KEY}",
            self.endpoint()
        )
    }

    /// The server process, to kill or pause it in fault tests.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    /// Kills the server (SIGKILL); its objects stay for [`S3Server::restart`].
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again on the same address and root (killing it first if it is still
    /// running). Binding the old port can fail for a moment after a kill, so this retries.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = retry(10, Duration::from_millis(300), || {
            Self::spawn(&self.binary, self.addr, &self.root, &self.log, &self.env)
        })?;
        Ok(())
    }
}
