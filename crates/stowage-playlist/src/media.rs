//! Media playlists: the model, its parser and its writer.

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, LimitKind, PlaylistKind, WarningKind};
use crate::options::ParserOptions;
use crate::parse::{Ctx, Fail, Lines, Parsed, header_start, is_header, is_master_tag, shorten, split_tag};
use crate::tags::{
    DateRange, Define, Key, Map, Part, PartInf, PreloadHint, RenditionReport, ServerControl, Skip, Start,
};
use crate::value::{ByteRange, DateTime, Decimal, parse_u64, push_u64};

/// EXT-X-PLAYLIST-TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaylistType {
    /// `EVENT`: segments are only added at the end.
    Event,
    /// `VOD`: the playlist never changes.
    Vod,
}

/// A tag of a media playlist other than #EXTINF and EXT-X-BYTERANGE (which belong to their [`Segment`]),
/// or a comment. Tags this crate does not know are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaTag<'a> {
    /// EXT-X-VERSION.
    Version(u64),
    /// EXT-X-TARGETDURATION (an integer unless a lenient parse accepted a decimal).
    TargetDuration(Decimal),
    /// EXT-X-MEDIA-SEQUENCE.
    MediaSequence(u64),
    /// EXT-X-DISCONTINUITY-SEQUENCE.
    DiscontinuitySequence(u64),
    /// EXT-X-PLAYLIST-TYPE.
    PlaylistType(PlaylistType),
    /// EXT-X-I-FRAMES-ONLY.
    IFramesOnly,
    /// EXT-X-INDEPENDENT-SEGMENTS.
    IndependentSegments,
    /// EXT-X-START.
    Start(Start<'a>),
    /// EXT-X-DEFINE.
    Define(Define<'a>),
    /// EXT-X-PART-INF.
    PartInf(PartInf<'a>),
    /// EXT-X-SERVER-CONTROL.
    ServerControl(ServerControl<'a>),
    /// EXT-X-SKIP.
    Skip(Skip<'a>),
    /// EXT-X-ENDLIST.
    EndList,
    /// EXT-X-DISCONTINUITY (applies to the segment it precedes).
    Discontinuity,
    /// EXT-X-GAP (the segment it precedes is missing).
    Gap,
    /// EXT-X-KEY (applies to every following segment until replaced).
    Key(Key<'a>),
    /// EXT-X-MAP (applies to every following segment until replaced).
    Map(Map<'a>),
    /// EXT-X-PROGRAM-DATE-TIME of the segment it precedes.
    ProgramDateTime(DateTime),
    /// EXT-X-DATERANGE.
    DateRange(DateRange<'a>),
    /// EXT-X-BITRATE (applies to following segments until replaced).
    Bitrate(u64),
    /// EXT-X-PART (a partial segment of the segment it precedes, or of the next one when after the last).
    Part(Part<'a>),
    /// EXT-X-PRELOAD-HINT.
    PreloadHint(PreloadHint<'a>),
    /// EXT-X-RENDITION-REPORT.
    RenditionReport(RenditionReport<'a>),
    /// A tag this crate does not know (or, after a lenient parse, a malformed one): the whole line.
    Unknown(Cow<'a, str>),
    /// A comment: the whole line, with its `#`.
    Comment(Cow<'a, str>),
}

fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

impl MediaTag<'_> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> MediaTag<'static> {
        match self {
            Self::Version(v) => MediaTag::Version(v),
            Self::TargetDuration(v) => MediaTag::TargetDuration(v),
            Self::MediaSequence(v) => MediaTag::MediaSequence(v),
            Self::DiscontinuitySequence(v) => MediaTag::DiscontinuitySequence(v),
            Self::PlaylistType(v) => MediaTag::PlaylistType(v),
            Self::IFramesOnly => MediaTag::IFramesOnly,
            Self::IndependentSegments => MediaTag::IndependentSegments,
            Self::Start(t) => MediaTag::Start(t.into_owned()),
            Self::Define(t) => MediaTag::Define(t.into_owned()),
            Self::PartInf(t) => MediaTag::PartInf(t.into_owned()),
            Self::ServerControl(t) => MediaTag::ServerControl(t.into_owned()),
            Self::Skip(t) => MediaTag::Skip(t.into_owned()),
            Self::EndList => MediaTag::EndList,
            Self::Discontinuity => MediaTag::Discontinuity,
            Self::Gap => MediaTag::Gap,
            Self::Key(t) => MediaTag::Key(t.into_owned()),
            Self::Map(t) => MediaTag::Map(t.into_owned()),
            Self::ProgramDateTime(d) => MediaTag::ProgramDateTime(d),
            Self::DateRange(t) => MediaTag::DateRange(t.into_owned()),
            Self::Bitrate(v) => MediaTag::Bitrate(v),
            Self::Part(t) => MediaTag::Part(t.into_owned()),
            Self::PreloadHint(t) => MediaTag::PreloadHint(t.into_owned()),
            Self::RenditionReport(t) => MediaTag::RenditionReport(t.into_owned()),
            Self::Unknown(s) => MediaTag::Unknown(owned(s)),
            Self::Comment(s) => MediaTag::Comment(owned(s)),
        }
    }

    /// Whether the tag applies to the segment that follows it (rather than to the whole playlist).
    pub fn is_segment_tag(&self) -> bool {
        matches!(
            self,
            Self::Discontinuity
                | Self::Gap
                | Self::Key(_)
                | Self::Map(_)
                | Self::ProgramDateTime(_)
                | Self::DateRange(_)
                | Self::Bitrate(_)
                | Self::Part(_)
        )
    }

    pub(crate) fn write(&self, out: &mut String) {
        let attrs = |out: &mut String, name: &str, list: &crate::attr::AttributeList<'_>| {
            out.push('#');
            out.push_str(name);
            out.push(':');
            list.write(out);
        };
        match self {
            Self::Version(v) => {
                out.push_str("#EXT-X-VERSION:");
                push_u64(out, *v);
            }
            Self::TargetDuration(d) => {
                out.push_str("#EXT-X-TARGETDURATION:");
                d.write(out);
            }
            Self::MediaSequence(v) => {
                out.push_str("#EXT-X-MEDIA-SEQUENCE:");
                push_u64(out, *v);
            }
            Self::DiscontinuitySequence(v) => {
                out.push_str("#EXT-X-DISCONTINUITY-SEQUENCE:");
                push_u64(out, *v);
            }
            Self::PlaylistType(PlaylistType::Event) => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT"),
            Self::PlaylistType(PlaylistType::Vod) => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD"),
            Self::IFramesOnly => out.push_str("#EXT-X-I-FRAMES-ONLY"),
            Self::IndependentSegments => out.push_str("#EXT-X-INDEPENDENT-SEGMENTS"),
            Self::Start(t) => attrs(out, Start::TAG, &t.attributes),
            Self::Define(t) => attrs(out, Define::TAG, &t.attributes),
            Self::PartInf(t) => attrs(out, PartInf::TAG, &t.attributes),
            Self::ServerControl(t) => attrs(out, ServerControl::TAG, &t.attributes),
            Self::Skip(t) => attrs(out, Skip::TAG, &t.attributes),
            Self::EndList => out.push_str("#EXT-X-ENDLIST"),
            Self::Discontinuity => out.push_str("#EXT-X-DISCONTINUITY"),
            Self::Gap => out.push_str("#EXT-X-GAP"),
            Self::Key(t) => attrs(out, Key::TAG, &t.attributes),
            Self::Map(t) => attrs(out, Map::TAG, &t.attributes),
            Self::ProgramDateTime(d) => {
                out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
                d.write(out);
            }
            Self::DateRange(t) => attrs(out, DateRange::TAG, &t.attributes),
            Self::Bitrate(v) => {
                out.push_str("#EXT-X-BITRATE:");
                push_u64(out, *v);
            }
            Self::Part(t) => attrs(out, Part::TAG, &t.attributes),
            Self::PreloadHint(t) => attrs(out, PreloadHint::TAG, &t.attributes),
            Self::RenditionReport(t) => attrs(out, RenditionReport::TAG, &t.attributes),
            Self::Unknown(s) | Self::Comment(s) => out.push_str(s),
        }
        out.push('\n');
    }
}

/// One media segment: its URI line, its #EXTINF and its EXT-X-BYTERANGE. The other tags before its URI
/// (keys, maps, dates, discontinuities, parts, unknown tags, comments) are in
/// [`MediaPlaylist::segment_tags`], in written order.
///
/// The layout is compact on purpose (a playlist of 100,000 segments is one allocation of about 88 bytes
/// per segment, plus a shared side list for the rare tags), so fields are reached through methods.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment<'a> {
    uri: Cow<'a, str>,
    title: Cow<'a, str>,
    // The duration's mantissa in the low 56 bits, its scale in the next 5 and the byte range kind in the
    // top 2 (0: no EXT-X-BYTERANGE, 1: length only, 2: length@offset): 80 bytes per segment instead of 88,
    // which is a tenth less memory written by the parser.
    packed: u64,
    range_length: u64,
    range_offset: u64,
    // The end of the tags before the #EXTINF and of all the segment's tags in the side list; they start
    // where the previous segment's end.
    tags_mid: u32,
    tags_end: u32,
}

const MANTISSA_BITS: u32 = 56;
const MANTISSA_MASK: u64 = (1 << MANTISSA_BITS) - 1;

/// Fits a duration into 56 bits of mantissa, dropping fractional digits of absurdly precise durations.
fn pack_duration(d: Decimal) -> u64 {
    let (mut m, mut scale) = (d.mantissa(), d.scale());
    while m > MANTISSA_MASK && scale > 0 {
        m /= 10;
        scale -= 1;
    }
    m.min(MANTISSA_MASK) | u64::from(scale) << MANTISSA_BITS
}

impl<'a> Segment<'a> {
    /// A segment with a URI and a duration, no title, no byte range and no tags. Durations are kept
    /// exactly up to 16 significant digits (more precise ones lose their last fractional digits).
    pub fn new(uri: impl Into<Cow<'a, str>>, duration: Decimal) -> Self {
        Self {
            uri: uri.into(),
            title: Cow::Borrowed(""),
            packed: pack_duration(duration),
            range_length: 0,
            range_offset: 0,
            tags_mid: 0,
            tags_end: 0,
        }
    }

    /// The URI line, as written (after variable substitution).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Replaces the URI.
    pub fn set_uri(&mut self, uri: impl Into<Cow<'a, str>>) {
        self.uri = uri.into();
    }

    /// The #EXTINF duration, exactly as written.
    pub fn duration(&self) -> Decimal {
        Decimal::new(self.packed & MANTISSA_MASK, (self.packed >> MANTISSA_BITS & 0x1F) as u8)
    }

    /// Replaces the duration.
    pub fn set_duration(&mut self, duration: Decimal) {
        self.packed = pack_duration(duration) | self.packed & !(MANTISSA_MASK | 0x1F << MANTISSA_BITS);
    }

    /// The #EXTINF title (empty when none).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Replaces the title.
    pub fn set_title(&mut self, title: impl Into<Cow<'a, str>>) {
        self.title = title.into();
    }

    fn range_kind(&self) -> u64 {
        self.packed >> 61
    }

    /// The EXT-X-BYTERANGE as written (the offset may be implicit; the resolved view computes it).
    pub fn byte_range(&self) -> Option<ByteRange> {
        match self.range_kind() {
            0 => None,
            1 => Some(ByteRange::new(self.range_length, None)),
            _ => Some(ByteRange::new(self.range_length, Some(self.range_offset))),
        }
    }

    /// Sets or removes the EXT-X-BYTERANGE.
    pub fn set_byte_range(&mut self, range: Option<ByteRange>) {
        let kind = match range {
            None => 0,
            Some(r) => {
                self.range_length = r.length;
                self.range_offset = r.offset.unwrap_or(0);
                if r.offset.is_some() { 2 } else { 1 }
            }
        };
        self.packed = self.packed & !(3 << 61) | kind << 61;
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Segment<'static> {
        Segment {
            uri: owned(self.uri),
            title: owned(self.title),
            packed: self.packed,
            range_length: self.range_length,
            range_offset: self.range_offset,
            tags_mid: self.tags_mid,
            tags_end: self.tags_end,
        }
    }

    fn write_inf(&self, out: &mut String) {
        out.push_str("#EXTINF:");
        self.duration().write(out);
        out.push(',');
        out.push_str(&self.title);
        out.push('\n');
    }

    fn write_range(&self, out: &mut String) {
        if let Some(r) = self.byte_range() {
            out.push_str("#EXT-X-BYTERANGE:");
            r.write(out);
            out.push('\n');
        }
    }
}

/// The tags written before one segment's URI, split around its #EXTINF.
#[derive(Debug, Clone, Copy)]
pub struct SegmentTags<'p, 'a> {
    /// Tags and comments before the #EXTINF.
    pub before: &'p [MediaTag<'a>],
    /// Tags and comments between the #EXTINF (and EXT-X-BYTERANGE) and the URI.
    pub after: &'p [MediaTag<'a>],
}

impl<'p, 'a> SegmentTags<'p, 'a> {
    /// All of them, in written order.
    pub fn iter(&self) -> impl Iterator<Item = &'p MediaTag<'a>> + use<'p, 'a> {
        self.before.iter().chain(self.after.iter())
    }
}

/// A media playlist: header tags, segments (with the tags before each), and the tags after the last
/// segment, everything in written order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MediaPlaylist<'a> {
    header: Vec<MediaTag<'a>>,
    segments: Vec<Segment<'a>>,
    tags: Vec<MediaTag<'a>>,
    trailer: Vec<MediaTag<'a>>,
}

impl<'a> MediaPlaylist<'a> {
    /// Parses a media playlist strictly.
    ///
    /// ```
    /// use stowage_playlist::MediaPlaylist;
    /// let text = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:5.5,\na.ts\n#EXT-X-ENDLIST\n";
    /// let playlist = MediaPlaylist::parse(text)?;
    /// assert_eq!(playlist.segments()[0].uri(), "a.ts");
    /// assert_eq!(playlist.to_string(), text);
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn parse<I: AsRef<[u8]> + ?Sized>(input: &'a I) -> Result<Self, Error> {
        Ok(Self::parse_with(input, &ParserOptions::default())?.playlist)
    }

    /// Parses a media playlist with options, returning the warnings of a lenient parse.
    pub fn parse_with<I: AsRef<[u8]> + ?Sized>(
        input: &'a I,
        options: &ParserOptions,
    ) -> Result<Parsed<Self>, Error> {
        parse_media(input.as_ref(), options)
    }

    /// An empty playlist (no header tags, no segments), to build one by hand.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tags before the first segment-level tag.
    pub fn header(&self) -> &[MediaTag<'a>] {
        &self.header
    }

    /// The header tags, for changing them.
    pub fn header_mut(&mut self) -> &mut Vec<MediaTag<'a>> {
        &mut self.header
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments
    }

    /// The segments, for changing their URI, duration, title or byte range. The tags before a segment
    /// stay where they are in the playlist: reordering segments does not move them.
    pub fn segments_mut(&mut self) -> &mut [Segment<'a>] {
        &mut self.segments
    }

    /// The tags written before segment `index`'s URI.
    pub fn segment_tags(&self, index: usize) -> SegmentTags<'_, 'a> {
        let (start, mid, end) = self.tag_bounds(index);
        SegmentTags { before: &self.tags[start..mid], after: &self.tags[mid..end] }
    }

    /// Where segment `index`'s tags are in the side list: start, #EXTINF position, end. Robust to
    /// segments swapped through [`MediaPlaylist::segments_mut`] (their tags then stay in place).
    pub(crate) fn tag_bounds(&self, index: usize) -> (usize, usize, usize) {
        let s = &self.segments[index];
        let end = (s.tags_end as usize).min(self.tags.len());
        let mid = (s.tags_mid as usize).min(end);
        let start = match index {
            0 => 0,
            _ => (self.segments[index - 1].tags_end as usize).min(mid),
        };
        (start, mid, end)
    }

    /// The tags written before segment `index`'s URI, for changing them in place.
    pub fn segment_tags_mut(&mut self, index: usize) -> &mut [MediaTag<'a>] {
        let (start, _, end) = self.tag_bounds(index);
        &mut self.tags[start..end]
    }

    /// The tags after the last segment's URI (EXT-X-ENDLIST, the parts of a segment not yet complete,
    /// preload hints, rendition reports...).
    pub fn trailer(&self) -> &[MediaTag<'a>] {
        &self.trailer
    }

    /// The trailing tags, for changing them.
    pub fn trailer_mut(&mut self) -> &mut Vec<MediaTag<'a>> {
        &mut self.trailer
    }

    /// Every tag in written order (header, each segment's, trailer), segments aside.
    pub fn tags(&self) -> impl Iterator<Item = &MediaTag<'a>> {
        self.header.iter().chain(self.tags.iter()).chain(self.trailer.iter())
    }

    /// Every tag in written order, for changing them in place.
    pub fn tags_mut(&mut self) -> impl Iterator<Item = &mut MediaTag<'a>> {
        self.header.iter_mut().chain(self.tags.iter_mut()).chain(self.trailer.iter_mut())
    }

    /// Appends a segment after the last one, with the tags to write before its #EXTINF. Tags already in
    /// the trailer stay after it.
    pub fn push_segment(&mut self, tags_before: Vec<MediaTag<'a>>, mut segment: Segment<'a>) {
        self.tags.extend(tags_before);
        segment.tags_mid = self.tags.len() as u32;
        segment.tags_end = segment.tags_mid;
        self.segments.push(segment);
    }

    /// Keeps only the tags for which `keep` is true; `keep` sees them in written order (header, each
    /// segment's, trailer).
    pub fn retain_tags(&mut self, mut keep: impl FnMut(&MediaTag<'a>) -> bool) {
        // Header, segment tags, trailer: the written order, which callers may rely on.
        self.header.retain(&mut keep);
        let old = std::mem::take(&mut self.tags);
        let mut kept = Vec::with_capacity(old.len());
        let mut bounds = Vec::with_capacity(old.len() + 1);
        for tag in old {
            bounds.push(kept.len() as u32);
            if keep(&tag) {
                kept.push(tag);
            }
        }
        bounds.push(kept.len() as u32);
        for s in &mut self.segments {
            s.tags_mid = bounds[(s.tags_mid as usize).min(bounds.len() - 1)];
            s.tags_end = bounds[(s.tags_end as usize).min(bounds.len() - 1)];
        }
        self.tags = kept;
        self.trailer.retain(&mut keep);
    }

    /// Removes every EXT-X-KEY: for content stored decrypted.
    pub fn remove_keys(&mut self) {
        self.retain_tags(|t| !matches!(t, MediaTag::Key(_)));
    }

    fn find<'s, T>(&'s self, f: impl Fn(&'s MediaTag<'a>) -> Option<T>) -> Option<T> {
        self.tags().find_map(f)
    }

    /// EXT-X-VERSION.
    pub fn version(&self) -> Option<u64> {
        self.find(|t| if let MediaTag::Version(v) = t { Some(*v) } else { None })
    }

    /// EXT-X-TARGETDURATION, as written.
    pub fn target_duration(&self) -> Option<Decimal> {
        self.find(|t| if let MediaTag::TargetDuration(v) = t { Some(*v) } else { None })
    }

    /// EXT-X-MEDIA-SEQUENCE, 0 when absent.
    pub fn media_sequence(&self) -> u64 {
        self.find(|t| if let MediaTag::MediaSequence(v) = t { Some(*v) } else { None }).unwrap_or(0)
    }

    /// EXT-X-DISCONTINUITY-SEQUENCE, 0 when absent.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.find(|t| if let MediaTag::DiscontinuitySequence(v) = t { Some(*v) } else { None }).unwrap_or(0)
    }

    /// EXT-X-PLAYLIST-TYPE.
    pub fn playlist_type(&self) -> Option<PlaylistType> {
        self.find(|t| if let MediaTag::PlaylistType(v) = t { Some(*v) } else { None })
    }

    /// Whether EXT-X-ENDLIST is present.
    pub fn is_ended(&self) -> bool {
        self.tags().any(|t| matches!(t, MediaTag::EndList))
    }

    /// Whether EXT-X-I-FRAMES-ONLY is present.
    pub fn is_i_frames_only(&self) -> bool {
        self.tags().any(|t| matches!(t, MediaTag::IFramesOnly))
    }

    /// Whether EXT-X-INDEPENDENT-SEGMENTS is present.
    pub fn has_independent_segments(&self) -> bool {
        self.tags().any(|t| matches!(t, MediaTag::IndependentSegments))
    }

    /// EXT-X-START.
    pub fn start(&self) -> Option<&Start<'a>> {
        self.find(|t| if let MediaTag::Start(v) = t { Some(v) } else { None })
    }

    /// EXT-X-PART-INF.
    pub fn part_inf(&self) -> Option<&PartInf<'a>> {
        self.find(|t| if let MediaTag::PartInf(v) = t { Some(v) } else { None })
    }

    /// EXT-X-SERVER-CONTROL.
    pub fn server_control(&self) -> Option<&ServerControl<'a>> {
        self.find(|t| if let MediaTag::ServerControl(v) = t { Some(v) } else { None })
    }

    /// EXT-X-SKIP.
    pub fn skip(&self) -> Option<&Skip<'a>> {
        self.find(|t| if let MediaTag::Skip(v) = t { Some(v) } else { None })
    }

    /// Every EXT-X-DEFINE.
    pub fn defines(&self) -> impl Iterator<Item = &Define<'a>> {
        self.tags().filter_map(|t| if let MediaTag::Define(v) = t { Some(v) } else { None })
    }

    /// Every EXT-X-DATERANGE, in order.
    pub fn date_ranges(&self) -> impl Iterator<Item = &DateRange<'a>> {
        self.tags().filter_map(|t| if let MediaTag::DateRange(v) = t { Some(v) } else { None })
    }

    /// Every EXT-X-PRELOAD-HINT.
    pub fn preload_hints(&self) -> impl Iterator<Item = &PreloadHint<'a>> {
        self.tags().filter_map(|t| if let MediaTag::PreloadHint(v) = t { Some(v) } else { None })
    }

    /// Every EXT-X-RENDITION-REPORT.
    pub fn rendition_reports(&self) -> impl Iterator<Item = &RenditionReport<'a>> {
        self.tags().filter_map(|t| if let MediaTag::RenditionReport(v) = t { Some(v) } else { None })
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> MediaPlaylist<'static> {
        MediaPlaylist {
            header: self.header.into_iter().map(MediaTag::into_owned).collect(),
            segments: self.segments.into_iter().map(Segment::into_owned).collect(),
            tags: self.tags.into_iter().map(MediaTag::into_owned).collect(),
            trailer: self.trailer.into_iter().map(MediaTag::into_owned).collect(),
        }
    }

    /// Writes the playlist (LF line ends) to `out`.
    pub fn write_to(&self, out: &mut String) {
        out.reserve(64 + self.segments.len() * (self.segments.first().map_or(0, |s| s.uri.len()) + 48));
        out.push_str("#EXTM3U\n");
        for t in &self.header {
            t.write(out);
        }
        for (i, s) in self.segments.iter().enumerate() {
            let (start, mid, end) = self.tag_bounds(i);
            for t in &self.tags[start..mid] {
                t.write(out);
            }
            s.write_inf(out);
            let after = &self.tags[mid..end];
            // Leniently, of two EXT-X-BYTERANGE the later applies and the earlier is kept verbatim. When
            // such a line stands after the #EXTINF, the applied range is written after it, just before
            // the URI, so that a second reading picks the same one. Otherwise the canonical place is
            // right after the #EXTINF.
            let range_last = after.iter().any(
                |t| matches!(t, MediaTag::Unknown(line) if line.trim_start().starts_with("#EXT-X-BYTERANGE")),
            );
            if !range_last {
                s.write_range(out);
            }
            for t in after {
                t.write(out);
            }
            if range_last {
                s.write_range(out);
            }
            out.push_str(&s.uri);
            out.push('\n');
        }
        for t in &self.trailer {
            t.write(out);
        }
    }

    pub(crate) fn side_tags_mut(&mut self) -> (&mut [Segment<'a>], &mut [MediaTag<'a>]) {
        (&mut self.segments, &mut self.tags)
    }
}

impl fmt::Display for MediaPlaylist<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

/// State of the segment being read (tags seen since the previous URI).
#[derive(Default)]
struct Pending<'a> {
    inf: Option<(Decimal, Cow<'a, str>)>,
    inf_line: usize,
    inf_text: Cow<'a, str>,
    range: Option<ByteRange>,
    range_text: &'a str,
    /// Where in the side list the pending EXT-X-BYTERANGE was read.
    range_at: u32,
    /// The line it was read on: with no tag between it and the #EXTINF, both stand at the same place in
    /// the side list, and only their lines tell which came first.
    range_line: usize,
    mid: Option<u32>,
}

impl<'a> Pending<'a> {
    /// Lenient parsing: an #EXTINF that gets no URI is kept verbatim where it was, as an unknown line,
    /// so that nothing is lost and no segment is invented.
    fn demote_inf(&mut self, ctx: &mut Ctx<'a, '_>, tags: &mut Vec<MediaTag<'a>>, expected: &'static str) {
        if self.inf.take().is_some() {
            let at = self.mid.take().map_or(tags.len(), |m| m as usize);
            ctx.warn_at(
                self.inf_line,
                1,
                WarningKind::MalformedTag { tag: String::from("EXTINF"), expected },
            );
            tags.insert(at, MediaTag::Unknown(std::mem::take(&mut self.inf_text)));
            let range_at = self.range_at as usize;
            if self.range.is_some() && (range_at > at || (range_at == at && self.range_line > self.inf_line))
            {
                self.range_at += 1;
            }
        }
    }

    /// Lenient parsing: an EXT-X-BYTERANGE that gets no URI is kept verbatim where it was.
    fn demote_range(&mut self, ctx: &mut Ctx<'a, '_>, tags: &mut Vec<MediaTag<'a>>) {
        if self.range.take().is_some() {
            let at = (self.range_at as usize).min(tags.len());
            ctx.warn(
                1,
                WarningKind::MalformedTag {
                    tag: String::from("EXT-X-BYTERANGE"),
                    expected: "a segment URI line after it",
                },
            );
            tags.insert(at, MediaTag::Unknown(Cow::Borrowed(self.range_text)));
            let before_inf = self.range_line < self.inf_line;
            if let Some(mid) =
                self.mid.as_mut().filter(|m| **m as usize > at || (**m as usize == at && before_inf))
            {
                *mid += 1;
            }
        }
    }
}

fn parse_media<'a>(input: &'a [u8], opts: &ParserOptions) -> Result<Parsed<MediaPlaylist<'a>>, Error> {
    let mut ctx = Ctx::new(opts);
    let start = header_start(input, &mut ctx)?;
    let mut lines = Lines::new(input, start, opts);
    let mut pl = MediaPlaylist::default();

    // Every segment has exactly one URI line, so counting the lines that start with neither `#` nor a
    // line end bounds the segment count from above (exactly, for a well-formed playlist). One memchr pass
    // is far cheaper than growing the segment vector, and reserving exactly keeps the peak heap at the
    // final size instead of the 1.5x to 2x of a doubling growth.
    let body = &input[start..];
    let is_uri_start = |b: Option<&u8>| !matches!(b, None | Some(b'#' | b'\n' | b'\r'));
    let expected = usize::from(is_uri_start(body.first()))
        + memchr::memchr_iter(b'\n', body).filter(|&i| is_uri_start(body.get(i + 1))).count();
    if expected > opts.limits.max_segments {
        return Err(Error::Limit { limit: LimitKind::Segments, max: opts.limits.max_segments, line: 0 });
    }
    pl.segments.reserve_exact(expected);

    let mut first = true;
    let mut in_header = true;
    let mut pending = Pending::default();
    let mut seg_start: u32 = 0;
    let mut target_seen = false;
    let mut seen = 0u32;

    while let Some(line) = lines.next_line(&mut ctx)? {
        ctx.line = line.number;
        let text = match line.text {
            Ok(t) => t,
            Err(bytes) => {
                // Invalid UTF-8 is tolerated only inside an #EXTINF title.
                if opts.invalid_utf8_in_title && bytes.starts_with(b"#EXTINF:") {
                    let comma = memchr::memchr(b',', bytes);
                    let valid = comma.and_then(|c| std::str::from_utf8(&bytes[..c]).ok());
                    if let (Some(c), Some(head)) = (comma, valid) {
                        ctx.line_text = head;
                        ctx.warn(c + 2, WarningKind::InvalidUtf8InTitle);
                        let title = Cow::Owned(String::from_utf8_lossy(&bytes[c + 1..]).into_owned());
                        let d = parse_duration(&mut ctx, &head[8..])?;
                        if pending.inf.is_some() {
                            if !opts.malformed_tags {
                                return Err(ctx.syntax(1, "a URI line before the next #EXTINF"));
                            }
                            pending.demote_inf(&mut ctx, &mut pl.tags, "a URI line before the next #EXTINF");
                        }
                        pending.inf = Some((d, title));
                        pending.inf_line = ctx.line;
                        pending.inf_text = String::from_utf8_lossy(bytes);
                        pending.mid = Some(pl.tags.len() as u32);
                        in_header = false;
                        continue;
                    }
                }
                let valid_up_to = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
                return Err(Error::Syntax {
                    line: ctx.line,
                    column: valid_up_to + 1,
                    expected: "valid UTF-8",
                    context: shorten(&String::from_utf8_lossy(bytes)),
                });
            }
        };
        ctx.line_text = text;
        if first {
            first = false;
            if is_header(text, &mut ctx) {
                continue;
            }
            if !opts.missing_header {
                return Err(ctx.syntax(1, "#EXTM3U on the first line"));
            }
            ctx.warn(1, WarningKind::MissingHeader);
        }
        // Leading whitespace is trimmed before the line is classified, so that `  #EXTINF` stays a tag
        // and is never taken for a URI that would read back as a tag.
        let text = if opts.whitespace && matches!(text.as_bytes().first(), Some(b' ' | b'\t')) {
            ctx.warn(1, WarningKind::Whitespace);
            text.trim_start_matches([' ', '\t'])
        } else {
            text
        };
        let b = text.as_bytes();
        if b.is_empty() {
            continue;
        }
        if b[0] == b'#' {
            // The hot lines first, recognised by their prefix without a general tag dispatch.
            if let Some(rest) = text.strip_prefix("#EXTINF:") {
                in_header = false;
                if pending.inf.is_some() {
                    if !opts.malformed_tags {
                        return Err(ctx.syntax(1, "a URI line before the next #EXTINF"));
                    }
                    pending.demote_inf(&mut ctx, &mut pl.tags, "a URI line before the next #EXTINF");
                }
                // The duration is a few bytes: a plain scan beats a vectorised search here.
                let (dur, title) = match rest.bytes().position(|c| c == b',') {
                    Some(c) => (&rest[..c], &rest[c + 1..]),
                    None => {
                        if !opts.missing_extinf_comma {
                            return Err(ctx.syntax(text.len() + 1, "',' after the #EXTINF duration"));
                        }
                        ctx.warn(text.len() + 1, WarningKind::MissingExtinfComma);
                        (rest, "")
                    }
                };
                let d = match parse_duration(&mut ctx, dur) {
                    Ok(d) => d,
                    Err(Error::Syntax { column, expected, .. }) if opts.malformed_tags => {
                        // Kept verbatim; the URI line after it is then kept verbatim too.
                        ctx.warn(column, WarningKind::MalformedTag { tag: String::from("EXTINF"), expected });
                        ctx.count_tag()?;
                        pl.tags.push(MediaTag::Unknown(Cow::Borrowed(text)));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                pending.inf = Some((d, Cow::Borrowed(title)));
                pending.inf_line = ctx.line;
                pending.inf_text = Cow::Borrowed(text);
                pending.mid = Some(pl.tags.len() as u32);
                continue;
            }
            if let Some(rest) = text.strip_prefix("#EXT-X-BYTERANGE:") {
                // The header does not end here: the writer puts EXT-X-BYTERANGE after the #EXTINF, so
                // the lines read between the two must stay where a second reading puts them.
                let value = trim_or_fail(&mut ctx, rest)?;
                let fail = match ByteRange::parse(value) {
                    Some(r) if pending.range.is_none() || opts.malformed_tags => {
                        // Leniently, of two the later applies and the earlier is kept verbatim where it
                        // was, as with two #EXTINF: the written playlist then reads back the same.
                        pending.demote_range(&mut ctx, &mut pl.tags);
                        pending.range = Some(r);
                        pending.range_text = text;
                        pending.range_at = pl.tags.len() as u32;
                        pending.range_line = ctx.line;
                        continue;
                    }
                    Some(_) => Fail::Tag { column: 1, expected: "one EXT-X-BYTERANGE per segment" },
                    None => Fail::Tag { column: ctx.column_of(value), expected: "a byte range <n>[@<o>]" },
                };
                ctx.count_tag()?;
                let kept = ctx.tolerate(fail, "EXT-X-BYTERANGE")?;
                pl.tags.push(MediaTag::Unknown(kept));
                continue;
            }
            ctx.count_tag()?;
            let tag = if let Some(rest) = text.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                match trim_or_fail(&mut ctx, rest).map(|t| DateTime::read(t).ok()) {
                    Ok(Some(d)) => MediaTag::ProgramDateTime(d),
                    Ok(None) => MediaTag::Unknown(ctx.tolerate(
                        Fail::Tag { column: ctx.column_of(rest), expected: "an RFC 3339 date" },
                        "EXT-X-PROGRAM-DATE-TIME",
                    )?),
                    Err(e) => return Err(e),
                }
            } else if b.starts_with(b"#EXT") {
                let (name, value) = split_tag(text);
                match media_tag(&mut ctx, name, value) {
                    Ok(Some(tag)) => tag,
                    Ok(None) => {
                        // A second #EXTM3U: harmless, but not canonical; kept as an unknown line.
                        MediaTag::Unknown(Cow::Borrowed(text))
                    }
                    Err(fail) => MediaTag::Unknown(ctx.tolerate(fail, name)?),
                }
            } else {
                MediaTag::Comment(Cow::Borrowed(text))
            };
            // Playlist-level tags may appear once (RFC 8216 4.4.3): a second one is an error, or, leniently,
            // kept verbatim so that the first one stays the one reported.
            let tag = match singleton(&tag) {
                Some((bit, name)) if seen & bit != 0 => {
                    let fail = Fail::Tag { column: 1, expected: "at most one such tag per playlist" };
                    MediaTag::Unknown(ctx.tolerate(fail, name)?)
                }
                Some((bit, _)) => {
                    seen |= bit;
                    tag
                }
                None => tag,
            };
            if let MediaTag::TargetDuration(_) = tag {
                target_seen = true;
            }
            if tag.is_segment_tag() {
                in_header = false;
            }
            if in_header {
                pl.header.push(tag);
            } else {
                pl.tags.push(tag);
            }
            continue;
        }
        // A URI line.
        let uri = if matches!(b[0], b' ' | b'\t') || matches!(b[b.len() - 1], b' ' | b'\t') {
            if !opts.whitespace {
                return Err(ctx.syntax(1, "a URI line without surrounding whitespace"));
            }
            let t = text.trim_matches([' ', '\t']);
            ctx.warn(1, WarningKind::Whitespace);
            if t.is_empty() {
                continue;
            }
            t
        } else {
            text
        };
        let Some((duration, title)) = pending.inf.take() else {
            if !opts.malformed_tags {
                return Err(ctx.syntax(1, "#EXTINF before the segment URI"));
            }
            // Not a segment: without a duration it cannot be one, and inventing one is worse.
            ctx.warn(1, WarningKind::StrayUri);
            ctx.count_tag()?;
            in_header = false;
            pl.tags.push(MediaTag::Unknown(Cow::Borrowed(text)));
            continue;
        };
        if pl.segments.len() >= opts.limits.max_segments {
            return Err(Error::Limit {
                limit: LimitKind::Segments,
                max: opts.limits.max_segments,
                line: ctx.line,
            });
        }
        let uri = if ctx.has_defines { ctx.substitute(uri)? } else { Cow::Borrowed(uri) };
        let tags_end = pl.tags.len() as u32;
        let mut seg = Segment {
            uri,
            title,
            packed: pack_duration(duration),
            range_length: 0,
            range_offset: 0,
            tags_mid: pending.mid.take().unwrap_or(seg_start),
            tags_end,
        };
        if let Some(r) = pending.range.take() {
            seg.set_byte_range(Some(r));
        }
        seg_start = tags_end;
        pl.segments.push(seg);
        in_header = false;
    }
    if first {
        if !opts.missing_header {
            return Err(Error::Syntax {
                line: 1,
                column: 1,
                expected: "#EXTM3U on the first line",
                context: String::new(),
            });
        }
        ctx.warn_at(1, 1, WarningKind::MissingHeader);
    }
    if opts.malformed_tags {
        // Both are put back where they were read, so that the written playlist keeps the order.
        pending.demote_range(&mut ctx, &mut pl.tags);
        pending.demote_inf(&mut ctx, &mut pl.tags, "a segment URI line after #EXTINF");
    }
    if pending.inf.is_some() || pending.range.is_some() {
        let line = if pending.inf.is_some() { pending.inf_line } else { ctx.line };
        return Err(Error::Syntax {
            line,
            column: 1,
            expected: "a segment URI line after #EXTINF",
            context: String::from("#EXTINF"),
        });
    }
    pl.trailer = pl.tags.split_off(seg_start as usize);
    if !target_seen {
        if !opts.malformed_tags {
            return Err(Error::Syntax {
                line: 1,
                column: 1,
                expected: "an EXT-X-TARGETDURATION tag (required in a media playlist)",
                context: String::from("#EXTM3U"),
            });
        }
        ctx.warn_at(
            1,
            1,
            WarningKind::MalformedTag {
                tag: String::from("EXT-X-TARGETDURATION"),
                expected: "the required tag",
            },
        );
    }
    let variables = ctx.variables();
    Ok(Parsed { playlist: pl, warnings: ctx.warnings, variables })
}

/// For the tags a playlist may hold only once: a bit to track them and their name.
fn singleton(tag: &MediaTag<'_>) -> Option<(u32, &'static str)> {
    Some(match tag {
        MediaTag::Version(_) => (1, "EXT-X-VERSION"),
        MediaTag::TargetDuration(_) => (2, "EXT-X-TARGETDURATION"),
        MediaTag::MediaSequence(_) => (4, "EXT-X-MEDIA-SEQUENCE"),
        MediaTag::DiscontinuitySequence(_) => (8, "EXT-X-DISCONTINUITY-SEQUENCE"),
        MediaTag::PlaylistType(_) => (16, "EXT-X-PLAYLIST-TYPE"),
        MediaTag::IFramesOnly => (32, "EXT-X-I-FRAMES-ONLY"),
        MediaTag::Start(_) => (64, "EXT-X-START"),
        MediaTag::PartInf(_) => (128, "EXT-X-PART-INF"),
        MediaTag::ServerControl(_) => (256, "EXT-X-SERVER-CONTROL"),
        MediaTag::Skip(_) => (512, "EXT-X-SKIP"),
        MediaTag::EndList => (1024, "EXT-X-ENDLIST"),
        _ => return None,
    })
}

fn trim_or_fail<'a>(ctx: &mut Ctx<'a, '_>, value: &'a str) -> Result<&'a str, Error> {
    match ctx.trim_value(value) {
        Ok(v) => Ok(v),
        Err(Fail::Tag { column, expected }) => Err(ctx.syntax(column, expected)),
        Err(Fail::Hard(e)) => Err(e),
    }
}

fn parse_duration<'a>(ctx: &mut Ctx<'a, '_>, text: &'a str) -> Result<Decimal, Error> {
    let value = trim_or_fail(ctx, text)?;
    Decimal::parse(value).ok_or_else(|| ctx.syntax(ctx.column_of(value), "a non-negative decimal duration"))
}

fn no_value(value: Option<&str>, ctx: &Ctx<'_, '_>) -> Result<(), Fail> {
    match value {
        None => Ok(()),
        Some(v) => Err(Fail::Tag { column: ctx.column_of(v) - 1, expected: "no value after this tag" }),
    }
}

fn int_value<'a>(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<u64, Fail> {
    let Some(v) = value else {
        return Err(Fail::Tag { column: ctx.line_text.len() + 1, expected: "':' and a decimal-integer" });
    };
    let v = ctx.trim_value(v)?;
    parse_u64(v).ok_or_else(|| Fail::Tag { column: ctx.column_of(v), expected: "a decimal-integer" })
}

fn attr_value<'a>(ctx: &Ctx<'a, '_>, value: Option<&'a str>) -> Result<&'a str, Fail> {
    value.ok_or(Fail::Tag { column: ctx.line_text.len() + 1, expected: "':' and an attribute list" })
}

/// Parses one media playlist tag other than the hot ones. `Ok(None)` for a repeated `#EXTM3U`.
fn media_tag<'a>(
    ctx: &mut Ctx<'a, '_>,
    name: &'a str,
    value: Option<&'a str>,
) -> Result<Option<MediaTag<'a>>, Fail> {
    let tag = match name {
        "EXT-X-VERSION" => MediaTag::Version(int_value(ctx, value)?),
        "EXT-X-TARGETDURATION" => {
            let Some(v) = value else {
                return Err(Fail::Tag {
                    column: ctx.line_text.len() + 1,
                    expected: "':' and a decimal-integer",
                });
            };
            let v = ctx.trim_value(v)?;
            let column = ctx.column_of(v);
            match Decimal::parse(v) {
                Some(d) if d.scale() == 0 => MediaTag::TargetDuration(d),
                Some(d) if ctx.opts.decimal_target_duration => {
                    ctx.warn(column, WarningKind::DecimalTargetDuration);
                    MediaTag::TargetDuration(d)
                }
                _ => return Err(Fail::Tag { column, expected: "a decimal-integer" }),
            }
        }
        "EXT-X-MEDIA-SEQUENCE" => MediaTag::MediaSequence(int_value(ctx, value)?),
        "EXT-X-DISCONTINUITY-SEQUENCE" => MediaTag::DiscontinuitySequence(int_value(ctx, value)?),
        "EXT-X-BITRATE" => MediaTag::Bitrate(int_value(ctx, value)?),
        "EXT-X-PLAYLIST-TYPE" => {
            let v = ctx.trim_value(attr_value(ctx, value)?)?;
            match v {
                "EVENT" => MediaTag::PlaylistType(PlaylistType::Event),
                "VOD" => MediaTag::PlaylistType(PlaylistType::Vod),
                _ => return Err(Fail::Tag { column: ctx.column_of(v), expected: "EVENT or VOD" }),
            }
        }
        "EXT-X-I-FRAMES-ONLY" => {
            no_value(value, ctx)?;
            MediaTag::IFramesOnly
        }
        "EXT-X-INDEPENDENT-SEGMENTS" => {
            no_value(value, ctx)?;
            MediaTag::IndependentSegments
        }
        "EXT-X-ENDLIST" => {
            no_value(value, ctx)?;
            MediaTag::EndList
        }
        "EXT-X-DISCONTINUITY" => {
            no_value(value, ctx)?;
            MediaTag::Discontinuity
        }
        "EXT-X-GAP" => {
            no_value(value, ctx)?;
            MediaTag::Gap
        }
        "EXT-X-START" => {
            MediaTag::Start(Start { attributes: ctx.attributes(attr_value(ctx, value)?, &Start::SPEC)? })
        }
        "EXT-X-DEFINE" => {
            let v = attr_value(ctx, value)?;
            let d = Define { attributes: ctx.attributes(v, &Define::SPEC)? };
            ctx.define(&d, ctx.column_of(v))?;
            MediaTag::Define(d)
        }
        "EXT-X-PART-INF" => MediaTag::PartInf(PartInf {
            attributes: ctx.attributes(attr_value(ctx, value)?, &PartInf::SPEC)?,
        }),
        "EXT-X-SERVER-CONTROL" => MediaTag::ServerControl(ServerControl {
            attributes: ctx.attributes(attr_value(ctx, value)?, &ServerControl::SPEC)?,
        }),
        "EXT-X-SKIP" => {
            MediaTag::Skip(Skip { attributes: ctx.attributes(attr_value(ctx, value)?, &Skip::SPEC)? })
        }
        "EXT-X-KEY" => {
            let v = attr_value(ctx, value)?;
            let key = Key { attributes: ctx.attributes(v, &Key::SPEC)? };
            check_key(&key, ctx.column_of(v))?;
            MediaTag::Key(key)
        }
        "EXT-X-MAP" => {
            MediaTag::Map(Map { attributes: ctx.attributes(attr_value(ctx, value)?, &Map::SPEC)? })
        }
        "EXT-X-DATERANGE" => MediaTag::DateRange(DateRange {
            attributes: ctx.attributes(attr_value(ctx, value)?, &DateRange::SPEC)?,
        }),
        "EXT-X-PART" => {
            MediaTag::Part(Part { attributes: ctx.attributes(attr_value(ctx, value)?, &Part::SPEC)? })
        }
        "EXT-X-PRELOAD-HINT" => MediaTag::PreloadHint(PreloadHint {
            attributes: ctx.attributes(attr_value(ctx, value)?, &PreloadHint::SPEC)?,
        }),
        "EXT-X-RENDITION-REPORT" => MediaTag::RenditionReport(RenditionReport {
            attributes: ctx.attributes(attr_value(ctx, value)?, &RenditionReport::SPEC)?,
        }),
        "EXTM3U" => return Ok(None),
        _ if is_master_tag(name) => {
            if ctx.opts.malformed_tags {
                ctx.warn(1, WarningKind::WrongKindTag { tag: name.to_owned() });
                MediaTag::Unknown(Cow::Borrowed(ctx.line_text))
            } else {
                return Err(Fail::Hard(Error::WrongKind {
                    expected: PlaylistKind::Media,
                    line: ctx.line,
                    tag: name.to_owned(),
                }));
            }
        }
        _ => MediaTag::Unknown(Cow::Borrowed(ctx.line_text)),
    };
    Ok(Some(tag))
}

/// A key other than NONE needs a URI; NONE takes no other attribute.
pub(crate) fn check_key(key: &Key<'_>, column: usize) -> Result<(), Fail> {
    let none = key.method_text() == Some("NONE");
    if !none && key.uri().is_none() {
        return Err(Fail::Tag { column, expected: "the required attribute URI (METHOD is not NONE)" });
    }
    if none && key.attributes().len() > 1 {
        return Err(Fail::Tag { column, expected: "no attribute other than METHOD=NONE" });
    }
    Ok(())
}
