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
    let header = JOURNAL_HEADER.as_bytes();
    if bytes.len() < header.len() && header.starts_with(bytes) {
        return Ok(JournalContents { torn_tail: !bytes.is_empty(), ..JournalContents::default() });
    }
    let Some(mut rest) = bytes.strip_prefix(header) else {
        return Err(Error::InvalidJournal {
            path: path.to_path_buf(),
            reason: format!("does not start with {:?}", JOURNAL_HEADER.trim_end()),
        });
    };
    let mut contents = JournalContents { valid_len: header.len() as u64, ..JournalContents::default() };
    let mut line_number = 1;
    while !rest.is_empty() {
        line_number += 1;
        let Some(end) = memchr_newline(rest) else {
            // No line feed: the last append was cut short.
            contents.torn_tail = true;
            break;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        match parse_line(line) {
            Some(record) => contents.records.push(record),
            None if rest.is_empty() => {
                // A complete but damaged last line is also a torn append (the line feed reached the disk,
                // some of the bytes before it did not).
                contents.torn_tail = true;
                break;
            }
            None => contents.corrupt_lines.push(line_number),
        }
        contents.valid_len += end as u64 + 1;
    }
    Ok(contents)
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

    #[test]
    fn wrong_header_is_an_error_and_partial_header_is_empty() {
        assert!(parse_journal(Path::new("j"), b"not a journal\n").is_err());
        let partial = parse_journal(Path::new("j"), &JOURNAL_HEADER.as_bytes()[..5]).unwrap();
        assert!(partial.records.is_empty());
        assert_eq!(partial.valid_len, 0);
    }
}
