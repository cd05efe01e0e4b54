//! The HTTP rules files are served by: byte ranges, entity tags, media types.

use http::HeaderValue;
use stowage_bundle::{BundleFileKind, MediaFormat, RenditionKind};

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// No usable range: the whole representation (no header, another unit, a malformed or multi-range
    /// header; RFC 9110 lets a server ignore `Range`, and players ask for one range at a time).
    Full,
    /// Bytes `start..end` (end exclusive), answered 206.
    Partial(u64, u64),
    /// A range that starts at or past the end, or an empty suffix: answered 416.
    Unsatisfiable,
}

/// Reads a `Range` header against a length.
pub(crate) fn range(header: Option<&HeaderValue>, len: u64) -> RangeAnswer {
    let Some(text) = header.and_then(|h| h.to_str().ok()) else { return RangeAnswer::Full };
    let Some((unit, spec)) = text.split_once('=') else { return RangeAnswer::Full };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAnswer::Full };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial(len.saturating_sub(n), len),
            None => RangeAnswer::Full,
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a >= len => RangeAnswer::Unsatisfiable,
            Some(a) => RangeAnswer::Partial(a, len),
            None => RangeAnswer::Full,
        },
        // `a-b`, inclusive.
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= len {
                    RangeAnswer::Unsatisfiable
                } else {
                    RangeAnswer::Partial(a, b.saturating_add(1).min(len))
                }
            }
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

/// An entity tag (quoted) from a 64-bit version token.
pub(crate) fn etag(version: u64) -> String {
    format!("\"{version:016x}\"")
}

/// Whether `If-None-Match` lists `etag` (weak comparison: `W/` is ignored) or is `*`.
pub(crate) fn none_match(header: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(text) = header.and_then(|h| h.to_str().ok()) else { return false };
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    text.split(',').any(|t| t.trim() == "*" || strip(t) == strip(etag))
}

/// Whether `If-Range` allows the range: it must be this strong entity tag (a date never matches, as no
/// `Last-Modified` is sent).
pub(crate) fn if_range_allows(header: Option<&HeaderValue>, etag: Option<&str>) -> bool {
    match header.and_then(|h| h.to_str().ok()) {
        None => true,
        Some(text) => etag.is_some_and(|e| !text.trim().starts_with("W/") && text.trim() == e),
    }
}

/// A 64-bit FNV-1a hash, for entity tags of generated content.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        hash = (hash ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The media type of a playlist.
pub(crate) const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// The media type of a bundle file, from what it is and its rendition's format. Artwork's type comes from
/// the manifest.
pub(crate) fn media_type(
    kind: BundleFileKind,
    format: Option<MediaFormat>,
    rendition: Option<RenditionKind>,
) -> &'static str {
    match kind {
        BundleFileKind::MasterPlaylist | BundleFileKind::MediaPlaylist => PLAYLIST_TYPE,
        BundleFileKind::Key => "application/octet-stream",
        _ => match format {
            Some(MediaFormat::Ts) => "video/mp2t",
            Some(MediaFormat::Fmp4) if rendition == Some(RenditionKind::Audio) => "audio/mp4",
            Some(MediaFormat::Fmp4) => "video/mp4",
            Some(MediaFormat::Aac) => "audio/aac",
            Some(MediaFormat::Ac3) => "audio/ac3",
            Some(MediaFormat::Eac3) => "audio/eac3",
            Some(MediaFormat::Mp3) => "audio/mpeg",
            Some(MediaFormat::WebVtt) => "text/vtt; charset=utf-8",
            _ => "application/octet-stream",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str, len: u64) -> RangeAnswer {
        range(Some(&HeaderValue::from_str(text).unwrap()), len)
    }

    #[test]
    fn ranges_at_the_edges() {
        use RangeAnswer::*;
        assert_eq!(range(None, 10), Full);
        assert_eq!(r("bytes=0-0", 10), Partial(0, 1));
        assert_eq!(r("bytes=0-9", 10), Partial(0, 10));
        assert_eq!(r("bytes=5-100", 10), Partial(5, 10));
        assert_eq!(r("bytes=9-", 10), Partial(9, 10));
        assert_eq!(r("bytes=10-", 10), Unsatisfiable);
        assert_eq!(r("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(r("bytes=-3", 10), Partial(7, 10));
        assert_eq!(r("bytes=-30", 10), Partial(0, 10));
        assert_eq!(r("bytes=-0", 10), Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
        assert_eq!(r("bytes=-1", 0), Unsatisfiable);
        assert_eq!(r("BYTES = 1-2", 10), Partial(1, 3));
        for ignored in
            ["bytes=3-1", "bytes=a-b", "bytes=-", "items=0-1", "bytes=0-1,3-4", "bytes=+1-2", "0-1"]
        {
            assert_eq!(r(ignored, 10), Full, "{ignored}");
        }
        assert_eq!(r("bytes=0-18446744073709551615", 10), Partial(0, 10));
    }

    #[test]
    fn entity_tags() {
        let tag = etag(0xabc);
        assert_eq!(tag, "\"0000000000000abc\"");
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(none_match(Some(&h(&tag)), &tag));
        assert!(none_match(Some(&h(&format!("\"x\", W/{tag}"))), &tag));
        assert!(none_match(Some(&h("*")), &tag));
        assert!(!none_match(Some(&h("\"other\"")), &tag));
        assert!(if_range_allows(None, Some(&tag)));
        assert!(if_range_allows(Some(&h(&tag)), Some(&tag)));
        assert!(!if_range_allows(Some(&h(&format!("W/{tag}"))), Some(&tag)));
        assert!(!if_range_allows(Some(&h("Tue, 15 Nov 1994 08:12:31 GMT")), Some(&tag)));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
    }
}
