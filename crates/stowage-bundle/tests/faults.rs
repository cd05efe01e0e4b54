//! Failures injected through the storage trait: a full disk at every point of a download, a permission
//! error, a file deleted under the writer. The bundle must stay consistent and resumable.

mod common;

use std::io::{self};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use stowage_bundle::{Bundle, BundleOptions, Durability, Error, LocalFs, Storage, StorageFile};

/// The local filesystem with a byte budget for writes (then `StorageFull`), and an optional path fragment
/// whose creation is refused with `PermissionDenied`.
#[derive(Debug)]
struct Faulty {
    inner: LocalFs,
    budget: Arc<AtomicI64>,
    deny: Mutex<Option<String>>,
}

impl Faulty {
    fn new(budget: i64) -> Arc<Self> {
        Arc::new(Self {
            inner: LocalFs::new(),
            budget: Arc::new(AtomicI64::new(budget)),
            deny: Mutex::new(None),
        })
    }
}

struct FaultyFile {
    inner: Box<dyn StorageFile>,
    budget: Arc<AtomicI64>,
}

impl StorageFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let left = self.budget.fetch_sub(buf.len() as i64, Ordering::SeqCst);
        if left >= buf.len() as i64 {
            return self.inner.write_all(buf);
        }
        // Like a real full disk: what fits is written, then the error.
        let fits = left.max(0) as usize;
        self.inner.write_all(&buf[..fits])?;
        self.budget.store(0, Ordering::SeqCst);
        Err(io::Error::from(io::ErrorKind::StorageFull))
    }
    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()
    }
}

impl Storage for Faulty {
    stowage_testkit::storage_pass_through!(
        (inner)
        create_dir_all, open_read, len, exists, rename, truncate, remove_file, remove_dir_all, list_dir,
        sync_dir, try_lock, available_space,
    );
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        if let Some(deny) = &*self.deny.lock().unwrap()
            && path.to_string_lossy().contains(deny.as_str())
        {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        Ok(Box::new(FaultyFile { inner: self.inner.create(path)?, budget: Arc::clone(&self.budget) }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(FaultyFile { inner: self.inner.open_append(path)?, budget: Arc::clone(&self.budget) }))
    }
}

const COUNT: u64 = 5;
const LEN: usize = 3000;

/// Runs a whole download on `storage`, stopping at the first error.
fn download(bundle: &Bundle) -> stowage_bundle::Result<()> {
    for id in bundle.pending_segments() {
        write_segment(bundle, &id, &segment_bytes(&id, 9, LEN))?;
    }
    bundle.mark_finished()
}

/// Opens with the plain filesystem and checks that every journaled segment is intact.
fn assert_consistent(dir: &Path) -> Bundle {
    let bundle = Bundle::open(dir).unwrap();
    let report = bundle.open_report();
    assert!(report.damaged_segments.is_empty() && report.corrupt_journal_lines.is_empty(), "{report:?}");
    assert!(bundle.verify(false).unwrap().is_ok());
    for id in bundle.finished_segments() {
        let bytes = std::fs::read(bundle.segment_path(&id).unwrap()).unwrap();
        assert_eq!(bytes, segment_bytes(&id, 9, LEN));
    }
    bundle
}

#[test]
fn disk_full_at_every_point_leaves_a_consistent_resumable_bundle() {
    sweep(BundleOptions::default().durability(Durability::Full), 401);
}

#[test]
fn disk_full_at_every_point_with_batched_syncs() {
    sweep(BundleOptions::default().durability(Durability::batched(3)), 587);
}

fn sweep(options: BundleOptions, step: i64) {
    let tmp = tempfile::tempdir().unwrap();
    // Measure what a whole download writes, then fail it at many budgets below that.
    let probe = Faulty::new(i64::MAX);
    let dir = tmp.path().join("probe");
    let bundle = Bundle::create_with(probe.clone(), &dir, simple_plan("p", COUNT), options.clone()).unwrap();
    let before_download = probe.budget.load(Ordering::SeqCst);
    download(&bundle).unwrap();
    let total = before_download - probe.budget.load(Ordering::SeqCst);
    drop(bundle);

    let mut failures = 0;
    let mut budget = 0;
    while budget < total {
        let dir = tmp.path().join(format!("b{budget}"));
        drop(Bundle::create(&dir, simple_plan("p", COUNT)).unwrap());
        let faulty = Faulty::new(budget);
        let bundle = Bundle::open_with(faulty.clone(), &dir, options.clone()).unwrap();
        match download(&bundle) {
            Ok(()) => {}
            Err(e) => {
                failures += 1;
                assert!(e.is_disk_full(), "budget {budget}: {e}");
                let path = e.path().unwrap();
                assert!(path.starts_with(&dir), "the error names a path in the bundle: {}", path.display());
                // Space comes back: the same handle goes on where it stopped.
                faulty.budget.store(i64::MAX, Ordering::SeqCst);
                download(&bundle).unwrap();
            }
        }
        drop(bundle);
        let bundle = assert_consistent(&dir);
        assert!(bundle.manifest().complete, "budget {budget}");
        budget += step;
    }
    assert!(failures > 20, "{failures} failures injected");
}

#[test]
fn disk_full_then_restart_resumes_without_rewriting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    drop(Bundle::create(&dir, simple_plan("a", COUNT)).unwrap());
    for budget in [0, 2500, 3100, 3300, 6500, 9600] {
        let faulty = Faulty::new(budget);
        let bundle = Bundle::open_with(faulty, &dir, BundleOptions::default()).unwrap();
        let _ = download(&bundle);
        drop(bundle);
        let finished_before: Vec<_> = assert_consistent(&dir).finished_segments();
        let bundle = Bundle::open(&dir).unwrap();
        for id in &finished_before {
            assert!(bundle.is_finished(id));
        }
    }
    let bundle = Bundle::open(&dir).unwrap();
    download(&bundle).unwrap();
    assert!(bundle.manifest().complete);
}

#[test]
fn permission_denied_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    drop(Bundle::create(&dir, simple_plan("a", 2)).unwrap());
    let faulty = Faulty::new(i64::MAX);
    *faulty.deny.lock().unwrap() = Some("seg-d0-s1".into());
    let bundle = Bundle::open_with(faulty.clone(), &dir, BundleOptions::default()).unwrap();
    let err = download(&bundle).unwrap_err();
    match &err {
        Error::PermissionDenied { path } => assert!(path.ends_with("video/seg-d0-s1.ts.part"), "{err}"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("seg-d0-s1"));
    *faulty.deny.lock().unwrap() = None;
    download(&bundle).unwrap();
    drop(bundle);
    assert!(assert_consistent(&dir).manifest().complete);
}

#[test]
fn a_temporary_file_deleted_under_the_writer_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 2)).unwrap();
    let id = bundle.pending_segments()[0].clone();
    let mut writer = bundle.segment_writer(&id).unwrap();
    writer.write(b"some bytes").unwrap();
    std::fs::remove_file(dir.join("video/seg-d0-s0.ts.part")).unwrap();
    let err = writer.finish().unwrap_err();
    assert!(matches!(&err, Error::NotFound { path } if path.ends_with("video/seg-d0-s0.ts")), "{err}");
    assert!(!bundle.is_finished(&id));
    write_segment(&bundle, &id, b"again").unwrap();
    assert!(bundle.is_finished(&id));
}
