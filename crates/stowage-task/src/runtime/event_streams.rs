//! The streams of events a listener reads: one task's, or every task's of a session.

use tokio::sync::broadcast;

use crate::events::{SessionEvent, TaskEvent};

/// How many events a listener may fall behind before it misses some.
pub(super) const EVENT_CAPACITY: usize = 4096;

/// The next value of a broadcast stream, counting what a lagging listener missed; `None` once closed.
async fn recv_counting_missed<T: Clone>(rx: &mut broadcast::Receiver<T>, missed: &mut u64) -> Option<T> {
    loop {
        match rx.recv().await {
            Ok(value) => return Some(value),
            Err(broadcast::error::RecvError::Lagged(n)) => *missed += n,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// A task's events, in order. Obtained from [`DownloadTask::events`](crate::DownloadTask::events).
#[derive(Debug)]
pub struct TaskEvents {
    rx: broadcast::Receiver<TaskEvent>,
    missed: u64,
}

impl TaskEvents {
    pub(super) fn new(rx: broadcast::Receiver<TaskEvent>) -> Self {
        Self { rx, missed: 0 }
    }

    /// The next event; `None` once the task has ended and every event was received.
    pub async fn recv(&mut self) -> Option<TaskEvent> {
        recv_counting_missed(&mut self.rx, &mut self.missed).await
    }

    /// How many events this listener missed by falling more than a few thousand behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// The events of every task of a session. Obtained from [`DownloadSession::events`](crate::DownloadSession::events).
#[derive(Debug)]
pub struct SessionEvents {
    rx: broadcast::Receiver<SessionEvent>,
    missed: u64,
}

impl SessionEvents {
    pub(super) fn new(rx: broadcast::Receiver<SessionEvent>) -> Self {
        Self { rx, missed: 0 }
    }

    /// The next event; `None` once the session is gone and every event was received.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        recv_counting_missed(&mut self.rx, &mut self.missed).await
    }

    /// How many events this listener missed by falling more than a few thousand behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
