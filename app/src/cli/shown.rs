//! Putting text on the terminal safely. Labels, paths, member names and
//! messages read from a disk, a catalog or an archive may hold escape
//! sequences, newlines or bidirectional overrides: printed raw they clear
//! the screen or forge lines. So each one is escaped where the text embeds
//! it (`human::escape`, `human::path`); errors and notices are single
//! lines by construction and are escaped whole where they are printed (a
//! `Warning` escapes itself when displayed); and [`print_text`] escapes whatever a line of a command's text
//! still holds, so a value that was missed can at worst look odd.
//!
//! Escaping twice changes nothing, so a message that already embeds an
//! escaped path passes through unchanged.

use std::borrow::Cow;

use coffer_core::human;

/// An error and its causes (`{e:#}`) on one line, escaped.
pub(super) fn error(e: &anyhow::Error) -> String {
    owned(format!("{e:#}"))
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
    if text
        .split('\n')
        .all(|l| matches!(human::escape(l), Cow::Borrowed(_)))
    {
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
}
