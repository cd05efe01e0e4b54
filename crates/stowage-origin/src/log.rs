//! The request log tests read to check what a client did.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::poison::lock;
use http::{Method, Version};

/// One request as the origin saw and answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestRecord {
    /// The request's number, from 0 in arrival order (clearing the log does not restart it).
    pub index: u64,
    /// The connection it arrived on, numbered from 0 in accept order: equal ids mean a reused connection.
    pub connection: u64,
    /// The request method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// The `Range` header, as sent.
    pub range: Option<String>,
    /// The `If-Range` header, as sent.
    pub if_range: Option<String>,
    /// The HTTP version of the request.
    pub version: Version,
    /// The status answered.
    pub status: u16,
    /// Body bytes handed to the connection so far (for a cut body, what was sent before the cut).
    pub bytes_sent: u64,
    /// Whether the whole body was handed to the connection (false for cut bodies, and for clients that
    /// went away while the origin was still sending). Socket buffers on loopback hold megabytes, so a
    /// client that stops reading early can still leave this true for a body of a few megabytes; a
    /// [`Fault::Throttle`](crate::Fault::Throttle) on the response makes the difference observable.
    pub completed: bool,
    /// The faults that fired, described briefly (for example `status 503 retry-after 1`).
    pub faults: Vec<String>,
    /// When the request arrived.
    pub received: Instant,
}

/// The shared log; clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestLog {
    inner: Arc<Mutex<LogState>>,
}

#[derive(Debug, Default)]
struct LogState {
    next: u64,
    entries: VecDeque<RequestRecord>,
    limit: Option<usize>,
}

impl RequestLog {
    /// A log keeping at most `limit` of the latest records (all of them without a limit).
    pub(crate) fn with_limit(limit: Option<usize>) -> Self {
        let log = Self::default();
        log.lock().limit = limit;
        log
    }

    /// Appends a record and returns its index.
    pub(crate) fn push(&self, mut record: RequestRecord) -> u64 {
        let mut state = self.lock();
        record.index = state.next;
        state.next += 1;
        state.entries.push_back(record);
        if let Some(limit) = state.limit {
            while state.entries.len() > limit {
                state.entries.pop_front();
            }
        }
        state.next - 1
    }

    /// Adds body bytes sent and marks completion for the record numbered `index`, if still in the log.
    pub(crate) fn update(&self, index: u64, more_bytes: u64, completed: bool) {
        let mut state = self.lock();
        // Records are in index order, and a cleared log only drops old ones, so a binary search finds it.
        if let Ok(at) = state.entries.binary_search_by_key(&index, |r| r.index) {
            let record = &mut state.entries[at];
            record.bytes_sent += more_bytes;
            record.completed |= completed;
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<RequestRecord> {
        self.lock().entries.iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // Records are pushed or updated one field at a time, so a poisoned log is still consistent.
        lock(&self.inner)
    }
}
