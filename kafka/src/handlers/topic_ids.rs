//! Kafka's 128-bit topic ids. A topic's incarnation id (random, 64 bits, new each time the topic
//! is created) fills the high half; a hash of the name fills the low half, so two topics can
//! only share an id if their incarnation ids collide and their name hashes do too.

use uuid::Uuid;

pub(crate) fn topic_uuid(name: &str, incarnation: u64) -> Uuid {
    if incarnation == 0 {
        return Uuid::nil(); // unknown topic: Kafka's "no id"
    }
    let low = u64::from(crc32c::crc32c(name.as_bytes())) << 32
        | u64::from(crc32c::crc32c_append(0x5354_5241, name.as_bytes()));
    Uuid::from_u64_pair(incarnation, low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_depends_on_both_the_name_and_the_incarnation() {
        let a = topic_uuid("orders", 7);
        assert_eq!(a, topic_uuid("orders", 7));
        assert_ne!(a, topic_uuid("orders", 8));
        assert_ne!(a, topic_uuid("payments", 7));
        assert!(topic_uuid("orders", 0).is_nil());
    }
}
