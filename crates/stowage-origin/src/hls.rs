//! Encrypting clear HLS for serving: AES-128-CBC with PKCS#7 padding, as RFC 8216 section 5.2 describes
//! for `METHOD=AES-128`, with key rotation and explicit or media-sequence IVs: one media playlist with
//! [`encrypt_rendition`], or every audio and video rendition of a master playlist with [`encrypt_master`].
//!
//! ```
//! use stowage_origin::Files;
//! use stowage_origin::hls::{EncryptOptions, encrypt_rendition};
//!
//! let files = Files::new()
//!     .with_bytes("/v/index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
//!         #EXTINF:2,\ns0.ts\n#EXTINF:2,\ns1.ts\n#EXTINF:2,\ns2.ts\n#EXT-X-ENDLIST\n")
//!     .with_bytes("/v/s0.ts", vec![0x47u8; 376])
//!     .with_bytes("/v/s1.ts", vec![0x47u8; 376])
//!     .with_bytes("/v/s2.ts", vec![0x47u8; 376]);
//! let done = encrypt_rendition(&files, "/v/index.m3u8", &EncryptOptions::default().rotate_every(2))?;
//! assert_eq!(done.keys.len(), 2);
//! assert_eq!(done.segments[2].media_sequence, 9);
//! assert_eq!(files.get("/v/s0.ts").unwrap().body.len(), 384); // 376 bytes padded to a block multiple
//! let playlist = String::from_utf8(files.get("/v/index.m3u8").unwrap().body.to_vec())?;
//! assert!(playlist.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"key1.key\"\n#EXTINF:2,\ns2.ts"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};

use crate::{Files, OriginError, Resource};

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

/// Encrypts `clear` with AES-128-CBC and PKCS#7 padding (the output is 1 to 16 bytes longer).
pub fn encrypt_aes128_cbc(key: &[u8; 16], iv: &[u8; 16], clear: &[u8]) -> Vec<u8> {
    Aes128CbcEnc::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(clear)
}

/// The IV HLS uses when `EXT-X-KEY` has no IV attribute: the media sequence number as a 128-bit
/// big-endian integer.
pub fn sequence_iv(media_sequence: u64) -> [u8; 16] {
    u128::from(media_sequence).to_be_bytes()
}

/// Where segment IVs come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IvMode {
    /// No IV attribute: the IV is the media sequence number ([`sequence_iv`]).
    #[default]
    MediaSequence,
    /// A pseudo-random IV per segment, written as the `IV` attribute of an `EXT-X-KEY` before every
    /// segment (so a client that wrongly derives it from the sequence number fails).
    Explicit,
}

/// How to encrypt a rendition. `Default`: one key, media-sequence IVs, keys named `key0.key`, ...
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EncryptOptions {
    /// A new key every this many segments; 0 uses one key for the whole rendition.
    pub rotate_every: usize,
    /// Where IVs come from.
    pub iv: IvMode,
    /// Key files are named `{key_name}{n}.key`, beside the playlist.
    pub key_name: String,
    /// The key URI written in the playlist is `{key_uri_prefix}{key_name}{n}.key{key_uri_suffix}`; the
    /// prefix can point elsewhere (for example `/keys/` or another origin), the suffix can add a query.
    pub key_uri_prefix: String,
    /// See [`EncryptOptions::key_uri_prefix`].
    pub key_uri_suffix: String,
    /// Keys and explicit IVs are drawn from this seed, so the same options give the same bytes.
    pub seed: u64,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        Self {
            rotate_every: 0,
            iv: IvMode::MediaSequence,
            key_name: "key".to_owned(),
            key_uri_prefix: String::new(),
            key_uri_suffix: String::new(),
            seed: 0x4B45_5953,
        }
    }
}

impl EncryptOptions {
    /// A new key every `segments` segments (0: one key).
    #[must_use]
    pub fn rotate_every(mut self, segments: usize) -> Self {
        self.rotate_every = segments;
        self
    }

    /// Writes an explicit, pseudo-random IV for every segment.
    #[must_use]
    pub fn explicit_ivs(mut self) -> Self {
        self.iv = IvMode::Explicit;
        self
    }

    /// Names key files `{name}{n}.key`.
    #[must_use]
    pub fn key_name(mut self, name: impl Into<String>) -> Self {
        self.key_name = name.into();
        self
    }

    /// Writes key URIs as `{prefix}{key_name}{n}.key{suffix}` in the playlist.
    #[must_use]
    pub fn key_uri(mut self, prefix: impl Into<String>, suffix: impl Into<String>) -> Self {
        self.key_uri_prefix = prefix.into();
        self.key_uri_suffix = suffix.into();
        self
    }

    /// Sets the seed for keys and IVs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// One key written by [`encrypt_rendition`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFile {
    /// The key file's URL path on the origin.
    pub path: String,
    /// The URI written in the playlist.
    pub uri: String,
    /// The 16 key bytes.
    pub key: [u8; 16],
}

/// One segment encrypted by [`encrypt_rendition`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptedSegment {
    /// The segment's URL path on the origin.
    pub path: String,
    /// Its media sequence number.
    pub media_sequence: u64,
    /// The index in [`EncryptedRendition::keys`] of its key.
    pub key: usize,
    /// The IV used.
    pub iv: [u8; 16],
    /// Its length before encryption.
    pub clear_len: usize,
}

/// What [`encrypt_rendition`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptedRendition {
    /// The keys, in playlist order.
    pub keys: Vec<KeyFile>,
    /// The segments, in playlist order.
    pub segments: Vec<EncryptedSegment>,
}

/// Encrypts, in `files`, the media playlist at `playlist_path` and every segment it lists, adds the key
/// files beside it, and rewrites the playlist with `EXT-X-KEY` tags.
///
/// Segment URIs must be relative paths or absolute paths on the same origin (a query is ignored for the
/// lookup and kept in the playlist). The initialisation section (`EXT-X-MAP`) stays clear: the first
/// `EXT-X-KEY` is placed after it. Playlists that are already encrypted, use `EXT-X-BYTERANGE` (sub-ranges
/// of one file cannot be encrypted independently in place), or are master playlists are refused with
/// [`OriginError::Playlist`]. To serve the clear and the encrypted asset side by side, load the source
/// twice under two mount points and encrypt one.
pub fn encrypt_rendition(
    files: &Files,
    playlist_path: &str,
    options: &EncryptOptions,
) -> Result<EncryptedRendition, OriginError> {
    let playlist_path =
        if playlist_path.starts_with('/') { playlist_path.to_owned() } else { format!("/{playlist_path}") };
    let refuse = |reason: String| OriginError::Playlist { path: playlist_path.clone(), reason };
    let playlist =
        files.get(&playlist_path).ok_or_else(|| OriginError::MissingFile { path: playlist_path.clone() })?;
    let text = std::str::from_utf8(&playlist.body).map_err(|_| refuse("it is not UTF-8".to_owned()))?;
    if !text.trim_start_matches('\u{feff}').starts_with("#EXTM3U") {
        return Err(refuse("it does not start with #EXTM3U".to_owned()));
    }
    for (tag, why) in [
        ("#EXT-X-KEY", "it is already encrypted"),
        ("#EXT-X-BYTERANGE", "it uses byte ranges"),
        ("#EXT-X-STREAM-INF", "it is a master playlist"),
    ] {
        if text.lines().any(|l| l.trim_start().starts_with(tag)) {
            return Err(refuse(format!("{why} ({tag})")));
        }
    }
    let dir = &playlist_path[..=playlist_path.rfind('/').unwrap_or(0)];
    let first_sequence = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .map(|n| n.trim().parse::<u64>().map_err(|_| refuse(format!("bad EXT-X-MEDIA-SEQUENCE value {n:?}"))))
        .transpose()?
        .unwrap_or(0);

    let mut rng = SplitMix(options.seed);
    let mut out: Vec<String> = Vec::new();
    let mut keys: Vec<KeyFile> = Vec::new();
    let mut segments: Vec<EncryptedSegment> = Vec::new();
    let mut encrypted: Vec<(String, Vec<u8>)> = Vec::new();
    // Index in `out` of the EXTINF of the segment being read, where its EXT-X-KEY goes.
    let mut extinf_at: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("#EXTINF") {
            extinf_at = Some(out.len());
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push(line.to_owned());
            continue;
        }
        let index = segments.len();
        let media_sequence = first_sequence + index as u64;
        let path = resolve(dir, trimmed)
            .ok_or_else(|| refuse(format!("segment URI {trimmed:?} is not on this origin")))?;
        let segment = files.get(&path).ok_or_else(|| OriginError::MissingFile { path: path.clone() })?;
        let rotate = index == 0 || (options.rotate_every > 0 && index.is_multiple_of(options.rotate_every));
        if rotate {
            let n = keys.len();
            let name = format!("{}{n}.key", options.key_name);
            let mut key = [0u8; 16];
            rng.fill(&mut key);
            keys.push(KeyFile {
                path: format!("{dir}{name}"),
                uri: format!("{}{name}{}", options.key_uri_prefix, options.key_uri_suffix),
                key,
            });
        }
        let key = keys.last().ok_or_else(|| refuse("no key".to_owned()))?;
        let iv = match options.iv {
            IvMode::MediaSequence => sequence_iv(media_sequence),
            IvMode::Explicit => {
                let mut iv = [0u8; 16];
                rng.fill(&mut iv);
                iv
            }
        };
        if rotate || options.iv == IvMode::Explicit {
            let mut tag = format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{}\"", key.uri);
            if options.iv == IvMode::Explicit {
                tag.push_str(",IV=0x");
                for b in iv {
                    tag.push_str(&format!("{b:02x}"));
                }
            }
            out.insert(extinf_at.unwrap_or(out.len()), tag);
        }
        extinf_at = None;
        encrypted.push((path.clone(), encrypt_aes128_cbc(&key.key, &iv, &segment.body)));
        segments.push(EncryptedSegment {
            path,
            media_sequence,
            key: keys.len() - 1,
            iv,
            clear_len: segment.body.len(),
        });
        out.push(line.to_owned());
    }
    // Nothing is changed in the map until the whole playlist has been checked.
    for (path, body) in encrypted {
        let content_type =
            files.get(&path).map(|r| r.content_type).unwrap_or_else(|| "video/mp2t".to_owned());
        files.insert(&path, Resource::new(body, content_type));
    }
    for key in &keys {
        files.insert(&key.path, Resource::new(key.key.to_vec(), "application/octet-stream"));
    }
    let mut rewritten = out.join("\n");
    rewritten.push('\n');
    files.insert(&playlist_path, Resource::new(rewritten, playlist.content_type));
    Ok(EncryptedRendition { keys, segments })
}

/// Encrypts every video and audio rendition of the master playlist at `master_path` with
/// [`encrypt_rendition`], leaving subtitle renditions clear (as services do). Each rendition gets its own
/// keys, drawn from the seed and the rendition's position; renditions sharing a directory get key files
/// prefixed with their playlist's name so that they do not collide. Returns each media playlist's path
/// with what was done to it, in master playlist order. I-frame playlists are left alone.
pub fn encrypt_master(
    files: &Files,
    master_path: &str,
    options: &EncryptOptions,
) -> Result<Vec<(String, EncryptedRendition)>, OriginError> {
    let master_path =
        if master_path.starts_with('/') { master_path.to_owned() } else { format!("/{master_path}") };
    let refuse = |reason: String| OriginError::Playlist { path: master_path.clone(), reason };
    let master =
        files.get(&master_path).ok_or_else(|| OriginError::MissingFile { path: master_path.clone() })?;
    let text = std::str::from_utf8(&master.body).map_err(|_| refuse("it is not UTF-8".to_owned()))?;
    if !text.lines().any(|l| l.trim_start().starts_with("#EXT-X-STREAM-INF")) {
        return Err(refuse("it is not a master playlist (no #EXT-X-STREAM-INF)".to_owned()));
    }
    let dir = &master_path[..=master_path.rfind('/').unwrap_or(0)];
    let mut uris: Vec<&str> = Vec::new();
    let mut after_stream_inf = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if let Some(attributes) = line.strip_prefix("#EXT-X-MEDIA:") {
            let is_text =
                attributes.contains("TYPE=SUBTITLES") || attributes.contains("TYPE=CLOSED-CAPTIONS");
            if let Some(uri) = quoted_attribute(attributes, "URI")
                && !is_text
            {
                uris.push(uri);
            }
        } else if line.starts_with("#EXT-X-STREAM-INF") {
            after_stream_inf = true;
        } else if !line.starts_with('#') && after_stream_inf {
            uris.push(line);
            after_stream_inf = false;
        }
    }
    let mut done: Vec<(String, EncryptedRendition)> = Vec::new();
    let mut used_dirs: Vec<String> = Vec::new();
    for (index, uri) in uris.into_iter().enumerate() {
        let path =
            resolve(dir, uri).ok_or_else(|| refuse(format!("playlist URI {uri:?} is not on this origin")))?;
        if done.iter().any(|(p, _)| *p == path) {
            continue;
        }
        let (playlist_dir, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        let mut rendition_options = options.clone();
        rendition_options.seed = options.seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if used_dirs.iter().any(|d| d == playlist_dir) {
            let stem = file.split('.').next().unwrap_or(file);
            rendition_options.key_name = format!("{stem}-{}", options.key_name);
        }
        used_dirs.push(playlist_dir.to_owned());
        let rendition = encrypt_rendition(files, &path, &rendition_options)?;
        done.push((path, rendition));
    }
    Ok(done)
}

/// The value of a quoted attribute (`NAME="value"`) in an attribute list.
pub(crate) fn quoted_attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attributes;
    while let Some(at) = rest.find(name) {
        let before_ok = at == 0 || rest.as_bytes()[at - 1] == b',';
        let after = &rest[at + name.len()..];
        if before_ok && let Some(value) = after.strip_prefix("=\"") {
            return value.split('"').next();
        }
        rest = &rest[at + name.len()..];
    }
    None
}

/// Resolves a segment URI against the playlist's directory; `None` for URIs on other origins.
pub(crate) fn resolve(dir: &str, uri: &str) -> Option<String> {
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    if uri.contains("://") || uri.starts_with("//") || uri.starts_with("data:") {
        return None;
    }
    let joined = if uri.starts_with('/') { uri.to_owned() } else { format!("{dir}{uri}") };
    // Remove `.` and `..` segments so that `../audio/s0.aac` finds its file.
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// SplitMix64: a tiny deterministic generator for keys and IVs (test material, not secrets).
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn fill(&mut self, out: &mut [u8; 16]) {
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use aes::cipher::BlockDecryptMut;

    use super::*;

    #[test]
    fn nist_sp800_38a_cbc_first_block() {
        // F.2.1 CBC-AES128.Encrypt, block #1 (the padding block follows it).
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let out = encrypt_aes128_cbc(&key, &iv, &hex("6bc1bee22e409f96e93d7e117393172a"));
        assert_eq!(out[..16], hex("7649abac8119b246cee98e9b12e9197d"));
        assert_eq!(out.len(), 32);
    }

    #[test]
    fn sequence_ivs_are_big_endian() {
        assert_eq!(sequence_iv(0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn explicit_ivs_and_init_sections() {
        let files = Files::new()
            .with_bytes(
                "/a/p.m3u8",
                "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\n../b/s0.m4s?t=1\n#EXTINF:2,\ns1.m4s\n",
            )
            .with_bytes("/b/s0.m4s", vec![1u8; 32])
            .with_bytes("/a/s1.m4s", vec![2u8; 10]);
        let done = encrypt_rendition(&files, "/a/p.m3u8", &EncryptOptions::default().explicit_ivs()).unwrap();
        assert_eq!(done.keys.len(), 1);
        assert_eq!(done.segments[0].path, "/b/s0.m4s");
        assert_ne!(done.segments[0].iv, sequence_iv(0));
        let text = String::from_utf8(files.get("/a/p.m3u8").unwrap().body.to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "#EXT-X-MAP:URI=\"init.mp4\"");
        assert!(lines[2].starts_with("#EXT-X-KEY:METHOD=AES-128,URI=\"key0.key\",IV=0x"));
        assert!(lines[5].starts_with("#EXT-X-KEY:"));
        assert_eq!(files.get("/a/key0.key").unwrap().body.len(), 16);
        assert_eq!(files.get("/b/s0.m4s").unwrap().body.len(), 48);
    }

    #[test]
    fn unsupported_playlists_are_refused_untouched() {
        let files = Files::new()
            .with_bytes("/p.m3u8", "#EXTM3U\n#EXT-X-BYTERANGE:10@0\n#EXTINF:1,\nall.ts\n")
            .with_bytes("/q.m3u8", "#EXTM3U\n#EXTINF:1,\nmissing.ts\n")
            .with_bytes("/all.ts", vec![0u8; 10]);
        let err = encrypt_rendition(&files, "/p.m3u8", &EncryptOptions::default()).unwrap_err();
        assert!(err.to_string().contains("byte ranges"), "{err}");
        let err = encrypt_rendition(&files, "/q.m3u8", &EncryptOptions::default()).unwrap_err();
        assert!(matches!(err, OriginError::MissingFile { ref path } if path == "/missing.ts"), "{err}");
        assert_eq!(files.get("/all.ts").unwrap().body.len(), 10);
    }

    #[test]
    fn masters_encrypt_audio_and_video_but_not_subtitles() {
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns0.ts\n#EXT-X-ENDLIST\n";
        let files = Files::new()
            .with_bytes(
                "/a/master.m3u8",
                "#EXTM3U\n\
                 #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en.m3u8\"\n\
                 #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"sub\",NAME=\"en\",URI=\"subs/en.m3u8\"\n\
                 #EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO=\"aud\",SUBTITLES=\"sub\"\nv/low.m3u8\n\
                 #EXT-X-STREAM-INF:BANDWIDTH=2000,AUDIO=\"aud\",SUBTITLES=\"sub\"\nv/high.m3u8\n",
            )
            .with_bytes("/a/audio/en.m3u8", media)
            .with_bytes("/a/audio/s0.ts", vec![1u8; 100])
            .with_bytes("/a/subs/en.m3u8", media.replace("s0.ts", "s0.vtt"))
            .with_bytes("/a/subs/s0.vtt", "WEBVTT\n")
            .with_bytes("/a/v/low.m3u8", media.replace("s0.ts", "l0.ts"))
            .with_bytes("/a/v/l0.ts", vec![2u8; 100])
            .with_bytes("/a/v/high.m3u8", media.replace("s0.ts", "h0.ts"))
            .with_bytes("/a/v/h0.ts", vec![3u8; 100]);
        let done = encrypt_master(&files, "/a/master.m3u8", &EncryptOptions::default()).unwrap();
        let paths: Vec<&str> = done.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["/a/audio/en.m3u8", "/a/v/low.m3u8", "/a/v/high.m3u8"]);
        assert_eq!(done[2].1.keys[0].path, "/a/v/high-key0.key");
        assert_ne!(done[1].1.keys[0].key, done[2].1.keys[0].key);
        assert_eq!(&files.get("/a/subs/s0.vtt").unwrap().body[..], b"WEBVTT\n");
        // What was encrypted decrypts back with the recorded key and IV.
        let segment = &done[2].1.segments[0];
        let encrypted = files.get(&segment.path).unwrap().body;
        let clear = cbc::Decryptor::<aes::Aes128>::new((&done[2].1.keys[0].key).into(), (&segment.iv).into())
            .decrypt_padded_vec_mut::<Pkcs7>(&encrypted)
            .unwrap();
        assert_eq!(clear, vec![3u8; 100]);
    }

    fn hex(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
