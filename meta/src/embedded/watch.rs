//! Prefix watches on the embedded store.
//!
//! A watch holds no buffer of its own: it remembers the next revision it needs and reads the
//! shared history when the revision moves. A watcher that falls further behind than the
//! history reaches gets `Compacted`, which is what etcd does to a slow watcher, instead of the
//! store buffering without bound or blocking writers.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use futures::StreamExt;

use super::Inner;
use crate::{MetaError, Revision, WatchEvent, WatchStream};

struct Watch {
    inner: Weak<Inner>,
    prefix: String,
    next: Revision,
    pending: VecDeque<WatchEvent>,
    revision: tokio::sync::watch::Receiver<Revision>,
}

pub(super) fn watch(
    inner: &Arc<Inner>,
    prefix: &str,
    start: Option<Revision>,
) -> Result<WatchStream, MetaError> {
    if let Some(start) = start
        && start < 1
    {
        return Err(MetaError::InvalidArgument(format!(
            "watch start revision {start} is not positive"
        )));
    }
    // Subscribe before reading the revision, so a write in between still wakes the stream.
    let revision = inner.revision.subscribe();
    let next = {
        let state = inner.state()?;
        let next = start.unwrap_or(state.revision() + 1);
        state.check_watchable(next)?;
        next
    };
    let watch = Watch {
        inner: Arc::downgrade(inner),
        prefix: prefix.to_owned(),
        next,
        pending: VecDeque::new(),
        revision,
    };
    Ok(WatchStream::new(
        futures::stream::unfold(watch, next_event).boxed(),
    ))
}

async fn next_event(mut w: Watch) -> Option<(Result<WatchEvent, MetaError>, Watch)> {
    loop {
        if let Some(event) = w.pending.pop_front() {
            return Some((Ok(event), w));
        }
        w.revision.borrow_and_update();
        let read = match w.inner.upgrade() {
            Some(inner) => inner
                .state()
                .and_then(|s| s.events_since(&w.prefix, w.next)),
            None => Err(closed()),
        };
        match read {
            Ok((events, current)) => {
                w.next = current + 1;
                w.pending.extend(events);
            }
            Err(e) => return Some((Err(e), w)),
        }
        if w.pending.is_empty() && w.revision.changed().await.is_err() {
            return Some((Err(closed()), w));
        }
    }
}

fn closed() -> MetaError {
    MetaError::unavailable("the embedded store was closed")
}
