//! The client commands' connections: over TLS when `--tls-ca` is given, with a bearer token
//! when `--token` or `--token-file` is.

use anyhow::Context as _;
use strata_client::{ConnectOptions, Connection, Tls, Token};

use crate::cli::{AdminArgs, ClientTlsArgs, ServerArgs};

impl ClientTlsArgs {
    /// The SDK's TLS settings and token.
    pub fn sdk(&self) -> anyhow::Result<ConnectOptions> {
        let mut options = ConnectOptions::default();
        if let Some(token) = self.token()? {
            options = options.token(token);
        }
        let Some(ca) = &self.tls_ca else {
            anyhow::ensure!(
                self.tls_cert.is_none(),
                "--tls-cert needs --tls-ca: the CA the servers' certificates chain to"
            );
            return Ok(options);
        };
        let identity = self.tls_cert.as_ref().zip(self.tls_key.as_ref());
        Ok(options.tls(Tls::from_files(ca, identity)?))
    }

    fn token(&self) -> anyhow::Result<Option<Token>> {
        Ok(match (&self.token, &self.token_file) {
            (Some(token), _) => Some(Token::new(token).context("--token")?),
            (None, Some(file)) => Some(Token::from_file(file).context("--token-file")?),
            (None, None) => None,
        })
    }
}

impl ServerArgs {
    /// A connection to the proxies.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        Ok(Connection::connect_with(&self.server, self.tls.sdk()?).await?)
    }
}

impl AdminArgs {
    /// The admin API's base URL and an HTTP client that trusts the cluster's CA.
    pub fn http(&self) -> anyhow::Result<(String, reqwest::Client)> {
        let tls = &self.tls;
        let mut client = reqwest::Client::builder();
        let scheme = if tls.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        if let Some(ca) = &tls.tls_ca {
            let pem = std::fs::read(ca)
                .with_context(|| format!("cannot read the CA bundle {}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM CA bundle", ca.display()))?
            {
                client = client.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
            let mut pem = std::fs::read(cert)
                .with_context(|| format!("cannot read the certificate {}", cert.display()))?;
            pem.extend(
                std::fs::read(key)
                    .with_context(|| format!("cannot read the key {}", key.display()))?,
            );
            client = client.identity(
                reqwest::Identity::from_pem(&pem)
                    .context("--tls-cert and --tls-key do not make a client identity")?,
            );
        }
        if let Some(token) = tls.token()? {
            let mut value = reqwest::header::HeaderValue::from_str(&token.header_value())
                .context("the token is not a valid header value")?;
            value.set_sensitive(true);
            client = client.default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::AUTHORIZATION,
                value,
            )]));
        }
        let base = if self.admin.contains("://") {
            self.admin.trim_end_matches('/').to_owned()
        } else {
            format!("{scheme}://{}", self.admin)
        };
        Ok((
            base,
            client.build().context("cannot set up the HTTP client")?,
        ))
    }
}
