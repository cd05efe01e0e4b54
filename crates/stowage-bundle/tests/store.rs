//! The storage manager: listing, policies, purge ordering, bundles in use, admission.

mod common;

use std::io::{self};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use stowage_bundle::{
    Admission, AssetCache, AssetInfo, BundlePlan, ContentRequest, DownloadRequest, Error, LocalFs,
    ManifestChanges, Priority, PurgeOptions, PurgeReason, RenditionKind, Storage, StorageManager,
    StoragePolicy, StorePolicy,
};

/// Creates a finished bundle of `count` segments of 10,000 bytes with `policy`, accessed at `accessed`
/// seconds after the epoch.
fn add(store: &StorageManager, id: &str, count: u64, policy: StoragePolicy, accessed: u64) {
    let bundle = store.create_bundle(simple_plan(id, count).policy(policy)).unwrap();
    for seg in bundle.pending_segments() {
        write_segment(&bundle, &seg, &segment_bytes(&seg, 5, 10_000)).unwrap();
    }
    bundle.mark_finished().unwrap();
    drop(bundle);
    // Access times are set through the manifest, as a player marking them would, but to fixed values.
    let path = store.bundle_path(id).unwrap().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["accessed"] = serde_json::Value::String(format!("2026-01-01T00:{:02}:00Z", accessed));
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

fn ids(report: &stowage_bundle::PurgeReport) -> Vec<(&str, PurgeReason)> {
    report.removed.iter().map(|r| (r.asset.id.as_str(), r.reason)).collect()
}

#[test]
fn list_shows_identity_size_completeness_and_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path().join("store"));
    assert!(store.list().unwrap().bundles.is_empty(), "a missing store lists as empty");
    add(&store, "b", 2, StoragePolicy::default().priority(Priority::Important), 1);
    let partial = store.create_bundle(simple_plan("a", 3)).unwrap();
    let seg = partial.pending_segments()[0].clone();
    write_segment(&partial, &seg, &[1; 500]).unwrap();
    std::fs::create_dir_all(tmp.path().join("store/not-a-bundle")).unwrap();
    std::fs::create_dir_all(tmp.path().join("store/broken")).unwrap();
    std::fs::write(tmp.path().join("store/broken/manifest.json"), "{}").unwrap();

    let listing = store.list().unwrap();
    assert_eq!(listing.bundles.len(), 2);
    let (a, b) = (&listing.bundles[0], &listing.bundles[1]);
    assert_eq!((a.asset.id.as_str(), a.finished, a.complete, a.in_use), ("a", false, false, true));
    assert_eq!((b.asset.id.as_str(), b.finished, b.complete, b.in_use), ("b", true, true, false));
    assert_eq!(b.asset.title.as_deref(), Some("Asset b"));
    assert_eq!(b.policy.priority, Priority::Important);
    assert!(b.size > 20_000 && a.size > 500, "sizes count every file: {} {}", a.size, b.size);
    assert_eq!(store.size_on_disk(&b.path).unwrap(), b.size, "one bundle's size, counted alike");
    assert_eq!(listing.damaged.len(), 1);
    assert!(matches!(listing.damaged[0].error, Error::InvalidManifest { .. }));
}

#[test]
fn purge_removes_expired_then_least_recently_accessed_never_important_or_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    let now = SystemTime::now();
    let past = now - Duration::from_secs(60);
    let future = now + Duration::from_secs(3600);
    add(&store, "old-default", 2, StoragePolicy::default(), 1);
    add(&store, "older-important", 2, StoragePolicy::default().priority(Priority::Important), 0);
    add(&store, "new-default", 2, StoragePolicy::default().expires(future), 5);
    add(&store, "mid-default", 2, StoragePolicy::default(), 3);
    add(&store, "expired-recent", 2, StoragePolicy::default().expires(past), 9);
    add(
        &store,
        "expired-important",
        2,
        StoragePolicy::default().expires(past).priority(Priority::Important),
        8,
    );
    // A writer holds it (and opening it for writing makes it the most recently accessed).
    let busy = store.open_bundle("mid-default").unwrap();

    // A quota that needs three removals after the expired ones: the third would be the busy one.
    let each = store.list().unwrap().bundles[0].size;
    let report = store.purge(PurgeOptions::quota(each + each / 2)).unwrap();
    assert_eq!(
        ids(&report),
        vec![
            ("expired-important", PurgeReason::Expired),
            ("expired-recent", PurgeReason::Expired),
            ("old-default", PurgeReason::LeastRecentlyAccessed),
            ("new-default", PurgeReason::LeastRecentlyAccessed),
        ]
    );
    assert_eq!(report.skipped_in_use, vec![store.bundle_path("mid-default").unwrap()]);
    assert!(!report.target_met, "only the important and the busy bundle are left");
    assert_eq!(report.freed, report.removed.iter().map(|r| r.size).sum::<u64>());
    let left: Vec<String> = store.list().unwrap().bundles.into_iter().map(|b| b.asset.id).collect();
    assert_eq!(left, vec!["mid-default", "older-important"]);

    // Important ones go only when asked; the busy one never.
    let report = store.purge(PurgeOptions::quota(0).include_important(true)).unwrap();
    assert_eq!(ids(&report), vec![("older-important", PurgeReason::ImportantAllowed)]);
    assert!(!report.target_met);
    drop(busy);
    let report = store.purge(PurgeOptions::quota(0)).unwrap();
    assert_eq!(ids(&report), vec![("mid-default", PurgeReason::LeastRecentlyAccessed)]);
    assert!(report.target_met);
}

#[test]
fn purge_within_target_still_removes_expired_unless_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    let past = SystemTime::now() - Duration::from_secs(1);
    add(&store, "expired", 1, StoragePolicy::default().expires(past), 1);
    add(&store, "kept", 1, StoragePolicy::default(), 0);
    let report = store.purge(PurgeOptions::quota(u64::MAX).keep_expired_within_target(true)).unwrap();
    assert!(report.removed.is_empty() && report.target_met);
    let report = store.purge(PurgeOptions::quota(u64::MAX)).unwrap();
    assert_eq!(ids(&report), vec![("expired", PurgeReason::Expired)]);
    // Expiry is judged at the given time.
    let later = SystemTime::now() + Duration::from_secs(10);
    store.set_policy("kept", StoragePolicy::default().expires(later - Duration::from_secs(5))).unwrap();
    assert!(store.purge(PurgeOptions::quota(u64::MAX)).unwrap().removed.is_empty());
    let report = store.purge(PurgeOptions::quota(u64::MAX).now(later)).unwrap();
    assert_eq!(ids(&report), vec![("kept", PurgeReason::Expired)]);
}

#[test]
fn free_space_target_and_policy_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    add(&store, "a", 1, StoragePolicy::default(), 1);
    // A free-space target already met removes nothing; an impossible one removes what it may.
    let report = store.purge(PurgeOptions::free_space(1)).unwrap();
    assert!(report.removed.is_empty() && report.target_met);
    store.set_policy("a", StoragePolicy::default().priority(Priority::Important)).unwrap();
    let report = store.purge(PurgeOptions::free_space(u64::MAX)).unwrap();
    assert!(report.removed.is_empty() && !report.target_met, "important is kept");
    let bundle = store.open_bundle("a").unwrap();
    assert!(matches!(store.set_policy("a", StoragePolicy::default()), Err(Error::Locked { .. })));
    assert!(matches!(store.remove("a"), Err(Error::Locked { .. })));
    bundle.set_policy(StoragePolicy::default()).unwrap();
    drop(bundle);
    assert_eq!(store.list().unwrap().bundles[0].policy.priority, Priority::Default);
    store.mark_accessed("a").unwrap();
    assert!(store.remove("a").unwrap() > 10_000);
    assert!(matches!(store.remove("a"), Err(Error::NoSuchBundle { .. })));
    assert!(matches!(store.open_bundle("../x"), Err(Error::InvalidName { .. })));
}

#[test]
fn admission_counts_what_purge_could_free() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    add(&store, "default", 2, StoragePolicy::default(), 1);
    add(&store, "important", 2, StoragePolicy::default().priority(Priority::Important), 2);
    let used = store.used().unwrap();
    let each = used / 2;
    assert_eq!(store.check_admission(1000, None).unwrap(), Admission::Fits);
    assert_eq!(store.check_admission(1000, Some(used + 1000)).unwrap(), Admission::Fits);
    assert_eq!(store.check_admission(1000, Some(used)).unwrap(), Admission::FitsAfterPurge { reclaim: 1000 });
    match store.check_admission(each * 2, Some(used)).unwrap() {
        Admission::Refused { used: u, estimated, limit } => {
            assert_eq!((u, estimated, limit), (used, each * 2, used));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(store.check_admission(u64::MAX / 2, None).unwrap(), Admission::Refused { .. }));
}

/// The local filesystem, except that deleting a folder stops after removing `files` files and fails, as a
/// removal of a process killed midway stops.
#[derive(Debug)]
struct CutShort {
    inner: LocalFs,
    files: usize,
}

impl Storage for CutShort {
    stowage_testkit::storage_pass_through!(
        (inner)
        create_dir_all, create, open_append, open_read, len, exists, rename, truncate, remove_file, list_dir,
        sync_dir, try_lock, available_space,
    );
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut left = self.files;
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    stack.push(entry.path());
                } else if left == 0 {
                    return Err(io::Error::other("killed in the middle of a removal"));
                } else {
                    std::fs::remove_file(entry.path())?;
                    left -= 1;
                }
            }
        }
        Err(io::Error::other("killed in the middle of a removal"))
    }
}

/// The names in the store folder.
fn folder_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_removal_or_purge_cut_short_is_finished_by_the_next_pass_and_leaks_no_space() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    for id in ["a", "b", "c"] {
        add(&store, id, 3, StoragePolicy::default(), 1);
    }
    let killed =
        StorageManager::with_storage(Arc::new(CutShort { inner: LocalFs::new(), files: 2 }), tmp.path());
    assert!(killed.remove("a").is_err());
    let listing = store.list().unwrap();
    let ids: Vec<&str> = listing.bundles.iter().map(|b| b.asset.id.as_str()).collect();
    assert_eq!(ids, ["b", "c"], "the bundle cut short is gone, not half there");
    assert!(listing.damaged.is_empty(), "{:?}", listing.damaged);
    assert_eq!(folder_names(tmp.path()), ["b", "c"], "listing finished the removal");

    // A purge killed while removing its first bundle: the next purge finishes it and goes on.
    assert!(killed.purge(PurgeOptions::quota(0)).is_err());
    let report = store.purge(PurgeOptions::quota(0)).unwrap();
    assert!(report.target_met);
    assert_eq!(folder_names(tmp.path()), Vec::<String>::new());
    assert_eq!(store.used().unwrap(), 0);
}

#[test]
fn leftovers_without_a_manifest_are_listed_as_damaged_and_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    add(&store, "gone", 3, StoragePolicy::default(), 1);
    add(&store, "kept", 3, StoragePolicy::default().priority(Priority::Important), 2);
    // What a removal that took the manifest first and was killed after it leaves, and a folder that is
    // not the store's.
    std::fs::remove_file(tmp.path().join("gone/manifest.json")).unwrap();
    std::fs::create_dir_all(tmp.path().join("photos")).unwrap();
    std::fs::write(tmp.path().join("photos/a.jpg"), b"jpeg").unwrap();

    let listing = store.list().unwrap();
    assert_eq!(listing.bundles.len(), 1);
    assert_eq!(listing.damaged.len(), 1, "{:?}", listing.damaged);
    let leftover = &listing.damaged[0];
    assert_eq!(leftover.id, "gone");
    assert!(matches!(leftover.error, Error::Leftover { .. }));
    assert!(leftover.size > 30_000, "its space is counted: {}", leftover.size);
    assert!(store.used().unwrap() > leftover.size);

    let report = store.purge(PurgeOptions::quota(u64::MAX)).unwrap();
    assert_eq!(report.leftovers.len(), 1);
    assert_eq!(report.freed, report.leftovers[0].1);
    assert!(report.removed.is_empty());
    assert_eq!(folder_names(tmp.path()), ["kept", "photos"]);
    assert!(store.list().unwrap().damaged.is_empty());
}

#[test]
fn damaged_bundles_are_listed_with_the_reason_kept_by_purge_and_removable() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    for id in ["corrupt", "cut", "future", "hostile", "lockdir", "fine"] {
        add(&store, id, 2, StoragePolicy::default(), 1);
    }
    let manifest = |id: &str| tmp.path().join(id).join("manifest.json");
    std::fs::write(manifest("corrupt"), b"\x00\x01 not json").unwrap();
    let text = std::fs::read_to_string(manifest("cut")).unwrap();
    std::fs::write(manifest("cut"), &text[..text.len() / 2]).unwrap();
    std::fs::write(manifest("future"), text.replacen("\"version\": 1", "\"version\": 99", 1)).unwrap();
    let hostile =
        std::fs::read_to_string(manifest("hostile")).unwrap().replacen("\"video\"", "\"../../x\"", 1);
    std::fs::write(manifest("hostile"), hostile).unwrap();
    std::fs::remove_file(tmp.path().join("lockdir/.lock")).unwrap();
    std::fs::create_dir(tmp.path().join("lockdir/.lock")).unwrap();

    let listing = store.list().unwrap();
    assert_eq!(listing.bundles.len(), 1);
    let damaged: Vec<(&str, String)> =
        listing.damaged.iter().map(|d| (d.id.as_str(), d.error.to_string())).collect();
    assert_eq!(damaged.len(), 5, "{damaged:?}");
    assert!(matches!(listing.damaged[0].error, Error::InvalidManifest { .. }), "{damaged:?}");
    assert!(matches!(listing.damaged[1].error, Error::InvalidManifest { .. }), "{damaged:?}");
    assert!(matches!(listing.damaged[2].error, Error::UnsupportedVersion { found: 99, .. }), "{damaged:?}");
    assert!(damaged[3].1.contains("../../x"), "{damaged:?}");
    assert!(damaged[4].1.contains(".lock"), "{damaged:?}");
    assert!(listing.damaged.iter().all(|d| d.size > 0));

    let report = store.purge(PurgeOptions::quota(0)).unwrap();
    assert_eq!(report.removed.len(), 1, "only the readable bundle goes");
    assert!(!report.target_met, "the damaged ones still take space");
    for (id, _) in &damaged {
        assert!(store.remove(id).unwrap() > 0, "{id}");
    }
    assert_eq!(folder_names(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_download_asked_for_and_not_yet_planned_is_recorded_and_planned_later() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    let request = DownloadRequest::new(vec![ContentRequest::new(
        vec!["max-resolution=1280x720".to_owned()],
        vec!["audio:fr".to_owned(), "subtitles:all".to_owned()],
    )]);
    let plan = BundlePlan::new(AssetInfo::new("later").url("https://cdn.example/master.m3u8").title("Later"))
        .request(request.clone());
    drop(store.create_bundle(plan).unwrap());
    // Nothing planned is not finished: a restore finds it; there is no local playlist to play yet.
    let listed = store.list().unwrap();
    let summary = &listed.bundles[0];
    assert!(!summary.finished && !summary.complete && !summary.cancelled, "{summary:?}");
    let dir = store.bundle_path("later").unwrap();
    assert!(!dir.join("master.m3u8").exists());
    let manifest = AssetCache::open(&dir).unwrap().manifest().clone();
    assert_eq!(manifest.request.as_ref(), Some(&request));
    assert!(manifest.renditions.is_empty());

    // A cancel keeping the partial content is recorded; a new download of the asset clears it and takes
    // its title, policy and URL.
    store.update("later", ManifestChanges::new().cancelled(true)).unwrap();
    assert!(store.list().unwrap().bundles[0].cancelled);
    let policy = StoragePolicy::default().priority(Priority::Important);
    let changes = ManifestChanges::new()
        .cancelled(false)
        .title("Later, again")
        .policy(policy)
        .url("https://cdn.example/master.m3u8?token=2");
    store.update("later", changes).unwrap();
    let summary = &store.list().unwrap().bundles[0];
    assert!(!summary.cancelled);
    assert_eq!(summary.policy, policy);
    assert_eq!(summary.asset.title.as_deref(), Some("Later, again"));
    assert_eq!(summary.asset.url.as_deref(), Some("https://cdn.example/master.m3u8?token=2"));

    // Planned once its playlists are read: the master playlist, then the renditions.
    let bundle = store.open_bundle("later").unwrap();
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nhttps://cdn.example/video.m3u8\n";
    bundle.set_master_playlist(master.to_owned(), "https://cdn.example/master.m3u8".to_owned()).unwrap();
    assert!(bundle.set_master_playlist(master.to_owned(), String::new()).is_err(), "one master playlist");
    let video = ts_rendition("video", RenditionKind::Video, 2, 0, 4.0)
        .primary(true)
        .master_uri("https://cdn.example/video.m3u8");
    bundle.add_renditions(vec![video]).unwrap();
    for seg in bundle.pending_segments() {
        write_segment(&bundle, &seg, &segment_bytes(&seg, 5, 1_000)).unwrap();
    }
    bundle.mark_finished().unwrap();
    let manifest = bundle.manifest();
    assert!(manifest.finished && manifest.complete && manifest.has_master_playlist);
    let local = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(local.contains("video/index.m3u8"), "{local}");
}

#[test]
fn mark_accessed_while_a_writer_holds_the_bundle() {
    // A player marks an asset it plays while the asset downloads: the writer's lock must not stand in the
    // way, or least recently used would mean least recently downloaded.
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    add(&store, "playing", 1, StoragePolicy::default(), 1);
    add(&store, "idle", 1, StoragePolicy::default(), 2);
    let writer = store.open_bundle("playing").unwrap();
    // Opening for writing set the manifest's time; set it back, as if the download began long ago.
    drop(writer);
    let manifest = store.bundle_path("playing").unwrap().join("manifest.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    json["accessed"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let writer = store.open_bundle("playing").unwrap();
    std::fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();

    let before = SystemTime::now() - Duration::from_secs(1);
    store.mark_accessed("playing").unwrap();
    assert!(store.last_accessed("playing").unwrap() >= before);
    let listing = store.list().unwrap();
    let playing = listing.bundles.iter().find(|b| b.asset.id == "playing").unwrap();
    assert!(playing.in_use && playing.accessed >= before, "{:?}", playing.accessed);
    drop(writer);

    // Least recently used: `idle` goes first, though its manifest is the more recent.
    let report = store.purge(PurgeOptions::quota(store.used().unwrap() - 1)).unwrap();
    assert_eq!(ids(&report), vec![("idle", PurgeReason::LeastRecentlyAccessed)]);
    // The access record is no file of the bundle that a writer trips over.
    let reopened = store.open_bundle("playing").unwrap();
    assert!(reopened.open_report().removed_temp_files.is_empty());
}

#[test]
fn a_played_asset_is_never_purged_while_its_lease_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    let past = SystemTime::now() - Duration::from_secs(60);
    add(&store, "played", 1, StoragePolicy::default().expires(past), 1);
    add(&store, "other", 1, StoragePolicy::default(), 2);
    store.mark_playing("played", SystemTime::now() + Duration::from_secs(120)).unwrap();
    let report = store.purge(PurgeOptions::quota(0)).unwrap();
    assert_eq!(ids(&report), vec![("other", PurgeReason::LeastRecentlyAccessed)]);
    assert_eq!(report.skipped_playing, vec![store.bundle_path("played").unwrap()]);
    assert!(store.remove_expired().unwrap().removed.is_empty(), "expired but playing: kept");
    // Once the lease ran out, expiry takes it.
    store.mark_playing("played", SystemTime::now() - Duration::from_secs(1)).unwrap();
    let report = store.remove_expired().unwrap();
    assert_eq!(ids(&report), vec![("played", PurgeReason::Expired)]);
}

#[test]
fn store_policy_is_kept_at_the_store_root_and_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path().join("store"));
    assert!(store.store_policy().unwrap().is_empty(), "no file: limits nothing");
    store.clear_store_policy().unwrap();
    let policy = StorePolicy::new()
        .quota(50_000)
        .free_space_floor(1000)
        .default_expiry(Duration::from_secs(86_400))
        .purge_to_admit(true);
    store.set_store_policy(&policy).unwrap();
    assert_eq!(store.store_policy().unwrap(), policy);
    let file = tmp.path().join("store/store-policy.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["format"], "stowage-store-policy");
    assert_eq!(json["version"], 1);
    assert_eq!(json["default_expiry_seconds"], 86_400);
    assert!(!tmp.path().join("store/store-policy.json.part").exists());
    // The file is no bundle: listings do not see it.
    assert!(store.list().unwrap().bundles.is_empty() && store.list().unwrap().damaged.is_empty());
    std::fs::write(&file, br#"{"format":"stowage-store-policy","version":7}"#).unwrap();
    assert!(matches!(store.store_policy(), Err(Error::UnsupportedVersion { found: 7, .. })));
    std::fs::write(&file, b"quota=5").unwrap();
    match store.store_policy() {
        Err(e @ Error::InvalidStorePolicy { .. }) => assert_eq!(e.path(), Some(file.as_path())),
        other => panic!("{other:?}"),
    }
    store.clear_store_policy().unwrap();
    assert!(!file.exists() && store.store_policy().unwrap().is_empty());
}

#[test]
fn storage_management_policy_is_a_direct_getter() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    add(&store, "a", 1, StoragePolicy::default().expires(at).priority(Priority::Important), 1);
    let _writer = store.open_bundle("a").unwrap();
    let policy = store.storage_management_policy("a").unwrap();
    assert_eq!((policy.expires, policy.priority), (Some(at), Priority::Important), "read under a writer");
    assert!(matches!(store.storage_management_policy("b"), Err(Error::NoSuchBundle { .. })));
}

#[test]
fn admission_refuses_over_the_quota_naming_it_and_purges_only_when_allowed_and_enough() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    add(&store, "oldest", 2, StoragePolicy::default(), 1);
    add(&store, "important", 2, StoragePolicy::default().priority(Priority::Important), 0);
    add(&store, "busy", 2, StoragePolicy::default(), 0);
    add(&store, "newest", 2, StoragePolicy::default(), 5);
    let busy = store.open_bundle("busy").unwrap();
    let used = store.used().unwrap();
    let each = used / 4;
    assert!(store.admit(u64::MAX / 2).unwrap().removed.is_empty(), "no policy: everything is admitted");

    store.set_store_policy(&StorePolicy::new().quota(used + 1000)).unwrap();
    assert!(store.admit(1000).unwrap().removed.is_empty());
    match store.admit(each) {
        Err(Error::QuotaExceeded { quota, used: u, needed, purgeable, store: at }) => {
            assert_eq!((quota, u, needed, purgeable), (used + 1000, used, each, 0));
            assert_eq!(at, tmp.path());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.list().unwrap().bundles.len(), 4, "a refusal removes nothing");

    store.set_store_policy(&StorePolicy::new().quota(used + 1000).purge_to_admit(true)).unwrap();
    // More than every purgeable bundle frees: refused, and nothing removed for it.
    let err = store.admit(3 * each).unwrap_err();
    assert!(err.is_not_admitted(), "{err}");
    assert!(err.to_string().contains("quota"), "{err}");
    assert_eq!(store.list().unwrap().bundles.len(), 4);
    // One bundle's worth: the least recently used default one goes, never the busy or the important one.
    let report = store.admit(each).unwrap();
    assert_eq!(ids(&report), vec![("oldest", PurgeReason::LeastRecentlyAccessed)]);
    assert!(report.target_met);
    drop(busy);
}

#[test]
fn admission_holds_the_free_space_floor() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    add(&store, "a", 1, StoragePolicy::default(), 1);
    store.set_store_policy(&StorePolicy::new().free_space_floor(u64::MAX / 4)).unwrap();
    match store.admit(1) {
        Err(Error::FreeSpaceFloor { floor, available, needed, .. }) => {
            assert_eq!((floor, needed), (u64::MAX / 4, 1));
            assert!(available > 0 && available < floor);
        }
        other => panic!("{other:?}"),
    }
    store.set_store_policy(&StorePolicy::new().free_space_floor(1)).unwrap();
    assert!(store.admit(1000).unwrap().target_met);
}
