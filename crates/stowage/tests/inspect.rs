//! `stowage inspect` run as a user runs it: the built binary on the committed fixtures, on standard input,
//! and on URLs served by an in-process origin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig, TlsConfig};
use stowage_testkit::assets;

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

fn clear_origin(config: OriginConfig) -> Origin {
    let files = Files::new();
    files.load_dir("/hls", assets().join("clear")).unwrap();
    Origin::start(files, config).unwrap()
}

#[test]
fn url_input_sends_the_headers_and_cookies_of_download() {
    let origin = clear_origin(OriginConfig::default());
    // Master and media playlists alike need both the token and the cookie.
    origin.faults().add(
        FaultRule::new(Fault::status(401)).prefix("/hls").missing_header("authorization", "Bearer s3cret"),
    );
    origin
        .faults()
        .add(FaultRule::new(Fault::status(403)).prefix("/hls").missing_header("cookie", "session=abc"));
    let url = origin.url("/hls/master.m3u8");

    let out = stowage(&["inspect", &url], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = stowage(&["inspect", "-H", "Authorization: Bearer s3cret", &url], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));

    let v = json(&stowage(
        &["inspect", "--json", "-H", "Authorization: Bearer s3cret", "--cookie", "session=abc", &url],
        None,
    ));
    let variants = v["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 5);
    assert!(variants.iter().all(|v| v["media"]["duration"] == 12.0), "the media playlists were loaded: {v}");
    assert!(v["renditions"].as_array().unwrap().iter().all(|r| r["media_error"].is_null()), "{v}");

    let out = stowage(&["inspect", "-H", "no colon", &url], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-H no colon"));
    let out = stowage(&["inspect", "-H", "Bad Name: x", &url], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid header name"));
}

#[test]
fn url_input_trusts_the_certificate_authorities_of_ca_file() {
    let origin = clear_origin(OriginConfig::default().tls(TlsConfig::default()));
    let url = origin.url("/hls/master.m3u8");
    assert!(url.starts_with("https://"));
    let out = stowage(&["inspect", &url], None);
    assert_eq!(out.status.code(), Some(1), "the test authority is not one of the web's");
    assert!(String::from_utf8_lossy(&out.stderr).to_lowercase().contains("certificate"));

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, origin.ca_pem().unwrap()).unwrap();
    let v = json(&stowage(&["inspect", "--json", "--ca-file", ca.to_str().unwrap(), &url], None));
    assert_eq!(v["variants"][0]["media"]["duration"], 12.0);

    let missing = dir.path().join("missing.pem");
    let out = stowage(&["inspect", "--ca-file", missing.to_str().unwrap(), &url], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pem"));
}

#[test]
fn a_device_or_endless_input_is_read_no_further_than_the_limit() {
    // A device says its length is 0.
    let out = stowage(&["inspect", "/dev/zero"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/zero") && err.contains("larger than 67108864 bytes"), "{err}");

    // Standard input says nothing: an endless one is cut at the limit (the writer then finds the pipe
    // closed).
    let mut child = Command::new(env!("CARGO_BIN_EXE_stowage"))
        .args(["inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'#'; 1 << 20];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("standard input") && err.contains("larger than 67108864 bytes"), "{err}");
}

/// The rows of the table of `inspect --json` objects in the crate's root docs: each row's object paths
/// and the members it documents (the backquoted names outside parentheses).
fn documented_shape() -> Vec<(Vec<String>, Vec<String>)> {
    let docs = include_str!("../src/lib.rs");
    let section = &docs[docs.find("## `inspect --json`").expect("the docs have the section")..];
    let backquoted =
        |text: &str| -> Vec<String> { text.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    let mut rows = Vec::new();
    for line in section.lines().map(|l| l.trim_start_matches("//!").trim()) {
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 2, "{line}");
        let mut outside = String::new();
        let mut depth = 0;
        for c in cells[1].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => outside.push(c),
                _ => {}
            }
        }
        let members: Vec<String> = backquoted(&outside)
            .into_iter()
            .filter(|m| m.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .collect();
        rows.push((backquoted(cells[0]), members));
    }
    assert!(rows.len() > 20, "{rows:?}");
    rows
}

/// Members that are maps of attribute names, not objects of their own.
const MAPS: [&str; 2] = ["other_attributes", "client_attributes"];

/// Checks every object of `value` at `path` (and below) against the documented rows: exactly the
/// documented members, and a row for every object member. Records which members were seen non-empty.
fn walk(
    value: &Value,
    path: &str,
    rows: &[(Vec<String>, Vec<String>)],
    seen: &mut std::collections::BTreeSet<(usize, String)>,
) {
    let Value::Object(object) = value else { return };
    let row = rows.iter().position(|(paths, _)| paths.iter().any(|p| p == path));
    let row = row.unwrap_or_else(|| panic!("{path} is not documented"));
    let mut documented: Vec<&str> = rows[row].1.iter().map(String::as_str).collect();
    let mut present: Vec<&str> = object.keys().map(String::as_str).collect();
    documented.sort_unstable();
    present.sort_unstable();
    assert_eq!(present, documented, "the members of {path}");
    for (key, child) in object {
        let empty = match child {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            seen.insert((row, key.clone()));
        }
        if MAPS.contains(&key.as_str()) {
            assert!(child.as_object().is_some_and(|m| m.values().all(Value::is_string)), "{path}.{key}");
            continue;
        }
        match child {
            Value::Object(_) => walk(child, &format!("{path}.{key}"), rows, seen),
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{path}.{key}[]"), rows, seen);
                }
            }
            _ => {}
        }
    }
}

/// Compares `actual` with the expected file (or writes it with STOWAGE_BLESS set).
fn check_snapshot(expected: &Path, actual: &str) {
    if std::env::var_os("STOWAGE_BLESS").is_some() {
        std::fs::write(expected, actual).unwrap();
        return;
    }
    let current = std::fs::read_to_string(expected).unwrap_or_default();
    assert!(current == actual, "{} differs (STOWAGE_BLESS=1 rewrites it):\n{actual}", expected.display());
}

#[test]
fn json_of_playlists_with_every_tag_has_every_documented_member_and_nothing_else() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/inspect");
    let rows = documented_shape();
    let mut seen = std::collections::BTreeSet::new();
    for (root, args) in [
        ("media", vec!["--base", "https://origin.example/live/index.m3u8", "media.m3u8"]),
        ("master", vec!["master/master.m3u8"]),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_stowage"))
            .args(["inspect", "--json", "--lenient"])
            .args(&args)
            .current_dir(&data)
            .output()
            .unwrap();
        let v = json(&output);
        walk(&v, root, &rows, &mut seen);
        let pretty = serde_json::to_string_pretty(&v).unwrap() + "\n";
        check_snapshot(&data.join(format!("{root}.json")), &pretty);
    }
    // The playlists exercise every tag and attribute: every documented member is seen with a value.
    for (row, (paths, members)) in rows.iter().enumerate() {
        for member in members {
            assert!(
                seen.contains(&(row, member.clone())),
                "{} never has a value for {member}",
                paths.join(", ")
            );
        }
    }
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
