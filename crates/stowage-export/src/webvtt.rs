//! WebVTT: reading the segments of a subtitle rendition, putting their cues on the presentation timeline,
//! joining the cues that segmenting repeated or split, and writing one WebVTT or SubRip file.
//!
//! A segmented WebVTT rendition repeats a cue in every segment it overlaps (or splits it at the segment
//! boundary), and each segment's cue times are local: `X-TIMESTAMP-MAP=MPEGTS:<ticks>,LOCAL:<time>` says
//! which 90 kHz media timestamp a local time stands for. Cues are mapped through it onto the media
//! timeline of their discontinuity part, then onto the export's presentation timeline, and only then
//! compared, so a cue repeated in two segments comes out once and a cue split in two comes out whole.

use std::fmt::Write as _;

/// One cue: times in milliseconds, settings and text as written (WebVTT markup kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cue {
    pub(crate) id: Option<String>,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) settings: String,
    pub(crate) text: String,
}

/// The `X-TIMESTAMP-MAP` of a segment: the 90 kHz media timestamp `mpegts` is local time `local` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampMap {
    pub(crate) mpegts: u64,
    pub(crate) local: i64,
}

/// A parsed WebVTT file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VttFile {
    pub(crate) map: Option<TimestampMap>,
    /// `STYLE` and `REGION` blocks, as written.
    pub(crate) blocks: Vec<String>,
    pub(crate) cues: Vec<Cue>,
}

/// Parses a WebVTT file. Errors name the line (1-based).
pub(crate) fn parse(text: &str) -> Result<VttFile, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let first = lines.first().copied().unwrap_or("");
    let signature_ok = first
        .strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t'));
    if !signature_ok {
        return Err("line 1: a WebVTT file starts with `WEBVTT`".to_owned());
    }
    let mut file = VttFile::default();
    let mut i = 1;
    // The header: lines up to the first blank line.
    while i < lines.len() && !lines[i].is_empty() {
        if let Some(value) = lines[i].strip_prefix("X-TIMESTAMP-MAP=") {
            file.map = Some(parse_map(value).map_err(|e| format!("line {}: {e}", i + 1))?);
        } else if lines[i].contains("-->") {
            // A cue right after the signature without a blank line is malformed, but common enough in
            // the wild to read as a cue rather than refuse.
            break;
        }
        i += 1;
    }
    let mut seen_cue = false;
    while i < lines.len() {
        if lines[i].is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !lines[i].is_empty() {
            i += 1;
        }
        let block = &lines[start..i];
        let head = block[0];
        if head.starts_with("NOTE") && (head.len() == 4 || head[4..].starts_with([' ', '\t'])) {
            continue;
        }
        if !seen_cue && (head == "STYLE" || head == "REGION") && !block.iter().any(|l| l.contains("-->")) {
            file.blocks.push(block.join("\n"));
            continue;
        }
        let (id, timing, payload) = if head.contains("-->") {
            (None, 0, &block[1..])
        } else if block.len() > 1 && block[1].contains("-->") {
            (Some(head.to_owned()), 1, &block[2..])
        } else {
            return Err(format!(
                "line {}: a block that is neither a cue, a note, a style nor a region",
                start + 1
            ));
        };
        let line = start + timing + 1;
        let (start_ms, end_ms, settings) =
            parse_timing(block[timing]).map_err(|e| format!("line {line}: {e}"))?;
        file.cues.push(Cue { id, start: start_ms, end: end_ms, settings, text: payload.join("\n") });
        seen_cue = true;
    }
    Ok(file)
}

fn parse_map(value: &str) -> Result<TimestampMap, String> {
    let (mut mpegts, mut local) = (None, None);
    for part in value.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("MPEGTS:") {
            mpegts = Some(v.parse::<u64>().map_err(|_| format!("MPEGTS value {v:?} is not a number"))?);
        } else if let Some(v) = part.strip_prefix("LOCAL:") {
            local = Some(parse_timestamp(v)?);
        }
    }
    match (mpegts, local) {
        (Some(mpegts), Some(local)) => Ok(TimestampMap { mpegts, local }),
        _ => Err(format!("X-TIMESTAMP-MAP={value:?} lacks MPEGTS or LOCAL")),
    }
}

fn parse_timing(line: &str) -> Result<(i64, i64, String), String> {
    let (start, rest) = line.split_once("-->").ok_or("no `-->` in the cue timing")?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let (end, settings) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let start = parse_timestamp(start.trim())?;
    let end = parse_timestamp(end.trim())?;
    if end < start {
        return Err(format!("the cue ends ({}) before it starts ({})", format_vtt(end), format_vtt(start)));
    }
    Ok((start, end, settings.trim().to_owned()))
}

/// Parses `hh:mm:ss.ttt` or `mm:ss.ttt` into milliseconds.
fn parse_timestamp(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a WebVTT timestamp (hh:mm:ss.ttt or mm:ss.ttt)");
    let (clock, millis) = text.split_once('.').ok_or_else(bad)?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let fields: Vec<&str> = clock.split(':').collect();
    let number = |f: &str| -> Result<i64, String> {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) || f.len() > 10 {
            return Err(bad());
        }
        f.parse::<i64>().map_err(|_| bad())
    };
    let (h, m, s) = match fields.as_slice() {
        [m, s] => (0, number(m)?, number(s)?),
        [h, m, s] => (number(h)?, number(m)?, number(s)?),
        _ => return Err(bad()),
    };
    if m > 59 || s > 59 {
        return Err(bad());
    }
    Ok(((h * 60 + m) * 60 + s) * 1000 + number(millis)?)
}

fn clock(ms: i64) -> (i64, i64, i64, i64) {
    let ms = ms.max(0);
    (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

fn format_vtt(ms: i64) -> String {
    let (h, m, s, t) = clock(ms);
    format!("{h:02}:{m:02}:{s:02}.{t:03}")
}

fn format_srt(ms: i64) -> String {
    let (h, m, s, t) = clock(ms);
    format!("{h:02}:{m:02}:{s:02},{t:03}")
}

/// Cues put on the presentation timeline one segment after another: a cue equal to one already taken
/// (times within a millisecond, same text and settings) is a repeat and is dropped; a cue that continues
/// one already taken (same text and settings, starting where it ended) extends it.
#[derive(Debug, Default)]
pub(crate) struct Joiner {
    cues: Vec<Cue>,
    blocks: Vec<String>,
}

/// How far back a repeated or continued cue is looked for: segments repeat the cues that overlap their
/// boundary, which are among the last few taken.
const JOIN_WINDOW: usize = 64;

impl Joiner {
    /// Keeps the `STYLE` and `REGION` blocks of the first segment that has any.
    pub(crate) fn blocks(&mut self, blocks: &[String]) {
        if self.blocks.is_empty() {
            self.blocks = blocks.to_vec();
        }
    }

    /// Takes one cue, already on the presentation timeline. Cues that end before the timeline starts are
    /// dropped; a cue that starts before it is cut at 0.
    pub(crate) fn push(&mut self, mut cue: Cue) {
        if cue.end <= 0 {
            return;
        }
        cue.start = cue.start.max(0);
        let near = |a: i64, b: i64| (a - b).abs() <= 1;
        let window = self.cues.len().saturating_sub(JOIN_WINDOW);
        for taken in self.cues[window..].iter_mut().rev() {
            if taken.text != cue.text || taken.settings != cue.settings {
                continue;
            }
            if near(taken.start, cue.start) && near(taken.end, cue.end) {
                return;
            }
            if near(taken.end, cue.start) || (cue.start >= taken.start && cue.start <= taken.end) {
                taken.end = taken.end.max(cue.end);
                return;
            }
        }
        self.cues.push(cue);
    }

    /// The cues, in start order (stable for equal starts).
    pub(crate) fn finish(mut self) -> (Vec<String>, Vec<Cue>) {
        self.cues.sort_by_key(|c| c.start);
        (self.blocks, self.cues)
    }
}

/// A WebVTT file of `cues`, with the `STYLE` and `REGION` blocks first.
pub(crate) fn write_vtt(blocks: &[String], cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for block in blocks {
        out.push_str(block);
        out.push_str("\n\n");
    }
    for cue in cues {
        if let Some(id) = &cue.id {
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
pub(crate) fn write_srt(cues: &[Cue]) -> String {
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
pub(crate) fn plain_text(text: &str, keep_basic: bool) -> String {
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
    }

    #[test]
    fn crlf_and_bom_are_read() {
        let file = parse("\u{feff}WEBVTT\r\n\r\n00:01.000 --> 00:02.000\r\nHi\r\n").unwrap();
        assert_eq!(file.cues[0].text, "Hi");
    }

    #[test]
    fn errors_name_the_line() {
        assert!(parse("WEBVT\n").unwrap_err().starts_with("line 1:"));
        let e = parse("WEBVTT\n\n00:01.000 --> 00:0x.000\nHi\n").unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        let e = parse("WEBVTT\n\n00:02.000 --> 00:01.000\nHi\n").unwrap_err();
        assert!(e.contains("ends"), "{e}");
        let e = parse("WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000\n\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("MPEGTS"), "{e}");
        assert!(parse("WEBVTT\n\njust text\n").unwrap_err().starts_with("line 3:"));
    }

    #[test]
    fn repeated_cues_come_out_once_and_split_ones_whole() {
        let cue = |start, end, text: &str| Cue {
            id: None,
            start,
            end,
            settings: String::new(),
            text: text.to_owned(),
        };
        let mut joiner = Joiner::default();
        joiner.push(cue(1000, 2500, "spans"));
        joiner.push(cue(1000, 2500, "spans")); // repeated by the next segment
        joiner.push(cue(3000, 4000, "split"));
        joiner.push(cue(4001, 4500, "split")); // the second half, a millisecond off
        joiner.push(cue(5000, 5500, "other"));
        joiner.push(cue(-500, -1, "before the start"));
        joiner.push(cue(-500, 200, "cut"));
        let (_, cues) = joiner.finish();
        let got: Vec<_> = cues.iter().map(|c| (c.start, c.end, c.text.as_str())).collect();
        assert_eq!(
            got,
            [(0, 200, "cut"), (1000, 2500, "spans"), (3000, 4500, "split"), (5000, 5500, "other")]
        );
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
    }
}
