//! Rewriting every URI of a playlist (to local paths, for an offline copy) while changing nothing else.

use std::borrow::Cow;

use crate::error::Error;
use crate::master::MasterPlaylist;
use crate::media::MediaPlaylist;
use crate::sequence::{SegmentPosition, map_byte_range, positions};
use crate::tags::{MediaTag, UriSlot};
use crate::value::ByteRange;

/// What a URI in a playlist points at. Each tag that carries a URI names its role in the tag table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UriRole {
    /// A segment's URI line.
    Segment,
    /// EXT-X-MAP URI (a media initialization section).
    Map,
    /// EXT-X-KEY URI.
    Key,
    /// EXT-X-PART URI.
    Part,
    /// EXT-X-PRELOAD-HINT URI.
    PreloadHint,
    /// EXT-X-RENDITION-REPORT URI.
    RenditionReport,
    /// A variant's URI line (after EXT-X-STREAM-INF).
    Variant,
    /// EXT-X-I-FRAME-STREAM-INF URI.
    IFrameVariant,
    /// EXT-X-MEDIA URI.
    Rendition,
    /// EXT-X-SESSION-KEY URI.
    SessionKey,
    /// EXT-X-SESSION-DATA URI.
    SessionData,
    /// EXT-X-CONTENT-STEERING SERVER-URI.
    ContentSteering,
}

/// One URI offered to a rewrite callback, with where it is.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct UriRef<'r> {
    /// What the URI points at.
    pub role: UriRole,
    /// The URI as written (after variable substitution).
    pub uri: &'r str,
    /// In a media playlist: the index of the segment the URI belongs to (for a tag: the segment it is
    /// written before; `None` for tags after the last segment). In a master playlist: the index of the
    /// tag among [`MasterPlaylist::tags`].
    pub index: Option<usize>,
    /// In a media playlist: the segment's media sequence number, the same as
    /// [`ResolvedSegment::media_sequence`](crate::ResolvedSegment::media_sequence) (segments skipped by an
    /// EXT-X-SKIP count).
    pub media_sequence: Option<u64>,
    /// In a media playlist: the segment's discontinuity sequence number, the same as
    /// [`ResolvedSegment::discontinuity_sequence`](crate::ResolvedSegment::discontinuity_sequence) (an
    /// EXT-X-DISCONTINUITY before the first segment counts).
    pub discontinuity_sequence: Option<u64>,
    /// The byte range the URI is used with, as written (segment BYTERANGE, MAP or PART BYTERANGE).
    pub byte_range: Option<ByteRange>,
    /// For a segment or an EXT-X-MAP: its byte range with the offset made explicit, the same as the
    /// resolved view's ([`ResolvedSegment::byte_range`](crate::ResolvedSegment::byte_range),
    /// [`ResolvedMap::byte_range`](crate::ResolvedMap::byte_range)). `None` without a range, when an
    /// implicit offset cannot be known (the previous segment is not a sub-range of the same resource),
    /// and for other roles.
    pub absolute_byte_range: Option<ByteRange>,
}

/// What to do with one URI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rewrite {
    /// Leave it as it is.
    Keep,
    /// Replace the URI, keeping its byte range (the new resource holds the same bytes at the same
    /// offsets).
    Replace(String),
    /// Replace the URI by a resource that holds exactly the bytes of the range: the byte range is removed
    /// (segment EXT-X-BYTERANGE, MAP and PART BYTERANGE, PRELOAD-HINT BYTERANGE-START/LENGTH).
    ReplaceWhole(String),
    /// Remove the tag that carries the URI (a key when content is stored decrypted, a variant or a
    /// rendition that was not downloaded, a preload hint...). Removing a segment or a MAP is refused with
    /// [`Error::CannotRemove`]: its media would be lost.
    Remove,
}

impl UriRole {
    /// The attributes that say which bytes of the resource are used, removed by
    /// [`Rewrite::ReplaceWhole`].
    fn range_attributes(self) -> &'static [&'static str] {
        match self {
            Self::Map | Self::Part => &["BYTERANGE"],
            Self::PreloadHint => &["BYTERANGE-START", "BYTERANGE-LENGTH"],
            // A segment's byte range is its EXT-X-BYTERANGE line, not an attribute.
            Self::Segment
            | Self::Key
            | Self::RenditionReport
            | Self::Variant
            | Self::IFrameVariant
            | Self::Rendition
            | Self::SessionKey
            | Self::SessionData
            | Self::ContentSteering => &[],
        }
    }
}

impl UriSlot<'_, '_> {
    /// The URI as written; `None` for an optional URI attribute that is absent (EXT-X-MEDIA's).
    fn uri(&self) -> Option<&str> {
        match self {
            Self::Attribute(attrs, name) => attrs.quoted(name),
            Self::Line(uri) => Some(uri),
        }
    }

    /// The byte range the URI is used with, as written in a BYTERANGE attribute.
    fn byte_range(&self) -> Option<ByteRange> {
        match self {
            Self::Attribute(attrs, _) => attrs.byte_range("BYTERANGE"),
            Self::Line(_) => None,
        }
    }

    /// Applies a replacement; keeping and removing change nothing here.
    fn apply(self, action: &Rewrite, role: UriRole) {
        let (Rewrite::Replace(uri) | Rewrite::ReplaceWhole(uri)) = action else { return };
        match self {
            Self::Attribute(attrs, name) => {
                attrs.set_quoted(name, uri.clone());
                if let Rewrite::ReplaceWhole(_) = action {
                    for r in role.range_attributes() {
                        attrs.remove(r);
                    }
                }
            }
            Self::Line(line) => *line = Cow::Owned(uri.clone()),
        }
    }
}

impl<'a> MediaPlaylist<'a> {
    /// Offers every URI to `f` (segments, MAP, KEY, PART, PRELOAD-HINT, RENDITION-REPORT, in written
    /// order) and applies its answer; nothing else changes.
    ///
    /// ```
    /// use stowage_playlist::{MediaPlaylist, Rewrite, UriRole};
    /// let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n\
    ///             #EXT-X-KEY:METHOD=AES-128,URI=\"https://k.example/1\"\n\
    ///             #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nhttps://cdn.example/a.m4s?sig=1\n";
    /// let mut playlist = MediaPlaylist::parse(text)?;
    /// playlist.rewrite_uris(|u| match u.role {
    ///     UriRole::Segment => Rewrite::Replace(format!("seg-{}.m4s", u.media_sequence.unwrap())),
    ///     UriRole::Map => Rewrite::Replace("init.mp4".into()),
    ///     UriRole::Key => Rewrite::Remove, // stored decrypted
    ///     _ => Rewrite::Keep,
    /// })?;
    /// assert_eq!(
    ///     playlist.to_string(),
    ///     "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n\
    ///      #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nseg-7.m4s\n"
    /// );
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn rewrite_uris(&mut self, mut f: impl FnMut(&UriRef<'_>) -> Rewrite) -> Result<(), Error> {
        let mut remove: Vec<bool> = Vec::new();
        // Numbered before anything changes: the numbering reads the URIs and tags as written.
        let numbered: Vec<SegmentPosition> = positions(self).collect();
        let header_len = self.header().len();
        for i in 0..header_len {
            let r = rewrite_media_tag(&mut self.header_mut()[i], None, None, &mut f)?;
            remove.push(r);
        }
        // The URI the previous segment's sub-range is read from after rewriting, so that an implicit
        // offset that would no longer follow on from the same resource is written explicitly.
        let mut prev_kept_uri: Option<String> = None;
        for (i, position) in numbered.iter().enumerate() {
            let (start, _, end) = self.tag_bounds(i);
            let (segments, tags) = self.side_tags_mut();
            for tag in &mut tags[start..end] {
                let r = rewrite_media_tag(tag, Some(i), Some(position), &mut f)?;
                if r && matches!(tag, MediaTag::Map(_)) {
                    return Err(Error::CannotRemove { what: "EXT-X-MAP", segment: i });
                }
                remove.push(r);
            }
            let seg = &mut segments[i];
            let range = seg.byte_range();
            let absolute = position.byte_range.ok().flatten();
            let action = f(&UriRef {
                role: UriRole::Segment,
                uri: seg.uri(),
                index: Some(i),
                media_sequence: Some(position.media_sequence),
                discontinuity_sequence: Some(position.discontinuity_sequence),
                byte_range: range,
                absolute_byte_range: absolute,
            });
            let mut kept_uri = None;
            match action {
                Rewrite::Keep => {
                    if range.is_some() {
                        kept_uri = Some(seg.uri().to_owned());
                    }
                }
                Rewrite::Replace(u) => {
                    if range.is_some() {
                        kept_uri = Some(u.clone());
                    }
                    seg.set_uri(u);
                }
                Rewrite::ReplaceWhole(u) => {
                    seg.set_uri(u);
                    seg.set_byte_range(None);
                }
                Rewrite::Remove => return Err(Error::CannotRemove { what: "URI", segment: i }),
            }
            if let (Some(r), Some(k)) = (range, &kept_uri)
                && r.offset.is_none()
                && prev_kept_uri.as_ref() != Some(k)
                && absolute.is_some()
            {
                seg.set_byte_range(absolute);
            }
            prev_kept_uri = kept_uri;
        }
        let trailer_len = self.trailer().len();
        for i in 0..trailer_len {
            let r = rewrite_media_tag(&mut self.trailer_mut()[i], None, None, &mut f)?;
            remove.push(r);
        }
        if remove.iter().any(|r| *r) {
            let mut it = remove.into_iter();
            self.retain_tags(|_| !it.next().unwrap_or(false));
        }
        Ok(())
    }
}

/// Rewrites the URI of one tag; returns whether the tag is to be removed.
fn rewrite_media_tag(
    tag: &mut MediaTag<'_>,
    index: Option<usize>,
    position: Option<&SegmentPosition>,
    f: &mut impl FnMut(&UriRef<'_>) -> Rewrite,
) -> Result<bool, Error> {
    let Some((role, slot)) = tag.uri_mut() else {
        return Ok(false);
    };
    let Some(uri) = slot.uri() else {
        return Ok(false);
    };
    let byte_range = slot.byte_range();
    let action = f(&UriRef {
        role,
        uri,
        index,
        media_sequence: position.map(|p| p.media_sequence),
        discontinuity_sequence: position.map(|p| p.discontinuity_sequence),
        byte_range,
        absolute_byte_range: if role == UriRole::Map { map_byte_range(byte_range) } else { None },
    });
    if action == Rewrite::Remove {
        if role == UriRole::Map {
            return Err(Error::CannotRemove { what: "EXT-X-MAP", segment: index.unwrap_or(0) });
        }
        return Ok(true);
    }
    slot.apply(&action, role);
    Ok(false)
}

impl MasterPlaylist<'_> {
    /// Offers every URI to `f` (variants, I-frame variants, renditions, session keys, session data,
    /// content steering, in written order) and applies its answer; nothing else changes. Dropping the
    /// variants or renditions that were not downloaded is [`Rewrite::Remove`] here, or
    /// [`MasterPlaylist::retain_variants`] / [`MasterPlaylist::retain_renditions`] (which also reach
    /// renditions without a URI).
    ///
    /// ```
    /// use stowage_playlist::{MasterPlaylist, Rewrite, UriRole};
    /// let text = "#EXTM3U\n\
    ///     #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"https://x.example/en.m3u8\"\n\
    ///     #EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO=\"a\"\nhttps://x.example/lo.m3u8\n\
    ///     #EXT-X-STREAM-INF:BANDWIDTH=3000000,AUDIO=\"a\"\nhttps://x.example/hi.m3u8\n";
    /// let mut master = MasterPlaylist::parse(text)?;
    /// master.rewrite_uris(|u| match (u.role, u.uri) {
    ///     (UriRole::Variant, "https://x.example/hi.m3u8") => Rewrite::Replace("video/index.m3u8".into()),
    ///     (UriRole::Rendition, _) => Rewrite::Replace("audio-en/index.m3u8".into()),
    ///     _ => Rewrite::Remove,
    /// })?;
    /// assert_eq!(
    ///     master.to_string(),
    ///     "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio-en/index.m3u8\"\n\
    ///      #EXT-X-STREAM-INF:BANDWIDTH=3000000,AUDIO=\"a\"\nvideo/index.m3u8\n"
    /// );
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn rewrite_uris(&mut self, mut f: impl FnMut(&UriRef<'_>) -> Rewrite) -> Result<(), Error> {
        let mut remove = Vec::with_capacity(self.tags().len());
        for (i, tag) in self.tags_mut().iter_mut().enumerate() {
            let Some((role, slot)) = tag.uri_mut() else {
                remove.push(false);
                continue;
            };
            let Some(uri) = slot.uri() else {
                remove.push(false);
                continue;
            };
            let action = f(&UriRef {
                role,
                uri,
                index: Some(i),
                media_sequence: None,
                discontinuity_sequence: None,
                byte_range: None,
                absolute_byte_range: None,
            });
            remove.push(action == Rewrite::Remove);
            slot.apply(&action, role);
        }
        let mut it = remove.into_iter();
        self.tags_mut().retain(|_| !it.next().unwrap_or(false));
        Ok(())
    }
}
