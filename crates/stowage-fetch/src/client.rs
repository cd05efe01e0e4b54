//! The client: requests, responses, redirects, retries, ranges and resumable bodies.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as PooledClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ClientConfig, RangeFallback};
use crate::connect::{ConnInfo, ConnectFailure, Connector};
use crate::counters::{CounterSet, Counters};
use crate::decode::Decoder;
use crate::error::{Error, TimeoutKind, is_retryable_status};
use crate::headers::{parse_content_range, parse_retry_after};
use crate::ratelimit::TokenBucket;
use crate::retry::{RetryCause, RetryEvent, backoff_ceiling, full_jitter};

/// A contiguous byte range of a resource, as in `EXT-X-BYTERANGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ByteRange {
    /// First byte, counted from 0.
    pub offset: u64,
    /// Number of bytes; `None` means to the end of the resource.
    pub length: Option<u64>,
}

impl ByteRange {
    /// `length` bytes starting at `offset`.
    pub fn new(offset: u64, length: u64) -> Self {
        Self { offset, length: Some(length) }
    }

    /// Everything from `offset` to the end.
    pub fn from_offset(offset: u64) -> Self {
        Self { offset, length: None }
    }

    /// The exclusive end, when the length is known.
    pub fn end(&self) -> Option<u64> {
        self.length.map(|l| self.offset.saturating_add(l))
    }
}

/// A GET request: URI, headers, cookies, optional byte range and content decoding.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Request {
    uri: Uri,
    headers: HeaderMap,
    cookies: Vec<(String, String)>,
    range: Option<ByteRange>,
    decode: bool,
    max_size: Option<u64>,
}

impl Request {
    /// A GET request for an `http` or `https` URI.
    pub fn get(uri: &str) -> Result<Self, Error> {
        // The scheme is checked first: `file:` or `skd:` URIs would otherwise fail to parse as HTTP URIs
        // and be reported as malformed rather than as not fetchable.
        if let Some((scheme, _)) = uri.split_once(':')
            && !scheme.is_empty()
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !scheme.eq_ignore_ascii_case("http")
            && !scheme.eq_ignore_ascii_case("https")
            && scheme.as_bytes()[0].is_ascii_alphabetic()
        {
            return Err(Error::UnsupportedScheme { uri: uri.to_owned() });
        }
        let parsed = uri
            .parse::<Uri>()
            .map_err(|e| Error::InvalidUri { uri: uri.to_owned(), reason: e.to_string() })?;
        Self::from_uri(parsed)
    }

    /// A GET request for an already parsed URI.
    pub fn from_uri(uri: Uri) -> Result<Self, Error> {
        check_fetchable(&uri)?;
        Ok(Self {
            uri,
            headers: HeaderMap::new(),
            cookies: Vec::new(),
            range: None,
            decode: false,
            max_size: None,
        })
    }

    /// The URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Adds a header (kept alongside others of the same name).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The headers, for changes beyond [`Request::header`].
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Adds a cookie, sent in one `Cookie` header with the others.
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// Asks for a byte range only. The body then holds exactly that range, whatever the server does,
    /// or the request fails.
    pub fn range(mut self, range: ByteRange) -> Self {
        self.range = Some(range);
        self
    }

    /// Accepts gzip, deflate and br and decodes the body (default off: bodies are delivered as sent,
    /// with `Accept-Encoding: identity`). Meant for playlists; segments are not compressed in transit.
    pub fn decode_content(mut self, on: bool) -> Self {
        self.decode = on;
        self
    }

    /// A size limit for this response, overriding the client's.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }
}

fn check_fetchable(uri: &Uri) -> Result<(), Error> {
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http" | "https") => {}
        Some(_) => return Err(Error::UnsupportedScheme { uri: uri.to_string() }),
        None => return Err(Error::InvalidUri { uri: uri.to_string(), reason: "not absolute".to_owned() }),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(Error::InvalidUri { uri: uri.to_string(), reason: "no host".to_owned() });
    }
    Ok(())
}

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

struct Inner {
    http: PooledClient<Connector, Empty<Bytes>>,
    /// One permit per request in flight (headers to end of body), across all hosts.
    in_flight: Arc<Semaphore>,
    cfg: ClientConfig,
    counters: Arc<CounterSet>,
    bucket: TokenBucket,
}

/// State of one operation, shared by its redirects, retries and resumes.
struct Op {
    started: Instant,
    deadline: Option<Instant>,
    retries: u32,
}

impl Op {
    fn new(cfg: &ClientConfig) -> Self {
        let started = Instant::now();
        Self { started, deadline: cfg.timeouts.total.map(|t| started + t), retries: 0 }
    }

    /// The delay before the next retry, or `None` when the budget (attempts, elapsed time, deadline,
    /// longest `Retry-After`) does not allow one.
    fn plan_retry(&mut self, cfg: &ClientConfig, retry_after: Option<Duration>) -> Option<Duration> {
        let r = &cfg.retry;
        let elapsed = self.started.elapsed();
        if self.retries >= r.max_retries || elapsed >= r.max_elapsed {
            return None;
        }
        let delay = match retry_after {
            Some(ra) if ra > r.max_retry_after => return None,
            Some(ra) => ra,
            None => full_jitter(backoff_ceiling(r, self.retries)),
        };
        if elapsed + delay > r.max_elapsed || self.deadline.is_some_and(|d| Instant::now() + delay >= d) {
            return None;
        }
        self.retries += 1;
        Some(delay)
    }
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
        let mut headers = req.headers.clone();
        let uri_s = req.uri.to_string();
        let invalid = |reason: String| Error::InvalidRequest { uri: uri_s.clone(), reason };
        if !req.cookies.is_empty() {
            let joined: Vec<String> = req.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let v = HeaderValue::from_str(&joined.join("; "))
                .map_err(|_| invalid("invalid cookie".to_owned()))?;
            headers.append(header::COOKIE, v);
        }
        if !headers.contains_key(header::ACCEPT_ENCODING) {
            let ae = if req.decode { "gzip, deflate, br" } else { "identity" };
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(ae));
        }
        if let Some(r) = req.range {
            if r.length == Some(0) {
                return Err(invalid("empty byte range".to_owned()));
            }
            let v = match r.end() {
                Some(end) => format!("bytes={}-{}", r.offset, end - 1),
                None => format!("bytes={}-", r.offset),
            };
            headers.insert(header::RANGE, HeaderValue::from_str(&v).map_err(|e| invalid(e.to_string()))?);
        }
        // Waiting for a turn under the global limit counts against the first-byte and total deadlines.
        let waiting = inner.in_flight.clone().acquire_owned();
        let permit = inner
            .timed(waiting, inner.cfg.timeouts.first_byte, TimeoutKind::FirstByte, &op, &req.uri)
            .await?
            .map_err(|_| Error::Config("client is shut down".to_owned()))?;
        let (resp, uri) = inner.send(req.uri.clone(), &headers, &mut op).await?;
        let (parts, incoming) = resp.into_parts();
        // A Range header only matters for the first exchange; resumes set their own.
        headers.remove(header::RANGE);
        let uri_str = uri.to_string();
        let max_size = req.max_size.unwrap_or(inner.cfg.max_response_size);
        let content_length = header_u64(&parts.headers, &header::CONTENT_LENGTH);
        let bad_range = |reason: String| Error::BadRange { uri: uri_str.clone(), reason };
        let (pos, start, end, sliced, complete_length) = match (req.range, parts.status) {
            (Some(r), StatusCode::PARTIAL_CONTENT) => {
                let cr = parts
                    .headers
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range)
                    .ok_or_else(|| bad_range("206 without a valid Content-Range".to_owned()))?;
                if cr.first > r.offset || cr.last < r.offset {
                    return Err(bad_range(format!(
                        "asked from byte {}, got bytes {}-{}",
                        r.offset, cr.first, cr.last
                    )));
                }
                if content_length.is_some_and(|cl| cl != cr.len()) {
                    return Err(bad_range("Content-Length does not match Content-Range".to_owned()));
                }
                let end = match r.end() {
                    Some(want) => {
                        if cr.complete_length.is_some_and(|c| c < want) {
                            return Err(bad_range(format!(
                                "asked bytes {}-{}, but the resource has only {} bytes",
                                r.offset,
                                want - 1,
                                cr.complete_length.unwrap_or_default()
                            )));
                        }
                        want
                    }
                    None => cr.complete_length.unwrap_or(cr.last + 1),
                };
                let sliced = cr.first < r.offset || cr.last + 1 > end;
                (cr.first, r.offset, Some(end), sliced, cr.complete_length)
            }
            (Some(r), StatusCode::OK) => {
                if inner.cfg.range_fallback == RangeFallback::Error {
                    return Err(bad_range(
                        "the server ignored the range and sent the whole resource".to_owned(),
                    ));
                }
                if let Some(cl) = content_length
                    && (r.offset >= cl || r.end().is_some_and(|e| e > cl))
                {
                    return Err(bad_range(format!(
                        "asked from byte {}, but the resource has only {cl} bytes",
                        r.offset
                    )));
                }
                (0, r.offset, r.end().or(content_length), true, content_length)
            }
            (Some(_), status) => return Err(bad_range(format!("status {status} to a range request"))),
            (None, StatusCode::PARTIAL_CONTENT) => {
                return Err(bad_range("206 to a request without a range".to_owned()));
            }
            (None, _) => (0, 0, content_length, false, content_length),
        };
        if let Some(end) = end
            && end - start > max_size
        {
            return Err(Error::TooLarge { uri: uri_str, limit: max_size });
        }
        let decoder = if req.decode {
            match parts.headers.get(header::CONTENT_ENCODING) {
                Some(v) => {
                    let enc = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    Decoder::for_encoding(&enc)
                        .map_err(|message| Error::Decode {
                            uri: uri_str.clone(),
                            encoding: enc.clone(),
                            message,
                        })?
                        .map(|d| (d, enc))
                }
                None => None,
            }
        } else {
            None
        };
        let body = Body {
            inner: inner.clone(),
            host: host_key(&uri),
            uri,
            uri_str: uri_str.clone(),
            headers,
            incoming: Some(incoming),
            pos,
            start,
            first: start,
            end,
            sliced,
            complete_length,
            etag: parts.headers.get(header::ETAG).cloned(),
            last_modified: parts.headers.get(header::LAST_MODIFIED).cloned(),
            delivered: 0,
            decoder,
            decoded: 0,
            max_size,
            op,
            done: false,
            permit: Some(permit),
        };
        Ok(Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            uri: uri_str,
            length: end.map(|e| e - start),
            body,
        })
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

fn header_u64(h: &HeaderMap, name: &HeaderName) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn host_key(uri: &Uri) -> String {
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    format!("{}:{port}", uri.host().unwrap_or_default())
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
    async fn timed<F: Future>(
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
                    ConnectFailure::Tls(message) => Error::Tls { uri, message: message.clone() },
                    ConnectFailure::Other(message) => Error::Connect { uri, message: message.clone() },
                };
            }
            src = s.source();
        }
        if e.is_connect() {
            Error::Connect { uri: uri.to_string(), message: error_chain(e) }
        } else {
            Error::Transfer { uri: uri.to_string(), message: error_chain(e) }
        }
    }

    fn report_retry(
        &self,
        uri: &Uri,
        retry: u32,
        cause: RetryCause,
        delay: Duration,
        resume_from: Option<u64>,
    ) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        if let Some(cb) = &self.cfg.on_retry {
            cb(&RetryEvent { uri: uri.to_string(), retry, cause, delay, resume_from });
        }
    }

    /// Sends a request, following redirects and retrying transient failures, until a success status.
    async fn send(
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
            let Some(delay) = op.plan_retry(&self.cfg, retry_after) else {
                return Err(err);
            };
            self.report_retry(&current, op.retries, cause, delay, None);
            tokio::time::sleep(delay).await;
        }
    }
}

/// A response whose headers are in; the body is read with [`Response::into_body`] or
/// [`Response::bytes`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    uri: String,
    length: Option<u64>,
    body: Body,
}

impl Response {
    /// The status (`200`, or `206` for a range request; a `200` answer to a range request is sliced).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version spoken.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The final URI, after redirects: relative URIs in a playlist resolve against it.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// How many bytes the body will deliver before content decoding, when known: the asked range, or
    /// the declared length. The body is checked against it.
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }

    /// The body, as a stream of chunks.
    pub fn into_body(self) -> Body {
        self.body
    }

    /// Reads the whole body into memory.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let length = self.length;
        let mut body = self.body;
        let mut buf = BytesMut::with_capacity(length.unwrap_or(0).min(64 << 20) as usize);
        let mut first: Option<Bytes> = None;
        while let Some(chunk) = body.chunk().await? {
            // A body of a single chunk is returned as is, without a copy.
            if buf.is_empty() && first.is_none() {
                first = Some(chunk);
                continue;
            }
            if let Some(f) = first.take() {
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    }
}

/// A response body: `Bytes` chunks as they arrive, with bounded buffering.
///
/// Reading is pull-based: nothing more is read from the connection until [`Body::chunk`] is called
/// again, so a slow consumer slows the transfer instead of filling memory. An interrupted transfer is
/// resumed from the next byte with a `Range` request validated by `If-Range`, invisibly to the reader
/// apart from the [`RetryEvent`]. The body ends exactly at the declared length or asked range: fewer
/// or more bytes are an error, never a silently short or long result.
pub struct Body {
    inner: Arc<Inner>,
    uri: Uri,
    uri_str: String,
    host: String,
    headers: HeaderMap,
    incoming: Option<Incoming>,
    /// Position in the resource of the next byte the connection delivers.
    pos: u64,
    /// First byte position still to deliver to the reader.
    start: u64,
    /// First byte position asked for, for reports.
    first: u64,
    /// Exclusive end position, when known.
    end: Option<u64>,
    /// Whether the server sends more than is wanted, to be cut off (a `200` to a range request).
    sliced: bool,
    complete_length: Option<u64>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    delivered: u64,
    decoder: Option<(Decoder, String)>,
    decoded: u64,
    max_size: u64,
    op: Op,
    done: bool,
    /// The client's in-flight permit, released as soon as the body is over.
    permit: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("uri", &self.uri_str)
            .field("position", &self.start)
            .field("end", &self.end)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Body {
    /// The next chunk, or `None` at the end of the body. After an error the body is over: later calls
    /// return `Ok(None)`.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let result = self.next_chunk().await;
        if result.is_err() {
            self.done = true;
            self.incoming = None;
            self.decoder = None;
        }
        if self.done {
            self.permit = None;
        }
        result
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if self.done {
                return Ok(None);
            }
            let Some(incoming) = self.incoming.as_mut() else {
                return self.finish();
            };
            let stall = self.inner.cfg.timeouts.stall;
            let frame =
                self.inner.timed(incoming.frame(), stall, TimeoutKind::Stall, &self.op, &self.uri).await;
            let failure = match frame {
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    match self.accept(data).await? {
                        Some(out) => return Ok(Some(out)),
                        None => continue,
                    }
                }
                Ok(None) => match self.end {
                    Some(end) if self.pos < end => Error::BodyTooShort {
                        uri: self.uri_str.clone(),
                        expected: end - self.first,
                        received: self.start - self.first,
                    },
                    _ => {
                        self.incoming = None;
                        return self.finish();
                    }
                },
                // A connection that fails mid-body is reported as what it means for the reader: a short
                // body, when the expected length is known.
                Ok(Some(Err(e))) => match self.end {
                    Some(end) => Error::BodyTooShort {
                        uri: self.uri_str.clone(),
                        expected: end - self.first,
                        received: self.start - self.first,
                    },
                    None => Error::Transfer { uri: self.uri_str.clone(), message: error_chain(&e) },
                },
                Err(e) => e,
            };
            self.incoming = None;
            self.resume(failure).await?;
        }
    }

    /// Bytes delivered so far (before content decoding).
    pub fn received(&self) -> u64 {
        self.delivered
    }

    /// Takes a chunk from the connection: trims it to the wanted range, checks limits, applies the rate
    /// limit and decodes. Returns what the reader gets, if anything.
    async fn accept(&mut self, data: Bytes) -> Result<Option<Bytes>, Error> {
        let n = data.len() as u64;
        let now = Instant::now();
        self.inner.counters.received(&self.host, n, now);
        let chunk_start = self.pos;
        self.pos += n;
        let from = self.start.saturating_sub(chunk_start).min(n);
        let mut to = n;
        let mut finished = false;
        if let Some(end) = self.end {
            if self.pos > end {
                if !self.sliced {
                    self.incoming = None;
                    self.done = true;
                    return Err(Error::BodyTooLong { uri: self.uri_str.clone(), expected: end - self.first });
                }
                to = end.saturating_sub(chunk_start).min(n);
            }
            if self.sliced && self.pos >= end {
                // The rest of the answer is not wanted: closing the connection is cheaper than reading it.
                finished = true;
                self.incoming = None;
            }
        }
        let data = if from < to { data.slice(from as usize..to as usize) } else { Bytes::new() };
        self.start = self.start.max(chunk_start + to);
        self.delivered += data.len() as u64;
        if self.delivered > self.max_size {
            self.done = true;
            self.incoming = None;
            return Err(Error::TooLarge { uri: self.uri_str.clone(), limit: self.max_size });
        }
        let wait = self.inner.bucket.take(n, now);
        if !wait.is_zero() {
            if self.op.deadline.is_some_and(|d| now + wait >= d) {
                return Err(Error::Timeout {
                    uri: self.uri_str.clone(),
                    kind: TimeoutKind::Total,
                    after: self.inner.cfg.timeouts.total.unwrap_or_default(),
                });
            }
            tokio::time::sleep(wait).await;
        }
        let out = match &mut self.decoder {
            None => data,
            Some((d, enc)) => {
                let out = d.push(&data).map_err(|e| Error::Decode {
                    uri: self.uri_str.clone(),
                    encoding: enc.clone(),
                    message: e.to_string(),
                })?;
                self.decoded += out.len() as u64;
                if self.decoded > self.max_size {
                    self.done = true;
                    return Err(Error::TooLarge { uri: self.uri_str.clone(), limit: self.max_size });
                }
                out
            }
        };
        if finished {
            let tail = self.finish()?;
            if out.is_empty() {
                return Ok(tail);
            }
            if let Some(t) = tail {
                let mut joined = BytesMut::from(&out[..]);
                joined.extend_from_slice(&t);
                return Ok(Some(joined.freeze()));
            }
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    /// Ends the body: flushes the decoder, if any.
    fn finish(&mut self) -> Result<Option<Bytes>, Error> {
        self.done = true;
        let Some((mut d, enc)) = self.decoder.take() else { return Ok(None) };
        let tail = d.finish().map_err(|e| Error::Decode {
            uri: self.uri_str.clone(),
            encoding: enc.clone(),
            message: e.to_string(),
        })?;
        self.decoded += tail.len() as u64;
        if self.decoded > self.max_size {
            return Err(Error::TooLarge { uri: self.uri_str.clone(), limit: self.max_size });
        }
        Ok(if tail.is_empty() { None } else { Some(tail) })
    }

    /// The validator for `If-Range`: a strong ETag, else Last-Modified (weak ETags are not allowed there).
    fn validator(&self) -> Option<HeaderValue> {
        match &self.etag {
            Some(e) if !e.as_bytes().starts_with(b"W/") => Some(e.clone()),
            _ => self.last_modified.clone(),
        }
    }

    /// Resumes after `failure` with a range request from the next wanted byte, or returns `failure` when
    /// it cannot be resumed (not transient, resumption off, or the retry budget spent).
    async fn resume(&mut self, failure: Error) -> Result<(), Error> {
        let inner = self.inner.clone();
        if !inner.cfg.resume || !failure.is_transient() {
            self.done = true;
            return Err(failure);
        }
        let at = self.start;
        let cause = match &failure {
            Error::BodyTooShort { expected, received, .. } => {
                RetryCause::ShortBody { expected: *expected, received: *received }
            }
            Error::Timeout { kind, .. } => RetryCause::Timeout(*kind),
            other => RetryCause::Transfer(other.to_string()),
        };
        let Some(delay) = self.op.plan_retry(&inner.cfg, None) else {
            self.done = true;
            return Err(failure);
        };
        inner.report_retry(&self.uri, self.op.retries, cause, delay, Some(at));
        inner.counters.resumes.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;

        let mut headers = self.headers.clone();
        let range = match self.end {
            Some(end) => format!("bytes={at}-{}", end - 1),
            None => format!("bytes={at}-"),
        };
        headers.insert(
            header::RANGE,
            HeaderValue::from_str(&range).unwrap_or(HeaderValue::from_static("bytes=0-")),
        );
        let validator = self.validator();
        if let Some(v) = &validator {
            headers.insert(header::IF_RANGE, v.clone());
        }
        let result = inner.send(self.uri.clone(), &headers, &mut self.op).await;
        let (resp, _) = match result {
            Ok(r) => r,
            // "Range not satisfiable": the rest the first answer declared does not exist, so the first
            // answer's short body is the error to report.
            Err(Error::Status { status: 416, .. }) => {
                self.done = true;
                return Err(failure);
            }
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        let changed = || Error::ResourceChanged { uri: self.uri_str.clone() };
        let bad_range = |reason: String| Error::BadRange { uri: self.uri_str.clone(), reason };
        let h = resp.headers();
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let cr = h
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range)
                    .ok_or_else(|| bad_range("206 without a valid Content-Range on resume".to_owned()))?;
                if cr.first > at || cr.last < at {
                    self.done = true;
                    return Err(bad_range(format!(
                        "resumed from byte {at}, got bytes {}-{}",
                        cr.first, cr.last
                    )));
                }
                if let (Some(known), Some(now)) = (self.complete_length, cr.complete_length)
                    && known != now
                {
                    self.done = true;
                    return Err(changed());
                }
                if self.end.is_none() {
                    self.end = cr.complete_length;
                }
                self.pos = cr.first;
                self.sliced = self.sliced || cr.first < at || self.end.is_some_and(|e| cr.last + 1 > e);
            }
            StatusCode::OK => {
                // Either the validator did not match (the resource changed), or the server ignores ranges.
                let same = |a: &Option<HeaderValue>, b: Option<&HeaderValue>| {
                    a.as_ref().is_some_and(|a| Some(a) == b)
                };
                let validated = same(&self.etag, h.get(header::ETAG))
                    || (self.etag.is_none() && same(&self.last_modified, h.get(header::LAST_MODIFIED)));
                let cl = header_u64(h, &header::CONTENT_LENGTH);
                let length_agrees = match (self.complete_length, cl) {
                    (Some(a), Some(b)) => a == b,
                    _ => validator.is_none(),
                };
                if (validator.is_some() && !validated) || !length_agrees {
                    self.done = true;
                    return Err(changed());
                }
                self.pos = 0;
                self.sliced = true;
            }
            other => {
                self.done = true;
                return Err(bad_range(format!("status {other} to a resume request")));
            }
        }
        self.incoming = Some(resp.into_body());
        Ok(())
    }
}
