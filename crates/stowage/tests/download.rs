//! `stowage demo`, `download` and `resume` run as a user runs them, against the in-process origin serving
//! the committed ffmpeg-made fixtures: byte-identical decryption, ffmpeg decoding every frame of the
//! bundle, SIGKILL and Ctrl-C in the middle of a download, strict and tolerant integrity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};
use stowage_testkit::{decode, have_ffmpeg};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stowage(store: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stowage"));
    command.arg("--store").arg(store).stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("start stowage")
}

fn stdout_ok(output: &Output) -> String {
    assert!(output.status.success(), "stowage failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// The stored media segments of each rendition, in playlist order, read from the bundle's own playlists.
fn stored_segments(bundle: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(bundle).unwrap() {
        let dir = entry.unwrap().path();
        let index = dir.join("index.m3u8");
        if !index.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&index).unwrap();
        let files =
            text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| dir.join(l)).collect();
        out.insert(dir.file_name().unwrap().to_string_lossy().into_owned(), files);
    }
    out
}

/// The source media playlist URL of each stored rendition, from `stowage info --json`.
fn rendition_sources(store: &Path, asset: &str) -> BTreeMap<String, String> {
    let v: Value =
        serde_json::from_str(&stdout_ok(&run(stowage(store).args(["info", "--json", asset])))).unwrap();
    v["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["url"].as_str().unwrap().to_owned()))
        .collect()
}

/// Checks every stored segment against the clear file the fixture has for it: the source folder is the
/// last path segment of the rendition's URL, and the fixtures name segments `seg%03d` by index.
fn assert_identical_to_clear(store: &Path, asset: &str, bundle: &Path, clear: &Path) -> usize {
    let sources = rendition_sources(store, asset);
    let mut compared = 0;
    for (rendition, files) in stored_segments(bundle) {
        let url = &sources[&rendition];
        let folder = url.rsplit('/').nth(1).unwrap();
        for (i, file) in files.iter().enumerate() {
            let ext = file.extension().unwrap().to_string_lossy().into_owned();
            let source = clear.join(folder).join(format!("seg{i:03}.{ext}"));
            let stored = std::fs::read(file).unwrap();
            let expected = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
            assert!(stored == expected, "{} differs from {}", file.display(), source.display());
            compared += 1;
        }
    }
    compared
}

#[test]
fn demo_downloads_decrypts_verifies_and_plays() {
    let store = tempfile::tempdir().unwrap();
    let out = stdout_ok(&run(stowage(store.path()).args(["demo", "--json"])));
    let events = json_lines(&out);
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for expected in [
        "will_download_to",
        "media_selection_resolved",
        "progress",
        "loaded_time_range_added",
        "rendition_completed",
        "summary",
        "finished",
    ] {
        assert!(names.contains(&expected), "no {expected} event in {names:?}");
    }
    let finished = events.iter().position(|e| e["event"] == "finished").unwrap();
    assert_eq!(events[finished]["complete"], true);
    // Every rendition is told complete, with its kind and language; the summary comes just before the end.
    let completed: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "rendition_completed")
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["language"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(completed.len(), 5, "{completed:?}");
    for (kind, lang) in
        [("video", ""), ("audio", "en"), ("audio", "fr"), ("subtitles", "en"), ("subtitles", "fr")]
    {
        assert!(completed.contains(&(kind.to_owned(), lang.to_owned())), "{kind} {lang} in {completed:?}");
    }
    let summary = &events[finished - 1];
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["segments_stored"], 22);
    assert!(summary["requests"].as_u64().unwrap() >= 22 + 6, "{summary}");
    assert!(summary["variant"]["id"].as_str().unwrap().starts_with("video-"), "{summary}");
    let verified = events.last().unwrap();
    assert_eq!(verified["event"], "verified");
    assert_eq!(verified["playable_offline"], true);
    // 4 video + 5 + 5 audio + 4 + 4 subtitle segments.
    assert_eq!(verified["segments"], 22);
    let bundle = PathBuf::from(verified["path"].as_str().unwrap());

    let compared = assert_identical_to_clear(
        store.path(),
        "stowage-demo",
        &bundle,
        &repo().join("crates/stowage/assets/demo"),
    );
    assert_eq!(compared, 22);
    if have_ffmpeg() {
        let decoded = decode(&bundle);
        for (kind, lang) in
            [("video", ""), ("audio", "en"), ("audio", "fr"), ("subtitle", "en"), ("subtitle", "fr")]
        {
            assert!(decoded.has(kind, lang), "no {kind} {lang} in {decoded:?}");
        }
        assert!((decoded.duration - 8.0).abs() < 0.1, "{decoded:?}");
    }
}

fn aes_origin() -> Origin {
    let files = Files::new();
    files.load_dir("/aes", stowage_testkit::assets().join("aes")).unwrap();
    Origin::start(files, OriginConfig::default()).unwrap()
}

#[test]
fn download_selects_and_decrypts_rotating_keys_byte_identically() {
    let origin = aes_origin();
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/master.m3u8");
    let out = run(stowage(store.path()).args(["download", &url, "--name", "sample", "--json"]).args([
        "--variant",
        "max-resolution=480x270",
        "--audio",
        "fr",
        "--subs",
        "en",
    ]));
    let events = json_lines(&stdout_ok(&out));
    let resolved = events.iter().find(|e| e["event"] == "media_selection_resolved").unwrap();
    assert_eq!(resolved["contents"][0]["variant"]["uri"], "video1/index.m3u8");
    let languages: Vec<&str> = resolved["contents"][0]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["language"].as_str())
        .collect();
    assert_eq!(languages, ["fr", "en"]);
    let bundle = store.path().join("sample");
    // 6 video, 7 audio and 6 subtitle segments, decrypted with three keys each, explicit and derived IVs.
    let compared =
        assert_identical_to_clear(store.path(), "sample", &bundle, &stowage_testkit::assets().join("clear"));
    assert_eq!(compared, 19);
    let master = std::fs::read_to_string(bundle.join("master.m3u8")).unwrap();
    assert!(!master.contains("video0") && !master.contains("LANGUAGE=\"de\""), "{master}");
    for playlist in stored_segments(&bundle).keys() {
        let text = std::fs::read_to_string(bundle.join(playlist).join("index.m3u8")).unwrap();
        assert!(!text.contains("EXT-X-KEY"), "keys left in a decrypted bundle's playlist: {text}");
    }
    // Each key was fetched once for the whole asset.
    for key in ["/aes/keys/k0.key", "/aes/keys/k1.key", "/aes/keys/k2.key"] {
        assert_eq!(origin.request_count(key), 1, "{key}");
    }
    if have_ffmpeg() {
        let decoded = decode(&bundle);
        assert!(decoded.has("audio", "fr") && decoded.has("subtitle", "en"), "{decoded:?}");
        assert!((decoded.duration - 12.0).abs() < 0.2, "{decoded:?}");
    }
}

/// The finished segments a bundle's journal lists, as origin paths of the fixture.
fn journaled_paths(store: &Path, asset: &str) -> Vec<String> {
    let bundle = store.join(asset);
    let Ok(bytes) = std::fs::read(bundle.join("journal.log")) else { return Vec::new() };
    let journal = stowage_bundle::parse_journal(&bundle.join("journal.log"), &bytes).unwrap();
    // The journal can exist a moment before the manifest of a new bundle.
    let Ok(manifest) = std::fs::read(bundle.join("manifest.json")) else { return Vec::new() };
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let mut urls = BTreeMap::new();
    for r in manifest["renditions"].as_array().unwrap() {
        urls.insert(r["id"].as_str().unwrap().to_owned(), r["url"].as_str().unwrap().to_owned());
    }
    journal
        .records
        .iter()
        .filter_map(|r| match r {
            stowage_bundle::JournalRecord::Segment { id, .. } => Some(id),
            _ => None,
        })
        .filter(|id| id.kind == stowage_bundle::SegmentKind::Media)
        .map(|id| {
            let url = &urls[id.rendition.as_str()];
            let dir = &url[url.find("/aes/").unwrap()..url.rfind('/').unwrap()];
            let ext = if dir.contains("subs") { "vtt" } else { "ts" };
            format!("{dir}/seg{:03}.{ext}", id.media_sequence)
        })
        .collect()
}

fn wait_for_journal(store: &Path, asset: &str, at_least: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while journaled_paths(store, asset).len() < at_least {
        assert!(child.try_wait().unwrap().is_none(), "the download ended before it was interrupted");
        assert!(Instant::now() < deadline, "no progress within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_mid_download_then_resume_fetches_no_finished_segment_twice() {
    let origin = aes_origin();
    // Segments drip at 150 kB/s so that the download is still going when it is killed.
    origin.faults().add(FaultRule::new(Fault::throttle(150_000)).glob("/aes/*/seg*"));
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/master.m3u8");
    let mut child = stowage(store.path())
        .args(["download", &url, "--name", "killed", "--json", "--connections", "2", "--audio", "all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_journal(store.path(), "killed", 3, &mut child);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let finished_before = journaled_paths(store.path(), "killed");
    assert!(finished_before.len() >= 3);

    origin.faults().clear();
    let out = run(stowage(store.path()).args(["resume", "killed", "--json"]));
    let events = json_lines(&stdout_ok(&out));
    assert_eq!(events.iter().find(|e| e["event"] == "finished").unwrap()["complete"], true);
    for path in &finished_before {
        assert_eq!(origin.request_count(path), 1, "{path} was finished before the kill and fetched again");
    }
    let bundle = store.path().join("killed");
    let compared =
        assert_identical_to_clear(store.path(), "killed", &bundle, &stowage_testkit::assets().join("clear"));
    assert_eq!(compared, 6 + 7 + 7);
    stdout_ok(&run(stowage(store.path()).args(["verify", "killed"])));
}

#[test]
fn ctrl_c_suspends_cleanly_and_resume_completes() {
    let origin = aes_origin();
    origin.faults().add(FaultRule::new(Fault::throttle(150_000)).glob("/aes/*/seg*"));
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/master.m3u8");
    let mut child = stowage(store.path())
        .args(["download", &url, "--name", "paused", "--connections", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(store.path(), "paused", 2, &mut child);
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("suspended") && err.contains("resume paused"), "{err}");

    origin.faults().clear();
    let listed = stdout_ok(&run(stowage(store.path()).args(["list"])));
    assert!(listed.lines().any(|l| l.contains("paused") && l.contains("partial")), "{listed}");
    stdout_ok(&run(stowage(store.path()).args(["resume"])));
    let listed = stdout_ok(&run(stowage(store.path()).args(["list"])));
    assert!(listed.lines().any(|l| l.contains("paused") && l.contains("complete")), "{listed}");
}

#[test]
fn a_segment_that_never_comes_fails_strictly_or_becomes_a_named_gap() {
    let origin = aes_origin();
    origin.faults().add(FaultRule::new(Fault::status(404)).path("/aes/video0/seg003.ts"));
    let url = origin.url("/aes/master.m3u8");
    let variant = ["--variant", "max-resolution=320x180"];

    let store = tempfile::tempdir().unwrap();
    let out = run(stowage(store.path()).args(["download", &url, "--name", "strict"]).args(variant));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("video0/seg003.ts") && err.contains("404"), "{err}");
    assert!(err.contains("resume"), "{err}");

    // Events name the segments: a retried one and the missing one, by rendition, identity and URI.
    origin
        .faults()
        .add(FaultRule::new(Fault::service_unavailable(Some(0))).path("/aes/video0/seg001.ts").first(1));
    let out = run(stowage(store.path())
        .args(["download", &url, "--name", "tolerant", "--tolerant", "--json"])
        .args(variant));
    let events = json_lines(&stdout_ok(&out));
    let missing: Vec<&Value> = events.iter().filter(|e| e["event"] == "segment_missing").collect();
    assert_eq!(missing.len(), 1, "{events:?}");
    let segment = &missing[0]["segment"];
    assert_eq!(
        (segment["rendition"].as_str(), segment["media_sequence"].as_u64()),
        (Some("video-0"), Some(3))
    );
    assert!(segment["uri"].as_str().unwrap().ends_with("/aes/video0/seg003.ts"), "{segment}");
    assert!(missing[0]["reason"].as_str().unwrap().contains("404"), "{}", missing[0]);
    let retried = events.iter().find(|e| e["event"] == "segment_retried").expect("a retry is told");
    assert_eq!(retried["segment"]["media_sequence"], 1);
    assert_eq!(retried["segment"]["kind"], "media");
    assert!(retried.get("job").is_none(), "no engine job numbers: {retried}");
    assert_eq!(events.iter().find(|e| e["event"] == "finished").unwrap()["complete"], false);
    let info: Value =
        serde_json::from_str(&stdout_ok(&run(stowage(store.path()).args(["info", "--json", "tolerant"]))))
            .unwrap();
    assert_eq!(info["complete"], false);
    let gaps = info["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0]["reason"].as_str().unwrap().contains("404"), "{gaps:?}");
}

#[test]
fn keep_encrypted_stores_ciphertext_with_the_keys_in_the_bundle() {
    let origin = aes_origin();
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/master.m3u8");
    stdout_ok(&run(stowage(store.path())
        .args(["download", &url, "--name", "sealed", "--keep-encrypted"])
        .args(["--variant", "max-resolution=320x180"])));
    let bundle = store.path().join("sealed");
    // Stored bytes are the ciphertext as served.
    let compared =
        assert_identical_to_clear(store.path(), "sealed", &bundle, &stowage_testkit::assets().join("aes"));
    assert_eq!(compared, 6 + 7);
    // The local playlists point at key files inside the bundle, never at the origin.
    for (rendition, _) in stored_segments(&bundle) {
        let text = std::fs::read_to_string(bundle.join(&rendition).join("index.m3u8")).unwrap();
        let keys: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-KEY")).collect();
        assert!(!keys.is_empty(), "{text}");
        for key in keys {
            assert!(!key.contains("http") && !key.contains("/aes/"), "{key}");
            let uri = key.split("URI=\"").nth(1).unwrap().split('"').next().unwrap();
            let stored = std::fs::read(bundle.join(&rendition).join(uri)).unwrap();
            assert_eq!(stored.len(), 16, "{uri}");
        }
    }
    if have_ffmpeg() {
        // ffmpeg decrypts it with the bundle's own keys.
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-xerror", "-allowed_extensions", "ALL", "-i"])
            .arg(bundle.join("master.m3u8"))
            .args(["-map", "0:v", "-map", "0:a", "-f", "null", "-"])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn ca_file_errors_name_the_file_and_say_why() {
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let words = dir.path().join("words.pem");
    std::fs::write(&words, "these are words, not a certificate\n").unwrap();
    let key = dir.path().join("key-only.pem");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n").unwrap();
    for (path, why) in [
        (missing.as_path(), "No such file"),
        (dir.path(), "Is a directory"),
        (empty.as_path(), "holds no certificate"),
        (words.as_path(), "holds no certificate"),
        (key.as_path(), "holds no certificate"),
    ] {
        let out = run(stowage(store.path())
            .args(["download", "https://127.0.0.1:9/master.m3u8", "--ca-file"])
            .arg(path));
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("--ca-file {}", path.display())) && err.contains(why), "{err}");
    }
}

/// Waits until the origin has answered a request for `path` since its log was cleared (it logs a
/// request when its answer starts).
fn wait_for_request(origin: &Origin, path: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while origin.request_count(path) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "stowage ended before asking for {path}");
        assert!(Instant::now() < deadline, "{path} not asked for within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT to the child and waits for it, which must take less than ten seconds.
fn interrupt(mut child: Child) -> (Output, Duration) {
    let sent = Instant::now();
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    while child.try_wait().unwrap().is_none() {
        if sent.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("Ctrl-C was not honoured within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), sent.elapsed())
}

#[test]
fn ctrl_c_while_a_playlist_is_held_suspends_at_once_and_the_bundle_resumes() {
    let origin = aes_origin();
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/master.m3u8");

    // A new download whose master playlist comes a byte a second: Ctrl-C ends it at once, and nothing is
    // promised that was not stored: the download is recorded, and resuming starts it again.
    origin.faults().add(FaultRule::new(Fault::throttle(1)).path("/aes/master.m3u8"));
    let mut child = stowage(store.path())
        .args(["download", &url, "--name", "held", "--connections", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_request(&origin, "/aes/master.m3u8", &mut child);
    let (out, _) = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("suspended before anything was stored") && err.contains("resume held"), "{err}");
    assert!(!err.contains("finished segments are kept"), "{err}");

    // A download stopped in the middle of its segments...
    origin.faults().clear();
    origin.faults().add(FaultRule::new(Fault::throttle(150_000)).glob("/aes/*/seg*"));
    let mut child = stowage(store.path())
        .args(["download", &url, "--name", "held", "--connections", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(store.path(), "held", 2, &mut child);
    let (out, _) = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));

    // ...resumed while a media playlist is held: Ctrl-C again ends it at once.
    origin.faults().clear();
    origin.clear_log();
    origin.faults().add(FaultRule::new(Fault::throttle(1)).glob("/aes/*/index.m3u8"));
    let mut child = stowage(store.path())
        .args(["resume", "held"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !origin.log().iter().any(|r| r.path.ends_with("/index.m3u8") && r.path != "/aes/master.m3u8") {
        assert!(child.try_wait().unwrap().is_none(), "the resume ended before asking for a media playlist");
        assert!(Instant::now() < deadline, "no media playlist asked for within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (out, _) = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("suspended") && err.contains("resume held"), "{err}");

    // The bundle is whole and resumable.
    origin.faults().clear();
    stdout_ok(&run(stowage(store.path()).args(["resume", "held"])));
    let listed = stdout_ok(&run(stowage(store.path()).args(["list"])));
    assert!(listed.lines().any(|l| l.contains("held") && l.contains("complete")), "{listed}");
    stdout_ok(&run(stowage(store.path()).args(["verify", "held"])));
}

#[test]
fn retry_after_waits_are_shown_with_their_end_and_a_longer_one_fails_naming_it() {
    let origin = aes_origin();
    let url = origin.url("/aes/master.m3u8");
    origin.faults().add(FaultRule::new(Fault::too_many_requests(1)).path("/aes/master.m3u8").first(1));
    origin
        .faults()
        .add(FaultRule::new(Fault::service_unavailable(Some(1))).path("/aes/video0/seg002.ts").first(1));
    let store = tempfile::tempdir().unwrap();
    let out = run(stowage(store.path()).args([
        "download",
        &url,
        "--name",
        "waited",
        "--json",
        "--variant",
        "max-resolution=320x180",
    ]));
    let events = json_lines(&stdout_ok(&out));
    let playlist = events
        .iter()
        .find(|e| e["event"] == "request_retried" && e["uri"] == url.as_str())
        .unwrap_or_else(|| panic!("no retry of {url} shown: {events:?}"));
    assert_eq!(playlist["retry_after"], 1.0);
    assert!(playlist["cause"].as_str().unwrap().contains("429"), "{playlist}");
    assert!(playlist["until"].as_str().is_some_and(|u| u.ends_with('Z')), "{playlist}");
    let segment = events
        .iter()
        .find(|e| e["event"] == "segment_retried" && e["retry_after"] == 1.0)
        .unwrap_or_else(|| panic!("no segment wait shown: {events:?}"));
    assert!(segment["until"].as_str().is_some_and(|u| u.ends_with('Z')), "{segment}");
    assert_eq!(events.iter().find(|e| e["event"] == "finished").unwrap()["complete"], true);

    // An hour is longer than the wait allowed: the download fails at once and says why.
    origin.faults().clear();
    origin.faults().add(FaultRule::new(Fault::too_many_requests(3600)).path("/aes/master.m3u8"));
    let started = Instant::now();
    let out = run(stowage(store.path()).args(["download", &url, "--name", "refused"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url) && err.contains("3600 s") && err.contains("429"), "{err}");
}

/// A media playlist of the clear `video0` segments in `order`, two seconds each.
fn video0_playlist(order: &[usize]) -> String {
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for i in order {
        text.push_str(&format!("#EXTINF:2.000000,\n/clear/video0/seg{i:03}.ts\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

/// The stored segments of the bundle's one rendition, in playlist order.
fn stored_bytes(bundle: &Path) -> Vec<Vec<u8>> {
    let segments = stored_segments(bundle);
    segments.values().next().unwrap().iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn clear_video0(order: &[usize]) -> Vec<Vec<u8>> {
    let dir = repo().join("tests/assets/hls/clear/video0");
    order.iter().map(|i| std::fs::read(dir.join(format!("seg{i:03}.ts"))).unwrap()).collect()
}

#[test]
fn a_playlist_changed_since_the_interrupt_is_named_and_started_again_with_restart_changed() {
    let files = Files::new();
    files.load_dir("/clear", repo().join("tests/assets/hls/clear")).unwrap();
    files.insert_bytes("/changing/index.m3u8", video0_playlist(&[0, 1, 2, 3, 4, 5]));
    let origin = Origin::start(files, OriginConfig::default()).unwrap();
    origin.faults().add(FaultRule::new(Fault::throttle(100_000)).prefix("/clear/video0/seg"));
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/changing/index.m3u8");
    let mut child = stowage(store.path())
        .args(["download", &url, "--name", "changing", "--connections", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = store.path().join("changing/journal.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&journal).map_or(0, |j| j.matches(r#""op":"segment""#).count()) < 2 {
        assert!(child.try_wait().unwrap().is_none() && Instant::now() < deadline, "the download goes on");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    origin.faults().clear();

    // Regenerated meanwhile: five segments, other files at the same sequence numbers.
    origin.files().insert_bytes("/changing/index.m3u8", video0_playlist(&[3, 4, 5, 0, 1]));
    let out = run(stowage(store.path()).args(["resume", "changing"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the media playlist of rendition media changed since the download began"), "{err}");
    assert!(err.contains("6 segments before, 5 now"), "{err}");
    assert!(err.contains("segment 0: /clear/video0/seg000.ts before, /clear/video0/seg003.ts now"), "{err}");
    assert!(err.contains("resume --restart-changed changing"), "{err}");

    let out = run(stowage(store.path()).args(["resume", "--restart-changed", "changing"]));
    stdout_ok(&out);
    let bundle = store.path().join("changing");
    assert!(
        stored_bytes(&bundle) == clear_video0(&[3, 4, 5, 0, 1]),
        "the bundle is the new playlist's alone"
    );
    stdout_ok(&run(stowage(store.path()).args(["verify", "changing"])));

    // Downloading a finished asset again compares it too.
    origin.files().insert_bytes("/changing/index.m3u8", video0_playlist(&[2, 4]));
    let out = run(stowage(store.path()).args(["download", &url, "--name", "changing"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 segments before, 2 now"));
    stdout_ok(&run(stowage(store.path()).args([
        "download",
        &url,
        "--name",
        "changing",
        "--restart-changed",
    ])));
    assert!(stored_bytes(&bundle) == clear_video0(&[2, 4]));
}

#[test]
fn a_failure_that_stored_nothing_suggests_no_resume() {
    let origin = aes_origin();
    let store = tempfile::tempdir().unwrap();
    let out =
        run(stowage(store.path()).args(["download", &origin.url("/aes/nothing.m3u8"), "--name", "none"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404") && err.contains("nothing of none was stored"), "{err}");
    assert!(!err.contains("resume"), "{err}");
    let text = stdout_ok(&run(stowage(store.path()).args(["resume"])));
    assert!(text.contains("nothing to resume"), "{text}");
}

#[test]
fn downloading_an_asset_again_applies_its_new_title_priority_and_expiry() {
    let origin = aes_origin();
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/video0/index.m3u8");
    let download = |args: &[&str]| {
        stdout_ok(&run(stowage(store.path()).args(["download", &url, "--name", "again"]).args(args)));
    };
    let info = || -> Value {
        serde_json::from_str(&stdout_ok(&run(stowage(store.path()).args(["info", "--json", "again"]))))
            .unwrap()
    };
    download(&["--title", "First", "--priority", "important", "--expires", "2030-01-31"]);
    let v = info();
    assert_eq!((v["title"].as_str(), v["policy"]["priority"].as_str()), (Some("First"), Some("important")));
    assert_eq!(v["policy"]["expires"], "2030-01-31 00:00:00Z");
    // Again, with a new title and expiry: they are applied; the priority, not given, stays.
    download(&["--title", "Second", "--expires", "2031-02-01"]);
    let v = info();
    assert_eq!((v["title"].as_str(), v["policy"]["priority"].as_str()), (Some("Second"), Some("important")));
    assert_eq!(v["policy"]["expires"], "2031-02-01 00:00:00Z");
    // And a new priority alone.
    download(&["--priority", "default"]);
    let v = info();
    assert_eq!((v["title"].as_str(), v["policy"]["priority"].as_str()), (Some("Second"), Some("default")));
    assert_eq!(v["policy"]["expires"], "2031-02-01 00:00:00Z");
}
