//! Plain HTTP/1.1 and h2c: bodies, streaming, connection reuse, headers, cookies, decoding, counters.

mod common;

use std::io::Write;

use common::{data, quick, serve};
use http_body_util::Full;
use stowage_fetch::{Bytes, Client, Error, HeaderName, HeaderValue, Request, Version};
use stowage_origin::{Files, Origin, OriginConfig};

fn origin_with(path: &str, body: Vec<u8>) -> Origin {
    Origin::start(Files::new().with_bytes(path, body), OriginConfig::default()).unwrap()
}

#[tokio::test]
async fn http1_body_in_chunks_and_keep_alive_reuse() {
    let body = data(3 << 20);
    let origin = origin_with("/seg.ts", body.clone());
    let client = Client::new(quick()).unwrap();
    for _ in 0..3 {
        let resp = client.get(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
        assert_eq!(resp.version(), Version::HTTP_11);
        assert_eq!(resp.content_length(), Some(body.len() as u64));
        assert_eq!(resp.uri(), origin.url("/seg.ts"));
        let mut b = resp.into_body();
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Some(c) = b.chunk().await.unwrap() {
            chunks += 1;
            got.extend_from_slice(&c);
        }
        assert!(chunks > 1, "a 3 MB body arrives in several chunks");
        assert_eq!(got, body);
    }
    let log = origin.log();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r.connection == log[0].connection), "one keep-alive connection");
    let c = client.counters();
    assert_eq!((c.requests, c.connections_opened, c.connections_reused, c.retries), (3, 1, 2, 0));
    assert_eq!(c.bytes_received, 3 * body.len() as u64);
    assert_eq!(c.hosts.len(), 1);
    assert_eq!(c.hosts[0].host, format!("127.0.0.1:{}", origin.addr().port()));
    assert_eq!(c.hosts[0].bytes_received, 3 * body.len() as u64);
}

#[tokio::test]
async fn h2c_prior_knowledge_multiplexes_on_one_connection() {
    let body = data(200_000);
    let origin = origin_with("/a.ts", body.clone());
    let client = Client::new(quick().http2_prior_knowledge(true)).unwrap();
    let url = origin.url("/a.ts");
    let gets = (0..6).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let resp = client.get(Request::get(&url).unwrap()).await.unwrap();
            assert_eq!(resp.version(), Version::HTTP_2);
            resp.bytes().await.unwrap()
        }
    });
    let handles: Vec<_> = gets.map(tokio::spawn).collect();
    for h in handles {
        assert_eq!(h.await.unwrap(), body);
    }
    let log = origin.log();
    assert_eq!(log.len(), 6);
    assert!(log.iter().all(|r| r.version == Version::HTTP_2 && r.connection == log[0].connection));
    assert_eq!(client.counters().connections_opened, 1);
}

#[tokio::test]
async fn headers_cookies_and_user_agent_are_sent() {
    let (addr, seen) = serve(|_| hyper::Response::new(Full::new(Bytes::from_static(b"ok")))).await;
    let client = Client::new(quick().user_agent("test-agent/9")).unwrap();
    let req = Request::get(&format!("http://127.0.0.1:{}/p", addr.port()))
        .unwrap()
        .header(HeaderName::from_static("x-token"), HeaderValue::from_static("abc"))
        .cookie("session", "s1")
        .cookie("cdn", "c2");
    assert_eq!(client.get_bytes(req).await.unwrap(), "ok");
    let seen = seen.lock().unwrap();
    let h = &seen[0];
    assert_eq!(h["user-agent"], "test-agent/9");
    assert_eq!(h["x-token"], "abc");
    assert_eq!(h["cookie"], "session=s1; cdn=c2");
    assert_eq!(h["accept-encoding"], "identity");
}

#[tokio::test]
async fn gzip_and_deflate_playlists_are_decoded() {
    let playlist: Vec<u8> = b"#EXTM3U\n#EXTINF:4,\nseg.ts\n".repeat(500);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&playlist).unwrap();
    let gz = Bytes::from(gz.finish().unwrap());
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(&playlist).unwrap();
    let zl = Bytes::from(zl.finish().unwrap());
    let (addr, seen) = serve(move |req| {
        let (enc, body) =
            if req.uri().path() == "/gz.m3u8" { ("gzip", gz.clone()) } else { ("deflate", zl.clone()) };
        hyper::Response::builder().header("content-encoding", enc).body(Full::new(body)).unwrap()
    })
    .await;
    let client = Client::new(quick()).unwrap();
    for path in ["/gz.m3u8", "/zl.m3u8"] {
        let req =
            Request::get(&format!("http://127.0.0.1:{}{path}", addr.port())).unwrap().decode_content(true);
        assert_eq!(client.get_bytes(req).await.unwrap(), playlist, "{path}");
    }
    assert_eq!(seen.lock().unwrap()[0]["accept-encoding"], "gzip, deflate, br");
}

#[tokio::test]
async fn brotli_playlist_is_decoded() {
    // Made with `brotli -q 11` from the plain file beside it.
    let plain = include_bytes!("fixtures/media.m3u8");
    let (addr, _) = serve(|_| {
        hyper::Response::builder()
            .header("content-encoding", "br")
            .body(Full::new(Bytes::from_static(include_bytes!("fixtures/media.m3u8.br"))))
            .unwrap()
    })
    .await;
    let client = Client::new(quick()).unwrap();
    let req =
        Request::get(&format!("http://127.0.0.1:{}/media.m3u8", addr.port())).unwrap().decode_content(true);
    let resp = client.get(req).await.unwrap();
    assert_eq!(resp.content_length(), Some(301), "the length checked is the encoded one");
    assert_eq!(resp.bytes().await.unwrap(), &plain[..]);
}

#[tokio::test]
async fn corrupt_and_unknown_encodings_are_errors() {
    let (addr, _) = serve(|req| {
        let enc = if req.uri().path() == "/bad" { "gzip" } else { "zstd" };
        hyper::Response::builder()
            .header("content-encoding", enc)
            .body(Full::new(Bytes::from_static(b"not compressed at all")))
            .unwrap()
    })
    .await;
    let client = Client::new(quick()).unwrap();
    for path in ["/bad", "/unknown"] {
        let req =
            Request::get(&format!("http://127.0.0.1:{}{path}", addr.port())).unwrap().decode_content(true);
        let err = client.get_bytes(req).await.unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{path}: {err}");
    }
}

#[tokio::test]
async fn response_size_limit() {
    let origin = origin_with("/big.ts", data(100_000));
    let client = Client::new(quick().max_response_size(50_000)).unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/big.ts")).unwrap()).await.unwrap_err();
    // The declared length is over the limit: refused before the body is read, with the numbers.
    assert!(
        matches!(err, Error::TooLarge { limit: 50_000, declared: Some(100_000), received: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("100000") && err.to_string().contains("50000"), "{err}");
    let ok = client.get_bytes(Request::get(&origin.url("/big.ts")).unwrap().max_size(100_000)).await.unwrap();
    assert_eq!(ok.len(), 100_000);
}

#[tokio::test]
async fn an_endless_body_stops_at_the_limit_with_the_numbers() {
    // No declared length: a body that goes on until the connection closes, and goes on long.
    let addr = common::raw_server(|_, _| {
        let mut steps = vec![common::Step::Send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec())];
        steps.extend((0..1000).map(|_| common::Step::Send(vec![0x47; 16 * 1024])));
        steps
    })
    .await;
    let uri = format!("http://{addr}/endless.ts");
    let client = Client::new(quick()).unwrap();
    let err = client.get_bytes(Request::get(&uri).unwrap().max_size(200_000)).await.unwrap_err();
    match &err {
        Error::TooLarge { uri: u, limit, declared, received } => {
            assert_eq!(u, &uri);
            assert_eq!((*limit, *declared), (200_000, None));
            // Stopped with the chunk that crossed the limit, not at the end of the 16 MB.
            assert!(*received > 200_000 && *received < 400_000, "{received}");
        }
        other => panic!("expected a body over the limit, got {other}"),
    }
    assert!(err.to_string().contains("200000") && err.to_string().contains(&uri), "{err}");
}

#[tokio::test]
async fn not_found_is_not_retried_and_bad_uris_are_typed() {
    let origin = origin_with("/a", data(10));
    let client = Client::new(quick()).unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/missing")).unwrap()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.uri(), Some(origin.url("/missing").as_str()));
    assert_eq!(origin.request_count("/missing"), 1);
    assert!(matches!(Request::get("file:///etc/passwd"), Err(Error::UnsupportedScheme { .. })));
    assert!(matches!(Request::get("/relative"), Err(Error::InvalidUri { .. })));
    assert!(matches!(Request::get("http://exa mple/"), Err(Error::InvalidUri { .. })));
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_after_retries() {
    // Bind then drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (events, on_retry) = common::recorder();
    let client = Client::new(quick().on_retry(on_retry)).unwrap();
    let err =
        client.get_bytes(Request::get(&format!("http://127.0.0.1:{port}/x")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert_eq!(events.lock().unwrap().len(), 4, "every retry is reported");
    assert_eq!(client.counters().retries, 4);
}
