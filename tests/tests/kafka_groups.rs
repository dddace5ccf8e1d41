//! Consumer groups over the Kafka wire protocol, byte level: requests are framed and decoded
//! here, as a Kafka client would, against a whole Strata in-process. Two members share a group
//! with an assignment the test makes as leader; offsets, DescribeGroups, ListGroups, leaving and
//! DeleteGroups are checked for what they answer, at several protocol versions.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use strata_client::Admin;
use strata_integration_tests::InProcess;
use strata_integration_tests::kafka_wire::{CLIENT_ID, KafkaWire};
use strata_proto::consumer_protocol::{Assignment, Subscription};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;

const NONE: i16 = 0;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// One Kafka connection: the shared byte-level client, failing the test on any error.
struct Kafka(KafkaWire);

impl Kafka {
    async fn connect(addr: &str) -> Self {
        Self(KafkaWire::connect(addr.parse().unwrap()).await.unwrap())
    }

    async fn call<R: Request>(&mut self, version: i16, body: R) -> R::Response {
        self.0.call(version, &body).await.unwrap()
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn group(name: &str) -> GroupId {
    GroupId(s(name))
}

fn subscription() -> Bytes {
    Subscription {
        topics: vec![TOPIC.into()],
        ..Default::default()
    }
    .encode()
    .into()
}

fn join_request(group_id: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(subscription()),
        ])
}

/// Kafka's range assignment of the topic over `members`, as a leader computes it.
fn range(members: &[String]) -> BTreeMap<String, Vec<i32>> {
    let mut ids = members.to_vec();
    ids.sort();
    let n = ids.len() as i32;
    let mut next = 0;
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            let take = PARTITIONS / n + i32::from((i as i32) < PARTITIONS % n);
            let mine = (next..next + take).collect();
            next += take;
            (id, mine)
        })
        .collect()
}

fn encoded(partitions: &[i32]) -> Bytes {
    Assignment {
        partitions: [(TOPIC.to_string(), partitions.to_vec())].into(),
        user_data: None,
    }
    .encode()
    .into()
}

fn assigned(bytes: &[u8]) -> Vec<i32> {
    Assignment::decode(bytes)
        .unwrap()
        .partitions
        .get(TOPIC)
        .cloned()
        .unwrap_or_default()
}

fn commit_request(
    group_id: &str,
    generation: i32,
    member: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                                .with_committed_metadata(Some(s("m")))
                        })
                        .collect(),
                ),
        ])
}

fn commit_codes(response: &OffsetCommitResponse) -> Vec<(i32, i16)> {
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
        })
        .collect()
}

async fn setup() -> InProcess {
    let server = InProcess::start().await.unwrap();
    let admin = Admin::connect(&server.proxy).await.unwrap();
    admin.create_topic(TOPIC, PARTITIONS as u32).await.unwrap();
    for p in 0..PARTITIONS as u32 {
        server.produce(TOPIC, p, 0..10, None).await.unwrap();
    }
    server
}

/// Joins `a` and `b` into `group_id` together; returns both answers.
async fn join_two(
    a: &mut Kafka,
    b: &mut Kafka,
    group_id: &str,
) -> (JoinGroupResponse, JoinGroupResponse) {
    let (ja, jb) = tokio::join!(
        a.call(5, join_request(group_id, "")),
        b.call(9, join_request(group_id, "")),
    );
    (ja, jb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_share_a_group_commit_describe_leave_and_delete() {
    let server = setup().await;
    tokio::time::timeout(Duration::from_secs(120), scenario(&server))
        .await
        .expect("scenario timed out");
    server.stop().await.unwrap();
}

async fn scenario(server: &InProcess) {
    let mut a = Kafka::connect(&server.kafka).await;
    let mut b = Kafka::connect(&server.kafka).await;

    // The proxy asked is the coordinator of every group.
    let found = a
        .call(3, FindCoordinatorRequest::default().with_key(s("g1")))
        .await;
    assert_eq!(found.error_code, NONE);
    let port: i32 = server.kafka.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(
        (found.host.to_string().as_str(), found.port),
        ("127.0.0.1", port)
    );
    let found = a
        .call(
            4,
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2")]),
        )
        .await;
    assert_eq!(found.coordinators.len(), 2);
    assert!(
        found
            .coordinators
            .iter()
            .all(|c| c.error_code == NONE && c.port == port)
    );
    let transactional = a
        .call(
            3,
            FindCoordinatorRequest::default()
                .with_key(s("tx"))
                .with_key_type(1),
        )
        .await;
    assert_eq!(transactional.error_code, COORDINATOR_NOT_AVAILABLE);
    assert!(
        transactional
            .error_message
            .unwrap()
            .contains("transactions"),
        "the message says why"
    );

    // Both join at once and land in one generation; the leader sees both subscriptions.
    let (ja, jb) = join_two(&mut a, &mut b, "g1").await;
    assert_eq!((ja.error_code, jb.error_code), (NONE, NONE));
    assert_eq!(ja.generation_id, jb.generation_id);
    assert_eq!(ja.leader, jb.leader);
    assert_ne!(ja.member_id, jb.member_id);
    assert_eq!(
        jb.protocol_type
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("consumer")
    );
    assert_eq!(
        jb.protocol_name
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("range")
    );
    let (leader, follower, leader_is_a) = if ja.leader == ja.member_id {
        (&ja, &jb, true)
    } else {
        (&jb, &ja, false)
    };
    assert_eq!(leader.members.len(), 2, "the leader gets every member");
    assert!(follower.members.is_empty());
    for m in &leader.members {
        let sub = Subscription::decode(&m.metadata).unwrap();
        assert_eq!(
            sub.topics,
            vec![TOPIC.to_string()],
            "metadata relayed untouched"
        );
    }
    let ids: Vec<String> = leader
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    let plan = range(&ids);
    let assignments: Vec<SyncGroupRequestAssignment> = plan
        .iter()
        .map(|(id, ps)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(s(id))
                .with_assignment(encoded(ps))
        })
        .collect();
    let generation = ja.generation_id;
    let sync = |member: &JoinGroupResponse, assignments: Vec<SyncGroupRequestAssignment>| {
        SyncGroupRequest::default()
            .with_group_id(group("g1"))
            .with_generation_id(generation)
            .with_member_id(member.member_id.clone())
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(assignments)
    };
    let (sa, sb) = if leader_is_a {
        tokio::join!(
            a.call(3, sync(&ja, assignments)),
            b.call(5, sync(&jb, vec![]))
        )
    } else {
        tokio::join!(
            a.call(3, sync(&ja, vec![])),
            b.call(5, sync(&jb, assignments))
        )
    };
    assert_eq!((sa.error_code, sb.error_code), (NONE, NONE));
    let (a_id, b_id) = (ja.member_id.to_string(), jb.member_id.to_string());
    let (a_parts, b_parts) = (assigned(&sa.assignment), assigned(&sb.assignment));
    assert_eq!(a_parts, plan[&a_id]);
    assert_eq!(b_parts, plan[&b_id]);
    assert_eq!(a_parts.len() + b_parts.len(), PARTITIONS as usize);
    assert_eq!(
        sb.protocol_name
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("range")
    );

    let heartbeat = |member: &str, generation: i32| {
        HeartbeatRequest::default()
            .with_group_id(group("g1"))
            .with_generation_id(generation)
            .with_member_id(s(member))
    };
    assert_eq!(
        a.call(4, heartbeat(&a_id, generation)).await.error_code,
        NONE
    );
    assert_eq!(
        b.call(0, heartbeat(&b_id, generation)).await.error_code,
        NONE
    );

    // Each commits its own partitions; a partition of the other member is refused.
    let a_offsets: Vec<(i32, i64)> = a_parts.iter().map(|p| (*p, i64::from(*p) + 5)).collect();
    let b_offsets: Vec<(i32, i64)> = b_parts.iter().map(|p| (*p, i64::from(*p) + 5)).collect();
    let committed = a
        .call(8, commit_request("g1", generation, &a_id, &a_offsets))
        .await;
    assert!(
        commit_codes(&committed).iter().all(|(_, e)| *e == NONE),
        "{committed:?}"
    );
    let committed = b
        .call(2, commit_request("g1", generation, &b_id, &b_offsets))
        .await;
    assert!(
        commit_codes(&committed).iter().all(|(_, e)| *e == NONE),
        "{committed:?}"
    );
    let foreign = a
        .call(
            8,
            commit_request("g1", generation, &a_id, &[(b_parts[0], 1)]),
        )
        .await;
    assert_eq!(
        commit_codes(&foreign),
        vec![(b_parts[0], REBALANCE_IN_PROGRESS)]
    );
    let stale = a
        .call(
            8,
            commit_request("g1", generation + 7, &a_id, &[(a_parts[0], 1)]),
        )
        .await;
    assert_eq!(
        commit_codes(&stale),
        vec![(a_parts[0], 22)],
        "ILLEGAL_GENERATION"
    );
    let bad_partition = a
        .call(8, commit_request("g1", generation, &a_id, &[(-1, 1)]))
        .await;
    assert_eq!(
        commit_codes(&bad_partition),
        vec![(-1, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    // From outside the group (an assign() consumer, an offset-reset tool) while it has members:
    // refused as Kafka refuses it.
    let outsider = a
        .call(8, commit_request("g1", -1, "", &[(a_parts[0], 1)]))
        .await;
    assert_eq!(
        commit_codes(&outsider),
        vec![(a_parts[0], UNKNOWN_MEMBER_ID)]
    );

    // OffsetFetch: named partitions (v1), every partition (null topics, v5), the groups array
    // (v8) with one group that never committed.
    let every: Vec<i32> = (0..PARTITIONS).collect();
    let fetched = a
        .call(
            1,
            OffsetFetchRequest::default()
                .with_group_id(group("g1"))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s(TOPIC)))
                        .with_partition_indexes(every.clone()),
                ])),
        )
        .await;
    let offsets: Vec<(i32, i64)> = fetched.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(offsets, vec![(0, 5), (1, 6), (2, 7), (3, 8)]);
    let fetched = a
        .call(
            5,
            OffsetFetchRequest::default()
                .with_group_id(group("g1"))
                .with_topics(None),
        )
        .await;
    assert_eq!(fetched.error_code, NONE);
    assert_eq!(fetched.topics.len(), 1);
    assert_eq!(
        fetched.topics[0]
            .partitions
            .iter()
            .map(|p| (
                p.partition_index,
                p.committed_offset,
                p.metadata.as_ref().map(ToString::to_string)
            ))
            .collect::<Vec<_>>(),
        (0..PARTITIONS)
            .map(|p| (p, i64::from(p) + 5, Some("m".to_string())))
            .collect::<Vec<_>>()
    );
    let fetched = a
        .call(
            8,
            OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(group("g1"))
                    .with_topics(None),
                OffsetFetchRequestGroup::default()
                    .with_group_id(group("never-committed"))
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(TopicName(s(TOPIC)))
                            .with_partition_indexes(vec![0, 3]),
                    ])),
            ]),
        )
        .await;
    assert_eq!(fetched.groups.len(), 2);
    assert_eq!(fetched.groups[0].error_code, NONE);
    assert_eq!(
        fetched.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| p.committed_offset)
            .collect::<Vec<_>>(),
        vec![5, 6, 7, 8]
    );
    assert_eq!(
        fetched.groups[1].topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset, p.error_code))
            .collect::<Vec<_>>(),
        vec![(0, -1, NONE), (3, -1, NONE)]
    );

    // DescribeGroups: both members, with what they sent and what they were assigned, in the
    // consumer protocol's format; an unknown group is Dead.
    let described: DescribeGroupsResponse = a
        .call(
            5,
            DescribeGroupsRequest::default().with_groups(vec![group("g1"), group("ghost")]),
        )
        .await;
    let g1 = &described.groups[0];
    assert_eq!(g1.error_code, NONE);
    assert_eq!(g1.group_state.to_string(), "Stable");
    assert_eq!(g1.protocol_type.to_string(), "consumer");
    assert_eq!(g1.protocol_data.to_string(), "range");
    assert_eq!(g1.members.len(), 2);
    for m in &g1.members {
        let id = m.member_id.to_string();
        assert_eq!(assigned(&m.member_assignment), plan[&id], "{id}");
        assert_eq!(
            Subscription::decode(&m.member_metadata).unwrap().topics,
            vec![TOPIC.to_string()]
        );
        assert_eq!(m.client_id.to_string(), CLIENT_ID);
        assert_eq!(m.client_host.to_string(), "127.0.0.1");
    }
    let ghost = &described.groups[1];
    assert_eq!(
        (ghost.error_code, ghost.group_state.to_string().as_str()),
        (NONE, "Dead")
    );
    assert!(ghost.members.is_empty());

    // ListGroups, with and without a state filter.
    let listed = a.call(0, ListGroupsRequest::default()).await;
    assert!(
        listed
            .groups
            .iter()
            .any(|g| g.group_id.0 == *"g1" && g.protocol_type == *"consumer")
    );
    let stable = a
        .call(
            4,
            ListGroupsRequest::default().with_states_filter(vec![s("stable")]),
        )
        .await;
    assert!(
        stable
            .groups
            .iter()
            .any(|g| g.group_id.0 == *"g1" && g.group_state == *"Stable")
    );
    let empty = a
        .call(
            4,
            ListGroupsRequest::default().with_states_filter(vec![s("Empty")]),
        )
        .await;
    assert!(empty.groups.iter().all(|g| g.group_id.0 != *"g1"));

    // A group with live members is not deleted; a group that never existed is not found.
    let deleted = a
        .call(
            2,
            DeleteGroupsRequest::default().with_groups_names(vec![group("g1"), group("nope")]),
        )
        .await;
    assert_eq!(
        deleted
            .results
            .iter()
            .map(|r| (r.group_id.0.to_string(), r.error_code))
            .collect::<Vec<_>>(),
        vec![
            ("g1".into(), NON_EMPTY_GROUP),
            ("nope".into(), GROUP_ID_NOT_FOUND)
        ]
    );

    // B leaves (v3: a list of members): A's next heartbeat tells it to rejoin.
    let left = b
        .call(
            3,
            LeaveGroupRequest::default()
                .with_group_id(group("g1"))
                .with_members(vec![MemberIdentity::default().with_member_id(s(&b_id))]),
        )
        .await;
    assert_eq!(left.error_code, NONE);
    assert_eq!(left.members.len(), 1);
    assert_eq!(left.members[0].error_code, NONE);
    assert_eq!(
        a.call(2, heartbeat(&a_id, generation)).await.error_code,
        REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        b.call(2, heartbeat(&b_id, generation)).await.error_code,
        UNKNOWN_MEMBER_ID
    );

    // A rejoins with its id and is alone; its v7 answer names protocol type and name.
    let alone = a.call(7, join_request("g1", &a_id)).await;
    assert_eq!(alone.error_code, NONE);
    assert_eq!(alone.member_id.to_string(), a_id);
    assert!(alone.generation_id > generation);
    assert_eq!(alone.leader.to_string(), a_id);
    assert_eq!(alone.members.len(), 1);
    let synced = a
        .call(
            1,
            SyncGroupRequest::default()
                .with_group_id(group("g1"))
                .with_generation_id(alone.generation_id)
                .with_member_id(s(&a_id))
                .with_assignments(vec![
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&a_id))
                        .with_assignment(encoded(&every)),
                ]),
        )
        .await;
    assert_eq!(synced.error_code, NONE);
    assert_eq!(assigned(&synced.assignment), every);

    // Once A leaves too (v0) the group is empty and can be deleted, offsets and all.
    let left = a
        .call(
            0,
            LeaveGroupRequest::default()
                .with_group_id(group("g1"))
                .with_member_id(s(&a_id)),
        )
        .await;
    assert_eq!(left.error_code, NONE);
    let empty = a
        .call(
            4,
            ListGroupsRequest::default().with_states_filter(vec![s("Empty")]),
        )
        .await;
    assert!(
        empty.groups.iter().any(|g| g.group_id.0 == *"g1"),
        "{empty:?}"
    );
    let deleted = a
        .call(
            0,
            DeleteGroupsRequest::default().with_groups_names(vec![group("g1")]),
        )
        .await;
    assert_eq!(deleted.results[0].error_code, NONE);
    let fetched = a
        .call(
            5,
            OffsetFetchRequest::default()
                .with_group_id(group("g1"))
                .with_topics(None),
        )
        .await;
    assert!(
        fetched.topics.is_empty(),
        "offsets deleted with the group: {fetched:?}"
    );
    let described = a
        .call(
            0,
            DescribeGroupsRequest::default().with_groups(vec![group("g1")]),
        )
        .await;
    assert_eq!(described.groups[0].group_state.to_string(), "Dead");

    // A consumer that assigns partitions itself commits outside group management.
    let simple = a.call(2, commit_request("g1", -1, "", &[(2, 3)])).await;
    assert_eq!(commit_codes(&simple), vec![(2, NONE)]);
    let fetched = a
        .call(
            3,
            OffsetFetchRequest::default()
                .with_group_id(group("g1"))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s(TOPIC)))
                        .with_partition_indexes(vec![2, 1]),
                ])),
        )
        .await;
    assert_eq!(
        fetched.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect::<Vec<_>>(),
        vec![(2, 3), (1, -1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_requests_get_kafka_errors_and_the_connection_stays() {
    let server = setup().await;
    let mut k = Kafka::connect(&server.kafka).await;
    let bad_name = k.call(5, join_request("bad/name", "")).await;
    assert_eq!(bad_name.error_code, INVALID_GROUP_ID);
    let short_session = k
        .call(5, join_request("g", "").with_session_timeout_ms(10))
        .await;
    assert_eq!(short_session.error_code, INVALID_SESSION_TIMEOUT);
    let unknown = k.call(5, join_request("g", "who")).await;
    assert_eq!(unknown.error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(unknown.member_id.to_string(), "who");
    let heartbeat = k
        .call(
            1,
            HeartbeatRequest::default()
                .with_group_id(group("g"))
                .with_generation_id(1)
                .with_member_id(s("who")),
        )
        .await;
    assert_eq!(heartbeat.error_code, UNKNOWN_MEMBER_ID);
    let synced = k
        .call(
            2,
            SyncGroupRequest::default()
                .with_group_id(group("g"))
                .with_generation_id(1)
                .with_member_id(s("who")),
        )
        .await;
    assert_eq!(synced.error_code, UNKNOWN_MEMBER_ID);
    let committed = k.call(8, commit_request("g", 3, "who", &[(0, 1)])).await;
    assert_eq!(commit_codes(&committed), vec![(0, UNKNOWN_MEMBER_ID)]);
    // Still answering on the same connection.
    let found = k
        .call(0, FindCoordinatorRequest::default().with_key(s("g")))
        .await;
    assert_eq!(found.error_code, NONE);
    server.stop().await.unwrap();
}

/// A gRPC SDK consumer and a Kafka member in one group: they split the partitions, whichever
/// of them leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_consumer_and_a_kafka_member_share_a_group() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use strata_client::{Consumer, TopicPartition};

    let server = setup().await;
    let stop = Arc::new(AtomicBool::new(false));
    let sdk_assignment: Arc<Mutex<Vec<TopicPartition>>> = Arc::default();
    let sdk = {
        let (proxy, stop, seen) = (server.proxy.clone(), stop.clone(), sdk_assignment.clone());
        tokio::spawn(async move {
            let mut consumer = Consumer::builder(&proxy)
                .group("mixed")
                .client_id("sdk")
                .session_timeout(Duration::from_secs(3))
                .heartbeat_interval(Duration::from_millis(300))
                .build()
                .await
                .unwrap();
            consumer.subscribe(&[TOPIC]).await.unwrap();
            while !stop.load(Ordering::SeqCst) {
                let _ = consumer.poll(Duration::from_millis(200)).await;
                *seen.lock().unwrap() = consumer.assignment();
            }
            consumer.close().await.unwrap();
        })
    };
    let sdk_has = |n: usize| sdk_assignment.lock().unwrap().len() == n;
    for _ in 0..100 {
        if sdk_has(PARTITIONS as usize) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sdk_has(PARTITIONS as usize),
        "the SDK consumer alone holds every partition"
    );

    let mut k = Kafka::connect(&server.kafka).await;
    let joined = k.call(6, join_request("mixed", "")).await;
    assert_eq!(joined.error_code, NONE);
    let me = joined.member_id.to_string();
    let assignments = if joined.leader == joined.member_id {
        let ids: Vec<String> = joined
            .members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect();
        assert_eq!(ids.len(), 2);
        range(&ids)
            .iter()
            .map(|(id, ps)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(id))
                    .with_assignment(encoded(ps))
            })
            .collect()
    } else {
        Vec::new()
    };
    let synced = k
        .call(
            4,
            SyncGroupRequest::default()
                .with_group_id(group("mixed"))
                .with_generation_id(joined.generation_id)
                .with_member_id(s(&me))
                .with_assignments(assignments),
        )
        .await;
    assert_eq!(synced.error_code, NONE);
    let mine = assigned(&synced.assignment);
    assert_eq!(mine.len(), 2, "half of the partitions: {mine:?}");

    // Heartbeat as a Kafka client would until the SDK consumer holds the other half.
    for _ in 0..100 {
        let beat = k
            .call(
                3,
                HeartbeatRequest::default()
                    .with_group_id(group("mixed"))
                    .with_generation_id(joined.generation_id)
                    .with_member_id(s(&me)),
            )
            .await;
        assert_eq!(beat.error_code, NONE);
        if sdk_has(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut all: Vec<i32> = sdk_assignment
        .lock()
        .unwrap()
        .iter()
        .map(|tp| tp.partition as i32)
        .chain(mine.iter().copied())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..PARTITIONS).collect::<Vec<_>>(),
        "every partition exactly once"
    );

    let described = k
        .call(
            3,
            DescribeGroupsRequest::default().with_groups(vec![group("mixed")]),
        )
        .await;
    let mut clients: Vec<String> = described.groups[0]
        .members
        .iter()
        .map(|m| m.client_id.to_string())
        .collect();
    clients.sort();
    let mut expected = vec![CLIENT_ID.to_string(), "sdk".to_string()];
    expected.sort();
    assert_eq!(clients, expected);

    stop.store(true, Ordering::SeqCst);
    sdk.await.unwrap();
    server.stop().await.unwrap();
}

/// A member that stops without leaving is gone from DescribeGroups and ListGroups once its
/// session ends, as in Kafka, without anyone else calling on the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_member_leaves_the_views_when_its_session_ends() {
    let server = setup().await;
    let mut k = Kafka::connect(&server.kafka).await;
    let joined = k
        .call(5, join_request("crash", "").with_session_timeout_ms(1_000))
        .await;
    assert_eq!(joined.error_code, NONE);
    let synced = k
        .call(
            3,
            SyncGroupRequest::default()
                .with_group_id(group("crash"))
                .with_generation_id(joined.generation_id)
                .with_member_id(joined.member_id.clone())
                .with_assignments(vec![
                    SyncGroupRequestAssignment::default()
                        .with_member_id(joined.member_id.clone())
                        .with_assignment(encoded(&[0, 1, 2, 3])),
                ]),
        )
        .await;
    assert_eq!(synced.error_code, NONE);
    let described = k
        .call(
            5,
            DescribeGroupsRequest::default().with_groups(vec![group("crash")]),
        )
        .await;
    assert_eq!(described.groups[0].members.len(), 1);

    // No heartbeat from here on.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let listed = k.call(4, ListGroupsRequest::default()).await;
    let state = listed
        .groups
        .iter()
        .find(|g| g.group_id.0 == *"crash")
        .map(|g| g.group_state.to_string());
    assert_eq!(state.as_deref(), Some("Empty"), "{listed:?}");
    let described = k
        .call(
            5,
            DescribeGroupsRequest::default().with_groups(vec![group("crash")]),
        )
        .await;
    assert_eq!(described.groups[0].group_state.to_string(), "Empty");
    assert!(described.groups[0].members.is_empty());
    let deleted = k
        .call(
            1,
            DeleteGroupsRequest::default().with_groups_names(vec![group("crash")]),
        )
        .await;
    assert_eq!(deleted.results[0].error_code, NONE);
    server.stop().await.unwrap();
}
