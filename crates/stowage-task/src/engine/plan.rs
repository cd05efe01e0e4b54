//! What the engine is given: the renditions and jobs of a plan, named by the caller's [`JobId`]s.

use std::fmt;
use std::time::Duration;

use super::LiveSpec;

/// The caller's name for a job: opaque to the engine, unique within one engine.
///
/// A driver typically numbers its planned segments (and keys, and init sections) and keeps the
/// segment identity beside the number; the engine never needs more than the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::exhaustive_structs, reason = "a newtype of the caller's number")]
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
    /// Set for a live rendition being recorded: its playlist is reloaded (see the
    /// [engine](super)'s section on recording live streams) and its jobs come as the playlist grows.
    pub live: Option<LiveSpec>,
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

    /// Makes the rendition a live one, recorded as its playlist grows.
    #[must_use]
    pub fn live(mut self, spec: LiveSpec) -> Self {
        self.live = Some(spec);
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
    /// Give it the start of the first job that needs it: it is started [`EngineConfig::prefetch_lead`](super::EngineConfig::prefetch_lead)
    /// earlier on the timeline, before every other job of that time, within the same limits. It is not part of the progress (bytes, segments, time
    /// ranges) and the task does not wait for it once every other job is done. It is retried, and asks
    /// for fresh URLs, like any job; but one that gives up is only dropped ([`JobStatus::Dropped`](super::JobStatus::Dropped)): it
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
    pub(super) renditions: Vec<RenditionSpec>,
    pub(super) jobs: Vec<JobSpec<'a>>,
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
