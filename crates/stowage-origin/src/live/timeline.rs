//! The live stream's timeline: which segment is made when, what it carries and what each playlist lists,
//! as pure functions of stream time and the script. No IO and no clock: the origin asks it at the time of
//! each request, and tests ask it what a recording should contain.

use std::ops::{Range, RangeInclusive};
use std::time::{Duration, SystemTime};

use super::PlaylistKind;
use super::script::{Action, Outage, Resolved, outage};

/// A stretch of segments no client could have been shown, because the origin was unreachable for as long
/// as they were listed (see [`Timeline::lost_to_outages`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loss {
    /// The segments, by position (see [`Timeline`]).
    pub positions: Range<u64>,
    /// The span of stream time the origin was unreachable (outages that touch are merged).
    pub unreachable: Range<Duration>,
}

#[derive(Clone, Debug)]
pub(crate) struct StaleSpan {
    pub(crate) from: u64,
    pub(crate) until: u64,
    pub(crate) lag: u64,
    pub(crate) every: u32,
}

/// The timeline of a live origin: every question about what the stream holds at a moment, and what each
/// segment carries, answered without a clock.
///
/// Segments are numbered by **position**: 0 for the oldest segment listed when the origin starts, then
/// 1, 2, ... in the order they are made. A position's media sequence number is
/// `first_media_sequence + position`, plus the sum of the [jumps](super::Action::JumpMediaSequence) made
/// before it, so the two differ only by a constant until a jump. Times are stream times from the origin's
/// start: at time 0 the first `window` positions are already made; position `p` is made (listed) at
/// `(p + 1 − window) × segment_duration`, and in live mode leaves the window when position `p + window`
/// is made, at `(p + 1) × segment_duration`. Its program date time is that of position 0 plus
/// `p × segment_duration`.
#[derive(Clone, Debug)]
pub struct Timeline {
    kind: PlaylistKind,
    window: u64,
    segment: u64,
    first_msn: u64,
    source_len: u64,
    pdt0: SystemTime,
    parts: u64,
    stop_count: Option<u64>,
    endlist_at: Option<u64>,
    /// (first position, extra media sequence numbers from there on), strictly increasing positions.
    jumps: Vec<(u64, u64)>,
    /// (first position, its source segment), strictly increasing positions; the first is (0, 0).
    runs: Vec<(u64, u64)>,
    stalls: Vec<(u64, u64)>,
    pub(crate) stales: Vec<StaleSpan>,
    outages: Vec<Outage>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Timeline {
    /// Builds the timeline; `segment` is at least one nanosecond, `window` and `source_len` at least one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        kind: PlaylistKind,
        window: u64,
        segment: Duration,
        first_msn: u64,
        source_len: u64,
        pdt0: SystemTime,
        parts: u64,
        events: &[Resolved],
    ) -> Self {
        let mut timeline = Self {
            kind,
            window: window.max(1),
            segment: ns(segment).max(1),
            first_msn,
            source_len: source_len.max(1),
            pdt0,
            parts,
            stop_count: None,
            endlist_at: None,
            jumps: Vec::new(),
            runs: vec![(0, 0)],
            stalls: Vec::new(),
            stales: Vec::new(),
            outages: Vec::new(),
        };
        let mut stop_at: Option<u64> = None;
        let mut jumps: Vec<(u64, u64)> = Vec::new();
        let mut switches: Vec<(u64, u64)> = Vec::new();
        for event in events {
            let (from, until) = (ns(event.from), ns(event.until));
            // An event at t acts on the segments made after t.
            let position = timeline.made_by(from);
            match &event.action {
                Action::Stall if until > from => timeline.stalls.push((from, until)),
                Action::Stale { lag, every } if until > from => {
                    timeline.stales.push(StaleSpan { from, until, lag: ns(*lag), every: (*every).max(1) });
                }
                Action::ContentSwitch { to } => {
                    switches.push((position, *to as u64 % timeline.source_len));
                }
                Action::JumpMediaSequence { by } => jumps.push((position, *by)),
                Action::StopPublishing => stop_at = Some(stop_at.map_or(from, |s| s.min(from))),
                Action::EndList => {
                    stop_at = Some(stop_at.map_or(from, |s| s.min(from)));
                    timeline.endlist_at = Some(timeline.endlist_at.map_or(from, |e| e.min(from)));
                }
                _ => {}
            }
            if let Some(outage) = outage(event) {
                timeline.outages.push(outage);
            }
        }
        timeline.stop_count = stop_at.map(|t| timeline.made_by(t));
        // Jumps at one position add up; the list holds running totals.
        jumps.sort_by_key(|&(p, _)| p);
        let mut total = 0u64;
        for (position, by) in jumps {
            total = total.saturating_add(by);
            match timeline.jumps.last_mut() {
                Some(last) if last.0 == position => last.1 = total,
                _ => timeline.jumps.push((position, total)),
            }
        }
        // Of several switches at one position, the last added wins.
        switches.sort_by_key(|&(p, _)| p);
        for (position, slot) in switches {
            match timeline.runs.last_mut() {
                Some(last) if last.0 == position => last.1 = slot,
                _ => timeline.runs.push((position, slot)),
            }
        }
        timeline.stalls.sort_unstable();
        timeline.outages.sort_by_key(|o| o.from);
        timeline
    }

    /// Live or EVENT.
    pub fn kind(&self) -> PlaylistKind {
        self.kind
    }

    /// The length of every segment (its `EXTINF`).
    pub fn segment_duration(&self) -> Duration {
        Duration::from_nanos(self.segment)
    }

    /// The segments a live playlist lists (and an EVENT playlist at the start).
    pub fn window_len(&self) -> u64 {
        self.window
    }

    /// The number of segments in the source, which the stream loops over.
    pub fn source_len(&self) -> u64 {
        self.source_len
    }

    /// Partial segments per segment (0 without low latency).
    pub fn parts_per_segment(&self) -> u64 {
        self.parts
    }

    /// The outages of the script, by start.
    pub fn outages(&self) -> &[Outage] {
        &self.outages
    }

    /// How many segments are ever made, if the script stops the stream.
    pub fn final_count(&self) -> Option<u64> {
        self.stop_count
    }

    /// Positions made up to stream time `at` (the count of them).
    pub fn published(&self, at: Duration) -> u64 {
        self.published_ns(ns(at))
    }

    /// The positions a fresh playlist lists at stream time `at`, stalls aside.
    pub fn window(&self, at: Duration) -> Range<u64> {
        self.window_ns(ns(at))
    }

    /// The positions a playlist answered at stream time `at` lists (during a stall, those of its start;
    /// stale copies aside).
    pub fn listed(&self, at: Duration) -> Range<u64> {
        self.window_ns(self.effective(ns(at)))
    }

    /// Whether a playlist answered at stream time `at` ends with `EXT-X-ENDLIST` (stalls aside).
    pub fn ended(&self, at: Duration) -> bool {
        self.ended_ns(ns(at))
    }

    /// The media sequence number of `position`.
    pub fn media_sequence(&self, position: u64) -> u64 {
        self.first_msn + position + self.jump_total(position)
    }

    /// The position carrying media sequence number `msn`, if one does (numbers skipped by a jump do not).
    pub fn position(&self, msn: u64) -> Option<u64> {
        let position = self.first_position_from(msn)?;
        (self.media_sequence(position) == msn).then_some(position)
    }

    /// The first position whose media sequence number is `msn` or more (`None` when `msn` is below the
    /// first media sequence number).
    pub fn first_position_from(&self, msn: u64) -> Option<u64> {
        let relative = msn.checked_sub(self.first_msn)?;
        let mut start = 0;
        let mut offset = 0;
        for &(position, total) in &self.jumps {
            // Positions start..position carry relative numbers start+offset ..= position-1+offset.
            if position > start && relative < position + offset {
                return Some(relative.saturating_sub(offset).max(start));
            }
            start = position;
            offset = total;
        }
        Some(relative.saturating_sub(offset).max(start))
    }

    /// The media sequence numbers of `positions`, as ranges split where the sequence jumps.
    pub fn media_sequences(&self, positions: Range<u64>) -> Vec<RangeInclusive<u64>> {
        let mut ranges: Vec<RangeInclusive<u64>> = Vec::new();
        let mut start = positions.start;
        while start < positions.end {
            let next_jump = self
                .jumps
                .iter()
                .map(|&(p, _)| p)
                .find(|&p| p > start)
                .unwrap_or(u64::MAX)
                .min(positions.end);
            ranges.push(self.media_sequence(start)..=self.media_sequence(next_jump - 1));
            start = next_jump;
        }
        ranges
    }

    /// The index of the source segment `position` carries.
    pub fn source_index(&self, position: u64) -> usize {
        let (start, slot) = self.run(position);
        ((slot + position - start) % self.source_len) as usize
    }

    /// Whether `position` is preceded by `EXT-X-DISCONTINUITY`: at each loop of the source and at each
    /// content switch. (The first segment of a playlist carries the tag only implicitly, in its
    /// `EXT-X-DISCONTINUITY-SEQUENCE`.)
    pub fn has_discontinuity(&self, position: u64) -> bool {
        if position == 0 {
            return false;
        }
        let (start, slot) = self.run(position);
        position == start || (slot + position - start).is_multiple_of(self.source_len)
    }

    /// The discontinuity sequence number of `position`: the discontinuities at or before it.
    pub fn discontinuity_sequence(&self, position: u64) -> u64 {
        let mut count = 0;
        for (i, &(start, slot)) in self.runs.iter().enumerate() {
            if start > position {
                break;
            }
            if i > 0 {
                count += 1;
            }
            let end = self.runs.get(i + 1).map_or(position, |&(next, _)| (next - 1).min(position));
            // Loop points m in start+1 ..= end, where the source index comes back to 0.
            count += (slot + end - start) / self.source_len;
        }
        count
    }

    /// When `position` is made: `None` if it never is (the stream stops first), zero if it was made before
    /// the origin started.
    pub fn published_at(&self, position: u64) -> Option<Duration> {
        if self.stop_count.is_some_and(|n| position >= n) {
            return None;
        }
        Some(Duration::from_nanos(self.made_at(position).max(0) as u64))
    }

    /// When `position` leaves a live window (pushed out by newer segments, or dropped by a media sequence
    /// jump); `None` in EVENT mode, and for the segments still listed when the stream stops.
    pub fn leaves_window_at(&self, position: u64) -> Option<Duration> {
        self.leave_ns(position).map(Duration::from_nanos)
    }

    /// The program date time of the start of `position`.
    pub fn program_date_time(&self, position: u64) -> SystemTime {
        self.pdt0 + Duration::from_nanos(position.saturating_mul(self.segment))
    }

    /// The positions that leave the live window during the stream time `(from, until]` (none in EVENT
    /// mode).
    pub fn left_window_during(&self, from: Duration, until: Duration) -> Range<u64> {
        if self.kind == PlaylistKind::Event || until <= from {
            return 0..0;
        }
        self.first_leaving_after(ns(from))..self.first_leaving_after(ns(until))
    }

    /// The first position still listed after `t` (leave times never decrease with the position).
    fn first_leaving_after(&self, t: u64) -> u64 {
        let (mut low, mut high) = (0u64, (t / self.segment).saturating_add(self.window + 1));
        while low < high {
            let middle = low + (high - low) / 2;
            if self.leave_ns(middle).is_some_and(|left| left <= t) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    fn leave_ns(&self, position: u64) -> Option<u64> {
        if self.kind == PlaylistKind::Event {
            return None;
        }
        let made = |p: u64| self.stop_count.is_none_or(|n| p < n);
        // Pushed out when position + window is made, at (position + 1) × segment.
        let pushed = made(position + self.window).then(|| (position + 1).saturating_mul(self.segment));
        // Dropped when the first jump after it is made.
        let jumped = self
            .jumps
            .iter()
            .map(|&(p, _)| p)
            .find(|&p| p > position && made(p))
            .map(|p| self.made_at(p).max(0) as u64);
        match (pushed, jumped) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The segments no client could have been shown, however often it reloaded: those listed only while the
    /// script's outages made the origin unreachable (stalls are taken into account: a frozen playlist lists
    /// nothing new). This is the floor: a recorder that fetches every segment it is shown misses exactly
    /// these when its last reload before an outage came after the last segment made before it (as with
    /// reloads at least once per segment duration); otherwise the segments made in between too, which
    /// [`LiveOrigin::unlisted`](super::LiveOrigin::unlisted) tells from the playlists it was actually
    /// answered.
    pub fn lost_to_outages(&self) -> Vec<Loss> {
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for outage in &self.outages {
            let (from, until) = (ns(outage.from), ns(outage.until));
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(until),
                _ => merged.push((from, until)),
            }
        }
        let mut losses = Vec::new();
        for (from, until) in merged {
            // The last playlist a client could have had before, and the first after.
            let before = if from == 0 { 0 } else { self.window_ns(self.effective(from - 1)).end };
            let after = self.window_ns(self.effective(until)).start;
            if after > before {
                losses.push(Loss {
                    positions: before..after,
                    unreachable: Duration::from_nanos(from)..Duration::from_nanos(until),
                });
            }
        }
        losses
    }

    // Stream-time internals in nanoseconds.

    /// Positions made by `t` if nothing stopped the stream.
    fn made_by(&self, t: u64) -> u64 {
        self.window + t / self.segment
    }

    /// When `position` is made (negative: before the start).
    pub(crate) fn made_at(&self, position: u64) -> i128 {
        (i128::from(position) + 1 - i128::from(self.window)) * i128::from(self.segment)
    }

    pub(crate) fn published_ns(&self, t: u64) -> u64 {
        let made = self.made_by(t);
        self.stop_count.map_or(made, |n| made.min(n))
    }

    pub(crate) fn window_ns(&self, t: u64) -> Range<u64> {
        let end = self.published_ns(t);
        match self.kind {
            PlaylistKind::Live => {
                // One playlist cannot list both sides of a media sequence jump (its segments are numbered by
                // their place in it), so the window starts again at the latest jump made.
                let jump = self.jumps.iter().map(|&(p, _)| p).rfind(|&p| p < end).unwrap_or(0);
                end.saturating_sub(self.window).max(jump)..end
            }
            PlaylistKind::Event => 0..end,
        }
    }

    pub(crate) fn ended_ns(&self, t: u64) -> bool {
        self.endlist_at.is_some_and(|e| t >= e)
    }

    /// The time whose playlist is answered at `t`: during a stall, the stall's start.
    pub(crate) fn effective(&self, mut t: u64) -> u64 {
        // Stalls are sorted by start; overlapping ones chain back to the earliest.
        for &(from, until) in self.stalls.iter().rev() {
            if from <= t && t < until {
                t = from;
            }
        }
        t
    }

    /// The end of the stall (chain of overlapping stalls) `t` is inside, if it is.
    pub(crate) fn stall_end(&self, t: u64) -> Option<u64> {
        let mut end =
            self.stalls.iter().filter(|&&(from, until)| from <= t && t < until).map(|s| s.1).max()?;
        while let Some(later) =
            self.stalls.iter().filter(|&&(from, until)| from <= end && end < until).map(|s| s.1).max()
        {
            end = later;
        }
        Some(end)
    }

    /// Whether `t` is inside a stall.
    pub(crate) fn stalled(&self, t: u64) -> bool {
        self.stalls.iter().any(|&(from, until)| from <= t && t < until)
    }

    /// The segment being made at `t` and how many of its parts are done, for low latency.
    pub(crate) fn in_progress(&self, t: u64) -> Option<(u64, u64)> {
        if self.parts == 0 {
            return None;
        }
        let position = self.published_ns(t);
        if self.stop_count.is_some_and(|n| position >= n) {
            return None;
        }
        let started = self.made_at(position) - i128::from(self.segment);
        let elapsed = (i128::from(t) - started).max(0) as u128;
        let done = (elapsed * u128::from(self.parts) / u128::from(self.segment)) as u64;
        Some((position, done.min(self.parts - 1)))
    }

    /// When part `part` of `position` is done (the last part ends with the segment).
    pub(crate) fn part_done_at(&self, position: u64, part: u64) -> i128 {
        let started = self.made_at(position) - i128::from(self.segment);
        let within =
            (u128::from(part + 1) * u128::from(self.segment)).div_ceil(u128::from(self.parts.max(1)));
        started + within as i128
    }

    /// The length of part `part` of every segment.
    pub(crate) fn part_duration(&self, part: u64) -> Duration {
        let end = |j: u64| (u128::from(j) * u128::from(self.segment)).div_ceil(u128::from(self.parts.max(1)));
        Duration::from_nanos((end(part + 1) - end(part)) as u64)
    }

    fn jump_total(&self, position: u64) -> u64 {
        self.jumps.iter().take_while(|&&(p, _)| p <= position).last().map_or(0, |&(_, total)| total)
    }

    fn run(&self, position: u64) -> (u64, u64) {
        self.runs.iter().take_while(|&&(p, _)| p <= position).last().copied().unwrap_or((0, 0))
    }
}

/// An `EXT-X-PROGRAM-DATE-TIME` value: `2024-01-01T00:00:00.000Z`.
pub(crate) fn format_date_time(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = crate::files::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn event(at: u64, length: u64, action: Action) -> Resolved {
        Resolved { from: s(at), until: s(at + length), action }
    }

    fn timeline(kind: PlaylistKind, events: &[Resolved]) -> Timeline {
        // Window 4, 2 s segments, a source of 3 segments, first media sequence 100.
        Timeline::new(kind, 4, s(2), 100, 3, SystemTime::UNIX_EPOCH, 0, events)
    }

    #[test]
    fn the_window_slides_one_segment_per_segment_duration() {
        let t = timeline(PlaylistKind::Live, &[]);
        assert_eq!(t.window(s(0)), 0..4);
        assert_eq!(t.window(Duration::from_millis(1999)), 0..4);
        assert_eq!(t.window(s(2)), 1..5);
        assert_eq!(t.window(s(3600)), 1800..1804);
        assert_eq!(t.published_at(3), Some(s(0)));
        assert_eq!(t.published_at(4), Some(s(2)));
        assert_eq!(t.leaves_window_at(0), Some(s(2)));
        assert_eq!(t.program_date_time(5), SystemTime::UNIX_EPOCH + s(10));
        let e = timeline(PlaylistKind::Event, &[]);
        assert_eq!(e.window(s(3600)), 0..1804);
        assert_eq!(e.leaves_window_at(0), None);
    }

    #[test]
    fn loops_and_switches_are_discontinuities_counted_exactly() {
        // A content switch at 5 s acts on the first segment made after it: position 6 (made at 6 s).
        let t = timeline(PlaylistKind::Live, &[event(5, 0, Action::ContentSwitch { to: 2 })]);
        let slots: Vec<usize> = (0..12).map(|p| t.source_index(p)).collect();
        assert_eq!(slots, [0, 1, 2, 0, 1, 2, 2, 0, 1, 2, 0, 1]);
        let discontinuities: Vec<u64> = (0..12).filter(|&p| t.has_discontinuity(p)).collect();
        assert_eq!(discontinuities, [3, 6, 7, 10]);
        // The sequence number counts the tags at or before each position, whatever the position.
        let mut expected = 0;
        for p in 0..200 {
            if t.has_discontinuity(p) {
                expected += 1;
            }
            assert_eq!(t.discontinuity_sequence(p), expected, "position {p}");
        }
    }

    #[test]
    fn jumps_skip_media_sequence_numbers() {
        // At 3 s: position 5 and later carry 5 more. Twice at 7 s: 1 + 2 more from position 7 on.
        let t = timeline(
            PlaylistKind::Live,
            &[
                event(3, 0, Action::JumpMediaSequence { by: 5 }),
                event(7, 0, Action::JumpMediaSequence { by: 1 }),
                event(7, 0, Action::JumpMediaSequence { by: 2 }),
            ],
        );
        let msns: Vec<u64> = (3..9).map(|p| t.media_sequence(p)).collect();
        assert_eq!(msns, [103, 104, 110, 111, 115, 116]);
        assert_eq!(t.position(110), Some(5));
        assert_eq!(t.position(107), None);
        assert_eq!(t.first_position_from(107), Some(5));
        assert_eq!(t.first_position_from(113), Some(7));
        assert_eq!(t.first_position_from(99), None);
        assert_eq!(t.first_position_from(100), Some(0));
        assert_eq!(t.media_sequences(3..9), [103..=104, 110..=111, 115..=116]);
        // The window starts again at each jump; what it drops leaves then.
        assert_eq!(t.window(s(3)), 1..5);
        assert_eq!(t.window(s(4)), 5..6);
        assert_eq!(t.window(s(6)), 5..7);
        assert_eq!(t.window(s(8)), 7..8);
        assert_eq!(t.window(s(14)), 7..11);
        assert_eq!(t.window(s(16)), 8..12);
        assert_eq!(t.leaves_window_at(1), Some(s(4)));
        assert_eq!(t.leaves_window_at(0), Some(s(2)));
        assert_eq!(t.leaves_window_at(6), Some(s(8)));
        assert_eq!(t.left_window_during(s(2), s(4)), 1..5);
        assert_eq!(t.left_window_during(s(0), s(100)), 0..50);
    }

    #[test]
    fn stops_and_late_endlists() {
        let t = timeline(
            PlaylistKind::Live,
            &[event(9, 0, Action::StopPublishing), event(20, 0, Action::EndList)],
        );
        // Made by 9 s: positions 0..8 (position 8 at 10 s is never made).
        assert_eq!(t.final_count(), Some(8));
        assert_eq!(t.window(s(100)), 4..8);
        assert!(!t.ended(s(19)) && t.ended(s(20)));
        assert_eq!(t.published_at(8), None);
        assert_eq!(t.leaves_window_at(3), Some(s(8)));
        assert_eq!(t.leaves_window_at(4), None);
        assert_eq!(t.left_window_during(s(0), s(100)), 0..4);
    }

    #[test]
    fn stalls_freeze_what_is_listed() {
        let t = timeline(PlaylistKind::Live, &[event(10, 6, Action::Stall), event(14, 4, Action::Stall)]);
        assert_eq!(t.listed(s(10)), t.window(s(10)));
        assert_eq!(t.listed(s(15)), t.window(s(10)));
        // The second stall starts inside the first: the playlist of 10 s is served until 18 s.
        assert_eq!(t.listed(s(17)), t.window(s(10)));
        assert_eq!(t.listed(s(18)), t.window(s(18)));
    }

    #[test]
    fn outages_lose_what_was_listed_only_while_unreachable() {
        // Unreachable from 10 s to 30 s. Just before 10 s the window is 4..8; at 30 s it is 15..19:
        // positions 8 (made at 10 s) to 14 (gone at 30 s) were listed only during the outage.
        let t = timeline(PlaylistKind::Live, &[event(10, 20, Action::BlackHole)]);
        let lost = t.lost_to_outages();
        assert_eq!(lost, [Loss { positions: 8..15, unreachable: s(10)..s(30) }]);
        // Those that left the window during the outage include segments listed before it.
        assert_eq!(t.left_window_during(s(10), s(30)), 5..15);
        // A short outage loses nothing; touching outages merge.
        let t = timeline(
            PlaylistKind::Live,
            &[event(10, 4, Action::Refuse), event(14, 2, Action::Status(503)), event(40, 3, Action::Refuse)],
        );
        assert_eq!(t.lost_to_outages(), []);
        assert_eq!(timeline(PlaylistKind::Event, &[event(10, 20, Action::BlackHole)]).lost_to_outages(), []);
    }

    #[test]
    fn parts_divide_segments_exactly() {
        let t = Timeline::new(PlaylistKind::Live, 4, s(2), 0, 3, SystemTime::UNIX_EPOCH, 3, &[]);
        // Position 4 is being made from 0 s to 2 s, in parts ending at 0.667, 1.334 and 2 s.
        assert_eq!(t.in_progress(0), Some((4, 0)));
        assert_eq!(t.part_done_at(4, 0), 666_666_667);
        assert_eq!(t.in_progress(666_666_666), Some((4, 0)));
        assert_eq!(t.in_progress(666_666_667), Some((4, 1)));
        assert_eq!(t.part_done_at(4, 2), 2_000_000_000);
        assert_eq!(t.in_progress(2_000_000_000), Some((5, 0)));
        let total: Duration = (0..3).map(|j| t.part_duration(j)).sum();
        assert_eq!(total, s(2));
    }

    #[test]
    fn program_date_times_are_iso_8601() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_704_067_200_250);
        assert_eq!(format_date_time(t), "2024-01-01T00:00:00.250Z");
    }
}
