//! Retry events and the backoff schedule.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::config::RetryConfig;
use crate::error::TimeoutKind;

/// Why a request is being tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryCause {
    /// The connection could not be opened.
    Connect(String),
    /// A deadline ran out.
    Timeout(TimeoutKind),
    /// The server answered with a retryable status (5xx, 408 or 429).
    Status(u16),
    /// The connection failed while the request or response was in flight.
    Transfer(String),
    /// The body ended before its declared length.
    ShortBody {
        /// Bytes declared.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
}

impl std::fmt::Display for RetryCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(m) => write!(f, "connect failed: {m}"),
            Self::Timeout(k) => write!(f, "{k} timeout"),
            Self::Status(s) => write!(f, "HTTP status {s}"),
            Self::Transfer(m) => write!(f, "transfer failed: {m}"),
            Self::ShortBody { expected, received } => {
                write!(f, "body cut after {received} of {expected} bytes")
            }
        }
    }
}

/// One retry (or resume of an interrupted body), reported before its delay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryEvent {
    /// The URI being retried (after redirects).
    pub uri: String,
    /// Which retry this is for the operation: 1 for the first.
    pub retry: u32,
    /// What went wrong.
    pub cause: RetryCause,
    /// How long the client waits before trying again.
    pub delay: Duration,
    /// The server's `Retry-After`, when the delay is the wait it asked for.
    pub retry_after: Option<Duration>,
    /// When the next attempt is due, by the system clock: when the event was made, plus `delay`.
    pub until: SystemTime,
    /// For a resumed body: the byte offset in the resource the new request starts from.
    pub resume_from: Option<u64>,
}

/// The backoff ceiling for retry `n` (0-based): `min(max_delay, base_delay × 2ⁿ)`.
pub(crate) fn backoff_ceiling(cfg: &RetryConfig, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    cfg.base_delay.checked_mul(factor).unwrap_or(cfg.max_delay).min(cfg.max_delay)
}

/// A delay drawn uniformly from `0..=ceiling` ("full jitter"), so that many clients failing together do
/// not retry together.
pub(crate) fn full_jitter(ceiling: Duration) -> Duration {
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random_u64() % (nanos + 1).max(1))
}

/// A random number good enough for jitter: the standard library's per-process random hash keys, mixed
/// with a counter. Jitter needs spread, not secrecy, so no RNG crate is pulled in for it.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let cfg =
            RetryConfig::default().base_delay(Duration::from_millis(100)).max_delay(Duration::from_secs(1));
        assert_eq!(backoff_ceiling(&cfg, 0), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(&cfg, 2), Duration::from_millis(400));
        assert_eq!(backoff_ceiling(&cfg, 4), Duration::from_secs(1));
        assert_eq!(backoff_ceiling(&cfg, 200), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_ceiling_and_spreads() {
        let ceiling = Duration::from_millis(10);
        let draws: Vec<Duration> = (0..200).map(|_| full_jitter(ceiling)).collect();
        assert!(draws.iter().all(|d| *d <= ceiling));
        let low = draws.iter().filter(|d| **d < ceiling / 2).count();
        assert!((40..160).contains(&low), "jitter not spread: {low} of 200 below half");
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }
}
