//! A live rendition's playlist, reload after reload, turned into what a recording appends: the segments not
//! recorded yet, each with the lines that list it in the recorded playlist, and the holes between reloads.
//!
//! The recorded playlist (the bundle's source playlist of a recorded rendition) is one header followed by
//! every recorded segment's lines, in the order they were recorded. Each batch of new segments is also
//! written as a small media playlist of its own (the header, the key and map in force, the batch's lines),
//! which [`build_rendition`](super::build_rendition) reads into plan entries and jobs exactly as it reads a
//! whole playlist, so that a recording's segments are planned, keyed and numbered as a download's are.

use std::time::{Duration, SystemTime};

use stowage_bundle::{PlannedSegment, RecordedSegment, RenditionId, SegmentKind};

use super::{Job, Wanted, build_rendition};
use crate::Error;
use crate::config::{KeyPolicy, LiveStart};

/// One segment of a live playlist as written in it.
#[derive(Debug, Clone)]
struct Listed {
    media_sequence: u64,
    /// Its URI as written.
    uri: String,
    duration: f64,
    /// The segment's own lines: the tags before its URI, then the URI.
    lines: String,
    /// The `EXT-X-KEY` lines in force for it (empty when none was given).
    key: String,
    /// The `EXT-X-MAP` line in force for it (empty when none).
    map: String,
    /// Whether its own lines carry `EXT-X-MAP`.
    has_map: bool,
    /// Whether its own lines carry `EXT-X-DISCONTINUITY`.
    discontinuity: bool,
    /// Its program date time: its own `EXT-X-PROGRAM-DATE-TIME`, else the one of the segment before it
    /// plus that segment's duration (`None` before the first the playlist gives).
    program_date_time: Option<SystemTime>,
}

impl Listed {
    /// Where the segment ends on the program's clock, when it has a program date time.
    fn program_end(&self) -> Option<SystemTime> {
        let length = Duration::try_from_secs_f64(self.duration.max(0.0)).unwrap_or(Duration::ZERO);
        self.program_date_time.and_then(|t| t.checked_add(length))
    }
}

/// A live media playlist cut into its header and its segments.
#[derive(Debug, Clone)]
struct LivePlaylist {
    /// The header lines a recorded playlist keeps (numbering and live-only tags left out).
    header: String,
    target: Duration,
    ended: bool,
    blocking: bool,
    segments: Vec<Listed>,
}

/// Tags of a live playlist's header that a recorded playlist does not keep: it writes its own numbering,
/// is never a live or EVENT playlist, and is not reloaded.
const DROPPED_HEADER: &[&str] = &[
    "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-DISCONTINUITY-SEQUENCE:",
    "#EXT-X-PLAYLIST-TYPE:",
    "#EXT-X-SERVER-CONTROL:",
    "#EXT-X-PART-INF:",
    "#EXT-X-ENDLIST",
];

/// Tags of low-latency and delta playlists that a recording of full segments does not keep.
const DROPPED_SEGMENT: &[&str] =
    &["#EXT-X-PART:", "#EXT-X-PRELOAD-HINT:", "#EXT-X-RENDITION-REPORT:", "#EXT-X-SKIP:", "#EXT-X-ENDLIST"];

/// Tags that belong to the header when they come before the first segment.
const HEADER_TAGS: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-VERSION:",
    "#EXT-X-TARGETDURATION:",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-START:",
    "#EXT-X-DEFINE:",
    "#EXT-X-ALLOW-CACHE:",
];

fn starts_with_any(line: &str, tags: &[&str]) -> bool {
    tags.iter().any(|t| line.starts_with(t))
}

fn attribute_number(line: &str, tag: &str) -> Option<f64> {
    line.strip_prefix(tag)?.split(',').next()?.trim().parse().ok()
}

impl LivePlaylist {
    /// Cuts a media playlist fetched from `uri` into its header and segments.
    fn read(text: &str, uri: &str) -> Result<Self, Error> {
        let invalid = |line: usize, message: String| Error::Playlist {
            uri: uri.to_owned(),
            message: format!("line {line}: {message}"),
            source: None,
        };
        let mut header = String::new();
        let mut target = None;
        let mut ended = false;
        let mut blocking = false;
        let mut media_sequence = 0u64;
        let mut segments: Vec<Listed> = Vec::new();
        let mut pending = String::new();
        let mut duration = None;
        let mut key = String::new();
        let mut key_open = false;
        let mut map = String::new();
        let mut has_map = false;
        let mut discontinuity = false;
        let mut program_date_time: Option<SystemTime> = None;
        let mut in_header = true;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                let secs: f64 =
                    v.trim().parse().map_err(|_| invalid(i + 1, format!("target duration {v:?}")))?;
                target = Some(Duration::from_secs_f64(secs.max(0.0)));
            }
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                media_sequence =
                    v.trim().parse().map_err(|_| invalid(i + 1, format!("media sequence {v:?}")))?;
            }
            if line.starts_with("#EXT-X-ENDLIST") || line == "#EXT-X-PLAYLIST-TYPE:VOD" {
                ended = true;
            }
            if line.starts_with("#EXT-X-SERVER-CONTROL:") && line.contains("CAN-BLOCK-RELOAD=YES") {
                blocking = true;
            }
            if in_header && starts_with_any(line, HEADER_TAGS) {
                header.push_str(line);
                header.push('\n');
                continue;
            }
            if starts_with_any(line, DROPPED_HEADER) || starts_with_any(line, DROPPED_SEGMENT) {
                continue;
            }
            if line.starts_with('#') {
                in_header = false;
                if line.starts_with("#EXT-X-KEY:") {
                    if !key_open {
                        key.clear();
                    }
                    key_open = true;
                    key.push_str(line);
                    key.push('\n');
                } else {
                    key_open = false;
                }
                if line.starts_with("#EXT-X-MAP:") {
                    map = format!("{line}\n");
                    has_map = true;
                }
                if line == "#EXT-X-DISCONTINUITY" {
                    discontinuity = true;
                }
                if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                    let at = stowage_playlist::DateTime::parse(v.trim())
                        .ok()
                        .and_then(|d| d.to_system_time())
                        .ok_or_else(|| invalid(i + 1, format!("program date time {v:?}")))?;
                    program_date_time = Some(at);
                }
                if let Some(d) = attribute_number(line, "#EXTINF:") {
                    duration = Some(d);
                }
                pending.push_str(line);
                pending.push('\n');
                continue;
            }
            in_header = false;
            key_open = false;
            let Some(duration) = duration.take() else {
                return Err(invalid(i + 1, "a segment URI without #EXTINF".to_owned()));
            };
            pending.push_str(line);
            pending.push('\n');
            // Without a date of its own, a segment starts where the one before it ended.
            let program_date_time =
                program_date_time.take().or_else(|| segments.last().and_then(Listed::program_end));
            segments.push(Listed {
                media_sequence: media_sequence + segments.len() as u64,
                uri: line.to_owned(),
                duration,
                lines: std::mem::take(&mut pending),
                key: key.clone(),
                map: map.clone(),
                has_map: std::mem::take(&mut has_map),
                discontinuity: std::mem::take(&mut discontinuity),
                program_date_time,
            });
        }
        let target = target.ok_or_else(|| invalid(0, "no #EXT-X-TARGETDURATION".to_owned()))?;
        if !header.starts_with("#EXTM3U") {
            return Err(invalid(1, "not a playlist (no #EXTM3U)".to_owned()));
        }
        Ok(Self { header, target, ended, blocking, segments })
    }
}

/// Whether a media playlist is live or EVENT (neither `EXT-X-ENDLIST` nor `PLAYLIST-TYPE:VOD`): one to
/// record rather than download.
pub(crate) fn is_live(text: &str) -> bool {
    // Text that is not a playlist at all (a web page in its place, say) is not live: the reading of a whole
    // playlist says what is wrong with it.
    let head = text.trim_start_matches('\u{feff}').trim_start();
    if !head.starts_with("#EXTM3U") {
        return false;
    }
    !text.lines().any(|l| {
        let l = l.trim_end();
        l.starts_with("#EXT-X-ENDLIST") || l == "#EXT-X-PLAYLIST-TYPE:VOD"
    })
}

/// What a reload of a live rendition brought, recorded at once (as the tests of a single track read it).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Update {
    /// Nothing new: the same segments, or a copy that lists nothing after the last one recorded (a stale
    /// copy, or numbering that went backwards, which is never taken for a restart).
    Unchanged,
    /// New segments (possibly none, when the playlist only ended).
    New(Batch),
}

/// Segments to append to a recording.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    /// A media playlist of the batch alone, for [`build_rendition`](super::build_rendition): numbered
    /// as recorded, with the key and map in force before its first segment.
    pub(crate) text: String,
    /// Whether `text` names a map in force before the first segment that the recorded lines do not
    /// repeat: the plan entry and job it gives are left out.
    pub(crate) context_map: bool,
    /// Each segment's lines in the recorded playlist, in order.
    pub(crate) lines: Vec<String>,
    /// Each segment's program date time, in the same order (`None` for the hole's, and where the stream
    /// gives none).
    pub(crate) dates: Vec<Option<SystemTime>>,
    /// Where the batch starts on the recording's timeline, in seconds.
    pub(crate) start: f64,
    /// Segments that left the playlist before they could be listed to the recording: first and last
    /// media sequence numbers. They lead the batch as `EXT-X-GAP` segments.
    pub(crate) hole: Option<(u64, u64)>,
    /// The hole's length on the recording's timeline, in seconds: from the program dates around it when
    /// the stream gives them, else a target duration per segment.
    pub(crate) hole_span: f64,
    /// The program dates of the hole's start and end, when the stream gives them.
    pub(crate) hole_dates: Option<(SystemTime, SystemTime)>,
    /// The number, among the recorded playlist's `EXT-X-KEY` tags with a URI, of the first such tag in
    /// `text` (which may repeat the key in force before the batch for context).
    pub(crate) key_base: u32,
    /// The number of the first such tag the batch brings: the keys from it on are new.
    pub(crate) new_keys_from: u32,
    /// The media sequence number after the batch's last segment (what a blocking reload asks for next).
    pub(crate) next: u64,
    /// The recording of this rendition is over: its playlist ended, or the duration asked for is reached.
    pub(crate) ended: Option<Ended>,
}

/// Why a rendition's recording is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    EndList,
    Duration,
}

/// One live rendition being recorded: what it recorded last, and what the recorded playlist holds.
#[derive(Debug, Clone)]
pub(crate) struct LiveTrack {
    pub(crate) target: Duration,
    pub(crate) blocking: bool,
    /// The last media sequence number recorded.
    last: u64,
    /// The URI of the last segment recorded.
    last_uri: String,
    /// The recorded playlist's discontinuity sequence at its last segment.
    discontinuity_sequence: u64,
    /// The key lines and map line the recorded playlist has in force after its last segment.
    key: String,
    map: String,
    header: String,
    /// Seconds of media recorded (the end of the recording's timeline, holes included).
    pub(crate) recorded: f64,
    /// Where the last segment recorded ends on the program's clock, when the stream gives program dates.
    last_program_end: Option<SystemTime>,
    /// The `EXT-X-KEY` tags with a URI the recorded playlist holds: the bundle numbers kept keys by them.
    key_tags: u32,
    /// The longest span of media to record, in seconds.
    limit: Option<f64>,
    /// Why the recording of this rendition is over, once it is.
    ended: Option<Ended>,
    /// Segments listed and not recorded yet: those past the end the recording's other renditions have
    /// listed (see [`release`](Self::release)). At most one playlist's worth, whatever the recording's
    /// length.
    held: Option<Held>,
}

/// What a rendition's playlist listed after the segments recorded, not recorded yet.
#[derive(Debug, Clone)]
struct Held {
    /// The segments, in order.
    segments: Vec<Listed>,
    /// The segments that left the playlist between the last one recorded and the first held.
    hole: Option<(u64, u64)>,
    /// Whether the playlist ended after the last one.
    ended: bool,
    /// The URL the playlist that listed them was fetched from (after redirects), which their URIs are
    /// relative to.
    uri: String,
}

/// Where a rendition's listed segments end: the media sequence number of the last one, and where it ends
/// on the program's clock when the stream gives program dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListedEnd {
    media_sequence: u64,
    program_end: Option<SystemTime>,
}

/// The end that every rendition of a recording has listed (see [`common_end`]): the renditions record
/// no segment past it until it moves on, so that a recording that ends between two reloads (at its end
/// time, its outage limit or a stop) leaves renditions that cover the same span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommonEnd {
    /// On the program's clock: a segment is recorded when most of it lies before this date.
    ProgramDateTime(SystemTime),
    /// By number: a segment is recorded when it is numbered this or below.
    MediaSequence(u64),
}

impl CommonEnd {
    /// Whether `segment` lies within the end.
    fn covers(self, segment: &Listed) -> bool {
        match self {
            // The nearest segment boundary decides, so that renditions whose segments are cut a little
            // differently (or whose dates are summed from durations) end at the same one.
            Self::ProgramDateTime(end) => segment.program_date_time.is_none_or(|start| {
                let half = Duration::try_from_secs_f64(segment.duration.max(0.0) / 2.0).unwrap_or_default();
                start.checked_add(half).is_some_and(|middle| middle < end)
            }),
            Self::MediaSequence(n) => segment.media_sequence <= n,
        }
    }
}

/// The end common to the renditions of a recording: the earliest of the ends the renditions that bound
/// it have listed (see [`LiveTrack::bounds_others`]), by program date time when each of them gives one,
/// else by media sequence number (as [`common_start`] chooses). `None` when no rendition bounds it.
pub(crate) fn common_end<'t>(tracks: impl IntoIterator<Item = &'t LiveTrack>) -> Option<CommonEnd> {
    let ends: Vec<ListedEnd> =
        tracks.into_iter().filter(|t| t.bounds_others()).map(LiveTrack::listed_end).collect();
    if ends.is_empty() {
        return None;
    }
    if let Some(dates) = ends.iter().map(|e| e.program_end).collect::<Option<Vec<SystemTime>>>() {
        return dates.into_iter().min().map(CommonEnd::ProgramDateTime);
    }
    ends.iter().map(|e| e.media_sequence).min().map(CommonEnd::MediaSequence)
}

impl LiveTrack {
    /// Starts recording from the first playlist read (`text`, from `uri`): returns the track and the first
    /// batch. `limit` is the longest span of media to record, in seconds.
    #[cfg(test)]
    pub(crate) fn start(
        text: &str,
        uri: &str,
        start: LiveStart,
        limit: Option<f64>,
    ) -> Result<(Self, Batch), Error> {
        let mut track = Self::start_aligned(text, uri, start, limit, None)?;
        let (batch, _) = track.release(None).expect("a first playlist is held whole");
        Ok((track, batch))
    }

    /// Starts recording as [`start`](Self::start) does, at `anchor` when the playlist lists it (the start
    /// common to every rendition of the recording, see [`common_start`]): the segments from there on are
    /// held, for [`release`](Self::release) to give the first batch.
    pub(crate) fn start_aligned(
        text: &str,
        uri: &str,
        start: LiveStart,
        limit: Option<f64>,
        anchor: Option<Anchor>,
    ) -> Result<Self, Error> {
        let playlist = LivePlaylist::read(text, uri)?;
        let own = first_index(&playlist, start, uri)?;
        // A rendition that does not list the common start yet (or any more) keeps its own.
        let first = anchor.and_then(|a| a.index_in(&playlist)).unwrap_or(own);
        let initial_sequence = playlist.segments.get(first).map_or(0, |s| s.media_sequence);
        let mut track = Self {
            target: playlist.target,
            blocking: playlist.blocking,
            last: initial_sequence.wrapping_sub(1),
            last_uri: String::new(),
            last_program_end: None,
            key_tags: 0,
            discontinuity_sequence: 0,
            key: String::new(),
            map: String::new(),
            header: playlist.header.clone(),
            recorded: 0.0,
            limit,
            ended: None,
            held: None,
        };
        let first = first.min(playlist.segments.len());
        track.held = Some(Held {
            segments: playlist.segments[first..].to_vec(),
            hole: None,
            ended: playlist.ended,
            uri: uri.to_owned(),
        });
        Ok(track)
    }

    /// Takes up a recording interrupted (a crash, a kill) from what its bundle holds: `recorded` is the
    /// rendition's recorded playlist and `entries` its plan, in order. The live playlist read now
    /// (`text`, from `uri`) is then read as a reload: every segment still listed after the last one
    /// recorded is held, to be [`release`](Self::release)d up to the end every rendition listed, so that
    /// nothing the origin still offers is skipped, and the segments that left the playlist while no
    /// recorder ran are the first batch's hole. `limit` is the longest span of media to
    /// record, in seconds, counting what was recorded before.
    pub(crate) fn resume(
        recorded: &str,
        entries: &[PlannedSegment],
        text: &str,
        uri: &str,
        limit: Option<f64>,
    ) -> Result<Self, Error> {
        let past = LivePlaylist::read(recorded, uri)?;
        let now = LivePlaylist::read(text, uri)?;
        let media: Vec<&PlannedSegment> = entries.iter().filter(|e| e.kind == SegmentKind::Media).collect();
        if media.len() != past.segments.len() {
            return Err(Error::Playlist {
                uri: uri.to_owned(),
                message: format!(
                    "the recorded playlist lists {} segments where the bundle planned {}",
                    past.segments.len(),
                    media.len()
                ),
                source: None,
            });
        }
        let (Some(entry), Some(listed)) = (media.last(), past.segments.last()) else {
            return Err(Error::Playlist {
                uri: uri.to_owned(),
                message: "the interrupted recording holds no segment to continue from".to_owned(),
                source: None,
            });
        };
        // A key of METHOD=NONE written to end an encrypted stretch is no key in force.
        let key = if listed.key.trim_end() == "#EXT-X-KEY:METHOD=NONE" {
            String::new()
        } else {
            listed.key.clone()
        };
        let recorded_span: f64 = media.iter().map(|e| e.duration).sum();
        let mut track = Self {
            target: now.target,
            blocking: now.blocking,
            last: entry.media_sequence,
            last_uri: listed.uri.clone(),
            last_program_end: listed.program_end(),
            key_tags: uri_keys(recorded),
            discontinuity_sequence: entry.discontinuity_sequence,
            key,
            map: listed.map.clone(),
            header: past.header,
            recorded: recorded_span,
            limit,
            ended: limit.is_some_and(|l| recorded_span >= l).then_some(Ended::Duration),
            held: None,
        };
        if !track.is_ended() {
            track.see(text, uri)?;
        }
        Ok(track)
    }

    /// Whether the recording of this rendition is over (its playlist ended, or its span is recorded).
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Why the recording of this rendition is over, once it is.
    pub(crate) fn ended_by(&self) -> Option<Ended> {
        self.ended
    }

    /// The media sequence number after the last one listed: what a blocking reload asks for.
    pub(crate) fn next(&self) -> u64 {
        self.listed_end().media_sequence.wrapping_add(1)
    }

    /// Where the segments listed so far end: the last one held, else the last one recorded.
    pub(crate) fn listed_end(&self) -> ListedEnd {
        match self.held.as_ref().and_then(|h| h.segments.last()) {
            Some(s) => ListedEnd { media_sequence: s.media_sequence, program_end: s.program_end() },
            None => ListedEnd { media_sequence: self.last, program_end: self.last_program_end },
        }
    }

    /// Whether what this rendition listed bounds what the others record: not once its recording is over
    /// or its playlist ended (its end is the stream's).
    pub(crate) fn bounds_others(&self) -> bool {
        self.ended.is_none() && !self.held.as_ref().is_some_and(|h| h.ended)
    }

    /// What a reload brought (`text`, fetched from `uri`), recorded at once whatever the other renditions
    /// listed: [`see`](Self::see), then [`release`](Self::release) without a common end.
    #[cfg(test)]
    pub(crate) fn reload(&mut self, text: &str, uri: &str) -> Result<Update, Error> {
        if !self.see(text, uri)? {
            return Ok(Update::Unchanged);
        }
        Ok(self.release(None).map_or(Update::Unchanged, |(batch, _)| Update::New(batch)))
    }

    /// Reads what a reload brought (`text`, fetched from `uri`): returns whether it listed anything new
    /// (segments past the last one listed, or the end of the playlist). What is listed after the last
    /// segment recorded is held until [`release`](Self::release)d.
    pub(crate) fn see(&mut self, text: &str, uri: &str) -> Result<bool, Error> {
        if self.is_ended() {
            return Ok(false);
        }
        let playlist = LivePlaylist::read(text, uri)?;
        let held_ended = self.held.as_ref().is_some_and(|h| h.ended);
        let (seen_uri, seen) = match self.held.as_ref().and_then(|h| h.segments.last()) {
            Some(s) => (s.uri.as_str(), s.media_sequence),
            None => (self.last_uri.as_str(), self.last),
        };
        // A copy older than one seen (a stale CDN copy, numbers that went back) lists nothing after the
        // last segment listed and brings nothing: it is never taken for a restart, nor does it replace
        // what is held.
        let news = after(&playlist, seen_uri, seen).0.is_some() || (playlist.ended && !held_ended);
        if !news {
            return Ok(false);
        }
        let (first, after_last) = after(&playlist, &self.last_uri, self.last);
        let first = first.unwrap_or(playlist.segments.len());
        // Neither the last segment recorded nor the one after it is listed: what came between left the
        // playlist unseen (segments held then, never recorded, included).
        let hole = playlist.segments.get(first).and_then(|s| {
            let next = s.media_sequence;
            (!after_last && next > self.last.wrapping_add(1)).then(|| (self.last.wrapping_add(1), next - 1))
        });
        self.held = Some(Held {
            segments: playlist.segments[first..].to_vec(),
            hole,
            ended: playlist.ended,
            uri: uri.to_owned(),
        });
        Ok(true)
    }

    /// Records what is held up to `end` (all of it without one, or once the playlist ended): returns the
    /// batch, with the URL its playlist was fetched from, or `None` when nothing is to be recorded.
    pub(crate) fn release(&mut self, end: Option<CommonEnd>) -> Option<(Batch, String)> {
        let held = self.held.take()?;
        // An end behind what this rendition recorded already says the renditions' numbers or dates do not
        // line up (or the rendition that set it is far behind): waiting for it could last until the
        // segments held left the origin, so it is not waited for.
        let comparable = |end: &CommonEnd| match *end {
            CommonEnd::MediaSequence(n) => self.last_uri.is_empty() || n >= self.last,
            CommonEnd::ProgramDateTime(at) => self
                .last_program_end
                .is_none_or(|recorded| at.checked_add(self.target).is_none_or(|t| t >= recorded)),
        };
        let count = match end.filter(|e| !held.ended && comparable(e)) {
            Some(end) => held.segments.iter().take_while(|s| end.covers(s)).count(),
            None => held.segments.len(),
        };
        let whole = count == held.segments.len();
        if count == 0 && !(whole && held.ended) {
            self.held = Some(held);
            return None;
        }
        let batch = self.take(&held.segments[..count], held.ended && whole, held.hole);
        if !whole && !self.is_ended() {
            self.held = Some(Held {
                segments: held.segments[count..].to_vec(),
                hole: None,
                ended: held.ended,
                uri: held.uri.clone(),
            });
        }
        Some((batch, held.uri))
    }

    /// The first batch of a recording just started: what is held up to `end`. A rendition whose first
    /// segment lies mostly past it (another lists little past the common start) starts with all it lists,
    /// and one that lists nothing yet with an empty batch: every rendition starts with a batch.
    pub(crate) fn first_batch(&mut self, end: Option<CommonEnd>) -> Batch {
        match self.release(end).or_else(|| self.release(None)) {
            Some((batch, _)) => batch,
            None => self.take(&[], false, None),
        }
    }

    /// The batch of `segments` (listed in a playlist that ended after them when `ended`), after a hole if
    /// there is one.
    fn take(&mut self, segments: &[Listed], ended: bool, hole: Option<(u64, u64)>) -> Batch {
        let start = self.recorded;
        let mut taken = segments;
        // The hole is written first, as one `EXT-X-GAP` segment per missing segment, so that the timeline
        // and the numbering go on through it: its length is known from the program dates around it (the
        // end of the last segment recorded, the start of the next), else taken to be a target duration per
        // segment. It counts towards the duration asked for, which is a span of the stream.
        let mut placeholders = Vec::new();
        let (mut hole_span, mut hole_dates) = (0.0, None);
        if let (Some((first_missing, last_missing)), Some(next)) = (hole, taken.first()) {
            let count = last_missing - first_missing + 1;
            let dates = self.last_program_end.zip(next.program_date_time).filter(|(from, to)| from < to);
            let each = match dates {
                Some((from, to)) => to.duration_since(from).unwrap_or_default().as_secs_f64() / count as f64,
                None => self.target.as_secs_f64(),
            };
            let extension =
                next.uri.split(['?', '#']).next().and_then(|p| p.rsplit_once('.')).map(|(_, e)| e);
            for (i, msn) in (first_missing..=last_missing).enumerate() {
                let mut own = String::new();
                if let (0, Some((from, _))) = (i, dates) {
                    own.push_str(&format!("#EXT-X-PROGRAM-DATE-TIME:{}\n", date_text(from)));
                }
                own.push_str(&format!("#EXT-X-GAP\n#EXTINF:{each:.5},\n"));
                // Never listed, so never named: a name of the recording's own, which nothing fetches.
                match extension {
                    Some(e) => own.push_str(&format!("hole-{msn}.{e}\n")),
                    None => own.push_str(&format!("hole-{msn}\n")),
                }
                placeholders.push(own);
            }
            hole_span = each * count as f64;
            hole_dates = dates;
            self.recorded += hole_span;
        }
        let mut ended = ended.then_some(Ended::EndList);
        if let Some(limit) = self.limit {
            // Segments are taken while the recording is shorter than the limit: it ends with the segment
            // that reaches it.
            let mut span = self.recorded;
            let mut within = 0;
            while within < taken.len() && span < limit {
                span += taken[within].duration;
                within += 1;
            }
            if span >= limit {
                taken = &taken[..within];
                ended = Some(Ended::Duration);
            }
        }
        let before_key = self.key.clone();
        let before_map = self.map.clone();
        let before_sequence = self.discontinuity_sequence;
        let new_keys_from = self.key_tags;
        let after_hole = !placeholders.is_empty();
        let mut dates = vec![None; placeholders.len()];
        dates.extend(taken.iter().map(|s| s.program_date_time));
        let mut lines = placeholders;
        lines.reserve(taken.len());
        for (i, s) in taken.iter().enumerate() {
            let mut own = String::new();
            if i == 0 && after_hole {
                if !s.discontinuity {
                    // The media's timestamps need not follow on from before the hole (its length may be
                    // estimated): players are told the timeline breaks here.
                    own.push_str("#EXT-X-DISCONTINUITY\n");
                }
                if let Some(at) =
                    s.program_date_time.filter(|_| !s.lines.contains("#EXT-X-PROGRAM-DATE-TIME:"))
                {
                    // Where the media starts again on the program's clock.
                    own.push_str(&format!("#EXT-X-PROGRAM-DATE-TIME:{}\n", date_text(at)));
                }
            }
            if s.key != self.key && !s.lines.contains("#EXT-X-KEY:") {
                own.push_str(if s.key.is_empty() { "#EXT-X-KEY:METHOD=NONE\n" } else { &s.key });
            }
            if s.map != self.map && !s.has_map {
                own.push_str(&s.map);
            }
            own.push_str(&s.lines);
            if own.contains("#EXT-X-DISCONTINUITY\n") {
                self.discontinuity_sequence += 1;
            }
            self.key.clone_from(&s.key);
            self.map.clone_from(&s.map);
            self.last = s.media_sequence;
            self.last_uri.clone_from(&s.uri);
            self.last_program_end = s.program_end();
            self.recorded += s.duration;
            lines.push(own);
        }
        let first_sequence = match (hole, after_hole) {
            (Some((first_missing, _)), true) => first_missing,
            _ => taken.first().map_or(self.last.wrapping_add(1), |s| s.media_sequence),
        };
        // The batch's own playlist starts at the recorded numbering, with what is in force before it.
        let mut text = self.header.clone();
        text.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{first_sequence}\n"));
        text.push_str(&format!("#EXT-X-DISCONTINUITY-SEQUENCE:{before_sequence}\n"));
        self.key_tags += lines.iter().map(|l| uri_keys(l)).sum::<u32>();
        let first_lines = lines.first().map_or("", String::as_str);
        let mut context_map = false;
        let mut key_base = new_keys_from;
        if !before_key.is_empty() && !first_lines.contains("#EXT-X-KEY:") {
            // The key in force is the recorded playlist's last key tags, repeated.
            key_base -= uri_keys(&before_key).min(key_base);
            text.push_str(&before_key);
        }
        if !before_map.is_empty() && !first_lines.contains("#EXT-X-MAP:") {
            text.push_str(&before_map);
            context_map = true;
        }
        for l in &lines {
            text.push_str(l);
        }
        if ended.is_some() {
            self.ended = ended;
        }
        Batch {
            text,
            context_map,
            lines,
            dates,
            start,
            hole: hole.filter(|_| after_hole),
            hole_span,
            hole_dates,
            key_base,
            new_keys_from,
            next: self.last.wrapping_add(1),
            ended,
        }
    }
}

/// The index in `playlist` of the first segment after the one named `uri`, numbered `sequence`: found by
/// its URI, whatever the numbers (a media sequence that jumped renumbers what follows); not found, the
/// numbers say. Also returns whether the segment was found by its URI.
fn after(playlist: &LivePlaylist, uri: &str, sequence: u64) -> (Option<usize>, bool) {
    let by_uri = playlist.segments.iter().position(|s| s.uri == uri).map(|i| i + 1);
    let first = by_uri
        .or_else(|| playlist.segments.iter().position(|s| s.media_sequence > sequence))
        .filter(|first| *first < playlist.segments.len());
    (first, by_uri.is_some())
}

/// Where a recording starts in `playlist` (fetched from `uri`) as `start` says: the index of its first
/// segment to record.
fn first_index(playlist: &LivePlaylist, start: LiveStart, uri: &str) -> Result<usize, Error> {
    let first = match start {
        LiveStart::Oldest => 0,
        LiveStart::Edge => {
            // The last segments that hold three target durations, as a player starts.
            let edge = playlist.target.as_secs_f64() * 3.0;
            let mut held = 0.0;
            let mut first = playlist.segments.len();
            while first > 0 && held < edge {
                first -= 1;
                held += playlist.segments[first].duration;
            }
            first
        }
        LiveStart::ProgramDateTime(at) => {
            let covers = |s: &Listed| {
                s.program_date_time.is_some_and(|t| t <= at) && s.program_end().is_some_and(|end| at < end)
            };
            match playlist.segments.iter().position(covers) {
                Some(first) => first,
                None => {
                    let first = playlist.segments.iter().find_map(|s| s.program_date_time);
                    let end = playlist.segments.iter().rev().find_map(Listed::program_end);
                    return Err(Error::LiveStartNotListed {
                        uri: uri.to_owned(),
                        at,
                        listed: first.zip(end),
                    });
                }
            }
        }
    };
    Ok(first)
}

/// The start every rendition of one recording shares, so that they cover the same span: a program date
/// time when every rendition's start has one, else a media sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    ProgramDateTime(SystemTime),
    MediaSequence(u64),
}

impl Anchor {
    /// The index of the segment of `playlist` where a rendition starts for this anchor: the one whose
    /// program date time covers it (or the first after it), or the first numbered from it on.
    fn index_in(self, playlist: &LivePlaylist) -> Option<usize> {
        match self {
            Self::ProgramDateTime(at) => playlist
                .segments
                .iter()
                .position(|s| s.program_end().is_some_and(|end| at < end) && s.program_date_time.is_some()),
            Self::MediaSequence(n) => playlist.segments.iter().position(|s| s.media_sequence >= n),
        }
    }
}

/// The start common to the renditions of one recording (`playlists`: each one's first playlist text and
/// URL), each read with `start`: the latest of their own starts, which every rendition's playlist lists
/// when their windows overlap. `None` for fewer than two renditions.
pub(crate) fn common_start(playlists: &[(&str, &str)], start: LiveStart) -> Result<Option<Anchor>, Error> {
    if playlists.len() < 2 {
        return Ok(None);
    }
    let mut dates = Vec::with_capacity(playlists.len());
    let mut numbers = Vec::with_capacity(playlists.len());
    for (text, uri) in playlists {
        let playlist = LivePlaylist::read(text, uri)?;
        let Some(segment) = playlist.segments.get(first_index(&playlist, start, uri)?) else {
            return Ok(None);
        };
        dates.push(segment.program_date_time);
        numbers.push(segment.media_sequence);
    }
    // Program date times are the renditions' common clock; numbers are common only by convention, as
    // RFC 8216bis asks of renditions of one presentation.
    if let Some(dates) = dates.into_iter().collect::<Option<Vec<SystemTime>>>() {
        return Ok(dates.into_iter().max().map(Anchor::ProgramDateTime));
    }
    Ok(numbers.into_iter().max().map(Anchor::MediaSequence))
}

/// How many `EXT-X-KEY` tags with a URI `text` holds.
fn uri_keys(text: &str) -> u32 {
    let count = text.lines().filter(|l| l.starts_with("#EXT-X-KEY:") && l.contains("URI=")).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// A program date as a playlist writes it (RFC 3339, UTC, milliseconds).
fn date_text(at: SystemTime) -> String {
    stowage_playlist::DateTime::from_system_time(at).to_string()
}

/// The plan entries of `batch`, one [`RecordedSegment`] per segment with its recorded lines, and their jobs
/// (placed on the recording's timeline), read as [`build_rendition`] reads a playlist. The batch's
/// playlist was fetched from `url`; `rendition` is the rendition's index in the task.
pub(crate) fn build_batch(
    wanted: &Wanted,
    rendition: usize,
    batch: &Batch,
    url: &str,
    key_policy: KeyPolicy,
) -> Result<BuiltBatch, Error> {
    let built = build_rendition(wanted, rendition, &batch.text, url, key_policy)?;
    // Keys to keep are numbered as the recorded playlist numbers them; those it held before are kept
    // already.
    let keys = built
        .keys
        .iter()
        .map(|(index, uri)| (index + batch.key_base, uri.clone()))
        .filter(|(index, _)| *index >= batch.new_keys_from)
        .collect();
    let mut entries = built.plan.segments;
    let mut jobs = built.jobs;
    if batch.context_map {
        // The map in force was written before this batch: its entry and job are the ones recorded then.
        if entries.first().is_some_and(|e| e.kind == SegmentKind::Init) {
            entries.remove(0);
        }
        if jobs.first().is_some_and(|j| j.init) {
            jobs.remove(0);
        }
    }
    let offset = Duration::try_from_secs_f64(batch.start.max(0.0)).unwrap_or(Duration::ZERO);
    // The media jobs are the batch's segments, in order.
    let mut dates = batch.dates.iter();
    for job in &mut jobs {
        job.start += offset;
        if !job.init {
            job.program_date_time = dates.next().copied().flatten();
        }
    }
    let mut segments = Vec::with_capacity(batch.lines.len());
    let mut lines = batch.lines.iter();
    let mut group = Vec::new();
    for entry in entries {
        let media = entry.kind == SegmentKind::Media;
        group.push(entry);
        if media {
            let Some(text) = lines.next() else { break };
            segments.push(RecordedSegment::new(std::mem::take(&mut group), text.clone()));
        }
    }
    if segments.len() != batch.lines.len() || !group.is_empty() {
        return Err(Error::Playlist {
            uri: url.to_owned(),
            message: format!(
                "{} segments were listed but {} could be planned",
                batch.lines.len(),
                segments.len()
            ),
            source: None,
        });
    }
    Ok(BuiltBatch { segments, jobs, keys })
}

/// What a batch adds to a recording: its plan entries with their lines, its jobs, and, when ciphertext is
/// kept, the keys it brings (numbered as the bundle numbers them, with their URIs).
pub(crate) struct BuiltBatch {
    pub(crate) segments: Vec<RecordedSegment>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) keys: Vec<(u32, String)>,
}

/// The jobs of the segments of an interrupted recording that are planned and not finished (a crash
/// came between the listing of a segment and the end of its fetch): one per entry of `entries` (the
/// rendition's plan, in order) for which `finished` says no, each read from the segment's lines in the
/// rendition's recorded playlist (`recorded`, whose URIs are relative to `url`) with the numbering, key
/// and map it was planned with, and placed where it was on the recording's timeline.
pub(crate) fn pending_jobs(
    wanted: &Wanted,
    rendition: usize,
    recorded: &str,
    url: &str,
    entries: &[PlannedSegment],
    key_policy: KeyPolicy,
    finished: impl Fn(&stowage_bundle::SegmentId) -> bool,
) -> Result<Vec<Job>, Error> {
    let playlist = LivePlaylist::read(recorded, url)?;
    let id: &RenditionId = &wanted.id;
    let mut listed = playlist.segments.iter();
    let mut jobs = Vec::new();
    let mut start = 0.0;
    let mut init: Option<&PlannedSegment> = None;
    let mut init_given = false;
    for entry in entries {
        if entry.kind == SegmentKind::Init {
            init = Some(entry);
            init_given = false;
            continue;
        }
        let Some(segment) = listed.next() else {
            return Err(Error::Playlist {
                uri: url.to_owned(),
                message: "the recorded playlist lists fewer segments than the bundle planned".to_owned(),
                source: None,
            });
        };
        let entry_start = start;
        start += entry.duration;
        let media_done = finished(&entry.id(id));
        let init_due = init.filter(|i| !init_given && !finished(&i.id(id)));
        if media_done && init_due.is_none() {
            continue;
        }
        // The segment alone, as it was planned: its numbering, the key and map in force, its own lines
        // without the discontinuity its numbering already counts.
        let mut text = playlist.header.clone();
        text.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", entry.media_sequence));
        text.push_str(&format!("#EXT-X-DISCONTINUITY-SEQUENCE:{}\n", entry.discontinuity_sequence));
        if !segment.lines.contains("#EXT-X-KEY:") {
            text.push_str(&segment.key);
        }
        if !segment.has_map {
            text.push_str(&segment.map);
        }
        for line in segment.lines.lines().filter(|l| *l != "#EXT-X-DISCONTINUITY") {
            text.push_str(line);
            text.push('\n');
        }
        let built = build_rendition(wanted, rendition, &text, url, key_policy)?;
        for mut job in built.jobs {
            if job.init {
                let Some(init) = init_due else { continue };
                job.ids = vec![init.id(id)];
                init_given = true;
            } else if job.key || media_done {
                continue;
            } else {
                job.ids = vec![entry.id(id)];
                job.start = Duration::try_from_secs_f64(entry_start.max(0.0)).unwrap_or(Duration::ZERO);
                job.program_date_time = segment.program_date_time;
            }
            jobs.push(job);
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlist(first: u64, count: u64, ended: bool) -> String {
        let mut text =
            format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for msn in first..first + count {
            text.push_str(&format!("#EXTINF:4.0,\nseg{msn}.ts\n"));
        }
        if ended {
            text.push_str("#EXT-X-ENDLIST\n");
        }
        text
    }

    fn sequences(batch: &Batch) -> Vec<String> {
        batch.lines.iter().map(|l| l.lines().last().unwrap_or_default().to_owned()).collect()
    }

    #[test]
    fn the_live_edge_holds_three_target_durations() {
        let (track, batch) =
            LiveTrack::start(&playlist(10, 6, false), "http://o/a.m3u8", LiveStart::Edge, None).unwrap();
        assert_eq!(sequences(&batch), ["seg13.ts", "seg14.ts", "seg15.ts"]);
        assert_eq!(batch.next, 16);
        assert!(batch.text.contains("#EXT-X-MEDIA-SEQUENCE:13\n"), "{}", batch.text);
        assert_eq!(track.recorded, 12.0);
        let (_, oldest) =
            LiveTrack::start(&playlist(10, 6, false), "http://o/a.m3u8", LiveStart::Oldest, None).unwrap();
        assert_eq!(oldest.lines.len(), 6);
    }

    #[test]
    fn reloads_bring_what_is_new_and_a_stale_copy_brings_nothing() {
        let (mut track, _) =
            LiveTrack::start(&playlist(10, 6, false), "http://o/a.m3u8", LiveStart::Edge, None).unwrap();
        let Update::New(batch) = track.reload(&playlist(12, 6, false), "http://o/a.m3u8").unwrap() else {
            panic!("new segments expected")
        };
        assert_eq!(sequences(&batch), ["seg16.ts", "seg17.ts"]);
        assert_eq!((batch.hole, batch.start), (None, 12.0));
        // An older copy, and a numbering that went back to zero, are not restarts.
        assert_eq!(track.reload(&playlist(9, 6, false), "http://o/a.m3u8").unwrap(), Update::Unchanged);
        assert_eq!(track.reload(&playlist(0, 6, false), "http://o/a.m3u8").unwrap(), Update::Unchanged);
        assert_eq!(track.reload(&playlist(12, 6, false), "http://o/a.m3u8").unwrap(), Update::Unchanged);
    }

    #[test]
    fn segments_that_left_unseen_are_a_hole_marked_by_a_discontinuity() {
        let (mut track, _) =
            LiveTrack::start(&playlist(10, 6, false), "http://o/a.m3u8", LiveStart::Edge, None).unwrap();
        let Update::New(batch) = track.reload(&playlist(30, 6, false), "http://o/a.m3u8").unwrap() else {
            panic!("new segments expected")
        };
        assert_eq!(batch.hole, Some((16, 29)));
        // The hole leads the batch as one EXT-X-GAP segment per missing segment, a target duration each
        // (the playlist gives no program dates), numbered as the source numbered them.
        assert_eq!(batch.lines.len(), 14 + 6, "{:?}", batch.lines);
        assert_eq!(batch.lines[0], "#EXT-X-GAP\n#EXTINF:4.00000,\nhole-16.ts\n");
        assert_eq!((batch.hole_span, batch.hole_dates, batch.start), (56.0, None, 12.0));
        assert!(batch.lines[14].starts_with("#EXT-X-DISCONTINUITY\n"), "{:?}", batch.lines);
        assert!(
            batch.text.contains("#EXT-X-MEDIA-SEQUENCE:16\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n"),
            "{}",
            batch.text
        );
        assert_eq!(track.recorded, 12.0 + 56.0 + 24.0);
        let Update::New(next) = track.reload(&playlist(31, 6, true), "http://o/a.m3u8").unwrap() else {
            panic!("new segments expected")
        };
        assert!(next.text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{}", next.text);
        assert_eq!((sequences(&next), next.ended), (vec!["seg36.ts".to_owned()], Some(Ended::EndList)));
    }

    #[test]
    fn a_hole_between_program_dates_has_their_span_and_the_media_after_it_its_date() {
        let dated = |first: u64| {
            let mut text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
            for msn in first..first + 4 {
                // Segments of 3 s, dated from noon at segment 0; only the first listed carries its date.
                if msn == first {
                    text.push_str(&format!(
                        "#EXT-X-PROGRAM-DATE-TIME:2026-03-01T12:{:02}:{:02}.000Z\n",
                        msn * 3 / 60,
                        msn * 3 % 60
                    ));
                }
                text.push_str(&format!("#EXTINF:3.0,\nseg{msn}.ts\n"));
            }
            text
        };
        let (mut track, _) = LiveTrack::start(&dated(0), "http://o/a.m3u8", LiveStart::Oldest, None).unwrap();
        let Update::New(batch) = track.reload(&dated(11), "http://o/a.m3u8").unwrap() else { panic!() };
        assert_eq!(batch.hole, Some((4, 10)));
        let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_366_400);
        assert_eq!(batch.hole_dates, Some((noon + Duration::from_secs(12), noon + Duration::from_secs(33))));
        assert_eq!((batch.start, batch.hole_span), (12.0, 21.0));
        assert!(
            batch.lines[0].starts_with("#EXT-X-PROGRAM-DATE-TIME:2026-03-01T12:00:12"),
            "{:?}",
            batch.lines[0]
        );
        assert!(batch.lines[0].contains("#EXT-X-GAP\n#EXTINF:3.00000,\n"), "{:?}", batch.lines[0]);
        // The media after the hole carries its own date (here the playlist's first), and a later one gets
        // none it did not have.
        assert!(
            batch.lines[7].starts_with("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-03-01T12:00:33"),
            "{:?}",
            batch.lines[7]
        );
        let Update::New(next) = track.reload(&dated(12), "http://o/a.m3u8").unwrap() else { panic!() };
        assert_eq!(next.lines, ["#EXTINF:3.0,\nseg15.ts\n"]);
        // After a hole where the next segment's date is not given, the date is the one counted on.
        let undated = |first: u64| {
            dated(first).lines().filter(|l| !l.starts_with("#EXT-X-PROGRAM")).collect::<Vec<_>>().join("\n")
        };
        let Update::New(after) = track.reload(&undated(30), "http://o/a.m3u8").unwrap() else { panic!() };
        assert_eq!((after.hole, after.hole_dates, after.hole_span), (Some((16, 29)), None, 14.0 * 4.0));
    }

    #[test]
    fn a_jump_in_numbering_is_no_hole() {
        let (mut track, _) =
            LiveTrack::start(&playlist(10, 6, false), "http://o/a.m3u8", LiveStart::Edge, None).unwrap();
        // The numbering jumped by 100 before segment 16: what was recorded is listed again under new numbers.
        let jumped = playlist(12, 5, false)
            .replace("MEDIA-SEQUENCE:12", "MEDIA-SEQUENCE:112")
            .replace("seg16.ts", "seg116.ts");
        let Update::New(batch) = track.reload(&jumped, "http://o/a.m3u8").unwrap() else {
            panic!("new segments expected")
        };
        assert_eq!((sequences(&batch), batch.hole, batch.next), (vec!["seg116.ts".to_owned()], None, 117));
        assert_eq!(track.reload(&jumped, "http://o/a.m3u8").unwrap(), Update::Unchanged);
    }

    #[test]
    fn the_key_and_map_in_force_are_written_once_and_given_to_later_batches() {
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                    #EXT-X-KEY:METHOD=AES-128,URI=\"k1\"\n";
        let first = format!("{head}#EXTINF:4,\na.m4s\n#EXTINF:4,\nb.m4s\n");
        let (mut track, batch) =
            LiveTrack::start(&first, "http://o/a.m3u8", LiveStart::Oldest, None).unwrap();
        assert!(batch.lines[0].contains("#EXT-X-MAP:") && batch.lines[0].contains("#EXT-X-KEY:"));
        assert!(!batch.context_map);
        let second = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:6\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                      #EXT-X-KEY:METHOD=AES-128,URI=\"k1\"\n#EXTINF:4,\nb.m4s\n\
                      #EXT-X-KEY:METHOD=AES-128,URI=\"k2\"\n#EXTINF:4,\nc.m4s\n";
        let Update::New(batch) = track.reload(second, "http://o/a.m3u8").unwrap() else { panic!() };
        assert_eq!(batch.lines, ["#EXT-X-KEY:METHOD=AES-128,URI=\"k2\"\n#EXTINF:4,\nc.m4s\n"]);
        // The map in force is given to the batch's own playlist for context; the new key is the segment's own.
        assert!(batch.context_map && !batch.text.contains("k1"), "{}", batch.text);
        let third = format!("{second}#EXTINF:4,\nd.m4s\n");
        let Update::New(batch) = track.reload(&third, "http://o/a.m3u8").unwrap() else { panic!() };
        assert_eq!(batch.lines, ["#EXTINF:4,\nd.m4s\n"]);
        assert!(
            batch.text.contains("URI=\"k2\"\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\nd.m4s"),
            "{}",
            batch.text
        );
    }

    #[test]
    fn a_program_date_time_starts_at_the_segment_that_covers_it() {
        // The first segment carries the date; the others follow from the durations.
        let text = playlist(10, 6, false).replacen(
            "#EXTINF:4.0,\nseg10.ts",
            "#EXT-X-PROGRAM-DATE-TIME:2026-03-01T12:00:00.000Z\n#EXTINF:4.0,\nseg10.ts",
            1,
        );
        let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_366_400);
        let at = |seconds: u64| LiveStart::ProgramDateTime(noon + Duration::from_secs(seconds));
        let (_, batch) = LiveTrack::start(&text, "http://o/a.m3u8", at(9), None).unwrap();
        assert_eq!(sequences(&batch), ["seg12.ts", "seg13.ts", "seg14.ts", "seg15.ts"]);
        let (_, batch) = LiveTrack::start(&text, "http://o/a.m3u8", at(8), None).unwrap();
        assert_eq!(sequences(&batch)[0], "seg12.ts", "a segment covers its start");
        // Before the window, and at the end of its last segment: not listed.
        for asked in [LiveStart::ProgramDateTime(noon - Duration::from_secs(1)), at(24)] {
            let Err(Error::LiveStartNotListed { listed, .. }) =
                LiveTrack::start(&text, "http://o/a.m3u8", asked, None)
            else {
                panic!("{asked:?} is not listed")
            };
            assert_eq!(listed, Some((noon, noon + Duration::from_secs(24))));
        }
        // A playlist without dates.
        let error = LiveTrack::start(&playlist(10, 6, false), "http://o/a.m3u8", at(9), None).unwrap_err();
        assert!(matches!(error, Error::LiveStartNotListed { listed: None, .. }), "{error}");
        assert!(error.to_string().contains("gives no program dates"), "{error}");
    }

    #[test]
    fn renditions_start_at_the_latest_of_their_starts_by_date_else_by_number() {
        let (video, audio) = (playlist(10, 6, false), playlist(12, 6, false));
        let anchor = common_start(&[(&video, "v"), (&audio, "a")], LiveStart::Edge).unwrap();
        assert_eq!(anchor, Some(Anchor::MediaSequence(15)));
        let mut track = LiveTrack::start_aligned(&video, "v", LiveStart::Edge, None, anchor).unwrap();
        let (batch, _) = track.release(None).unwrap();
        assert_eq!(sequences(&batch), ["seg15.ts"]);
        // With dates, the dates decide, whatever the numbers say.
        let dated = |text: &str, first: u64, date: &str| {
            text.replacen(
                &format!("#EXTINF:4.0,\nseg{first}.ts"),
                &format!("#EXT-X-PROGRAM-DATE-TIME:{date}\n#EXTINF:4.0,\nseg{first}.ts"),
                1,
            )
        };
        let video = dated(&video, 10, "2026-03-01T12:00:00Z");
        let audio = dated(&playlist(110, 6, false), 110, "2026-03-01T12:00:06Z");
        let anchor = common_start(&[(&video, "v"), (&audio, "a")], LiveStart::Oldest).unwrap();
        let mut track = LiveTrack::start_aligned(&video, "v", LiveStart::Oldest, None, anchor).unwrap();
        let (batch, _) = track.release(None).unwrap();
        assert_eq!(sequences(&batch)[0], "seg11.ts", "the segment that covers 12:00:06");
        assert_eq!(common_start(&[(&video, "v")], LiveStart::Edge).unwrap(), None);
    }

    #[test]
    fn renditions_record_up_to_the_end_every_one_listed_by_date_else_by_number() {
        let url = "http://o/a.m3u8";
        // The video's playlist lists one segment more than the audio's.
        let mut video =
            LiveTrack::start_aligned(&playlist(10, 6, false), url, LiveStart::Oldest, None, None).unwrap();
        let mut audio =
            LiveTrack::start_aligned(&playlist(10, 5, false), url, LiveStart::Oldest, None, None).unwrap();
        let end = common_end([&video, &audio]);
        assert_eq!(end, Some(CommonEnd::MediaSequence(14)));
        let (first, _) = video.release(end).unwrap();
        assert_eq!(sequences(&first).last().map(String::as_str), Some("seg14.ts"));
        assert_eq!(sequences(&audio.first_batch(end)).len(), 5);
        // What lies past it is held: a blocking reload asks for what follows it, and nothing is released
        // until the audio lists it.
        assert_eq!((video.next(), video.release(end)), (16, None));
        assert!(!audio.see(&playlist(10, 5, false), url).unwrap(), "nothing new");
        assert!(audio.see(&playlist(11, 6, false), url).unwrap());
        let end = common_end([&video, &audio]);
        assert_eq!(end, Some(CommonEnd::MediaSequence(15)));
        assert_eq!(sequences(&video.release(end).unwrap().0), ["seg15.ts"]);
        assert_eq!(sequences(&audio.release(end).unwrap().0), ["seg15.ts"]);
        // A stale copy replaces nothing held; a playlist that ended bounds nothing and is recorded whole.
        assert!(video.see(&playlist(12, 6, false), url).unwrap());
        assert!(!video.see(&playlist(11, 6, false), url).unwrap());
        assert!(video.see(&playlist(12, 7, true), url).unwrap());
        assert_eq!(common_end([&video, &audio]), Some(CommonEnd::MediaSequence(16)));
        let (last, _) = video.release(common_end([&video, &audio])).unwrap();
        assert_eq!((sequences(&last).len(), last.ended), (3, Some(Ended::EndList)));

        // With program dates, the dates decide: video segments of 4 s and audio segments of 3 s, from noon.
        let dated = |segment: f64, count: u64| {
            let mut text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n\
                            #EXT-X-PROGRAM-DATE-TIME:2026-03-01T12:00:00.000Z\n"
                .to_owned();
            for msn in 0..count {
                text.push_str(&format!("#EXTINF:{segment},\nseg{msn}.ts\n"));
            }
            text
        };
        let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_366_400);
        let mut video = LiveTrack::start_aligned(&dated(4.0, 5), url, LiveStart::Oldest, None, None).unwrap();
        let mut audio = LiveTrack::start_aligned(&dated(3.0, 5), url, LiveStart::Oldest, None, None).unwrap();
        let end = common_end([&video, &audio]);
        assert_eq!(end, Some(CommonEnd::ProgramDateTime(noon + Duration::from_secs(15))));
        // The video's fourth segment (12 s to 16 s) lies mostly before 15 s; its fifth does not.
        assert_eq!(sequences(&video.release(end).unwrap().0).len(), 4);
        assert_eq!(sequences(&audio.release(end).unwrap().0).len(), 5);
        // Renditions numbered apart (and without dates) do not wait for each other.
        let mut apart =
            LiveTrack::start_aligned(&playlist(1000, 6, false), url, LiveStart::Oldest, None, None).unwrap();
        let mut near =
            LiveTrack::start_aligned(&playlist(10, 6, false), url, LiveStart::Oldest, None, None).unwrap();
        assert_eq!(common_end([&apart, &near]), Some(CommonEnd::MediaSequence(15)));
        assert_eq!((apart.first_batch(None).lines.len(), near.first_batch(None).lines.len()), (6, 6));
        assert!(apart.see(&playlist(1001, 6, false), url).unwrap());
        assert!(apart.release(common_end([&apart, &near])).is_some());
        // Without a date in every rendition, the numbers decide.
        let mut undated =
            LiveTrack::start_aligned(&playlist(0, 3, false), url, LiveStart::Oldest, None, None).unwrap();
        assert_eq!(common_end([&video, &undated]), Some(CommonEnd::MediaSequence(2)));
        assert!(undated.release(None).is_some());
    }

    #[test]
    fn an_interrupted_recording_goes_on_from_its_last_segment_and_refetches_only_what_it_did_not_store() {
        let url = "http://o/a.m3u8";
        let (mut track, first) =
            LiveTrack::start(&playlist(10, 6, false), url, LiveStart::Oldest, None).unwrap();
        let Update::New(second) = track.reload(&playlist(12, 6, false), url).unwrap() else { panic!() };
        // What the bundle holds: the recorded playlist (the first batch's, then the lines appended) and
        // the plan's entries (without URIs, as journaled).
        let mut recorded = first.text;
        recorded.push_str(&second.lines.concat());
        let entries: Vec<PlannedSegment> =
            (10..18).map(|msn| PlannedSegment::media(0, msn, 4.0, "")).collect();
        // Killed; when it is taken up, the playlist has moved on past what it listed last.
        let mut resumed = LiveTrack::resume(&recorded, &entries, &playlist(20, 6, false), url, None).unwrap();
        let (batch, _) = resumed.release(None).expect("new segments");
        // It took the playlist read now: 32 s recorded before, the hole of 18 and 19, then 20 to 25.
        assert_eq!((resumed.next(), resumed.recorded), (26, 32.0 + 8.0 + 24.0));
        assert_eq!(batch.hole, Some((18, 19)));
        assert_eq!(
            sequences(&batch)[2..],
            ["seg20.ts", "seg21.ts", "seg22.ts", "seg23.ts", "seg24.ts", "seg25.ts"]
        );
        assert!(batch.text.contains("#EXT-X-MEDIA-SEQUENCE:18\n"), "{}", batch.text);
        // Segments 16 and 17 were listed and not stored: only they are fetched again, where they were.
        let wanted = crate::planning::wanted_for_media_playlist(url);
        let jobs = pending_jobs(&wanted, 0, &recorded, url, &entries, KeyPolicy::Decrypt, |id| {
            id.media_sequence < 16
        })
        .unwrap();
        let got: Vec<(u64, String, f64)> =
            jobs.iter().map(|j| (j.ids[0].media_sequence, j.uri.clone(), j.start.as_secs_f64())).collect();
        assert_eq!(
            got,
            [(16, "http://o/seg16.ts".to_owned(), 24.0), (17, "http://o/seg17.ts".to_owned(), 28.0)]
        );
        // A plan that does not match its recorded playlist is an error, not a guess.
        let error =
            LiveTrack::resume(&recorded, &entries[1..], &playlist(20, 6, false), url, None).unwrap_err();
        assert!(error.to_string().contains("lists 8 segments where the bundle planned 7"), "{error}");
        // A span already recorded is over at once.
        let mut done =
            LiveTrack::resume(&recorded, &entries, &playlist(20, 6, false), url, Some(30.0)).unwrap();
        assert!(done.is_ended() && done.release(None).is_none());
    }

    /// Two renditions of a recording killed and taken up: what each lists now is recorded up to the end
    /// every one listed, as at each reload, so that they go on covering the same span; what one lists past
    /// it is held for the next reload.
    #[test]
    fn renditions_taken_up_after_a_kill_record_up_to_the_end_every_one_listed() {
        let url = "http://o/a.m3u8";
        let (_, first) = LiveTrack::start(&playlist(10, 6, false), url, LiveStart::Oldest, None).unwrap();
        let entries: Vec<PlannedSegment> =
            (10..16).map(|msn| PlannedSegment::media(0, msn, 4.0, "")).collect();
        // The video's playlist read now lists two segments more than the audio's.
        let mut video = LiveTrack::resume(&first.text, &entries, &playlist(18, 6, false), url, None).unwrap();
        let mut audio = LiveTrack::resume(&first.text, &entries, &playlist(18, 4, false), url, None).unwrap();
        let end = common_end([&video, &audio]);
        let (v, _) = video.release(end).expect("video records");
        let (a, _) = audio.release(end).expect("audio records");
        assert_eq!((v.hole, a.hole), (Some((16, 17)), Some((16, 17))));
        assert_eq!(sequences(&v), sequences(&a));
        assert_eq!(sequences(&v).last().map(String::as_str), Some("seg21.ts"));
        // Video's 22 and 23 wait for the audio's next reload.
        assert_eq!(video.next(), 24);
        assert!(audio.see(&playlist(18, 6, false), url).unwrap());
        let end = common_end([&video, &audio]);
        let (v, _) = video.release(end).expect("the rest of video");
        let (a, _) = audio.release(end).expect("the rest of audio");
        assert_eq!(sequences(&v), ["seg22.ts", "seg23.ts"]);
        assert_eq!(sequences(&a), ["seg22.ts", "seg23.ts"]);
    }

    #[test]
    fn a_duration_limit_ends_with_the_segment_that_reaches_it() {
        let (track, batch) =
            LiveTrack::start(&playlist(10, 6, false), "http://o/a.m3u8", LiveStart::Oldest, Some(10.0))
                .unwrap();
        assert_eq!((batch.lines.len(), batch.ended, track.is_ended()), (3, Some(Ended::Duration), true));
    }
}
