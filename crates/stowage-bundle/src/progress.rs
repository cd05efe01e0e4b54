//! How far the renditions of an asset are: one definition for every layer that reports it.
//!
//! A bundle reports what it stores ([`Bundle::progress`](crate::Bundle::progress)); a download task's
//! engine reports the same figures for the renditions it downloads, and adds what a bundle alone cannot
//! know: an estimate of the bytes still to come (`stowage_task::engine::Engine::progress`).

use std::time::Duration;

/// Progress of one rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenditionProgress {
    /// The rendition: its index among the renditions of what reports it (a bundle's manifest, or a task's
    /// plan).
    pub rendition: usize,
    /// Bytes of finished entries (segments and initialization sections).
    pub bytes_done: u64,
    /// Bytes expected when done: exact when `bytes_expected_exact`. A bundle knows only what it stores, so
    /// its figure is exact once every entry is stored and otherwise counts the stored bytes alone; a task
    /// adds the lengths it knows and an estimate of the others.
    pub bytes_expected: u64,
    /// Whether `bytes_expected` is exact.
    pub bytes_expected_exact: bool,
    /// Entries finished.
    pub segments_done: usize,
    /// Entries planned.
    pub segments_total: usize,
    /// Segments given up and recorded as gaps.
    pub segments_missing: usize,
    /// Media time loaded (the total of the playable time ranges).
    pub loaded_duration: Duration,
}

impl RenditionProgress {
    /// Nothing done yet of rendition `rendition`: the figures are then set one by one.
    pub fn new(rendition: usize) -> Self {
        Self {
            rendition,
            bytes_done: 0,
            bytes_expected: 0,
            bytes_expected_exact: false,
            segments_done: 0,
            segments_total: 0,
            segments_missing: 0,
            loaded_duration: Duration::ZERO,
        }
    }

    /// The fraction done in `0.0..=1.0`, by bytes when any are expected, else by segments.
    pub fn fraction(&self) -> f64 {
        fraction(self.bytes_done, self.bytes_expected, self.segments_done, self.segments_total)
    }
}

/// Progress of an asset: per rendition and in total.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Progress {
    /// Per rendition, in the reporter's order.
    pub renditions: Vec<RenditionProgress>,
    /// Bytes of finished entries, all renditions.
    pub bytes_done: u64,
    /// Bytes expected, all renditions.
    pub bytes_expected: u64,
    /// Whether `bytes_expected` is exact for every rendition.
    pub bytes_expected_exact: bool,
    /// Entries finished, all renditions.
    pub segments_done: usize,
    /// Entries planned, all renditions.
    pub segments_total: usize,
    /// Segments recorded as gaps, all renditions.
    pub segments_missing: usize,
}

impl Progress {
    /// Sums per-rendition progress into an asset's progress.
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
