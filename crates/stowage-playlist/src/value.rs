//! Scalar value types of the HLS grammar: decimal numbers kept exactly as written, byte ranges, dates and
//! resolutions.

use std::fmt;

/// A non-negative decimal number kept exactly as written (`6.006` stays `6.006`, `10.000` stays `10.000`),
/// so that writing a parsed playlist reproduces its bytes and sums of durations are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    mantissa: u64,
    scale: u8,
}

impl Decimal {
    /// The number `mantissa × 10^-scale`, written with exactly `scale` fractional digits.
    /// `scale` is capped at 19, the most a `u64` mantissa can carry.
    pub const fn new(mantissa: u64, scale: u8) -> Self {
        let scale = if scale > 19 { 19 } else { scale };
        Self { mantissa, scale }
    }

    /// A whole number, written without a fractional part.
    pub const fn from_integer(value: u64) -> Self {
        Self { mantissa: value, scale: 0 }
    }

    /// The nearest decimal with `scale` fractional digits to a non-negative `f64` (negative and
    /// non-finite values become zero).
    pub fn from_f64(value: f64, scale: u8) -> Self {
        let scale = scale.min(9);
        let factor = 10f64.powi(i32::from(scale));
        let scaled = (value * factor).round();
        let mantissa = if scaled.is_finite() && scaled > 0.0 { scaled as u64 } else { 0 };
        Self { mantissa, scale }
    }

    /// The digits without the decimal point.
    pub const fn mantissa(self) -> u64 {
        self.mantissa
    }

    /// The number of fractional digits.
    pub const fn scale(self) -> u8 {
        self.scale
    }

    /// The value as a float (exact for the usual three to six fractional digits of a duration).
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(i32::from(self.scale))
    }

    /// The value in whole nanoseconds, saturating (used for exact sums of durations).
    pub fn to_nanos(self) -> u128 {
        let m = u128::from(self.mantissa);
        if self.scale <= 9 {
            m * 10u128.pow(u32::from(9 - self.scale))
        } else {
            m / 10u128.pow(u32::from(self.scale - 9))
        }
    }

    /// The value rounded to the nearest integer, halves rounded up (how TARGETDURATION compares to a
    /// segment's duration).
    pub fn round(self) -> u64 {
        if self.scale == 0 {
            return self.mantissa;
        }
        let div = 10u64.pow(u32::from(self.scale));
        let whole = self.mantissa / div;
        let frac = self.mantissa % div;
        if frac * 2 >= div { whole + 1 } else { whole }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let mut mantissa: u64 = 0;
        let mut i = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
            i += 1;
        }
        if i == 0 {
            return None;
        }
        let mut scale = 0u8;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
                scale += 1;
                i += 1;
            }
            if scale == 0 || scale > 19 {
                return None;
            }
        }
        if i != b.len() {
            return None;
        }
        Some(Self { mantissa, scale })
    }

    pub(crate) fn write(self, out: &mut String) {
        if self.scale == 0 {
            push_u64(out, self.mantissa);
            return;
        }
        let div = 10u64.pow(u32::from(self.scale));
        push_u64(out, self.mantissa / div);
        out.push('.');
        let frac = self.mantissa % div;
        let mut buf = [b'0'; 20];
        let mut n = frac;
        let mut i = usize::from(self.scale);
        while i > 0 {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        for &c in &buf[..usize::from(self.scale)] {
            out.push(char::from(c));
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// Appends the decimal digits of `n` without going through `fmt` (the writer's hot path).
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &c in &buf[i..] {
        out.push(char::from(c));
    }
}

/// Parses a decimal-integer (`0` to `2^64-1`, digits only).
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// Parses a (possibly signed) decimal-floating-point.
pub(crate) fn parse_float(s: &str, signed: bool) -> Option<f64> {
    let digits = match s.strip_prefix('-') {
        Some(rest) if signed => rest,
        Some(_) => return None,
        None => s,
    };
    let b = digits.as_bytes();
    let mut seen_digit = false;
    let mut seen_dot = false;
    for &c in b {
        match c {
            b'0'..=b'9' => seen_digit = true,
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if !seen_digit || b.first() == Some(&b'.') || b.last() == Some(&b'.') {
        return None;
    }
    s.parse().ok()
}

/// A sub-range of a resource: `length` bytes starting at `offset`, or, when `offset` is absent, right after
/// the previous sub-range of the same resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// Length in bytes.
    pub length: u64,
    /// Start offset in bytes, if written.
    pub offset: Option<u64>,
}

impl ByteRange {
    /// A range of `length` bytes starting at `offset`.
    pub const fn new(length: u64, offset: Option<u64>) -> Self {
        Self { length, offset }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        // One pass over the bytes: this runs once per segment in byte-range playlists.
        let b = s.as_bytes();
        let digits = |b: &[u8]| -> Option<u64> {
            if b.is_empty() || b.len() > 20 {
                return None;
            }
            b.iter().try_fold(0u64, |n, &c| {
                if c.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(c - b'0')) } else { None }
            })
        };
        match b.iter().position(|&c| c == b'@') {
            Some(at) => Some(Self { length: digits(&b[..at])?, offset: Some(digits(&b[at + 1..])?) }),
            None => Some(Self { length: digits(b)?, offset: None }),
        }
    }

    pub(crate) fn write(self, out: &mut String) {
        push_u64(out, self.length);
        if let Some(o) = self.offset {
            out.push('@');
            push_u64(out, o);
        }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// A video resolution, `WIDTHxHEIGHT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resolution {
    /// Width in pixels.
    pub width: u64,
    /// Height in pixels.
    pub height: u64,
}

impl Resolution {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (w, h) = s.split_once(['x', 'X'])?;
        Some(Self { width: parse_u64(w)?, height: parse_u64(h)? })
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// How a date's UTC offset was written, so that it is written back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum OffsetStyle {
    Zulu,
    Colon,
    NoColon,
    HoursOnly,
}

/// An RFC 3339 date and time with its UTC offset, kept as written (`Z`, `+02:00`, `+0000` and `+02` all
/// round-trip), as used by EXT-X-PROGRAM-DATE-TIME and EXT-X-DATERANGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    fraction_digits: u8,
    nanos: u32,
    offset_minutes: i16,
    style: OffsetStyle,
}

impl DateTime {
    /// The date of a Unix timestamp (seconds and nanoseconds since 1970-01-01T00:00:00Z) written in UTC
    /// with `Z` and millisecond precision.
    pub fn from_unix(seconds: i64, nanos: u32) -> Self {
        Self::from_unix_with_offset(seconds, nanos, 0, 3, OffsetStyle::Zulu)
    }

    fn from_unix_with_offset(
        seconds: i64,
        nanos: u32,
        offset_minutes: i16,
        fraction_digits: u8,
        style: OffsetStyle,
    ) -> Self {
        let local = seconds + i64::from(offset_minutes) * 60;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        Self {
            year: y.clamp(0, 9999) as u16,
            month: m as u8,
            day: d as u8,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            fraction_digits,
            nanos,
            offset_minutes,
            style,
        }
    }

    /// Seconds since the Unix epoch (the instant, independent of the offset it was written with).
    pub fn unix_seconds(&self) -> i64 {
        let days = days_from_civil(i64::from(self.year), i64::from(self.month), i64::from(self.day));
        days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
            - i64::from(self.offset_minutes) * 60
    }

    /// The nanoseconds within the second.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.unix_seconds() * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// The UTC offset in minutes as written (east positive).
    pub fn offset_minutes(&self) -> i16 {
        self.offset_minutes
    }

    /// This instant moved by `nanos` nanoseconds (negative moves back), written with the same offset and
    /// at least millisecond precision.
    pub fn add_nanos(&self, nanos: i128) -> Self {
        let total = i128::from(self.unix_seconds()) * 1_000_000_000 + i128::from(self.nanos) + nanos;
        let secs = total.div_euclid(1_000_000_000) as i64;
        let ns = total.rem_euclid(1_000_000_000) as u32;
        let digits = self.fraction_digits.max(3);
        Self::from_unix_with_offset(secs, ns, self.offset_minutes, digits, self.style)
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let mut n = 0u32;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u32::from(c - b'0');
            }
            Some(n)
        };
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let year = num(0..4)?;
        let month = num(5..7)?;
        let day = num(8..10)?;
        let hour = num(11..13)?;
        let minute = num(14..16)?;
        let second = num(17..19)?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0u32;
        let mut fraction_digits = 0u8;
        if b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                if fraction_digits < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                fraction_digits = fraction_digits.checked_add(1)?;
                i += 1;
            }
            if fraction_digits == 0 || fraction_digits > 9 {
                return None;
            }
            nanos *= 10u32.pow(u32::from(9 - fraction_digits));
        }
        let rest = &b[i..];
        let (offset_minutes, style) = match rest {
            [b'Z' | b'z'] => (0, OffsetStyle::Zulu),
            [sign @ (b'+' | b'-'), ..] => {
                let tail = &s[i + 1..];
                // Checked first so that slicing by byte below cannot split a character.
                if !tail.is_ascii() {
                    return None;
                }
                let (h, m, style) = match tail.len() {
                    5 if tail.as_bytes()[2] == b':' => (&tail[0..2], &tail[3..5], OffsetStyle::Colon),
                    4 => (&tail[0..2], &tail[2..4], OffsetStyle::NoColon),
                    2 => (&tail[0..2], "00", OffsetStyle::HoursOnly),
                    _ => return None,
                };
                let h = parse_u64(h)?;
                let m = parse_u64(m)?;
                if h > 23 || m > 59 {
                    return None;
                }
                let total = (h * 60 + m) as i16;
                (if *sign == b'-' { -total } else { total }, style)
            }
            _ => return None,
        };
        Some(Self {
            year: year as u16,
            month: month as u8,
            day: day as u8,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            fraction_digits,
            nanos,
            offset_minutes,
            style,
        })
    }

    pub(crate) fn write(&self, out: &mut String) {
        let two = |out: &mut String, n: u8| {
            out.push(char::from(b'0' + n / 10));
            out.push(char::from(b'0' + n % 10));
        };
        let y = self.year;
        for d in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
            out.push(char::from(b'0' + d as u8));
        }
        out.push('-');
        two(out, self.month);
        out.push('-');
        two(out, self.day);
        out.push('T');
        two(out, self.hour);
        out.push(':');
        two(out, self.minute);
        out.push(':');
        two(out, self.second);
        if self.fraction_digits > 0 {
            out.push('.');
            let mut n = self.nanos;
            let mut digits = [b'0'; 9];
            for d in digits.iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            for &d in &digits[..usize::from(self.fraction_digits)] {
                out.push(char::from(d));
            }
        }
        let m = self.offset_minutes.unsigned_abs();
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        match self.style {
            OffsetStyle::Zulu => out.push('Z'),
            OffsetStyle::Colon => {
                out.push(sign);
                two(out, (m / 60) as u8);
                out.push(':');
                two(out, (m % 60) as u8);
            }
            OffsetStyle::NoColon => {
                out.push(sign);
                two(out, (m / 60) as u8);
                two(out, (m % 60) as u8);
            }
            OffsetStyle::HoursOnly => {
                out.push(sign);
                two(out, (m / 60) as u8);
            }
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days-from-civil algorithm: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_offsets_with_non_ascii_bytes_are_refused_not_sliced() {
        // Found by fuzzing: a four-byte offset made of one multibyte character used to be sliced mid-char.
        for s in ["2024-05-01T12:00:00+\u{feff}#", "2024-05-01T12:00:00+\u{bfeff}", "2024-05-01T12:00:00-é0:"]
        {
            assert_eq!(DateTime::parse(s), None, "{s}");
        }
        assert!(DateTime::parse("2024-05-01T12:00:00+0200").is_some());
    }

    #[test]
    fn decimal_round_trips_as_written() {
        for s in ["6.006", "10", "10.000", "0.5", "9.97667"] {
            assert_eq!(Decimal::parse(s).unwrap().to_string(), s);
        }
        assert!(Decimal::parse("1.").is_none());
        assert!(Decimal::parse(".5").is_none());
        assert!(Decimal::parse("-1").is_none());
        assert_eq!(Decimal::parse("6.006").unwrap().to_nanos(), 6_006_000_000);
        assert_eq!(Decimal::parse("10.5").unwrap().round(), 11);
    }

    #[test]
    fn dates_keep_their_offset_style() {
        for s in [
            "2010-02-19T14:54:23.031+08:00",
            "2010-02-19T14:54:23Z",
            "2010-02-19T14:54:23.031+0000",
            "2010-02-19T14:54:23-05",
        ] {
            assert_eq!(DateTime::parse(s).unwrap().to_string(), s);
        }
        let d = DateTime::parse("1970-01-01T01:00:00+01:00").unwrap();
        assert_eq!(d.unix_seconds(), 0);
        let d = DateTime::parse("2024-02-29T23:59:59.500Z").unwrap();
        assert_eq!(d.add_nanos(500_000_000).to_string(), "2024-03-01T00:00:00.000Z");
        assert!(DateTime::parse("2023-02-29T00:00:00Z").is_none());
        assert!(DateTime::parse("2023-02-28 00:00:00Z").is_none());
    }

    #[test]
    fn byte_range_and_resolution() {
        assert_eq!(ByteRange::parse("100@20"), Some(ByteRange::new(100, Some(20))));
        assert_eq!(ByteRange::parse("100"), Some(ByteRange::new(100, None)));
        assert!(ByteRange::parse("@2").is_none());
        assert_eq!(Resolution::parse("1920x1080").unwrap().to_string(), "1920x1080");
    }
}
