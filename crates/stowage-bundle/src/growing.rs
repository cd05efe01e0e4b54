//! The pace at which the playlists of a bundle being written are rewritten as it grows.
//!
//! Every rewrite of a growing playlist ([`Bundle::write_growing_playlists`](crate::Bundle)) writes whole
//! playlists: for an asset of 10,000 segments, one per stored segment would write gigabytes of playlist.
//! [`GrowthThrottle`] decides when a rewrite is due, without doing any IO itself, so that a download, a
//! live capture or a test drive it alike.

use std::time::{Duration, Instant};

/// When to rewrite the playlists of a growing bundle: on growth, at once the first time, then no sooner
/// than [`min_interval`](GrowthThrottle::min_interval) after the last rewrite, and never so often that
/// rewriting takes more than a tenth of the time (a rewrite that took 30 ms is followed by at least 300 ms
/// without one), so that a long playlist is rewritten less often than a short one.
///
/// Growth not yet written stays due until it is: a caller waits until [`due_at`](Self::due_at) (a timer
/// beside its other work), writes, and reports the rewrite with [`written`](Self::written); a download also
/// writes when it ends.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stowage_bundle::GrowthThrottle;
///
/// let mut throttle = GrowthThrottle::new().min_interval(Duration::from_millis(500));
/// let start = Instant::now();
/// assert_eq!(throttle.due_at(), None, "nothing grew");
/// throttle.grew();
/// assert!(throttle.is_due(start), "the first growth is written at once");
/// throttle.written(start, start + Duration::from_millis(2));
/// throttle.grew();
/// assert!(!throttle.is_due(start + Duration::from_millis(100)));
/// assert!(throttle.is_due(start + Duration::from_millis(502)));
/// ```
#[derive(Clone, Debug)]
pub struct GrowthThrottle {
    min_interval: Duration,
    /// When the last rewrite started, and how long it took.
    last: Option<(Instant, Duration)>,
    /// Growth happened since the last rewrite started.
    pending: bool,
}

impl Default for GrowthThrottle {
    fn default() -> Self {
        Self::new()
    }
}

impl GrowthThrottle {
    /// The default interval between rewrites: short beside a segment's duration (a player reloads a
    /// growing playlist about once per target duration), long beside the few milliseconds a rewrite takes.
    pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(500);

    /// A rewrite takes at most 1/`BUSY_RATIO` of the time.
    const BUSY_RATIO: u32 = 10;

    /// A throttle with the default interval, nothing pending.
    pub fn new() -> Self {
        Self { min_interval: Self::DEFAULT_MIN_INTERVAL, last: None, pending: false }
    }

    /// The least time between the starts of two rewrites.
    #[must_use]
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// The bundle grew (a segment stored, a gap recorded): a rewrite becomes due.
    pub fn grew(&mut self) {
        self.pending = true;
    }

    /// Whether growth is waiting to be written.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// When the pending growth is to be written; `None` when nothing is pending. It may be in the past:
    /// the rewrite is due now.
    pub fn due_at(&self) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        Some(match self.last {
            None => Instant::now(),
            Some((started, took)) => started + self.min_interval.max(took.saturating_mul(Self::BUSY_RATIO)),
        })
    }

    /// Whether a rewrite is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        match (self.pending, self.last) {
            (false, _) => false,
            (true, None) => true,
            (true, Some((started, took))) => {
                now.saturating_duration_since(started)
                    >= self.min_interval.max(took.saturating_mul(Self::BUSY_RATIO))
            }
        }
    }

    /// A rewrite ran from `started` to `finished`: the growth reported before it is written. Growth that
    /// happens while a rewrite runs is reported after this call.
    pub fn written(&mut self, started: Instant, finished: Instant) {
        self.pending = false;
        self.last = Some((started, finished.saturating_duration_since(started)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_written_at_once_then_at_most_once_per_interval() {
        let mut t = GrowthThrottle::new().min_interval(Duration::from_millis(500));
        let t0 = Instant::now();
        assert!(!t.is_due(t0));
        t.grew();
        assert!(t.is_due(t0));
        t.written(t0, t0 + Duration::from_millis(1));
        assert!(!t.is_due(t0 + Duration::from_secs(10)), "nothing grew since");
        // A thousand segments stored within the interval: one rewrite when it ends.
        for ms in 1..500 {
            t.grew();
            assert!(!t.is_due(t0 + Duration::from_millis(ms)), "{ms} ms");
        }
        assert_eq!(t.due_at(), Some(t0 + Duration::from_millis(500)));
        assert!(t.is_due(t0 + Duration::from_millis(500)));
    }

    #[test]
    fn slow_rewrites_are_spaced_out() {
        let mut t = GrowthThrottle::new().min_interval(Duration::from_millis(100));
        let t0 = Instant::now();
        t.grew();
        // A long playlist took 80 ms to rewrite: the next one waits 800 ms, not 100.
        t.written(t0, t0 + Duration::from_millis(80));
        t.grew();
        assert!(!t.is_due(t0 + Duration::from_millis(500)));
        assert_eq!(t.due_at(), Some(t0 + Duration::from_millis(800)));
        assert!(t.is_due(t0 + Duration::from_millis(800)));
    }
}
