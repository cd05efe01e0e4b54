//! Helpers of the end-to-end tests: an origin serving the committed ffmpeg-made fixtures and sessions with
//! short backoffs on each transport. The checks shared with the other test suites (byte-for-byte against
//! the clear sources, ffmpeg decoding) come from `stowage-testkit`.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use stowage_fetch::{ClientConfig, RetryConfig, TlsConfig};
use stowage_origin::{Fault, FaultRule, Files, HttpVersions, Origin, OriginConfig};
use stowage_task::engine::RetryPolicy;
use stowage_task::{DownloadSession, SessionConfig};
use stowage_testkit::{FIXTURES, assets};

/// How the client reaches the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 over plain TCP (the origin speaks nothing else).
    Http1,
    /// HTTP/2 over plain TCP with prior knowledge.
    H2c,
    /// HTTPS, HTTP/2 negotiated by ALPN, the origin's own authority trusted through the client config.
    H2Tls,
}

impl Transport {
    /// Every transport, in a fixed order.
    pub const ALL: [Self; 3] = [Self::Http1, Self::H2c, Self::H2Tls];

    /// The HTTP version every request must have used.
    pub fn version(self) -> http::Version {
        match self {
            Self::Http1 => http::Version::HTTP_11,
            Self::H2c | Self::H2Tls => http::Version::HTTP_2,
        }
    }
}

/// An origin on `transport` serving every fixture tree under its own name (`clear/` under `/clear`,
/// `aes/` under `/aes`, `disc-aes/` under `/disc-aes`...).
pub fn origin(transport: Transport, seed: u64) -> Origin {
    let files = Files::new();
    for tree in FIXTURES.iter().flat_map(|(clear, encrypted)| [clear, encrypted]) {
        files.load_dir(&format!("/{tree}"), assets().join(tree)).unwrap();
    }
    let config = OriginConfig::default().seed(seed);
    let config = match transport {
        Transport::Http1 => config.versions(HttpVersions::Http1Only),
        Transport::H2c => config.versions(HttpVersions::Http2Only),
        Transport::H2Tls => {
            config.versions(HttpVersions::Http2Only).tls(stowage_origin::TlsConfig::default())
        }
    };
    Origin::start(files, config).unwrap()
}

/// The fault mix of the robustness target: 5 % of all requests answer 503 (keys and playlists included),
/// 5 % of bodies are cut at a random point, and 20 % of key requests answer 404.
pub fn add_fault_mix(origin: &Origin) {
    let faults = origin.faults();
    faults.add(FaultRule::new(Fault::service_unavailable(None)).probability(0.05));
    faults.add(FaultRule::new(Fault::CutAtRandom).probability(0.05));
    faults.add(FaultRule::new(Fault::status(404)).prefix("/aes/keys/").probability(0.2));
}

/// Fetch-layer settings for `origin` on `transport`, with short backoffs so that retries take
/// milliseconds.
pub fn http(origin: &Origin, transport: Transport) -> ClientConfig {
    let config = ClientConfig::default().retry(
        RetryConfig::default()
            .base_delay(Duration::from_millis(5))
            .max_delay(Duration::from_millis(50))
            .max_retry_after(Duration::from_secs(1)),
    );
    match transport {
        Transport::Http1 => config,
        Transport::H2c => config.http2_prior_knowledge(true),
        Transport::H2Tls => config.tls(
            TlsConfig::default().webpki_roots(false).add_root_certificates_pem(origin.ca_pem().unwrap()),
        ),
    }
}

/// A session config on `store` for `origin`, with short backoffs at both layers.
pub fn config(store: &Path, origin: &Origin, transport: Transport) -> SessionConfig {
    SessionConfig::new(store)
        .http(http(origin, transport))
        .retry(RetryPolicy::default().backoff(Duration::from_millis(5), Duration::from_millis(100)))
}

/// A session on `store` for `origin`.
pub fn session(store: &Path, origin: &Origin, transport: Transport) -> DownloadSession {
    DownloadSession::new(config(store, origin, transport)).unwrap()
}
