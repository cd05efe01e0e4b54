//! Engine tests with a fake clock and scripted outcomes.
//!
//! Every test drives the engine through [`Driver`], which plays the part of the tokio driver: it carries
//! out each action, keeps its own view of what is in flight, and checks the engine's promises after every
//! single action (limits never exceeded, no job started twice or after it is done).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use stowage_task::Error;
use stowage_task::config::IntegrityPolicy;
use stowage_task::engine::{
    Action, ConcurrencyLimits, Engine, EngineConfig, EngineState, Failure, GiveUpReason, JobId, JobSpec,
    JobStatus, Outcome, Plan, RenditionSpec, RetryPolicy, TimeRange,
};

const SIX: Duration = Duration::from_secs(6);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// A small deterministic generator for the randomized runs (the engine's own is private).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The test's stand-in for the tokio driver.
struct Driver {
    engine: Engine,
    now: Instant,
    max_total: usize,
    max_per_host: usize,
    host_of: HashMap<JobId, String>,
    in_flight: HashSet<JobId>,
    done: HashSet<JobId>,
    starts: Vec<(JobId, u32)>,
    log: Vec<Action>,
    max_seen_in_flight: usize,
    /// Set when the engine asked for fresh URLs and the test has not answered yet.
    refresh_asked: bool,
    /// Starts the engine cancelled, whose late reports a test may still deliver.
    cancelled_starts: Vec<(JobId, u32)>,
}

impl Driver {
    fn new(config: EngineConfig, plan: Plan<'_>) -> Self {
        let host_of = HashMap::new();
        let limits = &config.concurrency;
        let max_total = limits.max_total;
        // Past the per-host limit only while adapting, never past the ceiling.
        let max_per_host = if limits.adaptive {
            limits.max_per_host.max(limits.per_host_ceiling)
        } else {
            limits.max_per_host
        };
        let engine = Engine::new(config, plan).expect("valid plan");
        Self {
            engine,
            now: Instant::now(),
            max_total,
            max_per_host,
            host_of,
            in_flight: HashSet::new(),
            done: HashSet::new(),
            starts: Vec::new(),
            log: Vec::new(),
            max_seen_in_flight: 0,
            refresh_asked: false,
            cancelled_starts: Vec::new(),
        }
    }

    /// A driver for `plan` that also remembers each job's host (for the per-host check).
    fn with_hosts(config: EngineConfig, plan: Plan<'_>, hosts: &[(JobId, &str)]) -> Self {
        let mut driver = Self::new(config, plan);
        for (job, host) in hosts {
            driver.host_of.insert(*job, (*host).to_owned());
        }
        driver
    }

    fn resume(&mut self) -> Vec<Action> {
        self.engine.resume(self.now);
        self.drain()
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn complete(&mut self, job: JobId, outcome: Outcome) -> Vec<Action> {
        // A success of a job the driver still had in flight or that raced a cancel is reported; the
        // driver's own view follows.
        if matches!(outcome, Outcome::Success { .. }) {
            self.done.insert(job);
        }
        self.in_flight.remove(&job);
        self.engine.handle_completed(self.now, job, outcome);
        self.drain()
    }

    fn succeed(&mut self, job: JobId, bytes: u64) -> Vec<Action> {
        self.complete(job, Outcome::success(bytes))
    }

    /// Reports a success of the latest start of `job`, whose request and response took `round_trip`.
    fn succeed_in(&mut self, job: JobId, bytes: u64, round_trip: Duration) -> Vec<Action> {
        let attempt = self.starts.iter().rev().find(|(j, _)| *j == job).expect("started").1;
        self.done.insert(job);
        self.in_flight.remove(&job);
        self.engine.handle_attempt_completed_in(self.now, job, attempt, Outcome::success(bytes), round_trip);
        self.drain()
    }

    fn fail(&mut self, job: JobId, failure: Failure) -> Vec<Action> {
        self.complete(job, Outcome::Failure(failure))
    }

    fn timeout(&mut self) -> Vec<Action> {
        self.engine.handle_timeout(self.now);
        self.drain()
    }

    /// Answers a refresh request with fresh URLs.
    fn refreshed(&mut self) -> Vec<Action> {
        self.refresh_asked = false;
        self.engine.handle_refreshed(self.now);
        self.drain()
    }

    /// Answers a refresh request with a failure.
    fn refresh_failed(&mut self) -> Vec<Action> {
        self.refresh_asked = false;
        self.engine.handle_refresh_failed(self.now);
        self.drain()
    }

    /// Moves the clock to the engine's next timeout and handles it.
    fn jump_to_timeout(&mut self) -> Vec<Action> {
        let at = self.engine.poll_timeout().expect("a timeout is pending");
        assert!(at >= self.now, "timeouts are never in the past");
        self.now = at;
        self.timeout()
    }

    /// Pops every action, carrying it out and checking the invariants after each.
    fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(action) = self.engine.poll_action() {
            match &action {
                Action::Start { job, attempt } => {
                    assert!(!self.done.contains(job), "{job} started after it was done");
                    assert!(self.in_flight.insert(*job), "{job} started while already in flight");
                    self.starts.push((*job, *attempt));
                    // A start never takes its host past the limit it has now (the per-host limit once
                    // it pushed back).
                    if let Some(host) = self.host_of.get(job) {
                        let on_host =
                            self.in_flight.iter().filter(|j| self.host_of.get(j) == Some(host)).count();
                        let limit = self.engine.host_limit(host);
                        assert!(on_host <= limit, "{job} started as the {on_host}th on {host}, over {limit}");
                    }
                }
                Action::Cancel { job } => {
                    assert!(self.in_flight.remove(job), "{job} cancelled while not in flight");
                    let attempt = self.starts.iter().rev().find(|(j, _)| j == job).unwrap().1;
                    self.cancelled_starts.push((*job, attempt));
                }
                Action::RefreshUrls { .. } => {
                    assert!(!self.refresh_asked, "a second refresh asked before the first was answered");
                    self.refresh_asked = true;
                }
                _ => {}
            }
            self.check_invariants(false);
            self.log.push(action.clone());
            out.push(action);
        }
        self.check_invariants(true);
        out
    }

    /// Checks the limits against the driver's own view; once every queued action is carried out
    /// (`settled`), also that the engine's counts agree with it.
    fn check_invariants(&mut self, settled: bool) {
        let n = self.in_flight.len();
        self.max_seen_in_flight = self.max_seen_in_flight.max(n);
        assert!(n <= self.max_total, "{n} in flight over the global limit {}", self.max_total);
        if settled {
            assert_eq!(n, self.engine.in_flight(), "engine and driver disagree on jobs in flight");
        }
        let mut per_host: HashMap<&str, usize> = HashMap::new();
        for job in &self.in_flight {
            if let Some(host) = self.host_of.get(job) {
                *per_host.entry(host).or_default() += 1;
            }
        }
        for (host, count) in per_host {
            assert!(count <= self.max_per_host, "{count} in flight on {host} over {}", self.max_per_host);
            if settled {
                assert_eq!(count, self.engine.in_flight_on(host));
            }
        }
    }

    /// Jobs started, in order.
    fn started(&self) -> Vec<JobId> {
        self.starts.iter().map(|(job, _)| *job).collect()
    }

    /// Completes every job in flight successfully, in start order, until nothing is left; jumps the clock
    /// to timeouts when idle. Returns the terminal action.
    fn run_to_end(&mut self, bytes: u64) -> Action {
        loop {
            if let Some(end) = self.log.iter().rev().find(|a| is_terminal(a)) {
                return end.clone();
            }
            let next = self.starts.iter().map(|(j, _)| *j).find(|j| self.in_flight.contains(j));
            match next {
                Some(job) => {
                    self.advance(ms(10));
                    self.succeed(job, bytes);
                }
                None => {
                    self.jump_to_timeout();
                }
            }
        }
    }
}

fn is_terminal(action: &Action) -> bool {
    matches!(action, Action::Finished { .. } | Action::Failed(_) | Action::Cancelled)
}

fn fixed(max_total: usize, max_per_host: usize) -> EngineConfig {
    EngineConfig::default().concurrency(
        ConcurrencyLimits::default().max_total(max_total).max_per_host(max_per_host).adaptive(false),
    )
}

/// `n` six-second segments of one rendition on one host, ids `base..base + n`.
fn segments(plan: &mut Plan<'_>, rendition: usize, base: u64, n: u64) {
    for i in 0..n {
        plan.add_job(JobSpec::new(JobId(base + i), rendition, SIX * i as u32, SIX, "cdn.example"));
    }
}

#[test]
fn renditions_advance_together_in_timeline_order() {
    let mut plan = Plan::new();
    let video = plan.add_rendition(RenditionSpec::new());
    let audio = plan.add_rendition(RenditionSpec::new());
    let subs = plan.add_rendition(RenditionSpec::new());
    // Video in 6 s segments, audio in 4 s, subtitles in one 60 s file: added rendition by rendition, as a
    // planner would, so any interleaving comes from the engine.
    segments(&mut plan, video, 0, 10);
    for i in 0..15u32 {
        plan.add_job(JobSpec::new(JobId(100 + u64::from(i)), audio, secs(4) * i, secs(4), "cdn.example"));
    }
    plan.add_job(JobSpec::new(JobId(200), subs, Duration::ZERO, secs(60), "cdn.example"));
    let mut d = Driver::new(fixed(1, 1), plan.clone());
    d.resume();
    assert_eq!(d.run_to_end(1000), Action::Finished { complete: true, gaps: 0 });

    // With four in flight, completed newest first, the starts still follow the timeline.
    let mut wide = Driver::new(fixed(4, 4), plan);
    wide.resume();
    while let Some(&job) = wide.starts.iter().rev().map(|(j, _)| j).find(|j| wide.in_flight.contains(j)) {
        wide.succeed(job, 1000);
    }
    assert_eq!(wide.started(), d.started());

    let started = d.started();
    assert_eq!(started.len(), 26);
    assert_eq!(&started[..4], &[JobId(0), JobId(100), JobId(200), JobId(101)]);
    // Start times never go backwards.
    let start_of = |job: JobId| -> Duration {
        match job.0 {
            0..100 => SIX * job.0 as u32,
            100..200 => secs(4) * (job.0 - 100) as u32,
            _ => Duration::ZERO,
        }
    };
    let times: Vec<Duration> = started.iter().map(|&j| start_of(j)).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    for r in [video, audio, subs] {
        assert_eq!(d.engine.loaded_ranges(r), &[TimeRange { start: Duration::ZERO, end: secs(60) }]);
    }
}

/// Ten six-second segments of `rendition` (ids 0 to 9), each key covering three of them, and the keys
/// as prefetches (ids 100 to 103, added after the segments, as a planner does) at the start of the first
/// segment that needs each.
fn keyed_plan() -> (Plan<'static>, usize) {
    let mut plan = Plan::new();
    let video = plan.add_rendition(RenditionSpec::new().bandwidth(800_000));
    segments(&mut plan, video, 0, 10);
    for k in 0..4u32 {
        plan.add_job(
            JobSpec::new(JobId(100 + u64::from(k)), video, SIX * 3 * k, Duration::ZERO, "keys.example")
                .prefetch(),
        );
    }
    (plan, video)
}

#[test]
fn keys_are_prefetched_ahead_of_the_segments_that_need_them() {
    let (plan, video) = keyed_plan();
    // Keys twelve seconds (two segments) ahead of the first segment that needs them.
    let lead = |config: EngineConfig| config.prefetch_lead(secs(12));
    let mut d = Driver::new(lead(fixed(4, 4)), plan.clone());
    d.resume();
    // The first key goes before the first segment, the second before the segment twelve seconds before
    // its own, within the limit of four.
    assert_eq!(d.started(), [JobId(100), JobId(0), JobId(101), JobId(1)]);
    assert_eq!(d.run_to_end(1000), Action::Finished { complete: true, gaps: 0 });
    let order: Vec<u64> = d.started().iter().map(|j| j.0).collect();
    // Each key starts ahead of the first segment that needs it, keys in the order they are first needed.
    assert_eq!(order, [100, 0, 101, 1, 2, 3, 102, 4, 5, 6, 103, 7, 8, 9]);

    // With the default lead (a minute of media), every key of this one-minute plan goes first.
    let mut ahead = Driver::new(fixed(4, 4), plan.clone());
    ahead.resume();
    assert_eq!(ahead.started(), [JobId(100), JobId(101), JobId(102), JobId(103)]);

    // One slot: the same order as four, each key fetched before the segments that need it.
    let mut one = Driver::new(lead(fixed(1, 1)), plan.clone());
    one.resume();
    assert_eq!(one.run_to_end(1000), Action::Finished { complete: true, gaps: 0 });
    assert_eq!(one.started(), d.started());

    // A key hosted elsewhere counts against the global limit, not against the segments' host: with three
    // in all and two per host, the first two keys and the first segment start at once.
    let mut hosts: Vec<(JobId, &str)> = (0..10).map(|i| (JobId(i), "cdn.example")).collect();
    hosts.extend((100..104).map(|i| (JobId(i), "keys.example")));
    let mut split = Driver::with_hosts(lead(fixed(3, 2)), plan, &hosts);
    split.resume();
    assert_eq!(split.started(), [JobId(100), JobId(0), JobId(101)]);
    assert_eq!(split.run_to_end(1000), Action::Finished { complete: true, gaps: 0 });

    // Keys are no part of the progress: ten segments, their bytes, their time ranges.
    let progress = d.engine.progress();
    assert_eq!((progress.segments_done, progress.segments_total), (10, 10));
    assert_eq!(progress.bytes_done, 10_000);
    assert_eq!(d.engine.loaded_time_range(JobId(100)), None);
    assert_eq!(d.engine.expected_range(video), Some(TimeRange::starting_at(Duration::ZERO, secs(60))));
}

#[test]
fn a_prefetch_that_gives_up_is_dropped_and_the_task_does_not_wait_for_it() {
    let (plan, _) = keyed_plan();
    // Strict: a key that cannot be prefetched does not fail the task; its segments fetch it themselves.
    let mut d = Driver::new(fixed(4, 4).prefetch_lead(secs(12)), plan.clone());
    d.resume();
    let actions = d.fail(JobId(100), Failure::fatal("HTTP 404"));
    assert!(!actions.iter().any(|a| matches!(a, Action::Failed(_) | Action::GapRecorded(_))), "{actions:?}");
    assert_eq!(d.engine.job_status(JobId(100)), Some(JobStatus::Dropped));
    assert_eq!(d.run_to_end(1000), Action::Finished { complete: true, gaps: 0 });

    // A key waiting to be retried is not waited for once every segment is stored.
    let mut d = Driver::new(fixed(4, 4).prefetch_lead(secs(12)), plan.clone());
    d.resume();
    let actions = d.fail(JobId(100), Failure::retryable("HTTP 404"));
    assert!(matches!(actions[0], Action::Retried { job: JobId(100), .. }), "{actions:?}");
    // The later keys and segments run; the first key is still in its backoff when the last segment ends.
    loop {
        let next = d.starts.iter().map(|(j, _)| *j).find(|j| d.in_flight.contains(j));
        let Some(job) = next else { break };
        d.succeed(job, 1000);
    }
    assert_eq!(d.engine.job_status(JobId(100)), Some(JobStatus::Backoff));
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));

    // A refused key asks for fresh URLs like a segment, and holds the starts until they come.
    let mut d = Driver::new(fixed(4, 4).prefetch_lead(secs(12)), plan);
    d.resume();
    let actions = d.fail(JobId(100), Failure::NeedsRefresh { status: 403 });
    assert_eq!(actions, [Action::RefreshUrls { job: JobId(100), status: 403 }]);
    let actions = d.refreshed();
    assert_eq!(actions, [Action::Start { job: JobId(100), attempt: 2 }]);
}

#[test]
fn loaded_ranges_grow_from_the_start_with_concurrency() {
    let mut plan = Plan::new();
    let video = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, video, 0, 20);
    let mut d = Driver::new(fixed(4, 4), plan);
    assert_eq!(d.resume().len(), 4);
    assert_eq!(d.started(), [JobId(0), JobId(1), JobId(2), JobId(3)]);
    // Complete out of order: the second segment first leaves a hole at the start.
    d.succeed(JobId(1), 10);
    assert_eq!(d.engine.loaded_ranges(video), &[TimeRange::starting_at(SIX, SIX)]);
    d.succeed(JobId(0), 10);
    assert_eq!(d.engine.loaded_ranges(video), &[TimeRange::starting_at(Duration::ZERO, secs(12))]);
    d.succeed(JobId(3), 10);
    assert_eq!(
        d.engine.loaded_ranges(video),
        &[TimeRange::starting_at(Duration::ZERO, secs(12)), TimeRange::starting_at(secs(18), SIX)]
    );
    assert_eq!(d.engine.expected_range(video), Some(TimeRange::starting_at(Duration::ZERO, secs(120))));
    let event = d.engine.loaded_time_range(JobId(3)).expect("job 3 is done");
    assert_eq!(event.rendition, video);
    assert_eq!(event.added, TimeRange::starting_at(secs(18), SIX));
    assert_eq!(event.loaded, d.engine.loaded_ranges(video));
    assert_eq!(event.expected, Some(TimeRange::starting_at(Duration::ZERO, secs(120))));
    assert_eq!(d.engine.loaded_time_range(JobId(2)), None, "in flight, not loaded");
    assert_eq!(d.engine.loaded_time_range(JobId(999)), None);
}

#[test]
fn global_and_per_host_limits_hold_in_randomized_runs() {
    for seed in 0..300u64 {
        randomized_run(seed);
    }
}

/// One randomized run: random plan over three hosts, random limits, random outcomes of every kind,
/// random completion order and clock steps, suspends, refreshes and augmentation. The driver checks the
/// limits after every action; at the end every job is done or a gap, each done job was started exactly as
/// often as it failed plus one (or never, when it was finished at the start), and nothing was started
/// after it was done.
fn randomized_run(seed: u64) {
    let mut rng = Lcg(seed.wrapping_mul(0x9E37_79B9).wrapping_add(1));
    let hosts = ["a.example", "b.example", "c.example"];
    let max_total = 1 + rng.below(12) as usize;
    let max_per_host = 1 + rng.below(6) as usize;
    let integrity = if rng.chance(50) { IntegrityPolicy::Tolerant } else { IntegrityPolicy::Strict };
    let config = EngineConfig::default()
        .concurrency(
            ConcurrencyLimits::default()
                .max_total(max_total)
                .max_per_host(max_per_host)
                .adaptive(rng.chance(70))
                .initial(1 + rng.below(8) as usize),
        )
        .retry(RetryPolicy::default().max_attempts(1 + rng.below(6) as u32).backoff(ms(100), secs(5)))
        .integrity(integrity)
        .seed(seed);
    let mut plan = Plan::new();
    let renditions = 1 + rng.below(3) as usize;
    for _ in 0..renditions {
        plan.add_rendition(RenditionSpec::new().bandwidth(1_000_000));
    }
    let mut host_list = Vec::new();
    let mut finished_at_start = HashSet::new();
    let jobs = 5 + rng.below(60);
    for i in 0..jobs {
        let id = JobId(i);
        let host = hosts[rng.below(3) as usize];
        let mut spec = JobSpec::new(id, rng.below(renditions as u64) as usize, SIX * i as u32, SIX, host);
        if rng.chance(20) {
            spec = spec.finished(1000);
            finished_at_start.insert(id);
        }
        host_list.push((id, host));
        plan.add_job(spec);
    }
    let mut d = Driver::with_hosts(config, plan, &host_list);
    d.done.extend(finished_at_start.iter().copied());
    d.resume();
    let mut next_id = jobs;
    let mut failures: HashMap<JobId, u32> = HashMap::new();
    let mut steps = 0;
    loop {
        steps += 1;
        if steps >= 100_000 {
            let statuses: Vec<_> = (0..next_id).map(|i| (i, d.engine.job_status(JobId(i)))).collect();
            panic!(
                "seed {seed}: the run does not end: {:?} in flight {} window {} timeout {:?} statuses {statuses:?} last actions {:?}",
                d.engine.state(),
                d.engine.in_flight(),
                d.engine.window(),
                d.engine.poll_timeout(),
                &d.log[d.log.len().saturating_sub(8)..]
            );
        }
        if d.log.iter().any(is_terminal) && d.engine.state() != EngineState::Running {
            break;
        }
        let roll = rng.below(100);
        if d.engine.state() == EngineState::Suspended {
            d.advance(ms(rng.below(500)));
            d.resume();
            continue;
        }
        if d.refresh_asked {
            d.advance(ms(50));
            if rng.chance(80) {
                d.refreshed();
            } else {
                d.refresh_failed();
            }
            continue;
        }
        if roll < 2 {
            d.engine.suspend();
            d.drain();
            continue;
        }
        if (4..7).contains(&roll) && !d.cancelled_starts.is_empty() {
            // A late report of a cancelled start: its failure must change nothing, its success must be
            // kept without the job being fetched again.
            let (job, attempt) =
                d.cancelled_starts.swap_remove(rng.below(d.cancelled_starts.len() as u64) as usize);
            let outcome = if rng.chance(50) {
                d.done.insert(job);
                Outcome::success(1000)
            } else {
                Outcome::Failure(Failure::fatal("aborted"))
            };
            d.engine.handle_attempt_completed(d.now, job, attempt, outcome);
            d.drain();
            continue;
        }
        if roll < 4 && next_id < jobs + 20 {
            let id = JobId(next_id);
            next_id += 1;
            let host = hosts[rng.below(3) as usize];
            d.host_of.insert(id, host.to_owned());
            let spec = JobSpec::new(id, 0, secs(rng.below(300)), SIX, host);
            d.engine.add_jobs(d.now, [spec]).expect("a fresh id");
            d.drain();
            continue;
        }
        let in_flight: Vec<JobId> = {
            let mut v: Vec<JobId> = d.in_flight.iter().copied().collect();
            v.sort();
            v
        };
        if in_flight.is_empty() {
            match d.engine.poll_timeout() {
                Some(at) => {
                    d.now = at;
                    d.timeout();
                }
                None => {
                    // Nothing in flight, nothing waiting on time, no refresh asked: the engine must
                    // have ended.
                    assert_ne!(d.engine.state(), EngineState::Running, "seed {seed}: stuck");
                }
            }
            continue;
        }
        let job = in_flight[rng.below(in_flight.len() as u64) as usize];
        d.advance(ms(rng.below(200)));
        let outcome = match rng.below(100) {
            0..75 => Outcome::success(1000 + rng.below(1000)),
            75..85 => Outcome::Failure(Failure::retryable("connection reset")),
            85..90 => Outcome::Failure(Failure::Throttled {
                status: 503,
                retry_after: rng.chance(50).then(|| ms(rng.below(2000))),
            }),
            90..94 => Outcome::Failure(Failure::stalled("stalled")),
            94..97 => Outcome::Failure(Failure::NeedsRefresh { status: 403 }),
            _ => Outcome::Failure(Failure::fatal("HTTP 404")),
        };
        if matches!(outcome, Outcome::Failure(_)) {
            *failures.entry(job).or_default() += 1;
        }
        d.complete(job, outcome);
    }

    // Every job ended somewhere, and the books balance.
    let total = d.engine.job_count();
    let progress = d.engine.progress();
    let terminal = d.log.iter().rev().find(|a| is_terminal(a)).unwrap().clone();
    match terminal {
        Action::Finished { complete, gaps } => {
            assert_eq!(progress.segments_done + progress.segments_missing, total, "seed {seed}");
            assert_eq!(gaps, progress.segments_missing);
            assert_eq!(complete, gaps == 0);
            let recorded = d.log.iter().filter(|a| matches!(a, Action::GapRecorded(_))).count();
            assert_eq!(recorded, gaps, "seed {seed}: every gap is reported");
            if integrity == IntegrityPolicy::Strict {
                assert_eq!(gaps, 0, "seed {seed}: a strict run never records a gap");
            }
            for i in 0..next_id {
                let status = d.engine.job_status(JobId(i));
                assert!(
                    matches!(status, Some(JobStatus::Done | JobStatus::Gap)),
                    "seed {seed}: job {i} ended as {status:?}"
                );
            }
            assert_eq!(d.engine.poll_timeout(), None, "seed {seed}: nothing waits after the end");
        }
        Action::Failed(failure) => {
            assert_eq!(integrity, IntegrityPolicy::Strict, "seed {seed}: only strict runs fail");
            assert_eq!(d.engine.job_status(failure.job), Some(JobStatus::Failed));
            assert_eq!(d.engine.in_flight(), 0);
        }
        other => panic!("seed {seed}: unexpected end {other:?}"),
    }
    for job in &finished_at_start {
        assert!(!d.started().contains(job), "seed {seed}: {job} was finished at the start but started");
    }
    // No job was started more often than its failures, cancels and refreshes explain.
    let cancels: HashMap<JobId, u32> = d.log.iter().fold(HashMap::new(), |mut m, a| {
        if let Action::Cancel { job } = a {
            *m.entry(*job).or_default() += 1;
        }
        m
    });
    let mut starts: HashMap<JobId, u32> = HashMap::new();
    for (job, _) in &d.starts {
        *starts.entry(*job).or_default() += 1;
    }
    for (job, count) in starts {
        let explained =
            1 + failures.get(&job).copied().unwrap_or(0) + cancels.get(&job).copied().unwrap_or(0);
        assert!(count <= explained, "seed {seed}: {job} started {count} times, {explained} explained");
    }
}

#[test]
fn full_jitter_backoff_stays_within_its_bounds() {
    let retry = RetryPolicy::default().max_attempts(12).backoff(ms(100), secs(3)).max_retry_time(secs(3600));
    assert_eq!(retry.backoff_ceiling(1), ms(100));
    assert_eq!(retry.backoff_ceiling(2), ms(200));
    assert_eq!(retry.backoff_ceiling(5), ms(1600));
    assert_eq!(retry.backoff_ceiling(6), secs(3));
    assert_eq!(retry.backoff_ceiling(200), secs(3));

    let mut all_delays = Vec::new();
    for seed in 0..50 {
        let mut plan = Plan::new();
        let r = plan.add_rendition(RenditionSpec::new());
        segments(&mut plan, r, 0, 1);
        let config = fixed(4, 4).retry(retry.clone()).integrity(IntegrityPolicy::Tolerant).seed(seed);
        let mut d = Driver::new(config, plan);
        d.resume();
        for attempt in 1..=12u32 {
            assert_eq!(d.starts.last(), Some(&(JobId(0), attempt)));
            let actions = d.fail(JobId(0), Failure::retryable("HTTP 502"));
            if attempt == 12 {
                let [Action::GapRecorded(failure), Action::Finished { complete: false, gaps: 1 }] =
                    &actions[..]
                else {
                    panic!("{actions:?}");
                };
                assert_eq!(failure.reason, GiveUpReason::AttemptsExhausted);
                assert_eq!(failure.attempts, 12);
                break;
            }
            let [Action::Retried { job: JobId(0), attempt: a, delay, .. }] = actions[..] else {
                panic!("{actions:?}");
            };
            assert_eq!(a, attempt);
            assert!(delay <= retry.backoff_ceiling(attempt), "attempt {attempt}: {delay:?}");
            all_delays.push(delay);
            // Not a moment early: just before the delay nothing starts.
            if delay > Duration::ZERO {
                assert_eq!(d.engine.poll_timeout(), Some(d.now + delay));
                d.advance(delay - Duration::from_nanos(1));
                assert!(d.timeout().is_empty());
            }
            d.jump_to_timeout();
        }
    }
    // The jitter is real: delays are spread, not one fixed schedule.
    let distinct: HashSet<Duration> = all_delays.iter().copied().collect();
    assert!(distinct.len() > all_delays.len() / 2);
}

#[test]
fn same_seed_same_schedule() {
    let run = |seed| {
        let mut plan = Plan::new();
        let r = plan.add_rendition(RenditionSpec::new());
        segments(&mut plan, r, 0, 1);
        let mut d = Driver::new(fixed(1, 1).seed(seed), plan);
        d.resume();
        let mut delays = Vec::new();
        for _ in 0..5 {
            if let [Action::Retried { delay, .. }] = d.fail(JobId(0), Failure::stalled("stalled"))[..] {
                delays.push(delay);
            }
            d.jump_to_timeout();
        }
        delays
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn retry_after_is_honoured_and_throttling_pauses_the_host() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    let spec = |id: u64, host| JobSpec::new(JobId(id), r, SIX * id as u32, SIX, host);
    for (id, host) in [(0, "a"), (1, "a"), (2, "b"), (3, "a"), (4, "b"), (5, "b")] {
        plan.add_job(spec(id, host));
    }
    let hosts = [
        (JobId(0), "a"),
        (JobId(1), "a"),
        (JobId(2), "b"),
        (JobId(3), "a"),
        (JobId(4), "b"),
        (JobId(5), "b"),
    ];
    let mut d = Driver::with_hosts(fixed(3, 2), plan, &hosts);
    d.resume();
    assert_eq!(d.started(), [JobId(0), JobId(1), JobId(2)]);

    // A plain retryable failure with Retry-After waits exactly that long, and pauses nothing else.
    let actions =
        d.fail(JobId(0), Failure::Retryable { retry_after: Some(secs(7)), detail: "HTTP 500".into() });
    assert!(matches!(actions[0], Action::Retried { job: JobId(0), delay, .. } if delay == secs(7)));
    assert_eq!(d.started().last(), Some(&JobId(3)), "host a keeps working");

    // 429 with Retry-After on host a: nothing new starts on a until then; b goes on.
    let actions = d.fail(JobId(1), Failure::Throttled { status: 429, retry_after: Some(secs(2)) });
    assert!(matches!(actions[0], Action::Retried { job: JobId(1), delay, .. } if delay == secs(2)));
    assert_eq!(d.started().last(), Some(&JobId(4)), "the free slot goes to host b");
    d.advance(ms(100));
    d.succeed(JobId(3), 10);
    d.succeed(JobId(2), 10);
    // Job 5 (host b) starts; host a is paused although it has a ready job... none ready yet on a.
    assert!(d.started().contains(&JobId(5)));
    assert_eq!(d.engine.poll_timeout(), Some(d.now - ms(100) + secs(2)));
    d.advance(secs(2) - ms(100) - Duration::from_nanos(1));
    assert!(d.timeout().is_empty());
    d.advance(Duration::from_nanos(1));
    let actions = d.timeout();
    assert_eq!(actions, [Action::Start { job: JobId(1), attempt: 2 }]);
    d.succeed(JobId(4), 10);
    d.advance(secs(5));
    let actions = d.timeout();
    assert_eq!(actions, [Action::Start { job: JobId(0), attempt: 2 }], "7 s after its failure");
}

#[test]
fn a_paused_host_keeps_its_ready_jobs_waiting() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 5);
    let mut d = Driver::new(fixed(2, 2), plan);
    d.resume();
    d.fail(JobId(0), Failure::Throttled { status: 503, retry_after: Some(secs(30)) });
    assert_eq!(d.started(), [JobId(0), JobId(1)], "no new start on the paused host");
    d.succeed(JobId(1), 10);
    assert_eq!(d.engine.in_flight(), 0);
    assert_eq!(d.engine.poll_timeout(), Some(d.now + secs(30)));
    d.jump_to_timeout();
    assert_eq!(d.started()[2..], [JobId(0), JobId(2)]);
}

#[test]
fn a_hostile_retry_after_gives_up_instead_of_hanging() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 2);
    let config = fixed(2, 2).retry(RetryPolicy::default().max_retry_time(secs(600)));
    let mut d = Driver::new(config, plan);
    d.resume();
    let actions = d.fail(JobId(0), Failure::Throttled { status: 503, retry_after: Some(secs(86_400)) });
    let [Action::Cancel { job: JobId(1) }, Action::Failed(failure)] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(failure.job, JobId(0));
    assert_eq!(failure.reason, GiveUpReason::RetryTimeExhausted);
    assert!(failure.to_string().contains("job 0"), "{failure}");
}

#[test]
fn absurd_numbers_neither_overflow_nor_hang() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new().bandwidth(u64::MAX));
    for i in 0..3u64 {
        plan.add_job(JobSpec::new(JobId(i), r, Duration::MAX, Duration::MAX, "h").expected_size(u64::MAX));
    }
    plan.add_job(JobSpec::new(JobId(3), r, Duration::ZERO, Duration::MAX, "h"));
    let config = fixed(4, 4)
        .integrity(IntegrityPolicy::Tolerant)
        .retry(RetryPolicy::default().max_retry_time(Duration::MAX).max_refreshes(u32::MAX));
    let mut d = Driver::new(config, plan);
    assert_eq!(d.engine.progress().bytes_expected, u64::MAX);
    d.resume();
    // A Retry-After of centuries with an unbounded retry time: the sum overflows the clock, so the job
    // gives up rather than panicking or waiting forever; the host is not paused beyond the retry time.
    let actions = d.fail(JobId(3), Failure::Throttled { status: 503, retry_after: Some(Duration::MAX) });
    assert!(matches!(&actions[0], Action::GapRecorded(f) if f.reason == GiveUpReason::RetryTimeExhausted));
    d.succeed(JobId(0), u64::MAX);
    d.succeed(JobId(1), u64::MAX);
    let p = d.engine.progress();
    assert_eq!((p.bytes_done, p.bytes_expected), (u64::MAX, u64::MAX));
    d.succeed(JobId(2), 1);
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: false, gaps: 1 }));
}

#[test]
fn total_retry_time_bounds_a_job() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 1);
    let retry = RetryPolicy::default().max_attempts(1000).backoff(secs(1), secs(4)).max_retry_time(secs(60));
    let mut d = Driver::new(fixed(1, 1).retry(retry).integrity(IntegrityPolicy::Tolerant), plan);
    d.resume();
    let first_failure = d.now;
    loop {
        d.advance(secs(1));
        let actions = d.fail(JobId(0), Failure::retryable("timeout"));
        if let Some(Action::GapRecorded(failure)) = actions.first() {
            assert_eq!(failure.reason, GiveUpReason::RetryTimeExhausted);
            // It gave up because the next attempt would come after 60 s from the first failure.
            assert!(d.now - first_failure <= secs(61));
            assert!(d.now - first_failure + secs(4) >= secs(60) - secs(1));
            break;
        }
        d.jump_to_timeout();
    }
}

#[test]
fn retry_time_counts_from_the_start_of_the_first_failed_attempt() {
    // Attempts that spend long failing (a header timeout after the fetch layer's own retries): the
    // retry time runs from when the first of them started, so a stalled origin fails the job within it.
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 1);
    let retry = RetryPolicy::default().max_attempts(1000).backoff(ms(10), ms(100)).max_retry_time(secs(90));
    let mut d = Driver::new(fixed(1, 1).retry(retry), plan);
    d.resume();
    let first_start = d.now;
    d.advance(secs(60));
    let actions = d.fail(JobId(0), Failure::retryable("header timeout"));
    assert!(matches!(actions[..], [Action::Retried { .. }]), "{actions:?}");
    d.jump_to_timeout();
    d.advance(secs(60));
    let actions = d.fail(JobId(0), Failure::retryable("header timeout"));
    let [Action::Failed(failure)] = &actions[..] else { panic!("{actions:?}") };
    assert_eq!(failure.reason, GiveUpReason::RetryTimeExhausted);
    assert!(d.now - first_start < secs(125), "{:?}", d.now - first_start);
}

#[test]
fn window_ramps_up_while_throughput_grows() {
    // A latency-bound origin: every job takes 50 ms whatever the concurrency, so throughput grows with
    // the window and the window should reach the global limit.
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 2000);
    let config = EngineConfig::default()
        .concurrency(ConcurrencyLimits::default().max_total(32).max_per_host(32).initial(2));
    let mut d = Driver::new(config, plan);
    d.resume();
    assert_eq!(d.engine.in_flight(), 2);
    let mut windows = Vec::new();
    simulate(&mut d, |_in_flight| ms(50), 600, &mut windows);
    assert_eq!(d.engine.window(), 32, "windows seen: {windows:?}");
    assert_eq!(d.max_seen_in_flight, 32);
}

#[test]
fn window_stops_growing_when_the_link_is_saturated() {
    // A bandwidth-bound link: 10 ms latency plus 1 MB at 20 MB/s shared by every job in flight, so more
    // than a couple of connections buy nothing.
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 2000);
    let config = EngineConfig::default()
        .concurrency(ConcurrencyLimits::default().max_total(64).max_per_host(64).initial(2));
    let mut d = Driver::new(config, plan);
    d.resume();
    let mut windows = Vec::new();
    simulate(&mut d, |in_flight| ms(10) + ms(50) * in_flight as u32, 1500, &mut windows);
    let peak = windows.iter().copied().max().unwrap();
    assert!(peak <= 16, "the window kept growing on a saturated link: {windows:?}");
    assert!(d.engine.window() <= 8, "windows seen: {windows:?}");
}

#[test]
fn throttling_and_stalls_halve_the_window() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 100);
    let config = EngineConfig::default()
        .concurrency(ConcurrencyLimits::default().max_total(16).max_per_host(16).initial(16));
    let mut d = Driver::new(config, plan);
    d.resume();
    assert_eq!(d.engine.in_flight(), 16);
    d.advance(ms(100));
    d.fail(JobId(0), Failure::Throttled { status: 429, retry_after: None });
    assert_eq!(d.engine.window(), 8);
    // The same generation of jobs failing again does not halve twice.
    d.fail(JobId(1), Failure::Throttled { status: 503, retry_after: None });
    assert_eq!(d.engine.window(), 8);
    assert_eq!(d.engine.in_flight(), 14, "no new start while over the window");
    // Completions drain the excess without new starts until under the window.
    for id in 2..8 {
        d.succeed(JobId(id), 100);
    }
    assert_eq!(d.engine.in_flight(), 8);
    d.succeed(JobId(8), 100);
    assert_eq!(d.engine.in_flight(), 8, "one finished, one started");
    // A stall of a job started after the decrease halves again.
    let late = *d.started().last().unwrap();
    d.advance(ms(100));
    d.fail(late, Failure::stalled("stalled"));
    assert_eq!(d.engine.window(), 4);
}

/// Runs `d` as an event-driven simulation: each started job completes `duration(in_flight at start)`
/// later; records the window after every completion.
fn simulate(
    d: &mut Driver,
    duration: impl Fn(usize) -> Duration,
    completions: usize,
    windows: &mut Vec<usize>,
) {
    let mut due: Vec<(Instant, JobId)> = Vec::new();
    let mut seen = 0;
    for _ in 0..completions {
        while seen < d.starts.len() {
            let job = d.starts[seen].0;
            due.push((d.now + duration(d.engine.in_flight()), job));
            seen += 1;
        }
        due.sort();
        if due.is_empty() {
            break;
        }
        let (at, job) = due.remove(0);
        d.now = d.now.max(at);
        d.succeed(job, 1_000_000);
        windows.push(d.engine.window());
    }
}

#[test]
fn suspend_cancels_in_flight_and_resume_restarts_without_counting_attempts() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 6);
    // Two attempts per job: the cancelled starts must not use them up.
    let config = fixed(3, 3).retry(RetryPolicy::default().max_attempts(2));
    let mut d = Driver::new(config, plan);
    assert_eq!(d.engine.state(), EngineState::Suspended, "a new engine waits for resume");
    assert!(d.drain().is_empty());
    d.resume();
    d.succeed(JobId(0), 10);
    d.engine.suspend();
    let actions = d.drain();
    assert_eq!(
        actions,
        [
            Action::Cancel { job: JobId(1) },
            Action::Cancel { job: JobId(2) },
            Action::Cancel { job: JobId(3) }
        ]
    );
    assert_eq!(d.engine.state(), EngineState::Suspended);
    assert_eq!(d.engine.poll_timeout(), None);
    // Time passes; nothing starts while suspended.
    d.advance(secs(3600));
    assert!(d.timeout().is_empty());
    // A failure of a cancelled attempt is ignored.
    d.engine.handle_completed(d.now, JobId(1), Outcome::Failure(Failure::retryable("aborted")));
    assert!(d.drain().is_empty());
    let actions = d.resume();
    assert_eq!(
        actions,
        [
            Action::Start { job: JobId(1), attempt: 2 },
            Action::Start { job: JobId(2), attempt: 2 },
            Action::Start { job: JobId(3), attempt: 2 }
        ]
    );
    // The first real failure is the first of two allowed: retried, not given up.
    let actions = d.fail(JobId(1), Failure::retryable("reset"));
    assert!(matches!(actions[0], Action::Retried { job: JobId(1), attempt: 2, .. }), "{actions:?}");
    assert_eq!(d.run_to_end(10), Action::Finished { complete: true, gaps: 0 });
    assert_eq!(d.started().iter().filter(|&&j| j == JobId(0)).count(), 1);
}

#[test]
fn late_reports_of_cancelled_starts_are_told_apart() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 3);
    let mut d = Driver::new(fixed(2, 2), plan);
    d.resume();
    d.engine.suspend();
    d.drain();
    d.resume();
    assert_eq!(d.starts[2..], [(JobId(0), 2), (JobId(1), 2)]);
    // The failure of start 1 of job 0 arrives late: it is not charged to start 2, which stays in flight.
    d.engine.handle_attempt_completed(d.now, JobId(0), 1, Outcome::Failure(Failure::fatal("aborted")));
    assert!(d.drain().is_empty());
    assert_eq!(d.engine.job_status(JobId(0)), Some(JobStatus::InFlight));
    // Start 1 of job 1 had stored its bytes after all: kept, and start 2 is cancelled.
    d.done.insert(JobId(1));
    d.engine.handle_attempt_completed(d.now, JobId(1), 1, Outcome::success(500));
    let actions = d.drain();
    assert_eq!(actions, [Action::Cancel { job: JobId(1) }, Action::Start { job: JobId(2), attempt: 1 }]);
    assert_eq!(d.engine.job_status(JobId(1)), Some(JobStatus::Done));
    // The current start's own report is taken as usual.
    d.in_flight.remove(&JobId(0));
    d.engine.handle_attempt_completed(d.now, JobId(0), 2, Outcome::success(100));
    d.drain();
    assert_eq!(d.engine.job_status(JobId(0)), Some(JobStatus::Done));
    assert_eq!(d.run_to_end(10), Action::Finished { complete: true, gaps: 0 });
    assert_eq!(d.engine.progress().bytes_done, 610);
}

#[test]
fn a_success_that_raced_a_suspend_is_kept_and_not_fetched_again() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 3);
    let mut d = Driver::new(fixed(2, 2), plan);
    d.resume();
    d.engine.suspend();
    d.drain();
    // The driver had already stored job 1 when the cancel reached it.
    d.succeed(JobId(1), 777);
    assert_eq!(d.engine.job_status(JobId(1)), Some(JobStatus::Done));
    d.resume();
    assert_eq!(d.run_to_end(10), Action::Finished { complete: true, gaps: 0 });
    assert_eq!(d.started().iter().filter(|&&j| j == JobId(1)).count(), 1);
    assert_eq!(d.engine.progress().bytes_done, 777 + 20);
}

#[test]
fn cancel_aborts_everything_and_closes_the_engine() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 6);
    let mut d = Driver::new(fixed(2, 2), plan);
    d.resume();
    d.engine.cancel();
    let actions = d.drain();
    assert_eq!(
        actions,
        [Action::Cancel { job: JobId(0) }, Action::Cancel { job: JobId(1) }, Action::Cancelled]
    );
    assert_eq!(d.engine.state(), EngineState::Cancelled);
    d.succeed(JobId(0), 10);
    d.engine.resume(d.now);
    d.engine.handle_timeout(d.now);
    assert!(d.drain().is_empty(), "a cancelled engine does nothing more");
    let more = [JobSpec::new(JobId(99), r, Duration::ZERO, SIX, "cdn.example")];
    assert!(matches!(d.engine.add_jobs(d.now, more), Err(Error::EngineClosed)));
}

#[test]
fn resume_skips_finished_jobs() {
    let mut plan = Plan::new();
    let video = plan.add_rendition(RenditionSpec::new());
    for i in 0..10u64 {
        let spec = JobSpec::new(JobId(i), video, SIX * i as u32, SIX, "cdn.example");
        plan.add_job(if i % 3 == 0 { spec } else { spec.finished(500) });
    }
    let mut d = Driver::new(fixed(8, 8), plan);
    let progress = d.engine.progress();
    assert_eq!(progress.segments_done, 6);
    assert_eq!(progress.bytes_done, 3000);
    assert_eq!(d.engine.loaded_ranges(video).len(), 3);
    d.resume();
    assert_eq!(d.started(), [JobId(0), JobId(3), JobId(6), JobId(9)]);
    assert_eq!(d.run_to_end(500), Action::Finished { complete: true, gaps: 0 });
    assert_eq!(d.started().len(), 4, "no finished job started");
    assert_eq!(d.engine.loaded_ranges(video), &[TimeRange::starting_at(Duration::ZERO, secs(60))]);
}

#[test]
fn a_fully_finished_plan_finishes_at_once() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    plan.add_job(JobSpec::new(JobId(0), r, Duration::ZERO, SIX, "h").finished(1));
    let mut d = Driver::new(fixed(1, 1), plan);
    assert_eq!(d.resume(), [Action::Finished { complete: true, gaps: 0 }]);
}

#[test]
fn strict_failure_names_the_job_and_cancels_the_rest() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 10);
    let mut d = Driver::new(fixed(3, 3), plan);
    d.resume();
    let actions = d.fail(JobId(1), Failure::fatal("HTTP 404 for segment 1"));
    let [Action::Cancel { job: JobId(0) }, Action::Cancel { job: JobId(2) }, Action::Failed(failure)] =
        &actions[..]
    else {
        panic!("{actions:?}");
    };
    assert_eq!(failure.job, JobId(1));
    assert_eq!(failure.reason, GiveUpReason::Fatal);
    assert_eq!(failure.attempts, 1);
    assert_eq!(failure.cause, Failure::fatal("HTTP 404 for segment 1"));
    assert_eq!(d.engine.state(), EngineState::Failed);
    let error = Error::JobFailed {
        what: "segment 1 of video".into(),
        failure: failure.clone(),
        segment: None,
        cause: None,
    };
    let text = error.to_string();
    assert!(text.contains("segment 1 of video") && text.contains("HTTP 404"), "{text}");
}

#[test]
fn tolerant_policy_records_gaps_and_finishes_incomplete() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 5);
    let config =
        fixed(1, 1).integrity(IntegrityPolicy::Tolerant).retry(RetryPolicy::default().max_attempts(2));
    let mut d = Driver::new(config, plan);
    d.resume();
    d.succeed(JobId(0), 10);
    let actions = d.fail(JobId(1), Failure::fatal("bad padding"));
    let [Action::GapRecorded(gap), Action::Start { job: JobId(2), .. }] = &actions[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(gap.job, JobId(1));
    // Job 2 fails once; while it waits, the one slot serves 3 and 4; its second failure is its last.
    d.fail(JobId(2), Failure::retryable("reset"));
    d.succeed(JobId(3), 10);
    d.succeed(JobId(4), 10);
    assert_eq!(d.jump_to_timeout(), [Action::Start { job: JobId(2), attempt: 2 }]);
    let actions = d.fail(JobId(2), Failure::retryable("reset"));
    let [Action::GapRecorded(f), Action::Finished { complete: false, gaps: 2 }] = &actions[..] else {
        panic!("{actions:?}");
    };
    assert_eq!((f.job, f.reason), (JobId(2), GiveUpReason::AttemptsExhausted));
    assert_eq!(d.engine.job_status(JobId(1)), Some(JobStatus::Gap));
    let progress = d.engine.progress();
    assert_eq!((progress.segments_done, progress.segments_missing, progress.segments_total), (3, 2, 5));
    assert_eq!(
        d.engine.loaded_ranges(r),
        &[TimeRange::starting_at(Duration::ZERO, SIX), TimeRange::starting_at(secs(18), secs(12))]
    );
}

#[test]
fn refused_urls_ask_for_one_refresh_and_hold_starts() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 6);
    let mut d = Driver::new(fixed(3, 3), plan);
    d.resume();
    let actions = d.fail(JobId(0), Failure::NeedsRefresh { status: 403 });
    assert_eq!(actions, [Action::RefreshUrls { job: JobId(0), status: 403 }]);
    // A second refusal while the refresh is pending does not ask again, and nothing new starts.
    assert!(d.fail(JobId(1), Failure::NeedsRefresh { status: 410 }).is_empty());
    assert!(d.succeed(JobId(2), 10).is_empty());
    assert_eq!(d.engine.job_status(JobId(0)), Some(JobStatus::AwaitingRefresh));
    let actions = d.refreshed();
    assert_eq!(
        actions,
        [
            Action::Start { job: JobId(0), attempt: 2 },
            Action::Start { job: JobId(1), attempt: 2 },
            Action::Start { job: JobId(3), attempt: 1 }
        ]
    );
    // Refused again and again: after max_refreshes (2) the job gives up.
    d.fail(JobId(0), Failure::NeedsRefresh { status: 403 });
    d.refreshed();
    let actions = d.fail(JobId(0), Failure::NeedsRefresh { status: 403 });
    let [.., Action::Failed(failure)] = &actions[..] else { panic!("{actions:?}") };
    assert_eq!((failure.job, failure.reason), (JobId(0), GiveUpReason::RefreshesExhausted));
}

#[test]
fn a_refusal_of_a_replaced_url_retries_at_once_without_another_refresh() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 4);
    let mut d = Driver::new(fixed(2, 2).retry(RetryPolicy::default().max_refreshes(1)), plan);
    d.resume();
    d.fail(JobId(0), Failure::NeedsRefresh { status: 403 });
    // The refresh was applied before job 1's refusal (of the old URL) came in.
    let actions = d.refreshed();
    assert_eq!(actions, [Action::Start { job: JobId(0), attempt: 2 }]);
    let actions = d.fail(JobId(1), Failure::Superseded { status: 403 });
    assert_eq!(actions, [Action::Start { job: JobId(1), attempt: 2 }], "started again at once, in its place");
    // Neither a refresh nor an attempt was charged: job 1 may still ask for its one refresh.
    let actions = d.fail(JobId(1), Failure::NeedsRefresh { status: 403 });
    assert_eq!(actions, [Action::RefreshUrls { job: JobId(1), status: 403 }]);
    // A superseded refusal while a refresh is pending waits for it like every other start.
    assert!(d.fail(JobId(0), Failure::Superseded { status: 410 }).is_empty());
    assert_eq!(d.engine.job_status(JobId(0)), Some(JobStatus::Ready));
    let actions = d.refreshed();
    assert_eq!(
        actions,
        [Action::Start { job: JobId(0), attempt: 3 }, Action::Start { job: JobId(1), attempt: 3 }]
    );
    assert_eq!(d.run_to_end(10), Action::Finished { complete: true, gaps: 0 });
}

#[test]
fn an_abandoned_refresh_is_asked_again_after_resume_and_not_counted() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 3);
    let mut d = Driver::new(fixed(2, 2).retry(RetryPolicy::default().max_refreshes(1)), plan);
    d.resume();
    let actions = d.fail(JobId(0), Failure::NeedsRefresh { status: 403 });
    assert_eq!(actions, [Action::RefreshUrls { job: JobId(0), status: 403 }]);
    // Suspended while the hook ran: the driver drops the refresh unanswered.
    d.engine.suspend();
    d.refresh_asked = false;
    d.engine.handle_refresh_abandoned(d.now);
    let cancelled = d.drain();
    assert!(cancelled.iter().all(|a| matches!(a, Action::Cancel { .. })), "{cancelled:?}");
    assert_eq!(d.engine.job_status(JobId(0)), Some(JobStatus::Ready));
    // Resumed, the job starts again with the URL it has; refused again, it may still ask for its one
    // refresh, because the abandoned one was not counted.
    d.engine.resume(d.now);
    let started = d.drain();
    assert!(started.contains(&Action::Start { job: JobId(0), attempt: 2 }), "{started:?}");
    let actions = d.fail(JobId(0), Failure::NeedsRefresh { status: 403 });
    assert_eq!(actions, [Action::RefreshUrls { job: JobId(0), status: 403 }]);
    assert_eq!(d.refreshed(), [Action::Start { job: JobId(0), attempt: 3 }]);
    assert_eq!(d.run_to_end(10), Action::Finished { complete: true, gaps: 0 });
}

#[test]
fn a_failed_refresh_gives_up_the_waiting_jobs() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 4);
    let mut d = Driver::new(fixed(2, 2).integrity(IntegrityPolicy::Tolerant), plan);
    d.resume();
    d.fail(JobId(0), Failure::NeedsRefresh { status: 401 });
    d.fail(JobId(1), Failure::NeedsRefresh { status: 401 });
    let actions = d.refresh_failed();
    let gaps: Vec<JobId> = actions
        .iter()
        .filter_map(|a| match a {
            Action::GapRecorded(f) if f.reason == GiveUpReason::RefreshFailed => Some(f.job),
            _ => None,
        })
        .collect();
    assert_eq!(gaps, [JobId(0), JobId(1)]);
    assert_eq!(d.run_to_end(10), Action::Finished { complete: false, gaps: 2 });
}

#[test]
fn augmenting_a_running_plan_interleaves_the_new_rendition() {
    let mut plan = Plan::new();
    let video = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, video, 0, 6);
    let mut d = Driver::new(fixed(1, 1), plan);
    d.resume();
    d.succeed(JobId(0), 10);
    d.succeed(JobId(1), 10);
    // French audio is added while video segment 2 (12 s) is in flight.
    let audio = d.engine.add_rendition(RenditionSpec::new().bandwidth(128_000));
    let jobs = (0..6u32).map(|i| JobSpec::new(JobId(100 + u64::from(i)), audio, SIX * i, SIX, "cdn.example"));
    d.engine.add_jobs(d.now, jobs).unwrap();
    assert!(d.drain().is_empty(), "the one slot is busy");
    assert_eq!(d.run_to_end(10), Action::Finished { complete: true, gaps: 0 });
    let after: Vec<u64> = d.started()[3..].iter().map(|j| j.0).collect();
    // The audio catches up from its start before video goes further.
    assert_eq!(after, [100, 101, 102, 3, 103, 4, 104, 5, 105]);
    // Adding to a finished engine runs it again, and a duplicate id leaves it untouched.
    let dup = [
        JobSpec::new(JobId(7), audio, secs(36), SIX, "cdn.example"),
        JobSpec::new(JobId(100), audio, secs(42), SIX, "cdn.example"),
    ];
    assert!(matches!(d.engine.add_jobs(d.now, dup), Err(Error::DuplicateJob { job: JobId(100) })));
    assert_eq!(d.engine.job_count(), 12);
    d.engine.add_jobs(d.now, [JobSpec::new(JobId(7), audio, secs(36), SIX, "cdn.example")]).unwrap();
    assert_eq!(d.drain(), [Action::Start { job: JobId(7), attempt: 1 }]);
    assert_eq!(d.engine.state(), EngineState::Running);
    d.succeed(JobId(7), 10);
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));
}

#[test]
fn progress_estimates_then_measures_then_knows() {
    let mut plan = Plan::new();
    // 1.6 Mb/s declared: 200 kB per second of media, 1.2 MB per 6 s segment.
    let video = plan.add_rendition(RenditionSpec::new().bandwidth(1_600_000));
    segments(&mut plan, video, 0, 10);
    let sized = plan.add_rendition(RenditionSpec::new());
    for i in 0..4u64 {
        plan.add_job(
            JobSpec::new(JobId(100 + i), sized, SIX * i as u32, SIX, "cdn.example").expected_size(5000),
        );
    }
    let mut d = Driver::new(fixed(1, 1), plan);
    let p = d.engine.progress();
    assert_eq!(p.renditions[video].bytes_expected, 12_000_000);
    assert!(!p.renditions[video].bytes_expected_exact);
    assert_eq!(p.renditions[sized].bytes_expected, 20_000);
    assert!(p.renditions[sized].bytes_expected_exact);
    assert!(!p.bytes_expected_exact);
    assert_eq!(p.bytes_expected, 12_020_000);
    assert_eq!(p.fraction(), 0.0);
    d.resume();
    // The first video segment is smaller than BANDWIDTH suggests: the estimate follows the measured rate.
    d.succeed(JobId(0), 600_000);
    let p = d.engine.progress();
    assert_eq!(p.renditions[video].bytes_done, 600_000);
    assert_eq!(p.renditions[video].bytes_expected, 6_000_000);
    assert_eq!(p.renditions[video].loaded_duration, SIX);
    assert_eq!((p.renditions[video].segments_done, p.renditions[video].segments_total), (1, 10));
    assert_eq!(d.run_to_end(600_000), Action::Finished { complete: true, gaps: 0 });
    let p = d.engine.progress();
    assert!(p.bytes_expected_exact);
    assert_eq!(p.bytes_done, p.bytes_expected);
    assert_eq!(p.fraction(), 1.0);
    assert_eq!(p.segments_done, 14);
}

#[test]
fn invalid_plans_and_configs_are_refused() {
    let plan = || {
        let mut plan = Plan::new();
        plan.add_rendition(RenditionSpec::new());
        plan
    };
    let err = Engine::new(fixed(0, 1), plan()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    let err = Engine::new(fixed(1, 0), plan()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));
    let err = Engine::new(EngineConfig::default().retry(RetryPolicy::default().max_attempts(0)), plan())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));
    let err =
        Engine::new(EngineConfig::default().retry(RetryPolicy::default().backoff(secs(2), secs(1))), plan())
            .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));

    let mut p = plan();
    p.add_job(JobSpec::new(JobId(1), 0, Duration::ZERO, SIX, "h"));
    p.add_job(JobSpec::new(JobId(1), 0, SIX, SIX, "h"));
    assert!(matches!(
        Engine::new(EngineConfig::default(), p).unwrap_err(),
        Error::DuplicateJob { job: JobId(1) }
    ));
    let mut p = plan();
    p.add_job(JobSpec::new(JobId(1), 3, Duration::ZERO, SIX, "h"));
    let err = Engine::new(EngineConfig::default(), p).unwrap_err();
    assert!(matches!(err, Error::UnknownRendition { job: JobId(1), rendition: 3 }));
    assert!(err.to_string().contains("rendition 3"));

    // A refused batch leaves a running engine as it was, so the same ids can be added afterwards.
    let mut engine = Engine::new(EngineConfig::default(), plan()).unwrap();
    let job = |id, rendition| JobSpec::new(JobId(id), rendition, Duration::ZERO, SIX, "h");
    let now = Instant::now();
    assert!(matches!(
        engine.add_jobs(now, [job(1, 0), job(2, 0), job(1, 0)]),
        Err(Error::DuplicateJob { job: JobId(1) })
    ));
    assert!(matches!(
        engine.add_jobs(now, [job(1, 0), job(2, 7)]),
        Err(Error::UnknownRendition { job: JobId(2), rendition: 7 })
    ));
    assert_eq!(engine.job_count(), 0);
    assert_eq!(engine.job_status(JobId(1)), None);
    engine.add_jobs(now, [job(1, 0), job(2, 0)]).unwrap();
    assert!(matches!(
        engine.add_jobs(now, [job(3, 0), job(2, 0)]),
        Err(Error::DuplicateJob { job: JobId(2) })
    ));
    assert_eq!(engine.job_status(JobId(2)), Some(JobStatus::Ready), "the first job 2 is untouched");
    assert_eq!(engine.job_status(JobId(3)), None);
    assert_eq!(engine.job_count(), 2);
}

#[test]
fn unknown_and_stale_reports_are_ignored() {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 2);
    let mut d = Driver::new(fixed(1, 1), plan);
    d.resume();
    d.engine.handle_completed(d.now, JobId(999), Outcome::success(1));
    assert!(d.drain().is_empty());
    d.succeed(JobId(0), 10);
    // A duplicate report of a done job changes nothing.
    d.engine.handle_completed(d.now, JobId(0), Outcome::success(10));
    d.engine.handle_completed(d.now, JobId(0), Outcome::Failure(Failure::stalled("stalled")));
    assert!(d.drain().is_empty());
    assert_eq!(d.engine.progress().bytes_done, 10);
}

#[test]
fn defaults_grow_past_the_per_host_limit_on_a_steady_slow_origin() {
    // The shape of the end-to-end benchmark: 400 requests to one host, 50 ms each whatever the
    // concurrency: an origin that waits rather than works. Round trips hold as the window grows, so it
    // goes past the per-host limit of 16 to the ceiling of 64, and the run is near the bound at 64:
    // 400 × 50 ms / 64 = 0.31 s of fake time, plus the ramp from the initial window (4, 8, 16, 32: four
    // round trips).
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 400);
    let config = EngineConfig::default();
    assert_eq!((config.concurrency.max_per_host, config.concurrency.per_host_ceiling), (16, 64));
    let hosts: Vec<(JobId, &str)> = (0..400).map(|i| (JobId(i), "cdn.example")).collect();
    let mut d = Driver::with_hosts(config, plan, &hosts);
    let start = d.now;
    d.resume();
    let mut windows = Vec::new();
    simulate(&mut d, |_| ms(50), 400, &mut windows);
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));
    let elapsed = d.now - start;
    assert!(elapsed <= ms(313 + 4 * 50 + 50), "took {elapsed:?} of fake time; windows {windows:?}");
    assert_eq!(d.max_seen_in_flight, 64, "windows {windows:?}");
    assert!(windows.iter().all(|&w| w <= 64), "{windows:?}");
    assert!(!d.engine.host_strained("cdn.example"));
}

#[test]
fn the_window_never_exceeds_the_per_host_ceiling() {
    // A ceiling that the doubling ramp does not land on (4, 8, 16, 32, then 48), a global limit far
    // above it, and two hosts: each host stops at its ceiling, and the window at what both can take.
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    let mut hosts = Vec::new();
    for i in 0..3000u64 {
        let host = if i % 2 == 0 { "a.example" } else { "b.example" };
        plan.add_job(JobSpec::new(JobId(i), r, SIX * i as u32, SIX, host));
        hosts.push((JobId(i), host));
    }
    let limits = ConcurrencyLimits::default().max_total(1000).max_per_host(16).per_host_ceiling(48);
    let mut d = Driver::with_hosts(EngineConfig::default().concurrency(limits), plan, &hosts);
    d.resume();
    let mut windows = Vec::new();
    simulate(&mut d, |_| ms(50), 3000, &mut windows);
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));
    assert!(windows.iter().all(|&w| w <= 96), "the window beyond what the hosts can take: {windows:?}");
    assert_eq!(d.max_seen_in_flight, 96, "both hosts reach their ceiling: {windows:?}");
    assert_eq!(d.engine.host_limit("a.example"), 48);
}

/// A steady origin (50 ms per answer) and the default limits, run until the window has reached the
/// ceiling of 64 with 64 jobs in flight.
fn at_the_ceiling() -> Driver {
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 2000);
    let hosts: Vec<(JobId, &str)> = (0..2000).map(|i| (JobId(i), "cdn.example")).collect();
    let mut d = Driver::with_hosts(EngineConfig::default(), plan, &hosts);
    d.resume();
    // Rounds of one round trip each: every job in flight completes 50 ms after the previous round.
    while d.engine.window() < 64 || d.engine.in_flight() < 64 {
        d.advance(ms(50));
        let round: Vec<JobId> = d.in_flight.iter().copied().collect();
        for job in round {
            d.succeed(job, 100_000);
        }
        assert!(d.starts.len() < 1000, "the window never reached 64");
    }
    d
}

/// Completes every job in flight, 50 ms apart rounds, `rounds` times; returns the most in flight seen
/// after any completion.
fn rounds_of_50ms(d: &mut Driver, rounds: usize) -> usize {
    let mut most = 0;
    for _ in 0..rounds {
        d.advance(ms(50));
        let round: Vec<JobId> = d.in_flight.iter().copied().collect();
        for job in round {
            d.succeed(job, 100_000);
            most = most.max(d.engine.in_flight_on("cdn.example"));
        }
    }
    most
}

#[test]
fn throttling_past_the_per_host_limit_halves_and_holds_the_host_to_it() {
    for status in [429, 503] {
        let mut d = at_the_ceiling();
        d.advance(ms(20));
        let victim = *d.in_flight.iter().next().unwrap();
        d.fail(victim, Failure::Throttled { status, retry_after: None });
        // The window halves (64 to 32) and the host can take no more than its limit.
        assert_eq!(d.engine.window(), 16, "HTTP {status} brings the window back to the host's limit");
        assert!(d.engine.host_strained("cdn.example"));
        assert_eq!(d.engine.host_limit("cdn.example"), 16, "the host is held to the per-host limit");
        assert_eq!(d.engine.in_flight(), 63, "no new start while over the host's limit");
        // The jobs in flight drain to the per-host limit, and no round ever goes past it again, though
        // the origin answers as steadily as before.
        let most = rounds_of_50ms(&mut d, 40);
        assert!(most <= 63, "{most}");
        let after = rounds_of_50ms(&mut d, 40);
        assert_eq!(after, 16, "HTTP {status}: a host that pushed back stays at its limit");
    }
}

#[test]
fn throttling_the_layer_below_retried_counts_as_pushback() {
    // The HTTP client retried a 503 on its own and the job is still under way: the engine is told with
    // `handle_pushback` and holds the host to its limit, so the window comes back from 64 to 16; it does
    // not halve, which stays for failures of jobs. The job stays in flight.
    let mut d = at_the_ceiling();
    d.advance(ms(20));
    let job = *d.in_flight.iter().next().unwrap();
    d.engine.handle_pushback(job, &Failure::Throttled { status: 503, retry_after: None });
    assert!(d.drain().is_empty(), "no action: the job goes on");
    assert_eq!(d.engine.job_status(job), Some(JobStatus::InFlight));
    assert_eq!(d.engine.window(), 16);
    assert_eq!(d.engine.host_limit("cdn.example"), 16);
    d.engine.handle_pushback(job, &Failure::stalled("stalled"));
    assert_eq!(d.engine.window(), 16, "held to the host's limit, not halved");
    rounds_of_50ms(&mut d, 40);
    assert_eq!(rounds_of_50ms(&mut d, 40), 16);
    // Reports about jobs not in flight change nothing.
    let done = *d.done.iter().next().unwrap();
    d.engine.handle_pushback(done, &Failure::Throttled { status: 429, retry_after: None });
    assert_eq!(d.engine.window(), 16);
}

#[test]
fn a_connection_error_holds_the_host_without_halving() {
    // A transient failure is pushback too (the host may be refusing connections under load), but not
    // throttling: the host is held to its limit, and the window is not halved.
    let mut d = at_the_ceiling();
    d.advance(ms(20));
    let job = *d.in_flight.iter().next().unwrap();
    d.fail(job, Failure::retryable("connection reset by peer"));
    assert_eq!(d.engine.window(), 16, "held to what the host can take, not halved below it");
    assert_eq!(d.engine.host_limit("cdn.example"), 16);
    rounds_of_50ms(&mut d, 40);
    assert_eq!(rounds_of_50ms(&mut d, 40), 16);
    // While ramping, below the host's limit, it leaves the window alone.
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 100);
    let mut d = Driver::new(EngineConfig::default(), plan);
    d.resume();
    rounds_of_50ms(&mut d, 1);
    assert_eq!(d.engine.window(), 8);
    d.fail(JobId(4), Failure::retryable("connection refused"));
    assert_eq!(d.engine.window(), 8);
}

#[test]
fn pushback_before_the_per_host_limit_keeps_the_window_from_going_past_it() {
    // A 503 while the window is still ramping (at 8): the host never gets more than 16 in flight, on an
    // origin that then answers steadily for the rest of the run.
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 1000);
    let hosts: Vec<(JobId, &str)> = (0..1000).map(|i| (JobId(i), "cdn.example")).collect();
    let mut d = Driver::with_hosts(EngineConfig::default(), plan, &hosts);
    d.resume();
    rounds_of_50ms(&mut d, 1);
    assert_eq!(d.engine.window(), 8);
    let job = *d.in_flight.iter().next().unwrap();
    d.engine.handle_pushback(job, &Failure::Throttled { status: 503, retry_after: None });
    assert_eq!(d.engine.window(), 8, "not halved");
    let mut windows = Vec::new();
    simulate(&mut d, |_| ms(50), 1000, &mut windows);
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));
    assert_eq!(d.max_seen_in_flight, 16, "windows {windows:?}");
}

#[test]
fn rising_latency_past_the_per_host_limit_stops_growth_and_steps_back() {
    // An origin that slows down as requests pile up, without ever refusing one: 50 ms, plus 1 ms for each
    // request in flight beyond 16 when one starts. Each doubling still carries more (32 in flight take
    // 66 ms, 64 take 98 ms), and each round trip is less than half again the previous one, so by
    // throughput and the ramp's own test the window would stay at the ceiling. Past the per-host limit
    // round trips must stay within a quarter of the shortest: the window steps back from where round
    // trips grew and stays below the point where answers are a quarter slower (about 28 in flight).
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 4000);
    let mut d = Driver::new(EngineConfig::default(), plan);
    d.resume();
    let mut windows = Vec::new();
    simulate(&mut d, |n| ms(50) + ms(1) * n.saturating_sub(16) as u32, 4000, &mut windows);
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));
    assert!(windows.iter().any(|&w| w > 16), "round trips held at first: the window went past 16");
    let late = &windows[windows.len() / 4..];
    let (low, high) = (late.iter().min().unwrap(), late.iter().max().unwrap());
    assert!(*low >= 16 && *high <= 28, "the window settles between 16 and 28, not {low} to {high}");
}

#[test]
fn the_window_judges_the_origin_by_round_trips_not_by_the_time_taken_to_store() {
    // A steady origin (50 ms per answer), and a driver on a busy machine whose jobs take 2 ms longer to
    // store for every job in flight. Told the round trips, the engine sees an origin whose answers do not
    // slow down and goes to the ceiling; judging by the whole time of each job, it would stop at the
    // per-host limit, because that time grows with the jobs in flight.
    for told in [true, false] {
        let mut plan = Plan::new();
        let r = plan.add_rendition(RenditionSpec::new());
        segments(&mut plan, r, 0, 3000);
        let mut d = Driver::new(EngineConfig::default(), plan);
        d.resume();
        let mut windows = Vec::new();
        for _ in 0..40 {
            let n = d.engine.in_flight() as u32;
            d.advance(ms(50) + ms(2) * n);
            let round: Vec<JobId> = d.in_flight.iter().copied().collect();
            for job in round {
                if told {
                    d.succeed_in(job, 100_000, ms(50));
                } else {
                    d.succeed(job, 100_000);
                }
            }
            windows.push(d.engine.window());
        }
        let peak = windows.iter().copied().max().unwrap();
        if told {
            assert_eq!(peak, 64, "{windows:?}");
        } else {
            assert!(peak <= 17, "{windows:?}");
        }
    }
}

#[test]
fn an_origin_that_queues_past_its_capacity_keeps_the_window_near_it() {
    // An origin that works on 24 requests at a time and queues the rest: a request started with `n` in
    // flight takes 50 ms × ⌈n / 24⌉. Past 24 round trips double: the window does not climb to the ceiling.
    let mut plan = Plan::new();
    let r = plan.add_rendition(RenditionSpec::new());
    segments(&mut plan, r, 0, 4000);
    let mut d = Driver::new(EngineConfig::default(), plan);
    d.resume();
    let mut windows = Vec::new();
    simulate(&mut d, |n| ms(50) * n.div_ceil(24).max(1) as u32, 4000, &mut windows);
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));
    let peak = windows.iter().copied().max().unwrap();
    assert!(peak <= 32, "the window kept growing while round trips grew: {windows:?}");
    let late = &windows[windows.len() / 2..];
    assert!(late.iter().all(|&w| (16..=25).contains(&w)), "{late:?}");
}

#[test]
fn the_window_ramps_up_when_segments_wait_for_their_keys() {
    // 300 segments, a key every three, latency-bound: every response takes 50 ms, and a segment is done
    // (decrypted, written) 25 ms after both its response and its key are in. Completions come in bursts,
    // a key's segments together, which must not stop the ramp while round trips stay as short as before.
    let mut plan = Plan::new();
    let video = plan.add_rendition(RenditionSpec::new().bandwidth(300_000));
    for i in 0..300u64 {
        plan.add_job(JobSpec::new(JobId(i), video, secs(2) * i as u32, secs(2), "cdn.example"));
    }
    for k in 0..100u64 {
        let start = secs(6) * k as u32;
        plan.add_job(JobSpec::new(JobId(1000 + k), video, start, Duration::ZERO, "cdn.example").prefetch());
    }
    let limits = ConcurrencyLimits::default().max_total(32).max_per_host(32).initial(4);
    let mut d = Driver::new(EngineConfig::default().concurrency(limits), plan);
    d.resume();
    let begin = d.now;
    // (when, job, whether that is its completion rather than its response)
    let mut due: Vec<(Instant, JobId, bool)> = Vec::new();
    let mut key_done: HashMap<u64, Instant> = HashMap::new();
    let mut waiting: HashMap<u64, Vec<(Instant, JobId)>> = HashMap::new();
    let mut seen = 0;
    let mut windows = Vec::new();
    loop {
        while seen < d.starts.len() {
            let job = d.starts[seen].0;
            due.push((d.now + ms(50), job, job.0 >= 1000));
            seen += 1;
        }
        due.sort();
        if due.is_empty() {
            break;
        }
        let (at, job, completes) = due.remove(0);
        d.now = d.now.max(at);
        if !completes {
            // A segment's response is in: it is done once its key is there too.
            match key_done.get(&(job.0 / 3)) {
                Some(&key) => due.push((at.max(key) + ms(25), job, true)),
                None => waiting.entry(job.0 / 3).or_default().push((at, job)),
            }
            continue;
        }
        if job.0 >= 1000 {
            key_done.insert(job.0 - 1000, d.now);
            for (response, segment) in waiting.remove(&(job.0 - 1000)).unwrap_or_default() {
                due.push((response.max(d.now) + ms(25), segment, true));
            }
        }
        d.succeed(job, if job.0 >= 1000 { 16 } else { 80_000 });
        windows.push(d.engine.window());
    }
    assert_eq!(d.log.last(), Some(&Action::Finished { complete: true, gaps: 0 }));
    windows.dedup();
    assert!(windows.contains(&32), "the window reaches the limit: {windows:?}");
    // 400 requests of 50 to 75 ms at 32 in flight, plus the ramp: about a second of fake time.
    let elapsed = d.now - begin;
    assert!(elapsed <= ms(1400), "took {elapsed:?}; windows {windows:?}");
}
