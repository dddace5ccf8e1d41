//! A `strata standalone` with security on, as the security tests start it (`tests/tls.rs`,
//! `tests/tokens.rs`, `tests/sasl.rs`, `tests/authorization.rs`): a throwaway CA and the
//! server's certificate in the test's log directory, the flags that turn on TLS,
//! authentication and SASL, and the flags with which the CLI and kcat present a client's
//! credentials to it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use strata_testkit::{StrataServer, log_dir, strata_binary, target_tmp_dir};
use strata_tls::testing::{Pair, TestCa};

/// The file name and common name of the server's certificate (`User:strata`, the principal
/// brokers admit when authentication is on); issue it again with [`TestCa::server`] under
/// this name to rotate it on disk.
pub const SERVER_CERT: &str = "strata";

/// What a [`SecuredStandalone`] turns on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Security<'a> {
    /// TLS on every listener with a certificate from a test CA, client certificates asked for
    /// as this `--tls-client-auth` says (`optional` or `required`); `None`: no TLS.
    pub tls_client_auth: Option<&'a str>,
    /// `--authenticate`: gRPC and REST callers bring a token or a client certificate.
    pub authenticate: bool,
    /// `--kafka-sasl-mechanisms`, comma-separated.
    pub sasl_mechanisms: Option<&'a str>,
    /// `--super-users`, comma-separated.
    pub super_users: Option<&'a str>,
}

/// The test CA and the certificate it gave the server.
#[derive(Debug)]
pub struct TestTls {
    pub ca: TestCa,
    pub server_cert: Pair,
}

/// A running `strata standalone` started with [`Security`].
#[derive(Debug)]
pub struct SecuredStandalone {
    pub server: StrataServer,
    /// The test's log directory: the server's log, the CA's files under `pki/`.
    pub logs: PathBuf,
    /// The CA and the server's certificate, when TLS is on.
    pub tls: Option<TestTls>,
    /// Removed after the server (fields drop in order).
    _data: tempfile::TempDir,
}

impl SecuredStandalone {
    /// Starts a standalone for the test `name` (its log directory, its CA's name) with
    /// `security` on.
    pub fn start(name: &str, security: Security<'_>) -> anyhow::Result<Self> {
        let logs = log_dir(&target_tmp_dir()?, name)?;
        let data = tempfile::tempdir()?;
        let mut flags: Vec<String> = Vec::new();
        let tls = security.tls_client_auth.map(|client_auth| {
            let ca = TestCa::new(&logs.join("pki"), &format!("Strata {name} test CA"));
            let server_cert = ca.server(SERVER_CERT, &[]);
            flags.extend([
                "--tls-cert".into(),
                path(&server_cert.cert),
                "--tls-key".into(),
                path(&server_cert.key),
                "--tls-ca".into(),
                path(&ca.ca()),
                "--tls-client-auth".into(),
                client_auth.into(),
            ]);
            TestTls { ca, server_cert }
        });
        if security.authenticate {
            flags.push("--authenticate".into());
        }
        if let Some(mechanisms) = security.sasl_mechanisms {
            flags.extend(["--kafka-sasl-mechanisms".into(), mechanisms.into()]);
        }
        if let Some(users) = security.super_users {
            flags.extend(["--super-users".into(), users.into()]);
        }
        let server = StrataServer::standalone_with(strata_binary()?, data.path(), &logs, &flags)
            .with_context(|| format!("cannot start the secured standalone of `{name}`"))?;
        Ok(Self {
            server,
            logs,
            tls,
            _data: data,
        })
    }

    /// The admin API's address (`--admin`).
    pub fn admin_addr(&self) -> String {
        self.listener("--admin-addr")
    }

    /// The proxy's gRPC address (`--server`).
    pub fn grpc_addr(&self) -> String {
        self.server.addr().to_string()
    }

    /// The Kafka listener's address.
    pub fn kafka_addr(&self) -> String {
        self.listener("--kafka-addr")
    }

    /// The address of the listener the server was given with `flag`.
    pub fn listener(&self, flag: &str) -> String {
        self.server
            .listener(flag)
            .unwrap_or_else(|| panic!("the standalone has no {flag} listener"))
            .to_string()
    }

    /// The CA and the server's certificate; the test started the server with TLS.
    pub fn tls(&self) -> &TestTls {
        self.tls
            .as_ref()
            .expect("TLS is on: start with `tls_client_auth`")
    }

    /// The CA's certificate, which clients trust.
    pub fn ca_path(&self) -> PathBuf {
        self.tls().ca.ca()
    }

    /// A client certificate from the test CA, with common name `name` (`User:{name}`).
    pub fn client_cert(&self, name: &str) -> Pair {
        self.tls().ca.client(name, name, &[])
    }

    /// CLI flags that trust the CA and present no credentials.
    pub fn tls_flags(&self) -> Vec<String> {
        vec!["--tls-ca".into(), path(&self.ca_path())]
    }

    /// CLI flags that present the client certificate `pair`.
    pub fn cert_flags(&self, pair: &Pair) -> Vec<String> {
        let mut flags = self.tls_flags();
        flags.extend([
            "--tls-cert".into(),
            path(&pair.cert),
            "--tls-key".into(),
            path(&pair.key),
        ]);
        flags
    }

    /// CLI flags that present the bearer token `token`.
    pub fn token_flags(&self, token: &str) -> Vec<String> {
        let mut flags = self.tls_flags();
        flags.extend(["--token".into(), token.into()]);
        flags
    }

    /// kcat (librdkafka) settings that log in as `user` with SASL `mechanism`: over TLS
    /// trusting the CA when the server serves TLS (SASL_SSL), else in plaintext.
    pub fn kcat_sasl(&self, mechanism: &str, user: &str, password: &str) -> Vec<String> {
        let mut settings = Vec::new();
        match &self.tls {
            Some(tls) => settings.extend([
                "security.protocol=SASL_SSL".to_owned(),
                format!("ssl.ca.location={}", path(&tls.ca.ca())),
            ]),
            None => settings.push("security.protocol=SASL_PLAINTEXT".to_owned()),
        }
        settings.extend([
            format!("sasl.mechanisms={mechanism}"),
            format!("sasl.username={user}"),
            format!("sasl.password={password}"),
        ]);
        settings
            .into_iter()
            .flat_map(|setting| ["-X".to_owned(), setting])
            .collect()
    }
}

/// Runs the CLI with `args` and the credential flags `credentials`, bound to a minute: its
/// stdout, or the error with its stderr.
pub async fn cli(
    args: &[&str],
    credentials: &[String],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(credentials.iter().map(String::as_str));
    crate::cli::strata(&all, stdin.map(str::as_bytes), Duration::from_secs(60)).await
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
