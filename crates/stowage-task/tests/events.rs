//! What a listener hears: every ending told by exactly one terminal event, after which the stream ends;
//! renditions told as they complete; a summary of the work before the end.

mod common;

use std::time::Duration;

use stowage_bundle::RenditionKind;
use stowage_origin::{Fault, FaultRule, OriginConfig};
use stowage_task::config::MediaSelection;
use stowage_task::{
    CancelMode, ContentConfiguration, DownloadConfiguration, DownloadSession, DownloadTask, Error, TaskEvent,
    TaskEvents, TaskState,
};

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

/// Reads `events` to their end (10 s at most), checking that the stream ends right after one terminal
/// event and that the task's state already says so when that event comes.
async fn until_the_end(task: &DownloadTask, events: &mut TaskEvents) -> Vec<TaskEvent> {
    let mut seen = Vec::new();
    let read = async {
        while let Some(event) = events.recv().await {
            if event.is_terminal() {
                let state = task.state();
                assert!(state.is_terminal() || state == TaskState::Suspended, "{event:?} while {state:?}");
            }
            seen.push(event);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("the stream of events ends");
    let terminal = seen.iter().filter(|e| e.is_terminal()).count();
    assert_eq!(terminal, 1, "one terminal event: {seen:?}");
    assert!(seen.last().is_some_and(TaskEvent::is_terminal), "the terminal event is the last: {seen:?}");
    assert!(
        matches!(seen.get(seen.len().wrapping_sub(2)), Some(TaskEvent::Summary(_))),
        "a summary just before the end: {seen:?}"
    );
    seen
}

/// A session that fetches one segment at a time, so that a download can be caught in the middle.
fn slow_session(store: &std::path::Path) -> DownloadSession {
    DownloadSession::new(common::config(store).max_connections(1).adaptive(false)).unwrap()
}

async fn until_segments(task: &DownloadTask, events: &mut TaskEvents, n: usize) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while task.progress().segments_done < n {
            events.recv().await.expect("the task goes on");
        }
    })
    .await
    .expect("segments arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ending_is_told_once_and_then_the_stream_ends() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(40))).glob("/clear/video1/seg*"));
    origin.faults().add(FaultRule::new(Fault::status(404)).path("/clear/video2/seg002.ts"));
    let store = tempfile::tempdir().unwrap();
    let session = slow_session(store.path());

    // Finished.
    let task = session.download_task(&origin.url("/clear/video0/index.m3u8"), media()).unwrap();
    let mut events = task.events();
    task.resume();
    let seen = until_the_end(&task, &mut events).await;
    assert!(matches!(seen.last(), Some(TaskEvent::Finished { complete: true, .. })), "{seen:?}");
    assert!(matches!(task.state(), TaskState::Finished { complete: true }));
    // Subscribed after the end, the stream is empty.
    assert!(task.events().recv().await.is_none());

    // Failed.
    let task = session.download_task(&origin.url("/clear/video2/index.m3u8"), media()).unwrap();
    let mut events = task.events();
    task.resume();
    let seen = until_the_end(&task, &mut events).await;
    assert!(matches!(seen.last(), Some(TaskEvent::Failed(e)) if e.status() == Some(404)), "{seen:?}");

    // Cancelled while downloading, keeping what was stored.
    let task = session.download_task(&origin.url("/clear/video1/index.m3u8"), media()).unwrap();
    let mut events = task.events();
    task.resume();
    until_segments(&task, &mut events, 1).await;
    task.cancel(CancelMode::KeepPartial);
    let seen = until_the_end(&task, &mut events).await;
    assert!(matches!(seen.last(), Some(TaskEvent::Cancelled { removed: false })), "{seen:?}");
    assert_eq!(task.state(), TaskState::Cancelled);

    // Cancelled before it ever started, removing the bundle.
    let task = session.download_task(&origin.url("/clear/fmp4/index.m3u8"), media()).unwrap();
    let mut events = task.events();
    task.cancel(CancelMode::RemovePartial);
    let seen = until_the_end(&task, &mut events).await;
    assert!(matches!(seen.last(), Some(TaskEvent::Cancelled { removed: true })), "{seen:?}");
    assert!(matches!(task.wait().await, Err(Error::Cancelled)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_session_is_dropped_says_it_is_suspended_and_its_stream_ends() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(40))).glob("/clear/video1/seg*"));
    let store = tempfile::tempdir().unwrap();
    let session = slow_session(store.path());
    let task = session.download_task(&origin.url("/clear/video1/index.m3u8"), media()).unwrap();
    let mut events = task.events();
    task.resume();
    until_segments(&task, &mut events, 2).await;
    drop(session);
    let seen = until_the_end(&task, &mut events).await;
    match seen.last() {
        Some(TaskEvent::Suspended { path }) => assert_eq!(path, &task.bundle_path()),
        other => panic!("expected the suspended end, got {other:?}"),
    }
    assert_eq!(task.state(), TaskState::Suspended);
    assert!(matches!(task.wait().await, Err(Error::SessionClosed)));

    // A task that never started, whose session goes, ends the same way.
    let session = slow_session(store.path());
    let task = session.download_task(&origin.url("/clear/video0/index.m3u8"), media()).unwrap();
    let mut events = task.events();
    drop(session);
    let seen = until_the_end(&task, &mut events).await;
    assert!(matches!(seen.last(), Some(TaskEvent::Suspended { .. })), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renditions_are_told_as_they_complete_and_the_summary_counts_the_work() {
    let origin = common::origin(OriginConfig::default());
    // One segment answers 503 once: the fetch layer retries it.
    origin
        .faults()
        .add(FaultRule::new(Fault::service_unavailable(Some(0))).path("/clear/audio-en/seg003.ts").first(1));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let config = DownloadConfiguration::new(
        ContentConfiguration::new()
            .variant_qualifier("max-resolution=480x270,codec=avc1.640015".parse().unwrap())
            .media_selection(MediaSelection::subtitles_language("fr")),
    );
    let task = session.download_task(&origin.url("/clear/master.m3u8"), config).unwrap();
    let events = common::run(&task).await;
    assert_eq!(common::check_bundle(&task.wait().await.unwrap()), 6 + 7 + 6);

    let completed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TaskEvent::RenditionCompleted(done) => Some(done),
            _ => None,
        })
        .collect();
    assert_eq!(completed.len(), 3, "{completed:?}");
    let renditions = task.renditions();
    for done in &completed {
        assert_eq!(renditions[done.rendition], done.id);
        assert!(done.complete);
    }
    let kinds: Vec<(RenditionKind, Option<&str>)> =
        completed.iter().map(|d| (d.kind, d.language.as_deref())).collect();
    for expected in [
        (RenditionKind::Video, None),
        (RenditionKind::Audio, Some("en")),
        (RenditionKind::Subtitles, Some("fr")),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    // Each is told once it is whole: after its last segment's progress, before the end.
    let finished = events.iter().position(|e| matches!(e, TaskEvent::Finished { .. })).unwrap();
    assert!(events.iter().rposition(|e| matches!(e, TaskEvent::RenditionCompleted(_))).unwrap() < finished);

    let Some(TaskEvent::Summary(summary)) = events.get(finished - 1) else { panic!("{events:?}") };
    assert_eq!(task.summary().as_ref(), Some(summary));
    let log = origin.log();
    assert_eq!(summary.requests, log.len() as u64, "every request counted: {summary:?}");
    assert_eq!(summary.retries, 1, "{summary:?}");
    let received: u64 = log.iter().filter(|r| r.status == 200).map(|r| r.bytes_sent).sum();
    assert_eq!(summary.bytes_received, received);
    assert_eq!(summary.bytes_stored, task.progress().bytes_done);
    assert_eq!((summary.segments_stored, summary.segments_missing), (19, 0));
    assert!(summary.duration > Duration::ZERO);
    let variant = summary.variant.as_ref().expect("the variant is named");
    assert_eq!(variant.uri.as_deref(), Some("video1/index.m3u8"));
    assert_eq!((variant.resolution, variant.bandwidth), (Some((480, 270)), Some(718_729)));
}
