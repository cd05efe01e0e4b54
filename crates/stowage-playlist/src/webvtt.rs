//! The WebVTT of HLS subtitle segments: reading one segment, joining a rendition's segments into one list
//! of cues, writing WebVTT or SubRip.
//!
//! An HLS subtitle rendition is WebVTT cut into segments (RFC 8216bis §3.1.4). Each segment's cue times
//! are local: its header's `X-TIMESTAMP-MAP=MPEGTS:<ticks>,LOCAL:<time>` says which 90 kHz media timestamp
//! the local time `LOCAL` stands for. A cue that overlaps a segment boundary is written into every segment
//! it overlaps, whole or cut at the boundary. This module reads segments ([`parse`]), and, once the caller
//! has moved each cue onto its own timeline (which needs the media's timestamps, so it is the caller's
//! part), joins the copies ([`Joiner`]) and writes one file ([`write_vtt`], [`write_srt`]).
//!
//! Cues own their strings: a joined file outlives the segments it was read from. Times are whole
//! milliseconds, WebVTT's precision, as `i64` so that a cue moved onto a timeline may fall before it.
//!
//! ```
//! use stowage_playlist::webvtt::{self, Joiner};
//!
//! let first = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n\
//!              00:00:05.000 --> 00:00:06.000\nAcross the boundary\n";
//! let second = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n\
//!               00:00:06.000 --> 00:00:07.500\nAcross the boundary\n";
//! let mut joiner = Joiner::default();
//! for text in [first, second] {
//!     let segment = webvtt::parse(text)?;
//!     assert_eq!(segment.map.map(|m| m.mpegts), Some(900_000));
//!     joiner.segment(&segment.blocks);
//!     for cue in segment.cues {
//!         joiner.push(cue); // here already on the timeline: the map's MPEGTS is the media's start
//!     }
//! }
//! let (blocks, cues) = joiner.finish();
//! assert_eq!(
//!     webvtt::write_vtt(&blocks, &cues),
//!     "WEBVTT\n\n00:00:05.000 --> 00:00:07.500\nAcross the boundary\n\n"
//! );
//! # Ok::<(), webvtt::WebVttError>(())
//! ```

use std::collections::HashSet;
use std::fmt::{self, Write as _};

/// One cue: times in milliseconds, settings and text as written (WebVTT markup kept).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a WebVTT cue is an identifier, a timing, settings and a payload"
)]
pub struct Cue {
    /// The cue identifier, if the cue has one.
    pub id: Option<String>,
    /// Start, in milliseconds.
    pub start: i64,
    /// End, in milliseconds, not before `start` as read.
    pub end: i64,
    /// The cue settings, single spaces between them.
    pub settings: String,
    /// The payload's lines, joined with LF.
    pub text: String,
}

/// A segment's `X-TIMESTAMP-MAP`: the 90 kHz media timestamp `mpegts` is local cue time `local` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs, reason = "RFC 8216bis defines the map as these two values")]
pub struct TimestampMap {
    /// `MPEGTS`, in 90 kHz ticks.
    pub mpegts: u64,
    /// `LOCAL`, in milliseconds.
    pub local: i64,
}

/// One WebVTT file (a segment) as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebVtt {
    /// The header's `X-TIMESTAMP-MAP`, if any.
    pub map: Option<TimestampMap>,
    /// `STYLE` and `REGION` blocks before the first cue, as written.
    pub blocks: Vec<String>,
    /// The cues, in file order.
    pub cues: Vec<Cue>,
}

/// What is wrong with a WebVTT file, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebVttError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for WebVttError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for WebVttError {}

/// Reads a WebVTT file: a byte order mark and CR or CRLF line ends are accepted; `NOTE` blocks are
/// skipped. An error names the line of the first thing that is not WebVTT.
pub fn parse(text: &str) -> Result<WebVtt, WebVttError> {
    let err = |line: usize, message: String| WebVttError { line, message };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let signature = lines.first().copied().unwrap_or("");
    let signature_ok =
        signature.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    if !signature_ok {
        return Err(err(1, "does not start with WEBVTT".to_owned()));
    }
    let mut file = WebVtt::default();
    let mut i = 1;
    // The header: lines up to the first blank line.
    while i < lines.len() && !lines[i].is_empty() {
        if let Some(value) = lines[i].strip_prefix("X-TIMESTAMP-MAP=") {
            file.map = Some(parse_map(value).map_err(|m| err(i + 1, m))?);
        } else if lines[i].contains("-->") {
            // A cue right after the signature without a blank line is malformed, but common enough in
            // the wild to read as a cue rather than refuse.
            break;
        }
        i += 1;
    }
    while i < lines.len() {
        if lines[i].is_empty() {
            i += 1;
            continue;
        }
        let first = i;
        while i < lines.len() && !lines[i].is_empty() {
            i += 1;
        }
        let block = &lines[first..i];
        let head = block[0];
        let word = head.split([' ', '\t']).next().unwrap_or("");
        if word == "NOTE" && !head.contains("-->") {
            continue;
        }
        if file.cues.is_empty()
            && matches!(word, "STYLE" | "REGION")
            && !block.iter().any(|l| l.contains("-->"))
        {
            file.blocks.push(block.join("\n"));
            continue;
        }
        let (id, timing_at) = if head.contains("-->") { (None, 0) } else { (Some(head), 1) };
        let Some(timing) = block.get(timing_at).filter(|l| l.contains("-->")) else {
            return Err(err(first + 1, format!("a block without a cue timing line: {head:?}")));
        };
        let line = first + timing_at + 1;
        let (start, end, settings) = parse_timing(timing).map_err(|m| err(line, m))?;
        file.cues.push(Cue {
            id: id.map(str::to_owned),
            start,
            end,
            settings,
            text: block[timing_at + 1..].join("\n"),
        });
    }
    Ok(file)
}

/// `MPEGTS:<n>,LOCAL:<time>`, in either order.
fn parse_map(value: &str) -> Result<TimestampMap, String> {
    let bad = |what: &str| format!("bad X-TIMESTAMP-MAP {value:?}: {what}");
    let (mut mpegts, mut local) = (None, None);
    for part in value.split(',') {
        let part = part.trim();
        if let Some(n) = part.strip_prefix("MPEGTS:") {
            mpegts = Some(n.parse::<u64>().map_err(|_| bad("MPEGTS is not a number"))?);
        } else if let Some(t) = part.strip_prefix("LOCAL:") {
            local = Some(parse_timestamp(t).ok_or_else(|| bad("LOCAL is not a WebVTT timestamp"))?);
        }
    }
    match (mpegts, local) {
        (Some(mpegts), Some(local)) => Ok(TimestampMap { mpegts, local }),
        (None, _) => Err(bad("no MPEGTS")),
        (_, None) => Err(bad("no LOCAL")),
    }
}

/// `start --> end settings`.
fn parse_timing(line: &str) -> Result<(i64, i64, String), String> {
    let (start, rest) = line.split_once("-->").ok_or("no `-->` in the cue timing line")?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let (end, settings) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let start = start.trim();
    let start = parse_timestamp(start).ok_or_else(|| format!("bad start time {start:?} (hh:mm:ss.ttt)"))?;
    let end = parse_timestamp(end).ok_or_else(|| format!("bad end time {end:?} (hh:mm:ss.ttt)"))?;
    if end < start {
        return Err(format!("the cue ends ({}) before it starts ({})", format_vtt(end), format_vtt(start)));
    }
    Ok((start, end, settings.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// `[h…h:]mm:ss.ttt` in milliseconds.
fn parse_timestamp(text: &str) -> Option<i64> {
    let (clock, millis) = text.split_once('.')?;
    let digits = |s: &str, exact: Option<usize>| -> Option<i64> {
        let ok = !s.is_empty()
            && s.len() <= 10
            && s.bytes().all(|b| b.is_ascii_digit())
            && exact.is_none_or(|n| s.len() == n);
        ok.then(|| s.parse().ok()).flatten()
    };
    let fields: Vec<&str> = clock.split(':').collect();
    let (h, m, s) = match fields.as_slice() {
        [m, s] => (0, digits(m, Some(2))?, digits(s, Some(2))?),
        [h, m, s] => (digits(h, None)?, digits(m, Some(2))?, digits(s, Some(2))?),
        _ => return None,
    };
    if m > 59 || s > 59 {
        return None;
    }
    Some(((h * 60 + m) * 60 + s) * 1000 + digits(millis, Some(3))?)
}

fn clock(ms: i64) -> (i64, i64, i64, i64) {
    let ms = ms.max(0);
    (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// `hh:mm:ss.ttt` (times before 0 are written as 0).
pub fn format_vtt(ms: i64) -> String {
    let (h, m, s, t) = clock(ms);
    format!("{h:02}:{m:02}:{s:02}.{t:03}")
}

/// `hh:mm:ss,ttt`, SubRip's form (times before 0 are written as 0).
pub fn format_srt(ms: i64) -> String {
    let (h, m, s, t) = clock(ms);
    format!("{h:02}:{m:02}:{s:02},{t:03}")
}

/// The cues of a rendition's segments, put on one timeline segment after segment, each cue once.
///
/// A cue of a later segment with the same text and settings as one already taken from an earlier segment,
/// starting within it or where it ends (a millisecond either way), is that cue's copy: it extends the cue
/// taken instead of being added. Two equal cues of one segment are the author's and both stay. Cues that
/// end before the timeline's start (0) are dropped, and one that starts before it is cut at 0.
#[derive(Debug, Default)]
pub struct Joiner {
    cues: Vec<(Cue, usize)>,
    blocks: Vec<String>,
    segment: usize,
}

/// How far back a copy's cue is looked for: a segment repeats the cues that overlap its start, which are
/// among the last few taken.
const JOIN_WINDOW: usize = 64;

impl Joiner {
    /// Starts the next segment, whose header blocks are `blocks`: the `STYLE` and `REGION` blocks of the
    /// first segment that has any are kept.
    pub fn segment(&mut self, blocks: &[String]) {
        self.segment += 1;
        if self.blocks.is_empty() {
            self.blocks = blocks.to_vec();
        }
    }

    /// Takes one cue of the current segment, already on the timeline.
    pub fn push(&mut self, mut cue: Cue) {
        if cue.end <= 0 {
            return;
        }
        cue.start = cue.start.max(0);
        let window = self.cues.len().saturating_sub(JOIN_WINDOW);
        let copy_of = self.cues[window..].iter_mut().rev().find(|(taken, segment)| {
            *segment < self.segment
                && taken.text == cue.text
                && taken.settings == cue.settings
                && taken.start - 1 <= cue.start
                && cue.start <= taken.end + 1
        });
        match copy_of {
            Some((taken, _)) => taken.end = taken.end.max(cue.end),
            None => self.cues.push((cue, self.segment)),
        }
    }

    /// The header blocks kept and the cues, in start order (stable for equal starts).
    #[must_use]
    pub fn finish(self) -> (Vec<String>, Vec<Cue>) {
        let mut cues: Vec<Cue> = self.cues.into_iter().map(|(cue, _)| cue).collect();
        cues.sort_by_key(|c| c.start);
        (self.blocks, cues)
    }
}

/// A WebVTT file of `cues`, with the `STYLE` and `REGION` `blocks` first. A cue identifier already used
/// by an earlier cue is left out, since identifiers are unique within a WebVTT file.
pub fn write_vtt(blocks: &[String], cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for block in blocks {
        out.push_str(block);
        out.push_str("\n\n");
    }
    let mut ids = HashSet::new();
    for cue in cues {
        if let Some(id) = &cue.id
            && ids.insert(id.as_str())
        {
            out.push_str(id);
            out.push('\n');
        }
        let _ = write!(out, "{} --> {}", format_vtt(cue.start), format_vtt(cue.end));
        if !cue.settings.is_empty() {
            out.push(' ');
            out.push_str(&cue.settings);
        }
        out.push('\n');
        out.push_str(&cue.text);
        out.push_str("\n\n");
    }
    out
}

/// A SubRip file of `cues`: numbered from 1, WebVTT markup reduced to what SubRip players know (`<b>`,
/// `<i>`, `<u>`), character references decoded.
pub fn write_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (n, cue) in cues.iter().enumerate() {
        let _ = write!(out, "{}\n{} --> {}\n", n + 1, format_srt(cue.start), format_srt(cue.end));
        out.push_str(&plain_text(&cue.text, true));
        out.push_str("\n\n");
    }
    out
}

/// The text of a cue without WebVTT markup: tags removed (but `<b>`, `<i>` and `<u>` when `keep_basic`),
/// character references decoded.
pub fn plain_text(text: &str, keep_basic: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('<') {
            let Some(close) = rest.find('>') else {
                out.push_str(rest);
                rest = "";
                break;
            };
            let tag = &rest[1..close];
            let name = tag.trim_start_matches('/').split(['.', ' ']).next().unwrap_or("");
            if keep_basic && matches!(name, "b" | "i" | "u") {
                out.push('<');
                if tag.starts_with('/') {
                    out.push('/');
                }
                out.push_str(name);
                out.push('>');
            }
            rest = &rest[close + 1..];
        } else {
            let (decoded, used) = match rest.find(';').map(|semi| (&rest[1..semi], semi + 1)) {
                Some(("amp", used)) => ("&", used),
                Some(("lt", used)) => ("<", used),
                Some(("gt", used)) => (">", used),
                Some(("nbsp", used)) => ("\u{a0}", used),
                Some(("lrm", used)) => ("\u{200e}", used),
                Some(("rlm", used)) => ("\u{200f}", used),
                Some(("quot", used)) => ("\"", used),
                Some(("apos", used)) => ("'", used),
                _ => ("&", 1),
            };
            out.push_str(decoded);
            rest = &rest[used..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENT: &str = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:10.000\n\nNOTE a comment\n\n\
        STYLE\n::cue { color: lime }\n\n1\n00:00:11.000 --> 00:00:12.500 align:start\nFirst &amp; <i>one</i>\n\
        <c.loud>two</c>\n\n00:13.000 --> 00:14.500\nSecond\n";

    fn cue(start: i64, end: i64, text: &str) -> Cue {
        Cue { id: None, start, end, settings: String::new(), text: text.to_owned() }
    }

    fn joined(segments: &[&[Cue]]) -> Vec<(i64, i64, String)> {
        let mut joiner = Joiner::default();
        for cues in segments {
            joiner.segment(&[]);
            for cue in *cues {
                joiner.push(cue.clone());
            }
        }
        joiner.finish().1.into_iter().map(|c| (c.start, c.end, c.text)).collect()
    }

    #[test]
    fn parses_the_map_blocks_and_cues() {
        let file = parse(SEGMENT).unwrap();
        assert_eq!(file.map, Some(TimestampMap { mpegts: 900_000, local: 10_000 }));
        assert_eq!(file.blocks, ["STYLE\n::cue { color: lime }"]);
        assert_eq!(file.cues.len(), 2);
        assert_eq!(file.cues[0].id.as_deref(), Some("1"));
        assert_eq!((file.cues[0].start, file.cues[0].end), (11_000, 12_500));
        assert_eq!(file.cues[0].settings, "align:start");
        assert_eq!(file.cues[0].text, "First &amp; <i>one</i>\n<c.loud>two</c>");
        assert_eq!((file.cues[1].start, file.cues[1].end), (13_000, 14_500));
        // The map's fields in either order.
        let other = parse("WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:10.000,MPEGTS:90000\n\n").unwrap();
        assert_eq!(other.map, Some(TimestampMap { mpegts: 90_000, local: 10_000 }));
    }

    #[test]
    fn byte_order_marks_line_ends_titles_and_settings_are_read() {
        let text = "\u{feff}WEBVTT - a title\r\n\r\nSTYLE\r\n::cue { color: red }\r\n\r\nNOTE a note\r\n\r\n\
                    00:01.000 --> 00:02.000   line:90%\t align:start\r\n<b>bold</b>\r\nsecond line\r\n";
        let file = parse(text).unwrap();
        assert_eq!(file.blocks, ["STYLE\n::cue { color: red }"]);
        assert_eq!(file.cues[0].settings, "line:90% align:start");
        assert_eq!(file.cues[0].text, "<b>bold</b>\nsecond line");
    }

    #[test]
    fn errors_name_the_line() {
        let e = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(e("<html>"), "line 1: does not start with WEBVTT");
        assert_eq!(
            e("WEBVTT\n\n00:01.000 --> 00:0x.000\nHi\n"),
            "line 3: bad end time \"00:0x.000\" (hh:mm:ss.ttt)"
        );
        assert!(e("WEBVTT\n\n00:02.000 --> 00:01.000\nHi\n").contains("line 3: the cue ends"));
        assert!(e("WEBVTT\n\n00:61.000 --> 00:62.000\nA\n").starts_with("line 3: bad start time"));
        assert!(e("WEBVTT\n\n0:01.000 --> 00:02.000\nA\n").starts_with("line 3: bad start time"));
        assert_eq!(
            e("WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000\n\n"),
            "line 2: bad X-TIMESTAMP-MAP \"LOCAL:00:00:00.000\": no MPEGTS"
        );
        assert!(e("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:x\n").starts_with("line 2: bad X-TIMESTAMP-MAP"));
        assert_eq!(e("WEBVTT\n\njust text\n"), "line 3: a block without a cue timing line: \"just text\"");
        assert!(e("WEBVTT\n\nid\nnot a timing\n").starts_with("line 3: a block without a cue timing line"));
    }

    #[test]
    fn copies_in_later_segments_come_out_once_and_split_cues_whole() {
        let got = joined(&[
            &[cue(1000, 2500, "spans"), cue(3000, 4000, "split")],
            // The next segment repeats the first cue and holds the second half of the split one, a
            // millisecond off.
            &[cue(1000, 2500, "spans"), cue(4001, 4500, "split"), cue(5000, 5500, "other")],
            &[cue(-500, -1, "before the start"), cue(-500, 200, "cut")],
            // A third segment repeating a cue that the second one extended.
            &[cue(3500, 4500, "split")],
        ]);
        let want = [(0, 200, "cut"), (1000, 2500, "spans"), (3000, 4500, "split"), (5000, 5500, "other")];
        assert_eq!(got, want.map(|(s, e, t)| (s, e, t.to_owned())));
    }

    #[test]
    fn equal_cues_of_one_segment_are_the_authors_and_stay() {
        let got = joined(&[&[cue(1000, 2000, "X"), cue(2000, 3000, "X")]]);
        assert_eq!(got.len(), 2);
        // Different settings or text are different cues.
        let mut styled = cue(2000, 3000, "X");
        styled.settings = "line:10%".to_owned();
        assert_eq!(joined(&[&[cue(1000, 2000, "X")], &[styled, cue(2000, 3000, "Y")]]).len(), 3);
    }

    #[test]
    fn writes_vtt_and_srt() {
        let file = parse(SEGMENT).unwrap();
        let vtt = write_vtt(&file.blocks, &file.cues);
        assert!(vtt.starts_with(
            "WEBVTT\n\nSTYLE\n::cue { color: lime }\n\n1\n00:00:11.000 --> 00:00:12.500 align:start\n"
        ));
        assert_eq!(parse(&vtt).unwrap().cues, file.cues);
        let srt = write_srt(&file.cues);
        assert_eq!(
            srt,
            "1\n00:00:11,000 --> 00:00:12,500\nFirst & <i>one</i>\ntwo\n\n2\n00:00:13,000 --> 00:00:14,500\nSecond\n\n"
        );
        assert_eq!(plain_text("a &lt;b&gt; <v Bob>c</v> &bogus d", false), "a <b> c &bogus d");
        assert_eq!(format_vtt(3_725_004), "01:02:05.004");
        assert_eq!(format_vtt(-5), "00:00:00.000");
    }

    #[test]
    fn identifiers_are_written_once() {
        let mut a = cue(1000, 2000, "A");
        a.id = Some("1".to_owned());
        let mut b = cue(3000, 4000, "B");
        b.id = Some("1".to_owned());
        let vtt = write_vtt(&[], &[a, b]);
        assert_eq!(
            vtt,
            "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nA\n\n00:00:03.000 --> 00:00:04.000\nB\n\n"
        );
    }
}
