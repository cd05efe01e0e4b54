//! The presentation timeline of an export: where each discontinuity part of the asset goes.
//!
//! HLS renditions are cut into parts by `EXT-X-DISCONTINUITY`; within a part all renditions share one media
//! clock, across parts the clock may restart or jump. The export puts part `k` at presentation time `T(k)`
//! and shifts all of its renditions by the same amount, `T(k) - base(k)`, where `base(k)` is the earliest
//! start of a rendition in that part: so the renditions of a part stay exactly as in sync as they were
//! encoded, and parts follow one another. Part 0 starts at presentation time 0.
//!
//! A part lasts as long as its longest rendition: the later of what its segments declare (`EXTINF`) and
//! where its last stored media actually ends. So no rendition of a part overlaps the next part, and a
//! shorter rendition leaves a hole (a frame or so, usually) rather than being shifted.
//!
//! Missing segments (gaps) never shift anything: a rendition whose first segments of a part are missing
//! starts, for the purpose of `base(k)`, that many declared seconds before its first stored segment; and
//! within a part the media clock is kept, so what follows a gap stays where it was.
//!
//! The holes of a recording (segments that left the live playlist unrecorded, so not even listed) end a
//! part: the recording marks each with a discontinuity. The part after a hole starts no earlier than the
//! previous part's end, and so that the rendition whose media starts it begins the hole's length after its
//! own media before the hole ended (when several start it, or none has the hole, the earliest such place
//! over the renditions with the hole): so the hole stays a jump of its own length instead of being closed
//! up.

/// What is known of one rendition in one part, in seconds on the part's media clock.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PartMeasure {
    /// Where the rendition's media of this part starts: the first stored segment's start less the declared
    /// durations of the missing segments before it. `None` when nothing of the part is stored, or for
    /// renditions without a media clock (subtitles).
    pub(crate) start: Option<f64>,
    /// Where its last stored media ends, when measured.
    pub(crate) end: Option<f64>,
    /// The sum of the declared durations of its segments in the part, stored or not.
    pub(crate) declared: f64,
    /// The length of the recording's holes just before the part, in seconds (0 without).
    pub(crate) lead: f64,
}

/// One part on the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Part {
    /// The discontinuity sequence number.
    pub(crate) discontinuity: u64,
    /// The earliest start of a rendition, on the part's clock.
    pub(crate) base: f64,
    /// Where the part starts on the presentation timeline.
    pub(crate) start: f64,
    /// How long it lasts.
    pub(crate) length: f64,
}

/// Where each part goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Timeline {
    parts: Vec<Part>,
    /// What the timeline was built from: per media rendition, its parts.
    media: Vec<Vec<(u64, PartMeasure)>>,
}

impl Timeline {
    /// The timeline of renditions measured part by part: `media` holds, for each rendition with a media
    /// clock, its parts as (discontinuity sequence, measure); `other` the same for renditions without one
    /// (subtitles), whose declared durations only count for parts no media rendition has.
    pub(crate) fn new(media: &[Vec<(u64, PartMeasure)>], other: &[Vec<(u64, PartMeasure)>]) -> Self {
        let mut numbers: Vec<u64> =
            media.iter().chain(other).flat_map(|parts| parts.iter().map(|(d, _)| *d)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut parts: Vec<Part> = Vec::with_capacity(numbers.len());
        let mut start_next = 0.0;
        for d in numbers {
            let start = start_next;
            let of = |tracks: &[Vec<(u64, PartMeasure)>]| -> Vec<PartMeasure> {
                tracks
                    .iter()
                    .filter_map(|parts| parts.iter().find(|(n, _)| *n == d).map(|(_, m)| *m))
                    .collect()
            };
            let measures = of(media);
            let measures = if measures.is_empty() { of(other) } else { measures };
            let base = measures.iter().filter_map(|m| m.start).reduce(f64::min);
            let declared = measures.iter().map(|m| m.declared).fold(0.0, f64::max);
            let length = match base {
                None => declared,
                Some(base) => measures
                    .iter()
                    .filter_map(|m| {
                        let s = m.start?;
                        Some((s + m.declared).max(m.end.unwrap_or(f64::MIN)) - base)
                    })
                    .fold(declared, f64::max),
            };
            let start = match base {
                None => start + measures.iter().map(|m| m.lead).fold(0.0, f64::max),
                Some(base) => {
                    // Each rendition with a hole before the part says where the part goes; the renditions
                    // whose media starts the part are believed first, since renditions rarely start on
                    // their declared durations alike (audio frames do not fall on video frame times).
                    let said = |first: bool| {
                        media
                            .iter()
                            .filter(|r| !first || starts_part(r, d, base))
                            .filter_map(|rendition| after_hole(rendition, d, base, &parts))
                            .reduce(f64::min)
                    };
                    said(true).or_else(|| said(false)).map_or(start, |at| at.max(start))
                }
            };
            parts.push(Part { discontinuity: d, base: base.unwrap_or(0.0), start, length });
            start_next = start + length;
        }
        Self { parts, media: media.to_vec() }
    }

    /// Where rendition `media` (its index among the media renditions the timeline was built from) starts
    /// in part `d`, on the presentation timeline.
    pub(crate) fn media_start(&self, media: usize, d: u64) -> Option<f64> {
        let part = self.part(d)?;
        let (_, m) = self.media.get(media)?.iter().find(|(n, _)| *n == d)?;
        Some(part.start + m.start? - part.base)
    }

    /// The part of discontinuity sequence `d`.
    pub(crate) fn part(&self, d: u64) -> Option<&Part> {
        self.parts.iter().find(|p| p.discontinuity == d)
    }

    /// The parts, in order.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// What to add to a time on part `d`'s clock to put it on the presentation timeline.
    pub(crate) fn shift(&self, d: u64) -> f64 {
        self.part(d).map_or(0.0, |p| p.start - p.base)
    }

    /// The base of the first part: presentation time 0 on the first part's clock.
    pub(crate) fn origin(&self) -> f64 {
        self.parts.first().map_or(0.0, |p| p.base)
    }

    /// The presentation duration.
    pub(crate) fn duration(&self) -> f64 {
        self.parts.last().map_or(0.0, |p| p.start + p.length)
    }

    /// Whether every part but the first needs shifting to follow the one before (false for a single part).
    pub(crate) fn has_discontinuities(&self) -> bool {
        self.parts.len() > 1
    }
}

/// Whether `rendition`'s media starts part `d`, of base `base`.
fn starts_part(rendition: &[(u64, PartMeasure)], d: u64, base: f64) -> bool {
    rendition.iter().any(|(n, m)| *n == d && m.start.is_some_and(|s| (s - base).abs() < 1e-9))
}

/// Where part `d` (of base `base`) must start for `rendition`'s media after a hole before it to begin the
/// hole's length after the rendition's media of its previous part ended (`parts`: those placed so far);
/// `None` without a hole before the part, or without media of the rendition on either side.
fn after_hole(rendition: &[(u64, PartMeasure)], d: u64, base: f64, parts: &[Part]) -> Option<f64> {
    let i = rendition.iter().position(|(n, _)| *n == d)?;
    let m = rendition[i].1;
    let start = m.start.filter(|_| m.lead > 0.0)?;
    let (before, p) =
        rendition[..i].iter().rev().find_map(|(n, p)| Some((*n, *p)).filter(|_| p.start.is_some()))?;
    let placed = parts.iter().find(|part| part.discontinuity == before)?;
    let ended = (p.start? + p.declared).max(p.end.unwrap_or(f64::MIN));
    Some(placed.start + (ended - placed.base) + m.lead - (start - base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(start: f64, end: Option<f64>, declared: f64) -> PartMeasure {
        PartMeasure { start: Some(start), end, declared, lead: 0.0 }
    }

    #[test]
    fn parts_follow_one_another_and_keep_their_renditions_in_sync() {
        // Video starts at 1.4, audio 21 ms before it (encoder priming) and runs 37 ms longer; both restart
        // at the same place after the discontinuity.
        let video = vec![(0, m(1.4, Some(7.4), 6.0)), (1, m(1.4, Some(5.4), 4.0))];
        let audio = vec![(0, m(1.3787, Some(7.416), 6.0373)), (1, m(1.3787, Some(5.4107), 4.032))];
        let t = Timeline::new(&[video, audio], &[]);
        let p = t.parts();
        assert_eq!(p.len(), 2);
        assert!((p[0].base - 1.3787).abs() < 1e-9 && p[0].start == 0.0);
        assert!((p[0].length - 6.0373).abs() < 1e-6, "the longer rendition sets the length");
        assert!((p[1].start - 6.0373).abs() < 1e-6);
        assert!((t.shift(1) - (6.0373 - 1.3787)).abs() < 1e-6);
        assert!((t.duration() - 10.0693).abs() < 1e-6);
        assert!((t.origin() - 1.3787).abs() < 1e-9);
    }

    #[test]
    fn a_measured_end_past_the_declared_durations_wins() {
        // EXTINF rounded down to whole seconds: the media runs past what the playlist says.
        let video = vec![(0, m(10.0, Some(16.2), 6.0)), (1, m(0.0, None, 4.0))];
        let t = Timeline::new(&[video], &[]);
        assert!((t.parts()[1].start - 6.2).abs() < 1e-9);
    }

    #[test]
    fn parts_without_media_take_their_declared_length() {
        let video = vec![
            (0, m(0.0, None, 6.0)),
            (1, PartMeasure { start: None, end: None, declared: 4.0, lead: 0.0 }),
        ];
        let subs = vec![
            (0, PartMeasure { declared: 6.0, ..Default::default() }),
            (2, PartMeasure { declared: 2.0, ..Default::default() }),
        ];
        let t = Timeline::new(&[video], &[subs]);
        let starts: Vec<f64> = t.parts().iter().map(|p| p.start).collect();
        assert_eq!(starts, [0.0, 6.0, 10.0]);
        assert_eq!(t.duration(), 12.0);
        assert!(!Timeline::new(&[vec![(0, m(0.0, None, 1.0))]], &[]).has_discontinuities());
    }

    #[test]
    fn a_hole_of_a_recording_stays_a_jump_of_its_length() {
        // Video and audio recorded from 0 to 6 s of one clock, then a 10 s hole (which the recording marks
        // with a discontinuity), then 4 s more: on the same clock, at 16 s for the video, while the audio's
        // first segment after the hole was listed to the recording one segment later (its hole is 12 s).
        let video =
            vec![(0, m(1.4, Some(7.4), 6.0)), (1, PartMeasure { lead: 10.0, ..m(17.4, Some(21.4), 4.0) })];
        let audio =
            vec![(0, m(1.38, Some(7.38), 6.0)), (1, PartMeasure { lead: 12.0, ..m(19.38, Some(21.4), 2.0) })];
        let t = Timeline::new(&[video, audio], &[]);
        let p = t.parts();
        // The part starts where the video's media after the hole goes: 6.02 s (its end before the hole, on
        // the timeline that starts with the audio) and 10 s.
        assert!((p[1].start - 16.02).abs() < 1e-9, "{p:?}");
        assert!((t.media_start(0, 1).unwrap() - 16.02).abs() < 1e-9);
        // The audio lands on the same clock, 2 s later, where its own hole ends.
        assert!((t.media_start(1, 1).unwrap() - 18.0).abs() < 1e-9);
        assert!((t.duration() - 20.02).abs() < 1e-9);
        // Without the holes, the parts would follow one another.
        let closed = Timeline::new(&[vec![(0, m(1.4, Some(7.4), 6.0)), (1, m(17.4, Some(21.4), 4.0))]], &[]);
        assert!((closed.parts()[1].start - 6.0).abs() < 1e-9);
    }
}
