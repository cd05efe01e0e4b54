//! From fetched media playlists to the bundle's plan and the driver's jobs.
//!
//! Every entry gets its identity from where it sits in its rendition's timeline (discontinuity sequence,
//! media sequence, byte range), never from its URI: URIs are kept beside the identity only to fetch, and are
//! replaced by identity when signed URLs are refreshed.

use std::collections::HashMap;
use std::time::Duration;

use stowage_bundle::{
    ByteRange, MediaFormat, PlannedSegment, RenditionId, RenditionKind, RenditionPlan, SegmentId,
};
use stowage_fetch::keys::{KeyPlan, plan_key};
use stowage_playlist::{KeyMethod, MediaPlaylist, MediaTag, ParserOptions};

use crate::Error;
use crate::config::KeyPolicy;

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
}

/// How the bytes of a job are turned into what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Crypto {
    /// Stored as fetched (clear content, or ciphertext kept on purpose).
    AsIs,
    /// Decrypted with AES-128-CBC: the key at this URI, this IV.
    Aes128 { key_uri: String, iv: [u8; 16] },
}

/// One fetch: a media segment, or an initialization section stored under one or more identities.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Index of the rendition (in the task's rendition list, which is also the engine's).
    pub(crate) rendition: usize,
    /// The bundle entries the bytes are stored as (several for an initialization section shared by
    /// several `EXT-X-MAP` tags).
    pub(crate) ids: Vec<SegmentId>,
    pub(crate) uri: String,
    pub(crate) range: Option<ByteRange>,
    pub(crate) crypto: Crypto,
    pub(crate) start: Duration,
    pub(crate) duration: Duration,
    /// The stored length, when known before fetching (a clear byte range).
    pub(crate) expected: Option<u64>,
    pub(crate) init: bool,
    /// A decryption key fetched ahead of the segments that need it: `uri` is the key's, `ids` holds the
    /// identity of the first segment that needs it (to re-bind the key URI after a refresh), and nothing
    /// is stored.
    pub(crate) key: bool,
    /// Marked `EXT-X-GAP` in the source playlist: there is nothing to fetch, and the bundle records a gap.
    pub(crate) source_gap: bool,
}

impl Job {
    /// The job for people: rendition, kind, sequences and URI.
    pub(crate) fn describe(&self) -> String {
        let id = &self.ids[0];
        if self.key {
            return format!(
                "key of rendition {} (first needed by discontinuity {}, media sequence {}, {})",
                id.rendition, id.discontinuity_sequence, id.media_sequence, self.uri
            );
        }
        let range = id.byte_range.map(|r| format!(" bytes {}@{}", r.length, r.offset)).unwrap_or_default();
        format!(
            "{} of rendition {} (discontinuity {}, media sequence {}{range}, {})",
            if self.init { "initialization section" } else { "segment" },
            id.rendition,
            id.discontinuity_sequence,
            id.media_sequence,
            self.uri
        )
    }
}

/// A rendition read from its media playlist.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) plan: RenditionPlan,
    pub(crate) jobs: Vec<Job>,
    /// Keys to store in the bundle when keeping ciphertext: (index of the `EXT-X-KEY` tag, key URI).
    pub(crate) keys: Vec<(u32, String)>,
}

/// Reads a media playlist fetched from `final_url` and builds its rendition plan and jobs.
pub(crate) fn build_rendition(
    wanted: &Wanted,
    rendition: usize,
    text: &str,
    final_url: &str,
    key_policy: KeyPolicy,
) -> Result<Built, Error> {
    let playlist_error = |message: String| Error::Playlist { uri: final_url.to_owned(), message };
    let parsed = MediaPlaylist::parse_with(text, &ParserOptions::lenient())
        .map_err(|e| playlist_error(e.to_string()))?;
    let playlist = parsed.playlist;
    let resolved = playlist.resolve(Some(final_url)).map_err(|e| playlist_error(e.to_string()))?;
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
    Ok(Built { plan, jobs, keys })
}

/// Merges initialization sections that are the same resource (URI and byte range) into one job, so that
/// each distinct `EXT-X-MAP` is fetched once, and returns the jobs in plan order.
pub(crate) fn merge_inits(jobs: Vec<Job>) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::with_capacity(jobs.len());
    let mut seen: HashMap<(String, Option<ByteRange>), usize> = HashMap::new();
    for job in jobs {
        if job.init {
            let key = (job.uri.clone(), job.range);
            if let Some(&i) = seen.get(&key)
                && out[i].crypto == job.crypto
            {
                out[i].ids.extend(job.ids);
                continue;
            }
            seen.insert(key, out.len());
        }
        out.push(job);
    }
    out
}

/// The key jobs for `jobs`: one per distinct key URI of the jobs `needed` says are still to fetch, at the
/// earliest start among them, in the order the keys are first needed. `data:` keys need no request and get
/// no job.
pub(crate) fn key_jobs(jobs: &[Job], needed: impl Fn(usize) -> bool) -> Vec<Job> {
    let mut keys: Vec<Job> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let Crypto::Aes128 { key_uri, .. } = &job.crypto else { continue };
        if job.key || job.source_gap || key_uri.starts_with("data:") || !needed(i) {
            continue;
        }
        match seen.get(key_uri.as_str()) {
            Some(&k) => {
                if job.start < keys[k].start {
                    keys[k].start = job.start;
                    keys[k].rendition = job.rendition;
                    keys[k].ids = vec![job.ids[0].clone()];
                }
            }
            None => {
                seen.insert(key_uri, keys.len());
                keys.push(Job {
                    rendition: job.rendition,
                    ids: vec![job.ids[0].clone()],
                    uri: key_uri.clone(),
                    range: None,
                    crypto: Crypto::AsIs,
                    start: job.start,
                    duration: Duration::ZERO,
                    expected: None,
                    init: false,
                    key: true,
                    source_gap: false,
                });
            }
        }
    }
    // Stable: keys first needed at the same time keep the order of the plan.
    keys.sort_by_key(|k| k.start);
    keys
}

/// The host of an absolute URI, for per-host limits.
pub(crate) fn host_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
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
    use super::*;

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
