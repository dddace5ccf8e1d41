//! The embedded store's directory: the lock file, the write-ahead log and the snapshot.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::codec::{self, Record};
use crate::{KeyValue, MetaError, Revision};

pub(crate) const LOCK_FILE: &str = "LOCK";
pub(crate) const WAL_FILE: &str = "wal";
pub(crate) const SNAPSHOT_FILE: &str = "snapshot";
const WAL_TMP: &str = "wal.tmp";
const SNAPSHOT_TMP: &str = "snapshot.tmp";

/// The first bytes of a log file.
pub(crate) const WAL_MAGIC: &[u8; 8] = b"STRWAL\x00\x01";

/// An exclusive `flock` on `LOCK`, held while the store is open. The kernel drops it when the
/// process dies, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, MetaError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| MetaError::io("open lock file", &path, e))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(MetaError::Locked {
                    dir: dir.to_path_buf(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.into()
                    },
                });
            }
            Err(e) => return Err(MetaError::io("lock", &path, e.into())),
        }
        // Only for the error message of whoever comes next; the lock itself is the flock.
        let note = format!("pid {}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all(note.as_bytes()))
            .map_err(|e| MetaError::io("write lock file", &path, e))?;
        Ok(DirLock { _file: file })
    }
}

/// The append-only log of committed records.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
    /// Set after a failed write: what is on disk is no longer known, so no more writes.
    failed: Option<String>,
}

impl Wal {
    /// Opens (or creates) the log and returns its intact records. A torn tail is cut off;
    /// damage anywhere else is [`MetaError::Corrupt`].
    pub fn open(dir: &Path) -> Result<(Wal, Vec<Record>), MetaError> {
        let path = dir.join(WAL_FILE);
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(MetaError::io("read", &path, e)),
        };
        if data.len() < WAL_MAGIC.len() {
            // Missing, or cut short while being created: start a fresh log.
            if !WAL_MAGIC.starts_with(&data) {
                return Err(MetaError::corrupt(
                    &path,
                    "not a Strata metadata log (bad magic)",
                ));
            }
            let file = create_log(dir, &path)?;
            let len = WAL_MAGIC.len() as u64;
            return Ok((
                Wal {
                    dir: dir.into(),
                    path,
                    file,
                    len,
                    failed: None,
                },
                Vec::new(),
            ));
        }
        if &data[..WAL_MAGIC.len()] != WAL_MAGIC {
            return Err(MetaError::corrupt(
                &path,
                "not a Strata metadata log (bad magic)",
            ));
        }
        let body = &data[WAL_MAGIC.len()..];
        let scan = codec::scan_frames(body).map_err(|(offset, detail)| {
            let offset = offset + WAL_MAGIC.len();
            MetaError::corrupt(&path, format!("{detail} at byte {offset}"))
        })?;
        let mut records = Vec::with_capacity(scan.payloads.len());
        for payload in &scan.payloads {
            let record = codec::decode_record(payload)
                .map_err(|detail| MetaError::corrupt(&path, format!("bad record: {detail}")))?;
            records.push(record);
        }
        let len = (WAL_MAGIC.len() + scan.valid_len) as u64;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| MetaError::io("open", &path, e))?;
        if let Some(torn) = scan.torn {
            tracing::warn!(
                file = %path.display(), kept_bytes = len, dropped_bytes = data.len() as u64 - len,
                tail = %torn, "dropping torn tail of the metadata log left by a crash"
            );
            file.set_len(len)
                .and_then(|()| file.sync_all())
                .map_err(|e| MetaError::io("truncate torn tail of", &path, e))?;
        }
        Ok((
            Wal {
                dir: dir.into(),
                path,
                file,
                len,
                failed: None,
            },
            records,
        ))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn check_writable(&self) -> Result<(), MetaError> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(MetaError::Backend(format!(
                "the embedded store stopped accepting writes after a failed write of {} ({why}); \
                 reopen it",
                self.path.display()
            ))),
        }
    }

    /// Marks the log unusable; later writes fail until the store is reopened.
    pub fn fail(&mut self, why: String) {
        tracing::error!(file = %self.path.display(), error = %why, "metadata log write failed");
        self.failed = Some(why);
    }

    /// Appends one record and waits until it is on disk.
    pub fn append(&mut self, record: &Record) -> Result<(), MetaError> {
        self.check_writable()?;
        let frame = codec::encode_frame(&codec::encode_record(record));
        if let Err(e) = self
            .file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
        {
            // Part of the frame may be on disk; a later append after it would turn a torn
            // tail into mid-log corruption, so stop here.
            self.fail(e.to_string());
            return Err(MetaError::io("append to", &self.path, e));
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Replaces the log with an empty one, after a snapshot has made its records redundant.
    /// The new file is complete before it is renamed into place, so a crash leaves either the
    /// old log (whose records the snapshot already covers) or the new one.
    pub fn reset(&mut self) -> Result<(), MetaError> {
        self.check_writable()?;
        let tmp = self.dir.join(WAL_TMP);
        let file = reopen_for_append(&tmp, write_new(&tmp, WAL_MAGIC)?)?;
        // Until the rename the old log is untouched and still the one we append to.
        std::fs::rename(&tmp, &self.path).map_err(|e| MetaError::io("rename", &tmp, e))?;
        self.file = file;
        self.len = WAL_MAGIC.len() as u64;
        // If the rename is not durable, a crash brings back the old log and the records
        // appended to the new one would be lost: refuse further writes instead.
        sync_dir(&self.dir).inspect_err(|e| self.fail(e.to_string()))
    }
}

fn create_log(dir: &Path, path: &Path) -> Result<File, MetaError> {
    let file = write_new(path, WAL_MAGIC)?;
    sync_dir(dir)?;
    reopen_for_append(path, file)
}

fn reopen_for_append(path: &Path, file: File) -> Result<File, MetaError> {
    drop(file);
    OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| MetaError::io("open", path, e))
}

/// Creates `path` holding exactly `contents`, synced.
fn write_new(path: &Path, contents: &[u8]) -> Result<File, MetaError> {
    let mut file = File::create(path).map_err(|e| MetaError::io("create", path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| MetaError::io("write", path, e))?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), MetaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MetaError::io("sync directory", dir, e))
}

/// Leftovers of an interrupted snapshot or log reset; never read.
pub(crate) fn remove_temporaries(dir: &Path) -> Result<(), MetaError> {
    for name in [WAL_TMP, SNAPSHOT_TMP] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(file = %path.display(), "removed leftover temporary file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(MetaError::io("remove", &path, e)),
        }
    }
    Ok(())
}

pub(crate) fn read_snapshot(dir: &Path) -> Result<Option<(Revision, Vec<KeyValue>)>, MetaError> {
    let path = dir.join(SNAPSHOT_FILE);
    let data = match std::fs::read(&path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MetaError::io("read", &path, e)),
    };
    // Snapshots are renamed into place only when complete, so any damage is real corruption.
    codec::decode_snapshot(&data)
        .map(Some)
        .map_err(|detail| MetaError::corrupt(&path, detail))
}

/// Writes a snapshot next to the old one and renames it into place.
pub(crate) fn write_snapshot(dir: &Path, contents: &[u8]) -> Result<(), MetaError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let path = dir.join(SNAPSHOT_FILE);
    write_new(&tmp, contents)?;
    std::fs::rename(&tmp, &path).map_err(|e| MetaError::io("rename", &tmp, e))?;
    sync_dir(dir)
}
