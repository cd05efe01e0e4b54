//! The error type of this crate.

use crate::engine::{JobFailure, JobId};

/// Everything that can go wrong in configuring, resolving and scheduling a download.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
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
    /// Fetching a playlist or a key failed (after the fetch layer's retries).
    #[error("cannot fetch {uri}: {message}")]
    Fetch {
        /// The URI that was fetched.
        uri: String,
        /// The HTTP status, when the server answered with one.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// A playlist could not be read.
    #[error("cannot read the playlist {uri}: {message}")]
    Playlist {
        /// Where the playlist was fetched from.
        uri: String,
        /// What is wrong with it (with line and column when the parser gave them).
        message: String,
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
    #[error("bundle {}: {message}", path.display())]
    Bundle {
        /// The bundle directory (or the file concerned).
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
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
    /// The task was cancelled.
    #[error("the download was cancelled")]
    Cancelled,
    /// The session that ran the task was dropped before the task ended; `restore` finds it again.
    #[error("the download session was closed before the task ended")]
    SessionClosed,
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
