//! Client configuration: timeouts, retries, TLS, proxies, limits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::proxy::redacted;
use crate::retry::RetryEvent;

/// Deadlines for one request; each one that runs out gives [`Error::Timeout`](crate::Error::Timeout)
/// with its [`TimeoutKind`](crate::TimeoutKind), naming the URI. `None` disables a deadline.
///
/// Together they make sure that no request waits for ever on an origin that stops answering, answers
/// a byte at a time, or does not speak the protocol it is asked in:
///
/// | deadline | default | runs from, to | kind |
/// |---|---|---|---|
/// | [`connect`](Self::connect) | 10 s | DNS, TCP and proxy tunnel | [`Connect`](crate::TimeoutKind::Connect) |
/// | [`tls_handshake`](Self::tls_handshake) | 10 s | the TLS handshake, once connected | [`TlsHandshake`](crate::TimeoutKind::TlsHandshake) |
/// | [`first_byte`](Self::first_byte) | 30 s | sending the request, to its response headers (the header timeout) | [`FirstByte`](crate::TimeoutKind::FirstByte) |
/// | [`stall`](Self::stall) | 30 s | the longest gap between body bytes (the idle-body timeout) | [`Stall`](crate::TimeoutKind::Stall) |
/// | [`min_rate`](Self::min_rate) | 1024 bytes/s over 30 s | a body arriving slower than this | [`MinRate`](crate::TimeoutKind::MinRate) |
/// | [`total`](Self::total) | none | the whole operation: redirects, retries, body and resumes | [`Total`](crate::TimeoutKind::Total) |
///
/// The idle-body timeout starts again with every byte, so a body trickling in at one byte a second
/// never trips it; the minimum rate does. A TLS handshake that does not complete is not retried: it
/// almost always means a port that does not speak TLS (an `https://` URL pointing at a plain-HTTP
/// server), which retrying cannot fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// DNS, TCP and proxy tunnel. Default 10 s.
    pub connect: Option<Duration>,
    /// The TLS handshake with the origin (and with an `https://` proxy), once the connection is open.
    /// Default 10 s.
    pub tls_handshake: Option<Duration>,
    /// The header timeout: from starting the request to its response headers (waiting for a free
    /// connection under the connection limits, connecting, and the server's time to answer). Default 30 s.
    pub first_byte: Option<Duration>,
    /// The idle-body timeout: the longest gap without body bytes. Default 30 s.
    pub stall: Option<Duration>,
    /// The slowest a body may arrive. Default 1024 bytes/s over 30 s.
    pub min_rate: Option<MinRate>,
    /// The whole operation: redirects, retries, body and resumes. Default none.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Some(Duration::from_secs(10)),
            tls_handshake: Some(Duration::from_secs(10)),
            first_byte: Some(Duration::from_secs(30)),
            stall: Some(Duration::from_secs(30)),
            min_rate: Some(MinRate::new(1024, Duration::from_secs(30))),
            total: None,
        }
    }
}

impl Timeouts {
    /// Sets the connect deadline.
    #[must_use]
    pub fn connect(mut self, d: Option<Duration>) -> Self {
        self.connect = d;
        self
    }
    /// Sets the TLS handshake deadline.
    #[must_use]
    pub fn tls_handshake(mut self, d: Option<Duration>) -> Self {
        self.tls_handshake = d;
        self
    }
    /// Sets the header timeout (time to the response headers).
    #[must_use]
    pub fn first_byte(mut self, d: Option<Duration>) -> Self {
        self.first_byte = d;
        self
    }
    /// Sets the idle-body timeout.
    #[must_use]
    pub fn stall(mut self, d: Option<Duration>) -> Self {
        self.stall = d;
        self
    }
    /// Sets the minimum rate of a body.
    #[must_use]
    pub fn min_rate(mut self, rate: Option<MinRate>) -> Self {
        self.min_rate = rate;
        self
    }
    /// Sets the total deadline.
    #[must_use]
    pub fn total(mut self, d: Option<Duration>) -> Self {
        self.total = d;
        self
    }
}

/// The slowest a response body may arrive: a body that delivers fewer than `bytes_per_second × window`
/// bytes within `window` fails with [`TimeoutKind::MinRate`](crate::TimeoutKind::MinRate) (and is
/// resumed or retried like a stalled one).
///
/// Only time spent waiting for the network counts: time the reader takes between chunks, and waits
/// imposed by the client's own [rate limit](ClientConfig::rate_limit), do not. A body that ends before a
/// window is over is never too slow, so small responses (keys, short playlists) are not held to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MinRate {
    /// The lowest acceptable average rate, in bytes per second.
    pub bytes_per_second: u64,
    /// How long the average is taken over.
    pub window: Duration,
}

impl MinRate {
    /// At least `bytes_per_second` on average over every `window` of waiting.
    pub fn new(bytes_per_second: u64, window: Duration) -> Self {
        Self { bytes_per_second, window }
    }

    /// The bytes a window must bring.
    pub(crate) fn bytes_per_window(&self) -> u64 {
        let bytes = u128::from(self.bytes_per_second) * self.window.as_millis() / 1000;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// When and how failed requests are tried again.
///
/// Connection errors, timeouts (other than of the TLS handshake), interrupted bodies, 5xx, 408 and 429
/// are retried; other 4xx and protocol errors never are. The delay before retry `n` (counting from 0) is
/// drawn uniformly from `0..=min(max_delay, base_delay × 2ⁿ)` ("full jitter"), unless the server sent
/// `Retry-After`, which is then honoured, up to [`max_retry_after`](Self::max_retry_after): a longer one
/// fails the request at once with [`Error::RetryAfterTooLong`](crate::Error::RetryAfterTooLong), which
/// names it. Every retry is reported first ([`ClientConfig::on_retry`]), with its delay and when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all). Default 5.
    pub max_retries: u32,
    /// The first backoff ceiling. Default 250 ms.
    pub base_delay: Duration,
    /// The largest backoff ceiling. Default 15 s.
    pub max_delay: Duration,
    /// No retry is planned once this much time has passed since the first attempt, and a backoff that
    /// would end after it is not waited for (a `Retry-After` within `max_retry_after` is). Default 60 s.
    pub max_elapsed: Duration,
    /// A `Retry-After` longer than this is not waited for: the request fails instead, with an error that
    /// names it. Default 2 min.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(15),
            max_elapsed: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }
    /// Sets the number of retries after the first attempt.
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Sets the first backoff ceiling.
    #[must_use]
    pub fn base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }
    /// Sets the largest backoff ceiling.
    #[must_use]
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }
    /// Sets the time after which no retry is planned.
    #[must_use]
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = d;
        self
    }
    /// Sets the longest `Retry-After` that is waited for.
    #[must_use]
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }
}

/// Where requests go through a proxy.
///
/// Its `Debug` output hides the credentials of proxy URIs.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxyConfig {
    /// Read `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy`, `ALL_PROXY`/`all_proxy` and
    /// `NO_PROXY`/`no_proxy` when the client is built (the default). As in Go's standard library,
    /// loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) never go through a proxy taken from the
    /// environment.
    #[default]
    FromEnv,
    /// No proxy.
    None,
    /// These proxies. Every request is tunnelled with `CONNECT`; proxy URIs are `http://` or `https://`
    /// (TLS to the proxy itself), with optional `user:password@` for Basic authentication.
    Explicit {
        /// Proxy for `http://` URIs.
        http: Option<String>,
        /// Proxy for `https://` URIs.
        https: Option<String>,
        /// Hosts that bypass the proxy: a comma-separated list in the `NO_PROXY` syntax.
        no_proxy: String,
    },
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FromEnv => f.write_str("FromEnv"),
            Self::None => f.write_str("None"),
            // Proxy URIs may carry `user:password@`: a password must never end up in logs.
            Self::Explicit { http, https, no_proxy } => f
                .debug_struct("Explicit")
                .field("http", &http.as_deref().map(redacted))
                .field("https", &https.as_deref().map(redacted))
                .field("no_proxy", no_proxy)
                .finish(),
        }
    }
}

impl ProxyConfig {
    /// One proxy for both http and https URIs.
    pub fn all(proxy: impl Into<String>) -> Self {
        let p = proxy.into();
        Self::Explicit { http: Some(p.clone()), https: Some(p), no_proxy: String::new() }
    }
}

/// TLS settings. Verification against the bundled web PKI roots is on by default.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    pub(crate) extra_roots_pem: Vec<Vec<u8>>,
    pub(crate) extra_roots_der: Vec<Vec<u8>>,
    pub(crate) no_webpki_roots: bool,
    pub(crate) client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key of a client identity must never end up in logs.
        f.debug_struct("TlsConfig")
            .field("extra_roots", &(self.extra_roots_pem.len() + self.extra_roots_der.len()))
            .field("webpki_roots", &!self.no_webpki_roots)
            .field("client_identity", &self.client_identity_pem.is_some())
            .finish()
    }
}

impl TlsConfig {
    /// Trusts the CA certificates in this PEM text, in addition to the web PKI roots.
    #[must_use]
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }
    /// Like [`add_root_certificates_pem`](Self::add_root_certificates_pem), with the PEM text checked now
    /// rather than when the client is built: it fails when the text holds no certificate, or one that
    /// cannot be read, so that the caller can name the file the text came from.
    pub fn try_add_root_certificates_pem(self, pem: impl Into<Vec<u8>>) -> Result<Self, crate::Error> {
        let pem = pem.into();
        crate::connect::add_roots_pem(&mut rustls::RootCertStore::empty(), &pem)
            .map_err(crate::Error::Config)?;
        Ok(self.add_root_certificates_pem(pem))
    }
    /// Trusts this DER-encoded CA certificate, in addition to the web PKI roots.
    #[must_use]
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_der.push(der.into());
        self
    }
    /// Whether to trust the bundled web PKI roots (default `true`); set `false` to trust only the
    /// certificates added here.
    #[must_use]
    pub fn webpki_roots(mut self, on: bool) -> Self {
        self.no_webpki_roots = !on;
        self
    }
    /// Presents a client certificate: the chain and the private key (PKCS#8, PKCS#1 or SEC1), as PEM.
    #[must_use]
    pub fn client_identity_pem(mut self, cert_chain: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client_identity_pem = Some((cert_chain.into(), key.into()));
        self
    }
}

/// What to do when a server answers a byte-range request with `200` and the whole resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RangeFallback {
    /// Skip to the asked range, deliver exactly it, and close the connection (the default).
    #[default]
    Slice,
    /// Fail with [`Error::BadRange`](crate::Error::BadRange).
    Error,
}

/// A callback told about every retry and resume, with its cause.
pub type RetryCallback = Arc<dyn Fn(&RetryEvent) + Send + Sync>;

/// Settings of a [`Client`](crate::Client). Start from `ClientConfig::default()` and change what you need.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    pub(crate) user_agent: String,
    pub(crate) timeouts: Timeouts,
    pub(crate) retry: RetryConfig,
    pub(crate) max_redirects: u32,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_host: usize,
    pub(crate) http2: bool,
    pub(crate) http2_prior_knowledge: bool,
    pub(crate) tls: TlsConfig,
    pub(crate) danger_accept_invalid_certs: bool,
    pub(crate) proxy: ProxyConfig,
    pub(crate) rate_limit: Option<u64>,
    pub(crate) max_response_size: u64,
    pub(crate) range_fallback: RangeFallback,
    pub(crate) resume: bool,
    pub(crate) pool_idle_timeout: Duration,
    pub(crate) on_retry: Option<RetryCallback>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("user_agent", &self.user_agent)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("max_redirects", &self.max_redirects)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_host", &self.max_connections_per_host)
            .field("http2", &self.http2)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("tls", &self.tls)
            .field("danger_accept_invalid_certs", &self.danger_accept_invalid_certs)
            .field("proxy", &self.proxy)
            .field("rate_limit", &self.rate_limit)
            .field("max_response_size", &self.max_response_size)
            .field("range_fallback", &self.range_fallback)
            .field("resume", &self.resume)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("on_retry", &self.on_retry.is_some())
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            user_agent: concat!("stowage/", env!("CARGO_PKG_VERSION")).to_owned(),
            timeouts: Timeouts::default(),
            retry: RetryConfig::default(),
            max_redirects: 10,
            max_connections: 64,
            max_connections_per_host: 8,
            http2: true,
            http2_prior_knowledge: false,
            tls: TlsConfig::default(),
            danger_accept_invalid_certs: false,
            proxy: ProxyConfig::default(),
            rate_limit: None,
            max_response_size: 1 << 30,
            range_fallback: RangeFallback::default(),
            resume: true,
            pool_idle_timeout: Duration::from_secs(30),
            on_retry: None,
        }
    }
}

impl ClientConfig {
    /// The `User-Agent` header (default `stowage/<version>`).
    #[must_use]
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }
    /// The retry policy set with [`retry`](Self::retry), for a caller that adjusts it (a download task
    /// holds the retries of one request within its own retry time).
    pub fn retry_config(&self) -> &RetryConfig {
        &self.retry
    }
    /// The deadlines.
    #[must_use]
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = t;
        self
    }
    /// The retry policy.
    #[must_use]
    pub fn retry(mut self, r: RetryConfig) -> Self {
        self.retry = r;
        self
    }
    /// Most redirects followed for one request (default 10).
    #[must_use]
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }
    /// Most requests in flight at once, all hosts together (default 64): a request holds its turn from
    /// sending until its body is read to the end or dropped. With HTTP/1.1 this bounds the connections
    /// in use; idle pooled connections do not hold a turn, so they never keep another host waiting (they
    /// close after [`ClientConfig::pool_idle_timeout`]).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }
    /// Most open connections to one host (scheme, host and port; default 8).
    #[must_use]
    pub fn max_connections_per_host(mut self, n: usize) -> Self {
        self.max_connections_per_host = n.max(1);
        self
    }
    /// Whether to offer HTTP/2 through ALPN on TLS connections (default `true`).
    #[must_use]
    pub fn http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }
    /// Speak HTTP/2 from the first byte on every connection, without negotiation ("prior knowledge";
    /// on plain-text connections this is h2c). Default `false`.
    #[must_use]
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }
    /// TLS settings: extra CA certificates and a client identity.
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }
    /// Accepts any server certificate, for any host. This removes all protection against
    /// impersonation: use it only against test servers you control.
    #[must_use]
    pub fn danger_accept_invalid_certs(mut self, on: bool) -> Self {
        self.danger_accept_invalid_certs = on;
        self
    }
    /// The proxy settings (default: from the environment).
    #[must_use]
    pub fn proxy(mut self, p: ProxyConfig) -> Self {
        self.proxy = p;
        self
    }
    /// A limit on body bytes per second, shared by every connection of the client (default none).
    #[must_use]
    pub fn rate_limit(mut self, bytes_per_second: Option<u64>) -> Self {
        self.rate_limit = bytes_per_second.filter(|&r| r > 0);
        self
    }
    /// Largest response body accepted, in bytes, before and after content decoding (default 1 GiB).
    #[must_use]
    pub fn max_response_size(mut self, bytes: u64) -> Self {
        self.max_response_size = bytes;
        self
    }
    /// What to do with a `200` answer to a byte-range request (default: slice out the asked range).
    #[must_use]
    pub fn range_fallback(mut self, f: RangeFallback) -> Self {
        self.range_fallback = f;
        self
    }
    /// Whether an interrupted body is resumed with a `Range` request (default `true`).
    #[must_use]
    pub fn resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }
    /// How long an idle pooled connection is kept (default 30 s).
    #[must_use]
    pub fn pool_idle_timeout(mut self, d: Duration) -> Self {
        self.pool_idle_timeout = d;
        self
    }
    /// A callback told about every retry and resume, with its cause. It runs on the fetching task:
    /// keep it short.
    #[must_use]
    pub fn on_retry(mut self, f: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(f));
        self
    }
}
