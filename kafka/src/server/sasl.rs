//! SASL on the Kafka listener (KIP-43, KIP-152): SaslHandshake v1 picks a mechanism, then
//! SaslAuthenticate requests carry the exchange. With mechanisms configured, a connection may
//! send nothing but ApiVersions and these two until it is authenticated.
//!
//! PLAIN is checked against the user's SCRAM credential (no password is stored); SCRAM-SHA-256
//! and -512 run RFC 5802. A failed login is answered after a pause (longer for a peer that
//! keeps failing), logged once for its connection unless the peer is over its log budget, and
//! the connection is closed.

use std::net::SocketAddr;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, RequestKind, ResponseKind, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use strata_catalog::users::{
    DEFAULT_ITERATIONS, ScramCredential, ScramExchange, ScramMechanism, ScramStep,
};
use strata_sasl::plain::PlainMessage;

use crate::codes;
use crate::error::{KafkaError, Result};
use crate::handlers::{Context, encode};
use crate::metrics::{KafkaMetrics, MechanismLabel};
use crate::versions::Supported;

/// A SASL mechanism the listener can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub const NAMES: &'static str = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512";

    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("PLAIN") {
            return Some(Self::Plain);
        }
        ScramMechanism::parse(name).map(Self::Scram)
    }
}

/// Where one connection is in SASL.
#[derive(Debug)]
pub(crate) struct Session {
    required: bool,
    state: State,
}

#[derive(Debug)]
enum State {
    Fresh,
    Chosen(Mechanism),
    Scram(Box<ScramExchange>),
    Authenticated(String),
    Failed,
}

/// An answer, and whether the connection ends after it.
pub(crate) struct Answer {
    pub frame: Bytes,
    pub close: Option<KafkaError>,
}

impl Session {
    pub fn new(ctx: &Context) -> Self {
        Self {
            required: !ctx.config.sasl.is_empty(),
            state: State::Fresh,
        }
    }

    /// `User:<name>` once authenticated.
    pub fn principal(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated(p) => Some(p),
            _ => None,
        }
    }

    /// Refuses any API but the handshake's before authentication, when SASL is required.
    pub fn check(&self, api: &Supported) -> Result<()> {
        let exempt = matches!(
            api.api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        if !self.required || exempt || self.principal().is_some() {
            return Ok(());
        }
        Err(KafkaError::Unauthenticated { api: api.name })
    }

    /// Answers a SaslHandshake or SaslAuthenticate request; any other request comes back.
    pub async fn answer(
        &mut self,
        ctx: &Context,
        metrics: &KafkaMetrics,
        peer: SocketAddr,
        header: &RequestHeader,
        api: &'static Supported,
        body: RequestKind,
    ) -> std::result::Result<Result<Answer>, RequestKind> {
        match body {
            RequestKind::SaslHandshake(r) => Ok(self.handshake(ctx, header, api, &r)),
            RequestKind::SaslAuthenticate(r) => {
                Ok(self.authenticate(ctx, metrics, peer, header, api, r).await)
            }
            other => Err(other),
        }
    }

    fn handshake(
        &mut self,
        ctx: &Context,
        header: &RequestHeader,
        api: &'static Supported,
        request: &SaslHandshakeRequest,
    ) -> Result<Answer> {
        let offered: Vec<&'static str> = ctx.config.sasl.iter().map(|m| m.name()).collect();
        let chosen = Mechanism::parse(&request.mechanism).filter(|m| ctx.config.sasl.contains(m));
        let (code, close) = match (&self.state, chosen) {
            (State::Fresh, Some(m)) => {
                self.state = State::Chosen(m);
                (codes::NONE, None)
            }
            (State::Fresh, None) => (
                codes::UNSUPPORTED_SASL_MECHANISM,
                Some(KafkaError::AuthenticationFailed(format!(
                    "mechanism {} is not offered here (offered: {})",
                    request.mechanism.as_str(),
                    if offered.is_empty() {
                        "none, SASL is off".to_owned()
                    } else {
                        offered.join(", ")
                    }
                ))),
            ),
            _ => (
                codes::ILLEGAL_SASL_STATE,
                Some(KafkaError::AuthenticationFailed(
                    "a second SaslHandshake on one connection".into(),
                )),
            ),
        };
        let response = SaslHandshakeResponse::default()
            .with_error_code(code)
            .with_mechanisms(offered.into_iter().map(StrBytes::from_static_str).collect());
        Ok(Answer {
            frame: frame(api, header, ResponseKind::SaslHandshake(response))?,
            close,
        })
    }

    async fn authenticate(
        &mut self,
        ctx: &Context,
        metrics: &KafkaMetrics,
        peer: SocketAddr,
        header: &RequestHeader,
        api: &'static Supported,
        request: SaslAuthenticateRequest,
    ) -> Result<Answer> {
        let outcome = self.step(ctx, &request.auth_bytes).await;
        let respond = |response: SaslAuthenticateResponse| {
            frame(api, header, ResponseKind::SaslAuthenticate(response))
        };
        match outcome {
            Ok(Step::Continue(bytes)) => Ok(Answer {
                frame: respond(SaslAuthenticateResponse::default().with_auth_bytes(bytes))?,
                close: None,
            }),
            Ok(Step::Done {
                principal,
                bytes,
                mechanism,
            }) => {
                tracing::info!(%peer, %principal, mechanism = mechanism.name(), "Kafka client authenticated");
                metrics
                    .sasl_logins
                    .get_or_create(&MechanismLabel {
                        mechanism: mechanism.name(),
                    })
                    .inc();
                self.state = State::Authenticated(principal);
                Ok(Answer {
                    frame: respond(SaslAuthenticateResponse::default().with_auth_bytes(bytes))?,
                    close: None,
                })
            }
            Err(failure) => {
                let mechanism = failure.mechanism;
                self.state = State::Failed;
                metrics
                    .sasl_failures
                    .get_or_create(&MechanismLabel {
                        mechanism: mechanism.map_or("none", Mechanism::name),
                    })
                    .inc();
                ctx.failed_logins
                    .refuse(peer.ip(), tokio::time::Instant::now().into_std(), || {
                        tracing::warn!(%peer, user = failure.user.as_deref().unwrap_or("?"),
                            mechanism = mechanism.map_or("none", Mechanism::name),
                            reason = %failure.reason, "Kafka client failed to authenticate");
                    })
                    .await;
                let (code, message) = if failure.illegal_state {
                    (codes::ILLEGAL_SASL_STATE, failure.reason.clone())
                } else {
                    // The client hears that it failed, not why: which users exist is no
                    // one's business.
                    (
                        codes::SASL_AUTHENTICATION_FAILED,
                        format!(
                            "Authentication failed with SASL mechanism {}: invalid credentials",
                            mechanism.map_or("none", Mechanism::name)
                        ),
                    )
                };
                Ok(Answer {
                    frame: respond(
                        SaslAuthenticateResponse::default()
                            .with_error_code(code)
                            .with_error_message(Some(StrBytes::from_string(message))),
                    )?,
                    close: Some(KafkaError::AuthenticationFailed(failure.reason)),
                })
            }
        }
    }

    async fn step(&mut self, ctx: &Context, bytes: &[u8]) -> Result<Step, Failure> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Chosen(Mechanism::Plain) => plain(ctx, bytes).await,
            State::Chosen(Mechanism::Scram(mechanism)) => {
                let fail = |user: Option<String>, reason: String| Failure {
                    mechanism: Some(Mechanism::Scram(mechanism)),
                    user,
                    reason,
                    illegal_state: false,
                };
                let mut exchange = ScramExchange::new(mechanism);
                let user = exchange
                    .client_first(bytes)
                    .map_err(|e| fail(None, e.to_string()))?;
                let credential = match ctx.service.admin().user(&user).await {
                    Ok(found) => found.and_then(|u| u.credential(mechanism).cloned()),
                    Err(e) => return Err(fail(Some(user), e.to_string())),
                };
                let known = credential.is_some();
                let step = exchange
                    .challenge(credential)
                    .map_err(|e| fail(Some(user.clone()), e.to_string()))?;
                if !known {
                    tracing::debug!(%user, "SCRAM login for an unknown user; it will fail");
                }
                let ScramStep::Challenge(server_first) = step else {
                    return Err(fail(Some(user), "no challenge".into()));
                };
                self.state = State::Scram(Box::new(exchange));
                Ok(Step::Continue(Bytes::from(server_first)))
            }
            State::Scram(mut exchange) => {
                let mechanism = Mechanism::Scram(exchange.mechanism());
                let claimed = exchange.user().map(str::to_owned);
                match exchange.client_final(bytes) {
                    Ok(Some(ScramStep::Success { user, server_final })) => Ok(Step::Done {
                        principal: format!("User:{user}"),
                        bytes: Bytes::from(server_final),
                        mechanism,
                    }),
                    Ok(_) => Err(Failure {
                        mechanism: Some(mechanism),
                        user: claimed,
                        reason: "wrong password, or no such user".into(),
                        illegal_state: false,
                    }),
                    Err(e) => Err(Failure {
                        mechanism: Some(mechanism),
                        user: claimed,
                        reason: e.to_string(),
                        illegal_state: false,
                    }),
                }
            }
            State::Fresh | State::Authenticated(_) | State::Failed => Err(Failure {
                mechanism: None,
                user: None,
                reason: "SaslAuthenticate without a SaslHandshake choosing a mechanism first"
                    .into(),
                illegal_state: true,
            }),
        }
    }
}

enum Step {
    Continue(Bytes),
    Done {
        principal: String,
        bytes: Bytes,
        mechanism: Mechanism,
    },
}

struct Failure {
    mechanism: Option<Mechanism>,
    user: Option<String>,
    /// For the log only; it never reaches the client.
    reason: String,
    illegal_state: bool,
}

/// PLAIN: `authzid NUL user NUL password`, checked against the user's SCRAM credential.
/// The answer to `header`'s request as a frame.
fn frame(api: &'static Supported, header: &RequestHeader, response: ResponseKind) -> Result<Bytes> {
    encode(
        api,
        header.correlation_id,
        header.request_api_version,
        &response,
    )
}

/// What a PLAIN login for a user that does not exist is checked against.
static NOBODY: std::sync::LazyLock<ScramCredential> = std::sync::LazyLock::new(|| {
    ScramCredential::from_password(ScramMechanism::Sha256, "", DEFAULT_ITERATIONS)
});

async fn plain(ctx: &Context, bytes: &[u8]) -> Result<Step, Failure> {
    let fail = |user: Option<&str>, reason: &str| Failure {
        mechanism: Some(Mechanism::Plain),
        user: user.map(str::to_owned),
        reason: reason.to_owned(),
        illegal_state: false,
    };
    let PlainMessage { user, password } =
        PlainMessage::parse(bytes).map_err(|e| fail(None, &e.to_string()))?;
    let record = ctx
        .service
        .admin()
        .user(user)
        .await
        .map_err(|e| fail(Some(user), &e.to_string()))?;
    // Kafka's AlterUserScramCredentials may give each mechanism its own password. A user
    // that does not exist costs the same derivation, against a made-up credential, so the
    // answer's timing does not tell who exists. PBKDF2 takes about a millisecond of CPU: off
    // the runtime's threads, so a flood of wrong passwords does not stall other connections.
    let credentials = match &record {
        Some(u) => u.credentials.clone(),
        None => vec![NOBODY.clone()],
    };
    let known = record.is_some();
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || {
        credentials.iter().any(|c| c.matches_password(&password))
    })
    .await
    .unwrap_or(false)
        && known;
    if !matches {
        return Err(fail(Some(user), "wrong password, or no such user"));
    }
    Ok(Step::Done {
        principal: format!("User:{user}"),
        bytes: Bytes::new(),
        mechanism: Mechanism::Plain,
    })
}
