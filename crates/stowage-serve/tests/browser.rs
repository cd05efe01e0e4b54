//! Bundles made from the ffmpeg-made fixtures by a real download (stowage-origin, stowage-task), served by
//! the server on loopback, played in Chromium (Debian's, driven by playwright-core from npm): through the
//! page's own players (the browser's HLS player) and through hls.js as web apps embed it.
//!
//! Checked: playback reaches the end with the source's frame count; the audio heard switches from the
//! English tone (440 Hz) to the French one (660 Hz), and the French rendition's segments are what is
//! fetched after the switch; a subtitle cue fires at its time; seeks to 50 % and 95 % land within 0.5 s; no
//! request leaves loopback; hls.js lists the two audio and two subtitle tracks and switches both. Two
//! screenshots of the page (as it opens, and playing with subtitles) are kept in
//! `target/browser-artifacts/`, with the measurements (`report.json`).
//!
//! Needs `node`, the npm dev-dependencies (`npm ci` in `tests/browser/`) and Chromium (`/usr/bin/chromium`,
//! or `$CHROMIUM`). Without them the test says why and passes, unless `STOWAGE_REQUIRE_BROWSER=1` (set by
//! CI), which makes a missing piece a failure.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::browser::{artifacts_dir, browser_dir, browser_or_skip, source_frames};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stowage_bundle::{AssetCache, RenditionKind, StorageManager};
use stowage_origin::{Files, Origin, OriginConfig};
use stowage_serve::{ServeConfig, Server};
use stowage_task::config::{Artwork, KeyPolicy, MediaSelection, VariantQualifier};
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};
use stowage_testkit::{assets, run};

/// The first presentation time of a video playlist of the fixtures, in seconds, read by ffprobe.
fn source_start(playlist: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_entries"])
        .args(["packet=pts_time", "-of", "csv=p=0"])
        .arg(playlist)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split(',').next().and_then(|t| t.trim().parse().ok()))
        .expect("ffprobe prints a timestamp")
}

/// A poster made by ffmpeg, so that the page shows real artwork.
fn poster(dir: &Path) -> Vec<u8> {
    let path = dir.join("poster.png");
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=240x360:rate=1",
            "-frames:v",
            "1",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// One asset of the test: the variant it takes, and what the browser should find in it.
struct Case {
    id: &'static str,
    title: &'static str,
    /// The fixture asset (its encrypted copy is served; its clear copy is the source checked against).
    asset: &'static str,
    bandwidth: u64,
    /// The variant's folder in the fixture, whose frames are counted.
    source: &'static str,
    keys: KeyPolicy,
    /// The variant's first presentation time, in seconds: a player's timeline starts there.
    first_pts: f64,
    /// Its length, in seconds.
    duration: f64,
    /// A cue of the English subtitles and where it plays on the player's timeline (start, end).
    cue: (&'static str, f64, f64),
    /// The English subtitles' cues, each once.
    cues: usize,
}

/// The cases: every segment format and encryption of the fixtures, and a discontinuity.
///
/// Where each cue plays: a WebVTT segment's `X-TIMESTAMP-MAP=MPEGTS:m,LOCAL:l` puts its cue time `t` at
/// MPEG time `m + (t - l)`, and a player's timeline starts at the media's first timestamp (after a
/// discontinuity, at the discontinuity's place in the playlist, its timestamps starting again).
/// - `hls/aes` (TS variants, and the single-file one): media from 1.4 s, map `126000,0`: the third cue, at
///   4.25 s of the WebVTT, plays at 4.25 s.
/// - its fMP4 variant: media from 0 s (the fixture writes its fragments' times from 0 while its TS
///   audio and subtitles start at 1.4 s), so the same cue plays 1.4 s later, at 5.65 s.
/// - `hls/cmaf-aes` (fMP4 video and audio): media from 10 s, map `900000,10 s`: the third cue, at 15 s of
///   the WebVTT, plays at 5 s.
/// - `hls/disc-aes`: 6 s, a discontinuity, 4 s; both parts' media from 1.4 s, map `126000,0`: the fourth
///   cue, at 1 s of the second part's WebVTT, plays at 7 s. It is written in two segments, and is one cue
///   once joined.
const CASES: [Case; 6] = [
    Case {
        id: "ts-aes",
        title: "TS, AES-128 with key rotation",
        asset: "aes",
        bandwidth: 549_529,
        source: "video0",
        keys: KeyPolicy::Decrypt,
        first_pts: 1.4,
        duration: 12.0,
        cue: ("Third line of the sample.", 4.25, 5.75),
        cues: 6,
    },
    Case {
        id: "ts-kept-encrypted",
        title: "TS, kept encrypted with its keys",
        asset: "aes",
        bandwidth: 549_529,
        source: "video0",
        keys: KeyPolicy::KeepEncrypted,
        first_pts: 1.4,
        duration: 12.0,
        cue: ("Third line of the sample.", 4.25, 5.75),
        cues: 6,
    },
    Case {
        id: "fmp4",
        title: "Fragmented MP4",
        asset: "aes",
        bandwidth: 630_293,
        source: "fmp4",
        keys: KeyPolicy::Decrypt,
        first_pts: 0.0,
        duration: 12.0,
        cue: ("Third line of the sample.", 5.65, 7.15),
        cues: 6,
    },
    Case {
        id: "single-file",
        title: "One file, byte ranges",
        asset: "aes",
        bandwidth: 664_585,
        source: "single",
        keys: KeyPolicy::Decrypt,
        first_pts: 1.4,
        duration: 12.0,
        cue: ("Third line of the sample.", 4.25, 5.75),
        cues: 6,
    },
    Case {
        id: "cmaf",
        title: "CMAF, fMP4 audio too",
        asset: "cmaf",
        bandwidth: 404_164,
        source: "video0",
        keys: KeyPolicy::Decrypt,
        first_pts: 10.0,
        duration: 8.0,
        cue: ("Third line of the sample.", 5.0, 6.5),
        cues: 4,
    },
    Case {
        id: "discontinuity",
        title: "A discontinuity",
        asset: "disc",
        bandwidth: 549_529,
        source: "video0",
        keys: KeyPolicy::Decrypt,
        first_pts: 1.4,
        duration: 10.0,
        cue: ("Fourth line of the sample.", 7.0, 8.5),
        cues: 5,
    },
];

/// Downloads every case from the in-process origin into `store`.
fn download(store: &Path, poster: &[u8]) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let files = Files::new();
        for asset in ["aes", "cmaf-aes", "disc-aes"] {
            files.load_dir(&format!("/{asset}"), assets().join(asset)).unwrap();
        }
        let origin = Origin::start(files, OriginConfig::default()).unwrap();
        let session = DownloadSession::new(SessionConfig::new(store)).unwrap();
        for case in &CASES {
            let mut config = DownloadConfiguration::new(
                ContentConfiguration::new()
                    .variant_qualifier(
                        VariantQualifier::new().min_bandwidth(case.bandwidth).max_bandwidth(case.bandwidth),
                    )
                    .media_selection(MediaSelection::audio_all())
                    .media_selection(MediaSelection::subtitles_all()),
            )
            .title(case.title)
            .keys(case.keys);
            if case.id == "ts-aes" {
                config = config.artwork(Artwork::new(poster.to_vec()));
            }
            // The encrypted copy of each fixture asset: `aes` (of `clear`), `cmaf-aes`, `disc-aes`.
            let served = if case.asset == "aes" { "aes".to_owned() } else { format!("{}-aes", case.asset) };
            let url = origin.url(&format!("/{served}/master.m3u8"));
            let task = session.download_task_named(case.id, &url, config).unwrap();
            run(&task).await;
            task.wait().await.unwrap_or_else(|e| panic!("{}: {e}", case.id));
        }
    });
}

/// A download stopped half way (three of the six segments of the 320x180 variant stored, nothing writing
/// it): the page shows it suspended, with its progress.
fn stopped_half_way(store: &Path) {
    use stowage_bundle::{AssetInfo, BundlePlan, RenditionId, RenditionPlan};
    let source = assets().join("clear/video0");
    let playlist = std::fs::read_to_string(source.join("index.m3u8")).unwrap();
    let id = RenditionId::new("video").unwrap();
    let plan = RenditionPlan::from_playlist(
        id,
        RenditionKind::Video,
        "https://cdn.example/video0/index.m3u8",
        playlist,
    )
    .unwrap()
    .primary(true);
    let bundle = StorageManager::new(store)
        .create_bundle(BundlePlan::new(AssetInfo::new("partial").title("Stopped half way")).rendition(plan))
        .unwrap();
    for (i, segment) in bundle.pending_segments().into_iter().take(3).enumerate() {
        let mut writer = bundle.segment_writer(&segment).unwrap();
        writer.write(&std::fs::read(source.join(format!("seg{i:03}.ts"))).unwrap()).unwrap();
        writer.finish().unwrap();
    }
    bundle.write_playlists().unwrap();
}

/// The rendition of `kind` in `language`.
fn rendition(cache: &AssetCache, kind: RenditionKind, language: &str) -> String {
    cache
        .media_selection_options()
        .into_iter()
        .find(|o| o.kind == kind && o.language.as_deref() == Some(language))
        .unwrap_or_else(|| panic!("no {kind:?} rendition in {language}"))
        .rendition
        .to_string()
}

#[test]
fn served_bundles_play_in_chromium_natively_and_in_hls_js() {
    let Some((chromium, hls_js)) = browser_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    download(&store_dir, &poster(tmp.path()));
    stopped_half_way(&store_dir);

    let mut assets_config = Vec::new();
    let mut frames = std::collections::HashMap::new();
    for case in &CASES {
        let cache = AssetCache::open(store_dir.join(case.id)).unwrap();
        assert!(cache.is_complete(), "{} is complete", case.id);
        let (en, fr) =
            (rendition(&cache, RenditionKind::Audio, "en"), rendition(&cache, RenditionKind::Audio, "fr"));
        let subs = rendition(&cache, RenditionKind::Subtitles, "en");
        let clear = if case.asset == "aes" { "clear" } else { case.asset };
        let source = assets().join(clear).join(case.source).join("index.m3u8");
        frames.insert(case.id, source_frames(&source));
        let start = source_start(&source);
        assert!(
            (start - case.first_pts).abs() < 0.01,
            "{}: the fixture's media starts at {start} s",
            case.id
        );
        assets_config.push(json!({
            "id": case.id,
            "duration": case.duration,
            "audio": [en, fr],
            "audioLanguages": ["en", "fr"],
            "tones": { en.clone(): 440, fr.clone(): 660 },
            "subtitles": subs,
            "subtitleLanguage": "en",
            "cue": { "text": case.cue.0, "start": case.cue.1, "end": case.cue.2 },
        }));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = runtime
        .block_on(Server::bind_with(
            "127.0.0.1:0".parse().unwrap(),
            StorageManager::new(&store_dir),
            ServeConfig::default(),
        ))
        .unwrap();
    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    let config = json!({
        "base": server.url().trim_end_matches('/'),
        "chromium": chromium,
        "hlsjs": hls_js,
        "artifacts": artifacts,
        "assets": assets_config,
    });
    let mut child = Command::new("node")
        .arg(browser_dir().join("play.mjs"))
        .current_dir(browser_dir())
        .env("STOWAGE_BROWSER_CONFIG", config.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("the browser run took more than 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    runtime.block_on(server.shutdown());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("the browser run printed no report ({e}): {stdout}\n{stderr}"));
    std::fs::write(artifacts.join("report.json"), serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    check(&report, &frames);
}

fn near(value: &Value, expected: f64, tolerance: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() <= tolerance)
}

fn paths(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn check(report: &Value, frames: &std::collections::HashMap<&str, u64>) {
    assert!(report.get("failure").is_none(), "the browser run failed: {}", report["failure"]);
    assert_eq!(report["offLoopback"], json!([]), "requests left loopback");
    assert_eq!(report["pageErrors"], json!([]), "the pages raised errors");
    assert_eq!(report["page"]["cards"], CASES.len() + 1, "the page lists every asset");
    let states = report["page"]["states"].as_array().unwrap();
    assert!(states.contains(&json!(["partial", "suspended"])), "{states:?}");
    assert!(states.contains(&json!(["ts-aes", "complete"])), "{states:?}");
    for case in &CASES {
        let id = case.id;
        let native = &report["native"][id];
        // To the end, every frame of the source: `totalVideoFrames` counts the frames presented and those
        // dropped, so it is the source's count exactly whatever the machine's load.
        assert_eq!(native["ended"], true, "{id}: playback ended: {native}");
        assert_eq!(native["frames"].as_u64(), Some(frames[id]), "{id}: frames: {native}");
        assert!(
            near(&native["currentTime"], native["duration"].as_f64().unwrap_or(0.0), 0.1),
            "{id}: {native}"
        );
        assert!(near(&native["duration"], case.duration, 0.2), "{id}: duration {}", native["duration"]);
        assert!(near(&native["tone"]["hz"], 440.0, 15.0), "{id}: English is heard first: {}", native["tone"]);
        // The joined subtitles: each cue once (those written in two segments joined), one at its time.
        assert_eq!(native["trackCues"], case.cues, "{id}: cues of the joined WebVTT");
        let cue = &native["cue"];
        let (_, start, end) = case.cue;
        assert!(
            near(&cue["start"], start, 0.01) && near(&cue["end"], end, 0.01),
            "{id}: cue times {cue}, not {start}"
        );
        // `cuechange` fires when the element's clock passes the start, checked at least every 250 ms.
        let fired = cue["at"].as_f64().unwrap_or(-1.0);
        assert!(
            (start - 0.05..=start + 0.35).contains(&fired),
            "{id}: the cue fired at {fired} s, not at {start} s"
        );
        let requests = paths(&native["requests"]);
        assert!(requests.iter().any(|p| p.ends_with("/subtitles.vtt")), "{id}: {requests:?}");

        let switching = &native["switching"];
        assert!(
            near(&switching["before"]["tone"]["hz"], 440.0, 15.0),
            "{id}: before the switch: {switching}"
        );
        assert!(near(&switching["after"]["tone"]["hz"], 660.0, 15.0), "{id}: after the switch: {switching}");
        assert!(!switching["after"]["tone"]["after"].is_null(), "{id}: French was not heard: {switching}");
        let late = paths(&switching["requestsAfterSwitch"]);
        let fr = report["native"][id]["switching"]["after"]["src"].as_str().unwrap_or("");
        assert!(fr.contains("master.m3u8?audio=audio-fr"), "{id}: the switch loaded {fr}");
        assert!(
            late.iter().any(|p| p.contains("/audio-fr/seg-")),
            "{id}: no French segment fetched: {late:?}"
        );
        assert!(!late.iter().any(|p| p.contains("/audio-en/seg-")), "{id}: English fetched after: {late:?}");
        let at = switching["before"]["at"].as_f64().unwrap();
        assert!(
            switching["after"]["resumedAt"].as_f64().unwrap() >= at - 0.5,
            "{id}: the switch lost the place"
        );
        for seek in switching["after"]["seeks"].as_array().unwrap() {
            let target = seek["target"].as_f64().unwrap();
            assert!(
                near(&seek["landed"], target, 0.5),
                "{id}: a seek to {target} landed at {}",
                seek["landed"]
            );
        }

        let hls = &report["hlsjs"][id];
        assert_eq!(hls["supported"], true);
        assert_eq!(hls["errors"], json!([]), "{id}: hls.js errors");
        let langs =
            |list: &Value| list.as_array().unwrap().iter().map(|t| t["lang"].clone()).collect::<Vec<_>>();
        assert_eq!(langs(&hls["audioTracks"]), [json!("en"), json!("fr")], "{id}: {}", hls["audioTracks"]);
        assert_eq!(
            langs(&hls["subtitleTracks"]),
            [json!("en"), json!("fr")],
            "{id}: {}",
            hls["subtitleTracks"]
        );
        assert!(near(&hls["toneBefore"]["hz"], 440.0, 15.0), "{id}: hls.js before: {}", hls["toneBefore"]);
        assert!(near(&hls["toneAfter"]["hz"], 660.0, 15.0), "{id}: hls.js after: {}", hls["toneAfter"]);
        let late = paths(&hls["requestsAfterSwitch"]);
        assert!(
            late.iter().any(|p| p.contains("/audio-fr/")),
            "{id}: hls.js fetched no French audio: {late:?}"
        );
        assert!(
            near(&hls["cue"]["start"], case.cue.1, 0.05),
            "{id}: hls.js cue {}, not {}",
            hls["cue"],
            case.cue.1
        );
    }
}
