//! A disk that fills up on purpose: the local filesystem behind the bundle's storage seam, with writes to
//! chosen files failing as a full disk does.

use std::io::{self, Read};
use std::path::Path;

use stowage_bundle::{DirEntry, LocalFs, Storage, StorageFile, StorageLock};

/// The local filesystem, except that writing to a file whose path contains one of the given fragments
/// fails with `StorageFull` (ENOSPC), after the bytes that "fit" (none) were written.
#[derive(Debug)]
pub struct FullDisk {
    inner: LocalFs,
    full: Vec<String>,
}

impl FullDisk {
    /// A disk on which files whose path contains `fragment` (`"/seg-"` for media segments, say) cannot
    /// be written.
    pub fn for_paths_containing(fragment: &str) -> Self {
        Self { inner: LocalFs::new(), full: vec![fragment.to_owned()] }
    }

    fn is_full(&self, path: &Path) -> bool {
        let path = path.to_string_lossy();
        self.full.iter().any(|f| path.contains(f.as_str()))
    }
}

/// A file on the full part of the disk.
struct Full;

impl StorageFile for Full {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() { Ok(()) } else { Err(io::Error::from(io::ErrorKind::StorageFull)) }
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Storage for FullDisk {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = self.inner.create(path)?;
        Ok(if self.is_full(path) { Box::new(Full) } else { file })
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = self.inner.open_append(path)?;
        Ok(if self.is_full(path) { Box::new(Full) } else { file })
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        self.inner.open_read(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.inner.len(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.truncate(path, len)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>> {
        self.inner.try_lock(path)
    }
    fn available_space(&self, path: &Path) -> io::Result<Option<u64>> {
        self.inner.available_space(path)
    }
}
