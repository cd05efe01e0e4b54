//! The bundle writer: create, write, resume, lock, journal damage, verify, gaps, time ranges.

mod common;

use std::fs;

use common::*;
use stowage_bundle::{
    AssetCache, Bundle, Error, IntegrityPolicy, JOURNAL_HEADER, RenditionKind, SegmentId, SegmentProblem,
    TimeRange,
};

/// The range from `start` to `end` seconds.
fn range(start: f64, end: f64) -> TimeRange {
    TimeRange::new(std::time::Duration::from_secs_f64(start), std::time::Duration::from_secs_f64(end))
}

#[test]
fn create_write_finish_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("asset");
    let bundle = Bundle::create(&dir, simple_plan("asset", 4)).unwrap();
    assert_eq!(bundle.pending_segments().len(), 4);
    for id in bundle.pending_segments() {
        write_segment(&bundle, &id, &segment_bytes(&id, 1, 10_000)).unwrap();
    }
    bundle.mark_finished().unwrap();
    let manifest = bundle.manifest();
    assert!(manifest.finished && manifest.complete);
    assert_eq!(manifest.size, 40_000);
    let video = rid("video");
    assert_eq!(bundle.loaded_time_ranges(&video).unwrap(), vec![range(0.0, 24.0)]);
    drop(bundle);

    let bundle = Bundle::open(&dir).unwrap();
    assert_eq!(bundle.open_report().finished_segments, 4);
    assert!(bundle.pending_segments().is_empty());
    for id in bundle.finished_segments() {
        let path = bundle.segment_path(&id).unwrap();
        assert_eq!(fs::read(&path).unwrap(), segment_bytes(&id, 1, 10_000));
        assert!(path.starts_with(dir.join("video")));
    }
    let cache = AssetCache::open(&dir).unwrap();
    assert!(cache.is_playable_offline());
    assert!(cache.is_complete());
    assert!(dir.join("master.m3u8").is_file() && dir.join("video/index.m3u8").is_file());
}

#[test]
fn a_finished_segment_is_never_rewritten_and_a_busy_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = Bundle::create(tmp.path().join("a"), simple_plan("a", 2)).unwrap();
    let id = bundle.pending_segments()[0].clone();
    let writer = bundle.segment_writer(&id).unwrap();
    assert!(matches!(bundle.segment_writer(&id), Err(Error::SegmentBusy { .. })));
    drop(writer);
    write_segment(&bundle, &id, b"hello").unwrap();
    assert!(matches!(bundle.segment_writer(&id), Err(Error::AlreadyFinished { .. })));
    let unknown = SegmentId::media(rid("video"), 0, 99);
    assert!(matches!(bundle.segment_writer(&unknown), Err(Error::UnknownSegment { .. })));
}

#[test]
fn second_writer_gets_a_clear_lock_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 1)).unwrap();
    let err = Bundle::open(&dir).unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(err.to_string().contains("locked by another writer"), "{err}");
    assert!(matches!(Bundle::create(&dir, simple_plan("a", 1)), Err(Error::Locked { .. })));
    // Reading is allowed while a writer holds the bundle.
    assert!(AssetCache::open(&dir).is_ok());
    let clone = bundle.clone();
    drop(bundle);
    assert!(Bundle::open(&dir).unwrap_err().is_locked(), "a clone still holds the lock");
    drop(clone);
    Bundle::open(&dir).unwrap();
    assert!(matches!(Bundle::create(&dir, simple_plan("a", 1)), Err(Error::AlreadyExists { .. })));
}

#[test]
fn expected_length_is_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = stowage_bundle::BundlePlan::new(stowage_bundle::AssetInfo::new("br"))
        .rendition(byte_range_rendition("main", 3, 100));
    let bundle = Bundle::create(tmp.path().join("br"), plan).unwrap();
    let ids = bundle.pending_segments();
    let mut w = bundle.segment_writer(&ids[0]).unwrap();
    w.write(&[0; 60]).unwrap();
    assert!(matches!(w.write(&[0; 60]), Err(Error::LengthMismatch { expected: 100, actual: 120, .. })));
    drop(w);
    let mut w = bundle.segment_writer(&ids[0]).unwrap();
    w.write(&[0; 99]).unwrap();
    assert!(matches!(w.finish(), Err(Error::LengthMismatch { expected: 100, actual: 99, .. })));
    assert!(!bundle.is_finished(&ids[0]));
    // Nothing of the failed attempts is left behind.
    let names: Vec<_> =
        fs::read_dir(tmp.path().join("br/main")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(names.iter().all(|n| n.to_string_lossy().ends_with(".m3u8")), "{names:?}");
    write_segment(&bundle, &ids[0], &[7; 100]).unwrap();
    let mut w = bundle.segment_writer(&ids[1]).unwrap();
    w.set_expected_length(None);
    w.write(&[1; 5]).unwrap();
    assert_eq!(w.finish().unwrap().length, 5);
}

#[test]
fn stray_temp_files_are_removed_and_torn_journal_tail_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 3)).unwrap();
    let ids = bundle.pending_segments();
    write_segment(&bundle, &ids[0], b"first").unwrap();
    write_segment(&bundle, &ids[1], b"second").unwrap();
    drop(bundle);
    // A crash during the third write: its temporary file and half of its journal record remain.
    fs::write(dir.join("video/seg-d0-s2.ts.part"), b"partial").unwrap();
    let journal = fs::read(dir.join("journal.log")).unwrap();
    let last_line = journal[..journal.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let torn: Vec<u8> = [&journal[..], &journal[last_line..journal.len() - 10]].concat();
    fs::write(dir.join("journal.log"), &torn).unwrap();

    let bundle = Bundle::open(&dir).unwrap();
    let report = bundle.open_report();
    assert!(report.torn_journal_tail);
    assert_eq!(report.removed_temp_files, vec![dir.join("video/seg-d0-s2.ts.part")]);
    assert_eq!(report.finished_segments, 2);
    assert_eq!(fs::read(dir.join("journal.log")).unwrap(), journal, "the torn tail is cut off");
    write_segment(&bundle, &ids[2], b"third").unwrap();
    drop(bundle);
    let bundle = Bundle::open(&dir).unwrap();
    assert!(!bundle.open_report().torn_journal_tail);
    assert_eq!(bundle.finished_segments().len(), 3);
}

#[test]
fn a_journal_record_whose_file_is_gone_or_short_counts_as_not_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 3)).unwrap();
    let ids = bundle.pending_segments();
    for id in &ids {
        write_segment(&bundle, id, &segment_bytes(id, 2, 1000)).unwrap();
    }
    drop(bundle);
    fs::remove_file(dir.join("video/seg-d0-s0.ts")).unwrap();
    fs::write(dir.join("video/seg-d0-s1.ts"), b"short").unwrap();
    let bundle = Bundle::open(&dir).unwrap();
    let damaged = &bundle.open_report().damaged_segments;
    assert_eq!(damaged.len(), 2);
    assert!(matches!(damaged[0].1, SegmentProblem::Missing { .. }));
    assert!(matches!(damaged[1].1, SegmentProblem::WrongLength { expected: 1000, actual: 5, .. }));
    assert_eq!(bundle.pending_segments(), ids[..2].to_vec());
    assert_eq!(bundle.loaded_time_ranges(&rid("video")).unwrap(), vec![range(12.0, 18.0)]);
}

#[test]
fn verify_finds_and_repairs_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 3)).unwrap();
    let ids = bundle.pending_segments();
    for id in &ids {
        write_segment(&bundle, id, &segment_bytes(id, 3, 5000)).unwrap();
    }
    bundle.mark_finished().unwrap();
    assert!(bundle.verify(false).unwrap().is_ok());
    // Same length, one bit flipped: only the checksum can tell.
    let path = dir.join("video/seg-d0-s1.ts");
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let report = bundle.verify(false).unwrap();
    assert_eq!(report.checked, 3);
    assert_eq!(report.problems.len(), 1);
    assert!(matches!(report.problems[0].1, SegmentProblem::WrongChecksum { .. }));
    assert!(bundle.is_finished(&ids[1]), "verify without repair changes nothing");
    let report = bundle.verify(true).unwrap();
    assert!(report.repaired);
    assert_eq!(bundle.pending_segments(), vec![ids[1].clone()]);
    assert!(!path.exists());
    assert!(!bundle.manifest().complete);
    drop(bundle);
    // The withdrawal is journaled: a reopened bundle does not trust the old record.
    let bundle = Bundle::open(&dir).unwrap();
    assert_eq!(bundle.pending_segments(), vec![ids[1].clone()]);
    write_segment(&bundle, &ids[1], &segment_bytes(&ids[1], 3, 5000)).unwrap();
    assert!(bundle.verify(false).unwrap().is_ok());
    assert!(
        {
            bundle.mark_finished().unwrap();
            bundle.manifest()
        }
        .complete
    );
}

#[test]
fn gaps_are_recorded_named_and_cleared_when_the_segment_arrives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let plan = simple_plan("a", 3).integrity(IntegrityPolicy::Tolerant);
    let bundle = Bundle::create(&dir, plan).unwrap();
    let ids = bundle.pending_segments();
    write_segment(&bundle, &ids[0], b"a").unwrap();
    write_segment(&bundle, &ids[2], b"c").unwrap();
    assert!(matches!(bundle.mark_finished(), Err(Error::Incomplete { missing: 1, .. })));
    bundle.record_gap(&ids[1], "HTTP 404 from origin").unwrap();
    // The gap is durable at once (in the journal): a reader and a reopened writer see it.
    assert_eq!(AssetCache::open(&dir).unwrap().manifest().gaps.len(), 1);
    drop(bundle);
    let bundle = Bundle::open(&dir).unwrap();
    assert_eq!(bundle.gaps()[0].reason, "HTTP 404 from origin");
    assert!(bundle.pending_segments().is_empty());
    bundle.mark_finished().unwrap();
    let manifest = bundle.manifest();
    assert!(manifest.finished && !manifest.complete);
    assert_eq!(manifest.gaps[0].segment, ids[1]);
    let text = fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(text.contains("HTTP 404 from origin"));
    let cache = AssetCache::open(&dir).unwrap();
    assert!(!cache.is_playable_offline() && !cache.is_complete());
    assert_eq!(cache.loaded_time_ranges(&rid("video")).unwrap(), vec![range(0.0, 6.0), range(12.0, 18.0)]);
    write_segment(&bundle, &ids[1], b"b").unwrap();
    assert!(bundle.gaps().is_empty());
    assert!(AssetCache::open(&dir).unwrap().manifest().gaps.is_empty(), "the segment record clears the gap");
    assert!(
        {
            bundle.mark_finished().unwrap();
            bundle.manifest()
        }
        .complete
    );
}

#[test]
fn progress_and_time_ranges_follow_init_sections() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = stowage_bundle::BundlePlan::new(stowage_bundle::AssetInfo::new("f"))
        .rendition(fmp4_rendition("video", 3))
        .rendition(ts_rendition("audio-en", RenditionKind::Audio, 2, 0, 6.0).language("en"));
    let bundle = Bundle::create(tmp.path().join("f"), plan).unwrap();
    let video = rid("video");
    let ids = bundle.pending_segments();
    assert_eq!(ids.len(), 6);
    assert!(ids[0].is_init());
    write_segment(&bundle, &ids[1], b"m0").unwrap();
    write_segment(&bundle, &ids[2], b"m1").unwrap();
    assert!(bundle.loaded_time_ranges(&video).unwrap().is_empty(), "no init section yet");
    write_segment(&bundle, &ids[0], b"init").unwrap();
    assert_eq!(bundle.loaded_time_ranges(&video).unwrap(), vec![range(0.0, 8.0)]);
    assert!(bundle.segment_path(&ids[0]).unwrap().ends_with("video/init-d0-s0.mp4"));
    assert!(bundle.segment_path(&ids[1]).unwrap().ends_with("video/seg-d0-s0.m4s"));
    let progress = bundle.progress();
    assert_eq!((progress.segments_done, progress.segments_total, progress.bytes_done), (3, 6, 8));
    assert_eq!(bundle.manifest().renditions[0].plan.duration(), 12.0);
    assert_eq!(progress.renditions[1].segments_done, 0);
    assert_eq!(progress.renditions[0].loaded_duration, std::time::Duration::from_secs(8));
    // Bytes still to come are not known to the bundle: what it expects is what it stores, not exact yet.
    assert_eq!((progress.bytes_expected, progress.bytes_expected_exact), (8, false));
    for id in bundle.pending_segments() {
        write_segment(&bundle, &id, b"x").unwrap();
    }
    bundle.mark_finished().unwrap();
    let cache = AssetCache::open(bundle.dir()).unwrap();
    let selections = cache.available_media_selections();
    assert_eq!(selections.len(), 1);
    assert_eq!(selections[0].language.as_deref(), Some("en"));
}

#[test]
fn hostile_manifests_and_journals_give_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    drop(Bundle::create(&dir, simple_plan("a", 1)).unwrap());
    let manifest = fs::read_to_string(dir.join("manifest.json")).unwrap();

    fs::write(dir.join("manifest.json"), manifest.replace("\"version\": 1", "\"version\": 9")).unwrap();
    assert!(matches!(Bundle::open(&dir), Err(Error::UnsupportedVersion { found: 9, supported: 1, .. })));
    fs::write(dir.join("manifest.json"), manifest.replace("\"video\"", "\"../../etc\"")).unwrap();
    assert!(matches!(Bundle::open(&dir), Err(Error::InvalidManifest { .. })));
    fs::write(dir.join("manifest.json"), "{").unwrap();
    assert!(matches!(Bundle::open(&dir), Err(Error::InvalidManifest { .. })));
    fs::write(dir.join("manifest.json"), &manifest).unwrap();
    fs::write(dir.join("journal.log"), "garbage\n").unwrap();
    let err = Bundle::open(&dir).unwrap_err();
    assert!(matches!(err, Error::InvalidJournal { .. }), "{err}");
    assert_eq!(err.path(), Some(dir.join("journal.log").as_path()));
    fs::write(dir.join("journal.log"), &JOURNAL_HEADER[..4]).unwrap();
    let bundle = Bundle::open(&dir).unwrap();
    assert_eq!(fs::read_to_string(dir.join("journal.log")).unwrap(), JOURNAL_HEADER);
    drop(bundle);
    fs::remove_file(dir.join("manifest.json")).unwrap();
    assert!(matches!(Bundle::open(&dir), Err(Error::NotFound { .. })));
}

#[test]
fn renditions_can_be_added_to_a_finished_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 2)).unwrap();
    for id in bundle.pending_segments() {
        write_segment(&bundle, &id, b"video").unwrap();
    }
    assert!(
        {
            bundle.mark_finished().unwrap();
            bundle.manifest()
        }
        .finished
    );
    let french = ts_rendition("audio-fr", RenditionKind::Audio, 2, 0, 6.0).language("fr");
    bundle.add_renditions(vec![french.clone()]).unwrap();
    assert!(matches!(bundle.add_renditions(vec![french]), Err(Error::InvalidPlan { .. })));
    let pending = bundle.pending_segments();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|id| id.rendition.as_str() == "audio-fr"));
    assert!(!bundle.manifest().finished);
    assert!(dir.join("audio-fr/index.m3u8").is_file());
    drop(bundle);
    let bundle = Bundle::open(&dir).unwrap();
    assert_eq!(bundle.pending_segments(), pending);
    for id in pending {
        write_segment(&bundle, &id, b"audio").unwrap();
    }
    assert!(
        {
            bundle.mark_finished().unwrap();
            bundle.manifest()
        }
        .complete
    );
    let cache = AssetCache::open(&dir).unwrap();
    assert_eq!(cache.available_media_selections()[0].language.as_deref(), Some("fr"));
    bundle.delete().unwrap();
    assert!(!dir.exists());
}

#[test]
fn concurrent_writers_share_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 24)).unwrap();
    let ids = bundle.pending_segments();
    std::thread::scope(|s| {
        for lane in 0..4 {
            let (bundle, ids) = (bundle.clone(), &ids);
            s.spawn(move || {
                for id in ids.iter().skip(lane).step_by(4) {
                    write_segment(&bundle, id, &segment_bytes(id, 6, 20_000)).unwrap();
                }
            });
        }
    });
    assert!(
        {
            bundle.mark_finished().unwrap();
            bundle.manifest()
        }
        .complete
    );
    drop(bundle);
    let bundle = Bundle::open(&dir).unwrap();
    assert_eq!(bundle.open_report().finished_segments, 24);
    assert!(bundle.verify(false).unwrap().is_ok());
    let journal = fs::read_to_string(dir.join("journal.log")).unwrap();
    assert_eq!(journal.lines().count(), 25, "one header and one record per segment");
}

#[test]
fn time_ranges_grow_and_merge_in_any_order() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = Bundle::create(tmp.path().join("a"), simple_plan("a", 5)).unwrap();
    let (ids, video) = (bundle.pending_segments(), rid("video"));
    let ranges = |b: &Bundle| -> Vec<(f64, f64)> {
        b.loaded_time_ranges(&video)
            .unwrap()
            .iter()
            .map(|r| (r.start.as_secs_f64(), r.end.as_secs_f64()))
            .collect()
    };
    let steps: [(usize, Vec<(f64, f64)>); 5] = [
        (2, vec![(12.0, 18.0)]),
        (4, vec![(12.0, 18.0), (24.0, 30.0)]),
        (0, vec![(0.0, 6.0), (12.0, 18.0), (24.0, 30.0)]),
        (3, vec![(0.0, 6.0), (12.0, 30.0)]),
        (1, vec![(0.0, 30.0)]),
    ];
    for (i, expected) in steps {
        write_segment(&bundle, &ids[i], b"x").unwrap();
        assert_eq!(ranges(&bundle), expected, "after segment {i}");
        // The incremental ranges agree with a fresh computation from the journal.
        let cache = AssetCache::open(bundle.dir()).unwrap();
        let fresh: Vec<(f64, f64)> = cache
            .loaded_time_ranges(&video)
            .unwrap()
            .iter()
            .map(|r| (r.start.as_secs_f64(), r.end.as_secs_f64()))
            .collect();
        assert_eq!(fresh, expected);
    }
    let progress = bundle.progress();
    assert_eq!((progress.segments_done, progress.bytes_done), (5, 5));
    assert_eq!(bundle.manifest().renditions[0].plan.duration(), 30.0);
}

#[test]
fn a_rendition_started_again_keeps_nothing_of_its_old_plan_even_after_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let plan = simple_plan("a", 4).rendition(ts_rendition("audio", RenditionKind::Audio, 3, 0, 6.0));
    let bundle = Bundle::create(&dir, plan).unwrap();
    let video = rid("video");
    let old: Vec<SegmentId> =
        bundle.pending_segments().into_iter().filter(|id| id.rendition == video).collect();
    for id in &old[..3] {
        write_segment(&bundle, id, &segment_bytes(id, 1, 2000)).unwrap();
    }
    bundle.record_gap(&old[3], "404").unwrap();
    bundle.write_key(&video, 0, &[7; 16]).unwrap();
    let audio: Vec<SegmentId> =
        bundle.pending_segments().into_iter().filter(|id| id.rendition != video).collect();
    for id in &audio[..2] {
        write_segment(&bundle, id, &segment_bytes(id, 1, 1000)).unwrap();
    }
    bundle.write_playlists().unwrap();

    // The source now has five segments of four seconds, the first identities the same as before.
    let new = ts_rendition("video", RenditionKind::Video, 5, 0, 4.0).primary(true);
    let new_text = new.playlist.clone();
    assert!(matches!(
        bundle.reset_rendition(ts_rendition("nope", RenditionKind::Video, 1, 0, 4.0)),
        Err(Error::UnknownRendition { .. })
    ));
    bundle.reset_rendition(new).unwrap();
    let check = |bundle: &Bundle| {
        let pending = bundle.pending_segments();
        assert_eq!(pending.iter().filter(|id| id.rendition == video).count(), 5, "{pending:?}");
        assert_eq!(pending.iter().filter(|id| id.rendition != video).count(), 1, "audio is untouched");
        assert!(bundle.gaps().is_empty(), "the old gap went with its plan");
        let manifest = bundle.manifest();
        assert!(!manifest.finished);
        assert_eq!(manifest.renditions[0].plan.segments.len(), 5);
        assert_eq!(manifest.renditions[0].plan.duration(), 20.0);
    };
    check(&bundle);
    assert!(!dir.join("video/seg-d0-s0.ts").exists() && !dir.join("video/keys").exists());
    assert_eq!(fs::read_to_string(dir.join("source/video.m3u8")).unwrap(), new_text);
    assert!(!fs::read_to_string(dir.join("video/index.m3u8")).unwrap().contains("#EXTINF:6.000,"));
    drop(bundle);

    // The journal's old records of identities the new plan has too do not come back.
    let bundle = Bundle::open(&dir).unwrap();
    check(&bundle);
    for id in bundle.pending_segments() {
        write_segment(&bundle, &id, &segment_bytes(&id, 2, 1500)).unwrap();
    }
    assert!(
        {
            bundle.mark_finished().unwrap();
            bundle.manifest()
        }
        .complete
    );
    assert!(bundle.verify(false).unwrap().is_ok());
    let index = fs::read_to_string(dir.join("video/index.m3u8")).unwrap();
    assert_eq!(index.matches("#EXTINF:4.000,").count(), 5, "{index}");
}

#[test]
fn a_reader_gets_stored_bytes_playlists_and_kept_keys_and_nothing_else() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("asset");
    let bundle = Bundle::create(&dir, simple_plan("asset", 3).integrity(IntegrityPolicy::Tolerant)).unwrap();
    let ids = bundle.pending_segments();
    for id in &ids[..2] {
        write_segment(&bundle, id, &segment_bytes(id, 7, 5000)).unwrap();
    }
    bundle.record_gap(&ids[2], "404").unwrap();
    bundle.write_key(&rid("video"), 0, &[9u8; 16]).unwrap();
    bundle.mark_finished().unwrap();
    drop(bundle);

    let cache = AssetCache::open(&dir).unwrap();
    let mut reader = cache.open_stored(&ids[1]).unwrap();
    assert_eq!(reader.len(), 5000);
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, segment_bytes(&ids[1], 7, 5000));
    assert_eq!(cache.stored_len(&ids[2]), None);
    assert!(matches!(cache.open_stored(&ids[2]), Err(Error::NotFound { .. })), "a gap is not stored");
    let unknown = SegmentId::media(rid("video"), 0, 99);
    assert!(matches!(cache.open_stored(&unknown), Err(Error::UnknownSegment { .. })));
    assert!(cache.read_local_playlist(None).unwrap().starts_with("#EXTM3U"));
    assert!(cache.read_local_playlist(Some(&rid("video"))).unwrap().contains("EXT-X-GAP"));
    assert!(matches!(cache.read_local_playlist(Some(&rid("nope"))), Err(Error::UnknownRendition { .. })));
    assert_eq!(cache.read_key(&rid("video"), 0).unwrap(), [9u8; 16]);
    assert!(matches!(cache.read_key(&rid("video"), 1), Err(Error::NotFound { .. })));

    // A stored file cut short after it was journaled reads as an error, never as a short segment.
    let path = dir.join("video").join(ids[0].file_name("ts"));
    let cache = AssetCache::open(&dir).unwrap();
    let mut reader = cache.open_stored(&ids[0]).unwrap();
    fs::write(&path, b"short").unwrap();
    let e = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
}

/// A manifest that names gaps the plan does not have, or one gap twice, does not make a bundle with an
/// entry still pending look finished: what is settled is counted entry by entry.
#[test]
fn gaps_the_plan_does_not_have_or_named_twice_do_not_settle_a_pending_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("asset");
    let bundle = Bundle::create(&dir, simple_plan("asset", 4)).unwrap();
    let ids = bundle.pending_segments();
    for id in &ids[..2] {
        write_segment(&bundle, id, &segment_bytes(id, 1, 100)).unwrap();
    }
    bundle.record_gap(&ids[2], "the origin answered 404").unwrap();
    bundle.save().unwrap();
    drop(bundle);
    // The manifest names the gap twice and a gap of a segment no plan has.
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let gaps = manifest["gaps"].as_array_mut().unwrap();
    let mut stranger = gaps[0].clone();
    stranger["segment"]["media_sequence"] = serde_json::json!(99);
    gaps.push(gaps[0].clone());
    gaps.push(stranger);
    fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let bundle = Bundle::open(&dir).unwrap();
    assert_eq!(bundle.pending_segments(), [ids[3].clone()]);
    bundle.save().unwrap();
    assert!(!bundle.manifest().finished, "an entry is pending");
    let on_disk: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk["finished"], false);
    assert!(matches!(bundle.mark_finished(), Err(Error::Incomplete { missing: 1, .. })));
}
