//! Timestamps in the manifest: RFC 3339 in UTC, to the second (`2026-11-24T08:30:00Z`).
//!
//! The calendar arithmetic is the playlist crate's [`DateTime`], the same that reads and writes
//! EXT-X-PROGRAM-DATE-TIME.

use std::time::{SystemTime, UNIX_EPOCH};

use stowage_playlist::DateTime;

/// Formats a time as RFC 3339 UTC, to the second. Times before 1970 are written as the epoch.
pub(crate) fn format(time: SystemTime) -> String {
    DateTime::from_system_time(time.max(UNIX_EPOCH)).with_fraction_digits(0).to_string()
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, a space also accepted between date and
/// time); `None` when malformed or before 1970.
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    // RFC 3339 allows a space for the `T` (section 5.6, note); the playlist grammar does not.
    let date = match text.as_bytes().get(10) {
        Some(b' ') => DateTime::parse(&format!("{}T{}", &text[..10], &text[11..])),
        _ => DateTime::parse(text),
    }
    .ok()?;
    if date.unix_seconds() < 0 {
        return None;
    }
    date.to_system_time()
}

/// Formats a time as RFC 3339 UTC to the millisecond, as program date times are written.
pub(crate) fn format_millis(time: SystemTime) -> String {
    DateTime::from_system_time(time.max(UNIX_EPOCH)).with_fraction_digits(3).to_string()
}

/// Serde helpers for a pair of times (a span of program date times) as RFC 3339 strings to the
/// millisecond.
pub(crate) mod serde_span {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub(crate) fn serialize<S: Serializer>(
        span: &Option<(SystemTime, SystemTime)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match span {
            Some((a, b)) => s.serialize_some(&[super::format_millis(*a), super::format_millis(*b)]),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<(SystemTime, SystemTime)>, D::Error> {
        let Some([a, b]) = Option::<[String; 2]>::deserialize(d)? else { return Ok(None) };
        let parse = |text: &str| {
            super::parse(text)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 time {text:?}")))
        };
        Ok(Some((parse(&a)?, parse(&b)?)))
    }
}

/// Serde helpers for `SystemTime` and `Option<SystemTime>` as RFC 3339 strings.
pub(crate) mod serde_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub(crate) fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 time {text:?}")))
    }

    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
            match time {
                Some(t) => s.serialize_some(&super::super::format(*t)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => super::super::parse(&text)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 time {text:?}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    #[test]
    fn round_trips() {
        for secs in [0u64, 951_782_400, 1_790_000_000, 4_102_444_800, 253_402_300_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse(&format(t)), Some(t), "{secs}");
        }
        assert_eq!(format(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(format(UNIX_EPOCH + Duration::new(1_790_000_000, 999_999_999)), "2026-09-21T14:13:20Z");
        assert_eq!(format(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        let z = parse("2026-11-24T08:30:00Z").unwrap();
        assert_eq!(parse("2026-11-24T10:30:00+02:00"), Some(z));
        assert_eq!(parse("2026-11-24 08:30:00Z"), Some(z));
        assert_eq!(parse("2026-11-24T03:30:00-0500"), Some(z));
        let fraction = parse("2026-11-24T10:30:00.123+02:00").unwrap();
        assert_eq!(fraction.duration_since(z).unwrap(), Duration::from_millis(123));
        for bad in [
            "",
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T08:30:00",
            "x026-11-24T08:30:00Z",
            "1960-01-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-11-24T08:30:00+24:00",
            "2026-11-24T08:30:00.Z",
            "2026-11-24T08:30:00Zé",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
