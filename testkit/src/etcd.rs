use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::process::{ChildGuard, find_binary, free_port, wait_for_tcp};

/// A real single-member `etcd` server on loopback with its own temporary data directory.
#[derive(Debug)]
pub struct EtcdServer {
    process: ChildGuard,
    client_addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd and waits until it accepts client connections.
    pub fn start() -> anyhow::Result<Self> {
        let binary = find_binary("etcd")?;
        let mut last_error = None;
        // A reserved port can be taken by someone else before etcd binds it; try a few.
        for _ in 0..5 {
            match Self::try_start(&binary) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt ran"))
    }

    fn try_start(binary: &std::path::Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("strata-etcd-").tempdir()?;
        let client_port = free_port();
        let peer_port = free_port();
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut command = Command::new(binary);
        command
            .arg("--name=strata-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=strata-test={peer_url}"))
            .arg("--log-level=warn");
        let log = dir.path().join("etcd.log");
        let mut process = ChildGuard::spawn("etcd", command, log)?;
        let client_addr: SocketAddr = format!("127.0.0.1:{client_port}").parse()?;
        wait_for_tcp(client_addr, Duration::from_secs(15))
            .and_then(|()| process.ensure_running())
            .with_context(|| format!("etcd did not start; log:\n{}", process.log_tail(20)))?;
        Ok(Self {
            process,
            client_addr,
            _dir: dir,
        })
    }

    /// The client endpoint, e.g. `http://127.0.0.1:23790`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    /// The etcd process, to kill or pause it in fault tests.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }
}
