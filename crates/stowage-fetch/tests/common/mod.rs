//! Helpers shared by the integration tests: quick client settings, test data, and a small hyper server
//! for the cases the fault-injecting origin does not cover (echoing headers, compressed bodies).

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stowage_fetch::{ClientConfig, ProxyConfig, RetryConfig, RetryEvent, Timeouts};
use tokio::net::TcpListener;

/// Deterministic, non-repeating-looking test bytes.
pub fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A client configuration for tests: no proxy from the environment, retries in milliseconds.
pub fn quick() -> ClientConfig {
    ClientConfig::default()
        .proxy(ProxyConfig::None)
        .retry(
            RetryConfig::default()
                .max_retries(4)
                .base_delay(Duration::from_millis(2))
                .max_delay(Duration::from_millis(20))
                .max_elapsed(Duration::from_secs(20)),
        )
        .timeouts(
            Timeouts::default()
                .connect(Some(Duration::from_secs(5)))
                .first_byte(Some(Duration::from_secs(5))),
        )
}

/// A retry callback that records events.
pub fn recorder() -> (Arc<Mutex<Vec<RetryEvent>>>, impl Fn(&RetryEvent) + Send + Sync + 'static) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (events, move |e: &RetryEvent| sink.lock().unwrap().push(e.clone()))
}

/// What the small server received: the request headers of each request.
pub type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

/// Starts a hyper server (HTTP/1.1 and h2c) on 127.0.0.1 answering every request with `respond`.
pub async fn serve<F>(respond: F) -> (SocketAddr, Seen)
where
    F: Fn(&hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let respond = Arc::new(respond);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let respond = respond.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<Incoming>| {
                    log.lock().unwrap().push(req.headers().clone());
                    let resp = respond(&req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// One step of a scripted raw HTTP/1.1 answer.
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Wait.
    Sleep(Duration),
}

/// Starts a raw TCP server on 127.0.0.1: for the `n`th request (from 0) with head `head`, it performs
/// `script(n, head)` and then closes the connection. For faults hyper's server would not commit.
pub async fn raw_server<F>(script: F) -> SocketAddr
where
    F: Fn(usize, &str) -> Vec<Step> + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let script = script.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                for step in script(n, &String::from_utf8_lossy(&head)) {
                    match step {
                        Step::Send(b) => {
                            if stream.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        Step::Sleep(d) => tokio::time::sleep(d).await,
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// The value of header `name` in a raw request head.
pub fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
