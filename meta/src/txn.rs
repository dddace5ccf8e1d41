//! Transactions: compares, operations and the checks both backends share.

use std::collections::HashSet;

use bytes::Bytes;

use crate::{KeyValue, LeaseId, MetaError, Revision};

/// The most compares, or operations per branch, one transaction may carry unless the store is
/// told otherwise: etcd's default `--max-txn-ops`. Each store enforces its own limit
/// ([`MetaStore::max_txn_ops`](crate::MetaStore::max_txn_ops)), the embedded one too, so code
/// tested on one backend does not fail on the other.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// The highest limit a store may be configured with. etcd accepts any `--max-txn-ops`, but a
/// transaction this large already takes a noticeable share of a commit's time to apply.
pub const MAX_TXN_OPS_CEILING: usize = 8192;

/// Checks a configured per-transaction limit: at least etcd's default (every caller sizes its
/// transactions for that much), at most [`MAX_TXN_OPS_CEILING`].
pub fn check_max_txn_ops(max_ops: usize) -> Result<usize, MetaError> {
    if (DEFAULT_MAX_TXN_OPS..=MAX_TXN_OPS_CEILING).contains(&max_ops) {
        Ok(max_ops)
    } else {
        Err(MetaError::InvalidArgument(format!(
            "max_txn_ops = {max_ops} is outside {DEFAULT_MAX_TXN_OPS}..={MAX_TXN_OPS_CEILING}; \
             set it to etcd's --max-txn-ops (128 unless etcd was started with another value)"
        )))
    }
}

/// The most key and value bytes one request may carry. etcd refuses requests over
/// `--max-request-bytes` (1.5 MiB by default, counted on the encoded request); this lower
/// limit on the payload leaves room for the encoding and applies to both backends.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// How a [`Compare`] relates the key's current attribute to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `current == target`
    Equal,
    /// `current != target`
    NotEqual,
    /// `current > target` (bytewise for values)
    Greater,
    /// `current < target` (bytewise for values)
    Less,
}

/// Which attribute of the key a [`Compare`] looks at, and the value to compare it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// The value bytes. A missing key fails every value compare, `NotEqual` included, because
    /// etcd cannot tell a missing value from an empty one and so refuses to guess.
    Value(Bytes),
    /// The revision of the last write to the key; 0 when the key is absent.
    ModRevision(Revision),
    /// The revision that created the key; 0 when the key is absent.
    CreateRevision(Revision),
    /// How many times the key was written since it was created; 0 when absent.
    Version(i64),
}

/// One condition of a transaction, on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key.
    pub key: String,
    /// The relation.
    pub op: CompareOp,
    /// The attribute and the value to compare it with.
    pub target: CompareTarget,
}

impl Compare {
    /// Compares the key's value.
    pub fn value(key: impl Into<String>, op: CompareOp, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::Value(value.into()),
        }
    }

    /// True when the key holds exactly `value`.
    pub fn value_eq(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self::value(key, CompareOp::Equal, value)
    }

    /// Compares the revision of the key's last write.
    pub fn mod_revision(key: impl Into<String>, op: CompareOp, revision: Revision) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::ModRevision(revision),
        }
    }

    /// Compares the revision that created the key.
    pub fn create_revision(key: impl Into<String>, op: CompareOp, revision: Revision) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::CreateRevision(revision),
        }
    }

    /// Compares the key's version.
    pub fn version(key: impl Into<String>, op: CompareOp, version: i64) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::Version(version),
        }
    }

    /// True when the key does not exist (its create revision is 0).
    pub fn absent(key: impl Into<String>) -> Self {
        Self::create_revision(key, CompareOp::Equal, 0)
    }

    /// True when the key exists.
    pub fn exists(key: impl Into<String>) -> Self {
        Self::create_revision(key, CompareOp::Greater, 0)
    }

    /// Evaluates the compare against the key's current state, exactly as etcd does.
    pub fn matches(&self, current: Option<&KeyValue>) -> bool {
        use std::cmp::Ordering;
        let ordering = match (&self.target, current) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.as_ref().cmp(v.as_ref()),
            (CompareTarget::ModRevision(r), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(r),
            (CompareTarget::CreateRevision(r), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(r),
            (CompareTarget::Version(v), kv) => kv.map_or(0, |kv| kv.version).cmp(v),
        };
        match self.op {
            CompareOp::Equal => ordering == Ordering::Equal,
            CompareOp::NotEqual => ordering != Ordering::Equal,
            CompareOp::Greater => ordering == Ordering::Greater,
            CompareOp::Less => ordering == Ordering::Less,
        }
    }
}

/// One operation of a transaction branch. Operations run in order; a `Get` sees the writes of
/// earlier operations in the same branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Writes `value` to `key`, attached to `lease` (or detached from any lease when `None`).
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Bytes,
        /// The lease to attach the key to.
        lease: Option<LeaseId>,
    },
    /// Deletes `key` if it exists.
    Delete {
        /// The key.
        key: String,
    },
    /// Deletes every key starting with `prefix` (which must not be empty).
    DeletePrefix {
        /// The prefix.
        prefix: String,
    },
    /// Reads `key`; the result lands in [`TxnResult::gets`].
    Get {
        /// The key.
        key: String,
    },
}

impl TxnOp {
    /// A put without a lease.
    pub fn put(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        TxnOp::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    /// A put attached to `lease`.
    pub fn put_with_lease(key: impl Into<String>, value: impl Into<Bytes>, lease: LeaseId) -> Self {
        TxnOp::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        }
    }

    /// A delete of one key.
    pub fn delete(key: impl Into<String>) -> Self {
        TxnOp::Delete { key: key.into() }
    }

    /// A delete of every key under `prefix`.
    pub fn delete_prefix(prefix: impl Into<String>) -> Self {
        TxnOp::DeletePrefix {
            prefix: prefix.into(),
        }
    }

    /// A read of one key.
    pub fn get(key: impl Into<String>) -> Self {
        TxnOp::Get { key: key.into() }
    }
}

/// An atomic transaction: if every compare holds, run `success`, else run `failure`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub(crate) compares: Vec<Compare>,
    pub(crate) success: Vec<TxnOp>,
    pub(crate) failure: Vec<TxnOp>,
}

impl Txn {
    /// An empty transaction (no compares: the success branch runs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds conditions; all of them must hold for the success branch to run.
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }

    /// Adds operations to the success branch.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Self {
        self.success.extend(ops);
        self
    }

    /// Adds operations to the failure branch.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Self {
        self.failure.extend(ops);
        self
    }

    /// The conditions.
    pub fn compares(&self) -> &[Compare] {
        &self.compares
    }

    /// The success branch.
    pub fn success(&self) -> &[TxnOp] {
        &self.success
    }

    /// The failure branch.
    pub fn failure(&self) -> &[TxnOp] {
        &self.failure
    }

    /// Checks the rules etcd enforces, so both backends refuse the same transactions: at most
    /// `max_ops` compares and operations per branch (the store's
    /// [`max_txn_ops`](crate::MetaStore::max_txn_ops)), no empty keys or delete prefixes, no key
    /// written twice in a branch (two puts, or a put inside a deleted range), and at most
    /// [`MAX_REQUEST_BYTES`] of keys and values.
    pub fn validate(&self, max_ops: usize) -> Result<(), MetaError> {
        if self.compares.len() > max_ops
            || self.success.len() > max_ops
            || self.failure.len() > max_ops
        {
            return Err(MetaError::InvalidArgument(format!(
                "a transaction may have at most {max_ops} compares and operations per branch"
            )));
        }
        let mut bytes = 0usize;
        for compare in &self.compares {
            validate_key(&compare.key)?;
            bytes += compare.key.len();
            if let CompareTarget::Value(v) = &compare.target {
                bytes += v.len();
            }
        }
        for branch in [&self.success, &self.failure] {
            bytes += validate_branch(branch)?;
        }
        check_request_size(bytes)
    }
}

fn validate_branch(ops: &[TxnOp]) -> Result<usize, MetaError> {
    let mut bytes = 0usize;
    let mut puts = HashSet::new();
    let mut deleted_keys = HashSet::new();
    let mut deleted_prefixes = Vec::new();
    for op in ops {
        match op {
            TxnOp::Put { key, value, .. } => {
                validate_key(key)?;
                if !puts.insert(key.as_str()) {
                    return Err(duplicate(key));
                }
                bytes += key.len() + value.len();
            }
            TxnOp::Delete { key } => {
                validate_key(key)?;
                deleted_keys.insert(key.as_str());
                bytes += key.len();
            }
            TxnOp::DeletePrefix { prefix } => {
                validate_delete_prefix(prefix)?;
                deleted_prefixes.push(prefix.as_str());
                bytes += prefix.len();
            }
            TxnOp::Get { key } => {
                validate_key(key)?;
                bytes += key.len();
            }
        }
    }
    for key in puts {
        if deleted_keys.contains(key) || deleted_prefixes.iter().any(|p| key.starts_with(p)) {
            return Err(duplicate(key));
        }
    }
    Ok(bytes)
}

fn duplicate(key: &str) -> MetaError {
    MetaError::InvalidArgument(format!(
        "key {key:?} is written more than once in one branch"
    ))
}

/// Keys must not be empty.
pub(crate) fn validate_key(key: &str) -> Result<(), MetaError> {
    if key.is_empty() {
        return Err(MetaError::InvalidArgument("empty key".into()));
    }
    Ok(())
}

/// An empty delete prefix would wipe the whole store; refuse it.
pub(crate) fn validate_delete_prefix(prefix: &str) -> Result<(), MetaError> {
    if prefix.is_empty() {
        return Err(MetaError::InvalidArgument(
            "empty prefix: deleting every key is not allowed".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_request_size(bytes: usize) -> Result<(), MetaError> {
    if bytes > MAX_REQUEST_BYTES {
        return Err(MetaError::InvalidArgument(format!(
            "request carries {bytes} bytes of keys and values, more than {MAX_REQUEST_BYTES}"
        )));
    }
    Ok(())
}

/// The outcome of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether the compares held (the success branch ran).
    pub succeeded: bool,
    /// The store revision after the transaction; unchanged if it wrote nothing.
    pub revision: Revision,
    /// One entry per `Get` of the branch that ran, in order.
    pub gets: Vec<Option<KeyValue>>,
}
