//! The accept loop, the connection driver and the request handler.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::clock::Clock;
use crate::fault::{Cut, Effects, Fault, Faults};
use crate::files::{Files, Resource};
use crate::live::LiveState;
use crate::log::{RequestLog, RequestRecord};
use crate::poison::lock;

/// How long a graceful shutdown waits for open connections before closing them.
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an HTTP/2 stream waits after its last bytes before being reset, so that they are usually on the
/// wire first (HTTP/2 gives no signal that a stream's data has been flushed).
const H2_RESET_DELAY: Duration = Duration::from_millis(20);

/// What the accept loop is told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Running,
    Graceful,
    Now,
}

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) files: Files,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    pub(crate) chunk_size: usize,
    /// The clock fault windows and the live stream go by.
    pub(crate) clock: Clock,
    /// The live stream served beside the files, if any.
    pub(crate) live: Option<Arc<LiveState>>,
}

/// Accepts connections until told to stop, serving each on its own task. While a [`Fault::Refuse`] rule
/// is in force the listening socket is closed (and the open connections with it), then bound again to
/// `addr`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
    #[cfg(feature = "tls")] tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<Stop>,
) {
    let mut connections = JoinSet::new();
    let next_id = AtomicU64::new(0);
    let mut listener = Some(listener);
    let mut rule_changes = shared.faults.changes();
    let mut clock_changes = shared.clock.changes();
    loop {
        let now = shared.clock.now();
        if let Some(until) = shared.faults.refusing(now) {
            // Closing the listener makes the kernel refuse new connections; aborting the connection tasks
            // drops their sockets.
            listener = None;
            connections.abort_all();
            tokio::select! {
                () = shared.clock.wait_until_opt(until) => {}
                _ = rule_changes.changed() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() != Stop::Running {
                        break;
                    }
                }
            }
            continue;
        }
        if listener.is_none() {
            listener = rebind(addr);
        }
        let Some(accepting) = listener.as_ref() else {
            // The port is briefly unavailable (for example still being released); try again soon.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let next_refusal = shared.faults.next_refusal(now);
        tokio::select! {
            // A refusal window opens, the rules change, or the clock is moved: look again.
            () = shared.clock.wait_until_opt(next_refusal) => {}
            _ = rule_changes.changed() => {}
            _ = clock_changes.changed() => {}
            accepted = accepting.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Accept errors (for example too many open files) are transient; back off briefly.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                // Segments are small and latency matters more than packet count on loopback.
                let _ = stream.set_nodelay(true);
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&shared);
                let builder = builder.clone();
                let stop = stop.clone();
                #[cfg(feature = "tls")]
                let tls = tls.clone();
                connections.spawn(async move {
                    #[cfg(feature = "tls")]
                    if let Some(acceptor) = tls {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_connection(stream, id, shared, builder, stop).await;
                        }
                        return;
                    }
                    serve_connection(stream, id, shared, builder, stop).await;
                });
            }
            // Reap finished connections so the set does not grow with the number ever accepted.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() != Stop::Running {
                    break;
                }
            }
        }
    }
    drop(listener);
    if *stop.borrow() == Stop::Graceful {
        let drain = async { while connections.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(GRACEFUL_TIMEOUT, drain).await;
    }
    connections.shutdown().await;
}

/// Binds the listening socket again after a refusal. The standard library sets `SO_REUSEADDR` on Unix, so
/// connections of the previous socket lingering in `TIME_WAIT` do not hold the port.
fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    let listener = std::net::TcpListener::bind(addr).ok()?;
    listener.set_nonblocking(true).ok()?;
    TcpListener::from_std(listener).ok()
}

/// Serves one connection until it ends, is cut by a fault, or the origin stops.
async fn serve_connection<S>(
    io: S,
    id: u64,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
    mut stop: watch::Receiver<Stop>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState { id, end: Mutex::new(None), close: Notify::new() });
    let tap = Tap { inner: io, state: Arc::clone(&state), injecting: None, closed: false };
    let service_state = Arc::clone(&state);
    let service =
        hyper::service::service_fn(move |req| handle(req, Arc::clone(&shared), Arc::clone(&service_state)));
    let conn = builder.serve_connection(TokioIo::new(tap), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // A fault asked for the connection to be closed: dropping it closes the socket.
        () = state.close.notified() => {}
        () = stopping(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = state.close.notified() => {}
            }
        }
    }
}

/// Resolves once the origin is told to stop (or is gone).
async fn stopping(stop: &mut watch::Receiver<Stop>) {
    loop {
        // The borrow ends before the await, so the future stays `Send`.
        if *stop.borrow_and_update() != Stop::Running {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// What a body asks of its connection once its last bytes have been handed over.
#[derive(Debug)]
enum EndAction {
    /// Close the connection once everything written so far is flushed.
    Close,
    /// Write these bytes directly (past hyper's framing), then close.
    Inject(Bytes),
}

/// Per-connection state shared between the IO wrapper, the driver and the bodies.
#[derive(Debug)]
struct ConnState {
    id: u64,
    end: Mutex<Option<EndAction>>,
    close: Notify,
}

impl ConnState {
    fn set_end(&self, action: EndAction) {
        *lock(&self.end) = Some(action);
    }

    fn take_end(&self) -> Option<EndAction> {
        lock(&self.end).take()
    }
}

/// Wraps a connection's IO so that faults can end it at an exact byte.
///
/// hyper flushes its write buffer completely before calling `poll_flush` on the IO, so when a body has
/// handed over its last bytes and set an end action, the next `poll_flush` here sees every one of those
/// bytes written: only then is the connection closed (or the extra bytes written). Without this, hyper
/// would drop buffered bytes on a body error, and the cut point would be unpredictable.
struct Tap<S> {
    inner: S,
    state: Arc<ConnState>,
    injecting: Option<Bytes>,
    closed: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.closed {
            // Nothing may follow a cut; the driver is about to drop the connection.
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        if this.injecting.is_none() {
            match this.state.take_end() {
                None => return Poll::Ready(Ok(())),
                Some(EndAction::Close) => {
                    this.closed = true;
                    this.state.close.notify_one();
                    return Poll::Ready(Ok(()));
                }
                Some(EndAction::Inject(bytes)) => this.injecting = Some(bytes),
            }
        }
        if let Some(bytes) = &mut this.injecting {
            while bytes.has_remaining() {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, bytes.chunk()))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                bytes.advance(n);
            }
            ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        }
        this.injecting = None;
        this.closed = true;
        this.state.close.notify_one();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Answers one request: faults first, then the file with range and validator handling.
async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
) -> Result<Response<FaultBody>, Infallible> {
    let received = Instant::now();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let header_str =
        |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let range = header_str(header::RANGE);
    let if_range = header_str(header::IF_RANGE);
    let method = req.method().clone();
    let version = req.version();

    let effects = shared.faults.evaluate_request(&path, query.as_deref(), req.headers());
    if let Some(until) = effects.black_hole {
        let record = RequestRecord {
            index: 0,
            connection: conn.id,
            method,
            path,
            query,
            range,
            if_range,
            version,
            status: 0,
            bytes_sent: 0,
            completed: false,
            faults: effects.fired.clone(),
            received,
        };
        shared.log.push(record);
        shared.clock.wait_until_opt(until).await;
        // The connection dies unanswered; the driver drops it, and this future with it.
        conn.close.notify_one();
        let never: Infallible = std::future::pending().await;
        match never {}
    }
    if !effects.latency.is_zero() {
        tokio::time::sleep(effects.latency).await;
    }

    // A fault that replaces the response comes first; otherwise the live stream answers its own paths.
    let resource = match (&shared.live, &effects.replace) {
        (Some(live), None) if method == Method::GET || method == Method::HEAD => {
            live.answer(&path, query.as_deref()).await
        }
        _ => None,
    };
    let (status, headers, body) = match resource {
        Some(Ok(resource)) => respond_with(resource, range.as_deref(), if_range.as_deref(), &effects),
        Some(Err(refusal)) => text_answer(refusal.status.as_u16(), format!("{}\n", refusal.reason)),
        None => respond(&shared.files, &method, &path, range.as_deref(), if_range.as_deref(), &effects),
    };
    let record = RequestRecord {
        index: 0,
        connection: conn.id,
        method: method.clone(),
        path,
        query,
        range,
        if_range,
        version,
        status: status.as_u16(),
        bytes_sent: 0,
        completed: false,
        faults: effects.fired.clone(),
        received,
    };
    let log_index = shared.log.push(record);

    // A body without a length declares nothing that could disagree with it.
    let declared = if effects.close_delimited {
        body.len() as u64
    } else {
        (body.len() as i64 + effects.length_delta).max(0) as u64
    };
    let body = if method == Method::HEAD { Bytes::new() } else { body };
    let plan = BodyPlan::new(body, declared, &effects, version, method == Method::HEAD);
    let mut response = Response::new(FaultBody::new(
        plan,
        shared.chunk_size,
        effects.throttle,
        log_index,
        &shared.log,
        conn,
    ));
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    for (name, value) in headers {
        response_headers.insert(name, value);
    }
    if effects.close_delimited {
        // Without a length, hyper frames an HTTP/1.0 answer by closing the connection after the body
        // (and an HTTP/1.1 one with chunks, which is not what is asked for).
        if version != Version::HTTP_2 {
            *response.version_mut() = Version::HTTP_10;
        }
    } else {
        response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
    }
    Ok(response)
}

type Headers = Vec<(header::HeaderName, HeaderValue)>;

/// A short text answer with `status`.
fn text_answer(status: u16, message: String) -> (StatusCode, Headers, Bytes) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))];
    (status, headers, Bytes::from(message))
}

/// The status, headers (other than Content-Length) and full body for a request, before body faults.
fn respond(
    files: &Files,
    method: &Method,
    path: &str,
    range: Option<&str>,
    if_range: Option<&str>,
    effects: &Effects,
) -> (StatusCode, Headers, Bytes) {
    let text = text_answer;
    match &effects.replace {
        Some(Fault::Status { status, retry_after }) => {
            let (status, mut headers, body) = text(*status, format!("injected fault: status {status}\n"));
            if let Some(value) = retry_after.as_deref().and_then(|r| HeaderValue::from_str(r).ok()) {
                headers.push((header::RETRY_AFTER, value));
            }
            return (status, headers, body);
        }
        Some(Fault::Redirect { status, location }) => {
            let (status, mut headers, body) = text(*status, format!("redirect to {location}\n"));
            if let Ok(value) = HeaderValue::from_str(location) {
                headers.push((header::LOCATION, value));
            }
            return (status, headers, body);
        }
        _ => {}
    }
    if method != Method::GET && method != Method::HEAD {
        let (status, mut headers, body) = text(405, format!("method {method} not allowed\n"));
        headers.push((header::ALLOW, HeaderValue::from_static("GET, HEAD")));
        return (status, headers, body);
    }
    let Some(resource) = files.get(path) else {
        return text(404, format!("no file at {path}\n"));
    };
    respond_with(resource, range, if_range, effects)
}

/// The answer for a resource, with range and validator handling.
fn respond_with(
    resource: Resource,
    range: Option<&str>,
    if_range: Option<&str>,
    effects: &Effects,
) -> (StatusCode, Headers, Bytes) {
    let text = text_answer;
    let last_modified = resource.last_modified_header();
    let mut headers: Headers = vec![(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"))];
    if let Ok(value) = HeaderValue::from_str(&resource.content_type) {
        headers.push((header::CONTENT_TYPE, value));
    }
    if let Some(value) = resource.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.push((header::ETAG, value));
    }
    if let Some(value) = last_modified.as_deref().and_then(|d| HeaderValue::from_str(d).ok()) {
        headers.push((header::LAST_MODIFIED, value));
    }
    let len = resource.body.len() as u64;
    let validator_ok = match if_range.map(str::trim) {
        None => true,
        // A weak ETag never satisfies If-Range (RFC 9110, 13.1.5): it requires a strong comparison.
        Some(v) if v.starts_with('"') => resource.etag.as_deref() == Some(v),
        Some(v) if v.starts_with("W/") => false,
        Some(v) => last_modified.as_deref() == Some(v),
    };
    let wanted = match range {
        Some(r) if validator_ok && !effects.ignore_range => parse_range(r, len),
        _ => RangeAnswer::Full,
    };
    match wanted {
        RangeAnswer::Full => (StatusCode::OK, headers, resource.body),
        RangeAnswer::Partial(start, end) => {
            let value = format!("bytes {start}-{end}/{len}");
            headers.push((
                header::CONTENT_RANGE,
                HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
            ));
            (StatusCode::PARTIAL_CONTENT, headers, resource.body.slice(start as usize..=end as usize))
        }
        RangeAnswer::Unsatisfiable => {
            let (status, mut text_headers, body) =
                text(416, format!("range not satisfiable for {len} bytes\n"));
            let value = format!("bytes */{len}");
            text_headers.push((
                header::CONTENT_RANGE,
                HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
            ));
            (status, text_headers, body)
        }
    }
}

/// How a `Range` header is answered.
#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    /// Ignore it and send everything (no range, a syntax error, or several ranges).
    Full,
    /// Send bytes `start..=end`.
    Partial(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Parses a single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against a body of `len` bytes.
/// Multiple ranges are answered in full, which RFC 9110 allows; stowage never asks for them.
fn parse_range(value: &str, len: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return RangeAnswer::Full };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAnswer::Full };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => RangeAnswer::Full,
        (true, false) => match parse(last) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(n) if len > 0 => RangeAnswer::Partial(len.saturating_sub(n), len - 1),
            Some(_) => RangeAnswer::Unsatisfiable,
            None => RangeAnswer::Full,
        },
        (false, open) => {
            let Some(start) = parse(first) else { return RangeAnswer::Full };
            let end = if open {
                u64::MAX
            } else {
                match parse(last) {
                    Some(end) if end >= start => end,
                    _ => return RangeAnswer::Full,
                }
            };
            if start >= len {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial(start, end.min(len - 1))
            }
        }
    }
}

/// What a body sends and how it ends.
#[derive(Debug)]
struct BodyPlan {
    /// Bytes handed to hyper as body frames.
    send: Bytes,
    ending: Ending,
}

#[derive(Debug)]
enum Ending {
    /// End the body normally.
    Normal,
    /// HTTP/1: close the connection after the bytes are flushed.
    Close,
    /// HTTP/1: write these bytes past hyper's framing, then close.
    Inject(Bytes),
    /// HTTP/2: reset the stream after a short delay.
    Reset,
    /// HTTP/2: the delay is over; reset now.
    ResetNow,
}

impl BodyPlan {
    fn new(body: Bytes, declared: u64, effects: &Effects, version: Version, head: bool) -> Self {
        if head {
            return Self { send: Bytes::new(), ending: Ending::Normal };
        }
        let h2 = version == Version::HTTP_2;
        let total = body.len() as u64;
        // How many bytes reach the client before the connection (or stream) is cut, if it is.
        let cut_at = effects.cut.map(|cut| match cut {
            Cut::After(n) => n.min(total),
            Cut::Random(draw) => draw.checked_rem(total).unwrap_or(0),
        });
        let mut ending = Ending::Normal;
        let mut send = body;
        if let Some(at) = cut_at.filter(|&at| at < total || at < declared) {
            send.truncate(at as usize);
            ending = if h2 { Ending::Reset } else { Ending::Close };
        }
        if !h2 {
            let sent = send.len() as u64;
            if declared < sent {
                // hyper would silently truncate a body longer than its Content-Length, so the excess goes
                // past hyper, straight onto the connection.
                let extra = send.split_off(declared as usize);
                ending = Ending::Inject(extra);
            } else if declared > sent && matches!(ending, Ending::Normal) {
                ending = Ending::Close;
            }
        }
        Self { send, ending }
    }
}

/// A response body that sends its plan in chunks, throttled if asked, counts what it sent in the request
/// log, and ends as the plan says.
struct FaultBody {
    send: Bytes,
    ending: Option<Ending>,
    chunk_size: usize,
    throttle: Option<u64>,
    started: Option<Instant>,
    sent: u64,
    sleep: Option<Pin<Box<Sleep>>>,
    log_index: u64,
    log: RequestLog,
    conn: Arc<ConnState>,
    finished: bool,
}

impl FaultBody {
    fn new(
        plan: BodyPlan,
        chunk_size: usize,
        throttle: Option<u64>,
        log_index: u64,
        log: &RequestLog,
        conn: Arc<ConnState>,
    ) -> Self {
        let finished = plan.send.is_empty() && matches!(plan.ending, Ending::Normal);
        if finished {
            log.update(log_index, 0, true);
        }
        Self {
            send: plan.send,
            ending: Some(plan.ending),
            chunk_size: chunk_size.max(1),
            throttle,
            started: None,
            sent: 0,
            sleep: None,
            log_index,
            log: log.clone(),
            conn,
            finished,
        }
    }
}

impl FaultBody {
    /// Hands a connection-ending action to the connection (once); other endings are left in place.
    fn set_connection_end(&mut self) {
        match self.ending.take() {
            Some(Ending::Close) => self.conn.set_end(EndAction::Close),
            Some(Ending::Inject(extra)) => {
                self.log.update(self.log_index, extra.len() as u64, false);
                self.conn.set_end(EndAction::Inject(extra));
            }
            other => self.ending = other,
        }
    }
}

/// The error a body reports when a fault resets its HTTP/2 stream.
#[derive(Debug)]
struct InjectedCut;

impl std::fmt::Display for InjectedCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream cut by an injected fault")
    }
}

impl std::error::Error for InjectedCut {}

impl Body for FaultBody {
    type Data = Bytes;
    type Error = InjectedCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, InjectedCut>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if let Some(sleep) = &mut this.sleep {
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        if !this.send.is_empty() {
            let mut n = this.send.len().min(this.chunk_size);
            if let Some(rate) = this.throttle {
                let started = *this.started.get_or_insert_with(Instant::now);
                // Send about twenty chunks a second, and pace by the total so far so rounding never drifts.
                n = n.min(usize::try_from(rate / 20).unwrap_or(usize::MAX).max(1));
                let due = started + Duration::from_secs_f64((this.sent + n as u64) as f64 / rate as f64);
                if due > Instant::now() {
                    let mut sleep = Box::pin(tokio::time::sleep_until(due.into()));
                    if sleep.as_mut().poll(cx).is_pending() {
                        this.sleep = Some(sleep);
                        return Poll::Pending;
                    }
                }
            }
            let chunk = this.send.split_to(n);
            this.sent += n as u64;
            // The record is complete before the last bytes leave, so a client that has read them finds
            // the log already up to date.
            let last = this.send.is_empty() && matches!(this.ending, Some(Ending::Normal));
            this.log.update(this.log_index, n as u64, last);
            if this.send.is_empty() {
                // hyper stops polling a body once its Content-Length is reached, so a connection-ending
                // action is set together with the last chunk. hyper buffers the chunk before it next
                // flushes, so the action still applies only after these bytes are written.
                this.set_connection_end();
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match this.ending.take() {
            Some(Ending::Normal) => {
                this.finished = true;
                this.log.update(this.log_index, 0, true);
                Poll::Ready(None)
            }
            ending @ Some(Ending::Close | Ending::Inject(_)) => {
                this.ending = ending;
                this.set_connection_end();
                Poll::Pending
            }
            Some(Ending::Reset) => {
                let mut sleep = Box::pin(tokio::time::sleep(H2_RESET_DELAY));
                let _ = sleep.as_mut().poll(cx);
                this.sleep = Some(sleep);
                this.ending = Some(Ending::ResetNow);
                Poll::Pending
            }
            Some(Ending::ResetNow) => {
                this.finished = true;
                Poll::Ready(Some(Err(InjectedCut)))
            }
            // A connection-ending body stays pending until the driver drops the connection.
            None => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        // Deliberately unknown: hyper then trusts the Content-Length header we set, even when a fault
        // makes it disagree with the body.
        SizeHint::default()
    }
}

/// The connection builder for the versions asked for.
pub(crate) fn connection_builder(http1: bool, http2: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(Some(256));
    match (http1, http2) {
        (true, false) => builder.http1_only(),
        (false, true) => builder.http2_only(),
        _ => builder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeAnswer::Partial(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeAnswer::Partial(90, 99));
        assert_eq!(parse_range("bytes=90-200", 100), RangeAnswer::Partial(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeAnswer::Partial(90, 99));
        assert_eq!(parse_range("bytes=-200", 100), RangeAnswer::Partial(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 100), RangeAnswer::Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAnswer::Full);
        assert_eq!(parse_range("items=0-1", 100), RangeAnswer::Full);
        assert_eq!(parse_range("bytes=0-0", 0), RangeAnswer::Unsatisfiable);
    }
}
