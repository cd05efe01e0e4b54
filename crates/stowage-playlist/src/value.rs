//! Scalar value types of the HLS grammar: decimal numbers kept exactly as written, byte ranges, dates and
//! resolutions.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;

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
#[allow(
    clippy::exhaustive_structs,
    reason = "EXT-X-BYTERANGE is a length and an optional offset, by the grammar"
)]
pub struct ByteRange {
    /// Length in bytes.
    pub length: u64,
    /// Start offset in bytes, if written.
    pub offset: Option<u64>,
}

impl ByteRange {
    /// A range of `length` bytes starting at `offset` (`None`: right after the previous sub-range). The offset
    /// comes first, as in every byte range of stowage (the bundle's and the fetch layer's), although the tag
    /// writes it last (`length@offset`).
    pub const fn new(offset: Option<u64>, length: u64) -> Self {
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
#[allow(clippy::exhaustive_structs, reason = "a resolution is a width and a height, closed by definition")]
pub struct Resolution {
    /// Width in pixels.
    pub width: u64,
    /// Height in pixels.
    pub height: u64,
}

impl Resolution {
    /// `width` × `height`.
    pub const fn new(width: u64, height: u64) -> Self {
        Self { width, height }
    }

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
///
/// Years 0000 to 9999 of the proleptic Gregorian calendar. A value is the written form: two values are
/// equal when they are written alike, so the same instant written with two offsets gives two different
/// values; compare [`DateTime::unix_seconds`] and [`DateTime::nanos`] for the instant.
///
/// ```
/// use stowage_playlist::DateTime;
/// let d: DateTime = "2024-02-29T23:30:00.250+02:00".parse()?;
/// assert_eq!(d.to_string(), "2024-02-29T23:30:00.250+02:00");
/// assert_eq!((d.unix_seconds(), d.nanos(), d.offset_minutes()), (1_709_242_200, 250_000_000, 120));
/// assert_eq!(d.to_utc().to_string(), "2024-02-29T21:30:00.250Z");
/// assert_eq!(DateTime::from_unix_millis(0).with_fraction_digits(0).to_string(), "1970-01-01T00:00:00Z");
/// assert!(DateTime::parse("2023-02-29T00:00:00Z").is_err());
/// # Ok::<(), stowage_playlist::Error>(())
/// ```
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

/// Unix seconds of 0000-01-01T00:00:00Z, the earliest instant a four-digit year can write.
const MIN_UNIX: i64 = -62_167_219_200;
/// Unix seconds of 9999-12-31T23:59:59Z, the latest.
const MAX_UNIX: i64 = 253_402_300_799;

impl DateTime {
    /// Parses an RFC 3339 date and time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with the offset
    /// forms found in playlists also accepted (`±HHMM`, `±HH`). The fraction has 1 to 9 digits; a leap
    /// second (`:60`) is accepted. The same as [`str::parse`].
    ///
    /// Errors with [`Error::InvalidDateTime`] naming what is wrong: a malformed field, a day that the
    /// month does not have (`2023-02-29`), an hour, minute or offset out of range.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::read(text).map_err(|reason| Error::InvalidDateTime { text: text.to_owned(), reason })
    }

    /// A UTC date and time from its parts (written with `Z` and no fraction), checked like a parsed one.
    ///
    /// ```
    /// use stowage_playlist::DateTime;
    /// let d = DateTime::from_utc(2038, 1, 19, 3, 14, 8)?;
    /// assert_eq!((d.to_string().as_str(), d.unix_seconds()), ("2038-01-19T03:14:08Z", 1i64 << 31));
    /// assert!(DateTime::from_utc(2023, 2, 30, 0, 0, 0).is_err());
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn from_utc(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Result<Self, Error> {
        let d = Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            fraction_digits: 0,
            nanos: 0,
            offset_minutes: 0,
            style: OffsetStyle::Zulu,
        };
        let check = if year > 9999 {
            Err("the year has more than four digits")
        } else {
            check_fields(u32::from(year), u32::from(month), u32::from(day), hour, minute, second)
        };
        match check {
            Ok(()) => Ok(d),
            Err(reason) => Err(Error::InvalidDateTime {
                text: format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"),
                reason,
            }),
        }
    }

    /// The date of a Unix timestamp (seconds and nanoseconds since 1970-01-01T00:00:00Z, negative
    /// before), in UTC with `Z`, written with millisecond precision (the value keeps the nanoseconds;
    /// [`DateTime::with_fraction_digits`] chooses another precision). Nanoseconds over a second carry
    /// into the seconds. Instants outside years 0000 to 9999 are brought to the nearest end.
    pub fn from_unix(seconds: i64, nanos: u32) -> Self {
        let seconds = seconds.saturating_add(i64::from(nanos / 1_000_000_000));
        Self::from_unix_with_offset(seconds, nanos % 1_000_000_000, 0, 3, OffsetStyle::Zulu)
    }

    /// The date of a Unix timestamp in milliseconds, as [`DateTime::from_unix`].
    pub fn from_unix_millis(millis: i64) -> Self {
        Self::from_unix(millis.div_euclid(1000), (millis.rem_euclid(1000) * 1_000_000) as u32)
    }

    /// The date of a [`SystemTime`], as [`DateTime::from_unix`] (in UTC with `Z`, written with
    /// millisecond precision, nanoseconds kept).
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(d) => Self::from_unix(i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
            Err(before) => {
                let d = before.duration();
                let secs = i64::try_from(d.as_secs()).map_or(i64::MIN, |s| -s);
                match d.subsec_nanos() {
                    0 => Self::from_unix(secs, 0),
                    n => Self::from_unix(secs.saturating_sub(1), 1_000_000_000 - n),
                }
            }
        }
    }

    /// The instant as a [`SystemTime`]; `None` where the platform's `SystemTime` cannot hold it (on
    /// some platforms, dates before 1601 or 1970).
    pub fn to_system_time(&self) -> Option<SystemTime> {
        let secs = self.unix_seconds();
        let nanos = self.nanos;
        if secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
        } else if nanos == 0 {
            UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
        } else {
            UNIX_EPOCH.checked_sub(Duration::new(secs.unsigned_abs() - 1, 1_000_000_000 - nanos))
        }
    }

    fn from_unix_with_offset(
        seconds: i64,
        nanos: u32,
        offset_minutes: i16,
        fraction_digits: u8,
        style: OffsetStyle,
    ) -> Self {
        // The local date must have four digits: an instant beyond either end is brought to that end.
        let local = seconds.saturating_add(i64::from(offset_minutes) * 60);
        let (local, nanos) = match local {
            l if l < MIN_UNIX => (MIN_UNIX, 0),
            l if l > MAX_UNIX => (MAX_UNIX, 999_999_999),
            l => (l, nanos),
        };
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        Self {
            year: y as u16,
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

    /// Milliseconds since the Unix epoch (rounded down).
    pub fn unix_millis(&self) -> i64 {
        self.unix_seconds() * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// The UTC offset in minutes as written (east positive).
    pub fn offset_minutes(&self) -> i16 {
        self.offset_minutes
    }

    /// The year, as written (in the written offset's local time, like the other parts).
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The hour, 0 to 23.
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// The minute, 0 to 59.
    pub fn minute(&self) -> u8 {
        self.minute
    }

    /// The second, 0 to 60 (60 for a leap second).
    pub fn second(&self) -> u8 {
        self.second
    }

    /// How many digits of fraction of a second are written, 0 to 9.
    pub fn fraction_digits(&self) -> u8 {
        self.fraction_digits
    }

    /// The same date written with `digits` digits of fraction of a second (at most 9; 0 writes none).
    /// What is not written is dropped, so that the value stays equal to a parse of its text.
    #[must_use]
    pub fn with_fraction_digits(mut self, digits: u8) -> Self {
        let digits = digits.min(9);
        let unit = 10u32.pow(u32::from(9 - digits));
        self.nanos -= self.nanos % unit;
        self.fraction_digits = digits;
        self
    }

    /// The same instant in UTC, written with `Z` and the same precision.
    #[must_use]
    pub fn to_utc(&self) -> Self {
        Self::from_unix_with_offset(
            self.unix_seconds(),
            self.nanos,
            0,
            self.fraction_digits,
            OffsetStyle::Zulu,
        )
    }

    /// This instant moved by `nanos` nanoseconds (negative moves back), written with the same offset and
    /// at least millisecond precision.
    #[must_use]
    pub fn add_nanos(&self, nanos: i128) -> Self {
        let total =
            (i128::from(self.unix_seconds()) * 1_000_000_000 + i128::from(self.nanos)).saturating_add(nanos);
        let secs = total.div_euclid(1_000_000_000).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        let ns = total.rem_euclid(1_000_000_000) as u32;
        let digits = self.fraction_digits.max(3);
        Self::from_unix_with_offset(secs, ns, self.offset_minutes, digits, self.style)
    }

    /// Parses without allocating; the error says what is wrong.
    pub(crate) fn read(s: &str) -> Result<Self, &'static str> {
        const SHAPE: &str = "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset";
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(SHAPE);
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, &'static str> {
            let mut n = 0u32;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return Err(SHAPE);
                }
                n = n * 10 + u32::from(c - b'0');
            }
            Ok(n)
        };
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
            return Err(SHAPE);
        }
        let year = num(0..4)?;
        let month = num(5..7)?;
        let day = num(8..10)?;
        let hour = num(11..13)?;
        let minute = num(14..16)?;
        let second = num(17..19)?;
        check_fields(year, month, day, hour as u8, minute as u8, second as u8)?;
        let mut i = 19;
        let mut nanos = 0u32;
        let mut fraction_digits = 0u8;
        if b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                if fraction_digits < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                fraction_digits = fraction_digits.saturating_add(1);
                i += 1;
            }
            if fraction_digits == 0 || fraction_digits > 9 {
                return Err("a fraction of a second has 1 to 9 digits");
            }
            nanos *= 10u32.pow(u32::from(9 - fraction_digits));
        }
        let rest = &b[i..];
        let (offset_minutes, style) = match rest {
            [b'Z' | b'z'] => (0, OffsetStyle::Zulu),
            [sign @ (b'+' | b'-'), ..] => {
                const OFFSET: &str = "expected an offset like +02:00, +0200 or +02";
                let tail = &s[i + 1..];
                // Checked first so that slicing by byte below cannot split a character.
                if !tail.is_ascii() {
                    return Err(OFFSET);
                }
                let (h, m, style) = match tail.len() {
                    5 if tail.as_bytes()[2] == b':' => (&tail[0..2], &tail[3..5], OffsetStyle::Colon),
                    4 => (&tail[0..2], &tail[2..4], OffsetStyle::NoColon),
                    2 => (&tail[0..2], "00", OffsetStyle::HoursOnly),
                    _ => return Err(OFFSET),
                };
                let h = parse_u64(h).ok_or(OFFSET)?;
                let m = parse_u64(m).ok_or(OFFSET)?;
                if h > 23 || m > 59 {
                    return Err("the offset is out of range");
                }
                let total = (h * 60 + m) as i16;
                (if *sign == b'-' { -total } else { total }, style)
            }
            [] => return Err("the offset (Z or like +02:00) is missing"),
            _ => return Err(SHAPE),
        };
        Ok(Self {
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

impl FromStr for DateTime {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl From<SystemTime> for DateTime {
    fn from(time: SystemTime) -> Self {
        Self::from_system_time(time)
    }
}

/// Checks the parts of a date and time: a month the year has, a day the month has, a time of day (with
/// a leap second).
fn check_fields(
    year: u32,
    month: u32,
    day: u32,
    hour: u8,
    minute: u8,
    second: u8,
) -> Result<(), &'static str> {
    if !(1..=12).contains(&month) {
        return Err("no such month");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("the month has no such day");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    Ok(())
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
            assert!(DateTime::parse(s).is_err(), "{s}");
        }
        assert!(DateTime::parse("2024-05-01T12:00:00+0200").is_ok());
    }

    #[test]
    fn unix_time_across_leap_years_and_epochs() {
        for (text, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59Z", -1),
            ("2000-02-29T00:00:00Z", 951_782_400),
            ("2000-03-01T00:00:00Z", 951_868_800),
            ("1900-03-01T00:00:00Z", -2_203_891_200),
            ("2038-01-19T03:14:07Z", i64::from(i32::MAX)),
            ("2038-01-19T03:14:08Z", 1 << 31),
            ("2100-03-01T00:00:00Z", 4_107_542_400),
            ("2400-02-29T12:00:00Z", 13_574_606_400),
            ("0000-01-01T00:00:00Z", MIN_UNIX),
            ("9999-12-31T23:59:59Z", MAX_UNIX),
        ] {
            let d = DateTime::parse(text).unwrap();
            assert_eq!(d.unix_seconds(), secs, "{text}");
            assert_eq!(DateTime::from_unix(secs, 0).with_fraction_digits(0), d, "{text}");
            assert_eq!(d.to_string(), text);
        }
        // Every day of four centuries maps to a date and back.
        for day in (-146_097 * 2)..(146_097 * 2) {
            let d = DateTime::from_unix(day * 86_400 + 43_200, 0);
            assert_eq!(d.unix_seconds(), day * 86_400 + 43_200);
            assert_eq!(
                DateTime::from_utc(d.year(), d.month(), d.day(), 12, 0, 0).unwrap().unix_seconds(),
                d.unix_seconds()
            );
        }
    }

    #[test]
    fn offsets_and_fractions() {
        let d = DateTime::parse("2024-01-01T01:30:00.5+01:30").unwrap();
        assert_eq!((d.unix_seconds(), d.nanos(), d.offset_minutes()), (1_704_067_200, 500_000_000, 90));
        assert_eq!(d.to_utc().to_string(), "2024-01-01T00:00:00.5Z");
        let d = DateTime::parse("2023-12-31T19:00:00.123456789-05:00").unwrap();
        assert_eq!((d.unix_seconds(), d.nanos(), d.offset_minutes()), (1_704_067_200, 123_456_789, -300));
        assert_eq!(d.unix_millis(), 1_704_067_200_123);
        assert_eq!(d.to_utc().to_string(), "2024-01-01T00:00:00.123456789Z");
        assert_eq!(d.with_fraction_digits(2).to_string(), "2023-12-31T19:00:00.12-05:00");
        assert_eq!(d.with_fraction_digits(2).nanos(), 120_000_000);
        let d = DateTime::parse("1970-01-01T00:00:00-00:30").unwrap();
        assert_eq!(d.unix_seconds(), 1800);
        // Before the epoch, milliseconds round down like the seconds.
        let d = DateTime::from_unix_millis(-1);
        assert_eq!((d.to_string().as_str(), d.unix_millis()), ("1969-12-31T23:59:59.999Z", -1));
        assert_eq!(DateTime::from_unix(0, 1_500_000_000).to_string(), "1970-01-01T00:00:01.500Z");
        // A leap second is kept as written and counts as the next second's start.
        let d = DateTime::parse("2016-12-31T23:59:60Z").unwrap();
        assert_eq!((d.to_string().as_str(), d.unix_seconds()), ("2016-12-31T23:59:60Z", 1_483_228_800));
    }

    #[test]
    fn system_time_both_ways() {
        for (secs, nanos) in [(0i64, 0u32), (1_700_000_000, 123_456_789), (-1, 250_000_000), (-86_400, 0)] {
            let d = DateTime::from_unix(secs, nanos);
            let t = d.to_system_time().unwrap();
            let back = DateTime::from_system_time(t);
            assert_eq!((back.unix_seconds(), back.nanos()), (secs, nanos));
            assert_eq!(DateTime::from(t), back);
        }
        let t = UNIX_EPOCH + Duration::new(4_102_444_800, 7);
        assert_eq!(DateTime::from(t).with_fraction_digits(9).to_string(), "2100-01-01T00:00:00.000000007Z");
        let d = DateTime::parse("2000-01-01T00:00:00+01:00").unwrap();
        assert_eq!(d.to_system_time(), Some(UNIX_EPOCH + Duration::from_secs(946_681_200)));
    }

    #[test]
    fn beyond_four_digit_years_is_brought_to_the_ends() {
        assert_eq!(DateTime::from_unix(i64::MAX, 0).to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(DateTime::from_unix(i64::MIN, 0).to_string(), "0000-01-01T00:00:00.000Z");
        let d = DateTime::parse("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(d.add_nanos(10_000_000_000).to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(d.add_nanos(i128::MAX).to_string(), "9999-12-31T23:59:59.999Z");
        assert!(DateTime::from_utc(10_000, 1, 1, 0, 0, 0).is_err());
    }

    #[test]
    fn invalid_dates_are_refused_with_a_reason() {
        for (text, reason) in [
            ("2023-02-29T00:00:00Z", "the month has no such day"),
            ("2024-02-30T00:00:00Z", "the month has no such day"),
            ("2100-02-29T00:00:00Z", "the month has no such day"),
            ("2024-04-31T00:00:00Z", "the month has no such day"),
            ("2024-00-10T00:00:00Z", "no such month"),
            ("2024-13-10T00:00:00Z", "no such month"),
            ("2024-01-00T00:00:00Z", "the month has no such day"),
            ("2024-01-01T24:00:00Z", "no such time of day"),
            ("2024-01-01T23:60:00Z", "no such time of day"),
            ("2024-01-01T23:59:61Z", "no such time of day"),
            ("2024-01-01T00:00:00", "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset"),
            ("2024-01-01T00:00:00ZZ", "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset"),
            ("2024-01-01 00:00:00Z", "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset"),
            ("2024-01-01T00:00:00.Z", "a fraction of a second has 1 to 9 digits"),
            ("2024-01-01T00:00:00.1234567891Z", "a fraction of a second has 1 to 9 digits"),
            ("2024-01-01T00:00:00+24:00", "the offset is out of range"),
            ("2024-01-01T00:00:00+02:0", "expected an offset like +02:00, +0200 or +02"),
            ("2024-01-01T00:00:00+", "expected an offset like +02:00, +0200 or +02"),
        ] {
            let err = text.parse::<DateTime>().unwrap_err();
            assert_eq!(err, Error::InvalidDateTime { text: text.to_owned(), reason }, "{text}");
        }
        assert_eq!(DateTime::parse("2024-02-29T00:00:00Z").unwrap().day(), 29);
        let err = DateTime::from_utc(2023, 2, 30, 0, 0, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`2023-02-30T00:00:00Z` is not a date and time: the month has no such day"
        );
    }

    #[test]
    fn written_text_parses_back_to_the_same_value() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = (x % (MAX_UNIX - MIN_UNIX) as u64) as i64 + MIN_UNIX;
            let d = DateTime::from_unix(secs, (x >> 33) as u32 % 1_000_000_000)
                .with_fraction_digits((x % 10) as u8);
            assert_eq!(DateTime::parse(&d.to_string()), Ok(d), "{d}");
        }
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
        assert!(DateTime::parse("2023-02-29T00:00:00Z").is_err());
        assert!(DateTime::parse("2023-02-28 00:00:00Z").is_err());
    }

    #[test]
    fn byte_range_and_resolution() {
        assert_eq!(ByteRange::parse("100@20"), Some(ByteRange::new(Some(20), 100)));
        assert_eq!(ByteRange::parse("100"), Some(ByteRange::new(None, 100)));
        assert!(ByteRange::parse("@2").is_none());
        assert_eq!(Resolution::parse("1920x1080").unwrap().to_string(), "1920x1080");
    }
}
