//! What a task has done so far, per rendition and in total, and what a rendition has loaded.
//!
//! The engine keeps these books ([`Engine::progress`](super::Engine::progress),
//! [`Engine::loaded_time_range`](super::Engine::loaded_time_range)); the task's events carry them as they
//! are (see [`TaskEvent`](crate::events::TaskEvent)).

use std::time::Duration;

use super::TimeRange;

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

    #[test]
    fn fractions_stay_in_range() {
        let p = Progress::from_renditions(vec![]);
        assert_eq!(p.fraction(), 1.0, "nothing to do is done");
        assert!(p.bytes_expected_exact);
    }
}
