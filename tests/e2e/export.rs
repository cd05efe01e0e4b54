//! Exports of bundles downloaded from the fixtures, checked with ffmpeg and ffprobe: every output decodes
//! without a complaint; its duration is the renditions' declared duration within a frame; audio and video
//! start together; it has the source's frame count; every track carries its language and default flag;
//! the two audio languages are told apart by their tones (440 and 660 Hz); subtitle cues sit where the
//! source puts them, relative to the pictures they go with, within 10 ms; and what is exported without
//! ffmpeg decodes to exactly the frames ffmpeg decodes from the bundle itself.
//!
//! Bundles are downloaded over HTTP from the in-process origin, as a user's would be: the clear asset (TS,
//! byte-range single file), its AES-128 copy with rotating keys (decrypted on download, or kept encrypted and
//! decrypted by the export), the fMP4 (CMAF) asset, and the asset with a discontinuity in every rendition,
//! complete or with gaps. A live stream of the in-process live origin (the clear asset played in a loop,
//! faster than real time) is recorded through an outage that leaves holes, and exported.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Transport;
use serde_json::Value;
use stowage_export::{ExportOptions, ExportReport, Method, Selection, TrackKind, export};
use stowage_origin::live::{LiveConfig, LiveOrigin, LiveSource, Script};
use stowage_origin::{Fault, FaultRule};
use stowage_task::config::{
    IntegrityPolicy, KeyPolicy, MediaSelection, RecordingConfiguration, VariantQualifier,
};
use stowage_task::{ContentConfiguration, DownloadConfiguration};
use stowage_testkit::{assets, have_ffmpeg};

/// One video frame of the fixtures (25 fps), and one AAC frame (1024 samples at 48 kHz).
const FRAME: f64 = 0.04;
const AUDIO_FRAME: f64 = 1024.0 / 48000.0;

/// A bundle downloaded into a temporary store (kept as long as the value lives).
struct Downloaded {
    _store: tempfile::TempDir,
    path: PathBuf,
}

/// Downloads `master` from an origin serving the fixtures, with `config`, failing the requests for
/// `missing` paths (so that a tolerant download records them as gaps).
fn download(master: &str, config: DownloadConfiguration, missing: &[&str]) -> Downloaded {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let origin = common::origin(Transport::Http1, 5);
        for path in missing {
            origin.faults().add(FaultRule::new(Fault::status(404)).path(*path));
        }
        let store = tempfile::tempdir().unwrap();
        let session = common::session(store.path(), &origin, Transport::Http1);
        let task = session.download_task(&origin.url(master), config).unwrap();
        stowage_testkit::run(&task).await;
        let path = task.wait().await.unwrap_or_else(|e| panic!("{master}: {e}"));
        Downloaded { _store: store, path }
    })
}

/// Every audio and subtitle rendition, and the variant of exactly this bandwidth when given.
fn everything(bandwidth: Option<u64>) -> DownloadConfiguration {
    let mut content = ContentConfiguration::new()
        .media_selection(MediaSelection::audio_all())
        .media_selection(MediaSelection::subtitles_all());
    if let Some(b) = bandwidth {
        content = content.variant_qualifier(VariantQualifier::new().min_bandwidth(b).max_bandwidth(b));
    }
    DownloadConfiguration::new(content)
}

fn run(bundle: &Path, options: &ExportOptions) -> ExportReport {
    let mut calls = 0;
    let report = export(bundle, options, |p| {
        assert!(p.bytes_done <= p.bytes_total, "{p:?}");
        calls += 1;
        ControlFlow::Continue(())
    })
    .unwrap_or_else(|e| panic!("export to {}: {e}", options.output.display()));
    assert!(calls >= 2, "progress was reported");
    assert!(options.output.is_file() && !stowage_export::temporary_path(&options.output).exists());
    report
}

/// `-allowed_extensions ALL` for a playlist, whose key files ffmpeg otherwise refuses to open.
fn playlist_options(path: &Path) -> &'static [&'static str] {
    if path.extension().is_some_and(|e| e == "m3u8") { &["-allowed_extensions", "ALL"] } else { &[] }
}

fn ffprobe(args: &[&str], path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(playlist_options(path))
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {args:?} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn number(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_f64()).unwrap_or(f64::NAN)
}

/// `ffmpeg -v error -i OUT -f null -` prints nothing (and, at warning level, nothing about timestamps
/// going backwards).
fn assert_decodes_cleanly(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "warning", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&out.stderr);
    for bad in ["onoton", "out of order", "corrupt", "discontinuity"] {
        assert!(!warnings.contains(bad), "{}: {warnings}", path.display());
    }
}

/// The output's streams: (codec type, language, default flag, title or handler name).
fn streams(path: &Path) -> Vec<(String, String, bool, String)> {
    let v = ffprobe(&["-show_streams"], path);
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let tag = |name: &str| s["tags"][name].as_str().unwrap_or("").to_owned();
            let title = if tag("title").is_empty() { tag("handler_name") } else { tag("title") };
            (
                s["codec_type"].as_str().unwrap().to_owned(),
                tag("language"),
                s["disposition"]["default"].as_i64() == Some(1),
                title,
            )
        })
        .collect()
}

/// Presentation times and durations of a stream's packets, in decode order.
fn packets(path: &Path, stream: &str) -> Vec<(f64, f64, u64)> {
    let v = ffprobe(&["-show_packets", "-select_streams", stream], path);
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (number(&p["pts_time"]), number(&p["duration_time"]), number(&p["size"]) as u64))
        .collect()
}

/// Frames decoded per stream kind, in stream order.
fn frame_counts(path: &Path) -> Vec<(String, u64)> {
    let v = ffprobe(&["-count_frames", "-show_streams"], path);
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] != "subtitle")
        .map(|s| (s["codec_type"].as_str().unwrap().to_owned(), number(&s["nb_read_frames"]) as u64))
        .collect()
}

fn duration(path: &Path) -> f64 {
    number(&ffprobe(&["-show_format"], path)["format"]["duration"])
}

/// The dominant frequency of a second of audio track `n` (from 2 s in), from its zero crossings.
fn tone(path: &Path, n: usize) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", "2", "-i"])
        .arg(path)
        .args(["-map", &format!("0:a:{n}"), "-t", "1", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let samples: Vec<i16> = out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    assert!(samples.len() >= 47_000, "a second of audio: {} samples", samples.len());
    let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 * 48_000.0 / samples.len() as f64
}

/// The MD5 of each decoded frame of `input` (ffmpeg arguments before it) on `map`, in order.
fn frame_hashes(input: &[&str], path: &Path, map: &str) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(playlist_options(path))
        .args(input)
        .arg("-i")
        .arg(path)
        .args(["-map", map, "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_owned())
        .collect()
}

/// The declared duration of a rendition of the bundle (the sum of its `EXTINF`).
fn declared(bundle: &Path, rendition: &str) -> f64 {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let r = manifest["renditions"].as_array().unwrap().iter().find(|r| r["id"] == rendition).unwrap();
    r["segments"].as_array().unwrap().iter().map(|s| s["duration"].as_f64().unwrap_or(0.0)).sum()
}

/// The checks every media output gets: clean decoding, duration, audio and video together, frame counts,
/// tracks tagged, tones.
fn check_media(bundle: &Path, out: &Path, report: &ExportReport) {
    assert_decodes_cleanly(out);
    let media: Vec<_> = report.tracks.iter().filter(|t| t.kind != TrackKind::Subtitles).collect();
    let expected = media.iter().map(|t| declared(bundle, &t.rendition)).fold(0.0, f64::max);
    let got = duration(out);
    assert!((got - expected).abs() <= FRAME, "{}: duration {got}, declared {expected}", out.display());
    let video = media.iter().any(|t| t.kind == TrackKind::Video);
    let audio = media.iter().any(|t| t.kind == TrackKind::Audio);
    if video && audio {
        let v = packets(out, "v:0").iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let a = packets(out, "a:0").iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        assert!((v - a).abs() <= AUDIO_FRAME + 1e-4, "{}: video starts at {v}, audio at {a}", out.display());
    }
    // Frame counts: each track has its rendition's frames (counted by ffprobe on the bundle's playlist).
    let counts = frame_counts(out);
    for (track, (kind, n)) in media.iter().zip(&counts) {
        let source = frame_counts(&bundle.join(&track.rendition).join("index.m3u8"));
        let wanted = source.iter().find(|(k, _)| k == kind).map(|(_, n)| *n);
        assert_eq!(Some(*n), wanted, "{}: frames of {}", out.display(), track.rendition);
    }
    // Tracks tagged as the report says, which is what the bundle says.
    let listed = streams(out);
    assert!(listed.len() >= report.tracks.len(), "{listed:?}");
    for (track, (kind, language, default, name)) in report.tracks.iter().zip(&listed) {
        let kind_name = match track.kind {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
            _ => "subtitle",
        };
        assert_eq!(kind, kind_name, "{listed:?}");
        if track.kind != TrackKind::Video {
            assert_eq!(language, &track.language_code, "{}: {listed:?}", track.rendition);
            assert_eq!(Some(name.as_str()), track.name.as_deref(), "{listed:?}");
        }
        // MPEG-TS has no default flag.
        if report.container != stowage_export::Container::Ts {
            assert_eq!(*default, track.default, "{}: default flag in {listed:?}", track.rendition);
        }
    }
    // The languages are told apart by their tones.
    for (n, track) in media.iter().filter(|t| t.kind == TrackKind::Audio).enumerate() {
        let expected = match track.language.as_deref() {
            Some("en") => 440.0,
            Some("fr") => 660.0,
            other => panic!("unexpected language {other:?}"),
        };
        let got = tone(out, n);
        assert!(
            (got - expected).abs() < 5.0,
            "{}: audio track {n} plays {got} Hz, not {expected}",
            out.display()
        );
    }
}

/// One source cue: its part, its start and end on the part's media clock, its text.
#[derive(Debug, Clone, PartialEq)]
struct SourceCue {
    part: usize,
    start: f64,
    end: f64,
    text: String,
}

fn vtt_time(t: &str) -> f64 {
    let (clock, ms) = t.trim().split_once('.').unwrap();
    let fields: Vec<f64> = clock.split(':').map(|f| f.parse().unwrap()).collect();
    fields.iter().fold(0.0, |acc, f| acc * 60.0 + f) + ms.parse::<f64>().unwrap() / 1000.0
}

/// The cues of a fixture subtitle rendition (`tree/subs-<lang>`) on their parts' media clocks, each once.
fn source_cues(tree: &Path, lang: &str) -> Vec<SourceCue> {
    let folder = tree.join(format!("subs-{lang}"));
    let playlist = std::fs::read_to_string(folder.join("index.m3u8")).unwrap();
    let mut part = 0;
    let mut cues: Vec<SourceCue> = Vec::new();
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            part += 1;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(folder.join(line)).unwrap();
        let (mut mpegts, mut local) = (0.0, 0.0);
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(map) = l.strip_prefix("X-TIMESTAMP-MAP=") {
                for field in map.split(',') {
                    if let Some(v) = field.strip_prefix("MPEGTS:") {
                        mpegts = v.parse::<f64>().unwrap() / 90_000.0;
                    }
                    if let Some(v) = field.strip_prefix("LOCAL:") {
                        local = vtt_time(v);
                    }
                }
            }
            if let Some((a, b)) = l.split_once(" --> ") {
                let cue = SourceCue {
                    part,
                    start: mpegts + vtt_time(a) - local,
                    end: mpegts + vtt_time(b) - local,
                    text: lines[i + 1].to_owned(),
                };
                if !cues.contains(&cue) {
                    cues.push(cue);
                }
            }
        }
    }
    cues
}

/// The first video presentation time of each part of a fixture's video rendition, and its frame count.
fn source_parts(tree: &Path) -> Vec<(f64, usize)> {
    let folder = tree.join("video0");
    let playlist = std::fs::read_to_string(folder.join("index.m3u8")).unwrap();
    let mut parts: Vec<Vec<String>> = vec![Vec::new()];
    let mut init = None;
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            parts.push(Vec::new());
        } else if let Some(map) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            init = Some(map.trim_end_matches('"').to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            parts.last_mut().unwrap().push(line.to_owned());
        }
    }
    parts
        .iter()
        .map(|segments| {
            // The part's segments joined (after the init section, for fMP4) into one file to probe.
            let joined = tempfile::NamedTempFile::new().unwrap();
            let mut bytes = init.as_ref().map(|i| std::fs::read(folder.join(i)).unwrap()).unwrap_or_default();
            for s in segments {
                bytes.extend(std::fs::read(folder.join(s)).unwrap());
            }
            std::fs::write(joined.path(), bytes).unwrap();
            let times: Vec<f64> = packets(joined.path(), "v:0").iter().map(|p| p.0).collect();
            (times.iter().copied().fold(f64::INFINITY, f64::min), times.len())
        })
        .collect()
}

/// Checks the subtitle track `stream` of `out` (or the subtitle file `out`) against the fixture's cues:
/// each cue once, at the same place relative to the video frames of its part, within 10 ms.
fn check_cues(out: &Path, stream: &str, video: &Path, tree: &Path, lang: &str) {
    let source = source_cues(tree, lang);
    let parts = source_parts(tree);
    let mut frames: Vec<f64> = packets(video, "v:0").iter().map(|p| p.0).collect();
    frames.sort_by(f64::total_cmp);
    let mut got: Vec<(f64, f64)> =
        packets(out, stream).iter().filter(|p| p.2 > 2).map(|p| (p.0, p.0 + p.1)).collect();
    got.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(got.len(), source.len(), "{}: {got:?} for {source:?}", out.display());
    for (cue, (start, end)) in source.iter().zip(&got) {
        let first_frame = frames[parts[..cue.part].iter().map(|p| p.1).sum::<usize>()];
        let expected = first_frame + (cue.start - parts[cue.part].0);
        let length = cue.end - cue.start;
        assert!(
            (start - expected).abs() <= 0.010,
            "{}: {cue:?} at {start}, expected {expected}",
            out.display()
        );
        assert!(((end - start) - length).abs() <= 0.010, "{}: {cue:?} lasts {}", out.display(), end - start);
    }
}

fn tmp_out(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn ts_rendition_with_rotating_keys_kept_encrypted_is_decrypted_and_concatenated() {
    if !have_ffmpeg() {
        return;
    }
    let clear =
        download("/aes/video1/index.m3u8", DownloadConfiguration::new(ContentConfiguration::new()), &[]);
    let kept = download(
        "/aes/video1/index.m3u8",
        DownloadConfiguration::new(ContentConfiguration::new()).keys(KeyPolicy::KeepEncrypted),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (tmp_out(&dir, "clear.ts"), tmp_out(&dir, "kept.ts"));
    let report = run(&clear.path, &ExportOptions::new(&a));
    assert_eq!(report.method, Method::TsConcat);
    run(&kept.path, &ExportOptions::new(&b));
    // The kept ciphertext, decrypted by the export with the bundle's rotating keys, gives the same file.
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    check_media(&clear.path, &a, &report);
    let rendition = &report.tracks[0].rendition;
    let source = frame_hashes(&[], &clear.path.join(rendition).join("index.m3u8"), "0:v");
    assert_eq!(frame_hashes(&[], &a, "0:v"), source);
    assert_eq!(source.len(), 300);
}

#[test]
fn byte_range_single_file_variant_to_ts() {
    if !have_ffmpeg() {
        return;
    }
    let bundle = download("/aes/master.m3u8", everything(Some(664_585)), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = tmp_out(&dir, "single.ts");
    let report = run(&bundle.path, &ExportOptions::new(&out).audio(Selection::None));
    assert_eq!(report.method, Method::TsConcat);
    assert_eq!(report.notes.len(), 1, "subtitles left out of .ts: {:?}", report.notes);
    check_media(&bundle.path, &out, &report);
    let source = frame_hashes(&[], &bundle.path.join(&report.tracks[0].rendition).join("index.m3u8"), "0:v");
    assert_eq!(frame_hashes(&[], &out, "0:v"), source);
}

#[test]
fn cmaf_renditions_become_the_tracks_of_one_mp4_without_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let bundle = download("/cmaf-aes/master.m3u8", everything(None), &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = tmp_out(&dir, "cmaf.mp4");
    // Subtitles go through ffmpeg (mov_text); without them the MP4 is made by this crate alone.
    let report =
        run(&bundle.path, &ExportOptions::new(&out).subtitles(Selection::None).ffmpeg("/nonexistent/ffmpeg"));
    assert_eq!(report.method, Method::Fmp4);
    let kinds: Vec<_> = report.tracks.iter().map(|t| (t.kind, t.language_code.as_str(), t.default)).collect();
    assert_eq!(
        kinds,
        [(TrackKind::Video, "und", true), (TrackKind::Audio, "eng", true), (TrackKind::Audio, "fra", false)]
    );
    check_media(&bundle.path, &out, &report);
    for (n, track) in report.tracks.iter().enumerate() {
        let kind = if n == 0 { "v" } else { "a" };
        let source =
            frame_hashes(&[], &bundle.path.join(&track.rendition).join("index.m3u8"), &format!("0:{kind}"));
        assert_eq!(frame_hashes(&[], &out, &format!("0:{n}")), source, "{}", track.rendition);
    }
    // Kept encrypted (init sections included), decrypted by the export: the same file.
    let kept = download("/cmaf-aes/master.m3u8", everything(None).keys(KeyPolicy::KeepEncrypted), &[]);
    let again = tmp_out(&dir, "kept.mp4");
    run(&kept.path, &ExportOptions::new(&again).subtitles(Selection::None));
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
    // The audio alone, as .m4a.
    let m4a = tmp_out(&dir, "cmaf.m4a");
    let report = run(&bundle.path, &ExportOptions::new(&m4a).audio(Selection::parse("fr")));
    assert_eq!(report.method, Method::Fmp4);
    assert_eq!(report.tracks.len(), 1);
    assert!(report.tracks[0].default, "the only audio track is the default one");
    check_media(&bundle.path, &m4a, &report);
}

#[test]
fn ts_asset_to_mp4_and_mkv_with_every_track_tagged() {
    if !have_ffmpeg() {
        return;
    }
    let bundle = download("/aes/master.m3u8", everything(None), &[]);
    let dir = tempfile::tempdir().unwrap();
    for name in ["all.mp4", "all.mkv"] {
        let out = tmp_out(&dir, name);
        let report = run(&bundle.path, &ExportOptions::new(&out));
        assert_eq!(report.method, Method::Ffmpeg);
        let kinds: Vec<_> = report.tracks.iter().map(|t| (t.kind, t.default)).collect();
        assert_eq!(
            kinds,
            [
                (TrackKind::Video, true),
                (TrackKind::Audio, true),
                (TrackKind::Audio, false),
                (TrackKind::Subtitles, false),
                (TrackKind::Subtitles, false)
            ]
        );
        check_media(&bundle.path, &out, &report);
        let clear = assets().join("clear");
        check_cues(&out, "s:0", &out, &clear, "en");
        check_cues(&out, "s:1", &out, &clear, "fr");
    }
}

#[test]
fn discontinuities_become_continuous_timestamps() {
    if !have_ffmpeg() {
        return;
    }
    let bundle = download("/disc-aes/master.m3u8", everything(None), &[]);
    let dir = tempfile::tempdir().unwrap();
    let tree = assets().join("disc");
    // The video alone, concatenated by this crate; then everything through ffmpeg.
    let ts = tmp_out(&dir, "video.ts");
    let report = run(&bundle.path, &ExportOptions::new(&ts).audio(Selection::None));
    assert_eq!(report.method, Method::TsConcat);
    check_media(&bundle.path, &ts, &report);
    let source = frame_hashes(&[], &bundle.path.join(&report.tracks[0].rendition).join("index.m3u8"), "0:v");
    assert_eq!(frame_hashes(&[], &ts, "0:v"), source);
    let times: Vec<f64> = packets(&ts, "v:0").iter().map(|p| p.0).collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]), "timestamps increase across the discontinuity");
    for name in ["all.mkv", "all.mp4"] {
        let out = tmp_out(&dir, name);
        let report = run(&bundle.path, &ExportOptions::new(&out));
        check_media(&bundle.path, &out, &report);
        check_cues(&out, "s:0", &out, &tree, "en");
        check_cues(&out, "s:1", &out, &tree, "fr");
        // The second part's pictures (another size) follow the first part's.
        let v = packets(&out, "v:0");
        assert_eq!(v.len(), 250);
    }
}

#[test]
fn subtitles_to_vtt_and_srt_on_the_presentation_timeline() {
    if !have_ffmpeg() {
        return;
    }
    for (master, tree) in [("/cmaf-aes/master.m3u8", "cmaf"), ("/disc-aes/master.m3u8", "disc")] {
        let bundle = download(master, everything(None), &[]);
        let dir = tempfile::tempdir().unwrap();
        // The picture track the subtitles go with: what a default export holds.
        let video = tmp_out(&dir, "video.mkv");
        run(&bundle.path, &ExportOptions::new(&video).subtitles(Selection::None));
        for (name, lang) in [("en.vtt", "en"), ("fr.srt", "fr")] {
            let out = tmp_out(&dir, name);
            let report = run(&bundle.path, &ExportOptions::new(&out).subtitles(Selection::parse(lang)));
            assert_eq!(report.method, Method::Subtitles);
            check_cues(&out, "s:0", &video, &assets().join(tree), lang);
        }
        let text = std::fs::read_to_string(tmp_out(&dir, "en.vtt")).unwrap();
        if tree == "cmaf" {
            // Cues that span a segment boundary are written in both segments; they come out once, whole.
            assert_eq!(text.matches("First line").count(), 1, "{text}");
            assert!(text.contains("00:00:01.021 --> 00:00:02.521"), "{text}");
        }
    }
}

#[test]
fn gaps_are_refused_unless_allowed_and_then_stay_where_they_are() {
    if !have_ffmpeg() {
        return;
    }
    let config = everything(None).integrity(IntegrityPolicy::Tolerant);
    let bundle = download(
        "/disc-aes/master.m3u8",
        config,
        &["/disc-aes/video0/a001.ts", "/disc-aes/audio-en/b000.ts"],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = tmp_out(&dir, "gaps.mkv");
    let e = export(&bundle.path, &ExportOptions::new(&out), |_| ControlFlow::Continue(())).unwrap_err();
    assert!(e.is_incomplete(), "{e}");
    assert!(e.to_string().contains("--allow-gaps"), "{e}");
    assert!(!out.exists() && !stowage_export::temporary_path(&out).exists());

    let report = run(&bundle.path, &ExportOptions::new(&out).allow_gaps(true));
    let gaps: Vec<_> = report.gaps.iter().map(|g| (g.rendition.as_str(), g.start, g.duration)).collect();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert_decodes_cleanly(&out);
    // Nothing after a gap moved: the video frames after the missing a001.ts keep their times, and the
    // whole keeps its length.
    let video: Vec<f64> = packets(&out, "v:0").iter().map(|p| p.0).collect();
    assert_eq!(video.len(), 250 - 50);
    let jump = video.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!((jump - (2.0 + FRAME)).abs() < 1e-3, "the gap is a 2 s jump, not a shift: {jump}");
    let after = video[50];
    assert!((after - 4.0).abs() < 1e-3, "the frame after the gap is at {after}, as in the source");
    let english: Vec<f64> = packets(&out, "a:0").iter().map(|p| p.0).collect();
    let french: Vec<f64> = packets(&out, "a:1").iter().map(|p| p.0).collect();
    assert!(english.len() < french.len());
    assert!(
        (english.last().unwrap() - french.last().unwrap()).abs() < 1e-3,
        "the English audio ends where the French does"
    );
    assert!((duration(&out) - declared(&bundle.path, &report.tracks[1].rendition)).abs() <= FRAME);

    // The same video rendition alone, concatenated without ffmpeg: the gap mends nothing but counters.
    let ts = tmp_out(&dir, "gaps.ts");
    run(&bundle.path, &ExportOptions::new(&ts).audio(Selection::None).allow_gaps(true));
    assert_decodes_cleanly(&ts);
    let times: Vec<f64> = packets(&ts, "v:0").iter().map(|p| p.0).collect();
    assert_eq!(times.len(), 200);
    assert!((times[50] - times[0] - 4.0).abs() < 1e-3, "{:?}", &times[48..52]);
}

#[test]
fn a_cancelled_export_leaves_no_file() {
    if !have_ffmpeg() {
        return;
    }
    let bundle = download("/clear/master.m3u8", everything(None), &[]);
    let dir = tempfile::tempdir().unwrap();
    for name in ["cancel.ts", "cancel.mkv"] {
        let out = tmp_out(&dir, name);
        let e = export(&bundle.path, &ExportOptions::new(&out).audio(Selection::None), |p| {
            if p.segments_done >= 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        assert!(!out.exists(), "no final file");
        assert!(!stowage_export::temporary_path(&out).exists(), "no temporary file either");
    }
}

#[test]
fn what_cannot_be_done_is_said() {
    let bundle = download("/clear/master.m3u8", everything(None), &[]);
    let dir = tempfile::tempdir().unwrap();
    let fail = |options: ExportOptions| {
        export(&bundle.path, &options, |_| ControlFlow::Continue(())).unwrap_err().to_string()
    };
    let e = fail(ExportOptions::new(tmp_out(&dir, "a.mkv")).ffmpeg("/nonexistent/ffmpeg"));
    assert!(e.contains("ffmpeg") && e.contains("apt-get install ffmpeg") && e.contains("Matroska"), "{e}");
    let e = fail(ExportOptions::new(tmp_out(&dir, "a.mp4")).audio(Selection::parse("de")));
    assert!(e.contains("\"de\"") && e.contains("audio-en (en, English)"), "{e}");
    let e = fail(ExportOptions::new(tmp_out(&dir, "a.vtt")));
    assert!(e.contains("one rendition") && e.contains("--subs"), "{e}");
    let e = fail(ExportOptions::new(tmp_out(&dir, "a.ts")).subtitles(Selection::parse("en")));
    assert!(e.contains("does not carry subtitles"), "{e}");
    let e = fail(ExportOptions::new(tmp_out(&dir, "a.avi")));
    assert!(e.contains("unknown output format"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

/// A live recording's bundle and the origin that played it (kept as long as the value lives).
struct Recorded {
    live: LiveOrigin,
    bundle: Downloaded,
}

/// Records the clear asset played live (a 6-segment window of 2 s segments, twice real time, the source's
/// six segments in a loop with a discontinuity at each loop point) from its live edge to its end at 40 s of
/// stream time, through a black-hole outage from 6 s to 26 s: longer than the window, so the segments that
/// left it meanwhile are holes of the recording. About 20 s of wall time.
fn record_through_an_outage() -> Recorded {
    let source = LiveSource::from_dir(assets().join("clear"), "master.m3u8").unwrap();
    let script = Script::new().black_hole(seconds(6), seconds(20)).end_list(seconds(40));
    let live = LiveOrigin::start(source, LiveConfig::default().window(6).speed(2.0).script(script)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bundle = runtime.block_on(async {
        let store = tempfile::tempdir().unwrap();
        let session =
            stowage_task::DownloadSession::new(stowage_task::SessionConfig::new(store.path())).unwrap();
        let config =
            DownloadConfiguration::new(ContentConfiguration::new()).recording(RecordingConfiguration::new());
        let task = session.download_task(&live.url(), config).unwrap();
        task.resume();
        let wait = tokio::time::timeout(seconds(120), task.wait());
        let path = wait.await.expect("the recording ends within 120 s").expect("the recording");
        Downloaded { _store: store, path }
    });
    Recorded { live, bundle }
}

fn seconds(s: u64) -> std::time::Duration {
    std::time::Duration::from_secs(s)
}

/// Frames decoded from each stored media segment of a rendition, summed (each segment probed alone; the
/// recording repeats the source's segments, so each distinct one is probed once).
fn recorded_frames(bundle: &Path, rendition: &str, kind: &str) -> u64 {
    let opened = stowage_testkit::open_when_released(bundle);
    let manifest = opened.manifest();
    let plan = &manifest.renditions.iter().find(|r| r.plan.id.as_str() == rendition).unwrap().plan;
    let mut known: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut total = 0;
    // The segments of the recording's holes are listed as gaps (`EXT-X-GAP`); every other one is stored.
    let holes = holes(bundle, rendition);
    let in_hole = |n: u64| holes.iter().any(|&((first, last), _)| (first..=last).contains(&n));
    for entry in plan.segments.iter().filter(|e| e.kind == stowage_bundle::SegmentKind::Media) {
        if in_hole(entry.media_sequence) {
            continue;
        }
        let path = opened.segment_path(&entry.id(&plan.id)).expect("every listed segment is stored");
        let bytes = std::fs::read(&path).unwrap();
        let n = match known.iter().find(|(b, _)| *b == bytes) {
            Some((_, n)) => *n,
            None => {
                let counts = frame_counts(&path);
                let n = counts.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
                known.push((bytes, n));
                n
            }
        };
        total += n;
    }
    total
}

/// The holes of a recorded rendition: (first and last media sequence numbers, length in seconds).
fn holes(bundle: &Path, rendition: &str) -> Vec<((u64, u64), f64)> {
    let cache = stowage_bundle::AssetCache::open(bundle).unwrap();
    let recording = cache.manifest().recording.clone().expect("a recording");
    recording
        .holes
        .iter()
        .filter(|h| h.rendition.as_str() == rendition)
        .map(|h| (h.media_sequences, h.time.duration().as_secs_f64()))
        .collect()
}

/// The times at which the presentation jumps forward by more than a second between two frames of
/// `times` (sorted): (the frame before, the frame after).
fn jumps(times: &[f64]) -> Vec<(f64, f64)> {
    times.windows(2).filter(|w| w[1] - w[0] > 1.0).map(|w| (w[0], w[1])).collect()
}

#[test]
fn a_live_recording_with_holes_exports_only_when_allowed_and_each_hole_keeps_its_length() {
    if !have_ffmpeg() {
        return;
    }
    let Recorded { live, bundle } = record_through_an_outage();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.path.join("manifest.json")).unwrap()).unwrap();
    let renditions: Vec<String> = manifest["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    // Every rendition recorded missed what left the window during the outage, and nothing else: the holes
    // are what the origin never listed (its oracle), and every segment listed is stored.
    for id in &renditions {
        let holes = holes(&bundle.path, id);
        assert_eq!(holes.len(), 1, "{id}: {holes:?}");
        let ((first, last), length) = holes[0];
        let origin = &live.renditions()[0].name;
        let span: f64 =
            (first..=last).map(|n| live.segment(origin, n).expect("made").duration.as_secs_f64()).sum();
        assert!((length - span).abs() < 1e-6, "{id}: the hole lasts {length} s, the origin made {span} s");
    }
    let dir = tempfile::tempdir().unwrap();

    // Refused without --allow-gaps, naming the hole; nothing written.
    let out = tmp_out(&dir, "live.mkv");
    let e = export(&bundle.path, &ExportOptions::new(&out), |_| ControlFlow::Continue(())).unwrap_err();
    assert!(e.is_incomplete(), "{e}");
    let ((first, last), _) = holes(&bundle.path, &renditions[0])[0];
    let text = e.to_string();
    assert!(
        text.contains(&renditions[0]) && text.contains(&format!("{first} to {last}")),
        "the error names the hole: {text}"
    );
    assert!(text.contains("--allow-gaps"), "{text}");
    assert!(!out.exists() && !stowage_export::temporary_path(&out).exists());

    for (name, audio) in
        [("live.ts", Selection::None), ("live.mp4", Selection::All), ("live.mkv", Selection::All)]
    {
        let out = tmp_out(&dir, name);
        let report = run(&bundle.path, &ExportOptions::new(&out).audio(audio).allow_gaps(true));
        assert_eq!(report.method, if name == "live.ts" { Method::TsConcat } else { Method::Ffmpeg });
        assert_decodes_cleanly(&out);
        let media: Vec<_> = report.tracks.iter().filter(|t| t.kind != TrackKind::Subtitles).collect();
        assert_eq!(media[0].kind, TrackKind::Video);
        assert_eq!(media.len(), if name == "live.ts" { 1 } else { 2 }, "{:?}", report.tracks);
        // Each track holds every frame of the segments recorded for it.
        for (track, (kind, n)) in media.iter().zip(frame_counts(&out)) {
            assert_eq!(
                n,
                recorded_frames(&bundle.path, &track.rendition, &kind),
                "{name}: {}",
                track.rendition
            );
        }
        // The hole is reported where it is, and stays a jump of its own length: the first frame after it
        // is where the stream put it, one hole after the last frame before it.
        let ((_, _), length) = holes(&bundle.path, &media[0].rendition)[0];
        let mut video: Vec<f64> = packets(&out, "v:0").iter().map(|p| p.0).collect();
        video.sort_by(f64::total_cmp);
        let found = jumps(&video);
        assert_eq!(found.len(), 1, "{name}: one jump, at the hole: {found:?}");
        let (before, after) = found[0];
        // The hole's segments are listed as gaps at the end of the part before the next discontinuity; with
        // audio, that part lasts as long as its longer rendition, so the pictures after the hole may come
        // later by what the audio ran past the pictures before it, under an audio frame (as at every
        // discontinuity); without audio, exactly the hole and a frame.
        let past = after - before - (length + FRAME);
        let slack = if media.len() == 2 { AUDIO_FRAME } else { 0.0 };
        assert!(
            (-1e-3..slack + 1e-3).contains(&past),
            "{name}: the frames around the hole are {before} and {after}, not {length} s and a frame apart"
        );
        let gap =
            report.gaps.iter().find(|g| g.rendition == media[0].rendition).expect("the hole is reported");
        assert!((gap.duration - length).abs() < 1e-6, "{:?}", report.gaps);
        assert!(
            (gap.start + gap.duration - (after - video[0])).abs() <= FRAME,
            "{name}: the report puts the hole at {gap:?}, the frame after it is at {after}"
        );
        // Audio and video start together, and the whole lasts what was recorded plus the holes.
        if media.len() == 2 {
            let v = video[0];
            let a = packets(&out, "a:0").iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            assert!((v - a).abs() <= AUDIO_FRAME + 1e-4, "{name}: video starts at {v}, audio at {a}");
        }
        // The recorded length: the segments listed, but not the gap entries a hole may have in the plan.
        let listed_in_hole: f64 = {
            let manifest: Value =
                serde_json::from_slice(&std::fs::read(bundle.path.join("manifest.json")).unwrap()).unwrap();
            let holes = holes(&bundle.path, &media[0].rendition);
            let r = manifest["renditions"].as_array().unwrap().iter().find(|r| r["id"] == media[0].rendition);
            r.unwrap()["segments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["kind"] != "init")
                .filter(|s| {
                    let n = s["media_sequence"].as_u64().unwrap();
                    holes.iter().any(|&((first, last), _)| (first..=last).contains(&n))
                })
                .map(|s| s["duration"].as_f64().unwrap_or(0.0))
                .sum()
        };
        let expected = declared(&bundle.path, &media[0].rendition) - listed_in_hole + length;
        let got = duration(&out);
        assert!(
            (got - report.duration).abs() <= FRAME,
            "{name}: lasts {got}, the report says {}",
            report.duration
        );
        // Each part between discontinuities (the origin's loop points and the hole) lasts as long as its
        // longest rendition: its audio may run past its pictures by less than an audio frame.
        let local =
            std::fs::read_to_string(bundle.path.join(&media[0].rendition).join("index.m3u8")).unwrap();
        let parts = 1 + local.matches("#EXT-X-DISCONTINUITY\n").count();
        assert!(
            got >= expected - FRAME && got <= expected + parts as f64 * AUDIO_FRAME,
            "{name}: lasts {got}, recorded {expected} with the hole, in {parts} parts"
        );
        // The pictures are those of the recorded segments, in order, decoded identically.
        let source = frame_hashes(&[], &bundle.path.join(&media[0].rendition).join("index.m3u8"), "0:v");
        assert_eq!(frame_hashes(&[], &out, "0:v"), source, "{name}");
    }
}
