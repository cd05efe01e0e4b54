//! The engine loop of one task: the engine's actions carried out, the fetches' reports and the handle's
//! orders fed back to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use stowage_fetch::RetryEvent;
use stowage_fetch::keys::KeyLoader;
use tokio::sync::{SemaphorePermit, mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

use super::auth::Auth;
use super::bundle_io::blocking;
use super::errors::retry_failure;
use super::pipeline::{Bound, FetchCtx, Report, fetch_job, read};
use super::prepare::Prepared;
use crate::Error;
use crate::config::{DownloadConfiguration, KeyPolicy};
use crate::engine::{
    Action, ConcurrencyLimits, Engine, EngineConfig, JobFailure, JobId, Outcome, Plan, RenditionSpec,
};
use crate::events::TaskEvent;
use crate::planning::{Wanted, job_spec, key_jobs};
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
    pub(super) download_config: Option<DownloadConfiguration>,
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
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.finish()
}

/// The next request for a task: one deferred while the refresh hook ran, else the next from its handle.
async fn next_control(
    deferred: &mut std::collections::VecDeque<Control>,
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
        let Prepared { config: download_config, bundle, wanted, mut jobs, integrity, key_policy, master } =
            prepared;
        // Keys get jobs of their own, fetched ahead of the segments still to fetch that need them.
        let keys = key_jobs(&jobs, |i| !jobs[i].ids.iter().all(|id| bundle.is_finished(id)));
        jobs.extend(keys);
        // Per-segment lengths of a resumed bundle are not kept apart from its journal; each rendition's
        // stored bytes are spread over its finished segments so that totals are exact.
        let progress = bundle.progress();
        let mut per_rendition: Vec<(u64, usize)> = wanted
            .iter()
            .map(|w| {
                progress
                    .renditions
                    .iter()
                    .find(|r| r.rendition == w.id)
                    .map_or((0, 0), |r| (r.bytes_finished, r.segments_finished))
            })
            .collect();
        let mut plan = Plan::new();
        for w in &wanted {
            plan.add_rendition(match w.estimate {
                Some(b) => RenditionSpec::new().bandwidth(b),
                None => RenditionSpec::new(),
            });
        }
        for (i, job) in jobs.iter().enumerate() {
            if job.source_gap {
                continue;
            }
            let mut spec = job_spec(JobId(i as u64), job);
            if !job.key && job.ids.iter().all(|id| bundle.is_finished(id)) {
                let (bytes, count) = &mut per_rendition[job.rendition];
                let share = if *count > 0 { *bytes / *count as u64 } else { 0 };
                let share = if *count <= job.ids.len() { *bytes } else { share * job.ids.len() as u64 };
                *bytes -= share.min(*bytes);
                *count = count.saturating_sub(job.ids.len());
                spec = spec.finished(share);
            }
            plan.add_job(spec);
        }
        // The engine counts a job in flight until its bytes are durable, the session's request slots
        // only while it is on the network. Letting the engine hand out twice as many jobs as there are
        // slots overlaps the sync of one segment with the fetch of the next, so that a latency-bound
        // download is not also bound by the disk; requests in flight stay within the slots.
        let limits = ConcurrencyLimits::default()
            .max_total(session.config.max_connections.saturating_mul(2))
            .max_per_host(session.config.max_connections_per_host.saturating_mul(2))
            .adaptive(session.config.adaptive)
            .initial(4.min(session.config.max_connections));
        let config = EngineConfig::default()
            .concurrency(limits)
            .retry(session.config.retry.clone())
            .integrity(integrity)
            .seed(seed());
        let engine = Engine::new(config, plan)?;
        *lock(&task.renditions) = wanted.iter().map(|w| w.id.to_string()).collect();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (retries_tx, retries) = mpsc::unbounded_channel();
        let ctx = FetchCtx {
            session: Arc::clone(session),
            bundle,
            loader,
            auth,
            reports: reports_tx,
            retries: retries_tx,
            writers: Arc::new(Mutex::new(Vec::new())),
            refused: Arc::new(Mutex::new(HashMap::new())),
            bound: Arc::new(RwLock::new(Bound { generation: 0, jobs })),
            refreshing: Arc::new(watch::Sender::new(false)),
        };
        let mut runner = Self {
            session,
            task,
            engine,
            wanted,
            key_policy,
            master,
            download_config,
            ctx,
            reports,
            retries,
            inflight: HashMap::new(),
            key_jobs: HashMap::new(),
            fetches: Vec::new(),
            permit,
        };
        runner.index_key_jobs();
        Ok(runner)
    }

    /// Re-reads which key job fetches which key URI (after key jobs were added or re-bound).
    pub(super) fn index_key_jobs(&mut self) {
        let bound = read(&self.ctx.bound);
        self.key_jobs = bound
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.key)
            .map(|(i, j)| (j.uri.clone(), JobId(i as u64)))
            .collect();
    }

    pub(super) fn emit(&self, event: TaskEvent) {
        self.task.emit(self.session, event);
    }

    pub(super) fn emit_progress(&self) {
        self.emit(TaskEvent::Progress(self.engine.progress()));
    }

    pub(super) async fn run(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        shutdown: &mut watch::Receiver<bool>,
        suspended: bool,
    ) -> Ending {
        self.emit_progress();
        if suspended {
            self.permit = None;
            self.task.state.send_replace(TaskState::Suspended);
        } else {
            self.engine.resume(Instant::now());
        }
        let mut cancel_mode = CancelMode::KeepPartial;
        // Requests that came while the refresh hook ran, handled once it answered.
        let mut deferred = std::collections::VecDeque::new();
        loop {
            let mut refresh = None;
            while let Some(action) = self.engine.poll_action() {
                match action {
                    Action::Start { job, attempt } => self.start(job, attempt),
                    Action::Cancel { job } => {
                        if let Some((_, handle)) = self.inflight.remove(&job) {
                            handle.abort();
                        }
                    }
                    Action::GapRecorded(failure) => {
                        self.record_gap(&failure).await;
                        if let Some(event) = TaskEvent::from_action(&Action::GapRecorded(failure)) {
                            self.emit(event);
                        }
                        self.emit_progress();
                    }
                    Action::RefreshUrls { job, status } => refresh = Some((job, status)),
                    Action::Finished { complete, .. } => return self.finish(complete).await,
                    Action::Failed(failure) => return self.fail(failure).await,
                    Action::Cancelled => return self.cancelled(cancel_mode).await,
                    other => {
                        if let Some(event) = TaskEvent::from_action(&other) {
                            self.emit(event);
                        }
                    }
                }
            }
            if let Some((job, status)) = refresh {
                // The hook may take long: suspend, cancel and the session's end are honoured while it
                // runs; a resume or an augment waits for its answer.
                let interrupted = {
                    let mut refreshing = std::pin::pin!(self.refresh(job, status));
                    loop {
                        tokio::select! {
                            done = &mut refreshing => match done {
                                Ok(()) => break None,
                                Err(e) => break Some(Err(e)),
                            },
                            c = control.recv() => match c {
                                Some(Control::Resume | Control::Augment(..)) => deferred.extend(c),
                                other => break Some(Ok(other)),
                            },
                            _ = shutdown.changed() => break Some(Ok(None)),
                        }
                    }
                };
                match interrupted {
                    None => {}
                    Some(Err(e)) => return self.fail_with(e).await,
                    Some(Ok(c)) => {
                        // The refresh was dropped unanswered. Suspended, the task asks again when a
                        // refusal comes after the resume; cancelled or closed, it ends.
                        if matches!(c, Some(Control::Suspend)) {
                            self.engine.suspend();
                            self.engine.handle_refresh_abandoned(Instant::now());
                        }
                        if let Some(ending) = self.on_control(c, &mut cancel_mode).await {
                            return ending;
                        }
                    }
                }
                continue;
            }
            let deadline = self.engine.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some((job, attempt, outcome)) = self.reports.recv() => {
                    if self.inflight.get(&job).is_some_and(|(a, _)| *a == attempt) {
                        self.inflight.remove(&job);
                    }
                    let success = matches!(outcome, Outcome::Success { .. });
                    let outcome = self.superseded(job, outcome);
                    self.engine.handle_attempt_completed(Instant::now(), job, attempt, outcome);
                    if success {
                        self.emit_progress();
                        if let Some(range) = self.engine.loaded_time_range(job)
                            && !read(&self.ctx.bound).jobs[job.0 as usize].init
                        {
                            self.emit(TaskEvent::LoadedTimeRangeAdded(range));
                        }
                    }
                }
                Some((job, event)) = self.retries.recv() => {
                    let attempt = self.inflight.get(&job).map_or(1, |(a, _)| *a);
                    self.emit(TaskEvent::SegmentRetried {
                        job,
                        attempt,
                        cause: retry_failure(&event.cause, event.delay),
                        delay: event.delay,
                    });
                }
                () = sleep => self.engine.handle_timeout(Instant::now()),
                c = next_control(&mut deferred, control) => {
                    if let Some(ending) = self.on_control(c, &mut cancel_mode).await {
                        return ending;
                    }
                }
                _ = shutdown.changed() => return self.closed().await,
            }
        }
    }

    /// Carries out a request from the task's handle; `Some` when the task ends with it (the handle and
    /// the session are gone, or no task slot can be had any more).
    async fn on_control(&mut self, c: Option<Control>, cancel_mode: &mut CancelMode) -> Option<Ending> {
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
                self.permit = None;
                self.task.state.send_replace(TaskState::Suspended);
                self.save_playlists().await;
            }
            Some(Control::Cancel(mode)) => {
                *cancel_mode = mode;
                self.engine.cancel();
            }
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
        let handle = tokio::spawn(fetch_job(self.ctx.clone(), job, attempt));
        self.inflight.insert(job, (attempt, handle.abort_handle()));
        // Finished fetches are pruned as new ones start, so the list stays as long as the jobs in flight.
        self.fetches.retain(|h| !h.is_finished());
        self.fetches.push(handle);
    }

    pub(super) async fn record_gap(&self, failure: &JobFailure) {
        let ids = read(&self.ctx.bound).jobs[failure.job.0 as usize].ids.clone();
        let (bundle, reason) = (self.ctx.bundle.clone(), failure.to_string());
        let path = self.task.bundle_path.clone();
        let _ = blocking(&path, move || {
            for id in &ids {
                if !bundle.is_finished(id) {
                    bundle.record_gap(id, reason.clone())?;
                }
            }
            Ok(())
        })
        .await;
    }
}
