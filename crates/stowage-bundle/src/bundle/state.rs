//! The in-memory ledger of an open bundle: per rendition its plan entries and what is stored of them (see
//! [`crate::entries`]), the running totals and time ranges that progress queries read without walking the
//! plan; what is busy, and the journal's position.

use std::collections::{HashMap, HashSet};

use crate::entries::Ledger;
use crate::id::{SegmentId, SegmentKind};
use crate::ledger::{self, Finished, SegmentProblem};
use crate::manifest::{Manifest, PlannedSegment, RenditionPlan};
use crate::ranges::TimeRange;
use crate::storage::StorageFile;

/// What an open bundle knows, behind the handle's lock.
pub(super) struct State {
    /// The manifest without plan entries: each rendition's are in `ledgers`, in the same order.
    pub(super) manifest: Manifest,
    /// Per rendition (manifest order): its entries, what is stored of them, its playable time ranges.
    pub(super) ledgers: Vec<Ledger>,
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
    /// Per rendition (manifest order), how many media entries the growing playlists last written list;
    /// empty until they are first written.
    pub(super) growing_listed: Vec<usize>,
    /// Per rendition (manifest order), where the growing playlist of a recording stands, for the next
    /// write to append to it; empty when the local playlists were last written otherwise.
    pub(super) growing_tails: Vec<Option<crate::local::GrowingTail>>,
}

impl State {
    /// The state of a bundle whose manifest (without its plan entries) and ledgers were read or made.
    pub(super) fn new(
        manifest: Manifest,
        ledgers: Vec<Ledger>,
        damaged: HashMap<SegmentId, SegmentProblem>,
        journal: Box<dyn StorageFile>,
        journal_len: u64,
    ) -> Self {
        Self {
            manifest,
            ledgers,
            busy: HashSet::new(),
            damaged,
            journal: Some(journal),
            journal_len,
            journal_epoch: 0,
            growing_listed: Vec::new(),
            growing_tails: Vec::new(),
        }
    }

    /// Where a planned entry is: (rendition index, entry index).
    pub(super) fn locate(&self, id: &SegmentId) -> Option<(usize, usize)> {
        let ri = self.manifest.renditions.iter().position(|r| r.plan.id == id.rendition)?;
        Some((ri, self.ledgers[ri].entries.position(id)?))
    }

    /// The stored length and checksum of an entry, when it is stored.
    pub(super) fn finished(&self, id: &SegmentId) -> Option<Finished> {
        let (ri, si) = self.locate(id)?;
        self.ledgers[ri].stored.get(si)
    }

    pub(super) fn is_finished(&self, id: &SegmentId) -> bool {
        self.finished(id).is_some()
    }

    /// The identities of rendition `ri`'s entries, in plan order.
    pub(super) fn ids(&self, ri: usize) -> impl Iterator<Item = SegmentId> + '_ {
        let (id, entries) = (&self.manifest.renditions[ri].plan.id, &self.ledgers[ri].entries);
        (0..entries.len()).map(move |si| entries.id(id, si))
    }

    /// The identities of every entry, in plan order.
    pub(super) fn all_ids(&self) -> impl Iterator<Item = SegmentId> + '_ {
        (0..self.ledgers.len()).flat_map(|ri| self.ids(ri))
    }

    /// Rendition `ri`'s plan with its entries.
    pub(super) fn full_plan(&self, ri: usize) -> RenditionPlan {
        let mut plan = self.manifest.renditions[ri].plan.clone();
        plan.segments = self.ledgers[ri].entries.iter().collect();
        plan
    }

    /// The manifest with its plan entries and up-to-date state fields.
    pub(super) fn full_manifest(&self) -> Manifest {
        let mut manifest = self.with_entries();
        ledger::refresh_from_ledgers(&self.ledgers, &mut manifest);
        manifest
    }

    /// The manifest with its plan entries, its state fields as last written.
    pub(super) fn with_entries(&self) -> Manifest {
        let mut manifest = self.manifest.clone();
        for (ri, r) in manifest.renditions.iter_mut().enumerate() {
            r.plan.segments = self.ledgers[ri].entries.iter().collect();
        }
        manifest
    }

    /// Brings the manifest's state fields up to date, from the running totals.
    pub(super) fn refresh(&mut self) {
        ledger::refresh_from_ledgers(&self.ledgers, &mut self.manifest);
    }

    /// Appends entries to the end of rendition `ri`'s plan (a recording that grows).
    pub(super) fn append_entries(&mut self, ri: usize, entries: Vec<PlannedSegment>) {
        let ledger = &mut self.ledgers[ri];
        for entry in entries {
            ledger.entries.push(entry);
        }
        ledger.stored.resize(ledger.entries.len());
    }

    /// Records a finished entry and updates its rendition's totals.
    pub(super) fn add_finished(&mut self, id: SegmentId, finished: Finished) {
        let Some((ri, si)) = self.locate(&id) else { return };
        self.damaged.remove(&id);
        let ledger = &mut self.ledgers[ri];
        ledger.stored.insert(si, finished);
        match ledger.entries.kind(si) {
            // Segments waiting for this initialization section may have become playable.
            SegmentKind::Init => ledger.ranges = ledger.loaded_time_ranges(),
            SegmentKind::Media => {
                let init_ok = ledger.entries.init_of(si).is_none_or(|ii| ledger.stored.contains(ii));
                let duration = ledger.entries.duration(si);
                if init_ok && duration > 0.0 {
                    ledger.ranges.insert(TimeRange::of_segment(ledger.entries.start(si), duration));
                }
            }
        }
    }

    /// Forgets a finished entry and updates its rendition's totals.
    pub(super) fn remove_finished(&mut self, id: &SegmentId) {
        let Some((ri, si)) = self.locate(id) else { return };
        let ledger = &mut self.ledgers[ri];
        if ledger.stored.remove(si).is_some() {
            ledger.ranges = ledger.loaded_time_ranges();
            ledger.settled = (0, 0, true);
        }
    }
}
