//! Export a stowage bundle to one file that any player or editor opens: `.ts`, `.mp4`, `.m4a`, `.mkv`, or
//! the subtitles alone as `.vtt` or `.srt`, every track tagged with its language (ISO 639-2), name and
//! default flag.
//!
//! What it does:
//! - Without ffmpeg, where the containers allow it:
//!   - one MPEG-TS rendition to `.ts`: the stored segments in order, decrypted, timestamps carried across
//!     `EXT-X-DISCONTINUITY` so that they continue rather than restart, continuity counters mended where a
//!     gap or a discontinuity broke them;
//!   - fMP4 renditions (video, audio in several languages) to `.mp4` or `.m4a`: one fragmented MP4 with a
//!     track per rendition, its initialization section and fragments rewritten box by box (`mp4-atom`), the
//!     media data copied untouched;
//!   - one subtitle rendition to `.vtt` or `.srt`: the cues of every segment put on the presentation
//!     timeline through `X-TIMESTAMP-MAP`, cues repeated or split by segmenting joined back into one.
//! - With ffmpeg, when installed (a clear error names the package when it is not): everything else, such as
//!   MPEG-TS renditions into `.mp4` or `.mkv` with subtitle tracks (`mov_text` in MP4, SubRip in
//!   Matroska). ffmpeg only remuxes streams this crate has already made continuous (see the `ffmpeg`
//!   module's documentation).
//! - The parts of an asset that discontinuities separate are laid end to end on one timeline, all
//!   renditions of a part shifted together so that they stay in sync as encoded; parts start at 0.
//! - An asset with missing segments (gaps recorded by a tolerant download, a download not finished, or
//!   the holes of a live recording: segments that left the live playlist before they could be recorded)
//!   is refused unless [`ExportOptions::allow_gaps`] is set. Then each gap stays a jump in the timeline:
//!   what follows it keeps its time (nothing is shifted to fill it, nothing is invented in it); players show
//!   the last picture and play nothing for its length. A hole of a recording, which its playlist marks
//!   with a discontinuity, lasts the length the recording gives it (its segments' count times the target
//!   duration): what follows starts that long after what precedes it ended. [`ExportReport::gaps`] says
//!   where they are.
//! - The output is written under a temporary name (`<output>.part`) and renamed when complete: an export
//!   that fails, is cancelled from the progress callback or is killed never leaves a file that looks
//!   finished. Memory stays bounded whatever the length: segments are streamed.
//!
//! What it does not do: fetch anything, or change the bundle (it reads it through `stowage-bundle`, while
//! a download may still be writing it); decrypt SAMPLE-AES or Common Encryption (FairPlay, Widevine
//! content); read packed audio renditions (`.aac`, `.ac3`, `.mp3`); re-encode anything.
//!
//! Layers: above `stowage-bundle` (which it reads bundles through) and `stowage-playlist` (local
//! playlists); it uses `stowage-fetch` for nothing but its pure `decrypt` module, for bundles that keep
//! their ciphertext. The only file it writes is its output (and, for ffmpeg, named pipes in a private
//! temporary folder).
//!
//! # Quick start
//!
//! ```
//! use std::ops::ControlFlow;
//! use stowage_export::{ExportOptions, Selection, export};
//!
//! # // A bundle to export: the repository's fMP4 test asset (English and French audio and subtitles),
//! # // downloaded from an origin on 127.0.0.1 into a temporary store.
//! # use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};
//! # use stowage_task::config::MediaSelection;
//! # let files = stowage_origin::Files::new();
//! # files.load_dir("/hls", stowage_testkit::assets().join("cmaf")).expect("the test asset");
//! # let origin = stowage_origin::Origin::start(files, stowage_origin::OriginConfig::default()).expect("an origin");
//! # let dir = tempfile::tempdir().expect("a temporary folder");
//! # let runtime = tokio::runtime::Runtime::new().expect("a runtime");
//! # let bundle = runtime.block_on(async {
//! #     let session = DownloadSession::new(SessionConfig::new(dir.path().join("store"))).expect("a session");
//! #     let content = ContentConfiguration::new()
//! #         .media_selection(MediaSelection::audio_all())
//! #         .media_selection(MediaSelection::subtitles_all());
//! #     let task = session.download_task(&origin.url("/hls/master.m3u8"), DownloadConfiguration::new(content))
//! #         .expect("a task");
//! #     task.resume();
//! #     let wait = tokio::time::timeout(std::time::Duration::from_secs(60), task.wait());
//! #     wait.await.expect("the download ends within a minute").expect("the download")
//! # });
//! # let movie = dir.path().join("movie.mp4");
//! # let subtitles = dir.path().join("movie.fr.vtt");
//! // `bundle` is a stored asset's folder (`StorageManager::bundle_path`, or what a finished download
//! // task returns). The video and both audio languages into one MP4, with a progress callback:
//! let options = ExportOptions::new(&movie).audio(Selection::parse("en,fr")).subtitles(Selection::None);
//! let report = export(&bundle, &options, |p| {
//!     eprint!("\r{} of {} bytes", p.bytes_done, p.bytes_total);
//!     ControlFlow::Continue(())
//! })?;
//! for track in &report.tracks {
//!     println!("{:?} {} {:?}", track.kind, track.language_code, track.name);
//! }
//! assert_eq!(report.tracks.len(), 3);
//!
//! // The French subtitles as one WebVTT file, cue times on the presentation timeline.
//! let options = ExportOptions::new(&subtitles).subtitles(Selection::parse("fr"));
//! export(&bundle, &options, |_| ControlFlow::Continue(()))?;
//! assert!(std::fs::read_to_string(&subtitles).expect("the file").starts_with("WEBVTT"));
//! # Ok::<(), stowage_export::Error>(())
//! ```
//!
//! Choosing what goes in needs no bundle:
//!
//! ```
//! use std::path::Path;
//! use stowage_export::{Container, ExportOptions, Selection};
//!
//! let options = ExportOptions::new("talk.m4a").audio(Selection::parse("fr")).allow_gaps(true);
//! assert_eq!(Container::from_path(&options.output), Some(Container::M4a));
//! assert_eq!(Selection::parse("en, fr"), Selection::Only(vec!["en".into(), "fr".into()]));
//! assert_eq!(Selection::parse("all"), Selection::All);
//! assert_eq!(Container::from_path(Path::new("notes.txt")), None);
//! ```

// A public crate: every public type may grow (`#[non_exhaustive]`) unless it is closed by definition, which
// its `#[allow]` says.
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod error;
mod export;
mod ffmpeg;
mod fmp4;
#[cfg(test)]
mod hostile;
mod lang;
mod options;
mod output;
mod source;
mod timeline;
mod ts;

use std::ops::ControlFlow;
use std::path::Path;

pub use error::{Error, Result};
pub use options::{
    Container, ExportOptions, ExportReport, GapReport, Method, Progress, Selection, Track, TrackKind,
};

/// Exports the bundle in folder `bundle` as `options` say, telling `progress` how far it is (often: after
/// every segment, and several times a second while ffmpeg runs). A `progress` that returns
/// [`ControlFlow::Break`] cancels the export: it stops, removes what it wrote and returns
/// [`Error::Cancelled`].
pub fn export(
    bundle: impl AsRef<Path>,
    options: &ExportOptions,
    mut progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<ExportReport> {
    export::run(bundle.as_ref(), options, &mut progress)
}

/// The temporary path an export to `output` writes before renaming it: `<output>.part`.
pub fn temporary_path(output: impl AsRef<Path>) -> std::path::PathBuf {
    output::temp_path(output.as_ref())
}
