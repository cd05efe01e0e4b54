//! Sizes, rates and dates as people type and read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

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

/// Parses an expiry: a span from now (`30d`, `12h`, `90m`, `2w`) or a UTC date (`2027-01-31`) or date
/// and time (`2027-01-31T18:00:00Z`).
pub(crate) fn parse_expiry(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    let t = text.trim();
    if let Some(unit) = t.chars().last().filter(|c| c.is_ascii_alphabetic() && !t.contains('-')) {
        let amount: u64 = t[..t.len() - 1]
            .parse()
            .with_context(|| format!("`{text}` is not a span like 30d or 12h, nor a date"))?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => bail!("`{text}`: unknown unit `{unit}` (use s, m, h, d or w)"),
        };
        return Ok(now + Duration::from_secs(amount.saturating_mul(seconds)));
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
    let (year, month, day): (i64, u32, u32) = (y.parse()?, m.parse()?, d.parse()?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        bail!("no such day");
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let mut hms = time.splitn(3, ':');
        let h: i64 = hms.next().unwrap_or("0").parse()?;
        let m: i64 = hms.next().unwrap_or("0").parse()?;
        let s: i64 = hms.next().unwrap_or("0").parse()?;
        if h > 23 || m > 59 || s > 60 {
            bail!("no such time of day");
        }
        seconds += h * 3600 + m * 60 + s;
    }
    if seconds < 0 {
        bail!("before 1970");
    }
    Ok(UNIX_EPOCH + Duration::from_secs(seconds as u64))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats a time as a UTC date and time, `2027-01-31 18:00:00Z`.
pub(crate) fn format_utc(time: SystemTime) -> String {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // The inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
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
