//! Request handling: who may ask, which path names what, and the response, with its validators, ranges
//! and cache rules.
//!
//! Routes (all `GET` and `HEAD`):
//! - `/`: the page (the store, with a player per asset); `/static/page.css`, `/static/page.js`: its style
//!   and script.
//! - `/api/assets`: the store as JSON (what the page polls for progress).
//! - `/asset/<id>/<path>`: a file of the bundle `<id>` that its manifest and local playlists name
//!   (`master.m3u8`, `<rendition>/index.m3u8`, segments, initialization sections, kept keys, artwork).
//! - `/asset/<id>/master.m3u8?audio=<rendition>`: the master playlist with that audio rendition as its only
//!   one, for players that cannot switch.
//! - `/asset/<id>/<rendition>/subtitles.vtt`: a subtitle rendition as one WebVTT file, for `<track>`.
//!
//! And, when the server was given downloads to drive, the download API (`POST`, `DELETE` and the event
//! stream under `/api/`; see the `api` module).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use stowage_bundle::{BundleFileKind, Error as BundleError, OpenFile};

use crate::api::{self, Api};
use crate::assets::Assets;
use crate::body::{Body, FileBody};
use crate::config::ServeConfig;
use crate::derived::{self, Failure};
use crate::http::{RangeAnswer, etag, fnv1a, if_range_allows, media_type, none_match, range};
use crate::page;
use crate::path;

/// Everything a request handler needs, shared by all connections.
pub(crate) struct Shared {
    pub(crate) assets: Assets,
    pub(crate) config: ServeConfig,
    /// The download API, when the server was given downloads to drive.
    pub(crate) api: Option<Api>,
}

/// What a response may be cached as.
#[derive(Clone, Copy)]
enum Caching {
    /// Revalidate each time (`no-cache`): files that may be replaced (a bundle removed and downloaded again).
    Revalidate,
    /// Never store (`no-store`): playlists still growing, keys, the store's state.
    NoStore,
}

impl Caching {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Revalidate => "no-cache",
            Self::NoStore => "no-store",
        })
    }
}

/// The page's own security policy: its script and style come from the server, media from the server (and
/// `blob:` for players that use Media Source Extensions), nothing else, and no framing.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                           media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                           frame-ancestors 'none'";

/// Answers one request; never fails (errors become responses).
pub(crate) async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Result<Response<Body>, Infallible>
where
    B: http_body::Body<Data = Bytes>,
{
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, ());
    let mut response = route(&shared, &req, body).await;
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        // Nothing but the page is a document: opened on its own, a file runs nothing and loads nothing.
        headers
            .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    }
    if let Some(origin) = allowed_origin(&shared.config, req.headers()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Length, Content-Range, Accept-Ranges, ETag"),
        );
    }
    if shared.config.cors_origin.as_deref().is_some_and(|o| o != "*") {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response)
}

/// The `Access-Control-Allow-Origin` value for a request, when CORS is configured and its origin is the
/// one allowed.
fn allowed_origin(config: &ServeConfig, headers: &HeaderMap) -> Option<HeaderValue> {
    let allowed = config.cors_origin.as_deref()?;
    if allowed == "*" {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = headers.get(header::ORIGIN)?;
    (origin.as_bytes() == allowed.as_bytes()).then(|| origin.clone())
}

/// Whether the request names this server by a loopback name, which is required while remote clients are
/// not allowed: a web page that made a domain of its own resolve to 127.0.0.1 (DNS rebinding) sends that
/// domain, and is refused.
fn host_is_loopback<B>(req: &Request<B>) -> bool {
    let host = req
        .uri()
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(host_of));
    let Some(host) = host else { return false };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of a `Host` header value, without its port.
fn host_of(value: &str) -> String {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_owned();
    }
    value.rsplit_once(':').map_or(value, |(host, _)| host).to_owned()
}

async fn route<B>(shared: &Arc<Shared>, req: &Request<()>, body: B) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
{
    if !shared.config.allow_remote && !host_is_loopback(req) {
        return text(
            StatusCode::FORBIDDEN,
            "this server answers requests for localhost, 127.0.0.1 or [::1] only\n",
        );
    }
    if let Some(segments) = path::segments(req.uri().path()) {
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let tls = shared.config.tls.is_some();
        let api = shared.api.as_ref();
        if let Some(response) = api::route(api, req.method(), &segments, req.headers(), tls, body).await {
            return response;
        }
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        Method::OPTIONS if shared.config.cors_origin.is_some() => return preflight(shared, req),
        _ => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served\n");
            let allow = if shared.config.cors_origin.is_some() { "GET, HEAD, OPTIONS" } else { "GET, HEAD" };
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            return response;
        }
    };
    let Some(segments) = path::segments(req.uri().path()) else { return not_found() };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let headers = req.headers();
    match segments.as_slice() {
        [] => page_response(shared, headers, head).await,
        ["static", name] => static_file(name, headers, head),
        ["api", "assets"] => api_assets(shared, headers, head).await,
        ["asset", id, "master.m3u8"] if path::has_query_key(req.uri().query(), "audio") => {
            let Some(audio) = path::query_value(req.uri().query(), "audio") else { return not_found() };
            derived_response(shared, id, headers, head, crate::http::PLAYLIST_TYPE, true, move |r| {
                derived::master_with_audio(r, &audio)
            })
            .await
        }
        ["asset", id, rendition, "subtitles.vtt"] => {
            let rendition = (*rendition).to_owned();
            derived_response(shared, id, headers, head, "text/vtt; charset=utf-8", false, move |r| {
                derived::subtitles(r, &rendition)
            })
            .await
        }
        ["asset", id, rest @ ..] if !rest.is_empty() => {
            bundle_file(shared, id, &rest.join("/"), headers, head).await
        }
        _ => not_found(),
    }
}

/// Runs blocking work (disk) on the runtime's blocking threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// Whether a bundle error means "there is no such thing to serve" (404) rather than a failure (500).
pub(crate) fn not_found_error(e: &BundleError) -> bool {
    matches!(
        e,
        BundleError::NoSuchBundle { .. }
            | BundleError::NotInBundle { .. }
            | BundleError::NotFound { .. }
            | BundleError::PermissionDenied { .. }
            | BundleError::InvalidName { .. }
            | BundleError::UnknownSegment { .. }
            | BundleError::UnknownRendition { .. }
    )
}

fn bundle_error(e: &BundleError) -> Response<Body> {
    if not_found_error(e) { not_found() } else { text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")) }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::full(message.to_owned()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, Caching::NoStore.header());
    response
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// An answer to a CORS preflight request from the allowed origin.
fn preflight<B>(shared: &Shared, req: &Request<B>) -> Response<Body> {
    let headers = req.headers();
    let method_ok =
        headers.get(header::ACCESS_CONTROL_REQUEST_METHOD).is_some_and(|m| m == "GET" || m == "HEAD");
    if allowed_origin(&shared.config, headers).is_none() || !method_ok {
        return text(StatusCode::FORBIDDEN, "this origin may not load from this server\n");
    }
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Range, If-None-Match, If-Range"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// What a response carries.
enum Content {
    Bytes(Bytes),
    File(Arc<OpenFile>),
}

impl Content {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::File(f) => f.len(),
        }
    }

    fn body(&self, start: u64, end: u64) -> Body {
        match self {
            // Ranges of in-memory content are within its length (checked by the range rules).
            Self::Bytes(b) => Body::full(b.slice(start as usize..end as usize)),
            Self::File(f) => Body::File(FileBody::new(Arc::clone(f), start, end)),
        }
    }
}

/// A `200`, `206`, `304` or `416` for `content`, following the request's validators and range.
fn respond(
    headers: &HeaderMap,
    head: bool,
    content: Content,
    tag: Option<String>,
    content_type: &str,
    caching: Caching,
) -> Response<Body> {
    let len = content.len();
    let mut response = Response::new(Body::Empty);
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, caching.header());
    if let Some(tag) = &tag
        && let Ok(value) = HeaderValue::from_str(tag)
    {
        h.insert(header::ETAG, value);
    }
    if tag.as_deref().is_some_and(|t| none_match(headers.get(header::IF_NONE_MATCH), t)) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, value);
    }
    let answer = if if_range_allows(headers.get(header::IF_RANGE), tag.as_deref()) {
        range(headers.get(header::RANGE), len)
    } else {
        RangeAnswer::Full
    };
    let (start, end) = match answer {
        RangeAnswer::Full => (0, len),
        RangeAnswer::Partial(start, end) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let value = format!("bytes {start}-{}/{len}", end - 1);
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            (start, end)
        }
        RangeAnswer::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response.headers_mut().remove(header::CONTENT_TYPE);
            return response;
        }
    };
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if !head && end > start {
        *response.body_mut() = content.body(start, end);
    }
    response
}

/// A file of bundle `id`.
async fn bundle_file(
    shared: &Arc<Shared>,
    id: &str,
    path: &str,
    headers: &HeaderMap,
    head: bool,
) -> Response<Body> {
    let (work, id, path) = (Arc::clone(shared), id.to_owned(), path.to_owned());
    let opened = blocking(move || {
        let reader = work.assets.reader(&id)?;
        let file = reader.resolve(&path)?;
        if file.kind == BundleFileKind::Artwork
            && !reader.manifest().artwork.as_ref().is_some_and(|a| a.is_image())
        {
            // Artwork of an unknown or active type is kept, but never handed to a browser.
            return Err(BundleError::NotInBundle { path, bundle: reader.dir() });
        }
        let open = reader.open_file(&file)?;
        let playlist = matches!(file.kind, BundleFileKind::MasterPlaylist | BundleFileKind::MediaPlaylist);
        let artwork_type = reader.manifest().artwork.as_ref().map(|a| a.media_type.clone());
        Ok((file, open, reader.manifest().finished, playlist, artwork_type, id))
    })
    .await;
    let (file, open, finished, playlist, artwork_type, id) = match opened {
        Some(Ok(opened)) => opened,
        Some(Err(e)) => return bundle_error(&e),
        None => return text(StatusCode::INTERNAL_SERVER_ERROR, "the request failed\n"),
    };
    if file.kind != BundleFileKind::Artwork {
        // Playing holds the asset (its lease) and a playlist marks it accessed; the small write either may
        // take is not waited for. Artwork is shown by the page, which is not playing.
        let work = Arc::clone(shared);
        tokio::task::spawn_blocking(move || work.assets.mark_played(&id, playlist));
    }
    let content_type = match file.kind {
        BundleFileKind::Artwork => artwork_type.unwrap_or_default(),
        kind => media_type(kind, file.format, file.rendition_kind).to_owned(),
    };
    let caching = match file.kind {
        BundleFileKind::Key => Caching::NoStore,
        _ if playlist && !finished => Caching::NoStore,
        _ => Caching::Revalidate,
    };
    let tag = open.version().map(etag);
    respond(headers, head, Content::File(Arc::new(open)), tag, &content_type, caching)
}

/// Something made from bundle `id`'s files by `make`.
async fn derived_response(
    shared: &Arc<Shared>,
    id: &str,
    headers: &HeaderMap,
    head: bool,
    content_type: &'static str,
    playlist: bool,
    make: impl FnOnce(&stowage_bundle::BundleReader) -> Result<String, Failure> + Send + 'static,
) -> Response<Body> {
    let (work, asset) = (Arc::clone(shared), id.to_owned());
    let made = blocking(move || {
        let reader = work.assets.reader(&asset).map_err(Failure::from)?;
        let text = make(&reader)?;
        Ok::<_, Failure>((text, reader.manifest().finished))
    })
    .await;
    match made {
        Some(Ok((text, finished))) => {
            let (work, id) = (Arc::clone(shared), id.to_owned());
            tokio::task::spawn_blocking(move || work.assets.mark_played(&id, playlist));
            let tag = format!("\"d{:016x}\"", fnv1a(&[text.as_bytes()]));
            let caching = if finished { Caching::Revalidate } else { Caching::NoStore };
            respond(headers, head, Content::Bytes(Bytes::from(text)), Some(tag), content_type, caching)
        }
        Some(Err(Failure::NotFound)) => not_found(),
        Some(Err(Failure::Broken(what))) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{what}\n")),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "the request failed\n"),
    }
}

/// The page.
async fn page_response(shared: &Arc<Shared>, headers: &HeaderMap, head: bool) -> Response<Body> {
    let work = Arc::clone(shared);
    let rendered =
        blocking(move || page::render(&work.assets, !work.config.allow_remote, work.api.is_none())).await;
    let html = match rendered {
        Some(Ok(html)) => html,
        Some(Err(e)) => return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
        None => return text(StatusCode::INTERNAL_SERVER_ERROR, "the request failed\n"),
    };
    let tag = format!("\"p{:016x}\"", fnv1a(&[html.as_bytes()]));
    let mut response = respond(
        headers,
        head,
        Content::Bytes(Bytes::from(html)),
        Some(tag),
        "text/html; charset=utf-8",
        Caching::NoStore,
    );
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    response
}

/// The store as JSON.
async fn api_assets(shared: &Arc<Shared>, headers: &HeaderMap, head: bool) -> Response<Body> {
    let work = Arc::clone(shared);
    match blocking(move || page::json(&work.assets)).await {
        Some(Ok(json)) => respond(
            headers,
            head,
            Content::Bytes(Bytes::from(json)),
            None,
            "application/json",
            Caching::NoStore,
        ),
        Some(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "the request failed\n"),
    }
}

/// The page's style and script, embedded in the crate.
fn static_file(name: &str, headers: &HeaderMap, head: bool) -> Response<Body> {
    static TAGS: OnceLock<(String, String)> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        (
            format!("\"s{:016x}\"", fnv1a(&[page::STYLE.as_bytes()])),
            format!("\"s{:016x}\"", fnv1a(&[page::SCRIPT.as_bytes()])),
        )
    });
    let (bytes, tag, content_type) = match name {
        "page.css" => (page::STYLE, &tags.0, "text/css; charset=utf-8"),
        "page.js" => (page::SCRIPT, &tags.1, "text/javascript; charset=utf-8"),
        _ => return not_found(),
    };
    respond(
        headers,
        head,
        Content::Bytes(Bytes::from_static(bytes.as_bytes())),
        Some(tag.clone()),
        content_type,
        Caching::Revalidate,
    )
}
