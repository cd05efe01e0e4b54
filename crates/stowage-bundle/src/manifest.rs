//! The plan a bundle is created with, and the manifest (`manifest.json`) that records it.

use std::path::Path;
use std::time::SystemTime;

pub use crate::ranges::TimeRange;
use serde::{Deserialize, Serialize};

use crate::artwork::{self, Artwork, ArtworkFile};
use crate::error::{Error, Result};
use crate::id::{ByteRange, RenditionId, SegmentId, SegmentKind, check_local_name};
use crate::time::{serde_span, serde_time};

/// The bundle format version this crate writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 1;

/// The value of the manifest's `format` field.
pub const FORMAT_NAME: &str = "stowage-bundle";

/// Manifests larger than this are refused: a manifest of a 100,000-segment asset is about 20 MB.
pub const MAX_MANIFEST_LEN: u64 = 256 * 1024 * 1024;

/// The asset a bundle holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AssetInfo {
    /// The asset's local identifier: the bundle's folder name in a store. Same rules as a
    /// [`RenditionId`]: ASCII letters, digits, `-`, `_`.
    pub id: String,
    /// A title for people.
    #[serde(default)]
    pub title: Option<String>,
    /// The URL of the master playlist (or of the media playlist, for a single-rendition asset).
    #[serde(default)]
    pub url: Option<String>,
    /// The URL of artwork for the asset.
    #[serde(default)]
    pub artwork_url: Option<String>,
}

impl AssetInfo {
    /// An asset with this local identifier (checked when the bundle is created).
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), title: None, url: None, artwork_url: None }
    }

    /// Sets the title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the source URL.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the artwork URL.
    #[must_use]
    pub fn artwork_url(mut self, url: impl Into<String>) -> Self {
        self.artwork_url = Some(url.into());
        self
    }
}

/// How important an asset is when space must be freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Priority {
    /// Removed by `purge` when space is needed, least recently accessed first.
    #[default]
    Default,
    /// Never removed by `purge` unless the caller asks for it explicitly.
    Important,
}

/// When an asset may be removed: its expiry date and priority (Apple's
/// `AVMutableAssetDownloadStorageManagementPolicy`). Changeable after the download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoragePolicy {
    /// After this time the asset is expired, and `purge` removes it first.
    #[serde(default, with = "serde_time::option")]
    pub expires: Option<SystemTime>,
    /// The asset's priority.
    #[serde(default)]
    pub priority: Priority,
}

impl StoragePolicy {
    /// No expiry, default priority.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the expiry time.
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

    /// Whether the asset is expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// How encrypted content is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyPolicy {
    /// Segments are stored decrypted and local playlists carry no `EXT-X-KEY` (the default). The manifest
    /// writes it `decrypted`, what the bundle holds.
    #[default]
    #[serde(rename = "decrypted")]
    Decrypt,
    /// Segments are stored as fetched (ciphertext); the keys are stored in the bundle
    /// (`<rendition>/keys/key-<n>.key`) and the local playlists point at them. Needed for SAMPLE-AES,
    /// which cannot be decrypted without demuxing.
    KeepEncrypted,
}

/// What happens when a segment cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IntegrityPolicy {
    /// The download fails, naming the segment (the default).
    #[default]
    Strict,
    /// The segment is recorded as a gap in the manifest, the download goes on, and the asset is marked
    /// incomplete. Never silent: a downloading task reports every gap as an event.
    Tolerant,
}

impl IntegrityPolicy {
    /// Whether a segment that cannot be had is recorded as a gap (and the download goes on) rather than
    /// failing the download.
    pub fn records_gaps(self) -> bool {
        match self {
            Self::Strict => false,
            Self::Tolerant => true,
        }
    }
}

/// The kind of a rendition, as a bundle stores it.
///
/// Closed: these are the kinds the bundle format (of [`FORMAT_VERSION`](crate::FORMAT_VERSION)) stores, so
/// the crates above match them exhaustively; another kind would be another format. Closed captions are
/// carried inside the video and never stored as a rendition of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(
    clippy::exhaustive_enums,
    reason = "the kinds of the bundle format: a new one is a new format version"
)]
pub enum RenditionKind {
    /// A variant stream (video, or audio-only variant), or an `EXT-X-MEDIA` video rendition.
    Video,
    /// An `EXT-X-MEDIA` audio rendition.
    Audio,
    /// An `EXT-X-MEDIA` subtitles rendition.
    Subtitles,
}

impl RenditionKind {
    /// A lower-case name for people: `video`, `audio` or `subtitles`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Subtitles => "subtitles",
        }
    }
}

/// The container of a rendition's segments, which gives their file extension.
///
/// Players (ffmpeg among them) look at segment extensions, so files are named for what they hold; the
/// extension is never taken from a remote URI as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MediaFormat {
    /// MPEG-2 transport stream (`.ts`).
    Ts,
    /// Fragmented MP4 (`.m4s` segments, `.mp4` initialization sections).
    Fmp4,
    /// Packed AAC audio (`.aac`).
    Aac,
    /// Packed AC-3 audio (`.ac3`).
    Ac3,
    /// Packed E-AC-3 audio (`.eac3`).
    Eac3,
    /// MP3 audio (`.mp3`).
    Mp3,
    /// WebVTT subtitles (`.vtt`).
    WebVtt,
}

impl MediaFormat {
    /// The file extension of media segments.
    pub fn segment_extension(self) -> &'static str {
        match self {
            Self::Ts => "ts",
            Self::Fmp4 => "m4s",
            Self::Aac => "aac",
            Self::Ac3 => "ac3",
            Self::Eac3 => "eac3",
            Self::Mp3 => "mp3",
            Self::WebVtt => "vtt",
        }
    }

    /// The file extension of initialization sections.
    pub fn init_extension(self) -> &'static str {
        match self {
            Self::Fmp4 => "mp4",
            other => other.segment_extension(),
        }
    }

    /// Guesses the format from a URI's path extension (query and fragment ignored), for example
    /// `seg1.m4s?token=x` gives [`MediaFormat::Fmp4`]. `None` when the extension is not a known one.
    pub fn from_uri(uri: &str) -> Option<Self> {
        let path = uri.split(['?', '#']).next().unwrap_or(uri);
        let name = path.rsplit('/').next().unwrap_or(path);
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "ts" | "m2ts" | "mts" | "mpegts" => Self::Ts,
            "m4s" | "mp4" | "m4v" | "m4a" | "cmfv" | "cmfa" | "cmft" | "fmp4" => Self::Fmp4,
            "aac" => Self::Aac,
            "ac3" => Self::Ac3,
            "eac3" | "ec3" => Self::Eac3,
            "mp3" => Self::Mp3,
            "vtt" | "webvtt" => Self::WebVtt,
            _ => return None,
        })
    }
}

/// One entry of a rendition's plan: a media segment or an initialization section, in playlist order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlannedSegment {
    /// Media segment or initialization section.
    pub kind: SegmentKind,
    /// The discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// The media sequence number (for an initialization section: that of the first segment it applies to).
    pub media_sequence: u64,
    /// The byte range, when the resource is a sub-range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_range: Option<ByteRange>,
    /// The duration in seconds (0 for an initialization section).
    #[serde(default)]
    pub duration: f64,
    /// The length the stored bytes must have, when known in advance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_length: Option<u64>,
    /// The absolute URI it was planned from (for information and resume; never used as a path).
    #[serde(default)]
    pub uri: String,
}

impl PlannedSegment {
    /// A media segment.
    pub fn media(
        discontinuity_sequence: u64,
        media_sequence: u64,
        duration: f64,
        uri: impl Into<String>,
    ) -> Self {
        Self {
            kind: SegmentKind::Media,
            discontinuity_sequence,
            media_sequence,
            byte_range: None,
            duration,
            expected_length: None,
            uri: uri.into(),
        }
    }

    /// An initialization section (`EXT-X-MAP`), in force from the media segment at these sequences.
    pub fn init(discontinuity_sequence: u64, media_sequence: u64, uri: impl Into<String>) -> Self {
        Self { kind: SegmentKind::Init, ..Self::media(discontinuity_sequence, media_sequence, 0.0, uri) }
    }

    /// Sets the byte range.
    #[must_use]
    pub fn byte_range(mut self, range: ByteRange) -> Self {
        self.byte_range = Some(range);
        self
    }

    /// Sets the expected stored length.
    #[must_use]
    pub fn expected_length(mut self, length: u64) -> Self {
        self.expected_length = Some(length);
        self
    }

    /// This entry's identity within `rendition`.
    pub fn id(&self, rendition: &RenditionId) -> SegmentId {
        SegmentId {
            rendition: rendition.clone(),
            kind: self.kind,
            discontinuity_sequence: self.discontinuity_sequence,
            media_sequence: self.media_sequence,
            byte_range: self.byte_range,
        }
    }
}

/// One rendition to store: its description, its source playlist and its segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RenditionPlan {
    /// The local identifier (the folder name).
    pub id: RenditionId,
    /// Video variant, audio or subtitles.
    pub kind: RenditionKind,
    /// Whether the rendition belongs to the primary selection (what must be complete for the asset to be
    /// playable offline); auxiliary renditions are extra languages and the like.
    #[serde(default)]
    pub primary: bool,
    /// The container of its segments.
    pub format: MediaFormat,
    /// The media playlist URL.
    pub url: String,
    /// `NAME` of the rendition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `LANGUAGE` of the rendition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `GROUP-ID` of the rendition (or of the audio group a variant uses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// `CHARACTERISTICS` of the rendition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characteristics: Option<String>,
    /// `BANDWIDTH` of a variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    /// `CODECS` of a variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<String>,
    /// `RESOLUTION` of a variant, width and height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<(u64, u64)>,
    /// The URI of this rendition exactly as written in the master playlist, so that the local master can
    /// point that entry at the local copy. `None` for an asset downloaded from a media playlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_uri: Option<String>,
    /// The media segments and initialization sections, in the order they appear in the source playlist.
    pub segments: Vec<PlannedSegment>,
    /// The source media playlist's text. Stored in the bundle as `source/<rendition>.m3u8` rather than in
    /// the manifest; empty in a plan read back from a manifest.
    #[serde(skip)]
    pub playlist: String,
}

impl RenditionPlan {
    /// A rendition with its source playlist text and its planned segments (in playlist order).
    pub fn new(
        id: RenditionId,
        kind: RenditionKind,
        format: MediaFormat,
        url: impl Into<String>,
        playlist: impl Into<String>,
        segments: Vec<PlannedSegment>,
    ) -> Self {
        Self {
            id,
            kind,
            primary: false,
            format,
            url: url.into(),
            name: None,
            language: None,
            group_id: None,
            characteristics: None,
            bandwidth: None,
            codecs: None,
            resolution: None,
            master_uri: None,
            segments,
            playlist: playlist.into(),
        }
    }

    /// Plans a rendition from its source media playlist: one entry per `EXT-X-MAP` tag and per media
    /// segment, in playlist order, with the identities, durations, byte ranges and absolute URIs the
    /// playlist gives (URIs resolved against `url`). This is the plan the local playlists are written
    /// against, so a downloader that starts from it cannot disagree with them.
    ///
    /// The format is guessed from the first segment's URI (then `fmp4` when there is an `EXT-X-MAP`,
    /// `webvtt` for subtitles, `ts` otherwise); set [`RenditionPlan::format`] to override it. Expected
    /// lengths are set for byte ranges of unencrypted segments.
    pub fn from_playlist(
        id: RenditionId,
        kind: RenditionKind,
        url: impl Into<String>,
        playlist: impl Into<String>,
    ) -> Result<Self> {
        use stowage_playlist::{MediaPlaylist, ParserOptions};
        let url = url.into();
        let text = playlist.into();
        let invalid =
            |e: stowage_playlist::Error| Error::InvalidPlan { reason: format!("media playlist {url}: {e}") };
        let parsed = MediaPlaylist::parse_with(text.as_str(), &ParserOptions::lenient()).map_err(invalid)?;
        let resolved = parsed.playlist.resolve(Some(&url)).map_err(invalid)?;
        let mut segments = Vec::with_capacity(resolved.segments.len() + 1);
        let mut last_map: Option<&stowage_playlist::Map<'_>> = None;
        let range = |r: stowage_playlist::ByteRange| ByteRange::new(r.offset.unwrap_or(0), r.length);
        for s in &resolved.segments {
            let encrypted = !s.keys.is_empty();
            if let Some(map) = &s.map {
                // Each EXT-X-MAP tag is an entry of its own, as in the local playlist it is written to.
                if !last_map.is_some_and(|m| std::ptr::eq(m, map.map)) {
                    let mut init =
                        PlannedSegment::init(s.discontinuity_sequence, s.media_sequence, map.uri.as_ref());
                    if let Some(r) = map.byte_range {
                        init = init.byte_range(range(r));
                        if !encrypted {
                            init = init.expected_length(r.length);
                        }
                    }
                    segments.push(init);
                    last_map = Some(map.map);
                }
            }
            let mut entry = PlannedSegment::media(
                s.discontinuity_sequence,
                s.media_sequence,
                s.duration.to_f64(),
                s.uri.as_ref(),
            );
            if let Some(r) = s.byte_range {
                entry = entry.byte_range(range(r));
                if !encrypted {
                    entry = entry.expected_length(r.length);
                }
            }
            segments.push(entry);
        }
        let first = resolved.segments.first();
        let format = first.and_then(|s| MediaFormat::from_uri(&s.uri)).unwrap_or(match kind {
            RenditionKind::Subtitles => MediaFormat::WebVtt,
            _ if first.is_some_and(|s| s.map.is_some()) => MediaFormat::Fmp4,
            _ => MediaFormat::Ts,
        });
        Ok(Self::new(id, kind, format, url.as_str(), text.as_str(), segments))
    }

    /// Sets the container format (which gives the file extensions).
    #[must_use]
    pub fn format(mut self, format: MediaFormat) -> Self {
        self.format = format;
        self
    }

    /// Marks the rendition as part of the primary selection.
    #[must_use]
    pub fn primary(mut self, primary: bool) -> Self {
        self.primary = primary;
        self
    }

    /// Sets `NAME`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets `LANGUAGE`.
    #[must_use]
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Sets `GROUP-ID`.
    #[must_use]
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets `CHARACTERISTICS`.
    #[must_use]
    pub fn characteristics(mut self, characteristics: impl Into<String>) -> Self {
        self.characteristics = Some(characteristics.into());
        self
    }

    /// Sets `BANDWIDTH`.
    #[must_use]
    pub fn bandwidth(mut self, bandwidth: u64) -> Self {
        self.bandwidth = Some(bandwidth);
        self
    }

    /// Sets `CODECS`.
    #[must_use]
    pub fn codecs(mut self, codecs: impl Into<String>) -> Self {
        self.codecs = Some(codecs.into());
        self
    }

    /// Sets `RESOLUTION`.
    #[must_use]
    pub fn resolution(mut self, width: u64, height: u64) -> Self {
        self.resolution = Some((width, height));
        self
    }

    /// Sets the URI as written in the master playlist.
    #[must_use]
    pub fn master_uri(mut self, uri: impl Into<String>) -> Self {
        self.master_uri = Some(uri.into());
        self
    }

    /// The total duration of the planned media segments, in seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().filter(|s| s.kind == SegmentKind::Media).map(|s| s.duration).sum()
    }

    /// The identities of all planned entries, in order.
    pub fn segment_ids(&self) -> impl Iterator<Item = SegmentId> + '_ {
        self.segments.iter().map(|s| s.id(&self.id))
    }
}

/// What a download was asked for, recorded with the bundle so that a download can be planned, or its
/// choices made again, after a restart: its content configurations (the primary first), each a list of
/// variant qualifiers and media selections written in the downloader's text notation (that of
/// `stowage download --variant` and `--audio`/`--subs`, see `docs/bundle-format.md`). This crate keeps
/// them as text; it does not read them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DownloadRequest {
    /// The content configurations: the primary first, then the auxiliary ones.
    pub contents: Vec<ContentRequest>,
    /// Whether an auxiliary content may share the primary content's variant rather than add one.
    #[serde(default = "yes")]
    pub optimize_auxiliary: bool,
}

fn yes() -> bool {
    true
}

impl DownloadRequest {
    /// A request of these content configurations, the primary first.
    pub fn new(contents: Vec<ContentRequest>) -> Self {
        Self { contents, optimize_auxiliary: true }
    }

    /// Sets whether auxiliary contents may share the primary content's variant.
    #[must_use]
    pub fn optimize_auxiliary(mut self, yes: bool) -> Self {
        self.optimize_auxiliary = yes;
        self
    }
}

/// One content configuration of a [`DownloadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContentRequest {
    /// Variant qualifiers, tried in order (`max-resolution=1280x720,codec=avc1`).
    #[serde(default)]
    pub variants: Vec<String>,
    /// Media selections, each with its kind (`audio:en`, `subtitles:all`).
    #[serde(default)]
    pub media: Vec<String>,
}

impl ContentRequest {
    /// A content configuration of these variant qualifiers and media selections.
    pub fn new(variants: Vec<String>, media: Vec<String>) -> Self {
        Self { variants, media }
    }
}

/// Changes to a bundle's record of its download, made in one write of the manifest: what a new download
/// of the asset asks for (its URL, title, policies and request), and whether the download was cancelled.
/// Unset fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ManifestChanges {
    /// A new source URL.
    pub url: Option<String>,
    /// A new title.
    pub title: Option<String>,
    /// A new storage policy.
    pub policy: Option<StoragePolicy>,
    /// A new integrity policy.
    pub integrity: Option<IntegrityPolicy>,
    /// A new request.
    pub request: Option<DownloadRequest>,
    /// Whether the download is cancelled (see [`Manifest::cancelled`]).
    pub cancelled: Option<bool>,
}

impl ManifestChanges {
    /// No changes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the source URL.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the storage policy.
    #[must_use]
    pub fn policy(mut self, policy: StoragePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets the integrity policy.
    #[must_use]
    pub fn integrity(mut self, integrity: IntegrityPolicy) -> Self {
        self.integrity = Some(integrity);
        self
    }

    /// Sets the request.
    #[must_use]
    pub fn request(mut self, request: DownloadRequest) -> Self {
        self.request = Some(request);
        self
    }

    /// Marks the download cancelled, or not.
    #[must_use]
    pub fn cancelled(mut self, cancelled: bool) -> Self {
        self.cancelled = Some(cancelled);
        self
    }

    /// Applies the changes to `manifest`.
    pub(crate) fn apply(self, manifest: &mut Manifest) {
        if let Some(url) = self.url {
            manifest.asset.url = Some(url);
        }
        if let Some(title) = self.title {
            manifest.asset.title = Some(title);
        }
        if let Some(policy) = self.policy {
            manifest.policy = policy;
        }
        if let Some(integrity) = self.integrity {
            manifest.integrity = integrity;
        }
        if let Some(request) = self.request {
            manifest.request = Some(request);
        }
        if let Some(cancelled) = self.cancelled {
            manifest.cancelled = cancelled;
        }
    }
}

/// Everything a bundle is created with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BundlePlan {
    /// The asset.
    pub asset: AssetInfo,
    /// The renditions to store.
    pub renditions: Vec<RenditionPlan>,
    /// The source master playlist's text, when the asset came from one.
    pub master_playlist: Option<String>,
    /// The URL the source master playlist was read from (after redirects): its query gives the values of
    /// the playlist's `EXT-X-DEFINE:QUERYPARAM` variables when the local playlists are written.
    pub master_url: Option<String>,
    /// Expiry and priority.
    pub policy: StoragePolicy,
    /// Decrypted or ciphertext with keys.
    pub key_policy: KeyPolicy,
    /// Strict or tolerant.
    pub integrity: IntegrityPolicy,
    /// What the download was asked for.
    pub request: Option<DownloadRequest>,
    /// Artwork to keep in the bundle (`artwork.<ext>`).
    pub artwork: Option<Artwork>,
    /// Set when the bundle records a live or EVENT stream: its renditions grow as the recording goes
    /// (see [`Bundle::record_segments`](crate::Bundle::record_segments)).
    pub recording: Option<Recording>,
}

impl BundlePlan {
    /// A plan for `asset` with no renditions yet and default policies.
    ///
    /// A bundle may be created with no renditions: it records a download asked for and not yet planned
    /// (its playlists not read), so that it is found again after a restart. Renditions are added to it
    /// with [`Bundle::add_renditions`](crate::Bundle::add_renditions), the master playlist with
    /// [`Bundle::set_master_playlist`](crate::Bundle::set_master_playlist).
    pub fn new(asset: AssetInfo) -> Self {
        Self {
            asset,
            renditions: Vec::new(),
            master_playlist: None,
            master_url: None,
            policy: StoragePolicy::default(),
            key_policy: KeyPolicy::default(),
            integrity: IntegrityPolicy::default(),
            request: None,
            artwork: None,
            recording: None,
        }
    }

    /// Makes the bundle a recording of a live or EVENT stream.
    #[must_use]
    pub fn recording(mut self, recording: Recording) -> Self {
        self.recording = Some(recording);
        self
    }

    /// Adds a rendition.
    #[must_use]
    pub fn rendition(mut self, rendition: RenditionPlan) -> Self {
        self.renditions.push(rendition);
        self
    }

    /// Sets the source master playlist text.
    #[must_use]
    pub fn master_playlist(mut self, text: impl Into<String>) -> Self {
        self.master_playlist = Some(text.into());
        self
    }

    /// Sets the URL the source master playlist was read from (after redirects).
    #[must_use]
    pub fn master_url(mut self, url: impl Into<String>) -> Self {
        self.master_url = Some(url.into());
        self
    }

    /// Sets the request the download was made with.
    #[must_use]
    pub fn request(mut self, request: DownloadRequest) -> Self {
        self.request = Some(request);
        self
    }

    /// Sets the storage policy.
    #[must_use]
    pub fn policy(mut self, policy: StoragePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the key policy.
    #[must_use]
    pub fn key_policy(mut self, key_policy: KeyPolicy) -> Self {
        self.key_policy = key_policy;
        self
    }

    /// Sets the integrity policy.
    #[must_use]
    pub fn integrity(mut self, integrity: IntegrityPolicy) -> Self {
        self.integrity = integrity;
        self
    }

    /// Sets the artwork kept in the bundle.
    #[must_use]
    pub fn artwork(mut self, artwork: Artwork) -> Self {
        self.artwork = Some(artwork);
        self
    }

    /// Checks names, uniqueness of renditions and of segment identities, durations, and the artwork.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(artwork) = &self.artwork {
            artwork::validate(artwork)?;
        }
        validate_renditions(&self.asset.id, self.renditions.iter())
    }
}

/// Checks the asset's name, the renditions' names and uniqueness, and their entries' identities and
/// durations: what a plan and a manifest read back must both satisfy.
fn validate_renditions<'a>(asset: &str, renditions: impl Iterator<Item = &'a RenditionPlan>) -> Result<()> {
    check_local_name(asset)?;
    let invalid = |reason: String| Err(Error::InvalidPlan { reason });
    let mut ids = std::collections::HashSet::new();
    for r in renditions {
        if !ids.insert(&r.id) {
            return invalid(format!("rendition {} appears twice", r.id));
        }
        if r.id.as_str() == "source" {
            return invalid("`source` is reserved for the bundle's source playlists".into());
        }
        for s in &r.segments {
            if !s.duration.is_finite() || s.duration < 0.0 {
                return invalid(format!("segment {} has duration {}", s.id(&r.id), s.duration));
            }
        }
        // Identities within one rendition differ by their numbers alone: sorted, a repeated one is next to
        // its twin (cheaper than hashing every identity of a large plan).
        let mut keys: Vec<_> = r
            .segments
            .iter()
            .map(|s| (s.kind, s.discontinuity_sequence, s.media_sequence, s.byte_range))
            .collect();
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
            let (kind, d, m, range) = pair[0];
            let mut id = SegmentId::media(r.id.clone(), d, m);
            id.kind = kind;
            id.byte_range = range;
            return invalid(format!("segment {id} appears twice"));
        }
    }
    Ok(())
}

/// What a bundle that records a live or EVENT stream says about the recording: the limits it was started
/// with (so that a recording resumed after a crash keeps them), the holes in it, and why it ended.
///
/// The renditions of a recording grow while it runs: each new segment is added to the plan with
/// [`Bundle::record_segments`](crate::Bundle::record_segments), its source playlist lines appended to the
/// rendition's source playlist (`source/<rendition>.m3u8`, the recorded playlist). Entries are matched
/// with the recorded playlist's segments by position, not by media sequence number, since a recording
/// may skip numbers (a stream whose numbering jumps) that one playlist cannot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recording {
    /// The program date time the recording was asked to start at, when it was.
    #[serde(default, with = "serde_time::option", skip_serializing_if = "Option::is_none")]
    pub start_at: Option<SystemTime>,
    /// The longest span of media to record, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_limit: Option<f64>,
    /// When to stop recording (wall-clock time).
    #[serde(default, with = "serde_time::option", skip_serializing_if = "Option::is_none")]
    pub until: Option<SystemTime>,
    /// How long the stream may bring nothing new (unreachable, or its playlist not changing) before the
    /// recording ends, in seconds; `None`: for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outage: Option<f64>,
    /// Whether a segment that expired during an outage (or while no recorder ran) fails the recording
    /// under the strict integrity policy, instead of being a hole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_on_expiry: bool,
    /// Why the recording ended (`None` while it goes on): for people, such as "the playlist ended
    /// (EXT-X-ENDLIST)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// The holes: stretches of the stream the recording could not have.
    #[serde(default)]
    pub holes: Vec<Hole>,
}

impl Recording {
    /// A recording without limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the program date time to start at.
    #[must_use]
    pub fn start_at(mut self, at: SystemTime) -> Self {
        self.start_at = Some(at);
        self
    }

    /// Sets the longest span of media to record, in seconds.
    #[must_use]
    pub fn duration_limit(mut self, seconds: f64) -> Self {
        self.duration_limit = Some(seconds);
        self
    }

    /// Sets when to stop recording.
    #[must_use]
    pub fn until(mut self, at: SystemTime) -> Self {
        self.until = Some(at);
        self
    }

    /// Sets how long the stream may bring nothing new before the recording ends, in seconds.
    #[must_use]
    pub fn max_outage(mut self, seconds: f64) -> Self {
        self.max_outage = Some(seconds);
        self
    }

    /// Sets whether a segment that expired during an outage fails a strictly checked recording.
    #[must_use]
    pub fn fail_on_expiry(mut self, fail: bool) -> Self {
        self.fail_on_expiry = fail;
        self
    }
}

/// A stretch of a recorded rendition that the recording could not have: segments that left the live
/// playlist while the origin was unreachable or the recording was interrupted, or segments that were
/// listed but could not be fetched before they expired. The rendition's plan holds them as entries recorded
/// as gaps (its local playlist lists them with `EXT-X-GAP`), so that the timeline and the rendition's other
/// segments stay where they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hole {
    /// The rendition.
    pub rendition: RenditionId,
    /// The first and last media sequence numbers missing, as the source numbered them.
    pub media_sequences: (u64, u64),
    /// How many segments are missing.
    pub segments: u64,
    /// Where the hole is on the rendition's timeline, in seconds from the recording's start.
    pub time: TimeRange,
    /// The program date times of the hole's start and end, when the source gave program date times.
    #[serde(default, with = "serde_span", skip_serializing_if = "Option::is_none")]
    pub program_date_times: Option<(SystemTime, SystemTime)>,
    /// Why the segments are missing, for people.
    pub cause: String,
}

impl Hole {
    /// A hole of `segments` segments of `rendition`, numbered `first..=last`, at `time` on its timeline.
    pub fn new(
        rendition: RenditionId,
        (first, last): (u64, u64),
        segments: u64,
        time: TimeRange,
        cause: impl Into<String>,
    ) -> Self {
        Self {
            rendition,
            media_sequences: (first, last),
            segments,
            time,
            program_date_times: None,
            cause: cause.into(),
        }
    }

    /// Sets the program date times of the hole's start and end.
    #[must_use]
    pub fn program_date_times(mut self, start: SystemTime, end: SystemTime) -> Self {
        self.program_date_times = Some((start, end));
        self
    }
}

/// A segment that could not be had, recorded under the tolerant integrity policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Gap {
    /// The missing segment.
    pub segment: SegmentId,
    /// Why it is missing, for people (for example the HTTP status).
    pub reason: String,
}

/// A rendition's state as last recorded in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RenditionState {
    /// Whether every planned entry is finished.
    pub complete: bool,
    /// Entries finished, out of `segments_total`.
    pub segments_finished: usize,
    /// Planned entries.
    pub segments_total: usize,
    /// The playable time ranges.
    pub loaded_time_ranges: Vec<TimeRange>,
}

/// A rendition in the manifest: its plan and its recorded state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RenditionWire")]
#[non_exhaustive]
pub struct ManifestRendition {
    /// The plan.
    #[serde(flatten)]
    pub plan: RenditionPlan,
    /// The state when the manifest was last written.
    pub state: RenditionState,
    /// For a recording: the length in bytes of the recorded source playlist (`source/<rendition>.m3u8`)
    /// that the plan covers. The file only grows; bytes past this length (and past the length the
    /// journal's later `plan` records name) were appended by a recorder that stopped before recording
    /// them, and are cut off when the bundle is next opened for writing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_len: Option<u64>,
}

/// A rendition as written in the manifest: the plan's fields and the state side by side. Reading this and
/// then splitting it is what `#[serde(flatten)]` would do, without the intermediate buffering of the whole
/// rendition (segments included) that flattening costs on reading: a large manifest reads twice as fast.
#[derive(Deserialize)]
struct RenditionWire {
    id: RenditionId,
    kind: RenditionKind,
    #[serde(default)]
    primary: bool,
    format: MediaFormat,
    url: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    characteristics: Option<String>,
    #[serde(default)]
    bandwidth: Option<u64>,
    #[serde(default)]
    codecs: Option<String>,
    #[serde(default)]
    resolution: Option<(u64, u64)>,
    #[serde(default)]
    master_uri: Option<String>,
    segments: Vec<PlannedSegment>,
    state: RenditionState,
    #[serde(default)]
    source_len: Option<u64>,
}

impl From<RenditionWire> for ManifestRendition {
    fn from(w: RenditionWire) -> Self {
        Self {
            plan: RenditionPlan {
                id: w.id,
                kind: w.kind,
                primary: w.primary,
                format: w.format,
                url: w.url,
                name: w.name,
                language: w.language,
                group_id: w.group_id,
                characteristics: w.characteristics,
                bandwidth: w.bandwidth,
                codecs: w.codecs,
                resolution: w.resolution,
                master_uri: w.master_uri,
                segments: w.segments,
                playlist: String::new(),
            },
            state: w.state,
            source_len: w.source_len,
        }
    }
}

/// The contents of `manifest.json`. See `docs/bundle-format.md` for the format.
///
/// The journal, not the manifest, is the record of finished segments: the state fields here are a summary
/// written at creation, on every manifest update (gap, policy change, playlist refresh) and on completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// Always `stowage-bundle`.
    pub format: String,
    /// The format version.
    pub version: u32,
    /// The asset.
    pub asset: AssetInfo,
    /// When the bundle was created.
    #[serde(with = "serde_time")]
    pub created: SystemTime,
    /// When the bundle was last opened for writing or marked as accessed.
    #[serde(with = "serde_time")]
    pub accessed: SystemTime,
    /// Expiry and priority.
    pub policy: StoragePolicy,
    /// Decrypted or ciphertext with keys.
    pub key_policy: KeyPolicy,
    /// Strict or tolerant.
    pub integrity: IntegrityPolicy,
    /// Whether the download is over: every planned entry is finished or recorded as a gap (false while
    /// nothing is planned).
    pub finished: bool,
    /// Whether every planned entry is finished (no gap, nothing missing).
    pub complete: bool,
    /// Bytes of finished segments when the manifest was last written.
    pub size: u64,
    /// Whether a source master playlist is stored (`source/master.m3u8`).
    #[serde(default)]
    pub has_master_playlist: bool,
    /// The URL the source master playlist was read from, after redirects (for its `QUERYPARAM`
    /// variables); `None` in bundles made before it was recorded, which use the asset's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_url: Option<String>,
    /// What the download was asked for, when it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<DownloadRequest>,
    /// Whether the download was cancelled, its partial content kept: a restore does not resume it, and a
    /// new download of the asset continues from it (and clears this).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// The renditions.
    pub renditions: Vec<ManifestRendition>,
    /// Segments recorded as missing.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// The artwork stored in the bundle, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artwork: Option<ArtworkFile>,
    /// Set when the bundle records a live or EVENT stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
}

impl Manifest {
    /// Parses a manifest. `path` is only used to name the file in an error. Never panics on any input.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidManifest { path: path.to_path_buf(), reason };
        // The format and version are checked before anything else is reported, so that a newer bundle gets
        // a clear error, not a complaint about a field this version does not know. They are read on their
        // own only when the whole manifest does not read (a manifest is read in one pass otherwise).
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let check_header = |format: &str, version: u32| {
            if format != FORMAT_NAME {
                return Err(invalid(format!("format is {format:?}, not {FORMAT_NAME:?}")));
            }
            if version == 0 || version > FORMAT_VERSION {
                return Err(Error::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        };
        let manifest: Self = match serde_json::from_slice(bytes) {
            Ok(manifest) => manifest,
            Err(e) => {
                let header: Header = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
                check_header(&header.format, header.version)?;
                return Err(invalid(e.to_string()));
            }
        };
        check_header(&manifest.format, manifest.version)?;
        validate_renditions(&manifest.asset.id, manifest.renditions.iter().map(|r| &r.plan))
            .map_err(|e| invalid(e.to_string()))?;
        if let Some(artwork) = &manifest.artwork {
            artwork.check(path)?;
        }
        Ok(manifest)
    }

    /// The manifest as pretty-printed JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these plain types cannot fail: no maps with non-string keys. Non-finite durations are
        // refused by validation, so serde_json never meets them.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The rendition with this identifier.
    pub fn rendition(&self, id: &RenditionId) -> Option<&ManifestRendition> {
        self.renditions.iter().find(|r| &r.plan.id == id)
    }
}
