//! Watch events and the stream that carries them.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::BoxStream;

use crate::{KeyValue, MetaError, Revision};

/// A change to a watched key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or overwritten; carries the new state.
    Put(KeyValue),
    /// The key was deleted (explicitly, by a prefix delete, or by its lease ending).
    Delete {
        /// The key.
        key: String,
        /// The revision of the delete.
        mod_revision: Revision,
    },
}

impl WatchEvent {
    /// The key the event is about.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    /// The revision at which the change happened. Several events can share one revision when
    /// one transaction changed several keys.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// Events of a prefix watch, in revision order.
///
/// The stream never hides a failure: when the connection breaks, the history is compacted
/// under a slow watcher, or the store closes, it yields one `Err` and then ends. The caller
/// resumes with a new watch from the revision after the last event it saw (or, after
/// [`MetaError::Compacted`], re-reads the state first).
pub struct WatchStream {
    inner: BoxStream<'static, Result<WatchEvent, MetaError>>,
    finished: bool,
}

impl WatchStream {
    pub(crate) fn new(inner: BoxStream<'static, Result<WatchEvent, MetaError>>) -> Self {
        Self {
            inner,
            finished: false,
        }
    }
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent, MetaError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let item = futures::ready!(self.inner.as_mut().poll_next(cx));
        // One error ends the stream, whatever the backend would do next, so both backends
        // behave the same for callers.
        if !matches!(item, Some(Ok(_))) {
            self.finished = true;
        }
        Poll::Ready(item)
    }
}
