//! Sizes, times and durations as people read and write them.
//!
//! Invariant: pure functions; local time falls back to UTC when the offset
//! cannot be known (as in some multi-threaded processes).

use time::{
    OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339, macros::format_description,
};

/// "1.4 GB", "512 B" (decimal units, as file managers show disk sizes).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

fn offset() -> UtcOffset {
    UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC)
}

/// "1 file", "3 files": a count with its noun (plural with an "s").
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// "2026-11-20 14:03" in local time.
pub fn time(ts: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]");
    OffsetDateTime::from_unix_timestamp(ts)
        .map(|t| t.to_offset(offset()))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// "3 days ago", "just now".
pub fn ago(ts: i64, now: i64) -> String {
    let d = now - ts;
    if d < 0 {
        return "in the future".into();
    }
    let (n, unit) = match d {
        0..60 => return "just now".into(),
        60..3600 => (d / 60, "minute"),
        3600..86_400 => (d / 3600, "hour"),
        _ => (d / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// "1 h 4 min", "12 s".
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "cannot read `{0}` as a time: use 2026-11-20, \"2026-11-20 14:00\", an RFC 3339 time, or an age such as \"36 hours\""
)]
pub struct BadTime(pub String);

/// Reads a point in time: a date (meaning the end of that day), a date and
/// time, RFC 3339, `@SECONDS`, or an age ("36 hours", "3 days ago").
pub fn parse_when(s: &str, now: i64) -> Result<i64, BadTime> {
    let s = s.trim();
    let bad = || BadTime(s.to_string());
    if let Some(secs) = s.strip_prefix('@') {
        return secs.parse().map_err(|_| bad());
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let off = offset();
    let date_fmt = format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_fmt) {
        let end = d.with_hms(23, 59, 59).map_err(|_| bad())?;
        return Ok(end.assume_offset(off).unix_timestamp());
    }
    for fmt in [
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ] {
        if let Ok(t) = time::PrimitiveDateTime::parse(s, &fmt) {
            return Ok(t.assume_offset(off).unix_timestamp());
        }
    }
    let age = s.strip_suffix(" ago").unwrap_or(s);
    humantime::parse_duration(age)
        .map(|d| now - d.as_secs() as i64)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_400_000_000), "1.4 GB");
        assert_eq!(bytes(12_400_000_000), "12 GB");
    }

    #[test]
    fn ages() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(0, 7200), "2 hours ago");
        assert_eq!(ago(0, 94 * 86_400), "94 days ago");
    }

    #[test]
    fn times_parse() {
        let now = 1_800_000_000;
        assert_eq!(parse_when("36 hours", now), Ok(now - 36 * 3600));
        assert_eq!(parse_when("3 days ago", now), Ok(now - 3 * 86_400));
        assert_eq!(parse_when("@42", now), Ok(42));
        assert_eq!(parse_when("2026-11-20T10:00:00Z", now), Ok(1_795_168_800));
        assert!(parse_when("2026-11-20", now).is_ok());
        assert!(
            parse_when("yesterday-ish", now)
                .unwrap_err()
                .to_string()
                .contains("yesterday-ish")
        );
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "cannot read `{0}` as a size: use a number of bytes or a number with K, M, G or T (binary) or KB, MB, GB, TB (decimal)"
)]
pub struct BadSize(pub String);

/// Reads a size: "500G" and "500GiB" are binary, "500GB" decimal, "1234" bytes.
pub fn parse_size(s: &str) -> Result<u64, BadSize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| BadSize(s.into()))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(BadSize(s.into())),
    };
    Ok((n * mult as f64).round() as u64)
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("500G"), Ok(500 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert!(parse_size("lots").is_err());
    }
}
