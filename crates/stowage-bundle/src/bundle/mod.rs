//! The bundle writer: create or open a bundle, write segments durably, record gaps, finish.
//!
//! [`Bundle`] is one handle type whose methods are spread over modules by role:
//!
//! - `lifecycle`: creating, opening (with the repairs of a resume) and deleting a bundle;
//! - `writer`: what a download records: segments through [`SegmentWriter`], gaps and keys;
//! - `sync`: the journal appends and the syncs that make them durable (group commit, batching);
//! - `playlists`: the manifest and local playlists, written at state boundaries, and added renditions;
//! - `verify`: re-hashing finished segments, and repairing damaged ones;
//! - `state`: the in-memory ledger behind the queries below (finished set, running totals, time ranges);
//! - `options`: [`Durability`] and [`BundleOptions`].
//!
//! This module holds the handle itself and its read-only queries.

mod lifecycle;
mod options;
mod playlists;
mod recording;
mod state;
mod sync;
mod verify;
mod writer;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::id::{RenditionId, SegmentId};
use crate::ledger::{self, MASTER_FILE};
use crate::manifest::{Gap, Manifest, TimeRange};
use crate::progress::{Progress, RenditionProgress};
use crate::storage::{Storage, StorageLock};

pub use lifecycle::OpenReport;
pub use options::{BundleOptions, Durability};
pub use recording::RecordedSegment;
pub use verify::VerifyReport;
pub use writer::{FinishedSegment, SegmentWriter};

use crate::poison::lock;
use state::State;
use sync::{DirRenames, JournalSync};

/// An offline bundle open for writing. Only one `Bundle` per bundle directory exists at a time, across
/// processes: it holds the bundle's lock until the last clone is dropped.
///
/// `Bundle` is cheap to clone and can be shared between threads: several [`SegmentWriter`]s may be open at
/// once (one per segment). All methods do blocking disk IO; async callers run them on a blocking thread.
#[derive(Clone)]
pub struct Bundle {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    /// Journal syncs of [`Durability::Full`], shared between concurrent writers (group commit).
    journal_sync: Mutex<JournalSync>,
    /// Folder syncs of [`Durability::Full`], shared the same way: renames register here...
    dir_renames: Mutex<DirRenames>,
    /// ...and one writer at a time syncs the folders for all renames registered so far.
    dir_syncer: Mutex<()>,
    /// The background syncs of [`Durability::Batched`] (`None` with [`Durability::Full`]).
    batch: Option<Arc<Batch>>,
    _lock: Box<dyn StorageLock>,
    report: OpenReport,
    state: Mutex<State>,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the state half-updated in a way that matters on disk: the
    // journal is repaired before the next append. So a poisoned lock is taken over.
    lock(state)
}

impl Bundle {
    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The local master playlist (`master.m3u8`), the file to hand to a player.
    pub fn master_playlist_path(&self) -> PathBuf {
        self.inner.dir.join(MASTER_FILE)
    }

    /// What opening the bundle found and repaired (empty for a bundle just created).
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// A copy of the manifest as it is now (with up-to-date state fields).
    pub fn manifest(&self) -> Manifest {
        lock_state(&self.inner.state).full_manifest()
    }

    /// Whether the segment is finished (durable and journaled).
    pub fn is_finished(&self, id: &SegmentId) -> bool {
        lock_state(&self.inner.state).is_finished(id)
    }

    /// The finished segments, in plan order.
    pub fn finished_segments(&self) -> Vec<SegmentId> {
        let state = lock_state(&self.inner.state);
        let mut ids = Vec::new();
        for (ri, ledger) in state.ledgers.iter().enumerate() {
            let rendition = &state.manifest.renditions[ri].plan.id;
            let stored = (0..ledger.entries.len()).filter(|&si| ledger.stored.contains(si));
            ids.extend(stored.map(|si| ledger.entries.id(rendition, si)));
        }
        ids
    }

    /// The segments still to fetch, in plan order: neither finished nor recorded as a gap.
    pub fn pending_segments(&self) -> Vec<SegmentId> {
        let state = lock_state(&self.inner.state);
        let gaps: HashSet<&SegmentId> = state.manifest.gaps.iter().map(|g| &g.segment).collect();
        let mut ids = Vec::new();
        for (ri, ledger) in state.ledgers.iter().enumerate() {
            let rendition = &state.manifest.renditions[ri].plan.id;
            let unstored = (0..ledger.entries.len()).filter(|&si| !ledger.stored.contains(si));
            ids.extend(unstored.map(|si| ledger.entries.id(rendition, si)).filter(|id| !gaps.contains(id)));
        }
        ids
    }

    /// The gaps recorded so far.
    pub fn gaps(&self) -> Vec<Gap> {
        lock_state(&self.inner.state).manifest.gaps.clone()
    }

    /// Where a planned segment is (or will be) stored.
    pub fn segment_path(&self, id: &SegmentId) -> Result<PathBuf> {
        let state = lock_state(&self.inner.state);
        let (ri, _) = state.locate(id).ok_or_else(|| Error::UnknownSegment { segment: id.clone() })?;
        Ok(ledger::segment_path(&self.inner.dir, &state.manifest.renditions[ri].plan, id))
    }

    /// The playable time ranges of a rendition: finished media segments (with their initialization
    /// section), in seconds from the rendition's start, merged where they touch.
    pub fn loaded_time_ranges(&self, rendition: &RenditionId) -> Result<Vec<TimeRange>> {
        let state = lock_state(&self.inner.state);
        let ri = state
            .manifest
            .renditions
            .iter()
            .position(|r| &r.plan.id == rendition)
            .ok_or_else(|| Error::UnknownRendition { rendition: rendition.to_string() })?;
        Ok(state.ledgers[ri].ranges.as_slice().to_vec())
    }

    /// Progress, overall and per rendition (in manifest order), from what is stored: the bytes expected
    /// are exact once every entry is stored, and otherwise count the stored bytes alone.
    pub fn progress(&self) -> Progress {
        let state = lock_state(&self.inner.state);
        let renditions =
            (0..state.manifest.renditions.len()).map(|ri| rendition_progress(&state, ri)).collect();
        Progress::from_renditions(renditions)
    }

    /// The progress of one rendition (its `rendition` is its index in the manifest).
    ///
    /// Fails with [`Error::UnknownRendition`] for a rendition the bundle does not hold.
    pub fn rendition_progress(&self, rendition: &RenditionId) -> Result<RenditionProgress> {
        let state = lock_state(&self.inner.state);
        let ri = state
            .manifest
            .renditions
            .iter()
            .position(|r| &r.plan.id == rendition)
            .ok_or_else(|| Error::UnknownRendition { rendition: rendition.to_string() })?;
        Ok(rendition_progress(&state, ri))
    }
}

/// What rendition `ri` (manifest order) has stored.
fn rendition_progress(state: &State, ri: usize) -> RenditionProgress {
    let (r, ledger) = (&state.manifest.renditions[ri], &state.ledgers[ri]);
    let mut p = RenditionProgress::new(ri);
    p.bytes_done = ledger.stored.bytes();
    p.bytes_expected = ledger.stored.bytes();
    p.segments_done = ledger.stored.count();
    p.segments_total = ledger.entries.len();
    p.bytes_expected_exact = p.segments_done == p.segments_total;
    p.segments_missing = state.manifest.gaps.iter().filter(|g| g.segment.rendition == r.plan.id).count();
    p.loaded_duration = ledger.ranges.total();
    p
}
