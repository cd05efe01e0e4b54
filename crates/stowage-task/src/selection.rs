//! Media selection: which variant and renditions a configuration chooses from a master playlist.
//!
//! Each content configuration is resolved on its own. Its variant qualifiers are tried in order; the first
//! that some variant satisfies chooses among the variants satisfying it (highest or lowest bandwidth, as
//! it prefers). When none is satisfied, or there is none, the choice is automatic: the highest
//! `BANDWIDTH`. The resolved variant says which way it was chosen, so a fallback is never silent.
//!
//! Media selections then pick renditions from the chosen variant's own groups (its `AUDIO`, `SUBTITLES`,
//! `CLOSED-CAPTIONS` and `VIDEO` group ids), since only those play with it. Languages match as RFC 4647
//! basic filters (`en` finds `en-US`), with two- and three-letter ISO 639 codes taken as the same
//! language (`en` finds `eng`, `fre` finds `fr`). A selection that matches nothing is an error naming
//! it, except "all". Without any audio selection, the group's default audio rendition is taken.

use stowage_playlist::{AttributeValue, MasterPlaylist};

use crate::Error;
use crate::config::{
    ContentConfiguration, Criterion, DownloadConfiguration, MediaKind, MediaSelection, Preference,
    Resolution, VariantQualifier,
};

/// What a [`DownloadConfiguration`] chose from a master playlist:
/// one [`ResolvedContent`] per content configuration, the primary first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedSelection {
    /// The primary content first, then the auxiliary ones in configuration order.
    pub contents: Vec<ResolvedContent>,
}

impl ResolvedSelection {
    /// The media playlists to fetch, each once: every chosen variant and every chosen rendition that has
    /// a URI of its own, the primary content's first, in the order of [`Self::contents`]. A rendition whose
    /// URI is also a chosen variant's (the main angle of a video group, say) is listed once, as the
    /// variant; renditions carried in the variant's stream (no URI) have no playlist.
    pub fn media_playlists(&self) -> Vec<MediaPlaylistRef<'_>> {
        fn push<'a>(out: &mut Vec<MediaPlaylistRef<'a>>, item: MediaPlaylistRef<'a>) {
            if !out.iter().any(|o| o.uri == item.uri) {
                out.push(item);
            }
        }
        let mut out = Vec::new();
        for (content, resolved) in self.contents.iter().enumerate() {
            push(
                &mut out,
                MediaPlaylistRef {
                    uri: &resolved.variant.uri,
                    content,
                    kind: None,
                    bandwidth: Some(resolved.variant.average_bandwidth.unwrap_or(resolved.variant.bandwidth)),
                },
            );
        }
        for (content, resolved) in self.contents.iter().enumerate() {
            for rendition in &resolved.renditions {
                if let Some(uri) = &rendition.uri {
                    push(
                        &mut out,
                        MediaPlaylistRef { uri, content, kind: Some(rendition.kind), bandwidth: None },
                    );
                }
            }
        }
        out
    }
}

/// A media playlist a resolved selection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaPlaylistRef<'a> {
    /// Its URI as written in the master playlist.
    pub uri: &'a str,
    /// The index of the content configuration that first chose it.
    pub content: usize,
    /// `None` for a variant, the rendition's kind otherwise.
    pub kind: Option<MediaKind>,
    /// The bandwidth to estimate its size with before any segment is fetched: a variant's
    /// `AVERAGE-BANDWIDTH`, or its `BANDWIDTH` (a peak) when it has none. Renditions declare none.
    pub bandwidth: Option<u64>,
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
    /// For an auxiliary content configuration: a variant with the primary content's video, which carries
    /// what the configuration asks, so that no second video is downloaded (see
    /// [`DownloadConfiguration::optimize_auxiliary_contents`]). The primary's own variant when it
    /// carries it.
    PrimaryVideo,
    /// The variant a task downloads already, to which media selections are added.
    Task,
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

/// Resolves `config` against a parsed master playlist: for each content configuration (the primary
/// first), the chosen variant and renditions. See the [module documentation](self) for the rules.
///
/// I-frame variants are never chosen (they are not playable on their own). URIs are returned as written;
/// resolve them against the master playlist's URL.
///
/// ```
/// use stowage_playlist::MasterPlaylist;
/// use stowage_task::config::{ContentConfiguration, DownloadConfiguration, MediaSelection, VariantQualifier};
/// use stowage_task::selection::{ChosenBy, resolve};
///
/// let master = MasterPlaylist::parse(
///     "#EXTM3U\n\
///      #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"en.m3u8\"\n\
///      #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"Français\",LANGUAGE=\"fr\",URI=\"fr.m3u8\"\n\
///      #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO=\"a\"\nlow.m3u8\n\
///      #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,AUDIO=\"a\"\nhigh.m3u8\n",
/// )?;
/// let config = DownloadConfiguration::new(
///     ContentConfiguration::new()
///         .variant_qualifier(VariantQualifier::new().max_bandwidth(1_000_000))
///         .media_selection(MediaSelection::audio_language("fre")),
/// );
/// let resolved = resolve(&config, &master)?;
/// let primary = &resolved.contents[0];
/// assert_eq!((primary.variant.uri.as_str(), primary.variant.chosen_by), ("low.m3u8", ChosenBy::Qualifier(0)));
/// assert_eq!(primary.renditions[0].uri.as_deref(), Some("fr.m3u8"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resolve(
    config: &DownloadConfiguration,
    master: &MasterPlaylist<'_>,
) -> Result<ResolvedSelection, Error> {
    let (variants, renditions) = views(master);
    resolve_views(config, &variants, &renditions)
}

/// The master playlist's variants and renditions as the resolver sees them.
fn views<'m>(master: &'m MasterPlaylist<'_>) -> (Vec<VariantView<'m>>, Vec<RenditionView<'m>>) {
    let variants: Vec<VariantView<'_>> = master
        .variants()
        .map(|v| {
            let inf = &v.stream_inf;
            VariantView {
                uri: &v.uri,
                bandwidth: inf.bandwidth().unwrap_or(0),
                average_bandwidth: inf.average_bandwidth(),
                resolution: inf.resolution(),
                codecs: inf.codecs(),
                video_range: inf.video_range(),
                frame_rate: inf.frame_rate(),
                audio: inf.audio(),
                video: inf.video(),
                subtitles: inf.subtitles(),
                // `CLOSED-CAPTIONS=NONE` (unquoted) says there are none; a quoted "NONE" is a group id.
                closed_captions: inf
                    .attributes()
                    .get("CLOSED-CAPTIONS")
                    .filter(|value| value.is_quoted())
                    .map(AttributeValue::as_str),
            }
        })
        .collect();
    let renditions: Vec<RenditionView<'_>> = master
        .renditions()
        .map(|r| RenditionView {
            kind: MediaKind::of_type(r.media_type()),
            group_id: r.group_id().unwrap_or(""),
            name: r.name().unwrap_or(""),
            language: r.language(),
            assoc_language: r.assoc_language(),
            uri: r.uri(),
            default: r.default().unwrap_or(false),
            characteristics: r.characteristics(),
            channels: r.channels(),
        })
        .collect();
    (variants, renditions)
}

/// A variant as the resolver sees it: the attributes qualifiers look at.
#[derive(Debug, Clone, Default)]
pub(crate) struct VariantView<'a> {
    pub(crate) uri: &'a str,
    pub(crate) bandwidth: u64,
    pub(crate) average_bandwidth: Option<u64>,
    pub(crate) resolution: Option<Resolution>,
    pub(crate) codecs: Option<&'a str>,
    pub(crate) video_range: Option<&'a str>,
    pub(crate) frame_rate: Option<f64>,
    pub(crate) audio: Option<&'a str>,
    pub(crate) video: Option<&'a str>,
    pub(crate) subtitles: Option<&'a str>,
    pub(crate) closed_captions: Option<&'a str>,
}

/// A rendition as the resolver sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RenditionView<'a> {
    /// `None` for a TYPE this crate does not know: never selected.
    pub(crate) kind: Option<MediaKind>,
    pub(crate) group_id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) language: Option<&'a str>,
    pub(crate) assoc_language: Option<&'a str>,
    pub(crate) uri: Option<&'a str>,
    pub(crate) default: bool,
    pub(crate) characteristics: Option<&'a str>,
    pub(crate) channels: Option<&'a str>,
}

impl VariantView<'_> {
    fn group(&self, kind: MediaKind) -> Option<&str> {
        match kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video,
            MediaKind::Subtitles => self.subtitles,
            MediaKind::ClosedCaptions => self.closed_captions,
        }
    }

    fn satisfies(&self, q: &VariantQualifier, renditions: &[RenditionView<'_>]) -> bool {
        let within = |value: Option<u64>, min: Option<u64>, max: Option<u64>| match (min, max) {
            (None, None) => true,
            _ => value.is_some_and(|v| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m)),
        };
        if !within(Some(self.bandwidth), q.min_bandwidth, q.max_bandwidth)
            || !within(self.average_bandwidth, q.min_average_bandwidth, q.max_average_bandwidth)
        {
            return false;
        }
        if let Some(min) = q.min_resolution
            && !self.resolution.is_some_and(|r| r.width >= min.width && r.height >= min.height)
        {
            return false;
        }
        if let Some(max) = q.max_resolution
            && !self.resolution.is_some_and(|r| r.width <= max.width && r.height <= max.height)
        {
            return false;
        }
        if !q.codecs.is_empty() {
            let Some(codecs) = self.codecs else {
                return false;
            };
            let listed: Vec<&str> = codecs.split(',').map(str::trim).collect();
            let has = |prefix: &str| {
                listed
                    .iter()
                    .any(|c| c.len() >= prefix.len() && c[..prefix.len()].eq_ignore_ascii_case(prefix))
            };
            if !q.codecs.iter().all(|prefix| has(prefix.trim())) {
                return false;
            }
        }
        if let Some(range) = q.video_range {
            // The specification makes SDR the value of a variant that does not say.
            let actual = self.video_range.unwrap_or("SDR");
            if !actual.eq_ignore_ascii_case(range.as_str()) {
                return false;
            }
        }
        if q.min_frame_rate.is_some() || q.max_frame_rate.is_some() {
            let Some(rate) = self.frame_rate else {
                return false;
            };
            if q.min_frame_rate.is_some_and(|m| rate < m) || q.max_frame_rate.is_some_and(|m| rate > m) {
                return false;
            }
        }
        if q.min_channels.is_some() || q.max_channels.is_some() {
            let Some(group) = self.audio else {
                return false;
            };
            let fits = renditions
                .iter()
                .filter(|r| r.kind == Some(MediaKind::Audio) && r.group_id == group)
                .filter_map(|r| channel_count(r.channels?))
                .any(|n| q.min_channels.is_none_or(|m| n >= m) && q.max_channels.is_none_or(|m| n <= m));
            if !fits {
                return false;
            }
        }
        true
    }

    /// The order in which variants are preferred: bandwidth, then average bandwidth, then picture size.
    fn rank(&self) -> (u64, u64, u64) {
        let area = self.resolution.map_or(0, |r| r.width.saturating_mul(r.height));
        (self.bandwidth, self.average_bandwidth.unwrap_or(0), area)
    }
}

/// The count of `CHANNELS="6/JOC"`: the first slash-separated parameter.
fn channel_count(channels: &str) -> Option<u32> {
    channels.split('/').next()?.trim().parse().ok()
}

/// Resolves `config` against a master playlist's variants and renditions.
pub(crate) fn resolve_views(
    config: &DownloadConfiguration,
    variants: &[VariantView<'_>],
    renditions: &[RenditionView<'_>],
) -> Result<ResolvedSelection, Error> {
    let mut contents: Vec<ResolvedContent> = Vec::new();
    for content in config.contents() {
        let primary =
            contents.first().filter(|_| config.optimize_auxiliary_contents).map(|p| p.variant.index);
        contents.push(resolve_content(content, variants, renditions, primary)?);
    }
    Ok(ResolvedSelection { contents })
}

/// Resolves the media selections of `content` against the variant at `variant` (an index among the master
/// playlist's variants): the renditions of that variant's groups they choose, and nothing else (no
/// default audio). This is how media selections are added to a task, from the variant it downloads.
pub(crate) fn resolve_for_variant(
    content: &ContentConfiguration,
    master: &MasterPlaylist<'_>,
    variant: usize,
) -> Result<ResolvedContent, Error> {
    let (variants, renditions) = views(master);
    if variant >= variants.len() {
        return Err(Error::NoVariant);
    }
    choose_renditions(content, variant, ChosenBy::Task, &variants, &renditions, false)
}

fn pick<'v>(
    candidates: impl Iterator<Item = (usize, &'v VariantView<'v>)>,
    prefer: Preference,
) -> Option<usize> {
    let mut best: Option<(usize, &VariantView<'_>)> = None;
    for (index, variant) in candidates {
        // Strict comparisons keep the first of equals, so ties go to playlist order.
        let better = best.is_none_or(|(_, b)| match prefer {
            Preference::Highest => variant.rank() > b.rank(),
            Preference::Lowest => variant.rank() < b.rank(),
        });
        if better {
            best = Some((index, variant));
        }
    }
    best.map(|(index, _)| index)
}

/// Resolves one content configuration: its variant (see the module documentation), then its renditions.
/// `primary` is the primary content's variant when this is an auxiliary content that may share its video.
fn resolve_content(
    content: &ContentConfiguration,
    variants: &[VariantView<'_>],
    renditions: &[RenditionView<'_>],
    primary: Option<usize>,
) -> Result<ResolvedContent, Error> {
    if variants.is_empty() {
        return Err(Error::NoVariant);
    }
    // The variants the content may take: those of the first qualifier some variant satisfies, else all.
    let mut chosen = None;
    for (q_index, qualifier) in content.variant_qualifiers.iter().enumerate() {
        let candidates: Vec<usize> =
            (0..variants.len()).filter(|&i| variants[i].satisfies(qualifier, renditions)).collect();
        if !candidates.is_empty() {
            chosen = Some((candidates, ChosenBy::Qualifier(q_index), qualifier.prefer));
            break;
        }
    }
    let (candidates, chosen_by, prefer) =
        chosen.unwrap_or_else(|| ((0..variants.len()).collect(), ChosenBy::Automatic, Preference::Highest));
    // An auxiliary content that a variant with the primary's video can serve takes it (the primary's own
    // first): only its renditions are then downloaded, not a second video.
    if let Some(primary) = primary {
        let video = variants[primary].uri;
        let sharing = candidates.iter().copied().filter(|&i| variants[i].uri == video);
        let mut serving: Vec<usize> =
            sharing.filter(|&i| carries(content, &variants[i], renditions)).collect();
        serving.sort_by_key(|&i| i != primary);
        if let Some(&index) = serving.first() {
            return choose_renditions(content, index, ChosenBy::PrimaryVideo, variants, renditions, true);
        }
    }
    let index = pick(candidates.iter().map(|&i| (i, &variants[i])), prefer).ok_or(Error::NoVariant)?;
    choose_renditions(content, index, chosen_by, variants, renditions, true)
}

/// Whether the variant's groups hold a rendition for each of the content's media selections (`all`
/// always holds).
fn carries(
    content: &ContentConfiguration,
    variant: &VariantView<'_>,
    renditions: &[RenditionView<'_>],
) -> bool {
    content.media_selections.iter().all(|selection| {
        selection.criterion == Criterion::All || !matching(selection, variant, renditions).is_empty()
    })
}

/// The renditions of the variant's group for the selection's kind that it chooses.
fn matching(
    selection: &MediaSelection,
    variant: &VariantView<'_>,
    renditions: &[RenditionView<'_>],
) -> Vec<usize> {
    let kind = selection.kind;
    let group = variant.group(kind);
    let in_group = || {
        renditions
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.kind == Some(kind) && group.is_some_and(|g| r.group_id == g))
    };
    match &selection.criterion {
        Criterion::All => in_group().map(|(i, _)| i).collect(),
        Criterion::Default => default_of(in_group()).into_iter().collect(),
        Criterion::Language(wanted) => in_group()
            .filter(|(_, r)| {
                [r.language, r.assoc_language].into_iter().flatten().any(|l| language_matches(l, wanted))
            })
            .map(|(i, _)| i)
            .collect(),
        Criterion::Name(name) => in_group().filter(|(_, r)| r.name == name).map(|(i, _)| i).collect(),
        Criterion::Characteristics(wanted) => in_group()
            .filter(|(_, r)| {
                let have: Vec<&str> = r.characteristics.unwrap_or("").split(',').map(str::trim).collect();
                wanted.iter().all(|w| have.contains(&w.trim()))
            })
            .map(|(i, _)| i)
            .collect(),
    }
}

/// The renditions `content` chooses from the groups of the variant at `index`, chosen `chosen_by`; with
/// `default_audio`, the group's default audio when no audio is selected.
fn choose_renditions(
    content: &ContentConfiguration,
    index: usize,
    chosen_by: ChosenBy,
    variants: &[VariantView<'_>],
    renditions: &[RenditionView<'_>],
    default_audio: bool,
) -> Result<ResolvedContent, Error> {
    let variant = &variants[index];
    let mut picked: Vec<(usize, Option<usize>)> = Vec::new();
    let mut add = |rendition: usize, by: Option<usize>| {
        if !picked.iter().any(|(r, _)| *r == rendition) {
            picked.push((rendition, by));
        }
    };
    for (s_index, selection) in content.media_selections.iter().enumerate() {
        let matches = matching(selection, variant, renditions);
        if matches.is_empty() && selection.criterion != Criterion::All {
            return Err(Error::NoRenditionMatches {
                kind: selection.kind.as_str(),
                criterion: selection.criterion.to_string(),
                group: variant.group(selection.kind).map(str::to_owned),
            });
        }
        for rendition in matches {
            add(rendition, Some(s_index));
        }
    }
    // A variant is not watchable without its sound: without an audio selection, take the default one.
    if default_audio && !content.media_selections.iter().any(|s| s.kind == MediaKind::Audio) {
        let group = variant.group(MediaKind::Audio);
        let audio = renditions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.kind == Some(MediaKind::Audio) && group.is_some_and(|g| r.group_id == g));
        if let Some(rendition) = default_of(audio) {
            add(rendition, None);
        }
    }
    picked.sort_by_key(|(rendition, _)| *rendition);
    let renditions = picked
        .into_iter()
        .map(|(i, selected_by)| {
            let r = &renditions[i];
            ChosenRendition {
                index: i,
                kind: r.kind.unwrap_or(MediaKind::Audio),
                group_id: r.group_id.to_owned(),
                name: r.name.to_owned(),
                language: r.language.map(str::to_owned),
                uri: r.uri.map(str::to_owned),
                selected_by,
            }
        })
        .collect();
    Ok(ResolvedContent {
        variant: ChosenVariant {
            index,
            uri: variant.uri.to_owned(),
            bandwidth: variant.bandwidth,
            average_bandwidth: variant.average_bandwidth,
            resolution: variant.resolution,
            codecs: variant.codecs.map(str::to_owned),
            frame_rate: variant.frame_rate,
            chosen_by,
        },
        renditions,
    })
}

/// The group's `DEFAULT=YES` rendition, or its first.
fn default_of<'r, 'v: 'r>(mut group: impl Iterator<Item = (usize, &'r RenditionView<'v>)>) -> Option<usize> {
    let mut first = None;
    for (index, rendition) in group.by_ref() {
        if rendition.default {
            return Some(index);
        }
        first.get_or_insert(index);
    }
    first
}

/// ISO 639-1 codes and their ISO 639-2 equivalents (bibliographic and terminology forms), so that `en`
/// finds `LANGUAGE="eng"` and `fre` finds `fr`: playlists in the wild use all three.
const LANGUAGE_ALIASES: &[(&str, &[&str])] = &[
    ("ar", &["ara"]),
    ("bg", &["bul"]),
    ("bn", &["ben"]),
    ("ca", &["cat"]),
    ("cs", &["ces", "cze"]),
    ("cy", &["cym", "wel"]),
    ("da", &["dan"]),
    ("de", &["deu", "ger"]),
    ("el", &["ell", "gre"]),
    ("en", &["eng"]),
    ("es", &["spa"]),
    ("et", &["est"]),
    ("eu", &["eus", "baq"]),
    ("fa", &["fas", "per"]),
    ("fi", &["fin"]),
    ("fr", &["fra", "fre"]),
    ("ga", &["gle"]),
    ("he", &["heb"]),
    ("hi", &["hin"]),
    ("hr", &["hrv"]),
    ("hu", &["hun"]),
    ("id", &["ind"]),
    ("is", &["isl", "ice"]),
    ("it", &["ita"]),
    ("ja", &["jpn"]),
    ("ko", &["kor"]),
    ("lt", &["lit"]),
    ("lv", &["lav"]),
    ("ms", &["msa", "may"]),
    ("nb", &["nob"]),
    ("nl", &["nld", "dut"]),
    ("no", &["nor"]),
    ("pl", &["pol"]),
    ("pt", &["por"]),
    ("ro", &["ron", "rum"]),
    ("ru", &["rus"]),
    ("sk", &["slk", "slo"]),
    ("sl", &["slv"]),
    ("sr", &["srp"]),
    ("sv", &["swe"]),
    ("ta", &["tam"]),
    ("th", &["tha"]),
    ("tr", &["tur"]),
    ("uk", &["ukr"]),
    ("vi", &["vie"]),
    ("zh", &["zho", "chi"]),
];

/// The canonical (two-letter when one exists) lower-case form of a primary language subtag.
fn canonical_primary(subtag: &str) -> String {
    let lower = subtag.to_ascii_lowercase();
    for (short, long) in LANGUAGE_ALIASES {
        if long.contains(&lower.as_str()) {
            return (*short).to_owned();
        }
    }
    lower
}

/// Whether a rendition's language tag `have` matches the wanted tag `want` (RFC 4647 basic filtering:
/// `want` is a prefix of `have` on subtag boundaries, case-insensitively), with ISO 639-1 and 639-2
/// primary subtags treated as the same language.
pub(crate) fn language_matches(have: &str, want: &str) -> bool {
    let have: Vec<&str> = have.trim().split(['-', '_']).collect();
    let want: Vec<&str> = want.trim().split(['-', '_']).collect();
    if want.len() > have.len() || want.first().is_none_or(|p| p.is_empty()) {
        return false;
    }
    if canonical_primary(have[0]) != canonical_primary(want[0]) {
        return false;
    }
    have[1..].iter().zip(&want[1..]).all(|(h, w)| h.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MediaSelection, VideoRange};

    #[test]
    fn languages_match_as_basic_filters_across_iso_639_forms() {
        assert!(language_matches("en", "en"));
        assert!(language_matches("en-US", "en"));
        assert!(language_matches("EN-gb", "en"));
        assert!(language_matches("eng", "en"));
        assert!(language_matches("en", "eng"));
        assert!(language_matches("fr", "fre"));
        assert!(language_matches("fra", "fre"));
        assert!(language_matches("zh-Hant", "chi"));
        assert!(!language_matches("en", "en-US"));
        assert!(!language_matches("en-GB", "en-US"));
        assert!(!language_matches("es", "en"));
        assert!(!language_matches("enm", "en"), "Middle English is another language");
        assert!(!language_matches("en", ""));
    }

    #[test]
    fn channel_counts_read_the_first_parameter() {
        assert_eq!(channel_count("2"), Some(2));
        assert_eq!(channel_count("16/JOC"), Some(16));
        assert_eq!(channel_count("x"), None);
    }

    fn variant(uri: &str, bandwidth: u64, w: u64, h: u64, codecs: &'static str) -> VariantView<'static> {
        VariantView {
            uri: Box::leak(uri.to_owned().into_boxed_str()),
            bandwidth,
            resolution: Some(Resolution::new(w, h)),
            codecs: Some(codecs),
            audio: Some("aud"),
            subtitles: Some("subs"),
            ..VariantView::default()
        }
    }

    fn rendition(
        kind: MediaKind,
        group: &'static str,
        name: &'static str,
        lang: &'static str,
    ) -> RenditionView<'static> {
        RenditionView {
            kind: Some(kind),
            group_id: group,
            name,
            language: Some(lang),
            uri: Some(name),
            ..Default::default()
        }
    }

    fn fixture() -> (Vec<VariantView<'static>>, Vec<RenditionView<'static>>) {
        let variants = vec![
            variant("sd", 800_000, 640, 360, "avc1.4d401e,mp4a.40.2"),
            variant("hd", 3_000_000, 1280, 720, "avc1.64001f,mp4a.40.2"),
            VariantView {
                video_range: Some("PQ"),
                frame_rate: Some(59.94),
                ..variant("uhd", 12_000_000, 3840, 2160, "hvc1.2.4.L150,ec-3")
            },
            variant("fhd", 6_000_000, 1920, 1080, "hvc1.1.6.L120,mp4a.40.2"),
        ];
        let mut surround = rendition(MediaKind::Audio, "aud", "English 5.1", "en");
        surround.channels = Some("6");
        let mut stereo = rendition(MediaKind::Audio, "aud", "English", "en");
        stereo.channels = Some("2");
        stereo.default = true;
        let mut described = rendition(MediaKind::Audio, "aud", "English AD", "en");
        described.characteristics = Some("public.accessibility.describes-video");
        let renditions = vec![
            stereo,
            surround,
            rendition(MediaKind::Audio, "aud", "Français", "fra"),
            described,
            rendition(MediaKind::Subtitles, "subs", "English", "en-US"),
            rendition(MediaKind::Subtitles, "subs", "Deutsch", "de"),
            rendition(MediaKind::Subtitles, "other", "Español", "es"),
        ];
        (variants, renditions)
    }

    fn resolve(content: ContentConfiguration) -> Result<ResolvedContent, Error> {
        let (variants, renditions) = fixture();
        let config = DownloadConfiguration::new(content);
        resolve_views(&config, &variants, &renditions).map(|mut r| r.contents.remove(0))
    }

    #[test]
    fn automatic_takes_the_highest_bandwidth_and_default_audio() {
        let r = resolve(ContentConfiguration::new()).unwrap();
        assert_eq!((r.variant.uri.as_str(), r.variant.chosen_by), ("uhd", ChosenBy::Automatic));
        let names: Vec<(&str, Option<usize>)> =
            r.renditions.iter().map(|r| (r.name.as_str(), r.selected_by)).collect();
        assert_eq!(names, [("English", None)]);
    }

    #[test]
    fn qualifiers_are_tried_in_order() {
        let r = resolve(
            ContentConfiguration::new()
                .variant_qualifier(VariantQualifier::new().codec("av01"))
                .variant_qualifier(
                    VariantQualifier::new().max_resolution(Resolution::new(1920, 1080)).codec("HVC1"),
                )
                .variant_qualifier(VariantQualifier::new()),
        )
        .unwrap();
        assert_eq!((r.variant.uri.as_str(), r.variant.chosen_by), ("fhd", ChosenBy::Qualifier(1)));

        let lowest = VariantQualifier::new().min_bandwidth(1_000_000).prefer(Preference::Lowest);
        let r = resolve(ContentConfiguration::new().variant_qualifier(lowest)).unwrap();
        assert_eq!(r.variant.uri, "hd");

        let hdr = VariantQualifier::new().video_range(VideoRange::Pq).min_frame_rate(50.0);
        assert_eq!(resolve(ContentConfiguration::new().variant_qualifier(hdr)).unwrap().variant.uri, "uhd");
        let sdr = VariantQualifier::new().video_range(VideoRange::Sdr);
        assert_eq!(resolve(ContentConfiguration::new().variant_qualifier(sdr)).unwrap().variant.uri, "fhd");
        // No frame rate declared on the others: a frame rate bound only the UHD variant satisfies.
        let slow = VariantQualifier::new().max_frame_rate(30.0);
        let r = resolve(ContentConfiguration::new().variant_qualifier(slow)).unwrap();
        assert_eq!((r.variant.uri.as_str(), r.variant.chosen_by), ("uhd", ChosenBy::Automatic));
        let surround = VariantQualifier::new().min_channels(6).max_bandwidth(4_000_000);
        assert_eq!(
            resolve(ContentConfiguration::new().variant_qualifier(surround)).unwrap().variant.uri,
            "hd"
        );
        let avg = VariantQualifier::new().min_average_bandwidth(1);
        assert_eq!(
            resolve(ContentConfiguration::new().variant_qualifier(avg)).unwrap().variant.chosen_by,
            ChosenBy::Automatic
        );
    }

    #[test]
    fn media_selections_pick_from_the_variant_groups() {
        let r = resolve(
            ContentConfiguration::new()
                .media_selection(MediaSelection::audio_language("fr"))
                .media_selection(MediaSelection::new(
                    MediaKind::Audio,
                    Criterion::Characteristics(vec!["public.accessibility.describes-video".into()]),
                ))
                .media_selection(MediaSelection::subtitles_all()),
        )
        .unwrap();
        let names: Vec<(&str, Option<usize>)> =
            r.renditions.iter().map(|r| (r.name.as_str(), r.selected_by)).collect();
        // The Spanish subtitles are in another group, which this variant does not use.
        assert_eq!(
            names,
            [("Français", Some(0)), ("English AD", Some(1)), ("English", Some(2)), ("Deutsch", Some(2))]
        );

        let r = resolve(
            ContentConfiguration::new()
                .media_selection(MediaSelection::new(MediaKind::Audio, Criterion::Name("English 5.1".into())))
                .media_selection(MediaSelection::audio_language("en")),
        )
        .unwrap();
        let names: Vec<&str> = r.renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["English", "English 5.1", "English AD"], "each once, in playlist order");
    }

    #[test]
    fn a_selection_matching_nothing_is_an_error_naming_it() {
        let err =
            resolve(ContentConfiguration::new().media_selection(MediaSelection::subtitles_language("es")))
                .unwrap_err();
        match &err {
            Error::NoRenditionMatches { kind, criterion, group } => {
                assert_eq!(
                    (*kind, criterion.as_str(), group.as_deref()),
                    ("subtitles", "language \"es\"", Some("subs"))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("language \"es\""));
        // "All" of something the variant has none of is fine.
        let r = resolve(
            ContentConfiguration::new()
                .media_selection(MediaSelection::new(MediaKind::ClosedCaptions, Criterion::All)),
        );
        assert!(r.is_ok());
    }

    #[test]
    fn media_playlists_are_listed_once() {
        let (variants, renditions) = fixture();
        let config = DownloadConfiguration::new(
            ContentConfiguration::new()
                .media_selection(MediaSelection::audio_language("fr"))
                .media_selection(MediaSelection::subtitles_all()),
        )
        .auxiliary(
            ContentConfiguration::new()
                .variant_qualifier(VariantQualifier::new().max_bandwidth(1_000_000))
                .media_selection(MediaSelection::audio_all()),
        );
        let resolved = resolve_views(&config, &variants, &renditions).unwrap();
        let list: Vec<(&str, usize, Option<MediaKind>)> =
            resolved.media_playlists().iter().map(|p| (p.uri, p.content, p.kind)).collect();
        assert_eq!(
            list,
            [
                ("uhd", 0, None),
                ("sd", 1, None),
                ("Français", 0, Some(MediaKind::Audio)),
                ("English", 0, Some(MediaKind::Subtitles)),
                ("Deutsch", 0, Some(MediaKind::Subtitles)),
                ("English 5.1", 1, Some(MediaKind::Audio)),
                ("English AD", 1, Some(MediaKind::Audio)),
            ]
        );
    }

    #[test]
    fn no_variant_is_an_error() {
        let config = DownloadConfiguration::default();
        assert!(matches!(resolve_views(&config, &[], &[]), Err(Error::NoVariant)));
    }
}
