//! Reading what a bundle stores, for tools that turn a bundle into something else (an exporter writing one
//! file): a stored segment's bytes, the local playlists and the keys kept with ciphertext. Read-only, through
//! the same [`Storage`](crate::Storage) as the rest of the crate, and only files the manifest names.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::cache::AssetCache;
use crate::error::{Error, IoContext, Result};
use crate::id::{RenditionId, SegmentId};
use crate::ledger::{self, INDEX_FILE, MASTER_FILE};

/// Local playlists larger than this are refused (a 100,000-segment playlist is a few megabytes).
const MAX_LOCAL_PLAYLIST_LEN: u64 = 64 * 1024 * 1024;

/// Keys are 16 bytes; anything much larger is not a key file this crate wrote.
const MAX_KEY_LEN: u64 = 1024;

/// A stored segment or initialization section open for reading. It yields exactly the length the journal
/// recorded: a file that ends sooner fails with [`io::ErrorKind::UnexpectedEof`] naming the path, and bytes
/// beyond that length are not read.
pub struct StoredReader {
    inner: Box<dyn Read + Send>,
    path: PathBuf,
    len: u64,
    remaining: u64,
}

impl std::fmt::Debug for StoredReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredReader").field("path", &self.path).field("len", &self.len).finish()
    }
}

impl StoredReader {
    /// The stored file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its length in bytes, as journaled.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for StoredReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ends {} bytes before its journaled length", self.path.display(), self.remaining),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl AssetCache {
    /// The stored length of a segment or initialization section; `None` when it is not stored.
    pub fn stored_len(&self, id: &SegmentId) -> Option<u64> {
        self.finished.get(id).map(|f| f.length)
    }

    /// Opens a stored segment or initialization section for reading. Fails with
    /// [`Error::UnknownSegment`] for an entry the plan does not hold and [`Error::NotFound`] for a planned
    /// one that is not stored.
    pub fn open_stored(&self, id: &SegmentId) -> Result<StoredReader> {
        let rendition = self
            .manifest()
            .rendition(&id.rendition)
            .ok_or_else(|| Error::UnknownSegment { segment: id.clone() })?;
        let path = ledger::segment_path(self.dir(), &rendition.plan, id);
        if !rendition.plan.segment_ids().any(|planned| &planned == id) {
            return Err(Error::UnknownSegment { segment: id.clone() });
        }
        let len = self.stored_len(id).ok_or_else(|| Error::NotFound { path: path.clone() })?;
        let inner = self.storage.open_read(&path).at(&path)?;
        Ok(StoredReader { inner, path, len, remaining: len })
    }

    /// The text of a local playlist: the master playlist (`None`) or a rendition's media playlist.
    pub fn read_local_playlist(&self, rendition: Option<&RenditionId>) -> Result<String> {
        let path = match rendition {
            None => self.dir().join(MASTER_FILE),
            Some(id) => {
                self.manifest()
                    .rendition(id)
                    .ok_or_else(|| Error::UnknownRendition { rendition: id.to_string() })?;
                self.dir().join(id.as_str()).join(INDEX_FILE)
            }
        };
        let bytes = self.storage.read_limited(&path, MAX_LOCAL_PLAYLIST_LEN).at(&path)?;
        String::from_utf8(bytes)
            .map_err(|_| Error::Playlist { path, reason: "the playlist is not UTF-8".to_owned() })
    }

    /// The key number `index` kept with a rendition's ciphertext (`<rendition>/keys/key-<index>.key`, key
    /// policy `keep-encrypted`).
    pub fn read_key(&self, rendition: &RenditionId, index: u32) -> Result<Vec<u8>> {
        self.manifest()
            .rendition(rendition)
            .ok_or_else(|| Error::UnknownRendition { rendition: rendition.to_string() })?;
        let path = ledger::key_path(self.dir(), rendition, index);
        self.storage.read_limited(&path, MAX_KEY_LEN).at(&path)
    }
}
