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
//! | [`export`] | `stowage-export` | a bundle to one `.ts`, `.mp4`, `.m4a`, `.mkv`, `.vtt` or `.srt` file |
//!
//! The paved path is re-exported at the top: a [`DownloadSession`] makes [`DownloadTask`]s from a playlist
//! URL and a [`DownloadConfiguration`]; each task reports [`TaskEvent`]s and leaves a bundle that the
//! [`StorageManager`] lists and purges and the [`AssetCache`] answers questions about.
//!
//! **What it does not do.** It adds no behaviour of its own beyond composing the layers: parsing rules,
//! network policy and storage live in the crates named above.
//!
//! ```no_run
//! use stowage::{ContentConfiguration, DownloadConfiguration, DownloadSession, MediaSelection, SessionConfig};
//!
//! # async fn run() -> Result<(), stowage::Error> {
//! let session = DownloadSession::new(SessionConfig::new("downloads"))?;
//! let config = DownloadConfiguration::new(
//!     ContentConfiguration::new()
//!         .variant_qualifier("max-resolution=1920x1080".parse()?)
//!         .media_selection(MediaSelection::audio_language("fr"))
//!         .media_selection(MediaSelection::subtitles_all()),
//! );
//! let task = session.download_task("https://example.com/master.m3u8", config)?;
//! let mut events = task.events();
//! task.resume();
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//!     if task.state().is_terminal() {
//!         break;
//!     }
//! }
//! let bundle = task.wait().await?; // play it: ffplay BUNDLE/master.m3u8
//! # let _ = bundle;
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
//! # The command-line tool
//!
//! `stowage inspect FILE|-|URL [--base URL] [--lenient] [--json] [--shallow] [--segments]` shows what a
//! playlist holds. For a master playlist it loads the media playlists it refers to (files beside it, or
//! over http(s), all at once) to give each variant's duration and estimated size, like `yt-dlp -F`;
//! `--shallow` skips that.
//!
//! `stowage download URL` downloads into the store with live progress bars (per rendition and in total:
//! bytes, speed, ETA, loaded duration) or, with `--json`, one JSON line per event; `stowage resume`
//! continues after Ctrl-C, a crash or a restart; `demo` downloads the built-in sample from an in-process
//! origin; `list`, `info`, `verify`, `remove`, `purge` and `policy` manage the store. `stowage export
//! ASSET OUT.{ts,mp4,m4a,mkv,vtt,srt} [--audio en,fr|all|none] [--subs ...] [--allow-gaps]` writes a stored
//! asset as one file with a progress bar (see [`export`]). `stowage help COMMAND` tells the options.
//!
//! Exit codes: 0 success; 1 failure (the message names the file, URL, segment, line and column, and what to
//! try); 2 a wrong command line; 130 a download interrupted by Ctrl-C and suspended, or an export
//! interrupted (nothing is left at its output path).
//!
//! ## `inspect --json`
//!
//! One JSON object on one line. Absent attributes are `null`; durations and times are seconds (numbers).
//!
//! A **media playlist** gives `kind: "media"`, `version`, `target_duration`, `media_sequence`,
//! `discontinuity_sequence`, `playlist_type` (`"VOD"`, `"EVENT"` or `null`), `ended`, `i_frames_only`,
//! `independent_segments`, `total_duration`, `warnings`, and `segments`, each with:
//! `media_sequence`, `discontinuity_sequence`, `discontinuity` (an EXT-X-DISCONTINUITY precedes it), `gap`,
//! `uri` (resolved against `--base` or the URL it was fetched from; as written otherwise),
//! `uri_as_written`, `duration`, `title`, `start` (its start on the playlist's timeline),
//! `program_date_time` (RFC 3339, extrapolated from the last EXT-X-PROGRAM-DATE-TIME), `bitrate`,
//! `byte_range` (`{length, offset}` with the offset resolved, or `null`), `map` (`{uri, byte_range}` of its
//! initialization section, or `null`), and `keys`: every key in force, one per KEYFORMAT, each
//! `{method, keyformat, uri, iv, iv_is_explicit}` where `iv` is `0x` and 32 hex digits, from the IV
//! attribute or else the media sequence number.
//!
//! A **master playlist** gives `kind: "master"`, `version`, `independent_segments`, `warnings`,
//! `session_keys` (`{method, uri, keyformat}`), `session_data` (`{data_id, value, uri, language}`),
//! `content_steering` (`{server_uri, pathway_id}` or `null`), `i_frame_variants` (`{uri, bandwidth,
//! average_bandwidth, codecs, resolution, video_range, video}`), and:
//! - `variants`, each with `uri`, `uri_as_written`, the EXT-X-STREAM-INF attributes in snake case
//!   (`bandwidth`, `average_bandwidth`, `score`, `codecs`, `supplemental_codecs`, `resolution` as
//!   `{width, height}`, `frame_rate`, `hdcp_level`, `allowed_cpc`, `video_range`, `req_video_layout`,
//!   `stable_variant_id`, `audio`, `video`, `subtitles`, `closed_captions`, `pathway_id`, `program_id`),
//!   `media` (`{duration, segments}` from its media playlist, or `null`), `media_error` (why it could not be
//!   loaded, or `null`) and `estimated_bytes` (the sum of its byte ranges when they cover every segment,
//!   else AVERAGE-BANDWIDTH, or BANDWIDTH, × duration);
//! - `renditions`, each with `type` (`"AUDIO"`, `"VIDEO"`, `"SUBTITLES"`, `"CLOSED-CAPTIONS"`), `uri`,
//!   `uri_as_written`, the EXT-X-MEDIA attributes in snake case (`group_id`, `language`,
//!   `assoc_language`, `name`, `stable_rendition_id`, `default`, `autoselect`, `forced`, `instream_id`,
//!   `bit_depth`, `sample_rate`, `characteristics`, `channels`), `media` and `media_error`.
//!
//! `warnings` (with `--lenient`) lists what was tolerated: `{line, column, message}`.

use std::fmt;
use std::path::PathBuf;

pub use stowage_bundle as bundle;
pub use stowage_export as export;
pub use stowage_fetch as fetch;
pub use stowage_playlist as playlist;
pub use stowage_task as task;

pub use stowage_bundle::{AssetCache, StorageManager};
pub use stowage_task::{
    CancelMode, ContentConfiguration, DownloadConfiguration, DownloadSession, DownloadTask, IntegrityPolicy,
    MediaSelection, SessionConfig, TaskEvent, TaskState, VariantQualifier,
};

/// Everything that can go wrong in stowage, opaque: ask it with the `is_*` predicates, read its message
/// with `Display`, and reach the layer's own error through [`std::error::Error::source`].
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

    /// A playlist could not be parsed, resolved or rewritten.
    pub fn is_playlist(&self) -> bool {
        matches!(self.inner, Inner::Playlist(_))
    }

    /// A fetch failed: the network, TLS, HTTP status, timeouts, keys or decryption.
    pub fn is_fetch(&self) -> bool {
        matches!(self.inner, Inner::Fetch(_))
    }

    /// The offline bundle or the store failed: disk full, permissions, a locked or damaged bundle.
    pub fn is_bundle(&self) -> bool {
        matches!(self.inner, Inner::Bundle(_))
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
