//! Admission by client certificate: what keeps everyone but the cluster's own processes out of
//! a broker's gRPC.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::Peer;

/// Refusals remembered, so each connection is logged once; forgotten wholesale past this.
const LOGGED_PEERS: usize = 1024;

/// A tonic interceptor that admits a request only when its connection's client certificate
/// names one of `principals`; without a list it admits everything.
#[derive(Debug, Clone, Default)]
pub struct AdmitOnly {
    principals: Option<Arc<[String]>>,
    logged: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl AdmitOnly {
    pub fn new(principals: Option<Vec<String>>) -> Self {
        Self {
            principals: principals.map(Into::into),
            logged: Arc::default(),
        }
    }

    /// Whether `peer` may call.
    pub fn admits(&self, peer: Option<&Peer>) -> Result<(), tonic::Status> {
        let Some(allowed) = &self.principals else {
            return Ok(());
        };
        let principal = peer.and_then(|p| p.principal.as_deref());
        if principal.is_some_and(|p| allowed.iter().any(|a| a == p)) {
            return Ok(());
        }
        if let Some(peer) = peer {
            let mut logged = self
                .logged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if logged.len() >= LOGGED_PEERS {
                logged.clear();
            }
            if logged.insert(peer.addr) {
                tracing::warn!(peer = %peer.addr, principal = principal.unwrap_or("none"),
                    "refused a caller that is not one of the cluster's processes");
            }
        }
        Err(match principal {
            None => tonic::Status::unauthenticated(
                "this server admits only the cluster's own processes, by client certificate",
            ),
            Some(p) => tonic::Status::permission_denied(format!(
                "{p} is not one of the cluster's processes ([security] cluster_principals)"
            )),
        })
    }
}

impl tonic::service::Interceptor for AdmitOnly {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        self.admits(request.extensions().get::<Peer>())?;
        Ok(request)
    }
}
