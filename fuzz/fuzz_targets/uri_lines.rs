//! What the playlist targets check of a lenient parse: no line that carries a URI disappears without a
//! word. A URI line, or a known tag with a `URI` attribute, either gives a URI of the parsed playlist
//! (offered by its URI rewrite) or is named by a warning. Tags this crate does not know are kept verbatim
//! and carry nothing it could offer, so they are not counted.

use std::collections::HashSet;

use stowage_playlist::{AttributeList, Warning};

/// Tags whose `URI` attribute the parser reads.
const URI_TAGS: &[&str] = &[
    "EXT-X-KEY",
    "EXT-X-SESSION-KEY",
    "EXT-X-MAP",
    "EXT-X-MEDIA",
    "EXT-X-I-FRAME-STREAM-INF",
    "EXT-X-SESSION-DATA",
    "EXT-X-PART",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
];

/// The lines (from 1) of `data` that carry a URI, split as a lenient parse splits them (LF, CRLF, or a
/// lone CR).
fn uri_lines(data: &[u8]) -> Vec<usize> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut out = Vec::new();
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').flat_map(|l| {
        let l = l.strip_suffix('\r').unwrap_or(l);
        l.split('\r')
    });
    for (i, line) in lines.enumerate() {
        let line = line.trim_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(i + 1);
            continue;
        }
        let Some((name, value)) = line[1..].split_once(':') else { continue };
        if !URI_TAGS.contains(&name) || !value.contains("URI=") {
            continue;
        }
        // `URI=` inside another attribute's quoted value carries no URI; a list that does not read is a
        // malformed tag, which is warned about.
        match AttributeList::parse(value) {
            Ok(list) if list.get("URI").is_none() => {}
            _ => out.push(i + 1),
        }
    }
    out
}

/// Asserts that every URI-carrying line of `data` gave one of the `offered` URIs or is named by one of
/// `warnings`.
pub(crate) fn assert_no_uri_dropped_silently(data: &[u8], offered: usize, warnings: &[Warning]) {
    let warned: HashSet<usize> = warnings.iter().map(|w| w.line).collect();
    let silent: Vec<usize> = uri_lines(data).into_iter().filter(|l| !warned.contains(l)).collect();
    assert!(
        offered >= silent.len(),
        "lines {silent:?} carry URIs, none is warned about, and only {offered} URI(s) were parsed"
    );
}
