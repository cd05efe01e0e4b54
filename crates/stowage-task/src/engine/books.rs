//! The engine's private books: per job, per rendition and per host.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::Hasher;
use std::time::{Duration, Instant};

use stowage_bundle::TimeRanges;

use super::{JobId, RenditionProgress, TimeRange};

/// Where a job stands, with what the engine needs to know about that state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Ready,
    Backoff,
    InFlight { started: Instant },
    AwaitingRefresh { status: u16 },
    Done,
    Gap,
    Failed,
    Dropped,
}

/// The engine's record of one job, kept small: a plan may hold a hundred thousand.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) id: JobId,
    pub(super) rendition: u32,
    pub(super) host: u32,
    /// Timeline start and duration in nanoseconds: half the size of two `Duration`s, for plans of a
    /// hundred thousand jobs (584 years fit).
    pub(super) start_ns: u64,
    pub(super) duration_ns: u64,
    pub(super) expected: Option<u64>,
    pub(super) slot: Slot,
    /// Starts so far, cancelled ones included, so that `(job, attempt)` names one start.
    pub(super) starts: u32,
    /// Failed attempts counted by the retry policy (not refusals asking for fresh URLs).
    pub(super) failures: u32,
    pub(super) refreshes: u32,
    /// When the first failed attempt started: the retry time counts from there.
    pub(super) first_failure: Option<Instant>,
    pub(super) prefetch: bool,
}

impl Job {
    /// Its place in a host's ready queue: timeline start (a prefetch's moved earlier by the prefetch lead),
    /// then prefetches before the renditions' jobs, then rendition, then the order in which jobs were added
    /// (`index`).
    pub(super) fn order(&self, prefetch_lead_ns: u64, index: u32) -> Reverse<(u64, u32, u32)> {
        if self.prefetch {
            return Reverse((self.start_ns.saturating_sub(prefetch_lead_ns), 0, index));
        }
        Reverse((self.start_ns, self.rendition.saturating_add(1), index))
    }

    pub(super) fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_ns)
    }

    pub(super) fn range(&self) -> TimeRange {
        let start = Duration::from_nanos(self.start_ns);
        TimeRange::starting_at(start, self.duration())
    }
}

/// A multiplicative hasher for job ids. Ids are chosen by the driver, not by the network, so no
/// adversary can aim at collisions, and SipHash's cost (a third of planning a large asset) buys nothing.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IdHasher(u64);

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

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Per-rendition books. Sums are kept in `u128` (bytes, nanoseconds) so that no plan, however large or
/// hostile its numbers, can overflow them, and adding then removing a job restores them exactly.
#[derive(Debug, Clone, Default)]
pub(super) struct Rendition {
    pub(super) bandwidth: Option<u64>,
    pub(super) total: usize,
    pub(super) done: usize,
    pub(super) gaps: usize,
    pub(super) done_bytes: u128,
    pub(super) done_duration_ns: u128,
    pub(super) pending_known_bytes: u128,
    pub(super) pending_unknown: usize,
    pub(super) pending_unknown_ns: u128,
    pub(super) loaded: TimeRanges,
    pub(super) expected: Option<TimeRange>,
}

impl Rendition {
    pub(super) fn add_pending(&mut self, job: &Job) {
        match job.expected {
            Some(bytes) => self.pending_known_bytes += u128::from(bytes),
            None => {
                self.pending_unknown += 1;
                self.pending_unknown_ns += u128::from(job.duration_ns);
            }
        }
    }

    pub(super) fn remove_pending(&mut self, job: &Job) {
        match job.expected {
            Some(bytes) => self.pending_known_bytes -= u128::from(bytes),
            None => {
                self.pending_unknown -= 1;
                self.pending_unknown_ns -= u128::from(job.duration_ns);
            }
        }
    }

    pub(super) fn add_done(&mut self, job: &Job, bytes: u64) {
        self.done += 1;
        self.done_bytes += u128::from(bytes);
        self.done_duration_ns += u128::from(job.duration_ns);
        self.loaded.insert(job.range());
    }

    pub(super) fn progress(&self, index: usize) -> RenditionProgress {
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
        let mut progress = RenditionProgress::new(index);
        progress.bytes_done = clamp(self.done_bytes);
        progress.bytes_expected = clamp(self.done_bytes + self.pending_known_bytes + estimate);
        progress.bytes_expected_exact = self.pending_unknown == 0;
        progress.segments_done = self.done;
        progress.segments_total = self.total;
        progress.segments_missing = self.gaps;
        progress.loaded_duration = self.loaded.total();
        progress
    }
}

/// One host's jobs in flight, ready queue and pause.
#[derive(Debug, Clone)]
pub(super) struct Host {
    pub(super) name: Box<str>,
    pub(super) in_flight: usize,
    /// Ready jobs by (timeline start, rendition, job index). Entries whose job is no longer ready are
    /// skipped when they reach the top.
    pub(super) ready: BinaryHeap<Reverse<(u64, u32, u32)>>,
    pub(super) paused_until: Option<Instant>,
    /// Whether the host pushed back in this run (a throttling answer, a stall, a transient failure such
    /// as a connection error or a 5xx): it is then held to the per-host limit, never taken past it.
    pub(super) strained: bool,
}

/// The engine's job records, by index (the order in which jobs were added, from 0). A recording adds jobs
/// for as long as it runs: the records of the oldest jobs, once every one of them is over, can be let go
/// ([`forget_over`](Self::forget_over)), so that what the engine holds is what is not over yet, not the
/// whole recording. Indexes keep counting from where they were: those of forgotten jobs are never reused.
#[derive(Debug, Clone, Default)]
pub(super) struct JobBook {
    /// The index of the first record kept.
    base: u32,
    records: VecDeque<Job>,
}

impl JobBook {
    /// The index the next job added gets: the number of jobs ever added.
    pub(super) fn end(&self) -> u32 {
        self.base + self.records.len() as u32
    }

    /// The indexes of the records kept.
    pub(super) fn indices(&self) -> std::ops::Range<u32> {
        self.base..self.end()
    }

    /// How many records are kept.
    pub(super) fn kept(&self) -> usize {
        self.records.len()
    }

    pub(super) fn reserve(&mut self, additional: usize) {
        self.records.reserve(additional);
    }

    pub(super) fn push(&mut self, job: Job) {
        self.records.push_back(job);
    }

    /// The record of job `index`, unless it was let go.
    pub(super) fn get(&self, index: u32) -> Option<&Job> {
        self.records.get(index.checked_sub(self.base)? as usize)
    }

    /// Lets go of the records of the oldest jobs while they are over (done, a gap, dropped or failed);
    /// `forgotten` is told each one's id.
    pub(super) fn forget_over(&mut self, mut forgotten: impl FnMut(JobId)) {
        while let Some(job) = self.records.front() {
            if !matches!(job.slot, Slot::Done | Slot::Gap | Slot::Dropped | Slot::Failed) {
                break;
            }
            forgotten(job.id);
            self.records.pop_front();
            self.base += 1;
        }
    }
}

impl std::ops::Index<u32> for JobBook {
    type Output = Job;

    /// The record of job `index`, which the caller knows is kept (found through the id index, or an index
    /// of the kept range).
    fn index(&self, index: u32) -> &Job {
        &self.records[(index - self.base) as usize]
    }
}

impl std::ops::IndexMut<u32> for JobBook {
    fn index_mut(&mut self, index: u32) -> &mut Job {
        &mut self.records[(index - self.base) as usize]
    }
}
