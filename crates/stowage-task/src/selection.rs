//! The resolved media selection: which variant and renditions a configuration chose.

use crate::config::{MediaKind, Resolution};

/// What a [`DownloadConfiguration`](crate::config::DownloadConfiguration) chose from a master playlist:
/// one [`ResolvedContent`] per content configuration, the primary first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedSelection {
    /// The primary content first, then the auxiliary ones in configuration order.
    pub contents: Vec<ResolvedContent>,
}

/// The variant and renditions one content configuration chose.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedContent {
    /// The chosen variant.
    pub variant: ChosenVariant,
    /// The chosen renditions, in the master playlist's order.
    pub renditions: Vec<ChosenRendition>,
}

/// How a variant was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChosenBy {
    /// By the qualifier at this index of the content configuration.
    Qualifier(usize),
    /// Automatically (no qualifier, or none satisfied): the highest bandwidth.
    Automatic,
}

/// A chosen variant (`EXT-X-STREAM-INF`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChosenVariant {
    /// Its index among the master playlist's variants.
    pub index: usize,
    /// Its URI as written in the playlist (resolve it against the playlist's URL).
    pub uri: String,
    /// `BANDWIDTH`.
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`.
    pub average_bandwidth: Option<u64>,
    /// `RESOLUTION`.
    pub resolution: Option<Resolution>,
    /// `CODECS`, as written.
    pub codecs: Option<String>,
    /// `FRAME-RATE`.
    pub frame_rate: Option<f64>,
    /// How it was chosen.
    pub chosen_by: ChosenBy,
}

/// A chosen rendition (`EXT-X-MEDIA`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChosenRendition {
    /// Its index among the master playlist's renditions.
    pub index: usize,
    /// Its kind.
    pub kind: MediaKind,
    /// `GROUP-ID`.
    pub group_id: String,
    /// `NAME`.
    pub name: String,
    /// `LANGUAGE`.
    pub language: Option<String>,
    /// `URI` as written: `None` when the rendition is carried in the variant's own stream (closed
    /// captions always, audio sometimes), so there is nothing more to download.
    pub uri: Option<String>,
    /// Which media selection of the content configuration chose it; `None` for the default audio taken
    /// when no audio was selected.
    pub selected_by: Option<usize>,
}
