//! Time ranges of a rendition's timeline, and the one way loaded ranges are merged.
//!
//! The bundle's manifest and progress queries and the download engine's events all keep their loaded
//! ranges with [`TimeRanges`], so that a rendition's ranges read from the manifest are the ones its
//! download reported.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A half-open span `start..end` of a rendition's timeline, measured from the start of its playlist.
///
/// Kept in nanoseconds ([`Duration`]); the manifest writes it as `{"start": seconds, "end": seconds}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[allow(clippy::exhaustive_structs, reason = "a range is its two ends, closed by definition")]
pub struct TimeRange {
    /// Where the range begins.
    pub start: Duration,
    /// Where the range ends (exclusive).
    pub end: Duration,
}

impl TimeRange {
    /// The range `start..end`.
    pub const fn new(start: Duration, end: Duration) -> Self {
        Self { start, end }
    }

    /// The range `start..start + duration`.
    pub fn starting_at(start: Duration, duration: Duration) -> Self {
        Self { start, end: start.saturating_add(duration) }
    }

    /// The range of a segment that starts `start` seconds into the timeline and lasts `duration` seconds,
    /// as a playlist gives them: start and duration are rounded to the nanosecond each, the way a download
    /// plans its jobs, so that both sides agree on where a segment ends. A negative, non-finite or
    /// out-of-range figure counts as zero (or as the longest range).
    pub fn of_segment(start: f64, duration: f64) -> Self {
        Self::starting_at(seconds(start), seconds(duration))
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

/// `s` seconds as a duration: zero for a negative or non-finite figure, the longest duration beyond it.
pub(crate) fn seconds(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

/// The range as the manifest writes it: seconds, as numbers.
#[derive(Serialize, Deserialize)]
struct Wire {
    start: f64,
    end: f64,
}

impl Serialize for TimeRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire { start: self.start.as_secs_f64(), end: self.end.as_secs_f64() }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(deserializer)?;
        Ok(Self::new(seconds(w.start), seconds(w.end)))
    }
}

/// A sorted list of disjoint, non-adjacent time ranges: what part of a rendition's timeline is loaded.
///
/// Ranges closer than [`TimeRanges::JOIN_TOLERANCE`] are joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeRanges {
    ranges: Vec<TimeRange>,
}

impl TimeRanges {
    /// Ranges whose ends are closer than this are joined.
    ///
    /// Segment start times are sums of decimal `EXTINF` durations converted to nanoseconds, so two
    /// neighbours can disagree by a few nanoseconds of rounding. A millisecond is far below anything a
    /// player could show as a hole, and far above any rounding error.
    pub const JOIN_TOLERANCE: Duration = Duration::from_millis(1);

    /// No ranges.
    pub const fn new() -> Self {
        Self { ranges: Vec::new() }
    }

    /// The ranges, sorted.
    pub fn as_slice(&self) -> &[TimeRange] {
        &self.ranges
    }

    /// Adds `range`, merging it with every range it overlaps or touches. An empty range is ignored.
    pub fn insert(&mut self, range: TimeRange) {
        if range.is_empty() {
            return;
        }
        // The first range whose end reaches the new start (with tolerance) is the first merge candidate.
        let first = self.ranges.partition_point(|r| r.end.saturating_add(Self::JOIN_TOLERANCE) < range.start);
        let mut merged = range;
        let mut last = first;
        while last < self.ranges.len()
            && self.ranges[last].start <= merged.end.saturating_add(Self::JOIN_TOLERANCE)
        {
            merged.start = merged.start.min(self.ranges[last].start);
            merged.end = merged.end.max(self.ranges[last].end);
            last += 1;
        }
        self.ranges.splice(first..last, std::iter::once(merged));
    }

    /// The total time covered.
    pub fn total(&self) -> Duration {
        self.ranges.iter().map(TimeRange::duration).sum()
    }

    /// The ranges, sorted.
    pub fn into_vec(self) -> Vec<TimeRange> {
        self.ranges
    }
}

impl FromIterator<TimeRange> for TimeRanges {
    fn from_iter<I: IntoIterator<Item = TimeRange>>(iter: I) -> Self {
        let mut set = Self::new();
        for range in iter {
            set.insert(range);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u64, b: u64) -> TimeRange {
        TimeRange::new(Duration::from_secs(a), Duration::from_secs(b))
    }

    #[test]
    fn merges_adjacent_and_overlapping_in_any_order() {
        let mut set = TimeRanges::new();
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
        let mut set = TimeRanges::new();
        set.insert(TimeRange::starting_at(Duration::ZERO, Duration::from_nanos(6_006_000_000)));
        set.insert(TimeRange::starting_at(Duration::from_nanos(6_006_000_001), Duration::from_secs(6)));
        assert_eq!(set.as_slice().len(), 1);
        // A real hole of a second stays a hole.
        set.insert(TimeRange::starting_at(Duration::from_secs(13), Duration::from_secs(1)));
        assert_eq!(set.as_slice().len(), 2);
    }

    #[test]
    fn empty_ranges_are_ignored() {
        let mut set = TimeRanges::new();
        set.insert(r(3, 3));
        assert!(set.as_slice().is_empty());
    }

    #[test]
    fn the_manifest_writes_seconds() {
        let range = TimeRange::of_segment(6.0, 6.006);
        let json = serde_json::to_string(&range).unwrap();
        assert_eq!(json, r#"{"start":6.0,"end":12.006}"#);
        assert_eq!(serde_json::from_str::<TimeRange>(&json).unwrap(), range);
        assert_eq!(TimeRange::of_segment(-1.0, f64::NAN), TimeRange::default());
    }
}
