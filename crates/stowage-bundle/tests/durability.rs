//! Durability modes: the bounds of batched syncs (count, time, state boundaries), failures of background
//! syncs, what a power loss can leave behind (simulated by undoing what had not been synced), and how
//! often the manifest is written.

mod common;

use std::io::{self};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use stowage_bundle::{Bundle, BundleOptions, Durability, LocalFs, SegmentProblem, Storage, StorageFile};

/// What the recording storage saw of the journal: records written and records known durable.
#[derive(Debug, Default)]
struct JournalTrack {
    /// Record lines appended so far.
    written: u64,
    /// Record lines covered by the last journal sync that completed.
    durable: u64,
    /// Folder syncs so far.
    dir_syncs: u64,
    /// Journal syncs so far.
    journal_syncs: u64,
    /// Writes of `manifest.json` so far.
    manifest_writes: u64,
}

/// The local filesystem, watching the journal and the manifest; journal syncs can be slowed down or made
/// to fail.
#[derive(Debug, Default)]
struct Recording {
    inner: LocalFs,
    track: Arc<Mutex<JournalTrack>>,
    slow_journal_sync_ms: Arc<AtomicU64>,
    fail_journal_sync: Arc<AtomicBool>,
}

struct RecordingFile {
    inner: Box<dyn StorageFile>,
    journal: bool,
    recording: Arc<Recording>,
}

impl StorageFile for RecordingFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        if self.journal {
            // The header line is not a record.
            let lines = buf.iter().filter(|&&b| b == b'\n').count() as u64;
            let header = u64::from(buf.starts_with(b"stowage-journal"));
            self.recording.track.lock().unwrap().written += lines - header;
        }
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        if !self.journal {
            return self.inner.sync();
        }
        // A sync covers what was written before it started.
        let covered = self.recording.track.lock().unwrap().written;
        std::thread::sleep(Duration::from_millis(self.recording.slow_journal_sync_ms.load(Ordering::SeqCst)));
        if self.recording.fail_journal_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected sync failure"));
        }
        self.inner.sync()?;
        let mut track = self.recording.track.lock().unwrap();
        track.durable = track.durable.max(covered);
        track.journal_syncs += 1;
        Ok(())
    }
}

/// A storage handle that hands out files wrapped with a reference to the shared recording.
#[derive(Debug)]
struct Handle(Arc<Recording>);

impl Handle {
    fn wrap(&self, path: &Path, inner: Box<dyn StorageFile>) -> Box<dyn StorageFile> {
        let journal = path.file_name().is_some_and(|n| n == "journal.log");
        Box::new(RecordingFile { inner, journal, recording: Arc::clone(&self.0) })
    }
}

impl Storage for Handle {
    stowage_testkit::storage_pass_through!(
        (0.inner)
        create_dir_all, open_read, len, exists, rename, truncate, remove_file, remove_dir_all, list_dir,
        try_lock, available_space,
    );
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        if path.file_name().is_some_and(|n| n == "manifest.json.part") {
            self.0.track.lock().unwrap().manifest_writes += 1;
        }
        Ok(self.wrap(path, self.0.inner.create(path)?))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(self.wrap(path, self.0.inner.open_append(path)?))
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.track.lock().unwrap().dir_syncs += 1;
        self.0.inner.sync_dir(path)
    }
}

fn recording() -> (Arc<Recording>, Arc<Handle>) {
    let recording = Arc::new(Recording::default());
    (Arc::clone(&recording), Arc::new(Handle(recording)))
}

fn unsynced(recording: &Recording) -> u64 {
    let track = recording.track.lock().unwrap();
    track.written - track.durable
}

#[test]
fn the_default_is_batched_within_a_count_and_a_time_bound() {
    let options = BundleOptions::default();
    assert_eq!(options.durability, Durability::batched(Durability::DEFAULT_MAX_UNSYNCED));
    assert!(matches!(options.durability, Durability::Batched { max_unsynced: 32, .. }));
    assert_eq!(options.max_sync_delay, Duration::from_secs(1));
}

#[test]
fn batched_finish_never_leaves_more_than_max_unsynced_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (rec, storage) = recording();
    // Slow journal syncs, so that writers outrun them and have to wait at the bound.
    rec.slow_journal_sync_ms.store(15, Ordering::SeqCst);
    let options = BundleOptions::default().durability(Durability::batched(4)).max_sync_delay(Duration::MAX);
    let bundle = Bundle::create_with(storage, tmp.path().join("a"), simple_plan("a", 41), options).unwrap();
    let ids = bundle.pending_segments();
    let worst = AtomicU64::new(0);
    std::thread::scope(|s| {
        for lane in 0..2 {
            let (bundle, ids, rec, worst) = (&bundle, &ids, &rec, &worst);
            s.spawn(move || {
                // The last segment completes the rendition: leave it for the end.
                for id in ids[..40].iter().skip(lane).step_by(2) {
                    write_segment(bundle, id, &segment_bytes(id, 1, 500)).unwrap();
                    worst.fetch_max(unsynced(rec), Ordering::SeqCst);
                }
            });
        }
    });
    // Each writer checks after its own finish, while the other may have appended one more record.
    let worst = worst.load(Ordering::SeqCst);
    assert!(worst <= 4 + 1, "{worst} records were not durable");
    assert!(worst >= 2, "the syncs were never behind ({worst}): the test proves nothing");
    let journal_syncs = rec.track.lock().unwrap().journal_syncs;
    assert!(journal_syncs < 40, "{journal_syncs} journal syncs for 40 segments: not batched");
    // Completing the rendition is a state boundary.
    write_segment(&bundle, &ids[40], &segment_bytes(&ids[40], 1, 500)).unwrap();
    assert_eq!(unsynced(&rec), 0);
}

#[test]
fn batched_records_are_synced_within_the_time_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let (rec, storage) = recording();
    let options = BundleOptions::default()
        .durability(Durability::batched(1000))
        .max_sync_delay(Duration::from_millis(50));
    let bundle = Bundle::create_with(storage, tmp.path().join("a"), simple_plan("a", 3), options).unwrap();
    let id = bundle.pending_segments()[0].clone();
    let start = Instant::now();
    write_segment(&bundle, &id, b"one segment").unwrap();
    let folder_syncs_before = rec.track.lock().unwrap().dir_syncs;
    // Far below the count bound, nothing else happening: only the timer can sync it.
    while unsynced(&rec) > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "never synced");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(start.elapsed() >= Duration::from_millis(50), "synced before its time: not batched");
    assert!(rec.track.lock().unwrap().dir_syncs > folder_syncs_before, "the folder was not synced");
}

#[test]
fn batched_records_are_synced_at_every_state_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    let (rec, storage) = recording();
    let options =
        BundleOptions::default().durability(Durability::batched(1000)).max_sync_delay(Duration::MAX);
    let dir = tmp.path().join("a");
    let bundle = Bundle::create_with(storage.clone(), &dir, simple_plan("a", 6), options.clone()).unwrap();
    let ids = bundle.pending_segments();
    let write = |i: usize| write_segment(&bundle, &ids[i], &segment_bytes(&ids[i], 4, 300)).unwrap();

    write(0);
    assert_eq!(unsynced(&rec), 1);
    bundle.sync().unwrap();
    assert_eq!(unsynced(&rec), 0, "sync");

    write(1);
    bundle.record_gap(&ids[2], "gone").unwrap();
    assert_eq!(unsynced(&rec), 2);
    bundle.write_playlists().unwrap(); // what a suspended or failed download does
    assert_eq!(unsynced(&rec), 0, "write_playlists");

    write(3);
    bundle.save().unwrap();
    assert_eq!(unsynced(&rec), 0, "save");

    write(4);
    bundle.set_policy(stowage_bundle::StoragePolicy::default()).unwrap();
    assert_eq!(unsynced(&rec), 0, "set_policy");

    write(2);
    drop(bundle);
    assert_eq!(unsynced(&rec), 0, "the last drop");

    let bundle = Bundle::open_with(storage, &dir, options).unwrap();
    write_segment(&bundle, &ids[5], &segment_bytes(&ids[5], 4, 300)).unwrap();
    assert_eq!(unsynced(&rec), 0, "the rendition's completion");
    bundle.mark_finished().unwrap();
    assert!(bundle.manifest().complete);
}

#[test]
fn a_failed_background_sync_is_reported_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let (rec, storage) = recording();
    let options = BundleOptions::default().durability(Durability::batched(2)).max_sync_delay(Duration::MAX);
    let dir = tmp.path().join("a");
    let bundle = Bundle::create_with(storage, &dir, simple_plan("a", 8), options).unwrap();
    let ids = bundle.pending_segments();
    rec.fail_journal_sync.store(true, Ordering::SeqCst);
    // Past the bound, a writer must wait for a sync that fails: it gets the error naming the journal.
    let mut failure = None;
    for id in &ids[..4] {
        if let Err(e) = write_segment(&bundle, id, &segment_bytes(id, 5, 200)) {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.expect("a failing sync was not reported");
    assert!(failure.path().is_some_and(|p| p.ends_with("journal.log")), "{failure}");
    let err = bundle.sync().unwrap_err();
    assert!(err.to_string().contains("injected sync failure"), "{err}");
    // The segments stay recorded, and the next sync that works makes them durable.
    let finished = bundle.finished_segments();
    assert!(!finished.is_empty());
    rec.fail_journal_sync.store(false, Ordering::SeqCst);
    bundle.sync().unwrap();
    assert_eq!(unsynced(&rec), 0);
    for id in &ids {
        if !bundle.is_finished(id) {
            write_segment(&bundle, id, &segment_bytes(id, 5, 200)).unwrap();
        }
    }
    finish_and_check(bundle, &dir);
}

/// Marks `bundle` finished, closes it, and checks that it opens again undamaged, complete and verified.
fn finish_and_check(bundle: Bundle, dir: &Path) {
    bundle.mark_finished().unwrap();
    drop(bundle);
    let bundle = Bundle::open(dir).unwrap();
    assert!(bundle.open_report().damaged_segments.is_empty());
    assert!(bundle.manifest().complete);
    assert!(bundle.verify(false).unwrap().is_ok());
}

/// Writes every segment of a fresh bundle with `durability` and drops it.
fn written_bundle(dir: &Path, durability: Durability, count: u64) -> Vec<stowage_bundle::SegmentId> {
    let options = BundleOptions::default().durability(durability);
    let bundle =
        Bundle::create_with(Arc::new(LocalFs::new()), dir, simple_plan("a", count), options).unwrap();
    let ids = bundle.pending_segments();
    for id in &ids {
        write_segment(&bundle, id, &segment_bytes(id, 6, 700)).unwrap();
    }
    ids
}

fn segment_file(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("video/seg-d0-s{seq}.ts"))
}

/// After a power loss, a filesystem that does not keep the order of metadata changes can keep a journal
/// record and lose the rename before it: the synced bytes are left under the temporary name. Opening
/// drops the record and the temporary file, and the segment is fetched again.
#[test]
fn a_record_whose_rename_was_lost_is_dropped_and_fetched_again() {
    for durability in [Durability::default(), Durability::Full] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a");
        let ids = written_bundle(&dir, durability, 4);
        // Undo the rename of segment 2 only: its record stays.
        let temp = dir.join("video/seg-d0-s2.ts.part");
        std::fs::rename(segment_file(&dir, 2), &temp).unwrap();

        let bundle = Bundle::open(&dir).unwrap();
        let report = bundle.open_report();
        assert_eq!(report.removed_temp_files, vec![temp.clone()]);
        assert_eq!(report.damaged_segments.len(), 1, "{report:?}");
        assert_eq!(report.damaged_segments[0].0, ids[2]);
        assert!(
            matches!(&report.damaged_segments[0].1, SegmentProblem::Missing { path } if path.ends_with("seg-d0-s2.ts"))
        );
        assert!(!temp.exists());
        assert_eq!(bundle.pending_segments(), vec![ids[2].clone()]);
        assert!(!bundle.manifest().complete);

        write_segment(&bundle, &ids[2], &segment_bytes(&ids[2], 6, 700)).unwrap();
        finish_and_check(bundle, &dir);
    }
}

/// The other reorders a power loss can leave: the rename survived and the record did not (the record was
/// not synced yet), or a name survived while the bytes did not (what a writer that renames before syncing
/// the data risks, for example a bundle copied by another tool). Either way the segment is fetched again
/// and the new file replaces the old one.
#[test]
fn a_file_without_its_record_or_without_its_bytes_is_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let ids = written_bundle(&dir, Durability::default(), 4);
    // The last record is lost: cut the journal back to the end of the one before.
    let journal = dir.join("journal.log");
    let bytes = std::fs::read(&journal).unwrap();
    let cut = bytes[..bytes.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(&journal, &bytes[..cut]).unwrap();
    // Segment 0's name survived, its bytes did not.
    std::fs::write(segment_file(&dir, 0), b"").unwrap();

    let bundle = Bundle::open(&dir).unwrap();
    let report = bundle.open_report();
    assert!(!report.torn_journal_tail);
    assert_eq!(report.damaged_segments.len(), 1, "{report:?}");
    assert!(matches!(
        report.damaged_segments[0].1,
        SegmentProblem::WrongLength { expected: 700, actual: 0, .. }
    ));
    assert_eq!(bundle.pending_segments(), vec![ids[0].clone(), ids[3].clone()]);
    for id in bundle.pending_segments() {
        write_segment(&bundle, &id, &segment_bytes(&id, 7, 900)).unwrap();
    }
    finish_and_check(bundle, &dir);
    assert_eq!(std::fs::read(segment_file(&dir, 3)).unwrap(), segment_bytes(&ids[3], 7, 900));
}

/// The manifest holds the plan (a few hundred bytes per segment), so it must not be written per segment:
/// a download writes it a fixed number of times whatever its length.
#[test]
fn the_manifest_is_written_at_state_boundaries_only() {
    for durability in [Durability::default(), Durability::Full] {
        let tmp = tempfile::tempdir().unwrap();
        let (rec, storage) = recording();
        let options = BundleOptions::default().durability(durability);
        let bundle =
            Bundle::create_with(storage, tmp.path().join("a"), simple_plan("a", 60), options).unwrap();
        assert_eq!(rec.track.lock().unwrap().manifest_writes, 1, "creation");
        let ids = bundle.pending_segments();
        for id in &ids[..50] {
            write_segment(&bundle, id, &segment_bytes(id, 8, 100)).unwrap();
        }
        for id in &ids[50..] {
            bundle.record_gap(id, "unavailable").unwrap();
        }
        assert_eq!(rec.track.lock().unwrap().manifest_writes, 1, "segments and gaps");
        bundle.mark_finished().unwrap();
        assert_eq!(rec.track.lock().unwrap().manifest_writes, 2, "completion");
    }
}
