//! Events of a download task, as plain data.
//!
//! A driver turns the engine's [`Action`]s and its own milestones into these
//! [`TaskEvent`]s and sends them to whoever listens (a progress bar, JSON lines, an application). They
//! hold no handles and no borrowed data, so they can be cloned to many listeners and kept.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stowage_bundle::{RenditionKind, SegmentId, SegmentKind};

use crate::Error;
use crate::engine::{Action, Failure, JobFailure, JobId};
use crate::selection::ResolvedSelection;

// The progress types are the engine's books, which the events carry as they are: they are defined with
// the engine, so that the engine never needs this module, and named here too, where listeners look.
pub use crate::engine::{LoadedTimeRange, Progress, RenditionProgress};

/// One event of a download task.
///
/// Every task ends with exactly one terminal event ([`TaskEvent::is_terminal`]): [`Finished`],
/// [`Failed`], [`Cancelled`] or [`Suspended`], right after a [`Summary`] of what it did. When a listener
/// receives the terminal event the task's state says the same ([`TaskState`](crate::TaskState) is
/// terminal, or suspended for [`Suspended`]), and the stream of events then ends: the next
/// [`TaskEvents::recv`](crate::TaskEvents::recv) gives `None`.
///
/// [`Finished`]: TaskEvent::Finished
/// [`Failed`]: TaskEvent::Failed
/// [`Cancelled`]: TaskEvent::Cancelled
/// [`Suspended`]: TaskEvent::Suspended
/// [`Summary`]: TaskEvent::Summary
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TaskEvent {
    /// The bundle the task writes to was created or opened.
    WillDownloadTo {
        /// The bundle directory.
        path: PathBuf,
    },
    /// The configuration was resolved against the master playlist: which variant and renditions.
    MediaSelectionResolved(ResolvedSelection),
    /// Bytes or segments moved.
    Progress(Progress),
    /// A span of a rendition became playable offline.
    LoadedTimeRangeAdded(LoadedTimeRange),
    /// A segment (or key, or initialization section) failed and will be tried again.
    SegmentRetried {
        /// The engine's job of the segment (see [`segment`](TaskEvent::SegmentRetried::segment) for what
        /// it is).
        job: JobId,
        /// The start that failed (counting from one, as the engine numbers them).
        attempt: u32,
        /// Why it failed.
        cause: Failure,
        /// How long until the next attempt.
        delay: Duration,
        /// The server's `Retry-After`, when the wait is the one it asked for.
        retry_after: Option<Duration>,
        /// When the next attempt is due, by the system clock.
        until: SystemTime,
        /// The segment: its rendition, identity and URI.
        segment: SegmentRef,
    },
    /// A request of the task's own (the master or a media playlist, a key loaded before the segments)
    /// failed and will be tried again: what is waited for, why, and until when.
    RequestRetried {
        /// The URI being fetched (after redirects).
        uri: String,
        /// Which retry of that request this is (1 for the first).
        retry: u32,
        /// Why it failed.
        cause: Failure,
        /// How long until the next try.
        delay: Duration,
        /// The server's `Retry-After`, when the wait is the one it asked for.
        retry_after: Option<Duration>,
        /// When the next try is due, by the system clock.
        until: SystemTime,
    },
    /// A playlist deviated from the grammar in ways that only concern how it is written (a byte order
    /// mark, stray whitespace, a decimal target duration, an #EXTINF without its comma), read anyway.
    /// Deviations that touch the media (a segment, a key, an initialization section, a byte range or the
    /// numbering) are never tolerated: they fail the task naming the line. Sent each time the playlist is
    /// read, so a listener showing them to people shows each one once.
    PlaylistTolerated {
        /// The playlist (after redirects).
        uri: String,
        /// The first deviation of each kind, with its line and column.
        warnings: Vec<stowage_playlist::Warning>,
        /// How many more deviations of these kinds there were.
        more: usize,
    },
    /// Under the tolerant integrity policy, a segment could not be had and is recorded as a gap.
    SegmentMissing {
        /// The segment: its rendition, identity and URI.
        segment: SegmentRef,
        /// Why it could not be had, after how many attempts.
        failure: JobFailure,
    },
    /// Where a recording of a live stream stands, after each reload of its playlists and when it ends.
    Recording(RecordingProgress),
    /// A recording lost segments: they left a live playlist before a reload could list them (the origin
    /// unreachable, or its playlist stale, for longer than the playlist holds them).
    HoleRecorded {
        /// The rendition's identifier in the bundle.
        rendition: String,
        /// The first and last media sequence numbers missing.
        media_sequences: (u64, u64),
        /// Why, for people.
        cause: String,
    },
    /// Assets were removed from the store to make room for this download, as the store's policy says
    /// ([`StorageManager::admit`](stowage_bundle::StorageManager::admit)): expired ones, then, when the
    /// policy lets admission purge, the least recently used of default priority. Sent before any segment
    /// is fetched, and again when a download grown beyond what it was admitted for (its size could not be
    /// told, or was underestimated) made room.
    AssetsRemoved {
        /// What was removed, in removal order, with why and the bytes freed.
        removed: Vec<stowage_bundle::Removed>,
    },
    /// Every segment of a rendition is stored or recorded as a gap (Apple's
    /// `didCompleteFor mediaSelection`). Sent once per rendition; a rendition the bundle already held whole
    /// is reported as the task starts.
    RenditionCompleted(CompletedRendition),
    /// What the task did, sent just before its terminal event (Apple's download summary).
    Summary(TaskSummary),
    /// Every job ended; the bundle is complete unless gaps were recorded. The last event.
    Finished {
        /// The bundle directory.
        path: PathBuf,
        /// Whether every segment is present.
        complete: bool,
    },
    /// The task failed. The last event.
    Failed(Arc<Error>),
    /// The task was cancelled. The last event.
    Cancelled {
        /// Whether the partial bundle was removed (else a new task for the asset continues from it).
        removed: bool,
    },
    /// The task stopped where it was because its session was dropped or shut down: its bundle stays
    /// resumable, and [`DownloadSession::restore`](crate::DownloadSession::restore) finds it again. The
    /// last event. (A suspend asked with [`DownloadTask::suspend`](crate::DownloadTask::suspend) is not an
    /// end and sends no event: [`resume`](crate::DownloadTask::resume) continues the same stream.)
    Suspended {
        /// The bundle directory.
        path: PathBuf,
    },
}

/// Where a recording of a live stream stands (see [`TaskEvent::Recording`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordingProgress {
    /// Seconds of media recorded (listed to the recording), in the rendition that has the most.
    pub recorded: f64,
    /// Holes recorded so far, over every rendition.
    pub holes: usize,
    /// What the origin looks like from the reloads.
    pub origin: RecordingOrigin,
    /// How long an outage may last before the recording ends; `None`: it keeps trying for ever.
    pub max_outage: Option<Duration>,
    /// How far the recording is behind the live edge: the media between the end of the newest segment
    /// its playlists listed and the end of the newest segment it stored, in the rendition furthest
    /// behind. It grows while the origin does not answer the segments' requests, and is the media a stop
    /// now would still have to fetch.
    pub live_edge_delay: Duration,
    /// Of the holes, those of segments that were listed and expired before they could be fetched.
    pub expired: usize,
}

impl RecordingProgress {
    /// `recorded` seconds, `holes` holes, the origin as `origin`, no outage limit, at the live edge.
    pub fn new(recorded: f64, holes: usize, origin: RecordingOrigin) -> Self {
        Self { recorded, holes, origin, max_outage: None, live_edge_delay: Duration::ZERO, expired: 0 }
    }
}

/// What the origin of a recording looks like from its reloads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordingOrigin {
    /// Reloads bring new segments.
    Live,
    /// Every reload fails (refused, an error status, no answer), for this long.
    Unreachable(Duration),
    /// Reloads bring nothing new, for this long (three target durations or more).
    NotChanging(Duration),
    /// The recording ended, for this reason; what was listed is still being fetched.
    Ended(String),
}

impl TaskEvent {
    /// Whether this is the task's last event: finished, failed, cancelled, or suspended because its
    /// session closed.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Finished { .. } | Self::Failed(_) | Self::Cancelled { .. } | Self::Suspended { .. }
        )
    }

    /// The event an engine action taken at `now` (by the system clock) reports, for the actions that are
    /// news to a listener: [`Action::Retried`] becomes [`TaskEvent::SegmentRetried`] (due at `now` plus its
    /// delay) and [`Action::GapRecorded`] becomes [`TaskEvent::SegmentMissing`], naming the segment
    /// `segment` gives for the job.
    /// Other actions are instructions to the driver (or, for the terminal ones, need the bundle path the
    /// driver holds), so they give `None`.
    pub fn from_action(
        action: &Action,
        now: SystemTime,
        segment: impl FnOnce(JobId) -> SegmentRef,
    ) -> Option<Self> {
        match action {
            Action::Retried { job, attempt, cause, delay } => Some(Self::SegmentRetried {
                job: *job,
                attempt: *attempt,
                cause: cause.clone(),
                delay: *delay,
                retry_after: match cause {
                    Failure::Retryable { retry_after, .. } | Failure::Throttled { retry_after, .. } => {
                        *retry_after
                    }
                    _ => None,
                },
                until: now.checked_add(*delay).unwrap_or(now),
                segment: segment(*job),
            }),
            Action::GapRecorded(failure) => {
                Some(Self::SegmentMissing { segment: segment(failure.job), failure: failure.clone() })
            }
            _ => None,
        }
    }
}

/// What an engine job fetches, named for people and programs: the segment's rendition and identity
/// (discontinuity sequence, media sequence, byte range) and the URI it is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentRef {
    /// The segment's identity in the bundle: its rendition (the local identifier, the folder name),
    /// whether it is a media segment or an initialization section, and its sequence numbers and byte range.
    /// For a key, the first segment that needs it.
    pub id: SegmentId,
    /// The URI fetched: the segment's, or the key's.
    pub uri: String,
    /// Whether the job fetches the decryption key of the segment `id` (rather than the segment itself).
    pub key: bool,
}

impl SegmentRef {
    /// A reference to the segment `id` fetched from `uri`.
    pub fn new(id: SegmentId, uri: impl Into<String>) -> Self {
        Self { id, uri: uri.into(), key: false }
    }

    /// The rendition's local identifier.
    pub fn rendition(&self) -> &str {
        self.id.rendition.as_str()
    }
}

impl fmt::Display for SegmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.id;
        let what = match (self.key, id.kind) {
            (true, _) => "key",
            (false, SegmentKind::Init) => "initialization section",
            _ => "segment",
        };
        write!(
            f,
            "{what} of {} (discontinuity {}, media sequence {}",
            id.rendition, id.discontinuity_sequence, id.media_sequence
        )?;
        if let Some(range) = id.byte_range.filter(|_| !self.key) {
            write!(f, ", bytes {}@{}", range.length, range.offset)?;
        }
        write!(f, ") {}", self.uri)
    }
}

/// A rendition whose every segment is stored or recorded as a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompletedRendition {
    /// Its index in the task's renditions (as in [`RenditionProgress::rendition`]).
    pub rendition: usize,
    /// Its local identifier (its folder in the bundle: `video-2`, `audio-en`).
    pub id: String,
    /// A variant (video), or an audio or subtitle rendition.
    pub kind: RenditionKind,
    /// Its `LANGUAGE`, for an alternative rendition that has one.
    pub language: Option<String>,
    /// Its `NAME`, for an alternative rendition.
    pub name: Option<String>,
    /// Whether every segment is stored (false when gaps were recorded, or the source marked some).
    pub complete: bool,
}

/// What a task did from its start (or its resume after a restart) to its end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TaskSummary {
    /// Body bytes received by the task's requests for playlists and segments (those of attempts that
    /// failed included; keys, sixteen bytes each, are not counted).
    pub bytes_received: u64,
    /// Bytes the bundle holds for the task's renditions at the end.
    pub bytes_stored: u64,
    /// HTTP requests the task sent: playlists, segments and keys, retries included.
    pub requests: u64,
    /// Requests that were retries: those the fetch layer made on its own, and segments the engine started
    /// again after a failure.
    pub retries: u64,
    /// From the first start of the task's work (resumed and given a slot) to its end.
    pub duration: Duration,
    /// The variant downloaded (the primary one), once the task knew it.
    pub variant: Option<VariantSummary>,
    /// Segments stored, all renditions (those already in the bundle included).
    pub segments_stored: usize,
    /// Segments recorded as gaps.
    pub segments_missing: usize,
}

/// The variant a task downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VariantSummary {
    /// Its local identifier (its folder in the bundle).
    pub id: String,
    /// Its URI as written in the master playlist (`None` for an asset given as a media playlist).
    pub uri: Option<String>,
    /// `BANDWIDTH`.
    pub bandwidth: Option<u64>,
    /// `RESOLUTION`, width and height.
    pub resolution: Option<(u64, u64)>,
    /// `CODECS`.
    pub codecs: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, GiveUpReason};

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn events_and_the_engine_cross_threads() {
        // The driver moves the engine into a task and sends events to listeners on other threads.
        assert_send_sync::<TaskEvent>();
        assert_send_sync::<Engine>();
    }

    #[test]
    fn actions_that_are_news_become_events() {
        let rendition = stowage_bundle::RenditionId::new("video-1").unwrap();
        let segment =
            |job: JobId| SegmentRef::new(SegmentId::media(rendition.clone(), 0, job.0), "http://h/s.ts");
        let retried = Action::Retried {
            job: JobId(4),
            attempt: 2,
            cause: Failure::stalled("no body bytes for 30 s"),
            delay: Duration::from_secs(1),
        };
        let event = TaskEvent::from_action(&retried, SystemTime::UNIX_EPOCH, segment).unwrap();
        assert!(matches!(
            &event,
            TaskEvent::SegmentRetried { job: JobId(4), attempt: 2, cause: Failure::Stalled { .. }, segment, .. }
                if segment.id.media_sequence == 4 && segment.rendition() == "video-1"
        ));
        // A wait the server asked for says so, and when it ends.
        let throttled = Action::Retried {
            job: JobId(5),
            attempt: 1,
            cause: Failure::Throttled { status: 429, retry_after: Some(Duration::from_secs(90)) },
            delay: Duration::from_secs(90),
        };
        let Some(TaskEvent::SegmentRetried { retry_after, until, .. }) =
            TaskEvent::from_action(&throttled, SystemTime::UNIX_EPOCH, segment)
        else {
            panic!("a retry is news");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(90)));
        assert_eq!(until, SystemTime::UNIX_EPOCH + Duration::from_secs(90));
        let failure = JobFailure {
            job: JobId(9),
            cause: Failure::fatal("404"),
            attempts: 1,
            reason: GiveUpReason::Fatal,
        };
        assert!(matches!(
            TaskEvent::from_action(&Action::GapRecorded(failure), SystemTime::now(), segment),
            Some(TaskEvent::SegmentMissing { failure, segment }) if failure.job == JobId(9) && segment.id.media_sequence == 9
        ));
        let (start, now) = (Action::Start { job: JobId(1), attempt: 1 }, SystemTime::now());
        assert!(TaskEvent::from_action(&start, now, segment).is_none());
        assert!(TaskEvent::from_action(&Action::Cancelled, now, segment).is_none());
        assert!(!event.is_terminal() && TaskEvent::Cancelled { removed: false }.is_terminal());
    }

    #[test]
    fn segments_are_named_by_rendition_identity_and_uri() {
        let rendition = stowage_bundle::RenditionId::new("audio-en").unwrap();
        let id = SegmentId::media(rendition, 1, 42).with_byte_range(stowage_bundle::ByteRange::new(100, 50));
        let text = SegmentRef::new(id.clone(), "https://cdn.example/a.ts").to_string();
        assert_eq!(
            text,
            "segment of audio-en (discontinuity 1, media sequence 42, bytes 50@100) https://cdn.example/a.ts"
        );
        let key = SegmentRef { key: true, ..SegmentRef::new(id, "https://cdn.example/k.key") };
        assert!(key.to_string().starts_with("key of audio-en (discontinuity 1, media sequence 42)"), "{key}");
    }
}
