//! Verification: every finished segment re-read and checked against its journal record, every entry the
//! journal lost or that opening found damaged named, and the repair of all of them.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Bundle, lock_state};
use crate::error::{Error, IoContext, Result};
use crate::id::SegmentId;
use crate::journal::JournalRecord;
use crate::ledger::{self, Finished, SegmentProblem};
use crate::storage::Storage;

/// What [`Bundle::verify`] found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segments re-hashed.
    pub checked: usize,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Entries that are damaged or lost, in plan order: journaled ones whose file is missing, has another
    /// length or checksum, or is not a regular file; files the journal has no record of; and entries the
    /// journal lost although the manifest said the download was over.
    pub problems: Vec<(SegmentId, SegmentProblem)>,
    /// Whether the journal file was missing when the bundle was opened.
    pub journal_missing: bool,
    /// Line numbers of damaged records in the middle of the journal (their entries count as not stored).
    pub corrupt_journal_lines: Vec<usize>,
    /// Whether the problems were repaired: damaged and unrecorded files removed and withdrawn from the
    /// journal, so that a resumed download fetches them again.
    pub repaired: bool,
}

impl VerifyReport {
    /// Whether every stored entry is intact and nothing was lost.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && !self.journal_missing && self.corrupt_journal_lines.is_empty()
    }
}

impl Bundle {
    /// Re-reads every finished segment and checks that it is a regular file with its recorded length and
    /// checksum; reports besides what opening the bundle found (journaled files missing or cut short,
    /// entries the journal lost), and files in the rendition folders that the journal has no record of.
    ///
    /// With `repair`, every damaged entry is withdrawn from the journal and its file removed, unrecorded
    /// files are removed, and the local playlists and manifest are rewritten: all of them are pending
    /// again, and a resumed download fetches them.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport> {
        let (targets, mut known, unrecorded, storage) = {
            let state = lock_state(&self.inner.state);
            let mut targets: Vec<(SegmentId, PathBuf, Finished)> = Vec::new();
            let mut unrecorded: Vec<(SegmentId, PathBuf)> = Vec::new();
            let gaps: HashSet<&SegmentId> = state.manifest.gaps.iter().map(|g| &g.segment).collect();
            for (ri, l) in state.ledgers.iter().enumerate() {
                let plan = &state.manifest.renditions[ri].plan;
                for si in 0..l.entries.len() {
                    let id = l.entries.id(&plan.id, si);
                    let path = ledger::segment_path(&self.inner.dir, plan, &id);
                    match l.stored.get(si) {
                        Some(f) => targets.push((id, path, f)),
                        // An entry being written has its file renamed into place a moment before its record.
                        // An entry the journal lost may still have its file: then it is unrecorded.
                        None if !gaps.contains(&id)
                            && !state.busy.contains(&id)
                            && state
                                .damaged
                                .get(&id)
                                .is_none_or(|p| matches!(p, SegmentProblem::Unaccounted { .. })) =>
                        {
                            unrecorded.push((id, path));
                        }
                        None => {}
                    }
                }
            }
            let known: HashMap<SegmentId, SegmentProblem> = state.damaged.clone();
            (targets, known, unrecorded, Arc::clone(&self.inner.storage))
        };
        let mut report = VerifyReport {
            journal_missing: self.inner.report.journal_missing,
            corrupt_journal_lines: self.inner.report.corrupt_journal_lines.clone(),
            ..VerifyReport::default()
        };
        let mut found: HashMap<SegmentId, SegmentProblem> = HashMap::new();
        for (id, path, f) in targets {
            match check_file(&*storage, &path, f) {
                Ok((None, len)) => {
                    report.checked += 1;
                    report.bytes_checked += len;
                }
                Ok((Some(problem), len)) => {
                    if !matches!(problem, SegmentProblem::NotAFile { .. }) {
                        report.checked += 1;
                        report.bytes_checked += len;
                    }
                    found.insert(id, problem);
                }
                Err(Error::NotFound { .. }) => {
                    found.insert(id, SegmentProblem::Missing { path });
                }
                Err(e) => return Err(e),
            }
        }
        // A file where an entry the journal does not record would be: listed once per folder rather than
        // looked up once per pending entry, which for a fresh bundle of a long plan is most of them.
        let mut listings: HashMap<PathBuf, HashSet<OsString>> = HashMap::new();
        for (id, path) in unrecorded {
            let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else { continue };
            if !listings.contains_key(folder) {
                let names = match storage.list_dir(folder) {
                    Ok(entries) => entries.into_iter().map(|e| e.name).collect(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
                    Err(e) => return Err(Error::from_io(folder, e)),
                };
                listings.insert(folder.to_path_buf(), names);
            }
            if listings[folder].contains(name) {
                found.insert(id, SegmentProblem::Unrecorded { path });
            }
        }
        known.extend(found);
        {
            // In plan order, so that a report reads like the playlist.
            let state = lock_state(&self.inner.state);
            report.problems =
                state.all_ids().filter_map(|id| known.remove(&id).map(|problem| (id, problem))).collect();
        }
        if repair && !report.is_ok() {
            self.repair(&report.problems)?;
            report.repaired = true;
        }
        Ok(report)
    }

    /// Withdraws every damaged entry from the journal, removes what is where its file should be, and
    /// rewrites the playlists and the manifest.
    fn repair(&self, problems: &[(SegmentId, SegmentProblem)]) -> Result<()> {
        // The drop records below are synced at once; batched records before them are made durable first,
        // folders included, so that the journal's order of durability stays that of the appends.
        self.inner.flush()?;
        let storage = Arc::clone(&self.inner.storage);
        let mut state = lock_state(&self.inner.state);
        for (id, problem) in problems {
            let journaled = matches!(
                problem,
                SegmentProblem::Missing { .. }
                    | SegmentProblem::WrongLength { .. }
                    | SegmentProblem::WrongChecksum { .. }
                    | SegmentProblem::NotAFile { .. }
            );
            if journaled {
                self.append_record(&mut state, &JournalRecord::Drop { id: id.clone() }, true)?;
                state.remove_finished(id);
            }
            state.damaged.remove(id);
            remove_entry(&*storage, problem.path())?;
        }
        drop(state);
        self.write_playlists()
    }
}

/// Checks a journaled file: a regular file of the recorded length and checksum. Returns the problem
/// found, if any, and the bytes read.
fn check_file(storage: &dyn Storage, path: &Path, f: Finished) -> Result<(Option<SegmentProblem>, u64)> {
    if !storage.is_regular_file(path).at(path)? {
        return Ok((Some(SegmentProblem::NotAFile { path: path.to_path_buf() }), 0));
    }
    let (len, crc) = hash_file(storage, path)?;
    let problem = if len != f.length {
        Some(SegmentProblem::WrongLength { path: path.to_path_buf(), expected: f.length, actual: len })
    } else if crc != f.crc32 {
        Some(SegmentProblem::WrongChecksum { path: path.to_path_buf() })
    } else {
        None
    };
    Ok((problem, len))
}

/// Removes whatever is at `path`: a file, a link (never what it points to), or a folder.
fn remove_entry(storage: &dyn Storage, path: &Path) -> Result<()> {
    match storage.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // A folder where a file should be: its own contents are not the bundle's to keep.
        Err(_) if storage.list_dir(path).is_ok() => storage.remove_dir_all(path).at(path),
        Err(e) => Err(Error::from_io(path, e)),
    }
}

/// Reads a file through, returning its length and CRC-32.
fn hash_file(storage: &dyn Storage, path: &Path) -> Result<(u64, u32)> {
    let mut reader = storage.open_read(path).at(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_io(path, e)),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize()))
}
