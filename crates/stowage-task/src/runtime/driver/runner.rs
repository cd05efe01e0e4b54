//! The engine loop of one task: the engine's actions carried out, the fetches' reports and the handle's
//! orders fed back to it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use stowage_bundle::{Bundle, GrowthThrottle, RenditionKind, SegmentId};
use stowage_fetch::RetryEvent;
use stowage_fetch::keys::KeyLoader;
use tokio::sync::{SemaphorePermit, mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

use super::auth::Auth;
use super::bundle_io::{blocking, record_gaps};
use super::errors::retry_failure;
use super::pipeline::{Bound, FetchCtx, Report, fetch_job_guarded, read, write};
use super::prepare::{Admitted, Prepared};
use super::recording::Reloaded;
use crate::Error;
use crate::config::{IntegrityPolicy, KeyPolicy, RecordingConfiguration};
use crate::engine::{
    Action, ConcurrencyLimits, Engine, EngineConfig, JobFailure, JobId, JobStatus, LiveSpec, Outcome,
    RecordingEnd,
};
use crate::events::{CompletedRendition, Progress, SegmentRef, TaskEvent, VariantSummary};
use crate::planning::{Batch, Job, JobTable, LiveTrack, Wanted, engine_plan, key_jobs};
use crate::runtime::session_config::SessionConfig;
use crate::runtime::shared::{SessionInner, lock};
use crate::runtime::task::{CancelMode, Control, Ending, TaskShared, TaskState};

/// The engine loop of one task.
pub(super) struct Runner<'a> {
    pub(super) session: &'a Arc<SessionInner>,
    pub(super) task: &'a Arc<TaskShared>,
    pub(super) engine: Engine,
    pub(super) wanted: Vec<Wanted>,
    pub(super) key_policy: KeyPolicy,
    pub(super) master: bool,
    pub(super) ctx: FetchCtx,
    pub(super) reports: mpsc::UnboundedReceiver<Report>,
    pub(super) retries: mpsc::UnboundedReceiver<(JobId, RetryEvent)>,
    pub(super) inflight: HashMap<JobId, (u32, AbortHandle)>,
    /// The key jobs by the key URI they are bound to now.
    pub(super) key_jobs: HashMap<String, JobId>,
    /// Every fetch task not yet known to be over, finished or not: each holds a clone of the bundle, and
    /// so its lock, until it is dropped, so the task's ending waits for all of them.
    pub(super) fetches: Vec<JoinHandle<()>>,
    pub(super) permit: Option<SemaphorePermit<'a>>,
    /// What a cancel does with the bundle, as the latest cancel order said.
    pub(super) cancel_mode: CancelMode,
    /// The typed error of each job's latest failed attempt, for the task's error if the job gives up.
    pub(super) causes: HashMap<JobId, Box<Error>>,
    /// Which renditions (in the engine's order) were reported complete.
    pub(super) completed: Vec<bool>,
    /// When the bundle's local playlists are next rewritten as it grows, so that a player follows the
    /// download.
    pub(super) growth: GrowthThrottle,
    /// For a recording: each rendition's recording (`None` for one that is not live), in the engine's order.
    pub(super) live: Vec<Option<LiveTrack>>,
    /// The media playlist URL each rendition is reloaded from (after redirects).
    pub(super) playlist_urls: Vec<String>,
    pub(super) reloads_tx: mpsc::UnboundedSender<Reloaded>,
    pub(super) reloads: mpsc::UnboundedReceiver<Reloaded>,
    /// The reloads out, by rendition.
    pub(super) reloading: HashMap<usize, AbortHandle>,
    /// Why the recording ended, once it did.
    pub(super) recording_end: Option<RecordingEnd>,
    /// Holes recorded so far.
    pub(super) holes: usize,
    /// How far the download may grow before the store's policy is checked again.
    pub(super) admitted: Admitted,
    /// For an interrupted recording taken up: what its live playlists listed when it was, recorded when
    /// the engine starts.
    pub(super) resumed: Vec<(usize, Batch, String)>,
    /// The jobs numbered below this were listed before an outage of the origin, or before the recording
    /// was interrupted: one of them the origin says is gone expired while it could not be fetched.
    pub(super) listed_before_outage: usize,
    /// Whether a segment that expired during an outage fails the recording under the strict policy.
    pub(super) fail_on_expiry: bool,
    /// Of the holes, those of segments that expired.
    pub(super) expired: usize,
    /// Per rendition, where on its timeline the newest segment stored ends, in seconds.
    pub(super) stored_end: Vec<f64>,
    /// Per rendition of a recording, when a reload of it last listed something new (or the recording
    /// started): which renditions keep up with the others.
    pub(super) news: Vec<Instant>,
}

/// What carrying out the engine's pending actions came to.
enum AfterActions {
    /// Nothing to do until a fetch reports, a retry is due or an order comes.
    Wait,
    /// The engine asked for fresh URLs after `job` was refused with `status`.
    Refresh { job: JobId, status: u16 },
    /// The task ended.
    End(Ending),
}

/// The engine's configuration for a task of a session configured with `config`, recording as `recording`
/// says when the task records a live stream.
fn engine_config(
    config: &SessionConfig,
    integrity: IntegrityPolicy,
    recording: &RecordingConfiguration,
) -> EngineConfig {
    // The engine counts a job in flight until its bytes are durable, the session's request slots only
    // while it is on the network. Letting the engine hand out twice as many jobs as there are slots
    // overlaps the sync of one segment with the fetch of the next, so that a latency-bound download is
    // not also bound by the disk; requests in flight stay within the slots.
    //
    // When the window may take a host past its per-host limit, the engine's per-host limits are the
    // request counts themselves, not twice them: the HTTP client then allows as many connections per host
    // as the ceiling, and it is the engine that must hold a host that pushed back to the configured limit.
    let per_host = config.max_connections_per_host;
    let grows = config.adaptive && config.per_host_ceiling > per_host;
    let (per_host, ceiling) =
        if grows { (per_host, config.per_host_ceiling) } else { (per_host.saturating_mul(2), 0) };
    let limits = ConcurrencyLimits::default()
        .max_total(config.max_connections.saturating_mul(2))
        .max_per_host(per_host)
        .per_host_ceiling(ceiling)
        .adaptive(config.adaptive)
        .initial(4.min(config.max_connections));
    EngineConfig::default()
        .concurrency(limits)
        .retry(config.retry.clone())
        .integrity(integrity)
        .seed(seed())
        .max_outage(recording.max_outage)
}

/// The bytes and segments the bundle holds already for each of `wanted`, in that order.
fn stored_per_rendition(bundle: &Bundle, wanted: &[Wanted]) -> Vec<(u64, usize)> {
    wanted
        .iter()
        .map(|w| bundle.rendition_progress(&w.id).map_or((0, 0), |r| (r.bytes_done, r.segments_done)))
        .collect()
}

/// The primary variant among `wanted`, for the task's summary.
fn variant_summary(wanted: &[Wanted]) -> Option<VariantSummary> {
    let w = wanted.iter().find(|w| w.primary && w.kind == RenditionKind::Video)?;
    Some(VariantSummary {
        id: w.id.to_string(),
        uri: w.master_uri.clone(),
        bandwidth: w.bandwidth,
        resolution: w.resolution,
        codecs: w.codecs.clone(),
    })
}

/// A fresh seed for the engine's jitter, so that many clients do not retry in step.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// The next request for a task: one deferred while the refresh hook ran, else the next from its handle.
async fn next_control(
    deferred: &mut VecDeque<Control>,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Option<Control> {
    match deferred.pop_front() {
        Some(c) => Some(c),
        None => control.recv().await,
    }
}

impl<'a> Runner<'a> {
    pub(super) fn new(
        session: &'a Arc<SessionInner>,
        task: &'a Arc<TaskShared>,
        prepared: Prepared,
        auth: Arc<Mutex<Auth>>,
        loader: Arc<KeyLoader>,
        permit: Option<SemaphorePermit<'a>>,
    ) -> Result<Self, Error> {
        let Prepared {
            bundle,
            wanted,
            mut jobs,
            integrity,
            key_policy,
            master,
            live,
            recording,
            admitted,
            resumed,
        } = prepared;
        let finished = |id: &SegmentId| bundle.is_finished(id);
        // Keys get jobs of their own, fetched ahead of the segments still to fetch that need them.
        let keys = key_jobs(&jobs, |i| !jobs[i].ids.iter().all(finished));
        jobs.extend(keys);
        // An interrupted recording taken up: what it had listed before may have expired meanwhile.
        let listed_before_outage = if resumed.is_some() { jobs.len() } else { 0 };
        // What a resumed recording stored already counts as stored for its live edge delay (a download
        // has no live edge, and its manifest is not copied for it).
        let stored_end: Vec<f64> = match resumed {
            Some(_) => {
                let manifest = bundle.manifest();
                wanted
                    .iter()
                    .map(|w| {
                        manifest
                            .rendition(&w.id)
                            .and_then(|r| r.state.loaded_time_ranges.last().map(|t| t.end.as_secs_f64()))
                            .unwrap_or(0.0)
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let specs: Vec<Option<LiveSpec>> = live
            .iter()
            .map(|t| {
                // A rendition whose recording is over already (an interrupted recording taken up after
                // its playlist ended or its span was recorded) is not reloaded.
                t.as_ref().filter(|t| !t.is_ended()).map(|t| {
                    let spec = LiveSpec::new(t.target);
                    if t.blocking { spec.blocking(t.next()) } else { spec }
                })
            })
            .collect();
        let plan = engine_plan(&wanted, &jobs, stored_per_rendition(&bundle, &wanted), finished, &specs);
        let mut engine = Engine::new(engine_config(&session.config, integrity, &recording), plan)?;
        if let Some(until) = recording.until {
            // The wall-clock time to stop at, as an instant of the engine's clock.
            let left = until.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            engine.end_recording_at(Instant::now() + left);
        }
        let playlist_urls: Vec<String> = wanted
            .iter()
            .map(|w| bundle.manifest().rendition(&w.id).map_or_else(|| w.url.clone(), |r| r.plan.url.clone()))
            .collect();
        let (reloads_tx, reloads) = mpsc::unbounded_channel();
        *lock(&task.renditions) = wanted.iter().map(|w| w.id.to_string()).collect();
        task.recording.store(live.iter().any(Option::is_some), std::sync::atomic::Ordering::Relaxed);
        *lock(&task.variant) = variant_summary(&wanted);
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (retries_tx, retries) = mpsc::unbounded_channel();
        let ctx = FetchCtx {
            session: Arc::clone(session),
            bundle,
            loader,
            auth,
            counters: Arc::clone(&task.counters),
            reports: reports_tx,
            retries: retries_tx,
            writers: Arc::new(Mutex::new(Vec::new())),
            refused: Arc::new(Mutex::new(HashMap::new())),
            bound: Arc::new(RwLock::new(Bound { generation: 0, jobs: JobTable::new(jobs) })),
            refreshing: Arc::new(watch::Sender::new(false)),
            // Every rendition of a task plays with its variant: the variant's BANDWIDTH bounds them all.
            bandwidth: wanted.iter().filter_map(|w| w.bandwidth).max(),
        };
        let mut runner = Self {
            session,
            task,
            engine,
            wanted,
            key_policy,
            master,
            ctx,
            reports,
            retries,
            inflight: HashMap::new(),
            key_jobs: HashMap::new(),
            fetches: Vec::new(),
            permit,
            cancel_mode: CancelMode::KeepPartial,
            causes: HashMap::new(),
            completed: Vec::new(),
            growth: GrowthThrottle::new(),
            live,
            playlist_urls,
            reloads_tx,
            reloads,
            reloading: HashMap::new(),
            recording_end: None,
            holes: 0,
            admitted,
            listed_before_outage,
            fail_on_expiry: recording.fail_on_expiry,
            expired: 0,
            stored_end,
            resumed: resumed.unwrap_or_default(),
            news: Vec::new(),
        };
        runner.news = vec![Instant::now(); runner.live.len()];
        runner.index_key_jobs();
        Ok(runner)
    }

    /// Re-reads which key job fetches which key URI (after key jobs were added or re-bound).
    pub(super) fn index_key_jobs(&mut self) {
        let bound = read(&self.ctx.bound);
        self.key_jobs = bound.jobs.iter().filter(|(_, j)| j.key).map(|(id, j)| (j.uri.clone(), id)).collect();
    }

    pub(super) fn emit(&self, event: TaskEvent) {
        self.task.emit(self.session, event);
    }

    pub(super) fn emit_progress(&self) {
        self.emit(TaskEvent::Progress(self.engine.progress()));
    }

    /// Runs the engine until the task ends.
    pub(super) async fn run(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ending {
        self.begin();
        if let Err(e) = self.record_resumed().await {
            return self.fail_with(e).await;
        }
        // Requests that came while the refresh hook ran, handled once it answered.
        let mut deferred = VecDeque::new();
        loop {
            let ended = match self.carry_out_actions().await {
                AfterActions::End(ending) => Some(ending),
                AfterActions::Refresh { job, status } => {
                    self.refresh_while_listening(job, status, control, shutdown, &mut deferred).await
                }
                AfterActions::Wait => self.wait_for_news(control, shutdown, &mut deferred).await,
            };
            if let Some(ending) = ended {
                return ending;
            }
        }
    }

    /// Reports where the task starts from, and starts the engine.
    fn begin(&mut self) {
        let progress = self.engine.progress();
        self.emit(TaskEvent::Progress(progress.clone()));
        self.report_completed(&progress);
        // What a resumed bundle holds already is listed at once, as growing playlists.
        self.growth.grew();
        self.engine.resume(Instant::now());
    }

    /// Carries out every action the engine has pending, until it has none or the task ends.
    async fn carry_out_actions(&mut self) -> AfterActions {
        let mut refresh = None;
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Start { job, attempt } => self.start(job, attempt),
                Action::Cancel { job } => self.abort(job),
                Action::GapRecorded(failure) => self.gap_recorded(failure).await,
                Action::Retried { .. } => {
                    // The start that follows is counted as a request when it is sent.
                    self.task.counters.retry(false);
                    self.emit_action(&action);
                }
                Action::RefreshUrls { job, status } => refresh = Some(AfterActions::Refresh { job, status }),
                Action::Finished { complete, .. } => return AfterActions::End(self.finish(complete).await),
                Action::Failed(failure) => return AfterActions::End(self.fail(failure).await),
                Action::Cancelled => return AfterActions::End(self.cancelled(self.cancel_mode).await),
                Action::ReloadPlaylist { rendition, block, timeout } => {
                    self.start_reload(rendition, block, timeout);
                }
                Action::RecordingEnded(why) => {
                    self.recording_ended(why);
                    self.emit_recording();
                }
            }
        }
        refresh.unwrap_or(AfterActions::Wait)
    }

    /// Waits for the first of: a fetch's report, a retry of the fetch layer, the engine's next timeout, an
    /// order from the task's handle (one deferred first), or the session's end; and handles it. `Some`
    /// when the task ends.
    async fn wait_for_news(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        shutdown: &mut watch::Receiver<bool>,
        deferred: &mut VecDeque<Control>,
    ) -> Option<Ending> {
        let deadline = self.engine.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let growth = self.growth.due_at();
        let growth_due = async {
            match growth {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(report) = self.reports.recv() => {
                self.on_report(report);
                if let Err(error) = self.admit_growth().await {
                    return Some(self.fail_with(error).await);
                }
            }
            Some((job, event)) = self.retries.recv() => self.on_retry(job, &event),
            Some(reloaded) = self.reloads.recv() => {
                if let Some(error) = self.on_reload(reloaded).await {
                    return Some(self.fail_with(error).await);
                }
            }
            () = sleep => self.engine.handle_timeout(Instant::now()),
            () = growth_due => self.write_growing_playlists().await,
            c = next_control(deferred, control) => return self.on_control(c).await,
            _ = shutdown.changed() => return Some(self.closed().await),
        }
        None
    }

    /// Once the download has stored more than it was admitted for, checks the store's policy again (purging
    /// what the policy lets go, and telling it) each time it grows by another step. The store must be
    /// within its limits: over them, the download stops with the store's typed error, what it stored kept.
    async fn admit_growth(&mut self) -> Result<(), Error> {
        let Some(step) = self.admitted.step else { return Ok(()) };
        let stored = self.ctx.bundle.progress().bytes_done;
        if stored <= self.admitted.until {
            return Ok(());
        }
        let store = self.session.store.clone();
        let report = blocking(&self.task.bundle_path, move || store.admit(0)).await?;
        if !report.removed.is_empty() {
            self.emit(TaskEvent::AssetsRemoved { removed: report.removed });
        }
        self.admitted.until = stored.saturating_add(step);
        Ok(())
    }

    /// A start of a job ended (its bytes stored, for a success): the engine is told, and listeners.
    fn on_report(&mut self, report: Report) {
        let Report { job, attempt, outcome, cause, round_trip } = report;
        if self.inflight.get(&job).is_some_and(|(a, _)| *a == attempt) {
            self.inflight.remove(&job);
        }
        let outcome = self.expired(job, outcome, cause.as_deref());
        if let Some(cause) = cause {
            self.causes.insert(job, cause);
        }
        let success = matches!(outcome, Outcome::Success { .. });
        let outcome = self.superseded(job, outcome);
        match round_trip {
            Some(round_trip) => {
                self.engine.handle_attempt_completed_in(Instant::now(), job, attempt, outcome, round_trip);
            }
            None => self.engine.handle_attempt_completed(Instant::now(), job, attempt, outcome),
        }
        if success {
            self.stored(job);
            self.growth.grew();
            self.causes.remove(&job);
            let progress = self.engine.progress();
            self.emit(TaskEvent::Progress(progress.clone()));
            if let Some(range) = self.engine.loaded_time_range(job)
                && !read(&self.ctx.bound).jobs.get(job).is_some_and(|j| j.init)
            {
                self.emit(TaskEvent::LoadedTimeRangeAdded(range));
            }
            self.report_completed(&progress);
            self.forget_if_over(job);
        }
    }

    /// A recording forgets a job once it is over (stored, or recorded as a gap): what is done lives in
    /// the bundle's journal, and a recording's jobs keep coming for as long as it runs.
    fn forget_if_over(&mut self, job: JobId) {
        // A job the engine no longer knows is over too: it lets go of its records of jobs over.
        let pending = matches!(
            self.engine.job_status(job),
            Some(JobStatus::Ready | JobStatus::Backoff | JobStatus::InFlight | JobStatus::AwaitingRefresh)
        );
        if self.is_recording() && !pending {
            write(&self.ctx.bound).jobs.forget(job);
        }
    }

    /// The fetch layer retried a request of `job` on its own: listeners are told (the task's counters
    /// were, by the session's retry callback), and the engine hears of it as pushback from the job's host,
    /// which holds the host to its per-host limit.
    pub(super) fn on_retry(&mut self, job: JobId, event: &RetryEvent) {
        let attempt = self.inflight.get(&job).map_or(1, |(a, _)| *a);
        let cause = retry_failure(event);
        self.engine.handle_pushback(job, &cause);
        // A retry report of a start that is over (its job done and forgotten) is no news.
        let Some(segment) = self.segment(job) else { return };
        self.emit(TaskEvent::SegmentRetried {
            job,
            attempt,
            cause,
            delay: event.delay,
            retry_after: event.retry_after,
            until: event.until,
            segment,
        });
    }

    /// What `job` fetches, for events; `None` for a recording's job that is over and forgotten.
    pub(super) fn segment(&self, job: JobId) -> Option<SegmentRef> {
        read(&self.ctx.bound).jobs.get(job).map(Job::segment)
    }

    /// Emits the event an engine action is news of, naming its segment.
    fn emit_action(&self, action: &Action) {
        let job = match action {
            Action::Retried { job, .. } => *job,
            Action::GapRecorded(failure) => failure.job,
            _ => return,
        };
        // Actions about a job come while it is kept: it is forgotten only once over, after them.
        let Some(segment) = self.segment(job) else { return };
        if let Some(event) = TaskEvent::from_action(action, SystemTime::now(), |_| segment) {
            self.emit(event);
        }
    }

    /// Tells listeners of every rendition whose segments are now all stored or recorded as gaps, once.
    pub(super) fn report_completed(&mut self, progress: &Progress) {
        self.completed.resize(self.wanted.len(), false);
        for r in &progress.renditions {
            let Some(w) = self.wanted.get(r.rendition) else { continue };
            if self.completed[r.rendition] || r.segments_done + r.segments_missing < r.segments_total {
                continue;
            }
            self.completed[r.rendition] = true;
            // A recording's holes are gaps of their own, whose jobs are let go as soon as recorded.
            let source_gaps =
                read(&self.ctx.bound).jobs.iter().any(|(_, j)| j.rendition == r.rendition && j.source_gap)
                    || self.ctx.bundle.holes().iter().any(|h| h.rendition == w.id);
            self.emit(TaskEvent::RenditionCompleted(CompletedRendition {
                rendition: r.rendition,
                id: w.id.to_string(),
                kind: w.kind,
                language: w.language.clone(),
                name: w.name.clone(),
                complete: r.segments_missing == 0 && !source_gaps,
            }));
        }
    }

    /// Carries out a request from the task's handle; `Some` when the task ends with it (the handle and
    /// the session are gone, or no task slot can be had any more).
    pub(super) async fn on_control(&mut self, c: Option<Control>) -> Option<Ending> {
        match c {
            Some(Control::Resume) => {
                if self.permit.is_none() {
                    self.task.state.send_replace(TaskState::Waiting);
                    match self.session.task_slots.acquire().await {
                        Ok(p) => self.permit = Some(p),
                        Err(_) => return Some(self.closed().await),
                    }
                }
                self.task.state.send_replace(TaskState::Running);
                self.engine.resume(Instant::now());
            }
            Some(Control::Suspend) => {
                self.engine.suspend();
                self.stop_fetches().await;
                self.permit = None;
                self.task.state.send_replace(TaskState::Suspended);
                self.save_playlists().await;
            }
            Some(Control::Cancel(mode)) => {
                self.cancel_mode = mode;
                self.engine.cancel();
            }
            Some(Control::StopRecording) => self.engine.end_recording(Instant::now(), RecordingEnd::Stopped),
            Some(Control::Augment(selections, reply)) => {
                let added = self.augment(selections).await;
                if added.is_ok() {
                    self.emit_progress();
                }
                let _ = reply.send(added);
            }
            None => return Some(self.closed().await),
        }
        None
    }

    fn start(&mut self, job: JobId, attempt: u32) {
        // Finished writer threads are forgotten as the download goes, so that a plan of a hundred thousand
        // segments does not keep a hundred thousand handles.
        {
            let mut writers = lock(&self.ctx.writers);
            if writers.len() > 64 {
                writers.retain(|h| !h.is_finished());
            }
        }
        let handle = tokio::spawn(fetch_job_guarded(self.ctx.clone(), job, attempt));
        self.inflight.insert(job, (attempt, handle.abort_handle()));
        // Finished fetches are pruned as new ones start, so the list stays as long as the jobs in flight.
        self.fetches.retain(|h| !h.is_finished());
        self.fetches.push(handle);
    }

    /// Aborts the fetch of a start of `job` the engine cancelled.
    fn abort(&mut self, job: JobId) {
        if let Some((_, handle)) = self.inflight.remove(&job) {
            handle.abort();
        }
    }

    /// Under the tolerant policy, `failure`'s job gave up: the bundle records the gap, listeners are told.
    async fn gap_recorded(&mut self, failure: JobFailure) {
        let job = failure.job;
        self.record_gap(&failure).await;
        // A hole that cannot be recorded leaves the gap recorded: the segment is still said to be missing.
        let _ = self.record_expired(&failure).await;
        self.growth.grew();
        self.causes.remove(&failure.job);
        self.emit_action(&Action::GapRecorded(failure));
        let progress = self.engine.progress();
        self.emit(TaskEvent::Progress(progress.clone()));
        self.report_completed(&progress);
        self.forget_if_over(job);
    }

    async fn record_gap(&self, failure: &JobFailure) {
        let Some(ids) = read(&self.ctx.bound).jobs.get(failure.job).map(|j| j.ids.clone()) else { return };
        let _ = record_gaps(&self.task.bundle_path, &self.ctx.bundle, ids, failure.to_string()).await;
    }
}
