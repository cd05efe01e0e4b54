//! Sizes, rates and dates as people type and read them.

use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use stowage_playlist::DateTime;

/// Parses a size: a number with an optional unit, decimal (`K`, `M`, `G`, `T`, optionally followed by
/// `B`) or binary (`KiB`, `MiB`, `GiB`, `TiB`). `1.5G` is 1,500,000,000 bytes.
pub(crate) fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().with_context(|| format!("`{text}` is not a size (like 500M or 2GiB)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => bail!("`{text}`: unknown size unit `{other}` (use K, M, G, T, or KiB, MiB, GiB, TiB)"),
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        bail!("`{text}` is out of range");
    }
    Ok(bytes.round() as u64)
}

/// Parses a span: an amount and a unit (`45s`, `90m`, `12h`, `30d`, `2w`).
pub(crate) fn parse_span(text: &str) -> anyhow::Result<Duration> {
    let t = text.trim();
    let Some(unit) = t.chars().last().filter(char::is_ascii_alphabetic) else {
        bail!("`{text}` is not a span like 90m or 12h (a unit is needed)");
    };
    let amount: u64 =
        t[..t.len() - 1].parse().with_context(|| format!("`{text}` is not a span like 90m or 12h"))?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => bail!("`{text}`: unknown unit `{unit}` (use s, m, h, d or w)"),
    };
    Ok(Duration::from_secs(amount.saturating_mul(seconds)))
}

/// Parses an expiry: a span from now (`30d`, `12h`, `90m`, `2w`) or a UTC date (`2027-01-31`) or date
/// and time (`2027-01-31T18:00:00Z`).
pub(crate) fn parse_expiry(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    let t = text.trim();
    if t.chars().last().is_some_and(|c| c.is_ascii_alphabetic() && !t.contains('-')) {
        return Ok(now + parse_span(t).with_context(|| format!("`{text}` is not a span nor a date"))?);
    }
    parse_utc(t).with_context(|| format!("`{text}` is not a date like 2027-01-31 or 2027-01-31T18:00:00Z"))
}

fn parse_utc(t: &str) -> anyhow::Result<SystemTime> {
    let (date, time) = match t.split_once(['T', 't', ' ']) {
        Some((d, rest)) => (d, Some(rest.trim_end_matches(['Z', 'z']))),
        None => (t, None),
    };
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected YYYY-MM-DD");
    };
    let (year, month, day): (u16, u8, u8) = (y.parse()?, m.parse()?, d.parse()?);
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if let Some(time) = time {
        let mut hms = time.splitn(3, ':');
        hour = hms.next().unwrap_or("0").parse()?;
        minute = hms.next().unwrap_or("0").parse()?;
        second = hms.next().unwrap_or("0").parse()?;
    }
    // The calendar (days per month, leap years) is the playlist crate's, checked the same way.
    let moment = DateTime::from_utc(year, month, day, hour, minute, second)?;
    if moment.unix_seconds() < 0 {
        bail!("before 1970");
    }
    moment.to_system_time().context("not representable on this system")
}

/// Formats a time as a UTC date and time, `2027-01-31 18:00:00Z`.
pub(crate) fn format_utc(time: SystemTime) -> String {
    // RFC 3339 with a space for the `T`, which it allows for readability.
    DateTime::from_system_time(time).with_fraction_digits(0).to_string().replacen('T', " ", 1)
}

/// Formats a byte count with a decimal unit, `387.2 KB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Formats a duration in seconds as `12.0 s`, `4:05` or `1:02:03`.
pub(crate) fn human_duration(seconds: f64) -> String {
    let total = seconds.round() as u64;
    if total >= 3600 {
        format!("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
    } else if total >= 60 {
        format!("{}:{:02}", total / 60, total % 60)
    } else {
        format!("{seconds:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::UNIX_EPOCH;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500").unwrap(), 500);
        assert_eq!(parse_size("5M").unwrap(), 5_000_000);
        assert_eq!(parse_size("1.5G").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("10 kb").unwrap(), 10_000);
        assert!(parse_size("5X").unwrap_err().to_string().contains("unknown size unit"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn expiries() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_expiry("2d", now).unwrap(), now + Duration::from_secs(172_800));
        assert_eq!(parse_expiry("90m", now).unwrap(), now + Duration::from_secs(5400));
        let date = parse_expiry("2027-01-31", now).unwrap();
        assert_eq!(format_utc(date), "2027-01-31 00:00:00Z");
        let moment = parse_expiry("2024-02-29T18:30:05Z", now).unwrap();
        assert_eq!(format_utc(moment), "2024-02-29 18:30:05Z");
        assert!(parse_expiry("2023-02-29", now).is_err());
        assert!(parse_expiry("2023-13-01", now).is_err());
        assert!(parse_expiry("3y", now).is_err());
        assert!(parse_expiry("soon", now).is_err());
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00:00Z");
        let leap = parse_expiry("2400-02-29 23:59", now).unwrap();
        assert_eq!(format_utc(leap), "2400-02-29 23:59:00Z");
        assert_eq!(format_utc(parse_expiry("2038-01-19T03:14:08", now).unwrap()), "2038-01-19 03:14:08Z");
        assert!(parse_expiry("2100-02-29", now).is_err());
        assert!(parse_expiry("2027-04-31", now).is_err());
        assert!(parse_expiry("2027-01-31T24:00", now).is_err());
        assert!(parse_expiry("1969-12-31", now).is_err());
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(387_200), "387.2 KB");
        assert_eq!(human_duration(12.0), "12.0 s");
        assert_eq!(human_duration(245.0), "4:05");
        assert_eq!(human_duration(3723.0), "1:02:03");
    }
}
