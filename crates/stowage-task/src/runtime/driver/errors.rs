//! How failures of the layers below become the task's errors and the engine's failures.

use stowage_fetch::{RetryCause, RetryEvent, TimeoutKind};

use crate::Error;
use crate::config::SegmentSizeLimit;
use crate::engine::Failure;

/// The task's error for a fetch of `uri` that failed.
pub(super) fn fetch_error(uri: &str, e: &stowage_fetch::Error) -> Error {
    Error::Fetch { uri: e.uri().unwrap_or(uri).to_owned(), status: e.status(), message: e.to_string() }
}

/// The task's error for a call into the bundle at `path` that failed.
pub(super) fn bundle_error(path: &std::path::Path, e: &stowage_bundle::Error) -> Error {
    Error::Bundle {
        path: e.path().map_or_else(|| path.to_path_buf(), std::path::Path::to_path_buf),
        message: e.to_string(),
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

/// The engine's failure for a job whose bytes could not be stored: retrying cannot help.
pub(super) fn store_failure(e: &stowage_bundle::Error) -> Failure {
    Failure::fatal(format!("cannot store: {e}"))
}
