//! The answer: what a response's status and headers say it delivers (the asked range, the declared length,
//! a slice of a whole resource), and its body, read chunk by chunk, checked against that, and resumed with
//! a `Range` request when the transfer is cut.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use crate::client::{Inner, Op, error_chain, host_key};
use crate::config::RangeFallback;
use crate::decode::Decoder;
use crate::error::{Error, TimeoutKind};
use crate::range::{check_partial, content_length, range_value};
use crate::request::Request;
use crate::retry::RetryCause;

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
    /// Reads what the answer to `req` delivers from its status and headers (the asked range, the declared
    /// length, or a slice of a whole resource), checks it, and sets up the body to deliver exactly that.
    /// `headers` are those of the request without its `Range`, kept for resuming the body.
    pub(crate) fn start(
        inner: Arc<Inner>,
        req: &Request,
        resp: hyper::Response<Incoming>,
        uri: Uri,
        headers: HeaderMap,
        op: Op,
        permit: OwnedSemaphorePermit,
    ) -> Result<Self, Error> {
        let (parts, incoming) = resp.into_parts();
        let uri_str = uri.to_string();
        let max_size = req.max_size.unwrap_or(inner.cfg.max_response_size);
        let content_length = content_length(&parts.headers);
        let bad_range = |reason: String| Error::BadRange { uri: uri_str.clone(), reason };
        let (pos, start, end, sliced, complete_length) = match (req.range, parts.status) {
            (Some(r), StatusCode::PARTIAL_CONTENT) => {
                let cr = check_partial(&parts.headers, r.offset).map_err(bad_range)?;
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
            return Err(Error::TooLarge {
                uri: uri_str,
                limit: max_size,
                declared: Some(end - start),
                received: 0,
            });
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
            inner,
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
            window: RateWindow::default(),
        };
        Ok(Self {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            uri: uri_str,
            length: end.map(|e| e - start),
            body,
        })
    }

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
///
/// [`RetryEvent`]: crate::RetryEvent
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
    /// What the current window of the minimum rate has seen.
    window: RateWindow,
}

/// One window of the minimum rate: the time spent waiting for the network in it, and the bytes that
/// came. It starts again as soon as it has brought its bytes, and with every resumed transfer.
#[derive(Debug, Default, Clone, Copy)]
struct RateWindow {
    waited: Duration,
    bytes: u64,
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
            if self.incoming.is_none() {
                return self.finish();
            }
            // The wait for the next frame ends at the idle-body timeout or at the end of the minimum
            // rate's window, whichever comes first. A window that ran out without its bytes (the last
            // wait ended with a few bytes just at its end) fails here, before waiting again.
            let min_rate = self.inner.cfg.timeouts.min_rate.filter(|m| m.bytes_per_second > 0);
            if let Some(m) = min_rate
                && self.window.waited >= m.window
            {
                self.incoming = None;
                self.resume(self.too_slow(m.window)).await?;
                continue;
            }
            let Some(incoming) = self.incoming.as_mut() else { continue };
            let timeouts = &self.inner.cfg.timeouts;
            let window_left = min_rate.map(|m| m.window.saturating_sub(self.window.waited));
            let (stage, kind) = match (timeouts.stall, window_left) {
                (Some(stall), Some(left)) if left < stall => (Some(left), TimeoutKind::MinRate),
                (None, Some(left)) => (Some(left), TimeoutKind::MinRate),
                (stall, _) => (stall, TimeoutKind::Stall),
            };
            let waiting = Instant::now();
            let frame = self.inner.timed(incoming.frame(), stage, kind, &self.op, &self.uri).await;
            self.window.waited += waiting.elapsed();
            let failure = match frame {
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    if let Some(m) = min_rate {
                        self.window.bytes += data.len() as u64;
                        if self.window.bytes >= m.bytes_per_window() {
                            self.window = RateWindow::default();
                        }
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
                // The window's deadline reports the time left in it; the error names the whole window.
                Err(Error::Timeout { kind: TimeoutKind::MinRate, .. }) => {
                    self.too_slow(min_rate.map(|m| m.window).unwrap_or_default())
                }
                Err(e) => e,
            };
            self.incoming = None;
            self.resume(failure).await?;
        }
    }

    fn too_slow(&self, window: Duration) -> Error {
        Error::Timeout { uri: self.uri_str.clone(), kind: TimeoutKind::MinRate, after: window }
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
            return Err(self.too_large(self.delivered));
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
                    return Err(self.too_large(self.decoded));
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

    fn too_large(&self, received: u64) -> Error {
        Error::TooLarge { uri: self.uri_str.clone(), limit: self.max_size, declared: None, received }
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
            return Err(self.too_large(self.decoded));
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
        let Ok(delay) = self.op.plan_retry(&inner.cfg, None) else {
            self.done = true;
            return Err(failure);
        };
        inner.report_retry(&self.uri, self.op.retries, cause, delay, None, Some(at));
        inner.counters.resumes.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;

        let mut headers = self.headers.clone();
        let range = range_value(at, self.end);
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
                let cr = match check_partial(h, at) {
                    Ok(cr) => cr,
                    Err(reason) => {
                        self.done = true;
                        return Err(bad_range(format!("{reason}, on resume")));
                    }
                };
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
                let cl = content_length(h);
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
        self.window = RateWindow::default();
        Ok(())
    }
}
