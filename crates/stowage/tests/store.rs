//! The store commands (`list`, `info`, `verify`, `policy`, `purge`, `remove`) run as a user runs them, on
//! bundles written through stowage-bundle from the committed HLS fixtures.

mod common;

use common::*;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stowage_bundle::{
    Artwork, AssetInfo, BundlePlan, MediaFormat, PlannedSegment, Priority, RenditionId, RenditionKind,
    RenditionPlan, StorageManager, StoragePolicy,
};

fn assets() -> PathBuf {
    stowage_testkit::assets().join("clear")
}

/// Stores the first `stored` segments of the fixture's 320x180 variant as asset `id`.
fn store_asset(store: &Path, id: &str, stored: usize, policy: StoragePolicy) -> PathBuf {
    store_asset_with(store, id, stored, policy, None)
}

/// [`store_asset`], with artwork.
fn store_asset_with(
    store: &Path,
    id: &str,
    stored: usize,
    policy: StoragePolicy,
    artwork: Option<Artwork>,
) -> PathBuf {
    let dir = assets().join("video0");
    let playlist = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
    let rendition = RenditionId::new("video").unwrap();
    let segments: Vec<PlannedSegment> = (0..6u64)
        .map(|i| PlannedSegment::media(0, i, 2.0, format!("https://cdn.example/video0/seg{i:03}.ts")))
        .collect();
    let plan = BundlePlan::new(
        AssetInfo::new(id).title(format!("Sample {id}")).url("https://cdn.example/master.m3u8"),
    )
    .rendition(
        RenditionPlan::new(
            rendition.clone(),
            RenditionKind::Video,
            MediaFormat::Ts,
            "https://cdn.example/video0/index.m3u8",
            playlist,
            segments.clone(),
        )
        .primary(true)
        .language("en"),
    )
    .policy(policy);
    let plan = match artwork {
        Some(artwork) => plan.artwork(artwork),
        None => plan,
    };
    let bundle = StorageManager::new(store).create_bundle(plan).unwrap();
    for (i, segment) in segments.iter().take(stored).enumerate() {
        let bytes = std::fs::read(dir.join(format!("seg{i:03}.ts"))).unwrap();
        let mut writer = bundle.segment_writer(&segment.id(&rendition)).unwrap();
        for chunk in bytes.chunks(10_000) {
            writer.write(chunk).unwrap();
        }
        writer.finish().unwrap();
    }
    bundle.write_playlists().unwrap();
    if stored == segments.len() {
        bundle.mark_finished().unwrap();
    }
    bundle.dir().to_owned()
}

#[test]
fn list_and_info_describe_complete_and_partial_assets() {
    let store = tempfile::tempdir().unwrap();
    store_asset(store.path(), "full", 6, StoragePolicy::default().priority(Priority::Important));
    store_asset(store.path(), "half", 3, StoragePolicy::default());

    let text = stdout_ok(&stowage(store.path(), &["list"]));
    assert!(text.contains("2 asset(s)"), "{text}");
    let full_line = text.lines().find(|l| l.trim_start().starts_with("full")).unwrap();
    assert!(full_line.contains("complete") && full_line.contains("important"), "{full_line}");
    let half_line = text.lines().find(|l| l.trim_start().starts_with("half")).unwrap();
    assert!(half_line.contains("partial") && half_line.contains("default"), "{half_line}");

    // Looking at an asset records its use in a small file beside its manifest, which counts on disk: it is
    // looked at once before the sizes are compared.
    stdout_ok(&stowage(store.path(), &["info", "half"]));
    let v: Value = serde_json::from_str(&stdout_ok(&stowage(store.path(), &["list", "--json"]))).unwrap();
    let bundles = v["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 2);
    let half = bundles.iter().find(|b| b["id"] == "half").unwrap();
    assert_eq!(half["finished"], false);
    assert_eq!(half["policy"]["priority"], "default");
    let half_on_disk = half["size_on_disk"].as_u64().unwrap();

    let v: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "half"]))).unwrap();
    assert_eq!(v["playable_offline"], false);
    let video = &v["renditions"][0];
    assert_eq!((video["segments_finished"].as_u64(), video["segments_total"].as_u64()), (Some(3), Some(6)));
    assert_eq!(video["loaded_time_ranges"], serde_json::json!([[0.0, 6.0]]));
    // `info` tells the bytes of stored media from the bytes on disk (playlists, journal and manifest
    // included), which is what `list` shows; both name what they count.
    let media = v["media_bytes"].as_u64().unwrap();
    assert!(media > 0 && media < half_on_disk, "media {media}, on disk {half_on_disk}");
    assert_eq!(v["size_on_disk"].as_u64(), Some(half_on_disk));
    let by_path = stowage(store.path(), &["info", "--json", v["path"].as_str().unwrap()]);
    let by_path: Value = serde_json::from_str(&stdout_ok(&by_path)).unwrap();
    assert_eq!(by_path["size_on_disk"].as_u64(), Some(half_on_disk));

    let text = stdout_ok(&stowage(store.path(), &["info", "full"]));
    assert!(text.contains("playable offline"), "{text}");
    assert!(text.contains("6/6"), "{text}");
    assert!(text.contains("ffplay"), "{text}");
    assert!(text.contains("in stored segments") && text.contains("on disk"), "{text}");

    let out = stowage(store.path(), &["info", "nothing-here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing-here"));
}

#[test]
fn info_marks_the_asset_accessed_and_shows_its_artwork() {
    let store = tempfile::tempdir().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    let dir =
        store_asset_with(store.path(), "seen", 6, StoragePolicy::default(), Some(Artwork::new(png.clone())));
    let manifest = dir.join("manifest.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    json["accessed"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();

    let text = stdout_ok(&stowage(store.path(), &["info", "seen"]));
    assert!(text.contains(&format!("artwork.png (image/png, {} B)", png.len())), "{text}");
    let v: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "seen"]))).unwrap();
    let accessed = v["accessed"].as_str().unwrap();
    assert!(accessed > "2025", "info did not mark the asset accessed: {accessed}");
    let listed: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["list", "--json"]))).unwrap();
    assert_eq!(listed["bundles"][0]["accessed"], accessed, "list and info tell the same last use");
    assert_eq!(v["artwork"]["media_type"], "image/png");
    assert_eq!(v["artwork"]["length"], png.len());
    assert_eq!(std::fs::read(v["artwork"]["path"].as_str().unwrap()).unwrap(), png);
}

#[test]
fn verify_finds_damage_and_repair_withdraws_it() {
    let store = tempfile::tempdir().unwrap();
    let dir = store_asset(store.path(), "asset", 6, StoragePolicy::default());
    stdout_ok(&stowage(store.path(), &["verify", "asset"]));

    // Flip one byte of one stored segment, keeping its length.
    let victim = std::fs::read_dir(dir.join("video"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ts"))
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();

    let out = stowage(store.path(), &["verify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("does not match the checksum"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repair"));

    let text = stdout_ok(&stowage(store.path(), &["verify", "--repair", "asset"]));
    assert!(text.contains("repaired"), "{text}");
    let v: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "asset"]))).unwrap();
    assert_eq!(v["renditions"][0]["segments_finished"], 5);
    stdout_ok(&stowage(store.path(), &["verify", "asset"]));
}

#[test]
fn verify_names_segments_cut_short_deleted_linked_away_or_lost_from_the_journal() {
    let store = tempfile::tempdir().unwrap();
    let dir = store_asset(store.path(), "asset", 6, StoragePolicy::default());
    let outside = store.path().join("outside.ts");
    std::fs::copy(dir.join("video/seg-d0-s2.ts"), &outside).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("video/seg-d0-s0.ts"))
        .unwrap()
        .set_len(10)
        .unwrap();
    std::fs::remove_file(dir.join("video/seg-d0-s1.ts")).unwrap();
    std::fs::remove_file(dir.join("video/seg-d0-s2.ts")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("video/seg-d0-s2.ts")).unwrap();
    // The journal loses the record of the fourth segment, whose file stays.
    let journal = std::fs::read_to_string(dir.join("journal.log")).unwrap();
    let kept: String =
        journal.lines().filter(|l| !l.contains(r#""media_sequence":3"#)).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("journal.log"), kept).unwrap();

    for _ in 0..2 {
        let out = stowage(store.path(), &["verify", "asset"]);
        assert_eq!(out.status.code(), Some(1), "damage is a failure, every time it is found");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("seg-d0-s0.ts is 10 bytes long"), "{text}");
        assert!(text.contains("seg-d0-s1.ts is missing"), "{text}");
        assert!(text.contains("seg-d0-s2.ts is not a regular file"), "{text}");
        assert!(text.contains("seg-d0-s3.ts is there but the journal has no record of it"), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("4 damaged or lost segment(s)") && err.contains("--repair"), "{err}");
    }
    let text = stdout_ok(&stowage(store.path(), &["verify", "--repair", "asset"]));
    assert!(text.contains("4 damaged or lost segment(s) are pending again") && text.contains("resume asset"));
    let v: Value =
        serde_json::from_str(&stdout_ok(&stowage(store.path(), &["info", "--json", "asset"]))).unwrap();
    assert_eq!(
        (v["renditions"][0]["segments_finished"].as_u64(), v["finished"].as_bool()),
        (Some(2), Some(false))
    );
    assert!(std::fs::metadata(&outside).is_ok(), "what the link pointed at is left alone");
    stdout_ok(&stowage(store.path(), &["verify", "asset"]));

    // A journal deleted outright: every stored file is named as unrecorded.
    let other = store_asset(store.path(), "other", 6, StoragePolicy::default());
    std::fs::remove_file(other.join("journal.log")).unwrap();
    let out = stowage(store.path(), &["verify", "other"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("journal.log is missing"), "{text}");
    assert_eq!(text.matches("the journal has no record of it").count(), 6, "{text}");
}

#[test]
fn list_and_resume_show_damaged_bundles_with_the_reason() {
    let store = tempfile::tempdir().unwrap();
    // "fine" is finished, so that resuming has nothing to fetch (its URL is not served).
    for id in ["corrupt", "cut", "future", "hostile", "lockdir", "fine"] {
        store_asset(store.path(), id, if id == "fine" { 6 } else { 3 }, StoragePolicy::default());
    }
    let manifest = |id: &str| store.path().join(id).join("manifest.json");
    std::fs::write(manifest("corrupt"), "{ this is not json").unwrap();
    let text = std::fs::read_to_string(manifest("cut")).unwrap();
    std::fs::write(manifest("cut"), &text[..text.len() / 3]).unwrap();
    std::fs::write(manifest("future"), text.replacen("\"version\": 1", "\"version\": 7", 1)).unwrap();
    let hostile =
        std::fs::read_to_string(manifest("hostile")).unwrap().replacen("\"video\"", "\"../../etc\"", 1);
    std::fs::write(manifest("hostile"), hostile).unwrap();
    std::fs::remove_file(store.path().join("lockdir/.lock")).unwrap();
    std::fs::create_dir(store.path().join("lockdir/.lock")).unwrap();

    let text = stdout_ok(&stowage(store.path(), &["list"]));
    assert_eq!(text.matches("DAMAGED").count(), 5, "{text}");
    assert!(text.contains("damaged (5)"), "{text}");
    assert!(text.contains("corrupt: invalid manifest") && text.contains("cut: invalid manifest"), "{text}");
    assert!(text.contains("future: ") && text.contains("format version 7"), "{text}");
    assert!(text.contains("hostile: ") && text.contains("../../etc"), "{text}");
    assert!(text.contains("lockdir: ") && text.contains(".lock"), "{text}");
    let v: Value = serde_json::from_str(&stdout_ok(&stowage(store.path(), &["list", "--json"]))).unwrap();
    assert_eq!(v["damaged"].as_array().unwrap().len(), 5);
    assert!(v["damaged"][0]["size_on_disk"].as_u64().unwrap() > 0);

    // The damaged ones are named, and the command fails.
    let out = stowage(store.path(), &["resume"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("nothing to resume"));
    assert!(err.contains("5 bundle(s)") && err.contains("cannot be resumed"), "{err}");
    for id in ["corrupt", "cut", "future", "hostile", "lockdir"] {
        assert!(err.contains(&format!("{id}: damaged")), "{id}: {err}");
    }
    let out = stowage(store.path(), &["resume", "future"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot resume future: damaged") && err.contains("version 7"), "{err}");

    for id in ["corrupt", "cut", "future", "hostile", "lockdir"] {
        stdout_ok(&stowage(store.path(), &["remove", id]));
    }
    let text = stdout_ok(&stowage(store.path(), &["list"]));
    assert!(!text.contains("DAMAGED"), "{text}");
}

#[test]
fn what_a_removal_cut_short_left_is_listed_and_purged() {
    let store = tempfile::tempdir().unwrap();
    store_asset(store.path(), "kept", 6, StoragePolicy::default().priority(Priority::Important));
    // What a purge killed after taking the manifest leaves, and what a removal killed after marking the
    // folder leaves.
    let left = store_asset(store.path(), "left", 6, StoragePolicy::default());
    std::fs::remove_file(left.join("manifest.json")).unwrap();
    let marked = store_asset(store.path(), "marked", 6, StoragePolicy::default());
    std::fs::rename(&marked, store.path().join(".removing-marked")).unwrap();

    let text = stdout_ok(&stowage(store.path(), &["list"]));
    let line = text.lines().find(|l| l.trim_start().starts_with("left")).expect("the leftover is listed");
    assert!(line.contains("DAMAGED") && line.contains("KB"), "{text}");
    assert!(text.contains("left: ") && text.contains("no manifest.json"), "{text}");
    assert!(!store.path().join(".removing-marked").exists(), "listing finishes a marked removal");

    let text = stdout_ok(&stowage(store.path(), &["purge", "--quota", "1T"]));
    assert!(text.contains("removed") && text.contains("left") && text.contains("did not finish"), "{text}");
    assert!(!left.exists());
    let text = stdout_ok(&stowage(store.path(), &["list"]));
    assert!(text.contains("1 asset(s)") && !text.contains("DAMAGED"), "{text}");
}

#[test]
fn policy_purge_and_remove() {
    let store = tempfile::tempdir().unwrap();
    store_asset(store.path(), "keep", 6, StoragePolicy::default().priority(Priority::Important));
    store_asset(store.path(), "old", 6, StoragePolicy::default());
    store_asset(store.path(), "new", 6, StoragePolicy::default());
    let text = stdout_ok(&stowage(store.path(), &["policy", "old", "--expires", "2001-01-01"]));
    assert!(text.contains("expires 2001-01-01 00:00:00Z"), "{text}");

    // Room for two assets: the expired one goes first, and nothing else needs to.
    let one = StorageManager::new(store.path()).list().unwrap().bundles[0].size;
    let quota = (one * 2 + one / 2).to_string();
    let text = stdout_ok(&stowage(store.path(), &["purge", "--quota", &quota]));
    assert!(text.contains("removed old") && text.contains("expired"), "{text}");
    assert!(!text.contains("removed new") && !text.contains("removed keep"), "{text}");

    // Room for none: the default-priority one goes, the important one stays, and the target is not met.
    let out = stowage(store.path(), &["purge", "--quota", "1K"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("removed new") && !text.contains("removed keep"), "{text}");
    assert!(text.contains("NOT met"), "{text}");

    let out = stowage(store.path(), &["purge", "--quota", "1X"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown size unit"));

    let text = stdout_ok(&stowage(store.path(), &["remove", "keep"]));
    assert!(text.contains("removed keep"), "{text}");
    let text = stdout_ok(&stowage(store.path(), &["list"]));
    assert!(text.contains("(no assets)"), "{text}");
}
