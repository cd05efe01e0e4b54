//! `stowage serve` run as a user runs it: it serves the store on loopback, and refuses another address
//! unless told to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use stowage_bundle::{
    AssetInfo, BundlePlan, MediaFormat, PlannedSegment, RenditionId, RenditionKind, RenditionPlan,
    StorageManager,
};

/// Kills the server when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_stowage"))
            .arg("--store")
            .arg(store.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    // The reader is kept until the end, so that the server's standard output stays open.
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
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
