//! Timestamps in the manifest: RFC 3339 in UTC, to the second (`2026-11-24T08:30:00Z`).
//!
//! Written by hand rather than with a date crate: the manifest needs only this one format, and the
//! conversion between days and civil dates is a few lines (Howard Hinnant's `days_from_civil`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a time as RFC 3339 UTC, to the second. Times before 1970 are written as the epoch.
pub(crate) fn format(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`); `None` when malformed.
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |s: &str| -> Option<i64> {
        if s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
    };
    let (y, mo, d) = (num(text.get(0..4)?)?, num(text.get(5..7)?)?, num(text.get(8..10)?)?);
    let (h, mi, s) = (num(text.get(11..13)?)?, num(text.get(14..16)?)?, num(text.get(17..19)?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return None;
            }
            let (oh, om) = (num(rest.get(1..3)?)?, num(rest.get(4..6)?)?);
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
    };
    let total = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    let total = u64::try_from(total).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(total))
}

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
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
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

    #[test]
    fn round_trips() {
        for secs in [0u64, 951_782_400, 1_790_000_000, 4_102_444_800, 253_402_300_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse(&format(t)), Some(t), "{secs}");
        }
        assert_eq!(format(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        let z = parse("2026-11-24T08:30:00Z").unwrap();
        assert_eq!(parse("2026-11-24T10:30:00.123+02:00"), Some(z));
        for bad in [
            "",
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T08:30:00",
            "x026-11-24T08:30:00Z",
            "2026-11-24T08:30:00+0200",
            "1960-01-01T00:00:00Z",
            "2026-11-24T08:30:00.Z",
            "2026-11-24T08:30:00Zé",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
