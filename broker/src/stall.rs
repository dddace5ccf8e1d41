//! How long segment writes have been failing or hanging. A broker that cannot reach storage
//! keeps its lease as long as etcd answers, so its partitions would stay unwritable for the
//! whole outage; past a limit it gives the lease up instead, and its partitions move to
//! brokers that can write (`node.rs`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Since when some unit has been waiting to be written to storage without any flush writing
/// all of its units.
#[derive(Debug, Default)]
pub(crate) struct StorageStall {
    waiting_since: Mutex<Option<Instant>>,
}

impl StorageStall {
    /// A flush starts writing segments at `at`; the stall, if any, began earlier.
    pub(crate) fn writing(&self, at: Instant) {
        self.waiting_since
            .lock()
            .expect("stall mutex poisoned")
            .get_or_insert(at);
    }

    /// A flush that started at `started` wrote every segment it had. It ends the stall only
    /// when it started after the stall began: flushes overlap, and one that started before
    /// storage went away may finish while later ones still hang.
    pub(crate) fn written(&self, started: Instant) {
        let mut since = self.waiting_since.lock().expect("stall mutex poisoned");
        if since.is_some_and(|since| started >= since) {
            *since = None;
        }
    }

    /// How long writes have been stuck, if they are.
    pub(crate) fn stalled_for(&self) -> Option<Duration> {
        self.waiting_since
            .lock()
            .expect("stall mutex poisoned")
            .map(|since| since.elapsed())
    }

    /// Returns once writes have been stuck for `limit`.
    pub(crate) async fn exceeds(&self, limit: Duration) {
        loop {
            let stalled = self.stalled_for().unwrap_or_default();
            if stalled >= limit {
                return;
            }
            tokio::time::sleep((limit - stalled).min(Duration::from_millis(250))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stall_counts_from_the_first_unwritten_flush_until_a_clean_one() {
        let stall = StorageStall::default();
        assert_eq!(stall.stalled_for(), None);
        let first = Instant::now();
        stall.writing(first);
        tokio::time::advance(Duration::from_secs(3)).await;
        stall.writing(Instant::now()); // a later failing flush does not restart the clock
        assert_eq!(stall.stalled_for(), Some(Duration::from_secs(3)));
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            stall.exceeds(Duration::from_secs(5)),
        );
        assert!(waited.await.is_ok());
        assert!(first.elapsed() >= Duration::from_secs(5));
        // A flush that started before the stall and finished now says nothing about storage
        // now (found by the cut-from-storage scenario once flushes overlapped).
        let before = first - Duration::from_millis(100);
        stall.written(before);
        assert!(stall.stalled_for().is_some());
        stall.written(Instant::now());
        assert_eq!(stall.stalled_for(), None);
        let idle = tokio::time::timeout(
            Duration::from_secs(10),
            stall.exceeds(Duration::from_secs(5)),
        );
        assert!(idle.await.is_err(), "no stall must never exceed a limit");
    }
}
