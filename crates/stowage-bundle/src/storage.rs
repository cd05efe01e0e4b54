//! The storage seam: every disk operation of the crate goes through [`Storage`].
//!
//! The local filesystem ([`LocalFs`]) is the default. The trait is small on purpose, so that an
//! object-storage backend can implement it later without touching the rest of the crate, and so that tests
//! can inject failures (a full disk, a permission error) at any step.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::Path;

/// An entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirEntry {
    /// The entry's file name.
    pub name: OsString,
    /// Whether the entry is a directory.
    pub is_dir: bool,
    /// The size in bytes (0 for directories).
    pub len: u64,
}

impl DirEntry {
    /// An entry of a listing.
    pub fn new(name: OsString, is_dir: bool, len: u64) -> Self {
        Self { name, is_dir, len }
    }
}

/// A file open for writing.
pub trait StorageFile: Send {
    /// Writes all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything written so far to the file durable, through this handle or any other handle on
    /// the same file (`fdatasync` on the local filesystem).
    fn sync(&mut self) -> io::Result<()>;
}

/// An exclusive lock, held until dropped.
pub trait StorageLock: Send + Sync + fmt::Debug {}

/// The disk operations a bundle needs.
///
/// Paths are those of the local layout; a remote backend maps them to keys. Errors are plain
/// [`io::Error`]s; the bundle adds the path and turns them into its typed [`Error`](crate::Error)
/// (`StorageFull` becomes [`Error::DiskFull`](crate::Error::DiskFull), and so on).
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens a file for appending, creating it when missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens a file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;
    /// The size of a file (an error of kind `NotFound` when it is missing).
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Whether a path exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Whether `path` is a regular file itself: not a symbolic link (even to a file), a folder or a device.
    /// An error of kind `NotFound` when nothing is there. A bundle only ever writes regular files, so
    /// anything else where a stored file should be was put there by something else, and a link could lead
    /// a reader out of the bundle.
    ///
    /// The default, for backends that have no links or special files, asks [`len`](Self::len).
    fn is_regular_file(&self, path: &Path) -> io::Result<bool> {
        self.len(path).map(|_| true)
    }
    /// Renames a file atomically, replacing the destination, or a folder (to a name not in use).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Shortens a file to `len` bytes.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Lists a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    /// Makes the directory's entries (creations, renames) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes the exclusive lock on the lock file `path` without waiting: `None` when someone else holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>>;
    /// Bytes available to an unprivileged writer on the volume holding `path`, if the backend knows.
    fn available_space(&self, path: &Path) -> io::Result<Option<u64>>;

    /// Reads a whole file, refusing one larger than `limit` bytes.
    fn read_limited(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let mut reader = self.open_read(path)?.take(limit.saturating_add(1));
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, format!("larger than {limit} bytes")));
        }
        Ok(buf)
    }
}

/// The local filesystem: the default [`Storage`].
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct LocalFs;

impl LocalFs {
    /// The local filesystem.
    pub fn new() -> Self {
        Self
    }
}

struct LocalFile(File);

impl StorageFile for LocalFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// The lock is released when the file is closed, which dropping does.
#[derive(Debug)]
struct LocalLock(#[allow(dead_code)] File);

impl StorageLock for LocalLock {}

impl Storage for LocalFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(LocalFile(File::create(path)?)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(LocalFile(OpenOptions::new().create(true).append(true).open(path)?)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(path)?))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn is_regular_file(&self, path: &Path) -> io::Result<bool> {
        Ok(fs::symlink_metadata(path)?.file_type().is_file())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            // Symbolic links are reported as files of their own (link) size and never followed: a bundle
            // never creates links, and following one could walk out of the store.
            let meta = entry.metadata()?;
            entries.push(DirEntry {
                name: entry.file_name(),
                is_dir: meta.is_dir(),
                len: if meta.is_dir() { 0 } else { meta.len() },
            });
        }
        Ok(entries)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        // On Unix a directory's entries are made durable by fsync on the directory itself. Other platforms
        // do not allow opening a directory this way, and make renames durable with the file.
        #[cfg(unix)]
        {
            File::open(path)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(())
        }
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>> {
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(LocalLock(file)))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn available_space(&self, path: &Path) -> io::Result<Option<u64>> {
        #[cfg(unix)]
        {
            let stat = rustix::fs::statvfs(path).map_err(io::Error::from)?;
            Ok(Some(stat.f_bavail.saturating_mul(stat.f_frsize)))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(None)
        }
    }
}
