//! The origin's clock: stream time, which may run faster than wall time or be moved by hand.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::poison::lock;
use tokio::sync::watch;

/// The time an origin goes by: *stream time*, a [`Duration`] since the clock started.
///
/// A clock runs at a fixed speed: 1.0 is real time, 60.0 makes a minute of stream pass in each wall second
/// (so a live test records an hour in a minute), and 0.0 stands still until [`Clock::advance`] moves it
/// (a manual clock, for tests that step through time exactly). [`Clock::advance`] works at any speed: it
/// jumps ahead, and everything waiting on the clock wakes up.
///
/// Fault windows ([`FaultRule::during`](crate::FaultRule::during)), scripts and the live origin's
/// timeline are all measured in stream time. A client that should follow an accelerated live stream at its
/// pace must run on the same clock: [`Clock::now`] is what it compares its deadlines with.
///
/// `Clock` is a cheap handle: clones share the same time.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    speed: f64,
    started: Instant,
    /// Stream time added by [`Clock::advance`].
    advanced: Mutex<Duration>,
    /// Bumped on every advance, so that waiters recompute their deadlines.
    changed: watch::Sender<u64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::real_time()
    }
}

impl Clock {
    /// A clock running at `speed` times real time, starting now. Negative and non-finite speeds count as
    /// 0.0 (a manual clock).
    pub fn new(speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 0.0 };
        let (changed, _) = watch::channel(0);
        Self {
            inner: Arc::new(ClockInner {
                speed,
                started: Instant::now(),
                advanced: Mutex::new(Duration::ZERO),
                changed,
            }),
        }
    }

    /// A clock running at real time, starting now.
    pub fn real_time() -> Self {
        Self::new(1.0)
    }

    /// A clock running `speed` times faster than real time, starting now.
    pub fn accelerated(speed: f64) -> Self {
        Self::new(speed)
    }

    /// A clock that stands still at zero until [`Clock::advance`] moves it.
    pub fn manual() -> Self {
        Self::new(0.0)
    }

    /// Stream seconds per wall second (0.0 for a manual clock).
    pub fn speed(&self) -> f64 {
        self.inner.speed
    }

    /// Whether only [`Clock::advance`] moves this clock.
    pub fn is_manual(&self) -> bool {
        self.inner.speed == 0.0
    }

    /// Stream time now.
    pub fn now(&self) -> Duration {
        let advanced = *self.advanced();
        if self.is_manual() {
            return advanced;
        }
        advanced + self.inner.started.elapsed().mul_f64(self.inner.speed)
    }

    /// Moves the clock `by` ahead, waking everything that waits on it.
    pub fn advance(&self, by: Duration) {
        *self.advanced() += by;
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The wall time from now until the clock reads `at` if nobody advances it: zero when `at` has passed,
    /// `None` for a manual clock that has not reached it.
    pub fn wall_until(&self, at: Duration) -> Option<Duration> {
        let now = self.now();
        if now >= at {
            return Some(Duration::ZERO);
        }
        if self.is_manual() {
            return None;
        }
        Some((at - now).div_f64(self.inner.speed))
    }

    /// Stream time `wall` of real time covers at this clock's speed.
    pub fn stream_span(&self, wall: Duration) -> Duration {
        wall.mul_f64(self.inner.speed)
    }

    /// Blocks the calling thread until the clock reads `at` (for synchronous tests; async code awaits the
    /// origin's answers instead). A manual clock must be advanced by another thread.
    pub fn sleep_until(&self, at: Duration) {
        let mut changes = self.inner.changed.subscribe();
        loop {
            match self.wall_until(at) {
                Some(wall) if wall.is_zero() => return,
                // Sleeping in short steps notices an advance from another thread soon enough.
                Some(wall) => std::thread::sleep(wall.min(Duration::from_millis(20))),
                None => {
                    if changes.has_changed().unwrap_or(false) {
                        changes.borrow_and_update();
                    } else {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
    }

    /// Waits until the clock reads `at` (inside a tokio runtime with its timer enabled): what a client's
    /// driver sleeps on to keep pace with an accelerated or manual stream.
    pub async fn wait_until(&self, at: Duration) {
        let mut changes = self.inner.changed.subscribe();
        loop {
            match self.wall_until(at) {
                Some(wall) if wall.is_zero() => return,
                Some(wall) => {
                    // Rounding from stream to wall time may wake this a hair early; the loop checks again.
                    tokio::select! {
                        () = tokio::time::sleep(wall) => {}
                        _ = changes.changed() => {}
                    }
                }
                None => {
                    if changes.changed().await.is_err() {
                        // The sender lives as long as this clock, which `self` keeps alive.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// Waits until the clock reads `at`, or forever when `at` is `None`.
    pub(crate) async fn wait_until_opt(&self, at: Option<Duration>) {
        match at {
            Some(at) => self.wait_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// A receiver that sees every [`Clock::advance`].
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    fn advanced(&self) -> MutexGuard<'_, Duration> {
        // The guarded value is a single Duration, written whole, so a poisoned lock still holds a valid one.
        lock(&self.inner.advanced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_move_only_when_advanced() {
        let clock = Clock::manual();
        assert_eq!(clock.now(), Duration::ZERO);
        assert_eq!(clock.wall_until(Duration::from_secs(1)), None);
        clock.advance(Duration::from_secs(3));
        assert_eq!(clock.now(), Duration::from_secs(3));
        assert_eq!(clock.wall_until(Duration::from_secs(2)), Some(Duration::ZERO));
        assert!(clock.is_manual());
        assert!(Clock::new(-1.0).is_manual());
        assert!(Clock::new(f64::NAN).is_manual());
    }

    #[test]
    fn accelerated_clocks_scale_wall_time() {
        let clock = Clock::accelerated(1000.0);
        let wall = clock.wall_until(clock.now() + Duration::from_secs(10)).unwrap();
        assert!(wall <= Duration::from_millis(10), "{wall:?}");
        assert_eq!(clock.stream_span(Duration::from_millis(3)), Duration::from_secs(3));
        clock.sleep_until(Duration::from_secs(5));
        assert!(clock.now() >= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn waiters_wake_on_advance() {
        let clock = Clock::manual();
        let waiter = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.wait_until(Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.advance(Duration::from_secs(6));
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }
}
