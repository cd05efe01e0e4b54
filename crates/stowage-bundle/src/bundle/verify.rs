//! Verification: every finished segment re-read and checked against its journal record, and the repair
//! of those that do not match.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Bundle, lock_state, plan_ids};
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
    /// Segments that are missing, the wrong length or the wrong checksum.
    pub problems: Vec<(SegmentId, SegmentProblem)>,
    /// Whether the problems were repaired: damaged files removed and withdrawn from the journal, so that a
    /// resumed download fetches them again.
    pub repaired: bool,
}

impl VerifyReport {
    /// Whether every finished segment is intact.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Bundle {
    /// Re-reads every finished segment and checks its length and checksum. With `repair`, damaged segments
    /// are removed and withdrawn from the journal (so that a resumed download fetches them again), and the
    /// local playlists and manifest are rewritten.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport> {
        let (targets, storage) = {
            let state = lock_state(&self.inner.state);
            let targets: Vec<(SegmentId, PathBuf, Finished)> = plan_ids(&state.manifest)
                .filter_map(|id| {
                    let f = *state.finished.get(&id)?;
                    let (ri, _) = state.index[&id];
                    let path =
                        ledger::segment_path(&self.inner.dir, &state.manifest.renditions[ri].plan, &id);
                    Some((id, path, f))
                })
                .collect();
            (targets, Arc::clone(&self.inner.storage))
        };
        let mut report = VerifyReport::default();
        for (id, path, f) in targets {
            report.checked += 1;
            match hash_file(&*storage, &path) {
                Ok((len, crc)) => {
                    report.bytes_checked += len;
                    if len != f.length {
                        report.problems.push((
                            id,
                            SegmentProblem::WrongLength { path, expected: f.length, actual: len },
                        ));
                    } else if crc != f.crc32 {
                        report.problems.push((id, SegmentProblem::WrongChecksum { path }));
                    }
                }
                Err(Error::NotFound { .. }) => report.problems.push((id, SegmentProblem::Missing { path })),
                Err(e) => return Err(e),
            }
        }
        if repair && !report.problems.is_empty() {
            // The drop records below are synced at once; batched records before them are made durable
            // first, folders included, so that the journal's order of durability stays that of the appends.
            self.inner.flush()?;
            let mut state = lock_state(&self.inner.state);
            for (id, problem) in &report.problems {
                let path = match problem {
                    SegmentProblem::Missing { path }
                    | SegmentProblem::WrongLength { path, .. }
                    | SegmentProblem::WrongChecksum { path } => path,
                };
                self.append_record(&mut state, &JournalRecord::Drop { id: id.clone() }, true)?;
                state.remove_finished(id);
                match storage.remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::from_io(path, e)),
                }
            }
            drop(state);
            self.write_playlists()?;
            report.repaired = true;
        }
        Ok(report)
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
