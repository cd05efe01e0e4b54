//! The memory a recording holds: what an open bundle keeps per recorded segment, and what ending a long
//! recording takes, counted by dhat's allocator (this test binary's own), which tracks live and peak heap
//! bytes.

mod common;

use std::sync::Arc;

use common::*;
use stowage_bundle::{
    AssetInfo, Bundle, BundleOptions, BundlePlan, Durability, LocalFs, MediaFormat, PlannedSegment,
    RecordedSegment, Recording, RenditionKind, RenditionPlan,
};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const HEADER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n";

/// Segment `msn` of a live stream, as a recorder adds it: a new discontinuity every thousand.
fn segment(msn: u64) -> RecordedSegment {
    let discontinuity = if msn > 0 && msn.is_multiple_of(1000) { "#EXT-X-DISCONTINUITY\n" } else { "" };
    let lines = format!("{discontinuity}#EXTINF:1.96000,\nhttps://live.example/v-{msn}.ts\n");
    RecordedSegment::new(vec![PlannedSegment::media(msn / 1000, msn, 1.96, "")], lines)
}

/// Records segments `from..to` in batches of a hundred, as reloads add them, storing each and writing the
/// growing playlists after each batch.
fn record(bundle: &Bundle, from: u64, to: u64) {
    let video = rid("video");
    for first in (from..to).step_by(100) {
        let batch: Vec<RecordedSegment> = (first..(first + 100).min(to)).map(segment).collect();
        let ids: Vec<_> = batch.iter().flat_map(|s| s.entries.iter().map(|e| e.id(&video))).collect();
        bundle.record_segments(&video, batch).unwrap();
        for id in ids {
            write_segment(bundle, &id, b"\x47 two packets").unwrap();
        }
        bundle.write_growing_playlists().unwrap();
    }
}

/// A recording bundle of one video rendition that grows from nothing.
fn recording_bundle(dir: &std::path::Path) -> Bundle {
    let rendition = RenditionPlan::new(
        rid("video"),
        RenditionKind::Video,
        MediaFormat::Ts,
        "https://live.example/v.m3u8",
        HEADER.to_owned(),
        Vec::new(),
    )
    .primary(true);
    let plan = BundlePlan::new(AssetInfo::new("live")).rendition(rendition).recording(Recording::new());
    let options = BundleOptions::default().durability(Durability::batched(10_000));
    Bundle::create_with(Arc::new(LocalFs::new()), dir, plan, options).unwrap()
}

/// A profile of the allocations made from now on.
fn profile() -> dhat::Profiler {
    dhat::Profiler::builder().testing().trim_backtraces(Some(1)).build()
}

/// The bytes allocated since the profile started and not freed yet.
fn live() -> usize {
    dhat::HeapStats::get().curr_bytes
}

/// The most bytes allocated since the profile started and not freed at once.
fn peak() -> usize {
    dhat::HeapStats::get().max_bytes
}

/// A live recording of 12,000 segments through the bundle: past the first 2,000, what the bundle holds
/// grows by at most 64 bytes per finished segment (the bound; its plan entries and finished set
/// took about 340 before), ending it (the final manifest with every entry, the final playlists) takes no
/// memory that grows with the recording, and neither does opening a recording that was not ended (a
/// recorder killed), whose plan and stored segments are all in a journal of megabytes, nor going on with it.
#[test]
fn a_long_recording_holds_a_few_bytes_per_finished_segment_and_ends_and_opens_without_holding_it_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    let profiler = profile();
    let bundle = recording_bundle(&dir);
    let (early, late) = (2_000, 12_000);
    record(&bundle, 0, early);
    let live_early = live();
    record(&bundle, early, late);
    let per_segment = live().saturating_sub(live_early) / (late - early) as usize;
    eprintln!("held per recorded segment: {per_segment} bytes");
    assert!(per_segment <= 64, "{per_segment} bytes held per recorded segment");
    assert_eq!(bundle.progress().segments_done, late as usize);

    // A recorder killed: the bundle opened again holds what it held, and reads its journal (3.8 MB) a
    // buffer at a time.
    drop(bundle);
    drop(profiler);
    let journal = std::fs::metadata(dir.join("journal.log")).unwrap().len();
    assert!(journal > 3_000_000, "{journal}");
    // What a server asks of it over and over while it runs: its status, read compactly too.
    let reader = stowage_bundle::BundleReader::open(&dir).unwrap();
    let profiler = profile();
    let status = reader.status().unwrap();
    let taken = peak();
    drop(profiler);
    eprintln!("its status took {taken} bytes at its peak");
    assert!(taken < 2 * 1024 * 1024, "its status took {taken} bytes at its peak");
    assert_eq!(status.segments_finished, late as usize);
    assert_eq!(status.segments_total, late as usize);
    assert!(!status.finished);

    let profiler = profile();
    let bundle = Bundle::open(&dir).unwrap();
    let taken = peak();
    eprintln!("opening it took {taken} bytes at its peak, holds {}", live());
    assert!(taken < 1024 * 1024, "opening the recording took {taken} bytes at its peak");
    drop(profiler);
    assert_eq!(bundle.progress().segments_done, late as usize);
    assert_eq!(bundle.pending_segments(), []);
    // The recording goes on and ends: its playlist, taken up from where it stands on disk, is appended
    // to, not built whole.
    let profiler = profile();
    record(&bundle, late, late + 100);
    bundle.end_recording("the recording was stopped").unwrap();
    let taken = peak();
    eprintln!("going on and ending took {taken} bytes at its peak");
    assert!(taken < 512 * 1024, "going on and ending took {taken} bytes at its peak");
    drop(profiler);
    drop(bundle);
    let local = std::fs::read_to_string(dir.join("video/index.m3u8")).unwrap();
    let reopened = Bundle::open(&dir).unwrap();
    reopened.write_playlists().unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("video/index.m3u8")).unwrap(), local);
    drop(reopened);

    // Another recording, ended without being opened again: its growing playlists are appended to.
    let dir = tmp.path().join("ended");
    let bundle = recording_bundle(&dir);
    record(&bundle, 0, late);
    let profiler = profile();
    bundle.end_recording("the recording was stopped").unwrap();
    let taken = peak();
    drop(profiler);
    eprintln!("ending the recording took {taken} bytes at its peak");
    // The manifest alone is about 1.2 MB here, the local playlist about 0.5 MB.
    assert!(taken < 256 * 1024, "ending the recording took {taken} bytes at its peak");

    // What was written is whole: every entry in the manifest, the playlist VOD with every segment.
    drop(bundle);
    let manifest = stowage_bundle::Manifest::parse(
        &dir.join("manifest.json"),
        &std::fs::read(dir.join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert!(manifest.finished && manifest.complete);
    let entries = &manifest.renditions[0].plan.segments;
    assert_eq!(entries.len(), late as usize);
    assert!(entries.iter().enumerate().all(|(i, e)| e.media_sequence == i as u64 && e.duration == 1.96));
    let local = std::fs::read_to_string(dir.join("video/index.m3u8")).unwrap();
    let parsed = stowage_playlist::MediaPlaylist::parse(local.as_str()).unwrap();
    assert_eq!(parsed.segments().len(), late as usize);
    assert!(parsed.is_ended() && local.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));

    // And it is what the whole rewrite of the bundle reopened writes.
    let reopened = Bundle::open(&dir).unwrap();
    reopened.write_playlists().unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("video/index.m3u8")).unwrap(), local);
    assert_eq!(reopened.manifest().renditions[0].plan.segments, *entries);
}
