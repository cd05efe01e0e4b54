//! What a task has done so far, per rendition and in total, and what a rendition has loaded.
//!
//! The engine keeps these books ([`Engine::progress`](super::Engine::progress),
//! [`Engine::loaded_time_range`](super::Engine::loaded_time_range)); the task's events carry them as they
//! are (see [`TaskEvent`](crate::events::TaskEvent)). Progress is the bundle's type
//! ([`stowage_bundle::Progress`]): the engine fills in, besides what is stored, the bytes it expects.

pub use stowage_bundle::{Progress, RenditionProgress};

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
