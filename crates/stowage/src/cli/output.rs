//! What the tool writes, through one place: text made inert before it reaches a terminal, JSON kept JSON.
//!
//! Much of what stowage prints came from the network, directly (URIs, rendition names, titles, error
//! messages quoting an origin) or through a bundle's manifest. A terminal acts on control characters: an
//! origin could clear the screen, set the window title, move the cursor or hide text with escape
//! sequences, or reorder what is shown with bidirectional-text controls. Every line of text goes through
//! [`inert`], so these are shown as escapes (`\x1b`, `\u{202e}`) instead of being acted on; every JSON
//! document goes through [`json`], which escapes the same characters that serde_json leaves raw.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use serde_json::Value;

/// Tokens (runs without white space) longer than this are elided in messages: a URI of a hundred
/// kilobytes says no more than its head and its tail.
const LONGEST_TOKEN: usize = 240;
/// What is kept of an elided token: its first and last characters.
const KEPT_HEAD: usize = 120;
const KEPT_TAIL: usize = 60;

/// Whether a terminal would act on `c`: C0 controls, DEL, C1 controls, and the bidirectional-text
/// controls (embeddings, overrides, isolates, marks).
fn is_active(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character a terminal would act on written as an escape (`\x1b`, `\u{202e}`), line
/// feeds included. Text without any is returned as it is. Applying it twice changes nothing more.
pub(crate) fn inert(text: &str) -> Cow<'_, str> {
    inert_except(text, None)
}

/// Like [`inert`], but line feeds stay: for whole blocks of output whose lines are stowage's own.
pub(crate) fn inert_lines(text: &str) -> Cow<'_, str> {
    inert_except(text, Some('\n'))
}

fn inert_except(text: &str, keep: Option<char>) -> Cow<'_, str> {
    if !text.chars().any(|c| is_active(c) && Some(c) != keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !is_active(c) || Some(c) == keep {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// A message for people: long tokens elided (keeping their head and tail and saying how long they were),
/// then made [`inert`], line feeds kept.
pub(crate) fn message(text: &str) -> String {
    inert_lines(&elide(text)).into_owned()
}

/// A message shown on one line (a progress bar's): like [`message`], line feeds escaped too.
pub(crate) fn line(text: &str) -> String {
    inert(&elide(text)).into_owned()
}

/// `text` with each token longer than [`LONGEST_TOKEN`] characters cut to its head and tail.
fn elide(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        let chars = token.chars().count();
        if chars > LONGEST_TOKEN {
            let head: String = token.chars().take(KEPT_HEAD).collect();
            let tail: String = token.chars().skip(chars - KEPT_TAIL).collect();
            let _ = write!(out, "{head}…[{} bytes in all]…{tail}", token.len());
        } else {
            out.push_str(token);
        }
        rest = &rest[end..];
    }
    out
}

/// Writes text to standard output, made inert (line feeds kept).
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    std::io::stdout().lock().write_all(inert_lines(text).as_bytes()).context("writing to standard output")
}

/// Writes a message to standard error: long tokens elided, made inert.
pub(crate) fn eprint(text: &str) {
    // Nothing can be done about a standard error that cannot be written.
    let _ = std::io::stderr().lock().write_all(message(text).as_bytes());
}

/// `value` as one line of JSON. serde_json escapes the C0 controls; DEL, the C1 controls and the
/// bidirectional-text controls are escaped here too (`\u009b`), so that a JSON line shown on a terminal is
/// as inert as text. They can only appear inside strings, where an escape means the same character.
pub(crate) fn json(value: &Value) -> String {
    let text = value.to_string();
    if !text.chars().any(is_active) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_active(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `value` to standard output as one line of JSON (see [`json`]).
pub(crate) fn print_json(value: &Value) -> anyhow::Result<()> {
    let mut line = json(value);
    line.push('\n');
    std::io::stdout().lock().write_all(line.as_bytes()).context("writing to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_shown_not_acted_on() {
        let hostile = "a\u{1b}]0;owned\u{7}b\u{1b}[2J\u{9b}31m\u{202e}cba\u{7f}";
        assert_eq!(inert(hostile), "a\\x1b]0;owned\\x07b\\x1b[2J\\x9b31m\\u{202e}cba\\x7f");
        assert_eq!(inert(&inert(hostile)), inert(hostile), "applying it again changes nothing");
        assert!(matches!(inert("plain, café"), Cow::Borrowed(_)));
        assert_eq!(inert("two\nlines"), "two\\x0alines");
        assert_eq!(inert_lines("two\nlines\r"), "two\nlines\\x0d");
    }

    #[test]
    fn json_stays_json_and_inert() {
        let value = serde_json::json!({"name": "a\u{1b}[2J\u{9b}\u{202e}\u{7f}b"});
        let text = json(&value);
        assert!(text.is_ascii() && !text.contains('\u{1b}'), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value, "the same document");
    }

    #[test]
    fn long_tokens_are_elided_with_their_length() {
        let uri = format!("https://cdn.example/{}/end.ts", "x".repeat(100_000));
        let text = message(&format!("cannot fetch {uri}: HTTP 404 from {uri}\n"));
        assert!(text.len() < 1000, "{}", text.len());
        assert_eq!(text.matches("bytes in all").count(), 2);
        assert!(
            text.starts_with("cannot fetch https://cdn.example/xxx") && text.contains("x/end.ts: HTTP 404")
        );
        assert!(
            text.contains(&format!("[{} bytes in all]", uri.len() + 1)),
            "the colon is part of the token"
        );
        assert!(text.ends_with("/end.ts\n"));
        assert_eq!(message("short words stay"), "short words stay");
    }
}
