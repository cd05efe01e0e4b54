//! Adaptive concurrency: how many jobs may be in flight at once.
//!
//! The controller keeps a *window* between one and the configured global limit, and changes it by
//! measuring, not by guessing:
//!
//! * **Epochs.** Throughput is measured over epochs. An epoch starts when the window changes (or the
//!   previous epoch ends) and ends once as many jobs *started inside it* have completed as the window is
//!   wide, so every slot has done at least one full round trip at the window being measured. The epoch's
//!   throughput is the bytes completed during it divided by its length.
//! * **Ramp (multiplicative increase).** From the initial window, the window doubles after every epoch
//!   whose throughput grew by at least [`RAMP_GAIN`] over the previous one, or whose round trips did not
//!   grow by more than [`RAMP_RTT_GROWTH`] (a wider window with round trips as short as before carries
//!   more, by Little's law, whatever a short epoch's byte count says: completions come in bursts when
//!   jobs wait for one another, a segment for its key, say). The first epoch that does neither ends the
//!   ramp, and the window goes back to the previous, smaller value: the extra connections bought nothing
//!   but longer round trips, and fewer connections are kinder to the origin.
//! * **Probe (additive increase).** After the ramp, the window grows by one every [`HOLD_EPOCHS`] epochs
//!   and keeps the extra slot only if throughput grew by at least [`PROBE_GAIN`]; otherwise it steps back.
//!   Conditions change during a night-long download, so probing never stops.
//! * **Back off (multiplicative decrease).** A throttling answer (429, 503) or a stalled body halves the
//!   window, at most once per round trip: failures of jobs that were started before the last decrease
//!   describe the old window and are not counted again (the same rule as TCP's one reduction per window).
//! * **Starvation.** An epoch in which the window was not the limit (too few jobs ready, a per-host limit,
//!   a paused host) says nothing about a wider window, so it never leads to an increase.
//! * **Past the comfortable window.** Up to the *comfortable* window (the per-host limit), the rules above
//!   apply. Beyond it, up to the ceiling, the window grows only while round trips hold: the mean round
//!   trip of the epoch must stay within [`PAST_COMFORT_RTT_GROWTH`] of the shortest one measured since
//!   the last decrease. A slow origin that answers every request in the same time, however many are in
//!   flight, is waiting, not working, and more requests in flight cost it nothing; one whose answers slow
//!   down as more arrive is queueing them. An epoch past the comfortable window whose round trips grew
//!   beyond that steps the window back (to the window before the last increase in the ramp and after a
//!   probe, halfway to the comfortable window while holding). Latency alone never takes the window below
//!   the comfortable one: throttling and stalls do, as above.
//!
//! With adaptation off, the window is the global limit.

use std::time::{Duration, Instant};

/// Throughput growth that keeps the ramp going (10 %).
pub(crate) const RAMP_GAIN: f64 = 1.10;
/// Growth of the mean round trip below which a doubled window is taken to carry more (50 %): on a link
/// the window saturates, doubling it doubles the round trips.
pub(crate) const RAMP_RTT_GROWTH: f64 = 1.5;
/// Throughput growth that keeps a probed extra slot (5 %).
pub(crate) const PROBE_GAIN: f64 = 1.05;
/// Epochs between probes once the ramp is over, and after a decrease.
pub(crate) const HOLD_EPOCHS: u32 = 4;
/// Growth of the mean round trip, over the shortest measured since the last decrease, beyond which a
/// window past the comfortable one stops growing and steps back (25 %).
pub(crate) const PAST_COMFORT_RTT_GROWTH: f64 = 1.25;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Doubling while throughput grows.
    Ramp,
    /// Holding the window; counts epochs until the next probe.
    Hold { epochs: u32 },
    /// One extra slot was just added; the next epoch decides whether it stays.
    Probe,
}

#[derive(Debug, Clone)]
pub(crate) struct Controller {
    adaptive: bool,
    window: usize,
    max: usize,
    /// The window up to which the usual rules apply; past it, growth needs round trips that hold.
    comfort: usize,
    phase: Phase,
    /// The window before the last increase, to step back to.
    previous_window: usize,
    /// Throughput of the last completed epoch (bytes per second) at `previous_window`.
    baseline: Option<f64>,
    epoch_start: Option<Instant>,
    epoch_bytes: u64,
    epoch_rounds: usize,
    /// Sum of the round trips (start to completion, in seconds) of the jobs started in this epoch.
    epoch_rtt: f64,
    /// Mean round trip of the last completed epoch.
    last_rtt: Option<f64>,
    /// Shortest mean round trip of an epoch since the start or the last decrease.
    min_rtt: Option<f64>,
    epoch_starved: bool,
    /// Failures of jobs started before this instant do not reduce the window again.
    last_decrease: Option<Instant>,
}

impl Controller {
    /// A controller between one and `max`, starting at `initial`, growing past `comfort` only while round
    /// trips hold.
    pub(crate) fn new(adaptive: bool, initial: usize, max: usize, comfort: usize) -> Self {
        let window = if adaptive { initial.clamp(1, max) } else { max };
        Self {
            adaptive,
            window,
            max,
            comfort,
            phase: Phase::Ramp,
            previous_window: window,
            baseline: None,
            epoch_start: None,
            epoch_bytes: 0,
            epoch_rounds: 0,
            epoch_rtt: 0.0,
            last_rtt: None,
            min_rtt: None,
            epoch_starved: false,
            last_decrease: None,
        }
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// Lowers or raises the largest window (the engine's hosts can take no more than their limits
    /// together), so that a decrease always takes effect rather than halving slots no host could use.
    pub(crate) fn set_max(&mut self, max: usize) {
        let max = max.max(1);
        if !self.adaptive || max == self.max {
            return;
        }
        self.max = max;
        self.window = self.window.min(max);
        self.previous_window = self.previous_window.min(max);
    }

    /// Called after each dispatch pass with the number of jobs in flight and whether the window was the
    /// reason the pass stopped.
    pub(crate) fn on_dispatch(&mut self, now: Instant, window_was_limit: bool) {
        if self.epoch_start.is_none() {
            self.epoch_start = Some(now);
        }
        if !window_was_limit {
            self.epoch_starved = true;
        }
    }

    /// A job started at `started` completed with `bytes`; its request and response took `round_trip` when
    /// the driver measured it, else the whole time since it started counts as its round trip.
    pub(crate) fn on_success(
        &mut self,
        now: Instant,
        started: Instant,
        bytes: u64,
        round_trip: Option<Duration>,
    ) {
        if !self.adaptive {
            return;
        }
        let Some(epoch_start) = self.epoch_start else {
            return;
        };
        self.epoch_bytes = self.epoch_bytes.saturating_add(bytes);
        if started >= epoch_start {
            self.epoch_rounds += 1;
            let rtt = round_trip.unwrap_or_else(|| now.saturating_duration_since(started));
            self.epoch_rtt += rtt.as_secs_f64();
        }
        if self.epoch_rounds < self.window {
            return;
        }
        let elapsed = now.saturating_duration_since(epoch_start);
        if elapsed.is_zero() {
            // A run of instant completions cannot be measured; extend the epoch until time passes.
            return;
        }
        let throughput = self.epoch_bytes as f64 / elapsed.as_secs_f64();
        let rtt = self.epoch_rtt / self.epoch_rounds as f64;
        let starved = self.epoch_starved;
        self.new_epoch(now);
        let rtt_held = self.last_rtt.is_some_and(|last| rtt <= last * RAMP_RTT_GROWTH);
        self.last_rtt = Some(rtt);
        let min_rtt = self.min_rtt.map_or(rtt, |m| m.min(rtt));
        self.min_rtt = Some(min_rtt);
        let latency_held = rtt <= min_rtt * PAST_COMFORT_RTT_GROWTH;
        self.decide(throughput, rtt_held, latency_held, starved);
    }

    /// Whether the window may grow to `wider`: freely up to the comfortable window, past it only while
    /// round trips hold.
    fn may_grow_to(&self, wider: usize, latency_held: bool) -> bool {
        wider <= self.comfort || latency_held
    }

    fn decide(&mut self, throughput: f64, rtt_held: bool, latency_held: bool, starved: bool) {
        let past_comfort = self.window > self.comfort;
        match self.phase {
            Phase::Ramp => {
                if starved {
                    // Nothing learned about a wider window; remember what this one does.
                    self.baseline = Some(self.baseline.map_or(throughput, |b| b.max(throughput)));
                    return;
                }
                match self.baseline {
                    Some(base)
                        if throughput < base * RAMP_GAIN && !rtt_held || past_comfort && !latency_held =>
                    {
                        // Doubling bought less than the gain, or took the window past the comfortable
                        // one and the round trips grew: go back and hold.
                        self.window = self.previous_window;
                        self.phase = Phase::Hold { epochs: 0 };
                        self.baseline = Some(base);
                    }
                    _ => {
                        self.baseline = Some(self.baseline.map_or(throughput, |b| b.max(throughput)));
                        let wider = self.window.saturating_mul(2).min(self.max);
                        if self.window < self.max && self.may_grow_to(wider, latency_held) {
                            self.previous_window = self.window;
                            self.window = wider;
                        } else {
                            self.phase = Phase::Hold { epochs: 0 };
                        }
                    }
                }
            }
            Phase::Probe => match self.baseline {
                Some(base) if throughput < base * PROBE_GAIN || past_comfort && !latency_held => {
                    self.window = self.previous_window;
                    self.phase = Phase::Hold { epochs: 0 };
                }
                _ => {
                    self.baseline = Some(throughput);
                    self.phase = Phase::Hold { epochs: HOLD_EPOCHS };
                }
            },
            Phase::Hold { .. } if past_comfort && !latency_held && !starved => {
                // Round trips grew while holding past the comfortable window: the origin is queueing.
                // Step back halfway towards the comfortable window and measure again.
                self.window = self.comfort + (self.window - self.comfort) / 2;
                self.previous_window = self.window;
                self.baseline = None;
                self.phase = Phase::Hold { epochs: 0 };
            }
            Phase::Hold { epochs } => {
                // The baseline follows the measured throughput, so a probe compares against the present.
                self.baseline = Some(throughput);
                let epochs = epochs + 1;
                if epochs >= HOLD_EPOCHS
                    && !starved
                    && self.window < self.max
                    && self.may_grow_to(self.window + 1, latency_held)
                {
                    self.previous_window = self.window;
                    self.window += 1;
                    self.phase = Phase::Probe;
                } else {
                    self.phase = Phase::Hold { epochs };
                }
            }
        }
    }

    /// A job started at `started` was throttled or stalled.
    ///
    /// Returns whether the window was reduced.
    pub(crate) fn on_congestion(&mut self, now: Instant, started: Instant) -> bool {
        if !self.adaptive {
            return false;
        }
        if self.last_decrease.is_some_and(|at| started < at) {
            return false;
        }
        self.last_decrease = Some(now);
        self.window = (self.window / 2).max(1);
        self.previous_window = self.window;
        self.phase = Phase::Hold { epochs: 0 };
        self.baseline = None;
        self.last_rtt = None;
        self.min_rtt = None;
        self.new_epoch(now);
        true
    }

    /// The plan was suspended: measurements across a pause mean nothing.
    pub(crate) fn on_pause(&mut self) {
        self.epoch_start = None;
        self.epoch_bytes = 0;
        self.epoch_rounds = 0;
        self.epoch_rtt = 0.0;
        self.epoch_starved = false;
    }

    fn new_epoch(&mut self, now: Instant) {
        self.epoch_start = Some(now);
        self.epoch_bytes = 0;
        self.epoch_rounds = 0;
        self.epoch_rtt = 0.0;
        self.epoch_starved = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the controller with an idealised link: `latency` per job plus `bytes / bandwidth` shared by
    /// all jobs in flight, all jobs started together in rounds.
    fn run(latency: Duration, bandwidth: Option<f64>, max: usize, rounds: usize) -> Vec<usize> {
        let t0 = Instant::now();
        let mut now = t0;
        let mut c = Controller::new(true, 2, max, max);
        let size = 1_000_000u64;
        let mut windows = Vec::new();
        for _ in 0..rounds {
            let w = c.window();
            windows.push(w);
            c.on_dispatch(now, true);
            let started = now;
            let transfer =
                bandwidth.map_or(Duration::ZERO, |b| Duration::from_secs_f64(size as f64 * w as f64 / b));
            now += latency + transfer;
            for _ in 0..w {
                c.on_success(now, started, size, None);
            }
        }
        windows
    }

    #[test]
    fn ramps_to_the_limit_when_latency_bound() {
        let windows = run(Duration::from_millis(50), None, 32, 12);
        assert_eq!(&windows[..5], &[2, 4, 8, 16, 32], "{windows:?}");
        assert!(windows.iter().all(|&w| w <= 32));
    }

    #[test]
    fn round_trips_that_hold_keep_the_ramp_going_when_bytes_look_flat() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(50);
        let mut c = Controller::new(true, 4, 64, 64);
        // One epoch: `window` jobs started at `at`, done one round trip `rtt` later with `bytes` each.
        let epoch = |c: &mut Controller, at: Instant, rtt: Duration, bytes: u64| {
            c.on_dispatch(at, true);
            for _ in 0..c.window() {
                c.on_success(at + rtt, at, bytes, None);
            }
            at + rtt
        };
        let t = epoch(&mut c, t0, rtt, 100_000);
        assert_eq!(c.window(), 8);
        // Twice the jobs, the same round trips, but no more bytes counted in the epoch (completions that
        // came in a burst, jobs that carry little, such as keys): the window carries more all the same.
        let t = epoch(&mut c, t, rtt, 50_000);
        assert_eq!(c.window(), 16, "round trips held: the ramp goes on");
        // Round trips doubled and bytes flat: the link is saturated, and the ramp steps back.
        let _ = epoch(&mut c, t, rtt * 2, 25_000);
        assert_eq!(c.window(), 8);
        assert!(matches!(c.phase, Phase::Hold { .. }));
    }

    #[test]
    fn stops_ramping_when_bandwidth_bound() {
        // 1 MB jobs over 10 MB/s with 10 ms latency: two slots already carry nearly all the bandwidth.
        let windows = run(Duration::from_millis(10), Some(10_000_000.0), 64, 40);
        let peak = *windows.iter().max().unwrap();
        assert!(peak <= 8, "window should not keep growing on a saturated link: {windows:?}");
    }

    #[test]
    fn congestion_halves_once_per_round_trip() {
        let t0 = Instant::now();
        let mut c = Controller::new(true, 16, 32, 32);
        c.on_dispatch(t0, true);
        let later = t0 + Duration::from_millis(100);
        assert!(c.on_congestion(later, t0));
        assert_eq!(c.window(), 8);
        // A second failure from the same generation of jobs does not cut again.
        assert!(!c.on_congestion(later + Duration::from_millis(1), t0));
        assert_eq!(c.window(), 8);
        // A job started after the decrease does.
        assert!(c.on_congestion(later + Duration::from_millis(50), later + Duration::from_millis(10)));
        assert_eq!(c.window(), 4);
        for i in 0..10 {
            let at = later + Duration::from_secs(i + 1);
            c.on_congestion(at, at);
        }
        assert_eq!(c.window(), 1, "never below one");
    }

    #[test]
    fn after_a_decrease_probes_grow_the_window_one_slot_at_a_time() {
        // A latency-bound link, where every extra slot pays: after halving, the window comes back one
        // slot per probe, not by doubling.
        let t0 = Instant::now();
        let mut now = t0;
        let mut c = Controller::new(true, 16, 32, 32);
        c.on_dispatch(now, true);
        now += Duration::from_millis(10);
        assert!(c.on_congestion(now, now));
        assert_eq!(c.window(), 8);
        let mut windows = Vec::new();
        for _ in 0..30 {
            let w = c.window();
            windows.push(w);
            c.on_dispatch(now, true);
            let started = now;
            now += Duration::from_millis(50);
            for _ in 0..w {
                c.on_success(now, started, 1_000_000, None);
            }
        }
        let steps: Vec<usize> = windows.windows(2).map(|p| p[1].abs_diff(p[0])).collect();
        assert!(steps.iter().all(|&s| s <= 1), "additive steps only: {windows:?}");
        assert!(*windows.last().unwrap() >= 12, "the window grows back: {windows:?}");
    }

    #[test]
    fn a_probe_that_buys_nothing_steps_back() {
        // A saturated link: throughput is the same at any window, so each probe is undone.
        let t0 = Instant::now();
        let mut now = t0;
        let mut c = Controller::new(true, 4, 32, 32);
        let mut windows = Vec::new();
        for _ in 0..60 {
            let w = c.window();
            windows.push(w);
            c.on_dispatch(now, true);
            let started = now;
            // 1 MB per job over a 100 MB/s link, whatever the window.
            now += Duration::from_millis(10) * w as u32;
            for _ in 0..w {
                c.on_success(now, started, 1_000_000, None);
            }
        }
        // The ramp tries 8 once and goes back; then every probe of a fifth slot is undone.
        assert_eq!(windows[..3], [4, 8, 4]);
        assert!(windows[2..].iter().all(|&w| w <= 5), "{windows:?}");
        assert_eq!(*windows.last().unwrap(), 4, "{windows:?}");
    }

    #[test]
    fn fixed_window_without_adaptation() {
        let t0 = Instant::now();
        let mut c = Controller::new(false, 2, 12, 12);
        assert_eq!(c.window(), 12);
        assert!(!c.on_congestion(t0, t0));
        assert_eq!(c.window(), 12);
    }
}
