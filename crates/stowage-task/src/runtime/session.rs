//! The session and task API: [`DownloadSession`] makes [`DownloadTask`]s and runs them on tokio.
//!
//! A session owns one HTTP client (so connection limits and the rate limit hold across all its tasks), a
//! store directory of bundles, and a limit on the tasks running at once. A task starts suspended, as
//! Apple's download tasks do: subscribe to its [`events`](DownloadTask::events), then
//! [`resume`](DownloadTask::resume) it. [`DownloadSession::restore`] finds the unfinished bundles of the
//! store after a restart or a crash and makes tasks for them; resuming one fetches only what its bundle's
//! journal does not hold.
//!
//! [`DownloadSession`]'s documentation shows a whole download.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use stowage_bundle::StorageManager;
use stowage_fetch::Client;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use super::driver;
use super::event_streams::{EVENT_CAPACITY, SessionEvents};
use super::session_config::SessionConfig;
use super::shared::{SessionInner, lock};
use super::task::{DownloadTask, TaskShared};
use crate::Error;
use crate::config::DownloadConfiguration;
use crate::planning::{bundle_plan, new_bundle_policies, renewal};

/// A download session: the store, the HTTP client, the limits, and the tasks.
///
/// Must be created and used inside a tokio runtime (tasks are spawned on it). Dropping the session stops
/// its tasks where they are (their bundles stay resumable); a new session on the same store finds them
/// with [`restore`](Self::restore).
///
/// A download with English audio and subtitles, its events read until their stream ends (after the
/// task's last event, here [`TaskEvent::Finished`](crate::TaskEvent::Finished)):
///
/// ```
/// use stowage_task::config::MediaSelection;
/// use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig, TaskEvent};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # // An origin on 127.0.0.1 serving the repository's test asset, and a store in a temporary folder.
/// # let files = stowage_origin::Files::new();
/// # files.load_dir("/hls", stowage_testkit::assets().join("clear"))?;
/// # let origin = stowage_origin::Origin::start(files, stowage_origin::OriginConfig::default())?;
/// # let url = origin.url("/hls/master.m3u8");
/// # let store = tempfile::tempdir()?;
/// # let downloads = store.path();
/// # // An example that hangs fails instead of blocking the tests.
/// # tokio::time::timeout(std::time::Duration::from_secs(60), async {
/// let session = DownloadSession::new(SessionConfig::new(downloads).max_connections(8))?;
/// let config = DownloadConfiguration::new(
///     ContentConfiguration::new()
///         .media_selection(MediaSelection::audio_language("en"))
///         .media_selection(MediaSelection::subtitles_language("en")),
/// );
/// let task = session.download_task(&url, config)?;
/// let mut events = task.events();
/// task.resume();
/// while let Some(event) = events.recv().await {
///     match event {
///         TaskEvent::Progress(p) => println!("{:.0} %", p.fraction() * 100.0),
///         TaskEvent::RenditionCompleted(r) => println!("{} complete", r.id),
///         TaskEvent::Finished { path, complete } => println!("{} (complete: {complete})", path.display()),
///         TaskEvent::Failed(e) => eprintln!("failed: {e}"),
///         _ => {}
///     }
/// }
/// let bundle = task.wait().await?;
/// assert!(bundle.join("master.m3u8").is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).await??;
/// # Ok(()) }
/// ```
pub struct DownloadSession {
    inner: Arc<SessionInner>,
    removed_at_start: stowage_bundle::PurgeReport,
    tasks: Mutex<Vec<DownloadTask>>,
    _shutdown: watch::Sender<bool>,
}

impl fmt::Debug for DownloadSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadSession")
            .field("config", &self.inner.config)
            .field("tasks", &lock(&self.tasks).len())
            .finish()
    }
}

impl DownloadSession {
    /// Creates a session. Fails on an invalid configuration or an unusable HTTP configuration (an
    /// unreadable CA certificate, say).
    ///
    /// The store's expired assets that no writer and no player holds are removed first
    /// ([`StorageManager::remove_expired`]); [`removed_at_start`](Self::removed_at_start) says which.
    pub fn new(config: SessionConfig) -> Result<Self, Error> {
        if config.max_tasks == 0 {
            return Err(Error::InvalidConfig { reason: "max_tasks must be at least 1" });
        }
        if config.max_connections == 0 || config.max_connections_per_host == 0 {
            return Err(Error::InvalidConfig { reason: "connection limits must be at least 1" });
        }
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        // The retry callback reaches the session through a cell filled once the session exists.
        let cell: Arc<OnceLock<Weak<SessionInner>>> = Arc::new(OnceLock::new());
        let reach = Arc::clone(&cell);
        // The fetch layer's retries of one request count against a job's retry time: they never outlast
        // it, so that one attempt cannot spend longer failing than the task allows for all of them, and a
        // `Retry-After` longer than it fails at once, naming it, rather than being waited for in vain.
        let mut retry = config.http.retry_config().clone();
        retry.max_elapsed = retry.max_elapsed.min(config.retry.max_retry_time);
        retry.max_retry_after = retry.max_retry_after.min(config.retry.max_retry_time);
        let http = config
            .http
            .clone()
            .retry(retry)
            .max_connections(config.max_connections)
            .max_connections_per_host(config.host_connection_limit())
            .rate_limit(config.rate_limit)
            .on_retry(move |event| {
                if let Some(inner) = reach.get().and_then(Weak::upgrade) {
                    inner.report_retry(event);
                }
            });
        let client = Client::new(http).map_err(|source| Error::ClientConfig { source })?;
        let store = match &config.storage {
            Some(storage) => StorageManager::with_storage(Arc::clone(storage), &config.store),
            None => StorageManager::new(&config.store),
        };
        let removed_at_start = store.remove_expired().map_err(|e| store_error(&store, e))?;
        let inner = Arc::new(SessionInner {
            store: store.bundle_options(config.bundle.clone()),
            task_slots: Semaphore::new(config.max_tasks),
            request_slots: Semaphore::new(config.max_connections),
            client,
            config,
            events,
            listeners: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(0),
            shutdown,
        });
        let _ = cell.set(Arc::downgrade(&inner));
        Ok(Self { inner, removed_at_start, tasks: Mutex::new(Vec::new()), _shutdown: shutdown_tx })
    }

    /// What the session removed from the store when it was created: expired assets, and what was left of
    /// bundles whose creation did not finish.
    pub fn removed_at_start(&self) -> &stowage_bundle::PurgeReport {
        &self.removed_at_start
    }

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The store of bundles, to list, purge or inspect them.
    pub fn store(&self) -> &StorageManager {
        &self.inner.store
    }

    /// The HTTP client's counters (bytes, requests, retries, connections, throughput per host), for a
    /// speed display: they count bytes as they arrive, also within segments not yet stored.
    pub fn counters(&self) -> stowage_fetch::Counters {
        self.inner.client.counters()
    }

    /// The events of every task.
    pub fn events(&self) -> SessionEvents {
        SessionEvents::new(self.inner.events.subscribe())
    }

    /// The tasks made by this session, in order.
    pub fn tasks(&self) -> Vec<DownloadTask> {
        lock(&self.tasks).clone()
    }

    /// Makes a task downloading the asset at `url` (a master or a media playlist) as `config` says, into
    /// the bundle named after the URL. The task starts suspended: call [`DownloadTask::resume`].
    ///
    /// The task is recorded in the store at once (a bundle with nothing planned yet, which records the URL
    /// and the configuration), so that [`restore`](Self::restore) finds it after a restart even if it
    /// never ran. If the store already holds a bundle for the asset, the task continues it: finished
    /// segments are not fetched again, renditions the configuration adds are downloaded, and the
    /// configuration's title, storage and integrity policies and its selections replace those the bundle
    /// recorded (its key policy stays). Fails when the bundle is being written by another process.
    pub fn download_task(&self, url: &str, config: DownloadConfiguration) -> Result<DownloadTask, Error> {
        self.download_task_named(&asset_id_for(url), url, config)
    }

    /// Like [`download_task`](Self::download_task), with the asset identifier (the bundle's folder name)
    /// chosen by the caller: ASCII letters, digits, `-` and `_`, at most 64 bytes.
    pub fn download_task_named(
        &self,
        asset: &str,
        url: &str,
        config: DownloadConfiguration,
    ) -> Result<DownloadTask, Error> {
        if let Some(existing) =
            lock(&self.tasks).iter().find(|t| t.asset() == asset && !t.state().is_terminal())
        {
            return Err(Error::AssetBusy { asset: asset.to_owned(), path: existing.bundle_path() });
        }
        let path = self.inner.store.bundle_path(asset).map_err(|e| self.store_error(e))?;
        let config = self.with_default_expiry(asset, config)?;
        self.record(asset, url, &config)?;
        Ok(self.spawn(asset, url, path, driver::Source::New(Box::new(config))))
    }

    /// A new asset whose configuration sets no expiry gets the store policy's default expiry, counted from
    /// now. An asset the store holds already keeps what its configuration says.
    fn with_default_expiry(
        &self,
        asset: &str,
        mut config: DownloadConfiguration,
    ) -> Result<DownloadConfiguration, Error> {
        if config.storage.expires.is_some() {
            return Ok(config);
        }
        let store = &self.inner.store;
        match store.storage_management_policy(asset) {
            Err(stowage_bundle::Error::NoSuchBundle { .. }) => {}
            Ok(_) => return Ok(config),
            Err(e) => return Err(self.store_error(e)),
        }
        let policy = store.store_policy().map_err(|e| self.store_error(e))?;
        if let Some(after) = policy.default_expiry {
            let now = std::time::SystemTime::now();
            // A default so far off that the clock cannot hold it is no expiry.
            if let Some(at) = now.checked_add(after) {
                config.storage = config.storage.expires(at);
            }
        }
        Ok(config)
    }

    /// Records the download in the store before it starts, as Apple's session keeps its tasks, so that
    /// [`restore`](Self::restore) finds it after a restart even if it never ran: a bundle with nothing
    /// planned yet, which records the URL and the configuration. When the asset has a bundle already, the
    /// new task's URL, title, policies and configuration replace what it records, and a download that was
    /// cancelled is one no longer.
    fn record(&self, asset: &str, url: &str, config: &DownloadConfiguration) -> Result<(), Error> {
        let store = &self.inner.store;
        match store.update(asset, renewal(url, config)) {
            Ok(()) => Ok(()),
            Err(stowage_bundle::Error::NoSuchBundle { .. }) => {
                let plan = bundle_plan(asset, url, &new_bundle_policies(config), Some(config), None, &[]);
                // The bundle's lock is released when the handle goes: the task's driver opens it again.
                store.create_bundle(plan).map(drop).map_err(|e| self.store_error(e))
            }
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// Finds every unfinished bundle of the store (interrupted by a crash, a restart or a suspend, or made
    /// for a task that never started) that no task of this session holds, and makes a suspended task for
    /// each. Resuming one fetches the playlists again and downloads only what the bundle's journal does
    /// not hold, as its recorded configuration asks. Downloads cancelled with their partial content kept
    /// are not restored: a new task for the asset continues from them.
    pub fn restore(&self) -> Result<Vec<DownloadTask>, Error> {
        let listing = self.inner.store.list().map_err(|e| self.store_error(e))?;
        let mut restored = Vec::new();
        for summary in listing.bundles {
            if summary.finished || summary.in_use || summary.cancelled {
                continue;
            }
            let asset = summary.asset.id.clone();
            if lock(&self.tasks).iter().any(|t| t.asset() == asset && !t.state().is_terminal()) {
                continue;
            }
            let Some(url) = summary.asset.url.clone() else { continue };
            restored.push(self.spawn(&asset, &url, summary.path.clone(), driver::Source::Restore));
        }
        Ok(restored)
    }

    /// The task's error for a failure of the store.
    fn store_error(&self, e: stowage_bundle::Error) -> Error {
        store_error(&self.inner.store, e)
    }

    fn spawn(&self, asset: &str, url: &str, bundle_path: PathBuf, source: driver::Source) -> DownloadTask {
        let (control, control_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Arc::new(TaskShared::new(asset, url, bundle_path, control, events));
        let task = DownloadTask::new(Arc::clone(&shared));
        tokio::spawn(driver::run(Arc::clone(&self.inner), shared, source, control_rx));
        lock(&self.tasks).push(task.clone());
        task
    }
}

/// The session's error for a failure of `store`.
fn store_error(store: &StorageManager, e: stowage_bundle::Error) -> Error {
    let path = e.path().map_or_else(|| store.dir().to_path_buf(), std::path::Path::to_path_buf);
    Error::Bundle { path, source: Arc::new(e) }
}

/// The asset identifier derived from a URL: readable parts of its host and path, and a hash of the whole
/// URL without its query (signed URLs of one asset differ only there), so that it is stable and unique.
pub fn asset_id_for(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let rest = without_query.split_once("://").map_or(without_query, |(_, r)| r);
    let mut readable = String::new();
    for c in rest.trim_end_matches(".m3u8").chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' };
        if !(c == '-' && (readable.is_empty() || readable.ends_with('-'))) {
            readable.push(c);
        }
    }
    let readable = readable.trim_end_matches('-');
    // The tail of the path names the asset better than the host; keep the last 40 characters.
    let start = readable.len().saturating_sub(40);
    let readable = readable[start..].trim_start_matches('-');
    // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in without_query.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    if readable.is_empty() { format!("asset-{hash:016x}") } else { format!("{readable}-{hash:016x}") }
}
