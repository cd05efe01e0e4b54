//! Redirects: chains with the final URI reported, loops, limits, and never https to http.

mod common;

use common::{data, quick};
use stowage_fetch::{Client, Error, Request, TlsConfig};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig, TlsConfig as OriginTls};

#[tokio::test]
async fn chain_is_followed_and_the_final_uri_reported() {
    let body = data(5000);
    let origin =
        Origin::start(Files::new().with_bytes("/v2/media/seg.ts", body.clone()), OriginConfig::default())
            .unwrap();
    origin.faults().add(FaultRule::new(Fault::redirect("/hop")).path("/start"));
    origin.faults().add(
        FaultRule::new(Fault::Redirect { status: 301, location: "v2/media/seg.ts".into() }).path("/hop"),
    );
    let client = Client::new(quick()).unwrap();
    let resp = client.get(Request::get(&origin.url("/start")).unwrap()).await.unwrap();
    assert_eq!(resp.uri(), origin.url("/v2/media/seg.ts"));
    assert_eq!(resp.bytes().await.unwrap(), body);
    let paths: Vec<String> = origin.log().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/start", "/hop", "/v2/media/seg.ts"]);
}

#[tokio::test]
async fn loops_are_detected() {
    let origin = Origin::start(Files::new(), OriginConfig::default()).unwrap();
    origin.faults().add(FaultRule::new(Fault::redirect("/b")).path("/a"));
    origin.faults().add(FaultRule::new(Fault::Redirect { status: 307, location: "/a".into() }).path("/b"));
    let client = Client::new(quick()).unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/a")).unwrap()).await.unwrap_err();
    assert!(matches!(&err, Error::RedirectLoop { uri } if *uri == origin.url("/a")), "{err}");
    assert_eq!(origin.log().len(), 2);
}

#[tokio::test]
async fn redirect_count_is_bounded() {
    let origin = Origin::start(Files::new(), OriginConfig::default()).unwrap();
    for i in 0..10 {
        origin.faults().add(FaultRule::new(Fault::redirect(format!("/r{}", i + 1))).path(format!("/r{i}")));
    }
    let client = Client::new(quick().max_redirects(3)).unwrap();
    let err = client.get_bytes(Request::get(&origin.url("/r0")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::TooManyRedirects { limit: 3, .. }), "{err}");
    assert_eq!(origin.log().len(), 4);
}

#[tokio::test]
async fn https_to_http_is_refused() {
    let plain = Origin::start(Files::new().with_bytes("/seg.ts", data(10)), OriginConfig::default()).unwrap();
    let secure = Origin::start(Files::new(), OriginConfig::default().tls(OriginTls::default())).unwrap();
    secure.faults().add(FaultRule::new(Fault::redirect(plain.url("/seg.ts"))).path("/seg.ts"));
    let tls = TlsConfig::default().add_root_certificates_pem(secure.ca_pem().unwrap());
    let client = Client::new(quick().tls(tls)).unwrap();
    let err = client.get_bytes(Request::get(&secure.url("/seg.ts")).unwrap()).await.unwrap_err();
    match &err {
        Error::InsecureRedirect { from, to } => {
            assert_eq!(from, &secure.url("/seg.ts"));
            assert_eq!(to, &plain.url("/seg.ts"));
        }
        other => panic!("expected InsecureRedirect, got {other}"),
    }
    assert!(plain.log().is_empty(), "nothing was sent over plain http");
}

#[tokio::test]
async fn http_to_https_is_followed_and_bad_locations_are_typed() {
    let body = data(100);
    let secure = Origin::start(
        Files::new().with_bytes("/seg.ts", body.clone()),
        OriginConfig::default().tls(OriginTls::default()),
    )
    .unwrap();
    let plain = Origin::start(Files::new(), OriginConfig::default()).unwrap();
    plain.faults().add(FaultRule::new(Fault::redirect(secure.url("/seg.ts"))).path("/up"));
    plain.faults().add(FaultRule::new(Fault::redirect("file:///etc/passwd")).path("/file"));
    let tls = TlsConfig::default().add_root_certificates_pem(secure.ca_pem().unwrap());
    let client = Client::new(quick().tls(tls)).unwrap();
    let resp = client.get(Request::get(&plain.url("/up")).unwrap()).await.unwrap();
    assert_eq!(resp.uri(), secure.url("/seg.ts"));
    assert_eq!(resp.bytes().await.unwrap(), body);
    let err = client.get_bytes(Request::get(&plain.url("/file")).unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::BadRedirect { .. }), "{err}");
}
