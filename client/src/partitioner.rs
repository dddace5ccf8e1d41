//! Choosing a partition for a record.

/// How the producer picks a partition for a record that names none.
///
/// ```
/// use strata_client::Partitioner;
/// assert_eq!(Partitioner::default(), Partitioner::Default);
/// let builder = strata_client::Producer::builder("127.0.0.1:7070")
///     .partitioner(Partitioner::RoundRobin);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// Kafka's default: records with a key go to `murmur2(key) % partitions`, so they land
    /// where a Kafka client would put them; records without a key stick to one partition
    /// until its batch is sent, then move to the next (few, large batches).
    #[default]
    Default,
    /// Records with a key by murmur2 as in `Default`; records without a key go to the next
    /// partition each, in turn.
    RoundRobin,
}

/// Kafka's partitioner hash (murmur2 with seed `0x9747b28c`), bit for bit.
///
/// ```
/// assert_eq!(strata_client::murmur2(b"foobar"), -790332482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives a key.
///
/// ```
/// let p = strata_client::partition_for_key(b"user-42", 12);
/// assert!(p < 12);
/// ```
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Kafka's own partitioner tests (`Utils.murmur2`).
    #[test]
    fn murmur2_matches_kafka() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
