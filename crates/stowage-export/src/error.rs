//! The error of this crate.

use std::path::PathBuf;

use stowage_bundle::{Hole, SegmentId};

/// Everything that can keep an export from finishing. Each variant names what was wrong and where: the
/// bundle file, the segment, the line of a subtitle file, the output path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bundle could not be read (its manifest, journal, a stored file or a local playlist).
    #[error(transparent)]
    Bundle(#[from] stowage_bundle::Error),
    /// The output's extension is not one this crate writes.
    #[error("{}: unknown output format; name the file .ts, .mp4, .m4a, .mkv, .vtt or .srt", path.display())]
    UnknownContainer {
        /// The output path.
        path: PathBuf,
    },
    /// The selection names a rendition the bundle does not hold.
    #[error("no {kind} rendition matches {wanted:?}; the bundle holds: {available}")]
    NoSuchRendition {
        /// `video`, `audio` or `subtitles`.
        kind: &'static str,
        /// What was asked for.
        wanted: String,
        /// What there is, for people.
        available: String,
    },
    /// The output format cannot hold what was selected (several subtitle tracks in one `.vtt`, subtitles in
    /// `.ts`, no track at all).
    #[error("{container}: {reason}")]
    Unsupported {
        /// The output format's extension.
        container: &'static str,
        /// What does not fit, and what to do instead.
        reason: String,
    },
    /// The asset has segments that are not stored (recorded gaps, or a download that is not finished), and
    /// gaps were not allowed.
    #[error(
        "the asset is incomplete: {missing} segment(s) of the exported renditions are not stored, the first \
         {first}; export anyway with --allow-gaps (ExportOptions::allow_gaps), which leaves each gap as a \
         jump in the timeline"
    )]
    Incomplete {
        /// How many selected segments are missing.
        missing: usize,
        /// The first missing one.
        first: SegmentId,
    },
    /// The asset is the recording of a live stream with holes in the exported renditions (segments that left
    /// the live playlist before they could be recorded), and gaps were not allowed.
    #[error(
        "the recording has {holes} hole(s) in the exported renditions, the first in rendition {}: media \
         sequences {} to {} ({} segment(s), {:.3} s) are missing, {}; export anyway with --allow-gaps \
         (ExportOptions::allow_gaps), which leaves each hole as a jump in the timeline",
        first.rendition,
        first.media_sequences.0,
        first.media_sequences.1,
        first.segments,
        first.time.duration().as_secs_f64(),
        first.cause
    )]
    Holes {
        /// How many holes the exported renditions have.
        holes: usize,
        /// The first one, as the recording describes it.
        first: Box<Hole>,
    },
    /// A stored segment is not what its rendition says it is (not MPEG-TS, a broken fMP4 box, a WebVTT
    /// file that does not parse).
    #[error("segment {segment}: {reason}")]
    Media {
        /// The segment.
        segment: SegmentId,
        /// What is wrong, with the byte offset or line where it was found.
        reason: String,
    },
    /// A segment kept encrypted could not be decrypted with the bundle's key.
    #[error("segment {segment}: cannot decrypt: {reason}")]
    Decrypt {
        /// The segment.
        segment: SegmentId,
        /// Why.
        reason: String,
    },
    /// The export needs ffmpeg (for `.mkv`, or to remux MPEG-TS into `.mp4`) and it is not installed.
    #[error(
        "this export needs ffmpeg ({needed}), which is not installed or not at {program:?}: install the \
         `ffmpeg` package (Debian/Ubuntu: apt-get install ffmpeg), or choose an output ffmpeg is not needed \
         for ({alternative})"
    )]
    FfmpegMissing {
        /// The program that was looked for.
        program: PathBuf,
        /// Why ffmpeg is needed.
        needed: String,
        /// What can be exported without it.
        alternative: String,
    },
    /// ffmpeg ran and failed.
    #[error("ffmpeg failed ({status}): {stderr}")]
    Ffmpeg {
        /// How it ended.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// Writing the output failed.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        /// The file being written.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The progress callback asked to stop. Nothing is left at the output path.
    #[error("export cancelled; nothing was written to {}", path.display())]
    Cancelled {
        /// The output path.
        path: PathBuf,
    },
}

impl Error {
    /// Whether the export was cancelled by its progress callback.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled { .. })
    }

    /// Whether the export was refused because segments are missing (gaps of a download, or holes of a
    /// recording).
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Self::Incomplete { .. } | Self::Holes { .. })
    }

    /// Whether ffmpeg is needed and missing.
    pub fn is_ffmpeg_missing(&self) -> bool {
        matches!(self, Self::FfmpegMissing { .. })
    }

    pub(crate) fn media(segment: &SegmentId, reason: impl Into<String>) -> Self {
        Self::Media { segment: segment.clone(), reason: reason.into() }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
