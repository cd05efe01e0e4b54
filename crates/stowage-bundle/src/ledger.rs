//! What a bundle holds, derived from its manifest and journal: shared by the writer ([`Bundle`]) and the
//! read-only [`AssetCache`](crate::AssetCache).
//!
//! [`Bundle`]: crate::Bundle

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::id::{RenditionId, SegmentId, SegmentKind};
use crate::journal::{self, JournalContents, JournalRecord};
use crate::manifest::{self, Gap, Manifest, RenditionPlan, RenditionState};
use crate::ranges::{TimeRange, TimeRanges};
use crate::storage::{Storage, StorageFile};

pub(crate) const MANIFEST_FILE: &str = "manifest.json";
pub(crate) const JOURNAL_FILE: &str = "journal.log";
pub(crate) const LOCK_FILE: &str = ".lock";
pub(crate) const SOURCE_DIR: &str = "source";
pub(crate) const MASTER_FILE: &str = "master.m3u8";
pub(crate) const INDEX_FILE: &str = "index.m3u8";
pub(crate) const KEYS_DIR: &str = "keys";
pub(crate) const TEMP_SUFFIX: &str = ".part";

/// Journals larger than this are refused: a record is about 150 bytes, so this is millions of segments.
pub(crate) const MAX_JOURNAL_LEN: u64 = 1024 * 1024 * 1024;

/// A finished segment: durable, journaled, with its length and checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finished {
    pub(crate) length: u64,
    pub(crate) crc32: u32,
}

/// What is wrong with a segment that the journal lists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentProblem {
    /// The file is gone.
    Missing {
        /// Where it should be.
        path: PathBuf,
    },
    /// The file has another length than the journal recorded.
    WrongLength {
        /// The file.
        path: PathBuf,
        /// The journaled length.
        expected: u64,
        /// The length on disk.
        actual: u64,
    },
    /// The file's bytes do not match the journaled checksum (found by `verify`).
    WrongChecksum {
        /// The file.
        path: PathBuf,
    },
    /// Something other than a regular file is where the entry is stored: a symbolic link (which could lead
    /// a player out of the bundle), a folder or a device (found by `verify`).
    NotAFile {
        /// Where the file should be.
        path: PathBuf,
    },
    /// A file is where the entry is stored, but the journal has no record of it: a record was lost, or the
    /// journal deleted. Its bytes cannot be checked, so the entry counts as not stored (found by `verify`).
    Unrecorded {
        /// The file.
        path: PathBuf,
    },
    /// The entry is neither stored nor recorded as a gap, although the manifest said the download was
    /// over: the journal lost its record, and no file is there.
    Unaccounted {
        /// Where the file should be.
        path: PathBuf,
    },
}

impl SegmentProblem {
    /// The file concerned (or where it should be).
    pub fn path(&self) -> &Path {
        match self {
            Self::Missing { path }
            | Self::WrongLength { path, .. }
            | Self::WrongChecksum { path }
            | Self::NotAFile { path }
            | Self::Unrecorded { path }
            | Self::Unaccounted { path } => path,
        }
    }
}

impl std::fmt::Display for SegmentProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { path } => write!(f, "{} is missing", path.display()),
            Self::WrongLength { path, expected, actual } => {
                write!(f, "{} is {actual} bytes long, the journal recorded {expected}", path.display())
            }
            Self::WrongChecksum { path } => {
                write!(f, "{} does not match the checksum the journal recorded", path.display())
            }
            Self::NotAFile { path } => {
                write!(f, "{} is not a regular file (a symbolic link, a folder or a device)", path.display())
            }
            Self::Unrecorded { path } => {
                write!(f, "{} is there but the journal has no record of it", path.display())
            }
            Self::Unaccounted { path } => write!(
                f,
                "{} is neither stored nor recorded as a gap, though the manifest said the download was over",
                path.display()
            ),
        }
    }
}

/// The path of a planned entry's file.
pub(crate) fn segment_path(dir: &Path, rendition: &RenditionPlan, id: &SegmentId) -> PathBuf {
    let ext = match id.kind {
        SegmentKind::Init => rendition.format.init_extension(),
        SegmentKind::Media => rendition.format.segment_extension(),
    };
    dir.join(rendition.id.as_str()).join(id.file_name(ext))
}

/// The path of a stored key file.
pub(crate) fn key_path(dir: &Path, rendition: &RenditionId, index: u32) -> PathBuf {
    dir.join(rendition.as_str()).join(KEYS_DIR).join(format!("key-{index}.key"))
}

/// The temporary path a file is written to before it is renamed into place.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// Maps every planned identity to (rendition index, entry index).
pub(crate) fn index_plan(manifest: &Manifest) -> HashMap<SegmentId, (usize, usize)> {
    let mut index = HashMap::new();
    for (ri, r) in manifest.renditions.iter().enumerate() {
        for (si, s) in r.plan.segments.iter().enumerate() {
            index.insert(s.id(&r.plan.id), (ri, si));
        }
    }
    index
}

pub(crate) fn read_manifest(storage: &dyn Storage, dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = storage.read_limited(&path, manifest::MAX_MANIFEST_LEN).at(&path)?;
    Manifest::parse(&path, &bytes)
}

pub(crate) fn read_journal(storage: &dyn Storage, dir: &Path) -> Result<JournalContents> {
    let path = dir.join(JOURNAL_FILE);
    match storage.read_limited(&path, MAX_JOURNAL_LEN) {
        Ok(bytes) => journal::parse_journal(&path, &bytes),
        // A journal that was never written (a crash between creating the folder and the journal) is empty.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(JournalContents::default()),
        Err(e) => Err(Error::from_io(&path, e)),
    }
}

/// The finished set, the problems found (those segments are not finished), and how many records named
/// segments outside the plan. The manifest's gaps are updated with the journal's gap records.
pub(crate) type Loaded = (HashMap<SegmentId, Finished>, Vec<(SegmentId, SegmentProblem)>, usize);

/// Applies the journal's records to the plan and checks each finished file's length on disk.
///
/// Returns the finished set, the problems found (those segments are not finished), and how many records
/// named segments outside the plan (ignored).
pub(crate) fn load_finished(
    storage: &dyn Storage,
    dir: &Path,
    manifest: &mut Manifest,
    index: &HashMap<SegmentId, (usize, usize)>,
    records: &[JournalRecord],
) -> Result<Loaded> {
    let mut finished = HashMap::new();
    let mut unknown = 0;
    // Gaps as the journal says, in order: a gap record adds (or re-words) one, a segment record clears it.
    let mut gaps: Vec<Gap> = std::mem::take(&mut manifest.gaps);
    for record in records {
        let Some(segment) = record.segment() else { continue };
        if !index.contains_key(segment) {
            unknown += 1;
            continue;
        }
        match record {
            JournalRecord::Segment { id, length, crc32 } => {
                finished.insert(id.clone(), Finished { length: *length, crc32: *crc32 });
                gaps.retain(|g| &g.segment != id);
            }
            // A drop withdraws the entry's earlier record, whether it stored the entry or recorded a gap.
            JournalRecord::Drop { id } => {
                finished.remove(id);
                gaps.retain(|g| &g.segment != id);
            }
            JournalRecord::Gap { id, reason } => match gaps.iter_mut().find(|g| &g.segment == id) {
                Some(gap) => gap.reason.clone_from(reason),
                None => gaps.push(Gap { segment: id.clone(), reason: reason.clone() }),
            },
            // Applied to the plan before, by `apply_recording`.
            _ => {}
        }
    }
    gaps.retain(|g| !finished.contains_key(&g.segment));
    manifest.gaps = gaps;
    let mut problems = Vec::new();
    let mut ids: Vec<SegmentId> = finished.keys().cloned().collect();
    ids.sort();
    for id in ids {
        let (ri, _) = index[&id];
        let path = segment_path(dir, &manifest.renditions[ri].plan, &id);
        let expected = finished[&id].length;
        let problem = match storage.len(&path) {
            Ok(actual) if actual == expected => None,
            Ok(actual) => Some(SegmentProblem::WrongLength { path, expected, actual }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(SegmentProblem::Missing { path }),
            Err(e) => return Err(Error::from_io(&path, e)),
        };
        if let Some(problem) = problem {
            finished.remove(&id);
            problems.push((id, problem));
        }
    }
    Ok((finished, problems, unknown))
}

/// Applies a recording's journaled `plan` and `hole` records to its manifest: entries the manifest's plan
/// does not hold yet are appended to their rendition's plan, holes it does not hold yet are added, and each
/// recorded rendition's `source_len` becomes the length of its recorded source playlist that the plan now
/// covers. Records already folded into the manifest (written after them) change nothing, so applying a
/// journal twice is harmless. Must run before the plan is indexed.
pub(crate) fn apply_recording(manifest: &mut Manifest, records: &[JournalRecord]) -> Result<()> {
    let mut known: HashMap<RenditionId, std::collections::HashSet<SegmentId>> = HashMap::new();
    for record in records {
        match record {
            JournalRecord::Plan { rendition, entries, source_len } => {
                let Some(r) = manifest.renditions.iter_mut().find(|r| &r.plan.id == rendition) else {
                    continue;
                };
                let ids = known
                    .entry(rendition.clone())
                    .or_insert_with(|| r.plan.segment_ids().collect::<std::collections::HashSet<_>>());
                for entry in entries {
                    if !entry.duration.is_finite() || entry.duration < 0.0 {
                        return Err(Error::InvalidPlan {
                            reason: format!(
                                "journaled entry {} has duration {}",
                                entry.id(rendition),
                                entry.duration
                            ),
                        });
                    }
                    if ids.insert(entry.id(rendition)) {
                        r.plan.segments.push(entry.clone());
                    }
                }
                r.source_len = Some(r.source_len.unwrap_or(0).max(*source_len));
            }
            JournalRecord::Hole { hole } => {
                let recording = manifest.recording.get_or_insert_with(Default::default);
                if !recording.holes.contains(hole) {
                    recording.holes.push(hole.clone());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The playable time ranges of a rendition: finished media segments whose initialization section (if any)
/// is finished too, merged where they touch.
pub(crate) fn loaded_time_ranges(
    plan: &RenditionPlan,
    finished: &HashMap<SegmentId, Finished>,
) -> TimeRanges {
    let mut ranges = TimeRanges::new();
    let mut t = 0.0;
    let mut init_ok = true;
    for s in &plan.segments {
        let id = s.id(&plan.id);
        match s.kind {
            SegmentKind::Init => init_ok = finished.contains_key(&id),
            SegmentKind::Media => {
                if init_ok && finished.contains_key(&id) {
                    ranges.insert(TimeRange::of_segment(t, s.duration));
                }
                t += s.duration;
            }
        }
    }
    ranges
}

/// A rendition's state for the manifest.
pub(crate) fn rendition_state(
    plan: &RenditionPlan,
    finished: &HashMap<SegmentId, Finished>,
) -> RenditionState {
    let done = plan.segment_ids().filter(|id| finished.contains_key(id)).count();
    RenditionState {
        complete: done == plan.segments.len(),
        segments_finished: done,
        segments_total: plan.segments.len(),
        loaded_time_ranges: loaded_time_ranges(plan, finished).into_vec(),
    }
}

/// Refreshes the manifest's summary fields from the finished set.
pub(crate) fn refresh_manifest(manifest: &mut Manifest, finished: &HashMap<SegmentId, Finished>) {
    for r in &mut manifest.renditions {
        r.state = rendition_state(&r.plan, finished);
    }
    let gaps: std::collections::HashSet<&SegmentId> = manifest.gaps.iter().map(|g| &g.segment).collect();
    let settled = manifest
        .renditions
        .iter()
        .all(|r| r.plan.segment_ids().all(|id| finished.contains_key(&id) || gaps.contains(&id)));
    let size = finished.values().map(|f| f.length).sum();
    set_state_flags(manifest, size, settled);
}

/// Sets the manifest's size, `complete` and `finished` from its renditions' states (up to date), the bytes
/// stored, and whether every planned entry is `settled` (stored or recorded as a gap).
pub(crate) fn set_state_flags(manifest: &mut Manifest, size: u64, settled: bool) {
    manifest.size = size;
    // A bundle with nothing planned yet (a download asked for, its playlists not read) is not done.
    let planned = !manifest.renditions.is_empty();
    // A recording goes on until it ends: every segment it listed so far being stored does not finish it
    // (a recorder killed at that moment leaves a bundle to resume, not a finished one).
    let open = manifest.recording.as_ref().is_some_and(|r| r.ended.is_none());
    let planned = planned && !open;
    let all_done = manifest.renditions.iter().all(|r| r.state.complete);
    manifest.complete = planned && all_done && manifest.gaps.is_empty();
    manifest.finished = planned && settled;
}

/// Writes a file atomically: temporary file, sync, rename, sync of the directory.
pub(crate) fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(storage, path, &mut |file| file.write_all(bytes))
}

/// Writes a file atomically as [`write_atomic`] does, its bytes written by `write` into the temporary file.
pub(crate) fn write_atomic_with(
    storage: &dyn Storage,
    path: &Path,
    write: &mut dyn FnMut(&mut dyn StorageFile) -> std::io::Result<()>,
) -> Result<()> {
    let temp = temp_path(path);
    let result = (|| {
        let mut file = storage.create(&temp).at(&temp)?;
        write(&mut *file).at(&temp)?;
        file.sync().at(&temp)?;
        drop(file);
        storage.rename(&temp, path).at(path)?;
        let parent = path.parent().unwrap_or_else(|| Path::new("."));
        storage.sync_dir(parent).at(parent)
    })();
    if result.is_err() {
        // The temporary file is not part of the bundle; leaving it would only waste space until the next
        // open removes it.
        let _ = storage.remove_file(&temp);
    }
    result
}
