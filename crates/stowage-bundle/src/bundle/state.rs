//! The in-memory ledger of an open bundle: what is finished and busy, the journal's position, and per
//! rendition the running totals and time ranges that progress queries read without walking the plan.

use std::collections::{HashMap, HashSet};

use crate::id::{SegmentId, SegmentKind};
use crate::ledger::{self, Finished, SegmentProblem};
use crate::manifest::{Manifest, PlannedSegment};
use crate::ranges::{TimeRange, TimeRanges};
use crate::storage::StorageFile;

/// What an open bundle knows, behind the handle's lock.
pub(super) struct State {
    pub(super) manifest: Manifest,
    pub(super) index: HashMap<SegmentId, (usize, usize)>,
    pub(super) finished: HashMap<SegmentId, Finished>,
    pub(super) busy: HashSet<SegmentId>,
    /// Entries found damaged or lost when the bundle was opened, not stored again since: what `verify`
    /// reports (and repairs) besides what it finds itself.
    pub(super) damaged: HashMap<SegmentId, SegmentProblem>,
    /// The open journal, `None` after a failed append until it is repaired.
    pub(super) journal: Option<Box<dyn StorageFile>>,
    /// The journal's length up to its last complete record.
    pub(super) journal_len: u64,
    /// Incremented whenever the journal is cut back after a failed append, so that a sync that started
    /// before does not vouch for bytes written after.
    pub(super) journal_epoch: u64,
    /// Per rendition (manifest order): what progress and time-range queries need, kept up to date on each
    /// change so that a query costs nothing like a walk over a 100,000-segment plan.
    pub(super) summaries: Vec<Summary>,
    /// Per rendition (manifest order), how many media entries the growing playlists last written list;
    /// empty until they are first written.
    pub(super) growing_listed: Vec<usize>,
    /// Per rendition (manifest order), where the growing playlist of a recording stands, for the next
    /// write to append to it; empty when the local playlists were last written otherwise.
    pub(super) growing_tails: Vec<Option<crate::local::GrowingTail>>,
}

/// A rendition's running totals and playable time ranges.
#[derive(Default)]
pub(super) struct Summary {
    pub(super) finished: usize,
    pub(super) bytes: u64,
    pub(super) ranges: TimeRanges,
    /// Start time of each entry (media entries; initialization entries get the next segment's start).
    pub(super) starts: Vec<f64>,
    /// For each entry, the index of the initialization entry in force, if any.
    pub(super) init_of: Vec<Option<usize>>,
}

impl State {
    /// Recomputes the summary of rendition `ri` from the finished set.
    fn rebuild_summary(&mut self, ri: usize) {
        let plan = &self.manifest.renditions[ri].plan;
        let mut summary = Summary {
            ranges: ledger::loaded_time_ranges(plan, &self.finished),
            starts: Vec::with_capacity(plan.segments.len()),
            init_of: Vec::with_capacity(plan.segments.len()),
            ..Summary::default()
        };
        let (mut t, mut init) = (0.0, None);
        for (si, entry) in plan.segments.iter().enumerate() {
            if entry.kind == SegmentKind::Init {
                init = Some(si);
            }
            summary.starts.push(t);
            summary.init_of.push(if entry.kind == SegmentKind::Init { None } else { init });
            if entry.kind == SegmentKind::Media {
                t += entry.duration;
            }
            if let Some(f) = self.finished.get(&entry.id(&plan.id)) {
                summary.finished += 1;
                summary.bytes += f.length;
            }
        }
        if ri < self.summaries.len() {
            self.summaries[ri] = summary;
        } else {
            self.summaries.push(summary);
        }
    }

    pub(super) fn rebuild_summaries(&mut self) {
        self.summaries.clear();
        for ri in 0..self.manifest.renditions.len() {
            self.rebuild_summary(ri);
        }
    }

    /// Appends entries to the end of rendition `ri`'s plan (a recording that grows), indexing them and
    /// extending its summary without walking the plan.
    pub(super) fn append_entries(&mut self, ri: usize, entries: Vec<PlannedSegment>) {
        let plan = &mut self.manifest.renditions[ri].plan;
        let summary = &mut self.summaries[ri];
        let (mut t, mut init) = match plan.segments.len().checked_sub(1) {
            Some(last) => {
                let entry = &plan.segments[last];
                let end = summary.starts[last]
                    + if entry.kind == SegmentKind::Media { entry.duration } else { 0.0 };
                let init = if entry.kind == SegmentKind::Init { Some(last) } else { summary.init_of[last] };
                (end, init)
            }
            None => (0.0, None),
        };
        for entry in entries {
            let si = plan.segments.len();
            if entry.kind == SegmentKind::Init {
                init = Some(si);
            }
            summary.starts.push(t);
            summary.init_of.push(if entry.kind == SegmentKind::Init { None } else { init });
            if entry.kind == SegmentKind::Media {
                t += entry.duration;
            }
            self.index.insert(entry.id(&plan.id), (ri, si));
            plan.segments.push(entry);
        }
    }

    /// Records a finished entry and updates its rendition's summary.
    pub(super) fn add_finished(&mut self, id: SegmentId, finished: Finished) {
        let Some(&(ri, si)) = self.index.get(&id) else { return };
        let entry = &self.manifest.renditions[ri].plan.segments[si];
        let is_init = entry.kind == SegmentKind::Init;
        let duration = entry.duration;
        let rendition = self.manifest.renditions[ri].plan.id.clone();
        self.damaged.remove(&id);
        if let Some(old) = self.finished.insert(id, finished) {
            // Replaced: count it once.
            self.summaries[ri].finished -= 1;
            self.summaries[ri].bytes -= old.length;
        }
        let summary = &mut self.summaries[ri];
        summary.finished += 1;
        summary.bytes += finished.length;
        let init_ok = summary.init_of[si].is_none_or(|ii| {
            let init = &self.manifest.renditions[ri].plan.segments[ii];
            self.finished.contains_key(&init.id(&rendition))
        });
        if is_init {
            // Segments waiting for this initialization section may have become playable.
            self.summaries[ri].ranges =
                ledger::loaded_time_ranges(&self.manifest.renditions[ri].plan, &self.finished);
        } else if init_ok && duration > 0.0 {
            let start = self.summaries[ri].starts[si];
            self.summaries[ri].ranges.insert(TimeRange::of_segment(start, duration));
        }
    }

    /// Forgets a finished entry and updates its rendition's summary.
    pub(super) fn remove_finished(&mut self, id: &SegmentId) {
        if self.finished.remove(id).is_some()
            && let Some(&(ri, _)) = self.index.get(id)
        {
            self.rebuild_summary(ri);
        }
    }
}
