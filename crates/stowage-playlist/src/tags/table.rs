//! The table of tags: one row per tag this crate reads into a typed value, the one place a tag is added.
//!
//! A row reads `Variant(ValueType) = "NAME", columns;` (a tag without a value has no `(ValueType)`):
//!
//! - the variant of [`MediaTag`] or [`MasterTag`] the tag is read into, and the type of its value, which
//!   implements [`TagValue`] (an attribute-list tag is declared with `attribute_tag!` in
//!   [`attribute`](super::attribute));
//! - the tag's name as written, without `#`;
//! - media playlists only: `playlist` or `segment` (the tag applies to the segment written after it:
//!   [`MediaTag::is_segment_tag`]), and `once` (a second one is an error, or leniently kept verbatim) or
//!   `many`;
//! - `uri:` the [`UriRole`](crate::UriRole) under which [`rewrite_uris`](crate::MediaPlaylist::rewrite_uris)
//!   offers the URI the tag carries, or `none`. The build fails when a tag whose value carries a URI says
//!   `none`, or the other way round.
//!
//! The reader, the writer, `into_owned`, the URI rewrite and [`detect`](crate::detect) all follow from the
//! rows. A tag that belongs in both kinds of playlist has a row in each table.

use std::borrow::Cow;

use crate::reader::{Ctx, Fail};
use crate::tags::attribute::{
    ContentSteering, DateRange, Define, IFrameStreamInf, Key, Map, Part, PartInf, PreloadHint, Rendition,
    RenditionReport, ServerControl, SessionData, Skip, Start, Variant,
};
use crate::tags::value::PlaylistType;
use crate::tags::{TagValue, UriSlot};
use crate::value::{DateTime, Decimal};

tag_table! {
    /// A tag of a media playlist other than #EXTINF and EXT-X-BYTERANGE (which belong to their
    /// [`Segment`](crate::Segment)), or a comment. Tags this crate does not know are kept verbatim.
    media MediaTag, rows MediaRow {
        /// EXT-X-VERSION.
        Version(u64) = "EXT-X-VERSION", playlist, once, uri: none;
        /// EXT-X-TARGETDURATION (an integer unless a lenient parse accepted a decimal).
        TargetDuration(Decimal) = "EXT-X-TARGETDURATION", playlist, once, uri: none;
        /// EXT-X-MEDIA-SEQUENCE.
        MediaSequence(u64) = "EXT-X-MEDIA-SEQUENCE", playlist, once, uri: none;
        /// EXT-X-DISCONTINUITY-SEQUENCE.
        DiscontinuitySequence(u64) = "EXT-X-DISCONTINUITY-SEQUENCE", playlist, once, uri: none;
        /// EXT-X-PLAYLIST-TYPE.
        PlaylistType(PlaylistType) = "EXT-X-PLAYLIST-TYPE", playlist, once, uri: none;
        /// EXT-X-I-FRAMES-ONLY.
        IFramesOnly = "EXT-X-I-FRAMES-ONLY", playlist, once, uri: none;
        /// EXT-X-INDEPENDENT-SEGMENTS.
        IndependentSegments = "EXT-X-INDEPENDENT-SEGMENTS", playlist, many, uri: none;
        /// EXT-X-START.
        Start(Start<'a>) = "EXT-X-START", playlist, once, uri: none;
        /// EXT-X-DEFINE.
        Define(Define<'a>) = "EXT-X-DEFINE", playlist, many, uri: none;
        /// EXT-X-PART-INF.
        PartInf(PartInf<'a>) = "EXT-X-PART-INF", playlist, once, uri: none;
        /// EXT-X-SERVER-CONTROL.
        ServerControl(ServerControl<'a>) = "EXT-X-SERVER-CONTROL", playlist, once, uri: none;
        /// EXT-X-SKIP.
        Skip(Skip<'a>) = "EXT-X-SKIP", playlist, once, uri: none;
        /// EXT-X-ENDLIST.
        EndList = "EXT-X-ENDLIST", playlist, once, uri: none;
        /// EXT-X-DISCONTINUITY (applies to the segment it precedes).
        Discontinuity = "EXT-X-DISCONTINUITY", segment, many, uri: none;
        /// EXT-X-GAP (the segment it precedes is missing).
        Gap = "EXT-X-GAP", segment, many, uri: none;
        /// EXT-X-KEY (applies to every following segment until replaced).
        Key(Key<'a>) = "EXT-X-KEY", segment, many, uri: Key;
        /// EXT-X-MAP (applies to every following segment until replaced).
        Map(Map<'a>) = "EXT-X-MAP", segment, many, uri: Map;
        /// EXT-X-PROGRAM-DATE-TIME of the segment it precedes.
        ProgramDateTime(DateTime) = "EXT-X-PROGRAM-DATE-TIME", segment, many, uri: none;
        /// EXT-X-DATERANGE.
        DateRange(DateRange<'a>) = "EXT-X-DATERANGE", segment, many, uri: none;
        /// EXT-X-BITRATE (applies to following segments until replaced).
        Bitrate(u64) = "EXT-X-BITRATE", segment, many, uri: none;
        /// EXT-X-PART (a partial segment of the segment it precedes, or of the next one when after the
        /// last).
        Part(Part<'a>) = "EXT-X-PART", segment, many, uri: Part;
        /// EXT-X-PRELOAD-HINT.
        PreloadHint(PreloadHint<'a>) = "EXT-X-PRELOAD-HINT", playlist, many, uri: PreloadHint;
        /// EXT-X-RENDITION-REPORT.
        RenditionReport(RenditionReport<'a>) = "EXT-X-RENDITION-REPORT", playlist, many, uri: RenditionReport;
    }
}

/// The lines of a media playlist that belong to its [`Segment`](crate::Segment) rather than to a
/// [`MediaTag`]: the reader and writer handle them apart, in their hot paths.
pub(crate) const SEGMENT_LINE_TAGS: [&str; 2] = ["EXTINF", "EXT-X-BYTERANGE"];

tag_table! {
    /// A line of a master playlist: a tag (a variant is its EXT-X-STREAM-INF with the URI line after it),
    /// or a comment. Tags this crate does not know are kept verbatim.
    master MasterTag, rows MasterRow {
        /// EXT-X-VERSION.
        Version(u64) = "EXT-X-VERSION", uri: none;
        /// EXT-X-INDEPENDENT-SEGMENTS.
        IndependentSegments = "EXT-X-INDEPENDENT-SEGMENTS", uri: none;
        /// EXT-X-START.
        Start(Start<'a>) = "EXT-X-START", uri: none;
        /// EXT-X-DEFINE.
        Define(Define<'a>) = "EXT-X-DEFINE", uri: none;
        /// EXT-X-MEDIA.
        Rendition(Rendition<'a>) = "EXT-X-MEDIA", uri: Rendition;
        /// EXT-X-STREAM-INF and its URI.
        Variant(Variant<'a>) = "EXT-X-STREAM-INF", uri: Variant;
        /// EXT-X-I-FRAME-STREAM-INF.
        IFrameVariant(IFrameStreamInf<'a>) = "EXT-X-I-FRAME-STREAM-INF", uri: IFrameVariant;
        /// EXT-X-SESSION-DATA.
        SessionData(SessionData<'a>) = "EXT-X-SESSION-DATA", uri: SessionData;
        /// EXT-X-SESSION-KEY.
        SessionKey(Key<'a>) = "EXT-X-SESSION-KEY", uri: SessionKey;
        /// EXT-X-CONTENT-STEERING.
        ContentSteering(ContentSteering<'a>) = "EXT-X-CONTENT-STEERING", uri: ContentSteering;
    }
}

/// Tags that only a master playlist has.
pub(crate) fn is_master_tag(name: &str) -> bool {
    MasterTag::knows(name) && !MediaTag::knows(name)
}

/// Tags that only a media playlist has.
pub(crate) fn is_media_tag(name: &str) -> bool {
    (MediaTag::knows(name) || SEGMENT_LINE_TAGS.contains(&name)) && !MasterTag::knows(name)
}
