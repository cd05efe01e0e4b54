//! A task's handle, [`DownloadTask`], and what the handle shares with the task's driver.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::counters::TaskCounters;
use super::event_streams::TaskEvents;
use super::shared::{SessionInner, lock};
use crate::Error;
use crate::config::MediaSelection;
use crate::events::{Progress, SessionEvent, TaskEvent, TaskSummary, VariantSummary};

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

/// Orders from a task handle to its driver.
#[derive(Debug)]
pub(crate) enum Control {
    Resume,
    Suspend,
    Cancel(CancelMode),
    StopRecording,
    Augment(Vec<MediaSelection>, oneshot::Sender<Result<usize, Error>>),
}

/// The end of a task, as its driver reports it.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    Finished { path: PathBuf, complete: bool },
    Failed(Arc<Error>),
    Cancelled { removed: bool },
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
    /// The sender of the task's events; taken when the task ends, so that its listeners' streams end.
    pub(crate) events: Mutex<Option<broadcast::Sender<TaskEvent>>>,
    pub(crate) progress: Mutex<Progress>,
    /// Rendition identifiers in the engine's order (the index of per-rendition progress and ranges).
    pub(crate) renditions: Mutex<Vec<String>>,
    /// Requests, retries and bytes, for the summary.
    pub(crate) counters: Arc<TaskCounters>,
    /// When the task's work first started (resumed and given a slot).
    pub(crate) started: Mutex<Option<Instant>>,
    /// The variant the task downloads, once its playlists are read.
    pub(crate) variant: Mutex<Option<VariantSummary>>,
    /// The summary, once the task ended.
    pub(crate) summary: Mutex<Option<TaskSummary>>,
    /// Whether the task records a live stream (known once its playlists are read).
    pub(crate) recording: std::sync::atomic::AtomicBool,
}

impl TaskShared {
    /// A task's shared state, suspended, with `events` as the sender of its events.
    pub(crate) fn new(
        asset: &str,
        url: &str,
        bundle_path: PathBuf,
        control: mpsc::UnboundedSender<Control>,
        events: broadcast::Sender<TaskEvent>,
    ) -> Self {
        Self {
            asset: asset.to_owned(),
            url: Mutex::new(url.to_owned()),
            bundle_path,
            control,
            state: watch::channel(TaskState::Suspended).0,
            ending: watch::channel(None).0,
            events: Mutex::new(Some(events)),
            progress: Mutex::new(Progress::default()),
            renditions: Mutex::new(Vec::new()),
            counters: Arc::default(),
            started: Mutex::new(None),
            variant: Mutex::new(None),
            summary: Mutex::new(None),
            recording: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn emit(&self, session: &SessionInner, event: TaskEvent) {
        if let TaskEvent::Progress(p) = &event {
            *lock(&self.progress) = p.clone();
        }
        let _ = session.events.send(SessionEvent { asset: self.asset.clone(), event: event.clone() });
        if let Some(events) = &*lock(&self.events) {
            let _ = events.send(event);
        }
    }

    /// Ends the task's event streams: listeners receive what was sent, then `None`.
    pub(crate) fn close_events(&self) {
        lock(&self.events).take();
    }

    /// Notes that the task's work started, the first time.
    pub(crate) fn mark_started(&self) {
        lock(&self.started).get_or_insert_with(Instant::now);
    }

    /// What the task did so far.
    pub(crate) fn summary_now(&self) -> TaskSummary {
        let (requests, retries, bytes_received) = self.counters.get();
        let progress = lock(&self.progress).clone();
        TaskSummary {
            bytes_received,
            bytes_stored: progress.bytes_done,
            requests,
            retries,
            duration: lock(&self.started).map(|at| at.elapsed()).unwrap_or_default(),
            variant: lock(&self.variant).clone(),
            segments_stored: progress.segments_done,
            segments_missing: progress.segments_missing,
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
    pub(super) fn new(shared: Arc<TaskShared>) -> Self {
        Self { shared }
    }

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
    /// continues. A task still being prepared (its playlists being fetched) stops at once too, and is
    /// prepared again when resumed.
    pub fn suspend(&self) {
        let _ = self.shared.control.send(Control::Suspend);
    }

    /// Whether the task records a live or EVENT stream (a playlist without `EXT-X-ENDLIST`); known once
    /// its playlists are read, `false` until then.
    pub fn is_recording(&self) -> bool {
        self.shared.recording.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends a recording now, as a user's stop: no more reloads, the segments already listed are fetched
    /// (for a few seconds at most), and the task finishes with a VOD bundle of what was recorded. A task
    /// that is not recording is left as it is.
    pub fn stop_recording(&self) {
        let _ = self.shared.control.send(Control::StopRecording);
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

    /// The task's events from now on. Subscribe before [`resume`](Self::resume) to see them all. The
    /// stream ends (gives `None`) after the task's terminal event; subscribed after the task ended, it is
    /// empty.
    pub fn events(&self) -> TaskEvents {
        let rx = match &*lock(&self.shared.events) {
            Some(events) => events.subscribe(),
            None => broadcast::channel(1).1,
        };
        TaskEvents::new(rx)
    }

    /// What the task did (bytes, requests, retries, duration, the variant), once it has ended; the
    /// same as its [`TaskEvent::Summary`].
    pub fn summary(&self) -> Option<TaskSummary> {
        lock(&self.shared.summary).clone()
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
            Ending::Cancelled { .. } => Err(Error::Cancelled),
            Ending::Closed => Err(Error::SessionClosed),
        }
    }
}

impl AsRef<Path> for DownloadTask {
    fn as_ref(&self) -> &Path {
        &self.shared.bundle_path
    }
}
