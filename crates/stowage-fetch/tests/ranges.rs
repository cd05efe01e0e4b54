//! Byte ranges: 206 answers, 200 answers to range requests (sliced or refused), ranges past the end.

mod common;

use common::{Step, data, quick, raw_server};
use stowage_fetch::{ByteRange, Client, Error, RangeFallback, Request};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};

fn origin(body: &[u8]) -> Origin {
    Origin::start(Files::new().with_bytes("/seg.ts", body.to_vec()), OriginConfig::default()).unwrap()
}

#[tokio::test]
async fn partial_content_delivers_exactly_the_range() {
    let body = data(1_000_000);
    let origin = origin(&body);
    let client = Client::new(quick()).unwrap();
    let resp = client
        .get(Request::get(&origin.url("/seg.ts")).unwrap().range(ByteRange::new(188_000, 376_000)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.content_length(), Some(376_000));
    assert!(resp.bytes().await.unwrap() == body[188_000..564_000]);
    // Open-ended.
    let got = client
        .get_bytes(Request::get(&origin.url("/seg.ts")).unwrap().range(ByteRange::from_offset(999_000)))
        .await
        .unwrap();
    assert!(got == body[999_000..]);
    let log = origin.log();
    assert_eq!(log[0].range.as_deref(), Some("bytes=188000-563999"));
    assert_eq!(log[1].range.as_deref(), Some("bytes=999000-"));
}

#[tokio::test]
async fn ok_answer_to_a_range_request_is_sliced_never_delivered_whole() {
    // Large enough that the whole file cannot sit in the loopback socket buffers when the client leaves.
    let body = data(1 << 20).repeat(48);
    let origin = origin(&body);
    origin.faults().add(FaultRule::new(Fault::IgnoreRange).path("/seg.ts"));
    let client = Client::new(quick()).unwrap();
    let resp = client
        .get(Request::get(&origin.url("/seg.ts")).unwrap().range(ByteRange::new(500_000, 1000)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(1000));
    assert!(resp.bytes().await.unwrap() == body[500_000..501_000]);
    let log = origin.log();
    assert_eq!(log[0].status, 200);
    assert!(!log[0].completed, "the rest of the whole file is not read: the connection is dropped");
}

#[tokio::test]
async fn ok_answer_to_a_range_request_can_be_refused() {
    let origin = origin(&data(10_000));
    origin.faults().add(FaultRule::new(Fault::IgnoreRange).path("/seg.ts"));
    let client = Client::new(quick().range_fallback(RangeFallback::Error)).unwrap();
    let err = client
        .get_bytes(Request::get(&origin.url("/seg.ts")).unwrap().range(ByteRange::new(100, 100)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRange { .. }), "{err}");
}

#[tokio::test]
async fn range_past_the_end_is_an_error() {
    let origin = origin(&data(10_000));
    let client = Client::new(quick()).unwrap();
    for range in [ByteRange::new(9_000, 2_000), ByteRange::new(20_000, 10)] {
        let err =
            client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap().range(range)).await.unwrap_err();
        assert!(
            matches!(err, Error::BadRange { .. } | Error::Status { status: 416, .. }),
            "{range:?}: {err}"
        );
    }
    let err = client
        .get_bytes(Request::get(&origin.url("/seg.ts")).unwrap().range(ByteRange::new(0, 0)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
}

#[tokio::test]
async fn mismatched_content_range_is_an_error() {
    // Asked from byte 100, the server answers from byte 200.
    let addr = raw_server(|_, _| {
        let mut out =
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\nContent-Range: bytes 200-299/1000\r\n\r\n".to_vec();
        out.extend_from_slice(&[1u8; 100]);
        vec![Step::Send(out)]
    })
    .await;
    let client = Client::new(quick()).unwrap();
    let err = client
        .get_bytes(Request::get(&format!("http://{addr}/x")).unwrap().range(ByteRange::new(100, 100)))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::BadRange { reason, .. } if reason.contains("200-299")), "{err}");
}

#[tokio::test]
async fn wider_partial_content_is_trimmed_to_the_asked_range() {
    // Some servers round ranges out to their block size; the asked bytes are cut out of the answer.
    let whole = data(4096);
    let served = whole.clone();
    let addr = raw_server(move |_, _| {
        let mut out = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 4096\r\nContent-Range: bytes 0-4095/8192\r\n\r\n"
            .to_vec();
        out.extend_from_slice(&served);
        vec![Step::Send(out)]
    })
    .await;
    let client = Client::new(quick()).unwrap();
    let got = client
        .get_bytes(Request::get(&format!("http://{addr}/x")).unwrap().range(ByteRange::new(1000, 500)))
        .await
        .unwrap();
    assert!(got == whole[1000..1500]);
}
