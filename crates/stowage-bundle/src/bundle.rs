//! The bundle writer: create or open a bundle, write segments durably, record gaps, finish.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::batch::Batch;
use crate::error::{Error, IoContext, Result};
use crate::id::{RenditionId, SegmentId};
use crate::journal::{JOURNAL_HEADER, JournalRecord};
use crate::ledger::{
    self, Finished, JOURNAL_FILE, KEYS_DIR, LOCK_FILE, MANIFEST_FILE, MASTER_FILE, SOURCE_DIR,
    SegmentProblem, TEMP_SUFFIX,
};
use crate::manifest::{
    BundlePlan, FORMAT_NAME, FORMAT_VERSION, Gap, Manifest, ManifestRendition, RenditionPlan, RenditionState,
    StoragePolicy, TimeRange,
};
use crate::storage::{LocalFs, Storage, StorageFile, StorageLock};

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

struct State {
    manifest: Manifest,
    index: HashMap<SegmentId, (usize, usize)>,
    finished: HashMap<SegmentId, Finished>,
    busy: HashSet<SegmentId>,
    /// The open journal, `None` after a failed append until it is repaired.
    journal: Option<Box<dyn StorageFile>>,
    /// The journal's length up to its last complete record.
    journal_len: u64,
    /// Incremented whenever the journal is cut back after a failed append, so that a sync that started
    /// before does not vouch for bytes written after.
    journal_epoch: u64,
    /// Per rendition (manifest order): what progress and time-range queries need, kept up to date on each
    /// change so that a query costs nothing like a walk over a 100,000-segment plan.
    summaries: Vec<Summary>,
}

/// A rendition's running totals and playable time ranges.
#[derive(Default)]
struct Summary {
    finished: usize,
    bytes: u64,
    ranges: Vec<TimeRange>,
    /// Start time of each entry (media entries; initialization entries get the next segment's start).
    starts: Vec<f64>,
    /// For each entry, the index of the initialization entry in force, if any.
    init_of: Vec<Option<usize>>,
}

impl State {
    /// Recomputes the summary of rendition `ri` from the finished set.
    fn rebuild_summary(&mut self, ri: usize) {
        let plan = &self.manifest.renditions[ri].plan;
        let mut summary = Summary {
            ranges: ledger::loaded_time_ranges(plan, &self.finished),
            starts: Vec::with_capacity(plan.segments.len()),
            init_of: Vec::with_capacity(plan.segments.len()),
            ..Summary::default()
        };
        let (mut t, mut init) = (0.0, None);
        for (si, entry) in plan.segments.iter().enumerate() {
            if entry.kind == crate::id::SegmentKind::Init {
                init = Some(si);
            }
            summary.starts.push(t);
            summary.init_of.push(if entry.kind == crate::id::SegmentKind::Init { None } else { init });
            if entry.kind == crate::id::SegmentKind::Media {
                t += entry.duration;
            }
            if let Some(f) = self.finished.get(&entry.id(&plan.id)) {
                summary.finished += 1;
                summary.bytes += f.length;
            }
        }
        if ri < self.summaries.len() {
            self.summaries[ri] = summary;
        } else {
            self.summaries.push(summary);
        }
    }

    fn rebuild_summaries(&mut self) {
        self.summaries.clear();
        for ri in 0..self.manifest.renditions.len() {
            self.rebuild_summary(ri);
        }
    }

    /// Records a finished entry and updates its rendition's summary.
    fn add_finished(&mut self, id: SegmentId, finished: Finished) {
        let Some(&(ri, si)) = self.index.get(&id) else { return };
        let entry = &self.manifest.renditions[ri].plan.segments[si];
        let is_init = entry.kind == crate::id::SegmentKind::Init;
        let duration = entry.duration;
        let rendition = self.manifest.renditions[ri].plan.id.clone();
        if let Some(old) = self.finished.insert(id, finished) {
            // Replaced: count it once.
            self.summaries[ri].finished -= 1;
            self.summaries[ri].bytes -= old.length;
        }
        let summary = &mut self.summaries[ri];
        summary.finished += 1;
        summary.bytes += finished.length;
        let init_ok = summary.init_of[si].is_none_or(|ii| {
            let init = &self.manifest.renditions[ri].plan.segments[ii];
            self.finished.contains_key(&init.id(&rendition))
        });
        if is_init {
            // Segments waiting for this initialization section may have become playable.
            self.summaries[ri].ranges =
                ledger::loaded_time_ranges(&self.manifest.renditions[ri].plan, &self.finished);
        } else if init_ok && duration > 0.0 {
            let start = self.summaries[ri].starts[si];
            insert_range(&mut self.summaries[ri].ranges, TimeRange::new(start, start + duration));
        }
    }

    /// Forgets a finished entry and updates its rendition's summary.
    fn remove_finished(&mut self, id: &SegmentId) {
        if self.finished.remove(id).is_some()
            && let Some(&(ri, _)) = self.index.get(id)
        {
            self.rebuild_summary(ri);
        }
    }
}

/// Adds `range` to sorted, disjoint `ranges`, merging it with those it touches.
fn insert_range(ranges: &mut Vec<TimeRange>, range: TimeRange) {
    const TOUCH: f64 = 1e-9;
    let pos = ranges.partition_point(|r| r.end < range.start - TOUCH);
    let mut merged = range;
    let mut end = pos;
    while end < ranges.len() && ranges[end].start <= merged.end + TOUCH {
        merged.start = merged.start.min(ranges[end].start);
        merged.end = merged.end.max(ranges[end].end);
        end += 1;
    }
    ranges.splice(pos..end, [merged]);
}

/// Renames waiting for their folder to be synced ([`Durability::Full`]).
#[derive(Default)]
struct DirRenames {
    /// Tickets handed out, one per rename.
    issued: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// Folders with renames not yet synced.
    pending: Vec<PathBuf>,
}

/// The state of group commit: a handle used only to sync the journal, and how far it is known durable.
struct JournalSync {
    handle: Option<Box<dyn StorageFile>>,
    synced_len: u64,
    epoch: u64,
}

/// How [`SegmentWriter::finish`] makes a segment durable.
///
/// Both modes keep the promise that matters: a segment's bytes are synced before its final name and its
/// journal record exist, so no record can ever point at partial data, and a crash of the process loses
/// nothing. They differ in what a power loss (or a kernel crash) may cost: with [`Full`](Self::Full),
/// nothing that `finish` returned; with [`Batched`](Self::Batched) (the default), the last few segments,
/// which are then fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every segment: sync the file, rename it into place, sync the folder, append the journal record, sync
    /// the journal. When `finish` returns, the segment survives a power loss. Three syncs per segment
    /// (the folder and journal syncs are shared between writers finishing at the same time).
    Full,
    /// Every segment: sync the file, rename it into place, append the journal record. The folders and the
    /// journal are synced by a background thread once for many segments (group commit), so a segment
    /// usually costs one sync, like a plain write.
    ///
    /// Two bounds limit what a power loss may cost: at most `max_unsynced` finished segments are ever not
    /// yet durable (a background sync starts when half that many are waiting, and `finish` waits only if
    /// the bound would be passed), and none stays so for longer than
    /// [`BundleOptions::max_sync_delay`] (plus the time of the sync). Everything is also synced at every
    /// state boundary: when a rendition completes, when the manifest is written ([`Bundle::save`],
    /// [`Bundle::write_playlists`], [`Bundle::mark_finished`], policy changes, added renditions), by
    /// [`Bundle::sync`], and when the last handle is dropped.
    ///
    /// Never less safe against corruption: a segment's bytes are durable before its name and its record
    /// exist, and a record whose file did not survive a power loss is found when the bundle is opened
    /// (that segment counts as not finished).
    ///
    /// Built with [`Durability::batched`] (or the default); more bounds may be added as fields.
    #[non_exhaustive]
    Batched {
        /// Finished segments that may be not yet durable at any moment; 0 syncs every segment before
        /// `finish` returns (in the background thread, after the record is appended).
        max_unsynced: u32,
    },
}

impl Durability {
    /// The default bound of [`Durability::Batched`]: 32 segments.
    pub const DEFAULT_MAX_UNSYNCED: u32 = 32;

    /// [`Durability::Batched`] with at most `max_unsynced` segments not yet durable.
    pub const fn batched(max_unsynced: u32) -> Self {
        Self::Batched { max_unsynced }
    }
}

impl Default for Durability {
    /// [`Durability::Batched`] with [`Durability::DEFAULT_MAX_UNSYNCED`].
    fn default() -> Self {
        Self::batched(Self::DEFAULT_MAX_UNSYNCED)
    }
}

/// Options of a bundle writer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleOptions {
    /// How segments are made durable. Default: [`Durability::Batched`] with
    /// [`Durability::DEFAULT_MAX_UNSYNCED`].
    pub durability: Durability,
    /// With [`Durability::Batched`], the longest a finished segment waits for the background sync that
    /// makes it durable. Default: one second.
    pub max_sync_delay: Duration,
}

impl Default for BundleOptions {
    fn default() -> Self {
        Self { durability: Durability::default(), max_sync_delay: Self::DEFAULT_MAX_SYNC_DELAY }
    }
}

impl BundleOptions {
    /// The default of [`BundleOptions::max_sync_delay`]: one second.
    pub const DEFAULT_MAX_SYNC_DELAY: Duration = Duration::from_secs(1);

    /// Sets the durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the longest a finished segment waits for its background sync ([`Durability::Batched`]).
    pub fn max_sync_delay(mut self, delay: Duration) -> Self {
        self.max_sync_delay = delay;
        self
    }
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

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
    /// Segments finished (journaled and intact).
    pub finished_segments: usize,
}

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

/// Progress of one rendition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RenditionProgress {
    /// The rendition.
    pub rendition: RenditionId,
    /// Finished entries (segments and initialization sections).
    pub segments_finished: usize,
    /// Planned entries.
    pub segments_total: usize,
    /// Bytes of finished entries.
    pub bytes_finished: u64,
    /// Playable time ranges.
    pub loaded_time_ranges: Vec<TimeRange>,
    /// Total planned duration, in seconds.
    pub duration: f64,
}

/// Progress of the whole bundle.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Finished entries, all renditions.
    pub segments_finished: usize,
    /// Planned entries, all renditions.
    pub segments_total: usize,
    /// Bytes of finished entries.
    pub bytes_finished: u64,
    /// Entries recorded as gaps.
    pub gaps: usize,
    /// Per rendition, in plan order.
    pub renditions: Vec<RenditionProgress>,
}

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

fn lock_renames(renames: &Mutex<DirRenames>) -> MutexGuard<'_, DirRenames> {
    renames.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the state half-updated in a way that matters on disk: the
    // journal is repaired before the next append. So a poisoned lock is taken over.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let now = SystemTime::now();
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
            renditions: plan
                .renditions
                .into_iter()
                .map(|mut r| {
                    r.playlist = String::new();
                    ManifestRendition { plan: r, state: RenditionState::default() }
                })
                .collect(),
            gaps: Vec::new(),
        };
        let finished = HashMap::new();
        ledger::refresh_manifest(&mut manifest, &finished);
        // The manifest is written last: its presence is what makes the folder a bundle.
        ledger::write_atomic(&*storage, &manifest_path, &manifest.to_json())?;
        let journal_path = dir.join(JOURNAL_FILE);
        let journal = storage.open_append(&journal_path).at(&journal_path)?;
        let journal = (journal, JOURNAL_HEADER.len() as u64);
        let bundle =
            Self::assemble(storage, dir, options, lock, manifest, finished, journal, OpenReport::default());
        {
            // The manifest just written is up to date: only the playlists are missing (the manifest of a
            // long plan is megabytes, not worth writing twice).
            let state = lock_state(&bundle.inner.state);
            crate::local::write_all(
                &*bundle.inner.storage,
                &bundle.inner.dir,
                &state.manifest,
                &state.finished,
            )?;
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
        let mut manifest = ledger::read_manifest(&*storage, &dir)?;
        let mut report = OpenReport::default();
        remove_temp_files(&*storage, &dir, &manifest, &mut report.removed_temp_files)?;

        let contents = ledger::read_journal(&*storage, &dir)?;
        let journal_path = dir.join(JOURNAL_FILE);
        report.torn_journal_tail = contents.torn_tail;
        report.corrupt_journal_lines = contents.corrupt_lines.clone();
        let mut journal_len = contents.valid_len;
        if journal_len == 0 {
            // The header never reached the disk: write it again.
            ledger::write_atomic(&*storage, &journal_path, JOURNAL_HEADER.as_bytes())?;
            journal_len = JOURNAL_HEADER.len() as u64;
        } else if contents.torn_tail {
            storage.truncate(&journal_path, journal_len).at(&journal_path)?;
        }
        let index = ledger::index_plan(&manifest);
        let (finished, problems, unknown) =
            ledger::load_finished(&*storage, &dir, &mut manifest, &index, &contents.records)?;
        report.damaged_segments = problems;
        report.unknown_records = unknown;
        report.finished_segments = finished.len();

        manifest.accessed = SystemTime::now();
        ledger::refresh_manifest(&mut manifest, &finished);
        // Only the access time and the summary change here, and the manifest on disk stays valid if this
        // write fails (it is atomic), so a full disk must not stop a resume: the error is not fatal.
        let _ = ledger::write_atomic(&*storage, &dir.join(MANIFEST_FILE), &manifest.to_json());
        let journal = storage.open_append(&journal_path).at(&journal_path)?;
        Ok(Self::assemble(storage, dir, options, lock, manifest, finished, (journal, journal_len), report))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        options: BundleOptions,
        lock: Box<dyn StorageLock>,
        manifest: Manifest,
        finished: HashMap<SegmentId, Finished>,
        (journal, journal_len): (Box<dyn StorageFile>, u64),
        report: OpenReport,
    ) -> Self {
        let index = ledger::index_plan(&manifest);
        let state = State {
            manifest,
            index,
            finished,
            busy: HashSet::new(),
            journal: Some(journal),
            journal_len,
            journal_epoch: 0,
            summaries: Vec::new(),
        };
        let mut state = state;
        state.rebuild_summaries();
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
                journal_sync: Mutex::new(JournalSync { handle: None, synced_len: 0, epoch: 0 }),
                dir_renames: Mutex::new(DirRenames::default()),
                dir_syncer: Mutex::new(()),
                batch,
                _lock: lock,
                report,
                state: Mutex::new(state),
            }),
        }
    }

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
        let state = lock_state(&self.inner.state);
        let mut manifest = state.manifest.clone();
        ledger::refresh_manifest(&mut manifest, &state.finished);
        manifest
    }

    /// Whether the segment is finished (durable and journaled).
    pub fn is_finished(&self, id: &SegmentId) -> bool {
        lock_state(&self.inner.state).finished.contains_key(id)
    }

    /// The finished segments, in plan order.
    pub fn finished_segments(&self) -> Vec<SegmentId> {
        let state = lock_state(&self.inner.state);
        plan_ids(&state.manifest).filter(|id| state.finished.contains_key(id)).collect()
    }

    /// The segments still to fetch, in plan order: neither finished nor recorded as a gap.
    pub fn pending_segments(&self) -> Vec<SegmentId> {
        let state = lock_state(&self.inner.state);
        let gaps: HashSet<&SegmentId> = state.manifest.gaps.iter().map(|g| &g.segment).collect();
        plan_ids(&state.manifest)
            .filter(|id| !state.finished.contains_key(id) && !gaps.contains(id))
            .collect()
    }

    /// The gaps recorded so far.
    pub fn gaps(&self) -> Vec<Gap> {
        lock_state(&self.inner.state).manifest.gaps.clone()
    }

    /// Where a planned segment is (or will be) stored.
    pub fn segment_path(&self, id: &SegmentId) -> Result<PathBuf> {
        let state = lock_state(&self.inner.state);
        let &(ri, _) = state.index.get(id).ok_or_else(|| Error::UnknownSegment { segment: id.clone() })?;
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
        Ok(state.summaries[ri].ranges.clone())
    }

    /// Progress, overall and per rendition.
    pub fn progress(&self) -> Progress {
        let state = lock_state(&self.inner.state);
        let renditions: Vec<RenditionProgress> = state
            .manifest
            .renditions
            .iter()
            .zip(&state.summaries)
            .map(|(r, summary)| RenditionProgress {
                rendition: r.plan.id.clone(),
                segments_finished: summary.finished,
                segments_total: r.plan.segments.len(),
                bytes_finished: summary.bytes,
                loaded_time_ranges: summary.ranges.clone(),
                duration: summary.starts.last().copied().unwrap_or(0.0)
                    + r.plan.segments.last().map_or(0.0, |s| s.duration),
            })
            .collect();
        Progress {
            segments_finished: renditions.iter().map(|r| r.segments_finished).sum(),
            segments_total: renditions.iter().map(|r| r.segments_total).sum(),
            bytes_finished: renditions.iter().map(|r| r.bytes_finished).sum(),
            gaps: state.manifest.gaps.len(),
            renditions,
        }
    }

    /// Starts writing a segment. The bytes go to a temporary file until [`SegmentWriter::finish`].
    ///
    /// Fails with [`Error::AlreadyFinished`] for a finished segment (a finished segment is never rewritten)
    /// and [`Error::SegmentBusy`] while another writer for it is open.
    pub fn segment_writer(&self, id: &SegmentId) -> Result<SegmentWriter> {
        let (path, expected) = {
            let mut state = lock_state(&self.inner.state);
            let &(ri, si) =
                state.index.get(id).ok_or_else(|| Error::UnknownSegment { segment: id.clone() })?;
            if state.finished.contains_key(id) {
                return Err(Error::AlreadyFinished { segment: id.clone() });
            }
            if !state.busy.insert(id.clone()) {
                return Err(Error::SegmentBusy { segment: id.clone() });
            }
            let plan = &state.manifest.renditions[ri].plan;
            (ledger::segment_path(&self.inner.dir, plan, id), plan.segments[si].expected_length)
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
        if !state.index.contains_key(id) {
            return Err(Error::UnknownSegment { segment: id.clone() });
        }
        if state.finished.contains_key(id) {
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

    /// Adds renditions to the bundle (Apple's "complete or augment": more audio languages or subtitles for
    /// an asset already downloaded or being downloaded). Their segments become pending, the bundle is no
    /// longer finished, and the local playlists are rewritten (the master lists the new renditions when
    /// they carry a `master_uri` found in the source master playlist).
    ///
    /// Fails with [`Error::InvalidPlan`] when a rendition identifier is already in the bundle.
    pub fn add_renditions(&self, renditions: Vec<RenditionPlan>) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        let mut check = BundlePlan::new(state.manifest.asset.clone());
        check.renditions = state.manifest.renditions.iter().map(|r| r.plan.clone()).collect();
        check.renditions.extend(renditions.iter().cloned());
        check.validate()?;
        let storage = &*self.inner.storage;
        let source = self.inner.dir.join(SOURCE_DIR);
        for r in &renditions {
            let rdir = self.inner.dir.join(r.id.as_str());
            storage.create_dir_all(&rdir).at(&rdir)?;
            ledger::write_atomic(storage, &source.join(format!("{}.m3u8", r.id)), r.playlist.as_bytes())?;
        }
        for mut r in renditions {
            r.playlist = String::new();
            state.manifest.renditions.push(ManifestRendition { plan: r, state: RenditionState::default() });
        }
        state.index = ledger::index_plan(&state.manifest);
        state.rebuild_summaries();
        self.save_manifest(&mut state)?;
        crate::local::write_all(storage, &self.inner.dir, &state.manifest, &state.finished)
    }

    /// Deletes the bundle from disk (for a cancelled download whose partial bundle is not kept). Other
    /// handles to it fail from then on.
    pub fn delete(self) -> Result<()> {
        let storage = Arc::clone(&self.inner.storage);
        let dir = self.inner.dir.clone();
        // The manifest goes first: from then on the folder is no bundle, whatever happens to the rest.
        let manifest = dir.join(MANIFEST_FILE);
        storage.remove_file(&manifest).at(&manifest)?;
        storage.remove_dir_all(&dir).at(&dir)
    }

    /// Changes the storage policy (expiry and priority).
    pub fn set_policy(&self, policy: StoragePolicy) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        state.manifest.policy = policy;
        self.save_manifest(&mut state)
    }

    /// Writes the manifest with up-to-date state fields.
    pub fn save(&self) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        self.save_manifest(&mut state)
    }

    /// Makes every finished segment and recorded gap durable now (with [`Durability::Batched`], syncs the
    /// folders and the journal and waits for it; with [`Durability::Full`] there is nothing left to do).
    pub fn sync(&self) -> Result<()> {
        self.inner.flush()
    }

    fn save_manifest(&self, state: &mut State) -> Result<()> {
        // A state boundary: what the manifest is about to say must be durable first.
        self.inner.flush()?;
        let State { manifest, finished, .. } = state;
        ledger::refresh_manifest(manifest, finished);
        ledger::write_atomic(&*self.inner.storage, &self.inner.dir.join(MANIFEST_FILE), &manifest.to_json())
    }

    /// Writes the local playlists (`master.m3u8` and each rendition's `index.m3u8`) for what is stored
    /// now, and the manifest. Can be called at any time during a download so that players see progress.
    pub fn write_playlists(&self) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        self.save_manifest(&mut state)?;
        crate::local::write_all(&*self.inner.storage, &self.inner.dir, &state.manifest, &state.finished)
    }

    /// Ends the download: checks that every planned segment is finished or recorded as a gap, then writes
    /// the final local playlists (with `EXT-X-ENDLIST`) and the manifest.
    ///
    /// Fails with [`Error::Incomplete`] when segments are still pending.
    pub fn mark_finished(&self) -> Result<Manifest> {
        let missing = self.pending_segments().len();
        if missing > 0 {
            return Err(Error::Incomplete { path: self.inner.dir.clone(), missing });
        }
        self.write_playlists()?;
        Ok(self.manifest())
    }

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

    /// Appends a record and syncs the journal. On failure the journal is marked for repair: the next
    /// append first cuts it back to its last complete record, so a partly written line never stays.
    fn append_record(&self, state: &mut State, record: &JournalRecord, sync: bool) -> Result<()> {
        let path = self.inner.dir.join(JOURNAL_FILE);
        let storage = &*self.inner.storage;
        if state.journal.is_none() {
            storage.truncate(&path, state.journal_len).at(&path)?;
            state.journal = Some(storage.open_append(&path).at(&path)?);
            // Lock order: state, then journal_sync (a sync never takes the state lock while holding it).
            state.journal_epoch += 1;
            let mut sync = self.inner.journal_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
    fn sync_folder_after_rename(&self, folder: &Path) -> Result<()> {
        let ticket = {
            let mut renames = lock_renames(&self.dir_renames);
            renames.issued += 1;
            if !renames.pending.iter().any(|d| d == folder) {
                renames.pending.push(folder.to_path_buf());
            }
            renames.issued
        };
        let _syncer = self.dir_syncer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (target, folders) = {
            let mut renames = lock_renames(&self.dir_renames);
            if renames.synced >= ticket {
                return Ok(());
            }
            (renames.issued, std::mem::take(&mut renames.pending))
        };
        for (i, dir) in folders.iter().enumerate() {
            if let Err(e) = self.storage.sync_dir(dir) {
                // Those folders are still to sync: the next writer tries again.
                let mut renames = lock_renames(&self.dir_renames);
                for d in &folders[i..] {
                    if !renames.pending.contains(d) {
                        renames.pending.push(d.clone());
                    }
                }
                return Err(Error::from_io(dir, e));
            }
        }
        let mut renames = lock_renames(&self.dir_renames);
        renames.synced = renames.synced.max(target);
        Ok(())
    }

    /// Makes the journal durable up to byte `end` (written in `epoch`), unless a sync already did.
    fn sync_journal_to(&self, end: u64, epoch: u64) -> Result<()> {
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
        let mut sync = self.journal_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
    fn flush(&self) -> Result<()> {
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

fn plan_ids(manifest: &Manifest) -> impl Iterator<Item = SegmentId> + '_ {
    manifest.renditions.iter().flat_map(|r| r.plan.segment_ids())
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
                storage.remove_file(&path).at(&path)?;
                removed.push(path);
            }
        }
    }
    Ok(())
}

/// Reads a file through, returning its length and CRC-32.
pub(crate) fn hash_file(storage: &dyn Storage, path: &Path) -> Result<(u64, u32)> {
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

use std::io::Read as _;

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
            let rendition_complete = state.index.get(&self.id).is_some_and(|&(ri, _)| {
                state.summaries[ri].finished == state.manifest.renditions[ri].plan.segments.len()
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
