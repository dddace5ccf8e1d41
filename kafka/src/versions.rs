//! What this listener advertises in ApiVersions: every row is answered by a handler, and
//! nothing else is. `docs/kafka.md` has the same table with the reasons for each bound.

use kafka_protocol::messages::ApiKey;

/// One advertised API: its key, the version range served, and its name for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    pub api: ApiKey,
    pub min: i16,
    pub max: i16,
    pub name: &'static str,
}

macro_rules! supported {
    ($($api:ident $min:literal ..= $max:literal;)+) => {
        /// The advertised APIs, ordered by key.
        pub const SUPPORTED: &[Supported] = &[
            $(Supported { api: ApiKey::$api, min: $min, max: $max, name: stringify!($api) },)+
        ];
    };
}

// Lower bounds are the lowest versions the `kafka-protocol` crate decodes (Kafka 4's floor,
// below which no current client goes). Upper bounds stop before versions whose meaning is not
// built: topic ids in Produce v13 and Fetch v13+, KIP-848 member epochs in OffsetCommit v9 and
// OffsetFetch v9, KIP-890 transactions in InitProducerId v5, fenced brokers in DescribeCluster
// v2 (proxies are never fenced, they leave).
supported! {
    Produce 3..=11;
    Fetch 4..=12;
    ListOffsets 1..=8;
    Metadata 0..=12;
    OffsetCommit 2..=8;
    OffsetFetch 1..=8;
    FindCoordinator 0..=4;
    JoinGroup 0..=9;
    Heartbeat 0..=4;
    LeaveGroup 0..=5;
    SyncGroup 0..=5;
    DescribeGroups 0..=5;
    ListGroups 0..=4;
    SaslHandshake 0..=1;
    ApiVersions 0..=4;
    CreateTopics 2..=7;
    DeleteTopics 1..=6;
    InitProducerId 0..=4;
    OffsetForLeaderEpoch 2..=4;
    DescribeAcls 1..=3;
    CreateAcls 1..=3;
    DeleteAcls 1..=3;
    DescribeConfigs 1..=4;
    AlterConfigs 0..=2;
    SaslAuthenticate 0..=2;
    CreatePartitions 0..=3;
    DeleteGroups 0..=2;
    IncrementalAlterConfigs 0..=1;
    DescribeUserScramCredentials 0..=0;
    AlterUserScramCredentials 0..=0;
    DescribeCluster 0..=1;
}

/// The row of an API key, if it is advertised.
pub fn lookup(api_key: i16) -> Option<&'static Supported> {
    SUPPORTED.iter().find(|s| s.api as i16 == api_key)
}

/// A name for any API key, advertised or not, for logs and metrics.
pub fn name_of(api_key: i16) -> &'static str {
    lookup(api_key).map_or("unsupported", |s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_one_the_codec_decodes() {
        for s in SUPPORTED {
            let valid = s.api.valid_versions();
            assert!(
                valid.min <= s.min && s.max <= valid.max && s.min <= s.max,
                "{} {}..={} outside {valid}",
                s.name,
                s.min,
                s.max
            );
        }
    }

    #[test]
    fn the_table_is_ordered_by_key_without_repeats() {
        let keys: Vec<i16> = SUPPORTED.iter().map(|s| s.api as i16).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(keys, sorted);
    }
}
