//! Events of a download task, as plain data.
//!
//! A driver turns the engine's [`Action`](crate::engine::Action)s and its own milestones into these
//! [`TaskEvent`]s and sends them to whoever listens (a progress bar, JSON lines, an application). They
//! hold no handles and no borrowed data, so they can be cloned to many listeners and kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::engine::{Failure, JobFailure, JobId, TimeRange};
use crate::selection::ResolvedSelection;

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
    /// A segment failed and will be tried again.
    SegmentRetried {
        /// The job of the segment.
        job: JobId,
        /// The start that failed (counting from one, as the engine numbers them).
        attempt: u32,
        /// Why it failed.
        cause: Failure,
        /// How long until the next attempt.
        delay: Duration,
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
    /// The event an engine action reports, for the actions that are news to a listener:
    /// [`Action::Retried`](crate::engine::Action::Retried) becomes [`TaskEvent::SegmentRetried`] and
    /// [`Action::GapRecorded`](crate::engine::Action::GapRecorded) becomes [`TaskEvent::SegmentMissing`].
    /// Other actions are instructions to the driver (or, for the terminal ones, need the bundle path the
    /// driver holds), so they give `None`.
    pub fn from_action(action: &crate::engine::Action) -> Option<Self> {
        use crate::engine::Action;
        match action {
            Action::Retried { job, attempt, cause, delay } => Some(Self::SegmentRetried {
                job: *job,
                attempt: *attempt,
                cause: cause.clone(),
                delay: *delay,
            }),
            Action::GapRecorded(failure) => Some(Self::SegmentMissing(failure.clone())),
            _ => None,
        }
    }
}

/// Where a rendition's loaded time stands after a range was added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadedTimeRange {
    /// The rendition (an index into the plan's renditions).
    pub rendition: usize,
    /// The range that was just added.
    pub added: TimeRange,
    /// Every range loaded so far, sorted and merged.
    pub loaded: Vec<TimeRange>,
    /// The range expected to load once the task is done.
    pub expected: Option<TimeRange>,
}

impl LoadedTimeRange {
    /// Bundles the parts of the event.
    pub fn new(
        rendition: usize,
        added: TimeRange,
        loaded: Vec<TimeRange>,
        expected: Option<TimeRange>,
    ) -> Self {
        Self { rendition, added, loaded, expected }
    }
}

/// Progress of one rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenditionProgress {
    /// The rendition (an index into the plan's renditions).
    pub rendition: usize,
    /// Bytes of finished segments.
    pub bytes_done: u64,
    /// Bytes expected when done: exact when `bytes_expected_exact`, otherwise estimated (see
    /// [`Engine::progress`](crate::engine::Engine::progress)).
    pub bytes_expected: u64,
    /// Whether `bytes_expected` is exact.
    pub bytes_expected_exact: bool,
    /// Segments finished.
    pub segments_done: usize,
    /// Segments planned.
    pub segments_total: usize,
    /// Segments given up and recorded as gaps.
    pub segments_missing: usize,
    /// Media time loaded.
    pub loaded_duration: Duration,
}

impl RenditionProgress {
    /// The fraction done in `0.0..=1.0`, by bytes when any are expected, else by segments.
    pub fn fraction(&self) -> f64 {
        fraction(self.bytes_done, self.bytes_expected, self.segments_done, self.segments_total)
    }
}

/// Progress of a task: per rendition and in total.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Progress {
    /// Per rendition, in plan order.
    pub renditions: Vec<RenditionProgress>,
    /// Bytes of finished segments, all renditions.
    pub bytes_done: u64,
    /// Bytes expected, all renditions.
    pub bytes_expected: u64,
    /// Whether `bytes_expected` is exact for every rendition.
    pub bytes_expected_exact: bool,
    /// Segments finished, all renditions.
    pub segments_done: usize,
    /// Segments planned, all renditions.
    pub segments_total: usize,
    /// Segments recorded as gaps, all renditions.
    pub segments_missing: usize,
}

impl Progress {
    /// Sums per-rendition progress into a task's progress.
    pub fn from_renditions(renditions: Vec<RenditionProgress>) -> Self {
        let mut total = Self { bytes_expected_exact: true, ..Self::default() };
        for r in &renditions {
            total.bytes_done += r.bytes_done;
            total.bytes_expected += r.bytes_expected;
            total.bytes_expected_exact &= r.bytes_expected_exact;
            total.segments_done += r.segments_done;
            total.segments_total += r.segments_total;
            total.segments_missing += r.segments_missing;
        }
        total.renditions = renditions;
        total
    }

    /// The fraction done in `0.0..=1.0`, by bytes when any are expected, else by segments.
    pub fn fraction(&self) -> f64 {
        fraction(self.bytes_done, self.bytes_expected, self.segments_done, self.segments_total)
    }
}

fn fraction(bytes_done: u64, bytes_expected: u64, done: usize, total: usize) -> f64 {
    let f = if bytes_expected > 0 {
        bytes_done as f64 / bytes_expected as f64
    } else if total > 0 {
        done as f64 / total as f64
    } else {
        1.0
    };
    f.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Action, Engine, GiveUpReason};

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
            cause: Failure::Stalled,
            delay: Duration::from_secs(1),
        };
        assert!(matches!(
            TaskEvent::from_action(&retried),
            Some(TaskEvent::SegmentRetried { job: JobId(4), attempt: 2, cause: Failure::Stalled, .. })
        ));
        let failure = JobFailure {
            job: JobId(9),
            cause: Failure::fatal("404"),
            attempts: 1,
            reason: GiveUpReason::Fatal,
        };
        assert!(matches!(
            TaskEvent::from_action(&Action::GapRecorded(failure)),
            Some(TaskEvent::SegmentMissing(f)) if f.job == JobId(9)
        ));
        assert!(TaskEvent::from_action(&Action::Start { job: JobId(1), attempt: 1 }).is_none());
        assert!(TaskEvent::from_action(&Action::Cancelled).is_none());
    }

    #[test]
    fn fractions_stay_in_range() {
        let p = Progress::from_renditions(vec![]);
        assert_eq!(p.fraction(), 1.0, "nothing to do is done");
        assert!(p.bytes_expected_exact);
    }
}
