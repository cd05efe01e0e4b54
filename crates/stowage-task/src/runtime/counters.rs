//! What a task counts of its own requests, for the summary it ends with.

use std::sync::atomic::{AtomicU64, Ordering};

/// A task's requests, retries and bytes received, counted by its driver and by the session's retry
/// callback as they happen.
#[derive(Debug, Default)]
pub(crate) struct TaskCounters {
    requests: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
}

impl TaskCounters {
    /// A request was sent.
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was sent again: by the fetch layer on its own (`resent`), or, for a segment the engine
    /// starts again, counted as a request when it is sent.
    pub(crate) fn retry(&self, resent: bool) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        if resent {
            self.request();
        }
    }

    /// Body bytes arrived.
    pub(crate) fn received(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Requests, retries and bytes received so far.
    pub(crate) fn get(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}
