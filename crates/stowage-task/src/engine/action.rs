//! What the engine asks the driver to do or to report, and where the engine and its jobs stand.

use std::time::Duration;

use super::{Failure, JobFailure, JobId, RecordingEnd};

/// What the engine asks the driver to do or to report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Start fetching a job.
    Start {
        /// The job.
        job: JobId,
        /// Which start of the job this is, counting from one. Every start counts, also one later cancelled
        /// (which the retry policy does not charge), so `(job, attempt)` names this start alone: pass it
        /// back with [`Engine::handle_attempt_completed`](super::Engine::handle_attempt_completed) to have late reports of cancelled starts told
        /// apart.
        attempt: u32,
    },
    /// Abort an in-flight job (after suspend, cancel or a strict failure). The engine no longer counts it
    /// in flight; if its bytes were already stored, the driver may still report the success.
    Cancel {
        /// The job.
        job: JobId,
    },
    /// A job failed and will be tried again after `delay` (for the "segment retried" event).
    Retried {
        /// The job.
        job: JobId,
        /// The start that failed (as numbered in [`Action::Start`]).
        attempt: u32,
        /// Why it failed.
        cause: Failure,
        /// How long it waits before the next attempt.
        delay: Duration,
    },
    /// Under the tolerant policy, a job gave up: record the gap; the task goes on and ends incomplete.
    GapRecorded(JobFailure),
    /// URLs were refused: obtain fresh ones (a new master URL, headers or cookies), re-bind jobs by
    /// identity, then call [`Engine::handle_refreshed`](super::Engine::handle_refreshed) or [`Engine::handle_refresh_failed`](super::Engine::handle_refresh_failed). No job
    /// starts meanwhile.
    RefreshUrls {
        /// The job whose failure asked for it.
        job: JobId,
        /// The HTTP status that was answered.
        status: u16,
    },
    /// Reload the playlist of a live rendition, then report what it brought with
    /// [`Engine::handle_reload`](super::Engine::handle_reload).
    ReloadPlaylist {
        /// The rendition.
        rendition: usize,
        /// For a server that blocks reloads: the media sequence number to ask for (`_HLS_msn`).
        block: Option<u64>,
        /// How long to wait for the answer before reporting the reload failed.
        timeout: Duration,
    },
    /// The recording ended: no more reloads; the segments already listed are still fetched (within
    /// [`EngineConfig::stop_grace`](super::EngineConfig::stop_grace)), then [`Action::Finished`] follows.
    RecordingEnded(RecordingEnd),
    /// Every job is done or recorded as a gap (and, in a recording, every live rendition ended). Terminal
    /// unless jobs are added.
    Finished {
        /// Whether every job is done (no gap).
        complete: bool,
        /// How many gaps were recorded.
        gaps: usize,
    },
    /// Under the strict policy, a job gave up and the task failed. Terminal.
    Failed(JobFailure),
    /// The task was cancelled. Terminal.
    Cancelled,
}

/// The engine's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineState {
    /// Not starting jobs: a new engine, or after [`Engine::suspend`](super::Engine::suspend).
    Suspended,
    /// Starting jobs.
    Running,
    /// Every job is done or a gap.
    Finished,
    /// A job failed under the strict policy.
    Failed,
    /// [`Engine::cancel`](super::Engine::cancel) was called.
    Cancelled,
}

impl EngineState {
    /// Whether the engine will do nothing more (it cannot be resumed or augmented).
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled)
    }
}

/// Where one job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting for a slot.
    Ready,
    /// Waiting for its retry delay to pass.
    Backoff,
    /// Being fetched.
    InFlight,
    /// Waiting for fresh URLs.
    AwaitingRefresh,
    /// Stored.
    Done,
    /// Given up under the tolerant policy.
    Gap,
    /// Given up under the strict policy (the task failed).
    Failed,
    /// A prefetch that gave up: the jobs that need what it fetches get it themselves.
    Dropped,
}
