//! Zero-copy parser and writer for HLS playlists (RFC 8216 and its second edition, rfc8216bis).
//!
//! **What it is.** The bottom layer of stowage: plain functions on byte slices that read master
//! (multivariant) and media playlists into a model that borrows from the input, and write a model back.
//! Every tag and attribute of rfc8216bis has a typed getter; tags, attributes and comments this crate does
//! not know are kept in position, so parse → write reproduces the input (byte for byte when it is written
//! the way this crate writes: LF line ends, no blank lines, attributes as written). A resolved view
//! computes per segment what a downloader needs: media and discontinuity sequence numbers, keys in force
//! and their IVs, init section, absolute byte range, start time, program date time, absolute URIs.
//!
//! **What it does not do.** No IO, no async, no network, no decryption: fetching is `stowage-fetch`,
//! storing is `stowage-bundle`. It does not choose variants either (that is `stowage-task`).
//!
//! **How it reads.** A line scanner (one `memchr` pass over the input) hands each line to the reader of
//! the playlist's kind, which has one method per kind of line. #EXTINF, EXT-X-BYTERANGE and URI lines
//! have hand-written fast paths; every other tag is read through the tag table below, and attribute lists
//! by a small nom grammar. nom stays inside: none of its types is in the API, and errors are this crate's.
//!
//! **Strict by default.** A deviation from the grammar is an [`Error`] with line, column and what was
//! expected. [`ParserOptions::lenient`] (or single tolerances) parses on and reports each tolerance as a
//! located [`Warning`]. [`Limits`] bound what hostile input can make the parser do.
//!
//! **Borrowing.** Strings are `Cow<'a, str>` slices of the input, owned only where EXT-X-DEFINE
//! substitution made a new string; `into_owned()` gives a `'static` copy.
//!
//! **Writing.** [`MediaPlaylist::write_to`] / `Display` write LF line ends, no blank lines, known tags in
//! their canonical form (numbers, dates and attribute lists exactly as they were read), and unknown
//! lines verbatim. URIs and quoted strings are written with variables substituted (the EXT-X-DEFINE tags
//! stay), so a playlist using variables reads back equal but not byte-identical. Within a segment, the
//! EXT-X-BYTERANGE is written right after its #EXTINF.
//!
//! **Offline copies.** [`MediaPlaylist::rewrite_uris`] and [`MasterPlaylist::rewrite_uris`] offer every URI
//! (with its role, segment index, media sequence and byte range) to a callback that keeps, replaces or
//! removes it; [`MediaPlaylist::remove_keys`], [`MasterPlaylist::retain_variants`] and
//! [`MasterPlaylist::retain_renditions`] drop what was not kept.
//!
//! ```
//! use stowage_playlist::{MediaPlaylist, Rewrite, UriRole};
//!
//! let text = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:6\n\
//!             #EXT-X-KEY:METHOD=AES-128,URI=\"key\"\n\
//!             #EXTINF:6.006,first\n#EXT-X-BYTERANGE:1000@0\nmain.ts\n\
//!             #EXTINF:5.005,\n#EXT-X-BYTERANGE:800\nmain.ts\n#EXT-X-ENDLIST\n";
//! let playlist = MediaPlaylist::parse(text)?;
//! assert_eq!(playlist.segments().len(), 2);
//! assert_eq!(playlist.to_string(), text); // nothing lost
//!
//! // What a downloader needs, per segment.
//! let resolved = playlist.resolve(Some("https://cdn.example/v/index.m3u8"))?;
//! let second = &resolved.segments[1];
//! assert_eq!(second.uri, "https://cdn.example/v/main.ts");
//! assert_eq!((second.byte_range.unwrap().offset, second.media_sequence), (Some(1000), 1));
//! assert_eq!(second.keys[0].iv, 1u128.to_be_bytes()); // IV from the media sequence number
//!
//! // The offline copy: local paths, keys removed (the content is stored decrypted).
//! let mut local = playlist.clone();
//! local.rewrite_uris(|u| match u.role {
//!     UriRole::Segment => Rewrite::ReplaceWhole(format!("{}.ts", u.media_sequence.unwrap())),
//!     UriRole::Key => Rewrite::Remove,
//!     _ => Rewrite::Keep,
//! })?;
//! assert!(local.to_string().contains("#EXTINF:5.005,\n1.ts\n#EXT-X-ENDLIST"));
//! # Ok::<(), stowage_playlist::Error>(())
//! ```
//!
//! **Subtitle segments.** [`webvtt`] reads the WebVTT of HLS subtitle segments (`X-TIMESTAMP-MAP`
//! included), joins the cues a rendition's segments repeat or split, and writes one WebVTT or SubRip file.
//!
//! **Adding a tag.** Every tag this crate reads into a typed value is one row of the tag table
//! (`src/tags/table.rs`): its variant of [`MediaTag`] or [`MasterTag`] and the type of its value, its
//! name, in a media playlist whether it applies to the playlist or to the next segment and whether it may
//! appear once, and the [`UriRole`] of the URI it carries, or `none`. Reading, writing, `into_owned`,
//! [`MediaTag::is_segment_tag`], [`detect`] and [`MediaPlaylist::rewrite_uris`] follow from the row.
//! A tag with an attribute list also has its type, declared with `attribute_tag!` in
//! `src/tags/attribute.rs` and re-exported here; a tag that carries a URI also has its [`UriRole`]
//! variant. The build fails when an attribute named `URI` or `...-URI` is not declared of kind `Uri`, or
//! when a row whose value carries a URI names no role: a new tag cannot leave an offline copy pointing at
//! the origin.

// A public crate: every public type may grow (`#[non_exhaustive]`) unless it is closed by definition, which
// its `#[allow]` says.
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod attr;
mod error;
mod master;
mod media;
mod options;
mod playlist;
mod reader;
mod resolve;
mod rewrite;
mod sequence;
mod tags;
mod uri;
mod value;
pub mod webvtt;

pub use attr::{Attribute, AttributeList, AttributeValue};
pub use error::{Error, LimitKind, PlaylistKind, Warning, WarningKind};
pub use master::MasterPlaylist;
pub use media::{MediaPlaylist, Segment, SegmentTags};
pub use options::{Limits, ParserOptions};
pub use playlist::{Playlist, detect};
pub use reader::Parsed;
pub use resolve::{ResolvedKey, ResolvedMap, ResolvedMedia, ResolvedSegment};
pub use rewrite::{Rewrite, UriRef, UriRole};
pub use tags::attribute::{
    ContentSteering, DateRange, Define, IFrameStreamInf, Key, KeyMethod, Map, MediaType, Part, PartInf,
    PreloadHint, Rendition, RenditionReport, ServerControl, SessionData, Skip, Start, StreamInf, Variant,
};
pub use tags::value::PlaylistType;
pub use tags::{MasterTag, MediaTag};
pub use uri::resolve_uri;
pub use value::{ByteRange, DateTime, Decimal, Resolution};
