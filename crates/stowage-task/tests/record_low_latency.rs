//! Low-latency HLS recorded end to end: the in-process live origin serves the committed fixtures with
//! `CAN-BLOCK-RELOAD`, parts and preload hints; a task records it to its `EXT-X-ENDLIST`, storing full
//! segments only, each byte for byte what the origin's oracle says, and reloads with blocking requests no
//! more often than once per part target on average (counted at the origin).

mod common;

use std::time::Duration;

use stowage_bundle::SegmentKind;
use stowage_origin::live::{LiveConfig, LiveOrigin, LiveSource, LowLatency, Script};
use stowage_task::config::RecordingConfiguration;
use stowage_task::{ContentConfiguration, DownloadConfiguration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_latency_stream_is_recorded_in_full_segments_with_blocking_reloads() {
    const SPEED: f64 = 2.0;
    let part_target = Duration::from_millis(500);
    let end = Duration::from_secs(30);
    let source = LiveSource::from_dir(common::assets().join("clear"), "master.m3u8").unwrap();
    let config = LiveConfig::default()
        .window(6)
        .speed(SPEED)
        .low_latency(LowLatency::part_target(part_target))
        .script(Script::new().end_list(end));
    let live = LiveOrigin::start(source, config).unwrap();
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let config =
        DownloadConfiguration::new(ContentConfiguration::new()).recording(RecordingConfiguration::new());
    let task = session.download_task(&live.url(), config).unwrap();
    let started = live.clock().now();
    task.resume();
    let dir = tokio::time::timeout(Duration::from_secs(120), task.wait())
        .await
        .expect("the recording ends within 120 s")
        .expect("the recording finishes");
    // The span of stream time the recorder was reloading, in part targets.
    let recorded_span = live.clock().now().saturating_sub(started);
    let bundle = stowage_testkit::open_when_released(&dir);
    let manifest = bundle.manifest();
    assert!(manifest.finished);
    let recording = manifest.recording.clone().expect("the bundle is a recording");
    assert_eq!(recording.ended.as_deref(), Some("the playlist ended (EXT-X-ENDLIST)"));
    assert!(recording.holes.is_empty(), "{:?}", recording.holes);
    let last = live.timeline().final_count().expect("the stream ended") - 1;
    let mut checked = 0;
    for r in &manifest.renditions {
        let name = live
            .renditions()
            .into_iter()
            .find(|o| live.playlist_url(&o.name).as_deref() == Some(r.plan.url.as_str()))
            .map(|o| o.name)
            .unwrap_or_else(|| panic!("{} is a rendition of the origin", r.plan.url));
        let mut numbers = Vec::new();
        for entry in r.plan.segments.iter().filter(|e| e.kind == SegmentKind::Media) {
            let oracle = live.segment(&name, entry.media_sequence).expect("the origin made the segment");
            assert!(oracle.parts.len() > 1, "{name} {}: the origin cut it into parts", entry.media_sequence);
            let stored = std::fs::read(bundle.segment_path(&entry.id(&r.plan.id)).unwrap()).unwrap();
            // A full segment: all its parts, put together, and nothing else.
            assert!(stored == oracle.clear, "{name} {} is the whole segment", entry.media_sequence);
            numbers.push(entry.media_sequence);
        }
        assert_eq!(numbers, (numbers[0]..=last).collect::<Vec<_>>(), "{name}: every segment once");
        checked += numbers.len();
        let local =
            std::fs::read_to_string(bundle.dir().join(r.plan.id.as_str()).join("index.m3u8")).unwrap();
        for tag in ["#EXT-X-PART", "#EXT-X-PRELOAD-HINT", "#EXT-X-SERVER-CONTROL", "#EXT-X-PART-INF"] {
            assert!(!local.contains(tag), "{name}: the local playlist keeps no {tag}: {local}");
        }
        let stats = live.playlist_stats(&name).expect("the origin counts the rendition's requests");
        let part_targets = recorded_span.as_secs_f64() / part_target.as_secs_f64();
        eprintln!(
            "{name}: {} segments, {} playlist requests ({} blocking, {} held) over {part_targets:.0} part targets",
            numbers.len(),
            stats.requests,
            stats.blocking,
            stats.held
        );
        assert!(stats.blocking > 0, "{name}: reloads are blocking requests: {stats:?}");
        assert!(
            (stats.requests as f64) <= part_targets,
            "{name}: {} playlist requests over {part_targets:.0} part targets: {stats:?}",
            stats.requests
        );
        assert_eq!(stats.timed_out + stats.rejected, 0, "{name}: {stats:?}");
    }
    // Segment requests only: no part was fetched.
    let parts = live.origin().log().iter().filter(|r| r.path.matches('.').count() > 1).count();
    assert_eq!(parts, 0, "no part is fetched");
    assert!(checked > 0);
}
