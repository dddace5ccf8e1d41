use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::process::{ChildGuard, find_binary, free_port, wait_for_tcp};

const ACCESS_KEY: &str = "strata-test";
const SECRET_KEY: &str = "strata-test-secret";

/// A real S3-protocol server (`s3s-fs`) on loopback, storing objects under a temporary root.
#[derive(Debug)]
pub struct S3Server {
    process: ChildGuard,
    addr: SocketAddr,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` with access-key authentication and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let binary = find_binary("s3s-fs")?;
        let mut last_error = None;
        for _ in 0..5 {
            match Self::try_start(&binary) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt ran"))
    }

    fn try_start(binary: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("strata-s3-").tempdir()?;
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root)?;
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&root)
            .env("RUST_LOG", "warn");
        let mut process = ChildGuard::spawn("s3s-fs", command, dir.path().join("s3s-fs.log"))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        wait_for_tcp(addr, Duration::from_secs(15))
            .and_then(|()| process.ensure_running())
            .with_context(|| format!("s3s-fs did not start; log:\n{}", process.log_tail(20)))?;
        Ok(Self {
            process,
            addr,
            root,
            _dir: dir,
        })
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
}
