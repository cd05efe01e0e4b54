//! Journal appends and the syncs that make them durable: the folder and journal syncs shared between
//! writers finishing at the same time with [`Durability::Full`] (group commit), and the flushes of the
//! background syncs of [`Durability::Batched`] at every state boundary.
//!
//! [`Durability::Batched`]: crate::Durability::Batched
//! [`Durability::Full`]: crate::Durability::Full

use std::path::{Path, PathBuf};

use super::{Bundle, Inner, State, lock_state};
use crate::error::{Error, IoContext, Result};
use crate::journal::JournalRecord;
use crate::ledger::JOURNAL_FILE;
use crate::poison::lock;
use crate::storage::StorageFile;

/// Renames waiting for their folder to be synced ([`Durability::Full`]).
///
/// [`Durability::Full`]: crate::Durability::Full
#[derive(Default)]
pub(super) struct DirRenames {
    /// Tickets handed out, one per rename.
    issued: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// Folders with renames not yet synced.
    pending: Vec<PathBuf>,
}

/// The state of group commit: a handle used only to sync the journal, and how far it is known durable.
#[derive(Default)]
pub(super) struct JournalSync {
    handle: Option<Box<dyn StorageFile>>,
    synced_len: u64,
    epoch: u64,
}

impl Bundle {
    /// Makes every finished segment and recorded gap durable now (with [`Durability::Batched`], syncs the
    /// folders and the journal and waits for it; with [`Durability::Full`] there is nothing left to do).
    ///
    /// [`Durability::Batched`]: crate::Durability::Batched
    /// [`Durability::Full`]: crate::Durability::Full
    pub fn sync(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Appends a record and syncs the journal. On failure the journal is marked for repair: the next
    /// append first cuts it back to its last complete record, so a partly written line never stays.
    pub(super) fn append_record(&self, state: &mut State, record: &JournalRecord, sync: bool) -> Result<()> {
        let path = self.inner.dir.join(JOURNAL_FILE);
        let storage = &*self.inner.storage;
        if state.journal.is_none() {
            storage.truncate(&path, state.journal_len).at(&path)?;
            state.journal = Some(storage.open_append(&path).at(&path)?);
            // Lock order: state, then journal_sync (a sync never takes the state lock while holding it).
            state.journal_epoch += 1;
            let mut sync = lock(&self.inner.journal_sync);
            sync.epoch = state.journal_epoch;
            sync.synced_len = sync.synced_len.min(state.journal_len);
        }
        let line = record.to_line();
        let result = match state.journal.as_mut() {
            Some(journal) => {
                journal.write_all(&line).and_then(|()| if sync { journal.sync() } else { Ok(()) })
            }
            None => Ok(()),
        };
        match result {
            Ok(()) => {
                state.journal_len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                state.journal = None;
                Err(Error::from_io(&path, e))
            }
        }
    }
}

impl Inner {
    /// Makes a rename just done in `folder` durable, sharing the folder sync with writers that renamed at
    /// the same time (group commit).
    pub(super) fn sync_folder_after_rename(&self, folder: &Path) -> Result<()> {
        let ticket = {
            let mut renames = lock(&self.dir_renames);
            renames.issued += 1;
            if !renames.pending.iter().any(|d| d == folder) {
                renames.pending.push(folder.to_path_buf());
            }
            renames.issued
        };
        let _syncer = lock(&self.dir_syncer);
        let (target, folders) = {
            let mut renames = lock(&self.dir_renames);
            if renames.synced >= ticket {
                return Ok(());
            }
            (renames.issued, std::mem::take(&mut renames.pending))
        };
        for (i, dir) in folders.iter().enumerate() {
            if let Err(e) = self.storage.sync_dir(dir) {
                // Those folders are still to sync: the next writer tries again.
                let mut renames = lock(&self.dir_renames);
                for d in &folders[i..] {
                    if !renames.pending.contains(d) {
                        renames.pending.push(d.clone());
                    }
                }
                return Err(Error::from_io(dir, e));
            }
        }
        let mut renames = lock(&self.dir_renames);
        renames.synced = renames.synced.max(target);
        Ok(())
    }

    /// Makes the journal durable up to byte `end` (written in `epoch`), unless a sync already did.
    pub(super) fn sync_journal_to(&self, end: u64, epoch: u64) -> Result<()> {
        let path = self.dir.join(JOURNAL_FILE);
        let target = {
            let state = lock_state(&self.state);
            if state.journal_epoch != epoch {
                // The journal was cut back after a failed append: sync whatever it holds now.
                state.journal_len.min(end)
            } else {
                state.journal_len
            }
        };
        let mut sync = lock(&self.journal_sync);
        if sync.epoch == epoch && sync.synced_len >= end {
            return Ok(());
        }
        if sync.handle.is_none() {
            sync.handle = Some(self.storage.open_append(&path).at(&path)?);
        }
        if let Some(handle) = sync.handle.as_mut() {
            handle.sync().at(&path)?;
        }
        if sync.epoch == epoch {
            sync.synced_len = sync.synced_len.max(target);
        }
        Ok(())
    }

    /// Makes every record appended so far durable ([`Durability::Batched`]; with [`Durability::Full`]
    /// they already are).
    ///
    /// [`Durability::Batched`]: crate::Durability::Batched
    /// [`Durability::Full`]: crate::Durability::Full
    pub(super) fn flush(&self) -> Result<()> {
        match &self.batch {
            Some(batch) => batch.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is going: make batched records durable and stop the sync thread.
        if let Some(batch) = &self.batch {
            batch.close();
        }
    }
}
