//! The download API: start, suspend, resume and remove downloads, and follow their events, for the page
//! and for scripts. The server downloads nothing itself: it drives the [`Downloads`] it is given.
//!
//! Routes:
//! - `POST /api/downloads` with `{"url": "...", "name": "..."}` (`name` optional): starts a download;
//!   `201` with `{"asset": "<id>"}`.
//! - `POST /api/downloads/<id>/suspend`, `POST /api/downloads/<id>/resume`: `204`.
//! - `DELETE /api/assets/<id>`: stops its download if one runs and removes the asset; `204`.
//! - `GET /api/events`: server-sent events, one `data:` line of JSON per event of every download.
//!
//! Who may ask: every route refuses (`403`) a request whose `Origin` is not the server's own, so that
//! another web site open in the same browser cannot drive a local stowage; and the routes that change the
//! store need the token the server made when it started (`Authorization: Bearer <token>`, else `401`).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use tokio::sync::{broadcast, mpsc};

use crate::body::Body;

/// The largest request body read (a URL and a name).
const MAX_BODY: usize = 16 * 1024;

/// How often an idle event stream sends a comment, so that neither the client nor the server's own idle
/// timeout takes it for dead.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What went wrong with a request of the download API, as the [`Downloads`] implementation says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadsError {
    /// No download or asset has this identifier (`404`).
    #[error("no download or asset {asset:?}")]
    NotFound {
        /// The identifier asked for.
        asset: String,
    },
    /// The request cannot be carried out as asked: a URL that is not one, a name that is not a safe
    /// identifier, an asset already downloading (`400`).
    #[error("{reason}")]
    Invalid {
        /// What is wrong, for people.
        reason: String,
    },
    /// The request was understood but failed: the store could not be changed (`500`).
    #[error("{reason}")]
    Failed {
        /// What failed, for people.
        reason: String,
    },
}

/// Downloads the server's API drives, and whose events it streams to the page: an application hands the
/// server one over its download session ([`ServeConfig::downloads`](crate::ServeConfig::downloads)); the
/// `stowage serve` command hands it one over a session of the store it serves. Calls come from the
/// server's runtime threads; they must not block for long (start a task, do not wait for it).
pub trait Downloads: Send + Sync + fmt::Debug {
    /// Starts downloading the playlist at `url` into the store, as asset `name` or one named after the
    /// URL; returns the asset's identifier.
    fn start(&self, url: &str, name: Option<&str>) -> Result<String, DownloadsError>;
    /// Suspends the download of `asset`.
    fn suspend(&self, asset: &str) -> Result<(), DownloadsError>;
    /// Resumes the download of `asset` (one suspended, or an unfinished asset of the store).
    fn resume(&self, asset: &str) -> Result<(), DownloadsError>;
    /// Stops the download of `asset` if one runs, and removes the asset from the store.
    fn remove(&self, asset: &str) -> Result<(), DownloadsError>;
    /// The events of every download from now on, each one JSON object with an `"asset"` member.
    fn events(&self) -> broadcast::Receiver<String>;
}

/// A token that only whoever started the server knows: 128 bits from the standard library's randomly
/// seeded hasher (its keys come from the operating system's random source), as 32 hexadecimal digits.
pub(crate) fn new_token() -> String {
    let mut token = String::with_capacity(32);
    for i in 0..2u64 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(i);
        hasher.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        token.push_str(&format!("{:016x}", hasher.finish()));
    }
    token
}

/// What the API needs of the server.
pub(crate) struct Api {
    pub(crate) downloads: Arc<dyn Downloads>,
    pub(crate) token: String,
}

/// Whether `headers` carry the token, compared in time that does not depend on where they differ.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(given) = given.strip_prefix("Bearer ") else { return false };
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Whether the request's `Origin`, when it has one, is the server's own (`scheme://host` as the request
/// names the server). Browsers send `Origin` with every request a script makes across origins and with
/// every `POST` and `DELETE`; a request without one comes from no web page (a script, curl).
pub(crate) fn same_origin(headers: &HeaderMap, tls: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let own = format!("{}://{host}", if tls { "https" } else { "http" });
    origin.as_bytes().eq_ignore_ascii_case(own.as_bytes())
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::full(value.to_string()));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({ "error": message }))
}

fn answer(result: Result<(), DownloadsError>) -> Response<Body> {
    match result {
        Ok(()) => {
            let mut response = Response::new(Body::Empty);
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(e) => failure(&e),
    }
}

fn failure(e: &DownloadsError) -> Response<Body> {
    let status = match e {
        DownloadsError::NotFound { .. } => StatusCode::NOT_FOUND,
        DownloadsError::Invalid { .. } => StatusCode::BAD_REQUEST,
        DownloadsError::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &e.to_string())
}

/// Reads a request body of at most [`MAX_BODY`] bytes; `None` when it is larger or broken.
async fn read_body<B>(body: B) -> Option<Vec<u8>>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Ok(data) = frame.ok()?.into_data() {
            if out.len() + data.len() > MAX_BODY {
                return None;
            }
            out.extend_from_slice(&data);
        }
    }
    Some(out)
}

/// Answers a request for `/api/...` that is one of the download API's, or `None` for another path.
pub(crate) async fn route<B>(
    api: Option<&Api>,
    method: &Method,
    segments: &[&str],
    headers: &HeaderMap,
    tls: bool,
    body: B,
) -> Option<Response<Body>>
where
    B: http_body::Body<Data = Bytes>,
{
    let changes = match (method, segments) {
        (&Method::POST, ["api", "downloads"])
        | (&Method::POST, ["api", "downloads", _, "suspend" | "resume"])
        | (&Method::DELETE, ["api", "assets", _]) => true,
        (&Method::GET, ["api", "events"]) => false,
        _ => return None,
    };
    let Some(api) = api else {
        return Some(error(StatusCode::NOT_FOUND, "this server was started without the download API"));
    };
    if !same_origin(headers, tls) {
        return Some(error(StatusCode::FORBIDDEN, "requests from other origins are refused"));
    }
    if changes && !authorized(headers, &api.token) {
        let mut response =
            error(StatusCode::UNAUTHORIZED, "the token printed when the server started is needed");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Some(response);
    }
    let downloads = &api.downloads;
    Some(match segments {
        ["api", "events"] => events(downloads.events()),
        ["api", "downloads"] => {
            let Some(bytes) = read_body(body).await else {
                return Some(error(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large"));
            };
            let Ok(request) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return Some(error(StatusCode::BAD_REQUEST, "the body is not JSON"));
            };
            let Some(url) = request.get("url").and_then(serde_json::Value::as_str) else {
                return Some(error(StatusCode::BAD_REQUEST, "the body has no \"url\" string"));
            };
            let name = request.get("name").and_then(serde_json::Value::as_str);
            match downloads.start(url, name) {
                Ok(asset) => json_response(StatusCode::CREATED, &serde_json::json!({ "asset": asset })),
                Err(e) => failure(&e),
            }
        }
        ["api", "downloads", id, "suspend"] => answer(downloads.suspend(id)),
        ["api", "downloads", id, "resume"] => answer(downloads.resume(id)),
        ["api", "assets", id] => answer(downloads.remove(id)),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    })
}

/// The event stream: each event as one `data:` line, a comment when nothing happened for a while. The
/// stream ends when the client goes away or the downloads end.
fn events(mut source: broadcast::Receiver<String>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        // The first bytes go out at once, so that the client knows the stream is open.
        if tx.send(Bytes::from_static(b": stowage events\n\n")).await.is_err() {
            return;
        }
        loop {
            let chunk = tokio::select! {
                event = source.recv() => match event {
                    // An event is one line of JSON: it holds no line break.
                    Ok(event) => Bytes::from(format!("data: {event}\n\n")),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Bytes::from(format!("event: missed\ndata: {n}\n\n"))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keep-alive\n\n"),
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(Body::Stream(rx));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
