//! A media playlist listing more segments than a session accepts fails before it is read, with both
//! numbers, instead of costing memory and a manifest in proportion.

mod common;

use stowage_origin::OriginConfig;
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, Error, TaskEvent};

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_of_a_million_segments_fails_early_with_the_numbers() {
    let origin = common::origin(OriginConfig::default());
    // 1.2 million one-second segments in 15.6 MB, as a hostile origin served them.
    let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:1\n");
    for _ in 0..1_200_000 {
        text.push_str("#EXTINF:1,\nx\n");
    }
    text.push_str("#EXT-X-ENDLIST\n");
    origin.files().insert_bytes("/huge/index.m3u8", text);
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&origin.url("/huge/index.m3u8"), media()).unwrap();
    let events = common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    assert!(matches!(events.last(), Some(TaskEvent::Failed(_))));
    let text = err.to_string();
    assert!(text.contains("1200000 segments") && text.contains("limit of 100000"), "{text}");
    assert!(matches!(err, Error::Playlist { .. }), "{err:?}");
    let limit = err.playlist_error().expect("the parser's limit is the source");
    assert!(matches!(limit, stowage_playlist::Error::Limit { max: 100_000, .. }), "{limit:?}");
    assert_eq!(origin.request_count("/huge/x"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segment_limit_is_configurable() {
    let origin = common::origin(OriginConfig::default());
    let url = origin.url("/clear/video0/index.m3u8");
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).max_playlist_segments(5)).unwrap();
    let task = session.download_task_named("five", &url, media()).unwrap();
    common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    assert!(err.to_string().contains("6 segments, more than the limit of 5"), "{err}");

    let session = DownloadSession::new(common::config(store.path()).max_playlist_segments(6)).unwrap();
    let task = session.download_task_named("six", &url, media()).unwrap();
    common::run(&task).await;
    assert_eq!(common::check_bundle(&task.wait().await.unwrap()), 6);
}
