//! Interrupted bodies: cut connections, slow drips and lying lengths, resumed with Range + If-Range.

mod common;

use std::time::Duration;

use common::{Step, data, header_of, quick, raw_server, recorder};
use stowage_fetch::{
    ByteRange, Client, ClientConfig, Error, Request, RetryCause, RetryConfig, TimeoutKind, Timeouts,
};
use stowage_origin::{Fault, FaultRule, Files, HttpVersions, Origin, OriginConfig};

fn origin(body: &[u8], versions: HttpVersions) -> Origin {
    Origin::start(
        Files::new().with_bytes("/seg.ts", body.to_vec()),
        OriginConfig::default().versions(versions),
    )
    .unwrap()
}

async fn read_all(client: &Client, req: Request) -> Result<Vec<u8>, Error> {
    let mut body = client.get(req).await?.into_body();
    let mut out = Vec::new();
    while let Some(c) = body.chunk().await? {
        out.extend_from_slice(&c);
    }
    Ok(out)
}

#[tokio::test]
async fn cut_connection_resumes_from_the_next_byte_with_if_range() {
    let body = data(1 << 20);
    let origin = origin(&body, HttpVersions::Http1Only);
    origin.faults().add(FaultRule::new(Fault::CutAfter(300_000)).path("/seg.ts").first(1));
    let (events, on_retry) = recorder();
    let client = Client::new(quick().on_retry(on_retry)).unwrap();
    let got = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got == body, "resumed body differs");
    let log = origin.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].bytes_sent, 300_000);
    assert_eq!(log[1].range.as_deref(), Some("bytes=300000-1048575"));
    assert!(log[1].if_range.as_deref().is_some_and(|v| v.starts_with('"')), "strong ETag as validator");
    assert_eq!(log[1].status, 206);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].resume_from, Some(300_000));
    let c = client.counters();
    assert_eq!((c.resumes, c.retries), (1, 1));
}

#[tokio::test]
async fn cut_http2_stream_resumes_too() {
    let body = data(600_000);
    let origin = origin(&body, HttpVersions::Both);
    origin.faults().add(FaultRule::new(Fault::CutAfter(100_000)).path("/seg.ts").first(2));
    let client = Client::new(quick().http2_prior_knowledge(true)).unwrap();
    let got = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
    assert!(got == body);
    assert_eq!(origin.request_count("/seg.ts"), 3);
}

#[tokio::test]
async fn cut_inside_a_byte_range_resumes_inside_the_range() {
    let body = data(500_000);
    let origin = origin(&body, HttpVersions::Http1Only);
    origin.faults().add(FaultRule::new(Fault::CutAfter(10_000)).path("/seg.ts").first(1));
    let client = Client::new(quick()).unwrap();
    let got = read_all(
        &client,
        Request::get(&origin.url("/seg.ts")).unwrap().range(ByteRange::new(100_000, 50_000)),
    )
    .await
    .unwrap();
    assert!(got == body[100_000..150_000]);
    let log = origin.log();
    assert_eq!(log[0].range.as_deref(), Some("bytes=100000-149999"));
    assert_eq!(log[1].range.as_deref(), Some("bytes=110000-149999"));
}

#[tokio::test]
async fn resume_off_gives_the_error() {
    let body = data(200_000);
    let origin = origin(&body, HttpVersions::Http1Only);
    origin.faults().add(FaultRule::new(Fault::CutAfter(50_000)).path("/seg.ts"));
    let client = Client::new(quick().resume(false)).unwrap();
    let err = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::BodyTooShort { expected: 200_000, received: 50_000, .. }), "{err}");
    assert_eq!(origin.request_count("/seg.ts"), 1);
}

#[tokio::test]
async fn cut_every_time_fails_after_the_retry_budget() {
    let body = data(200_000);
    let origin = origin(&body, HttpVersions::Http1Only);
    origin.faults().add(FaultRule::new(Fault::CutAfter(1000)).path("/seg.ts"));
    let client = Client::new(
        quick().retry(RetryConfig::default().max_retries(3).base_delay(Duration::from_millis(1))),
    )
    .unwrap();
    let err = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    // The first answer and three resumes, each cut after 1000 bytes: the body got that far and no further.
    assert_eq!(origin.request_count("/seg.ts"), 4);
}

#[tokio::test]
async fn slow_drip_within_the_stall_deadline_completes() {
    let body = data(20_000);
    let origin = origin(&body, HttpVersions::Http1Only);
    // 40 kB/s in twenty chunks a second: gaps of 50 ms, well within a 300 ms stall deadline.
    origin.faults().add(FaultRule::new(Fault::throttle(40_000)).path("/seg.ts"));
    let (events, on_retry) = recorder();
    let cfg =
        quick().timeouts(Timeouts::default().stall(Some(Duration::from_millis(300)))).on_retry(on_retry);
    let client = Client::new(cfg).unwrap();
    let got = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
    assert!(got == body);
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn stalled_body_hits_the_stall_deadline_and_resumes() {
    let body = data(40_000);
    let served = body.clone();
    let addr = raw_server(move |n, head| {
        let etag = "\"v1\"";
        if n == 0 {
            // Half the body, then silence far longer than the stall deadline.
            let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: 40000\r\nETag: {etag}\r\n\r\n").into_bytes();
            out.extend_from_slice(&served[..20_000]);
            return vec![Step::Send(out), Step::Sleep(Duration::from_secs(30))];
        }
        assert_eq!(header_of(head, "range"), Some("bytes=20000-39999"));
        assert_eq!(header_of(head, "if-range"), Some(etag));
        let mut out = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: 20000\r\nContent-Range: bytes 20000-39999/40000\r\nETag: {etag}\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(&served[20_000..]);
        vec![Step::Send(out)]
    })
    .await;
    let (events, on_retry) = recorder();
    let cfg =
        quick().timeouts(Timeouts::default().stall(Some(Duration::from_millis(200)))).on_retry(on_retry);
    let client = Client::new(cfg).unwrap();
    let got = read_all(&client, Request::get(&format!("http://{addr}/seg.ts")).unwrap()).await.unwrap();
    assert!(got == body);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].cause, RetryCause::Timeout(TimeoutKind::Stall));
    assert_eq!(events[0].resume_from, Some(20_000));
}

#[tokio::test]
async fn body_longer_than_its_range_is_an_error() {
    // A 206 whose Content-Range promises 1000 bytes but whose chunked body carries 1500.
    let addr = raw_server(|_, _| {
        let mut out = b"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\nContent-Range: bytes 0-999/5000\r\n\r\n5dc\r\n".to_vec();
        out.extend_from_slice(&[7u8; 1500]);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
        vec![Step::Send(out)]
    })
    .await;
    let client = Client::new(quick()).unwrap();
    let err =
        read_all(&client, Request::get(&format!("http://{addr}/x")).unwrap().range(ByteRange::new(0, 1000)))
            .await;
    // A server sending more than the asked range is sliced to exactly the range when it says so in
    // Content-Range; here it claims the exact range and then overruns it, which is an error.
    assert!(matches!(err, Err(Error::BodyTooLong { expected: 1000, .. })), "{err:?}");
}

#[tokio::test]
async fn declared_length_longer_than_the_body_is_resumed_or_reported() {
    let body = data(100_000);
    let origin = origin(&body, HttpVersions::Http1Only);
    // Once: Content-Length says 100 100 but 100 000 bytes come; the resume asks for the rest.
    origin.faults().add(FaultRule::new(Fault::ContentLengthDelta(100)).path("/seg.ts").first(1));
    let client = Client::new(quick()).unwrap();
    // The origin's resumed answer holds the truth (the resource has 100 000 bytes), so the declared
    // length is unreachable: the client must report a short body, never return 100 000 bytes as complete.
    let err = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::BodyTooShort { expected: 100_100, received: 100_000, .. }), "{err}");

    // Every time, without resumption: a typed short-body error with the counts.
    origin.faults().clear();
    origin.faults().add(FaultRule::new(Fault::ContentLengthDelta(100)).path("/seg.ts"));
    let client = Client::new(quick().resume(false)).unwrap();
    let err = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::BodyTooShort { expected: 100_100, received: 100_000, .. }), "{err}");
}

#[tokio::test]
async fn declared_length_shorter_than_a_range_is_an_error() {
    let body = data(100_000);
    let origin = origin(&body, HttpVersions::Http1Only);
    origin.faults().add(FaultRule::new(Fault::ContentLengthDelta(-10)).path("/seg.ts"));
    let client = Client::new(quick()).unwrap();
    let err = read_all(&client, Request::get(&origin.url("/seg.ts")).unwrap().range(ByteRange::new(0, 1000)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRange { .. }), "{err}");
}

#[tokio::test]
async fn resumed_answer_is_checked_like_a_first_answer() {
    // The resumption of a cut transfer gets a 206 whose Content-Length disagrees with its Content-Range:
    // the same answer to a first range request is refused, and so it is here, at once, instead of being
    // read as a short body and asked for again until the retries run out.
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = requests.clone();
    let addr = raw_server(move |n, _| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 0 {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 40000\r\nETag: \"v1\"\r\n\r\n".to_vec();
            out.extend_from_slice(&[1u8; 20_000]);
            return vec![Step::Send(out)];
        }
        let mut out = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10000\r\nContent-Range: bytes 20000-39999/40000\r\nETag: \"v1\"\r\n\r\n".to_vec();
        out.extend_from_slice(&[1u8; 10_000]);
        vec![Step::Send(out)]
    })
    .await;
    let client = Client::new(quick()).unwrap();
    let err = read_all(&client, Request::get(&format!("http://{addr}/seg.ts")).unwrap()).await.unwrap_err();
    assert!(
        matches!(&err, Error::BadRange { reason, .. } if reason.contains("Content-Length") && reason.contains("on resume")),
        "{err}"
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn changed_resource_is_detected_on_resume() {
    let body = data(300_000);
    let origin = origin(&body, HttpVersions::Http1Only);
    origin.faults().add(FaultRule::new(Fault::CutAfter(100_000)).path("/seg.ts").first(1));
    let client = Client::new(ClientConfig::default().proxy(stowage_fetch::ProxyConfig::None).retry(
        RetryConfig::default().base_delay(Duration::from_millis(50)).max_delay(Duration::from_millis(50)),
    ))
    .unwrap();
    let mut b = client.get(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap().into_body();
    // Replace the file while the first answer is in flight: its ETag changes, so If-Range fails and the
    // origin answers 200 with the new file, which must not be spliced onto the old bytes.
    origin.files().insert_bytes("/seg.ts", data(300_001));
    let mut got = 0;
    let err = loop {
        match b.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => panic!("a changed resource was spliced"),
            Err(e) => break e,
        }
    };
    assert!(got <= 100_000);
    assert!(matches!(err, Error::ResourceChanged { .. }), "{err}");
}
