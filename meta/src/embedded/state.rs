//! The embedded store's in-memory model of etcd's MVCC keyspace: keys, leases and the bounded
//! event history that watches read from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use strata_clock::{RandomSource, ThreadRandom};

use tokio::time::Instant;

use super::codec::{Mutation, Record};
use crate::{KeyValue, LeaseId, MetaError, Revision, Txn, TxnOp, WatchEvent};

/// A live lease. Leases are not persisted: a restart ends them all (see `docs/meta.md`).
#[derive(Debug)]
struct Lease {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<String>,
}

/// The result of evaluating a transaction before it is logged.
#[derive(Debug)]
pub(crate) struct Evaluated {
    pub succeeded: bool,
    pub gets: Vec<Option<KeyValue>>,
    pub deleted: u64,
    pub mutations: Vec<Mutation>,
}

#[derive(Debug)]
pub(crate) struct State {
    kvs: BTreeMap<String, KeyValue>,
    revision: Revision,
    leases: HashMap<LeaseId, Lease>,
    history: VecDeque<WatchEvent>,
    history_limit: usize,
    /// The oldest revision a watch can start from: everything at or after it is in `history`.
    oldest_watchable: Revision,
}

impl State {
    /// An empty store. Like etcd, an empty store is at revision 1 and the first write makes 2.
    pub fn new(history_limit: usize) -> Self {
        Self::from_snapshot(1, Vec::new(), history_limit, 1)
    }

    /// A store loaded from a snapshot: the events before it are gone.
    pub fn from_snapshot(
        revision: Revision,
        kvs: Vec<KeyValue>,
        history_limit: usize,
        oldest_watchable: Revision,
    ) -> Self {
        Self {
            kvs: kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect(),
            revision,
            leases: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            oldest_watchable,
        }
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.kvs.get(key).cloned()
    }

    pub fn range(&self, prefix: &str) -> Vec<KeyValue> {
        self.with_prefix(prefix).cloned().collect()
    }

    pub fn range_from(&self, prefix: &str, from: &str) -> Vec<KeyValue> {
        self.with_prefix_from(prefix, from.max(prefix))
            .cloned()
            .collect()
    }

    fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a KeyValue> + 'a {
        self.with_prefix_from(prefix, prefix)
    }

    /// Keys starting with `prefix`, from `start` (which must not sort before `prefix`) on.
    fn with_prefix_from<'a>(
        &'a self,
        prefix: &'a str,
        start: &'a str,
    ) -> impl Iterator<Item = &'a KeyValue> + 'a {
        self.kvs
            .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, kv)| kv)
    }

    pub fn kvs(&self) -> impl Iterator<Item = &KeyValue> {
        self.kvs.values()
    }

    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    /// Decides what a transaction does without changing anything, so the change can be logged
    /// before it becomes visible.
    pub fn evaluate(&self, txn: &Txn, now: Instant) -> Result<Evaluated, MetaError> {
        let succeeded = txn.compares.iter().all(|c| c.matches(self.kvs.get(&c.key)));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let next = self.revision + 1;
        // Writes of earlier operations, visible to later `Get`s of the same branch as etcd
        // shows them; `None` marks a deleted key.
        let mut overlay: HashMap<&str, Option<KeyValue>> = HashMap::new();
        let view = |overlay: &HashMap<&str, Option<KeyValue>>, key: &str| match overlay.get(key) {
            Some(pending) => pending.clone(),
            None => self.kvs.get(key).cloned(),
        };
        let mut out = Evaluated {
            succeeded,
            gets: Vec::new(),
            deleted: 0,
            mutations: Vec::new(),
        };
        for op in ops {
            match op {
                TxnOp::Put { key, value, lease } => {
                    if let Some(lease) = *lease {
                        self.check_lease(lease, now)?;
                    }
                    let previous = view(&overlay, key);
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: previous.as_ref().map_or(next, |p| p.create_revision),
                        mod_revision: next,
                        version: previous.as_ref().map_or(1, |p| p.version + 1),
                        lease: *lease,
                    };
                    overlay.insert(key, Some(kv));
                    out.mutations.push(Mutation::Put {
                        key: key.clone(),
                        value: value.clone(),
                        lease: *lease,
                    });
                }
                TxnOp::Delete { key } => {
                    if view(&overlay, key).is_some() {
                        overlay.insert(key, None);
                        out.mutations.push(Mutation::Delete { key: key.clone() });
                        out.deleted += 1;
                    }
                }
                TxnOp::DeletePrefix { prefix } => {
                    // Validation keeps puts out of deleted ranges, so only stored keys match.
                    for kv in self.with_prefix(prefix) {
                        if view(&overlay, &kv.key).is_some() {
                            overlay.insert(&kv.key, None);
                            out.mutations.push(Mutation::Delete {
                                key: kv.key.clone(),
                            });
                            out.deleted += 1;
                        }
                    }
                }
                TxnOp::Get { key } => out.gets.push(view(&overlay, key)),
            }
        }
        Ok(out)
    }

    /// Makes a logged record visible. Replay goes through here too, so a restarted store has
    /// the same revisions, versions and (recent) history.
    pub fn apply(&mut self, record: Record) -> Result<(), String> {
        if record.revision != self.revision + 1 {
            return Err(format!(
                "record for revision {} does not follow revision {}",
                record.revision, self.revision
            ));
        }
        let revision = record.revision;
        for mutation in record.mutations {
            let event = match mutation {
                Mutation::Put { key, value, lease } => {
                    let previous = self.kvs.get(&key);
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: previous.map_or(revision, |p| p.create_revision),
                        mod_revision: revision,
                        version: previous.map_or(1, |p| p.version + 1),
                        lease,
                    };
                    if let Some(old) = previous.and_then(|p| p.lease) {
                        self.detach(old, &key);
                    }
                    if let Some(lease) = lease.and_then(|l| self.leases.get_mut(&l)) {
                        lease.keys.insert(key.clone());
                    }
                    self.kvs.insert(key, kv.clone());
                    WatchEvent::Put(kv)
                }
                Mutation::Delete { key } => {
                    let Some(previous) = self.kvs.remove(&key) else {
                        return Err(format!("revision {revision} deletes missing key {key:?}"));
                    };
                    if let Some(old) = previous.lease {
                        self.detach(old, &key);
                    }
                    WatchEvent::Delete {
                        key,
                        mod_revision: revision,
                    }
                }
            };
            self.history.push_back(event);
        }
        self.revision = revision;
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest_watchable = dropped.revision() + 1;
            }
        }
        Ok(())
    }

    fn detach(&mut self, lease: LeaseId, key: &str) {
        if let Some(lease) = self.leases.get_mut(&lease) {
            lease.keys.remove(key);
        }
    }

    /// Events under `prefix` from revision `from` on, plus the current revision.
    pub fn events_since(
        &self,
        prefix: &str,
        from: Revision,
    ) -> Result<(Vec<WatchEvent>, Revision), MetaError> {
        self.check_watchable(from)?;
        let start = self.history.partition_point(|e| e.revision() < from);
        let events = self
            .history
            .range(start..)
            .filter(|e| e.key().starts_with(prefix))
            .cloned()
            .collect();
        Ok((events, self.revision))
    }

    pub fn check_watchable(&self, from: Revision) -> Result<(), MetaError> {
        if from < self.oldest_watchable {
            return Err(MetaError::Compacted {
                requested: from,
                compacted: self.oldest_watchable,
            });
        }
        Ok(())
    }

    fn check_lease(&self, lease: LeaseId, now: Instant) -> Result<(), MetaError> {
        match self.leases.get(&lease) {
            Some(l) if l.deadline > now => Ok(()),
            _ => Err(MetaError::LeaseNotFound { lease }),
        }
    }

    pub fn grant(&mut self, ttl: Duration, now: Instant) -> LeaseId {
        loop {
            // Random ids, as etcd's are, so an id from before a restart never names a new lease.
            let id = (ThreadRandom.next_u64() >> 1) as i64;
            if id != 0 && !self.leases.contains_key(&id) {
                let lease = Lease {
                    ttl,
                    deadline: now + ttl,
                    keys: BTreeSet::new(),
                };
                self.leases.insert(id, lease);
                return id;
            }
        }
    }

    pub fn keep_alive(&mut self, lease: LeaseId, now: Instant) -> Result<(), MetaError> {
        self.check_lease(lease, now)?;
        if let Some(l) = self.leases.get_mut(&lease) {
            l.deadline = now + l.ttl;
        }
        Ok(())
    }

    /// Ends a lease now; returns the deletes of its keys.
    pub fn revoke(&mut self, lease: LeaseId) -> Result<Vec<Mutation>, MetaError> {
        let ended = self
            .leases
            .remove(&lease)
            .ok_or(MetaError::LeaseNotFound { lease })?;
        Ok(ended
            .keys
            .into_iter()
            .map(|key| Mutation::Delete { key })
            .collect())
    }

    /// Ends every lease whose deadline has passed; returns how many and the deletes of their keys.
    pub fn expire(&mut self, now: Instant) -> (Vec<LeaseId>, Vec<Mutation>) {
        let expired: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut deletes = Vec::new();
        for id in &expired {
            if let Ok(mut keys) = self.revoke(*id) {
                deletes.append(&mut keys);
            }
        }
        (expired, deletes)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.leases.values().map(|l| l.deadline).min()
    }

    /// Deletes of every key attached to any lease, live or not: used on open, when leases from
    /// before the restart count as ended.
    pub fn leased_keys(&self) -> Vec<Mutation> {
        self.kvs
            .values()
            .filter(|kv| kv.lease.is_some())
            .map(|kv| Mutation::Delete {
                key: kv.key.clone(),
            })
            .collect()
    }
}
