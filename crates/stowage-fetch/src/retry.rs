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

/// The backoff ceiling for retry `n` (0-based) under `cfg`.
pub(crate) fn backoff_ceiling(cfg: &RetryConfig, n: u32) -> Duration {
    backoff::ceiling(cfg.base_delay, cfg.max_delay, n)
}

/// A delay drawn uniformly from `0..=ceiling` ("full jitter"), from this process's random numbers.
pub(crate) fn full_jitter(ceiling: Duration) -> Duration {
    backoff::full_jitter(ceiling, random_u64())
}

/// Exponential backoff with full jitter: the one schedule of retries, for this crate's requests and for
/// callers that retry whole jobs (stowage-task's engine, which draws its random numbers from a seeded
/// generator so that its runs can be replayed).
///
/// Retries are counted from 0: retry `n` waits a delay drawn uniformly from `0..=min(cap, base × 2ⁿ)`, so
/// that many clients failing together do not retry together.
///
/// ```
/// use std::time::Duration;
/// use stowage_fetch::backoff::{ceiling, full_jitter};
///
/// let (base, cap) = (Duration::from_millis(250), Duration::from_secs(15));
/// assert_eq!(ceiling(base, cap, 0), base);
/// assert_eq!(ceiling(base, cap, 3), Duration::from_secs(2));
/// assert_eq!(ceiling(base, cap, 40), cap);
/// assert_eq!(full_jitter(Duration::from_secs(2), u64::MAX), Duration::from_secs(2));
/// assert_eq!(full_jitter(Duration::from_secs(2), 0), Duration::ZERO);
/// ```
pub mod backoff {
    use std::time::Duration;

    /// The largest delay before retry `n` (counting from 0): `min(cap, base × 2ⁿ)`, without overflow.
    pub fn ceiling(base: Duration, cap: Duration, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        base.checked_mul(factor).unwrap_or(Duration::MAX).min(cap)
    }

    /// A delay in `0..=ceiling` from 64 random bits, uniformly spread: Lemire's multiply-shift maps the
    /// bits onto the range (its bias, below 2⁻⁶⁴ per value, is not observable).
    pub fn full_jitter(ceiling: Duration, random: u64) -> Duration {
        let bound = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let nanos = if bound == u64::MAX {
            random
        } else {
            // The product of two 64-bit numbers fits in 128 bits, and shifted by 64 it is at most `bound`.
            ((u128::from(random) * (u128::from(bound) + 1)) >> 64) as u64
        };
        Duration::from_nanos(nanos)
    }
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

    #[test]
    fn jitter_covers_its_whole_range() {
        let mut seen = [false; 11];
        for _ in 0..10_000 {
            let d = backoff::full_jitter(Duration::from_nanos(10), random_u64());
            assert!(d <= Duration::from_nanos(10));
            seen[d.as_nanos() as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "every value of 0..=10 drawn: {seen:?}");
        assert_eq!(backoff::full_jitter(Duration::ZERO, u64::MAX), Duration::ZERO);
        assert_eq!(backoff::full_jitter(Duration::MAX, 7), Duration::from_nanos(7));
    }
}
