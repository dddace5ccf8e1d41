//! Kafka's consumer protocol: the member metadata ("subscription") and assignment bytes that
//! consumers exchange through a group's JoinGroup and SyncGroup, in Kafka's own layout (a
//! big-endian `i16` version, then the fields of that version). Strata's SDK writes them, the
//! coordinator reads assignments to check offset commits, and Kafka clients would send the
//! same bytes through a wire-protocol listener.
//!
//! The decoders take untrusted bytes: every length is checked against what is left, nothing is
//! reserved from a count before the bytes are there, and fields of versions newer than 3 are
//! ignored (Kafka only ever appends fields).

use std::collections::BTreeMap;

/// Protocol type of Kafka-style consumer groups.
pub const PROTOCOL_TYPE: &str = "consumer";

/// A member's subscription: the topics it wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub user_data: Option<Vec<u8>>,
    /// Partitions the member owned in the previous generation (version ≥ 1).
    pub owned: BTreeMap<String, Vec<i32>>,
    /// Its previous generation, -1 if none (version ≥ 2).
    pub generation: i32,
}

/// A member's share of an assignment: partitions by topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub partitions: BTreeMap<String, Vec<i32>>,
    pub user_data: Option<Vec<u8>>,
}

/// Why bytes are not a valid subscription or assignment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed consumer protocol {what}: {reason}")]
pub struct DecodeError {
    pub what: &'static str,
    pub reason: String,
}

const SUBSCRIPTION_VERSION: i16 = 2;
const ASSIGNMENT_VERSION: i16 = 0;

impl Subscription {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_i16(&mut out, SUBSCRIPTION_VERSION);
        put_i32(&mut out, self.topics.len() as i32);
        for topic in &self.topics {
            put_str(&mut out, topic);
        }
        put_bytes(&mut out, self.user_data.as_deref());
        put_partitions(&mut out, &self.owned);
        put_i32(&mut out, self.generation);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "subscription");
        let version = r.i16()?;
        if version < 0 {
            return Err(r.fail(format!("negative version {version}")));
        }
        let count = r.count()?;
        let mut topics = Vec::new();
        for _ in 0..count {
            topics.push(r.string()?);
        }
        let user_data = r.bytes()?;
        let owned = if version >= 1 {
            r.partitions()?
        } else {
            BTreeMap::new()
        };
        let generation = if version >= 2 { r.i32()? } else { -1 };
        Ok(Self {
            topics,
            user_data,
            owned,
            generation,
        })
    }
}

impl Assignment {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_i16(&mut out, ASSIGNMENT_VERSION);
        put_partitions(&mut out, &self.partitions);
        put_bytes(&mut out, self.user_data.as_deref());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "assignment");
        let version = r.i16()?;
        if version < 0 {
            return Err(r.fail(format!("negative version {version}")));
        }
        let partitions = r.partitions()?;
        let user_data = r.bytes()?;
        Ok(Self {
            partitions,
            user_data,
        })
    }

    /// Whether `topic`/`partition` is part of this assignment.
    pub fn contains(&self, topic: &str, partition: u32) -> bool {
        self.partitions
            .get(topic)
            .is_some_and(|ps| ps.iter().any(|p| i64::from(*p) == i64::from(partition)))
    }
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_str(out: &mut Vec<u8>, s: &str) {
    put_i16(out, s.len() as i16);
    out.extend_from_slice(s.as_bytes());
}
fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_i32(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => put_i32(out, -1),
    }
}
fn put_partitions(out: &mut Vec<u8>, partitions: &BTreeMap<String, Vec<i32>>) {
    put_i32(out, partitions.len() as i32);
    for (topic, ps) in partitions {
        put_str(out, topic);
        put_i32(out, ps.len() as i32);
        for p in ps {
            put_i32(out, *p);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn fail(&self, reason: String) -> DecodeError {
        DecodeError {
            what: self.what,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(self.fail(format!(
                "needs {n} more bytes but only {} are left",
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An array length: never negative here, and never more items than bytes left (every
    /// item takes at least one byte... or four for partitions), so a lying count fails fast.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.i32()?;
        if n < 0 || n as usize > self.buf.len() {
            return Err(self.fail(format!("array length {n} does not fit the bytes left")));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.i16()?;
        if len < 0 {
            return Err(self.fail("null string where a name is required".into()));
        }
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.fail("a name is not UTF-8".into()))
    }

    fn bytes(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(len as usize)?.to_vec()))
    }

    fn partitions(&mut self) -> Result<BTreeMap<String, Vec<i32>>, DecodeError> {
        let topics = self.count()?;
        let mut all = BTreeMap::new();
        for _ in 0..topics {
            let topic = self.string()?;
            let n = self.count()?;
            let mut ps = Vec::new();
            for _ in 0..n {
                ps.push(self.i32()?);
            }
            all.entry(topic).or_insert_with(Vec::new).extend(ps);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_kafkas_version_0_subscription() {
        // Java's ConsumerProtocol v0 for topics ["a", "bc"], no user data.
        let bytes = [
            0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0xff, 0xff, 0xff, 0xff,
        ];
        let s = Subscription::decode(&bytes).unwrap();
        assert_eq!(s.topics, vec!["a", "bc"]);
        assert_eq!(s.user_data, None);
        assert_eq!(s.generation, -1);
    }

    #[test]
    fn lying_lengths_fail_without_allocating() {
        let bytes = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        let err = Assignment::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        assert!(Subscription::decode(&[0]).is_err());
        assert!(Assignment::decode(&[]).is_err());
    }

    proptest! {
        #[test]
        fn assignments_round_trip(
            parts in proptest::collection::btree_map("[a-z]{1,8}", proptest::collection::vec(0i32..1000, 0..20), 0..6),
            user in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        ) {
            let a = Assignment { partitions: parts, user_data: user };
            prop_assert_eq!(Assignment::decode(&a.encode()).unwrap(), a);
        }

        #[test]
        fn subscriptions_round_trip(
            topics in proptest::collection::vec("[a-z.]{1,12}", 0..6),
            generation in -1i32..100,
        ) {
            let s = Subscription { topics, generation, ..Subscription::default() };
            prop_assert_eq!(Subscription::decode(&s.encode()).unwrap(), s);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Subscription::decode(&bytes);
            let _ = Assignment::decode(&bytes);
        }
    }
}
