//! Time and size against a hostile origin: playlists and segments trickling in a byte at a time, response
//! headers that never come, `Retry-After` waits long and short, endless segment bodies, and a suspend while
//! a playlist is held. Each must end in a bounded time (set short here), with events saying what is being
//! waited for and errors naming the URI and what ran out.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use stowage_fetch::{ClientConfig, MinRate, RetryConfig, Timeouts};
use stowage_origin::{Fault, FaultRule, Origin, OriginConfig};
use stowage_task::config::SegmentSizeLimit;
use stowage_task::engine::{Failure, RetryPolicy};
use stowage_task::{
    ContentConfiguration, DownloadConfiguration, DownloadSession, DownloadTask, Error, SessionConfig,
    TaskEvent, TaskState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

/// Fetch settings with deadlines in seconds: headers within half a second, bodies at 1000 bytes/s at
/// least over one second; the idle-body timeout is long enough that only the minimum rate can catch a
/// trickle. The fetch layer's own retries are bounded by time alone (a minute, its default), which the
/// task's retry time must cut short.
fn quick_deadlines() -> ClientConfig {
    let retry = RetryConfig::default()
        .max_retries(1000)
        .base_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(50))
        .max_retry_after(Duration::from_secs(1));
    ClientConfig::default().retry(retry).timeouts(
        Timeouts::default()
            .first_byte(Some(Duration::from_millis(500)))
            .stall(Some(Duration::from_secs(10)))
            .min_rate(Some(MinRate::new(1000, Duration::from_secs(1)))),
    )
}

/// A session whose jobs may be retried for `retry_time` in all.
fn config(store: &std::path::Path, retry_time: Duration) -> SessionConfig {
    common::config(store).http(quick_deadlines()).retry(
        RetryPolicy::default()
            .backoff(Duration::from_millis(5), Duration::from_millis(100))
            .max_retry_time(retry_time),
    )
}

/// Runs the task to its end, which must come within a minute whatever happens: a task that hangs fails
/// the test instead of the test hanging.
async fn ends(task: &DownloadTask) -> (Vec<TaskEvent>, Result<std::path::PathBuf, Error>, Duration) {
    let started = Instant::now();
    let mut events = task.events();
    task.resume();
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = events.recv().await {
            let end = matches!(event, TaskEvent::Finished { .. } | TaskEvent::Failed(_));
            seen.push(event);
            if end {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect).await.expect("the task ends within a minute");
    let ending = task.wait().await;
    (seen, ending, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_trickling_in_fails_on_the_minimum_rate_naming_it() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::throttle(1)).path("/clear/video0/index.m3u8"));
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(config(store.path(), Duration::from_secs(3))).unwrap();
    let url = origin.url("/clear/video0/index.m3u8");
    let task = session.download_task(&url, media()).unwrap();
    let (_, ending, took) = ends(&task).await;
    let message = ending.unwrap_err().to_string();
    assert!(message.contains(&url) && message.contains("minimum-rate timeout"), "{message}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_trickling_in_is_retried_then_fails_within_the_retry_time() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::throttle(1)).path("/clear/video0/seg002.ts"));
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(config(store.path(), Duration::from_secs(3))).unwrap();
    let task = session.download_task(&origin.url("/clear/video0/index.m3u8"), media()).unwrap();
    let (events, ending, took) = ends(&task).await;
    let message = ending.unwrap_err().to_string();
    assert!(message.contains("seg002.ts") && message.contains("minimum-rate timeout"), "{message}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let retried = events.iter().filter(|e| matches!(e, TaskEvent::SegmentRetried { .. })).count();
    assert!(retried >= 1, "{events:?}");
    assert!(origin.request_count("/clear/video0/seg002.ts") >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_whose_headers_never_come_fails_within_the_retry_time() {
    let origin = common::origin(OriginConfig::default());
    origin
        .faults()
        .add(FaultRule::new(Fault::Latency(Duration::from_secs(3600))).path("/clear/video0/seg002.ts"));
    let store = tempfile::tempdir().unwrap();
    // The fetch layer's own retries of one request would go on for a minute; the task's bound of three
    // seconds holds them too.
    let session = DownloadSession::new(config(store.path(), Duration::from_secs(3))).unwrap();
    let task = session.download_task(&origin.url("/clear/video0/index.m3u8"), media()).unwrap();
    let (_, ending, took) = ends(&task).await;
    let message = ending.unwrap_err().to_string();
    assert!(message.contains("seg002.ts") && message.contains("header timeout"), "{message}");
    assert!(message.contains("the retry time ran out"), "{message}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_waits_are_told_for_playlists_and_segments_with_their_end() {
    let origin = common::origin(OriginConfig::default());
    let faults = origin.faults();
    faults.add(FaultRule::new(Fault::too_many_requests(1)).path("/clear/video0/index.m3u8").first(1));
    faults.add(FaultRule::new(Fault::service_unavailable(Some(1))).path("/clear/video0/seg003.ts").first(1));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let url = origin.url("/clear/video0/index.m3u8");
    let task = session.download_task(&url, media()).unwrap();
    let before = SystemTime::now();
    let (events, ending, _) = ends(&task).await;
    assert_eq!(common::check_bundle(&ending.unwrap()), 6);

    let playlist = events.iter().find_map(|e| match e {
        TaskEvent::RequestRetried { uri, cause, retry_after, until, .. } if uri == &url => {
            Some((cause.clone(), *retry_after, *until))
        }
        _ => None,
    });
    let (cause, retry_after, until) =
        playlist.unwrap_or_else(|| panic!("no retry told for {url}: {events:?}"));
    assert!(matches!(cause, Failure::Throttled { status: 429, .. }), "{cause:?}");
    assert_eq!(retry_after, Some(Duration::from_secs(1)));
    let wait = until.duration_since(before).unwrap();
    assert!(wait >= Duration::from_secs(1) && wait < Duration::from_secs(20), "{wait:?}");

    let segment = events.iter().find_map(|e| match e {
        TaskEvent::SegmentRetried { retry_after: Some(after), until, .. } => Some((*after, *until)),
        _ => None,
    });
    let (after, until) = segment.unwrap_or_else(|| panic!("no segment retry told with its wait: {events:?}"));
    assert_eq!(after, Duration::from_secs(1));
    assert!(until.duration_since(before).unwrap() >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_limit_fails_at_once_naming_it() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::too_many_requests(3600)).path("/clear/video0/index.m3u8"));
    origin.faults().add(FaultRule::new(Fault::too_many_requests(3600)).path("/clear/video1/seg001.ts"));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());

    // A playlist.
    let url = origin.url("/clear/video0/index.m3u8");
    let task = session.download_task(&url, media()).unwrap();
    let (_, ending, took) = ends(&task).await;
    let message = ending.unwrap_err().to_string();
    assert!(message.contains(&url) && message.contains("3600 s"), "{message}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(origin.request_count("/clear/video0/index.m3u8"), 1);

    // A segment.
    let task = session.download_task(&origin.url("/clear/video1/index.m3u8"), media()).unwrap();
    let (_, ending, took) = ends(&task).await;
    let message = ending.unwrap_err().to_string();
    assert!(message.contains("seg001.ts") && message.contains("3600 s"), "{message}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(origin.request_count("/clear/video1/seg001.ts"), 1);
}

/// A server on 127.0.0.1 whose every answer is `head` and then, when `endless`, zeros without end.
async fn endless_server(head: &'static str, endless: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut request = Vec::new();
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let zeros = vec![0x47u8; 64 * 1024];
                while endless && stream.write_all(&zeros).await.is_ok() {}
            });
        }
    });
    (format!("http://{addr}/endless.ts"), requests)
}

/// An origin with a master playlist declaring BANDWIDTH=100000 for a media playlist of two 2-second
/// segments: the first a real one, the second at `second`.
fn capped_origin(second: &str) -> Origin {
    let origin = common::origin(OriginConfig::default());
    let first = origin.url("/clear/video0/seg000.ts");
    origin
        .files()
        .insert_bytes("/capped/master.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nmedia.m3u8\n");
    origin.files().insert_bytes(
        "/capped/media.m3u8",
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{first}\n#EXTINF:2.0,\n{second}\n#EXT-X-ENDLIST\n"
        ),
    );
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_segment_is_cut_at_its_cap_and_fails_with_the_numbers() {
    let store = tempfile::tempdir().unwrap();
    // 100 kbit/s for 2 s is 25 000 bytes; four times that, above a floor of 64 KiB, is the cap.
    let limit = SegmentSizeLimit::default().multiple(4).floor(64 << 10);
    let session = DownloadSession::new(common::config(store.path()).segment_size_limit(limit)).unwrap();

    let (endless, requests) = endless_server("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", true).await;
    let origin = capped_origin(&endless);
    let task = session.download_task_named("endless", &origin.url("/capped/master.m3u8"), media()).unwrap();
    let (_, ending, _) = ends(&task).await;
    let message = ending.unwrap_err().to_string();
    for part in [endless.as_str(), "25000", "cap 100000", "received"] {
        assert!(message.contains(part), "{part} not in {message}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1, "an endless body is not asked for again");

    // Declared too long: refused before the body is read.
    let (declared, requests) =
        endless_server("HTTP/1.1 200 OK\r\nContent-Length: 4000000000\r\n\r\n", false).await;
    let origin = capped_origin(&declared);
    let task = session.download_task_named("declared", &origin.url("/capped/master.m3u8"), media()).unwrap();
    let (_, ending, _) = ends(&task).await;
    let message = ending.unwrap_err().to_string();
    for part in [declared.as_str(), "25000", "cap 100000", "declares 4000000000"] {
        assert!(message.contains(part), "{part} not in {message}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn segment_caps_follow_bandwidth_and_duration_above_a_floor() {
    let limit = SegmentSizeLimit::default();
    let two = Duration::from_secs(2);
    // 8 Mbit/s for 10 s is 10 MB; four times that is over the 16 MiB floor.
    assert_eq!(limit.cap(Some(8_000_000), Duration::from_secs(10)), 40_000_000);
    // Tiny segments get the floor.
    assert_eq!(limit.cap(Some(100_000), two), 16 << 20);
    assert_eq!(limit.cap(Some(100_000), Duration::ZERO), 16 << 20);
    // Without a BANDWIDTH, the assumed one.
    let unknown = limit.cap(None, Duration::from_secs(10));
    assert_eq!(unknown, 4 * limit.unknown_bandwidth / 8 * 10);
    // Absurd durations saturate instead of wrapping.
    assert_eq!(limit.cap(Some(u64::MAX), Duration::from_secs(u64::MAX)), u64::MAX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspend_while_a_playlist_is_held_takes_effect_at_once() {
    let origin = common::origin(OriginConfig::default());
    origin
        .faults()
        .add(FaultRule::new(Fault::Latency(Duration::from_secs(3600))).path("/clear/video1/index.m3u8"));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&origin.url("/clear/video1/index.m3u8"), media()).unwrap();
    task.resume();
    tokio::time::timeout(Duration::from_secs(5), task.wait_for_state(|s| s == TaskState::Running))
        .await
        .expect("the task starts");
    // The origin logs a request once it answers, which it does not: give the request time to leave.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(task.state(), TaskState::Running, "still waiting for the playlist");
    task.suspend();
    tokio::time::timeout(Duration::from_secs(5), task.wait_for_state(|s| s == TaskState::Suspended))
        .await
        .expect("suspended at once, not once the playlist comes");

    // Resumed, it fetches the playlist again and completes.
    origin.faults().clear();
    let (_, ending, _) = ends(&task).await;
    assert_eq!(common::check_bundle(&ending.unwrap()), 6);
}
