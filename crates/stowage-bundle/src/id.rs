//! Identities: of a rendition, of a segment, and the file names they give.
//!
//! A segment is known by where it sits in its rendition's timeline (discontinuity sequence, media sequence,
//! byte range), never by its URL: URLs may be signed and expire, and no string from the network ever becomes
//! a path. File names in a bundle are built from these identities alone.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The longest rendition identifier accepted, in bytes.
pub const MAX_RENDITION_ID_LEN: usize = 64;

/// A rendition's local identifier: its folder name in the bundle. Cheap to clone (shared), since every
/// segment identity holds one.
///
/// It is chosen by the caller (for example `video-720p`, `audio-en`, `subs-fr`), never taken from the network
/// as is: only ASCII letters, digits, `-` and `_` are allowed, 1 to 64 bytes, not starting with `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RenditionId(Arc<str>);

impl RenditionId {
    /// Checks and wraps a rendition identifier.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_local_name(&name)?;
        Ok(Self(Arc::from(name)))
    }

    /// The identifier as a string (also its folder name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks that `name` can be used as a single path component on every platform.
pub(crate) fn check_local_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_RENDITION_ID_LEN {
        Some("must be at most 64 bytes")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Some("only ASCII letters, digits, '-' and '_' are allowed")
    } else if name.starts_with(['-', '_']) {
        Some("must start with a letter or a digit")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

impl TryFrom<String> for RenditionId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<RenditionId> for String {
    fn from(value: RenditionId) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for RenditionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A byte range of a resource: `length` bytes starting at `offset` (an `EXT-X-BYTERANGE` with its offset
/// resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a resolved byte range is its offset and length, closed by definition"
)]
pub struct ByteRange {
    /// The first byte.
    pub offset: u64,
    /// The number of bytes.
    pub length: u64,
}

impl ByteRange {
    /// A range of `length` bytes at `offset`.
    pub fn new(offset: u64, length: u64) -> Self {
        Self { offset, length }
    }
}

/// Whether an identity names a media segment or an initialization section (`EXT-X-MAP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SegmentKind {
    /// An initialization section: the `EXT-X-MAP` in force for the media segment with the same sequences.
    Init,
    /// A media segment.
    Media,
}

/// The stable identity of a segment (or initialization section) in a bundle.
///
/// For a media segment: its rendition, discontinuity sequence, media sequence number and byte range. For an
/// initialization section: the same for the first media segment it applies to, with [`SegmentKind::Init`]
/// and the `EXT-X-MAP`'s own byte range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SegmentId {
    /// The rendition the segment belongs to.
    pub rendition: RenditionId,
    /// Media segment or initialization section.
    pub kind: SegmentKind,
    /// The discontinuity sequence number (`EXT-X-DISCONTINUITY-SEQUENCE` plus the discontinuities before it).
    pub discontinuity_sequence: u64,
    /// The media sequence number (`EXT-X-MEDIA-SEQUENCE` plus the segment's index).
    pub media_sequence: u64,
    /// The byte range, when the resource is a sub-range of a larger one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_range: Option<ByteRange>,
}

impl SegmentId {
    /// The identity of a media segment.
    pub fn media(rendition: RenditionId, discontinuity_sequence: u64, media_sequence: u64) -> Self {
        Self { rendition, kind: SegmentKind::Media, discontinuity_sequence, media_sequence, byte_range: None }
    }

    /// The identity of the initialization section in force for the media segment at these sequences.
    pub fn init(rendition: RenditionId, discontinuity_sequence: u64, media_sequence: u64) -> Self {
        Self { rendition, kind: SegmentKind::Init, discontinuity_sequence, media_sequence, byte_range: None }
    }

    /// The same identity with a byte range.
    #[must_use]
    pub fn with_byte_range(mut self, range: ByteRange) -> Self {
        self.byte_range = Some(range);
        self
    }

    /// Whether this is an initialization section.
    pub fn is_init(&self) -> bool {
        self.kind == SegmentKind::Init
    }

    /// The file name (without folder) this segment has in the bundle, given the file extension.
    ///
    /// `seg-d{discontinuity}-s{sequence}[-r{offset}-{length}].{ext}`, `init-` instead of `seg-` for an
    /// initialization section.
    pub fn file_name(&self, extension: &str) -> String {
        let prefix = match self.kind {
            SegmentKind::Init => "init",
            SegmentKind::Media => "seg",
        };
        let mut name = format!("{prefix}-d{}-s{}", self.discontinuity_sequence, self.media_sequence);
        if let Some(range) = self.byte_range {
            name.push_str(&format!("-r{}-{}", range.offset, range.length));
        }
        name.push('.');
        name.push_str(extension);
        name
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            SegmentKind::Init => "init",
            SegmentKind::Media => "segment",
        };
        write!(
            f,
            "{}/{kind} (discontinuity {}, sequence {}",
            self.rendition, self.discontinuity_sequence, self.media_sequence
        )?;
        if let Some(range) = self.byte_range {
            write!(f, ", bytes {}@{}", range.length, range.offset)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_names_are_checked() {
        assert!(RenditionId::new("video-720p").is_ok());
        assert!(RenditionId::new("a_1").is_ok());
        for bad in ["", "..", "a/b", "a\\b", "-x", "_x", "é", "a b", &"x".repeat(65)] {
            assert!(RenditionId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn file_names_come_from_identity() {
        let r = RenditionId::new("v0").unwrap();
        assert_eq!(SegmentId::media(r.clone(), 2, 17).file_name("ts"), "seg-d2-s17.ts");
        let ranged = SegmentId::init(r, 0, 0).with_byte_range(ByteRange::new(0, 720));
        assert_eq!(ranged.file_name("mp4"), "init-d0-s0-r0-720.mp4");
    }
}
