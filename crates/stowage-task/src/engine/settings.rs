//! How an engine is configured: concurrency limits, the retry policy, the integrity policy.

use std::time::Duration;

use crate::Error;
use crate::config::IntegrityPolicy;

/// Concurrency limits and whether the window adapts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConcurrencyLimits {
    /// Jobs in flight at once, in total. Never exceeded. Default 64.
    pub max_total: usize,
    /// Jobs in flight at once on one host, unless the adaptive window took the host past it (see
    /// [`per_host_ceiling`](Self::per_host_ceiling)). Default 16: with segments of a few hundred
    /// kilobytes, a download is bound by round trips, not bandwidth, and the time to fetch `n` segments
    /// at `c` in flight is about `n × latency / c`; the adaptive window keeps fewer in flight where more
    /// buy nothing, and halves on throttling. Never exceeded with adaptation off, nor on a host that
    /// pushed back.
    pub max_per_host: usize,
    /// How far the adaptive window may take one host past [`max_per_host`](Self::max_per_host): never
    /// exceeded. Default 64.
    ///
    /// An origin that answers slowly but without pushback (every answer after the same delay, however
    /// many requests are in flight) is waiting, not working: more requests in flight cost it nothing and
    /// shorten the download in proportion. So past `max_per_host` the window keeps growing, up to this
    /// ceiling, while the round trips stay within 25 % of the shortest measured and the host has not
    /// pushed back. A host that pushes back once (a 429 or 503, a stall, a connection error or another
    /// transient failure, reported as a failure or with [`Engine::handle_pushback`](super::Engine::handle_pushback))
    /// is held to `max_per_host` for the rest of the run, and the window halves on throttling and stalls
    /// as it always does. A ceiling at or below `max_per_host` turns this off.
    pub per_host_ceiling: usize,
    /// Whether the window adapts to measured throughput and throttling (default) or stays at `max_total`.
    ///
    /// The adaptive window starts at `initial`, doubles while each doubling raises measured throughput by
    /// at least 10 % (or round trips hold), then probes one slot at a time (kept only for a 5 % gain), and
    /// halves on a 429, a 503 or a stall, at most once per round trip. An epoch in which the window was
    /// not what limited the starts (too few ready jobs, a per-host limit, a paused host) never widens it.
    /// Past `max_per_host` it grows only while round trips hold, up to `per_host_ceiling`.
    pub adaptive: bool,
    /// The first window when adapting. Default 4.
    pub initial: usize,
}

impl Default for ConcurrencyLimits {
    fn default() -> Self {
        Self { max_total: 64, max_per_host: 16, per_host_ceiling: 64, adaptive: true, initial: 4 }
    }
}

impl ConcurrencyLimits {
    /// Sets the global limit.
    #[must_use]
    pub fn max_total(mut self, n: usize) -> Self {
        self.max_total = n;
        self
    }

    /// Sets the per-host limit.
    #[must_use]
    pub fn max_per_host(mut self, n: usize) -> Self {
        self.max_per_host = n;
        self
    }

    /// Sets how far the adaptive window may take a host that shows no strain (see
    /// [`per_host_ceiling`](Self::per_host_ceiling)).
    #[must_use]
    pub fn per_host_ceiling(mut self, n: usize) -> Self {
        self.per_host_ceiling = n;
        self
    }

    /// The most jobs a host may have in flight: the ceiling while it shows no strain and the window
    /// adapts, else the per-host limit.
    pub(super) fn host_limit(&self, strained: bool) -> usize {
        if self.adaptive && !strained {
            self.max_per_host.max(self.per_host_ceiling)
        } else {
            self.max_per_host
        }
    }

    /// Turns adaptation on or off.
    #[must_use]
    pub fn adaptive(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }

    /// Sets the first window used when adapting.
    #[must_use]
    pub fn initial(mut self, n: usize) -> Self {
        self.initial = n;
        self
    }
}

/// How failed jobs are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per job, the first included. Default 10.
    pub max_attempts: u32,
    /// Backoff ceiling after the first failure. Default 250 ms.
    pub backoff_base: Duration,
    /// Largest backoff ceiling. Default 30 s.
    pub backoff_cap: Duration,
    /// How long after the start of its first failed attempt a job may still be retried: no retry is
    /// planned that would start later. Default 90 s, so that with the fetch layer's deadlines an origin
    /// that stalls fails the task in about two minutes, naming the URI and the deadline that ran out.
    pub max_retry_time: Duration,
    /// How many times one job may ask for fresh URLs (401, 403, 410) before it gives up. Default 2.
    pub max_refreshes: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            max_retry_time: Duration::from_secs(90),
            max_refreshes: 2,
        }
    }
}

impl RetryPolicy {
    /// Sets the attempts per job, the first included.
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets the backoff base and cap.
    #[must_use]
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Sets the total retry time per job.
    #[must_use]
    pub fn max_retry_time(mut self, limit: Duration) -> Self {
        self.max_retry_time = limit;
        self
    }

    /// Sets how many URL refreshes one job may ask for.
    #[must_use]
    pub fn max_refreshes(mut self, n: u32) -> Self {
        self.max_refreshes = n;
        self
    }

    /// The largest delay the jitter may draw after the `failures`-th failed attempt (counting from one).
    ///
    /// The schedule is the fetch layer's ([`stowage_fetch::backoff`]): the retry after the `failures`-th
    /// failure is that schedule's retry `failures - 1`.
    pub fn backoff_ceiling(&self, failures: u32) -> Duration {
        stowage_fetch::backoff::ceiling(self.backoff_base, self.backoff_cap, failures.saturating_sub(1))
    }
}

/// Everything an engine is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Concurrency limits.
    pub concurrency: ConcurrencyLimits,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// What happens to a job that cannot be had.
    pub integrity: IntegrityPolicy,
    /// Seed of the jitter generator. Drivers should pass a fresh random value so that many clients do not
    /// retry in step; tests pass a fixed one to be reproducible. Default 0.
    pub seed: u64,
    /// How far ahead on the timeline prefetches ([`JobSpec::prefetch`](super::JobSpec::prefetch)) are started: a prefetch goes
    /// before the jobs that start up to this long before the first job that needs it, so that what it
    /// fetches (a key) is there when that job starts, and no job waits for it. Default 60 s of media.
    pub prefetch_lead: Duration,
    /// For a recording: how long the live playlists may bring nothing new (the origin unreachable, or
    /// its playlists not changing) before the recording ends; `None` (default): never.
    pub max_outage: Option<Duration>,
    /// For a recording: how long the segments already listed may take to be fetched once the recording
    /// ends (stopped, or at its end time); those still missing then are recorded as gaps. Default 10 s.
    pub stop_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: ConcurrencyLimits::default(),
            retry: RetryPolicy::default(),
            integrity: IntegrityPolicy::default(),
            seed: 0,
            prefetch_lead: Duration::from_secs(60),
            max_outage: None,
            stop_grace: Duration::from_secs(10),
        }
    }
}

impl EngineConfig {
    /// Sets the concurrency limits.
    #[must_use]
    pub fn concurrency(mut self, limits: ConcurrencyLimits) -> Self {
        self.concurrency = limits;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the integrity policy.
    #[must_use]
    pub fn integrity(mut self, policy: IntegrityPolicy) -> Self {
        self.integrity = policy;
        self
    }

    /// Sets the jitter seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets how far ahead on the timeline prefetches are started.
    #[must_use]
    pub fn prefetch_lead(mut self, lead: Duration) -> Self {
        self.prefetch_lead = lead;
        self
    }

    /// Sets how long a recording's playlists may bring nothing new before it ends.
    #[must_use]
    pub fn max_outage(mut self, limit: Option<Duration>) -> Self {
        self.max_outage = limit;
        self
    }

    /// Sets how long the segments already listed may take once a recording ends.
    #[must_use]
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: &'static str| Err(Error::InvalidConfig { reason });
        if self.concurrency.max_total == 0 {
            return invalid("the global concurrency limit must be at least 1");
        }
        if self.concurrency.max_per_host == 0 {
            return invalid("the per-host concurrency limit must be at least 1");
        }
        if self.retry.max_attempts == 0 {
            return invalid("the retry policy must allow at least one attempt");
        }
        if self.retry.backoff_cap < self.retry.backoff_base {
            return invalid("the backoff cap must not be below the backoff base");
        }
        Ok(())
    }
}
