//! Recordings: a rendition's plan and recorded source playlist growing by journaled appends, holes, what
//! a crash between the append and the record leaves, and the closed VOD playlists a recording writes.

mod common;

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use common::*;
use stowage_bundle::{
    AssetCache, AssetInfo, Bundle, BundleOptions, BundlePlan, Error, Hole, MediaFormat, PlannedSegment,
    RecordedSegment, Recording, RenditionKind, RenditionPlan, Storage, StorageReadAt, TimeRange,
};
use stowage_playlist::{MediaPlaylist, MediaTag};

const HEADER: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:100\n\
                      #EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-PLAYLIST-TYPE:VOD\n";

/// The lines and entry of segment `msn` of a recording.
fn segment(msn: u64) -> RecordedSegment {
    let lines = format!(
        "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:{:02}:{:02}.000Z\n#EXTINF:2.00000,\nhttps://live.example/v-{msn}.ts\n",
        (msn - 100) / 60,
        (msn - 100) % 60
    );
    RecordedSegment::new(
        vec![PlannedSegment::media(3, msn, 2.0, format!("https://live.example/v-{msn}.ts"))],
        lines,
    )
}

/// A placeholder for a missing segment: listed with EXT-X-GAP.
fn placeholder(msn: u64) -> RecordedSegment {
    let lines = format!("#EXT-X-GAP\n#EXTINF:2.00000,\nhttps://live.example/v-{msn}.ts\n");
    RecordedSegment::new(vec![PlannedSegment::media(3, msn, 2.0, "")], lines)
}

fn recording_plan(first: u64, count: u64) -> BundlePlan {
    plan_of(HEADER, (first..first + count).map(segment))
        .recording(Recording::new().duration_limit(3600.0).max_outage(60.0))
}

/// The plan of a video rendition whose source playlist is `header` and `segments`' lines.
fn plan_of(header: &str, segments: impl IntoIterator<Item = RecordedSegment>) -> BundlePlan {
    let mut text = header.to_owned();
    let mut entries = Vec::new();
    for s in segments {
        text.push_str(&s.lines);
        entries.extend(s.entries);
    }
    let rendition = RenditionPlan::new(
        rid("video"),
        RenditionKind::Video,
        MediaFormat::Ts,
        "https://live.example/v.m3u8",
        text,
        entries,
    )
    .primary(true);
    BundlePlan::new(AssetInfo::new("live")).rendition(rendition)
}

fn store_all(bundle: &Bundle) {
    for id in bundle.pending_segments() {
        write_segment(bundle, &id, format!("bytes of {id}").as_bytes()).unwrap();
    }
}

#[test]
fn a_recording_grows_by_appends_and_survives_a_crash_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live");
    let bundle = Bundle::create(&path, recording_plan(100, 3)).unwrap();
    assert!(bundle.is_recording());
    store_all(&bundle);
    let manifest_before = std::fs::read(path.join("manifest.json")).unwrap();
    bundle
        .record_segments(&rid("video"), vec![segment(103), placeholder(104), placeholder(105), segment(106)])
        .unwrap();
    let hole = Hole::new(
        rid("video"),
        (104, 105),
        2,
        TimeRange::new(Duration::from_secs(8), Duration::from_secs(12)),
        "left the playlist during an outage",
    )
    .program_date_times(
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_608_000),
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_612_000),
    );
    bundle.record_hole(hole.clone()).unwrap();
    for msn in [104, 105] {
        bundle.record_gap(&stowage_bundle::SegmentId::media(rid("video"), 3, msn), "hole").unwrap();
    }
    // Appends never rewrite the manifest.
    assert_eq!(std::fs::read(path.join("manifest.json")).unwrap(), manifest_before);
    assert_eq!(bundle.pending_segments().len(), 2);
    let progress = bundle.progress();
    assert_eq!(progress.renditions[0].segments_total, 7);
    assert_eq!(bundle.manifest().renditions[0].plan.duration(), 14.0);
    // A crash after lines were appended but before their record: lines no record names.
    let source = path.join("source/video.m3u8");
    let covered = std::fs::read_to_string(&source).unwrap();
    drop(bundle);
    let mut torn = covered.clone();
    torn.push_str("#EXTINF:2.00000,\nhttps://live.example/v-107.ts\n#EXT");
    std::fs::write(&source, &torn).unwrap();

    // A reader folds the journal in without changing anything.
    let cache = AssetCache::open(&path).unwrap();
    assert_eq!(cache.manifest().renditions[0].plan.segments.len(), 7);
    assert_eq!(cache.manifest().recording.as_ref().unwrap().holes, std::slice::from_ref(&hole));

    let bundle = Bundle::open(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&source).unwrap(), covered, "the unrecorded lines are cut off");
    assert_eq!(bundle.holes(), [hole]);
    let pending: Vec<u64> = bundle.pending_segments().iter().map(|id| id.media_sequence).collect();
    assert_eq!(pending, [103, 106]);
    assert_eq!(bundle.source_playlist(&rid("video")).unwrap(), covered);
    // Entries are journaled without their URIs: the recorded playlist holds them.
    assert!(bundle.manifest().renditions[0].plan.segments[3..].iter().all(|s| s.uri.is_empty()));
    store_all(&bundle);
    bundle.end_recording("the playlist ended (EXT-X-ENDLIST)").unwrap();
    let manifest = bundle.manifest();
    assert!(manifest.finished && !manifest.complete);
    let recording = manifest.recording.as_ref().unwrap();
    assert_eq!(recording.ended.as_deref(), Some("the playlist ended (EXT-X-ENDLIST)"));
    assert_eq!((recording.duration_limit, recording.max_outage), (Some(3600.0), Some(60.0)));
    drop(bundle);

    // The manifest now holds the whole plan and the hole; a journal read again changes nothing.
    let reopened = Bundle::open(&path).unwrap();
    let manifest = reopened.manifest();
    assert_eq!(manifest.renditions[0].plan.segments.len(), 7);
    assert_eq!(manifest.recording.as_ref().unwrap().holes.len(), 1);
    assert_eq!(manifest.renditions[0].source_len, Some(covered.len() as u64));
    let json = String::from_utf8(std::fs::read(path.join("manifest.json")).unwrap()).unwrap();
    let compact: String = json.split_whitespace().collect();
    assert!(
        compact.contains(r#""program_date_times":["2026-01-01T00:00:08.000Z","2026-01-01T00:00:12.000Z"]"#),
        "{json}"
    );

    let local = std::fs::read_to_string(path.join("video/index.m3u8")).unwrap();
    let parsed = MediaPlaylist::parse(local.as_str()).unwrap();
    assert!(parsed.is_ended());
    assert!(local.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{local}");
    assert_eq!(parsed.segments().len(), 7);
    let gaps = local.matches("#EXT-X-GAP").count();
    assert_eq!(gaps, 2, "{local}");
    let names: Vec<&str> = parsed.segments().iter().map(|s| s.uri()).collect();
    assert_eq!(names[6], "seg-d3-s106.ts");
}

#[test]
fn an_interrupted_recording_plays_as_a_closed_playlist_of_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live");
    let bundle = Bundle::create(&path, recording_plan(100, 2)).unwrap();
    store_all(&bundle);
    bundle.record_segments(&rid("video"), vec![segment(102), segment(103)]).unwrap();
    write_segment(&bundle, &stowage_bundle::SegmentId::media(rid("video"), 3, 102), b"x").unwrap();
    bundle.write_playlists().unwrap();
    let local = std::fs::read_to_string(path.join("video/index.m3u8")).unwrap();
    let parsed = MediaPlaylist::parse(local.as_str()).unwrap();
    // Listed up to the last segment stored, closed: a player plays it to its end and stops.
    assert_eq!(parsed.segments().len(), 3, "{local}");
    assert!(parsed.is_ended() && local.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{local}");
    assert!(!bundle.manifest().finished);
}

#[test]
fn recorded_segments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Bundle::create(dir.path().join("live"), recording_plan(100, 2)).unwrap();
    let twice = bundle.record_segments(&rid("video"), vec![segment(101)]).unwrap_err();
    assert!(matches!(twice, Error::InvalidPlan { .. }), "{twice}");
    let unknown = bundle.record_segments(&rid("audio"), vec![segment(102)]).unwrap_err();
    assert!(matches!(unknown, Error::UnknownRendition { .. }), "{unknown}");
    let mut bad = segment(102);
    bad.entries[0].duration = f64::NAN;
    assert!(matches!(bundle.record_segments(&rid("video"), vec![bad]), Err(Error::InvalidPlan { .. })));
    // Nothing was appended by the refused calls.
    assert_eq!(bundle.manifest().renditions[0].plan.segments.len(), 2);

    let vod = Bundle::create(dir.path().join("vod"), simple_plan("vod", 2)).unwrap();
    assert!(!vod.is_recording());
    let refused = vod.record_segments(&rid("v0"), vec![segment(102)]).unwrap_err();
    assert!(matches!(refused, Error::InvalidPlan { .. }), "{refused}");
}

#[test]
fn a_bundle_made_before_its_playlists_were_read_becomes_a_recording_and_grows() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Bundle::create(dir.path().join("live"), BundlePlan::new(AssetInfo::new("live"))).unwrap();
    assert!(!bundle.is_recording());
    bundle.start_recording(Recording::new().max_outage(30.0)).unwrap();
    assert!(bundle.is_recording());
    // Its renditions, added now, cover their recorded playlists and grow by appends.
    let first = recording_plan(100, 2).renditions.remove(0);
    bundle.add_renditions(vec![first]).unwrap();
    bundle.record_segments(&rid("video"), vec![segment(102)]).unwrap();
    store_all(&bundle);
    bundle.end_recording("the playlist ended (EXT-X-ENDLIST)").unwrap();
    let manifest = bundle.manifest();
    assert_eq!(manifest.recording.unwrap().max_outage, Some(30.0));
    let local = std::fs::read_to_string(dir.path().join("live/video/index.m3u8")).unwrap();
    let parsed = MediaPlaylist::parse(local.as_str()).unwrap();
    assert_eq!(parsed.resolve(None).unwrap().segments.len(), 3, "{local}");

    // A bundle that has renditions already cannot become a recording.
    let vod = Bundle::create(dir.path().join("vod"), simple_plan("vod", 2)).unwrap();
    assert!(matches!(vod.start_recording(Recording::new()), Err(Error::InvalidPlan { .. })));
}

/// The local filesystem, counting the bytes read from recorded source playlists (`source/`).
#[derive(Debug, Default)]
struct CountingReads {
    inner: stowage_bundle::LocalFs,
    source_bytes: Arc<AtomicU64>,
}

impl CountingReads {
    fn counts(&self, path: &Path) -> bool {
        path.components().any(|c| c.as_os_str() == "source")
    }
}

/// A reader that adds what it reads to a count.
struct CountedRead<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

#[derive(Debug)]
struct CountedReadAt {
    inner: Box<dyn StorageReadAt>,
    count: Arc<AtomicU64>,
}

impl StorageReadAt for CountedReadAt {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn modified(&self) -> Option<SystemTime> {
        self.inner.modified()
    }
    fn version(&self) -> Option<u64> {
        self.inner.version()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        self.count.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

impl Storage for CountingReads {
    stowage_testkit::storage_pass_through!(
        (inner)
        create_dir_all, create, open_append, len, exists, rename, truncate, remove_file, remove_dir_all,
        list_dir, sync_dir, try_lock, available_space,
    );
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        let inner = self.inner.open_read(path)?;
        if !self.counts(path) {
            return Ok(inner);
        }
        Ok(Box::new(CountedRead { inner, count: Arc::clone(&self.source_bytes) }))
    }
    fn open_read_at(&self, base: &Path, relative: &Path) -> io::Result<Box<dyn StorageReadAt>> {
        let inner = self.inner.open_read_at(base, relative)?;
        if !self.counts(relative) {
            return Ok(inner);
        }
        Ok(Box::new(CountedReadAt { inner, count: Arc::clone(&self.source_bytes) }))
    }
}

#[test]
fn a_growing_recording_appends_to_its_local_playlist_without_reading_its_source_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live");
    let storage = Arc::new(CountingReads::default());
    let reads = Arc::clone(&storage.source_bytes);
    let options = BundleOptions::default;
    let mut bundle = Bundle::create_with(storage.clone(), &path, recording_plan(100, 3), options()).unwrap();
    store_all(&bundle);
    assert!(bundle.write_growing_playlists().unwrap(), "the first write");
    let index = path.join("video/index.m3u8");
    let id = |msn| stowage_bundle::SegmentId::media(rid("video"), 3, msn);
    let (mut msn, mut held) = (103u64, None);
    for _ in 0..4 {
        for _ in 0..50 {
            // One segment per growth; every seventh a hole, every eleventh stored only at the next one,
            // so that the listing waits for it.
            if let Some(held) = held.take() {
                write_segment(&bundle, &id(held), b"late").unwrap();
            }
            if msn.is_multiple_of(7) {
                bundle.record_segments(&rid("video"), vec![placeholder(msn)]).unwrap();
                bundle.record_gap(&id(msn), "left the playlist").unwrap();
            } else {
                let mut recorded = segment(msn);
                if msn.is_multiple_of(5) {
                    // A tag of the source's own, which a player ignores and the local playlist keeps.
                    recorded.lines.insert_str(0, "#EXT-X-CUE-OUT:DURATION=2\n");
                }
                bundle.record_segments(&rid("video"), vec![recorded]).unwrap();
                if msn.is_multiple_of(11) {
                    held = Some(msn);
                } else {
                    write_segment(&bundle, &id(msn), b"bytes").unwrap();
                }
            }
            reads.store(0, Ordering::SeqCst);
            bundle.write_growing_playlists().unwrap();
            // The new segment's lines (under 100 bytes) and at most one held back before it: the recorded
            // playlist, thousands of bytes by now, is not read again.
            let read = reads.load(Ordering::SeqCst);
            assert!(read <= 256, "{read} bytes of the source read to list segment {msn}");
            msn += 1;
        }
        // The playlist appended to is the one a whole write makes, which the first write after opening
        // the bundle again is when the playlist is not there to be taken up.
        let appended = std::fs::read_to_string(&index).unwrap();
        drop(bundle);
        std::fs::remove_file(&index).unwrap();
        bundle = Bundle::open_with(storage.clone(), &path, options()).unwrap();
        assert!(bundle.write_growing_playlists().unwrap());
        assert_eq!(std::fs::read_to_string(&index).unwrap(), appended);
        let parsed = MediaPlaylist::parse(appended.as_str()).unwrap();
        assert!(parsed.is_ended() && appended.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{appended}");
        let listed = parsed.segments().len() as u64;
        assert_eq!(listed, msn - 100 - u64::from(held.is_some()), "{appended}");
    }
    let local = std::fs::read_to_string(&index).unwrap();
    assert_eq!(local.matches("#EXT-X-GAP").count(), 29);
    assert_eq!(local.matches("#EXT-X-CUE-OUT:DURATION=2\n").count(), 34, "{local}");
}

/// The lines and entries of fMP4 segment `msn`, bringing a new initialization section every tenth.
fn fmp4_segment(msn: u64) -> RecordedSegment {
    let media = PlannedSegment::media(3, msn, 2.0, format!("https://live.example/v-{msn}.m4s"));
    let tail = format!("#EXTINF:2.00000,\nhttps://live.example/v-{msn}.m4s\n");
    if msn.is_multiple_of(10) {
        let init = PlannedSegment::init(3, msn, format!("https://live.example/init-{msn}.mp4"));
        let lines = format!("#EXT-X-MAP:URI=\"https://live.example/init-{msn}.mp4\"\n{tail}");
        RecordedSegment::new(vec![init, media], lines)
    } else {
        RecordedSegment::new(vec![media], tail)
    }
}

#[test]
fn a_growing_fmp4_recording_appends_segments_and_their_initialization_sections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live");
    let storage = Arc::new(CountingReads::default());
    let reads = Arc::clone(&storage.source_bytes);
    let mut plan = recording_plan(100, 0);
    let rendition = &mut plan.renditions[0];
    rendition.format = MediaFormat::Fmp4;
    for msn in 100..102 {
        let s = fmp4_segment(msn);
        rendition.playlist.push_str(&s.lines);
        rendition.segments.extend(s.entries);
    }
    let mut bundle = Bundle::create_with(storage.clone(), &path, plan, BundleOptions::default()).unwrap();
    store_all(&bundle);
    assert!(bundle.write_growing_playlists().unwrap());
    let index = path.join("video/index.m3u8");
    let init_130 = stowage_bundle::SegmentId::init(rid("video"), 3, 130);
    for msn in 102..160 {
        bundle.record_segments(&rid("video"), vec![fmp4_segment(msn)]).unwrap();
        // The initialization section of 130 comes late: nothing after it is listed until it does.
        for id in bundle.pending_segments() {
            if id != init_130 || msn == 135 {
                write_segment(&bundle, &id, b"bytes").unwrap();
            }
        }
        reads.store(0, Ordering::SeqCst);
        bundle.write_growing_playlists().unwrap();
        let read = reads.load(Ordering::SeqCst);
        assert!(read <= 512, "{read} bytes of the source read to list segment {msn}");
        let local = std::fs::read_to_string(&index).unwrap();
        let listed = MediaPlaylist::parse(local.as_str()).unwrap().segments().len() as u64;
        let expected = if (130..135).contains(&msn) { 30 } else { msn - 99 };
        assert_eq!(listed, expected, "{local}");
    }
    let appended = std::fs::read_to_string(&index).unwrap();
    drop(bundle);
    // Written whole, as the first write after opening the bundle again writes a playlist not there.
    std::fs::remove_file(&index).unwrap();
    bundle = Bundle::open_with(storage, &path, BundleOptions::default()).unwrap();
    assert!(bundle.write_growing_playlists().unwrap());
    assert_eq!(std::fs::read_to_string(&index).unwrap(), appended);
    let maps: Vec<&str> = appended.lines().filter(|l| l.starts_with("#EXT-X-MAP")).collect();
    assert_eq!(maps.len(), 6, "{appended}");
    assert_eq!(maps[3], "#EXT-X-MAP:URI=\"init-d3-s130.mp4\"", "{appended}");
}

#[test]
fn a_recording_killed_with_every_listed_segment_stored_is_unfinished_for_the_store() {
    let store_dir = tempfile::tempdir().unwrap();
    let store = stowage_bundle::StorageManager::new(store_dir.path());
    let bundle = store.create_bundle(recording_plan(100, 2)).unwrap();
    store_all(&bundle);
    bundle.record_segments(&rid("video"), vec![segment(102)]).unwrap();
    store_all(&bundle);
    // The recorder dies here: nothing says the recording ended, so it is one to resume.
    bundle.write_playlists().unwrap();
    drop(bundle);
    let listed = store.list().unwrap();
    let summary = listed.bundles.iter().find(|b| b.asset.id == "live").unwrap();
    assert!(!summary.finished && !summary.complete, "{summary:?}");
    let bundle = store.open_bundle("live").unwrap();
    assert!(!bundle.manifest().finished);
    // Once it ends, it is finished.
    bundle.end_recording("the recording was stopped").unwrap();
    let manifest = bundle.manifest();
    assert!(manifest.finished && manifest.complete);
}

/// A recording that keeps the ciphertext of a stream whose key leaves the IV to the media sequence number:
/// the source's numbering jumps (100–102, then 110–111, then 3–4 after it started again) while the local
/// playlist numbers segments by position (100–106). Each segment must still be decrypted with its source
/// number: the local playlist writes the IV out for those whose position says otherwise, and gives the
/// key back as the source wrote it once the numbers agree again (after a new key, here).
#[test]
fn kept_ciphertext_after_a_numbering_jump_is_given_the_iv_of_its_source_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live");
    let key = "#EXT-X-KEY:METHOD=AES-128,URI=\"https://live.example/k1\"\n";
    let entry = |msn: u64| {
        let lines = format!("#EXTINF:2.00000,\nhttps://live.example/v-{msn}.ts\n");
        RecordedSegment::new(vec![PlannedSegment::media(0, msn, 2.0, "")], lines)
    };
    let header =
        format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:100\n{key}");
    let plan = plan_of(&header, (100..103).map(entry))
        .key_policy(stowage_bundle::KeyPolicy::KeepEncrypted)
        .recording(Recording::new());
    let bundle = Bundle::create(&path, plan).unwrap();
    bundle.write_key(&rid("video"), 0, &[7; 16]).unwrap();
    bundle.record_segments(&rid("video"), vec![entry(110), entry(111)]).unwrap();
    // The stream started again with a new key (a new discontinuity sequence numbers these).
    let restart = |msn: u64, key: &str| {
        let lines = format!("#EXT-X-DISCONTINUITY\n{key}#EXTINF:2.00000,\nhttps://live.example/w-{msn}.ts\n");
        RecordedSegment::new(vec![PlannedSegment::media(1, msn, 2.0, "")], lines)
    };
    let key2 = "#EXT-X-KEY:METHOD=AES-128,URI=\"https://live.example/k2\"\n";
    bundle.write_key(&rid("video"), 1, &[8; 16]).unwrap();
    bundle.record_segments(&rid("video"), vec![restart(3, key2), entry_in(1, 4), entry_in(1, 107)]).unwrap();
    store_all(&bundle);
    bundle.end_recording("the recording was stopped").unwrap();

    let local = std::fs::read_to_string(path.join("video/index.m3u8")).unwrap();
    let parsed = MediaPlaylist::parse(local.as_str()).unwrap();
    // The IV each segment is decrypted with: the key in force's, else the segment's number in the playlist.
    let mut key = None;
    let mut ivs: Vec<u128> = Vec::new();
    for i in 0..parsed.segments().len() {
        for tag in parsed.segment_tags(i).iter() {
            if let MediaTag::Key(k) = tag {
                key = Some(k.iv());
            }
        }
        let iv = key.expect("every segment is encrypted");
        ivs.push(iv.map_or(100 + i as u128, u128::from_be_bytes));
    }
    assert_eq!(ivs, [100, 101, 102, 110, 111, 3, 4, 107], "{local}");
    // Where the numbers agree the key is as the source wrote it: the first three, and the last (numbered 107 in both).
    let lines: Vec<&str> = local.lines().collect();
    let last_key = lines.iter().rposition(|l| l.starts_with("#EXT-X-KEY")).unwrap();
    assert!(!lines[last_key].contains("IV="), "{local}");
    assert_eq!(local.matches("IV=").count(), 4, "{local}");
}

/// A media entry of discontinuity sequence `dsn`, listed without tags of its own.
fn entry_in(dsn: u64, msn: u64) -> RecordedSegment {
    let lines = format!("#EXTINF:2.00000,\nhttps://live.example/w-{msn}.ts\n");
    RecordedSegment::new(vec![PlannedSegment::media(dsn, msn, 2.0, "")], lines)
}

/// A recording opened again takes its growing playlist up from where it stands on disk only when it lists
/// what it would list now: here the playlist on disk was written at rest, listing a segment still pending
/// as a gap ahead of stored ones; once that segment is stored, the next growing write lists it playable.
#[test]
fn a_recording_opened_again_lists_a_segment_stored_since_its_playlist_was_written_as_playable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live");
    let bundle = Bundle::create(&path, recording_plan(100, 6)).unwrap();
    let ids = bundle.pending_segments();
    for id in [&ids[0], &ids[1], &ids[3], &ids[4]] {
        write_segment(&bundle, id, format!("bytes of {id}").as_bytes()).unwrap();
    }
    bundle.record_gap(&ids[5], "the segment expired").unwrap();
    bundle.write_playlists().unwrap();
    let gaps = |text: &str| -> Vec<bool> {
        let parsed = MediaPlaylist::parse(text).unwrap();
        (0..parsed.segments().len())
            .map(|i| parsed.segment_tags(i).iter().any(|t| matches!(t, MediaTag::Gap)))
            .collect()
    };
    let at_rest = std::fs::read_to_string(path.join("video/index.m3u8")).unwrap();
    assert_eq!(gaps(&at_rest), [false, false, true, false, false], "{at_rest}");
    drop(bundle);

    let bundle = Bundle::open(&path).unwrap();
    write_segment(&bundle, &ids[2], b"late").unwrap();
    assert!(bundle.write_growing_playlists().unwrap());
    let grown = std::fs::read_to_string(path.join("video/index.m3u8")).unwrap();
    assert_eq!(gaps(&grown), [false, false, false, false, false, true], "{grown}");
    // And a growing write with nothing new after opening again writes nothing.
    drop(bundle);
    let bundle = Bundle::open(&path).unwrap();
    assert!(!bundle.write_growing_playlists().unwrap());
    assert_eq!(std::fs::read_to_string(path.join("video/index.m3u8")).unwrap(), grown);
}
