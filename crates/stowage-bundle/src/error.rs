//! The crate's one error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::id::SegmentId;

/// Everything that can go wrong in this crate.
///
/// Every variant that concerns a file names its path, so that a user can act on it (free space, fix a
/// permission, restore a file). After any of these errors the bundle on disk is still consistent: a journal
/// record is written only after the bytes it describes are durable, so the bundle can be opened again and the
/// download resumed once the cause is gone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The disk (or the storage backend's quota) is full.
    #[error("no space left on device while writing {path}")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// The operating system refused access to a path.
    #[error("permission denied: {path}")]
    PermissionDenied {
        /// The path that could not be accessed.
        path: PathBuf,
    },
    /// A file the bundle needs is missing: deleted under us, or never written.
    #[error("file not found: {path}")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// Any other input/output error on a path.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path being accessed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process (or another handle in this one) is writing to the bundle.
    #[error("bundle {path} is locked by another writer; only one writer may open a bundle at a time")]
    Locked {
        /// The bundle directory.
        path: PathBuf,
    },
    /// `create` was asked for a directory that already holds a bundle (or other files).
    #[error("{path} already exists; open it to resume instead of creating it")]
    AlreadyExists {
        /// The bundle directory.
        path: PathBuf,
    },
    /// The manifest could not be read or understood.
    #[error("invalid manifest {path}: {reason}")]
    InvalidManifest {
        /// The manifest file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The journal's header is not a stowage journal header.
    #[error("invalid journal {path}: {reason}")]
    InvalidJournal {
        /// The journal file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The manifest declares a format version this crate does not know.
    #[error("{path} has bundle format version {found}; this version of stowage reads up to {supported}")]
    UnsupportedVersion {
        /// The manifest file.
        path: PathBuf,
        /// The version found in the manifest.
        found: u32,
        /// The newest version this crate reads.
        supported: u32,
    },
    /// The plan given to `create` is not usable.
    #[error("invalid plan: {reason}")]
    InvalidPlan {
        /// What was wrong.
        reason: String,
    },
    /// A name given for a rendition or an asset is not a safe local name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The segment is not part of the bundle's plan.
    #[error("segment {segment} is not in the bundle's plan")]
    UnknownSegment {
        /// The segment asked for.
        segment: SegmentId,
    },
    /// The rendition is not part of the bundle's plan.
    #[error("rendition {rendition:?} is not in the bundle's plan")]
    UnknownRendition {
        /// The rendition asked for.
        rendition: String,
    },
    /// The segment is already finished; a finished segment is never rewritten.
    #[error("segment {segment} is already finished")]
    AlreadyFinished {
        /// The segment.
        segment: SegmentId,
    },
    /// Another writer for the same segment is still open.
    #[error("segment {segment} is already being written")]
    SegmentBusy {
        /// The segment.
        segment: SegmentId,
    },
    /// The bytes written do not have the length the plan expected.
    #[error("segment {segment}: expected {expected} bytes, got {actual}")]
    LengthMismatch {
        /// The segment.
        segment: SegmentId,
        /// The expected length.
        expected: u64,
        /// The length written.
        actual: u64,
    },
    /// The asset is not complete (for operations that need a complete bundle).
    #[error("bundle {path} is incomplete: {missing} segment(s) missing")]
    Incomplete {
        /// The bundle directory.
        path: PathBuf,
        /// How many planned segments are neither finished nor recorded as gaps.
        missing: usize,
    },
    /// A source playlist stored in the bundle could not be parsed or rewritten.
    #[error("playlist {path}: {reason}")]
    Playlist {
        /// The playlist file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A folder of the store holds what is left of a bundle but no manifest: its creation did not finish
    /// (or an older version's removal was cut short). It holds no asset; `purge` and `remove` delete it.
    #[error("{path} has no manifest.json: what is left of a bundle whose creation did not finish")]
    Leftover {
        /// The folder.
        path: PathBuf,
    },
    /// A file of the bundle does not have the length or checksum the bundle recorded for it.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A path asked of a [`BundleReader`](crate::BundleReader) names no file that the bundle hands to
    /// players (its local playlists, stored segments and initialization sections, kept keys, artwork).
    #[error("{path:?} is not a file of the bundle {bundle}")]
    NotInBundle {
        /// The path asked for, relative to the bundle folder.
        path: String,
        /// The bundle directory.
        bundle: PathBuf,
    },
    /// No bundle with this identifier exists in the store.
    #[error("no bundle {id:?} in the store {store}")]
    NoSuchBundle {
        /// The identifier asked for.
        id: String,
        /// The store directory.
        store: PathBuf,
    },
    /// The store's policy file could not be read or understood.
    #[error("invalid store policy {path}: {reason}")]
    InvalidStorePolicy {
        /// The policy file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A download does not fit the store's quota, even with what the policy lets admission purge.
    #[error(
        "the download does not fit the quota of the store {}: {} bytes used + {} bytes needed > the quota of \
         {} bytes ({} bytes of it could be purged)",
        store.display(), used, needed, quota, purgeable
    )]
    QuotaExceeded {
        /// The store directory.
        store: PathBuf,
        /// The store's quota, in bytes.
        quota: u64,
        /// Bytes the store's bundles take now.
        used: u64,
        /// Bytes the download is expected to add.
        needed: u64,
        /// Bytes purge could free under the policy (0 when the policy does not let admission purge).
        purgeable: u64,
    },
    /// A download would leave the disk with less free space than the store's floor, even with what the
    /// policy lets admission purge.
    #[error(
        "the download does not fit above the free-space floor of the store {}: {} bytes available - {} bytes \
         needed < the floor of {} bytes ({} bytes could be purged)",
        store.display(), available, needed, floor, purgeable
    )]
    FreeSpaceFloor {
        /// The store directory.
        store: PathBuf,
        /// The floor: bytes the disk must keep free.
        floor: u64,
        /// Bytes available on the disk now.
        available: u64,
        /// Bytes the download is expected to add.
        needed: u64,
        /// Bytes purge could free under the policy (0 when the policy does not let admission purge).
        purgeable: u64,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Turns an I/O error on `path` into the variant a user can act on.
    pub fn from_io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Self::DiskFull { path },
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                Self::PermissionDenied { path }
            }
            io::ErrorKind::NotFound => Self::NotFound { path },
            _ => Self::Io { path, source },
        }
    }

    /// Whether the error is a full disk (or a full storage quota).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::DiskFull { .. })
    }

    /// Whether the error is a download refused by the store's policy: over its quota or under its
    /// free-space floor.
    pub fn is_not_admitted(&self) -> bool {
        matches!(self, Self::QuotaExceeded { .. } | Self::FreeSpaceFloor { .. })
    }

    /// Whether the error is another writer holding the bundle's lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }

    /// The path the error concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::DiskFull { path }
            | Self::PermissionDenied { path }
            | Self::NotFound { path }
            | Self::Io { path, .. }
            | Self::Locked { path }
            | Self::AlreadyExists { path }
            | Self::InvalidManifest { path, .. }
            | Self::InvalidJournal { path, .. }
            | Self::UnsupportedVersion { path, .. }
            | Self::Incomplete { path, .. }
            | Self::Playlist { path, .. }
            | Self::Leftover { path }
            | Self::Damaged { path, .. }
            | Self::InvalidStorePolicy { path, .. } => Some(path),
            Self::QuotaExceeded { store, .. } | Self::FreeSpaceFloor { store, .. } => Some(store),
            Self::NotInBundle { bundle, .. } => Some(bundle),
            Self::NoSuchBundle { store, .. } => Some(store),
            _ => None,
        }
    }
}

/// Adds the path to an I/O result.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::from_io(path, e))
    }
}
