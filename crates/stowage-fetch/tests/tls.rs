//! HTTPS: HTTP/2 and HTTP/1.1 by ALPN with a CA made for the test, untrusted and wrong-host certificates,
//! the `danger` switch, and client certificates.

mod common;

use std::sync::Arc;

use common::{data, quick};
use stowage_fetch::{Client, Error, Request, TlsConfig, Version};
use stowage_origin::{Files, Origin, OriginConfig, TlsConfig as OriginTls};

fn https_origin(tls: OriginTls, body: Vec<u8>) -> Origin {
    Origin::start(Files::new().with_bytes("/seg.ts", body), OriginConfig::default().tls(tls)).unwrap()
}

fn trusting(origin: &Origin) -> TlsConfig {
    TlsConfig::default().add_root_certificates_pem(origin.ca_pem().unwrap())
}

#[tokio::test]
async fn http2_negotiated_by_alpn_over_verified_tls() {
    let body = data(1 << 20);
    let origin = https_origin(OriginTls::default(), body.clone());
    assert!(origin.url("/seg.ts").starts_with("https://127.0.0.1:"));
    let client = Client::new(quick().tls(trusting(&origin))).unwrap();
    for _ in 0..2 {
        let resp = client.get(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(resp.bytes().await.unwrap(), body);
    }
    let c = client.counters();
    assert_eq!((c.connections_opened, c.connections_reused), (1, 1));
}

#[tokio::test]
async fn http1_over_tls_when_http2_is_off_and_der_roots_work() {
    let body = data(300_000);
    let origin = https_origin(OriginTls::default(), body.clone());
    let tls =
        TlsConfig::default().add_root_certificate_der(origin.ca_der().unwrap().to_vec()).webpki_roots(false);
    let client = Client::new(quick().tls(tls).http2(false)).unwrap();
    let resp = client.get(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn wrong_host_certificate_is_rejected_without_retries() {
    let origin = https_origin(OriginTls::default().wrong_host(), data(1000));
    let (events, on_retry) = common::recorder();
    let client = Client::new(quick().tls(trusting(&origin)).on_retry(on_retry)).unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    match &err {
        Error::Tls { uri, message } => {
            assert_eq!(uri, &origin.url("/seg.ts"));
            assert!(message.to_lowercase().contains("not valid for name"), "{message}");
        }
        other => panic!("expected a TLS error, got {other}"),
    }
    assert!(events.lock().unwrap().is_empty(), "certificate errors are not retried");
    assert!(origin.log().is_empty(), "no request was sent");
}

#[tokio::test]
async fn untrusted_authority_is_rejected() {
    let origin = https_origin(OriginTls::default(), data(1000));
    let client = Client::new(quick()).unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap_err();
    assert!(matches!(&err, Error::Tls { message, .. } if message.contains("UnknownIssuer")), "{err}");
}

#[tokio::test]
async fn danger_switch_accepts_the_wrong_host() {
    let body = data(5000);
    let origin = https_origin(OriginTls::default().wrong_host(), body.clone());
    let client = Client::new(quick().danger_accept_invalid_certs(true)).unwrap();
    assert_eq!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap(), body);
}

#[tokio::test]
async fn bad_certificate_settings_fail_at_build_time() {
    let err = Client::new(quick().tls(TlsConfig::default().add_root_certificates_pem("not a certificate")))
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let err = Client::new(quick().tls(TlsConfig::default().client_identity_pem("", ""))).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[tokio::test]
async fn ca_certificates_checked_when_added_say_what_is_wrong() {
    let origin = https_origin(OriginTls::default(), data(1000));
    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    for (pem, why) in [
        ("", "holds no certificate"),
        ("plain words, no PEM at all", "holds no certificate"),
        (key.as_str(), "holds no certificate"),
        (broken, "CA certificate PEM"),
    ] {
        let err = TlsConfig::default().try_add_root_certificates_pem(pem).unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains(why)), "{pem:?}: {err}");
    }
    // A good one is taken, and trusted.
    let tls = TlsConfig::default().try_add_root_certificates_pem(origin.ca_pem().unwrap()).unwrap();
    let client = Client::new(quick().tls(tls)).unwrap();
    assert_eq!(client.get_bytes(Request::get(&origin.url("/seg.ts")).unwrap()).await.unwrap().len(), 1000);
}

/// A TLS server of the test's own that requires a client certificate signed by its CA.
#[tokio::test]
async fn client_certificate_is_presented() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["client".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
    let mut server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    server_cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"hello, certified client"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });

    let url = format!("https://127.0.0.1:{port}/");
    let base = TlsConfig::default().add_root_certificates_pem(ca.pem());
    let without = Client::new(quick().tls(base.clone()).retry(stowage_fetch::RetryConfig::none())).unwrap();
    assert!(
        without.get_bytes(Request::get(&url).unwrap()).await.is_err(),
        "the server requires a certificate"
    );
    let with =
        Client::new(quick().tls(base.client_identity_pem(client_cert.pem(), client_key.serialize_pem())))
            .unwrap();
    assert_eq!(with.get_bytes(Request::get(&url).unwrap()).await.unwrap(), "hello, certified client");
}
