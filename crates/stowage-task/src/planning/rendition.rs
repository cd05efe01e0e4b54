//! From a fetched media playlist to the rendition's plan in the bundle and its jobs.
//!
//! Every entry gets its identity from where it sits in its rendition's timeline (discontinuity sequence,
//! media sequence, byte range), never from its URI: URIs are kept beside the identity only to fetch, and are
//! replaced by identity when signed URLs are refreshed.

use std::time::Duration;

use stowage_bundle::{ByteRange, MediaFormat, PlannedSegment, RenditionKind, RenditionPlan};
use stowage_fetch::keys::{KeyPlan, plan_key};
use stowage_playlist::{KeyMethod, MediaPlaylist, MediaTag, ParserOptions};

use super::content::Content;
use super::tolerance::{Tolerated, judge};
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
    /// The cosmetic deviations the lenient parse tolerated, for the task to tell.
    pub(crate) tolerated: Tolerated,
    /// For a live or EVENT playlist being recorded: the recording of it, the plan holding its first
    /// segments only.
    pub(crate) live: Option<super::LiveTrack>,
}

/// How the driver reads a playlist fetched from `url`: leniently (playlists from the wild that players
/// accept; what the leniency touches is then judged by [`judge`]), with the URL's query for `EXT-X-DEFINE:QUERYPARAM` and `imports` (a master playlist's
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

/// Refuses the media playlist fetched from `uri` when it lists more than `max` segments, before it is
/// read: reading it would cost memory in proportion. Segments are counted as the parser counts them
/// before it reserves room for them, by their URI lines (lines that are neither tags nor blank).
pub(crate) fn check_segment_count(text: &str, uri: &str, max: usize) -> Result<(), Error> {
    let is_uri_line = |line: &str| !matches!(line.as_bytes().first(), None | Some(b'#' | b'\r'));
    let count = text.split('\n').filter(|l| is_uri_line(l)).count();
    if count <= max {
        return Ok(());
    }
    let limit = stowage_playlist::Error::Limit { limit: stowage_playlist::LimitKind::Segments, max, line: 0 };
    Err(Error::Playlist {
        uri: uri.to_owned(),
        message: format!(
            "it lists {count} segments, more than the limit of {max} for one playlist \
             (SessionConfig::max_playlist_segments)"
        ),
        source: Some(limit),
    })
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
    let tolerated = judge(final_url, parsed.warnings)?;
    let playlist = parsed.playlist;
    let resolved = playlist.resolve(Some(final_url)).map_err(playlist_error)?;
    if resolved.segments.is_empty() {
        // Nothing to download is not a complete download: an asset of no media is an origin's mistake.
        return Err(Error::Playlist {
            uri: final_url.to_owned(),
            message: "the media playlist lists no segment".to_owned(),
            source: None,
        });
    }
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
        // Whole-segment AES-128 kept as fetched hides the container; sample encryption leaves it visible.
        let ciphertext = crypto == Crypto::AsIs && key.is_some_and(|k| k.method == KeyMethod::Aes128);
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
                    content: if ciphertext { Content::Ciphertext } else { Content::of_init(&map.uri) },
                    program_date_time: None,
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
            content: if ciphertext {
                Content::Ciphertext
            } else {
                Content::of_segment(&seg.uri, seg.map.as_ref().map(|m| m.uri.as_ref()), wanted.kind)
            },
            // A recording's jobs get theirs from the live playlist, which knows the dates the segments
            // before a batch set.
            program_date_time: None,
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
    Ok(Built { plan, jobs, keys, tolerated, live: None })
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

    /// A rendition's loaded ranges read the same in its bundle (the progress query and the manifest) as in
    /// the engine that reports them in the task's events: one merge with one tolerance on both sides.
    #[test]
    fn the_manifest_and_the_events_agree_on_loaded_ranges() {
        use stowage_bundle::{AssetInfo, Bundle, BundlePlan, SegmentId, TimeRange};

        use crate::engine::{Engine, EngineConfig};
        use crate::planning::jobs::engine_plan;

        // Segment 1 lasts half a millisecond and segment 4 a second; both are missing. The first hole is
        // below the join tolerance and the second is not, so both sides must see two ranges.
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:7\n#EXTINF:6.006,\na.ts\n#EXTINF:0.0005,\nb.ts\n\
                    #EXTINF:6.006,\nc.ts\n#EXTINF:6.006,\nd.ts\n#EXTINF:1,\ne.ts\n#EXTINF:6,\nf.ts\n\
                    #EXT-X-ENDLIST\n";
        let url = "https://cdn.example/v/index.m3u8";
        let built = build_rendition(&wanted(), 0, text, url, KeyPolicy::Decrypt).unwrap();
        assert_eq!(built.jobs.len(), 6);
        let stored: Vec<SegmentId> = [0, 2, 3, 5].iter().flat_map(|&i| built.jobs[i].ids.clone()).collect();

        let dir = tempfile::tempdir().unwrap();
        let plan = BundlePlan::new(AssetInfo::new("a")).rendition(built.plan.clone());
        let bundle = Bundle::create(dir.path().join("a"), plan).unwrap();
        for id in &stored {
            let mut writer = bundle.segment_writer(id).unwrap();
            writer.write(b"bytes").unwrap();
            writer.finish().unwrap();
        }
        let plan = engine_plan(&[wanted()], &built.jobs, vec![(20, 4)], |id| stored.contains(id), &[None]);
        let engine = Engine::new(EngineConfig::default(), plan).unwrap();

        let from_engine = engine.loaded_ranges(0).to_vec();
        let at = |s: f64| Duration::from_secs_f64(s);
        assert_eq!(from_engine.len(), 2, "{from_engine:?}");
        assert_eq!(from_engine[0].start, Duration::ZERO);
        assert!(from_engine[1].start.abs_diff(at(19.0185)) < Duration::from_micros(1), "{from_engine:?}");
        let rendition = &built.plan.id;
        assert_eq!(bundle.loaded_time_ranges(rendition).unwrap(), from_engine);
        assert_eq!(bundle.manifest().renditions[0].state.loaded_time_ranges, from_engine);
        let loaded: Duration = from_engine.iter().map(|r| r.end - r.start).sum();
        assert_eq!(bundle.progress().renditions[0].loaded_duration, loaded);
        drop(bundle);
        let cache = stowage_bundle::AssetCache::open(dir.path().join("a")).unwrap();
        let expected: Vec<TimeRange> = from_engine;
        assert_eq!(cache.loaded_time_ranges(rendition).unwrap(), expected);
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
