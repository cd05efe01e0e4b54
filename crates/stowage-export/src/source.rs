//! Reading a bundle for export, through `stowage-bundle`: its manifest, what is stored, the flags the local
//! master playlist gives each rendition, and each stored entry's bytes, decrypted when the bundle keeps its
//! ciphertext.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use stowage_bundle::{
    AssetCache, KeyPolicy, Manifest, ManifestRendition, PlannedSegment, SegmentId, SegmentKind,
};
use stowage_fetch::decrypt::{Decryptor, sequence_iv};
use stowage_playlist::{KeyMethod, MasterPlaylist, MediaPlaylist, MediaTag, ParserOptions};

use crate::error::{Error, Result};

/// How a stored entry is decrypted: the key's number in the rendition's `keys/` folder, and the IV.
type Crypto = Option<(u32, [u8; 16])>;

/// A bundle opened for export.
pub(crate) struct Source {
    cache: AssetCache,
    /// Per rendition (manifest order): `DEFAULT=YES` and `FORCED=YES` in the local master playlist.
    flags: Vec<(bool, bool)>,
    /// Per rendition and plan entry, for a bundle that keeps its ciphertext.
    crypto: Vec<Vec<Crypto>>,
    /// The keys, by rendition and number.
    keys: HashMap<(usize, u32), [u8; 16]>,
}

impl Source {
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let cache = AssetCache::open(dir)?;
        let manifest = cache.manifest();
        let mut flags = vec![(false, false); manifest.renditions.len()];
        if let Ok(text) = cache.read_local_playlist(None)
            && let Ok(parsed) = MasterPlaylist::parse_with(text.as_str(), &ParserOptions::lenient())
        {
            for rendition in parsed.playlist.renditions() {
                let Some(uri) = rendition.uri() else { continue };
                let folder = uri.strip_suffix("/index.m3u8").unwrap_or("");
                if let Some(i) = manifest.renditions.iter().position(|r| r.plan.id.as_str() == folder) {
                    flags[i] = (rendition.default().unwrap_or(false), rendition.forced().unwrap_or(false));
                }
            }
        }
        let mut source =
            Self { crypto: vec![Vec::new(); manifest.renditions.len()], cache, flags, keys: HashMap::new() };
        if source.manifest().key_policy == KeyPolicy::KeepEncrypted {
            for i in 0..source.manifest().renditions.len() {
                source.read_crypto(i)?;
            }
        }
        Ok(source)
    }

    pub(crate) fn manifest(&self) -> &Manifest {
        self.cache.manifest()
    }

    pub(crate) fn rendition(&self, index: usize) -> &ManifestRendition {
        &self.manifest().renditions[index]
    }

    /// `DEFAULT=YES` in the local master playlist.
    pub(crate) fn is_default(&self, index: usize) -> bool {
        self.flags[index].0
    }

    /// `FORCED=YES` in the local master playlist.
    pub(crate) fn is_forced(&self, index: usize) -> bool {
        self.flags[index].1
    }

    /// The stored length of an entry; `None` when it is not stored.
    pub(crate) fn stored_len(&self, rendition: usize, entry: &PlannedSegment) -> Option<u64> {
        self.cache.stored_len(&entry.id(&self.rendition(rendition).plan.id))
    }

    /// Reads the keys and IVs of a kept-encrypted rendition from its local playlist, which names the key
    /// files (`keys/key-<n>.key`) in the order of the plan's entries.
    fn read_crypto(&mut self, index: usize) -> Result<()> {
        let plan = self.manifest().renditions[index].plan.clone();
        let id = plan.id.clone();
        let text = self.cache.read_local_playlist(Some(&id))?;
        let bad = |reason: String| {
            Error::Bundle(stowage_bundle::Error::Playlist {
                path: self.cache.dir().join(id.as_str()).join("index.m3u8"),
                reason,
            })
        };
        let parsed = MediaPlaylist::parse_with(text.as_str(), &ParserOptions::lenient())
            .map_err(|e| bad(e.to_string()))?;
        let playlist = parsed.playlist;
        let resolved = playlist.resolve(None).map_err(|e| bad(e.to_string()))?;
        let key_number = |uri: &str| -> Result<u32> {
            uri.strip_prefix("keys/key-")
                .and_then(|r| r.strip_suffix(".key"))
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(format!("key URI {uri:?} is not one of the bundle's key files")))
        };
        // The key in force where each EXT-X-MAP tag is written applies to that initialization section.
        let mut in_force: Option<(u32, Option<[u8; 16]>)> = None;
        let mut map_keys: Vec<Option<(u32, Option<[u8; 16]>)>> = Vec::new();
        let mut visit = |tag: &MediaTag<'_>| -> Result<()> {
            match tag {
                MediaTag::Key(k) if k.method() == KeyMethod::None => in_force = None,
                MediaTag::Key(k) if k.method() == KeyMethod::Aes128 && k.keyformat() == "identity" => {
                    let uri = k.uri().ok_or_else(|| bad("an AES-128 key without URI".into()))?;
                    in_force = Some((key_number(uri)?, k.iv()));
                }
                MediaTag::Map(_) => map_keys.push(in_force),
                _ => {}
            }
            Ok(())
        };
        for tag in playlist.header() {
            visit(tag)?;
        }
        for i in 0..playlist.segments().len() {
            for tag in playlist.segment_tags(i).iter() {
                visit(tag)?;
            }
        }
        let mut crypto = Vec::with_capacity(plan.segments.len());
        let (mut media, mut maps) = (resolved.segments.iter(), map_keys.into_iter());
        for entry in &plan.segments {
            let c = match entry.kind {
                SegmentKind::Init => maps
                    .next()
                    .flatten()
                    .map(|(n, iv)| (n, iv.unwrap_or_else(|| sequence_iv(entry.media_sequence)))),
                _ => {
                    let seg =
                        media.next().ok_or_else(|| bad("fewer segments than the bundle's plan".into()))?;
                    match seg.keys.iter().find(|k| k.keyformat == "identity") {
                        Some(k) if k.method == KeyMethod::Aes128 => {
                            Some((key_number(k.uri.as_deref().unwrap_or(""))?, k.iv))
                        }
                        Some(k) if k.method != KeyMethod::None => {
                            return Err(Error::Decrypt {
                                segment: entry.id(&id),
                                reason: format!(
                                    "it is encrypted with {:?}, which export cannot decrypt",
                                    k.key.method_text().unwrap_or("?")
                                ),
                            });
                        }
                        _ => None,
                    }
                }
            };
            if let Some((n, _)) = c
                && let std::collections::hash_map::Entry::Vacant(slot) = self.keys.entry((index, n))
            {
                let key = self.cache.read_key(&id, n)?;
                let key: [u8; 16] = key.try_into().map_err(|k: Vec<u8>| Error::Decrypt {
                    segment: entry.id(&id),
                    reason: format!("its key file key-{n}.key holds {} bytes, not 16", k.len()),
                })?;
                slot.insert(key);
            }
            crypto.push(c);
        }
        self.crypto[index] = crypto;
        Ok(())
    }

    /// Opens a stored entry (the `entry`-th of rendition `rendition`'s plan) for reading, decrypted, with
    /// the length of what it reads. A stored entry that is clear is streamed from the disk; one kept
    /// encrypted is decrypted whole first, since its clear length (the padding removed) is known only at
    /// its end and the muxers need it from the start.
    pub(crate) fn open_entry(
        &self,
        rendition: usize,
        entry: usize,
    ) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let plan = &self.rendition(rendition).plan;
        let id = plan.segments[entry].id(&plan.id);
        let mut reader = self.cache.open_stored(&id)?;
        let len = reader.len();
        match self.crypto.get(rendition).and_then(|c| c.get(entry)).copied().flatten() {
            None => Ok((Box::new(reader), len)),
            Some((n, iv)) => {
                let key = *self.keys.get(&(rendition, n)).ok_or_else(|| Error::Decrypt {
                    segment: id.clone(),
                    reason: format!("key-{n}.key was not read from the bundle"),
                })?;
                let mut decryptor = Decryptor::aes128(&key, &iv)
                    .map_err(|e| Error::Decrypt { segment: id.clone(), reason: e.to_string() })?;
                let mut stored = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                reader.read_to_end(&mut stored).map_err(|e| self.read_error(rendition, entry, e))?;
                let mut clear = Vec::with_capacity(stored.len());
                decryptor.update(&stored, &mut clear);
                decryptor
                    .finish(&mut clear)
                    .map_err(|e| Error::Decrypt { segment: id.clone(), reason: e.to_string() })?;
                let clear_len = clear.len() as u64;
                Ok((Box::new(io::Cursor::new(clear)), clear_len))
            }
        }
    }

    /// Reads a stored entry whole, decrypted (initialization sections, subtitle segments, probes).
    pub(crate) fn read(&self, rendition: usize, entry: usize) -> Result<Vec<u8>> {
        let (mut reader, len) = self.open_entry(rendition, entry)?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        reader.read_to_end(&mut bytes).map_err(|e| self.read_error(rendition, entry, e))?;
        Ok(bytes)
    }

    /// The error of a failed read of an entry.
    pub(crate) fn read_error(&self, rendition: usize, entry: usize, e: io::Error) -> Error {
        let plan = &self.rendition(rendition).plan;
        let segment = plan.segments[entry].id(&plan.id);
        if e.kind() == io::ErrorKind::InvalidData {
            Error::Decrypt { segment, reason: e.to_string() }
        } else {
            Error::media(&segment, format!("cannot read it: {e}"))
        }
    }

    /// The identity of an entry.
    pub(crate) fn id(&self, rendition: usize, entry: usize) -> SegmentId {
        let plan = &self.rendition(rendition).plan;
        plan.segments[entry].id(&plan.id)
    }
}
