//! The asset a live origin plays: a clear HLS master playlist (or one media playlist) and its segments.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use crate::hls::{quoted_attribute, resolve};
use crate::{Files, OriginError};

/// What a rendition of the source is, from the master playlist that lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenditionKind {
    /// A variant stream (`EXT-X-STREAM-INF`), or the only playlist of a source without a master.
    Variant,
    /// An `EXT-X-MEDIA` rendition of `TYPE=AUDIO`.
    Audio,
    /// An `EXT-X-MEDIA` rendition of `TYPE=VIDEO`.
    Video,
    /// An `EXT-X-MEDIA` rendition of `TYPE=SUBTITLES`.
    Subtitles,
}

/// One segment of a source rendition.
#[derive(Clone, Debug)]
pub(crate) struct SourceSegment {
    /// Where it was read from (its path in the source's file map), for reports.
    pub(crate) path: String,
    /// Its bytes (the byte range, for `EXT-X-BYTERANGE` sources).
    pub(crate) bytes: Bytes,
    /// Its `EXTINF`, in seconds.
    pub(crate) duration: f64,
}

/// One media playlist of the source.
#[derive(Clone, Debug)]
pub(crate) struct SourceRendition {
    /// The playlist's URI relative to the master (or its file name when there is no master).
    pub(crate) name: String,
    pub(crate) kind: RenditionKind,
    pub(crate) segments: Vec<SourceSegment>,
    /// The initialisation section (`EXT-X-MAP`), with the extension to serve it under.
    pub(crate) map: Option<(Bytes, String)>,
    /// The extension of its segment URIs (`ts`, `m4s`, `vtt`, ...).
    pub(crate) extension: String,
}

/// A clear HLS asset for a [`LiveOrigin`](crate::live::LiveOrigin) to play as a live stream: a master
/// playlist with its renditions (variants, audio, video and subtitle renditions with a URI), or a single
/// media playlist.
///
/// The source must be clear (the live origin encrypts on its own when asked) and its playlist URIs
/// relative. Segments may be whole files or `EXT-X-BYTERANGE` ranges; an `EXT-X-MAP` initialisation section
/// is kept. I-frame playlists are left out. Every rendition is cut to the segment count of the shortest,
/// so that one media sequence number carries the same stretch of content in every rendition.
#[derive(Clone, Debug)]
pub struct LiveSource {
    /// The master playlist's file name and its text, without I-frame playlists.
    pub(crate) master: Option<(String, String)>,
    pub(crate) renditions: Vec<SourceRendition>,
    /// Segments per rendition: the loop length.
    pub(crate) len: usize,
}

impl LiveSource {
    /// Loads the playlist at `playlist` (relative to `dir`, for example `master.m3u8`) and everything it
    /// lists from the directory `dir`.
    pub fn from_dir(dir: impl AsRef<Path>, playlist: &str) -> Result<Self, OriginError> {
        let files = Files::new();
        files.load_dir("/", dir)?;
        Self::from_files(&files, playlist)
    }

    /// Takes the playlist at `path` in `files` (a master or a media playlist) and everything it lists.
    pub fn from_files(files: &Files, path: &str) -> Result<Self, OriginError> {
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        let text = playlist_text(files, &path)?;
        let dir = &path[..=path.rfind('/').unwrap_or(0)];
        let file_name = path[dir.len()..].to_owned();
        let is_master = text.lines().any(|l| l.trim_start().starts_with("#EXT-X-STREAM-INF"));
        let (master, listed) = if is_master {
            let (kept, listed) = read_master(&path, &text)?;
            (Some((file_name, kept)), listed)
        } else {
            (None, vec![(file_name, RenditionKind::Variant)])
        };
        if listed.is_empty() {
            return Err(refuse(&path, "it lists no media playlist"));
        }
        let mut renditions = Vec::with_capacity(listed.len());
        for (name, kind) in listed {
            let media_path = format!("{dir}{name}");
            renditions.push(read_media(files, &media_path, name, kind)?);
        }
        let len = renditions.iter().map(|r| r.segments.len()).min().unwrap_or(0);
        if len == 0 {
            return Err(refuse(&path, "a rendition has no segments"));
        }
        for rendition in &mut renditions {
            rendition.segments.truncate(len);
        }
        Ok(Self { master, renditions, len })
    }

    /// The segments per rendition that the live stream loops over.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the source has no segments (never true of a loaded source).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mean `EXTINF` of the segments played of the first variant (of the first rendition, without a
    /// variant).
    pub fn mean_duration(&self) -> Duration {
        let rendition = self
            .renditions
            .iter()
            .find(|r| r.kind == RenditionKind::Variant)
            .or_else(|| self.renditions.first());
        let seconds = rendition.map_or(0.0, |r| {
            r.segments.iter().map(|s| s.duration).sum::<f64>() / r.segments.len().max(1) as f64
        });
        Duration::try_from_secs_f64(seconds).unwrap_or_default()
    }

    /// The renditions' names (their playlist URIs relative to the master) and kinds, in master order.
    pub fn renditions(&self) -> Vec<(String, RenditionKind)> {
        self.renditions.iter().map(|r| (r.name.clone(), r.kind)).collect()
    }
}

fn refuse(path: &str, reason: impl Into<String>) -> OriginError {
    OriginError::Playlist { path: path.to_owned(), reason: reason.into() }
}

fn playlist_text(files: &Files, path: &str) -> Result<String, OriginError> {
    let resource = files.get(path).ok_or_else(|| OriginError::MissingFile { path: path.to_owned() })?;
    let text = String::from_utf8(resource.body.to_vec()).map_err(|_| refuse(path, "it is not UTF-8"))?;
    if !text.trim_start_matches('\u{feff}').starts_with("#EXTM3U") {
        return Err(refuse(path, "it does not start with #EXTM3U"));
    }
    Ok(text)
}

/// A URI the live origin can serve under its mount point: relative, without a scheme or a query.
fn relative_uri<'a>(path: &str, uri: &'a str) -> Result<&'a str, OriginError> {
    if uri.contains("://") || uri.starts_with('/') || uri.contains('?') || uri.split('/').any(|p| p == "..") {
        return Err(refuse(path, format!("the URI {uri:?} is not a plain relative path")));
    }
    Ok(uri)
}

/// The master's text without I-frame playlists, and the media playlists it lists, each once.
fn read_master(path: &str, text: &str) -> Result<(String, Vec<(String, RenditionKind)>), OriginError> {
    let mut kept = String::with_capacity(text.len());
    let mut listed: Vec<(String, RenditionKind)> = Vec::new();
    let mut push = |uri: &str, kind| {
        if !listed.iter().any(|(u, _)| u == uri) {
            listed.push((uri.to_owned(), kind));
        }
    };
    let mut after_stream_inf = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("#EXT-X-I-FRAME-STREAM-INF") {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
        if let Some(attributes) = trimmed.strip_prefix("#EXT-X-MEDIA:") {
            let kind = if attributes.contains("TYPE=AUDIO") {
                RenditionKind::Audio
            } else if attributes.contains("TYPE=SUBTITLES") {
                RenditionKind::Subtitles
            } else {
                RenditionKind::Video
            };
            if let Some(uri) = quoted_attribute(attributes, "URI") {
                push(relative_uri(path, uri)?, kind);
            }
        } else if trimmed.starts_with("#EXT-X-STREAM-INF") {
            after_stream_inf = true;
        } else if !trimmed.is_empty() && !trimmed.starts_with('#') && after_stream_inf {
            push(relative_uri(path, trimmed)?, RenditionKind::Variant);
            after_stream_inf = false;
        }
    }
    Ok((kept, listed))
}

/// Reads a clear media playlist and the bytes of its segments.
fn read_media(
    files: &Files,
    path: &str,
    name: String,
    kind: RenditionKind,
) -> Result<SourceRendition, OriginError> {
    let text = playlist_text(files, path)?;
    if text.lines().any(|l| l.trim_start().starts_with("#EXT-X-STREAM-INF")) {
        return Err(refuse(path, "a master playlist lists another master playlist"));
    }
    let dir = &path[..=path.rfind('/').unwrap_or(0)];
    let file_bytes = |uri: &str| -> Result<(String, Bytes), OriginError> {
        let source =
            resolve(dir, uri).ok_or_else(|| refuse(path, format!("the URI {uri:?} is not local")))?;
        let body = files.get(&source).ok_or_else(|| OriginError::MissingFile { path: source.clone() })?.body;
        Ok((source, body))
    };
    let slice = |source: &str, body: &Bytes, range: Option<(u64, u64)>| -> Result<Bytes, OriginError> {
        let Some((len, offset)) = range else { return Ok(body.clone()) };
        let end = offset.checked_add(len).filter(|&end| end <= body.len() as u64).ok_or_else(|| {
            refuse(path, format!("the byte range {len}@{offset} is outside {source} ({} bytes)", body.len()))
        })?;
        Ok(body.slice(offset as usize..end as usize))
    };
    let mut segments = Vec::new();
    let mut map = None;
    let mut extension = String::new();
    let mut duration: Option<f64> = None;
    let mut range: Option<(u64, Option<u64>)> = None;
    // Where the previous byte range of each file ended, for ranges without an offset.
    let mut range_end: Option<(String, u64)> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = |what: &str| refuse(path, format!("line {}: {what}", number + 1));
        if let Some(value) = line.strip_prefix("#EXTINF:") {
            let value = value.split(',').next().unwrap_or("").trim();
            duration = Some(value.parse().map_err(|_| at(&format!("bad EXTINF duration {value:?}")))?);
        } else if let Some(value) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            range = Some(parse_range(value).ok_or_else(|| at(&format!("bad byte range {value:?}")))?);
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-KEY:") {
            if !attributes.contains("METHOD=NONE") {
                return Err(at("the source is encrypted; give the live origin a clear source"));
            }
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = quoted_attribute(attributes, "URI").ok_or_else(|| at("EXT-X-MAP without a URI"))?;
            let (source, body) = file_bytes(relative_uri(path, uri)?)?;
            let map_range = match quoted_attribute(attributes, "BYTERANGE") {
                Some(value) => {
                    let (len, offset) =
                        parse_range(value).ok_or_else(|| at(&format!("bad map byte range {value:?}")))?;
                    Some((len, offset.unwrap_or(0)))
                }
                None => None,
            };
            let bytes = slice(&source, &body, map_range)?;
            if map.is_some() {
                return Err(at("more than one EXT-X-MAP; the live origin serves one initialisation section"));
            }
            map = Some((bytes, extension_of(uri)));
        } else if !line.is_empty() && !line.starts_with('#') {
            let uri = relative_uri(path, line)?;
            let seconds = duration.take().ok_or_else(|| at("a segment without EXTINF"))?;
            let (source, body) = file_bytes(uri)?;
            let bytes = match range.take() {
                None => body,
                Some((len, offset)) => {
                    let offset = match (offset, &range_end) {
                        (Some(offset), _) => offset,
                        (None, Some((file, end))) if *file == source => *end,
                        (None, _) => return Err(at("a byte range without an offset after another file")),
                    };
                    range_end = Some((source.clone(), offset + len));
                    slice(&source, &body, Some((len, offset)))?
                }
            };
            if extension.is_empty() {
                extension = extension_of(uri);
            }
            segments.push(SourceSegment { path: source, bytes, duration: seconds });
        }
    }
    Ok(SourceRendition { name, kind, segments, map, extension })
}

/// `len[@offset]`.
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let value = value.trim();
    match value.split_once('@') {
        Some((len, offset)) => Some((len.trim().parse().ok()?, Some(offset.trim().parse().ok()?))),
        None => Some((value.parse().ok()?, None)),
    }
}

/// The extension of a URI's last path segment, lower case, made of letters and digits only (so that it is
/// safe in the paths the origin makes); `bin` when there is none.
fn extension_of(uri: &str) -> String {
    let name = uri.rsplit('/').next().unwrap_or(uri);
    match name.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            ext.to_ascii_lowercase()
        }
        _ => "bin".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Files {
        let media = |ext: &str, n: usize| {
            let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
            for i in 0..n {
                text.push_str(&format!("#EXTINF:2.0,\ns{i}.{ext}\n"));
            }
            text + "#EXT-X-ENDLIST\n"
        };
        let files = Files::new()
            .with_bytes(
                "/m.m3u8",
                "#EXTM3U\n\
                 #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"a/i.m3u8\"\n\
                 #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"s\",NAME=\"en\",URI=\"s/i.m3u8\"\n\
                 #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\nv/i.m3u8\n\
                 #EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\nv/i.m3u8\n\
                 #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"v/iframes.m3u8\"\n",
            )
            .with_bytes("/a/i.m3u8", media("aac", 4))
            .with_bytes("/s/i.m3u8", media("vtt", 3))
            .with_bytes("/v/i.m3u8", media("ts", 3));
        for i in 0..4 {
            files.insert_bytes(&format!("/a/s{i}.aac"), vec![i as u8; 10]);
            files.insert_bytes(&format!("/s/s{i}.vtt"), "WEBVTT\n");
            files.insert_bytes(&format!("/v/s{i}.ts"), vec![0x47; 188]);
        }
        files
    }

    #[test]
    fn masters_list_each_rendition_once_cut_to_the_shortest() {
        let source = LiveSource::from_files(&fixture(), "/m.m3u8").unwrap();
        assert_eq!(source.len(), 3);
        assert_eq!(
            source.renditions(),
            [
                ("a/i.m3u8".to_owned(), RenditionKind::Audio),
                ("s/i.m3u8".to_owned(), RenditionKind::Subtitles),
                ("v/i.m3u8".to_owned(), RenditionKind::Variant)
            ]
        );
        assert_eq!(source.renditions[0].extension, "aac");
        assert_eq!(&source.renditions[0].segments[2].bytes[..], &[2u8; 10]);
        let (_, master) = source.master.as_ref().unwrap();
        assert!(!master.contains("I-FRAME"));
    }

    #[test]
    fn byte_ranges_and_maps_are_sliced() {
        let files = Files::new()
            .with_bytes(
                "/p.m3u8",
                "#EXTM3U\n#EXT-X-MAP:URI=\"all.mp4\",BYTERANGE=\"4@0\"\n\
                 #EXTINF:1,\n#EXT-X-BYTERANGE:3@4\nall.mp4\n#EXTINF:1,\n#EXT-X-BYTERANGE:2\nall.mp4\n",
            )
            .with_bytes("/all.mp4", (0u8..10).collect::<Vec<_>>());
        let source = LiveSource::from_files(&files, "p.m3u8").unwrap();
        let r = &source.renditions[0];
        assert_eq!(&r.map.as_ref().unwrap().0[..], &[0, 1, 2, 3]);
        assert_eq!(&r.segments[0].bytes[..], &[4, 5, 6]);
        assert_eq!(&r.segments[1].bytes[..], &[7, 8]);
        assert_eq!(r.extension, "mp4");
    }

    #[test]
    fn bad_sources_are_refused_with_the_reason() {
        let files = fixture();
        files.insert_bytes("/v/i.m3u8", "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:2,\ns0.ts\n");
        let err = LiveSource::from_files(&files, "/m.m3u8").unwrap_err();
        assert!(err.to_string().contains("/v/i.m3u8") && err.to_string().contains("encrypted"), "{err}");
        files.insert_bytes("/v/i.m3u8", "#EXTM3U\n#EXTINF:2,\nhttp://elsewhere/s0.ts\n");
        let err = LiveSource::from_files(&files, "/m.m3u8").unwrap_err();
        assert!(err.to_string().contains("not a plain relative path"), "{err}");
        files.insert_bytes("/v/i.m3u8", "#EXTM3U\n#EXTINF:2,\nmissing.ts\n");
        assert!(matches!(
            LiveSource::from_files(&files, "/m.m3u8"),
            Err(OriginError::MissingFile { path }) if path == "/v/missing.ts"
        ));
        files.insert_bytes("/v/i.m3u8", "#EXTM3U\n#EXTINF:abc,\ns0.ts\n");
        let err = LiveSource::from_files(&files, "/m.m3u8").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
