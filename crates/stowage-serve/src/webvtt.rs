//! A subtitle rendition as one WebVTT file, for a `<track>` element: the segments' cues on the player's
//! timeline, each cue once.
//!
//! HLS splits WebVTT into segments whose cue times are relative to the media's MPEG timestamps through
//! `X-TIMESTAMP-MAP=MPEGTS:<90 kHz>,LOCAL:<cue time>` (without it, cue time 0 is MPEG timestamp 0). A
//! player's timeline starts at the first presentation time of the media (and, after a discontinuity, at the
//! discontinuity's place in the playlist). So a cue at WebVTT time `t` in a segment of discontinuity `d`
//! plays at `start(d) + (MPEGTS - origin(d)) / 90000 + (t - LOCAL)`, where `origin(d)` is the first
//! presentation time of the media at the start of `d`, and MPEG timestamps wrap at 2^33. When the media's
//! own timestamps cannot be read (a kept-encrypted segment), `origin(d)` is taken as the `MPEGTS` of the
//! first mapped subtitle segment of `d`, which is where segmenters (ffmpeg's, Apple's) put it.
//!
//! A cue that spans a segment boundary is written into both segments, whole or cut at the boundary; the
//! copies (same text and settings, touching or overlapping) are joined into one cue by
//! [`stowage_playlist::webvtt::Joiner`], which reads and writes the WebVTT too.

use std::collections::HashMap;

use stowage_playlist::webvtt::{self, Joiner};

use crate::pts::PTS_MODULO;

/// One subtitle segment to join.
pub(crate) struct Piece<'a> {
    /// How to name the segment in an error (its path in the bundle).
    pub(crate) name: &'a str,
    /// Its text.
    pub(crate) text: &'a str,
    /// Its discontinuity sequence number.
    pub(crate) discontinuity: u64,
    /// Where its discontinuity starts on the timeline, in seconds.
    pub(crate) start: f64,
    /// The first presentation time of the media at the start of its discontinuity (90 kHz), if known.
    pub(crate) origin: Option<u64>,
}

/// Joins the segments of a subtitle rendition into one WebVTT file. `Err` names the segment and line of
/// the first thing that is not WebVTT.
pub(crate) fn join(pieces: &[Piece<'_>]) -> Result<String, String> {
    let mut joiner = Joiner::default();
    // The fallback origin of each discontinuity: the MPEGTS of its first mapped segment.
    let mut fallback: HashMap<u64, u64> = HashMap::new();
    for piece in pieces {
        let parsed = webvtt::parse(piece.text).map_err(|e| format!("{}: {e}", piece.name))?;
        let offset = match parsed.map {
            Some(map) => {
                let origin =
                    piece.origin.unwrap_or(*fallback.entry(piece.discontinuity).or_insert(map.mpegts));
                piece.start + signed_delta(map.mpegts, origin) as f64 / 90_000.0 - map.local as f64 / 1000.0
            }
            None => piece.start + piece.origin.map_or(0.0, |o| signed_delta(0, o) as f64 / 90_000.0),
        };
        // Cue times are whole milliseconds, so the offset is too.
        let offset = (offset * 1000.0).round() as i64;
        joiner.segment(&parsed.blocks);
        for mut cue in parsed.cues {
            cue.start += offset;
            cue.end += offset;
            joiner.push(cue);
        }
    }
    let (blocks, cues) = joiner.finish();
    Ok(webvtt::write_vtt(&blocks, &cues))
}

/// `a - b` for 33-bit wrapping MPEG timestamps: the difference of least magnitude.
fn signed_delta(a: u64, b: u64) -> i64 {
    let d = (a % PTS_MODULO + PTS_MODULO - b % PTS_MODULO) % PTS_MODULO;
    // The difference is below 2^33, so it fits an i64 either way.
    if d >= PTS_MODULO / 2 { d as i64 - PTS_MODULO as i64 } else { d as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece<'a>(name: &'a str, text: &'a str, start: f64, origin: Option<u64>) -> Piece<'a> {
        Piece { name, text, discontinuity: 0, start, origin }
    }

    #[test]
    fn the_timestamp_map_places_cues_on_the_media_timeline() {
        // The fixtures' layout: MPEGTS is the media's first timestamp, cue times are from its start.
        let a =
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:00.250 --> 00:01.750\nFirst\n";
        let b = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:00:02.250 --> 00:00:03.750\nSecond\n";
        let joined = join(&[piece("a", a, 0.0, Some(126_000)), piece("b", b, 0.0, Some(126_000))]).unwrap();
        assert_eq!(
            joined,
            "WEBVTT\n\n00:00:00.250 --> 00:00:01.750\nFirst\n\n00:00:02.250 --> 00:00:03.750\nSecond\n\n"
        );
        // Segments that say MPEGTS 90000 is local 10 s, against media starting at timestamp 0.
        let c =
            "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:10.000,MPEGTS:90000\n\n00:00:10.500 --> 00:00:11.000\nC\n";
        assert!(join(&[piece("c", c, 0.0, Some(0))]).unwrap().contains("00:00:01.500 --> 00:00:02.000"));
        // Without the media's timestamps, the first map's MPEGTS is the origin.
        assert!(join(&[piece("c", c, 0.0, None)]).unwrap().contains("00:00:00.500 --> 00:00:01.000"));
        // Without a map, cue time 0 is MPEG timestamp 0: media starting at 1 s moves cues 1 s earlier.
        let d = "WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nD\n";
        assert!(join(&[piece("d", d, 0.0, Some(90_000))]).unwrap().contains("00:00:04.000 --> 00:00:05.000"));
        // A discontinuity starting at 20 s whose media restarts its timestamps.
        let e =
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:02.000\nE\n";
        let p = Piece { name: "e", text: e, discontinuity: 1, start: 20.0, origin: Some(900_000) };
        assert!(join(&[p]).unwrap().contains("00:00:21.000 --> 00:00:22.000"));
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        let text =
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:90000,LOCAL:00:00:00.000\n\n00:00:00.000 --> 00:00:01.000\nW\n";
        let origin = PTS_MODULO - 90_000;
        assert!(
            join(&[piece("w", text, 0.0, Some(origin))]).unwrap().contains("00:00:02.000 --> 00:00:03.000")
        );
    }

    #[test]
    fn cues_split_across_a_boundary_are_joined_once() {
        let a = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000 line:90%\nAcross\n\n00:00:01.500 --> 00:00:02.000\nOther\n";
        let b = "WEBVTT\n\n1\n00:00:02.000 --> 00:00:03.000 line:90%\nAcross\n\n00:00:02.000 --> 00:00:02.500\nNew\n";
        let c = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000   line:90%\nAcross\n";
        let joined =
            join(&[piece("a", a, 0.0, None), piece("b", b, 0.0, None), piece("c", c, 0.0, None)]).unwrap();
        assert_eq!(joined.matches("Across").count(), 1, "{joined}");
        assert!(joined.contains("1\n00:00:01.000 --> 00:00:03.000 line:90%\nAcross"), "{joined}");
        assert!(joined.contains("Other") && joined.contains("New"), "{joined}");
        // Two equal cues in the same segment are the author's, and stay.
        let twice = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nX\n\n00:00:02.000 --> 00:00:03.000\nX\n";
        assert_eq!(join(&[piece("t", twice, 0.0, None)]).unwrap().matches('X').count(), 2);
    }

    #[test]
    fn styles_notes_and_line_ends() {
        let text = "\u{feff}WEBVTT - a title\r\n\r\nSTYLE\r\n::cue { color: red }\r\n\r\nNOTE a note\r\n\r\n\
                    00:01.000 --> 00:02.000\r\n<b>bold</b>\r\nsecond line\r\n";
        let joined = join(&[piece("s", text, 0.0, None)]).unwrap();
        assert_eq!(
            joined,
            "WEBVTT\n\nSTYLE\n::cue { color: red }\n\n00:00:01.000 --> 00:00:02.000\n<b>bold</b>\nsecond line\n\n"
        );
    }

    #[test]
    fn bad_input_is_named_with_its_line() {
        let err = |text: &str| join(&[piece("subs/seg-d0-s3.vtt", text, 0.0, None)]).unwrap_err();
        assert_eq!(err("<html>"), "subs/seg-d0-s3.vtt: line 1: does not start with WEBVTT");
        assert!(
            err("WEBVTT\n\n00:00.000 --> 00:0x.000\nA\n")
                .starts_with("subs/seg-d0-s3.vtt: line 3: bad end time")
        );
        assert!(err("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:x\n").contains("line 2: bad X-TIMESTAMP-MAP"));
        assert!(err("WEBVTT\n\nid only\n").contains("line 3: a block without a cue timing line"));
        assert!(err("WEBVTT\n\n00:61.000 --> 00:62.000\nA\n").contains("bad start time"));
    }

    #[test]
    fn cues_before_the_start_are_clamped_or_dropped() {
        let text = "WEBVTT\n\n00:00.000 --> 00:00.500\nGone\n\n00:00.500 --> 00:02.000\nClamped\n";
        let joined = join(&[piece("x", text, 0.0, Some(90_000))]).unwrap();
        assert!(!joined.contains("Gone"));
        assert!(joined.contains("00:00:00.000 --> 00:00:01.000\nClamped"), "{joined}");
    }
}
