//! A GET request: what is asked (URI, headers, cookies, byte range, content decoding, size limit), and the
//! headers it puts on the wire.

use std::fmt;

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;
use crate::range::{ByteRange, range_value};

/// A GET request: URI, headers, cookies, optional byte range and content decoding.
///
/// Its `Debug` output hides credentials: the values of `Authorization`, `Proxy-Authorization` and `Cookie`
/// headers, of headers marked sensitive ([`HeaderValue::set_sensitive`]), and of cookies.
#[derive(Clone)]
#[non_exhaustive]
pub struct Request {
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) cookies: Vec<(String, String)>,
    pub(crate) range: Option<ByteRange>,
    pub(crate) decode: bool,
    pub(crate) max_size: Option<u64>,
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
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The headers, for changes beyond [`Request::header`].
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Adds a cookie, sent in one `Cookie` header with the others.
    #[must_use]
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// Asks for a byte range only. The body then holds exactly that range, whatever the server does,
    /// or the request fails.
    #[must_use]
    pub fn range(mut self, range: ByteRange) -> Self {
        self.range = Some(range);
        self
    }

    /// Accepts gzip, deflate and br and decodes the body (default off: bodies are delivered as sent,
    /// with `Accept-Encoding: identity`). Meant for playlists; segments are not compressed in transit.
    #[must_use]
    pub fn decode_content(mut self, on: bool) -> Self {
        self.decode = on;
        self
    }

    /// A size limit for this response, overriding the client's.
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Requests end up in logs; tokens and session cookies must not.
        struct Hidden;
        impl fmt::Debug for Hidden {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("***")
            }
        }
        struct Headers<'a>(&'a HeaderMap);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let credential = |name: &HeaderName, value: &HeaderValue| {
                    value.is_sensitive()
                        || [header::AUTHORIZATION, header::PROXY_AUTHORIZATION, header::COOKIE].contains(name)
                };
                f.debug_map()
                    .entries(self.0.iter().map(|(name, value)| {
                        let shown: &dyn fmt::Debug = if credential(name, value) { &Hidden } else { value };
                        (name, shown)
                    }))
                    .finish()
            }
        }
        struct Cookies<'a>(&'a [(String, String)]);
        impl fmt::Debug for Cookies<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.iter().map(|(name, _)| (name, Hidden))).finish()
            }
        }
        f.debug_struct("Request")
            .field("uri", &self.uri)
            .field("headers", &Headers(&self.headers))
            .field("cookies", &Cookies(&self.cookies))
            .field("range", &self.range)
            .field("decode", &self.decode)
            .field("max_size", &self.max_size)
            .finish()
    }
}

impl Request {
    /// The headers of the first exchange: the request's own, the cookies in one `Cookie` header, the
    /// `Accept-Encoding` asked for, and the `Range`.
    pub(crate) fn wire_headers(&self) -> Result<HeaderMap, Error> {
        let mut headers = self.headers.clone();
        let invalid = |reason: String| Error::InvalidRequest { uri: self.uri.to_string(), reason };
        if !self.cookies.is_empty() {
            let joined: Vec<String> = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let v = HeaderValue::from_str(&joined.join("; "))
                .map_err(|_| invalid("invalid cookie".to_owned()))?;
            headers.append(header::COOKIE, v);
        }
        if !headers.contains_key(header::ACCEPT_ENCODING) {
            let ae = if self.decode { "gzip, deflate, br" } else { "identity" };
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(ae));
        }
        if let Some(r) = self.range {
            if r.length == Some(0) {
                return Err(invalid("empty byte range".to_owned()));
            }
            let v = range_value(r.offset, r.end());
            headers.insert(header::RANGE, HeaderValue::from_str(&v).map_err(|e| invalid(e.to_string()))?);
        }
        Ok(headers)
    }
}

pub(crate) fn check_fetchable(uri: &Uri) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_out_of_debug_output() {
        let mut token = HeaderValue::from_static("token-in-a-custom-header");
        token.set_sensitive(true);
        let req = Request::get("https://cdn.example/key")
            .unwrap()
            .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret-token"))
            .header(header::PROXY_AUTHORIZATION, HeaderValue::from_static("Basic c2VjcmV0"))
            .header(header::COOKIE, HeaderValue::from_static("sid=secret-cookie"))
            .header(HeaderName::from_static("x-api-key"), token)
            .header(header::ACCEPT, HeaderValue::from_static("application/octet-stream"))
            .cookie("session", "secret-session");
        let debug = format!("{req:?}");
        for secret in
            ["secret-token", "c2VjcmV0", "secret-cookie", "token-in-a-custom-header", "secret-session"]
        {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        for shown in
            ["https://cdn.example/key", "authorization", "x-api-key", "application/octet-stream", "session"]
        {
            assert!(debug.contains(shown), "{shown} not in {debug}");
        }
    }
}
