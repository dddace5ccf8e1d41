//! The embedded store's files: restart, snapshots, torn tails, corruption and the directory
//! lock. Damage is made by editing the real files between opens.

// Test helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use strata_meta::{EmbeddedOptions, EmbeddedStore, MetaError, MetaStore, WatchEvent};
use strata_proto::Coded;
use tokio::time::timeout;

const WAL_HEADER: usize = 8;
const FRAME_HEADER: usize = 12;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn open(dir: &Path) -> Result<EmbeddedStore, MetaError> {
    EmbeddedStore::open(dir, EmbeddedOptions::default()).await
}

async fn dump(store: &EmbeddedStore) -> (Vec<strata_meta::KeyValue>, i64) {
    store.range("").await.unwrap()
}

/// Byte ranges of the frames in the log.
fn frames(wal: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = WAL_HEADER;
    while at + FRAME_HEADER <= wal.len() {
        let len = u32::from_le_bytes(wal[at..at + 4].try_into().unwrap()) as usize;
        out.push(at..at + FRAME_HEADER + len);
        at += FRAME_HEADER + len;
    }
    out
}

async fn write_sample(store: &EmbeddedStore) {
    store.put("/s/a", b("1"), None).await.unwrap();
    store.put("/s/b", b("2"), None).await.unwrap();
    store.put("/s/a", b("3"), None).await.unwrap();
    store.delete("/s/b").await.unwrap();
    store.put("/s/c", b("4"), None).await.unwrap();
}

#[tokio::test]
async fn reopening_keeps_data_revisions_and_recent_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await.unwrap();
    write_sample(&store).await;
    let before = dump(&store).await;
    drop(store);

    let store = open(dir.path()).await.unwrap();
    assert_eq!(dump(&store).await, before);
    let a = store.get("/s/a").await.unwrap().unwrap();
    assert_eq!((a.version, a.mod_revision), (2, 4));
    assert_eq!(store.put("/s/d", b("5"), None).await.unwrap(), before.1 + 1);
    // Events replayed from the log can still be watched after the restart.
    let mut events = store.watch_prefix("/s/", Some(2)).await.unwrap();
    let first = timeout(Duration::from_secs(2), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((first.key(), first.revision()), ("/s/a", 2));
}

#[tokio::test]
async fn snapshots_keep_the_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        snapshot_log_bytes: 4096,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options.clone())
        .await
        .unwrap();
    let value = Bytes::from(vec![7u8; 100]);
    let mut largest = 0;
    for i in 0..400 {
        store
            .put(&format!("/snap/{}", i % 50), value.clone(), None)
            .await
            .unwrap();
        largest = largest.max(std::fs::metadata(dir.path().join("wal")).unwrap().len());
    }
    assert!(largest < 4096 + 512, "the log grew to {largest} bytes");
    assert!(dir.path().join("snapshot").exists());
    let before = dump(&store).await;
    assert_eq!(before.0.len(), 50);
    drop(store);

    let store = EmbeddedStore::open(dir.path(), options).await.unwrap();
    assert_eq!(dump(&store).await, before);
    // History from before the snapshot is gone after a restart, and says so.
    let err = store.watch_prefix("/snap/", Some(2)).await.unwrap_err();
    assert!(
        matches!(err, MetaError::Compacted { requested: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_crash_between_snapshot_and_log_reset_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        snapshot_log_bytes: 2048,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options.clone())
        .await
        .unwrap();
    let wal = dir.path().join("wal");
    let mut old_log = Vec::new();
    for i in 0..200 {
        let current = std::fs::read(&wal).unwrap();
        if current.len() < old_log.len() {
            break; // the log was just reset; `old_log` holds records the snapshot covers
        }
        old_log = current;
        store
            .put(&format!("/crash/{i}"), b("v"), None)
            .await
            .unwrap();
    }
    assert!(old_log.len() > 1024, "the loop ended before a snapshot");
    let before = dump(&store).await;
    drop(store);

    // Put the pre-snapshot log back, as if the reset never reached the disk.
    std::fs::write(&wal, &old_log).unwrap();
    let store = EmbeddedStore::open(dir.path(), options).await.unwrap();
    assert_eq!(dump(&store).await, before);
}

#[tokio::test]
async fn a_torn_last_record_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await.unwrap();
    write_sample(&store).await;
    let before = dump(&store).await;
    store
        .put("/s/torn", b("lost in the crash"), None)
        .await
        .unwrap();
    drop(store);

    // The crash cut the last record short.
    let wal = dir.path().join("wal");
    let data = std::fs::read(&wal).unwrap();
    let last = frames(&data).pop().unwrap();
    std::fs::write(&wal, &data[..last.start + 7]).unwrap();

    let store = open(dir.path()).await.unwrap();
    assert_eq!(dump(&store).await, before);
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len() as usize,
        last.start,
        "tail truncated"
    );
    // Writing goes on from there and survives another restart.
    let r = store.put("/s/after", b("ok"), None).await.unwrap();
    assert_eq!(r, before.1 + 1);
    drop(store);

    // A file system that extended the file without writing the block leaves zeros.
    let mut data = std::fs::read(&wal).unwrap();
    data.extend_from_slice(&[0; 100]);
    std::fs::write(&wal, &data).unwrap();
    let store = open(dir.path()).await.unwrap();
    assert_eq!(
        store.get("/s/after").await.unwrap().unwrap().mod_revision,
        r
    );
}

#[tokio::test]
async fn damage_before_the_last_record_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await.unwrap();
    write_sample(&store).await;
    drop(store);

    let wal = dir.path().join("wal");
    let mut data = std::fs::read(&wal).unwrap();
    let second = frames(&data)[1].clone();
    data[second.start + FRAME_HEADER + 3] ^= 0x40;
    std::fs::write(&wal, &data).unwrap();

    let err = open(dir.path()).await.unwrap_err();
    match &err {
        MetaError::Corrupt { file, detail } => {
            assert_eq!(file, &wal);
            assert!(
                detail.contains(&format!("byte {}", second.start)),
                "{detail}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("wal") && message.contains("backup"),
        "{message}"
    );
    assert!(!err.is_retriable());
    // Nothing was "repaired" behind the operator's back.
    assert_eq!(std::fs::read(&wal).unwrap(), data);

    // A damaged length field is caught too, not mistaken for a torn tail.
    data[second.start + FRAME_HEADER + 3] ^= 0x40;
    data[second.start] ^= 0x01;
    std::fs::write(&wal, &data).unwrap();
    assert!(matches!(
        open(dir.path()).await,
        Err(MetaError::Corrupt { .. })
    ));

    std::fs::write(&wal, b"NOTALOG!").unwrap();
    let err = open(dir.path()).await.unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");
}

#[tokio::test]
async fn a_damaged_snapshot_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        snapshot_log_bytes: 1024,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options.clone())
        .await
        .unwrap();
    for i in 0..100 {
        store
            .put(&format!("/d/{i}"), b("value"), None)
            .await
            .unwrap();
    }
    drop(store);
    let snapshot = dir.path().join("snapshot");
    let mut data = std::fs::read(&snapshot).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    std::fs::write(&snapshot, &data).unwrap();
    match EmbeddedStore::open(dir.path(), options).await {
        Err(MetaError::Corrupt { file, .. }) => assert_eq!(file, snapshot),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await.unwrap();
    let err = open(dir.path()).await.unwrap_err();
    match &err {
        MetaError::Locked {
            dir: locked,
            holder,
        } => {
            assert_eq!(locked, dir.path());
            assert_eq!(holder, &format!("pid {}", std::process::id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(store);
    open(dir.path())
        .await
        .expect("the lock goes with the store");
}

#[tokio::test]
async fn leases_end_with_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await.unwrap();
    let lease = store.grant_lease(Duration::from_secs(60)).await.unwrap();
    store.put("/l/leased", b("1"), Some(lease)).await.unwrap();
    store.put("/l/leased2", b("1"), Some(lease)).await.unwrap();
    let before = store.put("/l/plain", b("2"), None).await.unwrap();
    drop(store);

    let store = open(dir.path()).await.unwrap();
    let (kvs, revision) = dump(&store).await;
    assert_eq!(
        kvs.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        ["/l/plain"]
    );
    assert_eq!(revision, before + 1, "the leased keys go in one revision");
    assert!(matches!(
        store.keep_alive_once(lease).await,
        Err(MetaError::LeaseNotFound { .. })
    ));
    // The deletes are ordinary events a resuming watcher sees.
    let mut events = store.watch_prefix("/l/", Some(before + 1)).await.unwrap();
    let event = timeout(Duration::from_secs(2), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(event, WatchEvent::Delete { mod_revision, .. } if mod_revision == before + 1));
    drop(store);
    // And they were logged: another restart has nothing left to delete.
    let store = open(dir.path()).await.unwrap();
    assert_eq!(dump(&store).await.1, before + 1);
}

#[tokio::test]
async fn open_by_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/meta");
    let store = strata_meta::open(&format!("embedded://{}", path.display()))
        .await
        .unwrap();
    store.put("/u/k", b("v"), None).await.unwrap();
    assert!(path.join("wal").exists());
    for bad in ["s3://bucket/meta", "embedded://", "etcd://no-port"] {
        match strata_meta::open(bad).await {
            Err(e @ MetaError::InvalidUrl { .. }) => {
                assert!(e.to_string().contains("etcd://host:port"), "{e}");
            }
            other => panic!("{bad}: expected InvalidUrl, got {other:?}"),
        }
    }
}
