//! Helpers shared by the end-to-end tests: an origin serving the committed ffmpeg-made fixtures, sessions
//! with short backoffs on each transport, a byte-for-byte check of a bundle against the clear sources, and
//! ffmpeg/ffprobe decoding the bundle's master playlist.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use stowage_bundle::{Bundle, SegmentKind};
use stowage_fetch::{ClientConfig, RetryConfig, TlsConfig};
use stowage_origin::{Fault, FaultRule, Files, HttpVersions, Origin, OriginConfig};
use stowage_task::engine::RetryPolicy;
use stowage_task::{DownloadSession, DownloadTask, SessionConfig, TaskEvent};

/// The committed fixtures: `clear/` and `aes/`.
pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hls")
}

/// How the client reaches the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 over plain TCP (the origin speaks nothing else).
    Http1,
    /// HTTP/2 over plain TCP with prior knowledge.
    H2c,
    /// HTTPS, HTTP/2 negotiated by ALPN, the origin's own authority trusted through the client config.
    H2Tls,
}

impl Transport {
    /// Every transport, in a fixed order.
    pub const ALL: [Self; 3] = [Self::Http1, Self::H2c, Self::H2Tls];

    /// The HTTP version every request must have used.
    pub fn version(self) -> http::Version {
        match self {
            Self::Http1 => http::Version::HTTP_11,
            Self::H2c | Self::H2Tls => http::Version::HTTP_2,
        }
    }
}

/// An origin on `transport` serving `clear/` under `/clear` and `aes/` under `/aes`.
pub fn origin(transport: Transport, seed: u64) -> Origin {
    let files = Files::new();
    files.load_dir("/clear", assets().join("clear")).unwrap();
    files.load_dir("/aes", assets().join("aes")).unwrap();
    let config = OriginConfig::default().seed(seed);
    let config = match transport {
        Transport::Http1 => config.versions(HttpVersions::Http1Only),
        Transport::H2c => config.versions(HttpVersions::Http2Only),
        Transport::H2Tls => {
            config.versions(HttpVersions::Http2Only).tls(stowage_origin::TlsConfig::default())
        }
    };
    Origin::start(files, config).unwrap()
}

/// The fault mix of the robustness target: 5 % of all requests answer 503 (keys and playlists included),
/// 5 % of bodies are cut at a random point, and 20 % of key requests answer 404.
pub fn add_fault_mix(origin: &Origin) {
    let faults = origin.faults();
    faults.add(FaultRule::new(Fault::service_unavailable(None)).probability(0.05));
    faults.add(FaultRule::new(Fault::CutAtRandom).probability(0.05));
    faults.add(FaultRule::new(Fault::status(404)).prefix("/aes/keys/").probability(0.2));
}

/// Fetch-layer settings for `origin` on `transport`, with short backoffs so that retries take
/// milliseconds.
pub fn http(origin: &Origin, transport: Transport) -> ClientConfig {
    let config = ClientConfig::default().retry(
        RetryConfig::default()
            .base_delay(Duration::from_millis(5))
            .max_delay(Duration::from_millis(50))
            .max_retry_after(Duration::from_secs(1)),
    );
    match transport {
        Transport::Http1 => config,
        Transport::H2c => config.http2_prior_knowledge(true),
        Transport::H2Tls => config.tls(
            TlsConfig::default().webpki_roots(false).add_root_certificates_pem(origin.ca_pem().unwrap()),
        ),
    }
}

/// A session config on `store` for `origin`, with short backoffs at both layers.
pub fn config(store: &Path, origin: &Origin, transport: Transport) -> SessionConfig {
    SessionConfig::new(store)
        .http(http(origin, transport))
        .retry(RetryPolicy::default().backoff(Duration::from_millis(5), Duration::from_millis(100)))
}

/// A session on `store` for `origin`.
pub fn session(store: &Path, origin: &Origin, transport: Transport) -> DownloadSession {
    DownloadSession::new(config(store, origin, transport)).unwrap()
}

/// Resumes `task` and collects its events until it ends (30 s at most).
pub async fn run(task: &DownloadTask) -> Vec<TaskEvent> {
    let mut events = task.events();
    task.resume();
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = events.recv().await {
            let end = matches!(event, TaskEvent::Finished { .. } | TaskEvent::Failed(_));
            seen.push(event);
            if end {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await.expect("the task ends within 30 s");
    seen
}

/// The clear source file of a planned URI served by the origin: `/aes/x/y` and `/clear/x/y` both map to
/// `clear/x/y`; the query is ignored.
pub fn clear_source(uri: &str) -> PathBuf {
    let path = uri.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap() + 1..];
    let path = path.split('?').next().unwrap();
    let rest = path.split_once('/').unwrap().1;
    assets().join("clear").join(rest)
}

/// What [`check_bundle`] compared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Compared {
    /// Media segments and init sections.
    pub media: usize,
    /// Subtitle segments.
    pub subtitles: usize,
}

/// Opens the finished bundle at `dir` and checks that it is complete and that every stored entry is byte
/// for byte the clear source (the sub-range of it for byte-range segments).
pub fn check_bundle(dir: &Path) -> Compared {
    let bundle = open_when_released(dir);
    let manifest = bundle.manifest();
    assert!(manifest.finished && manifest.complete, "the bundle is finished and complete");
    assert!(manifest.gaps.is_empty(), "no gaps: {:?}", manifest.gaps);
    let mut compared = Compared::default();
    for r in &manifest.renditions {
        for s in &r.plan.segments {
            let id = s.id(&r.plan.id);
            assert!(bundle.is_finished(&id), "{id:?} is stored");
            let stored = std::fs::read(bundle.segment_path(&id).unwrap()).unwrap();
            let source = std::fs::read(clear_source(&s.uri)).unwrap();
            let expected = match s.byte_range {
                Some(range) => &source[range.offset as usize..(range.offset + range.length) as usize],
                None => &source[..],
            };
            assert!(stored == expected, "{id:?} differs from the clear source of {}", s.uri);
            if s.uri.ends_with(".vtt") || s.uri.contains(".vtt?") {
                compared.subtitles += 1;
            } else if matches!(id.kind, SegmentKind::Media | SegmentKind::Init) {
                compared.media += 1;
            }
        }
    }
    compared
}

/// Opens the bundle for writing once the finished task's driver has let go of it. `DownloadTask::wait`
/// can return a moment before the driver drops its handle on the bundle, whose lock then still answers
/// `Locked`; anything else, or a lock held for more than five seconds, fails.
pub fn open_when_released(dir: &Path) -> Bundle {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Bundle::open(dir) {
            Ok(bundle) => return bundle,
            Err(e) if e.is_locked() && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot open the bundle {}: {e}", dir.display()),
        }
    }
}

/// The streams ffprobe lists for a bundle, and its duration.
#[derive(Debug)]
pub struct Decoded {
    /// (codec type, language tag) of each stream.
    pub streams: Vec<(String, String)>,
    /// The container duration in seconds.
    pub duration: f64,
}

impl Decoded {
    /// Whether a stream of `kind` ("video", "audio", "subtitle") with `language` ("" for none) is listed.
    pub fn has(&self, kind: &str, language: &str) -> bool {
        self.streams.iter().any(|(k, l)| k == kind && l == language)
    }
}

/// Decodes every video and audio frame of `bundle/master.m3u8` with ffmpeg (any decoding error fails),
/// then lists its streams and duration with ffprobe (WebVTT renditions need `-strict experimental`).
pub fn decode(bundle: &Path) -> Decoded {
    let master = bundle.join("master.m3u8");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(&master)
        .args(["-map", "0:v", "-map", "0:a", "-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed (apt-get install -y ffmpeg)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg could not decode {} cleanly: {}",
        master.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-strict", "experimental", "-of", "json", "-show_entries"])
        .arg("stream=codec_type:stream_tags=language:format=duration")
        .arg(&master)
        .output()
        .expect("ffprobe is installed (apt-get install -y ffmpeg)");
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_owned(),
                s["tags"]["language"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let duration = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    Decoded { streams, duration }
}
