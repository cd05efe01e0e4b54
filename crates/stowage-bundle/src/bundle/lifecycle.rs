//! Creating a bundle, opening one to resume it (with what the opening repairs), and deleting it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::playlists::write_manifest;
use super::{Bundle, BundleOptions, DirRenames, Durability, Inner, JournalSync, State, lock_state};
use crate::batch::Batch;
use crate::entries::Ledger;
use crate::error::{Error, IoContext, Result};
use crate::id::SegmentId;
use crate::journal::JOURNAL_HEADER;
use crate::ledger::{
    self, JOURNAL_FILE, KEYS_DIR, LOCK_FILE, Load, MANIFEST_FILE, MASTER_FILE, SOURCE_DIR, SegmentProblem,
    TEMP_SUFFIX,
};
use crate::manifest::{BundlePlan, FORMAT_NAME, FORMAT_VERSION, Manifest, ManifestRendition, RenditionState};
use crate::storage::{LocalFs, Storage, StorageFile, StorageLock};

/// What [`Bundle::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct OpenReport {
    /// Temporary files of unfinished writes, deleted.
    pub removed_temp_files: Vec<PathBuf>,
    /// Whether the journal ended in a torn record (a crash during an append); it was cut off.
    pub torn_journal_tail: bool,
    /// Line numbers of damaged records in the middle of the journal (ignored: those segments count as
    /// not finished).
    pub corrupt_journal_lines: Vec<usize>,
    /// Journaled segments whose file is missing or has the wrong length: they count as not finished. After
    /// a power loss during batched syncs this is expected (a record can outlive its rename on some
    /// filesystems); otherwise it means the files were changed by something else.
    pub damaged_segments: Vec<(SegmentId, SegmentProblem)>,
    /// Journal records naming segments outside the plan (ignored).
    pub unknown_records: usize,
    /// Whether the journal file was missing (deleted, or never written by a creation that did not finish):
    /// nothing counts as stored.
    pub journal_missing: bool,
    /// Entries that are neither stored nor recorded as gaps although the manifest, as last written, said
    /// the download was over: the journal lost their records. They count as not stored, and the manifest
    /// says so from now on.
    pub unaccounted_segments: Vec<SegmentId>,
    /// Segments finished (journaled and intact).
    pub finished_segments: usize,
}

impl Bundle {
    /// Creates a bundle in `dir` on the local filesystem with default options. See [`Bundle::create_with`].
    pub fn create(dir: impl AsRef<Path>, plan: BundlePlan) -> Result<Self> {
        Self::create_with(Arc::new(LocalFs::new()), dir, plan, BundleOptions::default())
    }

    /// Creates a bundle in `dir` (created if missing) with `storage` and `options`.
    ///
    /// Fails with [`Error::AlreadyExists`] when `dir` already holds a bundle (open it instead), and with
    /// [`Error::Locked`] when another writer holds it.
    pub fn create_with(
        storage: Arc<dyn Storage>,
        dir: impl AsRef<Path>,
        plan: BundlePlan,
        options: BundleOptions,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        plan.validate()?;
        storage.create_dir_all(&dir).at(&dir)?;
        let lock = take_lock(&*storage, &dir)?;
        let manifest_path = dir.join(MANIFEST_FILE);
        if storage.exists(&manifest_path).at(&manifest_path)? {
            return Err(Error::AlreadyExists { path: dir });
        }
        // A folder without a manifest is a creation that did not finish: it is started again from scratch.
        let source = dir.join(SOURCE_DIR);
        storage.create_dir_all(&source).at(&source)?;
        if let Some(master) = &plan.master_playlist {
            ledger::write_atomic(&*storage, &source.join(MASTER_FILE), master.as_bytes())?;
        }
        for r in &plan.renditions {
            let rdir = dir.join(r.id.as_str());
            storage.create_dir_all(&rdir).at(&rdir)?;
            ledger::write_atomic(&*storage, &source.join(format!("{}.m3u8", r.id)), r.playlist.as_bytes())?;
        }
        ledger::write_atomic(&*storage, &dir.join(JOURNAL_FILE), JOURNAL_HEADER.as_bytes())?;
        let artwork = plan.artwork.as_ref().map(|a| crate::artwork::write(&*storage, &dir, a)).transpose()?;
        let now = SystemTime::now();
        let recording = plan.recording.is_some();
        let mut manifest = Manifest {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            asset: plan.asset.clone(),
            created: now,
            accessed: now,
            policy: plan.policy,
            key_policy: plan.key_policy,
            integrity: plan.integrity,
            finished: false,
            complete: false,
            size: 0,
            has_master_playlist: plan.master_playlist.is_some(),
            master_url: plan.master_url.clone(),
            request: plan.request.clone(),
            cancelled: false,
            renditions: plan
                .renditions
                .into_iter()
                .map(|mut r| {
                    let source_len = recording.then_some(r.playlist.len() as u64);
                    r.playlist = String::new();
                    ManifestRendition { plan: r, state: RenditionState::default(), source_len }
                })
                .collect(),
            gaps: Vec::new(),
            artwork,
            recording: plan.recording,
        };
        let ledgers: Vec<Ledger> = manifest
            .renditions
            .iter_mut()
            .map(|r| Ledger::new(std::mem::take(&mut r.plan.segments)))
            .collect();
        ledger::refresh_from_ledgers(&ledgers, &mut manifest);
        // The manifest is written last: its presence is what makes the folder a bundle.
        write_manifest(&*storage, &manifest_path, &manifest, &ledgers)?;
        let journal_path = dir.join(JOURNAL_FILE);
        let journal = storage.open_append(&journal_path).at(&journal_path)?;
        let journal = (journal, JOURNAL_HEADER.len() as u64);
        let bundle =
            Self::assemble(storage, dir, options, lock, manifest, ledgers, journal, OpenReport::default());
        {
            // The manifest just written is up to date: only the playlists are missing (the manifest of a
            // long plan is megabytes, not worth writing twice).
            let state = lock_state(&bundle.inner.state);
            bundle.write_whole_playlists(&state, crate::local::Listing::AtRest)?;
        }
        Ok(bundle)
    }

    /// Opens the bundle in `dir` on the local filesystem with default options, to resume it. See
    /// [`Bundle::open_with`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(Arc::new(LocalFs::new()), dir, BundleOptions::default())
    }

    /// Opens the bundle in `dir` with `storage` to resume it: takes the lock, reads the manifest and the
    /// journal, cuts off a torn last journal record, deletes temporary files of unfinished writes, and checks
    /// that every journaled segment exists with its recorded length (those that do not count as not
    /// finished). What was found is in [`Bundle::open_report`].
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: impl AsRef<Path>,
        options: BundleOptions,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let lock = take_lock(&*storage, &dir)?;
        let manifest = ledger::read_manifest(&*storage, &dir)?;
        let mut report = OpenReport::default();
        remove_temp_files(&*storage, &dir, &manifest, &mut report.removed_temp_files)?;

        let journal_path = dir.join(JOURNAL_FILE);
        report.journal_missing = !storage.exists(&journal_path).at(&journal_path)?;
        // The journal is read through twice, a buffer at a time, never held whole: first what a recording
        // added to its plan (so that every entry is known), then what is stored.
        let mut load = Load::new(manifest);
        let scan = ledger::scan_journal(&*storage, &dir, &mut |record| load.apply_recording(record))?;
        report.torn_journal_tail = scan.torn_tail;
        report.corrupt_journal_lines = scan.corrupt_lines;
        let mut journal_len = scan.valid_len;
        if journal_len == 0 {
            // The header never reached the disk: write it again.
            ledger::write_atomic(&*storage, &journal_path, JOURNAL_HEADER.as_bytes())?;
            journal_len = JOURNAL_HEADER.len() as u64;
        } else if scan.torn_tail {
            storage.truncate(&journal_path, journal_len).at(&journal_path)?;
        }
        cut_recorded_sources(&*storage, &dir, &load.manifest)?;
        ledger::scan_journal(&*storage, &dir, &mut |record| {
            load.apply_segment(record);
            Ok(())
        })?;
        report.damaged_segments = load.finish(&*storage, &dir)?;
        report.unknown_records = load.unknown;
        let Load { mut manifest, ledgers, .. } = load;
        report.finished_segments = ledgers.iter().map(|l| l.stored.count()).sum();
        if manifest.finished {
            // The manifest as last written said every entry was stored or a gap; what the journal does not
            // account for now was lost with its record.
            let gaps: HashSet<&SegmentId> = manifest.gaps.iter().map(|g| &g.segment).collect();
            let damaged: HashSet<&SegmentId> = report.damaged_segments.iter().map(|(id, _)| id).collect();
            for (r, ledger) in manifest.renditions.iter().zip(&ledgers) {
                for si in (0..ledger.entries.len()).filter(|&si| !ledger.stored.contains(si)) {
                    let id = ledger.entries.id(&r.plan.id, si);
                    if !gaps.contains(&id) && !damaged.contains(&id) {
                        report.unaccounted_segments.push(id);
                    }
                }
            }
        }

        manifest.accessed = SystemTime::now();
        ledger::refresh_from_ledgers(&ledgers, &mut manifest);
        // Only the access time and the summary change here, and the manifest on disk stays valid if this
        // write fails (it is atomic), so a full disk must not stop a resume: the error is not fatal.
        let _ = write_manifest(&*storage, &dir.join(MANIFEST_FILE), &manifest, &ledgers);
        let journal = storage.open_append(&journal_path).at(&journal_path)?;
        Ok(Self::assemble(storage, dir, options, lock, manifest, ledgers, (journal, journal_len), report))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        options: BundleOptions,
        lock: Box<dyn StorageLock>,
        manifest: Manifest,
        ledgers: Vec<Ledger>,
        (journal, journal_len): (Box<dyn StorageFile>, u64),
        report: OpenReport,
    ) -> Self {
        let mut damaged: HashMap<SegmentId, SegmentProblem> =
            report.damaged_segments.iter().cloned().collect();
        for id in &report.unaccounted_segments {
            if let Some(r) = manifest.rendition(&id.rendition) {
                let path = ledger::segment_path(&dir, &r.plan, id);
                damaged.insert(id.clone(), SegmentProblem::Unaccounted { path });
            }
        }
        let state = State::new(manifest, ledgers, damaged, journal, journal_len);
        let batch = match options.durability {
            Durability::Full => None,
            Durability::Batched { max_unsynced } => {
                Some(Arc::new(Batch::new(&dir, Arc::clone(&storage), max_unsynced, options.max_sync_delay)))
            }
        };
        Self {
            inner: Arc::new(Inner {
                dir,
                storage,
                journal_sync: Mutex::new(JournalSync::default()),
                dir_renames: Mutex::new(DirRenames::default()),
                dir_syncer: Mutex::new(()),
                batch,
                _lock: lock,
                report,
                state: Mutex::new(state),
            }),
        }
    }

    /// Deletes the bundle from disk (for a cancelled download whose partial bundle is not kept). Other
    /// handles to it fail from then on.
    pub fn delete(self) -> Result<()> {
        // Renamed first, then deleted: a crash leaves a folder marked for removal, never half a bundle.
        crate::store::remove_bundle_dir(&*self.inner.storage, &self.inner.dir)
    }
}

/// Cuts each recorded source playlist back to the length its plan covers: lines a recorder appended but
/// did not get to journal (it stopped in between) list entries the plan does not have.
fn cut_recorded_sources(storage: &dyn Storage, dir: &Path, manifest: &Manifest) -> Result<()> {
    for r in &manifest.renditions {
        let Some(expected) = r.source_len else { continue };
        let path = dir.join(SOURCE_DIR).join(format!("{}.m3u8", r.plan.id));
        let actual = storage.len(&path).at(&path)?;
        if actual > expected {
            storage.truncate(&path, expected).at(&path)?;
        } else if actual < expected {
            // The lines are synced before the record that names their length is written: a shorter file
            // was cut by something else.
            return Err(Error::Playlist {
                path,
                reason: format!("the recorded playlist has {actual} bytes, its plan covers {expected}"),
            });
        }
    }
    Ok(())
}

fn take_lock(storage: &dyn Storage, dir: &Path) -> Result<Box<dyn StorageLock>> {
    let path = dir.join(LOCK_FILE);
    match storage.try_lock(&path) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(Error::Locked { path: dir.to_path_buf() }),
        Err(e) => Err(Error::from_io(&path, e)),
    }
}

fn remove_temp_files(
    storage: &dyn Storage,
    dir: &Path,
    manifest: &Manifest,
    removed: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut dirs = vec![dir.to_path_buf(), dir.join(SOURCE_DIR)];
    for r in &manifest.renditions {
        dirs.push(dir.join(r.plan.id.as_str()));
        dirs.push(dir.join(r.plan.id.as_str()).join(KEYS_DIR));
    }
    for d in dirs {
        let entries = match storage.list_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::from_io(&d, e)),
        };
        for entry in entries {
            if !entry.is_dir && entry.name.to_string_lossy().ends_with(TEMP_SUFFIX) {
                let path = d.join(&entry.name);
                match storage.remove_file(&path) {
                    Ok(()) => removed.push(path),
                    // Files written without the lock (an access record being marked) may be renamed into
                    // place between the listing and the removal.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::from_io(&path, e)),
                }
            }
        }
    }
    Ok(())
}
