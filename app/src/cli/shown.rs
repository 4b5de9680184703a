//! Putting text on the terminal safely. Labels, paths, member names and
//! messages read from a disk, a catalog or an archive may hold escape
//! sequences, newlines or bidirectional overrides: printed raw they clear
//! the screen or forge lines. So each one is escaped where the text embeds
//! it (`human::escape`, `human::path`); errors and notices are single
//! lines by construction and are escaped whole where they are printed (a
//! `Warning` escapes itself when displayed); and [`print_text`] escapes
//! whatever a line of a command's text still holds, so a value that was
//! missed can at worst look odd.
//!
//! Escaping twice changes nothing, so a message that already embeds an
//! escaped path passes through unchanged. `--json` output keeps the original
//! text, in JSON escapes a terminal does not act on ([`json`]).

use std::borrow::Cow;
use std::io;

use coffer_core::human;
use serde_json::ser::{Formatter, PrettyFormatter};

/// An error and its causes on one line, each cause once (a message that
/// already embeds its cause is not followed by it again), escaped.
pub(super) fn error(e: &anyhow::Error) -> String {
    owned(crate::gui::messages::anyhow_text(e))
}

/// `s` escaped, reusing `s` itself when nothing needs escaping.
pub(super) fn owned(s: String) -> String {
    match human::escape(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(o) => o,
    }
}

/// A command's text with its line breaks kept and anything else unsafe in
/// each line escaped; borrowed when there is nothing to escape.
pub(super) fn lines(text: &str) -> Cow<'_, str> {
    if !text.contains(|c| c != '\n' && human::needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(human::escape)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Prints a command's text on stdout, through [`lines`].
pub(super) fn print_text(text: &str) {
    print!("{}", lines(text));
}

/// The `--json` value of a command's result, built only with `--json`: the
/// text output needs none, so a path that JSON cannot hold (one that is not
/// UTF-8) never stops it. With `--json` such a path is an error that says
/// so, where `json!` would panic.
pub(super) fn value(
    json: bool,
    build: impl FnOnce() -> serde_json::Result<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    if !json {
        return Ok(serde_json::Value::Null);
    }
    build().map_err(|e| {
        anyhow::anyhow!("cannot write the result as JSON: {e} (a file name that is not UTF-8); run without --json to see it")
    })
}

/// A path as a JSON string: as it is when it is UTF-8, else as [`human::path`]
/// shows it (`\xNN` for each byte that is not UTF-8), since JSON strings hold
/// text only.
pub(super) fn json_path(p: &std::path::Path) -> serde_json::Value {
    match p.to_str() {
        Some(s) => s.into(),
        None => human::path(p).into_owned().into(),
    }
}

/// `--json` output, pretty-printed. serde_json escapes C0 controls, quotes
/// and backslashes but writes DEL, C1 controls (U+009B is a terminal's CSI)
/// and bidirectional overrides as they are; these are written as `\uXXXX`
/// too, which any JSON reader reads back as the same text.
pub(super) fn json(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Json(PrettyFormatter::new()));
    // A Value always serializes, and the formatter writes UTF-8 and ASCII
    // escapes only.
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's pretty formatter, with [`json`]'s extra escapes.
struct Json(PrettyFormatter<'static>);

impl Formatter for Json {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if human::needs_escape(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                // Every such character is in the Basic Multilingual Plane.
                write!(w, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn text_keeps_its_lines_and_loses_its_escapes() {
        let t = "Synced \"Blue\": ok\nnext line\n";
        assert!(matches!(lines(t), Cow::Borrowed(_)));
        assert_eq!(
            lines("a \u{1b}[2J\tb\nc\u{202e}\n"),
            "a \\x1b[2J\\tb\nc\\u{202e}\n"
        );
    }

    #[test]
    fn json_escapes_what_serde_json_leaves_and_reads_back_the_same() {
        let label = "\u{1b}[2J\u{9b}31m\u{7f} a\u{202e}b \"q\" é";
        let v = serde_json::json!({"label": label, "n": [1, 2]});
        let text = json(&v);
        assert!(
            !text.chars().any(|c| c != '\n' && human::needs_escape(c)),
            "{text}"
        );
        assert!(
            text.contains(r#"\u009b31m\u007f a\u202eb \"q\" é"#),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        let plain = serde_json::json!({"a": [1, {"b": "c"}], "d": {}});
        assert_eq!(json(&plain), serde_json::to_string_pretty(&plain).unwrap());
    }

    #[test]
    fn errors_and_warnings_are_one_line() {
        use coffer_core::task::Warning;

        let e = anyhow::anyhow!("disk \"x\nfake line\" is gone").context("sync failed");
        assert_eq!(error(&e), "sync failed: disk \"x\\nfake line\" is gone");
        let w = Warning {
            path: Some(PathBuf::from("/home/a\u{1b}]0;pwned\u{7}")),
            message: "cannot read\r\nok".into(),
        };
        assert_eq!(
            w.to_string(),
            "/home/a\\x1b]0;pwned\\x07: cannot read\\r\\nok"
        );
    }

    #[test]
    fn an_error_that_embeds_its_cause_names_it_once() {
        let e = coffer_core::disk::Error::Io {
            op: "cannot flush",
            path: "/media/stick/coffer/catalog-a.sqlite".into(),
            source: io::Error::from_raw_os_error(1),
        };
        let text = error(&anyhow::Error::from(e).context("sync of \"Blue\" failed"));
        assert_eq!(text.matches("os error 1").count(), 1, "{text}");
        assert!(
            text.starts_with("sync of \"Blue\" failed: cannot flush /media/stick"),
            "{text}"
        );
    }
}
