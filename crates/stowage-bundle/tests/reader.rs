//! Read-only access for players: which paths a bundle reader answers, which it refuses (traversal, the
//! bundle's own bookkeeping, symbolic links), artwork, status while a download runs, and reading a file that
//! is replaced while it is read.

mod common;

use std::fs;

use common::*;
use stowage_bundle::{
    Artwork, AssetCache, AssetInfo, Bundle, BundleFileKind, BundlePlan, BundleReader, Error, KeyPolicy,
    MediaFormat, PlannedSegment, RenditionKind, RenditionPlan, StorageManager,
};

/// A finished store bundle `a` with a TS video of 3 segments, an fMP4 rendition and a byte-range one.
fn finished_store(tmp: &std::path::Path) -> (StorageManager, Bundle) {
    let store = StorageManager::new(tmp.join("store"));
    let plan = BundlePlan::new(AssetInfo::new("a").title("A"))
        .rendition(ts_rendition("video", RenditionKind::Video, 3, 0, 4.0).primary(true))
        .rendition(fmp4_rendition("frag", 2))
        .rendition(byte_range_rendition("single", 2, 300));
    let bundle = store.create_bundle(plan).unwrap();
    for id in bundle.pending_segments() {
        write_segment(&bundle, &id, &segment_bytes(&id, 3, 300)).unwrap();
    }
    bundle.mark_finished().unwrap();
    (store, bundle)
}

#[test]
fn only_playlists_and_planned_files_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bundle) = finished_store(tmp.path());
    let reader = store.reader("a").unwrap();
    let kinds = [
        ("master.m3u8", BundleFileKind::MasterPlaylist),
        ("video/index.m3u8", BundleFileKind::MediaPlaylist),
        ("video/seg-d0-s2.ts", BundleFileKind::Segment),
        ("frag/init-d0-s0.mp4", BundleFileKind::InitSection),
        ("frag/seg-d0-s1.m4s", BundleFileKind::Segment),
        ("single/seg-d0-s1-r300-300.ts", BundleFileKind::Segment),
    ];
    for (path, kind) in kinds {
        let file = reader.resolve(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(file.kind, kind, "{path}");
        assert_eq!(file.path(), path);
        let bytes = reader.open_file(&file).unwrap().read_all(1 << 20).unwrap();
        assert_eq!(bytes, fs::read(bundle.dir().join(path)).unwrap(), "{path} reads as on disk");
    }
    let id = stowage_bundle::SegmentId::media(rid("video"), 0, 1);
    assert_eq!(reader.segment_file(&id).unwrap().path(), "video/seg-d0-s1.ts");

    // A stray file in a rendition folder (a write that was never journaled, a copy someone left).
    fs::write(bundle.dir().join("video/notes.txt"), b"x").unwrap();
    fs::write(bundle.dir().join("video/seg-d0-s9.ts"), b"x").unwrap();
    fs::write(bundle.dir().join("video/seg-d0-s1.ts.part"), b"x").unwrap();
    for path in [
        "manifest.json",
        "journal.log",
        ".lock",
        "source/master.m3u8",
        "source/video.m3u8",
        "video/notes.txt",
        "video/seg-d0-s9.ts",
        "video/seg-d0-s1.ts.part",
        "video/seg-d0-s01.ts",
        "video/seg-d0-s1.m4s",
        "frag/init-d0-s0.m4s",
        "video/keys/key-0.key",
        "../a/master.m3u8",
        "video/../manifest.json",
        "./master.m3u8",
        "/master.m3u8",
        "video//index.m3u8",
        "video/",
        "",
        "video",
        "other/index.m3u8",
        "video\\index.m3u8",
        "artwork.jpg",
    ] {
        match reader.resolve(path) {
            Err(Error::NotInBundle { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{path:?} resolved: {other:?}"),
        }
        assert!(reader.open_path(path).is_err(), "{path:?} opened");
    }
}

#[test]
fn symbolic_links_in_a_bundle_lead_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bundle) = finished_store(tmp.path());
    let outside = tmp.path().join("secret");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("seg-d0-s1.ts"), b"secret").unwrap();
    fs::write(outside.join("index.m3u8"), b"#EXTM3U\nsecret\n").unwrap();

    // A segment replaced by a link to a file outside.
    let seg = bundle.dir().join("video/seg-d0-s0.ts");
    fs::remove_file(&seg).unwrap();
    std::os::unix::fs::symlink(outside.join("seg-d0-s1.ts"), &seg).unwrap();
    // A rendition folder replaced by a link to a folder outside.
    let frag = bundle.dir().join("frag");
    fs::rename(&frag, tmp.path().join("frag-moved")).unwrap();
    std::os::unix::fs::symlink(&outside, &frag).unwrap();
    // A link to a file inside the bundle is refused as well: links are never followed.
    let master = bundle.dir().join("master.m3u8");
    fs::rename(&master, bundle.dir().join("master-real.m3u8")).unwrap();
    std::os::unix::fs::symlink(bundle.dir().join("master-real.m3u8"), &master).unwrap();

    let reader = store.reader("a").unwrap();
    for path in ["video/seg-d0-s0.ts", "frag/index.m3u8", "master.m3u8"] {
        assert!(reader.resolve(path).is_ok(), "{path} is a name the bundle gives");
        match reader.open_path(path) {
            Err(Error::PermissionDenied { .. }) => {}
            other => panic!("{path} through a link: {other:?}"),
        }
    }
    assert!(reader.open_path("video/seg-d0-s1.ts").is_ok(), "plain files still open");

    // A bundle folder of the store that is itself a link out of the store.
    let elsewhere = tmp.path().join("elsewhere");
    fs::rename(bundle.dir(), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, store.dir().join("a")).unwrap();
    drop(bundle);
    assert!(matches!(store.reader("a"), Err(Error::NoSuchBundle { .. })));
    assert!(store.bundle_ids().unwrap().is_empty(), "a link is not listed as a bundle");
    // Opened directly on the folder, the folder itself may be reached through a link.
    assert!(BundleReader::open(store.dir().join("a")).is_ok());
    assert!(matches!(store.reader("../store/a"), Err(Error::InvalidName { .. })));
}

#[test]
fn kept_keys_resolve_as_the_local_playlist_names_them() {
    let source = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"https://k.example/k1\"\n#EXTINF:4.0,\na.ts\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"https://k.example/k2\"\n#EXTINF:4.0,\nb.ts\n#EXT-X-ENDLIST\n";
    for policy in [KeyPolicy::KeepEncrypted, KeyPolicy::Decrypt] {
        let tmp = tempfile::tempdir().unwrap();
        let store = StorageManager::new(tmp.path());
        let segments = vec![PlannedSegment::media(0, 0, 4.0, "a"), PlannedSegment::media(0, 1, 4.0, "b")];
        let r = RenditionPlan::new(rid("v"), RenditionKind::Video, MediaFormat::Ts, "u", source, segments);
        let plan = BundlePlan::new(AssetInfo::new("k")).rendition(r.primary(true)).key_policy(policy);
        let bundle = store.create_bundle(plan).unwrap();
        for id in bundle.pending_segments() {
            write_segment(&bundle, &id, &[7; 188]).unwrap();
        }
        bundle.write_key(&rid("v"), 0, &[1; 16]).unwrap();
        bundle.write_key(&rid("v"), 1, &[2; 16]).unwrap();
        fs::write(bundle.dir().join("v/keys/key-7.key"), [9; 16]).unwrap();
        bundle.mark_finished().unwrap();
        let reader = store.reader("k").unwrap();
        let kept = policy == KeyPolicy::KeepEncrypted;
        for (path, named) in
            [("v/keys/key-0.key", true), ("v/keys/key-1.key", true), ("v/keys/key-7.key", false)]
        {
            let resolved = reader.resolve(path);
            assert_eq!(resolved.is_ok(), kept && named, "{policy:?} {path}: {resolved:?}");
        }
        if kept {
            let key = reader.open_path("v/keys/key-1.key").unwrap().read_all(64).unwrap();
            assert_eq!(key, [2; 16]);
        }
    }
}

/// A PNG header is enough for the type to be recognised; the bytes are kept as given.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

#[test]
fn artwork_is_stored_recorded_read_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    let plan = simple_plan("art", 1).artwork(Artwork::new(PNG));
    let bundle = store.create_bundle(plan).unwrap();
    let id = bundle.pending_segments()[0].clone();
    write_segment(&bundle, &id, &[1; 100]).unwrap();
    bundle.mark_finished().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.dir().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["artwork"]["file"], "artwork.png");
    assert_eq!(manifest["artwork"]["media_type"], "image/png");
    assert_eq!(manifest["artwork"]["length"], PNG.len());
    assert_eq!(fs::read(bundle.dir().join("artwork.png")).unwrap(), PNG);

    let cache = AssetCache::open(bundle.dir()).unwrap();
    let file = cache.artwork().unwrap();
    assert!(file.is_image());
    assert_eq!(cache.artwork_path().unwrap(), bundle.dir().join("artwork.png"));
    let read = cache.read_artwork().unwrap().unwrap();
    assert_eq!((read.data.as_slice(), read.media_type.as_deref()), (PNG, Some("image/png")));
    let reader = store.reader("art").unwrap();
    assert_eq!(reader.resolve("artwork.png").unwrap().kind, BundleFileKind::Artwork);
    assert!(reader.resolve("artwork.jpg").is_err());
    assert_eq!(store.list().unwrap().bundles.len(), 1);

    // Damaged on disk: named, never handed out as if whole.
    fs::write(bundle.dir().join("artwork.png"), &PNG[..10]).unwrap();
    match AssetCache::open(bundle.dir()).unwrap().read_artwork() {
        Err(Error::Damaged { path, .. }) => assert!(path.ends_with("artwork.png")),
        other => panic!("{other:?}"),
    }

    // A manifest edited to point the artwork at another file is refused.
    let mut edited = manifest;
    edited["artwork"]["file"] = "manifest.json".into();
    fs::write(bundle.dir().join("manifest.json"), serde_json::to_vec(&edited).unwrap()).unwrap();
    assert!(matches!(AssetCache::open(bundle.dir()), Err(Error::InvalidManifest { .. })));

    // Given types are kept; unknown bytes without a type are recorded as such and not called an image.
    let other = store.create_bundle(simple_plan("bin", 1).artwork(Artwork::new(vec![1, 2, 3]))).unwrap();
    assert_eq!(other.manifest().artwork.unwrap().file, "artwork.bin");
    assert!(!AssetCache::open(other.dir()).unwrap().artwork().unwrap().is_image());
    let big = Artwork::new(vec![0; stowage_bundle::MAX_ARTWORK_LEN as usize + 1]);
    assert!(matches!(
        store.create_bundle(simple_plan("big", 1).artwork(big)),
        Err(Error::InvalidPlan { .. })
    ));
    assert!(matches!(
        store.create_bundle(simple_plan("empty", 1).artwork(Artwork::new(Vec::new()))),
        Err(Error::InvalidPlan { .. })
    ));
}

#[test]
fn status_follows_the_journal_while_the_download_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path());
    let bundle = store.create_bundle(simple_plan("p", 4)).unwrap();
    let reader = store.reader("p").unwrap();
    let before = reader.fingerprint().unwrap().unwrap();
    let status = reader.status().unwrap();
    assert_eq!(
        (status.finished, status.in_use, status.segments_finished, status.segments_total),
        (false, true, 0, 4)
    );

    let pending = bundle.pending_segments();
    write_segment(&bundle, &pending[0], &[5; 1000]).unwrap();
    write_segment(&bundle, &pending[1], &[5; 1000]).unwrap();
    bundle.sync().unwrap();
    assert_ne!(reader.fingerprint().unwrap().unwrap(), before, "a journal record changes the fingerprint");
    assert!(reader.is_current().unwrap(), "the manifest was not written");
    let status = reader.status().unwrap();
    assert_eq!((status.segments_finished, status.bytes_finished), (2, 2000));
    assert_eq!(status.renditions[0].loaded_time_ranges.len(), 1);
    assert!((status.renditions[0].loaded_time_ranges[0].end.as_secs_f64() - 12.0).abs() < 1e-9);
    assert_eq!(status.size_on_disk, store.size_on_disk(bundle.dir()).unwrap(), "counted as the store counts");

    bundle.record_gap(&pending[2], "HTTP 404").unwrap();
    write_segment(&bundle, &pending[3], &[5; 1000]).unwrap();
    bundle.mark_finished().unwrap();
    drop(bundle);
    assert!(!reader.is_current().unwrap(), "the manifest was written");
    let reader = store.reader("p").unwrap();
    let status = reader.status().unwrap();
    assert_eq!((status.finished, status.complete, status.in_use, status.gaps.len()), (true, false, false, 1));
    assert_eq!(status.bytes_finished, 3000);
    let dir = store.bundle_path("p").unwrap();
    assert_eq!(status.size_on_disk, store.size_on_disk(&dir).unwrap(), "counted as the store counts");
    // Files that are not stored segments count too (a stray file, a file named as the gap's segment), and a
    // link that leads nowhere does not make the bundle unreadable.
    fs::write(dir.join("video/notes.txt"), [0; 77]).unwrap();
    fs::write(dir.join("video/seg-d0-s2.ts"), [0; 5]).unwrap();
    let status = reader.status().unwrap();
    assert_eq!(status.size_on_disk, store.size_on_disk(&dir).unwrap());
    std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("video/dangling")).unwrap();
    assert!(reader.status().is_ok());
}

#[test]
fn an_open_file_reads_what_was_opened_when_the_path_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bundle) = finished_store(tmp.path());
    let reader = store.reader("a").unwrap();
    let old = fs::read(bundle.dir().join("video/index.m3u8")).unwrap();
    let file = reader.open_path("video/index.m3u8").unwrap();
    // Rewritten the way the writer does it: a new file renamed over the old one.
    fs::write(bundle.dir().join("video/index.m3u8.part"), b"#EXTM3U\n").unwrap();
    fs::rename(bundle.dir().join("video/index.m3u8.part"), bundle.dir().join("video/index.m3u8")).unwrap();
    assert_eq!(file.read_all(1 << 20).unwrap(), old);
    let again = reader.open_path("video/index.m3u8").unwrap();
    assert_eq!(again.read_all(1 << 20).unwrap(), b"#EXTM3U\n");
    assert_ne!(file.version(), again.version());
    let mut buf = [0; 4];
    assert_eq!(file.read_at(&mut buf, 1).unwrap(), 4);
    assert_eq!(&buf, &old[1..5]);
    assert_eq!(file.read_at(&mut buf, old.len() as u64).unwrap(), 0);
}
