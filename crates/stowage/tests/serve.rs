//! `stowage serve` run as a user runs it: it serves the store on loopback, and refuses another address
//! unless told to.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use stowage_bundle::{
    AssetInfo, BundlePlan, MediaFormat, PlannedSegment, RenditionId, RenditionKind, RenditionPlan,
    StorageManager,
};

#[test]
fn serve_prints_its_url_and_serves_the_store() {
    let store = tempfile::tempdir().unwrap();
    let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\na.ts\n#EXT-X-ENDLIST\n";
    let video = RenditionId::new("video").unwrap();
    let segment = PlannedSegment::media(0, 0, 2.0, "https://cdn.example/a.ts");
    let rendition = RenditionPlan::new(
        video.clone(),
        RenditionKind::Video,
        MediaFormat::Ts,
        "https://cdn.example/v.m3u8",
        playlist,
        vec![segment.clone()],
    )
    .primary(true);
    let bundle = StorageManager::new(store.path())
        .create_bundle(BundlePlan::new(AssetInfo::new("clip").title("A clip")).rendition(rendition))
        .unwrap();
    let mut writer = bundle.segment_writer(&segment.id(&video)).unwrap();
    writer.write(&[0x47; 188 * 10]).unwrap();
    writer.finish().unwrap();
    bundle.mark_finished().unwrap();
    drop(bundle);

    let server = serve(store.path(), &["--listen", "127.0.0.1:0"]);
    let line = &server.banner[0];
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(line.starts_with("serving ") && url.starts_with("http://127.0.0.1:"), "{line}");
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let fetch = |path: &str| {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let page = fetch("/");
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("A clip"), "{page}");
    let segment = fetch("/asset/clip/video/seg-d0-s0.ts");
    assert!(segment.starts_with("HTTP/1.1 200") && segment.contains("content-type: video/mp2t"), "{segment}");
}

#[test]
fn serve_refuses_another_address_unless_allowed() {
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stowage"))
        .arg("--store")
        .arg(store.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address") && stderr.contains("--allow-remote"), "{stderr}");
}

/// One request over its own connection: the status and the body.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// The events of `/api/events`, as they come, each a JSON value.
fn event_stream(addr: &str, origin: Option<&str>) -> std::sync::mpsc::Receiver<serde_json::Value> {
    let mut stream = TcpStream::connect(addr).unwrap();
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n{origin}Accept: text/event-stream\r\n\r\n")
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stream);
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            // Chunked transfer: chunk sizes and blank lines pass by; events are the `data:` lines.
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                let Ok(value) = serde_json::from_str(data) else { continue };
                if tx.send(value).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for an event of `asset` named `name`, failing on one named `fails`.
fn wait_for_event(
    events: &std::sync::mpsc::Receiver<serde_json::Value>,
    asset: &str,
    name: &str,
    within: Duration,
) -> Option<serde_json::Value> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        let event = events.recv_timeout(left).ok()?;
        if event["asset"] == asset && event["event"] == name {
            return Some(event);
        }
        assert!(!(event["asset"] == asset && event["event"] == "failed"), "the download failed: {event}");
    }
}

#[test]
fn the_download_api_starts_follows_suspends_resumes_and_removes_downloads_for_its_own_page_only() {
    let files = stowage_origin::Files::new();
    files.load_dir("/clear", stowage_testkit::assets().join("clear")).unwrap();
    let origin = stowage_origin::Origin::start(files, stowage_origin::OriginConfig::default()).unwrap();
    // Each segment takes a second: a download not suspended is over in little more than that.
    origin.faults().add(
        stowage_origin::FaultRule::new(stowage_origin::Fault::Latency(Duration::from_secs(1))).glob("*.ts"),
    );
    let store = tempfile::tempdir().unwrap();
    let server = serve(store.path(), &["--listen", "127.0.0.1:0"]);
    let banner = &server.banner;
    let url = banner[0].rsplit(' ').next().unwrap().to_owned();
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let token =
        banner.iter().find_map(|l| l.strip_prefix("download API token: ")).expect("a token").to_owned();
    assert_eq!(token.len(), 32, "{token}");
    let own = format!("http://{addr}");
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str()), ("Origin", own.as_str())];
    let media = origin.url("/clear/video0/index.m3u8");
    let start = format!("{{\"url\": \"{media}\", \"name\": \"clip\"}}");

    // Another web site's page may neither drive the server nor follow it, even with the token; nobody
    // may change the store without the token.
    let foreign = [("Authorization", bearer.as_str()), ("Origin", "http://evil.example")];
    assert_eq!(request(&addr, "POST", "/api/downloads", &foreign, &start).0, 403);
    assert_eq!(request(&addr, "GET", "/api/events", &[("Origin", "http://evil.example")], "").0, 403);
    let (status, body) = request(&addr, "POST", "/api/downloads", &[("Origin", own.as_str())], &start);
    assert_eq!(status, 401, "{body}");
    assert_eq!(request(&addr, "POST", "/api/downloads", &[("Authorization", "Bearer 0123")], &start).0, 401);
    assert_eq!(request(&addr, "DELETE", "/api/assets/clip", &[], "").0, 401);
    assert_eq!(request(&addr, "POST", "/api/downloads", &auth, "url=x").0, 400);
    let (status, body) = request(&addr, "POST", "/api/downloads", &auth, r#"{"url": "file:///etc/passwd"}"#);
    assert!(status == 400 && body.contains("not an http or https URL"), "{status} {body}");
    assert!(origin.log().is_empty(), "nothing was fetched");

    // Started, suspended at once, resumed: followed on the event stream.
    let events = event_stream(&addr, Some(&own));
    let (status, body) = request(&addr, "POST", "/api/downloads", &auth, &start);
    assert_eq!((status, body.as_str()), (201, r#"{"asset":"clip"}"#));
    assert_eq!(request(&addr, "POST", "/api/downloads/clip/suspend", &auth, "").0, 204);
    assert!(
        wait_for_event(&events, "clip", "finished", Duration::from_secs(3)).is_none(),
        "a suspended download does not finish"
    );
    assert_eq!(request(&addr, "POST", "/api/downloads/clip/resume", &auth, "").0, 204);
    let finished = wait_for_event(&events, "clip", "finished", Duration::from_secs(30)).expect("it finishes");
    assert_eq!(finished["complete"], true);
    let (status, body) = request(&addr, "GET", "/asset/clip/master.m3u8", &[], "");
    assert!(status == 200 && body.contains("index.m3u8"), "{status} {body}");
    assert_eq!(request(&addr, "POST", "/api/downloads/nothing/suspend", &auth, "").0, 404);

    // Removed: gone from the store and from the server.
    assert_eq!(request(&addr, "DELETE", "/api/assets/clip", &auth, "").0, 204);
    assert_eq!(request(&addr, "GET", "/asset/clip/master.m3u8", &[], "").0, 404);
    assert!(!store.path().join("clip").exists());
    assert_eq!(request(&addr, "DELETE", "/api/assets/clip", &auth, "").0, 404);

    // A download removed while it runs is stopped first.
    let start = format!("{{\"url\": \"{media}\", \"name\": \"running\"}}");
    assert_eq!(request(&addr, "POST", "/api/downloads", &auth, &start).0, 201);
    wait_for_event(&events, "running", "will_download_to", Duration::from_secs(10)).expect("it starts");
    assert_eq!(request(&addr, "DELETE", "/api/assets/running", &auth, "").0, 204);
    let cancelled =
        wait_for_event(&events, "running", "cancelled", Duration::from_secs(10)).expect("stopped");
    assert_eq!(cancelled["removed"], true);
    assert!(!store.path().join("running").exists());
}

#[test]
fn serve_read_only_has_no_download_api() {
    let store = tempfile::tempdir().unwrap();
    let server = serve(store.path(), &["--listen", "127.0.0.1:0", "--read-only"]);
    let banner = &server.banner;
    assert!(!banner.iter().any(|l| l.contains("token")), "{banner:?}");
    let addr =
        banner[0].rsplit(' ').next().unwrap().trim_start_matches("http://").trim_end_matches('/').to_owned();
    assert_eq!(
        request(&addr, "POST", "/api/downloads", &[], r#"{"url": "http://127.0.0.1:1/x.m3u8"}"#).0,
        404
    );
    assert_eq!(request(&addr, "GET", "/api/events", &[], "").0, 404);
}
