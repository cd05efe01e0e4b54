//! Bodies that are not what their playlist says they are: an empty `200`, a body without a length cut
//! short, a captive portal's page, a text where an initialization section should be. Each is checked
//! against what the playlist says the entry is before it is stored, retried like a transient fault, and
//! then either stored whole, or a failure naming the segment, or a gap under the tolerant policy.

mod common;

use stowage_bundle::Bundle;
use stowage_origin::{Fault, FaultRule, OriginConfig};
use stowage_task::config::IntegrityPolicy;
use stowage_task::engine::Failure;
use stowage_task::{ContentConfiguration, DownloadConfiguration, Error, TaskEvent};

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

/// The media sequence numbers of the segments the events say were retried for an unexpected body.
fn retried_for_body(events: &[TaskEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            TaskEvent::SegmentRetried { cause: Failure::Retryable { detail, .. }, segment, .. }
                if detail.contains("unexpected body") =>
            {
                Some(segment.id.media_sequence)
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_without_a_length_is_retried_and_stored_whole() {
    let origin = common::origin(OriginConfig::default());
    // The answer has no length: the connection closing ends it, after 1000 bytes, and nothing in HTTP
    // tells the body was cut. Only the transport stream's 188-byte packets do.
    let cut = |fault| FaultRule::new(fault).path("/clear/video0/seg003.ts").first(1);
    origin.faults().add(cut(Fault::CloseDelimited));
    origin.faults().add(cut(Fault::CutAfter(1000)));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&origin.url("/clear/video0/index.m3u8"), media()).unwrap();
    let events = common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    assert_eq!(retried_for_body(&events), [3]);
    assert_eq!(origin.request_count("/clear/video0/seg003.ts"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initialization_section_answered_with_text_is_retried_and_stored_whole() {
    let origin = common::origin(OriginConfig::default());
    // A 200 with a short text body instead of the ISO-BMFF initialization section.
    origin.faults().add(FaultRule::new(Fault::status(200)).path("/clear/fmp4/init.mp4").first(1));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&origin.url("/clear/fmp4/index.m3u8"), media()).unwrap();
    let events = common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert!(common::check_bundle(&path) >= 6);
    assert_eq!(retried_for_body(&events), [0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captive_portal_page_fails_naming_the_segment_or_is_recorded_as_a_gap() {
    let origin = common::origin(OriginConfig::default());
    let page = "<!DOCTYPE html>\n<html><head><title>Welcome to the hotel network</title></head>\n\
                <body><form action=\"/login\"><input name=\"room\"></form></body></html>\n";
    origin.files().insert_bytes("/clear/video0/seg002.ts", page);
    let url = origin.url("/clear/video0/index.m3u8");
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());

    let task = session.download_task_named("strict", &url, media()).unwrap();
    let events = common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    assert!(retried_for_body(&events).contains(&2), "retried first");
    match &err {
        Error::JobFailed { segment: Some(segment), cause: Some(cause), .. } => {
            assert_eq!(segment.id.media_sequence, 2);
            assert!(matches!(**cause, Error::UnexpectedBody { .. }), "{cause:?}");
            let text = cause.to_string();
            assert!(text.contains("seg002.ts") && text.contains("web page"), "{text}");
        }
        other => panic!("expected the segment's failure, got {other:?}"),
    }

    let task =
        session.download_task_named("tolerant", &url, media().integrity(IntegrityPolicy::Tolerant)).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    let bundle = Bundle::open(&path).unwrap();
    let manifest = bundle.manifest();
    assert!(!manifest.complete);
    assert_eq!(manifest.gaps.len(), 1);
    assert_eq!(manifest.gaps[0].segment.media_sequence, 2);
    assert!(manifest.gaps[0].reason.contains("web page"), "{}", manifest.gaps[0].reason);
    assert_eq!(bundle.finished_segments().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_answer_is_not_stored_as_a_segment() {
    let origin = common::origin(OriginConfig::default());
    origin.files().insert_bytes("/clear/subs-en/seg001.vtt", "");
    origin.files().insert_bytes("/clear/video0/seg004.ts", "");
    for path in ["/clear/video0/index.m3u8", "/clear/subs-en/index.m3u8"] {
        let store = tempfile::tempdir().unwrap();
        let session = common::session(store.path());
        let task = session.download_task(&origin.url(path), media()).unwrap();
        common::run(&task).await;
        let err = task.wait().await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("the body is empty"), "{text}");
    }
}
