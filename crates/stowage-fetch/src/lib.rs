//! HTTP(S) fetch layer for HLS downloads, with AES-128 segment decryption.
//!
//! `stowage-fetch` is the only part of stowage that touches the network. It is an HTTP client built for
//! night-long downloads over flaky CDNs: a pooled [`hyper`] client over [`rustls`] on tokio, speaking
//! HTTP/1.1 and HTTP/2 (negotiated with ALPN, or h2c by prior knowledge), that
//!
//! - reuses connections (HTTP/1.1 keep-alive, HTTP/2 streams) under a per-host connection limit and a
//!   global limit on requests in flight;
//! - verifies TLS by default against the bundled web PKI roots (plus CA certificates and a client
//!   certificate you add; switching verification off is [`ClientConfig::danger_accept_invalid_certs`]);
//! - bounds every wait with a typed deadline ([`Timeouts`], [`TimeoutKind`]): connect, TLS handshake,
//!   response headers, idle body, a minimum body rate, and optionally the whole operation, so that no
//!   request waits for ever on an origin that stops answering or answers a byte at a time;
//! - follows redirects up to a limit, detects loops, never goes from https to http, and reports the
//!   final URI ([`Response::uri`]);
//! - retries connection errors, timeouts, 5xx, 408 and 429 with exponential backoff and full jitter,
//!   honours `Retry-After` up to a limit (a longer one is an error that names it), never retries other
//!   4xx or protocol errors (conflicting `Content-Length` headers), and reports every retry with its
//!   delay and when it is due ([`RetryEvent`]);
//! - resumes an interrupted body with a `Range` request validated by `If-Range`, so a cut mid-segment
//!   does not restart the segment;
//! - delivers exactly the asked byte range or the declared length, or fails: a short or long body, a
//!   mismatched `Content-Range`, or a `200` to a range request is never passed on as is;
//! - streams bodies as [`Bytes`] chunks with backpressure, under a shared token-bucket
//!   rate limit, through `CONNECT` proxies, with gzip/deflate/br decoding for playlists;
//! - keeps [`Counters`] readable at any time;
//! - loads keys ([`keys`]) from `http(s)` and `data:` URIs, once per key, with a hook for services that
//!   sign key requests, and refuses early what cannot be decrypted (FairPlay, SAMPLE-AES).
//!
//! Decryption itself lives in [`decrypt`]: pure functions on byte slices, usable without the client.
//!
//! The types of [`http`] and `bytes` that appear in this API ([`Uri`], [`HeaderName`], [`HeaderValue`],
//! [`HeaderMap`], [`StatusCode`], [`Version`], [`Bytes`]) are re-exported here, and so is the [`http`] crate
//! itself (for its header names, such as [`http::header::AUTHORIZATION`]): a user of this crate does not
//! need to depend on matching versions of those crates.
//!
//! What it does not do: parse playlists (`stowage-playlist`), decide what to fetch or in which order
//! (`stowage-task`), or write anything to disk (`stowage-bundle`). It sits below `stowage-task`, beside
//! `stowage-bundle`, and knows neither.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use stowage_fetch::{ByteRange, Client, ClientConfig, Request, RetryConfig, Timeouts};
//!
//! # fn main() -> Result<(), stowage_fetch::Error> {
//! let config = ClientConfig::default()
//!     .user_agent("my-player/1.0")
//!     .timeouts(Timeouts::default().stall(Some(Duration::from_secs(20))))
//!     .retry(RetryConfig::default().max_retries(8))
//!     .rate_limit(Some(4_000_000))
//!     .on_retry(|event| eprintln!("retry {} of {}: {}", event.retry, event.uri, event.cause));
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! runtime.block_on(async {
//!     let client = Client::new(config)?;
//!     // Segments are streamed chunk by chunk:
//!     let segment = Request::get("https://cdn.example.com/video/seg1.ts")?.range(ByteRange::new(0, 188_000));
//!     # if false {
//!     let mut body = client.get(segment).await?.into_body();
//!     while let Some(chunk) = body.chunk().await? {
//!         // decrypt and write `chunk`
//!         # let _ = chunk;
//!     }
//!     # }
//!     // Bad input gives a typed error, before any network traffic.
//!     let err = Request::get("ftp://example.com/master.m3u8").unwrap_err();
//!     assert!(matches!(err, stowage_fetch::Error::UnsupportedScheme { .. }));
//!     assert_eq!(client.counters().requests, 0);
//!     Ok(())
//! })
//! # }
//! ```

// A public crate: every public type may grow (`#[non_exhaustive]`) unless it is closed by definition, which
// its `#[allow]` says.
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod body;
mod client;
mod config;
mod connect;
mod counters;
mod decode;
pub mod decrypt;
mod error;
mod headers;
pub mod keys;
mod proxy;
mod range;
mod ratelimit;
mod request;
mod retry;
mod uri;

pub use body::{Body, Response};
pub use client::Client;
pub use config::{
    ClientConfig, MinRate, ProxyConfig, RangeFallback, RetryCallback, RetryConfig, Timeouts, TlsConfig,
};
pub use counters::{Counters, HostCounters};
pub use error::{Error, TimeoutKind};
pub use range::ByteRange;
pub use request::Request;
pub use retry::{RetryCause, RetryEvent, backoff};

pub use bytes::Bytes;
/// The `http` crate of the types in this API, for building requests (header names and values) without a
/// dependency of one's own on a matching version.
pub use http;
pub use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version};

/// Entry points for the fuzz targets (`fuzz/` in the repository), not part of the API: the parsers of the
/// response headers the client acts on. They may change or go without notice.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::headers::{ContentRange, parse_content_range, parse_http_date, parse_retry_after};
}
