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

/// The policies are the bundle's own types: a bundle records them as the task was configured.
pub use stowage_bundle::{IntegrityPolicy, KeyPolicy, Priority, StoragePolicy};
/// A picture size is the playlist's `RESOLUTION` value.
pub use stowage_playlist::Resolution;

use stowage_bundle::RenditionKind;

/// The whole configuration of a download task.
#[derive(Debug, Clone, PartialEq)]
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
    /// Whether an auxiliary content configuration may take the primary content's video rather than add a
    /// second one (Apple's `optimizesAuxiliaryContentConfigurations`), on by default.
    ///
    /// When on, an auxiliary content whose media selections the primary content's variant can carry
    /// (their renditions are in its groups), and whose variant qualifiers it satisfies, takes that
    /// variant: only its renditions are downloaded. Otherwise, among the variants it may take, one with
    /// the primary content's video (the same media playlist, with other rendition groups: multichannel
    /// audio beside stereo, say) is preferred. Off, every content configuration chooses its variant on
    /// its own.
    pub optimize_auxiliary_contents: bool,
    /// How a live or EVENT stream is recorded (playlists without `EXT-X-ENDLIST`).
    pub recording: RecordingConfiguration,
}

/// How a live or EVENT stream is recorded: a media playlist without `EXT-X-ENDLIST` is reloaded and its
/// new segments stored until it ends, until a limit set here, or until the task is stopped, leaving a
/// VOD bundle.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RecordingConfiguration {
    /// Where the recording starts in the first playlist read.
    pub start: LiveStart,
    /// The longest span of media to record.
    pub duration: Option<std::time::Duration>,
    /// When to stop recording (wall-clock time).
    pub until: Option<SystemTime>,
    /// How long the stream may bring nothing new (unreachable, erroring, or its playlists not changing)
    /// before the recording ends; `None` (default): the recording keeps trying for ever.
    pub max_outage: Option<std::time::Duration>,
    /// Whether a segment that was listed and then expired (the origin answered 404 or 410 for it after it
    /// left the live playlist) while the origin was unreachable, or while no recorder ran, fails a
    /// recording under [`IntegrityPolicy::Strict`]. Off (default): such a segment could not have been had
    /// by any recorder that was not fetching at the time, so it is recorded as a hole whose cause says it
    /// expired, and reported ([`TaskEvent::HoleRecorded`](crate::TaskEvent::HoleRecorded), the recording's
    /// holes count, the bundle's holes); strict integrity still fails for a segment that expired while the
    /// origin answered all along. On: strict integrity fails for it too.
    pub fail_on_expiry: bool,
}

impl RecordingConfiguration {
    /// Records from the live edge, without limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets where the recording starts.
    #[must_use]
    pub fn start(mut self, start: LiveStart) -> Self {
        self.start = start;
        self
    }

    /// Sets the longest span of media to record.
    #[must_use]
    pub fn duration(mut self, duration: std::time::Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Sets when to stop recording.
    #[must_use]
    pub fn until(mut self, at: SystemTime) -> Self {
        self.until = Some(at);
        self
    }

    /// Sets how long the stream may bring nothing new before the recording ends.
    #[must_use]
    pub fn max_outage(mut self, limit: std::time::Duration) -> Self {
        self.max_outage = Some(limit);
        self
    }

    /// Sets whether a segment that expired during an outage fails a strictly checked recording (see
    /// [`fail_on_expiry`](Self::fail_on_expiry)).
    #[must_use]
    pub fn fail_on_expiry(mut self, fail: bool) -> Self {
        self.fail_on_expiry = fail;
        self
    }
}

/// Where a recording starts in the first playlist it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LiveStart {
    /// At the live edge, as a player starts: the last segments listed that hold three target durations.
    #[default]
    Edge,
    /// At the oldest segment the playlist still lists.
    Oldest,
    /// At the segment whose program date time (`EXT-X-PROGRAM-DATE-TIME`, counted on by the durations of
    /// the segments after the one that carries it) covers this moment: from its start to the start of the
    /// next segment. A playlist that lists no such segment, or gives no program date times, fails the task
    /// with [`Error::LiveStartNotListed`](crate::Error::LiveStartNotListed).
    ProgramDateTime(SystemTime),
}

impl Default for DownloadConfiguration {
    fn default() -> Self {
        Self {
            primary: ContentConfiguration::default(),
            auxiliary: Vec::new(),
            title: None,
            artwork: None,
            storage: StoragePolicy::default(),
            keys: KeyPolicy::default(),
            integrity: IntegrityPolicy::default(),
            optimize_auxiliary_contents: true,
            recording: RecordingConfiguration::default(),
        }
    }
}

impl DownloadConfiguration {
    /// A configuration with `primary` content and every other setting at its default.
    pub fn new(primary: ContentConfiguration) -> Self {
        Self { primary, ..Self::default() }
    }

    /// Sets how a live or EVENT stream is recorded.
    #[must_use]
    pub fn recording(mut self, recording: RecordingConfiguration) -> Self {
        self.recording = recording;
        self
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

    /// Sets whether auxiliary content configurations may take the primary content's video (see
    /// [`DownloadConfiguration::optimize_auxiliary_contents`]).
    #[must_use]
    pub fn optimize_auxiliary_contents(mut self, on: bool) -> Self {
        self.optimize_auxiliary_contents = on;
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
///
/// The playlist's [`MediaType`](stowage_playlist::MediaType) less the types it does not know
/// ([`MediaKind::of_type`]), and the bundle's [`RenditionKind`] plus closed captions, which are never stored
/// as a rendition of their own ([`MediaKind::stored_as`], and `From<RenditionKind>` back): each conversion
/// names every variant, so that a new one anywhere is a compile error here rather than a silent default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums, reason = "the four TYPE values of the RFC: closed by definition")]
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

    /// The kind of a rendition of TYPE `media_type`; `None` for a TYPE the RFC does not define.
    pub fn of_type(media_type: stowage_playlist::MediaType) -> Option<Self> {
        use stowage_playlist::MediaType;
        match media_type {
            MediaType::Audio => Some(Self::Audio),
            MediaType::Video => Some(Self::Video),
            MediaType::Subtitles => Some(Self::Subtitles),
            MediaType::ClosedCaptions => Some(Self::ClosedCaptions),
            MediaType::Other => None,
        }
    }

    /// The kind a bundle stores a rendition of this kind as; `None` for closed captions, which travel
    /// inside the video.
    pub fn stored_as(self) -> Option<RenditionKind> {
        match self {
            Self::Audio => Some(RenditionKind::Audio),
            Self::Subtitles => Some(RenditionKind::Subtitles),
            Self::Video => Some(RenditionKind::Video),
            Self::ClosedCaptions => None,
        }
    }
}

impl From<RenditionKind> for MediaKind {
    /// What a stored rendition is as a media kind: a variant stream counts as video.
    fn from(kind: RenditionKind) -> Self {
        match kind {
            RenditionKind::Video => Self::Video,
            RenditionKind::Audio => Self::Audio,
            RenditionKind::Subtitles => Self::Subtitles,
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

    /// Every closed-caption rendition of the variant's group.
    pub fn closed_captions_all() -> Self {
        Self::new(MediaKind::ClosedCaptions, Criterion::All)
    }
}

impl fmt::Display for MediaSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by {}", self.kind.as_str(), self.criterion)
    }
}

/// Artwork kept with the asset: stored in its bundle (`artwork.<ext>`, recorded in the manifest) when the
/// bundle is created, and read back with `AssetCache::artwork` and `AssetCache::read_artwork`. Without a
/// media type, JPEG, PNG, GIF, WebP and AVIF are recognised from the bytes.
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

    /// The artwork as the bundle stores it.
    pub(crate) fn to_bundle(&self) -> stowage_bundle::Artwork {
        let artwork = stowage_bundle::Artwork::new(self.data.clone());
        match &self.media_type {
            Some(media_type) => artwork.media_type(media_type.clone()),
            None => artwork,
        }
    }
}

/// How large a media segment may be, from what its playlist says of it: a guard against endless or bloated
/// bodies, which would otherwise be written until the fetch layer's response limit (1 GiB) for each of the
/// segments in flight. Set on the session ([`SessionConfig::segment_size_limit`](crate::SessionConfig)).
///
/// A segment of `d` seconds in a variant of `BANDWIDTH` bits per second is expected to hold about
/// `BANDWIDTH × d / 8` bytes (HLS makes `BANDWIDTH` the peak bit rate of any segment). Its cap is
/// [`multiple`](Self::multiple) times that, and never below [`floor`](Self::floor), which covers tiny
/// segments and understated bandwidths. An audio or subtitle rendition is held to its variant's
/// `BANDWIDTH` (which counts every rendition played with it); a rendition without one (a media playlist
/// downloaded on its own) is assumed to run at [`unknown_bandwidth`](Self::unknown_bandwidth).
///
/// A segment over its cap fails at once and is not retried (the same answer would come again): refused
/// before its body is read when its declared length is over the cap, cut as soon as its body goes past
/// it, with the URI, what was declared or received, what was expected, and the cap in the error. Byte-range
/// segments are exempt (their length is the playlist's own and is enforced exactly), and initialization
/// sections have a limit of their own (16 MiB).
///
/// ```
/// use std::time::Duration;
/// use stowage_task::config::SegmentSizeLimit;
///
/// let limit = SegmentSizeLimit::default();
/// // 8 Mbit/s for 10 s: 10 MB expected, a cap of 40 MB.
/// assert_eq!(limit.expected(Some(8_000_000), Duration::from_secs(10)), 10_000_000);
/// assert_eq!(limit.cap(Some(8_000_000), Duration::from_secs(10)), 40_000_000);
/// // A 2-second segment of 100 kbit/s is held to the floor, 16 MiB.
/// assert_eq!(limit.cap(Some(100_000), Duration::from_secs(2)), 16 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentSizeLimit {
    /// How many times its expected size a segment may be. Default 4.
    pub multiple: u32,
    /// The smallest cap, in bytes. Default 16 MiB.
    pub floor: u64,
    /// The bandwidth assumed for a rendition that declares none, in bits per second. Default 25 Mbit/s
    /// (so a cap of 100 Mbit/s of media: ten-second segments of 125 MB).
    pub unknown_bandwidth: u64,
}

impl Default for SegmentSizeLimit {
    fn default() -> Self {
        Self { multiple: 4, floor: 16 << 20, unknown_bandwidth: 25_000_000 }
    }
}

impl SegmentSizeLimit {
    /// Sets how many times its expected size a segment may be.
    #[must_use]
    pub fn multiple(mut self, multiple: u32) -> Self {
        self.multiple = multiple;
        self
    }

    /// Sets the smallest cap, in bytes.
    #[must_use]
    pub fn floor(mut self, bytes: u64) -> Self {
        self.floor = bytes;
        self
    }

    /// Sets the bandwidth assumed for a rendition that declares none, in bits per second.
    #[must_use]
    pub fn unknown_bandwidth(mut self, bits_per_second: u64) -> Self {
        self.unknown_bandwidth = bits_per_second;
        self
    }

    /// The size a segment of `duration` at `bandwidth` bits per second is expected to have, in bytes
    /// (saturating at `u64::MAX` for absurd numbers).
    pub fn expected(&self, bandwidth: Option<u64>, duration: std::time::Duration) -> u64 {
        let bits_per_second = u128::from(bandwidth.unwrap_or(self.unknown_bandwidth));
        let bytes = bits_per_second.checked_mul(duration.as_millis()).map(|b| b / 8000);
        bytes.and_then(|b| u64::try_from(b).ok()).unwrap_or(u64::MAX)
    }

    /// The cap of a segment of `duration` at `bandwidth` bits per second, in bytes.
    pub fn cap(&self, bandwidth: Option<u64>, duration: std::time::Duration) -> u64 {
        self.expected(bandwidth, duration).saturating_mul(u64::from(self.multiple)).max(self.floor)
    }
}

/// Reads a bandwidth like `800000`, `800k`, `5M`, `1.5M` or `2G` (decimal multiples, bits per second).
fn parse_bandwidth(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, factor) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1e3),
        (i, 'm' | 'M') => (&text[..i], 1e6),
        (i, 'g' | 'G') => (&text[..i], 1e9),
        _ => (text, 1.0),
    };
    if factor == 1.0 {
        return number.parse().ok();
    }
    let value: f64 = number.parse().ok()?;
    let bits = value * factor;
    (value.is_finite() && value >= 0.0 && bits <= u64::MAX as f64).then(|| bits.round() as u64)
}

fn parse_resolution(text: &str) -> Option<Resolution> {
    let (w, h) = text.trim().split_once(['x', 'X'])?;
    Some(Resolution::new(w.trim().parse().ok()?, h.trim().parse().ok()?))
}

impl fmt::Display for VariantQualifier {
    /// The qualifier in the text notation [`VariantQualifier::from_str`](std::str::FromStr::from_str)
    /// reads, which reads it back equal: `max-resolution=1280x720,codec=avc1,lowest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut terms: Vec<String> = Vec::new();
        let mut bound = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                terms.push(format!("{name}={value}"));
            }
        };
        bound("min-bandwidth", self.min_bandwidth.map(|b| b.to_string()));
        bound("max-bandwidth", self.max_bandwidth.map(|b| b.to_string()));
        bound("min-average-bandwidth", self.min_average_bandwidth.map(|b| b.to_string()));
        bound("max-average-bandwidth", self.max_average_bandwidth.map(|b| b.to_string()));
        // A bound on one dimension is kept with the other at its neutral value (0 for a minimum, the
        // largest number for a maximum): it is written as the one-dimension term it was read from.
        if let Some(r) = self.min_resolution {
            match (r.width, r.height) {
                (w, 0) => bound("min-width", Some(w.to_string())),
                (0, h) => bound("min-height", Some(h.to_string())),
                _ => bound("min-resolution", Some(format!("{}x{}", r.width, r.height))),
            }
        }
        if let Some(r) = self.max_resolution {
            match (r.width, r.height) {
                (w, u64::MAX) => bound("max-width", Some(w.to_string())),
                (u64::MAX, h) => bound("max-height", Some(h.to_string())),
                _ => bound("max-resolution", Some(format!("{}x{}", r.width, r.height))),
            }
        }
        for codec in &self.codecs {
            bound("codec", Some(codec.clone()));
        }
        bound("video-range", self.video_range.map(|r| r.as_str().to_ascii_lowercase()));
        bound("min-frame-rate", self.min_frame_rate.map(|r| r.to_string()));
        bound("max-frame-rate", self.max_frame_rate.map(|r| r.to_string()));
        bound("min-channels", self.min_channels.map(|c| c.to_string()));
        bound("max-channels", self.max_channels.map(|c| c.to_string()));
        if self.prefer == Preference::Lowest || terms.is_empty() {
            terms.push(if self.prefer == Preference::Lowest { "lowest" } else { "highest" }.to_owned());
        }
        f.write_str(&terms.join(","))
    }
}

impl std::str::FromStr for VariantQualifier {
    type Err = crate::Error;

    /// Reads a qualifier from comma-separated terms, all of which must hold:
    ///
    /// | term | meaning |
    /// |---|---|
    /// | `highest`, `lowest` | which satisfying variant to take (by `BANDWIDTH`) |
    /// | `min-bandwidth=800k`, `max-bandwidth=5M` | `BANDWIDTH` bounds (bits/s; `k`, `M`, `G` multiply by 10³, 10⁶, 10⁹) |
    /// | `min-average-bandwidth=…`, `max-average-bandwidth=…` | `AVERAGE-BANDWIDTH` bounds |
    /// | `min-resolution=1280x720`, `max-resolution=1920x1080` | both dimensions bounded |
    /// | `min-height=720`, `max-height=1080`, `min-width=…`, `max-width=…` | one dimension bounded |
    /// | `codec=hvc1` (repeatable) | a `CODECS` entry starts with this |
    /// | `video-range=sdr`, `hlg`, `pq` | the `VIDEO-RANGE` |
    /// | `min-frame-rate=50`, `max-frame-rate=30` | `FRAME-RATE` bounds |
    /// | `min-channels=6`, `max-channels=2` | audio channel bounds |
    ///
    /// ```
    /// use stowage_task::config::{Preference, Resolution, VariantQualifier};
    ///
    /// let q: VariantQualifier = "max-height=720,codec=avc1,max-bandwidth=2.5M,lowest".parse()?;
    /// assert_eq!(q.max_resolution, Some(Resolution::new(u64::MAX, 720)));
    /// assert_eq!((q.max_bandwidth, q.prefer), (Some(2_500_000), Preference::Lowest));
    /// assert!("max-height=tall".parse::<VariantQualifier>().is_err());
    /// # Ok::<(), stowage_task::Error>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut q = Self::new();
        let invalid = |term: &str, reason: &str| crate::Error::InvalidSelectionText {
            what: "variant qualifier",
            text: term.to_owned(),
            reason: reason.to_owned(),
        };
        for term in text.split(',').map(str::trim) {
            if term.is_empty() {
                return Err(invalid(text, "an empty term"));
            }
            let (key, value) = match term.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim()),
                None => (term.to_ascii_lowercase(), ""),
            };
            let bandwidth = || {
                parse_bandwidth(value)
                    .ok_or_else(|| invalid(term, "expected bits per second like 800k or 5M"))
            };
            let pixels = || value.parse::<u64>().map_err(|_| invalid(term, "expected a number of pixels"));
            let rate = || match value.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                _ => Err(invalid(term, "expected frames per second like 29.97")),
            };
            let channels = || value.parse::<u32>().map_err(|_| invalid(term, "expected a channel count"));
            let resolution = || parse_resolution(value).ok_or_else(|| invalid(term, "expected WIDTHxHEIGHT"));
            let min_res = q.min_resolution.unwrap_or_else(|| Resolution::new(0, 0));
            let max_res = q.max_resolution.unwrap_or_else(|| Resolution::new(u64::MAX, u64::MAX));
            match key.as_str() {
                "highest" if value.is_empty() => q.prefer = Preference::Highest,
                "lowest" if value.is_empty() => q.prefer = Preference::Lowest,
                "min-bandwidth" => q.min_bandwidth = Some(bandwidth()?),
                "max-bandwidth" => q.max_bandwidth = Some(bandwidth()?),
                "min-average-bandwidth" => q.min_average_bandwidth = Some(bandwidth()?),
                "max-average-bandwidth" => q.max_average_bandwidth = Some(bandwidth()?),
                "min-resolution" => q.min_resolution = Some(resolution()?),
                "max-resolution" => q.max_resolution = Some(resolution()?),
                "min-width" => q.min_resolution = Some(Resolution::new(pixels()?, min_res.height)),
                "min-height" => q.min_resolution = Some(Resolution::new(min_res.width, pixels()?)),
                "max-width" => q.max_resolution = Some(Resolution::new(pixels()?, max_res.height)),
                "max-height" => q.max_resolution = Some(Resolution::new(max_res.width, pixels()?)),
                "codec" if !value.is_empty() => q.codecs.push(value.to_owned()),
                "video-range" => {
                    q.video_range = Some(match value.to_ascii_uppercase().as_str() {
                        "SDR" => VideoRange::Sdr,
                        "HLG" => VideoRange::Hlg,
                        "PQ" => VideoRange::Pq,
                        _ => return Err(invalid(term, "expected sdr, hlg or pq")),
                    });
                }
                "min-frame-rate" => q.min_frame_rate = Some(rate()?),
                "max-frame-rate" => q.max_frame_rate = Some(rate()?),
                "min-channels" => q.min_channels = Some(channels()?),
                "max-channels" => q.max_channels = Some(channels()?),
                _ => return Err(invalid(term, "unknown term (see the documentation of VariantQualifier)")),
            }
        }
        Ok(q)
    }
}

impl MediaSelection {
    /// Reads comma-separated selections of one kind, as a command line gives them: `all`, `default`,
    /// `name=Commentary`, `characteristic=public.accessibility.describes-video`, or a language tag
    /// (`en`, `pt-BR`, `fre`).
    ///
    /// ```
    /// use stowage_task::config::{Criterion, MediaKind, MediaSelection};
    ///
    /// let audio = MediaSelection::parse_list(MediaKind::Audio, "en,fr-CA")?;
    /// assert_eq!(audio[1].criterion, Criterion::Language("fr-CA".into()));
    /// assert_eq!(MediaSelection::parse_list(MediaKind::Subtitles, "all")?[0].criterion, Criterion::All);
    /// assert!(MediaSelection::parse_list(MediaKind::Audio, "en;fr").is_err());
    /// # Ok::<(), stowage_task::Error>(())
    /// ```
    pub fn parse_list(kind: MediaKind, text: &str) -> Result<Vec<Self>, crate::Error> {
        text.split(',').map(|item| Self::parse_one(kind, item)).collect()
    }

    /// Reads one selection of `kind` in the notation of [`parse_list`](Self::parse_list).
    fn parse_one(kind: MediaKind, item: &str) -> Result<Self, crate::Error> {
        let what = match kind {
            MediaKind::Audio => "audio selection",
            MediaKind::Subtitles => "subtitle selection",
            MediaKind::ClosedCaptions => "closed-caption selection",
            MediaKind::Video => "video selection",
        };
        let invalid = |item: &str, reason: &str| crate::Error::InvalidSelectionText {
            what,
            text: item.to_owned(),
            reason: reason.to_owned(),
        };
        let item = item.trim();
        let criterion = if item.eq_ignore_ascii_case("all") {
            Criterion::All
        } else if item.eq_ignore_ascii_case("default") {
            Criterion::Default
        } else if let Some(name) = item.strip_prefix("name=") {
            if name.is_empty() {
                return Err(invalid(item, "an empty name"));
            }
            Criterion::Name(name.to_owned())
        } else if let Some(list) = item.strip_prefix("characteristic=") {
            // Several characteristics are joined with `+`, since commas separate selections.
            let list: Vec<String> = list.split('+').map(|c| c.trim().to_owned()).collect();
            if list.iter().any(String::is_empty) {
                return Err(invalid(item, "an empty characteristic"));
            }
            Criterion::Characteristics(list)
        } else if is_language_tag(item) {
            Criterion::Language(item.to_owned())
        } else {
            return Err(invalid(
                item,
                "expected a language tag (en, pt-BR), all, default, name=NAME or characteristic=UTI",
            ));
        };
        Ok(Self::new(kind, criterion))
    }

    /// The selection as text, with its kind: `audio:en`, `subtitles:all`, `audio:name=Commentary`,
    /// `audio:characteristic=public.accessibility.describes-video`. [`from_text`](Self::from_text) reads it
    /// back.
    ///
    /// ```
    /// use stowage_task::config::MediaSelection;
    ///
    /// let selection = MediaSelection::audio_language("pt-BR");
    /// assert_eq!(selection.to_text(), "audio:pt-BR");
    /// assert_eq!(MediaSelection::from_text("audio:pt-BR")?, selection);
    /// # Ok::<(), stowage_task::Error>(())
    /// ```
    pub fn to_text(&self) -> String {
        let criterion = match &self.criterion {
            Criterion::Language(language) => language.clone(),
            Criterion::Name(name) => format!("name={name}"),
            Criterion::Characteristics(list) => format!("characteristic={}", list.join("+")),
            Criterion::Default => "default".to_owned(),
            Criterion::All => "all".to_owned(),
        };
        format!("{}:{criterion}", self.kind.as_str())
    }

    /// Reads a selection written by [`to_text`](Self::to_text): its kind (`audio`, `subtitles`,
    /// `closed-captions`, `video`), a colon, and one selection as [`parse_list`](Self::parse_list) reads
    /// them.
    pub fn from_text(text: &str) -> Result<Self, crate::Error> {
        let invalid = |reason: &str| crate::Error::InvalidSelectionText {
            what: "media selection",
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, item) = text.split_once(':').ok_or_else(|| invalid("expected KIND:SELECTION"))?;
        let kind = match kind.trim() {
            "audio" => MediaKind::Audio,
            "subtitles" => MediaKind::Subtitles,
            "closed-captions" => MediaKind::ClosedCaptions,
            "video" => MediaKind::Video,
            _ => return Err(invalid("the kind is audio, subtitles, closed-captions or video")),
        };
        Self::parse_one(kind, item)
    }
}

/// A loose check of RFC 5646 shape: a primary subtag of 2 to 8 letters, then subtags of 1 to 8 letters
/// or digits.
fn is_language_tag(text: &str) -> bool {
    let mut subtags = text.split(['-', '_']);
    let primary_ok = subtags
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok && subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths_read_with_decimal_multiples() {
        assert_eq!(parse_bandwidth("800000"), Some(800_000));
        assert_eq!(parse_bandwidth("800k"), Some(800_000));
        assert_eq!(parse_bandwidth("1.5M"), Some(1_500_000));
        assert_eq!(parse_bandwidth("2G"), Some(2_000_000_000));
        assert_eq!(parse_bandwidth("-1M"), None);
        assert_eq!(parse_bandwidth("M"), None);
        assert_eq!(parse_bandwidth("1e400M"), None);
        assert_eq!(parse_bandwidth(""), None);
    }

    #[test]
    fn qualifier_text_round_trips_every_term() {
        let q: VariantQualifier = "min-bandwidth=1M, max-bandwidth=8M, min-average-bandwidth=500k, \
             max-average-bandwidth=6M, min-resolution=640x360, max-width=1920, max-height=1080, codec=hvc1, \
             codec=ec-3, video-range=PQ, min-frame-rate=23.976, max-frame-rate=60, min-channels=2, \
             max-channels=8, lowest"
            .parse()
            .unwrap();
        let expected = VariantQualifier::new()
            .min_bandwidth(1_000_000)
            .max_bandwidth(8_000_000)
            .min_average_bandwidth(500_000)
            .max_average_bandwidth(6_000_000)
            .min_resolution(Resolution::new(640, 360))
            .max_resolution(Resolution::new(1920, 1080))
            .codec("hvc1")
            .codec("ec-3")
            .video_range(VideoRange::Pq)
            .min_frame_rate(23.976)
            .max_frame_rate(60.0)
            .min_channels(2)
            .max_channels(8)
            .prefer(Preference::Lowest);
        assert_eq!(q, expected);
        // The text form reads back equal, one-dimension bounds and defaults included.
        for q in [
            expected,
            "max-height=720,min-width=640".parse().unwrap(),
            VariantQualifier::new(),
            "min-frame-rate=29.97,video-range=hlg".parse().unwrap(),
        ] {
            assert_eq!(q.to_string().parse::<VariantQualifier>().unwrap(), q, "{q}");
        }
    }

    #[test]
    fn bad_qualifier_text_names_the_term() {
        for (text, term) in [
            ("max-height=abc", "max-height=abc"),
            ("min-bandwidth=fast", "min-bandwidth=fast"),
            ("video-range=hdr", "video-range=hdr"),
            ("colour=blue", "colour=blue"),
            ("lowest=1", "lowest=1"),
            ("codec=", "codec="),
            ("max-resolution=1920", "max-resolution=1920"),
            ("min-frame-rate=NaN", "min-frame-rate=NaN"),
        ] {
            match text.parse::<VariantQualifier>() {
                Err(crate::Error::InvalidSelectionText { text, .. }) => assert_eq!(text, term),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!("max-height=720,,lowest".parse::<VariantQualifier>().is_err());
    }

    #[test]
    fn selection_lists() {
        let list = MediaSelection::parse_list(
            MediaKind::Audio,
            "en, name=Director's commentary, characteristic=public.accessibility.describes-video+x.y, default",
        )
        .unwrap();
        assert_eq!(
            list.iter().map(|s| s.criterion.clone()).collect::<Vec<_>>(),
            [
                Criterion::Language("en".into()),
                Criterion::Name("Director's commentary".into()),
                Criterion::Characteristics(vec!["public.accessibility.describes-video".into(), "x.y".into()]),
                Criterion::Default,
            ]
        );
        for bad in ["", "e", "english language", "name=", "characteristic=a++b", "en-toolongsubtag"] {
            assert!(MediaSelection::parse_list(MediaKind::Subtitles, bad).is_err(), "{bad:?}");
        }
        // The text form with its kind reads back equal, a name with a comma included.
        for selection in list.into_iter().chain([
            MediaSelection::new(MediaKind::Audio, Criterion::Name("Director, and cast".into())),
            MediaSelection::subtitles_all(),
            MediaSelection::closed_captions_language("en"),
        ]) {
            assert_eq!(MediaSelection::from_text(&selection.to_text()).unwrap(), selection);
        }
        assert!(
            MediaSelection::from_text("audio").is_err() && MediaSelection::from_text("sound:en").is_err()
        );
    }
}
