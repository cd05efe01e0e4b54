//! The sans-IO download engine: it owns the plan and decides what to fetch next.
//!
//! The [`Engine`] is a state machine in the manner of quinn-proto's `Connection`. It never reads a clock,
//! never spawns, and never touches the network or the disk. A driver feeds it events
//! ([`Engine::handle_completed`], [`Engine::handle_timeout`], [`Engine::suspend`], [`Engine::resume`],
//! [`Engine::cancel`], [`Engine::add_jobs`], [`Engine::handle_refreshed`]) and carries out the
//! [`Action`]s it pulls with [`Engine::poll_action`], waking the engine again at [`Engine::poll_timeout`].
//! Time is an [`Instant`] passed in, so tests run hours of retries and backoff in microseconds.
//!
//! # Scheduling
//!
//! Ready jobs are started in timeline order across all renditions (earliest start time first, then the
//! lower rendition index, then the order in which the jobs were added), so every selected rendition
//! advances together and the loaded time ranges grow from the start: a player can begin on a partly
//! downloaded asset. A retried job keeps its place on the timeline, so it goes ahead of later segments
//! once its backoff is over.
//!
//! Prefetches ([`JobSpec::prefetch`]), such as the decryption keys of an encrypted rendition, are jobs
//! of their own, given the start of the first job that needs them and started
//! [`EngineConfig::prefetch_lead`] earlier on the timeline (and before every other job of the same
//! time), in the order in which they are first needed: a key is fetched while earlier segments are, and
//! is there when the first segment that needs it starts, instead of being fetched inside that segment's
//! job while the other segments of its key wait. They count against the limits like any job, and stay
//! out of the progress.
//!
//! Three limits apply at once: the global limit and the per-host limit of [`ConcurrencyLimits`], which
//! are never exceeded, and the adaptive window (see [`ConcurrencyLimits::adaptive`]), which moves between
//! one and the global limit as measured throughput and throttling answers dictate.
//!
//! # Retries
//!
//! A retryable failure puts the job to sleep for a delay drawn with *full jitter*: uniformly from zero to
//! `min(cap, base × 2^(n−1))` after the n-th failed attempt, from a generator seeded by
//! [`EngineConfig::seed`]. A `Retry-After` given with the failure replaces the jittered delay. A throttled
//! answer with `Retry-After` also pauses every new start on that host until then, since the origin asked
//! for quiet, not just for this one segment. A job gives up after [`RetryPolicy::max_attempts`] attempts,
//! or when the next attempt would come later than [`RetryPolicy::max_retry_time`] after its first failure
//! (so a hostile `Retry-After` cannot hang the task). Starts cancelled by a suspend and refusals that ask
//! for fresh URLs are not counted as attempts; refusals have their own bound,
//! [`RetryPolicy::max_refreshes`].
//!
//! Refusals (401, 403, 410) ask the driver for fresh URLs once: while [`Action::RefreshUrls`] is
//! pending, further refusals wait for the same refresh, and no job starts. A refusal the driver reports
//! as [`Failure::Superseded`] (the refused URL had been replaced by a refresh already) just starts the
//! job again with its current URL, so that jobs refused together cause one refresh, not one each.
//!
//! # Integrity
//!
//! A job that gives up is handled by the [`IntegrityPolicy`]: under [`IntegrityPolicy::Strict`] the whole
//! task fails with [`Action::Failed`] naming the job; under [`IntegrityPolicy::Tolerant`] the engine emits
//! [`Action::GapRecorded`] and goes on, and [`Action::Finished`] then says the asset is incomplete. A job
//! is never dropped silently.
//!
//! # Adaptive concurrency
//!
//! The window is one for the whole engine (not per host: in practice the hosts of one asset are one CDN,
//! and one measurement converges faster than several). It starts at [`ConcurrencyLimits::initial`]:
//!
//! * throughput is measured over epochs, each ending once as many jobs started inside it have completed
//!   as the window is wide (one round trip of every slot);
//! * while each epoch's throughput grows by 10 % or more, the window doubles (ramp); the first epoch that
//!   does not grow ends the ramp and restores the previous window;
//! * after that, every fourth epoch probes one more slot and keeps it only for a 5 % gain (additive
//!   increase), so the window follows a link that gets faster;
//! * a 429, a 503 or a stall halves the window (multiplicative decrease), once per round trip: failures of
//!   jobs started before the last decrease describe the old window and do not count again;
//! * an epoch in which the window was not what limited the starts (too few ready jobs, a per-host limit,
//!   a paused host) never widens it.
//!
//! # Driving the engine
//!
//! A driver (the tokio one, or a test) runs this loop:
//!
//! 1. [`Engine::new`] with the plan (finished jobs marked, for a resumed download), then
//!    [`Engine::resume`].
//! 2. Pull every action with [`Engine::poll_action`] and carry it out: spawn the fetch of
//!    [`Action::Start`] (remembering its `attempt`), abort the one of [`Action::Cancel`], report
//!    [`Action::Retried`] and [`Action::GapRecorded`] as events, obtain fresh URLs on
//!    [`Action::RefreshUrls`], stop on [`Action::Finished`], [`Action::Failed`] or [`Action::Cancelled`].
//! 3. Wait for the first of: a fetch ending (report it with [`Engine::handle_attempt_completed`], after
//!    its bytes are durable for a success), the instant of [`Engine::poll_timeout`] (then
//!    [`Engine::handle_timeout`]), or a user's suspend, resume, cancel or added selection. Go to 2.
//!
//! The engine does not time out fetches in flight: the fetch layer's connect, first-byte, stall and total
//! timeouts do, and report [`Failure::Stalled`] or [`Failure::Retryable`].

mod concurrency;
mod ranges;
mod rng;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use crate::Error;
use crate::config::IntegrityPolicy;
use crate::events::{LoadedTimeRange, Progress, RenditionProgress};
use concurrency::Controller;
use ranges::RangeSet;
pub use ranges::TimeRange;
use rng::SplitMix64;

/// The caller's name for a job: opaque to the engine, unique within one engine.
///
/// A driver typically numbers its planned segments (and keys, and init sections) and keeps the
/// segment identity beside the number; the engine never needs more than the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.0)
    }
}

/// A rendition of the plan, as the engine needs to know it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenditionSpec {
    /// Declared bandwidth in bits per second (the playlist's `BANDWIDTH` or `AVERAGE-BANDWIDTH`), used to
    /// estimate the size of segments before any of them is fetched.
    pub bandwidth: Option<u64>,
}

impl RenditionSpec {
    /// A rendition with no declared bandwidth.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the declared bandwidth in bits per second.
    #[must_use]
    pub fn bandwidth(mut self, bits_per_second: u64) -> Self {
        self.bandwidth = Some(bits_per_second);
        self
    }
}

/// One job of the plan: a segment, an init section or a key to fetch.
///
/// The host is borrowed: the engine interns host names, so a plan of a hundred thousand segments on one
/// host stores the name once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSpec<'a> {
    /// The caller's name for the job.
    pub id: JobId,
    /// Index of the rendition it belongs to (as returned by [`Plan::add_rendition`]).
    pub rendition: usize,
    /// Where it starts on the rendition's timeline.
    pub start: Duration,
    /// How much of the timeline it covers (zero for keys and init sections).
    pub duration: Duration,
    /// The host it is fetched from (per-host limits and pauses apply to it).
    pub host: &'a str,
    /// Its size in bytes, when known in advance (from a byte range, say).
    pub expected_size: Option<u64>,
    /// `Some(bytes)` when it is already finished (found in the bundle's journal on resume): it is counted
    /// as done and never started.
    pub finished: Option<u64>,
    /// Whether it is a prefetch: something other jobs need, such as a decryption key, fetched as its own
    /// job ahead of them (see [`JobSpec::prefetch`]).
    pub prefetch: bool,
}

impl<'a> JobSpec<'a> {
    /// A job that is not finished and whose size is unknown.
    pub fn new(id: JobId, rendition: usize, start: Duration, duration: Duration, host: &'a str) -> Self {
        Self { id, rendition, start, duration, host, expected_size: None, finished: None, prefetch: false }
    }

    /// Makes the job a prefetch: something other jobs need (a decryption key, say), fetched ahead of them.
    ///
    /// Give it the start of the first job that needs it: it is started [`EngineConfig::prefetch_lead`]
    /// earlier on the timeline, before every other job of that time, within the same limits. It is not part of the progress (bytes, segments, time
    /// ranges) and the task does not wait for it once every other job is done. It is retried, and asks
    /// for fresh URLs, like any job; but one that gives up is only dropped ([`JobStatus::Dropped`]): it
    /// neither fails the task nor leaves a gap, since the jobs that need what it fetches get it
    /// themselves, and fail on their own if they cannot.
    #[must_use]
    pub fn prefetch(mut self) -> Self {
        self.prefetch = true;
        self
    }

    /// Sets the expected size in bytes.
    #[must_use]
    pub fn expected_size(mut self, bytes: u64) -> Self {
        self.expected_size = Some(bytes);
        self
    }

    /// Marks the job as already finished with `bytes` stored.
    #[must_use]
    pub fn finished(mut self, bytes: u64) -> Self {
        self.finished = Some(bytes);
        self
    }
}

/// The plan an engine starts from: renditions and their jobs.
#[derive(Debug, Clone, Default)]
pub struct Plan<'a> {
    renditions: Vec<RenditionSpec>,
    jobs: Vec<JobSpec<'a>>,
}

impl<'a> Plan<'a> {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rendition and returns its index.
    pub fn add_rendition(&mut self, rendition: RenditionSpec) -> usize {
        self.renditions.push(rendition);
        self.renditions.len() - 1
    }

    /// Adds a job. Its identity and rendition are checked when the engine is built.
    pub fn add_job(&mut self, job: JobSpec<'a>) {
        self.jobs.push(job);
    }

    /// The number of jobs added so far.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job was added.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// Concurrency limits and whether the window adapts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConcurrencyLimits {
    /// Jobs in flight at once, in total. Never exceeded. Default 32.
    pub max_total: usize,
    /// Jobs in flight at once on one host. Never exceeded. Default 16: with segments of a few hundred
    /// kilobytes, a download is bound by round trips, not bandwidth, and the time to fetch `n` segments
    /// at `c` in flight is about `n × latency / c`; the adaptive window keeps fewer in flight where more
    /// buy nothing, and halves on throttling.
    pub max_per_host: usize,
    /// Whether the window adapts to measured throughput and throttling (default) or stays at `max_total`.
    ///
    /// The adaptive window starts at `initial`, doubles while each doubling raises measured throughput by
    /// at least 10 %, then probes one slot at a time (kept only for a 5 % gain), and halves on a 429, a
    /// 503 or a stall, at most once per round trip. An epoch in which the window was not what limited the
    /// starts (too few ready jobs, a per-host limit, a paused host) never widens it.
    pub adaptive: bool,
    /// The first window when adapting. Default 4.
    pub initial: usize,
}

impl Default for ConcurrencyLimits {
    fn default() -> Self {
        Self { max_total: 32, max_per_host: 16, adaptive: true, initial: 4 }
    }
}

impl ConcurrencyLimits {
    /// Sets the global limit.
    #[must_use]
    pub fn max_total(mut self, n: usize) -> Self {
        self.max_total = n;
        self
    }

    /// Sets the per-host limit.
    #[must_use]
    pub fn max_per_host(mut self, n: usize) -> Self {
        self.max_per_host = n;
        self
    }

    /// Turns adaptation on or off.
    #[must_use]
    pub fn adaptive(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }

    /// Sets the first window used when adapting.
    #[must_use]
    pub fn initial(mut self, n: usize) -> Self {
        self.initial = n;
        self
    }
}

/// How failed jobs are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per job, the first included. Default 10.
    pub max_attempts: u32,
    /// Backoff ceiling after the first failure. Default 250 ms.
    pub backoff_base: Duration,
    /// Largest backoff ceiling. Default 30 s.
    pub backoff_cap: Duration,
    /// How long after its first failure a job may still be retried. Default 10 minutes.
    pub max_retry_time: Duration,
    /// How many times one job may ask for fresh URLs (401, 403, 410) before it gives up. Default 2.
    pub max_refreshes: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            max_retry_time: Duration::from_secs(600),
            max_refreshes: 2,
        }
    }
}

impl RetryPolicy {
    /// Sets the attempts per job, the first included.
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets the backoff base and cap.
    #[must_use]
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Sets the total retry time per job.
    #[must_use]
    pub fn max_retry_time(mut self, limit: Duration) -> Self {
        self.max_retry_time = limit;
        self
    }

    /// Sets how many URL refreshes one job may ask for.
    #[must_use]
    pub fn max_refreshes(mut self, n: u32) -> Self {
        self.max_refreshes = n;
        self
    }

    /// The largest delay the jitter may draw after the `failures`-th failed attempt (counting from one).
    pub fn backoff_ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(63);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.backoff_base.checked_mul(factor).unwrap_or(Duration::MAX).min(self.backoff_cap)
    }
}

/// Everything an engine is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Concurrency limits.
    pub concurrency: ConcurrencyLimits,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// What happens to a job that cannot be had.
    pub integrity: IntegrityPolicy,
    /// Seed of the jitter generator. Drivers should pass a fresh random value so that many clients do not
    /// retry in step; tests pass a fixed one to be reproducible. Default 0.
    pub seed: u64,
    /// How far ahead on the timeline prefetches ([`JobSpec::prefetch`]) are started: a prefetch goes
    /// before the jobs that start up to this long before the first job that needs it, so that what it
    /// fetches (a key) is there when that job starts, and no job waits for it. Default 60 s of media.
    pub prefetch_lead: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: ConcurrencyLimits::default(),
            retry: RetryPolicy::default(),
            integrity: IntegrityPolicy::default(),
            seed: 0,
            prefetch_lead: Duration::from_secs(60),
        }
    }
}

impl EngineConfig {
    /// Sets the concurrency limits.
    #[must_use]
    pub fn concurrency(mut self, limits: ConcurrencyLimits) -> Self {
        self.concurrency = limits;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the integrity policy.
    #[must_use]
    pub fn integrity(mut self, policy: IntegrityPolicy) -> Self {
        self.integrity = policy;
        self
    }

    /// Sets the jitter seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets how far ahead on the timeline prefetches are started.
    #[must_use]
    pub fn prefetch_lead(mut self, lead: Duration) -> Self {
        self.prefetch_lead = lead;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: &'static str| Err(Error::InvalidConfig { reason });
        if self.concurrency.max_total == 0 {
            return invalid("the global concurrency limit must be at least 1");
        }
        if self.concurrency.max_per_host == 0 {
            return invalid("the per-host concurrency limit must be at least 1");
        }
        if self.retry.max_attempts == 0 {
            return invalid("the retry policy must allow at least one attempt");
        }
        if self.retry.backoff_cap < self.retry.backoff_base {
            return invalid("the backoff cap must not be below the backoff base");
        }
        Ok(())
    }
}

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
    /// The body stopped flowing: retried, and the concurrency window halves.
    Stalled,
    /// Retrying cannot help (404, a bad key, a decryption error, a full disk): the job gives up at once.
    Fatal {
        /// What happened, for people.
        detail: String,
    },
    /// The URL was refused (401, 403, 410), most likely because a signature expired: the engine asks the
    /// driver for fresh URLs with [`Action::RefreshUrls`], then retries.
    NeedsRefresh {
        /// The HTTP status.
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

    /// A fatal failure.
    pub fn fatal(detail: impl Into<String>) -> Self {
        Self::Fatal { detail: detail.into() }
    }

    /// Whether this failure is a sign of congestion (throttling or a stall).
    pub fn is_congestion(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Stalled)
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
            Self::Stalled => f.write_str("the response body stalled"),
            Self::Fatal { detail } => f.write_str(detail),
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
    /// [`RetryPolicy::max_attempts`] attempts failed.
    AttemptsExhausted,
    /// The next attempt would have come after [`RetryPolicy::max_retry_time`].
    RetryTimeExhausted,
    /// The job needed fresh URLs more than [`RetryPolicy::max_refreshes`] times.
    RefreshesExhausted,
    /// The driver could not obtain fresh URLs ([`Engine::handle_refresh_failed`]).
    RefreshFailed,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fatal => "the failure cannot be retried",
            Self::AttemptsExhausted => "every attempt failed",
            Self::RetryTimeExhausted => "the retry time ran out",
            Self::RefreshesExhausted => "fresh URLs were refused too",
            Self::RefreshFailed => "fresh URLs could not be obtained",
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
        /// back with [`Engine::handle_attempt_completed`] to have late reports of cancelled starts told
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
    /// identity, then call [`Engine::handle_refreshed`] or [`Engine::handle_refresh_failed`]. No job
    /// starts meanwhile.
    RefreshUrls {
        /// The job whose failure asked for it.
        job: JobId,
        /// The HTTP status that was answered.
        status: u16,
    },
    /// Every job is done or recorded as a gap. Terminal unless jobs are added.
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
    /// Not starting jobs: a new engine, or after [`Engine::suspend`].
    Suspended,
    /// Starting jobs.
    Running,
    /// Every job is done or a gap.
    Finished,
    /// A job failed under the strict policy.
    Failed,
    /// [`Engine::cancel`] was called.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Ready,
    Backoff,
    InFlight { started: Instant },
    AwaitingRefresh { status: u16 },
    Done,
    Gap,
    Failed,
    Dropped,
}

#[derive(Debug, Clone)]
struct Job {
    id: JobId,
    rendition: u32,
    host: u32,
    /// Timeline start and duration in nanoseconds: half the size of two `Duration`s, for plans of a
    /// hundred thousand jobs (584 years fit).
    start_ns: u64,
    duration_ns: u64,
    expected: Option<u64>,
    slot: Slot,
    /// Starts so far, cancelled ones included, so that `(job, attempt)` names one start.
    starts: u32,
    /// Failed attempts counted by the retry policy (not refusals asking for fresh URLs).
    failures: u32,
    refreshes: u32,
    first_failure: Option<Instant>,
    prefetch: bool,
}

impl Job {
    /// Its place in a host's ready queue: timeline start (a prefetch's moved earlier by the prefetch lead),
    /// then prefetches before the renditions' jobs, then rendition, then the order in which jobs were added
    /// (`index`).
    fn order(&self, prefetch_lead_ns: u64, index: u32) -> Reverse<(u64, u32, u32)> {
        if self.prefetch {
            return Reverse((self.start_ns.saturating_sub(prefetch_lead_ns), 0, index));
        }
        Reverse((self.start_ns, self.rendition.saturating_add(1), index))
    }

    fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_ns)
    }

    fn range(&self) -> TimeRange {
        let start = Duration::from_nanos(self.start_ns);
        TimeRange::new(start, self.duration())
    }
}

/// A multiplicative hasher for job ids. Ids are chosen by the driver, not by the network, so no
/// adversary can aim at collisions, and SipHash's cost (a third of planning a large asset) buys nothing.
#[derive(Debug, Clone, Copy, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: the odd multiplier spreads consecutive ids over high and low bits alike.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Per-rendition books. Sums are kept in `u128` (bytes, nanoseconds) so that no plan, however large or
/// hostile its numbers, can overflow them, and adding then removing a job restores them exactly.
#[derive(Debug, Clone, Default)]
struct Rendition {
    bandwidth: Option<u64>,
    total: usize,
    done: usize,
    gaps: usize,
    done_bytes: u128,
    done_duration_ns: u128,
    pending_known_bytes: u128,
    pending_unknown: usize,
    pending_unknown_ns: u128,
    loaded: RangeSet,
    expected: Option<TimeRange>,
}

impl Rendition {
    fn add_pending(&mut self, job: &Job) {
        match job.expected {
            Some(bytes) => self.pending_known_bytes += u128::from(bytes),
            None => {
                self.pending_unknown += 1;
                self.pending_unknown_ns += u128::from(job.duration_ns);
            }
        }
    }

    fn remove_pending(&mut self, job: &Job) {
        match job.expected {
            Some(bytes) => self.pending_known_bytes -= u128::from(bytes),
            None => {
                self.pending_unknown -= 1;
                self.pending_unknown_ns -= u128::from(job.duration_ns);
            }
        }
    }

    fn add_done(&mut self, job: &Job, bytes: u64) {
        self.done += 1;
        self.done_bytes += u128::from(bytes);
        self.done_duration_ns += u128::from(job.duration_ns);
        self.loaded.insert(job.range());
    }

    fn progress(&self, index: usize) -> RenditionProgress {
        // Before any segment is stored, the declared bandwidth is the only guide; afterwards the measured
        // bytes per second of media is better, since BANDWIDTH is a peak and overestimates.
        let rate = if self.done_duration_ns > 0 && self.done_bytes > 0 {
            Some(self.done_bytes as f64 / (self.done_duration_ns as f64 / 1e9))
        } else {
            self.bandwidth.map(|bps| bps as f64 / 8.0)
        };
        // The float-to-int cast saturates, so an absurd estimate stays a number.
        let estimate = rate.map_or(0, |rate| (rate * (self.pending_unknown_ns as f64 / 1e9)).round() as u128);
        let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        RenditionProgress {
            rendition: index,
            bytes_done: clamp(self.done_bytes),
            bytes_expected: clamp(self.done_bytes + self.pending_known_bytes + estimate),
            bytes_expected_exact: self.pending_unknown == 0,
            segments_done: self.done,
            segments_total: self.total,
            segments_missing: self.gaps,
            loaded_duration: self.loaded.total(),
        }
    }
}

#[derive(Debug, Clone)]
struct Host {
    name: Box<str>,
    in_flight: usize,
    /// Ready jobs by (timeline start, rendition, job index). Entries whose job is no longer ready are
    /// skipped when they reach the top.
    ready: BinaryHeap<Reverse<(u64, u32, u32)>>,
    paused_until: Option<Instant>,
}

/// The sans-IO download engine. See the [module documentation](self).
///
/// ```
/// use std::time::{Duration, Instant};
/// use stowage_task::engine::{Action, Engine, EngineConfig, JobId, JobSpec, Outcome, Plan, RenditionSpec};
///
/// let mut plan = Plan::new();
/// let video = plan.add_rendition(RenditionSpec::new().bandwidth(2_000_000));
/// for i in 0..3u64 {
///     let start = Duration::from_secs(6 * i);
///     plan.add_job(JobSpec::new(JobId(i), video, start, Duration::from_secs(6), "cdn.example"));
/// }
/// let mut engine = Engine::new(EngineConfig::default(), plan)?;
/// let now = Instant::now();
/// engine.resume(now);
/// let mut started = Vec::new();
/// while let Some(action) = engine.poll_action() {
///     if let Action::Start { job, .. } = action {
///         started.push(job);
///     }
/// }
/// assert_eq!(started, [JobId(0), JobId(1), JobId(2)]);
/// for job in started {
///     engine.handle_completed(now + Duration::from_millis(40), job, Outcome::success(1_500_000));
/// }
/// assert_eq!(engine.poll_action(), Some(Action::Finished { complete: true, gaps: 0 }));
/// # Ok::<(), stowage_task::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    state: EngineState,
    jobs: Vec<Job>,
    index: HashMap<JobId, u32, BuildHasherDefault<IdHasher>>,
    renditions: Vec<Rendition>,
    hosts: Vec<Host>,
    backoff: BinaryHeap<Reverse<(Instant, u32)>>,
    actions: VecDeque<Action>,
    rng: SplitMix64,
    controller: Controller,
    in_flight: usize,
    /// Jobs neither done nor recorded as gaps.
    remaining: usize,
    gaps: usize,
    refresh_pending: bool,
}

impl Engine {
    /// Builds an engine for `plan`. It starts suspended, as a new download task does: call
    /// [`resume`](Self::resume) to start.
    ///
    /// Fails on an invalid configuration, a job id used twice, or a job naming a rendition the plan does
    /// not have.
    pub fn new(config: EngineConfig, plan: Plan<'_>) -> Result<Self, Error> {
        config.validate()?;
        let limits = &config.concurrency;
        let controller = Controller::new(limits.adaptive, limits.initial, limits.max_total);
        let mut engine = Self {
            rng: SplitMix64::new(config.seed),
            config,
            state: EngineState::Suspended,
            jobs: Vec::new(),
            index: HashMap::default(),
            renditions: Vec::new(),
            hosts: Vec::new(),
            backoff: BinaryHeap::new(),
            actions: VecDeque::new(),
            controller,
            in_flight: 0,
            remaining: 0,
            gaps: 0,
            refresh_pending: false,
        };
        for rendition in plan.renditions {
            engine.add_rendition(rendition);
        }
        engine.insert_jobs(plan.jobs)?;
        Ok(engine)
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The overall state.
    pub fn state(&self) -> EngineState {
        self.state
    }

    /// Jobs in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Jobs in flight now on `host`.
    pub fn in_flight_on(&self, host: &str) -> usize {
        self.hosts.iter().find(|h| &*h.name == host).map_or(0, |h| h.in_flight)
    }

    /// The current concurrency window (between one and the global limit).
    pub fn window(&self) -> usize {
        self.controller.window()
    }

    /// Where a job stands, or `None` for an id the engine does not know.
    pub fn job_status(&self, job: JobId) -> Option<JobStatus> {
        let index = *self.index.get(&job)?;
        Some(match self.jobs[index as usize].slot {
            Slot::Ready => JobStatus::Ready,
            Slot::Backoff => JobStatus::Backoff,
            Slot::InFlight { .. } => JobStatus::InFlight,
            Slot::AwaitingRefresh { .. } => JobStatus::AwaitingRefresh,
            Slot::Done => JobStatus::Done,
            Slot::Gap => JobStatus::Gap,
            Slot::Failed => JobStatus::Failed,
            Slot::Dropped => JobStatus::Dropped,
        })
    }

    /// The number of jobs in the plan.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// The number of renditions in the plan.
    pub fn rendition_count(&self) -> usize {
        self.renditions.len()
    }

    /// The time ranges of `rendition` loaded so far, sorted and merged. Empty for an unknown rendition.
    pub fn loaded_ranges(&self, rendition: usize) -> &[TimeRange] {
        self.renditions.get(rendition).map_or(&[], |r| r.loaded.as_slice())
    }

    /// The range `rendition` is expected to load: from the earliest job start to the latest job end.
    pub fn expected_range(&self, rendition: usize) -> Option<TimeRange> {
        self.renditions.get(rendition)?.expected
    }

    /// The "loaded time range added" event for a job that is done: its range, with every range of its
    /// rendition loaded so far and the range expected. `None` for a job that is not done (or unknown).
    pub fn loaded_time_range(&self, job: JobId) -> Option<LoadedTimeRange> {
        let job = &self.jobs[*self.index.get(&job)? as usize];
        if job.slot != Slot::Done || job.prefetch {
            return None;
        }
        let rendition = job.rendition as usize;
        Some(LoadedTimeRange::new(
            rendition,
            job.range(),
            self.loaded_ranges(rendition).to_vec(),
            self.expected_range(rendition),
        ))
    }

    /// Bytes and segments done and expected, per rendition and in total.
    ///
    /// Expected bytes are exact once every remaining job's size is known; before, the unknown ones are
    /// estimated from the media rate measured on stored segments, or from the declared bandwidth ×
    /// duration while none is stored. Gaps are not expected any more.
    pub fn progress(&self) -> Progress {
        let renditions: Vec<RenditionProgress> =
            self.renditions.iter().enumerate().map(|(i, r)| r.progress(i)).collect();
        Progress::from_renditions(renditions)
    }

    /// Adds a rendition to a running plan (to augment a download) and returns its index.
    pub fn add_rendition(&mut self, rendition: RenditionSpec) -> usize {
        self.renditions.push(Rendition { bandwidth: rendition.bandwidth, ..Rendition::default() });
        self.renditions.len() - 1
    }

    /// Adds jobs to the plan, for instance the segments of a media selection added to a download.
    ///
    /// Either every job is added or, on error, none. A finished engine runs again; a running one starts
    /// the new jobs in their place on the timeline. Fails once the engine failed or was cancelled.
    pub fn add_jobs<'a>(
        &mut self,
        now: Instant,
        jobs: impl IntoIterator<Item = JobSpec<'a>>,
    ) -> Result<(), Error> {
        if self.state.is_closed() {
            return Err(Error::EngineClosed);
        }
        let jobs: Vec<JobSpec<'a>> = jobs.into_iter().collect();
        if jobs.is_empty() {
            return Ok(());
        }
        self.insert_jobs(jobs)?;
        if self.state == EngineState::Finished {
            self.state = EngineState::Running;
        }
        self.dispatch(now);
        self.check_finished();
        Ok(())
    }

    fn insert_jobs(&mut self, jobs: Vec<JobSpec<'_>>) -> Result<(), Error> {
        // Validate everything first so that a bad batch leaves the engine as it was. Ids are entered in
        // the index as they are checked (one hash per job), and taken out again if the batch is refused.
        let first = self.jobs.len();
        if first + jobs.len() > u32::MAX as usize {
            return Err(Error::InvalidConfig { reason: "a plan holds at most 2^32 - 1 jobs" });
        }
        self.index.reserve(jobs.len());
        for (offset, job) in jobs.iter().enumerate() {
            let refused = if job.rendition >= self.renditions.len() {
                Some(Error::UnknownRendition { job: job.id, rendition: job.rendition })
            } else if let Some(previous) = self.index.insert(job.id, (first + offset) as u32) {
                self.index.insert(job.id, previous);
                Some(Error::DuplicateJob { job: job.id })
            } else {
                None
            };
            if let Some(error) = refused {
                // Remove the ids this batch entered, keeping those that were there before it.
                for earlier in &jobs[..offset] {
                    if self.index.get(&earlier.id).is_some_and(|&i| i as usize >= first) {
                        self.index.remove(&earlier.id);
                    }
                }
                return Err(error);
            }
        }
        self.jobs.reserve(jobs.len());
        for spec in jobs {
            let index = self.jobs.len() as u32;
            let host = self.intern(spec.host);
            let job = Job {
                id: spec.id,
                rendition: spec.rendition as u32,
                host,
                start_ns: nanos(spec.start),
                duration_ns: nanos(spec.duration),
                expected: spec.expected_size,
                slot: Slot::Ready,
                starts: 0,
                failures: 0,
                refreshes: 0,
                first_failure: None,
                prefetch: spec.prefetch,
            };
            if spec.prefetch {
                // Outside the renditions' books: neither progress nor the task's end waits for it.
                let mut job = job;
                match spec.finished {
                    Some(_) => job.slot = Slot::Done,
                    None => self.hosts[host as usize]
                        .ready
                        .push(job.order(nanos(self.config.prefetch_lead), index)),
                }
                self.jobs.push(job);
                continue;
            }
            let rendition = &mut self.renditions[spec.rendition];
            rendition.total += 1;
            let range = TimeRange::new(spec.start, spec.duration);
            rendition.expected = Some(match rendition.expected {
                Some(e) => TimeRange { start: e.start.min(range.start), end: e.end.max(range.end) },
                None => range,
            });
            let mut job = job;
            match spec.finished {
                Some(bytes) => {
                    job.slot = Slot::Done;
                    rendition.add_done(&job, bytes);
                }
                None => {
                    rendition.add_pending(&job);
                    self.remaining += 1;
                    self.hosts[host as usize].ready.push(job.order(nanos(self.config.prefetch_lead), index));
                }
            }
            self.jobs.push(job);
        }
        Ok(())
    }

    fn intern(&mut self, host: &str) -> u32 {
        if let Some(i) = self.hosts.iter().position(|h| &*h.name == host) {
            return i as u32;
        }
        self.hosts.push(Host {
            name: host.into(),
            in_flight: 0,
            ready: BinaryHeap::new(),
            paused_until: None,
        });
        (self.hosts.len() - 1) as u32
    }

    /// The next action for the driver, in the order they arose.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the engine next needs [`handle_timeout`](Self::handle_timeout): the end of the earliest retry
    /// delay or host pause. `None` while nothing waits on time (or the engine is not running).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.state != EngineState::Running {
            return None;
        }
        while let Some(&Reverse((_, index))) = self.backoff.peek() {
            if self.jobs[index as usize].slot == Slot::Backoff {
                break;
            }
            self.backoff.pop();
        }
        let retry = self.backoff.peek().map(|Reverse((at, _))| *at);
        let pause = self.hosts.iter().filter(|h| !h.ready.is_empty()).filter_map(|h| h.paused_until).min();
        match (retry, pause) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: wake jobs whose retry delay is over, lift host pauses, and start what may start.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != EngineState::Running {
            return;
        }
        self.wake_due(now);
        self.dispatch(now);
    }

    /// A started job ended.
    ///
    /// A success is accepted for any job not yet done, also one that was cancelled by a suspend while its
    /// bytes were being stored: stored work is never fetched again. A failure is taken only for a job in
    /// flight; a failure of a start the engine already cancelled is ignored, as are reports for unknown
    /// jobs and reports after the engine failed or was cancelled.
    ///
    /// When a cancelled job may already have been started again, a late failure of the cancelled start
    /// cannot be told from a failure of the new one here; use
    /// [`handle_attempt_completed`](Self::handle_attempt_completed), which can.
    pub fn handle_completed(&mut self, now: Instant, job: JobId, outcome: Outcome) {
        self.complete(now, job, None, outcome);
    }

    /// A start of a job ended: `attempt` is the number its [`Action::Start`] carried.
    ///
    /// A report about an earlier start than the one in flight is told apart: its failure is ignored, and
    /// its success is kept (the bytes are stored) while the newer start is cancelled with
    /// [`Action::Cancel`]. Otherwise as [`handle_completed`](Self::handle_completed).
    pub fn handle_attempt_completed(&mut self, now: Instant, job: JobId, attempt: u32, outcome: Outcome) {
        self.complete(now, job, Some(attempt), outcome);
    }

    fn complete(&mut self, now: Instant, job: JobId, attempt: Option<u32>, outcome: Outcome) {
        if self.state.is_closed() {
            return;
        }
        let Some(&index) = self.index.get(&job) else {
            return;
        };
        let slot = self.jobs[index as usize].slot;
        let stale = attempt.is_some_and(|a| a != self.jobs[index as usize].starts);
        match (slot, outcome) {
            (Slot::InFlight { .. }, Outcome::Success { bytes }) if stale => {
                // An earlier start stored the bytes after all: keep them and stop the newer start.
                self.leave_flight(index);
                self.actions.push_back(Action::Cancel { job });
                self.mark_done(index, bytes);
            }
            (Slot::InFlight { .. }, Outcome::Failure(_)) if stale => return,
            (Slot::InFlight { started }, Outcome::Success { bytes }) => {
                self.leave_flight(index);
                self.controller.on_success(now, started, bytes);
                self.mark_done(index, bytes);
            }
            (Slot::Ready | Slot::Backoff | Slot::AwaitingRefresh { .. }, Outcome::Success { bytes }) => {
                // Stale heap entries of this job are skipped when they surface.
                self.mark_done(index, bytes);
            }
            (Slot::InFlight { started }, Outcome::Failure(failure)) => {
                self.leave_flight(index);
                self.on_failure(now, index, started, failure);
            }
            _ => return,
        }
        self.dispatch(now);
        self.check_finished();
    }

    /// The driver obtained fresh URLs: jobs waiting for them are ready again and starts resume.
    pub fn handle_refreshed(&mut self, now: Instant) {
        if self.state.is_closed() || !self.refresh_pending {
            return;
        }
        self.requeue_awaiting_refresh(false);
        self.dispatch(now);
    }

    /// The driver stopped waiting for fresh URLs without an answer (the task was suspended while the hook
    /// ran): jobs waiting for them are ready again with the URLs they have, and the refresh they asked for
    /// is not counted, so a refusal after [`Engine::resume`] asks again.
    pub fn handle_refresh_abandoned(&mut self, now: Instant) {
        if self.state.is_closed() || !self.refresh_pending {
            return;
        }
        self.requeue_awaiting_refresh(true);
        self.dispatch(now);
    }

    /// Ends the pending refresh: jobs waiting for it are ready again, in their places on the timeline;
    /// `uncount` takes back the refresh each of them was charged when it asked.
    fn requeue_awaiting_refresh(&mut self, uncount: bool) {
        self.refresh_pending = false;
        for index in 0..self.jobs.len() {
            let job = &mut self.jobs[index];
            if let Slot::AwaitingRefresh { .. } = job.slot {
                if uncount {
                    job.refreshes = job.refreshes.saturating_sub(1);
                }
                self.make_ready(index as u32);
            }
        }
    }

    /// Makes job `index` ready and puts it in its host's queue, in its place on the timeline.
    fn make_ready(&mut self, index: u32) {
        let lead = nanos(self.config.prefetch_lead);
        let job = &mut self.jobs[index as usize];
        job.slot = Slot::Ready;
        self.hosts[job.host as usize].ready.push(job.order(lead, index));
    }

    /// The driver could not obtain fresh URLs: every job waiting for them gives up (a gap each under the
    /// tolerant policy, the task's failure under the strict one).
    pub fn handle_refresh_failed(&mut self, now: Instant) {
        if self.state.is_closed() || !self.refresh_pending {
            return;
        }
        self.refresh_pending = false;
        for index in 0..self.jobs.len() {
            if self.state.is_closed() {
                break;
            }
            if let Slot::AwaitingRefresh { status } = self.jobs[index].slot {
                self.give_up(index as u32, Failure::NeedsRefresh { status }, GiveUpReason::RefreshFailed);
            }
        }
        self.dispatch(now);
        self.check_finished();
    }

    /// Starts (or restarts) the engine. A finished plan reports [`Action::Finished`] at once.
    pub fn resume(&mut self, now: Instant) {
        if self.state != EngineState::Suspended {
            return;
        }
        self.state = EngineState::Running;
        self.wake_due(now);
        self.dispatch(now);
        self.check_finished();
    }

    /// Stops starting jobs and cancels those in flight ([`Action::Cancel`] for each), which go back to
    /// the ready queue; a cancelled attempt does not count against the retry policy.
    pub fn suspend(&mut self) {
        if self.state != EngineState::Running {
            return;
        }
        self.state = EngineState::Suspended;
        self.cancel_in_flight(true);
        self.controller.on_pause();
    }

    /// Cancels the task: [`Action::Cancel`] for each job in flight, then [`Action::Cancelled`].
    pub fn cancel(&mut self) {
        if self.state.is_closed() {
            return;
        }
        self.cancel_in_flight(false);
        self.state = EngineState::Cancelled;
        self.actions.push_back(Action::Cancelled);
    }

    fn cancel_in_flight(&mut self, requeue: bool) {
        if self.in_flight == 0 {
            return;
        }
        for index in 0..self.jobs.len() {
            if let Slot::InFlight { .. } = self.jobs[index].slot {
                self.leave_flight(index as u32);
                let job = &mut self.jobs[index];
                job.slot = Slot::Ready;
                self.actions.push_back(Action::Cancel { job: job.id });
                if requeue {
                    self.make_ready(index as u32);
                }
            }
        }
    }

    fn leave_flight(&mut self, index: u32) {
        let job = &mut self.jobs[index as usize];
        job.slot = Slot::Ready;
        self.hosts[job.host as usize].in_flight -= 1;
        self.in_flight -= 1;
    }

    fn mark_done(&mut self, index: u32, bytes: u64) {
        let job = &mut self.jobs[index as usize];
        job.slot = Slot::Done;
        if job.prefetch {
            return;
        }
        let rendition = &mut self.renditions[job.rendition as usize];
        rendition.remove_pending(job);
        rendition.add_done(job, bytes);
        self.remaining -= 1;
    }

    fn on_failure(&mut self, now: Instant, index: u32, started: Instant, failure: Failure) {
        let retry = &self.config.retry;
        let job = &mut self.jobs[index as usize];
        let retry_after = match &failure {
            Failure::Fatal { .. } => {
                job.failures += 1;
                return self.give_up(index, failure, GiveUpReason::Fatal);
            }
            Failure::NeedsRefresh { status } => {
                job.refreshes = job.refreshes.saturating_add(1);
                if job.refreshes > retry.max_refreshes {
                    return self.give_up(index, failure, GiveUpReason::RefreshesExhausted);
                }
                let status = *status;
                job.slot = Slot::AwaitingRefresh { status };
                if !self.refresh_pending {
                    self.refresh_pending = true;
                    self.actions.push_back(Action::RefreshUrls { job: job.id, status });
                }
                return;
            }
            Failure::Superseded { .. } => {
                // Ready again at once, in its place on the timeline; while a refresh is pending it waits
                // for it like every other start.
                self.make_ready(index);
                return;
            }
            Failure::Retryable { retry_after, .. } => *retry_after,
            Failure::Throttled { retry_after, .. } => *retry_after,
            Failure::Stalled => None,
        };
        let first_failure = *job.first_failure.get_or_insert(now);
        job.failures += 1;
        let failures = job.failures;
        let attempt = job.starts;
        let host = job.host as usize;
        if failure.is_congestion() {
            self.controller.on_congestion(now, started);
        }
        if let (Failure::Throttled { .. }, Some(after)) = (&failure, retry_after) {
            // No origin pauses a host for longer than a job may wait to be retried.
            let until = now.checked_add(after.min(retry.max_retry_time));
            if let Some(until) = until {
                let host = &mut self.hosts[host];
                host.paused_until = Some(host.paused_until.map_or(until, |p| p.max(until)));
            }
        }
        if failures >= retry.max_attempts {
            return self.give_up(index, failure, GiveUpReason::AttemptsExhausted);
        }
        let delay = match retry_after {
            Some(after) => after,
            None => {
                let ceiling = retry.backoff_ceiling(failures);
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(self.rng.below_inclusive(nanos))
            }
        };
        // Checked sums: a `Retry-After` of centuries must give up, not overflow the clock.
        let deadline = first_failure.checked_add(self.config.retry.max_retry_time);
        let due = match now.checked_add(delay) {
            Some(due) if deadline.is_none_or(|d| due <= d) => due,
            _ => return self.give_up(index, failure, GiveUpReason::RetryTimeExhausted),
        };
        let job = &mut self.jobs[index as usize];
        job.slot = Slot::Backoff;
        self.backoff.push(Reverse((due, index)));
        self.actions.push_back(Action::Retried { job: job.id, attempt, cause: failure, delay });
    }

    fn give_up(&mut self, index: u32, cause: Failure, reason: GiveUpReason) {
        let job = &mut self.jobs[index as usize];
        if job.prefetch {
            job.slot = Slot::Dropped;
            return;
        }
        let failure =
            JobFailure { job: job.id, cause, attempts: job.failures.saturating_add(job.refreshes), reason };
        match self.config.integrity {
            IntegrityPolicy::Tolerant => {
                job.slot = Slot::Gap;
                let rendition = &mut self.renditions[job.rendition as usize];
                rendition.remove_pending(job);
                rendition.gaps += 1;
                self.remaining -= 1;
                self.gaps += 1;
                self.actions.push_back(Action::GapRecorded(failure));
            }
            IntegrityPolicy::Strict => {
                job.slot = Slot::Failed;
                self.cancel_in_flight(false);
                self.state = EngineState::Failed;
                self.actions.push_back(Action::Failed(failure));
            }
        }
    }

    fn wake_due(&mut self, now: Instant) {
        while let Some(&Reverse((at, index))) = self.backoff.peek() {
            if at > now {
                break;
            }
            self.backoff.pop();
            if self.jobs[index as usize].slot == Slot::Backoff {
                self.make_ready(index);
            }
        }
        for host in &mut self.hosts {
            if host.paused_until.is_some_and(|until| until <= now) {
                host.paused_until = None;
            }
        }
    }

    /// Starts ready jobs in timeline order while the window, the global limit and the host limits allow.
    fn dispatch(&mut self, now: Instant) {
        if self.state != EngineState::Running || self.refresh_pending {
            return;
        }
        let window = self.controller.window().min(self.config.concurrency.max_total);
        let per_host = self.config.concurrency.max_per_host;
        let mut window_was_limit = false;
        loop {
            if self.in_flight >= window {
                window_was_limit = true;
                break;
            }
            let mut best: Option<(usize, (u64, u32, u32))> = None;
            for (h, host) in self.hosts.iter_mut().enumerate() {
                if host.in_flight >= per_host || host.paused_until.is_some_and(|until| until > now) {
                    continue;
                }
                // Drop entries of jobs that left the ready state by another way (a raced success).
                while let Some(&Reverse((_, _, index))) = host.ready.peek() {
                    if self.jobs[index as usize].slot == Slot::Ready {
                        break;
                    }
                    host.ready.pop();
                }
                if let Some(&Reverse(key)) = host.ready.peek()
                    && best.is_none_or(|(_, b)| key < b)
                {
                    best = Some((h, key));
                }
            }
            let Some((h, (_, _, index))) = best else {
                break;
            };
            self.hosts[h].ready.pop();
            self.hosts[h].in_flight += 1;
            self.in_flight += 1;
            let job = &mut self.jobs[index as usize];
            job.slot = Slot::InFlight { started: now };
            job.starts = job.starts.saturating_add(1);
            self.actions.push_back(Action::Start { job: job.id, attempt: job.starts });
        }
        self.controller.on_dispatch(now, window_was_limit);
    }

    fn check_finished(&mut self) {
        if self.state == EngineState::Running && self.remaining == 0 && self.in_flight == 0 {
            self.state = EngineState::Finished;
            self.actions.push_back(Action::Finished { complete: self.gaps == 0, gaps: self.gaps });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's share of memory per planned job is its `Job` record, one ready-queue entry and one
    /// index entry (about 130 bytes in all on 64-bit targets); this keeps it from growing unnoticed.
    #[test]
    fn per_job_state_stays_small() {
        assert!(size_of::<Job>() <= 96, "Job grew to {} bytes", size_of::<Job>());
        assert!(size_of::<Reverse<(u64, u32, u32)>>() <= 16);
    }
}
