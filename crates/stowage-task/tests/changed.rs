//! A media playlist that changed between an interrupt and a resume: the task names the change instead of
//! mixing both versions in one bundle, and starts the rendition again when the session says so.

mod common;

use std::time::Duration;

use stowage_bundle::Bundle;
use stowage_origin::{Fault, FaultRule, Origin, OriginConfig};
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, DownloadTask, Error};

/// A media playlist of the clear `video0` segments in `order`, each two seconds long.
fn playlist(order: &[usize]) -> String {
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for i in order {
        text.push_str(&format!("#EXTINF:2.000000,\n/clear/video0/seg{i:03}.ts\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

/// Starts downloading `/changing/index.m3u8` one segment at a time, and stops the session once three
/// segments are stored.
async fn interrupted(origin: &Origin, store: &std::path::Path) {
    let session = DownloadSession::new(common::config(store).max_connections(1).adaptive(false)).unwrap();
    let task = session
        .download_task(
            &origin.url("/changing/index.m3u8"),
            DownloadConfiguration::new(ContentConfiguration::new()),
        )
        .unwrap();
    wait_for_segments(&task, 3).await;
    drop(session);
    assert!(matches!(task.wait().await, Err(Error::SessionClosed)));
}

async fn wait_for_segments(task: &DownloadTask, n: usize) {
    let mut events = task.events();
    task.resume();
    tokio::time::timeout(Duration::from_secs(20), async {
        while task.progress().segments_done < n {
            events.recv().await.expect("the task goes on");
        }
    })
    .await
    .expect("segments arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_media_playlist_is_named_on_resume_and_started_again_on_request() {
    let origin = common::origin(OriginConfig::default());
    origin
        .faults()
        .add(FaultRule::new(Fault::Latency(Duration::from_millis(60))).prefix("/clear/video0/seg"));
    origin.files().insert_bytes("/changing/index.m3u8", playlist(&[0, 1, 2, 3, 4, 5]));
    let store = tempfile::tempdir().unwrap();
    interrupted(&origin, store.path()).await;
    let dir = store.path().join(stowage_task::asset_id_for(&origin.url("/changing/index.m3u8")));
    let stored = Bundle::open(&dir).unwrap().finished_segments().len();
    assert!((3..6).contains(&stored), "{stored} stored");

    // The playlist is regenerated: five segments, other files at the same sequence numbers.
    origin.files().insert_bytes("/changing/index.m3u8", playlist(&[3, 4, 5, 0, 1]));

    // Resumed as before, the task fails naming the rendition and what changed, and touches nothing.
    for _ in 0..2 {
        let session = common::session(store.path());
        let restored = session.restore().unwrap();
        assert_eq!(restored.len(), 1);
        common::run(&restored[0]).await;
        let err = restored[0].wait().await.unwrap_err();
        let Error::PlaylistChanged { renditions } = &err else { panic!("{err}") };
        assert_eq!(renditions.len(), 1);
        assert_eq!(renditions[0].rendition, "media");
        assert_eq!(renditions[0].uri, origin.url("/changing/index.m3u8"));
        let text = err.to_string();
        assert!(text.contains("6 segments before, 5 now"), "{text}");
        assert!(text.contains("no longer listed: segment 5"), "{text}");
        assert!(
            text.contains("segment 0: /clear/video0/seg000.ts before, /clear/video0/seg003.ts now"),
            "{text}"
        );
        assert!(text.contains("start the changed rendition(s) again"), "{text}");
        drop(session);
        let bundle = stowage_testkit::open_when_released(&dir);
        assert_eq!(bundle.finished_segments().len(), stored, "nothing stored is lost");
    }

    // Started again, the rendition is the new playlist's, whole, and nothing of the old one is left.
    let session =
        DownloadSession::new(common::config(store.path()).restart_changed_renditions(true)).unwrap();
    let restored = session.restore().unwrap();
    common::run(&restored[0]).await;
    let path = restored[0].wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 5, "every stored segment is the new playlist's");
    let bundle = stowage_testkit::open_when_released(&path);
    let manifest = bundle.manifest();
    assert!(manifest.complete);
    let first = &manifest.renditions[0].plan.segments[0];
    assert!(first.uri.ends_with("/clear/video0/seg003.ts"), "{}", first.uri);
}
