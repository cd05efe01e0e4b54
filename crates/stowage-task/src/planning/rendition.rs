//! From a fetched media playlist to the rendition's plan in the bundle and its jobs.
//!
//! Every entry gets its identity from where it sits in its rendition's timeline (discontinuity sequence,
//! media sequence, byte range), never from its URI: URIs are kept beside the identity only to fetch, and are
//! replaced by identity when signed URLs are refreshed.

use std::time::Duration;

use stowage_bundle::{ByteRange, MediaFormat, PlannedSegment, RenditionKind, RenditionPlan};
use stowage_fetch::keys::{KeyPlan, plan_key};
use stowage_playlist::{KeyMethod, MediaPlaylist, MediaTag, ParserOptions};

use super::{Crypto, Job, Wanted};
use crate::Error;
use crate::config::KeyPolicy;

/// A rendition read from its media playlist.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) plan: RenditionPlan,
    pub(crate) jobs: Vec<Job>,
    /// Keys to store in the bundle when keeping ciphertext: (index of the `EXT-X-KEY` tag, key URI).
    pub(crate) keys: Vec<(u32, String)>,
    /// For a live or EVENT playlist being recorded: the recording of it, the plan holding its first
    /// segments only.
    pub(crate) live: Option<super::LiveTrack>,
}

/// How the driver reads a playlist fetched from `url`: leniently (playlists from the wild that players
/// accept), with the URL's query for `EXT-X-DEFINE:QUERYPARAM` and `imports` (a master playlist's
/// variables) for `EXT-X-DEFINE:IMPORT`.
pub(crate) fn parser_options(url: &str, imports: &[(String, String)]) -> ParserOptions {
    let mut options = ParserOptions::lenient();
    let without_fragment = url.split('#').next().unwrap_or(url);
    if let Some((_, query)) = without_fragment.split_once('?') {
        options = options.query(query);
    }
    for (name, value) in imports {
        options = options.import(name.clone(), value.clone());
    }
    options
}

/// Reads a media playlist fetched from `final_url` and builds its rendition plan and jobs.
pub(crate) fn build_rendition(
    wanted: &Wanted,
    rendition: usize,
    text: &str,
    final_url: &str,
    key_policy: KeyPolicy,
) -> Result<Built, Error> {
    let playlist_error = |e: stowage_playlist::Error| Error::Playlist {
        uri: final_url.to_owned(),
        message: e.to_string(),
        source: Some(e),
    };
    let parsed = MediaPlaylist::parse_with(text, &parser_options(final_url, &wanted.imports))
        .map_err(playlist_error)?;
    let playlist = parsed.playlist;
    let resolved = playlist.resolve(Some(final_url)).map_err(playlist_error)?;
    let keep = key_policy == KeyPolicy::KeepEncrypted;

    // The bundle numbers key files by the source playlist's EXT-X-KEY tags with a URI, in written order.
    let key_tags: Vec<*const stowage_playlist::Key<'_>> = playlist
        .tags()
        .filter_map(|t| match t {
            MediaTag::Key(k) if k.uri().is_some() => Some(k as *const _),
            _ => None,
        })
        .collect();
    let key_index = |k: &stowage_playlist::Key<'_>| {
        key_tags.iter().position(|p| std::ptr::eq(*p, k)).and_then(|i| u32::try_from(i).ok())
    };

    let mut segments = Vec::with_capacity(resolved.segments.len() + 1);
    let mut jobs = Vec::with_capacity(resolved.segments.len() + 1);
    let mut keys: Vec<(u32, String)> = Vec::new();
    let mut last_map: Option<*const stowage_playlist::Map<'_>> = None;
    for seg in &resolved.segments {
        // The key in force: the identity one when several KEYFORMATs are offered.
        let key = seg
            .keys
            .iter()
            .find(|k| k.keyformat == "identity")
            .or_else(|| seg.keys.first())
            .filter(|k| k.method != KeyMethod::None);
        let crypto = match key {
            None => Crypto::AsIs,
            Some(k) => {
                let uri = k.uri.as_deref();
                let method = k.key.method_text().unwrap_or_default();
                let keyformat = (k.keyformat != "identity").then_some(k.keyformat);
                match plan_key(method, uri, keyformat, keep) {
                    Err(e) => {
                        return Err(Error::UnsupportedEncryption {
                            uri: uri.map(str::to_owned),
                            message: e.to_string(),
                        });
                    }
                    Ok(KeyPlan::DecryptAes128) if !keep => {
                        Crypto::Aes128 { key_uri: uri.unwrap_or_default().to_owned(), iv: k.iv }
                    }
                    Ok(plan) => {
                        // Kept encrypted: the key goes into the bundle when it can be fetched at all
                        // (FairPlay keys cannot; their local playlist then points at a key file that
                        // only the platform's key system can fill).
                        if plan != KeyPlan::Clear
                            && let (Some(index), Some(uri)) = (key_index(k.key), uri)
                            && (uri.starts_with("http://")
                                || uri.starts_with("https://")
                                || uri.starts_with("data:"))
                            && !keys.iter().any(|(i, _)| *i == index)
                        {
                            keys.push((index, uri.to_owned()));
                        }
                        Crypto::AsIs
                    }
                }
            }
        };
        if let Some(map) = &seg.map {
            let ptr: *const stowage_playlist::Map<'_> = map.map;
            if last_map != Some(ptr) {
                last_map = Some(ptr);
                let range = map.byte_range.map(|r| ByteRange::new(r.offset.unwrap_or(0), r.length));
                let mut entry =
                    PlannedSegment::init(seg.discontinuity_sequence, seg.media_sequence, map.uri.to_string());
                if let Some(r) = range {
                    entry = entry.byte_range(r);
                }
                let init_crypto = match &crypto {
                    // An encrypted initialization section is decrypted with the IV of the key in force.
                    Crypto::Aes128 { key_uri, .. } => Crypto::Aes128 {
                        key_uri: key_uri.clone(),
                        iv: key.and_then(|k| k.key.iv()).unwrap_or([0; 16]),
                    },
                    Crypto::AsIs => Crypto::AsIs,
                };
                let expected = range.filter(|_| init_crypto == Crypto::AsIs).map(|r| r.length);
                jobs.push(Job {
                    rendition,
                    ids: vec![entry.id(&wanted.id)],
                    uri: map.uri.to_string(),
                    range,
                    crypto: init_crypto,
                    start: secs(seg.start),
                    duration: Duration::ZERO,
                    expected,
                    init: true,
                    key: false,
                    source_gap: false,
                });
                segments.push(entry);
            }
        } else {
            last_map = None;
        }
        let duration = seg.duration.to_f64();
        let range = seg.byte_range.map(|r| ByteRange::new(r.offset.unwrap_or(0), r.length));
        let mut entry = PlannedSegment::media(
            seg.discontinuity_sequence,
            seg.media_sequence,
            duration,
            seg.uri.to_string(),
        );
        if let Some(r) = range {
            entry = entry.byte_range(r);
        }
        let expected = range.filter(|_| crypto == Crypto::AsIs).map(|r| r.length);
        if let Some(len) = expected {
            entry = entry.expected_length(len);
        }
        jobs.push(Job {
            rendition,
            ids: vec![entry.id(&wanted.id)],
            uri: seg.uri.to_string(),
            range,
            crypto,
            start: secs(seg.start),
            duration: secs(duration),
            expected,
            init: false,
            key: false,
            source_gap: seg.gap,
        });
        segments.push(entry);
    }

    let format = resolved
        .segments
        .first()
        .and_then(|s| MediaFormat::from_uri(&s.uri))
        .filter(|_| resolved.segments.iter().all(|s| s.map.is_none()))
        .or_else(|| resolved.segments.first().filter(|s| s.map.is_some()).map(|_| MediaFormat::Fmp4))
        .unwrap_or(match wanted.kind {
            RenditionKind::Subtitles => MediaFormat::WebVtt,
            _ => MediaFormat::Ts,
        });
    let mut plan = RenditionPlan::new(
        wanted.id.clone(),
        wanted.kind,
        format,
        final_url.to_owned(),
        text.to_owned(),
        segments,
    )
    .primary(wanted.primary);
    if let Some(v) = &wanted.name {
        plan = plan.name(v.clone());
    }
    if let Some(v) = &wanted.language {
        plan = plan.language(v.clone());
    }
    if let Some(v) = &wanted.group_id {
        plan = plan.group_id(v.clone());
    }
    if let Some(v) = &wanted.characteristics {
        plan = plan.characteristics(v.clone());
    }
    if let Some(v) = wanted.bandwidth {
        plan = plan.bandwidth(v);
    }
    if let Some(v) = &wanted.codecs {
        plan = plan.codecs(v.clone());
    }
    if let Some((w, h)) = wanted.resolution {
        plan = plan.resolution(w, h);
    }
    if let Some(v) = &wanted.master_uri {
        plan = plan.master_uri(v.clone());
    }
    Ok(Built { plan, jobs, keys, live: None })
}

fn secs(seconds: f64) -> Duration {
    if seconds.is_finite() && seconds > 0.0 {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use stowage_bundle::RenditionId;

    use super::*;
    use crate::planning::jobs::{host_of, merge_inits};

    fn wanted() -> Wanted {
        Wanted {
            id: RenditionId::new("video-0").unwrap(),
            kind: RenditionKind::Video,
            primary: true,
            url: "https://cdn.example/v/index.m3u8".into(),
            master_uri: None,
            name: None,
            language: None,
            group_id: None,
            characteristics: None,
            bandwidth: Some(1_000_000),
            estimate: Some(1_000_000),
            codecs: None,
            resolution: None,
            imports: Vec::new(),
        }
    }

    #[test]
    fn identities_come_from_sequences_and_ranges_not_uris() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
                    #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@0\nall.m4s?sig=1\n\
                    #EXTINF:2,\n#EXT-X-BYTERANGE:50\nall.m4s?sig=1\n#EXT-X-ENDLIST\n";
        let built =
            build_rendition(&wanted(), 0, text, "https://cdn.example/v/index.m3u8", KeyPolicy::Decrypt)
                .unwrap();
        assert_eq!(built.jobs.len(), 3);
        assert!(built.jobs[0].init);
        let second = &built.jobs[2].ids[0];
        assert_eq!((second.media_sequence, second.byte_range), (8, Some(ByteRange::new(100, 50))));
        assert_eq!(built.jobs[2].expected, Some(50));
        assert_eq!(built.jobs[2].uri, "https://cdn.example/v/all.m4s?sig=1");
        assert_eq!(built.plan.format, MediaFormat::Fmp4);
    }

    #[test]
    fn sample_aes_is_refused_early_unless_kept() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\"\n\
                    #EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n";
        let url = "https://cdn.example/v/index.m3u8";
        let err = build_rendition(&wanted(), 0, text, url, KeyPolicy::Decrypt).unwrap_err();
        assert!(matches!(err, Error::UnsupportedEncryption { .. }), "{err}");
        let kept = build_rendition(&wanted(), 0, text, url, KeyPolicy::KeepEncrypted).unwrap();
        assert_eq!(kept.jobs[0].crypto, Crypto::AsIs);
        assert_eq!(kept.keys, [(0, "https://cdn.example/v/k".to_owned())]);
    }

    #[test]
    fn variables_come_from_the_query_and_the_master_playlist() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-DEFINE:QUERYPARAM=\"token\"\n\
                    #EXT-X-DEFINE:IMPORT=\"cdn\"\n#EXT-X-MAP:URI=\"{$cdn}/init.mp4?token={$token}\"\n\
                    #EXTINF:2,\n{$cdn}/a.m4s?token={$token}\n#EXT-X-ENDLIST\n";
        let mut w = wanted();
        w.imports = vec![("cdn".to_owned(), "https://edge.example/v".to_owned())];
        let url = "https://cdn.example/v/index.m3u8?a=b&token=abc#frag";
        let built = build_rendition(&w, 0, text, url, KeyPolicy::Decrypt).unwrap();
        assert_eq!(built.jobs[0].uri, "https://edge.example/v/init.mp4?token=abc");
        assert_eq!(built.jobs[1].uri, "https://edge.example/v/a.m4s?token=abc");
    }

    #[test]
    fn shared_maps_are_fetched_once() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\na.m4s\n\
                    #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\nb.m4s\n#EXT-X-ENDLIST\n";
        let built =
            build_rendition(&wanted(), 0, text, "https://cdn.example/v/index.m3u8", KeyPolicy::Decrypt)
                .unwrap();
        assert_eq!(built.jobs.len(), 4);
        let merged = merge_inits(built.jobs);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].ids.len(), 2);
        assert_eq!(host_of("https://user@cdn.example:8443/a?b"), "cdn.example:8443");
    }
}
