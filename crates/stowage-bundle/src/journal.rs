//! The journal: an append-only log of finished segments, one checksummed record per line.
//!
//! ```text
//! stowage-journal 1
//! 1c291ca3 {"op":"segment","id":{...},"length":2097152,"crc32":3735928559}
//! ```
//!
//! A recording (a live stream captured as it grows) also journals what it adds to its plan (`plan`) and
//! the holes it finds (`hole`), so that nothing a recorder planned is forgotten by a crash, and the
//! manifest need not be rewritten at each playlist reload.
//!
//! Each record line is the CRC-32 (IEEE) of the JSON text in eight lowercase hexadecimal digits, one space,
//! the JSON text, and a line feed. A record is appended only after the segment it names is durable, so a
//! record never points at missing or partial data. A crash can leave the last line torn (no line feed, or a
//! checksum that does not match): such a tail is ignored on reading and cut off before the next append.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{RenditionId, SegmentId};
use crate::manifest::{Hole, PlannedSegment};

/// The first line of every journal.
pub const JOURNAL_HEADER: &str = "stowage-journal 1\n";

/// Record lines longer than this are treated as corrupt: a real record is a few hundred bytes.
pub const MAX_RECORD_LEN: usize = 4096;

/// One record of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
#[non_exhaustive]
pub enum JournalRecord {
    /// A segment is durable in the bundle with this length and checksum.
    Segment {
        /// The segment.
        id: SegmentId,
        /// Its length in bytes.
        length: u64,
        /// The CRC-32 (IEEE) of its bytes.
        crc32: u32,
    },
    /// The segment's earlier record is withdrawn, whether it stored the segment or recorded a gap: its file
    /// was found damaged and removed by `verify`, or its rendition was started again.
    Drop {
        /// The segment.
        id: SegmentId,
    },
    /// The segment could not be had (tolerant integrity); a later `segment` record of it clears the gap.
    Gap {
        /// The segment.
        id: SegmentId,
        /// Why, for people.
        reason: String,
    },
    /// A recording added entries to the end of a rendition's plan (the media segment of one source
    /// playlist segment, with the initialization section it brings), and the rendition's recorded source
    /// playlist now holds the lines that list them, up to `source_len` bytes (synced before this record
    /// was written).
    Plan {
        /// The rendition.
        rendition: RenditionId,
        /// The entries, in playlist order.
        entries: Vec<PlannedSegment>,
        /// The length of the rendition's recorded source playlist that lists them.
        source_len: u64,
    },
    /// A recording found a hole.
    Hole {
        /// The hole.
        hole: Hole,
    },
}

impl JournalRecord {
    /// The segment the record is about; `None` for records about a recording's plan or holes.
    pub fn segment(&self) -> Option<&SegmentId> {
        match self {
            Self::Segment { id, .. } | Self::Drop { id } | Self::Gap { id, .. } => Some(id),
            Self::Plan { .. } | Self::Hole { .. } => None,
        }
    }

    /// The record as one journal line, line feed included.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing these plain types cannot fail: no maps with non-string keys, no custom serializers.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
        line.extend_from_slice(&json);
        line.push(b'\n');
        line
    }
}

/// What a journal holds, as read by [`parse_journal`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JournalContents {
    /// The valid records, in order.
    pub records: Vec<JournalRecord>,
    /// The length of the journal up to the end of its last complete line; appending continues here.
    pub valid_len: u64,
    /// Whether the journal ended in a torn record (a crash during an append), which was ignored.
    pub torn_tail: bool,
    /// Line numbers (1-based) of complete lines in the middle of the journal whose checksum or JSON was
    /// wrong. Their records are ignored, so those segments count as not finished and are fetched again.
    pub corrupt_lines: Vec<usize>,
}

/// Reads a journal's bytes: the records of what a bundle stores, as the bundle format describes them
/// (`docs/bundle-format.md`). `path` is only used to name the file in an error.
///
/// For tools that look at a bundle from outside, without taking its lock (while another process writes
/// it, for example): [`AssetCache`](crate::AssetCache) answers which segments are stored, checked against
/// their files; this gives the journal's records as written, in order, withdrawn and gap records included.
///
/// Never panics on any input. An empty journal, or one holding only part of its header (a crash during
/// creation), reads as empty.
pub fn parse_journal(path: &Path, bytes: &[u8]) -> Result<JournalContents> {
    let mut records = Vec::new();
    let scan = scan_journal(path, &mut &bytes[..], &mut |record| {
        records.push(record);
        Ok(())
    })?;
    Ok(JournalContents {
        records,
        valid_len: scan.valid_len,
        torn_tail: scan.torn_tail,
        corrupt_lines: scan.corrupt_lines,
    })
}

/// What a journal holds besides its records, as [`scan_journal`] finds it (see [`JournalContents`]).
#[derive(Debug, Default)]
pub(crate) struct JournalScan {
    pub(crate) valid_len: u64,
    pub(crate) torn_tail: bool,
    pub(crate) corrupt_lines: Vec<usize>,
}

/// Reads a journal from `reader` a buffer at a time, handing each valid record to `on_record` in order, and
/// stops at the first error it returns: what [`parse_journal`] reads, without holding the whole journal or
/// its records (tens of megabytes for a long recording). A line too long to be a record is skipped without
/// being held.
pub(crate) fn scan_journal(
    path: &Path,
    reader: &mut dyn Read,
    on_record: &mut dyn FnMut(JournalRecord) -> Result<()>,
) -> Result<JournalScan> {
    let io = |e| Error::from_io(path, e);
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let header = JOURNAL_HEADER.as_bytes();
    let mut start = Vec::with_capacity(header.len());
    (&mut reader).take(header.len() as u64).read_to_end(&mut start).map_err(io)?;
    if start.len() < header.len() && header.starts_with(&start) {
        return Ok(JournalScan { torn_tail: !start.is_empty(), ..JournalScan::default() });
    }
    if start != header {
        return Err(Error::InvalidJournal {
            path: path.to_path_buf(),
            reason: format!("does not start with {:?}", JOURNAL_HEADER.trim_end()),
        });
    }
    let mut scan = JournalScan { valid_len: header.len() as u64, ..JournalScan::default() };
    let mut line_number = 1;
    // A complete line whose record is damaged, waiting to know whether it is the last: a damaged last line
    // is a torn append (the line feed reached the disk, some of the bytes before it did not).
    let mut damaged: Option<(usize, u64)> = None;
    let mut line = Vec::new();
    loop {
        // One line: its bytes while it can be a record, and its length.
        line.clear();
        let (mut len, mut ended) = (0u64, false);
        loop {
            let buf = reader.fill_buf().map_err(io)?;
            if buf.is_empty() {
                break;
            }
            let (take, found) = match memchr_newline(buf) {
                Some(end) => (end + 1, true),
                None => (buf.len(), false),
            };
            let text = &buf[..if found { take - 1 } else { take }];
            if line.len() + text.len() <= MAX_RECORD_LEN {
                line.extend_from_slice(text);
            } else {
                // Too long for a record: not held, and too long for `parse_line` to take.
                line.clear();
                line.resize(MAX_RECORD_LEN + 1, b' ');
            }
            len += take as u64;
            reader.consume(take);
            if found {
                ended = true;
                break;
            }
        }
        if len == 0 {
            break;
        }
        if let Some((number, length)) = damaged.take() {
            scan.corrupt_lines.push(number);
            scan.valid_len += length;
        }
        line_number += 1;
        if !ended {
            // No line feed: the last append was cut short.
            scan.torn_tail = true;
            return Ok(scan);
        }
        match parse_line(&line) {
            Some(record) => {
                on_record(record)?;
                scan.valid_len += len;
            }
            None => damaged = Some((line_number, len)),
        }
    }
    scan.torn_tail |= damaged.is_some();
    Ok(scan)
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn parse_line(line: &[u8]) -> Option<JournalRecord> {
    if line.len() > MAX_RECORD_LEN || line.len() < 10 || line[8] != b' ' {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(&line[..8]).ok()?, 16).ok()?;
    let json = &line[9..];
    if crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::RenditionId;

    fn record(seq: u64) -> JournalRecord {
        let id = SegmentId::media(RenditionId::new("v0").unwrap(), 0, seq);
        JournalRecord::Segment { id, length: 100 + seq, crc32: 7 }
    }

    fn journal(records: &[JournalRecord]) -> Vec<u8> {
        let mut bytes = JOURNAL_HEADER.as_bytes().to_vec();
        for r in records {
            bytes.extend(r.to_line());
        }
        bytes
    }

    #[test]
    fn reads_back_what_was_written() {
        let records: Vec<_> = (0..5).map(record).collect();
        let bytes = journal(&records);
        let contents = parse_journal(Path::new("j"), &bytes).unwrap();
        assert_eq!(contents.records, records);
        assert_eq!(contents.valid_len, bytes.len() as u64);
        assert!(!contents.torn_tail);
    }

    #[test]
    fn every_torn_tail_is_ignored() {
        let records: Vec<_> = (0..3).map(record).collect();
        let full = journal(&records);
        let two = journal(&records[..2]).len();
        for cut in two..full.len() {
            let contents = parse_journal(Path::new("j"), &full[..cut]).unwrap();
            assert_eq!(contents.records, &records[..2], "cut at {cut}");
            assert_eq!(contents.valid_len, two as u64);
            assert_eq!(contents.torn_tail, cut > two);
        }
    }

    #[test]
    fn corrupt_middle_line_is_skipped_and_reported() {
        let records: Vec<_> = (0..3).map(record).collect();
        let mut bytes = journal(&records);
        let second_line_start = journal(&records[..1]).len();
        bytes[second_line_start + 20] ^= 0x01;
        let contents = parse_journal(Path::new("j"), &bytes).unwrap();
        assert_eq!(contents.records, vec![records[0].clone(), records[2].clone()]);
        assert_eq!(contents.corrupt_lines, vec![3]);
        assert_eq!(contents.valid_len, bytes.len() as u64);
    }

    /// A reader that hands out a few bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Scanning a journal through a reader, a few bytes at a time, finds what reading it whole finds, for
    /// cuts of a journal with a damaged line, a line too long to be a record and a blank line.
    #[test]
    fn a_journal_scanned_a_few_bytes_at_a_time_reads_as_it_does_whole() {
        let records: Vec<_> = (0..4).map(record).collect();
        let mut bytes = journal(&records[..2]);
        let damaged = bytes.len() + 15;
        bytes.extend(records[2].to_line());
        bytes[damaged] ^= 0x01;
        bytes.extend(vec![b'x'; MAX_RECORD_LEN + 10]);
        bytes.extend(b"\n\n");
        bytes.extend(records[3].to_line());
        // Every cut near a line's end, and every seventh elsewhere.
        let near_end = |cut: usize| bytes[cut.saturating_sub(3)..(cut + 3).min(bytes.len())].contains(&b'\n');
        for cut in (0..=bytes.len()).filter(|&cut| cut % 7 == 0 || near_end(cut)) {
            let whole = parse_journal(Path::new("j"), &bytes[..cut]);
            let mut scanned = Vec::new();
            let scan = scan_journal(Path::new("j"), &mut Trickle(&bytes[..cut], cut), &mut |r| {
                scanned.push(r);
                Ok(())
            });
            match (whole, scan) {
                (Ok(whole), Ok(scan)) => {
                    assert_eq!(whole.records, scanned, "cut at {cut}");
                    assert_eq!(
                        (whole.valid_len, whole.torn_tail, whole.corrupt_lines),
                        (scan.valid_len, scan.torn_tail, scan.corrupt_lines),
                        "cut at {cut}"
                    );
                }
                (Err(_), Err(_)) => {}
                (whole, scan) => panic!("cut at {cut}: {whole:?} against {scan:?}"),
            }
        }
        let all = parse_journal(Path::new("j"), &bytes).unwrap();
        assert_eq!(all.records, [records[0].clone(), records[1].clone(), records[3].clone()]);
        assert_eq!(all.corrupt_lines, [4, 5, 6]);
    }

    #[test]
    fn wrong_header_is_an_error_and_partial_header_is_empty() {
        assert!(parse_journal(Path::new("j"), b"not a journal\n").is_err());
        let partial = parse_journal(Path::new("j"), &JOURNAL_HEADER.as_bytes()[..5]).unwrap();
        assert!(partial.records.is_empty());
        assert_eq!(partial.valid_len, 0);
    }
}
