//! The group coordinator against both metadata backends (embedded and a real etcd): members
//! share partitions, dead members are evicted, stale members are fenced, offsets persist.

// Tests wait on real time against real servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strata_catalog::Admin;
use strata_catalog::admin::NewTopic;
use strata_log::LogReader;
use strata_meta::schema::Keyspace;
use strata_meta::{EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, MetaStore};
use strata_proto::consumer_protocol::{Assignment, PROTOCOL_TYPE, Subscription};
use strata_proto::{Coded, ErrorCode, v1};
use strata_proxy::groups::DeleteGroupError;
use strata_proxy::{GroupCoordinator, ProxyError, Routes};
use strata_storage::{NodePool, PoolConfig};
use tokio::sync::Mutex;

const TOPIC: &str = "t";
const PARTITIONS: u32 = 12;
const SESSION_MS: u32 = 2_000;

struct Env {
    meta: Arc<dyn MetaStore>,
    coordinator: GroupCoordinator,
    _etcd: Option<strata_testkit::EtcdServer>,
    _dir: tempfile::TempDir,
}

async fn coordinator(meta: Arc<dyn MetaStore>, name: &str) -> GroupCoordinator {
    let keys = Keyspace::new("groups-test").unwrap();
    let routes = Routes::new(meta.clone(), keys.clone());
    routes.reload().await.unwrap();
    let node = format!("m=memory://{name}").parse().unwrap();
    let pool = Arc::new(NodePool::open(&PoolConfig::new(vec![node], 1)).unwrap());
    let reader = LogReader::new(meta.clone(), keys.clone(), pool);
    GroupCoordinator::new(meta, keys, routes, reader)
}

async fn setup(
    meta: Arc<dyn MetaStore>,
    etcd: Option<strata_testkit::EtcdServer>,
    dir: tempfile::TempDir,
) -> Env {
    let admin = Admin::new(meta.clone(), Keyspace::new("groups-test").unwrap());
    admin
        .create_topic(NewTopic {
            name: TOPIC.into(),
            partitions: i64::from(PARTITIONS),
            ..NewTopic::default()
        })
        .await
        .unwrap();
    let name = format!("groups-{:x}", rand_suffix());
    let coordinator = coordinator(meta.clone(), &name).await;
    Env {
        meta,
        coordinator,
        _etcd: etcd,
        _dir: dir,
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn embedded() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(
        EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
            .await
            .unwrap(),
    );
    setup(meta, None, dir).await
}

async fn etcd() -> Env {
    let server = strata_testkit::EtcdServer::start().expect("real etcd must start");
    let meta: Arc<dyn MetaStore> = Arc::new(
        EtcdStore::connect(&[server.endpoint()], EtcdOptions::default())
            .await
            .unwrap(),
    );
    setup(meta, Some(server), tempfile::tempdir().unwrap()).await
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod embedded_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let env = super::embedded().await;
                tokio::time::timeout(std::time::Duration::from_secs(90), super::$scenario(&env)).await.expect("scenario timed out");
            })*
        }
        mod etcd_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let env = super::etcd().await;
                tokio::time::timeout(std::time::Duration::from_secs(90), super::$scenario(&env)).await.expect("scenario timed out");
            })*
        }
    };
}

on_both_backends!(
    members_share_partitions_and_a_dead_member_is_evicted,
    commits_are_fenced_by_membership_generation_and_assignment,
    offsets_survive_a_new_coordinator_and_show_lag,
    leaving_rebalances_at_once,
    bad_requests_get_typed_errors,
    deleting_refuses_live_members_and_removes_everything_else,
    simple_commits_wait_for_the_members_sessions_to_end,
);

/// A group member driven step by step, as the SDK's consumer drives it.
#[derive(Debug, Default, Clone)]
struct Member {
    id: String,
    generation: i32,
    partitions: Vec<u32>,
}

fn subscription() -> Vec<v1::GroupProtocol> {
    let metadata = Subscription {
        topics: vec![TOPIC.into()],
        ..Default::default()
    }
    .encode();
    vec![v1::GroupProtocol {
        name: "range".into(),
        metadata: metadata.into(),
    }]
}

/// Kafka's range assignment of the one topic over the members the leader was given.
fn range(members: &[v1::JoinGroupMember]) -> Vec<v1::MemberAssignment> {
    let mut ids: Vec<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    ids.sort_unstable();
    let n = ids.len() as u32;
    let mut next = 0;
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let take = PARTITIONS / n + u32::from((i as u32) < PARTITIONS % n);
            let mine: Vec<i32> = (next..next + take).map(|p| p as i32).collect();
            next += take;
            let a = Assignment {
                partitions: [(TOPIC.to_string(), mine)].into(),
                user_data: None,
            };
            v1::MemberAssignment {
                member_id: (*id).to_owned(),
                assignment: a.encode().into(),
            }
        })
        .collect()
}

fn code(e: &ProxyError) -> ErrorCode {
    e.code()
}

async fn join_and_sync(
    c: &GroupCoordinator,
    group: &str,
    m: &mut Member,
) -> Result<(), ProxyError> {
    let joined = c
        .join(
            &v1::JoinGroupRequest {
                group: group.into(),
                member_id: m.id.clone(),
                client_id: "test".into(),
                session_timeout_ms: SESSION_MS,
                rebalance_timeout_ms: 4_000,
                protocol_type: PROTOCOL_TYPE.into(),
                protocols: subscription(),
                ..Default::default()
            },
            "127.0.0.1",
        )
        .await;
    let joined = match joined {
        Ok(j) => j,
        Err(e) => {
            if code(&e) == ErrorCode::UnknownMember {
                m.id.clear();
            }
            return Err(e);
        }
    };
    m.id = joined.member_id.clone();
    m.generation = joined.generation;
    let assignments = if joined.leader == m.id {
        range(&joined.members)
    } else {
        Vec::new()
    };
    let synced = c
        .sync(&v1::SyncGroupRequest {
            group: group.into(),
            generation: m.generation,
            member_id: m.id.clone(),
            assignments,
        })
        .await?;
    let a = Assignment::decode(&synced.assignment).unwrap_or_default();
    m.partitions = a
        .partitions
        .get(TOPIC)
        .map(|ps| ps.iter().map(|p| *p as u32).collect())
        .unwrap_or_default();
    Ok(())
}

async fn heartbeat(c: &GroupCoordinator, group: &str, m: &Member) -> Result<(), ProxyError> {
    c.heartbeat(&v1::HeartbeatRequest {
        group: group.into(),
        generation: m.generation,
        member_id: m.id.clone(),
    })
    .await
}

/// Runs a member like a consumer's poll loop until `stop`: (re)join when told to, else
/// heartbeat every 300 ms. Its latest view is kept in `view`.
async fn run_member(
    c: GroupCoordinator,
    group: String,
    view: Arc<Mutex<Member>>,
    stop: Arc<AtomicBool>,
) {
    let mut m = Member {
        generation: -1,
        ..Default::default()
    };
    let mut needs_join = true;
    while !stop.load(Ordering::SeqCst) {
        if needs_join {
            needs_join = join_and_sync(&c, &group, &mut m).await.is_err();
            *view.lock().await = m.clone();
            continue;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        needs_join = heartbeat(&c, &group, &m).await.is_err();
    }
}

/// Waits until the group is stable with exactly `views` as members, all at one generation,
/// and returns their views.
async fn settled(
    env: &Env,
    group: &str,
    views: &[Arc<Mutex<Member>>],
    limit: Duration,
) -> Vec<Member> {
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for v in views {
            seen.push(v.lock().await.clone());
        }
        let described = env.coordinator.describe(group).await;
        if let Ok(d) = described
            && d.state == "Stable"
            && d.members.len() == views.len()
            && seen
                .iter()
                .all(|m| m.generation == d.generation && !m.id.is_empty())
        {
            return seen;
        }
        assert!(
            start.elapsed() < limit,
            "group did not settle in {limit:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn_members(
    env: &Env,
    group: &str,
    n: usize,
) -> (Vec<Arc<Mutex<Member>>>, Vec<Arc<AtomicBool>>) {
    let mut views = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..n {
        let view = Arc::new(Mutex::new(Member::default()));
        let stop = Arc::new(AtomicBool::new(false));
        tokio::spawn(run_member(
            env.coordinator.clone(),
            group.into(),
            view.clone(),
            stop.clone(),
        ));
        views.push(view);
        stops.push(stop);
    }
    (views, stops)
}

fn check_split(members: &[Member], each: usize) {
    let mut all: Vec<u32> = members.iter().flat_map(|m| m.partitions.clone()).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..PARTITIONS).collect::<Vec<_>>(),
        "every partition exactly once: {members:?}"
    );
    for m in members {
        assert_eq!(m.partitions.len(), each, "{members:?}");
    }
}

async fn members_share_partitions_and_a_dead_member_is_evicted(env: &Env) {
    let (views, stops) = spawn_members(env, "g1", 3);
    let members = settled(env, "g1", &views, Duration::from_secs(30)).await;
    check_split(&members, 4);
    let generation = members[0].generation;

    // Member 3 stops dead: no heartbeat, no leave. Its session (2 s) ends, the others are
    // told to rejoin and split its partitions.
    stops[2].store(true, Ordering::SeqCst);
    let died = Instant::now();
    let survivors = settled(env, "g1", &views[..2], Duration::from_secs(20)).await;
    let took = died.elapsed();
    check_split(&survivors, 6);
    assert!(survivors[0].generation > generation);
    eprintln!(
        "dead member's partitions reassigned {took:?} after it stopped (session {SESSION_MS} ms)"
    );
    assert!(
        took < Duration::from_millis(u64::from(SESSION_MS)) + Duration::from_secs(5),
        "{took:?}"
    );
    for s in stops {
        s.store(true, Ordering::SeqCst);
    }
}

fn offset(p: u32, offset: i64) -> v1::PartitionOffset {
    v1::PartitionOffset {
        topic: TOPIC.into(),
        partition: p,
        offset,
        metadata: String::new(),
    }
}

fn commit(m: &Member, offsets: Vec<v1::PartitionOffset>) -> v1::OffsetCommitRequest {
    v1::OffsetCommitRequest {
        broadcast_member: String::new(),
        group: "g2".into(),
        generation: m.generation,
        member_id: m.id.clone(),
        offsets,
    }
}

fn partition_codes(results: &[v1::PartitionError]) -> Vec<Option<String>> {
    results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code.clone()))
        .collect()
}

async fn commits_are_fenced_by_membership_generation_and_assignment(env: &Env) {
    let c = &env.coordinator;
    let (views, stops) = spawn_members(env, "g2", 2);
    let members = settled(env, "g2", &views, Duration::from_secs(30)).await;
    check_split(&members, 6);
    let (a, b) = (&members[0], &members[1]);
    let mine = a.partitions[0];
    let theirs = b.partitions[0];

    // Its own partition: committed. Another member's: refused for that partition only.
    let results = c
        .commit(&commit(a, vec![offset(mine, 0), offset(theirs, 0)]))
        .await
        .unwrap();
    assert_eq!(
        partition_codes(&results),
        vec![None, Some("PARTITION_NOT_ASSIGNED".into())]
    );
    // A stale generation, an unknown member: the whole request is refused.
    let stale = Member {
        generation: a.generation - 1,
        ..a.clone()
    };
    let e = c
        .commit(&commit(&stale, vec![offset(mine, 0)]))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::IllegalGeneration, "{e}");
    let ghost = Member {
        id: "ghost-1".into(),
        ..a.clone()
    };
    let e = c
        .commit(&commit(&ghost, vec![offset(mine, 0)]))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::UnknownMember, "{e}");
    // A consumer outside the group cannot commit while the group has members.
    let outsider = Member {
        id: String::new(),
        generation: -1,
        partitions: vec![],
    };
    let e = c
        .commit(&commit(&outsider, vec![offset(mine, 0)]))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::IllegalGeneration, "{e}");
    let e = heartbeat(c, "g2", &stale).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::IllegalGeneration, "{e}");
    for s in stops {
        s.store(true, Ordering::SeqCst);
    }
}

async fn offsets_survive_a_new_coordinator_and_show_lag(env: &Env) {
    let c = &env.coordinator;
    // Outside group management (generation -1), as a consumer that assigns itself.
    let simple = v1::OffsetCommitRequest {
        broadcast_member: String::new(),
        group: "g3".into(),
        generation: -1,
        member_id: String::new(),
        offsets: vec![offset(3, 0), offset(5, 0)],
    };
    let results = c.commit(&simple).await.unwrap();
    assert_eq!(partition_codes(&results), vec![None, None]);

    // A fresh coordinator (another proxy, or this one after a restart) sees them.
    let other = coordinator(env.meta.clone(), "other-proxy").await;
    let fetched = other
        .fetch_offsets(&v1::OffsetFetchRequest {
            broadcast_member: String::new(),
            group: "g3".into(),
            partitions: vec![
                v1::TopicPartition {
                    topic: TOPIC.into(),
                    partition: 3,
                },
                v1::TopicPartition {
                    topic: TOPIC.into(),
                    partition: 4,
                },
            ],
        })
        .await
        .unwrap();
    assert_eq!(
        fetched.iter().map(|o| o.offset).collect::<Vec<_>>(),
        vec![0, -1]
    );
    let all = other
        .fetch_offsets(&v1::OffsetFetchRequest {
            broadcast_member: String::new(),
            group: "g3".into(),
            partitions: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|o| o.partition).collect::<Vec<_>>(),
        vec![3, 5]
    );
    let d = other.describe("g3").await.unwrap();
    assert_eq!(d.state, "Empty");
    assert_eq!(d.offsets.len(), 2);
    assert!(
        d.offsets
            .iter()
            .all(|o| o.committed == 0 && o.lag == 0 && o.high_watermark == 0)
    );
    let listed = other.list().await.unwrap();
    assert!(
        listed.iter().all(|g| g.group != "g3"),
        "a group that never had members has no state key"
    );
    let e = other.describe("never").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::UnknownGroup, "{e}");
}

async fn leaving_rebalances_at_once(env: &Env) {
    let (views, stops) = spawn_members(env, "g4", 2);
    let members = settled(env, "g4", &views, Duration::from_secs(30)).await;
    // Stop member 2's loop first, then have it leave: the survivor takes everything without
    // waiting for a session timeout.
    stops[1].store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let left = Instant::now();
    env.coordinator
        .leave(&v1::LeaveGroupRequest {
            group: "g4".into(),
            member_id: members[1].id.clone(),
        })
        .await
        .unwrap();
    let alone = settled(env, "g4", &views[..1], Duration::from_secs(10)).await;
    check_split(&alone, 12);
    assert!(
        left.elapsed() < Duration::from_millis(u64::from(SESSION_MS)),
        "{:?}",
        left.elapsed()
    );
    let listed = env.coordinator.list().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|g| g.group == "g4" && g.members == 1 && g.state == "Stable"),
        "{listed:?}"
    );
    stops[0].store(true, Ordering::SeqCst);
}

async fn bad_requests_get_typed_errors(env: &Env) {
    let c = &env.coordinator;
    let join =
        |group: &str, session: u32, protocols: Vec<v1::GroupProtocol>| v1::JoinGroupRequest {
            group: group.into(),
            member_id: String::new(),
            client_id: "test".into(),
            session_timeout_ms: session,
            rebalance_timeout_ms: 0,
            protocol_type: PROTOCOL_TYPE.into(),
            protocols,
            ..Default::default()
        };
    for (request, why) in [
        (join("bad/name", SESSION_MS, subscription()), "group name"),
        (join("g5", 10, subscription()), "session_timeout_ms"),
        (join("g5", SESSION_MS, vec![]), "no protocols"),
    ] {
        let e = c.join(&request, "h").await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::InvalidArgument, "{why}: {e}");
        assert!(
            e.to_string().contains(why.split(' ').next().unwrap()),
            "{why}: {e}"
        );
    }
    let simple = |offsets| v1::OffsetCommitRequest {
        broadcast_member: String::new(),
        group: "g5".into(),
        generation: -1,
        member_id: String::new(),
        offsets,
    };
    let results = c
        .commit(&simple(vec![
            offset(0, -5),
            offset(1, 7),
            offset(PARTITIONS, 0),
            v1::PartitionOffset {
                topic: "nope".into(),
                ..offset(0, 0)
            },
            offset(2, 0),
        ]))
        .await
        .unwrap();
    assert_eq!(
        partition_codes(&results),
        vec![
            Some("INVALID_ARGUMENT".into()),
            Some("OFFSET_OUT_OF_RANGE".into()),
            Some("UNKNOWN_PARTITION".into()),
            Some("UNKNOWN_TOPIC".into()),
            None,
        ]
    );
    let e = c
        .sync(&v1::SyncGroupRequest {
            group: "g5".into(),
            generation: 1,
            member_id: "x".into(),
            assignments: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::UnknownMember, "{e}");
    let e = c
        .leave(&v1::LeaveGroupRequest {
            group: "g5".into(),
            member_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::UnknownMember, "{e}");
}

async fn deleting_refuses_live_members_and_removes_everything_else(env: &Env) {
    let c = &env.coordinator;
    let keys = Keyspace::new("groups-test").unwrap();
    let e = c.delete("g6").await.unwrap_err();
    assert!(matches!(e, DeleteGroupError::NotFound(_)), "{e}");

    // Offsets only (simple commits, no member ever): deleted.
    let simple = v1::OffsetCommitRequest {
        broadcast_member: String::new(),
        group: "g6".into(),
        generation: -1,
        member_id: String::new(),
        offsets: vec![offset(1, 0)],
    };
    c.commit(&simple).await.unwrap();
    c.delete("g6").await.unwrap();
    let (left, _) = env.meta.range(&keys.group("g6")).await.unwrap();
    assert!(left.is_empty(), "{left:?}");

    // A live member: refused, and nothing is removed.
    let (views, stops) = spawn_members(env, "g7", 1);
    let members = settled(env, "g7", &views, Duration::from_secs(30)).await;
    c.commit(&v1::OffsetCommitRequest {
        broadcast_member: String::new(),
        group: "g7".into(),
        generation: members[0].generation,
        member_id: members[0].id.clone(),
        offsets: vec![offset(members[0].partitions[0], 0)],
    })
    .await
    .unwrap();
    let e = c.delete("g7").await.unwrap_err();
    assert!(
        matches!(&e, DeleteGroupError::NotEmpty { members: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("stop its consumers"), "{e}");
    let committed = c
        .fetch_offsets(&v1::OffsetFetchRequest {
            broadcast_member: String::new(),
            group: "g7".into(),
            partitions: vec![],
        })
        .await
        .unwrap();
    assert_eq!(committed.len(), 1, "{committed:?}");

    // The member stops without leaving: once its session has ended it no longer counts, even
    // before any call evicted it, and state, liveness and offsets go together.
    stops[0].store(true, Ordering::SeqCst);
    let stopped = Instant::now();
    loop {
        match c.delete("g7").await {
            Ok(()) => break,
            Err(DeleteGroupError::NotEmpty { .. }) => {
                assert!(
                    stopped.elapsed() < Duration::from_millis(u64::from(SESSION_MS) * 3),
                    "the dead member still counts"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (left, _) = env.meta.range(&keys.group("g7")).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let e = c.describe("g7").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::UnknownGroup, "{e}");
}

async fn simple_commits_wait_for_the_members_sessions_to_end(env: &Env) {
    let c = &env.coordinator;
    let (views, stops) = spawn_members(env, "g8", 1);
    settled(env, "g8", &views, Duration::from_secs(30)).await;
    let simple = v1::OffsetCommitRequest {
        broadcast_member: String::new(),
        group: "g8".into(),
        generation: -1,
        member_id: String::new(),
        offsets: vec![offset(2, 0)],
    };
    // A live member fences commits from outside the group.
    let e = c.commit(&simple).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::IllegalGeneration, "{e}");

    // It stops without leaving; once its session ended, nothing else has to happen to the
    // group for a tool to reset its offsets.
    stops[0].store(true, Ordering::SeqCst);
    let stopped = Instant::now();
    loop {
        match c.commit(&simple).await {
            Ok(results) => {
                assert_eq!(partition_codes(&results), vec![None]);
                break;
            }
            Err(e) => {
                assert_eq!(code(&e), ErrorCode::IllegalGeneration, "{e}");
                assert!(
                    stopped.elapsed() < Duration::from_millis(u64::from(SESSION_MS) * 3),
                    "the dead member still fences simple commits"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let d = c.describe("g8").await.unwrap();
    assert_eq!((d.state.as_str(), d.members.len()), ("Empty", 0));
}
