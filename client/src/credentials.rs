//! What a connection proves itself with: TLS (with a client certificate for mTLS) and a bearer
//! token, sent as `authorization: Bearer <token>` on every call.

use tonic::metadata::AsciiMetadataValue;

use crate::error::{Error, Result};
use crate::tls::Tls;

/// A bearer token made by `strata token create` or `POST /v1/tokens`.
#[derive(Clone)]
pub struct Token(AsciiMetadataValue);

/// Never prints the token.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// The token as issued (`strata_<id>_<secret>`); surrounding whitespace, such as the line
    /// end of a token file, is dropped.
    pub fn new(token: &str) -> Result<Self> {
        let token = token.trim();
        let bad = || {
            Error::InvalidConfig(
                "the token is not one Strata issues: `strata_<id>_<secret>`, from `strata token create`"
                    .into(),
            )
        };
        if !token.starts_with("strata_") || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        let mut value: AsciiMetadataValue = format!("Bearer {token}").parse().map_err(|_| bad())?;
        // Kept out of HTTP/2 header compression tables and debug output.
        value.set_sensitive(true);
        Ok(Self(value))
    }

    /// The `authorization` header's value, `Bearer <token>`: for HTTP clients of the admin API.
    pub fn header_value(&self) -> String {
        self.0.to_str().unwrap_or_default().to_owned()
    }

    /// [`Token::new`] with the token read from a file (a Kubernetes Secret mount).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::InvalidConfig(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?;
        Self::new(&text)
    }
}

/// How a [`Connection`](crate::Connection) dials and proves itself.
///
/// ```no_run
/// # async fn example() -> strata_client::Result<()> {
/// use strata_client::{ConnectOptions, Connection, Tls, Token};
/// let options = ConnectOptions::default()
///     .tls(Tls::from_files("ca.crt", None::<(&str, &str)>)?)
///     .token(Token::from_file("/var/run/secrets/strata/token")?);
/// let connection = Connection::connect_with("proxy.strata.svc:7070", options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub(crate) tls: Option<Tls>,
    pub(crate) token: Option<Token>,
}

impl ConnectOptions {
    /// Dial over TLS with `tls`.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Whether connections dial over TLS.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Send `token` with every call.
    pub fn token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }
}

/// Adds the token to each call.
#[derive(Debug, Clone, Default)]
pub struct Authorization(Option<Token>);

impl Authorization {
    pub(crate) fn new(token: Option<Token>) -> Self {
        Self(token)
    }
}

impl tonic::service::Interceptor for Authorization {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(Token(value)) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
