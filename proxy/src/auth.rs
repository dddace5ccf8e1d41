//! Authentication of the proxy's gRPC callers: a tower service in front of every method that
//! asks the [`Authenticator`] who the caller is, from its `authorization` metadata or its
//! client certificate, and refuses the request when the cluster requires credentials it does
//! not bring. The principal rides on in the request's extensions as a [`Caller`].

use std::sync::Arc;
use std::task::{Context, Poll};

use strata_catalog::auth::{Authenticator, Caller};
use strata_proto::Coded as _;
use strata_tls::Peer;
use tonic::codegen::BoxFuture;
use tonic::codegen::http;

/// A gRPC service behind authentication.
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S> Authenticate<S> {
    pub fn new(inner: S, auth: Arc<Authenticator>) -> Self {
        Self { inner, auth }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Authenticate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> tower::Service<http::Request<B>> for Authenticate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was made ready is the one that serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let peer = request.extensions().get::<Peer>();
            let certificate = peer.and_then(|p| p.principal.clone());
            let addr = peer.map(|p| p.addr);
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
            match auth
                .authenticate(addr, certificate.as_deref(), header.as_deref())
                .await
            {
                Ok(principal) => {
                    request.extensions_mut().insert(Caller(principal));
                    inner.call(request).await
                }
                Err(e) => Ok(strata_proto::status(e.code(), e.to_string()).into_http()),
            }
        })
    }
}
