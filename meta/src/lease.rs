//! Keeping a lease alive from a task the keeper owns.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{LeaseId, MetaError, MetaStore};

/// Keep-alives never go out more often than this, however short the TTL.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A lease plus the task that renews it every TTL/3.
///
/// The keeper never stops silently: when the lease ends (the store says it is gone, or no
/// keep-alive has succeeded for a whole TTL, after which the store has ended it or will) the
/// [`lost`](Self::lost) future completes and the task exits. Whoever holds keys on the lease
/// must treat them as gone then.
///
/// [`shutdown`](Self::shutdown) stops the task and revokes the lease, deleting its keys at
/// once. Dropping the keeper only stops the task; the lease then ends one TTL later, exactly
/// as if the process had died.
#[derive(Debug)]
pub struct LeaseKeeper {
    store: Arc<dyn MetaStore>,
    lease: LeaseId,
    ttl: Duration,
    lost: CancellationToken,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl LeaseKeeper {
    /// Grants a lease of `ttl` and starts renewing it.
    pub async fn start(store: Arc<dyn MetaStore>, ttl: Duration) -> Result<LeaseKeeper, MetaError> {
        let granted_at = Instant::now();
        let lease = store.grant_lease(ttl).await?;
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_alive(
            store.clone(),
            lease,
            ttl,
            granted_at,
            lost.clone(),
            stop.clone(),
        ));
        tracing::debug!(lease = %format!("{lease:x}"), ?ttl, "lease granted");
        Ok(LeaseKeeper {
            store,
            lease,
            ttl,
            lost,
            stop,
            task: Some(task),
        })
    }

    /// The lease to attach keys to.
    pub fn lease_id(&self) -> LeaseId {
        self.lease
    }

    /// The TTL asked for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether the lease has been lost.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Completes when the lease is lost. Never completes after a graceful shutdown.
    pub async fn lost(&self) {
        self.lost.cancelled().await;
    }

    /// A token cancelled when the lease is lost, for tasks that outlive a borrow of the keeper.
    /// Cancelling it does not affect the keeper.
    pub fn lost_token(&self) -> CancellationToken {
        self.lost.child_token()
    }

    /// Stops renewing and revokes the lease, deleting its keys now. A lease that already ended
    /// is not an error.
    pub async fn shutdown(mut self) -> Result<(), MetaError> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        match self.store.revoke_lease(self.lease).await {
            Ok(()) | Err(MetaError::LeaseNotFound { .. }) => {
                tracing::debug!(lease = %format!("{:x}", self.lease), "lease revoked");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn keep_alive(
    store: Arc<dyn MetaStore>,
    lease: LeaseId,
    ttl: Duration,
    granted_at: Instant,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let interval = (ttl / 3).max(MIN_INTERVAL);
    let lease_hex = format!("{lease:x}");
    // Measured from when a request was sent, not answered: the server's clock started no
    // earlier, so this errs towards declaring the lease lost too soon, never too late.
    let mut renewed_at = granted_at;
    let mut wait = interval;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let sent_at = Instant::now();
        let result = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(interval, store.keep_alive_once(lease)) => r,
        };
        match result {
            Ok(Ok(())) => {
                renewed_at = sent_at;
                wait = interval;
            }
            Ok(Err(MetaError::LeaseNotFound { .. })) => {
                tracing::warn!(lease = %lease_hex, "lease ended before its keep-alive");
                lost.cancel();
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = %lease_hex, error = %e, "lease keep-alive failed; retrying");
                wait = (interval / 3).max(MIN_INTERVAL);
            }
            Err(_) => {
                tracing::warn!(lease = %lease_hex, "lease keep-alive timed out; retrying");
                wait = MIN_INTERVAL;
            }
        }
        if renewed_at.elapsed() >= ttl {
            tracing::warn!(lease = %lease_hex, ?ttl, "no keep-alive succeeded for a whole ttl; lease lost");
            lost.cancel();
            return;
        }
    }
}
