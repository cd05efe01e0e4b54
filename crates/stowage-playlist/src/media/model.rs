//! The media playlist model: header tags, segments in compact records, the side list of the tags written
//! before each segment, and the trailer. Reading is in [`reader`](super::reader), writing in
//! [`writer`](super::writer).

use std::borrow::Cow;

use crate::tags::MediaTag;
use crate::tags::attribute::{
    DateRange, Define, PartInf, PreloadHint, RenditionReport, ServerControl, Skip, Start,
};
use crate::tags::value::PlaylistType;
use crate::value::{ByteRange, Decimal};

fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

/// One media segment: its URI line, its #EXTINF and its EXT-X-BYTERANGE. The other tags before its URI
/// (keys, maps, dates, discontinuities, parts, unknown tags, comments) are in
/// [`MediaPlaylist::segment_tags`], in written order.
///
/// The layout is compact on purpose (a playlist of 100,000 segments is one allocation of about 88 bytes
/// per segment, plus a shared side list for the rare tags), so fields are reached through methods.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment<'a> {
    pub(super) uri: Cow<'a, str>,
    pub(super) title: Cow<'a, str>,
    // The duration's mantissa in the low 56 bits, its scale in the next 5 and the byte range kind in the
    // top 2 (0: no EXT-X-BYTERANGE, 1: length only, 2: length@offset): 80 bytes per segment instead of 88,
    // which is a tenth less memory written by the parser.
    pub(super) packed: u64,
    pub(super) range_length: u64,
    pub(super) range_offset: u64,
    // The end of the tags before the #EXTINF and of all the segment's tags in the side list; they start
    // where the previous segment's end.
    pub(super) tags_mid: u32,
    pub(super) tags_end: u32,
}

const MANTISSA_BITS: u32 = 56;
const MANTISSA_MASK: u64 = (1 << MANTISSA_BITS) - 1;

/// Fits a duration into 56 bits of mantissa, dropping fractional digits of absurdly precise durations.
pub(super) fn pack_duration(d: Decimal) -> u64 {
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
            1 => Some(ByteRange::new(None, self.range_length)),
            _ => Some(ByteRange::new(Some(self.range_offset), self.range_length)),
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
}

/// The tags written before one segment's URI, split around its #EXTINF.
#[derive(Debug, Clone, Copy)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the tags before and after #EXTINF: the only two places a segment tag can be"
)]
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
    pub(super) header: Vec<MediaTag<'a>>,
    pub(super) segments: Vec<Segment<'a>>,
    /// The tags before each segment's URI, all segments' in one list: segment `i`'s run from the end
    /// of segment `i - 1`'s to its own `tags_end`.
    pub(super) tags: Vec<MediaTag<'a>>,
    pub(super) trailer: Vec<MediaTag<'a>>,
}

impl<'a> MediaPlaylist<'a> {
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

    pub(crate) fn side_tags_mut(&mut self) -> (&mut [Segment<'a>], &mut [MediaTag<'a>]) {
        (&mut self.segments, &mut self.tags)
    }
}
