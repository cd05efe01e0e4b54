//! What a bundle holds, derived from its manifest and journal: shared by the writer ([`Bundle`]) and the
//! read-only [`AssetCache`](crate::AssetCache).
//!
//! [`Bundle`]: crate::Bundle

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::entries::Ledger;
use crate::error::{Error, IoContext, Result};
use crate::id::{RenditionId, SegmentId, SegmentKind};
use crate::journal::{self, JournalRecord, JournalScan};
use crate::manifest::{self, Gap, Manifest, RenditionPlan, RenditionState};
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

pub(crate) fn read_manifest(storage: &dyn Storage, dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = storage.read_limited(&path, manifest::MAX_MANIFEST_LEN).at(&path)?;
    Manifest::parse(&path, &bytes)
}

/// Reads the bundle's journal through, handing each valid record to `on_record`: a journal that was never
/// written (a crash between creating the folder and the journal) is empty.
pub(crate) fn scan_journal(
    storage: &dyn Storage,
    dir: &Path,
    on_record: &mut dyn FnMut(JournalRecord) -> Result<()>,
) -> Result<JournalScan> {
    let path = dir.join(JOURNAL_FILE);
    let reader = match storage.open_read(&path) {
        Ok(reader) => reader,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalScan::default()),
        Err(e) => return Err(Error::from_io(&path, e)),
    };
    let len = storage.len(&path).at(&path)?;
    if len > MAX_JOURNAL_LEN {
        let e = std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {MAX_JOURNAL_LEN} bytes"),
        );
        return Err(Error::from_io(&path, e));
    }
    journal::scan_journal(&path, &mut std::io::Read::take(reader, MAX_JOURNAL_LEN), on_record)
}

/// What a bundle holds, read from its manifest and journal a record at a time: the plan entries and what
/// is stored of them compactly (see [`crate::entries`]), however long the journal.
pub(crate) struct Load {
    /// The manifest without its plan entries (each rendition's are in `ledgers`, in the same order); its
    /// gaps and holes are the journal's once [`finish`](Self::finish) is done.
    pub(crate) manifest: Manifest,
    pub(crate) ledgers: Vec<Ledger>,
    /// The gaps in the order the manifest and the journal give them (`None` once withdrawn), and where
    /// each is.
    gaps: Vec<Option<Gap>>,
    gap_index: HashMap<SegmentId, usize>,
    /// Segment records that named entries outside the plan (ignored).
    pub(crate) unknown: usize,
}

impl Load {
    pub(crate) fn new(mut manifest: Manifest) -> Self {
        let ledgers = manifest
            .renditions
            .iter_mut()
            .map(|r| Ledger::new(std::mem::take(&mut r.plan.segments)))
            .collect();
        let gaps: Vec<Option<Gap>> = std::mem::take(&mut manifest.gaps).into_iter().map(Some).collect();
        let gap_index =
            gaps.iter().enumerate().filter_map(|(i, g)| Some((g.as_ref()?.segment.clone(), i))).collect();
        Self { manifest, ledgers, gaps, gap_index, unknown: 0 }
    }

    /// Where a planned entry is: (rendition index, entry index).
    pub(crate) fn locate(&self, id: &SegmentId) -> Option<(usize, usize)> {
        let ri = self.manifest.renditions.iter().position(|r| r.plan.id == id.rendition)?;
        Some((ri, self.ledgers[ri].entries.position(id)?))
    }

    /// Applies a recording's `plan` and `hole` records (other records are for
    /// [`apply_segment`](Self::apply_segment), in a second reading): entries the plan does not hold yet are
    /// appended to their rendition's plan, holes it does not hold yet are added, and each recorded
    /// rendition's `source_len` becomes the length of its recorded source playlist that the plan now
    /// covers. Records already folded into the manifest (written after them) change nothing.
    pub(crate) fn apply_recording(&mut self, record: JournalRecord) -> Result<()> {
        match record {
            JournalRecord::Plan { rendition, entries, source_len } => {
                let Some(ri) = self.manifest.renditions.iter().position(|r| r.plan.id == rendition) else {
                    return Ok(());
                };
                for entry in entries {
                    if !entry.duration.is_finite() || entry.duration < 0.0 {
                        return Err(Error::InvalidPlan {
                            reason: format!(
                                "journaled entry {} has duration {}",
                                entry.id(&rendition),
                                entry.duration
                            ),
                        });
                    }
                    let ledger = &mut self.ledgers[ri];
                    if ledger.entries.position(&entry.id(&rendition)).is_none() {
                        ledger.entries.push(entry);
                    }
                }
                let ledger = &mut self.ledgers[ri];
                ledger.stored.resize(ledger.entries.len());
                let r = &mut self.manifest.renditions[ri];
                r.source_len = Some(r.source_len.unwrap_or(0).max(source_len));
            }
            JournalRecord::Hole { hole } => {
                let recording = self.manifest.recording.get_or_insert_with(Default::default);
                if !recording.holes.contains(&hole) {
                    recording.holes.push(hole);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies a `segment`, `drop` or `gap` record: a segment record stores the entry and clears its gap, a
    /// drop withdraws the entry's earlier record (stored or gap), a gap record adds (or re-words) a gap.
    pub(crate) fn apply_segment(&mut self, record: JournalRecord) {
        let Some(id) = record.segment() else { return };
        let Some((ri, si)) = self.locate(id) else {
            self.unknown += 1;
            return;
        };
        match record {
            JournalRecord::Segment { id, length, crc32 } => {
                self.ledgers[ri].stored.insert(si, Finished { length, crc32 });
                self.remove_gap(&id);
            }
            JournalRecord::Drop { id } => {
                self.ledgers[ri].stored.remove(si);
                self.remove_gap(&id);
            }
            JournalRecord::Gap { id, reason } => match self.gap_index.get(&id) {
                Some(&i) => {
                    if let Some(gap) = self.gaps[i].as_mut() {
                        gap.reason = reason;
                    }
                }
                None => {
                    self.gap_index.insert(id.clone(), self.gaps.len());
                    self.gaps.push(Some(Gap { segment: id, reason }));
                }
            },
            _ => {}
        }
    }

    fn remove_gap(&mut self, id: &SegmentId) {
        if let Some(i) = self.gap_index.remove(id) {
            self.gaps[i] = None;
        }
    }

    /// Ends the load: the gaps of entries not stored go into the manifest, and each stored entry's file is
    /// checked for its recorded length. Returns the problems found, in identity order (those entries are
    /// not stored).
    pub(crate) fn finish(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
    ) -> Result<Vec<(SegmentId, SegmentProblem)>> {
        let gaps = std::mem::take(&mut self.gaps).into_iter().flatten();
        let gaps: Vec<Gap> = gaps
            .filter(|g| self.locate(&g.segment).is_none_or(|(ri, si)| !self.ledgers[ri].stored.contains(si)))
            .collect();
        self.gap_index.clear();
        self.manifest.gaps = gaps;
        let mut problems = Vec::new();
        for (r, ledger) in self.manifest.renditions.iter().zip(&mut self.ledgers) {
            for si in 0..ledger.entries.len() {
                let Some(f) = ledger.stored.get(si) else { continue };
                let id = ledger.entries.id(&r.plan.id, si);
                let path = segment_path(dir, &r.plan, &id);
                let problem = match storage.len(&path) {
                    Ok(actual) if actual == f.length => None,
                    Ok(actual) => Some(SegmentProblem::WrongLength { path, expected: f.length, actual }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Some(SegmentProblem::Missing { path })
                    }
                    Err(e) => return Err(Error::from_io(&path, e)),
                };
                if let Some(problem) = problem {
                    ledger.stored.remove(si);
                    problems.push((id, problem));
                }
            }
        }
        problems.sort_by(|a, b| a.0.cmp(&b.0));
        for ledger in &mut self.ledgers {
            ledger.ranges = ledger.loaded_time_ranges();
        }
        Ok(problems)
    }

    /// The manifest with its plan entries, and the finished set: what a reader that looks at a bundle
    /// whole (the [`AssetCache`](crate::AssetCache)) keeps.
    pub(crate) fn into_whole(self) -> (Manifest, HashMap<SegmentId, Finished>) {
        let Self { mut manifest, ledgers, .. } = self;
        let mut finished = HashMap::new();
        for (r, ledger) in manifest.renditions.iter_mut().zip(&ledgers) {
            for si in 0..ledger.entries.len() {
                if let Some(f) = ledger.stored.get(si) {
                    finished.insert(ledger.entries.id(&r.plan.id, si), f);
                }
            }
            r.plan.segments = ledger.entries.iter().collect();
        }
        (manifest, finished)
    }
}

/// Reads a bundle's journal (both passes: a recording's plan first, then what is stored) over its
/// `manifest` into compact ledgers, the manifest's state fields brought up to date from them, the stored
/// entries checked against their files.
pub(crate) fn load(storage: &dyn Storage, dir: &Path, manifest: Manifest) -> Result<Load> {
    let mut load = Load::new(manifest);
    scan_journal(storage, dir, &mut |record| load.apply_recording(record))?;
    scan_journal(storage, dir, &mut |record| {
        load.apply_segment(record);
        Ok(())
    })?;
    load.finish(storage, dir)?;
    refresh_from_ledgers(&load.ledgers, &mut load.manifest);
    Ok(load)
}

/// Reads a bundle's manifest and journal (both passes: a recording's plan first, then what is stored) as
/// a reader that does not write it sees them: the manifest with its plan entries and state fields, and
/// the finished set checked against the files.
pub(crate) fn load_whole(
    storage: &dyn Storage,
    dir: &Path,
) -> Result<(Manifest, HashMap<SegmentId, Finished>)> {
    Ok(load(storage, dir, read_manifest(storage, dir)?)?.into_whole())
}

/// Brings `manifest`'s state fields up to date from the running totals of its renditions' `ledgers`.
pub(crate) fn refresh_from_ledgers(ledgers: &[Ledger], manifest: &mut Manifest) {
    // Entries recorded as gaps and not stored, each counted once (a manifest could name one twice, or
    // name one the plan does not have).
    let mut gapped: HashSet<(usize, usize)> = HashSet::new();
    for g in &manifest.gaps {
        let Some(ri) = manifest.renditions.iter().position(|r| r.plan.id == g.segment.rendition) else {
            continue;
        };
        if let Some(si) = ledgers[ri].entries.position(&g.segment)
            && !ledgers[ri].stored.contains(si)
        {
            gapped.insert((ri, si));
        }
    }
    let mut gaps = vec![0; ledgers.len()];
    for (ri, _) in gapped {
        gaps[ri] += 1;
    }
    let mut settled = true;
    for (ri, r) in manifest.renditions.iter_mut().enumerate() {
        let ledger = &ledgers[ri];
        let (done, total) = (ledger.stored.count(), ledger.entries.len());
        r.state = RenditionState {
            complete: done == total,
            segments_finished: done,
            segments_total: total,
            loaded_time_ranges: ledger.ranges.as_slice().to_vec(),
        };
        settled &= done + gaps[ri] == total;
    }
    manifest.size = ledgers.iter().map(|l| l.stored.bytes()).sum();
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
