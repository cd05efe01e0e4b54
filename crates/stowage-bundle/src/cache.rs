//! Read-only queries on a bundle: what is playable offline (Apple's `AVAssetCache`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::artwork::{Artwork, ArtworkFile, MAX_ARTWORK_LEN};
use crate::error::{Error, IoContext, Result};
use crate::id::{RenditionId, SegmentId};
use crate::ledger::{self, Finished, MASTER_FILE};
use crate::manifest::{Manifest, RenditionKind, TimeRange};
use crate::storage::{LocalFs, Storage};

/// A read-only view of a bundle, for players and for listing: which renditions and time ranges are
/// available offline.
///
/// It takes no lock and changes nothing on disk, so it can be opened while a download writes to the
/// bundle; it shows the bundle as it was when opened (a torn last journal record is ignored).
#[derive(Debug, Clone)]
pub struct AssetCache {
    dir: PathBuf,
    manifest: Manifest,
    pub(crate) finished: HashMap<SegmentId, Finished>,
    /// Kept for reading stored files (see the `stored` module).
    pub(crate) storage: Arc<dyn Storage>,
}

/// A media selection option (an audio or subtitles rendition) and whether it is available offline.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MediaSelectionOption {
    /// The rendition.
    pub rendition: RenditionId,
    /// Audio or subtitles (or a video variant).
    pub kind: RenditionKind,
    /// `LANGUAGE`.
    pub language: Option<String>,
    /// `NAME`.
    pub name: Option<String>,
    /// `GROUP-ID`.
    pub group_id: Option<String>,
    /// Whether it belongs to the primary selection.
    pub primary: bool,
    /// Whether every segment of it is stored.
    pub complete: bool,
}

impl AssetCache {
    /// Opens the bundle in `dir` on the local filesystem for reading.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(Arc::new(LocalFs::new()), dir)
    }

    /// Opens the bundle in `dir` with `storage` for reading: reads the manifest and the journal and checks
    /// that each journaled segment is there with its recorded length.
    pub fn open_with(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let (manifest, finished) = ledger::load_whole(&*storage, &dir)?;
        Ok(Self { dir, manifest, finished, storage })
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The local master playlist to hand to a player.
    pub fn master_playlist_path(&self) -> PathBuf {
        self.dir.join(MASTER_FILE)
    }

    /// The manifest, with its state fields as found on disk.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether the asset can be played offline: every rendition of its primary selection is complete (when
    /// no rendition is marked primary, every video rendition).
    pub fn is_playable_offline(&self) -> bool {
        let primary: Vec<_> = self.manifest.renditions.iter().filter(|r| r.plan.primary).collect();
        let required: Vec<_> = if primary.is_empty() {
            self.manifest.renditions.iter().filter(|r| r.plan.kind == RenditionKind::Video).collect()
        } else {
            primary
        };
        !required.is_empty() && required.iter().all(|r| r.state.complete)
    }

    /// Whether every planned segment of every rendition is stored.
    pub fn is_complete(&self) -> bool {
        self.manifest.complete
    }

    /// All renditions, with whether each is available offline.
    pub fn media_selection_options(&self) -> Vec<MediaSelectionOption> {
        self.manifest
            .renditions
            .iter()
            .map(|r| MediaSelectionOption {
                rendition: r.plan.id.clone(),
                kind: r.plan.kind,
                language: r.plan.language.clone(),
                name: r.plan.name.clone(),
                group_id: r.plan.group_id.clone(),
                primary: r.plan.primary,
                complete: r.state.complete,
            })
            .collect()
    }

    /// The audio and subtitles renditions that are complete, so can be selected offline.
    pub fn available_media_selections(&self) -> Vec<MediaSelectionOption> {
        self.media_selection_options()
            .into_iter()
            .filter(|o| o.complete && o.kind != RenditionKind::Video)
            .collect()
    }

    /// The playable time ranges of a rendition, in seconds from its start.
    pub fn loaded_time_ranges(&self, rendition: &RenditionId) -> Result<Vec<TimeRange>> {
        let r = self
            .manifest
            .rendition(rendition)
            .ok_or_else(|| Error::UnknownRendition { rendition: rendition.to_string() })?;
        // Brought up to date from what is stored when the cache was opened.
        Ok(r.state.loaded_time_ranges.clone())
    }

    /// Whether a segment is stored.
    pub fn is_finished(&self, id: &SegmentId) -> bool {
        self.finished.contains_key(id)
    }

    /// Bytes of stored segments.
    pub fn size(&self) -> u64 {
        self.manifest.size
    }

    /// The artwork stored with the asset (its file name, media type and length), if any.
    pub fn artwork(&self) -> Option<&ArtworkFile> {
        self.manifest.artwork.as_ref()
    }

    /// Where the artwork is, if any.
    pub fn artwork_path(&self) -> Option<PathBuf> {
        self.artwork().map(|a| self.dir.join(&a.file))
    }

    /// Reads the artwork: its bytes and media type. Fails with [`Error::Damaged`] naming the file when it
    /// does not have the length and checksum the manifest records.
    pub fn read_artwork(&self) -> Result<Option<Artwork>> {
        let Some(file) = self.artwork() else { return Ok(None) };
        let path = self.dir.join(&file.file);
        let data = self.storage.read_limited(&path, MAX_ARTWORK_LEN).at(&path)?;
        if data.len() as u64 != file.length || crc32fast::hash(&data) != file.crc32 {
            return Err(Error::Damaged {
                path,
                reason: format!("the manifest records {} bytes with CRC-32 {:08x}", file.length, file.crc32),
            });
        }
        Ok(Some(Artwork::new(data).media_type(file.media_type.clone())))
    }
}
