//! Proxies: requests tunnelled with CONNECT, with Basic credentials, for http and https origins.

mod common;

use std::sync::{Arc, Mutex};

use common::{data, quick};
use stowage_fetch::{Client, Error, ProxyConfig, Request, TlsConfig};
use stowage_origin::{Files, Origin, OriginConfig, TlsConfig as OriginTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A minimal CONNECT proxy; it records each CONNECT request head and refuses `denied.invalid`.
async fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let log = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                log.lock().unwrap().push(head.clone());
                let target = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                if target.starts_with("denied.invalid") {
                    let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
                    return;
                }
                let Ok(mut upstream) = TcpStream::connect(&target).await else { return };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (format!("http://user:p%40ss@{addr}"), heads)
}

#[tokio::test]
async fn http_and_https_through_a_connect_proxy() {
    let body = data(300_000);
    let plain =
        Origin::start(Files::new().with_bytes("/a.ts", body.clone()), OriginConfig::default()).unwrap();
    let secure = Origin::start(
        Files::new().with_bytes("/b.ts", body.clone()),
        OriginConfig::default().tls(OriginTls::default()),
    )
    .unwrap();
    let (proxy, heads) = connect_proxy().await;
    let tls = TlsConfig::default().add_root_certificates_pem(secure.ca_pem().unwrap());
    let client = Client::new(quick().proxy(ProxyConfig::all(proxy)).tls(tls)).unwrap();
    assert_eq!(client.get_bytes(Request::get(&plain.url("/a.ts")).unwrap()).await.unwrap(), body);
    let resp = client.get(Request::get(&secure.url("/b.ts")).unwrap()).await.unwrap();
    assert_eq!(resp.version(), stowage_fetch::Version::HTTP_2, "ALPN runs end to end through the tunnel");
    assert_eq!(resp.bytes().await.unwrap(), body);
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 2);
    assert!(heads[0].starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", plain.addr().port())));
    // "user:p@ss" in base64.
    assert!(heads[0].contains("Proxy-Authorization: Basic dXNlcjpwQHNz\r\n"), "{}", heads[0]);
    assert!(heads[1].starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", secure.addr().port())));
}

#[tokio::test]
async fn refused_tunnel_and_no_proxy_rules() {
    let (proxy, heads) = connect_proxy().await;
    let client =
        Client::new(quick().proxy(ProxyConfig::all(proxy.clone())).retry(stowage_fetch::RetryConfig::none()))
            .unwrap();
    let err = client.get_bytes(Request::get("http://denied.invalid/x").unwrap()).await.unwrap_err();
    assert!(matches!(&err, Error::Connect { message, .. } if message.contains("403")), "{err}");

    // NO_PROXY-style rules send matching hosts directly.
    let body = data(1000);
    let plain =
        Origin::start(Files::new().with_bytes("/a.ts", body.clone()), OriginConfig::default()).unwrap();
    let cfg =
        ProxyConfig::Explicit { http: Some(proxy), https: None, no_proxy: "localhost, 127.0.0.0/8".into() };
    let client = Client::new(quick().proxy(cfg)).unwrap();
    assert_eq!(client.get_bytes(Request::get(&plain.url("/a.ts")).unwrap()).await.unwrap(), body);
    assert_eq!(heads.lock().unwrap().len(), 1, "only the refused tunnel went to the proxy");

    let err = Client::new(quick().proxy(ProxyConfig::all("socks5://127.0.0.1:1"))).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}
