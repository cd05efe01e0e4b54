//! Downloads under faults injected by the origin: latency, throttling, cut bodies, lost keys, expired
//! signed URLs, and segments that cannot be had under the strict and the tolerant integrity policies.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stowage_bundle::Bundle;
use stowage_origin::{Fault, FaultRule, OriginConfig};
use stowage_task::config::IntegrityPolicy;
use stowage_task::engine::Failure;
use stowage_task::{
    ContentConfiguration, DownloadConfiguration, DownloadSession, Error, Refresh, TaskEvent, TaskState,
    refresh_fn,
};

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_throttling_cut_bodies_and_lost_keys_still_give_identical_bytes() {
    let origin = common::origin(OriginConfig::default());
    let faults = origin.faults();
    faults.add(FaultRule::new(Fault::Latency(Duration::from_millis(20))).prefix("/aes/"));
    faults.add(FaultRule::new(Fault::service_unavailable(Some(1))).path("/aes/video1/seg001.ts").first(1));
    faults.add(FaultRule::new(Fault::too_many_requests(0)).path("/aes/video1/seg002.ts").first(2));
    faults.add(FaultRule::new(Fault::CutAfter(1000)).path("/aes/video1/seg003.ts").first(1));
    faults.add(FaultRule::new(Fault::status(404)).path("/aes/keys/k2.key").first(2));
    faults.add(FaultRule::new(Fault::status(500)).path("/aes/video1/seg005.ts").first(1));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&origin.url("/aes/video1/index.m3u8"), media()).unwrap();
    let events = common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);

    let retried: Vec<&Failure> = events
        .iter()
        .filter_map(|e| match e {
            TaskEvent::SegmentRetried { cause, .. } => Some(cause),
            _ => None,
        })
        .collect();
    assert!(retried.iter().any(|c| matches!(c, Failure::Throttled { status: 503, .. })), "{retried:?}");
    assert!(retried.iter().any(|c| matches!(c, Failure::Throttled { status: 429, .. })), "{retried:?}");
    assert!(retried.len() >= 4, "{retried:?}");
    // The cut body was resumed from where it stopped, not fetched again whole.
    let resumed = origin.log().into_iter().filter(|r| r.path == "/aes/video1/seg003.ts").collect::<Vec<_>>();
    assert_eq!(resumed.len(), 2);
    assert!(resumed[1].range.as_deref().is_some_and(|r| r.starts_with("bytes=1000-")), "{resumed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_segment_urls_are_refreshed_and_rebound_by_identity() {
    let origin = common::signed_origin();
    // The old signature expires after three segments.
    origin.faults().add(FaultRule::new(Fault::status(403)).query_contains("token=old").after_requests(3));
    let calls = Arc::new(AtomicUsize::new(0));
    let fresh = origin.url("/signed/new.m3u8");
    let counted = Arc::clone(&calls);
    let hook = refresh_fn(move |request| {
        assert_eq!(request.status, 403);
        assert!(request.refused_uri.contains("token=old"));
        counted.fetch_add(1, Ordering::SeqCst);
        Some(Refresh::new().url(fresh.clone()))
    });
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(
        common::config(store.path()).refresh_hook(hook).max_connections(1).adaptive(false),
    )
    .unwrap();
    let task = session.download_task_named("signed", &origin.url("/signed/old.m3u8"), media()).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(task.url(), origin.url("/signed/new.m3u8"));
    // Every segment was stored once: three with the old token, the other three with the new one.
    let log = origin.log();
    for i in 0..6 {
        let ok = log.iter().filter(|r| r.path == format!("/clear/video0/seg{i:03}.ts") && r.status == 200);
        assert_eq!(ok.count(), 1, "segment {i}");
    }

    // Without a hook, a refused URL fails the task naming the segment.
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task_named("unsigned", &origin.url("/signed/old.m3u8"), media()).unwrap();
    common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    assert!(matches!(err, Error::JobFailed { .. }), "{err}");
    assert!(err.to_string().contains("token=old"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_fails_naming_the_segment_and_tolerant_records_the_gap() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::status(404)).path("/clear/video0/seg003.ts"));
    let url = origin.url("/clear/video0/index.m3u8");
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());

    let task = session.download_task_named("strict", &url, media()).unwrap();
    let events = common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    assert_eq!(task.state(), TaskState::Failed);
    let text = err.to_string();
    assert!(text.contains("media sequence 3") && text.contains("seg003.ts"), "{text}");
    assert!(matches!(events.last(), Some(TaskEvent::Failed(_))));

    let config = media().integrity(IntegrityPolicy::Tolerant);
    let task = session.download_task_named("tolerant", &url, config).unwrap();
    let events = common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(task.state(), TaskState::Finished { complete: false });
    assert!(matches!(events.last(), Some(TaskEvent::Finished { complete: false, .. })));
    assert!(events.iter().any(|e| matches!(e, TaskEvent::SegmentMissing { .. })));
    let bundle = Bundle::open(&path).unwrap();
    let manifest = bundle.manifest();
    assert!(!manifest.complete);
    assert_eq!(manifest.gaps.len(), 1);
    assert_eq!(manifest.gaps[0].segment.media_sequence, 3);
    assert!(manifest.gaps[0].reason.contains("404"), "{}", manifest.gaps[0].reason);
    assert_eq!(bundle.finished_segments().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_url_is_refreshed_too() {
    let origin = common::origin(OriginConfig::default());
    let source = std::fs::read_to_string(common::assets().join("aes/video0/index.m3u8")).unwrap();
    for token in ["old", "new"] {
        let text = source
            .replace("URI=\"../keys/", "URI=\"/aes/keys/")
            .replace(".key\"", &format!(".key?token={token}\""))
            .replace("\nseg", "\n/aes/video0/seg");
        origin.files().insert_bytes(&format!("/keyed/{token}.m3u8"), text);
    }
    // The first key request succeeds; the old token then expires.
    origin.faults().add(
        FaultRule::new(Fault::status(403)).glob("/aes/keys/*").query_contains("token=old").after_requests(1),
    );
    let fresh = origin.url("/keyed/new.m3u8");
    let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&refused);
    let hook = refresh_fn(move |request| {
        seen.lock().unwrap().push(request.refused_uri.clone());
        Some(Refresh::new().url(fresh.clone()))
    });
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).refresh_hook(hook)).unwrap();
    let task = session.download_task_named("keyed", &origin.url("/keyed/old.m3u8"), media()).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    let refused = refused.lock().unwrap();
    assert!(!refused.is_empty());
    assert!(refused.iter().all(|u| u.contains("/aes/keys/") && u.contains("token=old")), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_task_whose_playlist_url_expired_asks_the_refresh_hook() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(40))).glob("/clear/video0/seg*"));
    let store = tempfile::tempdir().unwrap();
    let old = origin.url("/clear/video0/index.m3u8?token=old");
    {
        let session =
            DownloadSession::new(common::config(store.path()).max_connections(1).adaptive(false)).unwrap();
        let task = session.download_task_named("expiring", &old, media()).unwrap();
        let mut events = task.events();
        task.resume();
        while task.progress().segments_done < 2 {
            events.recv().await.unwrap();
        }
        // The application quits in the middle of the download.
        drop(session);
        assert!(matches!(task.wait().await, Err(Error::SessionClosed)));
    }
    // Days later, the old token is refused.
    origin.faults().add(FaultRule::new(Fault::status(410)).query_contains("token=old"));
    let fresh = origin.url("/clear/video0/index.m3u8?token=new");
    let answer = fresh.clone();
    let hook = refresh_fn(move |request| {
        assert_eq!(request.status, 410);
        Some(Refresh::new().url(answer.clone()))
    });
    let session = DownloadSession::new(common::config(store.path()).refresh_hook(hook)).unwrap();
    let restored = session.restore().unwrap();
    assert_eq!(restored.len(), 1);
    common::run(&restored[0]).await;
    let path = restored[0].wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    assert_eq!(restored[0].url(), fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_the_source_marks_as_gaps_are_recorded_not_fetched() {
    let origin = common::origin(OriginConfig::default());
    let source = std::fs::read_to_string(common::assets().join("clear/video0/index.m3u8")).unwrap();
    let text = source.replace("#EXTINF:2.000000,\nseg002.ts", "#EXT-X-GAP\n#EXTINF:2.000000,\nseg002.ts");
    assert_ne!(text, source);
    origin.files().insert_bytes("/clear/video0/gap.m3u8", text);
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&origin.url("/clear/video0/gap.m3u8"), media()).unwrap();
    let events = common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert!(matches!(events.last(), Some(TaskEvent::Finished { complete: false, .. })));
    assert_eq!(origin.request_count("/clear/video0/seg002.ts"), 0);
    let bundle = Bundle::open(&path).unwrap();
    let manifest = bundle.manifest();
    assert_eq!(manifest.gaps.len(), 1);
    assert_eq!(manifest.gaps[0].segment.media_sequence, 2);
    assert_eq!(bundle.finished_segments().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_beyond_the_fetch_layers_retries_reaches_the_engine_with_retry_after() {
    let origin = common::origin(OriginConfig::default());
    // More 503s than the fetch layer retries: the engine sees the throttling and waits as asked.
    origin
        .faults()
        .add(FaultRule::new(Fault::service_unavailable(Some(0))).path("/clear/video0/seg001.ts").first(4));
    let store = tempfile::tempdir().unwrap();
    let session =
        DownloadSession::new(common::config(store.path()).http(common::http().retry(
            stowage_fetch::RetryConfig::default().max_retries(1).base_delay(Duration::from_millis(5)),
        )))
        .unwrap();
    let task = session.download_task(&origin.url("/clear/video0/index.m3u8"), media()).unwrap();
    let events = common::run(&task).await;
    assert_eq!(common::check_bundle(&task.wait().await.unwrap()), 6);
    let throttled = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TaskEvent::SegmentRetried { cause: Failure::Throttled { status: 503, retry_after: Some(d) }, .. }
                    if d.is_zero()
            )
        })
        .count();
    // Two from the fetch layer (one retry per engine attempt) and two from the engine itself.
    assert!(throttled >= 3, "{throttled} throttled retries reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_errors_name_the_segment_and_keep_the_http_cause() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::status(404)).path("/clear/video0/seg003.ts"));
    let url = origin.url("/clear/video0/index.m3u8");
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());

    let task = session.download_task_named("strict", &url, media()).unwrap();
    common::run(&task).await;
    // The error keeps the fetch layer's error, with its URI and status.
    let err = task.wait().await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert!(err.uri().is_some_and(|u| u.ends_with("/clear/video0/seg003.ts")), "{err:?}");
    let fetch = err.fetch_error().expect("the fetch layer's error is kept");
    assert!(matches!(fetch, stowage_fetch::Error::Status { status: 404, .. }), "{fetch:?}");
    match &err {
        Error::JobFailed { segment: Some(segment), cause: Some(cause), .. } => {
            assert_eq!((segment.rendition(), segment.id.media_sequence), ("media", 3));
            assert!(matches!(**cause, Error::Fetch { .. }), "{cause:?}");
        }
        other => panic!("expected the job's failure, got {other:?}"),
    }
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.to_string().contains("404"), "{source}");

    // A segment answered once with 503 is retried, and the retry names it.
    origin
        .faults()
        .add(FaultRule::new(Fault::service_unavailable(Some(0))).path("/clear/video0/seg001.ts").first(1));
    let task =
        session.download_task_named("tolerant", &url, media().integrity(IntegrityPolicy::Tolerant)).unwrap();
    let events = common::run(&task).await;
    let retried = events
        .iter()
        .find_map(|e| match e {
            TaskEvent::SegmentRetried { segment, .. } => Some(segment),
            _ => None,
        })
        .expect("the 503 was retried");
    assert_eq!((retried.rendition(), retried.id.media_sequence), ("media", 1));
    assert!(retried.uri.ends_with("/clear/video0/seg001.ts"), "{}", retried.uri);
    let (segment, failure) = events
        .iter()
        .find_map(|e| match e {
            TaskEvent::SegmentMissing { segment, failure } => Some((segment, failure)),
            _ => None,
        })
        .expect("the gap is told");
    assert_eq!(
        (segment.rendition(), segment.id.discontinuity_sequence, segment.id.media_sequence),
        ("media", 0, 3)
    );
    assert!(segment.uri.ends_with("/clear/video0/seg003.ts"));
    assert!(failure.cause.to_string().contains("404"), "{failure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_task_with_the_bundle_error_and_its_path() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let disk = Arc::new(stowage_testkit::FullDisk::for_paths_containing("/seg-"));
    let session = DownloadSession::new(common::config(store.path()).storage(disk)).unwrap();
    let task = session.download_task_named("full", &origin.url("/clear/video0/index.m3u8"), media()).unwrap();
    common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    let bundle = err.bundle_error().expect("the bundle's error is kept");
    assert!(bundle.is_disk_full(), "{bundle:?}");
    let path = err.path().expect("the file is named");
    assert!(path.starts_with(task.bundle_path()) && path.to_string_lossy().contains("/seg-"), "{path:?}");
    assert!(err.to_string().contains("no space left"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_key_hook_fails_the_task_instead_of_hanging() {
    struct Panics;
    impl stowage_fetch::keys::KeyHook for Panics {
        fn resolve<'a>(&'a self, _uri: &'a str) -> stowage_fetch::keys::KeyHookFuture<'a> {
            panic!("the key service is down")
        }
    }
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).key_hook(Arc::new(Panics))).unwrap();
    let task = session.download_task_named("crash", &origin.url("/aes/video0/index.m3u8"), media()).unwrap();
    task.resume();
    let ended = tokio::time::timeout(Duration::from_secs(20), task.wait()).await;
    let err = ended.expect("the task ends instead of waiting for ever").unwrap_err();
    let mut cause: &Error = &err;
    while let Error::JobFailed { cause: Some(inner), .. } = cause {
        cause = inner;
    }
    match cause {
        Error::Crashed { message, .. } => assert!(message.contains("the key service is down"), "{message}"),
        other => panic!("expected a crashed task, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_http_configuration_is_an_error_of_its_own() {
    let store = tempfile::tempdir().unwrap();
    let tls = stowage_fetch::TlsConfig::default().add_root_certificates_pem(b"not a certificate".to_vec());
    let config = common::config(store.path()).http(common::http().tls(tls));
    let err = DownloadSession::new(config).unwrap_err();
    assert!(matches!(err, Error::ClientConfig { .. }), "{err:?}");
    assert!(err.fetch_error().is_some());
}
