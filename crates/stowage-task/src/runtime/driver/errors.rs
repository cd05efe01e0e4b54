//! How failures of the layers below become the task's errors and the engine's failures.
//!
//! An attempt that fails is told to the engine as a [`Failure`] (what it decides retries on) and kept as
//! the task's typed [`Error`] beside it (what a task that gives up on the job fails with), so that the
//! fetch layer's or the bundle's own error stays reachable: [`Failed`] holds both.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use stowage_fetch::decrypt::DecryptError;
use stowage_fetch::{RetryCause, RetryEvent, TimeoutKind};

use crate::Error;
use crate::config::SegmentSizeLimit;
use crate::engine::Failure;

/// The task's error for a fetch of `uri` that failed.
pub(super) fn fetch_error(uri: &str, e: stowage_fetch::Error) -> Error {
    Error::Fetch { uri: e.uri().unwrap_or(uri).to_owned(), source: e }
}

/// The task's error for a call into the bundle at `path` that failed.
pub(super) fn bundle_error(path: &Path, e: stowage_bundle::Error) -> Error {
    Error::Bundle { path: e.path().unwrap_or(path).to_path_buf(), source: Arc::new(e) }
}

/// The message a panic carried, when it carried one. (It takes the box itself: a reference to the box
/// would be an `Any` of its own, never downcast to the message.)
pub(super) fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "no message".to_owned(),
    }
}

/// The task's error for an internal task (`what` it was doing) that could not be joined: it panicked, or
/// the runtime is shutting down.
pub(super) fn join_error(what: impl Into<String>, e: tokio::task::JoinError) -> Error {
    let message = if e.is_panic() { panic_message(e.into_panic()) } else { e.to_string() };
    Error::Crashed { what: what.into(), message }
}

/// A failed attempt of a job: the engine's view of it, and the typed error behind it.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) failure: Failure,
    /// Boxed, so that the driver's results stay small.
    pub(super) cause: Option<Box<Error>>,
}

impl Failed {
    /// A fetch of `uri` (a key's when `key`) failed.
    pub(super) fn fetch(uri: &str, e: stowage_fetch::Error, key: bool) -> Self {
        Self { failure: classify(&e, key), cause: Some(Box::new(fetch_error(uri, e))) }
    }

    /// The bytes could not be stored (a full disk, say): retrying cannot help.
    pub(super) fn store(path: &Path, e: stowage_bundle::Error) -> Self {
        Self {
            failure: Failure::fatal(format!("cannot store: {e}")),
            cause: Some(Box::new(bundle_error(path, e))),
        }
    }

    /// The bytes of `uri` could not be decrypted.
    pub(super) fn decrypt(uri: &str, e: DecryptError) -> Self {
        Self {
            failure: Failure::fatal(format!("cannot decrypt: {e}")),
            cause: Some(Box::new(Error::Decrypt { uri: uri.to_owned(), source: e })),
        }
    }

    /// The body of `uri` is not what its playlist says it is (an empty answer, a web page, a body cut
    /// short): most likely a passing fault of the origin or of the network in between, so retried.
    pub(super) fn unexpected_body(uri: &str, reason: String) -> Self {
        Self {
            failure: Failure::Retryable { retry_after: None, detail: format!("unexpected body: {reason}") },
            cause: Some(Box::new(Error::UnexpectedBody { uri: uri.to_owned(), reason })),
        }
    }

    /// The internal task doing `what` panicked.
    pub(super) fn crashed(what: String, message: String) -> Self {
        Self {
            failure: Failure::fatal(format!("{what} stopped unexpectedly: {message}")),
            cause: Some(Box::new(Error::Crashed { what, message })),
        }
    }
}

/// Classifies a fetch error into the engine's failure kinds.
pub(super) fn classify(e: &stowage_fetch::Error, key: bool) -> Failure {
    use stowage_fetch::Error as E;
    match e {
        E::Status { status, .. } => match *status {
            401 | 403 | 410 => Failure::NeedsRefresh { status: *status },
            429 | 503 => Failure::Throttled { status: *status, retry_after: e.retry_after() },
            // CDNs answer 404 for keys now and then; one lost key would fail the asset.
            404 if key => Failure::retryable(e.to_string()),
            s if s >= 500 || s == 408 => {
                Failure::Retryable { retry_after: e.retry_after(), detail: e.to_string() }
            }
            _ => Failure::fatal(e.to_string()),
        },
        E::Timeout { kind: TimeoutKind::Stall | TimeoutKind::MinRate, .. } => Failure::stalled(e.to_string()),
        E::ResourceChanged { .. } => Failure::retryable(e.to_string()),
        _ if e.is_transient() => Failure::retryable(e.to_string()),
        _ => Failure::fatal(e.to_string()),
    }
}

/// The failure a retry of the fetch layer reports, for the "segment retried" and "request retried"
/// events.
pub(crate) fn retry_failure(event: &RetryEvent) -> Failure {
    match &event.cause {
        RetryCause::Status(s @ (429 | 503)) => {
            Failure::Throttled { status: *s, retry_after: event.retry_after }
        }
        RetryCause::Timeout(TimeoutKind::Stall | TimeoutKind::MinRate) => {
            Failure::stalled(format!("{} of {}", event.cause, event.uri))
        }
        other => Failure::Retryable { retry_after: event.retry_after, detail: other.to_string() },
    }
}

/// The engine's failure for a segment over its size cap, with the numbers: what the fetch layer saw
/// (declared or received), what the playlist led to expect, and the cap. `None` for other errors.
pub(super) fn over_cap(
    e: &stowage_fetch::Error,
    limit: &SegmentSizeLimit,
    bandwidth: Option<u64>,
    duration: std::time::Duration,
) -> Option<Failure> {
    let stowage_fetch::Error::TooLarge { uri, declared, received, .. } = e else { return None };
    let seen = match declared {
        Some(declared) => format!("the answer declares {declared} bytes"),
        None => format!("received {received} bytes, and more was coming"),
    };
    let rate = match bandwidth {
        Some(b) => format!("BANDWIDTH {b}"),
        None => format!("no BANDWIDTH, {} assumed", limit.unknown_bandwidth),
    };
    Some(Failure::fatal(format!(
        "segment {uri} is larger than its playlist allows: {seen}; expected about {} bytes ({rate} × {} s), \
         cap {} ({} times that, at least {})",
        limit.expected(bandwidth, duration),
        duration.as_secs_f64(),
        limit.cap(bandwidth, duration),
        limit.multiple,
        limit.floor
    )))
}

/// A future run with its panics caught: a panic becomes `Err` with the panic's message, instead of
/// ending the tokio task that polls it without a word.
pub(super) struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> CatchUnwind<F> {
    pub(super) fn new(future: F) -> Self {
        Self(Box::pin(future))
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A future that panicked is never polled again: the task that polls this one ends with the
        // `Err`, so no state the panic may have left half-changed is used.
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_message(panic))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_future_gives_its_message() {
        let ok = CatchUnwind::new(async { 7 }).await;
        assert_eq!(ok, Ok(7));
        let crashed = CatchUnwind::new(async {
            tokio::task::yield_now().await;
            panic!("the writer fell over");
        })
        .await;
        assert_eq!(crashed, Err::<(), _>("the writer fell over".to_owned()));
    }
}
