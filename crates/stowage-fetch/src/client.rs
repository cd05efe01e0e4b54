//! The client: connection pool, limits, deadlines, redirects and retries, up to the response headers.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as PooledClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Semaphore;

use crate::body::Response;
use crate::config::ClientConfig;
use crate::connect::{ConnInfo, ConnectFailure, Connector};
use crate::counters::{CounterSet, Counters};
use crate::error::{Error, TimeoutKind, is_retryable_status};
use crate::headers::parse_retry_after;
use crate::ratelimit::TokenBucket;
use crate::request::{Request, check_fetchable};
use crate::retry::{RetryCause, RetryEvent, backoff_ceiling, full_jitter};

/// An HTTP(S) client for HLS downloads; cheap to clone (clones share connections, limits and counters).
///
/// Build one per application with [`Client::new`] inside a tokio runtime and share it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("config", &self.inner.cfg).finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) http: PooledClient<Connector, Empty<Bytes>>,
    /// One permit per request in flight (headers to end of body), across all hosts.
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) cfg: ClientConfig,
    pub(crate) counters: Arc<CounterSet>,
    pub(crate) bucket: TokenBucket,
}

/// State of one operation, shared by its redirects, retries and resumes.
pub(crate) struct Op {
    pub(crate) started: Instant,
    pub(crate) deadline: Option<Instant>,
    pub(crate) retries: u32,
}

impl Op {
    pub(crate) fn new(cfg: &ClientConfig) -> Self {
        let started = Instant::now();
        Self { started, deadline: cfg.timeouts.total.map(|t| started + t), retries: 0 }
    }

    /// The delay before the next retry, or why there is none: the budget (attempts, elapsed time,
    /// deadline) is spent, or the server's `Retry-After` is longer than allowed.
    pub(crate) fn plan_retry(
        &mut self,
        cfg: &ClientConfig,
        retry_after: Option<Duration>,
    ) -> Result<Duration, NoRetry> {
        let r = &cfg.retry;
        if let Some(ra) = retry_after
            && ra > r.max_retry_after
        {
            return Err(NoRetry::RetryAfterTooLong { retry_after: ra, limit: r.max_retry_after });
        }
        let elapsed = self.started.elapsed();
        if self.retries >= r.max_retries || elapsed >= r.max_elapsed {
            return Err(NoRetry::Spent);
        }
        let delay = match retry_after {
            Some(ra) => ra,
            None => full_jitter(backoff_ceiling(r, self.retries)),
        };
        // A backoff of our own that would end past the elapsed budget is not worth starting; a wait the
        // server asked for is, within `max_retry_after`: the server said when it will answer.
        if (retry_after.is_none() && elapsed + delay > r.max_elapsed)
            || self.deadline.is_some_and(|d| Instant::now() + delay >= d)
        {
            return Err(NoRetry::Spent);
        }
        self.retries += 1;
        Ok(delay)
    }
}

/// Why a failed request is not tried again.
pub(crate) enum NoRetry {
    /// The attempts, the elapsed time or the total deadline are spent: the last failure stands.
    Spent,
    /// The server asked for a longer wait than allowed.
    RetryAfterTooLong { retry_after: Duration, limit: Duration },
}

impl Client {
    /// Builds a client. Fails on an unusable configuration (unreadable certificates, a malformed proxy).
    pub fn new(cfg: ClientConfig) -> Result<Self, Error> {
        let counters = Arc::new(CounterSet::default());
        let connector = Connector::new(&cfg, counters.clone())?;
        let mut b = PooledClient::builder(TokioExecutor::new());
        b.pool_idle_timeout(cfg.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_max_idle_per_host(cfg.max_connections_per_host)
            .http2_only(cfg.http2_prior_knowledge)
            // Large HTTP/2 windows keep a single fast stream from stalling on flow control; they also
            // bound how much one stream can buffer, so memory stays bounded.
            .http2_initial_stream_window_size(2 << 20)
            .http2_initial_connection_window_size(8 << 20)
            // A body chunk handed out by an HTTP/1 connection shares the allocation of the read buffer
            // it was cut from, so every chunk a consumer still holds pins a whole buffer. hyper's
            // adaptive buffer grows to about 400 kB on a fast link, which made each request in flight
            // cost about 2 MB of memory; 64 kB reads keep it near 0.3 MB at no measurable cost in speed.
            .http1_max_buf_size(HTTP1_MAX_BUF)
            .retry_canceled_requests(true);
        let http = b.build(connector);
        let bucket = TokenBucket::new(cfg.rate_limit.unwrap_or(0));
        let in_flight = Arc::new(Semaphore::new(cfg.max_connections));
        Ok(Self { inner: Arc::new(Inner { http, in_flight, cfg, counters, bucket }) })
    }

    /// Sends a GET request, following redirects and retrying as configured, and returns once the
    /// response headers are in. The body is read from the [`Response`].
    pub async fn get(&self, req: Request) -> Result<Response, Error> {
        let inner = &self.inner;
        let mut op = Op::new(&inner.cfg);
        let mut headers = req.wire_headers()?;
        // Waiting for a turn under the global limit counts against the first-byte and total deadlines.
        let waiting = inner.in_flight.clone().acquire_owned();
        let permit = inner
            .timed(waiting, inner.cfg.timeouts.first_byte, TimeoutKind::FirstByte, &op, &req.uri)
            .await?
            .map_err(|_| Error::Config("client is shut down".to_owned()))?;
        let (resp, uri) = inner.send(req.uri.clone(), &headers, &mut op).await?;
        // A Range header only matters for the first exchange; resumes set their own.
        headers.remove(header::RANGE);
        Response::start(Arc::clone(inner), &req, resp, uri, headers, op, permit)
    }

    /// Fetches a whole body into memory (for playlists, keys and small segments).
    pub async fn get_bytes(&self, req: Request) -> Result<Bytes, Error> {
        self.get(req).await?.bytes().await
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.inner.counters.snapshot()
    }

    /// Changes the shared rate limit, in body bytes per second (`None`: unlimited), effective at once.
    pub fn set_rate_limit(&self, bytes_per_second: Option<u64>) {
        self.inner.bucket.set_rate(bytes_per_second.unwrap_or(0));
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }
}

pub(crate) fn host_key(uri: &Uri) -> String {
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    format!("{}:{port}", uri.host().unwrap_or_default())
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}

/// Largest read buffer of an HTTP/1 connection, in bytes (see [`Client::new`]).
const HTTP1_MAX_BUF: usize = 64 << 10;

const REDIRECTS: [StatusCode; 5] = [
    StatusCode::MOVED_PERMANENTLY,
    StatusCode::FOUND,
    StatusCode::SEE_OTHER,
    StatusCode::TEMPORARY_REDIRECT,
    StatusCode::PERMANENT_REDIRECT,
];

impl Inner {
    /// Runs `fut` under the stage deadline `stage` and the operation's total deadline.
    pub(crate) async fn timed<F: Future>(
        &self,
        fut: F,
        stage: Option<Duration>,
        kind: TimeoutKind,
        op: &Op,
        uri: &Uri,
    ) -> Result<F::Output, Error> {
        let stage_at = stage.map(|d| Instant::now() + d);
        let (at, which, after) = match (stage_at, op.deadline) {
            (None, None) => return Ok(fut.await),
            (Some(s), Some(t)) if t < s => (t, TimeoutKind::Total, self.cfg.timeouts.total),
            (Some(s), _) => (s, kind, stage),
            (None, Some(t)) => (t, TimeoutKind::Total, self.cfg.timeouts.total),
        };
        tokio::time::timeout_at(at.into(), fut).await.map_err(|_| Error::Timeout {
            uri: uri.to_string(),
            kind: which,
            after: after.unwrap_or_default(),
        })
    }

    /// One request on the wire.
    async fn send_once(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        op: &Op,
    ) -> Result<hyper::Response<Incoming>, Error> {
        let mut req = hyper::Request::new(Empty::<Bytes>::new());
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers.clone();
        if !req.headers().contains_key(header::USER_AGENT)
            && let Ok(ua) = HeaderValue::from_str(&self.cfg.user_agent)
        {
            req.headers_mut().insert(header::USER_AGENT, ua);
        }
        self.counters.request(&host_key(uri));
        let sent = self.http.request(req);
        let resp = self
            .timed(sent, self.cfg.timeouts.first_byte, TimeoutKind::FirstByte, op, uri)
            .await?
            .map_err(|e| self.send_error(&e, uri))?;
        if let Some(info) = resp.extensions().get::<ConnInfo>()
            && info.uses.fetch_add(1, Ordering::Relaxed) > 0
        {
            self.counters.reused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(resp)
    }

    fn send_error(&self, e: &hyper_util::client::legacy::Error, uri: &Uri) -> Error {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = src {
            if let Some(cf) = s.downcast_ref::<ConnectFailure>() {
                let uri = uri.to_string();
                return match cf {
                    ConnectFailure::Timeout => Error::Timeout {
                        uri,
                        kind: TimeoutKind::Connect,
                        after: self.cfg.timeouts.connect.unwrap_or_default(),
                    },
                    ConnectFailure::TlsTimeout => Error::Timeout {
                        uri,
                        kind: TimeoutKind::TlsHandshake,
                        after: self.cfg.timeouts.tls_handshake.unwrap_or_default(),
                    },
                    ConnectFailure::Tls(message) => Error::Tls { uri, message: message.clone() },
                    ConnectFailure::Other(message) => Error::Connect { uri, message: message.clone() },
                };
            }
            // A malformed answer (conflicting `Content-Length` headers, a broken status line) is what
            // the server sends; asking again gets the same.
            if let Some(h) = s.downcast_ref::<hyper::Error>()
                && h.is_parse()
            {
                return Error::Protocol { uri: uri.to_string(), message: error_chain(h) };
            }
            src = s.source();
        }
        if e.is_connect() {
            Error::Connect { uri: uri.to_string(), message: error_chain(e) }
        } else {
            Error::Transfer { uri: uri.to_string(), message: error_chain(e) }
        }
    }

    pub(crate) fn report_retry(
        &self,
        uri: &Uri,
        retry: u32,
        cause: RetryCause,
        delay: Duration,
        retry_after: Option<Duration>,
        resume_from: Option<u64>,
    ) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        if let Some(cb) = &self.cfg.on_retry {
            let until = SystemTime::now().checked_add(delay).unwrap_or(SystemTime::now());
            cb(&RetryEvent { uri: uri.to_string(), retry, cause, delay, retry_after, until, resume_from });
        }
    }

    /// Sends a request, following redirects and retrying transient failures, until a success status.
    pub(crate) async fn send(
        &self,
        uri: Uri,
        headers: &HeaderMap,
        op: &mut Op,
    ) -> Result<(hyper::Response<Incoming>, Uri), Error> {
        let first = uri.to_string();
        let mut current = uri;
        let mut visited = HashSet::from([first.clone()]);
        let mut redirects = 0;
        loop {
            let (err, cause, retry_after) = match self.send_once(&current, headers, op).await {
                Ok(resp) if REDIRECTS.contains(&resp.status()) => {
                    let from = current.to_string();
                    let bad =
                        |reason: &str| Error::BadRedirect { uri: from.clone(), reason: reason.to_owned() };
                    let loc = resp
                        .headers()
                        .get(header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .ok_or_else(|| bad("no Location header"))?;
                    let next = crate::uri::resolve(&current, loc).map_err(|r| bad(&r))?;
                    match next.scheme_str() {
                        Some("http") if current.scheme_str() == Some("https") => {
                            return Err(Error::InsecureRedirect { from, to: next.to_string() });
                        }
                        Some("http" | "https") => {}
                        _ => return Err(bad(&format!("redirect to unsupported scheme: {next}"))),
                    }
                    check_fetchable(&next).map_err(|_| bad(&format!("unusable target {next}")))?;
                    redirects += 1;
                    if redirects > self.cfg.max_redirects {
                        return Err(Error::TooManyRedirects { uri: first, limit: self.cfg.max_redirects });
                    }
                    if !visited.insert(next.to_string()) {
                        return Err(Error::RedirectLoop { uri: next.to_string() });
                    }
                    current = next;
                    continue;
                }
                Ok(resp) if resp.status().is_success() => return Ok((resp, current)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let err = Error::Status { uri: current.to_string(), status, retry_after };
                    if !is_retryable_status(status) {
                        return Err(err);
                    }
                    (err, RetryCause::Status(status), retry_after)
                }
                Err(e) if e.is_transient() => {
                    let cause = match &e {
                        Error::Timeout { kind, .. } => RetryCause::Timeout(*kind),
                        Error::Connect { message, .. } => RetryCause::Connect(message.clone()),
                        other => RetryCause::Transfer(other.to_string()),
                    };
                    (e, cause, None)
                }
                Err(e) => return Err(e),
            };
            let delay = match op.plan_retry(&self.cfg, retry_after) {
                Ok(delay) => delay,
                Err(NoRetry::Spent) => return Err(err),
                Err(NoRetry::RetryAfterTooLong { retry_after, limit }) => {
                    return Err(Error::RetryAfterTooLong {
                        uri: current.to_string(),
                        status: err.status().unwrap_or_default(),
                        retry_after,
                        limit,
                    });
                }
            };
            self.report_retry(&current, op.retries, cause, delay, retry_after, None);
            tokio::time::sleep(delay).await;
        }
    }
}
