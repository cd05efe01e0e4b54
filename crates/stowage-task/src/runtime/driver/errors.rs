//! How failures of the layers below become the task's errors and the engine's failures.

use std::time::Duration;

use stowage_fetch::{RetryCause, TimeoutKind};

use crate::Error;
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
        E::Timeout { kind: TimeoutKind::Stall, .. } => Failure::Stalled,
        E::ResourceChanged { .. } => Failure::retryable(e.to_string()),
        _ if e.is_transient() => Failure::retryable(e.to_string()),
        _ => Failure::fatal(e.to_string()),
    }
}

/// The failure a retry of the fetch layer reports, for the "segment retried" event.
pub(super) fn retry_failure(cause: &RetryCause, delay: Duration) -> Failure {
    match cause {
        RetryCause::Status(s @ (429 | 503)) => Failure::Throttled { status: *s, retry_after: Some(delay) },
        RetryCause::Timeout(TimeoutKind::Stall) => Failure::Stalled,
        other => Failure::Retryable { retry_after: None, detail: other.to_string() },
    }
}

/// The engine's failure for a job whose bytes could not be stored: retrying cannot help.
pub(super) fn store_failure(e: &stowage_bundle::Error) -> Failure {
    Failure::fatal(format!("cannot store: {e}"))
}
