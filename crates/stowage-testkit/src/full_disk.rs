//! A disk that fills up on purpose: the local filesystem behind the bundle's storage seam, with writes to
//! chosen files failing as a full disk does.

use std::io;
use std::path::Path;

use stowage_bundle::{LocalFs, Storage, StorageFile};

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
    crate::storage_pass_through!(
        (inner)
        create_dir_all, open_read, len, exists, rename, truncate, remove_file, remove_dir_all, list_dir,
        sync_dir, try_lock, available_space,
    );
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = self.inner.create(path)?;
        Ok(if self.is_full(path) { Box::new(Full) } else { file })
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = self.inner.open_append(path)?;
        Ok(if self.is_full(path) { Box::new(Full) } else { file })
    }
}
