//! The storage seam: every disk operation of the crate goes through [`Storage`].
//!
//! The local filesystem ([`LocalFs`]) is the default. The trait is small on purpose, so that an
//! object-storage backend can implement it later without touching the rest of the crate, and so that tests
//! can inject failures (a full disk, a permission error) at any step.

use crate::poison::lock;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Component, Path};
use std::sync::Mutex;
use std::time::SystemTime;

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

/// A file open for reading at any offset, as a server answering range requests needs it.
///
/// It reads the file that was opened: when the path is replaced afterwards (a local playlist rewritten by
/// an atomic rename), the handle still reads the old, complete file.
pub trait StorageReadAt: Send + Sync + fmt::Debug {
    /// The file's length in bytes when it was opened.
    fn len(&self) -> u64;
    /// Whether the file was empty when it was opened.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// When the file was last modified, if the backend knows.
    fn modified(&self) -> Option<SystemTime>;
    /// A token that differs for another file at the same path or other contents of it, as far as the
    /// backend can tell (on the local filesystem: device, inode, length and modification time); `None`
    /// when it cannot tell.
    fn version(&self) -> Option<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; 0 means the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
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
    /// A token that differs for another file at `path` or other contents of it, as
    /// [`StorageReadAt::version`] gives for an open file, without opening it; `None` when the storage
    /// cannot tell (the default), or when `path` is a symbolic link. Readers use it to tell whether a file
    /// they read has changed since.
    fn version(&self, path: &Path) -> io::Result<Option<u64>> {
        let _ = path;
        Ok(None)
    }

    /// Lists a directory's entry names, each with whether it is a directory, without their sizes: cheaper
    /// than [`list_dir`](Self::list_dir) where sizes cost a lookup per entry. The default takes them from
    /// `list_dir`.
    fn list_names(&self, path: &Path) -> io::Result<Vec<(OsString, bool)>> {
        Ok(self.list_dir(path)?.into_iter().map(|e| (e.name, e.is_dir)).collect())
    }
    /// Makes the directory's entries (creations, renames) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes the exclusive lock on the lock file `path` without waiting: `None` when someone else holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageLock>>>;
    /// Bytes available to an unprivileged writer on the volume holding `path`, if the backend knows.
    fn available_space(&self, path: &Path) -> io::Result<Option<u64>>;

    /// Opens the file `base/relative` for reading at any offset, refusing a symbolic link anywhere in
    /// `relative` (`base` itself may be reached through links) and anything but a regular file, so that a
    /// link planted in a bundle cannot lead a reader out of it. `relative` must be made of plain names
    /// (no `..`, no root); anything else is an error of kind `InvalidInput`.
    ///
    /// The default reads through [`open_read`](Self::open_read) and [`len`](Self::len): it suits backends
    /// without links, and reads forwards only (a read before an offset already reached fails with
    /// `Unsupported`; open the file again instead). The local filesystem reads at any offset.
    fn open_read_at(&self, base: &Path, relative: &Path) -> io::Result<Box<dyn StorageReadAt>> {
        check_relative(relative)?;
        let path = base.join(relative);
        let len = self.len(&path)?;
        let reader = self.open_read(&path)?;
        Ok(Box::new(Sequential { path, len, state: Mutex::new((reader, 0)) }))
    }

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

/// Checks that a path is made of plain names only.
fn check_relative(relative: &Path) -> io::Result<()> {
    let mut any = false;
    for component in relative.components() {
        match component {
            Component::Normal(_) => any = true,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a plain relative path", relative.display()),
                ));
            }
        }
    }
    if any { Ok(()) } else { Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path")) }
}

/// [`StorageReadAt`] over a plain sequential reader, for the default [`Storage::open_read_at`]: a read at
/// or after the position reached skips forward to it; a read before it is an error of kind `Unsupported`
/// (the handle cannot reopen the file: it keeps no reference to its storage).
struct Sequential {
    path: std::path::PathBuf,
    len: u64,
    state: Mutex<(Box<dyn Read + Send>, u64)>,
}

impl fmt::Debug for Sequential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequential").field("path", &self.path).field("len", &self.len).finish_non_exhaustive()
    }
}

impl StorageReadAt for Sequential {
    fn len(&self) -> u64 {
        self.len
    }

    fn modified(&self) -> Option<SystemTime> {
        None
    }

    fn version(&self) -> Option<u64> {
        None
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut state = lock(&self.state);
        let (reader, pos) = &mut *state;
        if offset < *pos {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: this storage reads forwards only", self.path.display()),
            ));
        }
        let skip = offset - *pos;
        let skipped = io::copy(&mut reader.by_ref().take(skip), &mut io::sink())?;
        *pos += skipped;
        if skipped < skip {
            return Ok(0);
        }
        let n = reader.read(buf)?;
        *pos += n as u64;
        Ok(n)
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

    fn version(&self, path: &Path) -> io::Result<Option<u64>> {
        let meta = fs::symlink_metadata(path)?;
        Ok(if meta.is_file() { file_version(&meta) } else { None })
    }

    fn list_names(&self, path: &Path) -> io::Result<Vec<(OsString, bool)>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            // The type comes with the listing on the usual filesystems; a link is not a directory.
            names.push((entry.file_name(), entry.file_type()?.is_dir()));
        }
        Ok(names)
    }

    fn open_read_at(&self, base: &Path, relative: &Path) -> io::Result<Box<dyn StorageReadAt>> {
        check_relative(relative)?;
        let file = open_beneath(base, relative)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", relative.display()),
            ));
        }
        Ok(Box::new(LocalReadAt {
            len: meta.len(),
            modified: meta.modified().ok(),
            version: file_version(&meta),
            file,
        }))
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

/// Opens `base/relative` read-only, one name at a time from `base`, refusing a symbolic link at every step
/// (`O_NOFOLLOW` on each `openat`), so that no link in the bundle, even one swapped in while the path is
/// walked, leads out of it. A FIFO is opened without blocking (and then refused as not a regular file).
#[cfg(unix)]
fn open_beneath(base: &Path, relative: &Path) -> io::Result<File> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    let refused = |e: rustix::io::Errno| -> io::Error {
        if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a symbolic link or a file where a folder should be",
            )
        } else {
            io::Error::from(e)
        }
    };
    let names: Vec<&std::ffi::OsStr> = relative.components().map(|c| c.as_os_str()).collect();
    let Some((last, folders)) = names.split_last() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path"));
    };
    let mut dir = openat(CWD, base, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    for name in folders {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = openat(&dir, *name, flags, Mode::empty()).map_err(refused)?;
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = openat(&dir, *last, flags, Mode::empty()).map_err(refused)?;
    Ok(File::from(fd))
}

/// Without `openat`, each step is checked with `symlink_metadata` before the file is opened (a link
/// swapped in between the check and the open is not caught; Unix is the platform served from).
#[cfg(not(unix))]
fn open_beneath(base: &Path, relative: &Path) -> io::Result<File> {
    let mut path = base.to_path_buf();
    for component in relative.components() {
        path.push(component);
        if fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "a symbolic link"));
        }
    }
    File::open(path)
}

/// A token of a file's identity and contents: FNV-1a over device, inode, length and modification time
/// (stable across runs, unlike the standard library's hasher, so validators stay valid after a restart).
fn file_version(meta: &fs::Metadata) -> Option<u64> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |value: u64| {
        for byte in value.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        mix(meta.dev());
        mix(meta.ino());
    }
    mix(meta.len());
    let modified = meta.modified().ok()?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    mix(modified.as_secs());
    mix(u64::from(modified.subsec_nanos()));
    Some(hash)
}

/// A local file open for positional reads.
#[derive(Debug)]
struct LocalReadAt {
    file: File,
    len: u64,
    modified: Option<SystemTime>,
    version: Option<u64>,
}

impl StorageReadAt for LocalReadAt {
    fn len(&self) -> u64 {
        self.len
    }

    fn modified(&self) -> Option<SystemTime> {
        self.modified
    }

    fn version(&self) -> Option<u64> {
        self.version
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
        }
    }
}
