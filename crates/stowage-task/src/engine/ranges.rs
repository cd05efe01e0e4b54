//! Merged time ranges: what part of a rendition's timeline is loaded.

use std::time::Duration;

/// A half-open span `start..end` of a rendition's timeline, measured from the start of its playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeRange {
    /// Where the range begins.
    pub start: Duration,
    /// Where the range ends (exclusive).
    pub end: Duration,
}

impl TimeRange {
    /// The range `start..start + duration`.
    pub fn new(start: Duration, duration: Duration) -> Self {
        Self { start, end: start.saturating_add(duration) }
    }

    /// The length of the range.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range covers no time at all.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Ranges whose ends are closer than this are joined.
///
/// Segment start times are usually sums of decimal `EXTINF` durations converted to nanoseconds, so two
/// neighbours can disagree by a few nanoseconds of rounding. A millisecond is far below anything a player
/// could show as a hole, and far above any rounding error.
const JOIN_TOLERANCE: Duration = Duration::from_millis(1);

/// A sorted list of disjoint, non-adjacent time ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<TimeRange>,
}

impl RangeSet {
    pub(crate) fn as_slice(&self) -> &[TimeRange] {
        &self.ranges
    }

    /// Adds `range`, merging it with every range it overlaps or touches.
    pub(crate) fn insert(&mut self, range: TimeRange) {
        if range.is_empty() {
            return;
        }
        // The first range whose end reaches the new start (with tolerance) is the first merge candidate.
        let first = self.ranges.partition_point(|r| r.end.saturating_add(JOIN_TOLERANCE) < range.start);
        let mut merged = range;
        let mut last = first;
        while last < self.ranges.len() && self.ranges[last].start <= merged.end.saturating_add(JOIN_TOLERANCE)
        {
            merged.start = merged.start.min(self.ranges[last].start);
            merged.end = merged.end.max(self.ranges[last].end);
            last += 1;
        }
        self.ranges.splice(first..last, std::iter::once(merged));
    }

    /// The total time covered.
    pub(crate) fn total(&self) -> Duration {
        self.ranges.iter().map(TimeRange::duration).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u64, b: u64) -> TimeRange {
        TimeRange { start: Duration::from_secs(a), end: Duration::from_secs(b) }
    }

    #[test]
    fn merges_adjacent_and_overlapping_in_any_order() {
        let mut set = RangeSet::default();
        set.insert(r(4, 6));
        set.insert(r(0, 2));
        assert_eq!(set.as_slice(), &[r(0, 2), r(4, 6)]);
        set.insert(r(2, 4));
        assert_eq!(set.as_slice(), &[r(0, 6)]);
        set.insert(r(10, 12));
        set.insert(r(8, 9));
        set.insert(r(5, 11));
        assert_eq!(set.as_slice(), &[r(0, 12)]);
        assert_eq!(set.total(), Duration::from_secs(12));
    }

    #[test]
    fn rounding_noise_does_not_leave_holes() {
        let mut set = RangeSet::default();
        set.insert(TimeRange::new(Duration::ZERO, Duration::from_nanos(6_006_000_000)));
        set.insert(TimeRange::new(Duration::from_nanos(6_006_000_001), Duration::from_secs(6)));
        assert_eq!(set.as_slice().len(), 1);
        // A real hole of a second stays a hole.
        set.insert(TimeRange::new(Duration::from_secs(13), Duration::from_secs(1)));
        assert_eq!(set.as_slice().len(), 2);
    }

    #[test]
    fn empty_ranges_are_ignored() {
        let mut set = RangeSet::default();
        set.insert(r(3, 3));
        assert!(set.as_slice().is_empty());
    }
}
