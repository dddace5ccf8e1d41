//! The delayed records of one partition that are not delivered yet, by offset and by due
//! time, with the bodies of as many as a memory budget allows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::gauge::Gauge;

use bytes::Bytes;
use strata_format::Record;

/// What a delivered copy needs of its original.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Body {
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl Body {
    /// Copies the record's bytes: a decoded record's fields share the whole decompressed
    /// batch, which a pending body must not keep alive.
    pub(crate) fn of(record: &Record) -> Self {
        let own = |b: &Option<Bytes>| b.as_deref().map(Bytes::copy_from_slice);
        Self {
            timestamp: record.timestamp,
            key: own(&record.key),
            value: own(&record.value),
            headers: record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), own(v)))
                .collect(),
        }
    }

    /// Bytes it holds, and about what its copy takes in a batch.
    pub(crate) fn size(&self) -> usize {
        size_of(&self.key, &self.value, &self.headers)
    }

    pub(crate) fn into_record(self, offset: i64) -> Record {
        Record {
            offset,
            timestamp: self.timestamp,
            key: self.key,
            value: self.value,
            headers: self.headers,
        }
    }
}

/// One estimate of a record's bytes for the budget and for batches of copies alike.
fn size_of(
    key: &Option<Bytes>,
    value: &Option<Bytes>,
    headers: &[(String, Option<Bytes>)],
) -> usize {
    let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
    64 + len(key)
        + len(value)
        + headers
            .iter()
            .map(|(k, v)| 16 + k.len() + len(v))
            .sum::<usize>()
}

/// A pending record: 16 bytes beside the maps' own, the body boxed so that records without
/// one cost no more.
#[derive(Debug)]
struct Entry {
    due: i64,
    body: Option<Box<Body>>,
}

/// The bytes of bodies every scheduler of a broker may hold together, and the count of
/// pending records, shown in the broker's metrics.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
    shown: Option<(Gauge, Gauge)>,
}

impl Budget {
    #[cfg(test)]
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            shown: None,
        })
    }

    /// A budget whose bytes and pending records show in `bytes` and `pending`.
    pub(crate) fn shown_in(limit: usize, bytes: Gauge, pending: Gauge) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            shown: Some((bytes, pending)),
        })
    }

    fn add(&self, bytes: isize, records: i64) {
        if bytes >= 0 {
            self.used.fetch_add(bytes.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.used.fetch_sub(bytes.unsigned_abs(), Ordering::Relaxed);
        }
        if let Some((shown_bytes, pending)) = &self.shown {
            shown_bytes.inc_by(bytes as i64);
            pending.inc_by(records);
        }
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn allows(&self, bytes: usize) -> bool {
        self.used() + bytes <= self.limit
    }
}

/// Pending delayed records. Each costs about 100 bytes without its body; bodies are kept
/// while the broker's [`Budget`] allows, those due soonest first, and read again from the log
/// otherwise.
#[derive(Debug)]
pub(crate) struct Pending {
    by_offset: BTreeMap<i64, Entry>,
    /// The records whose body is held, by due time: the latest-due go first when an
    /// earlier-due body needs the room.
    held: BTreeSet<(i64, i64)>,
    /// The records whose body is not held, by due time: the first is how far ahead the held
    /// bodies reach without a gap.
    unheld: BTreeSet<(i64, i64)>,
    body_bytes: usize,
    budget: Arc<Budget>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.budget
            .add(-(self.body_bytes as isize), -(self.by_offset.len() as i64));
    }
}

impl Pending {
    pub(crate) fn new(budget: Arc<Budget>) -> Self {
        Self {
            by_offset: BTreeMap::new(),
            held: BTreeSet::new(),
            unheld: BTreeSet::new(),
            body_bytes: 0,
            budget,
        }
    }

    fn hold(&mut self, bytes: usize) {
        self.body_bytes += bytes;
        self.budget.add(bytes as isize, 0);
    }

    fn release(&mut self, bytes: usize) {
        self.body_bytes -= bytes;
        self.budget.add(-(bytes as isize), 0);
    }

    pub(crate) fn len(&self) -> usize {
        self.by_offset.len()
    }

    /// Adds the original at `offset`, due at `due`; its body only within the budget. A
    /// record seen again (a scan overlapping the commit feed) keeps its first entry.
    pub(crate) fn insert(&mut self, offset: i64, due: i64, record: &Record) {
        if self.by_offset.contains_key(&offset) {
            return;
        }
        self.by_offset.insert(offset, Entry { due, body: None });
        self.unheld.insert((due, offset));
        self.budget.add(0, 1);
        self.load(record, false);
    }

    /// Whether a body of `bytes` due at `due` may be held: within the budget, or by letting
    /// go of this scheduler's bodies due later than it (the budget is the broker's, the
    /// bodies let go only this partition's). Lets none go when they would not make room.
    fn make_room(&mut self, due: i64, bytes: usize) -> bool {
        if self.budget.allows(bytes) {
            return true;
        }
        // Other schedulers change the shared figure meanwhile: never below zero.
        let over = (self.budget.used() + bytes).saturating_sub(self.budget.limit);
        let mut freed = 0;
        for &(latest, offset) in self.held.iter().rev() {
            if freed >= over || latest <= due {
                break;
            }
            freed += self
                .by_offset
                .get(&offset)
                .and_then(|e| e.body.as_ref())
                .map_or(0, |b| b.size());
        }
        if freed < over {
            return false;
        }
        while !self.budget.allows(bytes) {
            let Some(&(latest, offset)) = self.held.last() else {
                return false;
            };
            if latest <= due {
                return false;
            }
            self.take_body(offset);
        }
        true
    }

    /// Takes the body of the pending record at `offset`, for delivery or to make room.
    pub(crate) fn take_body(&mut self, offset: i64) -> Option<Body> {
        let entry = self.by_offset.get_mut(&offset)?;
        let body = *entry.body.take()?;
        self.held.remove(&(entry.due, offset));
        self.unheld.insert((entry.due, offset));
        self.release(body.size());
        Some(body)
    }

    /// Holds `body` for the pending record at `offset`: read again, or put back after a
    /// delivery that did not happen.
    pub(crate) fn restore_body(&mut self, offset: i64, body: Body) {
        if let Some(entry) = self.by_offset.get_mut(&offset)
            && entry.body.is_none()
        {
            let size = body.size();
            entry.body = Some(Box::new(body));
            self.unheld.remove(&(entry.due, offset));
            self.held.insert((entry.due, offset));
            self.hold(size);
        }
    }

    /// Drops the original at `offset` (its copy is committed); its due time if it was pending.
    pub(crate) fn remove(&mut self, offset: i64) -> Option<i64> {
        let entry = self.by_offset.remove(&offset)?;
        if entry.body.is_some() {
            self.held.remove(&(entry.due, offset));
        } else {
            self.unheld.remove(&(entry.due, offset));
        }
        self.budget.add(0, -1);
        self.release(entry.body.as_ref().map_or(0, |b| b.size()));
        Some(entry.due)
    }

    /// The lowest pending offset: every delayed record below it is delivered.
    pub(crate) fn lowest(&self) -> Option<i64> {
        self.by_offset.keys().next().copied()
    }

    /// When the next record is due.
    pub(crate) fn next_due(&self) -> Option<i64> {
        let first = |set: &BTreeSet<(i64, i64)>| set.first().map(|(due, _)| *due);
        match (first(&self.held), first(&self.unheld)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Up to `max` `(due, offset)` pairs due at or before `until`, earliest first.
    pub(crate) fn due_by(&self, until: i64, max: usize) -> Vec<(i64, i64)> {
        let mut due: Vec<(i64, i64)> = [&self.held, &self.unheld]
            .into_iter()
            .flat_map(|set| {
                set.iter()
                    .take_while(|(due, _)| *due <= until)
                    .take(max)
                    .copied()
            })
            .collect();
        due.sort_unstable();
        due.truncate(max);
        due
    }

    /// Up to `max` offsets of records due at or before `until` whose body is not held,
    /// earliest due first.
    pub(crate) fn unheld_due_by(&self, until: i64, max: usize) -> Vec<i64> {
        self.unheld
            .iter()
            .take_while(|(due, _)| *due <= until)
            .take(max)
            .map(|(_, offset)| *offset)
            .collect()
    }

    /// When the first record whose body is not held is due: every record due before it has
    /// its body held.
    pub(crate) fn held_until(&self) -> Option<i64> {
        self.unheld.first().map(|(due, _)| *due)
    }

    /// When the pending record at `offset` is due, if its body is not held.
    pub(crate) fn unheld_due(&self, offset: i64) -> Option<i64> {
        self.by_offset
            .get(&offset)
            .filter(|e| e.body.is_none())
            .map(|e| e.due)
    }

    /// Whether reading bodies could hold more of them: the budget has room for a share of
    /// it, or bodies held are due later than one that is not (and would make room for it).
    pub(crate) fn could_hold_more(&self) -> bool {
        let later_held = match (self.held.last(), self.unheld.first()) {
            (Some(held), Some(unheld)) => held.0 > unheld.0,
            _ => false,
        };
        later_held || (self.budget.limit > 0 && self.budget.allows(self.budget.limit / 8))
    }

    /// Whether a record in `offsets` is pending without its body held: a batch with none is
    /// not worth decoding for bodies.
    pub(crate) fn any_unheld_in(&self, offsets: std::ops::Range<i64>) -> bool {
        self.by_offset.range(offsets).any(|(_, e)| e.body.is_none())
    }

    /// Whether the body of the record at `offset` is held.
    pub(crate) fn has_body(&self, offset: i64) -> bool {
        self.by_offset
            .get(&offset)
            .is_some_and(|e| e.body.is_some())
    }

    /// Keeps the body of a pending record (read again, or just taken in): always when
    /// `needed` (it is due or about to be), otherwise within the budget, making room by
    /// letting go of bodies due later.
    pub(crate) fn load(&mut self, record: &Record, needed: bool) {
        let Some(entry) = self.by_offset.get(&record.offset) else {
            return;
        };
        if entry.body.is_some() {
            return;
        }
        let due = entry.due;
        let bytes = size_of(&record.key, &record.value, &record.headers);
        if needed || self.make_room(due, bytes) {
            self.restore_body(record.offset, Body::of(record));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, value: &'static [u8]) -> Record {
        Record {
            offset,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from_static(value)),
            headers: Vec::new(),
        }
    }

    #[test]
    fn due_order_and_the_low_mark() {
        let mut p = Pending::new(Budget::new(1 << 20));
        p.insert(10, 300, &record(10, b"a"));
        p.insert(11, 100, &record(11, b"b"));
        p.insert(12, 200, &record(12, b"c"));
        p.insert(11, 999, &record(11, b"again"));
        assert_eq!(p.len(), 3);
        assert_eq!(p.next_due(), Some(100));
        assert_eq!(p.due_by(200, 10), vec![(100, 11), (200, 12)]);
        assert_eq!(p.lowest(), Some(10));
        assert_eq!(p.remove(10), Some(300));
        assert_eq!(p.remove(10), None);
        assert_eq!(p.lowest(), Some(11));
    }

    #[test]
    fn the_budget_holds_the_bodies_due_soonest() {
        let budget = Budget::new(2 * (64 + 3));
        let mut p = Pending::new(budget.clone());
        p.insert(1, 500, &record(1, b"abc"));
        p.insert(2, 300, &record(2, b"def"));
        p.insert(3, 100, &record(3, b"ghi"));
        assert!(
            !p.has_body(1),
            "the latest-due body made room for an earlier one"
        );
        assert!(p.has_body(2) && p.has_body(3));
        p.insert(4, 900, &record(4, b"jkl"));
        assert!(!p.has_body(4), "due later than every held body: not held");
        p.load(&record(4, b"jkl"), true);
        assert!(p.has_body(4), "needed: held whatever the budget");
        assert!(budget.used() > 2 * (64 + 3));
        p.remove(4);
        assert!(p.take_body(3).is_some());
        p.load(&record(1, b"abc"), false);
        assert!(p.has_body(1), "room again once a body went");
    }

    #[test]
    fn how_far_the_held_bodies_reach() {
        let budget = Budget::new(2 * (64 + 3));
        let mut p = Pending::new(budget.clone());
        p.insert(1, 300, &record(1, b"abc"));
        p.insert(2, 100, &record(2, b"def"));
        p.insert(3, 200, &record(3, b"ghi"));
        p.insert(4, 400, &record(4, b"jkl"));
        assert_eq!(p.held_until(), Some(300), "held: due 100 and 200");
        assert_eq!(p.unheld_due_by(1_000, 10), vec![1, 4]);
        assert_eq!(p.unheld_due_by(300, 10), vec![1]);
        assert_eq!(p.unheld_due(1), Some(300));
        assert_eq!(p.unheld_due(2), None, "held");
        assert!(p.any_unheld_in(1..2) && !p.any_unheld_in(2..4));
        assert!(!p.could_hold_more(), "full, and nothing held is due later");
        assert_eq!(p.due_by(250, 10), vec![(100, 2), (200, 3)]);
        assert_eq!(p.due_by(1_000, 3), vec![(100, 2), (200, 3), (300, 1)]);
        assert_eq!(p.next_due(), Some(100));
        p.remove(2);
        assert!(p.could_hold_more(), "a delivery made room");
        p.load(&record(1, b"abc"), false);
        assert_eq!(p.held_until(), Some(400));
        p.remove(3);
        p.remove(1);
        p.load(&record(4, b"jkl"), false);
        assert_eq!(p.held_until(), None, "every pending body held");
        assert_eq!(p.next_due(), Some(400));
    }

    #[test]
    fn no_body_is_let_go_when_that_would_not_make_room() {
        let budget = Budget::new(2 * (64 + 3));
        let mut p = Pending::new(budget.clone());
        p.insert(1, 500, &record(1, b"abc"));
        p.insert(2, 600, &record(2, b"def"));
        p.insert(3, 100, &record(3, &[7; 200]));
        assert!(!p.has_body(3), "larger than everything held later");
        assert!(p.has_body(1) && p.has_body(2), "nothing let go for nothing");
    }

    #[test]
    fn bodies_beyond_the_budget_are_read_again_when_due() {
        let budget = Budget::new(64 + 3);
        let mut p = Pending::new(budget.clone());
        p.insert(1, 5, &record(1, b"abc"));
        p.insert(2, 6, &record(2, b"def"));
        assert!(p.has_body(1) && !p.has_body(2));
        p.load(&record(2, b"def"), false);
        assert!(!p.has_body(2), "not needed and over budget");
        p.load(&record(2, b"def"), true);
        assert!(p.has_body(2), "due: loaded whatever the budget");
        let body = p.take_body(1).unwrap();
        assert_eq!(body.value.as_deref(), Some(&b"abc"[..]));
        p.restore_body(1, body);
        assert!(p.has_body(1));
        p.remove(1);
        assert!(budget.used() > 0);
        drop(p);
        assert_eq!(
            budget.used(),
            0,
            "a scheduler's bodies go back to the broker's budget"
        );
    }
}
