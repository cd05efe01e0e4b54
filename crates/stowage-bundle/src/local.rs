//! Local playlists: the source playlists, parsed and written again with `stowage-playlist`, with every
//! URI pointed at the bundle's own files.
//!
//! Rules (documented in `docs/bundle-format.md`):
//! - Each media segment's URI line becomes its local file name; `EXT-X-BYTERANGE` goes, because every range
//!   is stored as a file of its own. `EXT-X-MAP` points at the local initialization section, without
//!   `BYTERANGE`.
//! - `EXT-X-KEY` is removed when content is stored decrypted, or pointed at `keys/key-<n>.key` when the
//!   ciphertext is kept (n counts the playlist's `EXT-X-KEY` tags that carry a URI, from 0).
//! - Tags whose URIs lead to content that is not stored (low-latency parts, preload hints, rendition
//!   reports, I-frame playlists, session keys, session data by URI, content steering) are removed, and so
//!   are the live-only `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF` and `EXT-X-SKIP`.
//! - A planned segment that is not stored is marked `EXT-X-GAP`; a partly downloaded bundle lists segments
//!   up to the last stored one, says `EXT-X-PLAYLIST-TYPE:EVENT` instead of `VOD`, starts at the beginning
//!   (`EXT-X-START:TIME-OFFSET=0` unless the source says where), and has no `EXT-X-ENDLIST`; a finished one
//!   ends with `EXT-X-ENDLIST`.
//! - While a download writes the bundle, its playlists grow ([`Listing::Growing`]): each lists the longest
//!   prefix of its rendition whose entries are settled (stored, or recorded as gaps), so that a player
//!   following it as an EVENT playlist only ever sees segments appended, never one that turns from a gap
//!   into media.
//! - Every other line is kept as it is, in order: date ranges, discontinuities, program date-times, and
//!   tags this crate does not know.
//! - Variables (`EXT-X-DEFINE`) are substituted where they are used and their definitions removed, so that
//!   a local playlist reads alone: a `QUERYPARAM` or `IMPORT` definition would name values a player reading
//!   the local copy has no way to know. The source playlists are read with the values they were read with
//!   when downloaded: the query of the URL each came from, and the master playlist's variables.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use stowage_playlist::{
    AttributeList, AttributeValue, KeyMethod, MasterPlaylist, MasterTag, MediaPlaylist, MediaTag,
    ParserOptions, PlaylistType, Rewrite, Start, UriRole,
};

use crate::entries::Entries;
use crate::error::{Error, IoContext, Result};
use crate::id::{SegmentId, SegmentKind};
use crate::ledger::{self, INDEX_FILE, KEYS_DIR, MASTER_FILE, SOURCE_DIR, segment_path};
use crate::manifest::{KeyPolicy, Manifest, ManifestRendition, PlannedSegment, RenditionKind, RenditionPlan};
use crate::storage::{Storage, StorageFile, StorageReadAt};

/// Source playlists larger than this are refused (the playlist crate's own limit is of the same order).
pub(crate) const MAX_PLAYLIST_LEN: u64 = 64 * 1024 * 1024;

/// How much of each rendition a local media playlist lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    /// Every entry, ending with `EXT-X-ENDLIST`: the bundle is finished.
    Final,
    /// Up to the last playable entry, those missing before it marked `EXT-X-GAP`: what a bundle that
    /// nothing writes holds.
    AtRest,
    /// The longest prefix of settled entries (stored, or recorded as gaps): a playlist that grows while a
    /// download writes the bundle, by appending only.
    Growing,
}

/// What is known of a planned entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryState {
    Stored,
    /// Recorded as a gap: it will not be stored.
    Gap,
    Pending,
}

/// Writes every rendition's `index.m3u8` and the `master.m3u8`; nothing while no rendition is planned.
/// The listing is [`Listing::Final`] for a finished bundle whatever `listing` says.
///
/// Returns, per rendition (manifest order), where a growing recorded playlist stands for
/// [`append_growing`] to go on from (see [`write_media`]).
pub(crate) fn write_all(
    storage: &dyn Storage,
    dir: &Path,
    manifest: &Manifest,
    stored: &dyn Fn(&SegmentId) -> bool,
    listing: Listing,
) -> Result<Vec<Option<GrowingTail>>> {
    let listing = if manifest.finished { Listing::Final } else { listing };
    let write = |path: &Path, bytes: &[u8]| ledger::write_atomic(storage, path, bytes);
    let gaps: HashSet<&SegmentId> = manifest.gaps.iter().map(|g| &g.segment).collect();
    let state = |id: &SegmentId| {
        if stored(id) {
            EntryState::Stored
        } else if gaps.contains(id) {
            EntryState::Gap
        } else {
            EntryState::Pending
        }
    };
    if manifest.renditions.is_empty() {
        return Ok(Vec::new());
    }
    let master_source = dir.join(SOURCE_DIR).join(MASTER_FILE);
    let master_text =
        if manifest.has_master_playlist { Some(read_text(storage, &master_source)?) } else { None };
    let master_url = manifest.master_url.as_deref().or(manifest.asset.url.as_deref());
    let master_options = parser_options(master_url, &[]);
    let imports = master_imports(master_text.as_deref(), &master_options);
    let mut tails = Vec::new();
    for r in &manifest.renditions {
        tails.push(write_media(storage, dir, manifest, r, &imports, listing, &state)?);
    }
    let master = match &master_text {
        Some(text) => rewrite_master(text, &master_options, manifest)
            .map_err(|reason| Error::Playlist { path: master_source.clone(), reason })?,
        None => generate_master(manifest),
    };
    write(&dir.join(MASTER_FILE), master.as_bytes())?;
    Ok(tails)
}

/// The master playlist's variables: what its media playlists import. One it cannot read has none;
/// rewriting it says what is wrong with it.
fn master_imports(master_text: Option<&str>, options: &ParserOptions) -> Vec<(String, String)> {
    master_text
        .and_then(|text| MasterPlaylist::parse_with(text, options).ok())
        .map(|parsed| parsed.variables)
        .unwrap_or_default()
}

/// The variables the media playlists of the bundle in `dir` import from its master playlist.
pub(crate) fn read_imports(
    storage: &dyn Storage,
    dir: &Path,
    manifest: &Manifest,
) -> Result<Vec<(String, String)>> {
    if !manifest.has_master_playlist {
        return Ok(Vec::new());
    }
    let text = read_text(storage, &dir.join(SOURCE_DIR).join(MASTER_FILE))?;
    let master_url = manifest.master_url.as_deref().or(manifest.asset.url.as_deref());
    Ok(master_imports(Some(&text), &parser_options(master_url, &[])))
}

/// Writes the `index.m3u8` of rendition `r` whole, from its source playlist; returns where it stands
/// when it is a growing recorded playlist that [`append_growing`] can go on from.
pub(crate) fn write_media(
    storage: &dyn Storage,
    dir: &Path,
    manifest: &Manifest,
    r: &ManifestRendition,
    imports: &[(String, String)],
    listing: Listing,
    state: &dyn Fn(&SegmentId) -> EntryState,
) -> Result<Option<GrowingTail>> {
    let source = dir.join(SOURCE_DIR).join(format!("{}.m3u8", r.plan.id));
    let mut text = read_text(storage, &source)?;
    if let Some(covered) = r.source_len {
        // A recording's source holds no more than its plan covers (the writer cuts it on opening), but a
        // reader may look while a recorder appends.
        let covered = usize::try_from(covered).unwrap_or(usize::MAX);
        if covered < text.len() && text.is_char_boundary(covered) {
            text.truncate(covered);
        }
    }
    let recording = manifest.recording.is_some();
    let options = parser_options(Some(&r.plan.url), imports);
    let local = rewrite_media(&text, &options, &r.plan, manifest.key_policy, listing, recording, state)
        .map_err(|reason| Error::Playlist { path: source.clone(), reason })?;
    ledger::write_atomic(storage, &dir.join(r.plan.id.as_str()).join(INDEX_FILE), local.as_bytes())?;
    // Kept encryption numbers the keys of the whole playlist; such a recording is written whole. A final
    // listing is what a growing one is when every entry is settled (which `growing_tail` checks: it lists
    // as many segments as the growing prefix holds).
    let appendable = recording
        && matches!(listing, Listing::Growing | Listing::Final)
        && manifest.key_policy == KeyPolicy::Decrypt;
    Ok(if appendable {
        growing_tail(&text, &options, &local, &r.plan, growing_prefix(&r.plan, state))
    } else {
        None
    })
}

/// Where the growing local playlist of a recorded rendition stands after a write, so that the next write
/// appends what was listed since rather than reading, parsing and building the whole playlist again: the
/// local playlist up to its last listed segment is copied as it is, and only the source lines after that
/// segment are parsed. A recording's playlist is written whole only at its state boundaries (opening,
/// renditions added, the end).
#[derive(Clone, Debug)]
pub(crate) struct GrowingTail {
    /// Media entries listed.
    listed: usize,
    /// Plan entries up to and including the last listed media entry.
    planned: usize,
    /// The initialization entry in force after them, if any.
    init: Option<usize>,
    /// Bytes of the source playlist up to the end of the last listed segment's URI line.
    source_pos: u64,
    /// Bytes of the local playlist up to the end of the last listed segment's URI line.
    local_len: u64,
    /// The source playlist's header tags, written as a playlist of their own: what the later lines of
    /// the source are parsed after, for its variables and its version.
    header: String,
    /// How many header tags that is: the tags a parse finds after them stand before the first new segment.
    header_tags: usize,
}

impl GrowingTail {
    /// Media entries listed.
    pub(crate) fn listed(&self) -> usize {
        self.listed
    }
}

/// The byte offset just past the `count`th URI line of a media playlist (a line that is neither a tag,
/// a comment nor blank: each media segment ends with one), or `None` when it has fewer.
fn uri_line_end(text: &str, count: usize) -> Option<usize> {
    if count == 0 {
        return None;
    }
    let (mut seen, mut at) = (0, 0);
    for line in text.split_inclusive('\n') {
        at += line.len();
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('#') {
            seen += 1;
            if seen == count {
                return Some(at);
            }
        }
    }
    None
}

/// How many URI lines a media playlist has.
fn uri_lines(text: &str) -> usize {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).count()
}

/// Where a growing recorded playlist, `local`, written whole from `source` with `listed` media entries,
/// stands; `None` when it lists nothing yet or its lines cannot be told apart by position.
fn growing_tail(
    source: &str,
    options: &ParserOptions,
    local: &str,
    plan: &RenditionPlan,
    listed: usize,
) -> Option<GrowingTail> {
    let medias = plan.segments.iter().filter(|s| s.kind == SegmentKind::Media).count();
    if uri_lines(source) != medias || uri_lines(local) != listed {
        return None;
    }
    let source_pos = uri_line_end(source, listed)?;
    let local_len = uri_line_end(local, listed)?;
    // The header is read from the source's first segment alone.
    let first = uri_line_end(source, 1)?;
    let kinds = plan.segments.iter().map(|s| s.kind);
    make_tail(&source[..first], options, kinds, listed, source_pos as u64, local_len as u64)
}

/// A growing tail from where it stands: `first_segment` is the source playlist up to the end of its first
/// segment (its header is read from it), `kinds` the plan's entries in order.
fn make_tail(
    first_segment: &str,
    options: &ParserOptions,
    kinds: impl Iterator<Item = SegmentKind>,
    listed: usize,
    source_pos: u64,
    local_len: u64,
) -> Option<GrowingTail> {
    let parsed = MediaPlaylist::parse_with(first_segment, options).ok()?;
    let mut header = MediaPlaylist::new();
    *header.header_mut() = parsed.playlist.header().to_vec();
    let (mut planned, mut init, mut seen) = (0, None, 0);
    for (si, kind) in kinds.enumerate() {
        match kind {
            SegmentKind::Init => init = Some(si),
            SegmentKind::Media => seen += 1,
        }
        if seen == listed {
            planned = si + 1;
            break;
        }
    }
    (seen == listed).then(|| GrowingTail {
        listed,
        planned,
        init,
        source_pos,
        local_len,
        header_tags: header.header().len(),
        header: header.to_string(),
    })
}

/// The URI lines of a playlist read through a buffer at a time: how many there are, where the first and
/// the `nth` end, where the last ends, and for each whether an `EXT-X-GAP` tag stands before it (since the
/// URI line before), handed to `each` with its index (which stops the scan by returning `false`).
struct UriScan {
    count: usize,
    first_end: Option<u64>,
    nth_end: Option<u64>,
    last_end: Option<u64>,
    stopped: bool,
}

fn scan_uri_lines(
    reader: &mut dyn std::io::Read,
    nth: usize,
    each: &mut dyn FnMut(usize, bool) -> bool,
) -> std::io::Result<UriScan> {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let mut scan = UriScan { count: 0, first_end: None, nth_end: None, last_end: None, stopped: false };
    let (mut at, mut gap, mut line) = (0u64, false, Vec::new());
    loop {
        line.clear();
        let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
        if n == 0 {
            return Ok(scan);
        }
        at += n as u64;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if text.starts_with(b"#") {
            gap |= text == b"#EXT-X-GAP";
            continue;
        }
        scan.count += 1;
        if scan.count == 1 {
            scan.first_end = Some(at);
        }
        if scan.count == nth {
            scan.nth_end = Some(at);
        }
        scan.last_end = Some(at);
        if !each(scan.count - 1, gap) {
            scan.stopped = true;
            return Ok(scan);
        }
        gap = false;
    }
}

/// Where the growing local playlist of recorded rendition `r`, as a writer before left it on disk, stands
/// for [`append_growing`] to go on from, read through a buffer at a time: so that the first write of a
/// recording taken up again does not read, parse and build its whole playlist. `None` (write it whole)
/// unless every segment it lists is as it would list it now: settled, and marked `EXT-X-GAP` exactly when
/// `playable` says it is not (called with each media entry's index in turn: `None` when the entry or the
/// initialization section it needs is not settled).
pub(crate) fn tail_on_disk(
    storage: &dyn Storage,
    dir: &Path,
    r: &ManifestRendition,
    entries: &Entries,
    imports: &[(String, String)],
    playable: &mut dyn FnMut(usize) -> Option<bool>,
) -> Result<Option<GrowingTail>> {
    let plan = &r.plan;
    let local = dir.join(plan.id.as_str()).join(INDEX_FILE);
    // A playlist longer than one is read whole is not taken up: the whole write says what is wrong.
    match storage.len(&local) {
        Ok(len) if len > MAX_PLAYLIST_LEN => return Ok(None),
        _ => {}
    }
    let mut reader = match storage.open_read(&local) {
        Ok(reader) => reader,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::from_io(&local, e)),
    };
    let mut each = |k: usize, gap: bool| playable(k).is_some_and(|p| p != gap);
    let on_disk = scan_uri_lines(&mut reader, 0, &mut each).at(&local)?;
    let (listed, Some(local_len)) = (on_disk.count, on_disk.last_end) else { return Ok(None) };
    if on_disk.stopped {
        return Ok(None);
    }
    let source = dir.join(SOURCE_DIR).join(format!("{}.m3u8", plan.id));
    let covered = r.source_len.unwrap_or(u64::MAX).min(MAX_PLAYLIST_LEN);
    let mut reader = storage.open_read(&source).at(&source)?;
    let in_source = scan_uri_lines(&mut std::io::Read::take(&mut reader, covered), listed, &mut |_, _| true)
        .at(&source)?;
    let medias = (0..entries.len()).filter(|&si| entries.kind(si) == SegmentKind::Media).count();
    let (Some(first), Some(source_pos)) = (in_source.first_end, in_source.nth_end) else { return Ok(None) };
    // A first segment of more than a megabyte of tags is not worth reading for this.
    if in_source.count != medias || first > 1024 * 1024 {
        return Ok(None);
    }
    let mut head = Vec::new();
    storage
        .open_read(&source)
        .and_then(|r| std::io::Read::read_to_end(&mut std::io::Read::take(r, first), &mut head))
        .at(&source)?;
    let Ok(head) = String::from_utf8(head) else { return Ok(None) };
    let options = parser_options(Some(&plan.url), imports);
    let kinds = (0..entries.len()).map(|si| entries.kind(si));
    Ok(make_tail(&head, &options, kinds, listed, source_pos, local_len))
}

/// Appends to the growing local playlist of recorded rendition `r` the media entries listed since `tail`
/// (up to `listed`), by an atomic replacement as [`write_media`] makes, that holds the same lines it
/// would: the playlist's bytes up to its last listed segment copied as they are, then the new segments,
/// built from the source lines after that segment alone. Memory and parsing do not grow with the
/// recording.
///
/// Returns where the playlist stands then, or `None` when it has to be written whole instead (fewer
/// entries listed than before, or files that do not read as `tail` expects; [`write_media`] then says
/// what is wrong, if anything).
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_growing(
    storage: &dyn Storage,
    dir: &Path,
    r: &ManifestRendition,
    entries: &Entries,
    imports: &[(String, String)],
    tail: &GrowingTail,
    listed: usize,
    state: &dyn Fn(&SegmentId) -> EntryState,
) -> Result<Option<GrowingTail>> {
    if listed < tail.listed {
        return Ok(None);
    }
    if listed == tail.listed {
        return Ok(Some(tail.clone()));
    }
    let plan = &r.plan;
    // The plan entries newly listed, and whether any media entry follows them.
    let wanted = listed - tail.listed;
    let (mut planned, mut media_seen, mut all) = (tail.planned, 0, true);
    for si in tail.planned..entries.len() {
        if entries.kind(si) == SegmentKind::Media {
            if media_seen == wanted {
                all = false;
                break;
            }
            media_seen += 1;
            planned = si + 1;
        }
    }
    if media_seen < wanted {
        return Ok(None);
    }
    let new_entries: Vec<PlannedSegment> = (tail.planned..planned).map(|si| entries.get(si)).collect();

    let source_name = Path::new(SOURCE_DIR).join(format!("{}.m3u8", plan.id));
    let source = dir.join(&source_name);
    let reader = storage.open_read_at(dir, &source_name).at(&source)?;
    let covered = r.source_len.unwrap_or(u64::MAX).min(reader.len());
    if tail.source_pos > covered || covered - tail.source_pos > MAX_PLAYLIST_LEN {
        return Ok(None);
    }
    let bytes = read_range(&*reader, tail.source_pos, covered).at(&source)?;
    drop(reader);
    let Ok(text) = String::from_utf8(bytes) else { return Ok(None) };
    // The new segments' lines; when they are the last, whatever follows them too, as a whole rewrite
    // keeps it.
    let chunk = if all {
        if uri_lines(&text) != wanted {
            return Ok(None);
        }
        text.as_str()
    } else {
        match uri_line_end(&text, wanted) {
            Some(end) => &text[..end],
            None => return Ok(None),
        }
    };
    // Lines after the last new segment stand before the next one when the recording goes on: the next
    // append reads them again.
    let Some(consumed) = uri_line_end(chunk, wanted) else { return Ok(None) };
    let mut lines = String::with_capacity(tail.header.len() + chunk.len());
    lines.push_str(&tail.header);
    lines.push_str(chunk);
    let options = parser_options(Some(&plan.url), imports);
    let Ok(parsed) = MediaPlaylist::parse_with(&lines, &options) else { return Ok(None) };
    let mut playlist = parsed.playlist;
    if playlist.segments().len() != wanted || playlist.header().len() < tail.header_tags {
        return Ok(None);
    }
    let medias: Vec<&PlannedSegment> = new_entries.iter().filter(|s| s.kind == SegmentKind::Media).collect();
    let inits: Vec<&PlannedSegment> = new_entries.iter().filter(|s| s.kind == SegmentKind::Init).collect();
    let mut map_index = 0usize;
    let mut mismatch = false;
    let rewritten = playlist.rewrite_uris(|u| match u.role {
        UriRole::Segment => match medias.get(u.index.unwrap_or(0)) {
            Some(entry) => Rewrite::ReplaceWhole(local_name(plan, &entry.id(&plan.id))),
            None => {
                mismatch = true;
                Rewrite::Keep
            }
        },
        // As in a whole rewrite: a MAP after the last segment is dropped below.
        UriRole::Map if u.index.is_none() => Rewrite::Keep,
        UriRole::Map => {
            let name = match inits.get(map_index) {
                Some(entry) => local_name(plan, &entry.id(&plan.id)),
                None => {
                    mismatch = true;
                    String::new()
                }
            };
            map_index += 1;
            Rewrite::ReplaceWhole(name)
        }
        _ => Rewrite::Remove,
    });
    if rewritten.is_err() || mismatch || map_index != inits.len() {
        return Ok(None);
    }
    playlist.retain_tags(|t| !left_out_of_local(t));
    // Which new media entries are playable: stored, with their initialization section stored.
    let is_stored = |s: &PlannedSegment| state(&s.id(&plan.id)) == EntryState::Stored;
    let mut init_ok = tail.init.is_none_or(|ii| is_stored(&entries.get(ii)));
    let mut init = tail.init;
    let mut playable = Vec::with_capacity(wanted);
    for (offset, s) in new_entries.iter().enumerate() {
        match s.kind {
            SegmentKind::Init => {
                init_ok = is_stored(s);
                init = Some(tail.planned + offset);
            }
            SegmentKind::Media => playable.push(init_ok && is_stored(s)),
        }
    }
    let not_map = |t: &&MediaTag<'_>| !matches!(t, MediaTag::Map(_));
    // Lines before the first new segment that a parse from the header takes for header lines (a tag it
    // does not know, a date it cannot read) follow a segment in the whole playlist, which makes them the
    // new segment's, in the same order.
    let leading = playlist.header()[tail.header_tags..].to_vec();
    let mut segments = MediaPlaylist::new();
    for (i, segment) in playlist.segments().iter().enumerate() {
        let mut tags: Vec<MediaTag<'_>> = if i == 0 { leading.clone() } else { Vec::new() };
        tags.extend(playlist.segment_tags(i).iter().cloned());
        if !playable[i] && !tags.iter().any(|t| matches!(t, MediaTag::Gap)) {
            tags.push(MediaTag::Gap);
        }
        segments.push_segment(tags, segment.clone());
    }
    let segments = without_marker(&segments);
    let mut end = MediaPlaylist::new();
    if all {
        *end.trailer_mut() = playlist.trailer().iter().filter(not_map).cloned().collect();
    }
    end.trailer_mut().push(MediaTag::EndList);
    let end = without_marker(&end);

    let path = dir.join(plan.id.as_str()).join(INDEX_FILE);
    let local_name = Path::new(plan.id.as_str()).join(INDEX_FILE);
    let old = storage.open_read_at(dir, &local_name).at(&path)?;
    if old.len() < tail.local_len {
        return Ok(None);
    }
    let temp = ledger::temp_path(&path);
    let result = (|| {
        let mut file = storage.create(&temp).at(&temp)?;
        copy_range(&*old, tail.local_len, &mut *file).at(&path)?;
        file.write_all(segments.as_bytes()).at(&temp)?;
        file.write_all(end.as_bytes()).at(&temp)?;
        file.sync().at(&temp)?;
        drop(file);
        storage.rename(&temp, &path).at(&path)?;
        let parent = path.parent().unwrap_or_else(|| Path::new("."));
        storage.sync_dir(parent).at(parent)
    })();
    if result.is_err() {
        // The temporary file is not part of the bundle.
        let _ = storage.remove_file(&temp);
    }
    result?;
    Ok(Some(GrowingTail {
        listed,
        planned,
        init,
        source_pos: tail.source_pos + consumed as u64,
        local_len: tail.local_len + segments.len() as u64,
        header: tail.header.clone(),
        header_tags: tail.header_tags,
    }))
}

/// A playlist's lines without the `#EXTM3U` that starts every written playlist.
fn without_marker(playlist: &MediaPlaylist<'_>) -> String {
    let text = playlist.to_string();
    match text.strip_prefix("#EXTM3U\n") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// Bytes `from..to` of a file.
fn read_range(reader: &dyn StorageReadAt, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
    let len =
        usize::try_from(to - from).map_err(|_| std::io::Error::from(std::io::ErrorKind::FileTooLarge))?;
    let mut buf = vec![0; len];
    let mut at = 0;
    while at < len {
        let n = reader.read_at(&mut buf[at..], from + at as u64)?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        at += n;
    }
    Ok(buf)
}

/// Copies the first `len` bytes of a file into `out`, a bounded buffer at a time.
fn copy_range(reader: &dyn StorageReadAt, len: u64, out: &mut dyn StorageFile) -> std::io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    let mut at = 0;
    while at < len {
        let want = usize::try_from(len - at).unwrap_or(usize::MAX).min(buf.len());
        let n = reader.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// How many media entries of `plan` a [`Listing::Growing`] playlist lists: the longest prefix whose
/// entries, and the initialization sections they need, are settled.
pub(crate) fn growing_prefix(plan: &RenditionPlan, state: &dyn Fn(&SegmentId) -> EntryState) -> usize {
    let (mut listed, mut init_settled) = (0, true);
    for s in &plan.segments {
        let settled = state(&s.id(&plan.id)) != EntryState::Pending;
        match s.kind {
            SegmentKind::Init => init_settled = settled,
            SegmentKind::Media if init_settled && settled => listed += 1,
            SegmentKind::Media => break,
        }
    }
    listed
}

/// How a source playlist read from `url` is parsed: leniently, as the downloader read it, with the URL's
/// query for `EXT-X-DEFINE:QUERYPARAM` and `imports` for `EXT-X-DEFINE:IMPORT`.
fn parser_options(url: Option<&str>, imports: &[(String, String)]) -> ParserOptions {
    let mut options = ParserOptions::lenient();
    let query = url.and_then(|u| u.split('#').next()).and_then(|u| u.split_once('?')).map(|(_, q)| q);
    if let Some(query) = query {
        options = options.query(query);
    }
    for (name, value) in imports {
        options = options.import(name.clone(), value.clone());
    }
    options
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

/// Rewrites a source media playlist for the bundle, listing as `listing` says. `state` says what is known
/// of a planned entry. A `recording` is always written as a VOD playlist with `EXT-X-ENDLIST`, so that a
/// recording interrupted or stopped at any moment plays as what it holds; its entries are matched with the
/// recorded playlist's segments by position alone, since a recording keeps the source's numbers where one
/// playlist cannot (a numbering that jumps).
///
/// The plan's entries correspond, in order, to the playlist's `EXT-X-MAP` tags (initialization entries) and
/// media segments (media entries); a playlist that does not match its plan is an error.
pub(crate) fn rewrite_media(
    source: &str,
    options: &ParserOptions,
    plan: &RenditionPlan,
    key_policy: KeyPolicy,
    listing: Listing,
    recording: bool,
    state: &dyn Fn(&SegmentId) -> EntryState,
) -> std::result::Result<String, String> {
    let is_stored = |id: &SegmentId| state(id) == EntryState::Stored;
    let finished = listing == Listing::Final;
    let inits: Vec<&PlannedSegment> = plan.segments.iter().filter(|s| s.kind == SegmentKind::Init).collect();
    let medias: Vec<&PlannedSegment> =
        plan.segments.iter().filter(|s| s.kind == SegmentKind::Media).collect();
    // Which media entries are playable: stored, with their initialization section stored.
    let mut playable = Vec::with_capacity(medias.len());
    let mut init_ok = true;
    for s in &plan.segments {
        let id = s.id(&plan.id);
        match s.kind {
            SegmentKind::Init => init_ok = is_stored(&id),
            SegmentKind::Media => playable.push(init_ok && is_stored(&id)),
        }
    }
    let listed = match listing {
        Listing::Final => medias.len(),
        // A partly downloaded playlist ends at its last playable segment.
        Listing::AtRest => playable.iter().rposition(|&p| p).map_or(0, |i| i + 1),
        Listing::Growing => growing_prefix(plan, state),
    };

    let parsed = MediaPlaylist::parse_with(source, options).map_err(|e| e.to_string())?;
    let mut playlist = parsed.playlist;
    if playlist.segments().len() != medias.len() {
        return Err(format!("{} media segments, {} planned", playlist.segments().len(), medias.len()));
    }
    let mut problem: Option<String> = None;
    let (mut map_index, mut key_index) = (0usize, 0u32);
    let mut msn_base: Option<(u64, u64)> = None;
    // Per segment: its number in the playlist as written, and in the source (the plan's).
    let mut numbers: Vec<(u64, u64)> = Vec::with_capacity(medias.len());
    playlist
        .rewrite_uris(|u| match u.role {
            UriRole::Segment => {
                let i = u.index.unwrap_or(0);
                let entry = medias[i];
                numbers.push((u.media_sequence.unwrap_or(0), entry.media_sequence));
                // Entries are matched by position. As a guard against a plan made from another version
                // of the playlist, media sequence numbers must advance alike. They are compared relative
                // to the first segment: bundles planned by earlier versions numbered the segments of a
                // delta update (EXT-X-SKIP) from EXT-X-MEDIA-SEQUENCE alone, all shifted alike.
                let base = *msn_base.get_or_insert((u.media_sequence.unwrap_or(0), entry.media_sequence));
                let advance = u.media_sequence.unwrap_or(0).wrapping_sub(base.0);
                if !recording && advance != entry.media_sequence.wrapping_sub(base.1) {
                    problem.get_or_insert_with(|| {
                        format!(
                            "segment {i} has media sequence {:?} in the playlist, {} in the plan",
                            u.media_sequence, entry.media_sequence
                        )
                    });
                }
                Rewrite::ReplaceWhole(local_name(plan, &entry.id(&plan.id)))
            }
            // A MAP after the last segment (or in a playlist without segments) applies to nothing stored:
            // it is left alone here and dropped below.
            UriRole::Map if u.index.is_none() => Rewrite::Keep,
            UriRole::Map => {
                let name = match inits.get(map_index) {
                    Some(entry) => local_name(plan, &entry.id(&plan.id)),
                    None => {
                        problem.get_or_insert_with(|| {
                            format!("more EXT-X-MAP tags than the {} planned", inits.len())
                        });
                        String::new()
                    }
                };
                map_index += 1;
                Rewrite::ReplaceWhole(name)
            }
            UriRole::Key => match key_policy {
                KeyPolicy::Decrypt => Rewrite::Remove,
                KeyPolicy::KeepEncrypted => {
                    let index = key_index;
                    key_index += 1;
                    Rewrite::Replace(format!("{KEYS_DIR}/key-{index}.key"))
                }
            },
            _ => Rewrite::Remove,
        })
        .map_err(|e| e.to_string())?;
    if let Some(problem) = problem {
        return Err(problem);
    }
    if map_index != inits.len() {
        return Err(format!("{map_index} EXT-X-MAP tags, {} planned", inits.len()));
    }
    // A delta update (EXT-X-SKIP) numbers its first listed segment EXT-X-MEDIA-SEQUENCE plus the skipped
    // ones. The skip tag goes (the local copy lists what it lists), so the media sequence says that
    // number itself, and every segment keeps its number.
    if let Some(first) = msn_base.map(|(playlist_msn, _)| playlist_msn)
        && playlist.skip().is_some()
    {
        let mut written = false;
        for tag in playlist.header_mut() {
            if let MediaTag::MediaSequence(v) = tag {
                *v = first;
                written = true;
            }
        }
        if !written {
            playlist.header_mut().push(MediaTag::MediaSequence(first));
        }
    }
    playlist.retain_tags(|t| !left_out_of_local(t));

    let not_map = |t: &&MediaTag<'_>| !matches!(t, MediaTag::Map(_));
    let mut local = MediaPlaylist::new();
    *local.header_mut() = playlist.header().iter().filter(not_map).cloned().collect();
    if recording {
        // A recording is closed whenever it is written: what it holds is all there is until it goes on.
        local.header_mut().retain(|t| !matches!(t, MediaTag::PlaylistType(_)));
        let at = local
            .header()
            .iter()
            .position(|t| matches!(t, MediaTag::MediaSequence(_) | MediaTag::DiscontinuitySequence(_)))
            .map_or(local.header().len(), |i| i + 1);
        local.header_mut().insert(at, MediaTag::PlaylistType(PlaylistType::Vod));
    } else if !finished {
        // A playlist that still grows is an EVENT playlist, whatever the source said.
        let mut typed = false;
        for tag in local.header_mut() {
            if let MediaTag::PlaylistType(kind) = tag {
                *kind = PlaylistType::Event;
                typed = true;
            }
        }
        if !typed {
            local.header_mut().push(MediaTag::PlaylistType(PlaylistType::Event));
        }
        // A player joins a playlist without an end near its end, as it would a live stream; an asset
        // being stored plays from its beginning, unless its source says where.
        if !local.header().iter().any(|t| matches!(t, MediaTag::Start(_))) {
            let attributes = AttributeList::parse("TIME-OFFSET=0").map_err(|e| e.to_string())?;
            local.header_mut().push(MediaTag::Start(Start::from_attributes(attributes)));
        }
    }
    let mut ivs = ImplicitIvs::default();
    for (i, segment) in playlist.segments().iter().enumerate().take(listed) {
        let mut tags: Vec<MediaTag<'_>> = playlist.segment_tags(i).iter().cloned().collect();
        if key_policy == KeyPolicy::KeepEncrypted
            && let Some(&(written, source)) = numbers.get(i)
        {
            ivs.add_tags(&mut tags, written, source);
        }
        if !playable[i] && !tags.iter().any(|t| matches!(t, MediaTag::Gap)) {
            tags.push(MediaTag::Gap);
        }
        local.push_segment(tags, segment.clone());
    }
    if listed == medias.len() {
        *local.trailer_mut() = playlist.trailer().iter().filter(not_map).cloned().collect();
    }
    if finished || recording {
        local.trailer_mut().push(MediaTag::EndList);
    }
    Ok(local.to_string())
}

/// Kept ciphertext whose key leaves the IV to the segment's media sequence number: a recording numbers its
/// segments by position where the source's numbering jumped (a stream that started again, a stale copy
/// skipped), so a player would take another number for the IV than the source encrypted with. Such a
/// segment gets the key again with its IV written out, and the segment after the last of them the key as
/// the source wrote it.
#[derive(Default)]
struct ImplicitIvs<'a> {
    /// The key in force, when it is one whose IV is the segment's number.
    key: Option<MediaTag<'a>>,
    /// Whether the last segment was given an IV of its own.
    explicit: bool,
}

impl<'a> ImplicitIvs<'a> {
    /// Follows the keys in `tags` (a segment's tags) and adds what the segment needs, for a segment
    /// numbered `written` in the playlist and `source` by the source.
    fn add_tags(&mut self, tags: &mut Vec<MediaTag<'a>>, written: u64, source: u64) {
        for tag in tags.iter() {
            if let MediaTag::Key(key) = tag
                && key.keyformat() == "identity"
            {
                let implicit =
                    matches!(key.method(), KeyMethod::Aes128 | KeyMethod::SampleAes) && key.iv().is_none();
                self.key = implicit.then(|| tag.clone());
                self.explicit = false;
            }
        }
        let Some(key) = &self.key else { return };
        if written != source {
            let mut key = key.clone();
            if let MediaTag::Key(k) = &mut key {
                k.attributes_mut().set("IV", AttributeValue::Unquoted(format!("0x{source:032X}").into()));
            }
            tags.push(key);
            self.explicit = true;
        } else if self.explicit {
            tags.push(key.clone());
            self.explicit = false;
        }
    }
}

/// Rewrites the source master playlist: variants and renditions that are stored point at their local
/// `index.m3u8`, the others are removed, and references to groups left empty are removed.
pub(crate) fn rewrite_master(
    source: &str,
    options: &ParserOptions,
    manifest: &Manifest,
) -> std::result::Result<String, String> {
    let local: HashMap<&str, String> = manifest
        .renditions
        .iter()
        .filter_map(|r| r.plan.master_uri.as_deref().map(|u| (u, format!("{}/{INDEX_FILE}", r.plan.id))))
        .collect();
    let parsed = MasterPlaylist::parse_with(source, options).map_err(|e| e.to_string())?;
    let mut master = parsed.playlist;
    // Variables are substituted in what is written; their definitions would name values (a query
    // parameter) that a player reading the local copy cannot know.
    master.tags_mut().retain(|t| !matches!(t, MasterTag::Define(_)));
    master
        .rewrite_uris(|u| match u.role {
            UriRole::Variant | UriRole::Rendition => match local.get(u.uri) {
                Some(path) => Rewrite::Replace(path.clone()),
                None => Rewrite::Remove,
            },
            _ => Rewrite::Remove,
        })
        .map_err(|e| e.to_string())?;
    let kept_groups: HashSet<(String, String)> = master
        .renditions()
        .filter_map(|r| {
            let a = r.attributes();
            Some((a.text("TYPE")?.to_owned(), a.text("GROUP-ID")?.to_owned()))
        })
        .collect();
    for tag in master.tags_mut() {
        if let MasterTag::Variant(v) = tag {
            for (attr, kind) in [("AUDIO", "AUDIO"), ("VIDEO", "VIDEO"), ("SUBTITLES", "SUBTITLES")] {
                let attrs = v.stream_inf.attributes_mut();
                if let Some(group) = attrs.text(attr)
                    && !kept_groups.contains(&(kind.to_owned(), group.to_owned()))
                {
                    attrs.remove(attr);
                }
            }
        }
    }
    Ok(master.to_string())
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

/// The source's tags a local playlist leaves out: the live-only ones, the end marker, which is the bundle's
/// to place, and variable definitions, which are substituted in what is written.
fn left_out_of_local(tag: &MediaTag<'_>) -> bool {
    matches!(
        tag,
        MediaTag::ServerControl(_)
            | MediaTag::PartInf(_)
            | MediaTag::Skip(_)
            | MediaTag::EndList
            | MediaTag::Define(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ByteRange, RenditionId};

    /// A small seeded generator (xorshift): the property test needs no random-number crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Generates a media playlist from a seed, with the plan that matches it. Returns the text, the plan's
    /// entries, and the lines a local copy must keep (every line but URIs, keys, maps, byte ranges and the end).
    fn generate(seed: u64) -> (String, Vec<PlannedSegment>, Vec<String>) {
        let mut rng = Rng(seed | 1);
        let mut lines: Vec<String> = Vec::new();
        let mut keep: Vec<String> = Vec::new();
        let mut plan = Vec::new();
        let msn0 = rng.below(1000);
        let mut dsn = rng.below(3);
        let mut header = vec![
            "#EXT-X-VERSION:7".to_owned(),
            "#EXT-X-TARGETDURATION:10".to_owned(),
            format!("#EXT-X-MEDIA-SEQUENCE:{msn0}"),
            format!("#EXT-X-DISCONTINUITY-SEQUENCE:{dsn}"),
        ];
        if rng.below(2) == 0 {
            header.push("#EXT-X-INDEPENDENT-SEGMENTS".into());
        }
        if rng.below(2) == 0 {
            header.push(format!("#X-UNKNOWN-HEADER:{}", rng.below(99)));
        }
        lines.push("#EXTM3U".into());
        keep.push("#EXTM3U".into());
        for h in header {
            lines.push(h.clone());
            keep.push(h);
        }
        let count = 1 + rng.below(30);
        let mut offset = 0;
        for i in 0..count {
            let msn = msn0 + i;
            if i > 0 && rng.below(5) == 0 {
                lines.push("#EXT-X-DISCONTINUITY".into());
                keep.push("#EXT-X-DISCONTINUITY".into());
                dsn += 1;
            }
            let mut keepers = Vec::new();
            if rng.below(4) == 0 {
                keepers.push(format!(
                    "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:{:02}:{:02}.000Z",
                    i / 60,
                    i % 60
                ));
            }
            if rng.below(6) == 0 {
                keepers.push(format!(
                    "#EXT-X-DATERANGE:ID=\"ad-{i}\",START-DATE=\"2026-01-01T00:00:00.000Z\",DURATION={}.5,X-COM-EXAMPLE=\"v\"",
                    rng.below(30)
                ));
            }
            if rng.below(5) == 0 {
                keepers.push(format!("#X-CUSTOM-TAG:{i},\"quoted, with comma\""));
            }
            if rng.below(7) == 0 {
                keepers.push(format!("# a comment before segment {i}"));
            }
            for k in keepers {
                lines.push(k.clone());
                keep.push(k);
            }
            if rng.below(6) == 0 {
                lines.push(format!("#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/{i}?token=x\""));
            }
            if i == 0 || rng.below(10) == 0 {
                lines
                    .push(format!("#EXT-X-MAP:URI=\"https://cdn.example/init-{i}.mp4\",BYTERANGE=\"720@0\""));
                plan.push(PlannedSegment::init(dsn, msn, "init").byte_range(ByteRange::new(0, 720)));
            }
            let duration = format!("{}.{:03}", 1 + rng.below(9), rng.below(1000));
            let extinf = format!("#EXTINF:{duration},title {i}");
            lines.push(extinf.clone());
            keep.push(extinf);
            let mut entry = PlannedSegment::media(dsn, msn, duration.parse().unwrap(), "u");
            if rng.below(3) == 0 {
                let len = 100 + rng.below(900);
                lines.push(format!("#EXT-X-BYTERANGE:{len}@{offset}"));
                entry = entry.byte_range(ByteRange::new(offset, len));
                offset += len;
            }
            plan.push(entry);
            lines.push(format!("https://cdn.example/seg-{i}.m4s?sig={}", rng.next()));
        }
        if rng.below(2) == 0 {
            let tail = "#X-TRAILING-UNKNOWN:1".to_owned();
            lines.push(tail.clone());
            keep.push(tail);
        }
        lines.push("#EXT-X-ENDLIST".into());
        let mut text = lines.join("\n");
        text.push('\n');
        (text, plan, keep)
    }

    #[test]
    fn rewrite_keeps_every_line_that_is_not_a_uri() {
        let rendition = RenditionId::new("v").unwrap();
        for seed in 0..500u64 {
            let (source, segments, keep) = generate(seed * 7919 + 13);
            let plan = RenditionPlan::new(
                rendition.clone(),
                RenditionKind::Video,
                crate::MediaFormat::Fmp4,
                "u",
                "",
                segments,
            );
            let local = rewrite_media(
                &source,
                &ParserOptions::lenient(),
                &plan,
                KeyPolicy::Decrypt,
                Listing::Final,
                false,
                &|_| EntryState::Stored,
            )
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{source}"));
            let kept: Vec<&str> = local
                .lines()
                .filter(|l| l.starts_with('#') && !l.starts_with("#EXT-X-MAP:") && *l != "#EXT-X-ENDLIST")
                .collect();
            assert_eq!(kept, keep, "seed {seed}\nsource:\n{source}\nlocal:\n{local}");
            assert!(local.ends_with("#EXT-X-ENDLIST\n"));
            assert!(!local.contains("https://") && !local.contains("BYTERANGE"), "seed {seed}: {local}");
            // Every URI is a local name made from the plan, in order.
            let parsed = MediaPlaylist::parse(local.as_str()).unwrap();
            let medias: Vec<_> = plan.segments.iter().filter(|s| s.kind == SegmentKind::Media).collect();
            assert_eq!(parsed.segments().len(), medias.len());
            for (s, p) in parsed.segments().iter().zip(medias) {
                assert_eq!(s.uri(), local_name(&plan, &p.id(&plan.id)));
            }
        }
    }

    #[test]
    fn a_delta_update_keeps_its_segment_numbers_in_the_local_copy() {
        let source = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:100\n\
                      #EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=24\n#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n\
                      #EXTINF:4,\nhttps://cdn.example/105.ts\n#EXTINF:4,\nhttps://cdn.example/106.ts\n";
        let id = RenditionId::new("v").unwrap();
        let plan =
            RenditionPlan::from_playlist(id, RenditionKind::Video, "https://cdn.example/v.m3u8", source)
                .unwrap();
        let planned: Vec<u64> = plan.segments.iter().map(|s| s.media_sequence).collect();
        assert_eq!(planned, [105, 106], "the plan numbers skipped segments in");
        let local = rewrite_media(
            source,
            &ParserOptions::lenient(),
            &plan,
            KeyPolicy::Decrypt,
            Listing::Final,
            false,
            &|_| EntryState::Stored,
        )
        .unwrap();
        assert!(!local.contains("EXT-X-SKIP") && !local.contains("SERVER-CONTROL"), "{local}");
        let parsed = MediaPlaylist::parse(local.as_str()).unwrap();
        let resolved = parsed.resolve(None).unwrap();
        let numbers: Vec<u64> = resolved.segments.iter().map(|s| s.media_sequence).collect();
        assert_eq!(numbers, planned, "{local}");
    }

    /// Every media playlist of the peer corpus (real-world playlists collected by other HLS parsers,
    /// kept outside the repository: `stowage_testkit::peer_corpus`) is planned with
    /// `RenditionPlan::from_playlist` and rewritten; the local copy parses back with the same segments,
    /// all local. Skipped when the corpus is missing, unless `STOWAGE_REQUIRE_CORPUS` is set.
    #[test]
    fn peer_corpus_media_playlists_rewrite() {
        let Some(root) = stowage_testkit::peer_corpus() else { return };
        let files: Vec<_> = stowage_testkit::corpus_playlists(&root)
            .into_iter()
            .filter(|path| path.extension().is_some_and(|e| e == "m3u8"))
            .collect();
        let rendition = RenditionId::new("v").unwrap();
        let (mut rewritten, mut refused) = (0, Vec::new());
        for path in files {
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            if stowage_playlist::detect(text.as_bytes()) != Some(stowage_playlist::PlaylistKind::Media) {
                continue;
            }
            let plan = match RenditionPlan::from_playlist(
                rendition.clone(),
                RenditionKind::Video,
                "https://media.example/a/index.m3u8",
                text.as_str(),
            ) {
                Ok(plan) => plan,
                Err(e) => {
                    refused.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let local = rewrite_media(
                &text,
                &ParserOptions::lenient(),
                &plan,
                KeyPolicy::Decrypt,
                Listing::Final,
                false,
                &|_| EntryState::Stored,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let parsed = MediaPlaylist::parse_with(local.as_str(), &ParserOptions::lenient())
                .unwrap_or_else(|e| panic!("{}: {e}\n{local}", path.display()))
                .playlist;
            let medias = plan.segments.iter().filter(|s| s.kind == SegmentKind::Media).count();
            assert_eq!(parsed.segments().len(), medias, "{}", path.display());
            assert!(parsed.segments().iter().all(|s| !s.uri().contains('/')), "{}\n{local}", path.display());
            assert!(parsed.is_ended());
            rewritten += 1;
        }
        eprintln!("{rewritten} media playlists rewritten, {} refused", refused.len());
        assert!(rewritten >= 100, "only {rewritten} media playlists rewritten; refused: {refused:#?}");
        // Planning refuses only playlists the resolved view cannot place (a byte range without offset
        // after another resource's range): a typed error, never a guess.
        assert!(refused.len() <= 5, "{refused:#?}");
    }
}
