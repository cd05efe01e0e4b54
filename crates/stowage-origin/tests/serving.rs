//! Plain serving over HTTP/1.1: ranges, validators, HEAD, the request log and connection reuse.

mod support;

use stowage_origin::{Files, Origin, OriginConfig, Resource};
use support::{Conn, get, pattern};

fn origin_with(len: usize) -> (Origin, Vec<u8>) {
    let body = pattern(len);
    let files = Files::new().with_bytes("/v/seg.ts", body.clone());
    (Origin::start(files, OriginConfig::default()).unwrap(), body)
}

#[test]
fn full_range_and_head_answers() {
    let (origin, body) = origin_with(100_000);
    let full = get(origin.addr(), "/v/seg.ts", "");
    assert_eq!(full.status, 200);
    assert_eq!(full.body, body);
    assert_eq!(full.header("content-type"), Some("video/mp2t"));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("last-modified"), Some("Mon, 01 Jan 2024 00:00:00 GMT"));
    assert!(full.header("etag").is_some_and(|e| e.starts_with('"')));

    let part = get(origin.addr(), "/v/seg.ts", "Range: bytes=1000-1999\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/100000"));
    assert_eq!(part.body, body[1000..2000]);

    let suffix = get(origin.addr(), "/v/seg.ts", "Range: bytes=-10\r\n");
    assert_eq!((suffix.status, &suffix.body[..]), (206, &body[99_990..]));

    let open = get(origin.addr(), "/v/seg.ts", "Range: bytes=99000-\r\n");
    assert_eq!((open.status, &open.body[..]), (206, &body[99_000..]));

    let past = get(origin.addr(), "/v/seg.ts", "Range: bytes=100000-\r\n");
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */100000"));

    let mut conn = Conn::open(origin.addr());
    let head = conn.send("HEAD", "/v/seg.ts", "", false);
    assert_eq!((head.status, head.content_length()), (200, Some(100_000)));
    assert!(head.body.is_empty());
    // The connection is still usable: HEAD sent no body bytes.
    assert_eq!(conn.get("/v/seg.ts", "Range: bytes=0-0\r\n").body, body[..1]);

    assert_eq!(get(origin.addr(), "/nope", "").status, 404);
    assert_eq!(
        Conn::open(origin.addr()).send("POST", "/v/seg.ts", "Content-Length: 0\r\n", false).status,
        405
    );
}

#[test]
fn if_range_honours_etag_and_last_modified() {
    let (origin, body) = origin_with(5000);
    let etag = get(origin.addr(), "/v/seg.ts", "").header("etag").unwrap().to_owned();

    let same = get(origin.addr(), "/v/seg.ts", &format!("Range: bytes=10-19\r\nIf-Range: {etag}\r\n"));
    assert_eq!((same.status, &same.body[..]), (206, &body[10..20]));
    let date =
        get(origin.addr(), "/v/seg.ts", "Range: bytes=10-19\r\nIf-Range: Mon, 01 Jan 2024 00:00:00 GMT\r\n");
    assert_eq!(date.status, 206);

    // The file changes: the old validator no longer matches, so the whole new body comes back.
    origin.files().insert("/v/seg.ts", Resource::new(pattern(6000), "video/mp2t"));
    let changed = get(origin.addr(), "/v/seg.ts", &format!("Range: bytes=10-19\r\nIf-Range: {etag}\r\n"));
    assert_eq!((changed.status, changed.body.len()), (200, 6000));
    let weak = get(origin.addr(), "/v/seg.ts", &format!("Range: bytes=10-19\r\nIf-Range: W/{etag}\r\n"));
    assert_eq!(weak.status, 200);
}

#[test]
fn the_log_records_requests_and_connection_reuse() {
    let (origin, _) = origin_with(3000);
    let mut conn = Conn::open(origin.addr());
    conn.get("/v/seg.ts?token=a", "Range: bytes=0-99\r\n");
    conn.get("/v/seg.ts", "");
    get(origin.addr(), "/missing", "");

    let log = origin.log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].path, "/v/seg.ts");
    assert_eq!(log[0].query.as_deref(), Some("token=a"));
    assert_eq!(log[0].range.as_deref(), Some("bytes=0-99"));
    assert_eq!((log[0].status, log[0].bytes_sent, log[0].completed), (206, 100, true));
    assert_eq!((log[1].status, log[1].bytes_sent, log[1].completed), (200, 3000, true));
    assert_eq!(log[0].connection, log[1].connection, "same keep-alive connection");
    assert_ne!(log[1].connection, log[2].connection);
    assert_eq!(log[2].status, 404);
    assert_eq!(log[1].version, http::Version::HTTP_11);
    assert_eq!(origin.request_count("/v/seg.ts"), 2);
    origin.clear_log();
    assert!(origin.log().is_empty());
}

#[test]
fn shutdown_releases_the_port() {
    let (origin, _) = origin_with(10);
    let addr = origin.addr();
    assert_eq!(get(addr, "/v/seg.ts", "").status, 200);
    origin.shutdown();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn an_asset_loaded_from_a_directory_is_served_encrypted() {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    use stowage_origin::hls::{EncryptOptions, encrypt_master, sequence_iv};

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("v")).unwrap();
    std::fs::write(
        dir.path().join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv/index.m3u8\n",
    )
    .unwrap();
    let media =
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:2,\ns0.ts\n#EXTINF:2,\ns1.ts\n";
    std::fs::write(dir.path().join("v/index.m3u8"), media).unwrap();
    std::fs::write(dir.path().join("v/s0.ts"), pattern(1880)).unwrap();
    std::fs::write(dir.path().join("v/s1.ts"), pattern(940)).unwrap();

    let files = Files::new();
    // The clear copy and the encrypted copy side by side.
    assert_eq!(files.load_dir("/clear", dir.path()).unwrap(), 4);
    assert_eq!(files.load_dir("/enc", dir.path()).unwrap(), 4);
    let done =
        encrypt_master(&files, "/enc/master.m3u8", &EncryptOptions::default().rotate_every(1)).unwrap();
    assert_eq!(done.len(), 1);
    let origin = Origin::start(files, OriginConfig::default()).unwrap();

    let mut conn = Conn::open(origin.addr());
    let playlist = String::from_utf8(conn.get("/enc/v/index.m3u8", "").body).unwrap();
    assert_eq!(playlist.matches("#EXT-X-KEY:METHOD=AES-128,URI=\"key").count(), 2);
    for (n, segment) in ["s0.ts", "s1.ts"].iter().enumerate() {
        let key: [u8; 16] = conn.get(&format!("/enc/v/key{n}.key"), "").body.try_into().unwrap();
        let encrypted = conn.get(&format!("/enc/v/{segment}"), "").body;
        let clear = conn.get(&format!("/clear/v/{segment}"), "").body;
        let iv = sequence_iv(3 + n as u64);
        let decrypted = cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&encrypted)
            .unwrap();
        assert_eq!(decrypted, clear, "{segment}");
        assert_ne!(encrypted[..clear.len()], clear[..]);
    }
}
