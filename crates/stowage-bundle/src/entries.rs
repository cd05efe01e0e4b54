//! A rendition's plan entries and what is stored of them, as an open bundle keeps them: compactly, so that
//! a recording of many hours holds a few bytes per segment in memory, not a full record and two hash-map
//! entries keyed by identity (about 340 bytes a segment before).
//!
//! A planned or recorded playlist is mostly runs of media segments numbered one after another in one
//! discontinuity sequence, without byte ranges: a run is kept as its first numbers and its length, and each
//! of its entries costs its duration alone. Entries that do not fit a run (initialization sections, byte
//! ranges, expected lengths) are kept whole, each findable by its identity. URIs are kept for the entries
//! that have one: the plans of downloads, and the first entries of a recording (it journals the later ones
//! without them).
//!
//! What is stored of an entry ([`Stored`]) is its length and checksum by position: 12 bytes an entry. The
//! per-entry values are kept in fixed chunks, so that growing never copies them nor leaves room unused.

use std::collections::{BTreeMap, HashMap};

use std::collections::HashSet;

use crate::id::{ByteRange, RenditionId, SegmentId, SegmentKind};
use crate::ledger::Finished;
use crate::manifest::PlannedSegment;
use crate::ranges::{TimeRange, TimeRanges};

/// Entries between two start-time checkpoints: an entry's start is summed from the checkpoint before it.
const CHECKPOINT: usize = 64;

/// An entry's identity within its rendition.
type Key = (SegmentKind, u64, u64, Option<ByteRange>);

fn key_of(entry: &PlannedSegment) -> Key {
    (entry.kind, entry.discontinuity_sequence, entry.media_sequence, entry.byte_range)
}

fn key_of_id(id: &SegmentId) -> Key {
    (id.kind, id.discontinuity_sequence, id.media_sequence, id.byte_range)
}

/// Consecutive entries of the plan.
#[derive(Debug)]
enum Piece {
    /// `count` media entries numbered `first` on in discontinuity sequence `discontinuity`, without byte
    /// range or expected length.
    Run { start: usize, discontinuity: u64, first: u64, count: usize },
    /// One entry that fits no run (its URI kept apart, in `Entries::uris`).
    One { start: usize, entry: Box<PlannedSegment> },
}

impl Piece {
    fn start(&self) -> usize {
        match self {
            Self::Run { start, .. } | Self::One { start, .. } => *start,
        }
    }
}

/// The plan entries of one rendition, in plan order.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    pieces: Vec<Piece>,
    /// Per entry: its duration when it is a media entry, else 0 (what the time line counts).
    durations: Column<f64>,
    /// The start time of entries `0`, `CHECKPOINT`, `2 * CHECKPOINT`…: each entry's start is summed from
    /// the one before it in the order a walk over the whole plan sums it, so it is that walk's to the bit.
    checkpoints: Vec<f64>,
    /// The end of the last entry on the time line.
    end: f64,
    /// The URIs of the entries that have one, by position (ascending). A recording's first entries have
    /// theirs (read with its first playlist), the ones it journals do not: they cost nothing here.
    uris: Vec<(usize, String)>,
    /// Positions of the initialization entries, ascending.
    inits: Vec<usize>,
    /// The runs by (discontinuity sequence, first media sequence): the piece index.
    runs: BTreeMap<(u64, u64), usize>,
    /// The entries that fit no run, by identity: their position.
    singles: HashMap<Key, usize>,
}

impl Entries {
    pub(crate) fn from_vec(entries: Vec<PlannedSegment>) -> Self {
        let mut all = Self::default();
        for entry in entries {
            all.push(entry);
        }
        all
    }

    pub(crate) fn len(&self) -> usize {
        self.durations.len()
    }

    /// Appends an entry. The caller has checked that its identity is new.
    pub(crate) fn push(&mut self, mut entry: PlannedSegment) {
        let si = self.len();
        if si.is_multiple_of(CHECKPOINT) {
            self.checkpoints.push(self.end);
        }
        let media = entry.kind == SegmentKind::Media;
        let duration = if media { entry.duration } else { 0.0 };
        self.durations.push(duration);
        self.end += duration;
        let uri = std::mem::take(&mut entry.uri);
        if !uri.is_empty() {
            self.uris.push((si, uri));
        }
        let regular = media && entry.byte_range.is_none() && entry.expected_length.is_none();
        if regular
            && let Some(Piece::Run { start, discontinuity, first, count }) = self.pieces.last_mut()
            && *start + *count == si
            && *discontinuity == entry.discontinuity_sequence
            && first.checked_add(*count as u64) == Some(entry.media_sequence)
        {
            *count += 1;
            return;
        }
        let index = self.pieces.len();
        if regular && !self.runs.contains_key(&(entry.discontinuity_sequence, entry.media_sequence)) {
            self.runs.insert((entry.discontinuity_sequence, entry.media_sequence), index);
            self.pieces.push(Piece::Run {
                start: si,
                discontinuity: entry.discontinuity_sequence,
                first: entry.media_sequence,
                count: 1,
            });
        } else {
            if entry.kind == SegmentKind::Init {
                self.inits.push(si);
            }
            self.singles.insert(key_of(&entry), si);
            self.pieces.push(Piece::One { start: si, entry: Box::new(entry) });
        }
    }

    /// The piece that holds entry `si`.
    fn piece(&self, si: usize) -> &Piece {
        let at = self.pieces.partition_point(|p| p.start() <= si) - 1;
        &self.pieces[at]
    }

    /// Entry `si` (`si < len`).
    pub(crate) fn get(&self, si: usize) -> PlannedSegment {
        let mut entry = match self.piece(si) {
            Piece::Run { start, discontinuity, first, .. } => PlannedSegment::media(
                *discontinuity,
                first + (si - start) as u64,
                self.durations.get(si),
                String::new(),
            ),
            Piece::One { entry, .. } => (**entry).clone(),
        };
        if let Ok(at) = self.uris.binary_search_by_key(&si, |(at, _)| *at) {
            entry.uri.clone_from(&self.uris[at].1);
        }
        entry
    }

    /// The kind of entry `si`.
    pub(crate) fn kind(&self, si: usize) -> SegmentKind {
        match self.piece(si) {
            Piece::Run { .. } => SegmentKind::Media,
            Piece::One { entry, .. } => entry.kind,
        }
    }

    /// The identity of entry `si` in `rendition`.
    pub(crate) fn id(&self, rendition: &RenditionId, si: usize) -> SegmentId {
        match self.piece(si) {
            Piece::Run { start, discontinuity, first, .. } => {
                SegmentId::media(rendition.clone(), *discontinuity, first + (si - start) as u64)
            }
            Piece::One { entry, .. } => entry.id(rendition),
        }
    }

    /// Where the entry with identity `id` (of this rendition) is.
    pub(crate) fn position(&self, id: &SegmentId) -> Option<usize> {
        if let Some(&si) = self.singles.get(&key_of_id(id)) {
            return Some(si);
        }
        if id.kind != SegmentKind::Media || id.byte_range.is_some() {
            return None;
        }
        let (_, &index) = self
            .runs
            .range(..=(id.discontinuity_sequence, id.media_sequence))
            .next_back()
            .filter(|((d, _), _)| *d == id.discontinuity_sequence)?;
        match self.pieces[index] {
            Piece::Run { start, first, count, .. } => {
                let offset = id.media_sequence - first;
                (offset < count as u64).then(|| start + offset as usize)
            }
            Piece::One { .. } => None,
        }
    }

    /// The duration of entry `si` on the time line (0 for an initialization section).
    pub(crate) fn duration(&self, si: usize) -> f64 {
        self.durations.get(si)
    }

    /// The start of entry `si` on the rendition's time line: the durations of the media entries before it.
    pub(crate) fn start(&self, si: usize) -> f64 {
        let from = si / CHECKPOINT * CHECKPOINT;
        self.durations.slice(from, si).iter().fold(self.checkpoints[si / CHECKPOINT], |t, d| t + d)
    }

    /// The initialization entry in force for media entry `si`: the last one before it.
    pub(crate) fn init_of(&self, si: usize) -> Option<usize> {
        let at = self.inits.partition_point(|&i| i < si);
        at.checked_sub(1).map(|at| self.inits[at])
    }

    /// Every entry, in plan order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = PlannedSegment> + '_ {
        (0..self.len()).map(|si| self.get(si))
    }

    /// The memory the entries hold beyond their own struct: what a test holds to its bound.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let singles = self.pieces.iter().filter(|p| matches!(p, Piece::One { .. })).count();
        self.pieces.capacity() * size_of::<Piece>()
            + singles * size_of::<PlannedSegment>()
            + self.durations.heap_bytes()
            + self.checkpoints.capacity() * size_of::<f64>()
            + self.uris.capacity() * size_of::<(usize, String)>()
            + self.uris.iter().map(|(_, uri)| uri.capacity()).sum::<usize>()
            + self.inits.capacity() * size_of::<usize>()
            // A B-tree node holds up to 11 entries; count a node per entry to stay on the safe side.
            + self.runs.len() * (size_of::<(u64, u64)>() + size_of::<usize>()) * 2
            + self.singles.capacity() * (size_of::<Key>() + size_of::<usize>() + 1)
    }
}

/// What is stored of each entry of a rendition: its length and checksum, by position.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// Per entry, the stored length, or `NONE`.
    lengths: Column<u64>,
    crcs: Column<u32>,
    count: usize,
    bytes: u64,
}

/// The length of an entry not stored: no file can be that long.
const NONE: u64 = u64::MAX;

impl Stored {
    /// Room for `len` entries, none of them stored.
    pub(crate) fn resize(&mut self, len: usize) {
        self.lengths.resize(len, NONE);
        self.crcs.resize(len, 0);
    }

    pub(crate) fn get(&self, si: usize) -> Option<Finished> {
        let length = self.lengths.try_get(si)?;
        (length != NONE).then(|| Finished { length, crc32: self.crcs.get(si) })
    }

    pub(crate) fn contains(&self, si: usize) -> bool {
        self.lengths.try_get(si).is_some_and(|l| l != NONE)
    }

    /// Records entry `si` as stored; returns what it replaced.
    pub(crate) fn insert(&mut self, si: usize, finished: Finished) -> Option<Finished> {
        if si >= self.lengths.len() {
            self.resize(si + 1);
        }
        let old = self.remove(si);
        // A length of `NONE` cannot be stored (nor written): it is taken as the largest that can.
        self.lengths.set(si, finished.length.min(NONE - 1));
        self.crcs.set(si, finished.crc32);
        self.count += 1;
        self.bytes += finished.length;
        old
    }

    pub(crate) fn remove(&mut self, si: usize) -> Option<Finished> {
        let old = self.get(si)?;
        self.lengths.set(si, NONE);
        self.count -= 1;
        self.bytes -= old.length;
        Some(old)
    }

    /// How many entries are stored.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Their bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.lengths.heap_bytes() + self.crcs.heap_bytes()
    }
}

/// One rendition's entries and what is stored of them.
#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) entries: Entries,
    pub(crate) stored: Stored,
    /// The playable time ranges: stored media entries whose initialization section is stored.
    pub(crate) ranges: TimeRanges,
    /// Where the prefix of settled entries (stored or gaps) that growing playlists list stood at the last
    /// look: (media entries, entries, whether the initialization section in force after them is settled).
    /// Entries only ever settle while a bundle is open, except when one is withdrawn, which resets it.
    pub(crate) settled: (usize, usize, bool),
}

impl Ledger {
    pub(crate) fn new(entries: Vec<PlannedSegment>) -> Self {
        let entries = Entries::from_vec(entries);
        let mut stored = Stored::default();
        stored.resize(entries.len());
        Self { entries, stored, ranges: TimeRanges::new(), settled: (0, 0, true) }
    }

    /// How many media entries of the rendition a growing playlist lists: the longest prefix whose entries,
    /// and the initialization sections they need, are settled (stored or recorded as gaps). Goes on from
    /// where the last call stopped, so that a long recording is not walked whole at each growth.
    pub(crate) fn growing_prefix(&mut self, rendition: &RenditionId, gaps: &HashSet<&SegmentId>) -> usize {
        let ledger = self;
        let (mut listed, mut at, mut init_settled) = ledger.settled;
        // The cursor moves past a media entry listed, never past an initialization section alone: one not
        // settled yet is looked at again next time.
        let mut cursor = ledger.settled;
        while at < ledger.entries.len() {
            let settled = ledger.stored.contains(at) || gaps.contains(&ledger.entries.id(rendition, at));
            match ledger.entries.kind(at) {
                SegmentKind::Init => init_settled = settled,
                SegmentKind::Media if init_settled && settled => {
                    listed += 1;
                    cursor = (listed, at + 1, init_settled);
                }
                SegmentKind::Media => break,
            }
            at += 1;
        }
        ledger.settled = cursor;
        listed
    }

    /// The playable time ranges, from the entries.
    pub(crate) fn loaded_time_ranges(&self) -> TimeRanges {
        let mut ranges = TimeRanges::new();
        let mut init_ok = true;
        for si in 0..self.entries.len() {
            match self.entries.kind(si) {
                SegmentKind::Init => init_ok = self.stored.contains(si),
                SegmentKind::Media => {
                    if init_ok && self.stored.contains(si) {
                        ranges
                            .insert(TimeRange::of_segment(self.entries.start(si), self.entries.duration(si)));
                    }
                }
            }
        }
        ranges
    }
}

/// Values per chunk of a [`Column`]: a multiple of [`CHECKPOINT`], so that the entries between two
/// checkpoints are in one chunk.
const CHUNK: usize = 4096;

/// A vector of plain values kept in chunks of [`CHUNK`]: it grows without copying what it holds and
/// without leaving up to half of its room unused, as a vector that doubles does (which, for a recording of
/// 100,000 segments, set the peak of what the bundle held).
#[derive(Debug)]
struct Column<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Column<T> {
    fn default() -> Self {
        Self { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Copy> Column<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, value: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(value);
        }
        self.len += 1;
    }

    /// Grows to `len` values with `value` (never shrinks).
    fn resize(&mut self, len: usize, value: T) {
        while self.len < len {
            self.push(value);
        }
    }

    /// Value `i` (`i < len`).
    fn get(&self, i: usize) -> T {
        self.chunks[i / CHUNK][i % CHUNK]
    }

    fn try_get(&self, i: usize) -> Option<T> {
        (i < self.len).then(|| self.get(i))
    }

    fn set(&mut self, i: usize, value: T) {
        self.chunks[i / CHUNK][i % CHUNK] = value;
    }

    /// Values `from..to`, which lie in one chunk.
    fn slice(&self, from: usize, to: usize) -> &[T] {
        if from == to {
            return &[];
        }
        debug_assert_eq!(from / CHUNK, (to - 1) / CHUNK);
        &self.chunks[from / CHUNK][from % CHUNK..from % CHUNK + (to - from)]
    }

    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * size_of::<Vec<T>>()
            + self.chunks.iter().map(Vec::capacity).sum::<usize>() * size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition() -> RenditionId {
        RenditionId::new("v").unwrap()
    }

    /// A plan with runs broken by a discontinuity, a jump, an initialization section, a byte range and URIs.
    fn mixed() -> Vec<PlannedSegment> {
        let mut plan = vec![PlannedSegment::init(0, 10, "")];
        for ms in 10..20 {
            plan.push(PlannedSegment::media(0, ms, 2.0 + ms as f64 / 100.0, ""));
        }
        for ms in 25..30 {
            plan.push(PlannedSegment::media(0, ms, 1.5, ""));
        }
        plan.push(PlannedSegment::init(1, 30, "").byte_range(ByteRange::new(0, 720)));
        for ms in 30..200 {
            plan.push(PlannedSegment::media(1, ms, 0.1 * (ms % 7) as f64, ""));
        }
        plan.push(PlannedSegment::media(1, 200, 4.0, "").byte_range(ByteRange::new(10, 20)));
        plan.push(PlannedSegment::media(1, 201, 4.0, "").expected_length(99));
        // A numbering that starts again lower in a new discontinuity sequence.
        for ms in 0..5 {
            plan.push(PlannedSegment::media(2, ms, 3.0, ""));
        }
        plan
    }

    #[test]
    fn entries_give_back_every_entry_its_identity_its_position_and_its_start() {
        // Without URIs, with URIs from the first entry on, and from the fourth.
        for uris_from in [None, Some(0), Some(3)] {
            let mut plan = mixed();
            if let Some(from) = uris_from {
                for (i, e) in plan.iter_mut().enumerate().skip(from) {
                    e.uri = format!("https://example.com/{i}.ts");
                }
            }
            let entries = Entries::from_vec(plan.clone());
            assert_eq!(entries.len(), plan.len());
            assert_eq!(entries.iter().collect::<Vec<_>>(), plan);
            let r = rendition();
            let (mut t, mut init) = (0.0, None);
            for (si, e) in plan.iter().enumerate() {
                let id = e.id(&r);
                assert_eq!(entries.id(&r, si), id);
                assert_eq!(entries.position(&id), Some(si), "{id}");
                assert_eq!(entries.kind(si), e.kind);
                assert_eq!(entries.start(si).to_bits(), f64::to_bits(t), "entry {si}");
                if e.kind == SegmentKind::Init {
                    init = Some(si);
                } else {
                    assert_eq!(entries.init_of(si), init, "entry {si}");
                    t += e.duration;
                }
            }
            let r = rendition();
            for absent in [
                SegmentId::media(r.clone(), 0, 20),
                SegmentId::media(r.clone(), 0, 9),
                SegmentId::media(r.clone(), 3, 0),
                SegmentId::init(r.clone(), 0, 11),
                SegmentId::media(r.clone(), 1, 200),
                SegmentId::media(r, 1, 31).with_byte_range(ByteRange::new(0, 1)),
            ] {
                assert_eq!(entries.position(&absent), None, "{absent}");
            }
        }
    }

    #[test]
    fn a_long_recording_costs_a_few_bytes_an_entry() {
        let n = 100_000;
        let mut entries = Entries::default();
        let mut stored = Stored::default();
        for ms in 0..n {
            // Every thousandth segment after a discontinuity, as a recording with outages has them; the
            // first ones with the URIs of the playlist the recording started from.
            let uri = if ms < 3 { format!("https://live.example/{ms}.ts") } else { String::new() };
            entries.push(PlannedSegment::media(ms / 1000, ms, 6.006, uri));
            stored.insert(ms as usize, Finished { length: 1_000_000, crc32: 7 });
        }
        let per_entry = (entries.heap_bytes() + stored.heap_bytes()) / n as usize;
        // Duration 8, stored length 8, checksum 4, and the runs and checkpoints: well within the 64 bytes
        // per finished segment a recording may hold.
        assert!(per_entry <= 24, "{per_entry} bytes an entry");
        assert_eq!(stored.count(), n as usize);
        assert_eq!(stored.bytes(), 1_000_000 * n);
        assert_eq!(entries.position(&SegmentId::media(rendition(), 77, 77_123)), Some(77_123));
        // Starts across chunk boundaries are the sums a walk makes.
        let mut t = 0.0f64;
        for si in 0..n as usize {
            assert_eq!(entries.start(si).to_bits(), t.to_bits(), "entry {si}");
            t += entries.duration(si);
        }
    }

    #[test]
    fn stored_counts_each_entry_once() {
        let mut stored = Stored::default();
        stored.resize(3);
        assert_eq!(stored.insert(1, Finished { length: 5, crc32: 1 }), None);
        assert_eq!(
            stored.insert(1, Finished { length: 7, crc32: 2 }),
            Some(Finished { length: 5, crc32: 1 })
        );
        assert_eq!((stored.count(), stored.bytes()), (1, 7));
        assert!(stored.contains(1) && !stored.contains(0) && !stored.contains(9));
        assert_eq!(stored.remove(1), Some(Finished { length: 7, crc32: 2 }));
        assert_eq!((stored.count(), stored.bytes()), (0, 0));
        assert_eq!(stored.get(1), None);
    }
}
