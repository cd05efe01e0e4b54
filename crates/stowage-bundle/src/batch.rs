//! The background syncs of [`Durability::Batched`](crate::Durability::Batched): a group commit.
//!
//! Writers append journal records without syncing and say so here. One thread per bundle (started with the
//! first such record) syncs the folders holding the renamed files, then the journal, once for every record
//! appended so far, when a bound comes due: half the count bound is waiting, the oldest waiting record is
//! older than the time bound, or somebody asks (a state boundary, the count bound reached, the last handle
//! dropped). Writers wait only in the last two cases, so a segment commit usually costs just its own data
//! sync.
//!
//! Folders are synced before the journal so that, on filesystems that keep the order of syncs, a durable
//! record implies a durable rename. Readers do not rely on it: a record whose file is missing counts as not
//! stored.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ledger::JOURNAL_FILE;
use crate::poison::lock;
use crate::storage::{Storage, StorageFile};

/// After a failed background sync, the next one is tried no sooner than this (unless asked for), so that a
/// disk that keeps failing does not make the thread spin.
const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Longer delays (up to "never", [`Duration::MAX`]) are treated as this one.
const LONGEST_DELAY: Duration = Duration::from_secs(10 * 365 * 86_400);

pub(crate) struct Batch {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    /// Records that may be not yet durable once `finish` returns.
    max_unsynced: u64,
    /// A background sync starts when this many records are waiting.
    start_at: u64,
    max_delay: Duration,
    state: Mutex<BatchState>,
    /// Signalled when records are appended, a sync is asked for, a sync ends, or the bundle closes.
    changed: Condvar,
}

#[derive(Default)]
struct BatchState {
    /// Records appended so far (a sequence number: the n-th record appended is record n).
    appended: u64,
    /// Every record up to this one is durable.
    durable: u64,
    /// When the oldest record not covered by a sync (finished or under way) was appended.
    oldest: Option<Instant>,
    /// Folders with renames not yet synced.
    dirs: Vec<PathBuf>,
    /// Syncs asked for, and how many of those requests a sync has started to serve.
    requests: u64,
    served: u64,
    /// Failed syncs so far, and the last failure while it stands (cleared by a sync that succeeds).
    failures: u64,
    failure: Option<(PathBuf, io::ErrorKind, String)>,
    retry_at: Option<Instant>,
    stop: bool,
    thread: Option<JoinHandle<()>>,
}

impl BatchState {
    fn error(&self) -> Option<Error> {
        self.failure
            .as_ref()
            .map(|(path, kind, message)| Error::from_io(path, io::Error::new(*kind, message.clone())))
    }
}

impl Batch {
    pub(crate) fn new(dir: &Path, storage: Arc<dyn Storage>, max_unsynced: u32, max_delay: Duration) -> Self {
        let max_unsynced = u64::from(max_unsynced);
        Self {
            dir: dir.to_path_buf(),
            storage,
            max_unsynced,
            start_at: (max_unsynced / 2).max(1),
            // Deadlines are computed by adding the delay to an instant: a delay of years (as good as never)
            // is capped so that they stay representable.
            max_delay: max_delay.min(LONGEST_DELAY),
            state: Mutex::new(BatchState::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BatchState> {
        // The state is plain counters; a panic elsewhere cannot leave them inconsistent.
        lock(&self.state)
    }

    /// Starts the background thread unless it runs. Called before a record is appended, so that no record
    /// is ever appended without a thread to sync it.
    pub(crate) fn start(self: &Arc<Self>) -> Result<()> {
        let mut state = self.lock();
        if state.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let batch = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("stowage-bundle-sync".to_owned())
            .spawn(move || batch.run())
            .map_err(|e| Error::from_io(&self.dir, e))?;
        state.thread = Some(thread);
        Ok(())
    }

    /// Notes a record just appended (and the folder of the file it names). Returns its sequence number.
    /// Called with the bundle's state lock held, so that sequence numbers follow the journal's order.
    pub(crate) fn appended(&self, folder: Option<&Path>) -> u64 {
        let mut state = self.lock();
        state.appended += 1;
        if let Some(folder) = folder
            && !state.dirs.iter().any(|d| d == folder)
        {
            state.dirs.push(folder.to_path_buf());
        }
        let first = state.oldest.is_none();
        if first {
            state.oldest = Some(Instant::now());
        }
        // The thread needs waking only to arm its timer or to start a sync; otherwise it sleeps on.
        if first || state.appended - state.durable >= self.start_at {
            self.changed.notify_all();
        }
        state.appended
    }

    /// Returns once record `seq` is within the count bound (waiting for a sync if it is not), or with the
    /// standing failure of the background sync, if any.
    pub(crate) fn within_bound(&self, seq: u64) -> Result<()> {
        self.wait_durable(seq.saturating_sub(self.max_unsynced))?;
        match self.lock().error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Makes every record appended so far durable, and returns once it is (or the sync failed).
    pub(crate) fn flush(&self) -> Result<()> {
        let target = self.lock().appended;
        self.wait_durable(target)
    }

    fn wait_durable(&self, target: u64) -> Result<()> {
        let mut state = self.lock();
        if state.durable >= target {
            return Ok(());
        }
        let failures = state.failures;
        state.requests += 1;
        self.changed.notify_all();
        loop {
            if state.durable >= target {
                return Ok(());
            }
            if state.failures > failures
                && let Some(e) = state.error()
            {
                return Err(e);
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Syncs what is pending one last time and stops the thread. A failure cannot be reported from a drop:
    /// it only means that those segments may be fetched again after a power loss.
    pub(crate) fn close(&self) {
        let thread = {
            let mut state = self.lock();
            state.stop = true;
            state.requests += 1;
            self.changed.notify_all();
            state.thread.take()
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn run(&self) {
        // Writers waiting for this thread must not wait forever if it dies: its end is a failure they see.
        struct Guard<'a>(&'a Batch);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let mut state = self.0.lock();
                    state.failures += 1;
                    let message = "the bundle's sync thread stopped".to_owned();
                    state.failure = Some((self.0.dir.clone(), io::ErrorKind::Other, message));
                    self.0.changed.notify_all();
                }
            }
        }
        let _guard = Guard(self);
        let mut journal: Option<Box<dyn StorageFile>> = None;
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let waiting = state.appended - state.durable;
            let asked = state.requests > state.served;
            let due = waiting >= self.start_at
                || state.oldest.is_some_and(|t| now.saturating_duration_since(t) >= self.max_delay);
            let may_retry = state.retry_at.is_none_or(|t| now >= t);
            if waiting > 0 && (asked || (due && may_retry)) {
                let target = state.appended;
                let dirs = std::mem::take(&mut state.dirs);
                let oldest = state.oldest.take();
                state.served = state.requests;
                drop(state);
                let result = self.sync(&dirs, &mut journal);
                state = self.lock();
                match result {
                    Ok(()) => {
                        state.durable = state.durable.max(target);
                        state.failure = None;
                        state.retry_at = None;
                    }
                    Err((path, e)) => {
                        // Nothing is known durable: the folders and the records wait for the next try.
                        for d in dirs {
                            if !state.dirs.contains(&d) {
                                state.dirs.push(d);
                            }
                        }
                        state.oldest = match (oldest, state.oldest) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                        state.failures += 1;
                        state.failure = Some((path, e.kind(), e.to_string()));
                        state.retry_at = Some(Instant::now() + self.max_delay.max(MIN_RETRY_DELAY));
                        journal = None;
                    }
                }
                self.changed.notify_all();
                continue;
            }
            state.served = state.requests;
            if state.stop {
                return;
            }
            let deadline = if waiting == 0 {
                None
            } else {
                let timer = state.oldest.map(|t| t + self.max_delay);
                match (timer, state.retry_at) {
                    (Some(t), Some(r)) => Some(t.max(r)),
                    (t, r) => t.or(r),
                }
            };
            state = match deadline {
                Some(deadline) => {
                    let timeout = deadline.saturating_duration_since(now).max(Duration::from_millis(1));
                    self.changed.wait_timeout(state, timeout).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    fn sync(
        &self,
        dirs: &[PathBuf],
        journal: &mut Option<Box<dyn StorageFile>>,
    ) -> std::result::Result<(), (PathBuf, io::Error)> {
        for dir in dirs {
            self.storage.sync_dir(dir).map_err(|e| (dir.clone(), e))?;
        }
        let path = self.dir.join(JOURNAL_FILE);
        let handle = match journal {
            Some(handle) => handle,
            None => journal.insert(self.storage.open_append(&path).map_err(|e| (path.clone(), e))?),
        };
        handle.sync().map_err(|e| (path, e))
    }
}
