//! The numbering of a media playlist's segments: media sequence numbers, discontinuity sequence numbers
//! and byte-range offsets. The resolved view and the URI rewrite both read it from here, so that a file
//! named after a segment's identity in one is found under the same identity in the other.

use crate::media::MediaPlaylist;
use crate::tags::MediaTag;
use crate::value::ByteRange;

/// Where one segment sits in its playlist's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentPosition {
    /// Media sequence number.
    pub(crate) media_sequence: u64,
    /// Discontinuity sequence number.
    pub(crate) discontinuity_sequence: u64,
    /// Whether an EXT-X-DISCONTINUITY is written before the segment.
    pub(crate) discontinuity: bool,
    /// The byte range with its offset made explicit, or why the offset cannot be known.
    pub(crate) byte_range: Result<Option<ByteRange>, &'static str>,
}

/// The positions of a playlist's segments, in order; see [`positions`].
#[derive(Debug)]
pub(crate) struct Positions<'p, 'a> {
    playlist: &'p MediaPlaylist<'a>,
    next: usize,
    media_sequence: u64,
    discontinuity_sequence: u64,
    /// The resource and end of the previous segment's sub-range, when it had one that could be resolved.
    prev_range: Option<(&'p str, u64)>,
}

/// The positions of every segment of `playlist`, in order.
///
/// The media sequence number of the first segment is EXT-X-MEDIA-SEQUENCE plus the SKIPPED-SEGMENTS of
/// an EXT-X-SKIP: the segments a delta update leaves out still hold their numbers (RFC 8216bis 4.4.5.2).
/// Each later segment has the next number.
///
/// The discontinuity sequence number starts at EXT-X-DISCONTINUITY-SEQUENCE and goes up by one at every
/// segment with an EXT-X-DISCONTINUITY before it, the first segment included. That is the only reading
/// under which numbers stay stable while a live playlist slides: a server removes a discontinuity tag
/// together with the segment it is written before, and only then increments
/// EXT-X-DISCONTINUITY-SEQUENCE (RFC 8216bis 6.2.2), so while that segment is the first one listed, its
/// tag must still count.
///
/// An EXT-X-BYTERANGE without offset starts where the previous segment's sub-range ended, which must be
/// of the same resource (RFC 8216bis 4.4.4.2); otherwise the offset is unknown and the position says why.
pub(crate) fn positions<'p, 'a>(playlist: &'p MediaPlaylist<'a>) -> Positions<'p, 'a> {
    let skipped = playlist.skip().and_then(|s| s.skipped_segments()).unwrap_or(0);
    Positions {
        playlist,
        next: 0,
        media_sequence: playlist.media_sequence().saturating_add(skipped),
        discontinuity_sequence: playlist.discontinuity_sequence(),
        prev_range: None,
    }
}

impl Iterator for Positions<'_, '_> {
    type Item = SegmentPosition;

    fn next(&mut self) -> Option<SegmentPosition> {
        let i = self.next;
        let seg = self.playlist.segments().get(i)?;
        self.next += 1;
        let discontinuity =
            self.playlist.segment_tags(i).iter().any(|t| matches!(t, MediaTag::Discontinuity));
        if discontinuity {
            // Saturating: a number at the top of the range is kept rather than wrapped or panicked on.
            self.discontinuity_sequence = self.discontinuity_sequence.saturating_add(1);
        }
        let byte_range = match seg.byte_range() {
            None => Ok(None),
            Some(r) => {
                let offset = match (r.offset, self.prev_range) {
                    (Some(o), _) => Ok(o),
                    (None, Some((uri, end))) if uri == seg.uri() => Ok(end),
                    (None, _) => Err("EXT-X-BYTERANGE without offset, but the previous segment is not a \
                                      sub-range of the same resource"),
                };
                offset
                    .and_then(|o| {
                        o.checked_add(r.length).map(|end| (o, end)).ok_or("byte range end overflows")
                    })
                    .map(|(o, _)| Some(ByteRange::new(Some(o), r.length)))
            }
        };
        self.prev_range = match byte_range {
            // The checked addition above succeeded, so this one does too.
            Ok(Some(r)) => r.offset.map(|o| (seg.uri(), o + r.length)),
            Ok(None) | Err(_) => None,
        };
        let position = SegmentPosition {
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            discontinuity,
            byte_range,
        };
        self.media_sequence = self.media_sequence.saturating_add(1);
        Some(position)
    }
}

/// An EXT-X-MAP byte range with its offset made explicit: the start of the resource when not written
/// (RFC 8216bis 4.4.4.5).
pub(crate) fn map_byte_range(written: Option<ByteRange>) -> Option<ByteRange> {
    written.map(|r| ByteRange::new(Some(r.offset.unwrap_or(0)), r.length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(text: &str) -> Vec<(u64, u64, bool)> {
        let pl = MediaPlaylist::parse(text).unwrap();
        positions(&pl).map(|p| (p.discontinuity_sequence, p.media_sequence, p.discontinuity)).collect()
    }

    #[test]
    fn discontinuity_before_the_first_segment_counts() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:10\n\
                    #EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-DISCONTINUITY\n#EXTINF:4,\na.ts\n\
                    #EXTINF:4,\nb.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:4,\nc.ts\n";
        assert_eq!(numbers(text), [(4, 10, true), (4, 11, false), (5, 12, true)]);
    }

    #[test]
    fn skipped_segments_hold_their_media_sequence_numbers() {
        let text = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:100\n\
                    #EXT-X-SKIP:SKIPPED-SEGMENTS=5\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n";
        assert_eq!(numbers(text), [(0, 105, false), (0, 106, false)]);
    }

    #[test]
    fn numbers_at_the_top_of_the_range_saturate() {
        let text = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{m}\n#EXT-X-DISCONTINUITY-SEQUENCE:{m}\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n",
            m = u64::MAX
        );
        assert_eq!(numbers(&text), [(u64::MAX, u64::MAX, true), (u64::MAX, u64::MAX, false)]);
    }

    #[test]
    fn implicit_offsets_follow_the_same_resource_only() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:4\n\
                    #EXTINF:4,\n#EXT-X-BYTERANGE:100@50\na.ts\n#EXTINF:4,\n#EXT-X-BYTERANGE:20\na.ts\n\
                    #EXTINF:4,\n#EXT-X-BYTERANGE:30\nb.ts\n#EXTINF:4,\n#EXT-X-BYTERANGE:5\nb.ts\n\
                    #EXTINF:4,\nc.ts\n#EXTINF:4,\n#EXT-X-BYTERANGE:7\nc.ts\n";
        let pl = MediaPlaylist::parse_with(text, &crate::ParserOptions::lenient()).unwrap().playlist;
        let ranges: Vec<_> =
            positions(&pl).map(|p| p.byte_range.map(|r| r.map(|r| (r.length, r.offset)))).collect();
        let unknown = Err("EXT-X-BYTERANGE without offset, but the previous segment is not a sub-range of \
                           the same resource");
        assert_eq!(
            ranges,
            [Ok(Some((100, Some(50)))), Ok(Some((20, Some(150)))), unknown, unknown, Ok(None), unknown]
        );
    }

    #[test]
    fn an_overflowing_range_is_refused() {
        let text = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:4\n#EXTINF:4,\n#EXT-X-BYTERANGE:10@{}\na.ts\n",
            u64::MAX - 5
        );
        let pl = MediaPlaylist::parse(&text).unwrap();
        assert_eq!(positions(&pl).next().unwrap().byte_range, Err("byte range end overflows"));
    }

    #[test]
    fn a_map_range_starts_at_zero_when_not_written() {
        assert_eq!(map_byte_range(Some(ByteRange::new(None, 9))), Some(ByteRange::new(Some(0), 9)));
        assert_eq!(map_byte_range(Some(ByteRange::new(Some(4), 9))), Some(ByteRange::new(Some(4), 9)));
        assert_eq!(map_byte_range(None), None);
    }
}
