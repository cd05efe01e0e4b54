//! The tokio driver: runs one task's engine and carries out its actions with the fetch and bundle crates.
//!
//! One driver future per task. It fetches and resolves the playlists, creates or opens the bundle, then
//! loops as the engine's module documentation describes: every `Start` becomes a spawned fetch that streams
//! the body, chunk by chunk through a bounded channel, to a blocking thread that decrypts and writes it
//! with the bundle's segment writer. A success is reported to the engine only once the segment is durable
//! and journaled, by the blocking thread itself, so that a fetch aborted by a suspend after its last byte
//! still counts (stored work is never fetched again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use stowage_bundle::{Bundle, RenditionId, RenditionKind, SegmentId};
use stowage_fetch::decrypt::{Decryptor, decrypt};
use stowage_fetch::keys::{KeyAction, KeyConfig, KeyHook, KeyHookFuture, KeyLoader};
use stowage_fetch::{Bytes, HeaderName, HeaderValue, RetryCause, RetryEvent, TimeoutKind};
use stowage_playlist::{MasterPlaylist, ParserOptions, PlaylistKind, detect};
use tokio::sync::{SemaphorePermit, mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

use super::refresh_hook::{Refresh, RefreshHook, RefreshRequest};
use super::shared::{SessionInner, lock};
use super::task::{CancelMode, Control, Ending, TaskShared, TaskState};
use crate::Error;
use crate::config::{
    ContentConfiguration, DownloadConfiguration, IntegrityPolicy, KeyPolicy, MediaSelection, Priority,
};
use crate::engine::{
    Action, ConcurrencyLimits, Engine, EngineConfig, Failure, JobFailure, JobId, JobSpec, Outcome, Plan,
    RenditionSpec,
};
use crate::events::TaskEvent;
use crate::planning::{
    Built, Crypto, Job, Wanted, build_rendition, bundle_key_policy, job_spec, key_jobs, merge_inits,
    rebind_to_master, task_key_policy, wanted_from_manifest, wanted_from_selection,
};
use crate::selection::resolve;

/// Largest playlist accepted, in bytes.
const MAX_PLAYLIST: u64 = 16 << 20;
/// Largest initialization section accepted, in bytes (it is held in memory to be stored once per map).
const MAX_INIT: u64 = 16 << 20;
/// Chunks in flight between a fetch and its writer thread: memory per segment stays a few chunks.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Where a task's renditions come from.
pub(crate) enum Source {
    /// A new task with its configuration.
    New(Box<DownloadConfiguration>),
    /// An unfinished bundle found in the store: the renditions are those of its manifest.
    Restore,
}

/// Headers and cookies sent with every request of a task, replaced by refreshes.
#[derive(Debug, Clone, Default)]
struct Auth {
    headers: Vec<(HeaderName, HeaderValue)>,
    cookies: Vec<(String, String)>,
}

impl Auth {
    fn new(headers: &[(String, String)], cookies: &[(String, String)]) -> Result<Self, Error> {
        let mut auth = Self { headers: Vec::new(), cookies: cookies.to_vec() };
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::InvalidConfig { reason: "a header name is invalid" })?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::InvalidConfig { reason: "a header value is invalid" })?;
            auth.headers.push((name, value));
        }
        Ok(auth)
    }

    fn request(&self, uri: &str) -> Result<stowage_fetch::Request, stowage_fetch::Error> {
        let mut req = stowage_fetch::Request::get(uri)?;
        for (name, value) in &self.headers {
            req = req.header(name.clone(), value.clone());
        }
        for (name, value) in &self.cookies {
            req = req.cookie(name.clone(), value.clone());
        }
        Ok(req)
    }
}

/// Sends the task's headers and cookies with key requests, when the caller installed no key hook.
struct AuthKeys(Arc<Mutex<Auth>>);

impl KeyHook for AuthKeys {
    fn resolve<'a>(&'a self, uri: &'a str) -> KeyHookFuture<'a> {
        let action = if uri.starts_with("data:") {
            KeyAction::Default
        } else {
            match lock(&self.0).request(uri) {
                Ok(req) => KeyAction::Fetch(Box::new(req)),
                Err(_) => KeyAction::Default,
            }
        };
        Box::pin(async move { Ok(action) })
    }
}

/// Runs a task to its end and publishes the ending.
pub(crate) async fn run(
    session: Arc<SessionInner>,
    task: Arc<TaskShared>,
    source: Source,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let ending = run_task(&session, &task, source, &mut control).await;
    let state = match &ending {
        Ending::Finished { complete, .. } => TaskState::Finished { complete: *complete },
        Ending::Failed(e) => {
            task.emit(&session, TaskEvent::Failed(Arc::clone(e)));
            TaskState::Failed
        }
        Ending::Cancelled => TaskState::Cancelled,
        Ending::Closed => TaskState::Suspended,
    };
    task.state.send_replace(state);
    task.ending.send_replace(Some(ending));
}

enum Wait {
    Go,
    End(Ending),
}

/// Waits for a resume (a new task starts suspended). A cancel before any start removes the bundle if asked.
async fn wait_for_resume(
    session: &SessionInner,
    task: &TaskShared,
    control: &mut mpsc::UnboundedReceiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Wait {
    loop {
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Resume) => return Wait::Go,
                Some(Control::Suspend | Control::Augment(..)) => {}
                Some(Control::Cancel(mode)) => {
                    if mode == CancelMode::RemovePartial {
                        remove_bundle(session, &task.asset).await;
                    }
                    return Wait::End(Ending::Cancelled);
                }
                None => return Wait::End(Ending::Closed),
            },
            _ = shutdown.changed() => return Wait::End(Ending::Closed),
        }
    }
}

async fn remove_bundle(session: &SessionInner, asset: &str) {
    let store = session.store.clone();
    let asset = asset.to_owned();
    let _ = tokio::task::spawn_blocking(move || store.open_bundle(&asset).and_then(Bundle::delete)).await;
}

async fn run_task(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    source: Source,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Ending {
    let mut shutdown = session.shutdown.clone();
    loop {
        task.state.send_replace(TaskState::Suspended);
        if let Wait::End(ending) = wait_for_resume(session, task, control, &mut shutdown).await {
            return ending;
        }
        task.state.send_replace(TaskState::Waiting);
        let mut suspended = false;
        let permit = loop {
            tokio::select! {
                p = session.task_slots.acquire() => match p {
                    Ok(p) => break Some(p),
                    Err(_) => return Ending::Closed,
                },
                c = control.recv() => match c {
                    // A resume while waiting keeps waiting; an augment before the start has nothing to add to.
                    Some(Control::Resume | Control::Augment(..)) => {}
                    Some(Control::Suspend) => {
                        suspended = true;
                        break None;
                    }
                    Some(Control::Cancel(mode)) => {
                        if mode == CancelMode::RemovePartial {
                            remove_bundle(session, &task.asset).await;
                        }
                        return Ending::Cancelled;
                    }
                    None => return Ending::Closed,
                },
                _ = shutdown.changed() => return Ending::Closed,
            }
        };
        let Some(permit) = permit.filter(|_| !suspended) else { continue };
        task.state.send_replace(TaskState::Running);
        let auth = match Auth::new(&session.config.headers, &session.config.cookies) {
            Ok(a) => Arc::new(Mutex::new(a)),
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        let loader = {
            let hook: Arc<dyn KeyHook> = match &session.config.key_hook {
                Some(h) => Arc::clone(h),
                None => Arc::new(AuthKeys(Arc::clone(&auth))),
            };
            // One try per load: a refused key goes to the refresh hook at once (rather than being asked
            // again with a signature known to have expired), and a lost key (404) is retried by the
            // engine under the task's retry policy, like any other job.
            let config = KeyConfig::default().attempts(1);
            Arc::new(KeyLoader::new(session.client.clone()).with_config(config).with_hook(hook))
        };
        let mut preparing = Box::pin(prepare(session, task, &source, &auth, &loader));
        let mut suspend_after = false;
        let prepared = loop {
            tokio::select! {
                p = preparing.as_mut() => break p,
                c = control.recv() => match c {
                    Some(Control::Cancel(mode)) => {
                        if mode == CancelMode::RemovePartial {
                            remove_bundle(session, &task.asset).await;
                        }
                        return Ending::Cancelled;
                    }
                    // A suspend while the playlists load takes effect once the bundle is open.
                    Some(Control::Suspend) => suspend_after = true,
                    Some(Control::Resume) => suspend_after = false,
                    Some(Control::Augment(..)) => {}
                    None => return Ending::Closed,
                },
                _ = shutdown.changed() => return Ending::Closed,
            }
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        drop(preparing);
        let mut runner = match Runner::new(session, task, prepared, auth, loader, Some(permit)) {
            Ok(r) => r,
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        return runner.run(control, &mut shutdown, suspend_after).await;
    }
}

/// Records the segments the source marks `EXT-X-GAP` as gaps: nobody can serve them, so they are never
/// fetched, and the bundle says they are missing.
async fn record_source_gaps(path: &std::path::Path, bundle: &Bundle, jobs: &[Job]) -> Result<(), Error> {
    let declared: Vec<SegmentId> =
        jobs.iter().filter(|j| j.source_gap).flat_map(|j| j.ids.iter().cloned()).collect();
    if declared.is_empty() {
        return Ok(());
    }
    let b = bundle.clone();
    blocking(path, move || {
        for id in &declared {
            if !b.is_finished(id) {
                b.record_gap(id, "marked EXT-X-GAP in the source playlist")?;
            }
        }
        Ok(())
    })
    .await
}

/// Takes the headers and cookies of a refresh.
fn apply_auth(auth: &Mutex<Auth>, answer: &Refresh) -> Result<(), Error> {
    let mut auth = lock(auth);
    if let Some(headers) = &answer.headers {
        auth.headers = Auth::new(headers, &[])?.headers;
    }
    if let Some(cookies) = &answer.cookies {
        auth.cookies.clone_from(cookies);
    }
    Ok(())
}

/// What preparing a task gives: the bundle, the renditions and their jobs.
struct Prepared {
    /// The configuration of a new task; `None` for a restored one.
    config: Option<DownloadConfiguration>,
    bundle: Bundle,
    wanted: Vec<Wanted>,
    jobs: Vec<Job>,
    integrity: IntegrityPolicy,
    key_policy: KeyPolicy,
    master: bool,
}

fn fetch_error(uri: &str, e: &stowage_fetch::Error) -> Error {
    Error::Fetch { uri: e.uri().unwrap_or(uri).to_owned(), status: e.status(), message: e.to_string() }
}

fn bundle_error(path: &std::path::Path, e: &stowage_bundle::Error) -> Error {
    Error::Bundle {
        path: e.path().map_or_else(|| path.to_path_buf(), std::path::Path::to_path_buf),
        message: e.to_string(),
    }
}

/// Fetches a playlist as text; returns it with the final URL (after redirects).
async fn fetch_text(
    session: &SessionInner,
    auth: &Mutex<Auth>,
    url: &str,
) -> Result<(String, String), Error> {
    let req = lock(auth).request(url).map_err(|e| fetch_error(url, &e))?.max_size(MAX_PLAYLIST);
    let response = session.client.get(req).await.map_err(|e| fetch_error(url, &e))?;
    let final_url = response.uri().to_owned();
    let bytes = response.bytes().await.map_err(|e| fetch_error(url, &e))?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::Playlist { uri: final_url.clone(), message: "not UTF-8 text".to_owned() })?;
    Ok((text, final_url))
}

async fn blocking<T: Send + 'static>(
    path: &std::path::Path,
    f: impl FnOnce() -> stowage_bundle::Result<T> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| bundle_error(path, &e)),
        Err(e) => {
            Err(Error::Bundle { path: path.to_path_buf(), message: format!("bundle thread failed: {e}") })
        }
    }
}

/// Fetches and reads every wanted media playlist, concurrently.
async fn build_all(
    session: &Arc<SessionInner>,
    auth: &Arc<Mutex<Auth>>,
    wanted: &[Wanted],
    first: usize,
    key_policy: KeyPolicy,
) -> Result<Vec<Built>, Error> {
    let mut set = tokio::task::JoinSet::new();
    for (i, w) in wanted.iter().enumerate() {
        let (session, auth, w) = (Arc::clone(session), Arc::clone(auth), w.clone());
        set.spawn(async move {
            let (text, final_url) = fetch_text(&session, &auth, &w.url).await?;
            if detect(text.as_bytes()) == Some(PlaylistKind::Master) {
                return Err(Error::Playlist {
                    uri: final_url,
                    message: "a master playlist where a media playlist was expected".to_owned(),
                });
            }
            build_rendition(&w, first + i, &text, &final_url, key_policy).map(|b| (i, b))
        });
    }
    let mut built: Vec<Option<Built>> = (0..wanted.len()).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, b) =
            r.map_err(|e| Error::Fetch { uri: String::new(), status: None, message: e.to_string() })??;
        built[i] = Some(b);
    }
    Ok(built.into_iter().map(|b| b.expect("every playlist was built")).collect())
}

async fn prepare(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    source: &Source,
    auth: &Arc<Mutex<Auth>>,
    loader: &Arc<KeyLoader>,
) -> Result<Prepared, Error> {
    let url = lock(&task.url).clone();
    let path = task.bundle_path.clone();
    let store = session.store.clone();
    let asset = task.asset.clone();
    let existing = blocking(&path, move || match store.open_bundle(&asset) {
        Ok(b) => Ok(Some(b)),
        Err(stowage_bundle::Error::NoSuchBundle { .. }) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    let (text, final_url) = match fetch_text(session, auth, &url).await {
        // The playlist URL itself may have expired (a restore days later): ask the refresh hook once.
        Err(Error::Fetch { status: Some(status @ (401 | 403 | 410)), .. })
            if session.config.refresh.is_some() =>
        {
            let hook = session.config.refresh.clone().expect("checked");
            let request = RefreshRequest {
                asset: task.asset.clone(),
                url: url.clone(),
                refused_uri: url.clone(),
                status,
            };
            let refreshed = call_refresh_hook(hook, request, session.config.refresh_timeout)
                .await?
                .ok_or_else(|| Error::Fetch {
                    uri: url.clone(),
                    status: Some(status),
                    message: format!(
                        "the playlist URL was refused with HTTP {status} and no fresh one was given"
                    ),
                })?;
            apply_auth(auth, &refreshed)?;
            let fresh = refreshed.url.unwrap_or_else(|| url.clone());
            *lock(&task.url) = fresh.clone();
            fetch_text(session, auth, &fresh).await?
        }
        other => other?,
    };
    let master = match detect(text.as_bytes()) {
        Some(PlaylistKind::Master) => true,
        Some(PlaylistKind::Media) => false,
        _ => {
            return Err(Error::Playlist {
                uri: final_url,
                message: "neither a master nor a media playlist".to_owned(),
            });
        }
    };
    let manifest = existing.as_ref().map(Bundle::manifest);
    let parsed = if master {
        let parsed = MasterPlaylist::parse_with(&text, &ParserOptions::lenient())
            .map_err(|e| Error::Playlist { uri: final_url.clone(), message: e.to_string() })?;
        Some(parsed.playlist)
    } else {
        None
    };
    let mut wanted = match &manifest {
        Some(m) => wanted_from_manifest(m, &final_url, master)?,
        None => Vec::new(),
    };
    // The master playlist read now may sign its URIs anew: the renditions of the bundle are found in it
    // by identity, not by the URIs written when the bundle was made.
    if let Some(master) = &parsed {
        rebind_to_master(&mut wanted, master, &final_url)?;
    }
    let (key_policy, integrity, storage, title) = match (source, &manifest) {
        // A bundle keeps the key policy it was made with: mixing clear and encrypted segments in one
        // rendition would make its local playlist wrong.
        (Source::New(config), Some(m)) => {
            (task_key_policy(m.key_policy), config.integrity, None, config.title.clone())
        }
        (Source::New(config), None) => {
            (config.keys, config.integrity, Some(config.storage), config.title.clone())
        }
        (Source::Restore, Some(m)) => (
            task_key_policy(m.key_policy),
            match m.integrity {
                stowage_bundle::IntegrityPolicy::Tolerant => IntegrityPolicy::Tolerant,
                _ => IntegrityPolicy::Strict,
            },
            None,
            None,
        ),
        (Source::Restore, None) => {
            return Err(Error::Bundle { path, message: "the bundle to restore is gone".to_owned() });
        }
    };
    if let Source::New(config) = source {
        if let Some(master) = &parsed {
            let selection = resolve(config, master)?;
            task.emit(session, TaskEvent::MediaSelectionResolved(selection.clone()));
            let mut taken: Vec<RenditionId> = wanted.iter().map(|w| w.id.clone()).collect();
            for w in wanted_from_selection(&selection, &final_url, &mut taken)? {
                if !wanted.iter().any(|have| have.master_uri == w.master_uri) {
                    wanted.push(w);
                }
            }
        } else if wanted.is_empty() {
            wanted.push(Wanted {
                id: RenditionId::new("media").expect("a valid name"),
                kind: RenditionKind::Video,
                primary: true,
                url: final_url.clone(),
                master_uri: None,
                name: None,
                language: None,
                group_id: None,
                characteristics: None,
                bandwidth: None,
                estimate: None,
                codecs: None,
                resolution: None,
            });
        }
    }
    let built = build_all(session, auth, &wanted, 0, key_policy).await?;

    let known = manifest.as_ref().map(|m| m.renditions.len()).unwrap_or(0);
    let bundle = match existing {
        Some(bundle) => {
            let added: Vec<_> = built[known..].iter().map(|b| b.plan.clone()).collect();
            if !added.is_empty() {
                let b = bundle.clone();
                blocking(&path, move || b.add_renditions(added)).await?;
            }
            bundle
        }
        None => {
            let mut info = stowage_bundle::AssetInfo::new(task.asset.clone()).url(url.clone());
            if let Some(title) = title {
                info = info.title(title);
            }
            let mut plan = stowage_bundle::BundlePlan::new(info)
                .key_policy(bundle_key_policy(key_policy))
                .integrity(match integrity {
                    IntegrityPolicy::Tolerant => stowage_bundle::IntegrityPolicy::Tolerant,
                    _ => stowage_bundle::IntegrityPolicy::Strict,
                });
            if let Some(storage) = storage {
                let mut policy = stowage_bundle::StoragePolicy::default();
                if let Some(at) = storage.expires {
                    policy = policy.expires(at);
                }
                if storage.priority == Priority::Important {
                    policy = policy.priority(stowage_bundle::Priority::Important);
                }
                plan = plan.policy(policy);
            }
            if master {
                plan = plan.master_playlist(text.clone());
            }
            for b in &built {
                plan = plan.rendition(b.plan.clone());
            }
            let store = session.store.clone();
            blocking(&path, move || store.create_bundle(plan)).await?
        }
    };
    task.emit(session, TaskEvent::WillDownloadTo { path: bundle.dir().to_path_buf() });

    if key_policy == KeyPolicy::KeepEncrypted {
        // Every key is stored before any segment: they are loaded side by side (one request each, since
        // the loader shares a key among the renditions that use it), within the per-host limit.
        let slots = Arc::new(tokio::sync::Semaphore::new(session.config.max_connections_per_host.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for b in &built {
            for (index, uri) in &b.keys {
                let (session, loader, slots) = (Arc::clone(session), Arc::clone(loader), Arc::clone(&slots));
                let (bundle, path, id, index, uri) =
                    (bundle.clone(), path.clone(), b.plan.id.clone(), *index, uri.clone());
                set.spawn(async move {
                    let key = {
                        let _slot = slots.acquire().await;
                        load_kept_key(&session, &loader, &uri).await?
                    };
                    blocking(&path, move || bundle.write_key(&id, index, &key)).await
                });
            }
        }
        while let Some(stored) = set.join_next().await {
            stored.map_err(|e| Error::Bundle {
                path: path.clone(),
                message: format!("key task failed: {e}"),
            })??;
        }
    }
    let jobs = merge_inits(built.into_iter().flat_map(|b| b.jobs).collect());
    record_source_gaps(&path, &bundle, &jobs).await?;
    let config = match source {
        Source::New(config) => Some((**config).clone()),
        Source::Restore => None,
    };
    Ok(Prepared { config, bundle, wanted, jobs, integrity, key_policy, master })
}

/// Asks the refresh hook, on a task of its own so that a panic in it is caught: a panicking hook fails the
/// task with [`Error::RefreshHookPanicked`] instead of leaving it hanging. A hook that does not answer
/// within `timeout` counts as having no fresh URLs; its task is aborted then, and also when the caller
/// stops waiting (the task was suspended or cancelled meanwhile).
async fn call_refresh_hook(
    hook: Arc<dyn RefreshHook>,
    request: RefreshRequest,
    timeout: Duration,
) -> Result<Option<Refresh>, Error> {
    /// Aborts the hook's task when dropped, whether it answered, timed out or was abandoned.
    struct AbortOnDrop(AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let refused_uri = request.refused_uri.clone();
    let mut handle = tokio::spawn(async move { hook.refresh(&request).await });
    let _abort = AbortOnDrop(handle.abort_handle());
    let Ok(joined) = tokio::time::timeout(timeout, &mut handle).await else {
        return Ok(None);
    };
    match joined {
        Ok(answer) => Ok(answer),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
                (Some(text), _) => (*text).to_owned(),
                (_, Some(text)) => text.clone(),
                _ => "no message".to_owned(),
            };
            Err(Error::RefreshHookPanicked { refused_uri, message })
        }
        // The runtime is shutting down: no fresh URLs.
        Err(_) => Ok(None),
    }
}

/// Loads a key to keep in the bundle. CDNs lose keys now and then (404): such a key is asked for again
/// under the task's retry policy before the task fails.
async fn load_kept_key(session: &SessionInner, loader: &KeyLoader, uri: &str) -> Result<[u8; 16], Error> {
    let retry = &session.config.retry;
    let mut failures = 0;
    loop {
        match loader.load(uri).await {
            Ok(key) => return Ok(key),
            Err(e) => {
                failures += 1;
                let lost =
                    matches!(classify(&e, true), Failure::Retryable { .. } | Failure::Throttled { .. });
                if !lost || failures >= retry.max_attempts {
                    return Err(fetch_error(uri, &e));
                }
                tokio::time::sleep(retry.backoff_ceiling(failures)).await;
            }
        }
    }
}

/// A message from a fetch to its writer thread.
enum Piece {
    Chunk(Bytes),
    End,
}

type Report = (JobId, u32, Outcome);

/// Classifies a fetch error into the engine's failure kinds.
fn classify(e: &stowage_fetch::Error, key: bool) -> Failure {
    use stowage_fetch::Error as E;
    match e {
        E::Status { status, .. } => match *status {
            401 | 403 | 410 => Failure::NeedsRefresh { status: *status },
            429 | 503 => Failure::Throttled { status: *status, retry_after: e.retry_after() },
            // CDNs answer 404 for keys now and then; one lost key would fail the asset.
            404 if key => Failure::retryable(e.to_string()),
            s if s >= 500 || s == 408 => {
                Failure::Retryable { retry_after: e.retry_after(), detail: e.to_string() }
            }
            _ => Failure::fatal(e.to_string()),
        },
        E::Timeout { kind: TimeoutKind::Stall, .. } => Failure::Stalled,
        E::ResourceChanged { .. } => Failure::retryable(e.to_string()),
        _ if e.is_transient() => Failure::retryable(e.to_string()),
        _ => Failure::fatal(e.to_string()),
    }
}

/// The failure a retry of the fetch layer reports, for the "segment retried" event.
fn retry_failure(cause: &RetryCause, delay: Duration) -> Failure {
    match cause {
        RetryCause::Status(s @ (429 | 503)) => Failure::Throttled { status: *s, retry_after: Some(delay) },
        RetryCause::Timeout(TimeoutKind::Stall) => Failure::Stalled,
        other => Failure::Retryable { retry_after: None, detail: other.to_string() },
    }
}

/// What a spawned fetch needs.
#[derive(Clone)]
struct FetchCtx {
    session: Arc<SessionInner>,
    bundle: Bundle,
    loader: Arc<KeyLoader>,
    auth: Arc<Mutex<Auth>>,
    reports: mpsc::UnboundedSender<Report>,
    retries: mpsc::UnboundedSender<(JobId, RetryEvent)>,
    writers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// The URI each job's latest refused attempt asked for (a segment's or its key's), with the binding
    /// generation it came from: the refresh hook is told the URI that was refused, and a refusal of a URI
    /// an earlier refresh already replaced asks for no refresh of its own.
    refused: Arc<Mutex<HashMap<JobId, (String, u64)>>>,
    /// The jobs with the URIs they are bound to now.
    bound: Arc<RwLock<Bound>>,
    /// Whether fresh URLs are being obtained: fetches wait for the fresh binding instead of sending
    /// requests with URLs about to be replaced.
    refreshing: Arc<watch::Sender<bool>>,
}

/// The next request for a task: one deferred while the refresh hook ran, else the next from its handle.
async fn next_control(
    deferred: &mut std::collections::VecDeque<Control>,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Option<Control> {
    match deferred.pop_front() {
        Some(c) => Some(c),
        None => control.recv().await,
    }
}

/// Holds [`FetchCtx::refreshing`] up while fresh URLs are being obtained, and lowers it when dropped.
struct Refreshing(Arc<watch::Sender<bool>>);

impl Refreshing {
    fn raise(flag: &Arc<watch::Sender<bool>>) -> Self {
        flag.send_replace(true);
        Self(Arc::clone(flag))
    }
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// The jobs and the URIs they are fetched from, as the latest refresh bound them.
struct Bound {
    /// Refreshes applied so far.
    generation: u64,
    jobs: Vec<Job>,
}

fn read(bound: &RwLock<Bound>) -> RwLockReadGuard<'_, Bound> {
    bound.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(bound: &RwLock<Bound>) -> RwLockWriteGuard<'_, Bound> {
    bound.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Unregisters a request from the retry callback, also when the fetch is aborted.
struct Listening<'a> {
    session: &'a SessionInner,
    uri: String,
    token: u64,
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        self.session.unlisten(&self.uri, self.token);
    }
}

async fn fetch_job(ctx: FetchCtx, job: JobId, attempt: u32) {
    // No request leaves with URLs that are being replaced: wait for a refresh under way to end, before
    // and after waiting for a request slot (a refresh may begin meanwhile).
    let mut refreshing = ctx.refreshing.subscribe();
    let _ = refreshing.wait_for(|r| !r).await;
    // A segment's key comes before a request slot is taken: its key job has normally loaded it already,
    // or is loading it, and a slot held while waiting for it would be a slot idle. A key that cannot be
    // had fails the attempt here, without asking for the segment.
    let early = {
        let bound = read(&ctx.bound);
        let spec = &bound.jobs[job.0 as usize];
        match &spec.crypto {
            Crypto::Aes128 { key_uri, .. } if !spec.key => Some((key_uri.clone(), bound.generation)),
            _ => None,
        }
    };
    if let Some((key_uri, generation)) = early
        && let Err(e) = ctx.loader.load(&key_uri).await
    {
        let failure = note_refusal(&ctx, job, generation, &key_uri, classify(&e, true));
        let _ = ctx.reports.send((job, attempt, Outcome::Failure(failure)));
        return;
    }
    let permit = ctx.session.request_slots.acquire().await;
    let _ = refreshing.wait_for(|r| !r).await;
    let (spec, generation) = {
        let bound = read(&ctx.bound);
        (bound.jobs[job.0 as usize].clone(), bound.generation)
    };
    let result = if spec.key {
        fetch_key(&ctx, job, attempt, &spec, generation).await
    } else {
        fetch_and_store(&ctx, job, attempt, &spec, generation).await
    };
    drop(permit);
    if let Err(failure) = result {
        let _ = ctx.reports.send((job, attempt, Outcome::Failure(failure)));
    }
}

/// Notes the URI a refused attempt asked for, with the binding generation it came from.
fn note_refusal(ctx: &FetchCtx, job: JobId, generation: u64, uri: &str, failure: Failure) -> Failure {
    if matches!(failure, Failure::NeedsRefresh { .. }) {
        lock(&ctx.refused).insert(job, (uri.to_owned(), generation));
    }
    failure
}

/// A key job: loads the key into the task's key loader, where the segments that need it find it (or,
/// when they start while it is on its way, wait for this one request instead of making their own).
async fn fetch_key(
    ctx: &FetchCtx,
    job: JobId,
    attempt: u32,
    spec: &Job,
    generation: u64,
) -> Result<(), Failure> {
    let key = ctx.loader.load(&spec.uri).await;
    let key = key.map_err(|e| note_refusal(ctx, job, generation, &spec.uri, classify(&e, true)))?;
    let _ = ctx.reports.send((job, attempt, Outcome::success(key.len() as u64)));
    Ok(())
}

/// Fetches a segment or an initialization section, decrypting it as it arrives, and stores it.
///
/// Its key comes first, from the loader (where [`fetch_job`] has had it loaded before taking a request
/// slot; a refresh since may have bound a fresh key URI, loaded here). A segment is never asked for
/// before its key is in hand, so that a key refused or lost does not cost its segment's bytes.
async fn fetch_and_store(
    ctx: &FetchCtx,
    job: JobId,
    attempt: u32,
    spec: &Job,
    generation: u64,
) -> Result<(), Failure> {
    let refused = |uri: &str, failure: Failure| note_refusal(ctx, job, generation, uri, failure);
    let key = match &spec.crypto {
        Crypto::AsIs => None,
        Crypto::Aes128 { key_uri, iv } => match ctx.loader.load(key_uri).await {
            Ok(key) => Some((key, *iv)),
            Err(e) => return Err(refused(key_uri, classify(&e, true))),
        },
    };
    let mut req = lock(&ctx.auth).request(&spec.uri).map_err(|e| Failure::fatal(e.to_string()))?;
    if let Some(r) = spec.range {
        req = req.range(stowage_fetch::ByteRange::new(r.offset, r.length));
    }
    if spec.init {
        req = req.max_size(MAX_INIT);
    }
    let _listening = Listening {
        session: &ctx.session,
        uri: spec.uri.clone(),
        token: ctx.session.listen(&spec.uri, job, &ctx.retries),
    };
    let response = ctx.session.client.get(req).await.map_err(|e| refused(&spec.uri, classify(&e, false)))?;
    let mut body = response.into_body();
    if spec.init {
        // Initialization sections are small and may be stored under several identities: read whole.
        let mut data = Vec::new();
        while let Some(chunk) = body.chunk().await.map_err(|e| classify(&e, false))? {
            data.extend_from_slice(&chunk);
        }
        let (bundle, ids, reports) = (ctx.bundle.clone(), spec.ids.clone(), ctx.reports.clone());
        let handle = tokio::task::spawn_blocking(move || {
            let outcome = match store_init(&bundle, &ids, &data, key) {
                Ok(bytes) => Outcome::success(bytes),
                Err(f) => Outcome::Failure(f),
            };
            let _ = reports.send((job, attempt, outcome));
        });
        lock(&ctx.writers).push(handle);
        return Ok(());
    }
    let (tx, rx) = mpsc::channel::<Piece>(CHUNKS_IN_FLIGHT);
    let (bundle, id, reports) = (ctx.bundle.clone(), spec.ids[0].clone(), ctx.reports.clone());
    let handle = tokio::task::spawn_blocking(move || {
        if let Some(outcome) = write_segment(&bundle, &id, key, rx) {
            let _ = reports.send((job, attempt, outcome));
        }
    });
    lock(&ctx.writers).push(handle);
    while let Some(chunk) = body.chunk().await.map_err(|e| classify(&e, false))? {
        if tx.send(Piece::Chunk(chunk)).await.is_err() {
            // The writer failed and reports it.
            return Ok(());
        }
    }
    let _ = tx.send(Piece::End).await;
    Ok(())
}

fn store_failure(e: &stowage_bundle::Error) -> Failure {
    Failure::fatal(format!("cannot store: {e}"))
}

fn store_init(
    bundle: &Bundle,
    ids: &[SegmentId],
    data: &[u8],
    key: Option<([u8; 16], [u8; 16])>,
) -> Result<u64, Failure> {
    let clear;
    let bytes = match key {
        Some((key, iv)) => {
            clear = decrypt(&key, &iv, data).map_err(|e| Failure::fatal(format!("cannot decrypt: {e}")))?;
            &clear[..]
        }
        None => data,
    };
    let mut stored = 0;
    for id in ids {
        if bundle.is_finished(id) {
            continue;
        }
        let mut writer = bundle.segment_writer(id).map_err(|e| store_failure(&e))?;
        writer.write(bytes).map_err(|e| store_failure(&e))?;
        stored += writer.finish().map_err(|e| store_failure(&e))?.length;
    }
    Ok(stored)
}

/// Decrypts and writes a segment as its chunks arrive. `None` when the fetch was abandoned before its end
/// (the partial write is discarded and nothing is reported: the fetch reports its own failure).
fn write_segment(
    bundle: &Bundle,
    id: &SegmentId,
    key: Option<([u8; 16], [u8; 16])>,
    mut rx: mpsc::Receiver<Piece>,
) -> Option<Outcome> {
    let mut writer = match bundle.segment_writer(id) {
        Ok(w) => w,
        // Stored by an earlier start whose report was overtaken by a suspend: it counts as done.
        Err(stowage_bundle::Error::AlreadyFinished { .. }) => return Some(Outcome::success(0)),
        Err(e) => return Some(Outcome::Failure(store_failure(&e))),
    };
    let mut decryptor = match key {
        Some((key, iv)) => match Decryptor::aes128(&key, &iv) {
            Ok(d) => d,
            Err(e) => return Some(Outcome::Failure(Failure::fatal(format!("cannot decrypt: {e}")))),
        },
        None => Decryptor::keep_ciphertext(),
    };
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        match rx.blocking_recv() {
            Some(Piece::Chunk(chunk)) => {
                decryptor.update(&chunk, &mut out);
                if let Err(e) = writer.write(&out) {
                    return Some(Outcome::Failure(store_failure(&e)));
                }
                out.clear();
            }
            Some(Piece::End) => break,
            None => return None,
        }
    }
    if let Err(e) = decryptor.finish(&mut out) {
        return Some(Outcome::Failure(Failure::fatal(format!("cannot decrypt segment: {e}"))));
    }
    if let Err(e) = writer.write(&out) {
        return Some(Outcome::Failure(store_failure(&e)));
    }
    Some(match writer.finish() {
        Ok(f) => Outcome::success(f.length),
        Err(e) => Outcome::Failure(store_failure(&e)),
    })
}

/// The engine loop of one task.
struct Runner<'a> {
    session: &'a Arc<SessionInner>,
    task: &'a Arc<TaskShared>,
    engine: Engine,
    wanted: Vec<Wanted>,
    key_policy: KeyPolicy,
    master: bool,
    download_config: Option<DownloadConfiguration>,
    ctx: FetchCtx,
    reports: mpsc::UnboundedReceiver<Report>,
    retries: mpsc::UnboundedReceiver<(JobId, RetryEvent)>,
    inflight: HashMap<JobId, (u32, AbortHandle)>,
    /// The key jobs by the key URI they are bound to now.
    key_jobs: HashMap<String, JobId>,
    /// Every fetch task not yet known to be over, finished or not: each holds a clone of the bundle, and
    /// so its lock, until it is dropped, so the task's ending waits for all of them.
    fetches: Vec<JoinHandle<()>>,
    permit: Option<SemaphorePermit<'a>>,
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.finish()
}

impl<'a> Runner<'a> {
    fn new(
        session: &'a Arc<SessionInner>,
        task: &'a Arc<TaskShared>,
        prepared: Prepared,
        auth: Arc<Mutex<Auth>>,
        loader: Arc<KeyLoader>,
        permit: Option<SemaphorePermit<'a>>,
    ) -> Result<Self, Error> {
        let Prepared { config: download_config, bundle, wanted, mut jobs, integrity, key_policy, master } =
            prepared;
        // Keys get jobs of their own, fetched ahead of the segments still to fetch that need them.
        let keys = key_jobs(&jobs, |i| !jobs[i].ids.iter().all(|id| bundle.is_finished(id)));
        jobs.extend(keys);
        // Per-segment lengths of a resumed bundle are not kept apart from its journal; each rendition's
        // stored bytes are spread over its finished segments so that totals are exact.
        let progress = bundle.progress();
        let mut per_rendition: Vec<(u64, usize)> = wanted
            .iter()
            .map(|w| {
                progress
                    .renditions
                    .iter()
                    .find(|r| r.rendition == w.id)
                    .map_or((0, 0), |r| (r.bytes_finished, r.segments_finished))
            })
            .collect();
        let mut plan = Plan::new();
        for w in &wanted {
            plan.add_rendition(match w.estimate {
                Some(b) => RenditionSpec::new().bandwidth(b),
                None => RenditionSpec::new(),
            });
        }
        for (i, job) in jobs.iter().enumerate() {
            if job.source_gap {
                continue;
            }
            let mut spec = job_spec(JobId(i as u64), job);
            if !job.key && job.ids.iter().all(|id| bundle.is_finished(id)) {
                let (bytes, count) = &mut per_rendition[job.rendition];
                let share = if *count > 0 { *bytes / *count as u64 } else { 0 };
                let share = if *count <= job.ids.len() { *bytes } else { share * job.ids.len() as u64 };
                *bytes -= share.min(*bytes);
                *count = count.saturating_sub(job.ids.len());
                spec = spec.finished(share);
            }
            plan.add_job(spec);
        }
        // The engine counts a job in flight until its bytes are durable, the session's request slots
        // only while it is on the network. Letting the engine hand out twice as many jobs as there are
        // slots overlaps the sync of one segment with the fetch of the next, so that a latency-bound
        // download is not also bound by the disk; requests in flight stay within the slots.
        let limits = ConcurrencyLimits::default()
            .max_total(session.config.max_connections.saturating_mul(2))
            .max_per_host(session.config.max_connections_per_host.saturating_mul(2))
            .adaptive(session.config.adaptive)
            .initial(4.min(session.config.max_connections));
        let config = EngineConfig::default()
            .concurrency(limits)
            .retry(session.config.retry.clone())
            .integrity(integrity)
            .seed(seed());
        let engine = Engine::new(config, plan)?;
        *lock(&task.renditions) = wanted.iter().map(|w| w.id.to_string()).collect();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (retries_tx, retries) = mpsc::unbounded_channel();
        let ctx = FetchCtx {
            session: Arc::clone(session),
            bundle,
            loader,
            auth,
            reports: reports_tx,
            retries: retries_tx,
            writers: Arc::new(Mutex::new(Vec::new())),
            refused: Arc::new(Mutex::new(HashMap::new())),
            bound: Arc::new(RwLock::new(Bound { generation: 0, jobs })),
            refreshing: Arc::new(watch::Sender::new(false)),
        };
        let mut runner = Self {
            session,
            task,
            engine,
            wanted,
            key_policy,
            master,
            download_config,
            ctx,
            reports,
            retries,
            inflight: HashMap::new(),
            key_jobs: HashMap::new(),
            fetches: Vec::new(),
            permit,
        };
        runner.index_key_jobs();
        Ok(runner)
    }

    /// Re-reads which key job fetches which key URI (after key jobs were added or re-bound).
    fn index_key_jobs(&mut self) {
        let bound = read(&self.ctx.bound);
        self.key_jobs = bound
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.key)
            .map(|(i, j)| (j.uri.clone(), JobId(i as u64)))
            .collect();
    }

    fn emit(&self, event: TaskEvent) {
        self.task.emit(self.session, event);
    }

    fn emit_progress(&self) {
        self.emit(TaskEvent::Progress(self.engine.progress()));
    }

    async fn run(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        shutdown: &mut watch::Receiver<bool>,
        suspended: bool,
    ) -> Ending {
        self.emit_progress();
        if suspended {
            self.permit = None;
            self.task.state.send_replace(TaskState::Suspended);
        } else {
            self.engine.resume(Instant::now());
        }
        let mut cancel_mode = CancelMode::KeepPartial;
        // Requests that came while the refresh hook ran, handled once it answered.
        let mut deferred = std::collections::VecDeque::new();
        loop {
            let mut refresh = None;
            while let Some(action) = self.engine.poll_action() {
                match action {
                    Action::Start { job, attempt } => self.start(job, attempt),
                    Action::Cancel { job } => {
                        if let Some((_, handle)) = self.inflight.remove(&job) {
                            handle.abort();
                        }
                    }
                    Action::GapRecorded(failure) => {
                        self.record_gap(&failure).await;
                        if let Some(event) = TaskEvent::from_action(&Action::GapRecorded(failure)) {
                            self.emit(event);
                        }
                        self.emit_progress();
                    }
                    Action::RefreshUrls { job, status } => refresh = Some((job, status)),
                    Action::Finished { complete, .. } => return self.finish(complete).await,
                    Action::Failed(failure) => return self.fail(failure).await,
                    Action::Cancelled => return self.cancelled(cancel_mode).await,
                    other => {
                        if let Some(event) = TaskEvent::from_action(&other) {
                            self.emit(event);
                        }
                    }
                }
            }
            if let Some((job, status)) = refresh {
                // The hook may take long: suspend, cancel and the session's end are honoured while it
                // runs; a resume or an augment waits for its answer.
                let interrupted = {
                    let mut refreshing = std::pin::pin!(self.refresh(job, status));
                    loop {
                        tokio::select! {
                            done = &mut refreshing => match done {
                                Ok(()) => break None,
                                Err(e) => break Some(Err(e)),
                            },
                            c = control.recv() => match c {
                                Some(Control::Resume | Control::Augment(..)) => deferred.extend(c),
                                other => break Some(Ok(other)),
                            },
                            _ = shutdown.changed() => break Some(Ok(None)),
                        }
                    }
                };
                match interrupted {
                    None => {}
                    Some(Err(e)) => return self.fail_with(e).await,
                    Some(Ok(c)) => {
                        // The refresh was dropped unanswered. Suspended, the task asks again when a
                        // refusal comes after the resume; cancelled or closed, it ends.
                        if matches!(c, Some(Control::Suspend)) {
                            self.engine.suspend();
                            self.engine.handle_refresh_abandoned(Instant::now());
                        }
                        if let Some(ending) = self.on_control(c, &mut cancel_mode).await {
                            return ending;
                        }
                    }
                }
                continue;
            }
            let deadline = self.engine.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some((job, attempt, outcome)) = self.reports.recv() => {
                    if self.inflight.get(&job).is_some_and(|(a, _)| *a == attempt) {
                        self.inflight.remove(&job);
                    }
                    let success = matches!(outcome, Outcome::Success { .. });
                    let outcome = self.superseded(job, outcome);
                    self.engine.handle_attempt_completed(Instant::now(), job, attempt, outcome);
                    if success {
                        self.emit_progress();
                        if let Some(range) = self.engine.loaded_time_range(job)
                            && !read(&self.ctx.bound).jobs[job.0 as usize].init
                        {
                            self.emit(TaskEvent::LoadedTimeRangeAdded(range));
                        }
                    }
                }
                Some((job, event)) = self.retries.recv() => {
                    let attempt = self.inflight.get(&job).map_or(1, |(a, _)| *a);
                    self.emit(TaskEvent::SegmentRetried {
                        job,
                        attempt,
                        cause: retry_failure(&event.cause, event.delay),
                        delay: event.delay,
                    });
                }
                () = sleep => self.engine.handle_timeout(Instant::now()),
                c = next_control(&mut deferred, control) => {
                    if let Some(ending) = self.on_control(c, &mut cancel_mode).await {
                        return ending;
                    }
                }
                _ = shutdown.changed() => return self.closed().await,
            }
        }
    }

    /// Carries out a request from the task's handle; `Some` when the task ends with it (the handle and
    /// the session are gone, or no task slot can be had any more).
    async fn on_control(&mut self, c: Option<Control>, cancel_mode: &mut CancelMode) -> Option<Ending> {
        match c {
            Some(Control::Resume) => {
                if self.permit.is_none() {
                    self.task.state.send_replace(TaskState::Waiting);
                    match self.session.task_slots.acquire().await {
                        Ok(p) => self.permit = Some(p),
                        Err(_) => return Some(self.closed().await),
                    }
                }
                self.task.state.send_replace(TaskState::Running);
                self.engine.resume(Instant::now());
            }
            Some(Control::Suspend) => {
                self.engine.suspend();
                self.permit = None;
                self.task.state.send_replace(TaskState::Suspended);
                self.save_playlists().await;
            }
            Some(Control::Cancel(mode)) => {
                *cancel_mode = mode;
                self.engine.cancel();
            }
            Some(Control::Augment(selections, reply)) => {
                let added = self.augment(selections).await;
                if added.is_ok() {
                    self.emit_progress();
                }
                let _ = reply.send(added);
            }
            None => return Some(self.closed().await),
        }
        None
    }

    fn start(&mut self, job: JobId, attempt: u32) {
        // Finished writer threads are forgotten as the download goes, so that a plan of a hundred thousand
        // segments does not keep a hundred thousand handles.
        {
            let mut writers = lock(&self.ctx.writers);
            if writers.len() > 64 {
                writers.retain(|h| !h.is_finished());
            }
        }
        let handle = tokio::spawn(fetch_job(self.ctx.clone(), job, attempt));
        self.inflight.insert(job, (attempt, handle.abort_handle()));
        // Finished fetches are pruned as new ones start, so the list stays as long as the jobs in flight.
        self.fetches.retain(|h| !h.is_finished());
        self.fetches.push(handle);
    }

    async fn record_gap(&self, failure: &JobFailure) {
        let ids = read(&self.ctx.bound).jobs[failure.job.0 as usize].ids.clone();
        let (bundle, reason) = (self.ctx.bundle.clone(), failure.to_string());
        let path = self.task.bundle_path.clone();
        let _ = blocking(&path, move || {
            for id in &ids {
                if !bundle.is_finished(id) {
                    bundle.record_gap(id, reason.clone())?;
                }
            }
            Ok(())
        })
        .await;
    }

    /// Stops every fetch and waits for their writer threads, so that the bundle is left consistent and
    /// its lock released once the task's handles are dropped.
    async fn stop_all(&mut self) {
        for (_, (_, handle)) in self.inflight.drain() {
            handle.abort();
        }
        for fetch in std::mem::take(&mut self.fetches) {
            let _ = fetch.await;
        }
        let writers: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.ctx.writers));
        for w in writers {
            let _ = w.await;
        }
    }

    async fn save_playlists(&self) {
        let bundle = self.ctx.bundle.clone();
        let _ = blocking(&self.task.bundle_path, move || bundle.write_playlists()).await;
    }

    async fn finish(&mut self, complete: bool) -> Ending {
        self.stop_all().await;
        let bundle = self.ctx.bundle.clone();
        let path = self.task.bundle_path.clone();
        let complete = match blocking(&path, move || bundle.mark_finished()).await {
            // Gaps the source declared are the bundle's too.
            Ok(manifest) => complete && manifest.gaps.is_empty(),
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        self.emit_progress();
        let path = self.ctx.bundle.dir().to_path_buf();
        self.emit(TaskEvent::Finished { path: path.clone(), complete });
        Ending::Finished { path, complete }
    }

    async fn fail(&mut self, failure: JobFailure) -> Ending {
        let what = read(&self.ctx.bound).jobs[failure.job.0 as usize].describe();
        self.fail_with(Error::JobFailed { what, failure }).await
    }

    async fn fail_with(&mut self, error: Error) -> Ending {
        self.stop_all().await;
        self.save_playlists().await;
        Ending::Failed(Arc::new(error))
    }

    /// A refusal of a URI that a refresh has replaced since it was sent says nothing about the fresh
    /// one: the engine retries the job with its current binding instead of asking for another refresh.
    fn superseded(&self, job: JobId, outcome: Outcome) -> Outcome {
        let Outcome::Failure(Failure::NeedsRefresh { status }) = outcome else { return outcome };
        let generation = read(&self.ctx.bound).generation;
        let mut refused = lock(&self.ctx.refused);
        match refused.get(&job) {
            Some((_, used)) if *used < generation => {
                refused.remove(&job);
                Outcome::Failure(Failure::Superseded { status })
            }
            _ => outcome,
        }
    }

    async fn cancelled(&mut self, mode: CancelMode) -> Ending {
        self.stop_all().await;
        if mode == CancelMode::RemovePartial {
            let bundle = self.ctx.bundle.clone();
            let _ = blocking(&self.task.bundle_path, move || bundle.delete()).await;
        } else {
            self.save_playlists().await;
        }
        Ending::Cancelled
    }

    async fn closed(&mut self) -> Ending {
        self.engine.suspend();
        self.stop_all().await;
        self.save_playlists().await;
        Ending::Closed
    }

    /// Adds the renditions `selections` choose (from the variant the task's configuration chooses) to the
    /// running download: their playlists are fetched, the bundle and the engine take their segments, and
    /// renditions already in the task are left as they are. Returns how many renditions were added.
    async fn augment(&mut self, selections: Vec<MediaSelection>) -> Result<usize, Error> {
        if !self.master {
            return Err(Error::InvalidConfig { reason: "media selections need a master playlist" });
        }
        let mut config = self
            .download_config
            .clone()
            .unwrap_or_else(|| DownloadConfiguration::new(ContentConfiguration::new()));
        for selection in selections {
            config.primary = config.primary.media_selection(selection);
        }
        let url = lock(&self.task.url).clone();
        let (text, final_url) = fetch_text(self.session, &self.ctx.auth, &url).await?;
        let parsed = MasterPlaylist::parse_with(&text, &ParserOptions::lenient())
            .map_err(|e| Error::Playlist { uri: final_url.clone(), message: e.to_string() })?;
        let selection = resolve(&config, &parsed.playlist)?;
        let variants: Vec<&str> = selection.contents.iter().map(|c| c.variant.uri.as_str()).collect();
        let mut taken: Vec<RenditionId> = self.wanted.iter().map(|w| w.id.clone()).collect();
        let added: Vec<Wanted> = wanted_from_selection(&selection, &final_url, &mut taken)?
            .into_iter()
            .filter(|w| w.master_uri.as_deref().is_some_and(|u| !variants.contains(&u)))
            .filter(|w| !self.wanted.iter().any(|have| have.master_uri == w.master_uri))
            .collect();
        if added.is_empty() {
            return Ok(0);
        }
        self.emit(TaskEvent::MediaSelectionResolved(selection));
        let built =
            build_all(self.session, &self.ctx.auth, &added, self.wanted.len(), self.key_policy).await?;
        let plans: Vec<_> = built.iter().map(|b| b.plan.clone()).collect();
        let bundle = self.ctx.bundle.clone();
        blocking(&self.task.bundle_path, move || bundle.add_renditions(plans)).await?;
        for w in &added {
            self.engine.add_rendition(match w.estimate {
                Some(b) => RenditionSpec::new().bandwidth(b),
                None => RenditionSpec::new(),
            });
        }
        let first = read(&self.ctx.bound).jobs.len();
        let mut jobs = merge_inits(built.into_iter().flat_map(|b| b.jobs).collect());
        record_source_gaps(&self.task.bundle_path, &self.ctx.bundle, &jobs).await?;
        // Keys the task already prefetches are loaded once for all renditions: only new ones get a job.
        let keys: Vec<Job> =
            key_jobs(&jobs, |_| true).into_iter().filter(|k| !self.key_jobs.contains_key(&k.uri)).collect();
        jobs.extend(keys);
        let specs: Vec<JobSpec<'_>> = jobs
            .iter()
            .enumerate()
            .filter(|(_, job)| !job.source_gap)
            .map(|(i, job)| job_spec(JobId((first + i) as u64), job))
            .collect();
        self.engine.add_jobs(Instant::now(), specs)?;
        let count = added.len();
        write(&self.ctx.bound).jobs.extend(jobs);
        self.index_key_jobs();
        lock(&self.task.renditions).extend(added.iter().map(|w| w.id.to_string()));
        self.wanted.extend(added);
        Ok(count)
    }

    /// Asks the caller's hook for fresh URLs, headers or cookies, and re-binds pending jobs by identity.
    ///
    /// Fetches wait while this runs, so that no request leaves with a URL about to be replaced. Only a
    /// panicking hook is an error: it ends the task. A hook past the session's `refresh_timeout` counts as
    /// no answer.
    async fn refresh(&mut self, job: JobId, status: u16) -> Result<(), Error> {
        let Some(hook) = self.session.config.refresh.clone() else {
            self.engine.handle_refresh_failed(Instant::now());
            return Ok(());
        };
        let refused = lock(&self.ctx.refused).remove(&job).map(|(uri, _)| uri);
        let refused_uri = refused.unwrap_or_else(|| read(&self.ctx.bound).jobs[job.0 as usize].uri.clone());
        let request = RefreshRequest {
            asset: self.task.asset.clone(),
            url: lock(&self.task.url).clone(),
            refused_uri,
            status,
        };
        // Fetches wait while this flag is up; the guard lowers it also when this future is dropped
        // (the task was suspended or cancelled while the hook ran).
        let refreshing = Refreshing::raise(&self.ctx.refreshing);
        let applied = match call_refresh_hook(hook, request, self.session.config.refresh_timeout).await? {
            Some(answer) => self.apply_refresh(answer).await.is_ok(),
            None => false,
        };
        drop(refreshing);
        if applied {
            self.engine.handle_refreshed(Instant::now());
        } else {
            self.engine.handle_refresh_failed(Instant::now());
        }
        Ok(())
    }

    /// Takes a refresh's answer: headers and cookies, and with a fresh playlist URL, the playlists read
    /// again and every job re-bound by identity to its fresh URI (and key URI). A fresh master playlist
    /// is resolved to the same renditions: variants by their attributes, renditions by type, group, name
    /// and language, so that URIs signed anew in the master are the ones used.
    async fn apply_refresh(&mut self, answer: Refresh) -> Result<(), Error> {
        apply_auth(&self.ctx.auth, &answer)?;
        let Some(url) = answer.url else {
            write(&self.ctx.bound).generation += 1;
            return Ok(());
        };
        let (text, final_url) = fetch_text(self.session, &self.ctx.auth, &url).await?;
        let master = detect(text.as_bytes()) == Some(PlaylistKind::Master);
        if master != self.master {
            return Err(Error::Playlist {
                uri: final_url,
                message: "the fresh playlist is not of the same kind as the first".to_owned(),
            });
        }
        let mut wanted = self.wanted.clone();
        if master {
            let parsed = MasterPlaylist::parse_with(&text, &ParserOptions::lenient())
                .map_err(|e| Error::Playlist { uri: final_url.clone(), message: e.to_string() })?;
            rebind_to_master(&mut wanted, &parsed.playlist, &final_url)?;
        } else {
            for w in &mut wanted {
                w.url.clone_from(&final_url);
            }
        }
        let built = build_all(self.session, &self.ctx.auth, &wanted, 0, self.key_policy).await?;
        let fresh: HashMap<SegmentId, (String, Crypto)> =
            built.into_iter().flat_map(|b| b.jobs).map(|j| (j.ids[0].clone(), (j.uri, j.crypto))).collect();
        {
            let mut bound = write(&self.ctx.bound);
            for job in &mut bound.jobs {
                let Some((uri, crypto)) = job.ids.first().and_then(|id| fresh.get(id)) else { continue };
                if !job.key {
                    job.uri.clone_from(uri);
                    job.crypto = crypto.clone();
                } else if let Crypto::Aes128 { key_uri, .. } = crypto {
                    // A key job follows the key of the first segment that needs it.
                    job.uri.clone_from(key_uri);
                }
            }
            bound.generation += 1;
        }
        self.index_key_jobs();
        self.wanted = wanted;
        *lock(&self.task.url) = url;
        Ok(())
    }
}
