//! A token bucket shared by every connection of a client.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes per second (0: unlimited) with a burst of a quarter second's worth (at least 64 KiB).
///
/// Taking tokens never spins: a taker that overdraws the bucket is told how long to sleep until its
/// debt is repaid, and sleeps once on the tokio timer. Debt makes chunks larger than the burst work and
/// keeps the long-run rate exact.
pub(crate) struct TokenBucket {
    state: Mutex<State>,
}

struct State {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(bytes_per_second: u64) -> Self {
        let rate = bytes_per_second as f64;
        let burst = (rate / 4.0).max(65_536.0);
        Self { state: Mutex::new(State { rate, burst, tokens: burst, last: Instant::now() }) }
    }

    /// Changes the rate; tokens already held are kept up to the new burst.
    pub(crate) fn set_rate(&self, bytes_per_second: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.rate = bytes_per_second as f64;
        s.burst = (s.rate / 4.0).max(65_536.0);
        s.tokens = s.tokens.min(s.burst);
    }

    /// Takes `n` tokens and returns how long the caller must wait before using them.
    pub(crate) fn take(&self, n: u64, now: Instant) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.rate <= 0.0 {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.last = now.max(s.last);
        s.tokens = (s.tokens + elapsed * s.rate).min(s.burst);
        s.tokens -= n as f64;
        if s.tokens > -1.0 { Duration::ZERO } else { Duration::from_secs_f64(-s.tokens / s.rate) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_turns_into_waiting_at_the_rate() {
        let b = TokenBucket::new(1_000_000);
        let t0 = Instant::now();
        // The burst is 250 000 bytes: taking it costs nothing, the next 500 000 cost half a second.
        assert_eq!(b.take(250_000, t0), Duration::ZERO);
        let wait = b.take(500_000, t0);
        assert!((wait.as_secs_f64() - 0.5).abs() < 0.01, "{wait:?}");
        // After that half second the debt is repaid.
        assert_eq!(b.take(0, t0 + Duration::from_millis(500)), Duration::ZERO);
    }
}
