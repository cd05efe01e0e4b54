//! Play while downloading, in Chromium: an asset downloaded from a slow origin (stowage-origin delays
//! every segment) is played while its playlists still grow, by hls.js on the bundle's master playlist and
//! by the page's own player (the browser's HLS player) side by side. Checked: the page shows the asset
//! downloading; hls.js starts within 3 s of the first segments being stored (every rendition the player
//! needs listing one), from the start, while the download runs, and reaches the end with the source's
//! frame count (`getVideoPlaybackQuality`); the page's player waits until the playlists are long enough
//! for it, plays to the end without an error, and the page then shows the asset complete; no request
//! leaves loopback. A screenshot of the page playing the downloading asset is kept in
//! `target/browser-artifacts/page-downloading.png`, the measurements in `report-downloading.json`.
//!
//! Needs what `tests/browser.rs` needs (see there); skipped without it unless `STOWAGE_REQUIRE_BROWSER=1`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::browser::{artifacts_dir, browser_dir, browser_or_skip, source_frames};
use serde_json::{Value, json};
use stowage_bundle::StorageManager;
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};
use stowage_playlist::MediaPlaylist;
use stowage_serve::{ServeConfig, Server};
use stowage_task::config::VariantQualifier;
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};
use stowage_testkit::assets;

/// The asset's identifier in the store.
const ID: &str = "growing";

/// Every segment of the origin waits this long before its answer: with three connections, the 13 segments
/// of the asset (6 of video, 7 of audio, 2 s each) take about 5 s, while the asset plays for 12 s.
const SEGMENT_LATENCY: Duration = Duration::from_millis(1000);

/// How many segments each media playlist of the bundle lists now (none when it cannot be read).
fn listed(bundle: &Path) -> Vec<usize> {
    let mut counts = Vec::new();
    for entry in std::fs::read_dir(bundle).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path().join("index.m3u8")) {
            counts.push(MediaPlaylist::parse(text.as_str()).map_or(0, |p| p.segments().len()));
        }
    }
    counts
}

#[test]
fn an_asset_plays_in_chromium_while_it_downloads() {
    let Some((chromium, hls_js)) = browser_or_skip() else { return };
    let frames = source_frames(&assets().join("clear/video0/index.m3u8"));
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let bundle_dir = store_dir.join(ID);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = runtime
        .block_on(Server::bind_with(
            "127.0.0.1:0".parse().unwrap(),
            StorageManager::new(&store_dir),
            ServeConfig::default(),
        ))
        .unwrap();
    let origin = {
        let _entered = runtime.enter();
        let files = Files::new();
        files.load_dir("/clear", assets().join("clear")).unwrap();
        Origin::start(files, OriginConfig::default()).unwrap()
    };
    origin.faults().add(FaultRule::new(Fault::Latency(SEGMENT_LATENCY)).glob("*.ts"));

    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    let config = json!({
        "base": server.url().trim_end_matches('/'),
        "chromium": chromium,
        "hlsjs": hls_js,
        "artifacts": artifacts,
        "id": ID,
        "timeoutMs": 60_000,
    });
    let mut child = Command::new("node")
        .arg(browser_dir().join("grow.mjs"))
        .current_dir(browser_dir())
        .env("STOWAGE_BROWSER_CONFIG", config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(60)).expect("the browser starts");
    assert_eq!(first, "ready");

    // The download starts once the browser runs, so that the time to start playing is the page's.
    let session = {
        let _entered = runtime.enter();
        DownloadSession::new(SessionConfig::new(&store_dir).max_connections(3)).unwrap()
    };
    let content = ContentConfiguration::new()
        .variant_qualifier(VariantQualifier::new().min_bandwidth(549_529).max_bandwidth(549_529));
    let task = {
        let _entered = runtime.enter();
        session
            .download_task_named(
                ID,
                &origin.url("/clear/master.m3u8"),
                DownloadConfiguration::new(content).title("Still downloading"),
            )
            .unwrap()
    };
    let downloading = Instant::now();
    let done = runtime.spawn({
        async move {
            task.resume();
            let result = task.wait().await;
            (result, Instant::now())
        }
    });
    // The first segments are stored when every media playlist (video and English audio) lists one.
    let stored = loop {
        let counts = listed(&bundle_dir);
        if counts.len() == 2 && counts.iter().all(|&n| n > 0) {
            break Instant::now();
        }
        assert!(downloading.elapsed() < Duration::from_secs(30), "no segment stored: {counts:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let listed_at_go = listed(&bundle_dir);
    // Written and closed: the script reads one line.
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let go = Instant::now();
    let signalled = go - stored;

    let report_line = lines.recv_timeout(Duration::from_secs(120)).expect("the browser run ends");
    let (result, finished) = runtime.block_on(async { done.await.unwrap() });
    result.unwrap_or_else(|e| panic!("the download failed: {e}"));
    let download_took = finished - downloading;
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    runtime.block_on(server.shutdown());
    let report: Value = serde_json::from_str(&report_line).unwrap_or_else(|e| {
        panic!(
            "the browser run printed no report ({e}): {report_line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    std::fs::write(artifacts.join("report-downloading.json"), serde_json::to_vec_pretty(&report).unwrap())
        .unwrap();
    let (native, hls) = (&report["native"], &report["hlsjs"]);
    eprintln!(
        "first segments stored {:?} after the start; playback started {} ms after them in hls.js, {} ms in \
         the page's native player; the download took {download_took:?}; frames {} (hls.js), {} (native), {frames} \
         in the source",
        stored - downloading,
        hls["startMs"],
        native["startMs"],
        hls["frames"],
        native["frames"],
    );

    assert!(report.get("failure").is_none(), "the browser run failed: {}", report["failure"]);
    assert_eq!(report["offLoopback"], json!([]), "requests left loopback");
    assert_eq!(report["pageErrors"], json!([]), "the page raised errors");
    assert!(listed_at_go.iter().all(|&n| n < 6), "the download had far to go: {listed_at_go:?}");

    // hls.js, on the bundle's master playlist: from the start, within 3 s, to the end.
    assert_eq!(hls["errors"], json!([]), "hls.js errors");
    let start_ms = hls["startMs"].as_f64().expect("hls.js started playing");
    assert!(
        signalled.as_secs_f64() * 1000.0 + start_ms < 3000.0,
        "hls.js started {start_ms} ms after the first segments were stored (+{signalled:?})"
    );
    assert!(
        go + Duration::from_secs_f64(start_ms / 1000.0) < finished,
        "playback started after the download ended ({download_took:?})"
    );
    assert_eq!(hls["ended"], true, "hls.js reached the end: {hls}");
    assert_eq!(hls["frames"].as_u64(), Some(frames), "every frame of the source in hls.js: {hls}");
    assert!(hls["error"].is_null(), "{}", hls["error"]);

    // The page: the asset shown downloading, played by the browser's own player to the end. Chromium's
    // native player joins a playlist without an end three segments from its end, whatever EXT-X-START
    // says (measured), so it may start after the first segments: its frames are reported, not compared.
    // The page cannot take it back to the start: until the playlist ends, the element's seekable range is
    // empty and its duration infinite, and its time 0 is already the segment it joined at (the media
    // element's events in the report's timeline show it).
    assert_eq!(native["state"], "downloading", "the page shows the asset downloading");
    assert!(
        native["startMs"].as_f64().is_some_and(|ms| ms < 10_000.0),
        "the page's player started: {native}"
    );
    assert_eq!(native["ended"], true, "the page's player reached the end: {native}");
    assert!(native["error"].is_null(), "{}", native["error"]);
    assert_eq!(native["stateAtEnd"], "complete", "the page shows the download finished");
}
