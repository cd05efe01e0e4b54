//! What the tasks of a session share: the HTTP client, the store, the limits, and the listeners of the
//! fetch layer's retries.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use stowage_bundle::StorageManager;
use stowage_fetch::{Client, RetryEvent};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use super::counters::TaskCounters;
use super::driver::retry_failure;
use super::session_config::SessionConfig;
use super::task::TaskShared;
use crate::engine::JobId;
use crate::events::{SessionEvent, TaskEvent};
/// Locks a mutex, going on with one that a panic poisoned: one failed fetch or hook must not stop the task.
pub(crate) use crate::poison::lock;

/// Who hears of the fetch layer's retries of a request in flight. Every retry is also a request of the
/// task's, counted for its summary.
#[derive(Clone)]
pub(crate) enum Hearer {
    /// A job's fetch: the task's runner tells it as [`TaskEvent::SegmentRetried`].
    Job(JobId, mpsc::UnboundedSender<(JobId, RetryEvent)>, Arc<TaskCounters>),
    /// A request of the task's own (a playlist, a key loaded before the segments): told at once as
    /// [`TaskEvent::RequestRetried`].
    Task(Arc<TaskShared>),
}

/// A request in flight that the fetch layer's retry callback reports to.
pub(crate) struct Listener {
    token: u64,
    hearer: Hearer,
}

/// Keeps a request registered with the retry callback, and unregisters it when dropped (also when the
/// fetch is aborted).
pub(crate) struct Listening<'a> {
    session: &'a SessionInner,
    uri: String,
    token: u64,
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        let mut listeners = lock(&self.session.listeners);
        if let Some(v) = listeners.get_mut(&self.uri) {
            v.retain(|l| l.token != self.token);
            if v.is_empty() {
                listeners.remove(&self.uri);
            }
        }
    }
}

/// What the session's tasks share.
pub(crate) struct SessionInner {
    pub(crate) config: SessionConfig,
    pub(crate) client: Client,
    pub(crate) store: StorageManager,
    pub(crate) task_slots: Semaphore,
    pub(crate) request_slots: Semaphore,
    pub(crate) events: broadcast::Sender<SessionEvent>,
    /// Requests in flight by URI, for the retry callback.
    pub(crate) listeners: Mutex<HashMap<String, Vec<Listener>>>,
    pub(crate) next_token: AtomicU64,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl SessionInner {
    pub(super) fn report_retry(&self, event: &RetryEvent) {
        let hearer = lock(&self.listeners).get(&event.uri).and_then(|v| v.first()).map(|l| l.hearer.clone());
        match hearer {
            Some(Hearer::Job(job, tx, counters)) => {
                counters.retry(true);
                let _ = tx.send((job, event.clone()));
            }
            Some(Hearer::Task(task)) => {
                task.counters.retry(true);
                task.emit(
                    self,
                    TaskEvent::RequestRetried {
                        uri: event.uri.clone(),
                        retry: event.retry,
                        cause: retry_failure(event),
                        delay: event.delay,
                        retry_after: event.retry_after,
                        until: event.until,
                    },
                );
            }
            None => {}
        }
    }

    /// Registers a request of `uri` with the retry callback until the guard is dropped.
    pub(crate) fn listen(&self, uri: &str, hearer: Hearer) -> Listening<'_> {
        // Retries are reported with the URI as the fetch layer prints it, which may differ from the
        // playlist's text (a `/` added to an empty path): both are read the same way.
        let uri = uri.parse::<stowage_fetch::Uri>().map_or_else(|_| uri.to_owned(), |u| u.to_string());
        let uri = uri.as_str();
        let token = self.next_token.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.listeners).entry(uri.to_owned()).or_default().push(Listener { token, hearer });
        Listening { session: self, uri: uri.to_owned(), token }
    }
}
