//! How the bench reaches a cluster with TLS or authentication: the same CA, client
//! certificate and token for every producer, consumer and admin call of a run.
//!
//! Set once at the start of [`crate::run`]; the load generators read it where they dial. One
//! value shared by a dozen constructors that would otherwise each take a parameter for it.

use std::sync::OnceLock;

use anyhow::Context as _;
use strata_client::{ConnectOptions, Connection, ProducerBuilder, Tls, Token};
use strata_tls::ClientTls;

use crate::BenchArgs;

#[derive(Debug, Clone, Default)]
struct Credentials {
    options: ConnectOptions,
    http: Option<reqwest::Client>,
}

static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();

/// Reads the flags; the first call of a process wins (one run per process).
pub(crate) fn set(args: &BenchArgs) -> anyhow::Result<()> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => Some(Token::new(token).context("--token")?),
        (None, Some(file)) => Some(Token::from_file(file).context("--token-file")?),
        (None, None) => None,
    };
    let mut options = ConnectOptions::default();
    let mut http = reqwest::Client::builder();
    if let Some(ca) = &args.tls_ca {
        let identity = args.tls_cert.as_ref().zip(args.tls_key.as_ref());
        options = options.tls(Tls::from_files(ca, identity)?);
        let tls = ClientTls::from_files(ca, args.tls_cert.as_deref(), args.tls_key.as_deref())?;
        http = http.tls_backend_preconfigured((*tls.rustls()?).clone());
    }
    if let Some(token) = &token {
        let mut value = reqwest::header::HeaderValue::from_str(&token.header_value())?;
        value.set_sensitive(true);
        http = http.default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            value,
        )]));
        options = options.token(token.clone());
    }
    let secured = args.tls_ca.is_some() || token.is_some();
    let credentials = Credentials {
        options,
        http: secured
            .then(|| http.build())
            .transpose()
            .context("cannot set up the admin API's HTTP client")?,
    };
    let _ = CREDENTIALS.set(credentials);
    Ok(())
}

fn get() -> Credentials {
    CREDENTIALS.get().cloned().unwrap_or_default()
}

/// A connection to the proxies at `server` with the run's credentials.
pub(crate) async fn connect(server: &str) -> strata_client::Result<Connection> {
    Connection::connect_with(server, get().options).await
}

/// A producer builder for `server` with the run's credentials.
pub(crate) fn producer(server: &str) -> ProducerBuilder {
    strata_client::Producer::builder(server).connect_options(get().options)
}

/// The HTTP client for the admin API, and whether it speaks https.
pub(crate) fn admin_http() -> (reqwest::Client, bool) {
    let credentials = get();
    let https = credentials.options.has_tls();
    (credentials.http.unwrap_or_default(), https)
}
