//! The session and task API: [`DownloadSession`] makes [`DownloadTask`]s and runs them on tokio.
//!
//! A session owns one HTTP client (so connection limits and the rate limit hold across all its tasks), a
//! store directory of bundles, and a limit on the tasks running at once. A task starts suspended, as
//! Apple's download tasks do: subscribe to its [`events`](DownloadTask::events), then
//! [`resume`](DownloadTask::resume) it. [`DownloadSession::restore`] finds the unfinished bundles of the
//! store after a restart or a crash and makes tasks for them; resuming one fetches only what its bundle's
//! journal does not hold.
//!
//! ```no_run
//! use stowage_task::config::MediaSelection;
//! use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig, TaskEvent};
//!
//! # async fn run() -> Result<(), stowage_task::Error> {
//! let session = DownloadSession::new(SessionConfig::new("downloads").max_connections(8))?;
//! let config = DownloadConfiguration::new(
//!     ContentConfiguration::new()
//!         .media_selection(MediaSelection::audio_language("en"))
//!         .media_selection(MediaSelection::subtitles_language("en")),
//! );
//! let task = session.download_task("https://example.com/master.m3u8", config)?;
//! let mut events = task.events();
//! task.resume();
//! while let Some(event) = events.recv().await {
//!     match event {
//!         TaskEvent::Progress(p) => println!("{:.0} %", p.fraction() * 100.0),
//!         TaskEvent::Finished { path, complete } => println!("{} (complete: {complete})", path.display()),
//!         TaskEvent::Failed(e) => eprintln!("failed: {e}"),
//!         _ => {}
//!     }
//! }
//! let bundle = task.wait().await?;
//! # let _ = bundle;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use stowage_bundle::{BundleOptions, StorageManager};
use stowage_fetch::keys::KeyHook;
use stowage_fetch::{Client, ClientConfig, RetryEvent};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};

use crate::config::{DownloadConfiguration, MediaSelection};
use crate::engine::{JobId, RetryPolicy};
use crate::events::{Progress, TaskEvent};
use crate::{Error, driver};

/// How many events a listener may fall behind before it misses some.
const EVENT_CAPACITY: usize = 4096;

/// Settings of a [`DownloadSession`].
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The store: the directory holding one bundle per asset.
    pub store: PathBuf,
    /// A name for the session, for logs and for applications running several.
    pub identifier: String,
    /// Tasks downloading at once; others wait their turn. Default 4.
    pub max_tasks: usize,
    /// Segment requests in flight at once, all tasks together. Default 32.
    pub max_connections: usize,
    /// Segment requests in flight at once on one host, per task. Default 16.
    pub max_connections_per_host: usize,
    /// Whether each task's window adapts to throughput and throttling (default), within the limits.
    pub adaptive: bool,
    /// A rate limit in bytes per second over all tasks; `None` (default) for none.
    pub rate_limit: Option<u64>,
    /// The HTTP client's settings (TLS roots, timeouts, proxies, retries of single requests). The
    /// session sets the connection limits and rate limit above on it, and installs its own retry
    /// callback to report retries as [`TaskEvent::SegmentRetried`].
    pub http: ClientConfig,
    /// How the engine retries segments that failed after the fetch layer's own retries.
    pub retry: RetryPolicy,
    /// Headers sent with every request (a token, say).
    pub headers: Vec<(String, String)>,
    /// Cookies sent with every request.
    pub cookies: Vec<(String, String)>,
    /// Asked for fresh URLs, headers or cookies when a segment or key is refused (401, 403, 410).
    pub refresh: Option<Arc<dyn RefreshHook>>,
    /// How long the refresh hook may take to answer. Past it, the fresh URLs count as not obtained (the
    /// refused segments fail, or become gaps under the tolerant policy) rather than the task waiting for
    /// ever. Default 60 s.
    pub refresh_timeout: Duration,
    /// Asked for each key URI before it is loaded (signed key requests, keys supplied out of band).
    pub key_hook: Option<Arc<dyn KeyHook>>,
    /// How bundles are written. Every segment's bytes are synced before it is journaled; by default the
    /// journal itself is synced in batches (at least every 32 segments or every second), so a power loss
    /// may send the last segments back to be fetched, never leave a record of a partial one. A crash of
    /// the process loses nothing either way.
    pub bundle: BundleOptions,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("store", &self.store)
            .field("identifier", &self.identifier)
            .field("max_tasks", &self.max_tasks)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_host", &self.max_connections_per_host)
            .field("adaptive", &self.adaptive)
            .field("rate_limit", &self.rate_limit)
            .field("http", &self.http)
            .field("retry", &self.retry)
            .field("headers", &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("cookies", &self.cookies.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("refresh", &self.refresh.is_some())
            .field("refresh_timeout", &self.refresh_timeout)
            .field("key_hook", &self.key_hook.is_some())
            .field("bundle", &self.bundle)
            .finish()
    }
}

impl SessionConfig {
    /// A session storing bundles in `store`, with default limits.
    pub fn new(store: impl Into<PathBuf>) -> Self {
        Self {
            store: store.into(),
            identifier: "stowage".to_owned(),
            max_tasks: 4,
            max_connections: 32,
            max_connections_per_host: 16,
            adaptive: true,
            rate_limit: None,
            http: ClientConfig::default(),
            retry: RetryPolicy::default(),
            headers: Vec::new(),
            cookies: Vec::new(),
            refresh: None,
            refresh_timeout: Duration::from_secs(60),
            key_hook: None,
            bundle: BundleOptions::default(),
        }
    }

    /// Sets the session's name.
    #[must_use]
    pub fn identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = identifier.into();
        self
    }

    /// Sets how many tasks download at once.
    #[must_use]
    pub fn max_tasks(mut self, n: usize) -> Self {
        self.max_tasks = n;
        self
    }

    /// Sets the segment requests in flight at once, all tasks together.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets the segment requests in flight at once on one host.
    #[must_use]
    pub fn max_connections_per_host(mut self, n: usize) -> Self {
        self.max_connections_per_host = n;
        self
    }

    /// Turns the adaptive window on or off (off: always the limits).
    #[must_use]
    pub fn adaptive(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }

    /// Sets a rate limit in bytes per second over all tasks.
    #[must_use]
    pub fn rate_limit(mut self, bytes_per_second: Option<u64>) -> Self {
        self.rate_limit = bytes_per_second;
        self
    }

    /// Sets the HTTP client's settings.
    #[must_use]
    pub fn http(mut self, http: ClientConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets the engine's retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Adds a header sent with every request.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a cookie sent with every request.
    #[must_use]
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// Sets the hook asked for fresh URLs when a URL is refused.
    #[must_use]
    pub fn refresh_hook(mut self, hook: Arc<dyn RefreshHook>) -> Self {
        self.refresh = Some(hook);
        self
    }

    /// Sets how long the refresh hook may take to answer.
    #[must_use]
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.refresh_timeout = timeout;
        self
    }

    /// Sets how bundles are written (their durability).
    #[must_use]
    pub fn bundle_options(mut self, options: BundleOptions) -> Self {
        self.bundle = options;
        self
    }

    /// Sets the hook asked for each key URI before it is loaded.
    #[must_use]
    pub fn key_hook(mut self, hook: Arc<dyn KeyHook>) -> Self {
        self.key_hook = Some(hook);
        self
    }
}

/// What the [`RefreshHook`] is asked about.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefreshRequest {
    /// The task's asset identifier.
    pub asset: String,
    /// The master (or media) playlist URL the task uses now.
    pub url: String,
    /// The URI that was refused: the segment's or the key's, exactly as it was asked for (with the
    /// signature that expired), not the one the job is bound to after an earlier refresh.
    pub refused_uri: String,
    /// The HTTP status it was refused with (401, 403 or 410).
    pub status: u16,
}

/// What a [`RefreshHook`] hands back. Everything is optional; what is given replaces what the task used.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Refresh {
    /// A fresh master (or media) playlist URL: the playlists are fetched again and every pending segment
    /// and key is re-bound, by identity, to its fresh URI. A fresh master playlist is read again and the
    /// same renditions found in it by identity (variants by bandwidth, codecs and resolution, renditions
    /// by type, group, name and language), so that the media playlists' own fresh signatures are used;
    /// segments are then matched by discontinuity sequence, media sequence and byte range, never by URI.
    pub url: Option<String>,
    /// Headers to send from now on (replacing the session's and earlier refreshes').
    pub headers: Option<Vec<(String, String)>>,
    /// Cookies to send from now on.
    pub cookies: Option<Vec<(String, String)>>,
}

impl Refresh {
    /// Nothing new yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a fresh playlist URL.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the headers to send from now on.
    #[must_use]
    pub fn headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Sets the cookies to send from now on.
    #[must_use]
    pub fn cookies(mut self, cookies: Vec<(String, String)>) -> Self {
        self.cookies = Some(cookies);
        self
    }
}

/// The boxed future a [`RefreshHook`] returns: `None` when no fresh URLs can be had (the refused
/// segments then fail, or become gaps under the tolerant policy).
pub type RefreshFuture<'a> = Pin<Box<dyn Future<Output = Option<Refresh>> + Send + 'a>>;

/// The caller's way to renew signed URLs, headers or cookies when they expire.
///
/// The hook is asked once per expiry: segments and keys refused together wait for the same answer, and a
/// refusal of a URI that an answer has already replaced just retries with the fresh one. While it runs,
/// no request leaves with the URIs being replaced. A hook that panics fails the task with
/// [`Error::RefreshHookPanicked`](crate::Error::RefreshHookPanicked); one that takes longer than
/// [`SessionConfig::refresh_timeout`] counts as having no fresh URLs. Suspending or cancelling the task
/// while the hook runs stops waiting for it (after a suspend, the next refusal asks again).
pub trait RefreshHook: Send + Sync {
    /// Called when a segment or key URL is refused with 401, 403 or 410.
    fn refresh<'a>(&'a self, request: &'a RefreshRequest) -> RefreshFuture<'a>;
}

/// A [`RefreshHook`] from a plain function, for hooks that need no IO.
pub fn refresh_fn<F>(f: F) -> Arc<dyn RefreshHook>
where
    F: Fn(&RefreshRequest) -> Option<Refresh> + Send + Sync + 'static,
{
    struct FnHook<F>(F);
    impl<F: Fn(&RefreshRequest) -> Option<Refresh> + Send + Sync> RefreshHook for FnHook<F> {
        fn refresh<'a>(&'a self, request: &'a RefreshRequest) -> RefreshFuture<'a> {
            let answer = (self.0)(request);
            Box::pin(async move { answer })
        }
    }
    Arc::new(FnHook(f))
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Not downloading: new, or suspended. [`DownloadTask::resume`] starts it.
    Suspended,
    /// Resumed, waiting for one of the session's task slots.
    Waiting,
    /// Downloading.
    Running,
    /// Done; `complete` is false when gaps were recorded under the tolerant policy.
    Finished {
        /// Whether every segment is stored.
        complete: bool,
    },
    /// Failed; [`DownloadTask::wait`] gives the error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl TaskState {
    /// Whether the task will do nothing more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Finished { .. } | Self::Failed | Self::Cancelled)
    }
}

/// What [`DownloadTask::cancel`] does with the partial bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CancelMode {
    /// Keep what was downloaded: a later task for the same asset continues from it (the default).
    #[default]
    KeepPartial,
    /// Delete the bundle.
    RemovePartial,
}

/// The next value of a broadcast stream, counting what a lagging listener missed; `None` once closed.
async fn recv_counting_missed<T: Clone>(rx: &mut broadcast::Receiver<T>, missed: &mut u64) -> Option<T> {
    loop {
        match rx.recv().await {
            Ok(value) => return Some(value),
            Err(broadcast::error::RecvError::Lagged(n)) => *missed += n,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// A task's events, in order. Obtained from [`DownloadTask::events`].
#[derive(Debug)]
pub struct TaskEvents {
    rx: broadcast::Receiver<TaskEvent>,
    missed: u64,
}

impl TaskEvents {
    /// The next event; `None` once the task has ended and every event was received.
    pub async fn recv(&mut self) -> Option<TaskEvent> {
        recv_counting_missed(&mut self.rx, &mut self.missed).await
    }

    /// How many events this listener missed by falling more than a few thousand behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// An event of any task of a session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionEvent {
    /// The task's asset identifier.
    pub asset: String,
    /// The event.
    pub event: TaskEvent,
}

/// The events of every task of a session. Obtained from [`DownloadSession::events`].
#[derive(Debug)]
pub struct SessionEvents {
    rx: broadcast::Receiver<SessionEvent>,
    missed: u64,
}

impl SessionEvents {
    /// The next event; `None` once the session is gone and every event was received.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        recv_counting_missed(&mut self.rx, &mut self.missed).await
    }

    /// How many events this listener missed by falling more than a few thousand behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// Orders from a task handle to its driver.
#[derive(Debug)]
pub(crate) enum Control {
    Resume,
    Suspend,
    Cancel(CancelMode),
    Augment(Vec<MediaSelection>, oneshot::Sender<Result<usize, Error>>),
}

/// The end of a task, as its driver reports it.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    Finished { path: PathBuf, complete: bool },
    Failed(Arc<Error>),
    Cancelled,
    Closed,
}

/// What a task's handle and its driver share.
pub(crate) struct TaskShared {
    pub(crate) asset: String,
    pub(crate) url: Mutex<String>,
    pub(crate) bundle_path: PathBuf,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) state: watch::Sender<TaskState>,
    pub(crate) ending: watch::Sender<Option<Ending>>,
    pub(crate) events: broadcast::Sender<TaskEvent>,
    pub(crate) progress: Mutex<Progress>,
    /// Rendition identifiers in the engine's order (the index of per-rendition progress and ranges).
    pub(crate) renditions: Mutex<Vec<String>>,
}

impl TaskShared {
    pub(crate) fn emit(&self, session: &SessionInner, event: TaskEvent) {
        if let TaskEvent::Progress(p) = &event {
            *lock(&self.progress) = p.clone();
        }
        let _ = session.events.send(SessionEvent { asset: self.asset.clone(), event: event.clone() });
        let _ = self.events.send(event);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A request in flight that the fetch layer's retry callback reports to.
pub(crate) struct Listener {
    pub(crate) token: u64,
    pub(crate) job: JobId,
    pub(crate) tx: mpsc::UnboundedSender<(JobId, RetryEvent)>,
}

/// What the session's tasks share.
pub(crate) struct SessionInner {
    pub(crate) config: SessionConfig,
    pub(crate) client: Client,
    pub(crate) store: StorageManager,
    pub(crate) task_slots: Semaphore,
    pub(crate) request_slots: Semaphore,
    pub(crate) events: broadcast::Sender<SessionEvent>,
    /// Requests in flight by URI, for the retry callback.
    pub(crate) listeners: Mutex<HashMap<String, Vec<Listener>>>,
    pub(crate) next_token: AtomicU64,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// A download session: the store, the HTTP client, the limits, and the tasks.
///
/// Must be created and used inside a tokio runtime (tasks are spawned on it). Dropping the session stops
/// its tasks where they are (their bundles stay resumable); a new session on the same store finds them
/// with [`restore`](Self::restore).
pub struct DownloadSession {
    inner: Arc<SessionInner>,
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
        let http = config
            .http
            .clone()
            .max_connections(config.max_connections)
            .max_connections_per_host(config.max_connections_per_host)
            .rate_limit(config.rate_limit)
            .on_retry(move |event| {
                if let Some(inner) = reach.get().and_then(Weak::upgrade) {
                    inner.report_retry(event);
                }
            });
        let client = Client::new(http).map_err(|e| Error::Fetch {
            uri: String::new(),
            status: None,
            message: e.to_string(),
        })?;
        let inner = Arc::new(SessionInner {
            store: StorageManager::new(&config.store).bundle_options(config.bundle.clone()),
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
        Ok(Self { inner, tasks: Mutex::new(Vec::new()), _shutdown: shutdown_tx })
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
        SessionEvents { rx: self.inner.events.subscribe(), missed: 0 }
    }

    /// The tasks made by this session, in order.
    pub fn tasks(&self) -> Vec<DownloadTask> {
        lock(&self.tasks).clone()
    }

    /// Makes a task downloading the asset at `url` (a master or a media playlist) as `config` says, into
    /// the bundle named after the URL. The task starts suspended: call [`DownloadTask::resume`].
    ///
    /// If the store already holds a bundle for the asset, the task continues it: finished segments are
    /// not fetched again, and renditions the configuration adds to it are downloaded.
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
            return Err(Error::Bundle {
                path: existing.bundle_path(),
                message: "a task of this session is already downloading this asset".to_owned(),
            });
        }
        let path = self.inner.store.bundle_path(asset).map_err(|e| Error::Bundle {
            path: self.inner.store.dir().to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(self.spawn(asset, url, path, driver::Source::New(Box::new(config))))
    }

    /// Finds every unfinished bundle of the store (interrupted by a crash, a restart or a suspend) that no
    /// task of this session holds, and makes a suspended task for each. Resuming one fetches the playlists
    /// again and downloads only what the bundle's journal does not hold.
    pub fn restore(&self) -> Result<Vec<DownloadTask>, Error> {
        let listing = self.inner.store.list().map_err(|e| Error::Bundle {
            path: self.inner.store.dir().to_path_buf(),
            message: e.to_string(),
        })?;
        let mut restored = Vec::new();
        for summary in listing.bundles {
            if summary.finished || summary.in_use {
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

    fn spawn(&self, asset: &str, url: &str, bundle_path: PathBuf, source: driver::Source) -> DownloadTask {
        let (control, control_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Arc::new(TaskShared {
            asset: asset.to_owned(),
            url: Mutex::new(url.to_owned()),
            bundle_path,
            control,
            state: watch::channel(TaskState::Suspended).0,
            ending: watch::channel(None).0,
            events,
            progress: Mutex::new(Progress::default()),
            renditions: Mutex::new(Vec::new()),
        });
        let task = DownloadTask { shared: Arc::clone(&shared) };
        tokio::spawn(driver::run(Arc::clone(&self.inner), shared, source, control_rx));
        lock(&self.tasks).push(task.clone());
        task
    }
}

impl SessionInner {
    fn report_retry(&self, event: &RetryEvent) {
        let listeners = lock(&self.listeners);
        if let Some(l) = listeners.get(&event.uri).and_then(|v| v.first()) {
            let _ = l.tx.send((l.job, event.clone()));
        }
    }

    pub(crate) fn listen(
        &self,
        uri: &str,
        job: JobId,
        tx: &mpsc::UnboundedSender<(JobId, RetryEvent)>,
    ) -> u64 {
        let token = self.next_token.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.listeners).entry(uri.to_owned()).or_default().push(Listener {
            token,
            job,
            tx: tx.clone(),
        });
        token
    }

    pub(crate) fn unlisten(&self, uri: &str, token: u64) {
        let mut listeners = lock(&self.listeners);
        if let Some(v) = listeners.get_mut(uri) {
            v.retain(|l| l.token != token);
            if v.is_empty() {
                listeners.remove(uri);
            }
        }
    }
}

/// A download of one asset. Cheap to clone: clones control the same task.
#[derive(Clone)]
pub struct DownloadTask {
    shared: Arc<TaskShared>,
}

impl fmt::Debug for DownloadTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadTask")
            .field("asset", &self.shared.asset)
            .field("state", &self.state())
            .field("bundle", &self.shared.bundle_path)
            .finish()
    }
}

impl DownloadTask {
    /// The asset identifier (the bundle's folder name in the store).
    pub fn asset(&self) -> &str {
        &self.shared.asset
    }

    /// The playlist URL the task downloads from (the latest, after a refresh).
    pub fn url(&self) -> String {
        lock(&self.shared.url).clone()
    }

    /// The bundle directory the task writes to.
    pub fn bundle_path(&self) -> PathBuf {
        self.shared.bundle_path.clone()
    }

    /// Starts or continues the download.
    pub fn resume(&self) {
        let _ = self.shared.control.send(Control::Resume);
    }

    /// Stops starting segments and aborts those in flight; stored segments stay. [`resume`](Self::resume)
    /// continues.
    pub fn suspend(&self) {
        let _ = self.shared.control.send(Control::Suspend);
    }

    /// Cancels the download, keeping or removing the partial bundle.
    pub fn cancel(&self, mode: CancelMode) {
        let _ = self.shared.control.send(Control::Cancel(mode));
    }

    /// Adds media selections (more audio languages, subtitles) to a running or suspended task: the
    /// renditions they choose from the task's variant are downloaded too, and those already in the task
    /// are not fetched again. Returns how many renditions were added.
    ///
    /// A task that has not started yet, or has ended, answers [`Error::InvalidConfig`]: make a new task
    /// for the same asset with the larger configuration instead (it downloads only what is missing).
    pub async fn add_media_selections(&self, selections: Vec<MediaSelection>) -> Result<usize, Error> {
        let not_running = Error::InvalidConfig {
            reason: "media selections can be added to a task only while it runs or is suspended after running",
        };
        let (tx, rx) = oneshot::channel();
        self.shared.control.send(Control::Augment(selections, tx)).map_err(|_| not_running.clone())?;
        rx.await.unwrap_or(Err(not_running))
    }

    /// Where the task stands.
    pub fn state(&self) -> TaskState {
        *self.shared.state.borrow()
    }

    /// Waits until the task's state satisfies `f`, and returns that state.
    pub async fn wait_for_state(&self, mut f: impl FnMut(TaskState) -> bool) -> TaskState {
        let mut rx = self.shared.state.subscribe();
        *rx.wait_for(|s| f(*s)).await.expect("the task holds the sender")
    }

    /// The local identifiers of the task's renditions (their folder names in the bundle: `video-2`,
    /// `audio-en`, ...), known once the playlists are read. The `rendition` index of per-rendition
    /// progress and of loaded time ranges points into this list.
    pub fn renditions(&self) -> Vec<String> {
        lock(&self.shared.renditions).clone()
    }

    /// The latest progress.
    pub fn progress(&self) -> Progress {
        lock(&self.shared.progress).clone()
    }

    /// The task's events from now on. Subscribe before [`resume`](Self::resume) to see them all.
    pub fn events(&self) -> TaskEvents {
        TaskEvents { rx: self.shared.events.subscribe(), missed: 0 }
    }

    /// Waits for the task to end: the bundle's path when it finished (see [`TaskState::Finished`] for
    /// completeness), or the error it failed with ([`Error::Cancelled`] for a cancelled task,
    /// [`Error::SessionClosed`] when its session was dropped).
    pub async fn wait(&self) -> Result<PathBuf, Error> {
        let mut rx = self.shared.ending.subscribe();
        let ending = rx.wait_for(Option::is_some).await.expect("the task holds the sender").clone();
        match ending.expect("waited for an ending") {
            Ending::Finished { path, .. } => Ok(path),
            Ending::Failed(e) => Err((*e).clone()),
            Ending::Cancelled => Err(Error::Cancelled),
            Ending::Closed => Err(Error::SessionClosed),
        }
    }
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

impl AsRef<Path> for DownloadTask {
    fn as_ref(&self) -> &Path {
        &self.shared.bundle_path
    }
}
