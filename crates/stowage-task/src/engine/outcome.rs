//! What the driver reports when a start of a job ends, and why a job that gave up did so.

use std::fmt;
use std::time::Duration;

use super::JobId;

/// Why an attempt failed, as the driver classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// A transient failure (connection error, timeout, 5xx, 408): retried with backoff.
    Retryable {
        /// A `Retry-After` the server sent, which replaces the jittered delay.
        retry_after: Option<Duration>,
        /// What happened, for people.
        detail: String,
    },
    /// The server asked to slow down (429, 503): retried, and the concurrency window halves.
    Throttled {
        /// The HTTP status.
        status: u16,
        /// A `Retry-After` the server sent: the job waits that long and the host takes no new job before.
        retry_after: Option<Duration>,
    },
    /// The body stopped flowing, or trickled in below the minimum rate: retried, and the concurrency
    /// window halves.
    Stalled {
        /// Which deadline ran out, on what, for people.
        detail: String,
    },
    /// Retrying cannot help (404, a bad key, a decryption error, a full disk): the job gives up at once.
    Fatal {
        /// What happened, for people.
        detail: String,
    },
    /// The URL was refused (401, 403, 410), most likely because a signature expired: the engine asks the
    /// driver for fresh URLs with [`Action::RefreshUrls`](super::Action::RefreshUrls), then retries.
    NeedsRefresh {
        /// The HTTP status.
        status: u16,
    },
    /// A live segment left its playlist and is gone (404, 410), and the origin was unreachable or the
    /// recording interrupted while it was listed: it is a hole of the recording, recorded as a gap
    /// whatever the integrity policy (it was not lost by the recorder). A segment that expires while the
    /// origin answered all along is [`Failure::Fatal`] instead.
    Expired {
        /// The HTTP status that said it is gone.
        status: u16,
    },
    /// The URL was refused (401, 403, 410), but a refresh replaced it while the attempt was under way:
    /// the refusal says nothing about the fresh URL. The job is started again as soon as a slot allows,
    /// with the URL it is bound to now; neither an attempt nor a refresh is counted, and no refresh is
    /// asked for. A driver reports this instead of [`Failure::NeedsRefresh`] when the refused URL came from
    /// a binding older than the latest refresh, so that jobs refused together ask for one refresh.
    Superseded {
        /// The HTTP status.
        status: u16,
    },
}

impl Failure {
    /// A retryable failure without `Retry-After`.
    pub fn retryable(detail: impl Into<String>) -> Self {
        Self::Retryable { retry_after: None, detail: detail.into() }
    }

    /// A stalled body.
    pub fn stalled(detail: impl Into<String>) -> Self {
        Self::Stalled { detail: detail.into() }
    }

    /// A fatal failure.
    pub fn fatal(detail: impl Into<String>) -> Self {
        Self::Fatal { detail: detail.into() }
    }

    /// Whether this failure is a sign of congestion (throttling or a stall).
    pub fn is_congestion(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Stalled { .. })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retryable { retry_after: Some(after), detail } => {
                write!(f, "{detail} (retry after {} s)", after.as_secs_f64())
            }
            Self::Retryable { retry_after: None, detail } => f.write_str(detail),
            Self::Throttled { status, retry_after: Some(after) } => {
                write!(f, "throttled with HTTP {status} (retry after {} s)", after.as_secs_f64())
            }
            Self::Throttled { status, retry_after: None } => write!(f, "throttled with HTTP {status}"),
            Self::Stalled { detail } => f.write_str(detail),
            Self::Fatal { detail } => f.write_str(detail),
            Self::Expired { status } => write!(f, "gone from the live playlist (HTTP {status})"),
            Self::NeedsRefresh { status } => write!(f, "the URL was refused with HTTP {status}"),
            Self::Superseded { status } => {
                write!(f, "an expired URL was refused with HTTP {status} after it was replaced")
            }
        }
    }
}

/// What the driver reports when a started job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The job's bytes are stored durably.
    Success {
        /// How many bytes were stored.
        bytes: u64,
    },
    /// The attempt failed.
    Failure(Failure),
}

impl Outcome {
    /// A success with `bytes` stored.
    pub fn success(bytes: u64) -> Self {
        Self::Success { bytes }
    }
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        Self::Failure(failure)
    }
}

/// Why a job stopped being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The last failure was fatal.
    Fatal,
    /// [`RetryPolicy::max_attempts`](super::RetryPolicy::max_attempts) attempts failed.
    AttemptsExhausted,
    /// The next attempt would have come after [`RetryPolicy::max_retry_time`](super::RetryPolicy::max_retry_time).
    RetryTimeExhausted,
    /// The job needed fresh URLs more than [`RetryPolicy::max_refreshes`](super::RetryPolicy::max_refreshes) times.
    RefreshesExhausted,
    /// The driver could not obtain fresh URLs ([`Engine::handle_refresh_failed`](super::Engine::handle_refresh_failed)).
    RefreshFailed,
    /// A live segment expired during an outage ([`Failure::Expired`]).
    Expired,
    /// The recording ended before the job could be had ([`Action::RecordingEnded`](super::Action::RecordingEnded)).
    RecordingEnded,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fatal => "the failure cannot be retried",
            Self::AttemptsExhausted => "every attempt failed",
            Self::RetryTimeExhausted => "the retry time ran out",
            Self::RefreshesExhausted => "fresh URLs were refused too",
            Self::RefreshFailed => "fresh URLs could not be obtained",
            Self::Expired => "it left the live playlist while the origin could not be reached",
            Self::RecordingEnded => "the recording ended first",
        })
    }
}

/// A job that could not be had: which, why, and after how many attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobFailure {
    /// The job.
    pub job: JobId,
    /// The last failure.
    pub cause: Failure,
    /// Attempts that failed (cancelled attempts are not counted).
    pub attempts: u32,
    /// Why the engine stopped retrying.
    pub reason: GiveUpReason,
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed after {} attempt(s): {}; {}", self.job, self.attempts, self.cause, self.reason)
    }
}
