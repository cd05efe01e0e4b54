//! Parsers for the response headers the client acts on: `Retry-After` and `Content-Range`.
//!
//! They are plain functions on strings that never panic, whatever the input. They are not part of the API;
//! the fuzz targets reach them through `__fuzz`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A parsed `Content-Range` header of a `206` answer (RFC 9110, section 14.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContentRange {
    /// First byte position, inclusive.
    pub first: u64,
    /// Last byte position, inclusive.
    pub last: u64,
    /// The complete length of the resource, when the server knows it.
    pub complete_length: Option<u64>,
}

impl ContentRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always `false`: a satisfied byte range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Parses `bytes first-last/complete` or `bytes first-last/*`.
///
/// Returns `None` for anything else, including the `bytes */complete` form (which only appears on
/// `416` answers), a last position before the first, or a complete length not beyond the last position.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?;
    let rest = rest.strip_prefix(|c: char| c == ' ' || c == '\t')?.trim_start();
    let (range, complete) = rest.split_once('/')?;
    let (first, last) = range.trim().split_once('-')?;
    let first = parse_u64(first.trim())?;
    let last = parse_u64(last.trim())?;
    if last < first {
        return None;
    }
    let complete = complete.trim();
    let complete_length = if complete == "*" {
        None
    } else {
        let c = parse_u64(complete)?;
        if c <= last {
            return None;
        }
        Some(c)
    };
    Some(ContentRange { first, last, complete_length })
}

/// Parses `Retry-After`: either delay-seconds or an HTTP-date, which is turned into a delay from `now`
/// (a date in the past gives zero). Returns `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate instead of failing: the caller caps the delay anyway.
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an HTTP-date in the preferred IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), and the
/// obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms that
/// recipients must still accept.
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let v = value.trim();
    let (day, month, year, time) = if let Some((_, rest)) = v.split_once(", ") {
        let parts: Vec<&str> = rest.split_whitespace().collect();
        match parts.as_slice() {
            // IMF-fixdate: 06 Nov 1994 08:49:37 GMT
            [d, m, y, t, "GMT"] => (parse_u64(d)?, month_number(m)?, parse_u64(y)?, *t),
            // RFC 850: 06-Nov-94 08:49:37 GMT
            [dmy, t, "GMT"] => {
                let mut it = dmy.split('-');
                let d = parse_u64(it.next()?)?;
                let m = month_number(it.next()?)?;
                let y = parse_u64(it.next()?)?;
                if it.next().is_some() {
                    return None;
                }
                // Two-digit years are interpreted as the nearest century, as RFC 9110 asks.
                let y = if y < 70 {
                    2000 + y
                } else if y < 100 {
                    1900 + y
                } else {
                    y
                };
                (d, m, y, *t)
            }
            _ => return None,
        }
    } else {
        // asctime: Sun Nov  6 08:49:37 1994
        let parts: Vec<&str> = v.split_whitespace().collect();
        match parts.as_slice() {
            [_, m, d, t, y] => (parse_u64(d)?, month_number(m)?, parse_u64(y)?, *t),
            _ => return None,
        }
    };
    let mut hms = time.split(':');
    let h = parse_u64(hms.next()?)?;
    let mi = parse_u64(hms.next()?)?;
    let s = parse_u64(hms.next()?)?;
    if hms.next().is_some() || h > 23 || mi > 59 || s > 60 || !(1..=31).contains(&day) {
        return None;
    }
    if !(1970..=9999).contains(&year) || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days.checked_mul(86_400)?.checked_add(h * 3600 + mi * 60 + s)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month_number(m: &str) -> Option<u64> {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    MONTHS.iter().position(|&name| name == m).map(|i| i as u64 + 1)
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a date at or after it (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some(ContentRange { first: 0, last: 99, complete_length: Some(1000) })
        );
        assert_eq!(
            parse_content_range("bytes 5-5/*"),
            Some(ContentRange { first: 5, last: 5, complete_length: None })
        );
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 9-3/1000"), None);
        assert_eq!(parse_content_range("bytes 0-99/99"), None);
        assert_eq!(parse_content_range("items 0-99/1000"), None);
        assert_eq!(parse_content_range("bytes 0-99999999999999999999/*"), None);
        assert_eq!(parse_content_range("bytes -1-5/10"), None);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:57 GMT", now), Some(Duration::from_secs(20)));
        assert_eq!(parse_retry_after("Sun Nov  6 08:50:37 1994", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("Sun, 31 Feb 1994 08:00:00 GMT", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn leap_days() {
        let t = parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_709_164_800);
        assert_eq!(parse_http_date("Thu, 29 Feb 2023 00:00:00 GMT"), None);
    }
}
