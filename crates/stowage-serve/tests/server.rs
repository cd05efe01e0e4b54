//! The server over real sockets: what it serves and how (media types, ranges, validators, HEAD, cache
//! rules), what it refuses (traversal, the bundle's bookkeeping, links out of the bundle, other hosts),
//! the bounds of connections, HTTP/2 and TLS, CORS, access marking, derived playlists and subtitles, and
//! the page.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use stowage_bundle::{Artwork, PurgeReason, StorageManager, StoragePolicy};
use stowage_serve::{ServeConfig, Server, TlsConfig};

/// A server on its own runtime, as an application embedding it would run it.
struct Running {
    server: Option<Server>,
    runtime: tokio::runtime::Runtime,
}

impl Running {
    fn start(store: StorageManager, config: ServeConfig) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let server =
            runtime.block_on(Server::bind_with("127.0.0.1:0".parse().unwrap(), store, config)).unwrap();
        Self { server: Some(server), runtime }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

fn serve(store: StorageManager) -> Running {
    Running::start(store, ServeConfig::default())
}

#[test]
fn bundle_files_are_served_with_media_types_validators_and_cache_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let dir = store.bundle_path("a").unwrap();
    let server = serve(store);
    let cases = [
        ("master.m3u8", "application/vnd.apple.mpegurl"),
        ("video/index.m3u8", "application/vnd.apple.mpegurl"),
        ("video/seg-d0-s1.ts", "video/mp2t"),
        ("audio-fr/seg-d0-s2.ts", "video/mp2t"),
        ("subs-en/seg-d0-s0.vtt", "text/vtt; charset=utf-8"),
        ("artwork.png", "image/png"),
    ];
    for (path, media_type) in cases {
        let reply = get(server.addr(), &format!("/asset/a/{path}"), &[]);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some(media_type), "{path}");
        assert_eq!(reply.body, std::fs::read(dir.join(path)).unwrap(), "{path}");
        assert_eq!(reply.header("content-length").unwrap(), reply.body.len().to_string());
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}: a finished bundle revalidates");
        assert_eq!(reply.header("accept-ranges"), Some("bytes"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert!(reply.header("etag").is_some_and(|e| e.starts_with('"')), "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), None, "no CORS unless configured");
        assert_eq!(reply.header("content-security-policy"), Some("default-src 'none'; sandbox"), "{path}");
    }
    // The local master playlist points at the local media playlists, which the server also serves.
    let master = get(server.addr(), "/asset/a/master.m3u8", &[]).text();
    assert!(master.contains("video/index.m3u8") && master.contains("audio-fr/index.m3u8"), "{master}");
}

#[test]
fn ranges_at_the_edges() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let whole = std::fs::read(store.bundle_path("a").unwrap().join("video/seg-d0-s0.ts")).unwrap();
    let len = whole.len();
    let server = serve(store);
    let range =
        |value: &str| get(server.addr(), "/asset/a/video/seg-d0-s0.ts", &[&format!("Range: {value}")]);
    let expect = |value: &str, start: usize, end: usize| {
        let reply = range(value);
        assert_eq!(reply.status, 206, "{value}");
        assert_eq!(
            reply.header("content-range").unwrap(),
            format!("bytes {start}-{}/{len}", end - 1),
            "{value}"
        );
        assert_eq!(reply.body, &whole[start..end], "{value}");
    };
    expect("bytes=0-0", 0, 1);
    expect("bytes=0-99", 0, 100);
    expect("bytes=100-", 100, len);
    expect(&format!("bytes={}-", len - 1), len - 1, len);
    expect(&format!("bytes=10-{}", len * 2), 10, len);
    expect("bytes=-10", len - 10, len);
    expect(&format!("bytes=-{}", len * 3), 0, len);
    for past in [format!("bytes={len}-"), format!("bytes={}-{}", len + 5, len + 10), "bytes=-0".to_owned()] {
        let reply = range(&past);
        assert_eq!(reply.status, 416, "{past}");
        assert_eq!(reply.header("content-range").unwrap(), format!("bytes */{len}"));
        assert!(reply.body.is_empty());
    }
    // Ignored ranges give the whole file: several ranges, another unit, a malformed one.
    for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=x-"] {
        let reply = range(ignored);
        assert_eq!((reply.status, reply.body.len()), (200, len), "{ignored}");
    }
    // If-Range with another entity tag: the whole file; with this one: the range.
    let tag = get(server.addr(), "/asset/a/video/seg-d0-s0.ts", &[]).header("etag").unwrap().to_owned();
    let stale = get(
        server.addr(),
        "/asset/a/video/seg-d0-s0.ts",
        &["Range: bytes=0-9", "If-Range: \"0000000000000001\""],
    );
    assert_eq!((stale.status, stale.body.len()), (200, len));
    let fresh =
        get(server.addr(), "/asset/a/video/seg-d0-s0.ts", &["Range: bytes=0-9", &format!("If-Range: {tag}")]);
    assert_eq!((fresh.status, fresh.body.len()), (206, 10));
}

#[test]
fn head_and_if_none_match() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(store(tmp.path()));
    let path = "/asset/a/audio-en/seg-d0-s1.ts";
    let full = get(server.addr(), path, &[]);
    let head = raw(server.addr(), &format!("HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1"));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
    for name in ["content-length", "content-type", "etag", "cache-control", "accept-ranges"] {
        assert_eq!(head.header(name), full.header(name), "{name}");
    }
    let head_range =
        raw(server.addr(), &format!("HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=-5"));
    assert_eq!((head_range.status, head_range.header("content-length")), (206, Some("5")));

    let tag = full.header("etag").unwrap();
    for validator in [tag.to_owned(), format!("\"nope\", W/{tag}"), "*".to_owned()] {
        let reply = get(server.addr(), path, &[&format!("If-None-Match: {validator}")]);
        assert_eq!(reply.status, 304, "{validator}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("etag"), Some(tag));
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
    }
    assert_eq!(get(server.addr(), path, &["If-None-Match: \"nope\""]).status, 200);
    // Other methods are refused.
    let post = raw(server.addr(), &format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0"));
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
}

#[test]
fn traversal_and_the_bundles_bookkeeping_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    std::fs::write(tmp.path().join("secret.txt"), "the secret").unwrap();
    std::fs::write(store.dir().join("a/video/seg-d0-s1.ts.part"), "partial").unwrap();
    std::fs::write(store.dir().join("a/video/notes.txt"), "notes").unwrap();
    let server = serve(store);
    let targets = [
        "/asset/a/manifest.json",
        "/asset/a/journal.log",
        "/asset/a/.lock",
        "/asset/a/source/master.m3u8",
        "/asset/a/source/video.m3u8",
        "/asset/a/video/seg-d0-s1.ts.part",
        "/asset/a/video/notes.txt",
        "/asset/a/video/",
        "/asset/a/video",
        "/asset/a/",
        "/asset/a",
        "/asset/",
        "/asset",
        "/asset/a/../a/manifest.json",
        "/asset/a/video/../manifest.json",
        "/asset/a/%2e%2e/a/manifest.json",
        "/asset/a/video/%2E%2E/manifest.json",
        "/asset/a/video%2f..%2fmanifest.json",
        "/asset/a/video%2Findex.m3u8",
        "/asset/%2e%2e/secret.txt",
        "/asset/..%2f..%2fsecret.txt",
        "/asset/a/%2fetc%2fpasswd",
        "/asset/a/..%5cmanifest.json",
        "/asset/a//video/index.m3u8",
        "//etc/passwd",
        "/asset/a/./master.m3u8",
        "/asset/a/master.m3u8%00",
        "/static/../asset/a/manifest.json",
        "/static/page.css/..",
        "http://127.0.0.1/asset/a/manifest.json",
        "/etc/passwd",
    ];
    for target in targets {
        let reply = raw(server.addr(), &format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1"));
        assert!(matches!(reply.status, 400 | 404), "{target}: {} {}", reply.status, reply.text());
        let body = reply.text();
        assert!(
            !body.contains("stowage-bundle") && !body.contains("stowage-journal") && !body.contains("secret"),
            "{target} leaked: {body}"
        );
    }
    // The same names through HTTP/2 requests are refused alike (the path is the server's to check).
    assert_eq!(get(server.addr(), "/asset/a/master.m3u8", &[]).status, 200, "the bundle itself is served");
}

#[test]
fn links_planted_in_a_bundle_are_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let secret = tmp.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("seg-d0-s0.ts"), "the secret").unwrap();
    std::fs::write(secret.join("index.m3u8"), "#EXTM3U\n# the secret\n").unwrap();
    let a = store.dir().join("a");
    // A segment that is a link to a file outside.
    std::fs::remove_file(a.join("video/seg-d0-s0.ts")).unwrap();
    std::os::unix::fs::symlink(secret.join("seg-d0-s0.ts"), a.join("video/seg-d0-s0.ts")).unwrap();
    // A rendition folder that is a link to a folder outside.
    std::fs::rename(a.join("audio-fr"), tmp.path().join("audio-fr-real")).unwrap();
    std::os::unix::fs::symlink(&secret, a.join("audio-fr")).unwrap();
    // A second bundle whose folder is a link out of the store.
    let other = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    let outside = StorageManager::new(&other);
    fill(&outside.create_bundle(plan("b", "B")).unwrap(), 100);
    std::os::unix::fs::symlink(other.join("b"), store.dir().join("b")).unwrap();
    let server = serve(store);
    for path in ["/asset/a/video/seg-d0-s0.ts", "/asset/a/audio-fr/index.m3u8", "/asset/b/master.m3u8"] {
        let reply = get(server.addr(), path, &[]);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        assert!(!reply.text().contains("secret"), "{path}");
    }
    assert_eq!(get(server.addr(), "/asset/a/video/seg-d0-s1.ts", &[]).status, 200);
    let page = get(server.addr(), "/", &[]).text();
    assert!(!page.contains("asset-b"), "a linked folder is not listed as a bundle");
}

#[test]
fn growing_playlists_are_not_stored_and_never_served_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path().join("store"));
    // Many segments, so that each playlist rewrite takes long enough to be caught in the middle.
    let mut big = plan("g", "Growing");
    big.renditions.truncate(1);
    big.renditions[0] = stowage_bundle::RenditionPlan::from_playlist(
        stowage_bundle::RenditionId::new("video").unwrap(),
        stowage_bundle::RenditionKind::Video,
        "https://cdn.example/v/index.m3u8",
        media_playlist(3000, "ts"),
    )
    .unwrap()
    .master_uri("v/index.m3u8")
    .primary(true);
    let bundle = store.create_bundle(big).unwrap();
    let server = serve(store);
    let reply = get(server.addr(), "/asset/g/video/index.m3u8", &[]);
    assert_eq!(reply.header("cache-control"), Some("no-store"), "an unfinished bundle's playlist");
    assert_eq!(get(server.addr(), "/asset/g/master.m3u8", &[]).header("cache-control"), Some("no-store"));

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for (n, id) in bundle.pending_segments().into_iter().enumerate() {
                write(&bundle, &id, &[0x47; 188]);
                // As a download does: rewritten as the bundle grows, and at most every few segments here.
                if n % 50 == 0 {
                    assert!(bundle.write_growing_playlists().unwrap());
                }
                if n >= 1500 || done.load(Ordering::Relaxed) {
                    break;
                }
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    while !done.load(Ordering::Relaxed) {
        let reply = get(server.addr(), "/asset/g/video/index.m3u8", &[]);
        assert_eq!(reply.status, 200);
        let text = reply.text();
        assert_eq!(reply.header("content-length").unwrap(), reply.body.len().to_string());
        let parsed = stowage_playlist::MediaPlaylist::parse(text.as_str())
            .unwrap_or_else(|e| panic!("a served playlist does not parse: {e}\n{text}"));
        assert!(!parsed.is_ended() && text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        // A whole playlist: it ends where a writer ends one, after its last segment's URI line (or its
        // header, before the first segment is stored).
        assert!(
            text.ends_with(".ts\n") || text.ends_with("#EXT-X-START:TIME-OFFSET=0\n"),
            "cut short: {:?}",
            &text[text.len() - 40..]
        );
        seen.insert(parsed.segments().len());
    }
    writer.join().unwrap();
    assert!(seen.len() > 3, "the playlist was seen growing: {seen:?}");
}

/// A TLS certificate for 127.0.0.1 and localhost, and a client configuration that trusts it.
fn tls_pair() -> (TlsConfig, Arc<rustls::ClientConfig>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let server = TlsConfig::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (server, Arc::new(client))
}

/// One request over hyper's client on `io`, HTTP/2 or HTTP/1.1.
async fn hyper_get<IO>(io: IO, h2: bool, uri: &str) -> (http::Version, u16, Vec<u8>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::{BodyExt, Empty};
    let io = hyper_util::rt::TokioIo::new(io);
    let request = http::Request::get(uri).body(Empty::<bytes::Bytes>::new()).unwrap();
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let mut request = request;
        request.headers_mut().insert(http::header::HOST, http::HeaderValue::from_static("127.0.0.1"));
        sender.send_request(request).await.unwrap()
    };
    let (version, status) = (response.version(), response.status().as_u16());
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    (version, status, body)
}

#[test]
fn http2_with_and_without_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let segment = std::fs::read(store.dir().join("a/video/seg-d0-s2.ts")).unwrap();
    let (tls, client) = tls_pair();
    let plain = Running::start(store.clone(), ServeConfig::default());
    let secure = Running::start(store, ServeConfig::default().tls(tls));
    assert!(secure.server.as_ref().unwrap().url().starts_with("https://127.0.0.1:"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // h2c with prior knowledge.
        let tcp = tokio::net::TcpStream::connect(plain.addr()).await.unwrap();
        let uri = format!("http://127.0.0.1:{}/asset/a/video/seg-d0-s2.ts", plain.addr().port());
        let (version, status, body) = hyper_get(tcp, true, &uri).await;
        assert_eq!((version, status), (http::Version::HTTP_2, 200));
        assert_eq!(body, segment);
        // HTTPS: HTTP/2 and HTTP/1.1 by ALPN.
        for (alpn, h2, expected) in
            [(&b"h2"[..], true, http::Version::HTTP_2), (&b"http/1.1"[..], false, http::Version::HTTP_11)]
        {
            let mut config = (*client).clone();
            config.alpn_protocols = vec![alpn.to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = tokio::net::TcpStream::connect(secure.addr()).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let stream = connector.connect(name, tcp).await.unwrap();
            let uri = format!("https://127.0.0.1:{}/asset/a/video/seg-d0-s2.ts", secure.addr().port());
            let (version, status, body) = hyper_get(stream, h2, &uri).await;
            assert_eq!((version, status), (expected, 200));
            assert_eq!(body, segment);
        }
        // HTTP/2 requests for the bundle's bookkeeping are refused alike.
        let tcp = tokio::net::TcpStream::connect(plain.addr()).await.unwrap();
        let uri = format!("http://127.0.0.1:{}/asset/a/%2e%2e/a/manifest.json", plain.addr().port());
        let (_, status, _) = hyper_get(tcp, true, &uri).await;
        assert_eq!(status, 404);
    });
}

#[test]
fn tls_settings_are_checked() {
    let bad = TlsConfig::from_pem(b"not pem", b"not pem");
    assert!(matches!(bad, Err(stowage_serve::Error::Tls { .. })), "{bad:?}");
    let missing = TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem");
    assert!(matches!(missing, Err(stowage_serve::Error::Read { .. })));
}

#[test]
fn loopback_only_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let refused = runtime.block_on(Server::bind("0.0.0.0:0".parse().unwrap(), store.clone()));
    assert!(matches!(refused, Err(stowage_serve::Error::NotLoopback { .. })), "{refused:?}");
    let allowed = runtime.block_on(Server::bind_with(
        "0.0.0.0:0".parse().unwrap(),
        store.clone(),
        ServeConfig::default().allow_remote(true),
    ));
    runtime.block_on(allowed.unwrap().shutdown());

    let server = serve(store);
    for host in ["localhost", "127.0.0.1", "[::1]:8080", "LOCALHOST:1", "127.1.2.3"] {
        let reply = raw(server.addr(), &format!("GET /asset/a/master.m3u8 HTTP/1.1\r\nHost: {host}"));
        assert_eq!(reply.status, 200, "{host}");
    }
    // A page of another site that made its own name resolve to 127.0.0.1 (DNS rebinding) sends its name.
    for host in ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "[::2]"] {
        let reply = raw(server.addr(), &format!("GET /asset/a/master.m3u8 HTTP/1.1\r\nHost: {host}"));
        assert_eq!(reply.status, 403, "{host}");
    }
}

#[test]
fn cors_only_for_the_origin_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let server =
        Running::start(store(tmp.path()), ServeConfig::default().cors_origin("https://player.example"));
    let path = "/asset/a/video/index.m3u8";
    let allowed = get(server.addr(), path, &["Origin: https://player.example"]);
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://player.example"));
    assert!(allowed.header("access-control-expose-headers").unwrap().contains("Content-Range"));
    assert_eq!(allowed.header("vary"), Some("Origin"));
    let other = get(server.addr(), path, &["Origin: https://evil.example"]);
    assert_eq!((other.status, other.header("access-control-allow-origin")), (200, None));
    let preflight = raw(
        server.addr(),
        &format!(
            "OPTIONS {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://player.example\r\n\
             Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: range"
        ),
    );
    assert_eq!(preflight.status, 204);
    assert!(preflight.header("access-control-allow-headers").unwrap().contains("Range"));
    let refused = raw(
        server.addr(),
        &format!(
            "OPTIONS {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\n\
             Access-Control-Request-Method: GET"
        ),
    );
    assert_eq!(refused.status, 403);
    let config = ServeConfig::default().cors_origin("https://a.example, https://b.example");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bad = runtime.block_on(Server::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        StorageManager::new(tmp.path()),
        config,
    ));
    assert!(matches!(bad, Err(stowage_serve::Error::Config { name: "cors_origin", .. })));
}

/// The size of the segment a stalled client asks for: more than loopback's socket buffers take.
const BIG: usize = 48 * 1024 * 1024;

#[test]
fn requests_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let config = ServeConfig::default()
        .header_read_timeout(Duration::from_millis(500))
        .idle_timeout(Duration::from_millis(800))
        .max_connections(2);
    let store = store(tmp.path());
    // One segment larger than what the sockets' buffers hold.
    let mut big = plan("big", "Big");
    big.renditions.truncate(1);
    big.renditions[0] = stowage_bundle::RenditionPlan::from_playlist(
        stowage_bundle::RenditionId::new("video").unwrap(),
        stowage_bundle::RenditionKind::Video,
        "https://cdn.example/v/index.m3u8",
        media_playlist(1, "ts"),
    )
    .unwrap()
    .primary(true);
    fill(&store.create_bundle(big).unwrap(), BIG);
    let server = Running::start(store, config);
    let addr = server.addr();

    // A header over the limit.
    let long = format!("X-Long: {}", "x".repeat(20_000));
    assert_eq!(get(addr, "/asset/a/master.m3u8", &[&long]).status, 431);

    // A client that starts a header and never ends it is cut off after the header timeout.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(b"GET /asset/a/master.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(5), "cut after {took:?}");
    drop(slow);

    // A client that asks for a large response and stops reading is cut off once nothing moves.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stalled, "GET /asset/big/video/seg-d0-s0.ts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    stalled.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(5), "the connection stayed open");
    assert!(rest.len() < BIG, "the whole response was sent to a client that did not read: {}", rest.len());

    // An idle keep-alive connection is closed (HTTP/1.1: when no next request header comes in time).
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(idle, "GET /asset/a/master.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = idle.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    assert!(started.elapsed() < Duration::from_secs(5), "an idle connection stays open");

    // At most two connections are served at once; a third waits until one closes.
    let hold = |s: &mut TcpStream| {
        write!(s, "GET /asset/a/master.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut b = [0u8; 12];
        s.read_exact(&mut b).unwrap();
    };
    let mut one = TcpStream::connect(addr).unwrap();
    let mut two = TcpStream::connect(addr).unwrap();
    hold(&mut one);
    hold(&mut two);
    let mut three = TcpStream::connect(addr).unwrap();
    three.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    write!(three, "GET /asset/a/master.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut b = [0u8; 12];
    assert!(three.read_exact(&mut b).is_err(), "a third connection is not served while two are open");
    drop(one);
    three.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    three.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"HTTP/1.1 200");
}

#[test]
fn playing_marks_the_bundle_accessed_and_holds_it_also_while_it_downloads() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    // A writer holds the bundle, as a download running would.
    let writer = store.open_bundle("a").unwrap();
    let manifest = store.dir().join("a/manifest.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let long_ago = "2020-01-01T00:00:00Z";
    json["accessed"] = long_ago.into();
    std::fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
    let reader = StorageManager::new(store.dir());
    let summary = || reader.list().unwrap().bundles.into_iter().next().unwrap();
    let server = serve(store);
    assert_eq!(get(server.addr(), "/", &[]).status, 200);
    assert_eq!(get(server.addr(), "/asset/a/artwork.png", &[]).status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(summary().accessed, then, "the page does not mark access");
    assert_eq!(summary().playing_until, None, "the page does not hold the asset");

    let before = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(get(server.addr(), "/asset/a/video/seg-d0-s0.ts", &[]).status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while summary().playing_until.is_none() {
        assert!(Instant::now() < deadline, "playing a segment did not hold the asset");
        std::thread::sleep(Duration::from_millis(20));
    }
    let held = summary();
    assert!(held.is_playing(SystemTime::now() + Duration::from_secs(60)), "{:?}", held.playing_until);
    assert!(!held.is_playing(SystemTime::now() + Duration::from_secs(200)), "{:?}", held.playing_until);
    assert_eq!(held.accessed, then, "segments hold the asset but do not mark access");

    assert_eq!(get(server.addr(), "/asset/a/master.m3u8", &[]).status, 200);
    while summary().accessed == then {
        assert!(Instant::now() < deadline, "playing did not mark the bundle accessed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(summary().accessed >= before, "{:?}", summary().accessed);
    assert!(summary().in_use, "the writer still holds it");
    drop(writer);
}

#[test]
fn expired_assets_are_removed_when_the_server_starts_but_not_played_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let past = SystemTime::now() - Duration::from_secs(60);
    for id in ["expired", "played"] {
        let bundle = store.create_bundle(plan(id, id)).unwrap();
        fill(&bundle, 1000);
        bundle.mark_finished().unwrap();
        drop(bundle);
        store.set_policy(id, StoragePolicy::new().expires(past)).unwrap();
    }
    store.mark_playing("played", SystemTime::now() + Duration::from_secs(120)).unwrap();
    let running = serve(store.clone());
    let report = running.server.as_ref().unwrap().removed_at_start().unwrap();
    let removed: Vec<(&str, PurgeReason)> =
        report.removed.iter().map(|r| (r.asset.id.as_str(), r.reason)).collect();
    assert_eq!(removed, vec![("expired", PurgeReason::Expired)]);
    assert_eq!(report.skipped_playing, vec![store.bundle_path("played").unwrap()]);
    assert_eq!(get(running.addr(), "/asset/expired/master.m3u8", &[]).status, 404);
    assert_eq!(get(running.addr(), "/asset/played/master.m3u8", &[]).status, 200);
    assert_eq!(get(running.addr(), "/asset/a/master.m3u8", &[]).status, 200);
}

#[test]
fn a_master_per_audio_choice_and_subtitles_as_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(store(tmp.path()));
    let reply = get(server.addr(), "/asset/a/master.m3u8?audio=audio-fr", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/vnd.apple.mpegurl"));
    let text = reply.text();
    assert!(text.contains("audio-fr/index.m3u8") && !text.contains("audio-en"), "{text}");
    assert!(!text.contains("SUBTITLES"), "{text}");
    let tag = reply.header("etag").unwrap();
    assert_eq!(
        get(server.addr(), "/asset/a/master.m3u8?audio=audio-fr", &[&format!("If-None-Match: {tag}")]).status,
        304
    );
    for missing in [
        "/asset/a/master.m3u8?audio=audio-de",
        "/asset/a/master.m3u8?audio=subs-en",
        "/asset/a/master.m3u8?audio=..%2f",
    ] {
        assert_eq!(get(server.addr(), missing, &[]).status, 404, "{missing}");
    }

    let vtt = get(server.addr(), "/asset/a/subs-en/subtitles.vtt", &[]);
    assert_eq!(vtt.status, 200);
    assert_eq!(vtt.header("content-type"), Some("text/vtt; charset=utf-8"));
    let text = vtt.text();
    assert!(text.starts_with("WEBVTT\n\n"), "{text}");
    // Each segment's cue once, and the cues that span a boundary joined into one.
    for i in 0..3 {
        assert_eq!(text.matches(&format!("Line {i}\n")).count(), 1, "{text}");
    }
    assert_eq!(text.matches("Across 0\n").count(), 1, "{text}");
    assert!(text.contains("00:00:01.500 --> 00:00:02.500\nAcross 0"), "{text}");
    assert!(text.contains("00:00:04.250 --> 00:00:05.000\nLine 2"), "{text}");
    for missing in
        ["/asset/a/video/subtitles.vtt", "/asset/a/subs-de/subtitles.vtt", "/asset/zz/subs-en/subtitles.vtt"]
    {
        assert_eq!(get(server.addr(), missing, &[]).status, 404, "{missing}");
    }
}

#[test]
fn a_broken_subtitle_segment_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let store = StorageManager::new(tmp.path().join("store"));
    let bundle = store.create_bundle(plan("a", "A")).unwrap();
    for id in bundle.pending_segments() {
        let bytes = if id.rendition.as_str() == "subs-en" && id.media_sequence == 1 {
            b"WEBVTT\n\n00:00:02.000 --> 00:00:0x.000\nbad\n".to_vec()
        } else {
            segment_bytes(&id, 100)
        };
        write(&bundle, &id, &bytes);
    }
    bundle.mark_finished().unwrap();
    let server = serve(store);
    let reply = get(server.addr(), "/asset/a/subs-en/subtitles.vtt", &[]);
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("subs-en/seg-d0-s1.vtt: line 3: bad end time"), "{}", reply.text());
}

#[test]
fn the_page_and_its_json_show_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    // A partial download nobody is writing (suspended), and artwork of a type a browser must not run.
    let partial = store
        .create_bundle(
            plan("p", "Partial").artwork(Artwork::new(b"<script>".to_vec()).media_type("text/html")),
        )
        .unwrap();
    let first = partial.pending_segments()[0].clone();
    write(&partial, &first, &[1; 100]);
    drop(partial);
    std::fs::create_dir_all(store.dir().join("broken")).unwrap();
    std::fs::write(store.dir().join("broken/manifest.json"), "{}").unwrap();
    let server = serve(store);
    let page = get(server.addr(), "/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
    let html = page.text();
    assert!(html.contains("The &lt;Test&gt; Asset") && !html.contains("<Test>"), "titles are escaped");
    assert!(html.contains("<img src=\"/asset/a/artwork.png\""), "artwork is shown");
    assert!(html.contains("data-state=\"complete\"") && html.contains("data-state=\"suspended\""));
    assert!(
        html.contains("<option value=\"audio-fr\" data-language=\"fr\">Français (fr)</option>"),
        "{html}"
    );
    assert!(html.contains("<option value=\"subs-en\" data-language=\"en\">English (en)</option>"));
    assert!(html.contains("1 of 12 segments"), "progress from the journal");
    assert!(html.contains("0:06"), "duration");
    assert!(html.contains("broken"), "an unreadable folder is reported");
    assert!(!html.contains("/asset/p/artwork"), "artwork that is not an image is not shown");
    assert_eq!(get(server.addr(), "/asset/p/artwork.bin", &[]).status, 404, "nor served");

    let json: serde_json::Value =
        serde_json::from_slice(&get(server.addr(), "/api/assets", &[]).body).unwrap();
    let assets = json["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2);
    assert_eq!(assets[0]["id"], "a");
    assert_eq!(assets[0]["state"], "complete");
    assert_eq!(assets[0]["artwork"], "/asset/a/artwork.png");
    assert_eq!(assets[0]["audio"][1]["id"], "audio-fr");
    assert_eq!(assets[1]["state"], "suspended");
    assert_eq!(assets[1]["segments_finished"], 1);
    assert_eq!(json["unreadable"][0]["id"], "broken");

    for (path, media_type) in [("/static/page.css", "text/css"), ("/static/page.js", "text/javascript")] {
        let reply = get(server.addr(), path, &[]);
        assert_eq!(reply.status, 200);
        assert!(reply.header("content-type").unwrap().starts_with(media_type));
    }
    assert_eq!(get(server.addr(), "/static/other.js", &[]).status, 404);
}

#[test]
fn shutdown_lets_a_response_in_flight_finish_and_takes_no_new_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let mut big = plan("big", "Big");
    big.renditions.truncate(1);
    big.renditions[0] = stowage_bundle::RenditionPlan::from_playlist(
        stowage_bundle::RenditionId::new("video").unwrap(),
        stowage_bundle::RenditionKind::Video,
        "https://cdn.example/v/index.m3u8",
        media_playlist(1, "ts"),
    )
    .unwrap()
    .primary(true);
    fill(&store.create_bundle(big).unwrap(), 16 * 1024 * 1024);
    let mut server = Running::start(store, ServeConfig::default());
    let addr = server.addr();
    // A response larger than the sockets' buffers, read slowly while the server shuts down.
    let mut reading = TcpStream::connect(addr).unwrap();
    reading.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(reading, "GET /asset/big/video/seg-d0-s0.ts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    reading.read_exact(&mut first).unwrap();
    let handle = server.server.take().unwrap();
    let shutdown = server.runtime.spawn(handle.shutdown());
    std::thread::sleep(Duration::from_millis(200));
    assert!(TcpStream::connect(addr).is_err(), "a new connection after shutdown began");
    let mut rest = Vec::new();
    reading.read_to_end(&mut rest).unwrap();
    let reply = parse_reply(&[&first[..], &rest].concat());
    assert_eq!((reply.status, reply.body.len()), (200, 16 * 1024 * 1024), "the response in flight finished");
    server.runtime.block_on(shutdown).unwrap();
}
