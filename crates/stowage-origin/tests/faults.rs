//! Injected faults as a client sees them on the wire (HTTP/1.1).

mod support;

use std::time::{Duration, Instant};

use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};
use support::{Conn, get, get_to_close, pattern};

fn origin() -> (Origin, Vec<u8>) {
    let body = pattern(200_000);
    let files = Files::new().with_bytes("/seg.ts", body.clone()).with_bytes("/k/key0.key", vec![7u8; 16]);
    (Origin::start(files, OriginConfig::default().chunk_size(16 * 1024)).unwrap(), body)
}

#[test]
fn cut_after_exact_byte_count() {
    let (origin, body) = origin();
    origin.faults().add(FaultRule::new(Fault::CutAfter(70_001)).path("/seg.ts").first(1));
    // Not asked to close: the origin closes the connection itself, after exactly 70,001 body bytes.
    let cut = get_to_close(origin.addr(), "/seg.ts", "");
    assert_eq!(cut.status, 200);
    assert_eq!(cut.content_length(), Some(200_000));
    assert_eq!(cut.body, body[..70_001]);
    let log = origin.log();
    assert_eq!((log[0].bytes_sent, log[0].completed), (70_001, false));
    assert_eq!(log[0].faults, vec!["cut after 70001"]);

    // The rule fired once; a resumed range request now succeeds.
    let rest = get(origin.addr(), "/seg.ts", "Range: bytes=70001-\r\n");
    assert_eq!((rest.status, &rest.body[..]), (206, &body[70_001..]));
}

#[test]
fn cut_at_random_is_within_the_body_and_reproducible() {
    let run = || {
        let (origin, body) = origin();
        origin.faults().add(FaultRule::new(Fault::CutAtRandom));
        let cut = get_to_close(origin.addr(), "/seg.ts", "");
        assert!(cut.body.len() < body.len());
        assert_eq!(cut.body, body[..cut.body.len()]);
        cut.body.len()
    };
    assert_eq!(run(), run());
}

#[test]
fn content_length_longer_and_shorter_than_the_body() {
    let (origin, body) = origin();
    let rule = origin.faults().add(FaultRule::new(Fault::ContentLengthDelta(1000)).path("/seg.ts"));
    let long = get_to_close(origin.addr(), "/seg.ts", "");
    assert_eq!(long.content_length(), Some(201_000));
    assert_eq!(long.body, body, "the real body, then the connection closes");

    origin.faults().remove(rule);
    origin.faults().add(FaultRule::new(Fault::ContentLengthDelta(-1000)).path("/seg.ts"));
    let short = get_to_close(origin.addr(), "/seg.ts", "");
    assert_eq!(short.content_length(), Some(199_000));
    assert_eq!(short.body, body, "the whole body despite the declared length, then a close");
}

#[test]
fn close_delimited_bodies_end_with_the_connection_whole_or_cut() {
    let (origin, body) = origin();
    let rule = origin.faults().add(FaultRule::new(Fault::CloseDelimited).path("/seg.ts"));
    let whole = get_to_close(origin.addr(), "/seg.ts", "");
    assert_eq!((whole.status, whole.content_length(), whole.header("transfer-encoding")), (200, None, None));
    assert!(whole.closed);
    assert_eq!(whole.body, body);

    // Cut: the connection closes after the bytes, and nothing on the wire tells the body was longer.
    origin.faults().add(FaultRule::new(Fault::CutAfter(70_001)).path("/seg.ts"));
    let cut = get_to_close(origin.addr(), "/seg.ts", "");
    assert_eq!((cut.status, cut.content_length(), cut.header("transfer-encoding")), (200, None, None));
    assert_eq!(cut.body, body[..70_001]);
    let log = origin.log();
    assert_eq!(log[1].faults, vec!["close-delimited", "cut after 70001"]);

    // Other paths keep their length.
    origin.faults().remove(rule);
    let framed = get(origin.addr(), "/k/key0.key", "");
    assert_eq!(framed.content_length(), Some(16));
}

#[test]
fn statuses_retry_after_and_first_n_then_success() {
    let (origin, body) = origin();
    origin.faults().add(FaultRule::new(Fault::service_unavailable(Some(2))).path("/seg.ts").first(2));
    origin.faults().add(FaultRule::new(Fault::too_many_requests(1)).path("/k/key0.key").first(1));
    origin.faults().add(FaultRule::new(Fault::status(410)).path("/gone"));
    let mut conn = Conn::open(origin.addr());
    for _ in 0..2 {
        let r = conn.get("/seg.ts", "");
        assert_eq!((r.status, r.header("retry-after")), (503, Some("2")));
    }
    assert_eq!(conn.get("/seg.ts", "").body, body);
    let r = conn.get("/k/key0.key", "");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    assert_eq!(conn.get("/k/key0.key", "").body, vec![7u8; 16]);
    assert_eq!(conn.get("/gone", "").status, 410);
}

#[test]
fn urls_expire_after_requests_or_time() {
    let (origin, _) = origin();
    origin
        .faults()
        .add(FaultRule::new(Fault::status(403)).path("/seg.ts").query_contains("sig=old").after_requests(2));
    origin
        .faults()
        .add(FaultRule::new(Fault::status(403)).path("/k/key0.key").after_time(Duration::from_millis(150)));
    let mut conn = Conn::open(origin.addr());
    let statuses: Vec<u16> =
        (0..3).map(|_| conn.get("/seg.ts?sig=old", "Range: bytes=0-0\r\n").status).collect();
    assert_eq!(statuses, [206, 206, 403]);
    assert_eq!(conn.get("/seg.ts?sig=new", "Range: bytes=0-0\r\n").status, 206);
    assert_eq!(conn.get("/k/key0.key", "").status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(conn.get("/k/key0.key", "").status, 403);
}

#[test]
fn redirects_and_loops() {
    let (origin, body) = origin();
    origin.faults().add(FaultRule::new(Fault::redirect("/seg.ts")).path("/moved"));
    origin.faults().add(FaultRule::new(Fault::Redirect { status: 307, location: "/b".into() }).path("/a"));
    origin.faults().add(FaultRule::new(Fault::Redirect { status: 307, location: "/a".into() }).path("/b"));
    let other = "http://127.0.0.1:9/plain.ts";
    origin.faults().add(FaultRule::new(Fault::redirect(other)).path("/downgrade"));
    let mut conn = Conn::open(origin.addr());
    let moved = conn.get("/moved", "");
    assert_eq!((moved.status, moved.header("location")), (302, Some("/seg.ts")));
    assert_eq!(conn.get(moved.header("location").unwrap(), "").body, body);
    let mut path = "/a".to_owned();
    for expected in ["/b", "/a", "/b"] {
        let r = conn.get(&path, "");
        assert_eq!((r.status, r.header("location")), (307, Some(expected)));
        path = expected.to_owned();
    }
    assert_eq!(conn.get("/downgrade", "").header("location"), Some(other));
}

#[test]
fn ignore_range_latency_and_throttle() {
    let (origin, body) = origin();
    origin.faults().add(FaultRule::new(Fault::IgnoreRange).path("/seg.ts"));
    let whole = get(origin.addr(), "/seg.ts", "Range: bytes=0-99\r\n");
    assert_eq!((whole.status, whole.body.len()), (200, body.len()));
    origin.faults().clear();

    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(120))).glob("*.key"));
    let started = Instant::now();
    assert_eq!(get(origin.addr(), "/k/key0.key", "").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
    origin.faults().clear();

    // 30,000 bytes at 100,000 B/s take at least 0.3 s, and arrive intact.
    origin.faults().add(FaultRule::new(Fault::throttle(100_000)).path("/seg.ts"));
    let started = Instant::now();
    let slow = get(origin.addr(), "/seg.ts", "Range: bytes=0-29999\r\n");
    assert!(started.elapsed() >= Duration::from_millis(280), "{:?}", started.elapsed());
    assert_eq!(slow.body, body[..30_000]);
}

#[test]
fn probabilistic_faults_hit_about_the_fraction() {
    let (origin, _) = origin();
    origin.faults().add(FaultRule::new(Fault::status(404)).glob("*.key").probability(0.2));
    let mut conn = Conn::open(origin.addr());
    let failures = (0..200).filter(|_| conn.get("/k/key0.key", "").status == 404).count();
    assert!((20..=60).contains(&failures), "{failures} of 200 failed at 20%");
    assert_eq!(origin.log().iter().filter(|r| r.status == 404).count(), failures);
}
