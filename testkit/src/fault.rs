//! A fault-injecting, request-counting [`ObjectStore`] wrapper.
//!
//! Tests use it to fail or stall one node of a pool on command and to count requests (for
//! instance, to prove a segment lookup takes at most two GETs, or that moving a partition
//! reads and writes no object at all).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// Switches and counters shared between a test and the stores it wraps.
#[derive(Debug)]
pub struct Faults {
    fail_writes: AtomicBool,
    fail_reads: AtomicBool,
    /// Writes still allowed before writes start failing; negative means no limit.
    writes_before_failure: AtomicI64,
    /// Requests wait this long (milliseconds) before going through, or failing.
    delay_ms: AtomicU64,
    puts: AtomicU64,
    gets: AtomicU64,
    deletes: AtomicU64,
    lists: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            fail_writes: AtomicBool::new(false),
            fail_reads: AtomicBool::new(false),
            writes_before_failure: AtomicI64::new(-1),
            delay_ms: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            lists: AtomicU64::new(0),
        }
    }
}

/// Request counts seen by a [`FaultyStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub puts: u64,
    pub gets: u64,
    pub deletes: u64,
    pub lists: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.puts + self.gets + self.deletes + self.lists
    }
}

impl Faults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// Every write fails (the node is down for writes).
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }
    /// Every read fails.
    pub fn fail_reads(&self, on: bool) {
        self.fail_reads.store(on, Ordering::SeqCst);
    }
    /// Both reads and writes fail: the node is gone.
    pub fn fail_all(&self, on: bool) {
        self.fail_writes(on);
        self.fail_reads(on);
    }
    /// The next `n` writes succeed, every later one fails (a node dying mid-stream).
    pub fn fail_writes_after(&self, n: u64) {
        self.writes_before_failure.store(n as i64, Ordering::SeqCst);
    }
    /// Every request waits `delay` first (a slow or hung node).
    pub fn delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
    /// Clears every fault; counters keep counting.
    pub fn heal(&self) {
        self.fail_all(false);
        self.writes_before_failure.store(-1, Ordering::SeqCst);
        self.delay(Duration::ZERO);
    }
    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            puts: self.puts.load(Ordering::SeqCst),
            gets: self.gets.load(Ordering::SeqCst),
            deletes: self.deletes.load(Ordering::SeqCst),
            lists: self.lists.load(Ordering::SeqCst),
        }
    }

    fn write_fails(&self) -> bool {
        if self.fail_writes.load(Ordering::SeqCst) {
            return true;
        }
        let remaining = self.writes_before_failure.load(Ordering::SeqCst);
        if remaining == 0 {
            return true;
        }
        if remaining > 0 {
            self.writes_before_failure.fetch_sub(1, Ordering::SeqCst);
        }
        false
    }

    async fn pause(&self) {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected {what} failure").into(),
    }
}

/// A store with its node name.
pub type NamedStore = (String, Arc<dyn ObjectStore>);

/// Wraps each store in a [`FaultyStore`] of its own: the switches, and the wrapped stores named
/// `n0`, `n1`, ... as a test's storage nodes.
pub fn faulty_nodes(raw: &[Arc<dyn ObjectStore>]) -> (Vec<Arc<Faults>>, Vec<NamedStore>) {
    raw.iter()
        .enumerate()
        .map(|(i, inner)| {
            let faults = Faults::new();
            let store: Arc<dyn ObjectStore> =
                Arc::new(FaultyStore::new(inner.clone(), faults.clone()));
            (faults, (format!("n{i}"), store))
        })
        .unzip()
}

/// An object store that fails, stalls and counts requests as its [`Faults`] say.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }

    async fn before_write(&self) -> object_store::Result<()> {
        self.faults.puts.fetch_add(1, Ordering::SeqCst);
        self.faults.pause().await;
        if self.faults.write_fails() {
            Err(injected("write"))
        } else {
            Ok(())
        }
    }

    async fn before_read(&self) -> object_store::Result<()> {
        self.faults.gets.fetch_add(1, Ordering::SeqCst);
        self.faults.pause().await;
        if self.faults.fail_reads.load(Ordering::SeqCst) {
            Err(injected("read"))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.before_write().await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.before_write().await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.before_read().await?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let faults = self.faults.clone();
        let counted = locations
            .map(move |location| {
                faults.deletes.fetch_add(1, Ordering::SeqCst);
                if faults.fail_writes.load(Ordering::SeqCst) {
                    Err(injected("delete"))
                } else {
                    location
                }
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.faults.lists.fetch_add(1, Ordering::SeqCst);
        if self.faults.fail_reads.load(Ordering::SeqCst) {
            return futures::stream::once(async { Err(injected("list")) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.before_read().await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.before_write().await?;
        self.inner.copy_opts(from, to, options).await
    }
}
