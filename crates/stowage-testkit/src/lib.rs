//! What stowage's test suites share, so that each check is written once: where the committed ffmpeg-made
//! fixtures are and which clear file a served URI stands for, a byte-for-byte check of a finished bundle
//! against those clear sources, ffmpeg and ffprobe decoding a bundle, and running a task to its end.
//!
//! This crate is for tests only (it panics on anything unexpected, as a test should) and is not
//! published. It does no network IO; the origin that serves the fixtures is `stowage-origin`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use stowage_bundle::{Bundle, SegmentKind};
use stowage_task::{DownloadTask, TaskEvent};

/// The committed fixtures (`clear/` and `aes/`), made by `cargo xtask assets`.
pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/assets/hls")
}

/// The clear source file of a URI served from the fixtures: `/aes/x/y` and `/clear/x/y` (under any host)
/// both map to `clear/x/y`; a query is ignored.
pub fn clear_source(uri: &str) -> PathBuf {
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = &path[path.find('/').expect("the URI has a path") + 1..];
    let path = path.split('?').next().unwrap_or(path);
    let rest = path.split_once('/').expect("the path has a first segment").1;
    assets().join("clear").join(rest)
}

/// Resumes `task` and collects its events until it finishes or fails (30 s at most).
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

/// Opens the bundle at `dir` once the task that wrote it has let go of it. `DownloadTask::wait` can return
/// a moment before the driver drops its handle on the bundle, whose lock then still answers `Locked`;
/// anything else, or a lock held for more than five seconds, fails.
pub fn open_when_released(dir: &Path) -> Bundle {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Bundle::open(dir) {
            Ok(bundle) => return bundle,
            Err(e) if e.is_locked() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot open the bundle {}: {e}", dir.display()),
        }
    }
}

/// What [`check_bundle`] compared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Compared {
    /// Media segments and init sections.
    pub media: usize,
    /// Subtitle segments.
    pub subtitles: usize,
}

/// Opens the finished bundle at `dir` and checks that it is finished, complete (no gaps) and that every
/// stored entry is byte for byte its clear source (the sub-range of it for byte-range segments).
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
            let stored = std::fs::read(bundle.segment_path(&id).expect("a stored segment has a path"))
                .expect("read the stored segment");
            let source = std::fs::read(clear_source(&s.uri)).expect("read the clear source");
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

/// Whether ffmpeg and ffprobe can be run. CI installs them; without them a test fails, unless
/// `STOWAGE_SKIP_FFMPEG` is set, so that a missing tool is never a silent pass.
pub fn have_ffmpeg() -> bool {
    let ok = Command::new("ffprobe").arg("-version").output().is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("STOWAGE_SKIP_FFMPEG").is_some(),
        "ffprobe is not installed (apt-get install -y ffmpeg), and STOWAGE_SKIP_FFMPEG is not set"
    );
    ok
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

/// Decodes every video and audio frame of `bundle/master.m3u8` with ffmpeg (any decoding error or
/// complaint fails), then lists its streams and duration with ffprobe (WebVTT renditions need
/// `-strict experimental`).
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
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON");
    let streams = v["streams"]
        .as_array()
        .expect("ffprobe lists streams")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_source_maps_both_trees_and_drops_the_query() {
        let clear = assets().join("clear");
        assert_eq!(clear_source("http://127.0.0.1:8/aes/v0/seg1.ts?t=1"), clear.join("v0/seg1.ts"));
        assert_eq!(clear_source("https://[::1]:9/clear/a/b/c.vtt"), clear.join("a/b/c.vtt"));
    }

    #[test]
    fn the_fixtures_are_where_they_are_said_to_be() {
        assert!(assets().join("clear").is_dir() && assets().join("aes").is_dir());
    }
}
