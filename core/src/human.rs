//! Sizes, times and durations as people read and write them, and text from
//! disks, catalogs and archives made safe to show ([`escape`], [`path`]).
//!
//! Invariant: pure functions; local time falls back to UTC when the offset
//! cannot be known (as in some multi-threaded processes); what [`escape`] and
//! [`path`] return holds no control or bidirectional formatting character.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;

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

/// "1 file", "3 files", "2 copies": a count with its noun, made plural by
/// the regular English rules ("y" after a consonant becomes "ies"; "s",
/// "x", "ch" and "sh" take "es").
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y = noun.ends_with('y')
        && !noun
            .chars()
            .rev()
            .nth(1)
            .is_some_and(|c| "aeiou".contains(c));
    if consonant_y {
        format!("{n} {}ies", &noun[..noun.len() - 1])
    } else if ["s", "x", "ch", "sh"].iter().any(|e| noun.ends_with(e)) {
        format!("{n} {noun}es")
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
    fn counts_take_the_right_plural() {
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(0, "file"), "0 files");
        assert_eq!(count(2, "copy"), "2 copies");
        assert_eq!(count(3, "day"), "3 days");
        assert_eq!(count(2, "match"), "2 matches");
        assert_eq!(count(4, "entry"), "4 entries");
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

/// True for a character that must not reach a terminal, a log line or the
/// window as it is: every control (C0 with `\n`, `\r` and `\t`, DEL, C1) and
/// the invisible characters that reorder or split what is drawn around them
/// ("Trojan source"): bidirectional marks, embeddings, overrides and
/// isolates, the Arabic letter mark, the line and paragraph separators, and
/// the byte order mark. [`escape`] escapes exactly these.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Appends `s` to `out` with every unsafe character escaped.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // C0 and DEL as `\xNN`: bytes that are not UTF-8 (which [`path`]
            // also shows as `\xNN`) are all 0x80 or above, so the two never
            // look alike.
            c if needs_escape(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// `s` as it may be shown: every control character and every bidirectional
/// or formatting character that could forge or reorder what is drawn is
/// written as a visible escape (`\n`, `\x1b`, `\u{202e}`); everything else,
/// backslashes included, is left as it is. Borrows `s` when nothing needs
/// escaping, which is the common case.
///
/// For text read from a disk, a catalog or an archive (labels, paths, member
/// names, the messages that embed them). Only for showing: what is stored
/// or compared is the original. Escaping twice changes nothing more, and two
/// different strings without backslashes never come out the same.
pub fn escape(s: &str) -> Cow<'_, str> {
    match s.find(needs_escape) {
        None => Cow::Borrowed(s),
        Some(i) => {
            let mut out = String::with_capacity(s.len() + 8);
            out.push_str(&s[..i]);
            push_escaped(&mut out, &s[i..]);
            Cow::Owned(out)
        }
    }
}

/// A path as it may be shown: as [`escape`], and bytes that are not UTF-8
/// (a Linux file name may hold any byte but `/` and NUL) as `\xNN` rather
/// than a replacement character, so the name shown is the name on disk.
/// Borrows when the path is UTF-8 with nothing to escape.
pub fn path(p: &Path) -> Cow<'_, str> {
    os_str(p.as_os_str())
}

/// A file name, or any other OS string, as [`path`] shows it.
pub fn os_str(s: &OsStr) -> Cow<'_, str> {
    if let Some(s) = s.to_str() {
        return escape(s);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(bytes.len() + 8);
        for chunk in bytes.utf8_chunks() {
            push_escaped(&mut out, chunk.valid());
            for b in chunk.invalid() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        Cow::Owned(out)
    }
    #[cfg(not(unix))]
    {
        Cow::Owned(escape(&s.to_string_lossy()).into_owned())
    }
}

#[cfg(test)]
mod escape_tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

    /// Reads back what [`os_str`] wrote, as bytes: the proof that showing
    /// loses nothing for input without backslashes.
    fn unescape(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('r') => out.push(b'\r'),
                Some('t') => out.push(b'\t'),
                Some('x') => {
                    let hex: String = chars.by_ref().take(2).collect();
                    out.push(u8::from_str_radix(&hex, 16).expect("two hex digits"));
                }
                Some('u') => {
                    assert_eq!(chars.next(), Some('{'));
                    let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let c = char::from_u32(u32::from_str_radix(&hex, 16).expect("hex"))
                        .expect("a char");
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                other => panic!("unknown escape \\{other:?} in {s:?}"),
            }
        }
        out
    }

    /// The characters of "Trojan source" spoofing, written out again here so
    /// that the checks do not lean on the code they check.
    fn spoofing(c: char) -> bool {
        matches!(c as u32, 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
    }

    /// Strings rich in what matters: controls, bidi characters, backslash-
    /// free ASCII and some other Unicode.
    fn hostile() -> impl Strategy<Value = String> {
        let interesting = prop_oneof![
            (0u32..0x20).prop_map(|c| char::from_u32(c).expect("C0")),
            Just('\u{7f}'),
            (0x80u32..0xa0).prop_map(|c| char::from_u32(c).expect("C1")),
            prop::sample::select(vec![
                '\u{061c}', '\u{200e}', '\u{200f}', '\u{2028}', '\u{2029}', '\u{202a}', '\u{202b}',
                '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
                '\u{feff}', 'x', 'u', '{', '}', '0', 'é', '猫',
            ]),
            any::<char>(),
        ];
        prop::collection::vec(interesting, 0..24).prop_map(|v| v.into_iter().collect())
    }

    #[test]
    fn controls_and_bidi_characters_are_shown_as_escapes() {
        assert_eq!(
            escape("\u{1b}[2J\u{1b}[1;1H\nfake line"),
            "\\x1b[2J\\x1b[1;1H\\nfake line"
        );
        assert_eq!(escape("a\tb\rc\0d\u{7f}"), "a\\tb\\rc\\x00d\\x7f");
        assert_eq!(escape("\u{9b}31m \u{85}"), "\\u{9b}31m \\u{85}");
        assert_eq!(
            escape("invoice\u{202e}fdp.exe \u{2066}x\u{2069} \u{feff}"),
            "invoice\\u{202e}fdp.exe \\u{2066}x\\u{2069} \\u{feff}"
        );
        assert_eq!(escape("a\u{2028}b"), "a\\u{2028}b");
        assert_eq!(escape(r"C:\dir\n"), r"C:\dir\n", "backslashes stay");
    }

    #[test]
    fn nothing_to_escape_borrows() {
        for s in ["", "/home/me/Photos/2019/été 猫.jpg", "Blue WD", "a\\b"] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s:?}");
            assert!(
                matches!(path(Path::new(s)), Cow::Borrowed(b) if b == s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_hex_not_replaced() {
        let p = PathBuf::from(OsString::from_vec(b"/x/\xff\xfe\x1b.bin".to_vec()));
        assert_eq!(path(&p), "/x/\\xff\\xfe\\x1b.bin");
        // An invalid byte never reads as the character of the same number.
        let byte = PathBuf::from(OsString::from_vec(b"\x85".to_vec()));
        assert_ne!(path(&byte), path(Path::new("\u{85}")));
        assert_eq!(path(Path::new("a\0b")), "a\\x00b");
    }

    proptest! {
        #[test]
        fn escaped_text_holds_no_control_or_bidi_character(s in hostile()) {
            let e = escape(&s);
            prop_assert!(!e.chars().any(|c| c.is_control() || spoofing(c)), "{:?} -> {:?}", s, e);
        }

        #[test]
        fn escaping_twice_changes_nothing_more(s in hostile()) {
            let once = escape(&s).into_owned();
            prop_assert_eq!(escape(&once), once.as_str());
        }

        #[test]
        fn different_strings_without_backslashes_never_look_alike(
            a in hostile(),
            b in hostile(),
        ) {
            let (a, b) = (a.replace('\\', ""), b.replace('\\', ""));
            // Reading back gives the input: two different inputs cannot
            // have given the same output.
            prop_assert_eq!(unescape(&escape(&a)), a.as_bytes());
            if a != b {
                prop_assert_ne!(escape(&a), escape(&b));
            }
        }

        #[test]
        fn paths_of_any_bytes_show_safely_and_read_back(
            bytes in prop::collection::vec(any::<u8>(), 0..32),
        ) {
            let bytes: Vec<u8> = bytes.into_iter().filter(|b| *b != b'\\').collect();
            let p = PathBuf::from(OsString::from_vec(bytes.clone()));
            let shown = path(&p);
            prop_assert!(!shown.chars().any(|c| c.is_control() || spoofing(c)), "{:?}", shown);
            prop_assert_eq!(unescape(&shown), p.as_os_str().as_bytes());
        }
    }
}
