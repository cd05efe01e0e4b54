//! Live capture end to end: a task given a live playlist of the in-process live origin (playing the
//! committed fixtures as a sliding window, its clock faster than real time) records it into a VOD bundle,
//! compared byte for byte with the origin's oracle, through faults of the origin's script.

mod common;

use std::path::Path;
use std::time::Duration;

use stowage_bundle::{Bundle, SegmentKind};
use stowage_origin::live::{KeyRotation, LiveConfig, LiveOrigin, LiveSource, Script};
use stowage_task::config::{LiveStart, RecordingConfiguration};
use stowage_task::{ContentConfiguration, DownloadConfiguration};

fn s(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// The committed fixtures' master (2 s segments), played live at twice real time.
fn live_origin(config: LiveConfig) -> LiveOrigin {
    let source = LiveSource::from_dir(common::assets().join("clear"), "master.m3u8").unwrap();
    LiveOrigin::start(source, config.speed(2.0)).unwrap()
}

/// Records `url` into a fresh store with `recording`; returns the finished bundle.
async fn record(store: &Path, url: &str, recording: RecordingConfiguration) -> Bundle {
    let session = common::session(store);
    let config = DownloadConfiguration::new(ContentConfiguration::new()).recording(recording);
    let task = session.download_task(url, config).unwrap();
    task.resume();
    let dir = tokio::time::timeout(s(120), task.wait())
        .await
        .expect("the recording ends within 120 s")
        .expect("the recording finishes");
    stowage_testkit::open_when_released(&dir)
}

/// Checks every rendition of a finished recording against the origin's oracle: each stored media segment
/// is byte for byte what the origin served as that media sequence number, the local playlist is a closed
/// VOD playlist, and the media sequence numbers recorded are those from the first recorded on, less the
/// holes. Returns the media sequence numbers recorded per rendition.
fn check_recording(live: &LiveOrigin, bundle: &Bundle) -> Vec<Vec<u64>> {
    let manifest = bundle.manifest();
    assert!(manifest.finished, "the recording is finished");
    let renditions = live.renditions();
    let mut recorded = Vec::new();
    for r in &manifest.renditions {
        let name = renditions
            .iter()
            .find(|o| live.playlist_url(&o.name).as_deref() == Some(r.plan.url.as_str()))
            .map(|o| o.name.clone())
            .unwrap_or_else(|| panic!("{} is a rendition of the origin", r.plan.url));
        let mut numbers = Vec::new();
        for entry in r.plan.segments.iter().filter(|e| e.kind == SegmentKind::Media) {
            let id = entry.id(&r.plan.id);
            // A hole's EXT-X-GAP segments (and segments that expired) are gaps: nothing is stored.
            if manifest.gaps.iter().any(|g| g.segment == id) {
                continue;
            }
            let oracle = live.segment(&name, entry.media_sequence).expect("the origin made the segment");
            let stored = std::fs::read(bundle.segment_path(&id).expect("stored")).unwrap();
            assert!(stored == oracle.clear, "{id:?} is what the origin served as {}", entry.media_sequence);
            numbers.push(entry.media_sequence);
        }
        let local =
            std::fs::read_to_string(bundle.dir().join(r.plan.id.as_str()).join("index.m3u8")).unwrap();
        assert!(
            local.contains("#EXT-X-PLAYLIST-TYPE:VOD") && local.trim_end().ends_with("#EXT-X-ENDLIST"),
            "{local}"
        );
        recorded.push(numbers);
    }
    recorded
}

/// Decodes every stored media segment of `bundle` with ffmpeg, each alone (any error fails). The origin
/// loops over the six fixture segments, so a recording crosses loop points, marked `EXT-X-DISCONTINUITY`,
/// where the MPEG-TS continuity counters start again: ffmpeg's HLS reader with `-xerror` calls the first
/// packet after such a point corrupt, which says nothing about the recording.
fn decode_each_segment(bundle: &Bundle) {
    let manifest = bundle.manifest();
    let mut decoded = 0;
    for r in &manifest.renditions {
        for entry in r.plan.segments.iter().filter(|e| e.kind == SegmentKind::Media) {
            if manifest.gaps.iter().any(|g| g.segment == entry.id(&r.plan.id)) {
                continue;
            }
            let path = bundle.segment_path(&entry.id(&r.plan.id)).expect("stored");
            let out = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-xerror", "-i"])
                .arg(&path)
                .args(["-f", "null", "-"])
                .output()
                .expect("ffmpeg runs");
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{} does not decode: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            decoded += 1;
        }
    }
    assert!(decoded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_is_recorded_from_its_live_edge_to_its_end_list() {
    let live = live_origin(LiveConfig::default().window(6).script(Script::new().end_list(s(24))));
    let store = tempfile::tempdir().unwrap();
    let bundle = record(store.path(), &live.url(), RecordingConfiguration::new()).await;
    let recording = bundle.manifest().recording.expect("the bundle is a recording");
    assert_eq!(recording.ended.as_deref(), Some("the playlist ended (EXT-X-ENDLIST)"));
    assert!(recording.holes.is_empty(), "{:?}", recording.holes);
    let last = live.timeline().final_count().expect("the stream ended") - 1;
    for numbers in check_recording(&live, &bundle) {
        // The live edge: the last three target durations listed when the recording started (at stream
        // time 0 the window holds 0..6).
        assert_eq!(numbers.first(), Some(&3), "{numbers:?}");
        assert_eq!(numbers, (3..=last).collect::<Vec<_>>(), "every segment from the edge to the end, once");
    }
    if stowage_testkit::have_ffmpeg() {
        decode_each_segment(&bundle);
    }
}

/// The origin's name of the rendition a bundle's rendition recorded.
fn origin_name(live: &LiveOrigin, url: &str) -> String {
    live.renditions()
        .into_iter()
        .find(|o| live.playlist_url(&o.name).as_deref() == Some(url))
        .map(|o| o.name)
        .unwrap_or_else(|| panic!("{url} is a rendition of the origin"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_outage_costs_only_what_left_the_window_and_the_holes_say_so() {
    // Unreachable (requests read and never answered) from stream time 10 s to 40 s: 15 s of wall time.
    let script = Script::new().black_hole(s(10), s(30)).end_list(s(60));
    let live = live_origin(LiveConfig::default().window(6).script(script));
    let store = tempfile::tempdir().unwrap();
    let bundle = record(store.path(), &live.url(), RecordingConfiguration::new()).await;
    let manifest = bundle.manifest();
    let recording = manifest.recording.clone().expect("a recording");
    assert_eq!(recording.ended.as_deref(), Some("the playlist ended (EXT-X-ENDLIST)"));
    let last = live.timeline().final_count().expect("the stream ended") - 1;
    let left = live.timeline().left_window_during(s(10), s(40));
    assert!(!left.is_empty());
    for (r, numbers) in manifest.renditions.iter().zip(check_recording(&live, &bundle)) {
        let name = origin_name(&live, &r.plan.url);
        // The holes are exactly what this rendition's playlists never listed, and only what left the
        // window during the outage.
        let unlisted: Vec<(u64, u64)> = live
            .unlisted(&name)
            .iter()
            .flat_map(|u| u.media_sequences.iter().map(|m| (*m.start(), *m.end())))
            .collect();
        let holes: Vec<(u64, u64)> =
            recording.holes.iter().filter(|h| h.rendition == r.plan.id).map(|h| h.media_sequences).collect();
        assert_eq!(holes, unlisted, "{name}");
        assert!(!holes.is_empty(), "{name}: the outage was longer than the window");
        for (first, last) in &holes {
            assert!(
                left.contains(first) && left.contains(last),
                "{name}: {first}..={last} left during {left:?}"
            );
        }
        // Every other segment, from the first recorded to the last made, is stored once.
        let expected: Vec<u64> =
            (numbers[0]..=last).filter(|n| !holes.iter().any(|(a, b)| (a..=b).contains(&n))).collect();
        assert_eq!(numbers, expected, "{name}");
        let local =
            std::fs::read_to_string(bundle.dir().join(r.plan.id.as_str()).join("index.m3u8")).unwrap();
        assert!(local.contains("#EXT-X-DISCONTINUITY"), "the hole is marked in the local playlist");
    }
}

/// Checks that every rendition recorded each segment from its first to the stream's last, once.
fn assert_contiguous(live: &LiveOrigin, bundle: &Bundle) {
    let last = live.timeline().final_count().expect("the stream ended") - 1;
    for numbers in check_recording(live, bundle) {
        assert_eq!(numbers, (numbers[0]..=last).collect::<Vec<_>>(), "every segment once, none missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_copies_of_the_playlist_are_never_taken_for_a_restart() {
    // From 6 s to 30 s, every other playlist answer is a copy 8 s old (a CDN edge lagging behind).
    let script = Script::new().stale(s(6), s(24), s(8), 2).end_list(s(40));
    let live = live_origin(LiveConfig::default().window(6).script(script));
    let store = tempfile::tempdir().unwrap();
    let bundle = record(store.path(), &live.url(), RecordingConfiguration::new()).await;
    let recording = bundle.manifest().recording.expect("a recording");
    assert!(recording.holes.is_empty(), "{:?}", recording.holes);
    assert_contiguous(&live, &bundle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_key_rotates_is_stored_decrypted() {
    let live = live_origin(
        LiveConfig::default().window(6).keys(KeyRotation::every(2)).script(Script::new().end_list(s(24))),
    );
    let store = tempfile::tempdir().unwrap();
    let bundle =
        record(store.path(), &live.url(), RecordingConfiguration::new().start(LiveStart::Oldest)).await;
    assert!(bundle.manifest().recording.expect("a recording").holes.is_empty());
    let last = live.timeline().final_count().expect("the stream ended") - 1;
    // From the oldest segment listed: 0 to the end, each compared with the clear source.
    for numbers in check_recording(&live, &bundle) {
        assert_eq!(numbers, (0..=last).collect::<Vec<_>>());
    }
    let local = std::fs::read_to_string(
        bundle.dir().join(bundle.manifest().renditions[0].plan.id.as_str()).join("index.m3u8"),
    )
    .unwrap();
    assert!(!local.contains("#EXT-X-KEY"), "stored decrypted, the local playlist names no key: {local}");
}

/// A live origin whose segments are black-holed from stream time 4 s, its playlists too from 10 s, until 40
/// s: what was listed between 4 s and 10 s is pending when the origin goes silent, and (kept no longer
/// than the window) gone when it answers again.
fn expiring_origin() -> LiveOrigin {
    use stowage_origin::{Fault, FaultRule};
    let segments = FaultRule::new(Fault::BlackHole).glob("*-*.ts");
    let script = Script::new().fault(s(4), s(36), segments).black_hole(s(10), s(30)).end_list(s(60));
    live_origin(LiveConfig::default().window(6).retention(Duration::ZERO).script(script))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_listed_before_an_outage_and_gone_after_it_are_holes_that_say_they_expired() {
    let live = expiring_origin();
    let store = tempfile::tempdir().unwrap();
    // The default strict integrity: a segment that expired during an outage does not fail the recording.
    let bundle = record(store.path(), &live.url(), RecordingConfiguration::new()).await;
    let manifest = bundle.manifest();
    let recording = manifest.recording.clone().expect("a recording");
    assert_eq!(recording.ended.as_deref(), Some("the playlist ended (EXT-X-ENDLIST)"));
    let last = live.timeline().final_count().expect("the stream ended") - 1;
    for r in &manifest.renditions {
        let name = origin_name(&live, &r.plan.url);
        let holes: Vec<&stowage_bundle::Hole> =
            recording.holes.iter().filter(|h| h.rendition == r.plan.id).collect();
        let expired: Vec<(u64, u64)> =
            holes.iter().filter(|h| h.cause.starts_with("expired")).map(|h| h.media_sequences).collect();
        assert!(!expired.is_empty(), "{name}: segments listed before the outage expired: {holes:#?}");
        // Each says where it was on the program's clock: the segment's date, as the playlist gave it (to
        // the millisecond), and its end.
        for hole in holes.iter().filter(|h| h.cause.starts_with("expired")) {
            let oracle = live.segment(&name, hole.media_sequences.0).expect("the origin made the segment");
            let (from, to) = hole.program_date_times.unwrap_or_else(|| panic!("{name}: no dates: {hole:#?}"));
            let off = |a: std::time::SystemTime, b: std::time::SystemTime| {
                a.duration_since(b).or_else(|_| b.duration_since(a)).unwrap()
            };
            assert!(off(from, oracle.program_date_time) < Duration::from_millis(2), "{name}: {hole:#?}");
            assert!(
                off(to, oracle.program_date_time + oracle.duration) < Duration::from_millis(2),
                "{hole:#?}"
            );
        }
        // Each expired segment is a gap of the plan, listed in the recording between what was stored.
        for (msn, _) in &expired {
            let id = stowage_bundle::SegmentId::media(r.plan.id.clone(), 0, *msn);
            let gap = manifest
                .gaps
                .iter()
                .find(|g| g.segment.media_sequence == *msn && g.segment.rendition == id.rendition);
            assert!(gap.is_some(), "{name}: {msn} is a gap: {:?}", manifest.gaps);
        }
        // The rest of the holes: exactly what the playlists never listed.
        let unlisted: Vec<(u64, u64)> = live
            .unlisted(&name)
            .iter()
            .flat_map(|u| u.media_sequences.iter().map(|m| (*m.start(), *m.end())))
            .collect();
        let left: Vec<(u64, u64)> =
            holes.iter().filter(|h| !h.cause.starts_with("expired")).map(|h| h.media_sequences).collect();
        assert_eq!(left, unlisted, "{name}");
        // Every other segment, from the first to the last, is stored, byte for byte what the origin made.
        let mut stored = Vec::new();
        for entry in r.plan.segments.iter().filter(|e| e.kind == SegmentKind::Media) {
            let id = entry.id(&r.plan.id);
            if manifest.gaps.iter().any(|g| g.segment == id) {
                continue;
            }
            let oracle = live.segment(&name, entry.media_sequence).expect("the origin made the segment");
            assert!(std::fs::read(bundle.segment_path(&id).expect("stored")).unwrap() == oracle.clear);
            stored.push(entry.media_sequence);
        }
        let missing = |n: &u64| expired.iter().chain(&left).any(|(a, b)| (a..=b).contains(&n));
        assert_eq!(stored, (stored[0]..=last).filter(|n| !missing(n)).collect::<Vec<_>>(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_told_to_fail_on_expiry_fails_for_a_segment_gone_after_an_outage() {
    // The outage of the test above: segments listed before it are gone after it.
    let live = expiring_origin();
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let recording = RecordingConfiguration::new().fail_on_expiry(true);
    let config = DownloadConfiguration::new(ContentConfiguration::new()).recording(recording);
    let task = session.download_task(&live.url(), config).unwrap();
    task.resume();
    let failed = tokio::time::timeout(s(120), task.wait()).await.expect("the recording ends within 120 s");
    let error = failed.expect_err("strict integrity fails for the expired segment").to_string();
    assert!(error.contains("404"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_and_video_of_one_recording_start_and_end_at_the_same_segment() {
    use stowage_origin::{Fault, FaultRule};
    let live = live_origin(LiveConfig::default().window(6).script(Script::new().end_list(s(60))));
    // The audio playlist's first answer comes 2.5 s (5 s of stream) after the video's: its live edge is
    // two or three segments later.
    let late = FaultRule::new(Fault::Latency(Duration::from_millis(2500)));
    live.origin().faults().add(late.path("/live/audio-en/index.m3u8").first(1));
    let store = tempfile::tempdir().unwrap();
    let bundle = record(store.path(), &live.url(), RecordingConfiguration::new().duration(s(12))).await;
    let recorded = check_recording(&live, &bundle);
    assert_eq!(recorded.len(), 2, "audio and video: {recorded:?}");
    for numbers in &recorded {
        assert_eq!(numbers, &recorded[0], "each rendition covers the same span: {recorded:?}");
        assert_eq!(numbers.len(), 6, "12 s of 2 s segments: {recorded:?}");
    }
    // The same program date times too, as the local playlists say.
    let dates: Vec<String> = bundle
        .manifest()
        .renditions
        .iter()
        .map(|r| {
            let local =
                std::fs::read_to_string(bundle.dir().join(r.plan.id.as_str()).join("index.m3u8")).unwrap();
            let first = local.lines().find(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME:"));
            first.expect("the recording keeps the program date times").to_owned()
        })
        .collect();
    assert_eq!(dates[0], dates[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_key_rotates_can_be_kept_encrypted_with_every_key() {
    use stowage_task::config::KeyPolicy;
    // A new key every two segments, and an outage longer than the window in the middle: keys are kept
    // across batches and across the hole.
    let script = Script::new().black_hole(s(10), s(20)).end_list(s(40));
    let live = live_origin(LiveConfig::default().window(6).keys(KeyRotation::every(2)).script(script));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let config = DownloadConfiguration::new(ContentConfiguration::new())
        .keys(KeyPolicy::KeepEncrypted)
        .recording(RecordingConfiguration::new().start(LiveStart::Oldest));
    let task = session.download_task(&live.url(), config).unwrap();
    task.resume();
    let dir = tokio::time::timeout(s(120), task.wait())
        .await
        .expect("the recording ends within 120 s")
        .expect("the recording finishes");
    let bundle = stowage_testkit::open_when_released(&dir);
    let manifest = bundle.manifest();
    assert!(!manifest.recording.as_ref().unwrap().holes.is_empty(), "the outage made a hole");
    let mut checked = 0;
    for r in &manifest.renditions {
        let name = origin_name(&live, &r.plan.url);
        // The local playlist names, before each stored segment, the kept key the origin encrypted it with.
        let local =
            std::fs::read_to_string(bundle.dir().join(r.plan.id.as_str()).join("index.m3u8")).unwrap();
        let mut key_file: Option<String> = None;
        let mut entries = r.plan.segments.iter().filter(|e| e.kind == SegmentKind::Media);
        for line in local.lines() {
            if let Some(attributes) = line.strip_prefix("#EXT-X-KEY:") {
                key_file = attributes
                    .split(',')
                    .find_map(|a| a.strip_prefix("URI=\""))
                    .map(|u| u.trim_end_matches('"').to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let entry = entries.next().expect("a plan entry per listed segment");
            let id = entry.id(&r.plan.id);
            if manifest.gaps.iter().any(|g| g.segment == id) {
                continue;
            }
            let oracle = live.segment(&name, entry.media_sequence).expect("the origin made the segment");
            let stored = std::fs::read(bundle.segment_path(&id).expect("stored")).unwrap();
            assert!(stored == oracle.body, "{id:?} is stored as served, encrypted");
            let key = oracle.key.expect("the segment is encrypted").key;
            let file = key_file.as_deref().unwrap_or_else(|| panic!("{id:?}: no key in force\n{local}"));
            let kept = std::fs::read(bundle.dir().join(r.plan.id.as_str()).join(file)).unwrap();
            assert_eq!(kept, key, "{id:?}: {file} is the key it was encrypted with");
            checked += 1;
        }
        if stowage_testkit::have_ffmpeg() {
            // A player decrypts it: ffmpeg plays the local playlist through its kept keys, with the IVs the
            // numbering gives (the hole's EXT-X-GAP segments keep it going).
            let index = bundle.dir().join(r.plan.id.as_str()).join("index.m3u8");
            let out = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-allowed_extensions", "ALL", "-i"])
                .arg(&index)
                .args(["-f", "null", "-"])
                .output()
                .expect("ffmpeg runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {stderr}", index.display());
            // ffmpeg does not know EXT-X-GAP: it tries the hole's segments, which are not there, and goes
            // on. Nothing else is said: every stored segment decrypts and decodes.
            for line in stderr.lines() {
                let missing = line.split("Unable to open resource: ").nth(1);
                assert!(
                    missing.is_some_and(|path| !Path::new(path).exists()),
                    "{}: {stderr}",
                    index.display()
                );
            }
        }
    }
    assert!(checked > 10, "{checked} segments checked");
}

/// A live origin whose audio playlist answers every request a second (one segment of stream time at twice
/// real time) later than asked: its reloads, made when the video's are, list one segment more than the
/// video's did, so a recording that ends between two reloads finds its renditions listed to different
/// ends.
fn origin_with_audio_a_reload_apart(script: Script) -> LiveOrigin {
    use stowage_origin::{Fault, FaultRule};
    let live = live_origin(LiveConfig::default().window(6).script(script));
    let late = FaultRule::new(Fault::Latency(Duration::from_secs(1)));
    live.origin().faults().add(late.path("/live/audio-en/index.m3u8"));
    live
}

/// The media sequence number of each rendition's last planned media segment (stored or a gap), with the
/// rendition's origin name.
fn planned_ends(live: &LiveOrigin, bundle: &Bundle) -> Vec<(String, u64)> {
    bundle
        .manifest()
        .renditions
        .iter()
        .map(|r| {
            let last = r.plan.segments.iter().rev().find(|e| e.kind == SegmentKind::Media);
            (origin_name(live, &r.plan.url), last.expect("a segment was recorded").media_sequence)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_and_video_of_a_recording_stopped_at_a_time_end_at_the_same_segment() {
    let live = origin_with_audio_a_reload_apart(Script::new().end_list(s(600)));
    let store = tempfile::tempdir().unwrap();
    let until = std::time::SystemTime::now() + s(9);
    let bundle = record(store.path(), &live.url(), RecordingConfiguration::new().until(until)).await;
    let recording = bundle.manifest().recording.expect("a recording");
    assert_eq!(recording.ended.as_deref(), Some("the time to stop came"));
    assert!(recording.holes.is_empty(), "{:?}", recording.holes);
    let recorded = check_recording(&live, &bundle);
    assert_eq!(recorded.len(), 2, "audio and video: {recorded:?}");
    assert!(recorded[0].len() > 4, "{recorded:?}");
    // The origin's renditions share one timeline: the same numbers are the same program dates.
    assert_eq!(recorded[0], recorded[1], "each rendition covers the same span");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_and_video_of_a_recording_ended_by_its_outage_limit_end_at_the_same_segment() {
    // Unreachable from stream time 12 s on, for good; the recording gives up 3 s after the last news.
    let live = origin_with_audio_a_reload_apart(Script::new().black_hole(s(12), s(600)));
    let store = tempfile::tempdir().unwrap();
    let bundle = record(store.path(), &live.url(), RecordingConfiguration::new().max_outage(s(3))).await;
    let recording = bundle.manifest().recording.expect("a recording");
    assert_eq!(recording.ended.as_deref(), Some("nothing new came for 3 s (the outage limit)"));
    check_recording(&live, &bundle);
    let ends = planned_ends(&live, &bundle);
    assert_eq!(ends.len(), 2, "audio and video: {ends:?}");
    assert_eq!(ends[0].1, ends[1].1, "each rendition's plan ends at the same segment: {ends:?}");
}
