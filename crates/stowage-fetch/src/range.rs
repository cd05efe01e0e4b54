//! Byte ranges: what a request asks for (`Range`), and what a `206` answer says it holds
//! (`Content-Range`).
//!
//! A `206` is checked here, in one place, whether it answers the first request for a resource or the
//! resumption of a cut transfer, so that both accept and refuse the same answers.

use http::header::{self, HeaderMap};

use crate::headers::{ContentRange, parse_content_range};

/// A contiguous byte range of a resource, as in `EXT-X-BYTERANGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ByteRange {
    /// First byte, counted from 0.
    pub offset: u64,
    /// Number of bytes; `None` means to the end of the resource.
    pub length: Option<u64>,
}

impl ByteRange {
    /// `length` bytes starting at `offset`.
    pub fn new(offset: u64, length: u64) -> Self {
        Self { offset, length: Some(length) }
    }

    /// Everything from `offset` to the end.
    pub fn from_offset(offset: u64) -> Self {
        Self { offset, length: None }
    }

    /// The exclusive end, when the length is known.
    pub fn end(&self) -> Option<u64> {
        self.length.map(|l| self.offset.saturating_add(l))
    }
}

/// The value of a `Range` header asking for the bytes from `from` up to `end` (exclusive), or to the end of
/// the resource when `end` is `None`.
pub(crate) fn range_value(from: u64, end: Option<u64>) -> String {
    match end {
        // An empty range cannot be written; callers never ask for one (an empty request range is refused
        // before), and saturating keeps a bad call from wrapping around.
        Some(end) => format!("bytes={from}-{}", end.saturating_sub(1)),
        None => format!("bytes={from}-"),
    }
}

/// Checks the `Content-Range` of a `206` answer to a request for the bytes from `from`, and returns it.
///
/// The answer must carry exactly one `Content-Range`, of the form `bytes first-last/complete` or
/// `bytes first-last/*`, whose range holds byte `from` (it may start before it: the body is then sliced),
/// and, when it declares a `Content-Length`, one equal to the length of that range. Otherwise the reason is
/// returned. What the range means for the rest of the transfer (where it ends, whether the resource
/// changed) is for the caller, which knows what it asked.
pub(crate) fn check_partial(headers: &HeaderMap, from: u64) -> Result<ContentRange, String> {
    let mut values = headers.get_all(header::CONTENT_RANGE).iter();
    let Some(value) = values.next() else {
        return Err("206 without a Content-Range".to_owned());
    };
    if values.next().is_some() {
        return Err("206 with more than one Content-Range".to_owned());
    }
    let Some(cr) = value.to_str().ok().and_then(parse_content_range) else {
        return Err(format!(
            "206 with an invalid Content-Range: {:?}",
            String::from_utf8_lossy(value.as_bytes())
        ));
    };
    if cr.first > from || cr.last < from {
        return Err(format!("asked from byte {from}, got bytes {}-{}", cr.first, cr.last));
    }
    if let Some(cl) = content_length(headers)
        && cl != cr.len()
    {
        return Err(format!(
            "Content-Length {cl} does not match Content-Range bytes {}-{}",
            cr.first, cr.last
        ));
    }
    Ok(cr)
}

/// The `Content-Length` of an answer, when it declares a valid one.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn answer(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let name = header::HeaderName::from_bytes(name.as_bytes()).unwrap();
            headers.append(name, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn range(first: u64, last: u64, complete_length: Option<u64>) -> ContentRange {
        parse_content_range(&match complete_length {
            Some(c) => format!("bytes {first}-{last}/{c}"),
            None => format!("bytes {first}-{last}/*"),
        })
        .unwrap()
    }

    #[test]
    fn a_range_holding_the_first_wanted_byte_is_accepted() {
        // Exactly what was asked.
        let h = answer(&[("content-range", b"bytes 100-199/1000"), ("content-length", b"100")]);
        assert_eq!(check_partial(&h, 100), Ok(range(100, 199, Some(1000))));
        // Starting before the wanted byte: the caller slices.
        let h = answer(&[("content-range", b"bytes 0-999/1000")]);
        assert_eq!(check_partial(&h, 500), Ok(range(0, 999, Some(1000))));
        // The wanted byte is the last one of the range.
        let h = answer(&[("content-range", b"bytes 0-499/*")]);
        assert_eq!(check_partial(&h, 499), Ok(range(0, 499, None)));
        // A single byte; no Content-Length (a chunked or HTTP/2 answer).
        let h = answer(&[("content-range", b"bytes 7-7/8")]);
        assert_eq!(check_partial(&h, 7), Ok(range(7, 7, Some(8))));
        // Spaces around the Content-Length are tolerated, as everywhere else.
        let h = answer(&[("content-range", b"bytes 0-9/10"), ("content-length", b" 10 ")]);
        assert_eq!(check_partial(&h, 0), Ok(range(0, 9, Some(10))));
    }

    #[test]
    fn a_range_not_holding_the_first_wanted_byte_is_refused() {
        let h = answer(&[("content-range", b"bytes 200-299/1000")]);
        let reason = check_partial(&h, 100).unwrap_err();
        assert!(reason.contains("from byte 100") && reason.contains("200-299"), "{reason}");
        // Ending just before it.
        let h = answer(&[("content-range", b"bytes 0-99/1000")]);
        assert!(check_partial(&h, 100).unwrap_err().contains("0-99"));
    }

    #[test]
    fn a_content_length_other_than_the_range_is_refused() {
        for cl in [&b"99"[..], b"101", b"0"] {
            let h = answer(&[("content-range", b"bytes 100-199/1000"), ("content-length", cl)]);
            let reason = check_partial(&h, 100).unwrap_err();
            assert!(reason.contains("Content-Length") && reason.contains("100-199"), "{reason}");
        }
    }

    #[test]
    fn a_missing_repeated_or_malformed_content_range_is_refused() {
        let h = answer(&[("content-length", b"100")]);
        assert_eq!(check_partial(&h, 0).unwrap_err(), "206 without a Content-Range");
        let h = answer(&[("content-range", b"bytes 0-99/1000"), ("content-range", b"bytes 0-99/1000")]);
        assert_eq!(check_partial(&h, 0).unwrap_err(), "206 with more than one Content-Range");
        for bad in [
            &b"bytes */1000"[..],
            b"bytes 9-3/1000",
            b"bytes 0-99/99",
            b"items 0-99/1000",
            b"bytes 0-99",
            b"",
            b"bytes 0-\xff/1000",
            b"bytes \xc3\xa9-99/1000",
        ] {
            let h = answer(&[("content-range", bad)]);
            let reason = check_partial(&h, 0).unwrap_err();
            assert!(reason.starts_with("206 with an invalid Content-Range"), "{reason}");
        }
    }

    #[test]
    fn range_values_name_the_last_byte() {
        assert_eq!(range_value(0, Some(188_000)), "bytes=0-187999");
        assert_eq!(range_value(500, None), "bytes=500-");
        assert_eq!(range_value(7, Some(8)), "bytes=7-7");
        assert_eq!(range_value(0, Some(0)), "bytes=0-0");
    }
}
