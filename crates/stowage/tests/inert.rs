//! What an origin says stays inert on a terminal: rendition names, titles and URIs carrying terminal escape
//! sequences (set the window title, clear the screen, an 8-bit CSI, a bidirectional override) are shown
//! escaped by `inspect`, `download`, `info` and `list`, in text and in JSON, and a URI of a hundred
//! kilobytes is elided in messages.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;
use stowage_origin::{Files, Origin, OriginConfig};

/// A window title, a screen clear, an 8-bit CSI and a right-to-left override.
const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{202e}";

/// The clear fixture tree.
fn assets() -> PathBuf {
    stowage_testkit::assets().join("clear")
}

/// Fails if the bytes hold anything a terminal would act on (other than line feeds).
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        let active = (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c);
        assert!(!active, "{what} holds {:?} raw:\n{text}", c);
    }
}

/// A media playlist of the fixture's rendition `dir`, each segment titled with the hostile text.
fn titled(dir: &str) -> String {
    let source = std::fs::read_to_string(assets().join(dir).join("index.m3u8")).unwrap();
    source
        .lines()
        .map(|l| match l.strip_prefix("#EXTINF:") {
            Some(rest) => format!("#EXTINF:{}{HOSTILE}title\n", rest.trim_end_matches(',').to_owned() + ","),
            None if !l.starts_with('#') && !l.is_empty() => format!("/clear/{dir}/{l}\n"),
            None => format!("{l}\n"),
        })
        .collect()
}

fn hostile_origin() -> Origin {
    let files = Files::new();
    files.load_dir("/clear", assets()).unwrap();
    let master = format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n\
         #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"{HOSTILE}English\",DEFAULT=YES,\
         AUTOSELECT=YES,URI=\"/evil/audio.m3u8\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=549529,RESOLUTION=320x180,CODECS=\"avc1.64000c,mp4a.40.2\",AUDIO=\"aud\"\n\
         /evil/video.m3u8\n"
    );
    files.insert_bytes("/evil/master.m3u8", master);
    files.insert_bytes("/evil/video.m3u8", titled("video0"));
    files.insert_bytes("/evil/audio.m3u8", titled("audio-en"));
    // A segment whose URI carries the escapes: it cannot be had, and the error names it.
    let broken = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n/clear/video0/seg{HOSTILE}000.ts\n#EXT-X-ENDLIST\n"
    );
    files.insert_bytes("/evil/broken.m3u8", broken);
    Origin::start(files, OriginConfig::default()).unwrap()
}

#[test]
fn inspect_shows_hostile_names_titles_and_uris_escaped() {
    let origin = hostile_origin();
    let store = tempfile::tempdir().unwrap();
    for args in [
        vec!["inspect", "MASTER"],
        vec!["inspect", "--segments", "VIDEO"],
        vec!["inspect", "--segments", "BROKEN"],
        vec!["inspect", "--json", "MASTER"],
        vec!["inspect", "--json", "VIDEO"],
    ] {
        let args: Vec<String> = args
            .iter()
            .map(|a| match *a {
                "MASTER" => origin.url("/evil/master.m3u8"),
                "VIDEO" => origin.url("/evil/video.m3u8"),
                "BROKEN" => origin.url("/evil/broken.m3u8"),
                other => other.to_owned(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = stowage(store.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_inert(&format!("{args:?}"), &out.stdout);
        let text = String::from_utf8_lossy(&out.stdout);
        if args.contains(&"--json") {
            // Escaped as JSON, and still the same text once read.
            let v: Value = serde_json::from_str(&text).unwrap();
            let found = v.to_string().contains("owned") && text.contains("\\u001b]0;owned\\u0007");
            assert!(found && text.contains("\\u009b31m") && text.contains("\\u202e"), "{text}");
        } else if !args.last().is_some_and(|a| a.ends_with("video.m3u8")) {
            // The summary of a media playlist shows no titles; names and URIs are shown.
            assert!(text.contains("\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u{202e}"), "{text}");
        }
    }
}

#[test]
fn download_info_and_list_show_what_the_origin_named_escaped() {
    let origin = hostile_origin();
    let store = tempfile::tempdir().unwrap();
    let master = origin.url("/evil/master.m3u8");
    let out = stowage(store.path(), &["download", &master, "--name", "evil", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_inert("download --json", &out.stdout);
    assert_inert("download --json (stderr)", &out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\\u009b31m"),
        "the name is in the events, escaped"
    );

    for args in [vec!["info", "evil"], vec!["info", "--json", "evil"], vec!["list"]] {
        let out = stowage(store.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_inert(&format!("{args:?}"), &out.stdout);
    }
    let info = String::from_utf8_lossy(&stowage(store.path(), &["info", "evil"]).stdout).into_owned();
    assert!(info.contains("\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u{202e}English"), "{info}");

    let out = stowage(store.path(), &["download", &origin.url("/evil/broken.m3u8"), "--name", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert_inert("a failed download's error", &out.stderr);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("seg\\x1b]0;owned"), "the URI is named, escaped: {err}");
}

#[test]
fn a_uri_of_a_hundred_kilobytes_is_elided_in_messages() {
    let files = Files::new();
    let long = format!("/{}.m3u8", "a".repeat(100_000));
    let origin = Origin::start(files, OriginConfig::default()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let url = origin.url(&long);
    let out = stowage(store.path(), &["download", &url, "--name", "long"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.len() < 2_000, "{} bytes of error", err.len());
    assert!(err.contains("bytes in all]"), "{err}");
    assert!(err.contains(&origin.url("/aaaa")), "the head is kept: {err}");
    let out = stowage(store.path(), &["inspect", &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.len() < 2_000 && err.contains("bytes in all]"), "{err}");
}
