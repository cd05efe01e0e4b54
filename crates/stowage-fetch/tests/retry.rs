//! Retries: 503 with and without Retry-After, 429, 408, latency against the first-byte deadline, limits
//! on attempts, and never retrying other 4xx.

mod common;

use std::time::{Duration, Instant};

use common::{data, quick, recorder};
use stowage_fetch::{Client, Error, Request, RetryCause, RetryConfig, TimeoutKind, Timeouts};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};

fn origin(body: &[u8]) -> Origin {
    Origin::start(Files::new().with_bytes("/seg.ts", body.to_vec()), OriginConfig::default()).unwrap()
}

#[tokio::test]
async fn service_unavailable_without_retry_after_is_retried_with_backoff() {
    let body = data(50_000);
    let origin = origin(&body);
    origin.faults().add(FaultRule::new(Fault::service_unavailable(None)).path("/seg.ts").first(3));
    let (events, on_retry) = recorder();
    let client = Client::new(quick().on_retry(on_retry)).unwrap();
    assert_eq!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap(), body);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 3);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.retry, i as u32 + 1);
        assert_eq!(e.cause, RetryCause::Status(503));
        assert_eq!(e.uri, origin.url("/seg.ts"));
        assert!(e.delay <= Duration::from_millis(20), "backoff is capped by max_delay: {:?}", e.delay);
        assert_eq!(e.resume_from, None);
    }
    assert_eq!(origin.request_count("/seg.ts"), 4);
    assert_eq!(client.counters().retries, 3);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let body = data(1000);
    let origin = origin(&body);
    origin.faults().add(FaultRule::new(Fault::service_unavailable(Some(1))).path("/seg.ts").first(1));
    let (events, on_retry) = recorder();
    let client = Client::new(quick().on_retry(on_retry)).unwrap();
    let started = Instant::now();
    assert_eq!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap(), body);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After");
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].delay, Duration::from_secs(1));
    let log = origin.log();
    assert!(log[1].received.duration_since(log[0].received) >= Duration::from_secs(1));
}

#[tokio::test]
async fn too_many_requests_and_request_timeout_are_retried() {
    let body = data(2000);
    let origin = origin(&body);
    origin.faults().add(FaultRule::new(Fault::too_many_requests(0)).path("/seg.ts").first(1));
    origin.faults().add(FaultRule::new(Fault::status(408)).path("/seg.ts").after_requests(1).first(2));
    let (events, on_retry) = recorder();
    let client = Client::new(quick().on_retry(on_retry)).unwrap();
    assert_eq!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap(), body);
    let causes: Vec<RetryCause> = events.lock().unwrap().iter().map(|e| e.cause.clone()).collect();
    assert_eq!(causes, vec![RetryCause::Status(429), RetryCause::Status(408)]);
}

#[tokio::test]
async fn attempts_are_bounded_and_the_last_status_is_reported() {
    let origin = origin(&data(10));
    origin.faults().add(FaultRule::new(Fault::status(502)).path("/seg.ts"));
    let client = Client::new(
        quick().retry(RetryConfig::default().max_retries(2).base_delay(Duration::from_millis(1))),
    )
    .unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 502, .. }), "{err}");
    assert_eq!(origin.request_count("/seg.ts"), 3);
}

#[tokio::test]
async fn other_client_errors_are_never_retried() {
    let origin = origin(&data(10));
    for status in [400, 401, 403, 410] {
        origin.faults().clear();
        origin.clear_log();
        origin.faults().add(FaultRule::new(Fault::status(status)).path("/seg.ts"));
        let client = Client::new(quick()).unwrap();
        let err = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_transient());
        assert_eq!(origin.log().len(), 1, "status {status} retried");
    }
}

#[tokio::test]
async fn latency_beyond_the_first_byte_deadline_is_a_timeout_then_retried() {
    let body = data(4000);
    let origin = origin(&body);
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(500))).path("/seg.ts").first(1));
    let (events, on_retry) = recorder();
    let cfg =
        quick().timeouts(Timeouts::default().first_byte(Some(Duration::from_millis(100)))).on_retry(on_retry);
    let client = Client::new(cfg).unwrap();
    assert_eq!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap(), body);
    assert_eq!(events.lock().unwrap()[0].cause, RetryCause::Timeout(TimeoutKind::FirstByte));

    // With no retries the timeout itself comes back, typed.
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(500))).path("/seg.ts").first(1));
    let client = Client::new(
        quick()
            .timeouts(Timeouts::default().first_byte(Some(Duration::from_millis(100))))
            .retry(RetryConfig::none()),
    )
    .unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { kind: TimeoutKind::FirstByte, .. }), "{err}");
}

#[tokio::test]
async fn total_deadline_bounds_the_whole_operation() {
    let origin = origin(&data(100));
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(300))).path("/seg.ts"));
    let client =
        Client::new(quick().timeouts(Timeouts::default().total(Some(Duration::from_millis(150))))).unwrap();
    let started = Instant::now();
    let err = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { kind: TimeoutKind::Total, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_millis(280));
}

#[tokio::test]
async fn elapsed_budget_stops_retries() {
    let origin = origin(&data(100));
    origin.faults().add(FaultRule::new(Fault::service_unavailable(None)).path("/seg.ts"));
    let retry = RetryConfig::default()
        .max_retries(1000)
        .base_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(5))
        .max_elapsed(Duration::from_millis(200));
    let client = Client::new(quick().retry(retry)).unwrap();
    let started = Instant::now();
    let err = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(origin.request_count("/seg.ts") < 1000);
}
