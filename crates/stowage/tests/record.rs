//! `stowage download` given a live playlist records it, as a user runs it, against the in-process live
//! origin (the committed fixtures played as a sliding window at twice real time): it ends at the duration
//! asked for, through an outage, and `stowage info` shows the holes.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use stowage_origin::live::{LiveConfig, LiveOrigin, LiveSource, Script};

fn stowage(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stowage"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("start stowage")
}

fn stdout_ok(output: &Output) -> String {
    assert!(output.status.success(), "stowage failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn download_records_a_live_stream_through_an_outage_and_info_shows_the_holes() {
    let source = LiveSource::from_dir(stowage_testkit::assets().join("clear"), "master.m3u8").unwrap();
    // Unreachable from stream time 6 s to 26 s, longer than the 12 s window.
    let script = Script::new().black_hole(Duration::from_secs(6), Duration::from_secs(20));
    let live = LiveOrigin::start(source, LiveConfig::default().window(6).speed(2.0).script(script)).unwrap();
    let store = tempfile::tempdir().unwrap();
    let out =
        stowage(store.path(), &["download", &live.url(), "--name", "live", "--duration", "30s", "--json"]);
    let events: Vec<Value> = stdout_ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // The outage was told as it went (the recording keeps trying: no limit), then each hole.
    let told = |name: &str| events.iter().filter(|e| e["event"] == name).collect::<Vec<_>>();
    assert!(
        told("recording").iter().any(|e| e["origin"] == "unreachable" && e["max_outage"].is_null()),
        "{events:#?}"
    );
    assert!(told("recording").iter().any(|e| e["ended"] == "the duration asked for is recorded"));
    let hole_events = told("hole_recorded");
    let info: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "live"]))).unwrap();
    assert_eq!(info["finished"], true, "{info:#}");
    let recording = &info["recording"];
    assert_eq!(recording["ended"], "the duration asked for is recorded", "{info:#}");
    assert_eq!(recording["duration_limit"], 30.0);
    let holes = recording["holes"].as_array().unwrap();
    assert!(!holes.is_empty(), "the outage was longer than the window: {info:#}");
    for rendition in info["renditions"].as_array().unwrap() {
        let id = rendition["id"].as_str().unwrap();
        let hole = holes.iter().find(|h| h["rendition"] == id).unwrap_or_else(|| panic!("a hole of {id}"));
        let (first, last) = (hole["media_sequences"][0].as_u64(), hole["media_sequences"][1].as_u64());
        // Exactly what this rendition's playlists never listed: every segment shown was recorded.
        let url = rendition["url"].as_str().unwrap();
        let name = live
            .renditions()
            .into_iter()
            .find(|o| live.playlist_url(&o.name).as_deref() == Some(url))
            .map(|o| o.name)
            .unwrap_or_else(|| panic!("{url} is a rendition of the origin"));
        let unlisted: Vec<(Option<u64>, Option<u64>)> = live
            .unlisted(&name)
            .iter()
            .flat_map(|u| u.media_sequences.iter().map(|m| (Some(*m.start()), Some(*m.end()))))
            .collect();
        assert_eq!(unlisted, [(first, last)], "{id}");
        assert!(
            hole_events.iter().any(|e| e["rendition"] == id
                && e["media_sequences"][0].as_u64() == first
                && e["media_sequences"][1].as_u64() == last),
            "{id}: {hole_events:#?}"
        );
        let local =
            std::fs::read_to_string(Path::new(info["path"].as_str().unwrap()).join(id).join("index.m3u8"))
                .unwrap();
        assert!(local.contains("#EXT-X-PLAYLIST-TYPE:VOD") && local.contains("#EXT-X-ENDLIST"), "{local}");
        assert!(local.contains("#EXT-X-DISCONTINUITY"), "{local}");
        // At least the 30 s asked for, and not a segment more than it takes.
        let seconds: f64 = local
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|v| v.trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        assert!((30.0..32.0).contains(&seconds), "{id}: {seconds} s recorded");
    }
    let text = stdout_ok(&stowage(store.path(), &["info", "live"]));
    assert!(text.contains("recording of a live stream, ended: the duration asked for is recorded"), "{text}");
    assert!(text.contains("left the live playlist while the origin could not be reached"), "{text}");
}

#[test]
fn ctrl_c_ends_a_recording_with_a_vod_bundle_of_what_it_recorded() {
    let source = LiveSource::from_dir(stowage_testkit::assets().join("clear"), "master.m3u8").unwrap();
    // A stream that never ends.
    let live = LiveOrigin::start(source, LiveConfig::default().window(6).speed(2.0)).unwrap();
    let store = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stowage"))
        .arg("--store")
        .arg(store.path())
        .args(["download", &live.url(), "--name", "live", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Recording for 5 s of wall time (10 s of the stream), beyond the first playlist.
    std::thread::sleep(Duration::from_secs(5));
    assert!(child.try_wait().unwrap().is_none(), "the recording goes on until it is stopped");
    let sent = std::time::Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        assert!(sent.elapsed() < Duration::from_secs(20), "the recording did not end after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stopping the recording"), "{stderr}");
    let info: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "live"]))).unwrap();
    assert_eq!(info["finished"], true, "{info:#}");
    assert_eq!(info["recording"]["ended"], "the recording was stopped", "{info:#}");
    for rendition in info["renditions"].as_array().unwrap() {
        let id = rendition["id"].as_str().unwrap();
        let local =
            std::fs::read_to_string(Path::new(info["path"].as_str().unwrap()).join(id).join("index.m3u8"))
                .unwrap();
        assert!(local.contains("#EXT-X-PLAYLIST-TYPE:VOD") && local.contains("#EXT-X-ENDLIST"), "{local}");
        // The three segments of the live edge and those made during the 5 s (at 2 s of media each, twice
        // real time): about eight, each stored.
        let segments = local.lines().filter(|l| l.starts_with("#EXTINF:")).count();
        assert!(segments >= 6, "{id}: {segments} segments recorded\n{local}");
        assert_eq!(rendition["segments_finished"], rendition["segments_total"], "{rendition:#}");
    }
}
