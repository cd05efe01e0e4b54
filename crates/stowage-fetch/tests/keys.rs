//! Key loading: http and data: URIs, one fetch per key, retries on 403/404, lengths, the hook, and early
//! errors for what cannot be decrypted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::quick;
use stowage_fetch::keys::{KeyAction, KeyConfig, KeyHook, KeyHookFuture, KeyLoader, hook_fn};
use stowage_fetch::{Client, Error, HeaderName, HeaderValue, Request};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};

const KEY: [u8; 16] = *b"0123456789abcdef";

fn origin() -> Origin {
    let files = Files::new()
        .with_bytes("/k1.key", KEY.to_vec())
        .with_bytes("/long.key", vec![1u8; 17])
        .with_bytes("/huge.key", vec![1u8; 100_000]);
    Origin::start(files, OriginConfig::default()).unwrap()
}

fn loader() -> KeyLoader {
    KeyLoader::new(Client::new(quick()).unwrap())
        .with_config(KeyConfig::default().delay(Duration::from_millis(2)))
}

#[tokio::test]
async fn concurrent_loads_of_one_key_make_one_request() {
    let origin = origin();
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(50))).path("/k1.key"));
    let loader = Arc::new(loader());
    let url = origin.url("/k1.key");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let loader = loader.clone();
            let url = url.clone();
            tokio::spawn(async move { loader.load(&url).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), KEY);
    }
    assert_eq!(loader.load(&url).await.unwrap(), KEY);
    assert_eq!(origin.request_count("/k1.key"), 1);
}

#[tokio::test]
async fn not_found_and_forbidden_are_retried_a_few_times() {
    let origin = origin();
    origin.faults().add(FaultRule::new(Fault::status(404)).path("/k1.key").first(1));
    origin.faults().add(FaultRule::new(Fault::status(403)).path("/k1.key").after_requests(1).first(2));
    let loader = loader();
    assert_eq!(loader.load(&origin.url("/k1.key")).await.unwrap(), KEY);
    assert_eq!(origin.request_count("/k1.key"), 3);

    origin.faults().add(FaultRule::new(Fault::status(404)).path("/gone.key"));
    let err = loader.load(&origin.url("/gone.key")).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(origin.request_count("/gone.key"), 3, "bounded: three attempts");
    // A failure is not cached: a later load tries again.
    let _ = loader.load(&origin.url("/gone.key")).await;
    assert_eq!(origin.request_count("/gone.key"), 6);
}

#[tokio::test]
async fn keys_must_be_sixteen_bytes_and_errors_name_the_uri() {
    let origin = origin();
    let loader = loader();
    for (path, len) in [("/long.key", 17), ("/huge.key", 1025)] {
        let err = loader.load(&origin.url(path)).await.unwrap_err();
        match err {
            Error::KeyLength { uri, len: got } => {
                assert_eq!(uri, origin.url(path));
                assert_eq!(got, len);
            }
            other => panic!("{path}: {other}"),
        }
    }
    let err = loader.load("data:;base64,AAEC").await.unwrap_err();
    assert!(matches!(err, Error::KeyLength { len: 3, .. }), "{err}");
}

#[tokio::test]
async fn data_uris_and_supplied_keys_need_no_network() {
    let loader = loader();
    assert_eq!(
        loader.load("data:application/octet-stream;base64,MDEyMzQ1Njc4OWFiY2RlZg==").await.unwrap(),
        KEY
    );
    assert_eq!(loader.load("data:,0123456789abcdef").await.unwrap(), KEY);
    loader.insert("https://keys.invalid/k", KEY);
    assert_eq!(loader.load("https://keys.invalid/k").await.unwrap(), KEY);
    assert!(matches!(loader.load("skd://asset-id").await, Err(Error::FairPlay { .. })));
    assert!(matches!(loader.load("file:///k.key").await, Err(Error::UnsupportedScheme { .. })));
}

#[tokio::test]
async fn hook_supplies_or_rewrites_key_requests() {
    let origin = origin();
    let signed = origin.url("/k1.key");
    let hook = hook_fn(move |uri| {
        if uri.ends_with("/local") {
            KeyAction::Use([9u8; 16])
        } else if uri.ends_with("/needs-token") {
            let req = Request::get(&signed)
                .unwrap()
                .header(HeaderName::from_static("authorization"), HeaderValue::from_static("Bearer t"));
            KeyAction::Fetch(Box::new(req))
        } else {
            KeyAction::Default
        }
    });
    let loader = loader().with_hook(hook);
    assert_eq!(loader.load("https://keys.invalid/local").await.unwrap(), [9u8; 16]);
    assert_eq!(loader.load("https://keys.invalid/needs-token").await.unwrap(), KEY);
    assert_eq!(origin.request_count("/k1.key"), 1);
}

/// An asynchronous hook, as a service that fetches a token first would write.
struct TokenHook;

impl KeyHook for TokenHook {
    fn resolve<'a>(&'a self, uri: &'a str) -> KeyHookFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if uri.contains("deny") {
                return Err(Error::Status { uri: uri.to_owned(), status: 401, retry_after: None });
            }
            Ok(KeyAction::Use([uri.len() as u8; 16]))
        })
    }
}

#[tokio::test]
async fn async_hooks_and_their_errors() {
    let loader = loader().with_hook(Arc::new(TokenHook));
    assert_eq!(loader.load("https://k/1").await.unwrap(), [11u8; 16]);
    assert_eq!(loader.load("https://k/deny").await.unwrap_err().status(), Some(401));
}
