//! An in-process HTTP origin for testing HLS downloaders, with deterministic fault injection.
//!
//! `stowage-origin` serves files from memory on `127.0.0.1` (a random free port) over HTTP/1.1 and
//! HTTP/2 with prior knowledge (h2c), and with the `tls` feature over HTTPS, negotiating HTTP/1.1 or
//! HTTP/2 by ALPN with a certificate authority made at start. It answers range requests, `If-Range`,
//! `HEAD`, and sends `ETag`, `Last-Modified` and `Content-Length`; it can misbehave on purpose, per path or
//! globally, while running: latency, error statuses with or without `Retry-After`, URLs that expire,
//! connections cut after an exact number of body bytes, slow drips, lying `Content-Length`, bodies with no
//! length that end when the connection closes, ranges ignored, redirects and loops, and all of these on a
//! fraction of requests chosen by a seeded generator.
//! Every request is logged with its connection, so tests can assert what a client did, not only what it
//! got. The [`hls`] module encrypts clear HLS renditions (AES-128, key rotation, explicit or
//! sequence-number IVs) so that an asset can be served encrypted.
//!
//! The [`live`] module plays an asset as a live or EVENT stream ([`live::LiveOrigin`]): a sliding window
//! over the source's segments in a loop, every rendition in step, on a [`Clock`] that can run faster than
//! real time or be moved by hand, with outages, stalls, stale copies, discontinuities, key rotation,
//! media sequence jumps and a late `EXT-X-ENDLIST` on a [`live::Script`], low-latency HLS with blocking
//! playlist reloads, and an oracle that tells a test which bytes each media sequence number carries and
//! which segments no client could have had. Fault windows ([`FaultRule::during`]) are measured on the
//! origin's clock, so a script of faults lines up with the stream at any speed; a black hole
//! ([`Fault::BlackHole`]) and refused connections ([`Fault::Refuse`]) make the origin unreachable.
//!
//! It is what stowage's integration and end-to-end tests, its benchmarks against other downloaders, and
//! the `stowage demo` command run against.
//!
//! **This is not a production server.** It keeps everything in memory, trusts its caller, has no access
//! control, and binds only to loopback. It sits beside the layers of stowage, depending on none of them.
//!
//! # Quick start
//!
//! ```
//! use std::io::{Read, Write};
//! use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};
//!
//! let files = Files::new().with_bytes("/media/seg0.ts", vec![0x47u8; 1000]);
//! let origin = Origin::start(files, OriginConfig::default())?;
//! // The first request for the segment fails with 503 and Retry-After: 1, later ones succeed.
//! origin.faults().add(FaultRule::new(Fault::service_unavailable(Some(1))).path("/media/seg0.ts").first(1));
//!
//! let get = |range: &str| -> std::io::Result<String> {
//!     let mut stream = std::net::TcpStream::connect(origin.addr())?;
//!     write!(stream, "GET /media/seg0.ts HTTP/1.1\r\nHost: x\r\n{range}Connection: close\r\n\r\n")?;
//!     let mut answer = Vec::new();
//!     stream.read_to_end(&mut answer)?;
//!     Ok(String::from_utf8_lossy(&answer).into_owned())
//! };
//! assert!(get("")?.starts_with("HTTP/1.1 503"));
//! let partial = get("Range: bytes=0-99\r\n")?;
//! assert!(partial.starts_with("HTTP/1.1 206"));
//! assert!(partial.contains("content-range: bytes 0-99/1000"));
//!
//! let log = origin.log();
//! assert_eq!(log.len(), 2);
//! assert_eq!((log[0].status, log[1].status, log[1].bytes_sent), (503, 206, 100));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
mod fault;
mod files;
pub mod hls;
pub mod live;
mod log;
mod poison;
mod server;
#[cfg(feature = "tls")]
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

pub use clock::Clock;
pub use fault::{Fault, FaultRule, Faults, PathPattern, RuleId};
pub use files::{Files, Resource, content_type_for};
pub use log::RequestRecord;
#[cfg(feature = "tls")]
pub use tls::TlsConfig;

use crate::log::RequestLog;
use crate::server::{Shared, Stop};

/// Errors from starting an origin, loading files, or preparing encrypted HLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// Reading a file or directory failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Binding the listening socket or starting the origin's thread failed.
    #[error("cannot start the origin: {0}")]
    Start(#[source] std::io::Error),
    /// Making the certificates or the TLS configuration failed.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// A playlist to encrypt is missing from the file map.
    #[error("no file at {path} in the origin's files")]
    MissingFile {
        /// The URL path that was looked up.
        path: String,
    },
    /// A live origin's configuration or script cannot be carried out.
    #[error("cannot start the live stream: {reason}")]
    Live {
        /// What is wrong.
        reason: String,
    },
    /// A playlist cannot be encrypted or played live as asked.
    #[error("cannot use the playlist {path}: {reason}")]
    Playlist {
        /// The playlist's URL path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which HTTP versions the origin speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpVersions {
    /// HTTP/1.1 and HTTP/2: over plain TCP the origin tells them apart by the HTTP/2 connection preface
    /// (h2c with prior knowledge); over TLS by ALPN (`h2`, `http/1.1`).
    #[default]
    Both,
    /// HTTP/1.1 (and 1.0) only.
    Http1Only,
    /// HTTP/2 only (h2c with prior knowledge over plain TCP, `h2` by ALPN over TLS).
    Http2Only,
}

/// How to run an origin. `Default` gives plain HTTP/1.1 and h2c on a random loopback port.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OriginConfig {
    /// The HTTP versions spoken.
    pub versions: HttpVersions,
    /// The seed for probabilistic faults.
    pub seed: u64,
    /// The largest body chunk handed to the connection at once, in bytes.
    pub chunk_size: usize,
    /// The number of runtime worker threads serving connections.
    pub worker_threads: usize,
    /// The port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The clock fault windows ([`FaultRule::during`]) are measured on; `None`: real time from the start.
    pub clock: Option<Clock>,
    /// Keep only this many of the latest requests in the log (`None`: all), so that a long run's memory
    /// stays flat.
    pub log_limit: Option<usize>,
    /// HTTPS settings; `None` serves plain HTTP.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            versions: HttpVersions::Both,
            seed: fault::DEFAULT_SEED,
            chunk_size: 64 * 1024,
            worker_threads: 2,
            port: 0,
            clock: None,
            log_limit: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl OriginConfig {
    /// Sets the HTTP versions spoken.
    #[must_use]
    pub fn versions(mut self, versions: HttpVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Sets the seed for probabilistic faults.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the largest body chunk handed to the connection at once (at least 1 byte).
    #[must_use]
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Sets the number of worker threads (at least 1).
    #[must_use]
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = threads.max(1);
        self
    }

    /// Sets the port to bind on 127.0.0.1 (0, the default, picks a free one).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Measures fault windows on `clock` (a live origin sets its own).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Keeps only the latest `records` requests in the log.
    #[must_use]
    pub fn log_limit(mut self, records: usize) -> Self {
        self.log_limit = Some(records);
        self
    }

    /// Serves HTTPS with these settings.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A running origin. It serves on its own thread (with its own tokio runtime), so it works the same from
/// synchronous tests, async tests of any runtime flavour, benchmarks and command-line tools. Dropping it
/// stops it at once; [`Origin::shutdown`] lets open requests finish first.
#[derive(Debug)]
pub struct Origin {
    addr: SocketAddr,
    base_url: String,
    files: Files,
    faults: Faults,
    log: RequestLog,
    stop: watch::Sender<Stop>,
    thread: Option<std::thread::JoinHandle<()>>,
    #[cfg(feature = "tls")]
    ca: Option<tls::CertificateAuthority>,
}

impl Origin {
    /// Starts serving `files` on 127.0.0.1 as configured. Returns once the port is bound.
    pub fn start(files: Files, config: OriginConfig) -> Result<Self, OriginError> {
        Self::launch(files, config, None)
    }

    /// Starts serving `files`, and a live stream when given one.
    pub(crate) fn launch(
        files: Files,
        config: OriginConfig,
        live: Option<Arc<live::LiveState>>,
    ) -> Result<Self, OriginError> {
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).map_err(OriginError::Start)?;
        listener.set_nonblocking(true).map_err(OriginError::Start)?;
        let addr = listener.local_addr().map_err(OriginError::Start)?;
        let (http1, http2) = match config.versions {
            HttpVersions::Both => (true, true),
            HttpVersions::Http1Only => (true, false),
            HttpVersions::Http2Only => (false, true),
        };

        #[cfg(feature = "tls")]
        let (acceptor, ca, scheme) = match &config.tls {
            Some(tls_config) => {
                let (acceptor, ca) = tls::acceptor(tls_config, http1, http2)?;
                (Some(acceptor), Some(ca), "https")
            }
            None => (None, None, "http"),
        };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";

        let clock = config.clock.clone().unwrap_or_default();
        let faults = Faults::with_clock(config.seed, clock.clone());
        let log = RequestLog::with_limit(config.log_limit);
        let shared = Arc::new(Shared {
            files: files.clone(),
            faults: faults.clone(),
            log: log.clone(),
            chunk_size: config.chunk_size.max(1),
            clock,
            live,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("stowage-origin")
            .enable_all()
            .build()
            .map_err(OriginError::Start)?;
        let (stop, stop_rx) = watch::channel(Stop::Running);
        let builder = server::connection_builder(http1, http2);
        let thread = std::thread::Builder::new()
            .name("stowage-origin".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    // Converting the listener needs the runtime's reactor, so it happens on this thread.
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                    server::accept_loop(
                        listener,
                        addr,
                        shared,
                        builder,
                        #[cfg(feature = "tls")]
                        acceptor,
                        stop_rx,
                    )
                    .await;
                });
                // Dropping the runtime here cancels whatever tasks are left.
            })
            .map_err(OriginError::Start)?;
        Ok(Self {
            addr,
            base_url: format!("{scheme}://{addr}"),
            files,
            faults,
            log,
            stop,
            thread: Some(thread),
            #[cfg(feature = "tls")]
            ca,
        })
    }

    /// The address served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, for example `http://127.0.0.1:41234` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The URL of `path` on this origin (a leading `/` is added when missing).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}/{path}", self.base_url)
        }
    }

    /// The files served; changes take effect on the next request.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The origin's clock (stream time; real time unless configured otherwise).
    pub fn clock(&self) -> &Clock {
        self.faults.clock()
    }

    /// The fault rules; changes take effect on the next request.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A copy of the request log, in arrival order.
    pub fn log(&self) -> Vec<RequestRecord> {
        self.log.snapshot()
    }

    /// How many logged requests were for `path`.
    pub fn request_count(&self, path: &str) -> usize {
        self.log.snapshot().iter().filter(|r| r.path == path).count()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        self.log.clear();
    }

    /// The PEM of the certificate authority that signed the server certificate, for clients to trust.
    #[cfg(feature = "tls")]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|ca| ca.pem.as_str())
    }

    /// The DER of the certificate authority that signed the server certificate.
    #[cfg(feature = "tls")]
    pub fn ca_der(&self) -> Option<&[u8]> {
        self.ca.as_ref().map(|ca| ca.der.as_slice())
    }

    /// Stops accepting connections, lets requests in flight finish (for up to two seconds), then stops.
    pub fn shutdown(mut self) {
        self.stop_with(Stop::Graceful);
    }

    fn stop_with(&mut self, how: Stop) {
        let _ = self.stop.send(how);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop_with(Stop::Now);
    }
}
