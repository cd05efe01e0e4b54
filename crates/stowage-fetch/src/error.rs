//! The crate's one error type.

use std::time::Duration;

/// Which deadline ran out (see [`Timeouts`](crate::Timeouts)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Opening the connection (DNS, TCP, proxy tunnel) took too long.
    Connect,
    /// The TLS handshake did not complete in time: the port most likely does not speak TLS.
    TlsHandshake,
    /// The response headers did not arrive in time after the request was sent (the header timeout).
    FirstByte,
    /// No body bytes arrived for too long in the middle of a response (the idle-body timeout).
    Stall,
    /// The body arrived slower than the minimum rate.
    MinRate,
    /// The whole operation, retries and resumes included, took too long.
    Total,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::TlsHandshake => "TLS handshake",
            Self::FirstByte => "header",
            Self::Stall => "idle-body",
            Self::MinRate => "minimum-rate",
            Self::Total => "total",
        })
    }
}

/// The message of [`Error::Timeout`]: which deadline, after how long, and what it means.
fn timeout_message(uri: &str, kind: TimeoutKind, after: Duration) -> String {
    let what = match kind {
        TimeoutKind::Connect => format!("no connection within {after:?}"),
        TimeoutKind::TlsHandshake => format!(
            "the server accepted the connection but completed no TLS handshake within {after:?} \
             (does it speak TLS on this port?)"
        ),
        TimeoutKind::FirstByte => format!("no response headers within {after:?}"),
        TimeoutKind::Stall => format!("no body bytes for {after:?}"),
        TimeoutKind::MinRate => {
            format!("the body arrived slower than the minimum rate over {after:?}")
        }
        TimeoutKind::Total => format!("the whole operation took longer than {after:?}"),
    };
    format!("{kind} timeout fetching {uri}: {what}")
}

fn status_message(uri: &str, status: u16, retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!("HTTP status {status} from {uri} (Retry-After: {} s)", after.as_secs()),
        None => format!("HTTP status {status} from {uri}"),
    }
}

fn too_large_message(uri: &str, limit: u64, declared: Option<u64>, received: u64) -> String {
    match declared {
        Some(declared) => {
            format!("response from {uri} declares {declared} bytes, more than the limit of {limit} bytes")
        }
        None => format!("response from {uri} exceeds the limit of {limit} bytes (received {received} bytes)"),
    }
}

/// Everything that can go wrong while fetching or loading keys.
///
/// Each variant names the URI involved, so that a failed segment or key can be reported to the user
/// without extra bookkeeping.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URI could not be parsed, or has no host.
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri {
        /// The offending URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URI's scheme is not one this operation fetches (only `http` and `https`; keys also `data:`).
    #[error("unsupported URI scheme in {uri}: only http and https are fetched")]
    UnsupportedScheme {
        /// The offending URI.
        uri: String,
    },
    /// The request cannot be sent as built (an empty byte range, an invalid cookie).
    #[error("invalid request for {uri}: {reason}")]
    InvalidRequest {
        /// The URI of the request.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client configuration is unusable (for example an unreadable CA certificate).
    #[error("invalid fetch configuration: {0}")]
    Config(String),
    /// The connection could not be opened (DNS, TCP, or proxy tunnel).
    #[error("could not connect for {uri}: {message}")]
    Connect {
        /// The URI being fetched.
        uri: String,
        /// What failed.
        message: String,
    },
    /// The TLS handshake failed: an untrusted or mismatched certificate, or a protocol error.
    #[error("TLS failure for {uri}: {message}")]
    Tls {
        /// The URI being fetched.
        uri: String,
        /// What the TLS layer reported.
        message: String,
    },
    /// A deadline ran out.
    #[error("{}", timeout_message(uri, *kind, *after))]
    Timeout {
        /// The URI being fetched.
        uri: String,
        /// Which deadline.
        kind: TimeoutKind,
        /// The configured duration of that deadline.
        after: Duration,
    },
    /// The connection failed while the request or response was in flight.
    #[error("transfer of {uri} failed: {message}")]
    Transfer {
        /// The URI being fetched.
        uri: String,
        /// What failed.
        message: String,
    },
    /// The server answered with a status that is not a success (after any retries).
    #[error("{}", status_message(uri, *status, *retry_after))]
    Status {
        /// The URI that answered.
        uri: String,
        /// The HTTP status code.
        status: u16,
        /// The server's `Retry-After`, when it sent one (typically with 429 or 503), so that a caller
        /// scheduling its own retries can honour it too.
        retry_after: Option<Duration>,
    },
    /// The server asked to be retried later (`429` or `503` with `Retry-After`) than
    /// [`RetryConfig::max_retry_after`](crate::RetryConfig::max_retry_after) allows to wait.
    #[error(
        "HTTP status {status} from {uri} asks to retry after {} s, longer than the {} s allowed to wait",
        retry_after.as_secs(),
        limit.as_secs()
    )]
    RetryAfterTooLong {
        /// The URI that answered.
        uri: String,
        /// The HTTP status code.
        status: u16,
        /// The server's `Retry-After`.
        retry_after: Duration,
        /// The longest wait allowed.
        limit: Duration,
    },
    /// The server broke the HTTP protocol (a malformed status line or header, conflicting
    /// `Content-Length` headers). Retrying would get the same answer, so it is not retried.
    #[error("protocol error in the answer from {uri}: {message}")]
    Protocol {
        /// The URI being fetched.
        uri: String,
        /// What the HTTP layer reported.
        message: String,
    },
    /// More redirects than allowed.
    #[error("more than {limit} redirects starting from {uri}")]
    TooManyRedirects {
        /// The URI first requested.
        uri: String,
        /// The configured limit.
        limit: u32,
    },
    /// A redirect pointed back at a URI already visited in this chain.
    #[error("redirect loop: {uri} was already visited")]
    RedirectLoop {
        /// The URI visited twice.
        uri: String,
    },
    /// A redirect from https to plain http, which would drop transport security.
    #[error("refused redirect from https to http: {from} -> {to}")]
    InsecureRedirect {
        /// The https URI that redirected.
        from: String,
        /// The http target.
        to: String,
    },
    /// A redirect without a usable `Location` header, or to a scheme that is not fetched.
    #[error("unusable redirect from {uri}: {reason}")]
    BadRedirect {
        /// The URI that redirected.
        uri: String,
        /// What is wrong with the redirect.
        reason: String,
    },
    /// The body ended before the declared length (or the asked range) was received.
    #[error("body of {uri} is short: received {received} of {expected} bytes")]
    BodyTooShort {
        /// The URI being fetched.
        uri: String,
        /// Bytes declared by `Content-Length`, `Content-Range` or the asked range.
        expected: u64,
        /// Bytes actually received.
        received: u64,
    },
    /// The body went on past the declared length.
    #[error("body of {uri} is longer than the declared {expected} bytes")]
    BodyTooLong {
        /// The URI being fetched.
        uri: String,
        /// Bytes declared.
        expected: u64,
    },
    /// The response is larger than the configured maximum (the client's, or the request's own): its
    /// declared length is, and it is refused before its body is read, or its body went past the limit.
    #[error("{}", too_large_message(uri, *limit, *declared, *received))]
    TooLarge {
        /// The URI being fetched.
        uri: String,
        /// The limit in bytes.
        limit: u64,
        /// The length the answer declared (`Content-Length`, `Content-Range`), when it was over the limit.
        declared: Option<u64>,
        /// Bytes received when the limit was reached (0 when the declared length was refused).
        received: u64,
    },
    /// The answer to a byte-range request does not match what was asked.
    #[error("bad answer to a byte-range request for {uri}: {reason}")]
    BadRange {
        /// The URI being fetched.
        uri: String,
        /// What does not match.
        reason: String,
    },
    /// The resource changed between an interrupted transfer and its resumption.
    #[error("{uri} changed while an interrupted transfer was being resumed")]
    ResourceChanged {
        /// The URI being fetched.
        uri: String,
    },
    /// A compressed body could not be decoded, or uses an encoding that is not supported.
    #[error("cannot decode {encoding} body of {uri}: {message}")]
    Decode {
        /// The URI being fetched.
        uri: String,
        /// The `Content-Encoding`.
        encoding: String,
        /// What failed.
        message: String,
    },
    /// A key is not exactly 16 bytes long.
    #[error("key from {uri} is {len} bytes long; AES-128 keys are exactly 16 bytes")]
    KeyLength {
        /// The key URI.
        uri: String,
        /// The length received (or a lower bound, when the response was cut off at the limit).
        len: u64,
    },
    /// A `data:` URI that cannot be decoded.
    #[error("invalid data: URI {uri}: {reason}")]
    InvalidDataUri {
        /// The URI, shortened to its first 64 characters.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A FairPlay (`skd://`) key: the content can only be decrypted by Apple's platform.
    #[error("FairPlay key {uri}: content protected by FairPlay cannot be decrypted here")]
    FairPlay {
        /// The key URI.
        uri: String,
    },
    /// An encryption method that cannot be decrypted (SAMPLE-AES, SAMPLE-AES-CTR, or unknown), unless the
    /// caller asked to keep the ciphertext as it is.
    #[error("encryption method {method} cannot be decrypted{}", uri.as_deref().map(|u| format!(" (key {u})")).unwrap_or_default())]
    UnsupportedEncryption {
        /// The `METHOD` attribute.
        method: String,
        /// The key URI, when there is one.
        uri: Option<String>,
    },
}

impl Error {
    /// The URI this error is about, when it is about one.
    pub fn uri(&self) -> Option<&str> {
        match self {
            Self::Config(_) => None,
            Self::InvalidUri { uri, .. }
            | Self::UnsupportedScheme { uri }
            | Self::InvalidRequest { uri, .. }
            | Self::Connect { uri, .. }
            | Self::Tls { uri, .. }
            | Self::Timeout { uri, .. }
            | Self::Transfer { uri, .. }
            | Self::Status { uri, .. }
            | Self::RetryAfterTooLong { uri, .. }
            | Self::Protocol { uri, .. }
            | Self::TooManyRedirects { uri, .. }
            | Self::RedirectLoop { uri }
            | Self::BadRedirect { uri, .. }
            | Self::BodyTooShort { uri, .. }
            | Self::BodyTooLong { uri, .. }
            | Self::TooLarge { uri, .. }
            | Self::BadRange { uri, .. }
            | Self::ResourceChanged { uri }
            | Self::Decode { uri, .. }
            | Self::KeyLength { uri, .. }
            | Self::InvalidDataUri { uri, .. }
            | Self::FairPlay { uri } => Some(uri),
            Self::InsecureRedirect { from, .. } => Some(from),
            Self::UnsupportedEncryption { uri, .. } => uri.as_deref(),
        }
    }

    /// The HTTP status, for [`Error::Status`] and [`Error::RetryAfterTooLong`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::RetryAfterTooLong { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's `Retry-After` delay, for [`Error::Status`] when one was sent, and for
    /// [`Error::RetryAfterTooLong`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            Self::RetryAfterTooLong { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether a deadline ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether the error is transient: a later attempt may succeed (connection failures, timeouts other
    /// than the TLS handshake's and the total, cut transfers, 5xx, 408 and 429). A `Retry-After` beyond
    /// the limit, a protocol error, a TLS failure and a body over the size limit are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Transfer { .. } | Self::BodyTooShort { .. } => true,
            Self::Timeout { kind, .. } => !matches!(kind, TimeoutKind::Total | TimeoutKind::TlsHandshake),
            Self::Status { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }
}

/// Statuses worth retrying: server errors, request timeout and too many requests.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}
