//! What stowage's test suites share, so that each check is written once: where the committed ffmpeg-made
//! fixtures and the peer corpus are, the snapshot check of data-driven tests, and, with the feature
//! `download`, a byte-for-byte check of a finished bundle against the clear sources, ffmpeg and ffprobe
//! decoding a bundle, running a task to its end, and a disk that fills up on purpose.
//!
//! This crate is for tests only (it panics on anything unexpected, as a test should) and is not
//! published. It does no network IO; the origin that serves the fixtures is `stowage-origin`. Without
//! features it depends on nothing, so that the lowest crates' tests can use it.
//!
//! Environment variables:
//!
//! - `STOWAGE_REQUIRE_CORPUS`: a test that needs the peer corpus fails when it is missing, instead of
//!   being skipped with the reason printed (CI sets it).
//! - `STOWAGE_PEER_CORPUS`: where the peer corpus is, when it is not `shared/peer-fixtures` beside the
//!   repository.
//! - `STOWAGE_BLESS`: the snapshot checks write the expected files instead of comparing (review the diff).
//! - `STOWAGE_SKIP_FFMPEG`: the ffmpeg checks are skipped when ffmpeg is not installed, instead of failing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
#[cfg(feature = "download")]
use std::process::Command;
#[cfg(feature = "download")]
use std::time::{Duration, Instant};

#[cfg(feature = "download")]
use serde_json::Value;
#[cfg(feature = "download")]
use stowage_bundle::{Bundle, SegmentKind};
#[cfg(feature = "download")]
use stowage_task::{DownloadTask, TaskEvent};

/// The repository's root (this crate is `crates/stowage-testkit` in it).
fn repository() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

#[cfg(feature = "download")]
mod full_disk;
mod pass_through;
#[cfg(feature = "download")]
pub use full_disk::FullDisk;

/// The committed fixtures, made by `cargo xtask assets`: the trees named in [`FIXTURES`].
pub fn assets() -> PathBuf {
    repository().join("tests/assets/hls")
}

/// The fixture trees under [`assets`], each as (clear tree, its AES-128 copy):
/// - `clear`/`aes`: three TS variants, an fMP4 variant, a single-file byte-range variant, AAC audio in
///   `en` (440 Hz) and `fr` (660 Hz), WebVTT subtitles in both; 12 s;
/// - `cmaf`/`cmaf-aes`: one fMP4 video rendition and fMP4 AAC audio in `en` and `fr`, media time starting
///   at 10 s, WebVTT subtitles whose cues span segment boundaries; 8 s;
/// - `disc`/`disc-aes`: TS video, audio (`en`, `fr`) and subtitles, each made of two differently encoded
///   parts (6 s, then 4 s of another pattern at another size, timestamps restarting) joined by
///   `EXT-X-DISCONTINUITY`.
pub const FIXTURES: [(&str, &str); 3] = [("clear", "aes"), ("cmaf", "cmaf-aes"), ("disc", "disc-aes")];

/// The fMP4 (CMAF) asset's clear tree.
pub fn cmaf() -> PathBuf {
    assets().join("cmaf")
}

/// The discontinuity asset's clear tree.
pub fn discontinuity() -> PathBuf {
    assets().join("disc")
}

/// The clear source file of a URI served from the fixtures. The first path segment names the tree: a tree
/// of [`FIXTURES`] or its encrypted copy maps to that clear tree (`/disc-aes/x/y` to `disc/x/y`), any
/// other mount (`/aes`, `/clear`, `/seq`...) to `clear`, under any host; a query is ignored.
pub fn clear_source(uri: &str) -> PathBuf {
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = &path[path.find('/').expect("the URI has a path") + 1..];
    let path = path.split('?').next().unwrap_or(path);
    let (mount, rest) = path.split_once('/').expect("the path has a first segment");
    let tree = FIXTURES
        .iter()
        .find(|(clear, encrypted)| mount == *clear || mount == *encrypted)
        .map_or("clear", |(clear, _)| clear);
    assets().join(tree).join(rest)
}

/// The peer corpus: real-world playlists collected by other HLS parsers, kept outside the repository (in
/// `shared/peer-fixtures` beside it, or where `STOWAGE_PEER_CORPUS` says). `None` when it is not there: the
/// test that asked skips what needs it, and the reason is printed (past the test harness's capture, so
/// that a skip is seen). With `STOWAGE_REQUIRE_CORPUS` set, a missing corpus fails the test instead, so that
/// CI never passes by skipping.
#[track_caller]
pub fn peer_corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("STOWAGE_PEER_CORPUS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repository().parent().unwrap_or(Path::new("..")).join("shared/peer-fixtures"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("STOWAGE_REQUIRE_CORPUS").is_none(),
        "the peer corpus is not at {} and STOWAGE_REQUIRE_CORPUS is set (STOWAGE_PEER_CORPUS says where it is)",
        dir.display()
    );
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    // Written to the process's stderr, not through `eprintln!`, which the test harness captures.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped what needs the peer corpus, which is not at {} (STOWAGE_PEER_CORPUS says where it \
         is; STOWAGE_REQUIRE_CORPUS=1 makes it required)",
        dir.display()
    );
    None
}

/// Every playlist file of the peer corpus below `dir`, sorted: all files but notes, licences and the
/// expected parses (`expected/` folders and JSON files).
pub fn corpus_playlists(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("{}: {e}", d.display())).path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "expected") {
                    stack.push(path);
                }
                continue;
            }
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            let skip = name.ends_with(".md") || name.ends_with(".json") || name.starts_with("LICENSE");
            if !skip {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The snapshot check of data-driven tests: each case's rendered output is compared with its expected
/// file, and every difference is reported at the end, all at once. With `STOWAGE_BLESS` set, an expected
/// file that differs or is missing is written instead; review the diff before committing it.
#[derive(Debug)]
pub struct Snapshots {
    bless: bool,
    checked: usize,
    failures: Vec<String>,
}

impl Default for Snapshots {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshots {
    /// A check with nothing compared yet.
    pub fn new() -> Self {
        Self { bless: std::env::var_os("STOWAGE_BLESS").is_some(), checked: 0, failures: Vec::new() }
    }

    /// Compares `actual` with the file `expected` (or writes it, when blessing).
    pub fn check(&mut self, expected: &Path, actual: &str) {
        self.checked += 1;
        let current = std::fs::read_to_string(expected);
        match current {
            Ok(current) if current == actual => {}
            _ if self.bless => {
                std::fs::write(expected, actual).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
            }
            Ok(current) => self
                .failures
                .push(format!("{}:\n--- expected\n{current}--- actual\n{actual}", expected.display())),
            Err(_) => self.failures.push(format!("{}: missing; actual:\n{actual}", expected.display())),
        }
    }

    /// Fails, listing every difference, if any case differed; returns how many were checked.
    pub fn finish(self) -> usize {
        assert!(
            self.failures.is_empty(),
            "{} of {} snapshot(s) differ (STOWAGE_BLESS=1 rewrites them):\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
        self.checked
    }
}

#[cfg(feature = "download")]
/// Resumes `task` and collects its events until their stream ends (30 s at most), checking that the
/// stream ends right after one terminal event, and that the task's state says it ended when that event
/// comes.
pub async fn run(task: &DownloadTask) -> Vec<TaskEvent> {
    let mut events = task.events();
    task.resume();
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = events.recv().await {
            if event.is_terminal() {
                let state = task.state();
                assert!(
                    state.is_terminal() || state == stowage_task::TaskState::Suspended,
                    "{event:?} came while the task was {state:?}"
                );
            }
            assert!(!seen.last().is_some_and(TaskEvent::is_terminal), "{event:?} came after the end");
            seen.push(event);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await.expect("the task's events end within 30 s");
    assert!(seen.last().is_some_and(TaskEvent::is_terminal), "the last event is terminal: {:?}", seen.last());
    seen
}

#[cfg(feature = "download")]
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

#[cfg(feature = "download")]
/// What [`check_bundle`] compared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Compared {
    /// Media segments and init sections.
    pub media: usize,
    /// Subtitle segments.
    pub subtitles: usize,
}

#[cfg(feature = "download")]
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

#[cfg(feature = "download")]
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

#[cfg(feature = "download")]
/// The streams ffprobe lists for a bundle, and its duration.
#[derive(Debug)]
pub struct Decoded {
    /// (codec type, language tag) of each stream.
    pub streams: Vec<(String, String)>,
    /// The container duration in seconds.
    pub duration: f64,
}

#[cfg(feature = "download")]
impl Decoded {
    /// Whether a stream of `kind` ("video", "audio", "subtitle") with `language` ("" for none) is listed.
    pub fn has(&self, kind: &str, language: &str) -> bool {
        self.streams.iter().any(|(k, l)| k == kind && l == language)
    }
}

#[cfg(feature = "download")]
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
        assert_eq!(clear_source("http://127.0.0.1:8/tok/v0/seg1.ts"), clear.join("v0/seg1.ts"));
        assert_eq!(
            clear_source("http://127.0.0.1:8/disc-aes/video0/b000.ts"),
            discontinuity().join("video0/b000.ts")
        );
        assert_eq!(
            clear_source("http://127.0.0.1:8/cmaf/audio-fr/init.mp4"),
            cmaf().join("audio-fr/init.mp4")
        );
    }

    #[test]
    fn the_fixtures_are_where_they_are_said_to_be() {
        for (clear, encrypted) in FIXTURES {
            for tree in [clear, encrypted] {
                assert!(assets().join(tree).join("master.m3u8").is_file(), "{tree}/master.m3u8");
            }
        }
        assert!(cmaf().join("video0/init.mp4").is_file() && discontinuity().join("video0/b000.ts").is_file());
    }

    #[test]
    fn snapshots_compare_and_report_every_difference() {
        let dir = std::env::temp_dir().join(format!("stowage-testkit-snapshots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("same.expected"), "a\n").unwrap();
        std::fs::write(dir.join("other.expected"), "b\n").unwrap();
        let mut snapshots = Snapshots { bless: false, checked: 0, failures: Vec::new() };
        snapshots.check(&dir.join("same.expected"), "a\n");
        snapshots.check(&dir.join("other.expected"), "c\n");
        snapshots.check(&dir.join("missing.expected"), "d\n");
        assert_eq!(snapshots.checked, 3);
        assert_eq!(snapshots.failures.len(), 2, "{:?}", snapshots.failures);
        let mut blessing = Snapshots { bless: true, checked: 0, failures: Vec::new() };
        blessing.check(&dir.join("other.expected"), "c\n");
        blessing.check(&dir.join("missing.expected"), "d\n");
        assert_eq!(blessing.finish(), 2);
        assert_eq!(std::fs::read_to_string(dir.join("other.expected")).unwrap(), "c\n");
        assert_eq!(std::fs::read_to_string(dir.join("missing.expected")).unwrap(), "d\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
