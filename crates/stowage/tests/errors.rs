//! The facade's error answers for what made a download fail: a segment the server refused is a fetch
//! error with its URI and status; a full disk is a bundle error with the file's path.

use std::sync::Arc;
use std::time::Duration;

use stowage::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};

fn origin() -> Origin {
    let files = Files::new();
    files.load_dir("/clear", stowage_testkit::assets().join("clear")).unwrap();
    Origin::start(files, OriginConfig::default()).unwrap()
}

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

/// Runs a task of `session` to its end and gives its error, as the facade's.
async fn failure(session: &DownloadSession, url: &str) -> stowage::Error {
    let task = session.download_task(url, media()).unwrap();
    task.resume();
    let ended = tokio::time::timeout(Duration::from_secs(30), task.wait()).await.expect("the task ends");
    stowage::Error::from(ended.expect_err("the download fails"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_segment_is_a_fetch_error_with_its_uri_and_status() {
    let origin = origin();
    origin.faults().add(FaultRule::new(Fault::status(404)).path("/clear/video0/seg002.ts"));
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(SessionConfig::new(store.path())).unwrap();
    let err = failure(&session, &origin.url("/clear/video0/index.m3u8")).await;
    assert!(err.is_task() && err.is_fetch(), "{err:?}");
    assert!(!err.is_bundle());
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.uri(), Some(origin.url("/clear/video0/seg002.ts").as_str()));
    assert_eq!(err.fetch_error().and_then(|e| e.status()), Some(404));
    let text = err.to_string();
    assert!(text.contains("media sequence 2") && text.contains("404"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_bundle_error_with_the_files_path() {
    let origin = origin();
    let store = tempfile::tempdir().unwrap();
    let disk = Arc::new(stowage_testkit::FullDisk::for_paths_containing("/seg-"));
    let session = DownloadSession::new(SessionConfig::new(store.path()).storage(disk)).unwrap();
    let err = failure(&session, &origin.url("/clear/video1/index.m3u8")).await;
    assert!(err.is_task() && err.is_bundle(), "{err:?}");
    assert!(!err.is_fetch());
    assert!(err.bundle_error().is_some_and(stowage::bundle::Error::is_disk_full), "{err:?}");
    let path = err.path().expect("the file is named");
    assert!(path.starts_with(store.path()) && path.to_string_lossy().contains("/seg-"), "{path:?}");
}
