//! What to download: the configuration of a download task.
//!
//! This is Apple's `AVAssetDownloadConfiguration` done in the open. A [`DownloadConfiguration`] holds a
//! primary [`ContentConfiguration`] and any auxiliary ones; each says which variant to take (ordered
//! [`VariantQualifier`]s, tried in order, then automatic: the highest bandwidth) and which media
//! renditions to add ([`MediaSelection`]s). Around them: a title, artwork, the [`StoragePolicy`], the
//! [`KeyPolicy`] and the [`IntegrityPolicy`].
//!
//! ```
//! use stowage_task::config::{
//!     ContentConfiguration, DownloadConfiguration, IntegrityPolicy, MediaSelection, Resolution,
//!     VariantQualifier,
//! };
//!
//! let config = DownloadConfiguration::new(
//!     ContentConfiguration::new()
//!         // 1080p at most, HEVC if there is one, else any codec; then automatic.
//!         .variant_qualifier(VariantQualifier::new().max_resolution(Resolution::new(1920, 1080)).codec("hvc1"))
//!         .variant_qualifier(VariantQualifier::new().max_resolution(Resolution::new(1920, 1080)))
//!         .media_selection(MediaSelection::audio_language("fr"))
//!         .media_selection(MediaSelection::subtitles_all()),
//! )
//! .title("Big Buck Bunny")
//! .integrity(IntegrityPolicy::Tolerant);
//! assert_eq!(config.primary.variant_qualifiers.len(), 2);
//! ```

use std::fmt;
use std::time::SystemTime;

/// The whole configuration of a download task.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct DownloadConfiguration {
    /// The content to download first: its variant and media selections.
    pub primary: ContentConfiguration,
    /// More content of the same asset (another variant, more renditions), downloaded with the primary.
    pub auxiliary: Vec<ContentConfiguration>,
    /// A title for people (listed by the storage manager).
    pub title: Option<String>,
    /// Artwork kept in the bundle.
    pub artwork: Option<Artwork>,
    /// When the asset expires and how precious it is.
    pub storage: StoragePolicy,
    /// Whether content is stored decrypted (default) or as ciphertext with its keys.
    pub keys: KeyPolicy,
    /// What happens to a segment that cannot be had.
    pub integrity: IntegrityPolicy,
}

impl DownloadConfiguration {
    /// A configuration with `primary` content and every other setting at its default.
    pub fn new(primary: ContentConfiguration) -> Self {
        Self { primary, ..Self::default() }
    }

    /// Adds an auxiliary content configuration.
    #[must_use]
    pub fn auxiliary(mut self, content: ContentConfiguration) -> Self {
        self.auxiliary.push(content);
        self
    }

    /// Sets the title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the artwork.
    #[must_use]
    pub fn artwork(mut self, artwork: Artwork) -> Self {
        self.artwork = Some(artwork);
        self
    }

    /// Sets the storage policy.
    #[must_use]
    pub fn storage(mut self, policy: StoragePolicy) -> Self {
        self.storage = policy;
        self
    }

    /// Sets the key policy.
    #[must_use]
    pub fn keys(mut self, policy: KeyPolicy) -> Self {
        self.keys = policy;
        self
    }

    /// Sets the integrity policy.
    #[must_use]
    pub fn integrity(mut self, policy: IntegrityPolicy) -> Self {
        self.integrity = policy;
        self
    }

    /// The primary content configuration followed by the auxiliary ones.
    pub fn contents(&self) -> impl Iterator<Item = &ContentConfiguration> {
        std::iter::once(&self.primary).chain(&self.auxiliary)
    }
}

/// One variant and the media renditions that go with it.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ContentConfiguration {
    /// Qualifiers tried in order; the first that some variant satisfies chooses. When none does (or the
    /// list is empty), the choice is automatic: the variant with the highest bandwidth.
    pub variant_qualifiers: Vec<VariantQualifier>,
    /// Which audio, subtitle and closed-caption renditions to take. Without an audio selection, the
    /// variant's default audio rendition is taken (a variant is not watchable without its sound);
    /// subtitles and closed captions are taken only when selected.
    pub media_selections: Vec<MediaSelection>,
}

impl ContentConfiguration {
    /// No qualifier (automatic variant) and no selection (default audio).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a variant qualifier.
    #[must_use]
    pub fn variant_qualifier(mut self, qualifier: VariantQualifier) -> Self {
        self.variant_qualifiers.push(qualifier);
        self
    }

    /// Appends a media selection.
    #[must_use]
    pub fn media_selection(mut self, selection: MediaSelection) -> Self {
        self.media_selections.push(selection);
        self
    }
}

/// A picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resolution {
    /// Width in pixels.
    pub width: u64,
    /// Height in pixels.
    pub height: u64,
}

impl Resolution {
    /// `width` × `height`.
    pub fn new(width: u64, height: u64) -> Self {
        Self { width, height }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// The dynamic range of a variant (`VIDEO-RANGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoRange {
    /// Standard dynamic range (the default when a variant does not say).
    Sdr,
    /// Hybrid log-gamma.
    Hlg,
    /// Perceptual quantizer (HDR10, Dolby Vision).
    Pq,
}

impl VideoRange {
    /// The attribute value as written in a playlist.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sdr => "SDR",
            Self::Hlg => "HLG",
            Self::Pq => "PQ",
        }
    }
}

/// Which of the variants that satisfy a qualifier to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Preference {
    /// The highest `BANDWIDTH` (the default).
    #[default]
    Highest,
    /// The lowest `BANDWIDTH`.
    Lowest,
}

/// Constraints a variant must all satisfy to be chosen by this qualifier.
///
/// A constraint on an attribute the variant does not declare is not satisfied (a variant without
/// `RESOLUTION` satisfies no resolution bound), except the video range, which defaults to SDR as the
/// specification says. Among the variants that satisfy every constraint, [`Preference`] picks one.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct VariantQualifier {
    /// Lowest `BANDWIDTH`, bits per second.
    pub min_bandwidth: Option<u64>,
    /// Highest `BANDWIDTH`, bits per second.
    pub max_bandwidth: Option<u64>,
    /// Lowest `AVERAGE-BANDWIDTH`, bits per second.
    pub min_average_bandwidth: Option<u64>,
    /// Highest `AVERAGE-BANDWIDTH`, bits per second.
    pub max_average_bandwidth: Option<u64>,
    /// Smallest picture: both width and height at least these.
    pub min_resolution: Option<Resolution>,
    /// Largest picture: both width and height at most these.
    pub max_resolution: Option<Resolution>,
    /// Codec prefixes that must each start one of the variant's `CODECS` (`"hvc1"`, `"avc1.64"`, `"ec-3"`),
    /// compared without regard to case.
    pub codecs: Vec<String>,
    /// The required `VIDEO-RANGE`.
    pub video_range: Option<VideoRange>,
    /// Lowest `FRAME-RATE`.
    pub min_frame_rate: Option<f64>,
    /// Highest `FRAME-RATE`.
    pub max_frame_rate: Option<f64>,
    /// Fewest audio channels: some rendition of the variant's audio group has at least this many.
    pub min_channels: Option<u32>,
    /// Most audio channels: some rendition of the variant's audio group has at most this many.
    pub max_channels: Option<u32>,
    /// Which satisfying variant to take.
    pub prefer: Preference,
}

impl VariantQualifier {
    /// A qualifier every variant satisfies, preferring the highest bandwidth.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the lowest `BANDWIDTH`.
    #[must_use]
    pub fn min_bandwidth(mut self, bits_per_second: u64) -> Self {
        self.min_bandwidth = Some(bits_per_second);
        self
    }

    /// Sets the highest `BANDWIDTH`.
    #[must_use]
    pub fn max_bandwidth(mut self, bits_per_second: u64) -> Self {
        self.max_bandwidth = Some(bits_per_second);
        self
    }

    /// Sets the lowest `AVERAGE-BANDWIDTH`.
    #[must_use]
    pub fn min_average_bandwidth(mut self, bits_per_second: u64) -> Self {
        self.min_average_bandwidth = Some(bits_per_second);
        self
    }

    /// Sets the highest `AVERAGE-BANDWIDTH`.
    #[must_use]
    pub fn max_average_bandwidth(mut self, bits_per_second: u64) -> Self {
        self.max_average_bandwidth = Some(bits_per_second);
        self
    }

    /// Sets the smallest picture.
    #[must_use]
    pub fn min_resolution(mut self, resolution: Resolution) -> Self {
        self.min_resolution = Some(resolution);
        self
    }

    /// Sets the largest picture.
    #[must_use]
    pub fn max_resolution(mut self, resolution: Resolution) -> Self {
        self.max_resolution = Some(resolution);
        self
    }

    /// Adds a codec prefix the variant must list.
    #[must_use]
    pub fn codec(mut self, prefix: impl Into<String>) -> Self {
        self.codecs.push(prefix.into());
        self
    }

    /// Sets the required video range.
    #[must_use]
    pub fn video_range(mut self, range: VideoRange) -> Self {
        self.video_range = Some(range);
        self
    }

    /// Sets the lowest frame rate.
    #[must_use]
    pub fn min_frame_rate(mut self, fps: f64) -> Self {
        self.min_frame_rate = Some(fps);
        self
    }

    /// Sets the highest frame rate.
    #[must_use]
    pub fn max_frame_rate(mut self, fps: f64) -> Self {
        self.max_frame_rate = Some(fps);
        self
    }

    /// Sets the fewest audio channels.
    #[must_use]
    pub fn min_channels(mut self, channels: u32) -> Self {
        self.min_channels = Some(channels);
        self
    }

    /// Sets the most audio channels.
    #[must_use]
    pub fn max_channels(mut self, channels: u32) -> Self {
        self.max_channels = Some(channels);
        self
    }

    /// Sets which satisfying variant to take.
    #[must_use]
    pub fn prefer(mut self, preference: Preference) -> Self {
        self.prefer = preference;
        self
    }
}

/// The kind of a media rendition (`EXT-X-MEDIA` `TYPE`), as far as selections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// `TYPE=AUDIO`.
    Audio,
    /// `TYPE=SUBTITLES`.
    Subtitles,
    /// `TYPE=CLOSED-CAPTIONS` (carried inside the video; selecting them downloads nothing more, but records
    /// the choice).
    ClosedCaptions,
    /// `TYPE=VIDEO` (alternative angles).
    Video,
}

impl MediaKind {
    /// A lower-case name for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Subtitles => "subtitles",
            Self::ClosedCaptions => "closed-captions",
            Self::Video => "video",
        }
    }
}

/// How a media selection picks renditions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Criterion {
    /// By language (RFC 5646): `"en"` matches `en`, `en-US` and `EN-gb`; `"en-US"` matches only `en-US`.
    /// `ASSOC-LANGUAGE` counts too.
    Language(String),
    /// By `NAME`, exactly.
    Name(String),
    /// Renditions whose `CHARACTERISTICS` include every one of these (for instance
    /// `public.accessibility.describes-video`).
    Characteristics(Vec<String>),
    /// The group's `DEFAULT=YES` rendition (or its first one when none is the default).
    Default,
    /// Every rendition of the group.
    All,
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Language(language) => write!(f, "language {language:?}"),
            Self::Name(name) => write!(f, "name {name:?}"),
            Self::Characteristics(list) => write!(f, "characteristics {list:?}"),
            Self::Default => f.write_str("the default"),
            Self::All => f.write_str("all"),
        }
    }
}

/// A choice of renditions of one kind.
///
/// A selection that matches nothing is an error when the task is resolved, except [`Criterion::All`],
/// which may match nothing: asking for "every subtitle there is" of an asset with none is not a mistake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MediaSelection {
    /// Which kind of rendition.
    pub kind: MediaKind,
    /// How to pick.
    pub criterion: Criterion,
}

impl MediaSelection {
    /// A selection of `kind` by `criterion`.
    pub fn new(kind: MediaKind, criterion: Criterion) -> Self {
        Self { kind, criterion }
    }

    /// Audio in `language`.
    pub fn audio_language(language: impl Into<String>) -> Self {
        Self::new(MediaKind::Audio, Criterion::Language(language.into()))
    }

    /// Every audio rendition of the variant's group.
    pub fn audio_all() -> Self {
        Self::new(MediaKind::Audio, Criterion::All)
    }

    /// Subtitles in `language`.
    pub fn subtitles_language(language: impl Into<String>) -> Self {
        Self::new(MediaKind::Subtitles, Criterion::Language(language.into()))
    }

    /// Every subtitle rendition of the variant's group.
    pub fn subtitles_all() -> Self {
        Self::new(MediaKind::Subtitles, Criterion::All)
    }

    /// Closed captions in `language`.
    pub fn closed_captions_language(language: impl Into<String>) -> Self {
        Self::new(MediaKind::ClosedCaptions, Criterion::Language(language.into()))
    }
}

impl fmt::Display for MediaSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by {}", self.kind.as_str(), self.criterion)
    }
}

/// Artwork kept with the asset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Artwork {
    /// The image bytes.
    pub data: Vec<u8>,
    /// Its media type (`image/jpeg`), if known.
    pub media_type: Option<String>,
}

impl Artwork {
    /// Artwork from image bytes of an unstated type.
    pub fn new(data: Vec<u8>) -> Self {
        Self { data, media_type: None }
    }

    /// Sets the media type.
    #[must_use]
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }
}

/// How precious a stored asset is when space runs short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Priority {
    /// Removed by a purge only when asked explicitly.
    Important,
    /// Removed by a purge after expired assets, least recently used first.
    #[default]
    Default,
}

/// Expiry and priority of a stored asset (Apple's `AVMutableAssetDownloadStorageManagementPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoragePolicy {
    /// When the asset may be removed first; `None` never expires.
    pub expires: Option<SystemTime>,
    /// How precious the asset is.
    pub priority: Priority,
}

impl StoragePolicy {
    /// No expiry, default priority.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expires(mut self, at: SystemTime) -> Self {
        self.expires = Some(at);
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// What happens to encrypted content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyPolicy {
    /// Segments are stored decrypted and local playlists carry no key (the default).
    #[default]
    Decrypt,
    /// Segments are stored as fetched; their keys are stored in the bundle and the local playlists point at
    /// them. Needed for SAMPLE-AES, which cannot be decrypted without demuxing.
    KeepEncrypted,
}

/// What happens to a segment that cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum IntegrityPolicy {
    /// The task fails, naming the segment (the default).
    #[default]
    Strict,
    /// The segment is recorded as a gap in the manifest, the task goes on, and the asset is marked
    /// incomplete. Never silent: every gap is reported as an event.
    Tolerant,
}
