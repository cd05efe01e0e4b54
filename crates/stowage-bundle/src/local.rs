//! Local playlists: the source playlists with every URI pointed at the bundle's own files.
//!
//! Rules (documented in `docs/bundle-format.md`):
//! - Each media segment's URI line becomes its local file name; `EXT-X-BYTERANGE` goes, because every range
//!   is stored as a file of its own. `EXT-X-MAP` points at the local initialization section, without
//!   `BYTERANGE`.
//! - `EXT-X-KEY` is removed when content is stored decrypted, or pointed at `keys/key-<n>.key` when the
//!   ciphertext is kept (n counts the playlist's `EXT-X-KEY` tags from 0).
//! - Tags whose URIs lead to content that is not stored (low-latency parts, preload hints, rendition
//!   reports, I-frame playlists, session keys, session data by URI, content steering) are removed.
//! - A planned segment that is not stored is marked `EXT-X-GAP`; a partly downloaded bundle lists segments
//!   up to the last stored one, says `EXT-X-PLAYLIST-TYPE:EVENT` instead of `VOD`, and has no
//!   `EXT-X-ENDLIST`; a finished one ends with `EXT-X-ENDLIST`.
//! - Every other line is kept as it is, in order: date ranges, discontinuities, program date-times, and
//!   tags this crate does not know.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::id::SegmentId;
use crate::ledger::{self, Finished, INDEX_FILE, KEYS_DIR, MASTER_FILE, SOURCE_DIR, segment_path};
use crate::manifest::{KeyPolicy, Manifest, RenditionKind, RenditionPlan};
use crate::storage::Storage;

/// Source playlists larger than this are refused (the playlist crate's own limit is of the same order).
const MAX_PLAYLIST_LEN: u64 = 64 * 1024 * 1024;

/// Writes every rendition's `index.m3u8` and the `master.m3u8`.
pub(crate) fn write_all(
    storage: &dyn Storage,
    dir: &Path,
    manifest: &Manifest,
    finished: &HashMap<SegmentId, Finished>,
) -> Result<()> {
    for r in &manifest.renditions {
        let source = dir.join(SOURCE_DIR).join(format!("{}.m3u8", r.plan.id));
        let text = read_text(storage, &source)?;
        let local = rewrite_media(&text, &r.plan, manifest.key_policy, manifest.finished, &|id| {
            finished.contains_key(id)
        })
        .map_err(|reason| Error::Playlist { path: source.clone(), reason })?;
        ledger::write_atomic(storage, &dir.join(r.plan.id.as_str()).join(INDEX_FILE), local.as_bytes())?;
    }
    let master = if manifest.has_master_playlist {
        let source = dir.join(SOURCE_DIR).join(MASTER_FILE);
        let text = read_text(storage, &source)?;
        rewrite_master(&text, manifest).map_err(|reason| Error::Playlist { path: source.clone(), reason })?
    } else {
        generate_master(manifest)
    };
    ledger::write_atomic(storage, &dir.join(MASTER_FILE), master.as_bytes())
}

fn read_text(storage: &dyn Storage, path: &Path) -> Result<String> {
    let bytes = storage.read_limited(path, MAX_PLAYLIST_LEN).at(path)?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Playlist { path: path.to_path_buf(), reason: "not UTF-8".into() })
}

/// The local relative path of a planned entry, from its rendition folder.
pub(crate) fn local_name(plan: &RenditionPlan, id: &SegmentId) -> String {
    let path = segment_path(Path::new(""), plan, id);
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Splits a tag line into its name (with `#`) and its value after `:`.
fn split_tag(line: &str) -> (&str, Option<&str>) {
    match line.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (line, None),
    }
}

/// Media playlist tags that carry URIs of content the bundle does not store; they are removed.
const REMOTE_MEDIA_TAGS: &[&str] = &[
    "#EXT-X-PART",
    "#EXT-X-PRELOAD-HINT",
    "#EXT-X-RENDITION-REPORT",
    "#EXT-X-SKIP",
    "#EXT-X-SERVER-CONTROL",
];

/// Rewrites a source media playlist for the bundle. `is_stored` says whether a planned entry is finished.
///
/// The plan's entries correspond, in order, to the playlist's `EXT-X-MAP` tags (initialization entries) and
/// media segments (media entries); a playlist that does not match its plan is an error.
pub(crate) fn rewrite_media(
    source: &str,
    plan: &RenditionPlan,
    key_policy: KeyPolicy,
    finished: bool,
    is_stored: &dyn Fn(&SegmentId) -> bool,
) -> std::result::Result<String, String> {
    let inits: Vec<&crate::manifest::PlannedSegment> =
        plan.segments.iter().filter(|s| s.kind == crate::id::SegmentKind::Init).collect();
    let medias: Vec<&crate::manifest::PlannedSegment> =
        plan.segments.iter().filter(|s| s.kind == crate::id::SegmentKind::Media).collect();
    // Which media entries are playable: stored, with their initialization section stored.
    let mut playable = Vec::with_capacity(medias.len());
    {
        let mut init_ok = true;
        for s in &plan.segments {
            let id = s.id(&plan.id);
            match s.kind {
                crate::id::SegmentKind::Init => init_ok = is_stored(&id),
                crate::id::SegmentKind::Media => playable.push(init_ok && is_stored(&id)),
            }
        }
    }
    // A partly downloaded playlist ends at its last playable segment.
    let listed = if finished { medias.len() } else { playable.iter().rposition(|&p| p).map_or(0, |i| i + 1) };

    let mut out = String::with_capacity(source.len());
    let mut pending: Vec<String> = Vec::new();
    let (mut media_index, mut init_index, mut key_index) = (0usize, 0usize, 0u32);
    let mut saw_endlist = false;
    let mut lines = source.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or_default().trim_start_matches('\u{feff}');
    if first.trim_end() != "#EXTM3U" {
        return Err("does not start with #EXTM3U".into());
    }
    out.push_str("#EXTM3U\n");
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            // A media segment's URI line: the tags gathered since the previous segment belong to it.
            let Some(entry) = medias.get(media_index) else {
                return Err(format!("more media segments than the {} planned", medias.len()));
            };
            let id = entry.id(&plan.id);
            if media_index < listed {
                for tag in pending.drain(..) {
                    out.push_str(&tag);
                    out.push('\n');
                }
                if !playable[media_index] {
                    out.push_str("#EXT-X-GAP\n");
                }
                out.push_str(&local_name(plan, &id));
                out.push('\n');
            } else {
                pending.clear();
            }
            media_index += 1;
            continue;
        }
        if !line.starts_with("#EXT") {
            // A comment.
            pending.push(line.to_owned());
            continue;
        }
        let (name, value) = split_tag(line);
        match name {
            "#EXT-X-BYTERANGE" => {}
            "#EXT-X-ENDLIST" => saw_endlist = true,
            "#EXT-X-PLAYLIST-TYPE" if !finished && value.map(str::trim) == Some("VOD") => {
                pending.push("#EXT-X-PLAYLIST-TYPE:EVENT".to_owned());
            }
            "#EXT-X-MAP" => {
                let Some(entry) = inits.get(init_index) else {
                    return Err(format!("more EXT-X-MAP tags than the {} planned", inits.len()));
                };
                init_index += 1;
                let mut attrs = AttrList::parse(value.unwrap_or_default())?;
                attrs.remove("BYTERANGE");
                attrs.set_quoted("URI", &local_name(plan, &entry.id(&plan.id)));
                pending.push(format!("#EXT-X-MAP:{}", attrs.render()));
            }
            "#EXT-X-KEY" => {
                let index = key_index;
                key_index += 1;
                if key_policy == KeyPolicy::KeepEncrypted {
                    let mut attrs = AttrList::parse(value.unwrap_or_default())?;
                    if attrs.get("URI").is_some() {
                        attrs.set_quoted("URI", &format!("{KEYS_DIR}/key-{index}.key"));
                    }
                    pending.push(format!("#EXT-X-KEY:{}", attrs.render()));
                }
            }
            n if REMOTE_MEDIA_TAGS.contains(&n) => {}
            _ => pending.push(line.to_owned()),
        }
    }
    if media_index != medias.len() {
        return Err(format!("{media_index} media segments, {} planned", medias.len()));
    }
    if init_index != inits.len() {
        return Err(format!("{init_index} EXT-X-MAP tags, {} planned", inits.len()));
    }
    // Tags after the last segment (date ranges, unknown tags) are kept; the end marker is ours to place.
    for tag in pending.drain(..) {
        if listed == medias.len() || !tag.starts_with("#EXT-X-DATERANGE") {
            out.push_str(&tag);
            out.push('\n');
        }
    }
    let _ = saw_endlist;
    if finished {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Ok(out)
}

/// Master playlist tags that carry URIs of content the bundle does not store; they are removed.
const REMOTE_MASTER_TAGS: &[&str] = &[
    "#EXT-X-I-FRAME-STREAM-INF",
    "#EXT-X-SESSION-KEY",
    "#EXT-X-CONTENT-STEERING",
    "#EXT-X-IMAGE-STREAM-INF",
];

/// Rewrites the source master playlist: variants and renditions that are stored point at their local
/// `index.m3u8`, the others are removed, and group references to groups left empty are removed.
pub(crate) fn rewrite_master(source: &str, manifest: &Manifest) -> std::result::Result<String, String> {
    let local: HashMap<&str, String> = manifest
        .renditions
        .iter()
        .filter_map(|r| r.plan.master_uri.as_deref().map(|u| (u, format!("{}/{INDEX_FILE}", r.plan.id))))
        .collect();
    let mut lines = source.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or_default().trim_start_matches('\u{feff}');
    if first.trim_end() != "#EXTM3U" {
        return Err("does not start with #EXTM3U".into());
    }
    // First pass: which EXT-X-MEDIA groups keep at least one rendition.
    let all: Vec<&str> = lines.collect();
    let mut kept_groups: HashSet<(String, String)> = HashSet::new();
    for line in &all {
        if let ("#EXT-X-MEDIA", Some(value)) = split_tag(line) {
            let attrs = AttrList::parse(value)?;
            let keep = match attrs.get("URI") {
                Some(uri) => local.contains_key(uri),
                None => true,
            };
            if keep && let (Some(t), Some(g)) = (attrs.get("TYPE"), attrs.get("GROUP-ID")) {
                kept_groups.insert((t.to_owned(), g.to_owned()));
            }
        }
    }
    let mut out = String::from("#EXTM3U\n");
    let mut pending_variant: Option<String> = None;
    for line in all {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            if let Some(tag) = pending_variant.take()
                && let Some(path) = local.get(line.trim())
            {
                out.push_str(&tag);
                out.push('\n');
                out.push_str(path);
                out.push('\n');
            }
            continue;
        }
        let (name, value) = split_tag(line);
        match name {
            "#EXT-X-STREAM-INF" => {
                let mut attrs = AttrList::parse(value.unwrap_or_default())?;
                for (attr, kind) in [("AUDIO", "AUDIO"), ("VIDEO", "VIDEO"), ("SUBTITLES", "SUBTITLES")] {
                    if let Some(group) = attrs.get(attr)
                        && !kept_groups.contains(&(kind.to_owned(), group.to_owned()))
                    {
                        attrs.remove(attr);
                    }
                }
                pending_variant = Some(format!("#EXT-X-STREAM-INF:{}", attrs.render()));
            }
            "#EXT-X-MEDIA" => {
                let mut attrs = AttrList::parse(value.unwrap_or_default())?;
                match attrs.get("URI").map(|u| local.get(u)) {
                    None => out.push_str(line),
                    Some(Some(path)) => {
                        let path = path.clone();
                        attrs.set_quoted("URI", &path);
                        out.push_str(&format!("#EXT-X-MEDIA:{}", attrs.render()));
                    }
                    Some(None) => continue,
                }
                out.push('\n');
            }
            "#EXT-X-SESSION-DATA" => {
                let attrs = AttrList::parse(value.unwrap_or_default())?;
                if attrs.get("URI").is_none() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            n if REMOTE_MASTER_TAGS.contains(&n) => {}
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// A master playlist for a bundle made from media playlists alone, built from the renditions' attributes.
pub(crate) fn generate_master(manifest: &Manifest) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let audio: Vec<&RenditionPlan> =
        manifest.renditions.iter().map(|r| &r.plan).filter(|r| r.kind == RenditionKind::Audio).collect();
    let subs: Vec<&RenditionPlan> =
        manifest.renditions.iter().map(|r| &r.plan).filter(|r| r.kind == RenditionKind::Subtitles).collect();
    for (kind, group, list) in [("AUDIO", "audio", &audio), ("SUBTITLES", "subs", &subs)] {
        for (i, r) in list.iter().enumerate() {
            let name = r.name.clone().unwrap_or_else(|| r.id.to_string());
            out.push_str(&format!(
                "#EXT-X-MEDIA:TYPE={kind},GROUP-ID=\"{group}\",NAME=\"{}\"",
                quote_safe(&name)
            ));
            if let Some(lang) = &r.language {
                out.push_str(&format!(",LANGUAGE=\"{}\"", quote_safe(lang)));
            }
            let default = if i == 0 { "YES" } else { "NO" };
            out.push_str(&format!(",DEFAULT={default},AUTOSELECT=YES,URI=\"{}/{INDEX_FILE}\"\n", r.id));
        }
    }
    for r in manifest.renditions.iter().map(|r| &r.plan).filter(|r| r.kind == RenditionKind::Video) {
        out.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH={}", r.bandwidth.unwrap_or(1)));
        if let Some(codecs) = &r.codecs {
            out.push_str(&format!(",CODECS=\"{}\"", quote_safe(codecs)));
        }
        if let Some((w, h)) = r.resolution {
            out.push_str(&format!(",RESOLUTION={w}x{h}"));
        }
        if !audio.is_empty() {
            out.push_str(",AUDIO=\"audio\"");
        }
        if !subs.is_empty() {
            out.push_str(",SUBTITLES=\"subs\"");
        }
        out.push_str(&format!("\n{}/{INDEX_FILE}\n", r.id));
    }
    out
}

/// A quoted-string attribute value may not hold `"`, CR or LF: such characters are dropped.
fn quote_safe(value: &str) -> String {
    value.chars().filter(|c| !matches!(c, '"' | '\r' | '\n')).collect()
}

/// An attribute list kept in written order, values as written (quotes included).
struct AttrList {
    attrs: Vec<(String, String)>,
}

impl AttrList {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut attrs = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (name, after) =
                rest.split_once('=').ok_or_else(|| format!("attribute without `=` in {text:?}"))?;
            let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
                let end =
                    quoted.find('"').ok_or_else(|| format!("unterminated quoted string in {text:?}"))?;
                (&after[..end + 2], &quoted[end + 1..])
            } else {
                match after.find(',') {
                    Some(i) => (&after[..i], &after[i..]),
                    None => (after, ""),
                }
            };
            attrs.push((name.trim().to_owned(), value.to_owned()));
            rest = after.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("expected `,` in {text:?}"));
            }
        }
        Ok(Self { attrs })
    }

    /// The value without quotes.
    fn get(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim_matches('"'))
    }

    fn remove(&mut self, name: &str) {
        self.attrs.retain(|(n, _)| n != name);
    }

    fn set_quoted(&mut self, name: &str, value: &str) {
        let quoted = format!("\"{}\"", quote_safe(value));
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = quoted,
            None => self.attrs.push((name.to_owned(), quoted)),
        }
    }

    fn render(&self) -> String {
        let parts: Vec<String> = self.attrs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        parts.join(",")
    }
}
