//! What to export and where, and what an export reports.

use std::path::{Path, PathBuf};

/// The format of the output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Container {
    /// MPEG-2 transport stream (`.ts`).
    Ts,
    /// MP4 (`.mp4`).
    Mp4,
    /// MP4 audio (`.m4a`): the audio tracks only.
    M4a,
    /// Matroska (`.mkv`).
    Mkv,
    /// WebVTT subtitles (`.vtt`): one subtitle rendition.
    WebVtt,
    /// SubRip subtitles (`.srt`): one subtitle rendition.
    Srt,
}

impl Container {
    /// The container an output path's extension names (case ignored); `None` for another extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "ts" | "m2ts" => Self::Ts,
            "mp4" | "m4v" => Self::Mp4,
            "m4a" => Self::M4a,
            "mkv" => Self::Mkv,
            "vtt" => Self::WebVtt,
            "srt" => Self::Srt,
            _ => return None,
        })
    }

    /// The usual extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Ts => "ts",
            Self::Mp4 => "mp4",
            Self::M4a => "m4a",
            Self::Mkv => "mkv",
            Self::WebVtt => "vtt",
            Self::Srt => "srt",
        }
    }

    /// Whether it holds subtitle tracks alongside media.
    pub(crate) fn carries_subtitles(self) -> bool {
        matches!(self, Self::Mp4 | Self::Mkv)
    }

    /// Whether it is a subtitle file.
    pub(crate) fn is_subtitles(self) -> bool {
        matches!(self, Self::WebVtt | Self::Srt)
    }
}

/// Which renditions of a kind to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// Every rendition of the kind the bundle holds (that the output format can carry).
    #[default]
    All,
    /// None.
    None,
    /// Those matching these, in this order: a language (`en` matches `en-US`; `fre` matches `fr`), a
    /// `NAME`, or a rendition identifier of the bundle.
    Only(Vec<String>),
}

impl Selection {
    /// Parses the command-line form: `all`, `none`, or a comma-separated list (`en,fr`).
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "all" => Self::All,
            "none" | "" => Self::None,
            list => {
                Self::Only(list.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            }
        }
    }
}

/// How to export: the output path and what goes into it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The output file. It appears only when the export is complete: the file is written under a temporary
    /// name beside it (`<name>.part`) and renamed at the end.
    pub output: PathBuf,
    /// The output format; by default the one the output's extension names.
    pub container: Option<Container>,
    /// The video rendition (a rendition identifier); by default the primary one (the highest bandwidth
    /// when several are stored).
    pub video: Option<String>,
    /// The audio renditions; by default all.
    pub audio: Selection,
    /// The subtitle renditions; by default all that the output format carries.
    pub subtitles: Selection,
    /// Whether an asset with missing segments or a recording with holes may be exported (each gap or hole
    /// stays a jump in the timeline).
    pub allow_gaps: bool,
    /// The ffmpeg program to run when one is needed; `ffmpeg` (looked up in `PATH`) by default.
    pub ffmpeg: PathBuf,
}

impl ExportOptions {
    /// Exports to `output`, in the format its extension names, with every rendition the format carries.
    pub fn new(output: impl Into<PathBuf>) -> Self {
        Self {
            output: output.into(),
            container: None,
            video: None,
            audio: Selection::All,
            subtitles: Selection::All,
            allow_gaps: false,
            ffmpeg: PathBuf::from("ffmpeg"),
        }
    }

    /// Sets the output format, whatever the extension.
    #[must_use]
    pub fn container(mut self, container: Container) -> Self {
        self.container = Some(container);
        self
    }

    /// Chooses the video rendition by its identifier in the bundle.
    #[must_use]
    pub fn video(mut self, rendition: impl Into<String>) -> Self {
        self.video = Some(rendition.into());
        self
    }

    /// Chooses the audio renditions.
    #[must_use]
    pub fn audio(mut self, selection: Selection) -> Self {
        self.audio = selection;
        self
    }

    /// Chooses the subtitle renditions.
    #[must_use]
    pub fn subtitles(mut self, selection: Selection) -> Self {
        self.subtitles = selection;
        self
    }

    /// Allows exporting an asset with missing segments.
    #[must_use]
    pub fn allow_gaps(mut self, allow: bool) -> Self {
        self.allow_gaps = allow;
        self
    }

    /// Sets the ffmpeg program.
    #[must_use]
    pub fn ffmpeg(mut self, program: impl Into<PathBuf>) -> Self {
        self.ffmpeg = program.into();
        self
    }
}

/// How far an export is: the bytes of stored segments read so far, out of all it will read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Bytes of stored segments read.
    pub bytes_done: u64,
    /// Bytes of stored segments to read.
    pub bytes_total: u64,
    /// Segments read.
    pub segments_done: u64,
    /// Segments to read.
    pub segments_total: u64,
}

/// What kind of track: the kind of the bundle rendition it comes from (video for a variant's media).
pub use stowage_bundle::RenditionKind as TrackKind;

/// One track of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Track {
    /// What it is.
    pub kind: TrackKind,
    /// The bundle rendition it comes from.
    pub rendition: String,
    /// The rendition's `LANGUAGE`.
    pub language: Option<String>,
    /// The language code written in the container (ISO 639-2), `und` when unknown.
    pub language_code: String,
    /// The rendition's `NAME`.
    pub name: Option<String>,
    /// Whether it is marked default.
    pub default: bool,
}

/// How the output was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// Segments concatenated (MPEG-TS), timestamps carried over discontinuities; no ffmpeg.
    TsConcat,
    /// Fragments of fMP4 renditions written as the tracks of one fragmented MP4; no ffmpeg.
    Fmp4,
    /// Subtitle cues put on the timeline and written; no ffmpeg.
    Subtitles,
    /// Remuxed by ffmpeg, fed the renditions with their timestamps already continuous.
    Ffmpeg,
}

/// A gap of the output: a stored rendition's missing segment, or a hole of a recording (segments that left
/// the live playlist unrecorded), and where it is on the output's timeline.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GapReport {
    /// The rendition.
    pub rendition: String,
    /// Where the gap starts, in seconds on the output's timeline (approximate: from declared durations).
    pub start: f64,
    /// Its declared length in seconds.
    pub duration: f64,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExportReport {
    /// The output file.
    pub output: PathBuf,
    /// Its format.
    pub container: Container,
    /// How it was made.
    pub method: Method,
    /// Its tracks, in order.
    pub tracks: Vec<Track>,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its duration in seconds, from the timeline (declared and measured durations).
    pub duration: f64,
    /// Where segments were missing (only with gaps allowed).
    pub gaps: Vec<GapReport>,
    /// Notes for people: renditions left out because the format cannot carry them, and the like.
    pub notes: Vec<String>,
}
