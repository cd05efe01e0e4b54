//! Counters readable at any time: bytes, requests, retries, connections, per-host throughput.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A snapshot of a client's counters since it was built.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Counters {
    /// Response body bytes received from the network (before content decoding).
    pub bytes_received: u64,
    /// Requests sent, retries, redirects and resumes included.
    pub requests: u64,
    /// Retries and resumes.
    pub retries: u64,
    /// Interrupted bodies resumed with a range request.
    pub resumes: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Requests sent on a connection that had already carried one (HTTP/1.1 keep-alive, or another
    /// HTTP/2 stream).
    pub connections_reused: u64,
    /// Per host (`host:port`), sorted by host.
    pub hosts: Vec<HostCounters>,
}

/// Counters for one host.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct HostCounters {
    /// `host:port`.
    pub host: String,
    /// Body bytes received from this host.
    pub bytes_received: u64,
    /// Requests sent to this host.
    pub requests: u64,
    /// Recent throughput while receiving, in bytes per second: an exponentially weighted average over
    /// windows of a quarter second. Zero until a first window is complete.
    pub throughput: f64,
}

#[derive(Default)]
struct HostState {
    bytes: u64,
    requests: u64,
    window_start: Option<Instant>,
    window_bytes: u64,
    ewma: f64,
}

const WINDOW: Duration = Duration::from_millis(250);

/// The live counters, shared by a client's connections and bodies.
#[derive(Default)]
pub(crate) struct CounterSet {
    pub(crate) bytes: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) opened: AtomicU64,
    pub(crate) reused: AtomicU64,
    hosts: Mutex<HashMap<String, HostState>>,
}

impl CounterSet {
    pub(crate) fn request(&self, host: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.entry(host.to_owned()).or_default().requests += 1;
    }

    pub(crate) fn received(&self, host: &str, n: u64, now: Instant) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let h = match hosts.get_mut(host) {
            Some(h) => h,
            None => hosts.entry(host.to_owned()).or_default(),
        };
        h.bytes += n;
        let start = *h.window_start.get_or_insert(now);
        h.window_bytes += n;
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= WINDOW {
            let rate = h.window_bytes as f64 / elapsed.as_secs_f64();
            // A gap of many windows means the host was idle: start the average afresh rather than
            // blending in a rate that describes idleness, not the link.
            h.ewma = if h.ewma == 0.0 || elapsed > WINDOW * 8 { rate } else { 0.7 * h.ewma + 0.3 * rate };
            h.window_start = Some(now);
            h.window_bytes = 0;
        }
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<HostCounters> = hosts
            .iter()
            .map(|(k, h)| HostCounters {
                host: k.clone(),
                bytes_received: h.bytes,
                requests: h.requests,
                throughput: h.ewma,
            })
            .collect();
        list.sort_by(|a, b| a.host.cmp(&b.host));
        Counters {
            bytes_received: self.bytes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            resumes: self.resumes.load(Ordering::Relaxed),
            connections_opened: self.opened.load(Ordering::Relaxed),
            connections_reused: self.reused.load(Ordering::Relaxed),
            hosts: list,
        }
    }
}
