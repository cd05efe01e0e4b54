//! Read-only access to the files of a bundle that players are handed: what a server or an exporter reads.
//!
//! A [`BundleReader`] answers one question safely: which file does this relative path name? Only the
//! files the manifest and the local playlists name are answered (the local playlists, planned segments
//! and initialization sections, the keys a kept-encrypted playlist points at, the artwork), by parsing the
//! name back into what it stands for and writing it again. Nothing else of the folder is reachable: not
//! the manifest, the journal, the lock, the source playlists or temporary files, and no `..`, absolute
//! path or symbolic link. Files are opened one folder at a time from the store without following links.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use crate::error::{Error, IoContext, Result};
use crate::id::{ByteRange, RenditionId, SegmentId, SegmentKind, check_local_name};
use crate::ledger::{self, INDEX_FILE, JOURNAL_FILE, KEYS_DIR, LOCK_FILE, MANIFEST_FILE, MASTER_FILE};
use crate::manifest::{Gap, KeyPolicy, Manifest, MediaFormat, RenditionKind, RenditionState};
use crate::storage::{LocalFs, Storage, StorageReadAt};
use crate::store::{StorageManager, dir_size};

/// The numbers that tell a rendition's planned entries apart.
type PlanKey = (SegmentKind, u64, u64, Option<ByteRange>);

/// Local playlists larger than this are not read whole (a 100,000-segment playlist is a few megabytes).
const MAX_LOCAL_PLAYLIST_LEN: u64 = 64 * 1024 * 1024;

/// What a file of a bundle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BundleFileKind {
    /// The local master playlist, `master.m3u8`.
    MasterPlaylist,
    /// A rendition's local media playlist, `<rendition>/index.m3u8`.
    MediaPlaylist,
    /// A media segment.
    Segment,
    /// An initialization section (`EXT-X-MAP`).
    InitSection,
    /// A key kept with its ciphertext, `<rendition>/keys/key-<n>.key`.
    Key,
    /// The asset's artwork.
    Artwork,
}

/// A file of a bundle, named by a path a [`BundleReader`] accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BundleFile {
    /// What the file is.
    pub kind: BundleFileKind,
    /// The rendition it belongs to (none for the master playlist and the artwork).
    pub rendition: Option<RenditionId>,
    /// Its rendition's kind.
    pub rendition_kind: Option<RenditionKind>,
    /// Its rendition's container format.
    pub format: Option<MediaFormat>,
    /// The segment or initialization section, for those.
    pub segment: Option<SegmentId>,
    /// The path relative to the bundle folder, written by this crate (`/`-separated).
    path: String,
}

impl BundleFile {
    /// The path relative to the bundle folder, `/`-separated, as a local playlist refers to it.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A file of a bundle open for reading at any offset. It reads the file that was opened, even if the path
/// is replaced meanwhile (a local playlist rewritten by an atomic rename), so a reader never sees half a
/// playlist.
pub struct OpenFile {
    inner: Box<dyn StorageReadAt>,
    path: PathBuf,
}

impl fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFile").field("path", &self.path).field("len", &self.inner.len()).finish()
    }
}

impl OpenFile {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its length in bytes when it was opened.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// When it was last modified, if the storage knows.
    pub fn modified(&self) -> Option<SystemTime> {
        self.inner.modified()
    }

    /// A token that changes when the file is replaced or changed, if the storage can tell (see
    /// [`StorageReadAt::version`]); a validator such as an HTTP entity tag can be made from it.
    pub fn version(&self) -> Option<u64> {
        self.inner.version()
    }

    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end of the file.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        loop {
            match self.inner.read_at(buf, offset) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other.at(&self.path),
            }
        }
    }

    /// Reads the whole file, refusing one longer than `limit` bytes.
    pub fn read_all(&self, limit: u64) -> Result<Vec<u8>> {
        let len = self.len();
        if len > limit {
            return Err(Error::Io {
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    format!("{len} bytes, more than {limit}"),
                ),
            });
        }
        let mut buf = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.read_at(&mut buf[filled..], filled as u64)?;
            if n == 0 {
                // The file was cut short under us: what was read is what there is.
                buf.truncate(filled);
                break;
            }
            filled += n;
        }
        Ok(buf)
    }
}

/// What a bundle holds now, as a listing shows it: read from the manifest and, while the download is not
/// finished, from the journal (so progress is that of the segments on disk, not of the manifest's last
/// write).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BundleStatus {
    /// Whether the download is over (every planned entry stored or recorded as a gap).
    pub finished: bool,
    /// Whether every planned entry is stored.
    pub complete: bool,
    /// Whether a writer holds the bundle now (probed only while the download is not finished: a finished
    /// bundle reports `false`).
    pub in_use: bool,
    /// Entries stored, all renditions.
    pub segments_finished: usize,
    /// Entries planned, all renditions.
    pub segments_total: usize,
    /// Bytes of stored entries.
    pub bytes_finished: u64,
    /// Each rendition's state, in manifest order.
    pub renditions: Vec<RenditionState>,
    /// Entries recorded as gaps.
    pub gaps: Vec<Gap>,
    /// Bytes on disk of the whole bundle folder.
    pub size_on_disk: u64,
}

/// Read-only access to a bundle's files for players, servers and exporters.
///
/// It answers one question safely: which file does this relative path name? Only the files the manifest
/// and the local playlists name are answered (the local playlists, planned segments and initialization
/// sections, the keys a kept-encrypted playlist points at, the artwork), by parsing the name back into what
/// it stands for. Nothing else of the folder is reachable: not the manifest, the journal, the lock, the
/// source playlists or temporary files, and no `..`, absolute path or symbolic link. Files are opened one
/// folder at a time from the store (or from the bundle folder, when opened on a folder) without following
/// links.
///
/// It takes no lock and writes nothing, so it can be used while a download writes the bundle. It holds the
/// manifest as read when it was opened; [`is_current`](Self::is_current) tells whether the manifest on
/// disk has changed since (open a new reader then).
pub struct BundleReader {
    storage: Arc<dyn Storage>,
    /// The folder files are opened beneath without following links: the store, or the bundle itself.
    base: PathBuf,
    /// The bundle folder relative to `base` (empty when `base` is the bundle).
    prefix: PathBuf,
    manifest: Manifest,
    manifest_version: Option<u64>,
    /// Per rendition, every planned identity's numbers, sorted: made when a segment is first asked for (a
    /// listing of finished bundles needs only their rendition folders' names).
    planned: OnceLock<Vec<Vec<PlanKey>>>,
    renditions: HashMap<String, usize>,
    /// Per rendition, the key files its local playlist names (read when first asked).
    keys: Vec<OnceLock<HashSet<String>>>,
}

impl fmt::Debug for BundleReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleReader").field("dir", &self.dir()).finish_non_exhaustive()
    }
}

impl BundleReader {
    /// Opens the bundle in `dir` on the local filesystem for reading.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(Arc::new(LocalFs::new()), dir)
    }

    /// Opens the bundle in `dir` with `storage` for reading. `dir` itself may be reached through links;
    /// nothing inside it is.
    pub fn open_with(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_beneath(storage, dir.as_ref().to_path_buf(), PathBuf::new())
    }

    fn open_beneath(storage: Arc<dyn Storage>, base: PathBuf, prefix: PathBuf) -> Result<Self> {
        let path = base.join(&prefix).join(MANIFEST_FILE);
        let file = storage.open_read_at(&base, &prefix.join(MANIFEST_FILE)).at(&path)?;
        let file = OpenFile { inner: file, path: path.clone() };
        let manifest = Manifest::parse(&path, &file.read_all(crate::manifest::MAX_MANIFEST_LEN)?)?;
        let renditions = manifest
            .renditions
            .iter()
            .enumerate()
            .map(|(ri, r)| (r.plan.id.as_str().to_owned(), ri))
            .collect();
        let keys = manifest.renditions.iter().map(|_| OnceLock::new()).collect();
        Ok(Self {
            storage,
            base,
            prefix,
            manifest_version: file.version(),
            manifest,
            planned: OnceLock::new(),
            renditions,
            keys,
        })
    }

    /// The bundle directory.
    pub fn dir(&self) -> PathBuf {
        self.base.join(&self.prefix)
    }

    /// The manifest, as read when the reader was opened.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether the manifest on disk is still the one this reader read (its state fields, policy, access
    /// time and renditions change when it is written). `false` when the storage cannot tell.
    pub fn is_current(&self) -> Result<bool> {
        let version = self.version_of(MANIFEST_FILE)?;
        Ok(version.is_some() && version == self.manifest_version)
    }

    /// A token that changes whenever the manifest or the journal changes on disk (a segment stored, a gap
    /// recorded, the manifest written), so that a caller can keep a [`status`](Self::status) until it
    /// does; `None` when the storage cannot tell.
    pub fn fingerprint(&self) -> Result<Option<u64>> {
        let manifest = self.version_of(MANIFEST_FILE)?;
        let journal = self.version_of(JOURNAL_FILE)?;
        Ok(match (manifest, journal) {
            (Some(m), Some(j)) => Some(m.rotate_left(17) ^ j),
            _ => None,
        })
    }

    fn version_of(&self, name: &str) -> Result<Option<u64>> {
        // One lookup, no open: nothing is read, so a link on the way matters not (a link as the file itself
        // has no version, and the reader then reads the manifest again, refusing the link).
        let path = self.dir().join(name);
        match self.storage.version(&path) {
            Ok(version) => Ok(version),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::from_io(&path, e)),
        }
    }

    /// The file a path names, relative to the bundle folder and `/`-separated as the local playlists write
    /// it (`master.m3u8`, `video/index.m3u8`, `video/seg-d0-s4.ts`, `audio/keys/key-0.key`,
    /// `artwork.jpg`). Fails with [`Error::NotInBundle`] for every other path.
    pub fn resolve(&self, path: &str) -> Result<BundleFile> {
        self.try_resolve(path).ok_or_else(|| Error::NotInBundle { path: path.to_owned(), bundle: self.dir() })
    }

    fn try_resolve(&self, path: &str) -> Option<BundleFile> {
        let names: Vec<&str> = path.split('/').collect();
        let file = |kind, ri: Option<usize>, segment: Option<SegmentId>| {
            let plan = ri.map(|ri| &self.manifest.renditions[ri].plan);
            BundleFile {
                kind,
                rendition: plan.map(|p| p.id.clone()),
                rendition_kind: plan.map(|p| p.kind),
                format: plan.map(|p| p.format),
                segment,
                path: path.to_owned(),
            }
        };
        match names.as_slice() {
            [MASTER_FILE] => Some(file(BundleFileKind::MasterPlaylist, None, None)),
            [name] => {
                let artwork = self.manifest.artwork.as_ref()?;
                (artwork.file == *name).then(|| file(BundleFileKind::Artwork, None, None))
            }
            [rendition, INDEX_FILE] => {
                let ri = *self.renditions.get(*rendition)?;
                Some(file(BundleFileKind::MediaPlaylist, Some(ri), None))
            }
            [rendition, name] => {
                let ri = *self.renditions.get(*rendition)?;
                let plan = &self.manifest.renditions[ri].plan;
                let id = parse_segment_name(&plan.id, plan.format, name)?;
                if !self.is_planned(&id) {
                    return None;
                }
                let kind = match id.kind {
                    SegmentKind::Init => BundleFileKind::InitSection,
                    SegmentKind::Media => BundleFileKind::Segment,
                };
                Some(file(kind, Some(ri), Some(id)))
            }
            [rendition, KEYS_DIR, name] if self.manifest.key_policy == KeyPolicy::KeepEncrypted => {
                let ri = *self.renditions.get(*rendition)?;
                self.key_names(ri).contains(*name).then(|| file(BundleFileKind::Key, Some(ri), None))
            }
            _ => None,
        }
    }

    /// Whether `id` is a planned entry of the bundle.
    fn is_planned(&self, id: &SegmentId) -> bool {
        let Some(&ri) = self.renditions.get(id.rendition.as_str()) else { return false };
        let planned = self.planned.get_or_init(|| {
            self.manifest
                .renditions
                .iter()
                .map(|r| {
                    let mut keys: Vec<PlanKey> = r
                        .plan
                        .segments
                        .iter()
                        .map(|s| (s.kind, s.discontinuity_sequence, s.media_sequence, s.byte_range))
                        .collect();
                    keys.sort_unstable();
                    keys
                })
                .collect()
        });
        planned[ri]
            .binary_search(&(id.kind, id.discontinuity_sequence, id.media_sequence, id.byte_range))
            .is_ok()
    }

    /// The key files rendition `ri`'s local playlist points at (`key-<n>.key`), read once.
    fn key_names(&self, ri: usize) -> &HashSet<String> {
        self.keys[ri].get_or_init(|| {
            let plan = &self.manifest.renditions[ri].plan;
            let Ok(file) = self.open_path(&format!("{}/{INDEX_FILE}", plan.id)) else {
                return HashSet::new();
            };
            let Ok(bytes) = file.read_all(MAX_LOCAL_PLAYLIST_LEN) else { return HashSet::new() };
            let text = String::from_utf8_lossy(&bytes);
            let Ok(parsed) = stowage_playlist::MediaPlaylist::parse_with(
                text.as_ref(),
                &stowage_playlist::ParserOptions::lenient(),
            ) else {
                return HashSet::new();
            };
            let mut playlist = parsed.playlist;
            let mut names = HashSet::new();
            let prefix = format!("{KEYS_DIR}/");
            // Offered every URI, the callback keeps each as it is and notes the keys' names; the playlist is
            // thrown away afterwards.
            let _ = playlist.rewrite_uris(|u| {
                if u.role == stowage_playlist::UriRole::Key
                    && let Some(name) = u.uri.strip_prefix(&prefix)
                    && is_key_name(name)
                {
                    names.insert(name.to_owned());
                }
                stowage_playlist::Rewrite::Keep
            });
            names
        })
    }

    /// The file of a planned segment or initialization section.
    pub fn segment_file(&self, id: &SegmentId) -> Result<BundleFile> {
        let unknown = || Error::UnknownSegment { segment: id.clone() };
        let ri = *self.renditions.get(id.rendition.as_str()).ok_or_else(unknown)?;
        if !self.is_planned(id) {
            return Err(unknown());
        }
        let plan = &self.manifest.renditions[ri].plan;
        let name = ledger::segment_path(Path::new(""), plan, id);
        self.resolve(&name.to_string_lossy().replace('\\', "/"))
    }

    /// Opens a file for reading. Symbolic links are refused at every step from the store (or from the
    /// bundle folder, for a reader opened on a folder), so a link planted in the bundle leads nowhere.
    pub fn open_file(&self, file: &BundleFile) -> Result<OpenFile> {
        self.open_path(&file.path)
    }

    /// Resolves `path` and opens the file it names.
    pub fn open_path(&self, path: &str) -> Result<OpenFile> {
        let file = self.resolve(path)?;
        let relative: PathBuf = file.path.split('/').collect();
        let full = self.dir().join(&relative);
        let inner = self.storage.open_read_at(&self.base, &self.prefix.join(&relative)).at(&full)?;
        Ok(OpenFile { inner, path: full })
    }

    /// What the bundle holds now. While the download is not finished, this reads the journal and checks
    /// that each journaled entry's file is there with its length, and probes the bundle's lock; a finished
    /// bundle's manifest says it all. The size on disk counts every file of the folder.
    pub fn status(&self) -> Result<BundleStatus> {
        let dir = self.dir();
        let summary = |manifest: &Manifest, in_use: bool, size_on_disk: u64| BundleStatus {
            finished: manifest.finished,
            complete: manifest.complete,
            in_use,
            segments_finished: manifest.renditions.iter().map(|r| r.state.segments_finished).sum(),
            segments_total: manifest.renditions.iter().map(|r| r.state.segments_total).sum(),
            bytes_finished: manifest.size,
            renditions: manifest.renditions.iter().map(|r| r.state.clone()).collect(),
            gaps: manifest.gaps.clone(),
            size_on_disk,
        };
        if self.manifest.finished {
            // The manifest was written when the download finished: it says it all.
            let gaps: HashSet<&SegmentId> = self.manifest.gaps.iter().map(|g| &g.segment).collect();
            let stored = |id: &SegmentId| self.is_planned(id) && !gaps.contains(id);
            let size = self.size_on_disk(&dir, self.manifest.size, &stored)?;
            return Ok(summary(&self.manifest, false, size));
        }
        // Kept compact: a long recording's status is asked for over and over while it runs.
        let load = ledger::load(&*self.storage, &dir, self.manifest.clone())?;
        let lock = dir.join(LOCK_FILE);
        // The probe takes the lock for an instant, as `StorageManager::list` does.
        let in_use = self.storage.try_lock(&lock).at(&lock)?.is_none();
        let stored =
            |id: &SegmentId| load.locate(id).is_some_and(|(ri, si)| load.ledgers[ri].stored.contains(si));
        let size = self.size_on_disk(&dir, load.manifest.size, &stored)?;
        Ok(summary(&load.manifest, in_use, size))
    }

    /// The length of a file just listed; 0 for one gone since, or a link that leads nowhere.
    fn file_len(&self, path: &Path) -> Result<u64> {
        match self.storage.len(path) {
            Ok(len) => Ok(len),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::from_io(path, e)),
        }
    }

    /// Bytes of every file in the bundle folder, as [`StorageManager::size_on_disk`] counts them, without
    /// looking each stored segment up: those count with the lengths recorded for them (`stored_bytes` in
    /// all), and only the other files (playlists, manifest, journal, keys, anything else) are measured.
    /// A bundle of a thousand segments costs a dozen lookups instead of a thousand.
    fn size_on_disk(
        &self,
        dir: &Path,
        stored_bytes: u64,
        stored: &dyn Fn(&SegmentId) -> bool,
    ) -> Result<u64> {
        let mut total = stored_bytes;
        for (name, is_dir) in self.storage.list_names(dir).at(dir)? {
            let path = dir.join(&name);
            let rendition = name
                .to_str()
                .and_then(|n| self.renditions.get(n))
                .map(|&ri| &self.manifest.renditions[ri].plan);
            match (is_dir, rendition) {
                (false, _) => total += self.file_len(&path)?,
                (true, None) => total += dir_size(&*self.storage, &path)?,
                (true, Some(plan)) => {
                    for (file, is_dir) in self.storage.list_names(&path).at(&path)? {
                        let stored_entry = !is_dir
                            && file
                                .to_str()
                                .and_then(|f| parse_segment_name(&plan.id, plan.format, f))
                                .is_some_and(|id| stored(&id));
                        if stored_entry {
                            continue;
                        }
                        let file = path.join(&file);
                        total +=
                            if is_dir { dir_size(&*self.storage, &file)? } else { self.file_len(&file)? };
                    }
                }
            }
        }
        Ok(total)
    }
}

/// Whether `name` is a key file name this crate writes: `key-<n>.key`, `n` a canonical decimal number.
fn is_key_name(name: &str) -> bool {
    name.strip_prefix("key-")
        .and_then(|rest| rest.strip_suffix(".key"))
        .and_then(|n| n.parse::<u32>().ok().filter(|v| v.to_string() == n))
        .is_some()
}

/// Parses a segment file name (`seg-d<D>-s<S>[-r<O>-<L>].<ext>`, `init-` for an initialization section)
/// back into its identity, accepting only the exact name the identity gives (canonical numbers, the
/// rendition's extension).
fn parse_segment_name(rendition: &RenditionId, format: MediaFormat, name: &str) -> Option<SegmentId> {
    let (kind, rest, ext) = if let Some(rest) = name.strip_prefix("seg-") {
        (SegmentKind::Media, rest, format.segment_extension())
    } else if let Some(rest) = name.strip_prefix("init-") {
        (SegmentKind::Init, rest, format.init_extension())
    } else {
        return None;
    };
    let stem = rest.strip_suffix(ext)?.strip_suffix('.')?;
    let mut parts = stem.split('-');
    let number = |part: Option<&str>, prefix: char| canonical(part?.strip_prefix(prefix)?);
    let d = number(parts.next(), 'd')?;
    let s = number(parts.next(), 's')?;
    let range = match parts.next() {
        None => None,
        Some(offset) => Some(ByteRange::new(number(Some(offset), 'r')?, canonical(parts.next()?)?)),
    };
    if parts.next().is_some() {
        return None;
    }
    let mut id = match kind {
        SegmentKind::Media => SegmentId::media(rendition.clone(), d, s),
        SegmentKind::Init => SegmentId::init(rendition.clone(), d, s),
    };
    id.byte_range = range;
    Some(id)
}

/// A number as identities write it: decimal digits, no sign, no leading zero (so that every name parses
/// back to one identity, and only the name that identity gives is accepted).
fn canonical(digits: &str) -> Option<u64> {
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    plain.then(|| digits.parse().ok()).flatten()
}

impl StorageManager {
    /// A reader of the bundle of asset `id` (see [`BundleReader`]). Its files are opened from the store
    /// folder without following links, so a bundle folder that is a link out of the store is refused too.
    pub fn reader(&self, id: &str) -> Result<BundleReader> {
        check_local_name(id)?;
        let reader =
            BundleReader::open_beneath(Arc::clone(self.storage()), self.dir().to_path_buf(), id.into());
        match reader {
            Err(Error::NotFound { .. }) => {
                Err(Error::NoSuchBundle { id: id.to_owned(), store: self.dir().to_path_buf() })
            }
            // A link where the bundle folder or its manifest should be.
            Err(Error::PermissionDenied { .. }) => {
                Err(Error::NoSuchBundle { id: id.to_owned(), store: self.dir().to_path_buf() })
            }
            other => other,
        }
    }

    /// The identifiers of the bundles in the store (folders with a manifest, named as an asset identifier
    /// must be), sorted. A store folder that does not exist yet has none.
    pub fn bundle_ids(&self) -> Result<Vec<String>> {
        let dir = self.dir();
        let entries = match self.storage().list_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::from_io(dir, e)),
        };
        let mut ids = Vec::new();
        for entry in entries.into_iter().filter(|e| e.is_dir) {
            let Some(name) = entry.name.to_str() else { continue };
            if check_local_name(name).is_err() {
                continue;
            }
            let manifest = dir.join(name).join(MANIFEST_FILE);
            if self.storage().exists(&manifest).at(&manifest)? {
                ids.push(name.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse_back_only_when_canonical() {
        let r = RenditionId::new("v").unwrap();
        let seg = parse_segment_name(&r, MediaFormat::Ts, "seg-d0-s12.ts").unwrap();
        assert_eq!(seg, SegmentId::media(r.clone(), 0, 12));
        let ranged = parse_segment_name(&r, MediaFormat::Fmp4, "init-d1-s0-r0-720.mp4").unwrap();
        assert_eq!(ranged, SegmentId::init(r.clone(), 1, 0).with_byte_range(ByteRange::new(0, 720)));
        for bad in [
            "seg-d0-s012.ts",
            "seg-d+0-s1.ts",
            "seg-d0-s1.m4s",
            "seg-d0-s1.ts.part",
            "seg-d0-s1-r5.ts",
            "seg-d0-s1-r5-6-7.ts",
            "seg-d0-s1.TS",
            "../seg-d0-s1.ts",
            "seg-d0-s18446744073709551616.ts",
            "index.m3u8",
        ] {
            assert!(parse_segment_name(&r, MediaFormat::Ts, bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn key_names_are_canonical() {
        assert!(is_key_name("key-0.key") && is_key_name("key-17.key"));
        for bad in ["key-01.key", "key-.key", "key-1.key.part", "key--1.key", "../key-1.key"] {
            assert!(!is_key_name(bad), "{bad:?} accepted");
        }
    }
}
