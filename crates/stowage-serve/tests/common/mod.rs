//! Helpers of the server tests: stores of small bundles made with `stowage-bundle`, and plain HTTP/1.1
//! over a socket (so that any request target, however malformed, reaches the server as written).
#![allow(dead_code, unreachable_pub)]

pub mod browser;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use stowage_bundle::{
    Artwork, AssetInfo, Bundle, BundlePlan, RenditionId, RenditionKind, RenditionPlan, StorageManager,
};

/// The source master playlist of the test asset.
pub const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,URI=\"a/en.m3u8\"\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"fr\",NAME=\"Français\",DEFAULT=NO,AUTOSELECT=YES,URI=\"a/fr.m3u8\"\n\
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=NO,URI=\"s/en.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"aud\",SUBTITLES=\"subs\"\n\
v/index.m3u8\n";

/// A VOD media playlist of `count` segments of 2 s named `seg<i>.<ext>`.
pub fn media_playlist(count: usize, ext: &str) -> String {
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..count {
        text.push_str(&format!("#EXTINF:2.000,\nseg{i}.{ext}\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

/// The WebVTT segment `i` of the test asset: one cue in the middle of its 2 s, and one that spans into the
/// next segment (written in both, as segmenters do).
pub fn vtt_segment(i: usize) -> String {
    let t = 2.0 * i as f64;
    let ts = |s: f64| format!("00:00:{:02}.{:03}", s as u64, ((s.fract()) * 1000.0).round() as u64);
    let mut text = String::from("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n");
    text.push_str(&format!("{} --> {}\nLine {i}\n\n", ts(t + 0.25), ts(t + 1.0)));
    text.push_str(&format!("{} --> {}\nAcross {i}\n\n", ts(t + 1.5), ts(t + 2.5)));
    if i > 0 {
        text.push_str(&format!("{} --> {}\nAcross {}\n\n", ts(t - 0.5), ts(t + 0.5), i - 1));
    }
    text
}

fn rendition(id: &str, kind: RenditionKind, count: usize, ext: &str, uri: &str) -> RenditionPlan {
    let url = format!("https://cdn.example/{uri}");
    RenditionPlan::from_playlist(RenditionId::new(id).unwrap(), kind, url, media_playlist(count, ext))
        .unwrap()
        .master_uri(uri)
}

/// The plan of the test asset `id`: 640x360 TS video, English and French audio, English subtitles, three
/// segments of 2 s each.
pub fn plan(id: &str, title: &str) -> BundlePlan {
    BundlePlan::new(AssetInfo::new(id).title(title))
        .master_playlist(MASTER)
        .rendition(
            rendition("video", RenditionKind::Video, 3, "ts", "v/index.m3u8")
                .primary(true)
                .bandwidth(500_000),
        )
        .rendition(
            rendition("audio-en", RenditionKind::Audio, 3, "ts", "a/en.m3u8")
                .primary(true)
                .language("en")
                .name("English")
                .group_id("aud"),
        )
        .rendition(
            rendition("audio-fr", RenditionKind::Audio, 3, "ts", "a/fr.m3u8")
                .language("fr")
                .name("Français")
                .group_id("aud"),
        )
        .rendition(
            rendition("subs-en", RenditionKind::Subtitles, 3, "vtt", "s/en.m3u8")
                .language("en")
                .name("English")
                .group_id("subs"),
        )
}

/// The bytes stored for a segment: subtitles are WebVTT, the rest distinct bytes of `len`.
pub fn segment_bytes(id: &stowage_bundle::SegmentId, len: usize) -> Vec<u8> {
    if id.rendition.as_str().starts_with("subs") {
        return vtt_segment(id.media_sequence as usize).into_bytes();
    }
    let seed = id.media_sequence as u8 ^ id.rendition.as_str().len() as u8;
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

/// Stores every pending segment of `bundle` (each `len` bytes) and finishes it.
pub fn fill(bundle: &Bundle, len: usize) {
    for id in bundle.pending_segments() {
        write(bundle, &id, &segment_bytes(&id, len));
    }
    bundle.mark_finished().unwrap();
}

pub fn write(bundle: &Bundle, id: &stowage_bundle::SegmentId, bytes: &[u8]) {
    let mut writer = bundle.segment_writer(id).unwrap();
    writer.write(bytes).unwrap();
    writer.finish().unwrap();
}

/// A store holding the finished test asset `a` (segments of 5000 bytes) with PNG artwork.
pub fn store(dir: &Path) -> StorageManager {
    let store = StorageManager::new(dir.join("store"));
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    let bundle = store.create_bundle(plan("a", "The <Test> Asset").artwork(Artwork::new(png))).unwrap();
    fill(&bundle, 5000);
    store
}

/// One HTTP/1.1 exchange as seen on the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` (the request line and headers, without the blank line) with `Connection: close` and
/// reads the whole reply.
///
/// A server that refuses a request before reading all of it (a header over its limit) answers and closes
/// with the rest unread, which resets the connection: the client's write may then fail, and its read ends
/// in a reset after the answer. Both are taken as the end of the exchange, as a browser takes them; the
/// answer must still have come.
pub fn raw(addr: SocketAddr, request: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let whole = format!("{request}\r\nConnection: close\r\n\r\n");
    if let Err(e) = stream.write_all(whole.as_bytes()) {
        assert!(is_reset(&e), "sending the request: {e}");
    }
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_reset(&e) && !bytes.is_empty() => break,
            Err(e) => panic!("reading the reply after {} bytes: {e}", bytes.len()),
        }
    }
    parse_reply(&bytes)
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
}

pub fn parse_reply(bytes: &[u8]) -> Reply {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete header");
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply { status, headers, body: bytes[end + 4..].to_vec() }
}

/// `GET path` with optional extra header lines.
pub fn get(addr: SocketAddr, path: &str, extra: &[&str]) -> Reply {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}", addr.port());
    for line in extra {
        request.push_str("\r\n");
        request.push_str(line);
    }
    raw(addr, &request)
}
