//! The bundle journal reader on hostile bytes: never panics, never claims more than it read, re-encodes
//! what it accepted exactly; and a whole bundle opened read-only with that journal (and a valid manifest)
//! answers its queries without panicking.
#![no_main]

use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use stowage_bundle::{
    AssetCache, DirEntry, JOURNAL_HEADER, RenditionId, Storage, StorageFile, StorageLock, parse_journal,
};

/// The manifest of a small bundle (two renditions, an init section, a byte range), from the seeds.
const MANIFEST: &[u8] = include_bytes!("../seeds/bundle_manifest/demo.json");

/// A read-only bundle in memory: the manifest above, the fuzzed journal, and every segment file present
/// with a length derived from its name, so that some journal records match and others do not.
#[derive(Debug)]
struct Memory {
    journal: Vec<u8>,
}

fn denied() -> io::Error {
    io::Error::from(io::ErrorKind::PermissionDenied)
}

impl Storage for Memory {
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(denied())
    }
    fn create(&self, _: &Path) -> io::Result<Box<dyn StorageFile>> {
        Err(denied())
    }
    fn open_append(&self, _: &Path) -> io::Result<Box<dyn StorageFile>> {
        Err(denied())
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("manifest.json") => Ok(Box::new(Cursor::new(MANIFEST))),
            Some("journal.log") => Ok(Box::new(Cursor::new(self.journal.clone()))),
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        Ok(name.len() as u64 * 100)
    }
    fn exists(&self, _: &Path) -> io::Result<bool> {
        Ok(true)
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(denied())
    }
    fn truncate(&self, _: &Path, _: u64) -> io::Result<()> {
        Err(denied())
    }
    fn remove_file(&self, _: &Path) -> io::Result<()> {
        Err(denied())
    }
    fn remove_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(denied())
    }
    fn list_dir(&self, _: &Path) -> io::Result<Vec<DirEntry>> {
        Ok(Vec::new())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Err(denied())
    }
    fn try_lock(&self, _: &Path) -> io::Result<Option<Box<dyn StorageLock>>> {
        Ok(None)
    }
    fn available_space(&self, _: &Path) -> io::Result<Option<u64>> {
        Ok(None)
    }
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("journal.log");
    if let Ok(contents) = parse_journal(path, data) {
        assert!(contents.valid_len <= data.len() as u64);
        let mut encoded = JOURNAL_HEADER.as_bytes().to_vec();
        for record in &contents.records {
            encoded.extend(record.to_line());
        }
        let again = parse_journal(path, &encoded).expect("re-encoded journal reads back");
        assert_eq!(again.records, contents.records);
        assert!(!again.torn_tail && again.corrupt_lines.is_empty());
    }
    let storage = Arc::new(Memory { journal: data.to_vec() });
    if let Ok(cache) = AssetCache::open_with(storage, "bundle") {
        let _ = cache.is_playable_offline();
        let _ = cache.available_media_selections();
        for r in &cache.manifest().renditions {
            let ranges = cache.loaded_time_ranges(&r.plan.id).expect("a planned rendition");
            assert!(ranges.windows(2).all(|w| w[0].end < w[1].start));
        }
        let _ = cache.loaded_time_ranges(&RenditionId::new("absent").expect("valid"));
    }
});
