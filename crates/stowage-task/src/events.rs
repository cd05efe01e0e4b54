//! Events of a download task, as plain data.
//!
//! A driver turns the engine's [`Action`]s and its own milestones into these
//! [`TaskEvent`]s and sends them to whoever listens (a progress bar, JSON lines, an application). They
//! hold no handles and no borrowed data, so they can be cloned to many listeners and kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::Error;
use crate::engine::{Action, Failure, JobFailure, JobId};
use crate::selection::ResolvedSelection;

// The progress types are the engine's books, which the events carry as they are: they are defined with
// the engine, so that the engine never needs this module, and named here too, where listeners look.
pub use crate::engine::{LoadedTimeRange, Progress, RenditionProgress};

/// One event of a download task.
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
    /// A segment (or a key job) failed and will be tried again.
    SegmentRetried {
        /// The job of the segment.
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
    /// Under the tolerant integrity policy, a segment could not be had and is recorded as a gap.
    SegmentMissing(JobFailure),
    /// Every job ended; the bundle is complete unless gaps were recorded.
    Finished {
        /// The bundle directory.
        path: PathBuf,
        /// Whether every segment is present.
        complete: bool,
    },
    /// The task failed.
    Failed(Arc<Error>),
}

impl TaskEvent {
    /// The event an engine action taken at `now` (by the system clock) reports, for the actions that are
    /// news to a listener: [`Action::Retried`] becomes [`TaskEvent::SegmentRetried`] (due at `now` plus its
    /// delay) and [`Action::GapRecorded`] becomes [`TaskEvent::SegmentMissing`].
    /// Other actions are instructions to the driver (or, for the terminal ones, need the bundle path the
    /// driver holds), so they give `None`.
    pub fn from_action(action: &Action, now: SystemTime) -> Option<Self> {
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
            }),
            Action::GapRecorded(failure) => Some(Self::SegmentMissing(failure.clone())),
            _ => None,
        }
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
        let retried = Action::Retried {
            job: JobId(4),
            attempt: 2,
            cause: Failure::stalled("no body bytes for 30 s"),
            delay: Duration::from_secs(1),
        };
        assert!(matches!(
            TaskEvent::from_action(&retried, SystemTime::UNIX_EPOCH),
            Some(TaskEvent::SegmentRetried { job: JobId(4), attempt: 2, cause: Failure::Stalled { .. }, .. })
        ));
        // A wait the server asked for says so, and when it ends.
        let throttled = Action::Retried {
            job: JobId(5),
            attempt: 1,
            cause: Failure::Throttled { status: 429, retry_after: Some(Duration::from_secs(90)) },
            delay: Duration::from_secs(90),
        };
        let Some(TaskEvent::SegmentRetried { retry_after, until, .. }) =
            TaskEvent::from_action(&throttled, SystemTime::UNIX_EPOCH)
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
            TaskEvent::from_action(&Action::GapRecorded(failure), SystemTime::now()),
            Some(TaskEvent::SegmentMissing(f)) if f.job == JobId(9)
        ));
        assert!(
            TaskEvent::from_action(&Action::Start { job: JobId(1), attempt: 1 }, SystemTime::now()).is_none()
        );
        assert!(TaskEvent::from_action(&Action::Cancelled, SystemTime::now()).is_none());
    }
}
