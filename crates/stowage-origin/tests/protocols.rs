//! HTTP/2 with prior knowledge (h2c), and with the `tls` feature HTTPS with HTTP/1.1 and HTTP/2 by ALPN.

use bytes::Bytes;
use http::{Request, StatusCode, Version, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use stowage_origin::{Fault, FaultRule, Files, HttpVersions, Origin, OriginConfig};
use tokio::net::TcpStream;

fn body() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 253) as u8).collect()
}

fn files() -> Files {
    Files::new().with_bytes("/seg.ts", body())
}

type Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

async fn h2_over<S>(io: S) -> Sender
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    sender
}

fn get(url: &str, range: Option<&str>) -> Request<Empty<Bytes>> {
    let mut req = Request::get(url);
    if let Some(range) = range {
        req = req.header(header::RANGE, range);
    }
    req.body(Empty::new()).unwrap()
}

#[tokio::test]
async fn h2c_with_prior_knowledge_reuses_one_connection() {
    let origin = Origin::start(files(), OriginConfig::default()).unwrap();
    let mut sender = h2_over(TcpStream::connect(origin.addr()).await.unwrap()).await;
    let response = sender.send_request(get(&origin.url("/seg.ts"), Some("bytes=100-199"))).await.unwrap();
    assert_eq!((response.status(), response.version()), (StatusCode::PARTIAL_CONTENT, Version::HTTP_2));
    assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 100-199/300000");
    let got = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got, body()[100..200]);

    let response = sender.send_request(get(&origin.url("/seg.ts"), None)).await.unwrap();
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes().len(), 300_000);
    let log = origin.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].version, Version::HTTP_2);
    assert_eq!(log[0].connection, log[1].connection);
}

#[tokio::test]
async fn h2_cut_resets_the_stream_after_at_most_n_bytes() {
    let origin = Origin::start(files(), OriginConfig::default().versions(HttpVersions::Http2Only)).unwrap();
    origin.faults().add(FaultRule::new(Fault::CutAfter(50_000)).first(1));
    let mut sender = h2_over(TcpStream::connect(origin.addr()).await.unwrap()).await;
    let response = sender.send_request(get(&origin.url("/seg.ts"), None)).await.unwrap();
    let mut body = response.into_body();
    let mut received = 0;
    let outcome = loop {
        match body.frame().await {
            Some(Ok(frame)) => received += frame.into_data().map_or(0, |d| d.len()),
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    assert!(outcome.is_err(), "the stream must end in an error, not a clean end");
    assert!(received <= 50_000, "{received}");
    // The connection survives a stream reset.
    let response = sender.send_request(get(&origin.url("/seg.ts"), None)).await.unwrap();
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes().len(), 300_000);
}

#[cfg(feature = "tls")]
mod tls {
    use std::sync::Arc;

    use rustls_pki_types::{CertificateDer, ServerName};
    use stowage_origin::TlsConfig;
    use tokio_rustls::TlsConnector;

    use super::*;

    fn connector(origin: &Origin, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(origin.ca_der().unwrap().to_vec())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }

    async fn connect(
        origin: &Origin,
        alpn: &[&[u8]],
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(origin.addr()).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        connector(origin, alpn).connect(name, tcp).await
    }

    #[tokio::test]
    async fn https_negotiates_h2_and_http11_by_alpn() {
        let origin = Origin::start(files(), OriginConfig::default().tls(TlsConfig::default())).unwrap();
        assert!(origin.base_url().starts_with("https://127.0.0.1:"));
        assert!(origin.ca_pem().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));

        let tls = connect(&origin, &[b"h2", b"http/1.1"]).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut sender = h2_over(tls).await;
        let response = sender.send_request(get(&origin.url("/seg.ts"), Some("bytes=0-9"))).await.unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), body()[..10]);

        let tls = connect(&origin, &[b"http/1.1"]).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let mut req = get("/seg.ts", None);
        req.headers_mut().insert(header::HOST, "127.0.0.1".parse().unwrap());
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.version(), Version::HTTP_11);
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), body());
        let versions: Vec<Version> = origin.log().iter().map(|r| r.version).collect();
        assert_eq!(versions, [Version::HTTP_2, Version::HTTP_11]);
    }

    #[tokio::test]
    async fn a_certificate_for_another_host_is_rejected() {
        let origin =
            Origin::start(files(), OriginConfig::default().tls(TlsConfig::default().wrong_host())).unwrap();
        let err = connect(&origin, &[b"http/1.1"]).await.unwrap_err();
        assert!(err.to_string().contains("not valid for name"), "{err}");
        assert!(origin.log().is_empty());
    }
}
