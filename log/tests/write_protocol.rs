//! The log's write protocol on its own: claims, guarded commits, the resolution of refused
//! commits and guarded maintenance changes, with no broker and no storage (segment records
//! name objects that need not exist). Every scenario runs on the embedded store and on a real
//! etcd.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata_format::SegmentMeta;
use strata_log::write::{self, CommitUnit, Refusal};
use strata_log::{Claim, LogError, ProducerState, SegmentRecord};
use strata_meta::intercept::{Hook, Intercepted};
use strata_meta::schema::{self, Assignment, Checkpoint, Keyspace};
use strata_meta::{
    Compare, CompareOp, EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, MetaError,
    MetaStore, Revision, Txn, TxnOp, TxnResult,
};
use strata_storage::pool::Placement;
use strata_testkit::EtcdServer;

const TOPIC: &str = "t";
const NOW: i64 = 1_700_000_000_000;

struct Env {
    meta: Arc<dyn MetaStore>,
    keys: Keyspace,
    _etcd: Option<EtcdServer>,
    _dir: Option<tempfile::TempDir>,
}

async fn embedded() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("meta"), EmbeddedOptions::default())
        .await
        .unwrap();
    Env {
        meta: Arc::new(store),
        keys: Keyspace::new("test").unwrap(),
        _etcd: None,
        _dir: Some(dir),
    }
}

async fn etcd() -> Env {
    let server = EtcdServer::start().expect("these tests need a real etcd; run scripts/setup.sh");
    let store = EtcdStore::connect(&[server.endpoint()], EtcdOptions::default())
        .await
        .unwrap();
    Env {
        meta: Arc::new(store),
        keys: Keyspace::new("test").unwrap(),
        _etcd: Some(server),
        _dir: None,
    }
}

/// Runs `scenario` on both backends.
async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(embedded().await).await;
    scenario(etcd().await).await;
}

impl Env {
    /// Assigns partition 0 to `broker` at `epoch`, as the controller would; returns the
    /// assignment and its mod revision.
    async fn assign(&self, broker: &str, epoch: u64) -> (Assignment, Revision) {
        let assignment = Assignment {
            broker: broker.into(),
            epoch,
            topic_id: 7,
        };
        let revision = self
            .meta
            .put(
                &self.keys.assignment(TOPIC, 0),
                schema::encode(&assignment),
                None,
            )
            .await
            .unwrap();
        (assignment, revision)
    }

    async fn claim(&self, writer: &str, assigned: &(Assignment, Revision)) -> write::Recovered {
        write::claim(
            self.meta.as_ref(),
            &self.keys,
            writer,
            TOPIC,
            0,
            &assigned.0,
            assigned.1,
            NOW,
        )
        .await
        .unwrap()
    }

    async fn checkpoint(&self) -> Checkpoint {
        let key = self.keys.checkpoint(TOPIC, 0);
        let kv = self.meta.get(&key).await.unwrap().unwrap();
        schema::decode(&key, &kv.value).unwrap()
    }

    async fn segment_keys(&self) -> Vec<String> {
        let (kvs, _) = self
            .meta
            .range(&self.keys.segments(TOPIC, 0))
            .await
            .unwrap();
        kvs.into_iter().map(|kv| kv.key).collect()
    }
}

/// A record of a segment holding `[base, next)`; its object never exists.
fn segment(base: i64, next: i64) -> SegmentRecord {
    SegmentRecord {
        path: format!("objects/{base}-{next}.seg"),
        placement: Placement { nodes: Vec::new() },
        start: 0,
        shared: false,
        object_size: 0,
        meta: SegmentMeta {
            base_offset: base,
            next_offset: next,
            min_timestamp: NOW,
            max_timestamp: NOW,
            size: 100,
            footer_len: 20,
            batch_count: 1,
            record_count: (next - base) as u64,
        },
        epoch: 1,
        created_ms: NOW,
    }
}

async fn commit(
    meta: &dyn MetaStore,
    keys: &Keyspace,
    writer: &str,
    claim: &Claim,
    segment: &SegmentRecord,
) -> Result<Option<Revision>, LogError> {
    let unit = CommitUnit {
        claim,
        segment,
        next_offset: segment.meta.next_offset,
        producers: None,
    };
    write::commit(meta, keys, writer, &[unit], NOW).await
}

#[tokio::test]
async fn a_claim_writes_the_epoch_and_continues_from_the_checkpoint() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let first = env.claim("b1", &assigned).await;
        assert_eq!(first.next_offset, 0);
        assert_eq!(first.producers, ProducerState::default());
        let s = segment(0, 10);
        let revision = commit(env.meta.as_ref(), &env.keys, "b1", &first.claim, &s)
            .await
            .unwrap();
        assert!(revision.is_some());

        let moved = env.assign("b2", 2).await;
        let second = env.claim("b2", &moved).await;
        assert_eq!(second.next_offset, 10, "continues where the log ends");
        let checkpoint = env.checkpoint().await;
        assert_eq!((checkpoint.epoch, checkpoint.broker.as_str()), (2, "b2"));
    })
    .await;
}

#[tokio::test]
async fn a_claim_is_refused_to_a_writer_the_assignment_does_not_name_or_names_late() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let err = write::claim(
            env.meta.as_ref(),
            &env.keys,
            "b2",
            TOPIC,
            0,
            &assigned.0,
            assigned.1,
            NOW,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, LogError::NotAssigned { ref owner, .. } if owner == "b1"),
            "{err}"
        );

        // A checkpoint written at a later epoch fences a claim at an earlier one.
        let later = env.assign("b2", 5).await;
        env.claim("b2", &later).await;
        let stale = env.assign("b1", 3).await;
        let err = write::claim(
            env.meta.as_ref(),
            &env.keys,
            "b1",
            TOPIC,
            0,
            &stale.0,
            stale.1,
            NOW,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, LogError::Fenced { epoch: 3, .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_writer_whose_partition_moved_cannot_commit_and_is_told_it_is_fenced() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let old = env.claim("b1", &assigned).await;
        let moved = env.assign("b2", 2).await;
        let new = env.claim("b2", &moved).await;

        let late = segment(0, 5);
        let refused = commit(env.meta.as_ref(), &env.keys, "b1", &old.claim, &late)
            .await
            .unwrap();
        assert_eq!(refused, None);
        assert_eq!(
            write::resolve_refused(env.meta.as_ref(), &env.keys, &old.claim, &late, false).await,
            Refusal::Fenced
        );
        assert!(
            env.segment_keys().await.is_empty(),
            "nothing of the old writer landed"
        );
        let written = segment(0, 3);
        assert!(
            commit(env.meta.as_ref(), &env.keys, "b2", &new.claim, &written)
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

/// Two incarnations of one broker at one epoch (the broker lost its lease and reopened the
/// partition): the assignment is the same, only the checkpoint tells them apart.
#[tokio::test]
async fn a_newer_incarnation_at_the_same_epoch_fences_the_earlier_one() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let earlier = env.claim("b1", &assigned).await;
        let later = env.claim("b1", &assigned).await;
        let s = segment(0, 4);
        assert_eq!(
            commit(env.meta.as_ref(), &env.keys, "b1", &earlier.claim, &s)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            write::resolve_refused(env.meta.as_ref(), &env.keys, &earlier.claim, &s, false).await,
            Refusal::Fenced
        );
        assert!(
            !earlier
                .claim
                .still_owned(env.meta.as_ref(), &env.keys)
                .await
                .unwrap()
        );
        assert!(
            later
                .claim
                .still_owned(env.meta.as_ref(), &env.keys)
                .await
                .unwrap()
        );
    })
    .await;
}

/// Applies a transaction and then loses its answer, once.
#[derive(Debug, Default)]
struct LosesOneAnswer {
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Hook for LosesOneAnswer {
    async fn txn(&self, inner: &dyn MetaStore, txn: Txn) -> Result<TxnResult, MetaError> {
        let result = inner.txn(txn).await?;
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(MetaError::Unavailable {
                message: "connection reset after the transaction".into(),
            });
        }
        Ok(result)
    }
}

#[tokio::test]
async fn a_commit_whose_answer_was_lost_resolves_as_landed_and_the_claim_goes_on() {
    on_both(|env| async move {
        let lossy = Intercepted {
            inner: env.meta.clone(),
            hook: LosesOneAnswer::default(),
        };
        let assigned = env.assign("b1", 1).await;
        let claimed = env.claim("b1", &assigned).await;
        let s = segment(0, 6);
        lossy.hook.armed.store(true, Ordering::SeqCst);
        let lost = commit(&lossy, &env.keys, "b1", &claimed.claim, &s).await;
        assert!(matches!(lost, Err(LogError::Meta(_))), "{lost:?}");
        // The retry's guard fails against the checkpoint its first attempt wrote.
        assert_eq!(
            commit(&lossy, &env.keys, "b1", &claimed.claim, &s)
                .await
                .unwrap(),
            None
        );
        // Without the hint it is not taken for landed, and not for fenced either.
        assert_eq!(
            write::resolve_refused(&lossy, &env.keys, &claimed.claim, &s, false).await,
            Refusal::Fenced,
            "without the hint the moved checkpoint looks like a newer claim"
        );
        let landed = write::resolve_refused(&lossy, &env.keys, &claimed.claim, &s, true).await;
        assert!(matches!(landed, Refusal::Landed(_)), "{landed:?}");
        assert_eq!(env.checkpoint().await.next_offset, 6);
        let next = segment(6, 8);
        assert!(
            commit(&lossy, &env.keys, "b1", &claimed.claim, &next)
                .await
                .unwrap()
                .is_some(),
            "the claim follows the landed commit"
        );
    })
    .await;
}

#[tokio::test]
async fn a_refused_commit_is_not_fenced_while_the_claim_holds() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let claimed = env.claim("b1", &assigned).await;
        let s = segment(0, 2);
        // Another unit of the same transaction failed; this one's guard holds.
        assert_eq!(
            write::resolve_refused(env.meta.as_ref(), &env.keys, &claimed.claim, &s, true).await,
            Refusal::StillOwned,
            "not landed (the segment key is empty), not fenced"
        );
    })
    .await;
}

/// A compaction's change of the segment list: replace the first record, delete the others,
/// each compared at the revision it was read at.
async fn replace_segments(env: &Env, claim: &Claim) -> Result<bool, LogError> {
    let (kvs, _) = env.meta.range(&env.keys.segments(TOPIC, 0)).await.unwrap();
    let compares: Vec<Compare> = kvs
        .iter()
        .map(|kv| Compare::mod_revision(kv.key.clone(), CompareOp::Equal, kv.mod_revision))
        .collect();
    let mut ops: Vec<TxnOp> = kvs[1..]
        .iter()
        .map(|kv| TxnOp::delete(kv.key.clone()))
        .collect();
    let last = kvs.len() as i64;
    ops.push(TxnOp::put(
        kvs[0].key.clone(),
        schema::encode(&segment(0, last)),
    ));
    write::apply_guarded(env.meta.as_ref(), &env.keys, claim, &compares, &ops).await
}

#[tokio::test]
async fn a_compaction_racing_a_partition_move_cannot_replace_segments_after_the_move() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let old = env.claim("b1", &assigned).await;
        for base in 0..3 {
            let s = segment(base, base + 1);
            commit(env.meta.as_ref(), &env.keys, "b1", &old.claim, &s)
                .await
                .unwrap()
                .unwrap();
        }
        // The compaction has read and merged; before it commits, the partition moves.
        let moved = env.assign("b2", 2).await;
        env.claim("b2", &moved).await;
        assert!(!replace_segments(&env, &old.claim).await.unwrap());
        assert_eq!(
            env.segment_keys().await.len(),
            3,
            "the segment list is untouched"
        );

        // The same change by the new owner goes through.
        let new = env.claim("b2", &moved).await;
        assert!(replace_segments(&env, &new.claim).await.unwrap());
        assert_eq!(env.segment_keys().await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn maintenance_of_an_earlier_incarnation_is_fenced_like_its_commits() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let earlier = env.claim("b1", &assigned).await;
        for base in 0..2 {
            let s = segment(base, base + 1);
            commit(env.meta.as_ref(), &env.keys, "b1", &earlier.claim, &s)
                .await
                .unwrap()
                .unwrap();
        }
        let _later = env.claim("b1", &assigned).await;
        assert!(!replace_segments(&env, &earlier.claim).await.unwrap());
        assert_eq!(env.segment_keys().await.len(), 2);
    })
    .await;
}

/// Lets one commit of the writer's own slip in before the next transaction, as a flush does
/// while a compaction is about to commit.
#[derive(Debug)]
struct CommitsFirst {
    claim: Arc<Claim>,
    keys: Keyspace,
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Hook for CommitsFirst {
    async fn txn(&self, inner: &dyn MetaStore, txn: Txn) -> Result<TxnResult, MetaError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            let flushed = segment(10, 11);
            let landed = commit(inner, &self.keys, "b1", &self.claim, &flushed).await;
            assert!(matches!(landed, Ok(Some(_))), "{landed:?}");
        }
        inner.txn(txn).await
    }
}

#[tokio::test]
async fn maintenance_that_loses_only_to_its_own_writers_commit_is_applied() {
    on_both(|env| async move {
        let assigned = env.assign("b1", 1).await;
        let claim = Arc::new(env.claim("b1", &assigned).await.claim);
        for base in 0..2 {
            let s = segment(base, base + 1);
            commit(env.meta.as_ref(), &env.keys, "b1", &claim, &s)
                .await
                .unwrap()
                .unwrap();
        }
        let racing = Intercepted {
            inner: env.meta.clone(),
            hook: CommitsFirst {
                claim: claim.clone(),
                keys: env.keys.clone(),
                armed: AtomicBool::new(true),
            },
        };
        let key = |base: i64| env.keys.segment(TOPIC, 0, base);
        let (first, second) = (
            env.meta.get(&key(0)).await.unwrap().unwrap(),
            env.meta.get(&key(1)).await.unwrap().unwrap(),
        );
        let compares = [
            Compare::mod_revision(first.key.clone(), CompareOp::Equal, first.mod_revision),
            Compare::mod_revision(second.key.clone(), CompareOp::Equal, second.mod_revision),
        ];
        let ops = [
            TxnOp::delete(second.key.clone()),
            TxnOp::put(first.key.clone(), schema::encode(&segment(0, 2))),
        ];
        assert!(
            write::apply_guarded(&racing, &env.keys, &claim, &compares, &ops)
                .await
                .unwrap(),
            "tried again with the checkpoint its own commit wrote"
        );
        assert_eq!(
            env.segment_keys().await.len(),
            2,
            "merged pair plus the flushed one"
        );
        assert_eq!(env.checkpoint().await.next_offset, 11);
    })
    .await;
}
