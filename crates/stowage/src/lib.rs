//! stowage: download HLS assets for offline playback.
//!
//! **What it is.** The facade of the stowage workspace: it re-exports the paved path of the layered crates
//! under one name, with one opaque [`Error`], and carries the `stowage` command-line tool (feature `cli`,
//! on by default). Each layer is also usable alone:
//!
//! | module | crate | what it is |
//! |---|---|---|
//! | [`playlist`] | `stowage-playlist` | zero-copy parser and writer for master and media playlists; no IO |
//! | [`fetch`] | `stowage-fetch` | HTTP(S) client with retries, byte ranges, rate limits; AES-128 decryption |
//! | [`bundle`] | `stowage-bundle` | the offline bundle on disk, the storage manager and the asset cache |
//! | [`task`] | `stowage-task` | download sessions and tasks: configuration, selection, the engine, events |
//! | `serve` | `stowage-serve` | a read-only HTTP server of a store with a page that plays it (feature `serve`) |
//! | [`export`] | `stowage-export` | a bundle to one `.ts`, `.mp4`, `.m4a`, `.mkv`, `.vtt` or `.srt` file |
//!
//! The paved path is re-exported at the top: a [`DownloadSession`] makes [`DownloadTask`]s from a playlist
//! URL and a [`DownloadConfiguration`]; each task reports [`TaskEvent`]s and leaves a bundle that the
//! [`StorageManager`] lists and purges and the [`AssetCache`] answers questions about.
//!
//! **What it does not do.** It adds no behaviour of its own beyond composing the layers: parsing rules,
//! network policy and storage live in the crates named above.
//!
//! A download, its events read until their stream ends (after the task's last event):
//!
//! ```
//! use stowage::{ContentConfiguration, DownloadConfiguration, DownloadSession, MediaSelection, SessionConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), stowage::Error> {
//! # // An origin on 127.0.0.1 serving the repository's test asset, and a store in a temporary folder.
//! # let files = stowage_origin::Files::new();
//! # files.load_dir("/hls", stowage_testkit::assets().join("clear")).expect("the test asset");
//! # let origin = stowage_origin::Origin::start(files, stowage_origin::OriginConfig::default()).expect("an origin");
//! # let url = origin.url("/hls/master.m3u8");
//! # let store = tempfile::tempdir().map_err(|e| stowage::Error::io("a temporary folder", e))?;
//! # let downloads = store.path();
//! # // An example that hangs fails instead of blocking the tests.
//! # tokio::time::timeout(std::time::Duration::from_secs(60), async {
//! let session = DownloadSession::new(SessionConfig::new(downloads))?;
//! let config = DownloadConfiguration::new(
//!     ContentConfiguration::new()
//!         .variant_qualifier("max-resolution=1920x1080".parse()?)
//!         .media_selection(MediaSelection::audio_language("fr"))
//!         .media_selection(MediaSelection::subtitles_all()),
//! );
//! let task = session.download_task(&url, config)?;
//! let mut events = task.events();
//! task.resume();
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! let bundle = task.wait().await?; // play it: ffplay BUNDLE/master.m3u8
//! assert!(bundle.join("master.m3u8").is_file());
//! # Ok::<(), stowage::Error>(())
//! # }).await.expect("the download ends within a minute")?;
//! # Ok(()) }
//! ```
//!
//! The parser alone, with no IO:
//!
//! ```
//! use stowage::playlist::{Playlist, PlaylistKind};
//!
//! let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow/index.m3u8\n";
//! let playlist = Playlist::parse(text).map_err(stowage::Error::from)?;
//! assert_eq!(playlist.kind(), PlaylistKind::Master);
//!
//! // Errors name the place: line and column for playlists.
//! let err = stowage::Error::from(Playlist::parse("#EXTM3U\n#EXT-X-TARGETDURATION:x\n").unwrap_err());
//! assert!(err.is_playlist());
//! assert_eq!(err.line(), Some(2));
//! # Ok::<(), stowage::Error>(())
//! ```
//!
//! An error's `Display` text is for people and is not a stable interface: its wording may change in any
//! release. Decide with [`Error`]'s predicates and accessors (`is_*`, `line()`, `uri()`, `status()`,
//! `path()`), which are.
//!
//! # The command-line tool
//!
//! `stowage inspect FILE|-|URL [--base URL] [--lenient] [--json] [--shallow] [--segments] [-H HEADER]
//! [--cookie NAME=VALUE] [--ca-file PEM]` shows what a playlist holds. For a master playlist it loads the
//! media playlists it refers to (files beside it, or over http(s), all at once) to give each variant's
//! duration and estimated size, like `yt-dlp -F`; `--shallow` skips that. Over http(s) it sends the
//! headers and cookies given, and trusts the certificate authorities of `--ca-file`, as `download` does.
//!
//! `stowage download URL` downloads into the store with live progress bars (per rendition and in total:
//! bytes, speed, ETA, loaded duration) or, with `--json`, one JSON line per event; `stowage resume`
//! continues after Ctrl-C, a crash or a restart; `demo` downloads the built-in sample from an in-process
//! origin; `list`, `info`, `verify`, `remove`, `purge` and `policy` manage the store; `serve` serves it
//! read-only on 127.0.0.1 with a page that plays each asset (crate `stowage-serve`). `stowage export
//! ASSET OUT.{ts,mp4,m4a,mkv,vtt,srt} [--audio en,fr|all|none] [--subs ...] [--allow-gaps]` writes a stored
//! asset as one file with a progress bar (see [`export`]). `stowage help COMMAND` tells the options.
//!
//! Exit codes: 0 success; 1 failure (the message names the file, URL, segment, line and column, and what to
//! try); 2 a wrong command line; 130 a download interrupted by Ctrl-C and suspended, or an export
//! interrupted (nothing is left at its output path).
//!
//! ## `inspect --json`
//!
//! One JSON object on one line: the whole model the parser keeps, every tag and every attribute.
//!
//! - Absent attributes are `null`; durations and times are seconds (numbers); dates are RFC 3339 text;
//!   hexadecimal values are text as written (`0x...`); a byte range is `{length, offset}` and a resolution
//!   `{width, height}`.
//! - A tag with an attribute list is an object with a member per attribute of the tag (its name in snake
//!   case) and `other_attributes`: every other attribute, as written (`{"X-NAME": "text"}`), so that client
//!   attributes and the attributes of newer versions of HLS are kept.
//! - A URI is resolved against `--base`, or the URL the playlist was fetched from (as written when there
//!   is neither), and given beside the URI as written (`uri_as_written`).
//! - `warnings` (with `--lenient`) lists what was tolerated, as `{line, column, message}`.
//!
//! The objects, by where they are (`[]` is each element of an array); every member is always present:
//!
//! | object | members |
//! |---|---|
//! | `media` | `kind` (`"media"`), `version`, `target_duration`, `media_sequence`, `discontinuity_sequence`, `playlist_type` (`"VOD"`, `"EVENT"` or `null`), `ended` (EXT-X-ENDLIST), `i_frames_only`, `independent_segments`, `total_duration`, `start` (EXT-X-START or `null`), `server_control` (EXT-X-SERVER-CONTROL or `null`), `part_inf` (EXT-X-PART-INF or `null`), `skip` (EXT-X-SKIP or `null`), `defines` (EXT-X-DEFINE), `segments`, `pending_parts` (the EXT-X-PART tags after the last segment: the parts of the segment being made), `date_ranges`, `preload_hints`, `rendition_reports`, `unknown_tags`, `comments`, `warnings` |
//! | `media.start`, `master.start` | `time_offset`, `precise`, `other_attributes` |
//! | `media.server_control` | `can_skip_until`, `can_skip_dateranges`, `hold_back`, `part_hold_back`, `can_block_reload`, `other_attributes` |
//! | `media.part_inf` | `part_target`, `other_attributes` |
//! | `media.skip` | `skipped_segments`, `recently_removed_dateranges`, `other_attributes` |
//! | `media.defines[]`, `master.defines[]` | `name`, `value`, `import`, `query_param`, `other_attributes` |
//! | `media.segments[]` | `media_sequence`, `discontinuity_sequence`, `discontinuity` (an EXT-X-DISCONTINUITY precedes it), `gap` (EXT-X-GAP), `uri`, `uri_as_written`, `duration`, `title`, `start` (its start on the playlist's timeline), `program_date_time` (extrapolated from the last EXT-X-PROGRAM-DATE-TIME), `bitrate` (EXT-X-BITRATE in force), `byte_range` (the offset resolved, or `null`), `map` (its EXT-X-MAP, or `null`), `keys` (every EXT-X-KEY in force, one per KEYFORMAT), `parts` (its EXT-X-PART tags) |
//! | `media.segments[].map` | `uri`, `uri_as_written`, `byte_range` (the offset resolved), `other_attributes` |
//! | `media.segments[].keys[]` | `method`, `uri`, `uri_as_written`, `iv` (`0x` and 32 hex digits: the IV attribute, or else the media sequence number), `iv_is_explicit`, `keyformat` (`"identity"` when absent), `keyformat_versions`, `other_attributes` |
//! | `media.segments[].parts[]`, `media.pending_parts[]` | `uri`, `uri_as_written`, `duration`, `independent`, `byte_range`, `gap`, `other_attributes` |
//! | `media.segments[].byte_range`, `media.segments[].map.byte_range`, `media.segments[].parts[].byte_range`, `media.pending_parts[].byte_range` | `length`, `offset` |
//! | `media.date_ranges[]` | `id`, `class`, `start_date`, `cue`, `end_date`, `duration`, `planned_duration`, `scte35_cmd`, `scte35_out`, `scte35_in`, `end_on_next`, `client_attributes` (the `X-` attributes, as written), `other_attributes` (the others it does not know), `segment` (the index of the segment it precedes, or `null`) |
//! | `media.preload_hints[]` | `type`, `uri`, `uri_as_written`, `byte_range_start`, `byte_range_length`, `other_attributes` |
//! | `media.rendition_reports[]` | `uri`, `uri_as_written`, `last_msn`, `last_part`, `other_attributes` |
//! | `media.unknown_tags[]` | `tag` (the whole line), `segment` (the index of the segment it precedes, or `null`) |
//! | `media.comments[]` | `text` (the whole line), `segment` (the index of the segment it precedes, or `null`) |
//! | `media.warnings[]`, `master.warnings[]` | `line`, `column`, `message` |
//! | `master` | `kind` (`"master"`), `version`, `independent_segments`, `start`, `defines`, `variants`, `renditions`, `i_frame_variants`, `session_keys`, `session_data`, `content_steering` (or `null`), `unknown_tags`, `comments`, `warnings` |
//! | `master.variants[]` | `uri`, `uri_as_written`, the EXT-X-STREAM-INF attributes: `bandwidth`, `average_bandwidth`, `score`, `codecs`, `supplemental_codecs`, `resolution`, `frame_rate`, `hdcp_level`, `allowed_cpc`, `video_range`, `req_video_layout`, `stable_variant_id`, `audio`, `video`, `subtitles`, `closed_captions`, `pathway_id`, `program_id`, `other_attributes`; and `media` (from its media playlist, or `null`), `media_error` (why it could not be loaded, or `null`), `estimated_bytes` (the sum of its byte ranges when they cover every segment, else AVERAGE-BANDWIDTH, or BANDWIDTH, × duration) |
//! | `master.variants[].media`, `master.renditions[].media` | `duration`, `segments` (how many) |
//! | `master.variants[].resolution`, `master.i_frame_variants[].resolution` | `width`, `height` |
//! | `master.renditions[]` | `type` (`"AUDIO"`, `"VIDEO"`, `"SUBTITLES"`, `"CLOSED-CAPTIONS"`), `uri`, `uri_as_written`, `group_id`, `language`, `assoc_language`, `name`, `stable_rendition_id`, `default`, `autoselect`, `forced` (each `false` when absent), `instream_id`, `bit_depth`, `sample_rate`, `characteristics`, `channels`, `other_attributes`, `media`, `media_error` |
//! | `master.i_frame_variants[]` | `uri`, `uri_as_written`, `bandwidth`, `average_bandwidth`, `score`, `codecs`, `supplemental_codecs`, `resolution`, `hdcp_level`, `allowed_cpc`, `video_range`, `req_video_layout`, `stable_variant_id`, `video`, `pathway_id`, `program_id`, `other_attributes` |
//! | `master.session_keys[]` | `method`, `uri`, `uri_as_written`, `iv`, `keyformat` (`"identity"` when absent), `keyformat_versions`, `other_attributes` |
//! | `master.session_data[]` | `data_id`, `value`, `uri`, `uri_as_written`, `format`, `language`, `other_attributes` |
//! | `master.content_steering` | `server_uri`, `server_uri_as_written`, `pathway_id`, `other_attributes` |
//! | `master.unknown_tags[]` | `tag` (the whole line) |
//! | `master.comments[]` | `text` (the whole line) |
//!
//! `other_attributes` and `client_attributes` are maps from attribute names to their text. A member that
//! holds an object or an array of objects is described by its own row.

// A public crate: every public type may grow (`#[non_exhaustive]`) unless it is closed by definition, which
// its `#[allow]` says.
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

use std::fmt;
use std::path::{Path, PathBuf};

pub use stowage_bundle as bundle;
pub use stowage_export as export;
pub use stowage_fetch as fetch;
pub use stowage_playlist as playlist;
/// The read-only server of a store and its page (feature `serve`, on with `cli`).
#[cfg(feature = "serve")]
pub use stowage_serve as serve;
pub use stowage_task as task;

pub use stowage_bundle::{AssetCache, StorageManager};

// The README's examples run as doctests too, so that none of them can rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
pub use stowage_task::{
    CancelMode, ContentConfiguration, DownloadConfiguration, DownloadSession, DownloadTask, IntegrityPolicy,
    MediaSelection, SessionConfig, TaskEvent, TaskState, VariantQualifier,
};

/// Everything that can go wrong in stowage, opaque: ask it with the `is_*` predicates and the accessors,
/// read its message with `Display`, and reach the layer's own error through
/// [`std::error::Error::source`].
///
/// The predicates look through a download's error to its cause: a task that failed because a segment
/// answered 404 is [`is_task`](Self::is_task) and [`is_fetch`](Self::is_fetch), with the segment's
/// [`uri`](Self::uri) and the [`status`](Self::status); one that failed on a full disk is
/// [`is_task`](Self::is_task) and [`is_bundle`](Self::is_bundle), with the file's [`path`](Self::path).
///
/// The `Display` wording is for people and is not stable: it may change in any release. Programs decide
/// with the predicates and accessors, never by matching the message.
pub struct Error {
    inner: Inner,
}

enum Inner {
    Playlist(playlist::Error),
    Fetch(fetch::Error),
    Bundle(bundle::Error),
    Task(task::Error),
    Export(export::Error),
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    /// An IO error on a local file, naming the file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self { inner: Inner::Io { path: path.into(), source } }
    }

    /// A playlist could not be parsed, resolved or rewritten (also when that is why a download failed).
    pub fn is_playlist(&self) -> bool {
        match &self.inner {
            Inner::Playlist(_) => true,
            Inner::Task(e) => matches!(e, task::Error::Playlist { .. }) || e.playlist_error().is_some(),
            _ => false,
        }
    }

    /// A fetch failed: the network, TLS, HTTP status, timeouts, keys or decryption (also when that is why
    /// a download failed).
    pub fn is_fetch(&self) -> bool {
        self.fetch_error().is_some() || matches!(&self.inner, Inner::Task(e) if e.decrypt_error().is_some())
    }

    /// The offline bundle or the store failed: disk full, permissions, a locked or damaged bundle (also
    /// when that is why a download failed).
    pub fn is_bundle(&self) -> bool {
        self.bundle_error().is_some()
    }

    /// A download task failed: a segment that could not be had (named), an unsupported encryption, a
    /// configuration that matches nothing in the playlist, a cancelled task.
    pub fn is_task(&self) -> bool {
        matches!(self.inner, Inner::Task(_))
    }

    /// An export failed: a selection that matches nothing, an incomplete asset, a format that cannot hold
    /// what was selected, ffmpeg missing or failing, a cancelled export.
    pub fn is_export(&self) -> bool {
        matches!(self.inner, Inner::Export(_))
    }

    /// A local file could not be read or written.
    pub fn is_io(&self) -> bool {
        matches!(self.inner, Inner::Io { .. })
    }

    /// The playlist line the error is on, from 1, when it concerns one line.
    pub fn line(&self) -> Option<usize> {
        match &self.inner {
            Inner::Playlist(e) => e.line(),
            Inner::Task(e) => e.playlist_error().and_then(playlist::Error::line),
            _ => None,
        }
    }

    /// The URI the error concerns: the one whose fetch failed, the playlist that could not be read, the
    /// segment (or key) a download could not have.
    pub fn uri(&self) -> Option<&str> {
        match &self.inner {
            Inner::Fetch(e) => e.uri(),
            Inner::Task(e) => e.uri(),
            _ => None,
        }
    }

    /// The HTTP status a server answered with, when that is what went wrong.
    pub fn status(&self) -> Option<u16> {
        self.fetch_error().and_then(fetch::Error::status)
    }

    /// The file or directory the error concerns: a bundle's, one of its files, or a local file.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Bundle(e) => e.path(),
            Inner::Task(e) => e.path(),
            Inner::Io { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The fetch layer's error, when a fetch failed (or made a download fail).
    pub fn fetch_error(&self) -> Option<&fetch::Error> {
        match &self.inner {
            Inner::Fetch(e) => Some(e),
            Inner::Task(e) => e.fetch_error(),
            _ => None,
        }
    }

    /// The bundle layer's error, when the bundle or the store failed (or made a download fail).
    pub fn bundle_error(&self) -> Option<&bundle::Error> {
        match &self.inner {
            Inner::Bundle(e) => Some(e),
            Inner::Task(e) => e.bundle_error(),
            _ => None,
        }
    }
}

impl From<playlist::Error> for Error {
    fn from(e: playlist::Error) -> Self {
        Self { inner: Inner::Playlist(e) }
    }
}

impl From<fetch::Error> for Error {
    fn from(e: fetch::Error) -> Self {
        Self { inner: Inner::Fetch(e) }
    }
}

impl From<bundle::Error> for Error {
    fn from(e: bundle::Error) -> Self {
        Self { inner: Inner::Bundle(e) }
    }
}

impl From<task::Error> for Error {
    fn from(e: task::Error) -> Self {
        Self { inner: Inner::Task(e) }
    }
}

impl From<export::Error> for Error {
    fn from(e: export::Error) -> Self {
        Self { inner: Inner::Export(e) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Playlist(e) => write!(f, "playlist: {e}"),
            Inner::Fetch(e) => write!(f, "{e}"),
            Inner::Bundle(e) => write!(f, "{e}"),
            Inner::Task(e) => write!(f, "{e}"),
            Inner::Export(e) => write!(f, "{e}"),
            Inner::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Playlist(e) => fmt::Debug::fmt(e, f),
            Inner::Fetch(e) => fmt::Debug::fmt(e, f),
            Inner::Bundle(e) => fmt::Debug::fmt(e, f),
            Inner::Task(e) => fmt::Debug::fmt(e, f),
            Inner::Export(e) => fmt::Debug::fmt(e, f),
            Inner::Io { path, source } => {
                f.debug_struct("Io").field("path", path).field("source", source).finish()
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner {
            Inner::Playlist(e) => Some(e),
            Inner::Fetch(e) => Some(e),
            Inner::Bundle(e) => Some(e),
            Inner::Task(e) => Some(e),
            Inner::Export(e) => Some(e),
            Inner::Io { source, .. } => Some(source),
        }
    }
}
