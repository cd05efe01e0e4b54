//! Play while downloading: while a task runs, its bundle's local playlists grow as segments are stored,
//! read by a player as EVENT playlists that only ever grow by appending, and end when the download does.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stowage_origin::{Fault, FaultRule, OriginConfig};
use stowage_playlist::MediaPlaylist;
use stowage_task::config::{Resolution, VariantQualifier};
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession};

/// Every distinct text of each rendition's `index.m3u8` seen while `stop` is not set, in order.
fn watch(dir: &Path, stop: &AtomicBool) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let last_round = stop.load(Ordering::SeqCst);
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("index.m3u8")) else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let texts = seen.entry(name).or_default();
            if texts.last() != Some(&text) {
                texts.push(text);
            }
        }
        if last_round {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_playlists_grow_while_the_task_runs_and_end_with_it() {
    let origin = common::origin(OriginConfig::default());
    // Each segment takes a while, as from a distant origin: the download lasts about two seconds.
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(150))).glob("*.ts"));
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).max_connections(2)).unwrap();
    let content = ContentConfiguration::new().variant_qualifier(
        VariantQualifier::new()
            .min_resolution(Resolution::new(320, 180))
            .max_resolution(Resolution::new(320, 180))
            .max_bandwidth(600_000),
    );
    let task = session
        .download_task_named(
            "growing",
            &origin.url("/clear/master.m3u8"),
            DownloadConfiguration::new(content),
        )
        .unwrap();
    let dir = store.path().join("growing");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dir, stop) = (dir.clone(), Arc::clone(&stop));
        std::thread::spawn(move || watch(&dir, &stop))
    };
    common::run(&task).await;
    task.wait().await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.join().unwrap();
    common::check_bundle(&dir);

    assert_eq!(seen.len(), 2, "video and English audio: {:?}", seen.keys());
    for (rendition, texts) in &seen {
        let (last, growing) = texts.split_last().unwrap();
        let end = MediaPlaylist::parse(last.as_str()).unwrap();
        let total = end.segments().len();
        assert!(end.is_ended() && total >= 6, "{rendition}: the end:\n{last}");
        let mut counts = Vec::new();
        for (i, text) in growing.iter().enumerate() {
            let playlist =
                MediaPlaylist::parse(text.as_str()).unwrap_or_else(|e| panic!("{rendition}: {e}\n{text}"));
            assert!(!playlist.is_ended(), "{rendition}: ended early:\n{text}");
            assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
            if let Some(next) = growing.get(i + 1) {
                assert!(
                    next.starts_with(text.as_str()),
                    "{rendition}: changed, not appended to:\n{text}\n{next}"
                );
            }
            counts.push(playlist.segments().len());
        }
        // It was read part-way: a player started then had segments to play, and more came.
        assert!(counts.iter().any(|&n| n > 0 && n < total), "{rendition}: seen with {counts:?} segments");
        // Rewritten on growth, not more often than there are segments.
        assert!(texts.len() <= total + 2, "{rendition}: {} versions", texts.len());
    }
}
