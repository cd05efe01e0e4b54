//! Storage that manages itself, run as a user runs it: `stowage policy` sets, shows and clears the store's
//! policy; `download` is refused over the quota, or makes room from the least recently used with
//! `--purge-to-admit`; `download` and `serve` remove expired assets when they start and say so.

mod common;

use common::*;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use stowage_origin::{Files, Origin, OriginConfig};

fn json(output: &Output) -> Value {
    serde_json::from_str(&stdout_ok(output)).unwrap()
}

fn origin() -> Origin {
    let files = Files::new();
    files.load_dir("/clear", stowage_testkit::assets().join("clear")).unwrap();
    Origin::start(files, OriginConfig::default()).unwrap()
}

fn ids(store: &Path) -> Vec<String> {
    let listing = json(&stowage(store, &["list", "--json"]));
    listing["bundles"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_owned()).collect()
}

fn used(store: &Path) -> u64 {
    json(&stowage(store, &["policy", "--json"]))["used"].as_u64().unwrap()
}

/// Sets the time a bundle's manifest says it was last opened, as if long ago.
fn set_manifest_accessed(store: &Path, id: &str, at: &str) {
    let path = store.join(id).join("manifest.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["accessed"] = at.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

#[test]
fn policy_sets_shows_and_clears_the_store_policy() {
    let store = tempfile::tempdir().unwrap();
    let text = stdout_ok(&stowage(store.path(), &["policy"]));
    assert!(text.contains("(none set)"), "{text}");
    let text = stdout_ok(&stowage(
        store.path(),
        &[
            "policy",
            "--store-quota",
            "50G",
            "--free-space-floor",
            "5G",
            "--default-expiry",
            "30d",
            "--purge-to-admit",
        ],
    ));
    assert!(
        text.contains("50.0 GB") && text.contains("5.0 GB") && text.contains("30d after download"),
        "{text}"
    );
    assert!(text.contains("yes: expired, then least recently used"), "{text}");
    let file: Value =
        serde_json::from_slice(&std::fs::read(store.path().join("store-policy.json")).unwrap()).unwrap();
    assert_eq!(file["format"], "stowage-store-policy");
    assert_eq!(file["version"], 1);
    assert_eq!(file["quota"], 50_000_000_000u64);
    assert_eq!(file["free_space_floor"], 5_000_000_000u64);
    assert_eq!(file["default_expiry_seconds"], 30 * 86_400);
    assert_eq!(file["purge_to_admit"], true);

    // Each setting changes alone; `none` removes one.
    let shown =
        json(&stowage(store.path(), &["policy", "--store-quota", "none", "--no-purge-to-admit", "--json"]));
    assert_eq!(shown["quota"], Value::Null);
    assert_eq!(shown["free_space_floor"], 5_000_000_000u64);
    assert_eq!(shown["purge_to_admit"], false);
    assert_eq!(shown["used"], 0);

    let out = stowage(store.path(), &["policy", "--store-quota", "5X"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store-quota"), "{:?}", out);
    let out = stowage(store.path(), &["policy", "some-asset", "--store-quota", "5G"]);
    assert!(!out.status.success(), "an asset's policy has no quota");
    let out = stowage(store.path(), &["policy", "--expires", "30d"]);
    assert!(!out.status.success(), "the store has no expiry of its own");

    let text = stdout_ok(&stowage(store.path(), &["policy", "--clear"]));
    assert!(text.contains("(none set)"), "{text}");
    assert!(!store.path().join("store-policy.json").exists());
}

#[test]
fn download_over_the_quota_is_refused_and_purge_to_admit_makes_room_from_the_least_recently_used() {
    let origin = origin();
    let store = tempfile::tempdir().unwrap();
    let media = origin.url("/clear/video0/index.m3u8");
    for name in ["first", "second"] {
        stdout_ok(&stowage(store.path(), &["download", &media, "--name", name]));
    }
    // Both were downloaded long ago; `first` was looked at since.
    set_manifest_accessed(store.path(), "first", "2026-01-01T00:00:00Z");
    set_manifest_accessed(store.path(), "second", "2026-01-01T00:00:00Z");
    stdout_ok(&stowage(store.path(), &["info", "first"]));

    // The master playlist's declared bandwidth tells what the download needs: more than is left.
    let quota = (used(store.path()) + 1000).to_string();
    stdout_ok(&stowage(store.path(), &["policy", "--store-quota", &quota]));
    let master = origin.url("/clear/master.m3u8");
    let out = stowage(store.path(), &["download", &master, "--name", "third", "--variant", "lowest"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not fit the quota") && stderr.contains(&format!("quota of {quota} bytes")),
        "{stderr}"
    );
    let segments = origin.log().iter().filter(|r| r.path.ends_with(".ts")).count();
    assert_eq!(segments, 12, "only the two first downloads fetched segments");
    assert_eq!(
        ids(store.path()),
        vec!["first", "second", "third"],
        "nothing removed; the download is recorded"
    );
    stdout_ok(&stowage(store.path(), &["remove", "third"]));

    // With purge to admit, a store over its quota makes room first: the least recently used goes.
    let quota = (used(store.path()) - 1).to_string();
    stdout_ok(&stowage(store.path(), &["policy", "--store-quota", &quota, "--purge-to-admit"]));
    // A small asset (subtitles), so that the room made for it is enough to the end.
    let subtitles = origin.url("/clear/subs-en/index.m3u8");
    let out = stowage(store.path(), &["download", &subtitles, "--name", "third", "--json"]);
    let lines: Vec<Value> = stdout_ok(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let removed: Vec<&Value> = lines.iter().filter(|l| l["event"] == "assets_removed").collect();
    assert_eq!(removed.len(), 1, "{lines:?}");
    assert_eq!(removed[0]["asset"], "third");
    assert_eq!(removed[0]["removed"][0]["id"], "second");
    assert_eq!(removed[0]["removed"][0]["reason"], "least_recently_used");
    assert!(removed[0]["removed"][0]["size"].as_u64().unwrap() > 200_000);
    assert_eq!(ids(store.path()), vec!["first", "third"]);
}

#[test]
fn download_and_serve_remove_expired_assets_when_they_start_and_say_so() {
    let origin = origin();
    let store = tempfile::tempdir().unwrap();
    let media = origin.url("/clear/video0/index.m3u8");
    for name in ["old", "older", "kept"] {
        stdout_ok(&stowage(store.path(), &["download", &media, "--name", name]));
    }
    stdout_ok(&stowage(store.path(), &["policy", "old", "--expires", "2020-01-01"]));
    // The store's default expiry is given to a new download without its own.
    stdout_ok(&stowage(store.path(), &["policy", "--default-expiry", "30d"]));
    let text = stdout_ok(&stowage(store.path(), &["download", &media, "--name", "new"]));
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("removed old (") && first.ends_with("): expired"), "{text}");
    assert_eq!(ids(store.path()), vec!["kept", "new", "older"]);
    let info = json(&stowage(store.path(), &["info", "--json", "new"]));
    assert!(info["policy"]["expires"].as_str().is_some_and(|at| at > "2026-12-31"), "{info}");
    let info = json(&stowage(store.path(), &["info", "--json", "kept"]));
    assert_eq!(info["policy"]["expires"], Value::Null, "downloaded before the default was set");

    stdout_ok(&stowage(store.path(), &["policy", "older", "--expires", "2020-01-01"]));
    let server = serve(store.path(), &["--listen", "127.0.0.1:0"]);
    let lines = &server.banner;
    assert!(lines[0].starts_with("serving "), "the address comes first: {lines:?}");
    let removed: Vec<&String> = lines.iter().filter(|l| l.starts_with("removed ")).collect();
    assert_eq!(removed.len(), 1, "{lines:?}");
    assert!(removed[0].starts_with("removed older (") && removed[0].ends_with("): expired"), "{lines:?}");
    assert_eq!(ids(store.path()), vec!["kept", "new"]);
}
