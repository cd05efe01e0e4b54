//! What a download records in a bundle: segments, streamed in through a [`SegmentWriter`] and made durable
//! by [`SegmentWriter::finish`]; gaps; and keys kept beside the ciphertext.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Bundle, lock_state};
use crate::error::{Error, IoContext, Result};
use crate::id::{RenditionId, SegmentId};
use crate::journal::JournalRecord;
use crate::ledger::{self, Finished, KEYS_DIR};
use crate::manifest::Gap;
use crate::storage::{Storage, StorageFile};

/// A segment made durable by [`SegmentWriter::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FinishedSegment {
    /// The segment.
    pub id: SegmentId,
    /// Its path in the bundle.
    pub path: PathBuf,
    /// Its length in bytes.
    pub length: u64,
    /// The CRC-32 of its bytes.
    pub crc32: u32,
}

impl Bundle {
    /// Starts writing a segment. The bytes go to a temporary file until [`SegmentWriter::finish`].
    ///
    /// Fails with [`Error::AlreadyFinished`] for a finished segment (a finished segment is never rewritten)
    /// and [`Error::SegmentBusy`] while another writer for it is open.
    pub fn segment_writer(&self, id: &SegmentId) -> Result<SegmentWriter> {
        let (path, expected) = {
            let mut state = lock_state(&self.inner.state);
            let (ri, si) = state.locate(id).ok_or_else(|| Error::UnknownSegment { segment: id.clone() })?;
            if state.ledgers[ri].stored.contains(si) {
                return Err(Error::AlreadyFinished { segment: id.clone() });
            }
            if !state.busy.insert(id.clone()) {
                return Err(Error::SegmentBusy { segment: id.clone() });
            }
            let plan = &state.manifest.renditions[ri].plan;
            (
                ledger::segment_path(&self.inner.dir, plan, id),
                state.ledgers[ri].entries.get(si).expected_length,
            )
        };
        let mut writer = SegmentWriter {
            bundle: self.clone(),
            id: id.clone(),
            temp: ledger::temp_path(&path),
            path,
            file: None,
            hasher: crc32fast::Hasher::new(),
            written: 0,
            expected,
            failed: false,
            done: false,
        };
        // The writer's Drop releases the busy mark and removes the temporary file if this fails.
        let file = self.inner.storage.create(&writer.temp).at(&writer.temp)?;
        writer.file = Some(file);
        Ok(writer)
    }

    /// Stores a key (for [`KeyPolicy::KeepEncrypted`](crate::KeyPolicy::KeepEncrypted)) as the `index`-th
    /// key of the rendition, counting its source playlist's `EXT-X-KEY` tags from 0 in playlist order.
    pub fn write_key(&self, rendition: &RenditionId, index: u32, key: &[u8]) -> Result<PathBuf> {
        {
            let state = lock_state(&self.inner.state);
            if state.manifest.rendition(rendition).is_none() {
                return Err(Error::UnknownRendition { rendition: rendition.to_string() });
            }
        }
        let path = ledger::key_path(&self.inner.dir, rendition, index);
        let keys = self.inner.dir.join(rendition.as_str()).join(KEYS_DIR);
        self.inner.storage.create_dir_all(&keys).at(&keys)?;
        ledger::write_atomic(&*self.inner.storage, &path, key)?;
        Ok(path)
    }

    /// Records that a segment could not be had (tolerant integrity): the manifest names it with `reason`,
    /// and the asset is marked incomplete. Finishing the segment later removes the gap.
    pub fn record_gap(&self, id: &SegmentId, reason: impl Into<String>) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        let Some((ri, si)) = state.locate(id) else {
            return Err(Error::UnknownSegment { segment: id.clone() });
        };
        if state.ledgers[ri].stored.contains(si) {
            return Err(Error::AlreadyFinished { segment: id.clone() });
        }
        let reason = reason.into();
        // The journal holds the gap durably at once; the manifest names it from its next write on (any
        // manifest update, `write_playlists`, `mark_finished`), and readers fold the journal in meanwhile.
        // So thousands of gaps in a huge plan do not rewrite a large manifest thousands of times.
        // With batched durability the gap record is synced like a segment record: losing it to a power loss
        // only means that the segment is tried again.
        let record = JournalRecord::Gap { id: id.clone(), reason: reason.clone() };
        let batch = self.inner.batch.clone();
        if let Some(batch) = &batch {
            batch.start()?;
        }
        self.append_record(&mut state, &record, batch.is_none())?;
        let seq = batch.as_ref().map(|b| b.appended(None));
        match state.manifest.gaps.iter_mut().find(|g| &g.segment == id) {
            Some(gap) => gap.reason = reason,
            None => state.manifest.gaps.push(Gap { segment: id.clone(), reason }),
        }
        drop(state);
        match (batch, seq) {
            (Some(batch), Some(seq)) => batch.within_bound(seq),
            _ => Ok(()),
        }
    }
}

/// Streams one segment into the bundle. Obtained from [`Bundle::segment_writer`].
///
/// Write the bytes as they arrive with [`write`](Self::write), then call [`finish`](Self::finish): only then
/// is the segment in the bundle. Dropping the writer without finishing discards what was written.
pub struct SegmentWriter {
    bundle: Bundle,
    id: SegmentId,
    path: PathBuf,
    temp: PathBuf,
    file: Option<Box<dyn StorageFile>>,
    hasher: crc32fast::Hasher,
    written: u64,
    expected: Option<u64>,
    failed: bool,
    done: bool,
}

impl fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("written", &self.written)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl SegmentWriter {
    /// The segment being written.
    pub fn id(&self) -> &SegmentId {
        &self.id
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Sets (or clears) the length the segment must have, overriding the plan's (for example once the
    /// decrypted length is known).
    pub fn set_expected_length(&mut self, length: Option<u64>) {
        self.expected = length;
    }

    /// Appends a chunk of the segment's bytes.
    ///
    /// Fails early with [`Error::LengthMismatch`] when the bytes exceed the expected length. After an error
    /// the writer is unusable: drop it and start again.
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let (false, Some(file)) = (self.failed, self.file.as_mut()) else {
            return Err(Error::Io {
                path: self.temp.clone(),
                source: std::io::Error::other("writer failed"),
            });
        };
        let new_len = self.written + chunk.len() as u64;
        if let Some(expected) = self.expected
            && new_len > expected
        {
            self.failed = true;
            return Err(Error::LengthMismatch { segment: self.id.clone(), expected, actual: new_len });
        }
        if let Err(e) = file.write_all(chunk) {
            self.failed = true;
            return Err(Error::from_io(&self.temp, e));
        }
        self.hasher.update(chunk);
        self.written = new_len;
        Ok(())
    }

    /// Makes the segment part of the bundle: checks its length, syncs it, renames it into place and appends
    /// its journal record. When this returns `Ok`, the segment survives a crash of the process, and its
    /// record can never point at partial data.
    ///
    /// Against a power loss: with [`Durability::Full`] the folder is synced before the record is appended
    /// and the journal after, so the segment survives it too when this returns. With
    /// [`Durability::Batched`] (the default) the folder and journal syncs are done in the background for
    /// many segments at once, within the bounds set by the options; this waits for them only when a bound
    /// is reached or when the segment completes its rendition.
    ///
    /// Concurrent writers share the folder and journal syncs (group commit). If a sync fails, the error is
    /// returned, the segment stays recorded (asking for a writer for it again gives
    /// [`Error::AlreadyFinished`]), and it is made durable by the next successful sync.
    ///
    /// [`Durability::Batched`]: crate::Durability::Batched
    /// [`Durability::Full`]: crate::Durability::Full
    pub fn finish(mut self) -> Result<FinishedSegment> {
        let Some(mut file) = self.file.take().filter(|_| !self.failed) else {
            return Err(Error::Io {
                path: self.temp.clone(),
                source: std::io::Error::other("writer failed"),
            });
        };
        if let Some(expected) = self.expected
            && self.written != expected
        {
            return Err(Error::LengthMismatch { segment: self.id.clone(), expected, actual: self.written });
        }
        let storage = Arc::clone(&self.bundle.inner.storage);
        let batch = self.bundle.inner.batch.clone();
        let full = batch.is_none();
        if let Some(batch) = &batch {
            // Before anything is renamed: no record is appended without a thread to sync it.
            batch.start()?;
        }
        file.sync().at(&self.temp)?;
        drop(file);
        storage.rename(&self.temp, &self.path).at(&self.path)?;
        let folder = self.path.parent().unwrap_or_else(|| Path::new("."));
        if full && let Err(e) = self.bundle.inner.sync_folder_after_rename(folder) {
            remove_quietly(&*storage, &self.path);
            return Err(e);
        }
        let crc32 = self.hasher.clone().finalize();
        let record = JournalRecord::Segment { id: self.id.clone(), length: self.written, crc32 };
        let mut state = lock_state(&self.bundle.inner.state);
        if let Err(e) = self.bundle.append_record(&mut state, &record, false) {
            // Without its record the file is not part of the bundle; removing it keeps sizes honest. If the
            // removal fails too, the file is harmless: a later write of the segment replaces it.
            remove_quietly(&*storage, &self.path);
            return Err(e);
        }
        state.add_finished(self.id.clone(), Finished { length: self.written, crc32 });
        state.busy.remove(&self.id);
        self.done = true;
        if let Some(pos) = state.manifest.gaps.iter().position(|g| g.segment == self.id) {
            // The segment record clears the gap for readers of the journal; the manifest follows at its
            // next write.
            state.manifest.gaps.remove(pos);
        }
        if full {
            // The record is written; it is made durable outside the state lock, so that the records of
            // writers finishing meanwhile are synced by the same call (group commit).
            let end = state.journal_len;
            let epoch = state.journal_epoch;
            drop(state);
            self.bundle.inner.sync_journal_to(end, epoch)?;
        } else if let Some(batch) = &batch {
            let seq = batch.appended(Some(folder));
            let rendition_complete = state.locate(&self.id).is_some_and(|(ri, _)| {
                let ledger = &state.ledgers[ri];
                ledger.stored.count() == ledger.entries.len()
            });
            drop(state);
            // The segment is recorded whatever happens here; a failed sync is reported to this caller and
            // tried again by the next one. A completed rendition is a state boundary: it is made durable
            // before `finish` returns.
            if rendition_complete {
                batch.flush()?;
            } else {
                batch.within_bound(seq)?;
            }
        }
        Ok(FinishedSegment { id: self.id.clone(), path: self.path.clone(), length: self.written, crc32 })
    }
}

fn remove_quietly(storage: &dyn Storage, path: &Path) {
    let _ = storage.remove_file(path);
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.file = None;
        remove_quietly(&*self.bundle.inner.storage, &self.temp);
        lock_state(&self.bundle.inner.state).busy.remove(&self.id);
    }
}
