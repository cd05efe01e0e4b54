//! What a recording adds to a bundle while it runs: new entries at the end of a rendition's plan, with the
//! lines of its recorded source playlist that list them, and holes.
//!
//! Both are journaled (`plan` and `hole` records) rather than written into the manifest, so that a reload
//! of a live playlist costs an append, not a rewrite of a manifest that grows with the recording; the
//! manifest takes them in at its next write.

use std::path::PathBuf;

use super::{Bundle, lock_state};
use crate::error::{Error, IoContext, Result};
use crate::id::{RenditionId, SegmentId};
use crate::journal::{JournalRecord, MAX_RECORD_LEN};
use crate::ledger::SOURCE_DIR;
use crate::manifest::{Hole, Manifest, PlannedSegment};

/// One segment of a live playlist added to a recording: its plan entries (the media segment, after the
/// initialization section it brings when it brings one) and the lines of the recorded source playlist
/// that list them, tags before the segment included.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedSegment {
    /// The plan entries, in playlist order.
    pub entries: Vec<PlannedSegment>,
    /// The source playlist lines, each ending with a line feed.
    pub lines: String,
}

impl RecordedSegment {
    /// A segment's entries and the lines that list them.
    pub fn new(entries: Vec<PlannedSegment>, lines: impl Into<String>) -> Self {
        Self { entries, lines: lines.into() }
    }
}

impl Bundle {
    /// Whether the bundle records a live or EVENT stream.
    pub fn is_recording(&self) -> bool {
        lock_state(&self.inner.state).manifest.recording.is_some()
    }

    /// Makes a bundle that has no rendition yet (one recorded in the store before its playlists were read)
    /// the recording of a live or EVENT stream, with `recording`'s limits; its renditions are then added
    /// with [`add_renditions`](Self::add_renditions) and grow with [`record_segments`](Self::record_segments).
    ///
    /// Fails with [`Error::InvalidPlan`] when the bundle has renditions already: a download's renditions
    /// cannot become recorded ones.
    pub fn start_recording(&self, recording: crate::manifest::Recording) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        if !state.manifest.renditions.is_empty() {
            return Err(Error::InvalidPlan {
                reason: "a bundle that has renditions already cannot become a recording".into(),
            });
        }
        state.manifest.recording = Some(recording);
        self.save_manifest(&mut state)
    }

    /// Adds segments to the end of a recorded rendition: their lines are appended to its recorded source
    /// playlist (`source/<rendition>.m3u8`) and synced, then one `plan` record per segment is appended to
    /// the journal, naming its entries and the playlist's length after its lines. Their entries are pending
    /// from then on, like any planned entry.
    ///
    /// A crash in between leaves lines that no record names; they are cut off when the bundle is opened
    /// again, so the plan and the recorded playlist always agree. Entries are journaled without their
    /// URIs (the recorded playlist holds them).
    ///
    /// Fails with [`Error::InvalidPlan`] for a bundle that is not a recording, an unknown rendition, an
    /// entry already in the plan (or twice in `segments`), or a duration that is negative or not finite.
    pub fn record_segments(&self, rendition: &RenditionId, segments: Vec<RecordedSegment>) -> Result<()> {
        if segments.is_empty() {
            return Ok(());
        }
        let mut state = lock_state(&self.inner.state);
        let ri = recorded_rendition(&state.manifest, rendition)?;
        let mut seen = std::collections::HashSet::new();
        for segment in &segments {
            for entry in &segment.entries {
                let id = entry.id(rendition);
                if state.locate(&id).is_some() || !seen.insert(id.clone()) {
                    return Err(Error::InvalidPlan { reason: format!("segment {id} appears twice") });
                }
                if !entry.duration.is_finite() || entry.duration < 0.0 {
                    return Err(Error::InvalidPlan {
                        reason: format!("segment {id} has duration {}", entry.duration),
                    });
                }
            }
        }
        let storage = &*self.inner.storage;
        let path = source_path(self, rendition);
        let covered = state.manifest.renditions[ri].source_len.unwrap_or(0);
        // An append that failed half-way left bytes that no record names: they go first.
        if storage.len(&path).at(&path)? != covered {
            storage.truncate(&path, covered).at(&path)?;
        }
        let mut records = Vec::with_capacity(segments.len());
        let mut len = covered;
        {
            let mut file = storage.open_append(&path).at(&path)?;
            let appended = (|| {
                for segment in &segments {
                    file.write_all(segment.lines.as_bytes())?;
                    len += segment.lines.len() as u64;
                    let mut entries = segment.entries.clone();
                    for entry in &mut entries {
                        entry.uri = String::new();
                    }
                    records.push(JournalRecord::Plan {
                        rendition: rendition.clone(),
                        entries,
                        source_len: len,
                    });
                }
                file.sync()
            })();
            if let Err(e) = appended {
                let _ = storage.truncate(&path, covered);
                return Err(Error::from_io(&path, e));
            }
        }
        for record in &records {
            if record.to_line().len() > MAX_RECORD_LEN {
                let _ = storage.truncate(&path, covered);
                return Err(Error::InvalidPlan {
                    reason: format!("a segment of rendition {rendition} is too large to journal"),
                });
            }
        }
        let batch = self.inner.batch.clone();
        if let Some(batch) = &batch {
            batch.start()?;
        }
        let mut seq = None;
        let last = records.len() - 1;
        for (i, (record, segment)) in records.iter().zip(segments).enumerate() {
            let JournalRecord::Plan { source_len, .. } = record else { continue };
            // Without batched syncs, the last record's sync makes every earlier one durable too.
            self.append_record(&mut state, record, batch.is_none() && i == last)?;
            seq = batch.as_ref().map(|b| b.appended(None));
            state.manifest.renditions[ri].source_len = Some(*source_len);
            let mut entries = segment.entries;
            for entry in &mut entries {
                entry.uri = String::new();
            }
            state.append_entries(ri, entries);
            // New entries are pending: a bundle whose manifest said it was finished (everything settled
            // when it was last written) no longer is, and its growing playlists grow again.
            state.manifest.finished = false;
        }
        drop(state);
        match (&batch, seq) {
            (Some(batch), Some(seq)) => batch.within_bound(seq),
            _ => Ok(()),
        }
    }

    /// Records a hole in a recorded rendition: journaled at once, in the manifest from its next write on.
    /// The entries that stand for it are planned (with [`record_segments`](Self::record_segments)) and
    /// recorded as gaps (with [`record_gap`](Self::record_gap)) by the recorder.
    pub fn record_hole(&self, hole: Hole) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        recorded_rendition(&state.manifest, &hole.rendition)?;
        let record = JournalRecord::Hole { hole: hole.clone() };
        let batch = self.inner.batch.clone();
        if let Some(batch) = &batch {
            batch.start()?;
        }
        self.append_record(&mut state, &record, batch.is_none())?;
        let seq = batch.as_ref().map(|b| b.appended(None));
        if let Some(recording) = state.manifest.recording.as_mut() {
            recording.holes.push(hole);
        }
        drop(state);
        match (batch, seq) {
            (Some(batch), Some(seq)) => batch.within_bound(seq),
            _ => Ok(()),
        }
    }

    /// The holes recorded so far.
    pub fn holes(&self) -> Vec<Hole> {
        lock_state(&self.inner.state).manifest.recording.as_ref().map_or_else(Vec::new, |r| r.holes.clone())
    }

    /// The recorded source playlist of a rendition, as far as its plan covers it (the whole source playlist
    /// of a rendition that is not recorded).
    pub fn source_playlist(&self, rendition: &RenditionId) -> Result<String> {
        let covered = {
            let state = lock_state(&self.inner.state);
            let r = state
                .manifest
                .rendition(rendition)
                .ok_or_else(|| Error::UnknownRendition { rendition: rendition.to_string() })?;
            r.source_len
        };
        let path = source_path(self, rendition);
        let mut bytes = self.inner.storage.read_limited(&path, crate::local::MAX_PLAYLIST_LEN).at(&path)?;
        if let Some(covered) = covered {
            bytes.truncate(usize::try_from(covered).unwrap_or(usize::MAX));
        }
        String::from_utf8(bytes).map_err(|_| Error::Playlist { path, reason: "not UTF-8".into() })
    }

    /// Ends a recording: says why in the manifest, then finishes the bundle as
    /// [`mark_finished`](Self::mark_finished) does (every planned entry must be stored or recorded as a
    /// gap). The local playlists become VOD playlists with `EXT-X-ENDLIST`.
    pub fn end_recording(&self, reason: impl Into<String>) -> Result<()> {
        {
            let mut state = lock_state(&self.inner.state);
            let Some(recording) = state.manifest.recording.as_mut() else {
                return Err(Error::InvalidPlan { reason: "the bundle is not a recording".into() });
            };
            recording.ended = Some(reason.into());
        }
        self.mark_finished()
    }

    /// The identity of every planned entry of `rendition`, in plan order.
    pub fn planned_segments(&self, rendition: &RenditionId) -> Result<Vec<SegmentId>> {
        let state = lock_state(&self.inner.state);
        let ri = state
            .manifest
            .renditions
            .iter()
            .position(|r| &r.plan.id == rendition)
            .ok_or_else(|| Error::UnknownRendition { rendition: rendition.to_string() })?;
        Ok(state.ids(ri).collect())
    }
}

fn recorded_rendition(manifest: &Manifest, rendition: &RenditionId) -> Result<usize> {
    if manifest.recording.is_none() {
        return Err(Error::InvalidPlan { reason: "the bundle is not a recording".into() });
    }
    manifest
        .renditions
        .iter()
        .position(|r| &r.plan.id == rendition)
        .ok_or_else(|| Error::UnknownRendition { rendition: rendition.to_string() })
}

fn source_path(bundle: &Bundle, rendition: &RenditionId) -> PathBuf {
    bundle.inner.dir.join(SOURCE_DIR).join(format!("{rendition}.m3u8"))
}
