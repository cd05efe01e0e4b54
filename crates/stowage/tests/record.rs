//! `stowage download` given a live playlist records it, as a user runs it, against the in-process live
//! origin (the committed fixtures played as a sliding window at twice real time): it ends at the duration
//! asked for, through an outage, and `stowage info` shows the holes.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stowage_origin::live::{LiveConfig, LiveOrigin, LiveSource, Script};

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
        // The hole is in the playlist as one EXT-X-GAP segment per missing segment, its length from the
        // program dates around it, which the hole keeps too.
        let count = last.unwrap() - first.unwrap() + 1;
        assert_eq!(local.matches("#EXT-X-GAP").count() as u64, count, "{local}");
        let dates = &hole["program_date_times"];
        assert!(dates[0].is_string() && dates[1].is_string(), "{hole:#}");
        let span = hole["time"][1].as_f64().unwrap() - hole["time"][0].as_f64().unwrap();
        assert!((span - 2.0 * count as f64).abs() < 0.01, "{count} segments of 2 s: {hole:#}");
        if stowage_testkit::have_ffmpeg() {
            // A player reads through it: ffmpeg plays the rendition's local playlist to its end.
            let index = Path::new(info["path"].as_str().unwrap()).join(id).join("index.m3u8");
            let out = Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-i"])
                .arg(&index)
                .args(["-f", "null", "-"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
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
    assert!(text.contains("of the recording (program dates 20"), "{text}");
    // Export says the asset has gaps, and with --allow-gaps writes it with the hole as a jump.
    let out_file = store.path().join("live.ts");
    let refused = stowage(store.path(), &["export", "live", out_file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("--allow-gaps"), "{stderr}");
    stdout_ok(&stowage(store.path(), &["export", "live", out_file.to_str().unwrap(), "--allow-gaps"]));
    if stowage_testkit::have_ffmpeg() {
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&out_file)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
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

/// Starts `stowage download` of `url` into `store` as asset `live`, its JSON events on a pipe.
fn spawn_recording(store: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_stowage"))
        .arg("--store")
        .arg(store)
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stowage")
}

/// Kills `child` with SIGKILL: nothing of it runs after this, not even its own clean-up.
fn sigkill(mut child: std::process::Child) {
    assert!(child.try_wait().unwrap().is_none(), "the recording still runs when it is killed");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Reads the JSON events of `child` until one is `event` (after `after` of them went by); returns them.
fn read_until(child: &mut std::process::Child, event: &str, after: usize) -> Vec<Value> {
    use std::io::BufRead;
    let stdout = child.stdout.as_mut().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let mut matched = 0;
    while let Some(Ok(line)) = lines.next() {
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let hit = value["event"] == event;
        seen.push(value);
        if hit {
            matched += 1;
            if matched > after {
                return seen;
            }
        }
    }
    panic!("no {event} event came: {seen:#?}");
}

#[test]
fn a_recording_killed_twice_and_resumed_holds_every_segment_once_and_holes_for_the_time_it_was_dead() {
    let source = LiveSource::from_dir(stowage_testkit::assets().join("clear"), "master.m3u8").unwrap();
    // A window of 6 segments of 2 s (12 s of stream, 6 s of wall time at twice real time).
    let live = LiveOrigin::start(source, LiveConfig::default().window(6).speed(2.0)).unwrap();
    let store = tempfile::tempdir().unwrap();
    // First run: killed at an arbitrary moment, some seconds into the recording.
    let first =
        spawn_recording(store.path(), &["download", &live.url(), "--name", "live", "--duration", "60s"]);
    std::thread::sleep(Duration::from_secs(4));
    sigkill(first);
    // Dead for 8 s of wall time (16 s of stream): segments listed only meanwhile left the window.
    std::thread::sleep(Duration::from_secs(8));
    // Second run: killed right after it reports a segment stored (its bytes durable, maybe not the
    // playlists written after it).
    let mut second = spawn_recording(store.path(), &["resume", "live"]);
    let events = read_until(&mut second, "loaded_time_range_added", 2);
    assert!(
        events.iter().any(|e| e["event"] == "hole_recorded"
            && e["cause"].as_str().is_some_and(|c| c.contains("not running"))),
        "the time the recorder was dead is a hole: {events:#?}"
    );
    sigkill(second);
    std::thread::sleep(Duration::from_secs(8));
    // Third run: to the 60 s asked for at the start, a limit the bundle kept.
    let out = stowage(store.path(), &["resume", "live", "--json"]);
    let events: Vec<Value> = stdout_ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(events.iter().any(|e| e["event"] == "finished"), "{events:#?}");
    let info: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "live"]))).unwrap();
    assert_eq!(info["finished"], true, "{info:#}");
    assert_eq!(info["recording"]["ended"], "the duration asked for is recorded", "{info:#}");
    let holes = info["recording"]["holes"].as_array().unwrap().clone();
    let bundle = stowage_testkit::open_when_released(Path::new(info["path"].as_str().unwrap()));
    let manifest = bundle.manifest();
    for r in &manifest.renditions {
        let name = live
            .renditions()
            .into_iter()
            .find(|o| live.playlist_url(&o.name).as_deref() == Some(r.plan.url.as_str()))
            .map(|o| o.name)
            .unwrap_or_else(|| panic!("{} is a rendition of the origin", r.plan.url));
        let of_rendition = |cause: &str| -> Vec<(u64, u64)> {
            holes
                .iter()
                .filter(|h| h["rendition"] == r.plan.id.as_str())
                .filter(|h| h["cause"].as_str().is_some_and(|c| c.contains(cause)))
                .map(|h| {
                    (h["media_sequences"][0].as_u64().unwrap(), h["media_sequences"][1].as_u64().unwrap())
                })
                .collect()
        };
        // Every stored segment is what the origin served under its number, and none is there twice. A
        // segment listed before a kill and gone from the origin when the recorder came back is a gap, and
        // a hole that says it expired.
        let (mut numbers, mut expired) = (Vec::new(), Vec::new());
        for entry in r.plan.segments.iter().filter(|e| e.kind == stowage_bundle::SegmentKind::Media) {
            let id = entry.id(&r.plan.id);
            if let Some(gap) = manifest.gaps.iter().find(|g| g.segment == id) {
                // A hole's EXT-X-GAP segments are gaps for the hole's cause; the others expired.
                if !gap.reason.contains("not running") {
                    expired.push((entry.media_sequence, entry.media_sequence));
                }
                continue;
            }
            let oracle = live.segment(&name, entry.media_sequence).expect("the origin made the segment");
            let stored = std::fs::read(bundle.segment_path(&id).expect("stored")).unwrap();
            assert!(stored == oracle.clear, "{id:?} is what the origin served as {}", entry.media_sequence);
            numbers.push(entry.media_sequence);
        }
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{name}: each segment once, in order: {numbers:?}");
        // Holes are recorded as they are found: segments that expired, in the order their fetches failed.
        let mut expired_holes = of_rendition("expired");
        expired_holes.sort_unstable();
        assert_eq!(expired_holes, expired, "{name}");
        // Each such hole says where its segment was on the program's clock, and info shows it.
        for hole in holes.iter().filter(|h| {
            h["rendition"] == r.plan.id.as_str() && h["cause"].as_str().is_some_and(|c| c.contains("expired"))
        }) {
            let msn = hole["media_sequences"][0].as_u64().unwrap();
            let oracle = live.segment(&name, msn).expect("the origin made the segment");
            // Info writes whole seconds.
            let date = |i: usize| {
                let text = hole["program_date_times"][i].as_str()?.replacen(' ', "T", 1);
                stowage_playlist::DateTime::parse(&text).ok()?.to_system_time()
            };
            let near = |a: std::time::SystemTime, b: std::time::SystemTime| {
                a.duration_since(b).or_else(|_| b.duration_since(a)).is_ok_and(|d| d < Duration::from_secs(1))
            };
            let (from, to) = (oracle.program_date_time, oracle.program_date_time + oracle.duration);
            assert!(
                date(0).is_some_and(|d| near(d, from)) && date(1).is_some_and(|d| near(d, to)),
                "{name}: {hole:#}"
            );
        }
        // The other holes are exactly what no run was shown: listed only while no process ran, then gone.
        let unlisted: Vec<(u64, u64)> = live
            .unlisted(&name)
            .iter()
            .flat_map(|u| u.media_sequences.iter().map(|m| (*m.start(), *m.end())))
            .collect();
        let not_running = of_rendition("not running");
        assert_eq!(not_running, unlisted, "{name}");
        assert_eq!(not_running.len(), 2, "{name}: one hole per time the recorder was dead");
        // Nothing else is missing: from the first segment to the last, each is stored or in a hole.
        let missing = |n: &u64| not_running.iter().chain(&expired).any(|(a, b)| (a..=b).contains(&n));
        let expected: Vec<u64> = (numbers[0]..=*numbers.last().unwrap()).filter(|n| !missing(n)).collect();
        assert_eq!(numbers, expected, "{name}");
        let local =
            std::fs::read_to_string(bundle.dir().join(r.plan.id.as_str()).join("index.m3u8")).unwrap();
        assert!(
            local.contains("#EXT-X-PLAYLIST-TYPE:VOD") && local.trim_end().ends_with("#EXT-X-ENDLIST"),
            "{local}"
        );
    }
}

#[test]
fn live_start_at_a_program_date_time_starts_at_the_segment_that_covers_it_or_says_what_is_listed() {
    let source = LiveSource::from_dir(stowage_testkit::assets().join("clear"), "master.m3u8").unwrap();
    let live = LiveOrigin::start(source, LiveConfig::default().window(6).speed(2.0)).unwrap();
    let timeline = live.timeline();
    // A second into the segment at position 2 of the first window (listed for the first 8 s of stream).
    let asked = timeline.program_date_time(2) + Duration::from_secs(1);
    let date = stowage_playlist::DateTime::from_system_time(asked).to_string();
    let store = tempfile::tempdir().unwrap();
    let args = ["download", &live.url(), "--name", "live", "--live-start", &date, "--duration", "6s"];
    stdout_ok(&stowage(store.path(), &args));
    let info: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "live"]))).unwrap();
    let bundle = stowage_testkit::open_when_released(Path::new(info["path"].as_str().unwrap()));
    let manifest = bundle.manifest();
    // Kept in the manifest, to the second.
    let kept = manifest.recording.as_ref().and_then(|r| r.start_at).expect("the start is kept");
    let off = kept.duration_since(asked).or_else(|e| Ok::<_, ()>(e.duration())).unwrap();
    assert!(off < Duration::from_secs(1), "{kept:?} for {asked:?}");
    for r in &manifest.renditions {
        let first = r.plan.segments.iter().find(|e| e.kind == stowage_bundle::SegmentKind::Media).unwrap();
        assert_eq!(first.media_sequence, timeline.media_sequence(2), "{}", r.plan.id);
    }
    // A day earlier: long gone from the window, and the error says what the window holds.
    let before =
        stowage_playlist::DateTime::from_system_time(asked - Duration::from_secs(86_400)).to_string();
    let args = ["download", &live.url(), "--name", "early", "--live-start", &before, "--duration", "6s"];
    let out = stowage(store.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("asked to start at {before}")) && stderr.contains("only"), "{stderr}");
    // Not a date at all.
    let out = stowage(store.path(), &["download", &live.url(), "--name", "x", "--live-start", "noon"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--live-start noon"), "{stderr}");
}

#[test]
fn the_recording_events_tell_how_far_behind_the_live_edge_it_is() {
    use stowage_origin::{Fault, FaultRule};
    let source = LiveSource::from_dir(stowage_testkit::assets().join("clear"), "master.m3u8").unwrap();
    // Segments go unanswered from stream time 6 s to 20 s while the playlists are answered: the recording
    // falls behind the live edge, then catches up.
    let segments = FaultRule::new(Fault::BlackHole).glob("*-*.ts");
    let script = Script::new().fault(Duration::from_secs(6), Duration::from_secs(14), segments);
    let live = LiveOrigin::start(source, LiveConfig::default().window(6).speed(2.0).script(script)).unwrap();
    let store = tempfile::tempdir().unwrap();
    let out =
        stowage(store.path(), &["download", &live.url(), "--name", "live", "--duration", "40s", "--json"]);
    let delays: Vec<f64> = stdout_ok(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "recording" && e["origin"] == "live")
        .map(|e| e["live_edge_delay"].as_f64().expect("every recording event says it"))
        .collect();
    let worst = delays.iter().copied().fold(0.0, f64::max);
    // 14 s of stream unanswered: at least five 2 s segments listed and not stored at some point.
    assert!(worst >= 10.0, "{delays:?}");
    let after = delays.iter().position(|d| *d == worst).unwrap();
    assert!(delays[after..].iter().any(|d| *d <= 4.0), "it catches up: {delays:?}");
}
