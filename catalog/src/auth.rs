//! Who is calling the gRPC or REST API: the principal of a bearer token or of a verified client
//! certificate, and whether the cluster lets a caller without one in.
//!
//! The listeners take the two inputs (the `authorization` header, the certificate's principal
//! from the TLS layer) and hand them here, so the proxy's gRPC and the admin API decide alike.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_clock::Clock;

use crate::admin::Admin;
use crate::error::{CatalogError, Result};
use crate::tokens::{TokenRecord, split};

/// How long a token found in the store is trusted without looking again: a revoked token is
/// refused at most this long after `strata token revoke`.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);

/// What a caller who brings no credentials is told.
const NO_CREDENTIALS: &str = "this cluster requires credentials: a bearer token (--token or STRATA_TOKEN; `strata token create` makes one) or a client certificate (--tls-cert and --tls-key)";
/// What a caller whose token does not hold is told; which part failed is nobody's business.
const BAD_TOKEN: &str = "the bearer token is not valid (unknown, revoked or expired)";

/// Who made a request, as the listeners pass it on to the handlers: `User:<name>`, or `None`
/// for an anonymous caller of a cluster that lets them in.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<String>);

/// How long a failed login waits before its answer; a peer over its failure budget waits
/// [`PUNISHED_DELAY`].
const FAILED_DELAY: Duration = Duration::from_millis(100);
const PUNISHED_DELAY: Duration = Duration::from_secs(1);
/// Failures per peer address per [`WINDOW`] that are logged one by one and answered after
/// [`FAILED_DELAY`]; beyond, they are counted but not logged.
const LOGGED_PER_WINDOW: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);

/// Failed logins per peer address, shared by a listener's connections: the Kafka listener's
/// SASL, the proxy's gRPC and the admin API each keep one.
#[derive(Debug, Default)]
pub struct FailedLogins {
    peers: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailedLogins {
    /// Handles a failed login of `peer` at `now`: counts it, calls `log` while the peer is
    /// within its budget, and holds the answer — briefly within the budget, longer past it,
    /// so guessing is slow and floods cost the flooder.
    pub async fn refuse(&self, peer: IpAddr, now: Instant, log: impl FnOnce()) {
        let within_budget = self.record(peer, now);
        if within_budget {
            log();
        }
        let pause = if within_budget {
            FAILED_DELAY
        } else {
            PUNISHED_DELAY
        };
        tokio::time::sleep(pause).await;
    }

    /// Counts a failure of `peer` at `now`; whether it is within the budget.
    fn record(&self, peer: IpAddr, now: Instant) -> bool {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget quiet peers so the table stays as small as the set of recent offenders.
        if peers.len() > 10_000 {
            peers.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = peers.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= LOGGED_PER_WINDOW
    }
}

/// Decides who a request comes from.
#[derive(Debug)]
pub struct Authenticator {
    admin: Admin,
    required: bool,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<String, (TokenRecord, Instant)>>,
    failures: FailedLogins,
}

impl Authenticator {
    /// `required`: a request without credentials is refused; else it runs with no principal.
    pub fn new(admin: Admin, required: bool, clock: Arc<dyn Clock>) -> Self {
        Self {
            admin,
            required,
            clock,
            cache: Mutex::new(HashMap::new()),
            failures: FailedLogins::default(),
        }
    }

    pub fn required(&self) -> bool {
        self.required
    }

    /// The caller's principal from its `authorization` header (`Bearer <token>`), else from
    /// its verified client certificate. A header that does not hold is refused even when a
    /// certificate came too: a caller that sends a wrong token wants to know.
    ///
    /// A refusal from `peer` is logged with the peer and the token's id (while the peer is
    /// within its budget of [`FailedLogins`]) and answered after [`FailedLogins::refuse`]'s pause.
    pub async fn authenticate(
        &self,
        peer: Option<SocketAddr>,
        certificate: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Option<String>> {
        let outcome = self.decide(certificate, authorization).await;
        if let (Err(e @ CatalogError::Unauthenticated(_)), Some(peer)) = (&outcome, peer) {
            self.failures
                .refuse(peer.ip(), self.clock.now(), || {
                    let token = authorization
                        .and_then(|h| h.split_whitespace().nth(1))
                        .and_then(split)
                        .map(|(id, _)| id);
                    tracing::warn!(%peer, token = token.unwrap_or("none"),
                        certificate = certificate.unwrap_or("none"), reason = %e,
                        "caller failed to authenticate");
                })
                .await;
        }
        outcome
    }

    async fn decide(
        &self,
        certificate: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Option<String>> {
        if let Some(header) = authorization {
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or_else(|| {
                    CatalogError::Unauthenticated(
                        "the authorization header takes `Bearer <token>`".into(),
                    )
                })?;
            return self.bearer(token.trim()).await.map(Some);
        }
        if let Some(principal) = certificate {
            return Ok(Some(principal.to_owned()));
        }
        if self.required {
            return Err(CatalogError::Unauthenticated(NO_CREDENTIALS.into()));
        }
        Ok(None)
    }

    async fn bearer(&self, token: &str) -> Result<String> {
        let refused = || CatalogError::Unauthenticated(BAD_TOKEN.into());
        let (id, secret) = split(token).ok_or_else(refused)?;
        let now = self.clock.now();
        let cached = self
            .cache()
            .get(id)
            .filter(|(_, at)| now.duration_since(*at) < TOKEN_CACHE_TTL)
            .map(|(record, _)| record.clone());
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self.admin.token(id).await?.ok_or_else(refused)?;
                self.cache().insert(id.to_owned(), (record.clone(), now));
                record
            }
        };
        if record.admits(secret, self.clock.unix_millis()) {
            Ok(record.principal)
        } else {
            Err(refused())
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (TokenRecord, Instant)>> {
        // Entries are whole records: a panic elsewhere cannot leave one half-written.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
