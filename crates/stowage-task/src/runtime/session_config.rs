//! The settings of a download session.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stowage_bundle::{BundleOptions, Storage};
use stowage_fetch::ClientConfig;
use stowage_fetch::keys::KeyHook;

use super::refresh_hook::RefreshHook;
use crate::config::SegmentSizeLimit;
use crate::engine::RetryPolicy;

/// Settings of a [`DownloadSession`](crate::DownloadSession).
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The store: the directory holding one bundle per asset.
    pub store: PathBuf,
    /// A name for the session, for logs and for applications running several.
    pub identifier: String,
    /// Tasks downloading at once; others wait their turn. Default 4.
    pub max_tasks: usize,
    /// Segment requests in flight at once, all tasks together. Default 64.
    pub max_connections: usize,
    /// Segment requests in flight at once on one host, per task, unless the adaptive window takes the
    /// host past it (see [`per_host_ceiling`](Self::per_host_ceiling)). Default 16.
    pub max_connections_per_host: usize,
    /// How many segment requests the adaptive window may have in flight on one host, per task, while the
    /// host shows no strain. Default 64.
    ///
    /// Past [`max_connections_per_host`](Self::max_connections_per_host), a task's window grows only
    /// while round trips stay within 25 % of the shortest measured and the host has not pushed back: an
    /// origin that answers slowly but steadily is waiting, not working, and more requests in flight
    /// shorten the download in proportion. A host that answers 429 or 503, stalls a body, or fails a
    /// request in a transient way (a connection error, a 5xx) is held to `max_connections_per_host` for
    /// the rest of the run, and the window halves on throttling and stalls. A ceiling at or below
    /// `max_connections_per_host`, or [`adaptive`](Self::adaptive) off, keeps every host to
    /// `max_connections_per_host`.
    pub per_host_ceiling: usize,
    /// Whether each task's window adapts to throughput and throttling (default), within the limits.
    pub adaptive: bool,
    /// A rate limit in bytes per second over all tasks; `None` (default) for none.
    pub rate_limit: Option<u64>,
    /// The HTTP client's settings (TLS roots, deadlines, proxies, retries of single requests). The
    /// session sets the connection limits and rate limit above on it, holds the fetch layer's retries of
    /// one request, and the longest `Retry-After` it waits for, within the retry time of
    /// [`retry`](Self::retry), and installs its own retry callback
    /// to report retries as [`TaskEvent::SegmentRetried`](crate::TaskEvent::SegmentRetried) and
    /// [`TaskEvent::RequestRetried`](crate::TaskEvent::RequestRetried).
    pub http: ClientConfig,
    /// How the engine retries segments that failed after the fetch layer's own retries. Its
    /// [`max_retry_time`](RetryPolicy::max_retry_time) bounds the time one job spends failing, so that a
    /// stalled origin fails the task in about two minutes by default.
    pub retry: RetryPolicy,
    /// How large a media segment may be, from its duration and its variant's `BANDWIDTH`.
    pub segment_size_limit: SegmentSizeLimit,
    /// Most segments one media playlist may list; a playlist with more fails before it is read, with
    /// both numbers. Default 100,000: a day of one-second segments, a week of six-second ones, several
    /// times the longest video-on-demand asset seen, while a plan of that many entries stays within
    /// tens of megabytes of memory and manifest.
    pub max_playlist_segments: usize,
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
    /// Whether a rendition whose media playlist changed since its bundle was made (found when a task
    /// continues a bundle) is started again: what was stored of it is dropped and it is fetched anew.
    /// Off by default: the task then fails with [`Error::PlaylistChanged`](crate::Error::PlaylistChanged),
    /// naming what changed, and nothing stored is touched.
    pub restart_changed_renditions: bool,
    /// Where bundles are written: the local filesystem (`None`, the default), or another implementation
    /// of the bundle's [`Storage`] seam (object storage, or a test's disk that fills up on purpose).
    pub storage: Option<Arc<dyn Storage>>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("store", &self.store)
            .field("identifier", &self.identifier)
            .field("max_tasks", &self.max_tasks)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_host", &self.max_connections_per_host)
            .field("per_host_ceiling", &self.per_host_ceiling)
            .field("adaptive", &self.adaptive)
            .field("rate_limit", &self.rate_limit)
            .field("http", &self.http)
            .field("retry", &self.retry)
            .field("segment_size_limit", &self.segment_size_limit)
            .field("max_playlist_segments", &self.max_playlist_segments)
            .field("headers", &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("cookies", &self.cookies.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("refresh", &self.refresh.is_some())
            .field("refresh_timeout", &self.refresh_timeout)
            .field("key_hook", &self.key_hook.is_some())
            .field("bundle", &self.bundle)
            .field("restart_changed_renditions", &self.restart_changed_renditions)
            .field("storage", &self.storage)
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
            max_connections: 64,
            max_connections_per_host: 16,
            per_host_ceiling: 64,
            adaptive: true,
            rate_limit: None,
            http: ClientConfig::default(),
            retry: RetryPolicy::default(),
            segment_size_limit: SegmentSizeLimit::default(),
            max_playlist_segments: 100_000,
            headers: Vec::new(),
            cookies: Vec::new(),
            refresh: None,
            refresh_timeout: Duration::from_secs(60),
            key_hook: None,
            bundle: BundleOptions::default(),
            restart_changed_renditions: false,
            storage: None,
        }
    }

    /// Starts again the renditions whose media playlist changed since their bundle was made, instead of
    /// failing.
    #[must_use]
    pub fn restart_changed_renditions(mut self, yes: bool) -> Self {
        self.restart_changed_renditions = yes;
        self
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

    /// Sets how many requests the adaptive window may have in flight on a host that shows no strain
    /// (see [`per_host_ceiling`](Self::per_host_ceiling)).
    #[must_use]
    pub fn per_host_ceiling(mut self, n: usize) -> Self {
        self.per_host_ceiling = n;
        self
    }

    /// The most requests one host may have in flight: the ceiling when the window adapts and may go past
    /// the per-host limit, else the per-host limit.
    pub(crate) fn host_connection_limit(&self) -> usize {
        if self.adaptive {
            self.max_connections_per_host.max(self.per_host_ceiling)
        } else {
            self.max_connections_per_host
        }
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

    /// Sets how large a media segment may be.
    #[must_use]
    pub fn segment_size_limit(mut self, limit: SegmentSizeLimit) -> Self {
        self.segment_size_limit = limit;
        self
    }

    /// Sets the most segments one media playlist may list.
    #[must_use]
    pub fn max_playlist_segments(mut self, max: usize) -> Self {
        self.max_playlist_segments = max;
        self
    }

    /// Sets how bundles are written (their durability).
    #[must_use]
    pub fn bundle_options(mut self, options: BundleOptions) -> Self {
        self.bundle = options;
        self
    }

    /// Sets where bundles are written, instead of the local filesystem.
    #[must_use]
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Sets the hook asked for each key URI before it is loaded.
    #[must_use]
    pub fn key_hook(mut self, hook: Arc<dyn KeyHook>) -> Self {
        self.key_hook = Some(hook);
        self
    }
}
