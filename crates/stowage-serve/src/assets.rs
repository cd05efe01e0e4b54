//! The store as the server sees it: a reader per bundle, kept while its manifest is unchanged, and each
//! bundle's status, kept while its manifest and journal are unchanged. All of it is blocking disk work
//! (through `stowage-bundle`), done on the runtime's blocking threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use stowage_bundle::{BundleReader, BundleStatus, Error as BundleError, StorageManager};

/// How long the status of a bundle whose download is not finished is trusted: a download suspended or
/// resumed changes whether the bundle is in use without changing its files.
const UNFINISHED_STATUS_TTL: Duration = Duration::from_secs(1);

/// A bundle is marked at most this often while it is played: each mark writes a small file.
const MARK_INTERVAL: Duration = Duration::from_secs(30);

/// How long a player holds a bundle after its last request, as far as purge and expiry are concerned.
/// Players fetch segments every few seconds while they play and a playlist at least every target duration
/// while it grows; a pause longer than this lets the bundle go.
pub(crate) const PLAY_LEASE: Duration = Duration::from_secs(120);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below only swaps cached values; a panic in one cannot leave them half-made.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// When a bundle was last marked by this server: as accessed, and as playing.
#[derive(Default)]
struct Marks {
    accessed: Option<Instant>,
    playing: Option<Instant>,
}

/// One bundle's cached reader and status.
#[derive(Default)]
struct Entry {
    reader: Mutex<Option<Arc<BundleReader>>>,
    status: Mutex<Option<CachedStatus>>,
}

struct CachedStatus {
    fingerprint: Option<u64>,
    at: Instant,
    status: Arc<BundleStatus>,
}

/// One bundle of a listing.
pub(crate) struct Listed {
    pub(crate) id: String,
    pub(crate) reader: Arc<BundleReader>,
    pub(crate) status: Arc<BundleStatus>,
}

/// A listing: the bundles read, and the folders that could not be read with why.
pub(crate) type Listing = (Vec<Listed>, Vec<(String, BundleError)>);

/// The store, with what has been read of it.
pub(crate) struct Assets {
    store: StorageManager,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    /// When each bundle was last marked by this server.
    marks: Mutex<HashMap<String, Marks>>,
}

impl Assets {
    pub(crate) fn new(store: StorageManager) -> Self {
        Self { store, entries: Mutex::new(HashMap::new()), marks: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn store(&self) -> &StorageManager {
        &self.store
    }

    fn entry(&self, id: &str) -> Arc<Entry> {
        Arc::clone(lock(&self.entries).entry(id.to_owned()).or_default())
    }

    /// The reader of bundle `id`, opened again when its manifest changed on disk.
    pub(crate) fn reader(&self, id: &str) -> Result<Arc<BundleReader>, BundleError> {
        let entry = self.entry(id);
        let mut slot = lock(&entry.reader);
        if let Some(reader) = slot.as_ref()
            && reader.is_current().unwrap_or(false)
        {
            return Ok(Arc::clone(reader));
        }
        match self.store.reader(id) {
            Ok(reader) => {
                let reader = Arc::new(reader);
                *slot = Some(Arc::clone(&reader));
                Ok(reader)
            }
            Err(e) => {
                *slot = None;
                drop(slot);
                lock(&self.entries).remove(id);
                Err(e)
            }
        }
    }

    /// The status of bundle `id` as read by `reader`, computed again when its files changed.
    pub(crate) fn status(&self, id: &str, reader: &BundleReader) -> Result<Arc<BundleStatus>, BundleError> {
        let entry = self.entry(id);
        let mut slot = lock(&entry.status);
        let fingerprint = reader.fingerprint()?;
        if let Some(cached) = slot.as_ref()
            && cached.fingerprint.is_some()
            && cached.fingerprint == fingerprint
            && (cached.status.finished || cached.at.elapsed() < UNFINISHED_STATUS_TTL)
        {
            return Ok(Arc::clone(&cached.status));
        }
        let status = Arc::new(reader.status()?);
        *slot = Some(CachedStatus { fingerprint, at: Instant::now(), status: Arc::clone(&status) });
        Ok(status)
    }

    /// Every bundle of the store with its status, sorted by identifier. Bundles that cannot be read are
    /// left out of the listing with the reason.
    pub(crate) fn list(&self) -> Result<Listing, BundleError> {
        let ids = self.store.bundle_ids()?;
        {
            // Bundles removed since the last listing are forgotten.
            let mut entries = lock(&self.entries);
            entries.retain(|id, _| ids.binary_search(id).is_ok());
        }
        let read = |id: &String| self.reader(id).and_then(|reader| Ok((self.status(id, &reader)?, reader)));
        // Reading a bundle is mostly waiting for small reads and lookups: the bundles are read on a few
        // threads at once, each taking the next in turn, so a cold listing of a large store takes a
        // fraction of the time.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(ids.len());
        let next = AtomicUsize::new(0);
        let mut results: Vec<(usize, Result<_, BundleError>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(id) = ids.get(i) else { return done };
                            done.push((i, read(id)));
                        }
                    })
                })
                .collect();
            // A worker that panicked lost its bundles; they are reported as unreadable below.
            workers.into_iter().filter_map(|w| w.join().ok()).flatten().collect()
        });
        results.sort_by_key(|(i, _)| *i);
        let mut listed = Vec::with_capacity(ids.len());
        let mut unreadable = Vec::new();
        let mut results = results.into_iter().peekable();
        for (i, id) in ids.into_iter().enumerate() {
            match results.next_if(|(at, _)| *at == i) {
                Some((_, Ok((status, reader)))) => listed.push(Listed { id, reader, status }),
                Some((_, Err(e))) => unreadable.push((id, e)),
                None => unreadable.push((
                    id.clone(),
                    BundleError::Io {
                        path: self.store.dir().join(&id),
                        source: std::io::Error::other("reading it failed"),
                    },
                )),
            }
        }
        Ok((listed, unreadable))
    }

    /// Notes that bundle `id` is being played: its play lease is renewed ([`PLAY_LEASE`] from now), so
    /// that purge and expiry leave it alone, and, for a playlist request (`accessed`), it is marked as
    /// accessed, so that a purge of the least recently used removes it last. Each is written at most once
    /// every [`MARK_INTERVAL`] by this server, also while a download holds the bundle (the marks are kept
    /// beside its manifest, which needs no lock). Errors are ignored: playing never fails because of them.
    pub(crate) fn mark_played(&self, id: &str, accessed: bool) {
        let now = Instant::now();
        let due = |at: Option<Instant>| at.is_none_or(|at| now.duration_since(at) >= MARK_INTERVAL);
        let (mark_accessed, mark_lease) = {
            let mut marks = lock(&self.marks);
            let entry = marks.entry(id.to_owned()).or_default();
            let mark_accessed = accessed && due(entry.accessed);
            let mark_lease = due(entry.playing);
            if mark_accessed {
                entry.accessed = Some(now);
            }
            if mark_lease {
                entry.playing = Some(now);
            }
            (mark_accessed, mark_lease)
        };
        if mark_lease {
            let _ = self.store.mark_playing(id, SystemTime::now() + PLAY_LEASE);
        }
        if mark_accessed {
            let _ = self.store.mark_accessed(id);
        }
    }
}
