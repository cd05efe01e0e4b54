//! The error type of this crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stowage_fetch::decrypt::DecryptError;

use crate::engine::{JobFailure, JobId};
use crate::events::SegmentRef;

/// Everything that can go wrong in configuring, resolving and scheduling a download.
///
/// Failures of the layers below keep their typed cause: [`Error::Fetch`] holds the fetch layer's error
/// (with its URI and HTTP status), [`Error::Bundle`] the bundle's (with its path), [`Error::Playlist`] the
/// parser's (with its line and column), and a segment that could not be had ([`Error::JobFailed`]) holds
/// the error of its last attempt. [`Error::fetch_error`], [`Error::bundle_error`] and
/// [`Error::playlist_error`] reach them through that chain, as [`std::error::Error::source`] does.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// The session's HTTP client cannot be made from its configuration (an unreadable CA certificate, an
    /// invalid proxy URL).
    #[error("the session's HTTP configuration cannot be used: {source}")]
    ClientConfig {
        /// What the fetch layer found wrong.
        #[source]
        source: stowage_fetch::Error,
    },
    /// Two jobs of a plan have the same id.
    #[error("{job} is planned twice")]
    DuplicateJob {
        /// The repeated id.
        job: JobId,
    },
    /// A job names a rendition the plan does not have.
    #[error("{job} belongs to rendition {rendition}, which the plan does not have")]
    UnknownRendition {
        /// The job.
        job: JobId,
        /// The rendition index it named.
        rendition: usize,
    },
    /// Jobs were added to an engine that failed or was cancelled.
    #[error("the download has failed or was cancelled; nothing can be added to it")]
    EngineClosed,
    /// A job could not be had under the strict integrity policy.
    #[error("{what}: {failure}")]
    JobFailed {
        /// What the job was, for people (the segment's rendition, sequence number and URI, say).
        what: String,
        /// Which job failed, why, and after how many attempts.
        failure: JobFailure,
        /// The segment (or key, or initialization section) of the job, when the driver knows it (boxed, so
        /// that every `Result` of this crate stays small).
        segment: Option<Box<SegmentRef>>,
        /// The error of the job's last attempt, typed ([`Error::Fetch`] for an HTTP failure,
        /// [`Error::Bundle`] for a full disk, ...), when there was one.
        #[source]
        cause: Option<Box<Self>>,
    },
    /// The master playlist offers no variant that can be downloaded.
    #[error("the master playlist offers no downloadable variant")]
    NoVariant,
    /// A media selection matched no rendition of the chosen variant.
    #[error("no {kind} rendition matches {criterion}: {}", describe_group(.kind, .group.as_deref()))]
    NoRenditionMatches {
        /// The kind of rendition asked for (audio, subtitles, closed captions).
        kind: &'static str,
        /// The criterion that matched nothing, as written by the user.
        criterion: String,
        /// The rendition group the variant uses for this kind, if any.
        group: Option<String>,
    },
    /// A variant qualifier or media selection written as text could not be read.
    #[error("cannot read {what} {text:?}: {reason}")]
    InvalidSelectionText {
        /// What was being read ("variant qualifier", "audio selection", ...).
        what: &'static str,
        /// The text, or the part of it that is wrong.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fetching a playlist, a key or a segment failed (after the fetch layer's retries).
    #[error("cannot fetch {uri}: {source}")]
    Fetch {
        /// The URI that was fetched.
        uri: String,
        /// What the fetch layer reported: the HTTP status ([`stowage_fetch::Error::status`]), a timeout,
        /// a TLS or connection failure.
        #[source]
        source: stowage_fetch::Error,
    },
    /// A playlist could not be read.
    #[error("cannot read the playlist {uri}: {message}")]
    Playlist {
        /// Where the playlist was fetched from.
        uri: String,
        /// What is wrong with it (with line and column when the parser gave them).
        message: String,
        /// The parser's error, when the text could not be parsed.
        #[source]
        source: Option<stowage_playlist::Error>,
    },
    /// A segment or initialization section's body is not what its playlist says it is: empty, a web page
    /// (a captive portal's, say), cut short, or another container. Retried like a transient fault first.
    #[error("{uri} is not what its playlist says: {reason}")]
    UnexpectedBody {
        /// The segment's (or initialization section's) URI.
        uri: String,
        /// What was expected and what came instead.
        reason: String,
    },
    /// A segment or key could not be decrypted (a wrong key, a truncated segment).
    #[error("cannot decrypt {uri}: {source}")]
    Decrypt {
        /// The segment's (or initialization section's) URI.
        uri: String,
        /// What was wrong.
        #[source]
        source: DecryptError,
    },
    /// The content is encrypted in a way that cannot be decrypted here (SAMPLE-AES, FairPlay); keeping
    /// the ciphertext ([`KeyPolicy::KeepEncrypted`](crate::config::KeyPolicy::KeepEncrypted)) is the way
    /// to store it.
    #[error("{message}; keep the content encrypted to store it")]
    UnsupportedEncryption {
        /// The key URI, when there is one.
        uri: Option<String>,
        /// What cannot be decrypted.
        message: String,
    },
    /// Reading or writing the bundle failed.
    #[error("bundle {}: {source}", path.display())]
    Bundle {
        /// The bundle directory, or the file concerned.
        path: PathBuf,
        /// What the bundle layer reported ([`stowage_bundle::Error::is_disk_full`], say).
        #[source]
        source: Arc<stowage_bundle::Error>,
    },
    /// A task of this session is already downloading the asset (one task per asset at a time).
    #[error("a task of this session is already downloading {asset} into {}", path.display())]
    AssetBusy {
        /// The asset identifier.
        asset: String,
        /// Its bundle directory.
        path: PathBuf,
    },
    /// The caller's refresh hook panicked while asked for fresh URLs; the task cannot go on without them.
    #[error("the refresh hook panicked when asked about {refused_uri}: {message}")]
    RefreshHookPanicked {
        /// The URI whose refusal the hook was asked about.
        refused_uri: String,
        /// The panic's message, when it carried one.
        message: String,
    },
    /// Media playlists of renditions the bundle holds changed since it was made (other segments, durations,
    /// or files at the same sequence numbers): what is stored of them belongs to the old playlists and
    /// cannot be completed from the new ones without mixing both. Starting them again
    /// ([`SessionConfig::restart_changed_renditions`](crate::SessionConfig::restart_changed_renditions))
    /// drops what was stored of them and fetches them anew.
    #[error(
        "{}; the stored segments belong to the old playlist: start the changed rendition(s) again to download \
         them anew",
        describe_changed(.renditions)
    )]
    PlaylistChanged {
        /// Each changed rendition, and what changed.
        renditions: Vec<ChangedRendition>,
    },
    /// A task the download runs internally (the fetch of a segment, the writer that stores it, the load
    /// of a playlist or key) panicked, in this crate or in a hook of the caller's it called (a key hook,
    /// say). What it was doing is not finished; what is stored stays.
    #[error("{what} stopped unexpectedly: {message}")]
    Crashed {
        /// What the task was doing.
        what: String,
        /// The panic's message, when it carried one.
        message: String,
    },
    /// A recording asked to start at a program date time
    /// ([`LiveStart::ProgramDateTime`](crate::config::LiveStart::ProgramDateTime)) whose live playlist
    /// lists no segment covering it, or gives no program date times at all.
    #[error("{}", describe_live_start(uri, *at, *listed))]
    LiveStartNotListed {
        /// The live media playlist.
        uri: String,
        /// The moment asked for.
        at: std::time::SystemTime,
        /// The program date times the playlist covers: the start of its first segment and the end of its
        /// last; `None` when it gives none.
        listed: Option<(std::time::SystemTime, std::time::SystemTime)>,
    },
    /// The task was cancelled.
    #[error("the download was cancelled")]
    Cancelled,
    /// The session that ran the task was dropped before the task ended; `restore` finds it again.
    #[error("the download session was closed before the task ended")]
    SessionClosed,
}

/// The message of [`Error::LiveStartNotListed`].
fn describe_live_start(
    uri: &str,
    at: std::time::SystemTime,
    listed: Option<(std::time::SystemTime, std::time::SystemTime)>,
) -> String {
    let time = |t| stowage_playlist::DateTime::from_system_time(t).to_string();
    match listed {
        None => format!(
            "the recording was asked to start at {}, but {uri} gives no program dates \
             (EXT-X-PROGRAM-DATE-TIME)",
            time(at)
        ),
        Some((first, end)) => format!(
            "the recording was asked to start at {}, but {uri} lists {} to {} only",
            time(at),
            time(first),
            time(end)
        ),
    }
}

/// A rendition whose media playlist changed since its bundle was made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangedRendition {
    /// The rendition's identifier in the bundle.
    pub rendition: String,
    /// Where its media playlist was read now.
    pub uri: String,
    /// What changed, for people: segment counts, and examples of entries no longer listed, new, of other
    /// durations, or with other files at the same sequence numbers.
    pub changes: Vec<String>,
}

impl ChangedRendition {
    pub(crate) fn new(rendition: String, uri: String, changes: Vec<String>) -> Self {
        Self { rendition, uri, changes }
    }
}

fn describe_changed(renditions: &[ChangedRendition]) -> String {
    renditions
        .iter()
        .map(|r| {
            format!(
                "the media playlist of rendition {} changed since the download began ({}): {}",
                r.rendition,
                r.uri,
                r.changes.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_group(kind: &str, group: Option<&str>) -> String {
    match group {
        Some(group) => format!("the chosen variant's {kind} group {group:?} has none that does"),
        None => format!("the chosen variant names no {kind} group"),
    }
}

impl Error {
    /// The error of the fetch layer behind this one: a fetch that failed, or the last attempt of a
    /// segment that could not be had.
    pub fn fetch_error(&self) -> Option<&stowage_fetch::Error> {
        match self {
            Self::Fetch { source, .. } | Self::ClientConfig { source } => Some(source),
            Self::JobFailed { cause: Some(cause), .. } => cause.fetch_error(),
            _ => None,
        }
    }

    /// The error of the bundle layer behind this one: a bundle call that failed, or the store of a
    /// segment that could not be had (a full disk, say).
    pub fn bundle_error(&self) -> Option<&stowage_bundle::Error> {
        match self {
            Self::Bundle { source, .. } => Some(source),
            Self::JobFailed { cause: Some(cause), .. } => cause.bundle_error(),
            _ => None,
        }
    }

    /// The parser's error behind this one, when a playlist could not be parsed.
    pub fn playlist_error(&self) -> Option<&stowage_playlist::Error> {
        match self {
            Self::Playlist { source, .. } => source.as_ref(),
            Self::JobFailed { cause: Some(cause), .. } => cause.playlist_error(),
            _ => None,
        }
    }

    /// The decryption error behind this one, when a segment could not be decrypted.
    pub fn decrypt_error(&self) -> Option<&DecryptError> {
        match self {
            Self::Decrypt { source, .. } => Some(source),
            Self::JobFailed { cause: Some(cause), .. } => cause.decrypt_error(),
            _ => None,
        }
    }

    /// The URI the error concerns: the one that was fetched, the playlist that could not be read, or
    /// the segment (or key) that could not be had.
    pub fn uri(&self) -> Option<&str> {
        match self {
            Self::Fetch { uri, .. }
            | Self::Playlist { uri, .. }
            | Self::UnexpectedBody { uri, .. }
            | Self::Decrypt { uri, .. }
            | Self::LiveStartNotListed { uri, .. } => Some(uri),
            Self::ClientConfig { source } => source.uri(),
            Self::UnsupportedEncryption { uri, .. } => uri.as_deref(),
            Self::RefreshHookPanicked { refused_uri, .. } => Some(refused_uri),
            Self::JobFailed { segment, cause, .. } => {
                segment.as_ref().map(|s| s.uri.as_str()).or_else(|| cause.as_ref().and_then(|c| c.uri()))
            }
            _ => None,
        }
    }

    /// The HTTP status a server answered with, when that is what went wrong.
    pub fn status(&self) -> Option<u16> {
        self.fetch_error().and_then(stowage_fetch::Error::status)
    }

    /// The file or directory the error concerns: the bundle's (or one of its files) for a bundle error.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Bundle { path, source } => source.path().or(Some(path)),
            Self::AssetBusy { path, .. } => Some(path),
            Self::JobFailed { cause: Some(cause), .. } => cause.path(),
            _ => None,
        }
    }
}
