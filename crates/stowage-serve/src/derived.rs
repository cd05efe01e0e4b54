//! What the server makes from a bundle's files for players without rendition switching: the master
//! playlist for one audio choice and a subtitle rendition as one WebVTT file.

use std::collections::HashMap;

use stowage_bundle::{BundleReader, KeyPolicy, RenditionKind};
use stowage_playlist::{MediaPlaylist, ParserOptions};

use crate::pts::{PTS_MODULO, first_pts};
use crate::webvtt::{self, Piece};

/// Playlists and subtitle segments larger than this are not read whole.
const MAX_TEXT_LEN: u64 = 64 * 1024 * 1024;

/// Bytes of a media segment read to find its first timestamp.
const PTS_PROBE_LEN: u64 = 1024 * 1024;

/// Why something could not be made.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The bundle has no such thing (404).
    NotFound,
    /// Its files are not what they should be (500), with what is wrong.
    Broken(String),
}

impl From<stowage_bundle::Error> for Failure {
    fn from(e: stowage_bundle::Error) -> Self {
        if crate::service::not_found_error(&e) { Self::NotFound } else { Self::Broken(e.to_string()) }
    }
}

fn read_text(reader: &BundleReader, path: &str) -> Result<String, Failure> {
    let bytes = reader.open_path(path)?.read_all(MAX_TEXT_LEN)?;
    String::from_utf8(bytes).map_err(|_| Failure::Broken(format!("{path} is not UTF-8")))
}

/// The local master playlist with `audio` as its only audio rendition (see [`crate::master`]).
pub(crate) fn master_with_audio(reader: &BundleReader, audio: &str) -> Result<String, Failure> {
    let is_audio = reader
        .manifest()
        .renditions
        .iter()
        .any(|r| r.plan.id.as_str() == audio && r.plan.kind == RenditionKind::Audio);
    if !is_audio {
        return Err(Failure::NotFound);
    }
    let text = read_text(reader, "master.m3u8")?;
    crate::master::with_audio(&text, audio).map_err(|e| Failure::Broken(format!("master.m3u8: {e}")))
}

/// One segment of a local media playlist, as the joiner needs it.
struct Listed {
    uri: String,
    map: Option<String>,
    discontinuity: u64,
    start: f64,
    gap: bool,
    encrypted: bool,
}

fn list_segments(reader: &BundleReader, rendition: &str) -> Result<Vec<Listed>, Failure> {
    let path = format!("{rendition}/index.m3u8");
    let text = read_text(reader, &path)?;
    let parsed = MediaPlaylist::parse_with(text.as_str(), &ParserOptions::lenient())
        .map_err(|e| Failure::Broken(format!("{path}: {e}")))?;
    let resolved = parsed.playlist.resolve(None).map_err(|e| Failure::Broken(format!("{path}: {e}")))?;
    Ok(resolved
        .segments
        .iter()
        .map(|s| Listed {
            uri: s.uri.to_string(),
            map: s.map.as_ref().map(|m| m.uri.to_string()),
            discontinuity: s.discontinuity_sequence,
            start: s.start,
            gap: s.gap,
            encrypted: !s.keys.is_empty(),
        })
        .collect())
}

/// Where each discontinuity of the media starts: its place on the timeline (seconds) and the first
/// presentation time of its first stored segment (90 kHz), read from the primary video rendition (else
/// any video, else audio).
fn timeline(reader: &BundleReader) -> Result<HashMap<u64, (f64, Option<u64>)>, Failure> {
    let renditions = &reader.manifest().renditions;
    let timing = renditions
        .iter()
        .find(|r| r.plan.kind == RenditionKind::Video && r.plan.primary)
        .or_else(|| renditions.iter().find(|r| r.plan.kind == RenditionKind::Video))
        .or_else(|| renditions.iter().find(|r| r.plan.kind == RenditionKind::Audio));
    let mut starts = HashMap::new();
    let Some(timing) = timing else { return Ok(starts) };
    let id = timing.plan.id.as_str();
    let kept_keys = reader.manifest().key_policy == KeyPolicy::KeepEncrypted;
    for s in list_segments(reader, id)? {
        if starts.get(&s.discontinuity).is_some_and(|(_, pts): &(f64, Option<u64>)| pts.is_some()) {
            continue;
        }
        let first = *starts.entry(s.discontinuity).or_insert((s.start, None));
        if s.gap || (s.encrypted && kept_keys) {
            continue;
        }
        let probe = |uri: &str| -> Result<Vec<u8>, Failure> {
            let file = reader.open_path(&format!("{id}/{uri}"))?;
            let mut buf = vec![0; file.len().min(PTS_PROBE_LEN) as usize];
            let mut filled = 0;
            while filled < buf.len() {
                match file.read_at(&mut buf[filled..], filled as u64)? {
                    0 => break,
                    n => filled += n,
                }
            }
            buf.truncate(filled);
            Ok(buf)
        };
        let segment = probe(&s.uri)?;
        let init = s.map.as_deref().map(probe).transpose()?;
        // The first stored segment may come after a gap: its timestamp is moved back to the start of its
        // discontinuity by the time between them.
        let behind = ((s.start - first.0) * 90_000.0).round() as u64 % PTS_MODULO;
        let pts = first_pts(timing.plan.format, &segment, init.as_deref())
            .map(|pts| (pts + PTS_MODULO - behind) % PTS_MODULO);
        starts.insert(s.discontinuity, (first.0, pts));
    }
    Ok(starts)
}

/// The subtitle rendition `rendition` as one WebVTT file (see [`crate::webvtt`]).
pub(crate) fn subtitles(reader: &BundleReader, rendition: &str) -> Result<String, Failure> {
    let is_subtitles = reader
        .manifest()
        .renditions
        .iter()
        .any(|r| r.plan.id.as_str() == rendition && r.plan.kind == RenditionKind::Subtitles);
    if !is_subtitles {
        return Err(Failure::NotFound);
    }
    let segments = list_segments(reader, rendition)?;
    let starts = timeline(reader)?;
    let mut texts = Vec::with_capacity(segments.len());
    for s in segments.iter().filter(|s| !s.gap) {
        let path = format!("{rendition}/{}", s.uri);
        texts.push((path.clone(), read_text(reader, &path)?, s));
    }
    // A discontinuity the media does not list starts where the subtitles' own first segment of it does.
    let mut own_starts: HashMap<u64, f64> = HashMap::new();
    for s in &segments {
        own_starts.entry(s.discontinuity).or_insert(s.start);
    }
    let pieces: Vec<Piece<'_>> = texts
        .iter()
        .map(|(path, text, s)| {
            let (start, origin) = starts
                .get(&s.discontinuity)
                .copied()
                .unwrap_or((own_starts.get(&s.discontinuity).copied().unwrap_or(0.0), None));
            Piece { name: path, text, discontinuity: s.discontinuity, start, origin }
        })
        .collect();
    webvtt::join(&pieces).map_err(Failure::Broken)
}
