//! Deadlines against a hostile origin: a body trickling in a byte at a time, response headers that never
//! come, a TLS handshake with a port that does not speak TLS, conflicting `Content-Length` headers, and
//! `Retry-After` waits, each of which must end in a bounded time with an error naming the URI and what
//! ran out.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{Step, data, quick, raw_server, recorder};
use stowage_fetch::{Client, Error, MinRate, Request, RetryCause, RetryConfig, TimeoutKind, Timeouts};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};
use tokio::net::TcpListener;

/// An answer declaring `len` bytes, then one byte every 100 ms: never a gap long enough for the idle-body
/// timeout, far below any useful rate.
fn trickle(len: usize) -> Vec<Step> {
    let mut steps =
        vec![Step::Send(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes())];
    for _ in 0..len {
        steps.push(Step::Send(b"#".to_vec()));
        steps.push(Step::Sleep(Duration::from_millis(100)));
    }
    steps
}

/// Timeouts for these tests: a minimum rate of 1000 bytes/s over one second, an idle-body timeout that a
/// trickle never trips.
fn strict_rate() -> Timeouts {
    Timeouts::default()
        .stall(Some(Duration::from_secs(5)))
        .min_rate(Some(MinRate::new(1000, Duration::from_secs(1))))
}

#[tokio::test]
async fn a_body_trickling_in_fails_on_the_minimum_rate_naming_the_uri() {
    let addr = raw_server(|_, _| trickle(5000)).await;
    let uri = format!("http://{addr}/master.m3u8");
    let client = Client::new(quick().timeouts(strict_rate()).retry(RetryConfig::none())).unwrap();
    let started = Instant::now();
    let err = client.get_bytes(Request::get(&uri).unwrap()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    match &err {
        Error::Timeout { uri: u, kind: TimeoutKind::MinRate, after } => {
            assert_eq!(u, &uri);
            assert_eq!(*after, Duration::from_secs(1), "the error names the whole window");
        }
        other => panic!("expected a minimum-rate timeout, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("minimum-rate timeout") && message.contains(&uri), "{message}");
    assert!(err.is_transient(), "a slow body is worth another try");
}

#[tokio::test]
async fn a_trickling_body_is_resumed_then_fails_within_the_retry_budget() {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let addr = raw_server(move |_, _| {
        seen.fetch_add(1, Ordering::SeqCst);
        trickle(5000)
    })
    .await;
    let uri = format!("http://{addr}/seg.ts");
    let (events, on_retry) = recorder();
    let retry = RetryConfig::default().max_retries(2).base_delay(Duration::from_millis(10));
    let client = Client::new(quick().timeouts(strict_rate()).retry(retry).on_retry(on_retry)).unwrap();
    let started = Instant::now();
    let mut body = client.get(Request::get(&uri).unwrap()).await.unwrap().into_body();
    let err = loop {
        match body.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a trickle of 5000 bytes at 10 bytes/s ended within the test"),
            Err(e) => break e,
        }
    };
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(matches!(err, Error::Timeout { kind: TimeoutKind::MinRate, .. }), "{err}");
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    for e in events.iter() {
        assert_eq!(e.cause, RetryCause::Timeout(TimeoutKind::MinRate));
        assert!(e.resume_from.is_some(), "a slow body is resumed from where it got to");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_steady_body_and_the_clients_own_rate_limit_never_trip_the_minimum_rate() {
    let body = data(400_000);
    let origin =
        Origin::start(Files::new().with_bytes("/seg.ts", body.clone()), OriginConfig::default()).unwrap();
    let (events, on_retry) = recorder();
    // A minimum of 1 MB/s over a fifth of a second, and a client limited to 200 kB/s: the waits the
    // limit imposes are the client's own, not the origin's slowness.
    let timeouts = Timeouts::default().min_rate(Some(MinRate::new(1_000_000, Duration::from_millis(200))));
    let cfg =
        quick().timeouts(timeouts).rate_limit(Some(200_000)).retry(RetryConfig::none()).on_retry(on_retry);
    let client = Client::new(cfg).unwrap();
    let got = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
    assert!(got == body);
    assert!(events.lock().unwrap().is_empty());

    // A drip of 40 kB/s against a minimum of 10 kB/s completes.
    let small = data(30_000);
    let origin =
        Origin::start(Files::new().with_bytes("/seg.ts", small.clone()), OriginConfig::default()).unwrap();
    origin.faults().add(FaultRule::new(Fault::throttle(40_000)).path("/seg.ts"));
    let timeouts = Timeouts::default().min_rate(Some(MinRate::new(10_000, Duration::from_millis(300))));
    let client = Client::new(quick().timeouts(timeouts).retry(RetryConfig::none())).unwrap();
    assert!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap() == small);
}

#[tokio::test]
async fn headers_that_never_come_fail_on_the_header_timeout_after_bounded_retries() {
    let addr = raw_server(|_, _| vec![Step::Sleep(Duration::from_secs(60))]).await;
    let uri = format!("http://{addr}/seg.ts");
    let (events, on_retry) = recorder();
    let timeouts = Timeouts::default().first_byte(Some(Duration::from_millis(300)));
    let retry = RetryConfig::default()
        .max_retries(100)
        .base_delay(Duration::from_millis(10))
        .max_elapsed(Duration::from_secs(2));
    let client = Client::new(quick().timeouts(timeouts).retry(retry).on_retry(on_retry)).unwrap();
    let started = Instant::now();
    let err = client.get_bytes(Request::get(&uri).unwrap()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(matches!(&err, Error::Timeout { kind: TimeoutKind::FirstByte, .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("header timeout") && message.contains(&uri), "{message}");
    let events = events.lock().unwrap();
    assert!(!events.is_empty() && events.len() < 20, "{} retries", events.len());
    assert!(events.iter().all(|e| e.cause == RetryCause::Timeout(TimeoutKind::FirstByte)));
}

#[tokio::test]
async fn conflicting_content_lengths_are_a_protocol_error_never_retried() {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let addr = raw_server(move |_, _| {
        seen.fetch_add(1, Ordering::SeqCst);
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n";
        vec![Step::Send(format!("{head}01234567890123456789").into_bytes())]
    })
    .await;
    let uri = format!("http://{addr}/seg.ts");
    let (events, on_retry) = recorder();
    let client = Client::new(quick().on_retry(on_retry)).unwrap();
    let err = client.get_bytes(Request::get(&uri).unwrap()).await.unwrap_err();
    match &err {
        Error::Protocol { uri: u, message } => {
            assert_eq!(u, &uri);
            assert!(message.to_lowercase().contains("content-length"), "{message}");
        }
        other => panic!("expected a protocol error, got {other}"),
    }
    assert!(!err.is_transient());
    assert!(events.lock().unwrap().is_empty(), "retried: {:?}", events.lock().unwrap());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn https_to_a_port_that_never_completes_a_handshake_fails_fast_and_says_so() {
    // A server that accepts connections and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    let uri = format!("https://{addr}/master.m3u8");
    let (events, on_retry) = recorder();
    let timeouts = Timeouts::default().tls_handshake(Some(Duration::from_millis(500)));
    let client = Client::new(quick().timeouts(timeouts).on_retry(on_retry)).unwrap();
    let started = Instant::now();
    let err = client.get_bytes(Request::get(&uri).unwrap()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(matches!(&err, Error::Timeout { kind: TimeoutKind::TlsHandshake, .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("TLS handshake") && message.contains(&uri), "{message}");
    assert!(!err.is_transient());
    assert!(events.lock().unwrap().is_empty(), "a handshake that never completes is not retried");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn https_to_a_plain_http_origin_fails_at_once_and_says_so() {
    let origin =
        Origin::start(Files::new().with_bytes("/master.m3u8", data(100)), OriginConfig::default()).unwrap();
    let uri = origin.url("/master.m3u8").replacen("http://", "https://", 1);
    let (events, on_retry) = recorder();
    let client = Client::new(quick().on_retry(on_retry)).unwrap();
    let started = Instant::now();
    let err = client.get_bytes(Request::get(&uri).unwrap()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    match &err {
        Error::Tls { uri: u, message } => {
            assert_eq!(u, &uri);
            assert!(message.contains("plain-HTTP"), "{message}");
        }
        other => panic!("expected a TLS error, got {other}"),
    }
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_fails_at_once_naming_it() {
    let origin =
        Origin::start(Files::new().with_bytes("/seg.ts", data(1000)), OriginConfig::default()).unwrap();
    origin.faults().add(FaultRule::new(Fault::too_many_requests(3600)).path("/seg.ts"));
    let uri = origin.url("/seg.ts");
    let client =
        Client::new(quick().retry(RetryConfig::default().max_retry_after(Duration::from_secs(5)))).unwrap();
    let started = Instant::now();
    let err = client.get_bytes(Request::get(&uri).unwrap()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match &err {
        Error::RetryAfterTooLong { uri: u, status, retry_after, limit } => {
            assert_eq!(u, &uri);
            assert_eq!(*status, 429);
            assert_eq!(*retry_after, Duration::from_secs(3600));
            assert_eq!(*limit, Duration::from_secs(5));
        }
        other => panic!("expected a Retry-After beyond the limit, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("3600 s") && message.contains(&uri) && message.contains("429"), "{message}");
    // Passed on to a caller that schedules its own retries.
    assert_eq!((err.status(), err.retry_after()), (Some(429), Some(Duration::from_secs(3600))));
    assert!(!err.is_transient());
    assert_eq!(origin.request_count("/seg.ts"), 1);
}

#[tokio::test]
async fn a_retry_after_wait_is_reported_with_its_value_and_end_and_outlasts_the_elapsed_budget() {
    let body = data(1000);
    let origin =
        Origin::start(Files::new().with_bytes("/seg.ts", body.clone()), OriginConfig::default()).unwrap();
    origin.faults().add(FaultRule::new(Fault::too_many_requests(1)).path("/seg.ts").first(1));
    let (events, on_retry) = recorder();
    // The server's wait is longer than the elapsed budget of backoffs, and within the Retry-After limit.
    let retry = RetryConfig::default().max_elapsed(Duration::from_millis(100));
    let client = Client::new(quick().retry(retry).on_retry(on_retry)).unwrap();
    let before = SystemTime::now();
    assert_eq!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap(), body);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.cause, RetryCause::Status(429));
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(e.delay, Duration::from_secs(1));
    let until = e.until.duration_since(before).unwrap();
    assert!(until >= Duration::from_secs(1) && until < Duration::from_secs(10), "{until:?}");
}
