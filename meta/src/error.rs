//! The one error type every backend returns.

use std::path::PathBuf;

use strata_proto::{Coded, ErrorCode};

use crate::{LeaseId, Revision};

/// Errors from a [`MetaStore`](crate::MetaStore) and the helpers built on it.
///
/// Only [`MetaError::Unavailable`] is retriable. A write that failed with it may or may not have
/// been applied (the request can time out after the server committed it), so retry only writes
/// that are idempotent or guarded by a transaction compare.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The store cannot be reached right now: connection refused or lost, request timed out,
    /// no etcd leader, the watch stream broke. Retry with backoff.
    #[error("metadata store unavailable: {message}")]
    Unavailable {
        /// What failed, for logs.
        message: String,
    },

    /// The history a watch asked for is gone. Re-read the state with
    /// [`range`](crate::MetaStore::range) and watch again from the revision it returns + 1.
    #[error(
        "watch history compacted: requested revision {requested}, oldest available is {compacted}"
    )]
    Compacted {
        /// The revision the watch wanted to start from.
        requested: Revision,
        /// The oldest revision a new watch can start from.
        compacted: Revision,
    },

    /// The lease does not exist: it expired, was revoked, or never existed.
    #[error("lease {lease:x} not found (expired or revoked)")]
    LeaseNotFound {
        /// The lease the request named (0 when the server did not say which one).
        lease: LeaseId,
    },

    /// The request is malformed: empty key, too many operations, a key written twice in one
    /// transaction, a TTL of zero, and so on.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// [`open`](crate::open) was given a URL it does not understand.
    #[error(
        "invalid metadata store url {url:?}: {reason}; accepted forms are \
         etcd://host:port[,host:port...], http://host:port[,host:port...] and \
         embedded:///path/to/dir"
    )]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Another process (or another store in this process) has the embedded store's directory
    /// open.
    #[error(
        "metadata directory {} is locked by {holder}; stop that process or use another directory",
        dir.display()
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// Who holds it, as recorded in the lock file (usually `pid N`).
        holder: String,
    },

    /// A file of the embedded store is damaged somewhere other than a torn last record.
    #[error(
        "metadata file {} is damaged: {detail}; the store will not start on damaged data. \
         Move the directory aside and restore it from a backup; deleting it starts an empty \
         store and loses all metadata",
        file.display()
    )]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// What is wrong and where.
        detail: String,
    },

    /// A file system operation of the embedded store failed.
    #[error("{op} {} failed: {source}", path.display())]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The backend failed in a way that retrying will not fix: an unexpected server error, a
    /// key that is not UTF-8, an embedded store that stopped accepting writes after a failed
    /// log write.
    #[error("metadata store error: {0}")]
    Backend(String),
}

/// Only `Unavailable` is retriable (see the type's doc); every other failure is the caller's
/// request or the store's state, which a retry does not change.
impl Coded for MetaError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable { .. } => ErrorCode::Unavailable,
            Self::InvalidArgument(_) | Self::InvalidUrl { .. } => ErrorCode::InvalidArgument,
            Self::Compacted { .. }
            | Self::LeaseNotFound { .. }
            | Self::Locked { .. }
            | Self::Corrupt { .. }
            | Self::Io { .. }
            | Self::Backend(_) => ErrorCode::Internal,
        }
    }
}

impl MetaError {
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        MetaError::Unavailable {
            message: message.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MetaError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(file: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        MetaError::Corrupt {
            file: file.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<MetaError> {
        vec![
            MetaError::unavailable("no leader"),
            MetaError::Compacted {
                requested: 2,
                compacted: 9,
            },
            MetaError::LeaseNotFound { lease: 7 },
            MetaError::InvalidArgument("empty key".into()),
            MetaError::InvalidUrl {
                url: "zk://x".into(),
                reason: "unknown scheme".into(),
            },
            MetaError::Locked {
                dir: "/m".into(),
                holder: "pid 1".into(),
            },
            MetaError::corrupt("/m/log", "bad crc"),
            MetaError::io("fsync", "/m/log", std::io::Error::other("EIO")),
            MetaError::Backend("unexpected".into()),
        ]
    }

    #[test]
    fn only_an_unavailable_store_is_retriable_and_answers_unavailable() {
        for e in one_of_each() {
            let unavailable = matches!(e, MetaError::Unavailable { .. });
            assert_eq!(e.is_retriable(), unavailable, "{e}");
            assert_eq!(e.code() == ErrorCode::Unavailable, unavailable, "{e}");
        }
    }

    #[test]
    fn a_malformed_request_is_invalid_argument() {
        let e = MetaError::InvalidArgument("a key written twice in one transaction".into());
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }
}
