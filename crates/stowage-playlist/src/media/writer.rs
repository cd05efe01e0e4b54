//! Writing a media playlist: LF line ends, no blank lines, each tag in its canonical form, unknown lines
//! verbatim, and each segment's EXT-X-BYTERANGE right after its #EXTINF.

use std::fmt;

use super::model::{MediaPlaylist, Segment};
use crate::tags::MediaTag;

impl MediaPlaylist<'_> {
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
}

impl Segment<'_> {
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

impl fmt::Display for MediaPlaylist<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}
