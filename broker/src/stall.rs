//! How long segment writes have been failing or hanging. A broker that cannot reach storage
//! keeps its lease as long as etcd answers, so its partitions would stay unwritable for the
//! whole outage; past a limit it gives the lease up instead, and its partitions move to
//! brokers that can write (`node.rs`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Since when some unit has been waiting to be written to storage: the start of the oldest
/// write still in flight, or of the oldest failed write whose units no later clean write has
/// taken, whichever is earlier.
///
/// Writes overlap (several flush cycles in flight), so one clean write says nothing about the
/// others: a write that started before storage went away may finish while later ones hang,
/// and each write in flight is counted from its own start.
#[derive(Debug, Default)]
pub(crate) struct StorageStall {
    state: Mutex<StallState>,
}

#[derive(Debug, Default)]
struct StallState {
    /// Start times of the writes in flight (several may share one).
    in_flight: BTreeMap<Instant, usize>,
    /// The start of the oldest failed write not yet followed by a clean one.
    failing_since: Option<Instant>,
}

/// One write in flight; tell the stall how it ended with [`WriteAttempt::finish`]. Dropped
/// unfinished (its cycle was cancelled), it only stops counting.
#[derive(Debug)]
pub(crate) struct WriteAttempt<'a> {
    stall: &'a StorageStall,
    started: Instant,
    done: bool,
}

impl WriteAttempt<'_> {
    /// The write ended: `clean` when every unit of it was written. A clean write ends a
    /// failure only when it started after that failure's write did, since failed units are
    /// taken again by the next write that starts.
    pub(crate) fn finish(mut self, clean: bool) {
        self.done = true;
        let mut state = self.stall.lock();
        state.forget(self.started);
        if clean {
            if state.failing_since.is_some_and(|f| self.started >= f) {
                state.failing_since = None;
            }
        } else {
            let since = state.failing_since.get_or_insert(self.started);
            *since = (*since).min(self.started);
        }
    }
}

impl Drop for WriteAttempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.stall.lock().forget(self.started);
        }
    }
}

impl StallState {
    fn forget(&mut self, started: Instant) {
        if let Some(n) = self.in_flight.get_mut(&started) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(&started);
            }
        }
    }
}

impl StorageStall {
    fn lock(&self) -> std::sync::MutexGuard<'_, StallState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A write of segments starts at `at`.
    pub(crate) fn writing(&self, at: Instant) -> WriteAttempt<'_> {
        *self.lock().in_flight.entry(at).or_default() += 1;
        WriteAttempt {
            stall: self,
            started: at,
            done: false,
        }
    }

    /// Storage took a write again after the broker gave its partitions up: the writes that
    /// were stuck belong to partitions released since, so none of them counts any more.
    pub(crate) fn recovered(&self) {
        *self.lock() = StallState::default();
    }

    /// How long writes have been stuck, if they are.
    pub(crate) fn stalled_for(&self) -> Option<Duration> {
        let state = self.lock();
        let oldest = state.in_flight.keys().next().copied();
        [oldest, state.failing_since]
            .into_iter()
            .flatten()
            .min()
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
        stall.writing(first).finish(false);
        tokio::time::advance(Duration::from_secs(3)).await;
        // A later failing write does not restart the clock.
        stall.writing(Instant::now()).finish(false);
        assert_eq!(stall.stalled_for(), Some(Duration::from_secs(3)));
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            stall.exceeds(Duration::from_secs(5)),
        );
        assert!(waited.await.is_ok());
        assert!(first.elapsed() >= Duration::from_secs(5));
        // A write that started before the failure and finished now says nothing about
        // storage now.
        stall
            .writing(first - Duration::from_millis(100))
            .finish(true);
        assert!(stall.stalled_for().is_some());
        stall.writing(Instant::now()).finish(true);
        assert_eq!(stall.stalled_for(), None);
        let idle = tokio::time::timeout(
            Duration::from_secs(10),
            stall.exceeds(Duration::from_secs(5)),
        );
        assert!(idle.await.is_err(), "no stall must never exceed a limit");
    }

    /// Found by the cut-from-storage scenario once flush cycles overlapped: the first cycle
    /// finished cleanly while the ones started after the cut hung, and the broker kept its
    /// lease for the whole cut.
    #[tokio::test(start_paused = true)]
    async fn a_clean_write_does_not_hide_later_writes_that_hang() {
        let stall = StorageStall::default();
        let before_cut = stall.writing(Instant::now());
        tokio::time::advance(Duration::from_millis(50)).await;
        let hanging = stall.writing(Instant::now());
        tokio::time::advance(Duration::from_millis(50)).await;
        let hanging_too = stall.writing(Instant::now());
        before_cut.finish(true);
        tokio::time::advance(Duration::from_secs(6)).await;
        let stalled = stall.stalled_for().expect("writes in flight are a stall");
        assert!(stalled >= Duration::from_secs(6), "{stalled:?}");
        // The hanging writes time out; the stall still counts from the older one.
        hanging_too.finish(false);
        hanging.finish(false);
        assert_eq!(stall.stalled_for(), Some(Duration::from_millis(6050)));
        // A write cancelled with its cycle stops counting without ending the failure.
        drop(stall.writing(Instant::now()));
        assert_eq!(stall.stalled_for(), Some(Duration::from_millis(6050)));
        stall.recovered();
        assert_eq!(stall.stalled_for(), None);
    }
}
