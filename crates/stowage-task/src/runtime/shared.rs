//! What the tasks of a session share: the HTTP client, the store, the limits, and the listeners of the
//! fetch layer's retries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use stowage_bundle::StorageManager;
use stowage_fetch::{Client, RetryEvent};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use super::session_config::SessionConfig;
use crate::engine::JobId;
use crate::events::SessionEvent;

/// Locks a mutex, going on with one that a panic poisoned: one failed fetch or hook must not stop the task.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A request in flight that the fetch layer's retry callback reports to.
pub(crate) struct Listener {
    pub(crate) token: u64,
    pub(crate) job: JobId,
    pub(crate) tx: mpsc::UnboundedSender<(JobId, RetryEvent)>,
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
        let listeners = lock(&self.listeners);
        if let Some(l) = listeners.get(&event.uri).and_then(|v| v.first()) {
            let _ = l.tx.send((l.job, event.clone()));
        }
    }

    pub(crate) fn listen(
        &self,
        uri: &str,
        job: JobId,
        tx: &mpsc::UnboundedSender<(JobId, RetryEvent)>,
    ) -> u64 {
        let token = self.next_token.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.listeners).entry(uri.to_owned()).or_default().push(Listener {
            token,
            job,
            tx: tx.clone(),
        });
        token
    }

    pub(crate) fn unlisten(&self, uri: &str, token: u64) {
        let mut listeners = lock(&self.listeners);
        if let Some(v) = listeners.get_mut(uri) {
            v.retain(|l| l.token != token);
            if v.is_empty() {
                listeners.remove(uri);
            }
        }
    }
}
