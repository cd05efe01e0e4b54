//! Which renditions a task wants: chosen from a master playlist by the configuration, read back from a
//! bundle's manifest, or found again in a fresh master playlist after a refresh.

use stowage_bundle::{RenditionId, RenditionKind};
use stowage_playlist::{MasterPlaylist, resolve_uri};

use crate::Error;
use crate::config::MediaKind;
use crate::selection::ResolvedSelection;

/// A rendition the task wants, before its media playlist is read.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    /// The local identifier.
    pub(crate) id: RenditionId,
    pub(crate) kind: RenditionKind,
    pub(crate) primary: bool,
    /// The absolute URL of its media playlist.
    pub(crate) url: String,
    /// The URI as written in the master playlist.
    pub(crate) master_uri: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) group_id: Option<String>,
    pub(crate) characteristics: Option<String>,
    pub(crate) bandwidth: Option<u64>,
    /// The bandwidth to estimate sizes with before any segment is stored.
    pub(crate) estimate: Option<u64>,
    pub(crate) codecs: Option<String>,
    pub(crate) resolution: Option<(u64, u64)>,
    /// The master playlist's variables, which the media playlist may import (`EXT-X-DEFINE:IMPORT`).
    pub(crate) imports: Vec<(String, String)>,
}

/// Adds the renditions `selection` chooses from the master playlist at `master_url` to those the task
/// wants already (a bundle's, when it is continued), leaving out those it has.
pub(crate) fn add_selected(
    wanted: &mut Vec<Wanted>,
    selection: &ResolvedSelection,
    master_url: &str,
    variables: &[(String, String)],
) -> Result<(), Error> {
    let mut taken: Vec<RenditionId> = wanted.iter().map(|w| w.id.clone()).collect();
    for w in wanted_from_selection(selection, master_url, variables, &mut taken)? {
        if !wanted.iter().any(|have| have.master_uri == w.master_uri) {
            wanted.push(w);
        }
    }
    Ok(())
}

/// The one rendition of an asset given as a media playlist at `url`.
pub(crate) fn wanted_for_media_playlist(url: &str) -> Wanted {
    Wanted {
        // "media" is a valid rendition name (ASCII letters), so this cannot fail.
        id: RenditionId::new("media").expect("a valid name"),
        kind: RenditionKind::Video,
        primary: true,
        url: url.to_owned(),
        master_uri: None,
        name: None,
        language: None,
        group_id: None,
        characteristics: None,
        bandwidth: None,
        estimate: None,
        codecs: None,
        resolution: None,
        imports: Vec::new(),
    }
}

/// The renditions a configuration selects from a master playlist read from `master_url`, which defines
/// `variables`.
pub(crate) fn wanted_from_selection(
    selection: &ResolvedSelection,
    master_url: &str,
    variables: &[(String, String)],
    taken: &mut Vec<RenditionId>,
) -> Result<Vec<Wanted>, Error> {
    let abs = |uri: &str| resolve(master_url, uri);
    let mut out: Vec<Wanted> = Vec::new();
    for (ci, content) in selection.contents.iter().enumerate() {
        let v = &content.variant;
        if out.iter().any(|w| w.master_uri.as_deref() == Some(v.uri.as_str())) {
            continue;
        }
        let id = unique_id(&format!("video-{}", v.index), taken);
        taken.push(id.clone());
        out.push(Wanted {
            id,
            kind: RenditionKind::Video,
            primary: ci == 0,
            url: abs(&v.uri)?,
            master_uri: Some(v.uri.clone()),
            name: None,
            language: None,
            group_id: None,
            characteristics: None,
            bandwidth: Some(v.bandwidth),
            estimate: Some(v.average_bandwidth.unwrap_or(v.bandwidth)),
            codecs: v.codecs.clone(),
            resolution: v.resolution.map(|r| (r.width, r.height)),
            imports: variables.to_vec(),
        });
    }
    for (ci, content) in selection.contents.iter().enumerate() {
        for r in &content.renditions {
            let Some(uri) = &r.uri else { continue };
            if out.iter().any(|w| w.master_uri.as_deref() == Some(uri.as_str())) {
                continue;
            }
            // Closed captions travel inside the video (and have no URI of their own): nothing to store.
            let Some(kind) = r.kind.stored_as() else { continue };
            let label = r.language.clone().unwrap_or_else(|| r.index.to_string());
            let id = unique_id(&format!("{}-{label}", kind_prefix(kind)), taken);
            taken.push(id.clone());
            out.push(Wanted {
                id,
                kind,
                primary: ci == 0,
                url: abs(uri)?,
                master_uri: Some(uri.clone()),
                name: Some(r.name.clone()),
                language: r.language.clone(),
                group_id: Some(r.group_id.clone()),
                characteristics: None,
                bandwidth: None,
                estimate: None,
                codecs: None,
                resolution: None,
                imports: variables.to_vec(),
            });
        }
    }
    Ok(out)
}

/// The renditions of a bundle's manifest, with their media playlist URLs taken from `url` (the master
/// playlist's, fresh) when the asset has one. Their variables come with [`rebind_to_master`].
pub(crate) fn wanted_from_manifest(
    manifest: &stowage_bundle::Manifest,
    url: &str,
    master: bool,
) -> Result<Vec<Wanted>, Error> {
    manifest
        .renditions
        .iter()
        .map(|r| {
            let p = &r.plan;
            let media_url = match (&p.master_uri, master) {
                (Some(uri), true) => resolve(url, uri)?,
                (_, false) => url.to_owned(),
                (None, true) => p.url.clone(),
            };
            Ok(Wanted {
                id: p.id.clone(),
                kind: p.kind,
                primary: p.primary,
                url: media_url,
                master_uri: p.master_uri.clone(),
                name: p.name.clone(),
                language: p.language.clone(),
                group_id: p.group_id.clone(),
                characteristics: p.characteristics.clone(),
                bandwidth: p.bandwidth,
                estimate: p.bandwidth,
                codecs: p.codecs.clone(),
                resolution: p.resolution,
                imports: Vec::new(),
            })
        })
        .collect()
}

/// Finds each wanted rendition in a fresh master playlist by identity and takes its URI from there:
/// a variant by its bandwidth, codecs and resolution, an alternative rendition by its type, group, name
/// and language. Among several equal candidates the one with the same path (signature aside) is taken,
/// else the first. A rendition the fresh playlist no longer has is an error naming it. The renditions
/// take the fresh playlist's `variables` too, for their media playlists to import.
pub(crate) fn rebind_to_master(
    wanted: &mut [Wanted],
    master: &MasterPlaylist<'_>,
    master_url: &str,
    variables: &[(String, String)],
) -> Result<(), Error> {
    for w in wanted.iter_mut() {
        w.imports = variables.to_vec();
        let Some(old) = w.master_uri.clone() else { continue };
        let prefer = |candidates: Vec<&str>| -> Option<String> {
            let same = candidates.iter().find(|u| path_part(u) == path_part(&old));
            same.or(candidates.first()).map(|u| (*u).to_owned())
        };
        let variant = w.group_id.is_none() && w.name.is_none();
        let found = if variant {
            prefer(
                master
                    .variants()
                    .filter(|v| {
                        let inf = &v.stream_inf;
                        inf.bandwidth() == w.bandwidth
                            && inf.codecs() == w.codecs.as_deref()
                            && inf.resolution().map(|r| (r.width, r.height)) == w.resolution
                    })
                    .map(|v| v.uri.as_ref())
                    .collect(),
            )
        } else {
            prefer(
                master
                    .renditions()
                    .filter(|r| {
                        kind_matches(r.media_type(), w.kind)
                            && r.group_id() == w.group_id.as_deref()
                            && r.name() == w.name.as_deref()
                            && r.language() == w.language.as_deref()
                    })
                    .filter_map(|r| r.uri())
                    .collect(),
            )
        };
        let Some(uri) = found else {
            return Err(Error::Playlist {
                uri: master_url.to_owned(),
                message: format!("the fresh master playlist no longer offers rendition {} ({old})", w.id),
                source: None,
            });
        };
        w.url = resolve(master_url, &uri)?;
        w.master_uri = Some(uri);
    }
    Ok(())
}

/// `uri` resolved against the URL of the master playlist it is written in.
fn resolve(master_url: &str, uri: &str) -> Result<String, Error> {
    resolve_uri(master_url, uri).map_err(|e| Error::Playlist {
        uri: master_url.to_owned(),
        message: e.to_string(),
        source: Some(e),
    })
}

/// A local rendition name not yet taken: `base`, or `base-N`.
fn unique_id(base: &str, taken: &[RenditionId]) -> RenditionId {
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .take(48)
        .collect();
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "rendition" } else { clean };
    let mut n = 0usize;
    loop {
        let name = if n == 0 { clean.to_owned() } else { format!("{clean}-{n}") };
        if let Ok(id) = RenditionId::new(name)
            && !taken.contains(&id)
        {
            return id;
        }
        n += 1;
    }
}

/// The start of a rendition's identifier (`video-1`, `audio-en`, `subs-fr`).
fn kind_prefix(kind: RenditionKind) -> &'static str {
    match kind {
        RenditionKind::Video => "video",
        RenditionKind::Audio => "audio",
        RenditionKind::Subtitles => "subs",
    }
}

/// Whether an `EXT-X-MEDIA` rendition of TYPE `media` is stored as `kind`.
fn kind_matches(media: stowage_playlist::MediaType, kind: RenditionKind) -> bool {
    MediaKind::of_type(media).and_then(MediaKind::stored_as) == Some(kind)
}

/// The path of a URI without its query and fragment, to prefer the same resource among equals.
fn path_part(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or(uri)
}
