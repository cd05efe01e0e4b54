//! The engine itself: the state machine that owns the plan and decides what to fetch next.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::time::{Duration, Instant};

use super::books::{Host, IdHasher, Job, JobBook, Rendition, Slot, nanos};
use super::concurrency::Controller;
use super::live::Reloads;
use super::rng::SplitMix64;
use super::{
    Action, EngineConfig, EngineState, Failure, GiveUpReason, JobFailure, JobId, JobSpec, JobStatus,
    LoadedTimeRange, Outcome, Plan, Progress, RecordingEnd, RecordingStatus, Reload, RenditionProgress,
    RenditionSpec, TimeRange,
};
use crate::Error;

/// The sans-IO download engine. See the [module documentation](super).
///
/// ```
/// use std::time::{Duration, Instant};
/// use stowage_task::engine::{Action, Engine, EngineConfig, JobId, JobSpec, Outcome, Plan, RenditionSpec};
///
/// let mut plan = Plan::new();
/// let video = plan.add_rendition(RenditionSpec::new().bandwidth(2_000_000));
/// for i in 0..3u64 {
///     let start = Duration::from_secs(6 * i);
///     plan.add_job(JobSpec::new(JobId(i), video, start, Duration::from_secs(6), "cdn.example"));
/// }
/// let mut engine = Engine::new(EngineConfig::default(), plan)?;
/// let now = Instant::now();
/// engine.resume(now);
/// let mut started = Vec::new();
/// while let Some(action) = engine.poll_action() {
///     if let Action::Start { job, .. } = action {
///         started.push(job);
///     }
/// }
/// assert_eq!(started, [JobId(0), JobId(1), JobId(2)]);
/// for job in started {
///     engine.handle_completed(now + Duration::from_millis(40), job, Outcome::success(1_500_000));
/// }
/// assert_eq!(engine.poll_action(), Some(Action::Finished { complete: true, gaps: 0 }));
/// # Ok::<(), stowage_task::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    state: EngineState,
    jobs: JobBook,
    index: HashMap<JobId, u32, BuildHasherDefault<IdHasher>>,
    renditions: Vec<Rendition>,
    hosts: Vec<Host>,
    backoff: BinaryHeap<Reverse<(Instant, u32)>>,
    actions: VecDeque<Action>,
    rng: SplitMix64,
    controller: Controller,
    in_flight: usize,
    /// Jobs neither done nor recorded as gaps.
    remaining: usize,
    gaps: usize,
    refresh_pending: bool,
    /// The reloads of the live renditions of a recording (empty otherwise).
    live: Reloads,
    /// Whether the engine ran before (a recording's first reloads wait, later ones do not).
    resumed: bool,
}

impl Engine {
    /// Builds an engine for `plan`. It starts suspended, as a new download task does: call
    /// [`resume`](Self::resume) to start.
    ///
    /// Fails on an invalid configuration, a job id used twice, or a job naming a rendition the plan does
    /// not have.
    pub fn new(config: EngineConfig, plan: Plan<'_>) -> Result<Self, Error> {
        config.validate()?;
        let limits = &config.concurrency;
        let controller =
            Controller::new(limits.adaptive, limits.initial, limits.max_total, limits.max_per_host);
        let live = Reloads::new(config.max_outage, config.stop_grace);
        let mut engine = Self {
            rng: SplitMix64::new(config.seed),
            config,
            state: EngineState::Suspended,
            jobs: JobBook::default(),
            index: HashMap::default(),
            renditions: Vec::new(),
            hosts: Vec::new(),
            backoff: BinaryHeap::new(),
            actions: VecDeque::new(),
            controller,
            in_flight: 0,
            remaining: 0,
            gaps: 0,
            refresh_pending: false,
            live,
            resumed: false,
        };
        for rendition in plan.renditions {
            engine.add_rendition(rendition);
        }
        engine.insert_jobs(plan.jobs)?;
        Ok(engine)
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The overall state.
    pub fn state(&self) -> EngineState {
        self.state
    }

    /// Jobs in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Jobs in flight now on `host`.
    pub fn in_flight_on(&self, host: &str) -> usize {
        self.hosts.iter().find(|h| &*h.name == host).map_or(0, |h| h.in_flight)
    }

    /// The current concurrency window (between one and the global limit).
    pub fn window(&self) -> usize {
        self.controller.window()
    }

    /// The most jobs `host` may have in flight now: the per-host ceiling while the window adapts and the
    /// host has not pushed back, else the per-host limit (see [`ConcurrencyLimits::per_host_ceiling`]).
    ///
    /// [`ConcurrencyLimits::per_host_ceiling`]: super::ConcurrencyLimits::per_host_ceiling
    pub fn host_limit(&self, host: &str) -> usize {
        let strained = self.hosts.iter().find(|h| &*h.name == host).is_some_and(|h| h.strained);
        self.config.concurrency.host_limit(strained)
    }

    /// Whether `host` pushed back in this run (and is held to the per-host limit).
    pub fn host_strained(&self, host: &str) -> bool {
        self.hosts.iter().find(|h| &*h.name == host).is_some_and(|h| h.strained)
    }

    /// Keeps the window within what the hosts can take together, so that a decrease takes effect.
    fn update_capacity(&mut self) {
        let limits = &self.config.concurrency;
        let hosts: usize = self.hosts.iter().map(|h| limits.host_limit(h.strained)).sum();
        self.controller.set_max(limits.max_total.min(hosts));
    }

    /// Where a job stands, or `None` for an id the engine does not know.
    pub fn job_status(&self, job: JobId) -> Option<JobStatus> {
        let index = *self.index.get(&job)?;
        Some(match self.jobs[index].slot {
            Slot::Ready => JobStatus::Ready,
            Slot::Backoff => JobStatus::Backoff,
            Slot::InFlight { .. } => JobStatus::InFlight,
            Slot::AwaitingRefresh { .. } => JobStatus::AwaitingRefresh,
            Slot::Done => JobStatus::Done,
            Slot::Gap => JobStatus::Gap,
            Slot::Failed => JobStatus::Failed,
            Slot::Dropped => JobStatus::Dropped,
        })
    }

    /// The number of jobs in the plan: every job ever added, forgotten ones included.
    pub fn job_count(&self) -> usize {
        self.jobs.end() as usize
    }

    /// The number of jobs the engine keeps a record of. A recording's engine lets go of the records of
    /// jobs that are over (see [`add_jobs`](Self::add_jobs)), so this stays near the number of jobs not
    /// over yet however long the recording runs; otherwise it is [`job_count`](Self::job_count).
    pub fn jobs_kept(&self) -> usize {
        self.jobs.kept()
    }

    /// The number of renditions in the plan.
    pub fn rendition_count(&self) -> usize {
        self.renditions.len()
    }

    /// The time ranges of `rendition` loaded so far, sorted and merged. Empty for an unknown rendition.
    pub fn loaded_ranges(&self, rendition: usize) -> &[TimeRange] {
        self.renditions.get(rendition).map_or(&[], |r| r.loaded.as_slice())
    }

    /// The range `rendition` is expected to load: from the earliest job start to the latest job end.
    pub fn expected_range(&self, rendition: usize) -> Option<TimeRange> {
        self.renditions.get(rendition)?.expected
    }

    /// The "loaded time range added" event for a job that is done: its range, with every range of its
    /// rendition loaded so far and the range expected. `None` for a job that is not done (or unknown).
    pub fn loaded_time_range(&self, job: JobId) -> Option<LoadedTimeRange> {
        let job = &self.jobs[*self.index.get(&job)?];
        if job.slot != Slot::Done || job.prefetch {
            return None;
        }
        let rendition = job.rendition as usize;
        Some(LoadedTimeRange::new(
            rendition,
            job.range(),
            self.loaded_ranges(rendition).to_vec(),
            self.expected_range(rendition),
        ))
    }

    /// Bytes and segments done and expected, per rendition and in total.
    ///
    /// Expected bytes are exact once every remaining job's size is known; before, the unknown ones are
    /// estimated from the media rate measured on stored segments, or from the declared bandwidth ×
    /// duration while none is stored. Gaps are not expected any more.
    pub fn progress(&self) -> Progress {
        let renditions: Vec<RenditionProgress> =
            self.renditions.iter().enumerate().map(|(i, r)| r.progress(i)).collect();
        Progress::from_renditions(renditions)
    }

    /// Adds a rendition to a running plan (to augment a download) and returns its index.
    pub fn add_rendition(&mut self, rendition: RenditionSpec) -> usize {
        self.live.add_rendition(rendition.live.as_ref());
        self.renditions.push(Rendition { bandwidth: rendition.bandwidth, ..Rendition::default() });
        self.renditions.len() - 1
    }

    /// A reload of a live rendition's playlist ended (see [`Action::ReloadPlaylist`]): what it brought.
    /// Add the jobs of the new segments with [`add_jobs`](Self::add_jobs) before reporting
    /// [`Reload::Changed`] or [`Reload::Ended`]. Reports the engine did not ask for are ignored.
    pub fn handle_reload(&mut self, now: Instant, rendition: usize, reload: Reload) {
        if self.state.is_closed() {
            return;
        }
        let why = match &reload {
            Reload::Ended(why) => Some(*why),
            _ => None,
        };
        if !self.live.report(now, rendition, reload) {
            return;
        }
        if let Some(why) = why
            && self.live.all_ended()
            && self.live.ended().is_none()
        {
            self.live.close(why);
            self.actions.push_back(Action::RecordingEnded(why));
        }
        self.tick(now);
    }

    /// Ends the recording now (a user's stop): no more reloads, and the segments already listed get
    /// [`EngineConfig::stop_grace`] to be fetched before [`Action::Finished`].
    pub fn end_recording(&mut self, now: Instant, why: RecordingEnd) {
        if self.state.is_closed() || !self.live.is_recording() || self.live.ended().is_some() {
            return;
        }
        self.live.end(now, why, true);
        self.actions.push_back(Action::RecordingEnded(why));
        self.tick(now);
    }

    /// Ends the recording at `at` (the time a user asked it to stop), as [`end_recording`](Self::end_recording)
    /// does.
    pub fn end_recording_at(&mut self, at: Instant) {
        self.live.set_end_at(at);
    }

    /// Where a recording stands; `None` when no rendition is live.
    pub fn recording_status(&self, now: Instant) -> Option<RecordingStatus> {
        self.live.status(now)
    }

    /// Adds jobs to the plan, for instance the segments of a media selection added to a download.
    ///
    /// Either every job is added or, on error, none. A finished engine runs again; a running one starts
    /// the new jobs in their place on the timeline. Fails once the engine failed or was cancelled.
    ///
    /// When the engine records a live stream, it first lets go of the records of the oldest jobs that are
    /// over (done, gaps, dropped), up to the first one that is not: from then on they are unknown to it
    /// ([`job_status`](Self::job_status) and [`loaded_time_range`](Self::loaded_time_range) answer `None`,
    /// and their ids are no longer checked for reuse), while the progress keeps counting them. A driver
    /// numbers a recording's jobs as they come and never reuses an id.
    pub fn add_jobs<'a>(
        &mut self,
        now: Instant,
        jobs: impl IntoIterator<Item = JobSpec<'a>>,
    ) -> Result<(), Error> {
        if self.state.is_closed() {
            return Err(Error::EngineClosed);
        }
        let jobs: Vec<JobSpec<'a>> = jobs.into_iter().collect();
        if jobs.is_empty() {
            return Ok(());
        }
        if self.live.is_recording() {
            // A recording adds jobs for as long as it runs: the records of the jobs over by now go, so
            // that the engine's memory follows what is under way, not the length of the recording.
            let index = &mut self.index;
            self.jobs.forget_over(|id| {
                index.remove(&id);
            });
        }
        self.insert_jobs(jobs)?;
        if self.state == EngineState::Finished {
            self.state = EngineState::Running;
        }
        self.dispatch(now);
        self.check_finished();
        Ok(())
    }

    fn insert_jobs(&mut self, jobs: Vec<JobSpec<'_>>) -> Result<(), Error> {
        // Validate everything first so that a bad batch leaves the engine as it was. Ids are entered in
        // the index as they are checked (one hash per job), and taken out again if the batch is refused.
        let first = self.jobs.end() as usize;
        if first + jobs.len() > u32::MAX as usize {
            return Err(Error::InvalidConfig { reason: "a plan holds at most 2^32 - 1 jobs" });
        }
        self.index.reserve(jobs.len());
        for (offset, job) in jobs.iter().enumerate() {
            let refused = if job.rendition >= self.renditions.len() {
                Some(Error::UnknownRendition { job: job.id, rendition: job.rendition })
            } else if let Some(previous) = self.index.insert(job.id, (first + offset) as u32) {
                self.index.insert(job.id, previous);
                Some(Error::DuplicateJob { job: job.id })
            } else {
                None
            };
            if let Some(error) = refused {
                // Remove the ids this batch entered, keeping those that were there before it.
                for earlier in &jobs[..offset] {
                    if self.index.get(&earlier.id).is_some_and(|&i| i as usize >= first) {
                        self.index.remove(&earlier.id);
                    }
                }
                return Err(error);
            }
        }
        self.jobs.reserve(jobs.len());
        for spec in jobs {
            let index = self.jobs.end();
            let host = self.intern(spec.host);
            let job = Job {
                id: spec.id,
                rendition: spec.rendition as u32,
                host,
                start_ns: nanos(spec.start),
                duration_ns: nanos(spec.duration),
                expected: spec.expected_size,
                slot: Slot::Ready,
                starts: 0,
                failures: 0,
                refreshes: 0,
                first_failure: None,
                prefetch: spec.prefetch,
            };
            if spec.prefetch {
                // Outside the renditions' books: neither progress nor the task's end waits for it.
                let mut job = job;
                match spec.finished {
                    Some(_) => job.slot = Slot::Done,
                    None => self.hosts[host as usize]
                        .ready
                        .push(job.order(nanos(self.config.prefetch_lead), index)),
                }
                self.jobs.push(job);
                continue;
            }
            let rendition = &mut self.renditions[spec.rendition];
            rendition.total += 1;
            let range = TimeRange::starting_at(spec.start, spec.duration);
            rendition.expected = Some(match rendition.expected {
                Some(e) => TimeRange { start: e.start.min(range.start), end: e.end.max(range.end) },
                None => range,
            });
            let mut job = job;
            match spec.finished {
                Some(bytes) => {
                    job.slot = Slot::Done;
                    rendition.add_done(&job, bytes);
                }
                None => {
                    rendition.add_pending(&job);
                    self.remaining += 1;
                    self.hosts[host as usize].ready.push(job.order(nanos(self.config.prefetch_lead), index));
                }
            }
            self.jobs.push(job);
        }
        Ok(())
    }

    fn intern(&mut self, host: &str) -> u32 {
        if let Some(i) = self.hosts.iter().position(|h| &*h.name == host) {
            return i as u32;
        }
        self.hosts.push(Host {
            name: host.into(),
            in_flight: 0,
            ready: BinaryHeap::new(),
            paused_until: None,
            strained: false,
        });
        self.update_capacity();
        (self.hosts.len() - 1) as u32
    }

    /// The next action for the driver, in the order they arose. An action polled is gone from the engine,
    /// so dropping it unread loses it.
    #[must_use = "a polled action is taken off the engine's queue; dropping it loses it"]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the engine next needs [`handle_timeout`](Self::handle_timeout): the end of the earliest retry
    /// delay or host pause. `None` while nothing waits on time (or the engine is not running).
    #[must_use = "the engine needs handle_timeout at this instant; ignoring it stalls retries"]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.state != EngineState::Running {
            return None;
        }
        while let Some(&Reverse((_, index))) = self.backoff.peek() {
            if self.jobs.get(index).is_some_and(|j| j.slot == Slot::Backoff) {
                break;
            }
            self.backoff.pop();
        }
        let retry = self.backoff.peek().map(|Reverse((at, _))| *at);
        let pause = self.hosts.iter().filter(|h| !h.ready.is_empty()).filter_map(|h| h.paused_until).min();
        [retry, pause, self.live.next_wakeup()].into_iter().flatten().min()
    }

    /// Time passed: wake jobs whose retry delay is over, lift host pauses, and start what may start.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != EngineState::Running {
            return;
        }
        self.wake_due(now);
        self.tick(now);
    }

    /// A recording's business at `now` (its limits, the end of its grace, the reloads due), then the
    /// starts that may be made and the end, if it came.
    fn tick(&mut self, now: Instant) {
        if self.state == EngineState::Running {
            if let Some(why) = self.live.limit_reached(now) {
                // At an outage's limit nothing listed can be had any more; at the end time, what is listed
                // gets its grace.
                self.live.end(now, why, !matches!(why, RecordingEnd::Outage(_)));
                self.actions.push_back(Action::RecordingEnded(why));
            }
            if self.live.abandon_at().is_some_and(|at| at <= now) {
                self.abandon_pending();
            }
            self.live.poll(now, &mut self.actions);
        }
        self.dispatch(now);
        self.check_finished();
    }

    /// The recording ended and its grace is over: every job not done is given up (a gap).
    fn abandon_pending(&mut self) {
        for index in self.jobs.indices() {
            match self.jobs[index].slot {
                Slot::InFlight { .. } => {
                    self.leave_flight(index);
                    self.actions.push_back(Action::Cancel { job: self.jobs[index].id });
                }
                Slot::Ready | Slot::Backoff | Slot::AwaitingRefresh { .. } => {}
                _ => continue,
            }
            let cause = Failure::fatal("the recording ended before it could be fetched");
            self.give_up(index, cause, GiveUpReason::RecordingEnded);
        }
        self.refresh_pending = false;
    }

    /// A started job ended.
    ///
    /// A success is accepted for any job not yet done, also one that was cancelled by a suspend while its
    /// bytes were being stored: stored work is never fetched again. A failure is taken only for a job in
    /// flight; a failure of a start the engine already cancelled is ignored, as are reports for unknown
    /// jobs and reports after the engine failed or was cancelled.
    ///
    /// When a cancelled job may already have been started again, a late failure of the cancelled start
    /// cannot be told from a failure of the new one here; use
    /// [`handle_attempt_completed`](Self::handle_attempt_completed), which can.
    pub fn handle_completed(&mut self, now: Instant, job: JobId, outcome: Outcome) {
        self.complete(now, job, None, outcome, None);
    }

    /// A start of a job ended: `attempt` is the number its [`Action::Start`] carried.
    ///
    /// A report about an earlier start than the one in flight is told apart: its failure is ignored, and
    /// its success is kept (the bytes are stored) while the newer start is cancelled with
    /// [`Action::Cancel`]. Otherwise as [`handle_completed`](Self::handle_completed).
    pub fn handle_attempt_completed(&mut self, now: Instant, job: JobId, attempt: u32, outcome: Outcome) {
        self.complete(now, job, Some(attempt), outcome, None);
    }

    /// As [`handle_attempt_completed`](Self::handle_attempt_completed), for a start whose request and
    /// response took `round_trip` of the time since it started: the adaptive window judges the origin by
    /// that, rather than by the time from the start to the report, which also counts what the driver did
    /// before sending the request (waiting for a key) and after the last byte (storing the bytes). On a
    /// busy machine that local time grows with the jobs in flight while the origin's answers do not.
    pub fn handle_attempt_completed_in(
        &mut self,
        now: Instant,
        job: JobId,
        attempt: u32,
        outcome: Outcome,
        round_trip: Duration,
    ) {
        self.complete(now, job, Some(attempt), outcome, Some(round_trip));
    }

    /// A start of `job` still under way met pushback that the layer below retried on its own (a 429 or
    /// 503 answered, a stalled body, a connection error): the job's host is held to the per-host limit
    /// from now on, and a window past what the hosts can then take comes back to it. The window is not
    /// halved: that remains for failures of jobs, as reported to
    /// [`handle_attempt_completed`](Self::handle_attempt_completed), so that an origin that refuses a
    /// request now and then, and answers the retry at once, costs no more than before. The job itself
    /// stays in flight. Reports for jobs not in flight are ignored.
    pub fn handle_pushback(&mut self, job: JobId, failure: &Failure) {
        if self.state.is_closed() {
            return;
        }
        let Some(&index) = self.index.get(&job) else {
            return;
        };
        if matches!(self.jobs[index].slot, Slot::InFlight { .. }) {
            self.hold_host(index, failure);
        }
    }

    /// Holds the host of job `index` to the per-host limit if `failure` is pushback.
    fn hold_host(&mut self, index: u32, failure: &Failure) {
        if !matches!(failure, Failure::Retryable { .. } | Failure::Throttled { .. } | Failure::Stalled { .. })
        {
            return;
        }
        let host = self.jobs[index].host as usize;
        if !self.hosts[host].strained {
            self.hosts[host].strained = true;
            self.update_capacity();
        }
    }

    fn complete(
        &mut self,
        now: Instant,
        job: JobId,
        attempt: Option<u32>,
        outcome: Outcome,
        round_trip: Option<Duration>,
    ) {
        if self.state.is_closed() {
            return;
        }
        let Some(&index) = self.index.get(&job) else {
            return;
        };
        let slot = self.jobs[index].slot;
        let stale = attempt.is_some_and(|a| a != self.jobs[index].starts);
        match (slot, outcome) {
            (Slot::InFlight { .. }, Outcome::Success { bytes }) if stale => {
                // An earlier start stored the bytes after all: keep them and stop the newer start.
                self.leave_flight(index);
                self.actions.push_back(Action::Cancel { job });
                self.mark_done(index, bytes);
            }
            (Slot::InFlight { .. }, Outcome::Failure(_)) if stale => return,
            (Slot::InFlight { started }, Outcome::Success { bytes }) => {
                self.leave_flight(index);
                self.controller.on_success(now, started, bytes, round_trip);
                self.mark_done(index, bytes);
            }
            (Slot::Ready | Slot::Backoff | Slot::AwaitingRefresh { .. }, Outcome::Success { bytes }) => {
                // Stale heap entries of this job are skipped when they surface.
                self.mark_done(index, bytes);
            }
            (Slot::InFlight { started }, Outcome::Failure(failure)) => {
                self.leave_flight(index);
                self.on_failure(now, index, started, failure);
            }
            _ => return,
        }
        self.dispatch(now);
        self.check_finished();
    }

    /// The driver obtained fresh URLs: jobs waiting for them are ready again and starts resume.
    pub fn handle_refreshed(&mut self, now: Instant) {
        if self.state.is_closed() || !self.refresh_pending {
            return;
        }
        self.requeue_awaiting_refresh(false);
        self.dispatch(now);
    }

    /// The driver stopped waiting for fresh URLs without an answer (the task was suspended while the hook
    /// ran): jobs waiting for them are ready again with the URLs they have, and the refresh they asked for
    /// is not counted, so a refusal after [`Engine::resume`] asks again.
    pub fn handle_refresh_abandoned(&mut self, now: Instant) {
        if self.state.is_closed() || !self.refresh_pending {
            return;
        }
        self.requeue_awaiting_refresh(true);
        self.dispatch(now);
    }

    /// Ends the pending refresh: jobs waiting for it are ready again, in their places on the timeline;
    /// `uncount` takes back the refresh each of them was charged when it asked.
    fn requeue_awaiting_refresh(&mut self, uncount: bool) {
        self.refresh_pending = false;
        for index in self.jobs.indices() {
            let job = &mut self.jobs[index];
            if let Slot::AwaitingRefresh { .. } = job.slot {
                if uncount {
                    job.refreshes = job.refreshes.saturating_sub(1);
                }
                self.make_ready(index);
            }
        }
    }

    /// Makes job `index` ready and puts it in its host's queue, in its place on the timeline.
    fn make_ready(&mut self, index: u32) {
        let lead = nanos(self.config.prefetch_lead);
        let job = &mut self.jobs[index];
        job.slot = Slot::Ready;
        self.hosts[job.host as usize].ready.push(job.order(lead, index));
    }

    /// The driver could not obtain fresh URLs: every job waiting for them gives up (a gap each under the
    /// tolerant policy, the task's failure under the strict one).
    pub fn handle_refresh_failed(&mut self, now: Instant) {
        if self.state.is_closed() || !self.refresh_pending {
            return;
        }
        self.refresh_pending = false;
        for index in self.jobs.indices() {
            if self.state.is_closed() {
                break;
            }
            if let Slot::AwaitingRefresh { status } = self.jobs[index].slot {
                self.give_up(index, Failure::NeedsRefresh { status }, GiveUpReason::RefreshFailed);
            }
        }
        self.dispatch(now);
        self.check_finished();
    }

    /// Starts (or restarts) the engine. A finished plan reports [`Action::Finished`] at once.
    pub fn resume(&mut self, now: Instant) {
        if self.state != EngineState::Suspended {
            return;
        }
        self.state = EngineState::Running;
        self.live.resume(now, !self.resumed);
        self.resumed = true;
        self.wake_due(now);
        self.tick(now);
    }

    /// Stops starting jobs and cancels those in flight ([`Action::Cancel`] for each), which go back to
    /// the ready queue; a cancelled attempt does not count against the retry policy.
    pub fn suspend(&mut self) {
        if self.state != EngineState::Running {
            return;
        }
        self.state = EngineState::Suspended;
        self.cancel_in_flight(true);
        self.live.suspend();
        self.controller.on_pause();
    }

    /// Cancels the task: [`Action::Cancel`] for each job in flight, then [`Action::Cancelled`].
    pub fn cancel(&mut self) {
        if self.state.is_closed() {
            return;
        }
        self.cancel_in_flight(false);
        self.state = EngineState::Cancelled;
        self.actions.push_back(Action::Cancelled);
    }

    fn cancel_in_flight(&mut self, requeue: bool) {
        if self.in_flight == 0 {
            return;
        }
        for index in self.jobs.indices() {
            if let Slot::InFlight { .. } = self.jobs[index].slot {
                self.leave_flight(index);
                let job = &mut self.jobs[index];
                job.slot = Slot::Ready;
                self.actions.push_back(Action::Cancel { job: job.id });
                if requeue {
                    self.make_ready(index);
                }
            }
        }
    }

    fn leave_flight(&mut self, index: u32) {
        let job = &mut self.jobs[index];
        job.slot = Slot::Ready;
        self.hosts[job.host as usize].in_flight -= 1;
        self.in_flight -= 1;
    }

    fn mark_done(&mut self, index: u32, bytes: u64) {
        let job = &mut self.jobs[index];
        job.slot = Slot::Done;
        if job.prefetch {
            return;
        }
        let rendition = &mut self.renditions[job.rendition as usize];
        rendition.remove_pending(job);
        rendition.add_done(job, bytes);
        self.remaining -= 1;
    }

    fn on_failure(&mut self, now: Instant, index: u32, started: Instant, failure: Failure) {
        // The window halves first, from where it stood; then it is held to what the hosts can take now,
        // so that a host past its limit comes back to it, and no further.
        if failure.is_congestion() {
            self.controller.on_congestion(now, started);
        }
        self.hold_host(index, &failure);
        let retry = &self.config.retry;
        let job = &mut self.jobs[index];
        let retry_after = match &failure {
            Failure::Fatal { .. } => {
                job.failures += 1;
                return self.give_up(index, failure, GiveUpReason::Fatal);
            }
            Failure::Expired { .. } => {
                job.failures += 1;
                return self.give_up(index, failure, GiveUpReason::Expired);
            }
            Failure::NeedsRefresh { status } => {
                job.refreshes = job.refreshes.saturating_add(1);
                if job.refreshes > retry.max_refreshes {
                    return self.give_up(index, failure, GiveUpReason::RefreshesExhausted);
                }
                let status = *status;
                job.slot = Slot::AwaitingRefresh { status };
                if !self.refresh_pending {
                    self.refresh_pending = true;
                    self.actions.push_back(Action::RefreshUrls { job: job.id, status });
                }
                return;
            }
            Failure::Superseded { .. } => {
                // Ready again at once, in its place on the timeline; while a refresh is pending it waits
                // for it like every other start.
                self.make_ready(index);
                return;
            }
            Failure::Retryable { retry_after, .. } => *retry_after,
            Failure::Throttled { retry_after, .. } => *retry_after,
            Failure::Stalled { .. } => None,
        };
        // The retry time counts from the start of the first attempt that failed, not from its end: an
        // attempt may spend long failing (the fetch layer's deadlines and its own retries), and a
        // stalled origin must fail the task within the retry time, not that long after a first failure.
        let first_failure = *job.first_failure.get_or_insert(started);
        job.failures += 1;
        let failures = job.failures;
        let attempt = job.starts;
        let host = job.host as usize;
        if let (Failure::Throttled { .. }, Some(after)) = (&failure, retry_after) {
            // No origin pauses a host for longer than a job may wait to be retried.
            let until = now.checked_add(after.min(retry.max_retry_time));
            if let Some(until) = until {
                let host = &mut self.hosts[host];
                host.paused_until = Some(host.paused_until.map_or(until, |p| p.max(until)));
            }
        }
        if failures >= retry.max_attempts {
            return self.give_up(index, failure, GiveUpReason::AttemptsExhausted);
        }
        let delay = match retry_after {
            Some(after) => after,
            None => stowage_fetch::backoff::full_jitter(retry.backoff_ceiling(failures), self.rng.next_u64()),
        };
        // Checked sums: a `Retry-After` of centuries must give up, not overflow the clock.
        let deadline = first_failure.checked_add(self.config.retry.max_retry_time);
        let due = match now.checked_add(delay) {
            Some(due) if deadline.is_none_or(|d| due <= d) => due,
            _ => return self.give_up(index, failure, GiveUpReason::RetryTimeExhausted),
        };
        let job = &mut self.jobs[index];
        job.slot = Slot::Backoff;
        self.backoff.push(Reverse((due, index)));
        self.actions.push_back(Action::Retried { job: job.id, attempt, cause: failure, delay });
    }

    fn give_up(&mut self, index: u32, cause: Failure, reason: GiveUpReason) {
        let job = &mut self.jobs[index];
        if job.prefetch {
            job.slot = Slot::Dropped;
            return;
        }
        let failure =
            JobFailure { job: job.id, cause, attempts: job.failures.saturating_add(job.refreshes), reason };
        // A recording's holes (segments that expired during an outage, or that the recording ended
        // before) are gaps whatever the policy: the strict policy fails only for what could have been had.
        // Otherwise the policy, the bundle's type, says itself (with a match that names every variant)
        // whether a segment given up becomes a gap.
        let hole = matches!(reason, GiveUpReason::Expired | GiveUpReason::RecordingEnded);
        if hole || self.config.integrity.records_gaps() {
            job.slot = Slot::Gap;
            let rendition = &mut self.renditions[job.rendition as usize];
            rendition.remove_pending(job);
            rendition.gaps += 1;
            self.remaining -= 1;
            self.gaps += 1;
            self.actions.push_back(Action::GapRecorded(failure));
        } else {
            job.slot = Slot::Failed;
            self.cancel_in_flight(false);
            self.state = EngineState::Failed;
            self.actions.push_back(Action::Failed(failure));
        }
    }

    fn wake_due(&mut self, now: Instant) {
        while let Some(&Reverse((at, index))) = self.backoff.peek() {
            if at > now {
                break;
            }
            self.backoff.pop();
            if self.jobs.get(index).is_some_and(|j| j.slot == Slot::Backoff) {
                self.make_ready(index);
            }
        }
        for host in &mut self.hosts {
            if host.paused_until.is_some_and(|until| until <= now) {
                host.paused_until = None;
            }
        }
    }

    /// Starts ready jobs in timeline order while the window, the global limit and the host limits allow.
    fn dispatch(&mut self, now: Instant) {
        if self.state != EngineState::Running || self.refresh_pending {
            return;
        }
        let window = self.controller.window().min(self.config.concurrency.max_total);
        let limits = &self.config.concurrency;
        let (free, strained) = (limits.host_limit(false), limits.host_limit(true));
        let mut window_was_limit = false;
        loop {
            if self.in_flight >= window {
                window_was_limit = true;
                break;
            }
            let mut best: Option<(usize, (u64, u32, u32))> = None;
            for (h, host) in self.hosts.iter_mut().enumerate() {
                let per_host = if host.strained { strained } else { free };
                if host.in_flight >= per_host || host.paused_until.is_some_and(|until| until > now) {
                    continue;
                }
                // Drop entries of jobs that left the ready state by another way (a raced success).
                while let Some(&Reverse((_, _, index))) = host.ready.peek() {
                    if self.jobs.get(index).is_some_and(|j| j.slot == Slot::Ready) {
                        break;
                    }
                    host.ready.pop();
                }
                if let Some(&Reverse(key)) = host.ready.peek()
                    && best.is_none_or(|(_, b)| key < b)
                {
                    best = Some((h, key));
                }
            }
            let Some((h, (_, _, index))) = best else {
                break;
            };
            self.hosts[h].ready.pop();
            self.hosts[h].in_flight += 1;
            self.in_flight += 1;
            let job = &mut self.jobs[index];
            job.slot = Slot::InFlight { started: now };
            job.starts = job.starts.saturating_add(1);
            self.actions.push_back(Action::Start { job: job.id, attempt: job.starts });
        }
        self.controller.on_dispatch(now, window_was_limit);
    }

    fn check_finished(&mut self) {
        if self.state == EngineState::Running
            && self.remaining == 0
            && self.in_flight == 0
            && self.live.all_ended()
        {
            self.state = EngineState::Finished;
            self.actions.push_back(Action::Finished { complete: self.gaps == 0, gaps: self.gaps });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's share of memory per planned job is its `Job` record, one ready-queue entry and one
    /// index entry (about 130 bytes in all on 64-bit targets); this keeps it from growing unnoticed.
    #[test]
    fn per_job_state_stays_small() {
        assert!(size_of::<Job>() <= 96, "Job grew to {} bytes", size_of::<Job>());
        assert!(size_of::<Reverse<(u64, u32, u32)>>() <= 16);
    }
}
