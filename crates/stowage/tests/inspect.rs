//! `stowage inspect` run as a user runs it: the built binary on the committed fixtures, on standard input,
//! and on URLs served by an in-process origin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/assets/hls")
}

fn stowage(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stowage"))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stowage");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok_stdout(output: &Output) -> String {
    assert!(output.status.success(), "stowage failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&ok_stdout(output)).expect("valid JSON")
}

#[test]
fn master_summary_lists_variants_renditions_and_sizes() {
    let master = assets().join("clear/master.m3u8");
    let text = ok_stdout(&stowage(&["inspect", master.to_str().unwrap()], None));
    assert!(text.contains("variants (5)"), "{text}");
    assert!(text.contains("640x360"), "{text}");
    assert!(text.contains("avc1.64001e,mp4a.40.2"), "{text}");
    assert!(text.contains("renditions (4)"), "{text}");
    assert!(text.contains("Français"), "{text}");
    // Durations come from the media playlists beside the master; sizes from bandwidth × duration.
    assert_eq!(text.matches("12.0 s").count(), 9, "{text}");
    assert!(text.contains("~934.1 KB"), "{text}");
    assert!(!text.contains("not loaded"), "{text}");
}

#[test]
fn master_json_has_the_documented_shape() {
    let master = assets().join("clear/master.m3u8");
    let v = json(&stowage(&["inspect", "--json", master.to_str().unwrap()], None));
    assert_eq!(v["kind"], "master");
    assert_eq!(v["version"], 6);
    let variants = v["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 5);
    assert_eq!(variants[2]["resolution"]["width"], 640);
    assert_eq!(variants[2]["audio"], "aud");
    assert_eq!(variants[2]["media"]["segments"], 6);
    assert_eq!(variants[2]["media"]["duration"], 12.0);
    // The single-file variant's size is exact: the sum of its byte ranges is the file's size.
    let single = std::fs::metadata(assets().join("clear/single/video.ts")).unwrap().len();
    assert_eq!(variants[4]["estimated_bytes"], single);
    let renditions = v["renditions"].as_array().unwrap();
    let languages: Vec<_> = renditions.iter().map(|r| (r["type"].as_str(), r["language"].as_str())).collect();
    assert_eq!(
        languages,
        [
            (Some("AUDIO"), Some("en")),
            (Some("AUDIO"), Some("fr")),
            (Some("SUBTITLES"), Some("en")),
            (Some("SUBTITLES"), Some("fr"))
        ]
    );
    assert_eq!(renditions[0]["default"], true);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0);
}

#[test]
fn media_json_resolves_uris_keys_and_ivs() {
    let playlist = assets().join("aes/video0/index.m3u8");
    let v = json(&stowage(
        &[
            "inspect",
            "--json",
            "--base",
            "https://cdn.example/a/video0/index.m3u8",
            playlist.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(v["kind"], "media");
    assert_eq!(v["ended"], true);
    assert_eq!(v["total_duration"], 12.0);
    let segments = v["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 6);
    assert_eq!(segments[3]["uri"], "https://cdn.example/a/video0/seg003.ts");
    assert_eq!(segments[3]["uri_as_written"], "seg003.ts");
    assert_eq!(segments[3]["start"], 6.0);
    let key = &segments[3]["keys"][0];
    assert_eq!(key["method"], "AES-128");
    assert_eq!(key["uri"], "https://cdn.example/a/keys/k1.key");
    assert_eq!(key["iv_is_explicit"], true);
    assert_eq!(key["iv"].as_str().unwrap().len(), 34);

    // audio-fr has no IV attribute: the IV is the media sequence number.
    let playlist = assets().join("aes/audio-fr/index.m3u8");
    let v = json(&stowage(&["inspect", "--json", playlist.to_str().unwrap()], None));
    let key = &v["segments"][5]["keys"][0];
    assert_eq!(key["iv_is_explicit"], false);
    assert_eq!(key["iv"], "0x00000000000000000000000000000005");
    assert_eq!(key["uri"], "../keys/k2.key");
}

#[test]
fn media_summary_of_byte_ranges_and_segments() {
    let playlist = assets().join("clear/single/index.m3u8");
    let text = ok_stdout(&stowage(&["inspect", "--segments", playlist.to_str().unwrap()], None));
    assert!(text.contains("6 segments in 1 resource(s)"), "{text}");
    assert!(text.contains("78020@67492"), "{text}");
    assert!(text.contains("keys             none (clear)"), "{text}");
}

#[test]
fn strict_errors_name_line_and_column_and_lenient_parses_on_with_warnings() {
    let bad = b"#EXTM3U\n#EXT-X-TARGETDURATION:x\n";
    let out = stowage(&["inspect", "-"], Some(bad));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("standard input") && err.contains("line 2, column 23"), "{err}");

    let messy =
        b"\xEF\xBB\xBF#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXTINF: 2.0,\r\na.ts\r\n#EXT-X-ENDLIST\r\n";
    let strict = stowage(&["inspect", "-"], Some(messy));
    assert_eq!(strict.status.code(), Some(1));
    let v = json(&stowage(&["inspect", "--json", "--lenient", "-"], Some(messy)));
    assert_eq!(v["segments"].as_array().unwrap().len(), 1);
    let warnings = v["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty());
    assert!(warnings.iter().all(|w| w["line"].as_u64().unwrap() >= 1), "{warnings:?}");
}

#[test]
fn missing_file_and_bad_base_are_named() {
    let out = stowage(&["inspect", "no/such/playlist.m3u8"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/playlist.m3u8"));

    let playlist = assets().join("clear/video0/index.m3u8");
    let out = stowage(&["inspect", "--base", "not-a-url", playlist.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--base"));

    let out = stowage(&["inspect"], None);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn url_input_follows_redirects_and_loads_media_playlists() {
    let files = Files::new();
    files.load_dir("/hls", assets().join("clear")).unwrap();
    let origin = Origin::start(files, OriginConfig::default()).unwrap();
    origin.faults().add(FaultRule::new(Fault::redirect("/hls/master.m3u8")).path("/start"));
    // One rendition playlist is missing: the others are still summarised and the failure is named.
    origin.faults().add(FaultRule::new(Fault::status(404)).path("/hls/subs-fr/index.m3u8"));

    let v = json(&stowage(&["inspect", "--json", &origin.url("/start")], None));
    let variants = v["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 5);
    // URIs resolve against the final URL, after the redirect.
    assert_eq!(variants[0]["uri"], origin.url("/hls/video0/index.m3u8"));
    assert_eq!(variants[0]["media"]["duration"], 12.0);
    let subs_fr = &v["renditions"][3];
    assert_eq!(subs_fr["media"], Value::Null);
    assert!(subs_fr["media_error"].as_str().unwrap().contains("404"), "{subs_fr}");
    // Every media playlist was fetched once.
    assert_eq!(origin.request_count("/hls/video2/index.m3u8"), 1);

    let text = ok_stdout(&stowage(&["inspect", &origin.url("/start")], None));
    assert!(text.contains("not loaded (1)") && text.contains("subs-fr/index.m3u8"), "{text}");

    let out = stowage(&["inspect", &origin.url("/hls/nothing.m3u8")], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404") && err.contains("/hls/nothing.m3u8"), "{err}");
}

#[test]
fn variables_take_the_query_of_the_url_and_the_master_playlists_definitions() {
    let files = Files::new();
    files.insert_bytes(
        "/def/master.m3u8",
        "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-DEFINE:NAME=\"cdn\",VALUE=\"/media\"\n\
         #EXT-X-DEFINE:QUERYPARAM=\"token\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n{$cdn}/v.m3u8?token={$token}\n",
    );
    files.insert_bytes(
        "/media/v.m3u8",
        "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:4\n#EXT-X-DEFINE:IMPORT=\"cdn\"\n\
         #EXT-X-DEFINE:QUERYPARAM=\"token\"\n#EXTINF:4,\n{$cdn}/s0.ts?token={$token}\n\
         #EXTINF:4,\n{$cdn}/s1.ts?token={$token}\n#EXT-X-ENDLIST\n",
    );
    let origin = Origin::start(files, OriginConfig::default()).unwrap();
    // A master playlist over HTTP: its token from its URL, its media playlist read with the master's
    // definition and its own URL's token.
    let url = origin.url("/def/master.m3u8?token=abc");
    let v = json(&stowage(&["inspect", "--json", &url], None));
    let variant = &v["variants"][0];
    assert_eq!(variant["uri"], origin.url("/media/v.m3u8?token=abc"), "{v}");
    assert_eq!(variant["media_error"], Value::Null, "{v}");
    assert_eq!(variant["media"]["segments"], 2, "{v}");
    let media =
        origin.log().into_iter().find(|r| r.path == "/media/v.m3u8").expect("the media playlist was loaded");
    assert_eq!(media.query.as_deref(), Some("token=abc"));

    // A media playlist from a file, with --base standing for the URL it came from, token included.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.m3u8");
    std::fs::write(
        &file,
        "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:4\n#EXT-X-DEFINE:QUERYPARAM=\"token\"\n\
         #EXTINF:4,\ns0.ts?token={$token}\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    let base = "https://cdn.example/media/v.m3u8?token=xyz";
    let v = json(&stowage(&["inspect", "--json", file.to_str().unwrap(), "--base", base], None));
    assert_eq!(v["segments"][0]["uri"], "https://cdn.example/media/s0.ts?token=xyz", "{v}");
}
